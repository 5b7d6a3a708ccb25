// Parley's chat page. It talks to the gateway with the stock socket.io client
// (bundled in by `make web`) using the same events as any other client, and
// relies on socket.io connection state recovery to come back after a drop
// without losing or repeating messages.
import { io } from "socket.io-client";

const $ = (id) => document.getElementById(id);
const state = {
  socket: null,
  user: "",
  current: "",
  rooms: new Map(), // joined room -> { messages: Map(offset -> message), oldest, members, more }
  known: [], // rooms listed by the gateway
};

function roomState(name) {
  let r = state.rooms.get(name);
  if (!r) {
    r = { messages: new Map(), oldest: 0, members: [], more: true };
    state.rooms.set(name, r);
  }
  return r;
}

function text(msg) {
  if (typeof msg === "string") return msg;
  if (msg && typeof msg.text === "string") return msg.text;
  return JSON.stringify(msg);
}

function addMessages(room, list) {
  const r = roomState(room);
  for (const m of list) {
    r.messages.set(m.offset, m);
    if (!r.oldest || m.offset < r.oldest) r.oldest = m.offset;
  }
}

function notice(room, line) {
  const r = roomState(room);
  const key = `n${Date.now()}${Math.random()}`;
  r.messages.set(key, { notice: line, ts: Date.now() });
}

// --- rendering -------------------------------------------------------------

function render() {
  renderRooms();
  renderMessages();
  renderMembers();
}

function renderRooms() {
  const names = new Set([...state.rooms.keys(), ...state.known.map((r) => r.name)]);
  const counts = new Map(state.known.map((r) => [r.name, r.members]));
  const ul = $("room-list");
  ul.replaceChildren();
  for (const name of [...names].sort()) {
    const li = document.createElement("li");
    li.dataset.room = name;
    li.classList.toggle("joined", state.rooms.has(name));
    li.classList.toggle("current", name === state.current);
    const label = document.createElement("span");
    label.textContent = name;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = counts.has(name) ? String(counts.get(name)) : "";
    li.append(label, count);
    li.onclick = () => (state.rooms.has(name) ? select(name) : join(name));
    ul.append(li);
  }
}

