"""Contract tests for the Parley socket.io gateway, driven by the stock
python-socketio client (Debian's python3-socketio). Run against a live gateway
with Debian's own interpreter:

    GATEWAY_URL=http://127.0.0.1:3000 JWT_SECRET=... TRANSPORTS=websocket \
        /usr/bin/python3 -m unittest -v contract_test

The gateway under test has the namespaces "/" (no auth, default room "room1")
and "/chat" (HS256 JWT signed with JWT_SECRET, default room "general").
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import time
import unittest
import uuid

import socketio

GATEWAY_URL = os.environ["GATEWAY_URL"]
JWT_SECRET = os.environ["JWT_SECRET"]
TRANSPORTS = os.environ.get("TRANSPORTS", "websocket").split(",")
WAIT = 10  # seconds, the bound of every wait


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_for(sub):
    """An HS256 token for user sub, expiring in an hour."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"sub": sub, "iat": now, "exp": now + 3600}).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = hmac.new(JWT_SECRET.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Recorder:
    """Records the arguments of each arrival of one event."""

    def __init__(self, client, event, namespace):
        self.events = queue.Queue()
        self.seen = []
        client.on(event, self._on, namespace=namespace)

    def _on(self, *args):
        self.events.put(args)

    def wait_for(self, match, what):
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {WAIT} s; saw {self.seen}")
            try:
                args = self.events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(args)
            if match(*args):
                return args

    def drain(self):
        """Waits a moment, then returns everything seen."""
        time.sleep(0.3)
        while not self.events.empty():
            self.seen.append(self.events.get())
        return self.seen


