// Drives Switchboard with the official socket.io-client 4.x and prints one JSON report.
// Usage: node chat_client.mjs <base-url> <alice-token> <bob-token>
import { io } from "socket.io-client";

const [base, aliceToken, bobToken] = process.argv.slice(2);
const report = { errors: [] };
const timer = setTimeout(() => {
  report.errors.push("timed out");
  console.log(JSON.stringify(report));
  process.exit(1);
}, 15000);

function connect(token, transports) {
  return new Promise((resolve, reject) => {
    const socket = io(`${base}/chat`, { auth: { token }, transports, reconnection: false });
    socket.on("connect", () => resolve(socket));
    socket.on("connect_error", (err) => reject(err));
  });
}

try {
  const refused = await connect("not-a-token", ["websocket"]).then(
    () => null,
    (err) => ({ message: err.message, data: err.data }),
  );
  report.refused = refused;

  const alice = await connect(aliceToken, ["websocket"]);
  const bob = await connect(bobToken, ["polling", "websocket"]);
  const bobEvents = [];
  bob.onAny((event, payload) => bobEvents.push({ event, payload }));

  const created = await alice.timeout(5000).emitWithAck("room:create", { name: "interop" });
  report.created = created;
  const roomId = created.data.room.id;
  report.joined = await bob.timeout(5000).emitWithAck("room:join", { room_id: roomId });
  report.sent = await alice
    .timeout(5000)
    .emitWithAck("message:send", { room_id: roomId, text: "hello from node", client_msg_id: "n-1" });
  report.invalid = await alice.timeout(5000).emitWithAck("message:send", "not an object");
  report.unknown = await alice.timeout(5000).emitWithAck("no:such:event", {});
  report.noPayload = await alice.timeout(5000).emitWithAck("room:list");
  await new Promise((r) => setTimeout(r, 300));
  report.bobEvents = bobEvents;
  alice.disconnect();
  bob.disconnect();
} catch (err) {
  report.errors.push(String(err && err.stack ? err.stack : err));
}
clearTimeout(timer);
console.log(JSON.stringify(report));
process.exit(report.errors.length ? 1 : 0);
