// The reference server of make bench: the classic socket.io chat, on the npm
// socket.io package with its defaults (no connection state recovery).
import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer();
const io = new Server(httpServer);

const ok = (ack) => {
  if (typeof ack === "function") ack({ ok: true });
};

io.on("connection", (socket) => {
  socket.join("room1");
  socket.on("send message", (room, msg, ack) => {
    socket.to(room).emit("receive message", msg);
    ok(ack);
  });
  socket.on("switch room", (room, ack) => {
    // Every room but the socket's own, which socket.io keeps for direct sends.
    for (const r of socket.rooms) if (r !== socket.id) socket.leave(r);
    socket.join(room);
    ok(ack);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    ok(ack);
  });
});

const stop = () => io.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

httpServer.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => console.log("listening"));