class GatewayContract(unittest.TestCase):
    def connect(self, namespace="/", auth=None):
        client = socketio.Client(reconnection=False)
        # connect returns once the namespace is connected: the gateway has
        # joined the socket to the namespace's default rooms by then.
        client.connect(GATEWAY_URL, namespaces=[namespace], transports=TRANSPORTS, auth=auth, wait_timeout=WAIT)
        self.addCleanup(client.disconnect)
        return client

    def call(self, client, event, *args, namespace="/"):
        return client.call(event, args, namespace=namespace, timeout=WAIT)

    def assert_ok(self, ack, what):
        self.assertIsInstance(ack, dict, f"{what}: {ack!r}")
        self.assertIs(ack.get("ok"), True, f"{what}: {ack!r}")
        return ack

    def assert_error(self, ack, codes, what):
        self.assertIsInstance(ack, dict, f"{what}: {ack!r}")
        self.assertIs(ack.get("ok"), False, f"{what}: {ack!r}")
        self.assertIn(ack["error"]["code"], codes, f"{what}: {ack!r}")
        self.assertIsInstance(ack["error"]["message"], str, f"{what}: {ack!r}")

    def test_classic_chat_in_room1_then_switch_room(self):
        a, b = self.connect(), self.connect()
        a_got = Recorder(a, "receive message", "/")
        b_got = Recorder(b, "receive message", "/")
        hello = unique("hello")
        a.emit("send message", ("room1", hello))  # no ack, as the classic client sends
        msg, meta = b_got.wait_for(lambda m, meta=None, *_: m == hello, "message in room1")[:2]
        self.assertEqual(msg, hello, "the message is the first argument")
        self.assertEqual(meta["room"], "room1")
        sender = meta["from"]
        self.assertIsInstance(sender, str)

        c = self.connect()
        c_got = Recorder(c, "receive message", "/")
        c_joined = Recorder(c, "member joined", "/")
        self.assert_ok(self.call(c, "join", "room2"), "join room2")
        a.emit("switch room", "room2")
        c_joined.wait_for(lambda e, *_: e.get("room") == "room2" and e.get("user") == sender, "a joining room2")
        there = unique("in room2")
        a.emit("send message", ("room2", there))
        c_got.wait_for(lambda m, meta=None, *_: m == there and meta["room"] == "room2", "message in room2")
        self.assertNotIn(there, [e[0] for e in b_got.drain()], "room2 message at a client in room1")
        self.assertNotIn(hello, [e[0] for e in a_got.drain()], "own message echoed to its sender")

    def test_chat_with_a_token(self):
        alice, bob = unique("alice"), unique("bob")
        a = self.connect("/chat", auth={"token": token_for(alice)})
        b = self.connect("/chat", auth={"token": token_for(bob)})
        b_got = Recorder(b, "receive message", "/chat")
        room = unique("py")
        for s in (a, b):
            ack = self.assert_ok(self.call(s, "join", room, namespace="/chat"), "join")
            self.assertEqual(ack["room"], room)
        sent = self.assert_ok(self.call(a, "send message", room, {"text": "hi"}, namespace="/chat"), "send")
        self.assertIsInstance(sent["id"], str)
        msg, meta = b_got.wait_for(lambda m, meta=None, *_: meta is not None and meta["room"] == room, "alice's message")[:2]
        self.assertEqual(msg, {"text": "hi"})
        self.assertEqual(meta["from"], alice, "from is the token's sub")
        self.assertEqual(meta["offset"], sent["offset"])
        members = self.assert_ok(self.call(b, "members", room, namespace="/chat"), "members")["members"]
        self.assertTrue({alice, bob} <= {m["user"] for m in members}, members)

    def test_a_bad_token_is_refused(self):
        client = socketio.Client(reconnection=False)
        with self.assertRaises(socketio.exceptions.ConnectionError):
            client.connect(GATEWAY_URL, namespaces=["/chat"], transports=TRANSPORTS,
                           auth={"token": token_for("mallory") + "x"}, wait_timeout=WAIT)
        client.disconnect()

    def test_join_send_and_history(self):
        a = self.connect()
        room = unique("py")
        self.assert_ok(self.call(a, "join", room), "join")
        sent = [self.assert_ok(self.call(a, "send message", room, f"m{i}"), f"send m{i}") for i in range(1, 4)]
        offsets = [s["offset"] for s in sent]
        history = self.assert_ok(self.call(a, "history", room, {}), "history")
        self.assertEqual([m["msg"] for m in history["messages"]], ["m1", "m2", "m3"])
        self.assertEqual([m["id"] for m in history["messages"]], [s["id"] for s in sent])
        self.assertIs(history["has_more"], False)
        after = self.assert_ok(self.call(a, "history", room, {"after": offsets[0]}), "history after")
        self.assertEqual([m["msg"] for m in after["messages"]], ["m2", "m3"])
        self.assert_error(self.call(a, "no such event"), ("unimplemented",), "unknown event")
        self.assert_error(self.call(a, "send message", unique("missing"), "x"), ("not_found", "permission_denied"), "send to a missing room")

    def test_a_reconnected_client_catches_up_from_history(self):
        # python-socketio does not resume a session (connection state
        # recovery): a client that reconnects is a new socket, in the
        # namespace's default rooms only, and reads what it missed from
        # history after the last offset it saw.
        room = unique("py")
        x, y = self.connect(), self.connect()
        self.assert_ok(self.call(x, "join", room), "x joins")
        self.assert_ok(self.call(y, "join", room), "y joins")
        got = Recorder(x, "receive message", "/")
        self.assert_ok(self.call(y, "send message", room, "before"), "send before")
        _, meta, offset = got.wait_for(lambda m, *_: m == "before", "before")
        self.assertIsInstance(offset, str, "each message ends with an offset string")
        first_sid = x.get_sid("/")
        x.disconnect()
        for text in ("missed-1", "missed-2"):
            self.assert_ok(self.call(y, "send message", room, text), f"send {text}")

        x = self.connect()
        self.assertNotEqual(x.get_sid("/"), first_sid, "a new socket")
        self.assert_error(self.call(x, "send message", room, "too early"), ("not_found", "permission_denied"),
                          "send before joining again")
        ack = self.assert_ok(self.call(x, "join", room), "join again")
        self.assertEqual([m["msg"] for m in ack["messages"]][-2:], ["missed-1", "missed-2"])
        missed = self.assert_ok(self.call(x, "history", room, {"after": meta["offset"]}), "history after")
        self.assertEqual([m["msg"] for m in missed["messages"]], ["missed-1", "missed-2"])


if __name__ == "__main__":
    unittest.main()