function renderMessages() {
  $("room-title").textContent = state.current ? `# ${state.current}` : "—";
  const ol = $("message-list");
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  ol.replaceChildren();
  const r = state.rooms.get(state.current);
  $("older").hidden = !r || !r.more;
  if (!r) return;
  const items = [...r.messages.values()].sort((a, b) => a.ts - b.ts || (a.offset || 0) - (b.offset || 0));
  for (const m of items) {
    const li = document.createElement("li");
    if (m.notice) {
      li.className = "notice";
      li.textContent = m.notice;
    } else {
      li.dataset.offset = m.offset;
      li.classList.toggle("mine", m.from === state.user);
      const from = document.createElement("span");
      from.className = "from";
      from.textContent = m.from || "system";
      const body = document.createElement("span");
      body.className = "body";
      body.textContent = text(m.msg);
      const time = document.createElement("span");
      time.className = "time";
      time.textContent = new Date(m.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      li.append(from, body, time);
    }
    ol.append(li);
  }
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function renderMembers() {
  const ul = $("member-list");
  ul.replaceChildren();
  const r = state.rooms.get(state.current);
  if (!r) return;
  for (const m of [...r.members].sort((a, b) => b.online - a.online || a.user.localeCompare(b.user))) {
    const li = document.createElement("li");
    li.classList.toggle("online", m.online);
    li.textContent = m.user === state.user ? `${m.user} (you)` : m.user;
    ul.append(li);
  }
}

function showError(id, ack) {
  $(id).textContent = ack && ack.error ? `${ack.error.message} (${ack.error.code})` : "";
}

// --- actions ---------------------------------------------------------------

async function call(event, ...args) {
  try {
    return await state.socket.timeout(10000).emitWithAck(event, ...args);
  } catch {
    return { ok: false, error: { code: "unavailable", message: "no answer from the server" } };
  }
}

async function join(room) {
  const ack = await call("join", room);
  showError("chat-error", ack);
  if (!ack.ok) return;
  const r = roomState(room);
  r.members = ack.members;
  r.more = ack.messages.length > 0 && ack.messages[0].offset > 1;
  addMessages(room, ack.messages);
  select(room);
  refreshRooms();
}

async function leave(room) {
  const ack = await call("leave", room);
  showError("chat-error", ack);
  if (!ack.ok) return;
  state.rooms.delete(room);
  select(state.rooms.keys().next().value || "");
  refreshRooms();
}

function select(room) {
  state.current = room;
  $("messages").scrollTop = $("messages").scrollHeight;
  render();
  $("messages").scrollTop = $("messages").scrollHeight;
}

async function older() {
  const room = state.current;
  const r = state.rooms.get(room);
  if (!r) return;
  const ack = await call("history", room, { before: r.oldest, limit: 50 });
  showError("chat-error", ack);
  if (!ack.ok) return;
  r.more = ack.has_more;
  const box = $("messages");
  const fromBottom = box.scrollHeight - box.scrollTop;
  addMessages(room, ack.messages);
  render();
  box.scrollTop = box.scrollHeight - fromBottom;
}

async function send(body) {
  const room = state.current;
  const id = crypto.randomUUID();
  // A retry after a drop carries the same id, so the server stores it once.
  for (let attempt = 0; attempt < 5; attempt++) {
    const ack = await call("send message", room, { text: body }, { id });
    if (ack.ok) {
      addMessages(room, [{ msg: { text: body }, room, id, offset: ack.offset, from: state.user, ts: ack.ts }]);
      showError("chat-error", null);
      render();
      return true;
    }
    showError("chat-error", ack);
    if (ack.error.code !== "unavailable") return false;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return false;
}

async function refreshRooms() {
  const ack = await call("rooms");
  if (ack.ok) state.known = ack.rooms;
  render();
}

async function refreshMembers(room) {
  const ack = await call("members", room);
  if (ack.ok && state.rooms.has(room)) state.rooms.get(room).members = ack.members;
  render();
}

// --- connection ------------------------------------------------------------

function connect(namespace, token) {
  const socket = io(namespace, { auth: { token } });
  state.socket = socket;

  socket.on("connect", async () => {
    $("banner").hidden = true;
    if (!socket.recovered) {
      // A fresh session (first connection, or recovery was not possible):
      // join the rooms again and merge their history; offsets dedupe.
      const rooms = state.rooms.size ? [...state.rooms.keys()] : [];
      for (const room of rooms) await join(room);
      if (!rooms.length) {
        await refreshRooms();
        const first = state.known[0];
        if (first) await join(first.name);
      }
      select(state.current || state.rooms.keys().next().value || "");
    }
    refreshRooms();
  });
  socket.on("disconnect", () => ($("banner").hidden = false));
  socket.on("connect_error", (err) => {
    if (!socket.active) {
      sessionStorage.removeItem("parley.token");
      showSignin(`Could not connect: ${err.message}`);
    }
  });
  socket.on("receive message", (msg, meta) => {
    addMessages(meta.room, [{ msg, ...meta }]);
    if (meta.room !== state.current) return;
    renderMessages();
    // Someone shown as offline who speaks is back: refresh presence.
    const r = state.rooms.get(meta.room);
    if (meta.from && !r.members.some((m) => m.user === meta.from && m.online)) refreshMembers(meta.room);
  });
  socket.on("member joined", ({ room, user }) => {
    notice(room, `${user} joined`);
    refreshMembers(room);
    refreshRooms();
  });
  socket.on("member left", ({ room, user }) => {
    notice(room, `${user} left`);
    refreshMembers(room);
    refreshRooms();
  });
  setInterval(() => state.current && socket.connected && refreshMembers(state.current), 10000);
}

function showSignin(error) {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = error || "";
}

async function main() {
  const config = await (await fetch("api/web-config")).json();
  $("name-label").hidden = !config.dev_tokens;
  $("name").required = config.dev_tokens;
  $("token-label").hidden = config.dev_tokens;

  const start = (token, user) => {
    sessionStorage.setItem("parley.token", JSON.stringify({ token, user }));
    state.user = user;
    $("me").textContent = `signed in as ${user}`;
    $("signin").hidden = true;
    $("app").hidden = false;
    connect(config.namespace, token);
  };

  const saved = sessionStorage.getItem("parley.token");
  if (saved) {
    const { token, user } = JSON.parse(saved);
    start(token, user);
  }

  $("signin-form").onsubmit = async (e) => {
    e.preventDefault();
    if (config.dev_tokens) {
      const resp = await fetch("api/dev-token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: $("name").value.trim() }),
      });
      const body = await resp.json();
      if (!resp.ok) return showSignin(body.error);
      start(body.token, body.user);
    } else {
      const token = $("token").value.trim();
      try {
        start(token, JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub);
      } catch {
        showSignin("That is not a JWT.");
      }
    }
  };
  $("join-form").onsubmit = (e) => {
    e.preventDefault();
    const room = $("join-name").value.trim();
    if (room) join(room).then(() => ($("join-name").value = ""));
  };
  $("send-form").onsubmit = async (e) => {
    e.preventDefault();
    const body = $("text").value.trim();
    if (!body || !state.current) return;
    $("text").value = "";
    if (!(await send(body))) $("text").value = body;
  };
  $("leave").onclick = () => state.current && leave(state.current);
  $("older").onclick = older;
}

main();
