// Baseline (b): a Node socket.io 4.x server doing the same fan-out as Switchboard.
// A /chat namespace; a middleware verifies the same HS256 JWT (jsonwebtoken), `join` puts
// the socket in a room, `send` emits `message:new` shaped like Switchboard's message
// resource to the room (the sender included) and acks it. Defaults otherwise (no
// per-message deflate, which is socket.io 4's default).
//   PORT=8091 SWITCHBOARD_JWT_SECRET=... node server.js
"use strict";
const http = require("http");
const jwt = require("jsonwebtoken");
const { Server } = require("socket.io");

const port = parseInt(process.env.PORT || "8091", 10);
const host = process.env.HOST || "127.0.0.1";
const secret = process.env.SWITCHBOARD_JWT_SECRET;
if (!secret) {
  console.error("SWITCHBOARD_JWT_SECRET is required");
  process.exit(2);
}

const httpServer = http.createServer((req, res) => {
  res.writeHead(req.url === "/healthz" ? 200 : 404);
  res.end();
});
const io = new Server(httpServer, { serveClient: false });
const chat = io.of("/chat");
const seqs = new Map();
let ids = 0;

chat.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  try {
    const claims = jwt.verify(token, secret, { algorithms: ["HS256"] });
    socket.data.userId = String(claims.sub);
    next();
  } catch (err) {
    const refusal = new Error("auth_invalid");
    refusal.data = { code: "auth_invalid", message: String(err.message) };
    next(refusal);
  }
});

chat.on("connection", (socket) => {
  socket.on("join", (data, ack) => {
    socket.join(data.room);
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("send", (data, ack) => {
    const room = data.room;
    const seq = (seqs.get(room) || 0) + 1;
    seqs.set(room, seq);
    ids += 1;
    const message = {
      id: ids.toString(16).padStart(28, "0"),
      room_id: room,
      seq,
      author_id: socket.data.userId,
      text: data.text,
      client_msg_id: data.client_msg_id || "",
      created_at: new Date().toISOString(),
      edited_at: null,
      deleted: false,
    };
    chat.to(room).emit("message:new", message);
    if (typeof ack === "function") ack({ ok: true, data: { message } });
  });
});

httpServer.listen({ port, host, backlog: 4096 }, () => {
  console.error(`node socket.io baseline on http://${host}:${port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
