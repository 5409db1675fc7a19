// The demo chat page (served with --dev only). Everything a user typed is rendered with
// textContent, never innerHTML.
import { SwitchboardClient } from "/static/switchboard.js";

const $ = (id) => document.getElementById(id);
const ui = {
  login: $("login"),
  userId: $("user-id"),
  connect: $("connect"),
  state: $("state"),
  bell: $("bell"),
  unread: $("unread-count"),
  panel: $("notifications-panel"),
  notifications: $("notifications"),
  markAllRead: $("mark-all-read"),
  rooms: $("rooms"),
  createForm: $("create-room-form"),
  newRoomName: $("new-room-name"),
  createRoom: $("create-room"),
  roomTitle: $("room-title"),
  messages: $("messages"),
  typing: $("typing"),
  composer: $("composer"),
  text: $("composer-text"),
  send: $("send"),
  online: $("online"),
  status: $("status"),
};

const app = {
  client: null,
  me: null,
  rooms: new Map(), // room id -> room resource
  joined: new Map(), // room id -> {messages: Map(seq -> message), online: Set(user id)}
  current: null,
  typers: new Map(), // user id -> timer
  typingSentAt: 0,
  typingTimer: null,
};
window.switchboardDemo = app; // for tests and curious developers

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function status(text) {
  ui.status.textContent = text;
}

function fail(err) {
  console.error(err);
  status(`${err.code ?? "error"}: ${err.message ?? err}`);
}

async function fetchToken(userId) {
  const response = await fetch(`/dev/token?user_id=${encodeURIComponent(userId)}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? `token request failed (${response.status})`);
  return body.token;
}

// -- connecting ------------------------------------------------------------------------

ui.login.addEventListener("submit", async (event) => {
  event.preventDefault();
  const userId = ui.userId.value.trim();
  if (!userId) return;
  if (app.client) await app.client.close();
  app.me = userId;
  app.rooms.clear();
  app.joined.clear();
  app.current = null;
  const client = new SwitchboardClient(window.location.origin, () => fetchToken(userId));
  app.client = client;
  client.on("state", ({ current, error }) => {
    ui.state.textContent = current;
    ui.state.dataset.state = current;
    const ready = current === "connected";
    for (const control of [ui.newRoomName, ui.createRoom, ui.bell]) control.disabled = !ready;
    ui.text.disabled = ui.send.disabled = !(ready && app.current);
    if (error) status(`${current}: ${error.message}`);
    else if (ready) status(`connected as ${userId}`);
  });
  client.on("message", onMessage);
  client.on("message:updated", onMessage);
  client.on("message:deleted", ({ room_id, seq }) => {
    const message = app.joined.get(room_id)?.messages.get(seq);
    if (message) onMessage({ ...message, deleted: true, text: "" });
  });
  client.on("presence:diff", ({ room_id, joins, leaves }) => {
    const room = app.joined.get(room_id);
    if (!room) return;
    joins.forEach((u) => room.online.add(u));
    leaves.forEach((u) => room.online.delete(u));
    if (room_id === app.current) renderOnline();
  });
  client.on("room:members", async ({ room_id, joined, left }) => {
    const room = app.joined.get(room_id);
    if (!room) return;
    left.forEach((u) => room.online.delete(u));
    if (joined.length) {
      const presence = await client.getPresence(joined).catch(() => []);
      presence.filter((p) => p.online).forEach((p) => room.online.add(p.user_id));
    }
    if (room_id === app.current) renderOnline();
    refreshRooms();
  });
  client.on("rejoined", (joined) => {
    const room = app.joined.get(joined.room.id);
    if (room) room.online = new Set(joined.online.map((p) => p.user_id));
    if (joined.room.id === app.current) renderOnline();
  });
  client.on("typing", onTyping);
  client.on("notification:unread_count", renderUnread);
  client.on("notification:new", (notification) => {
    if (!ui.panel.hidden) ui.notifications.prepend(notificationItem(notification));
  });
  try {
    await client.connect();
    await refreshRooms();
  } catch (err) {
    fail(err);
  }
});

// -- rooms -----------------------------------------------------------------------------

async function refreshRooms() {
  const rooms = await app.client.listRooms();
  app.rooms = new Map(rooms.map((r) => [r.id, r]));
  ui.rooms.replaceChildren(
    ...rooms.map((room) => {
      const item = el("li");
      item.dataset.roomId = room.id;
      item.classList.toggle("active", room.id === app.current);
      const label = el("span");
      label.append(el("span", "name", room.name), " ", el("span", "visibility", `${room.member_count} members`));
      const button = el("button", "join", app.joined.has(room.id) ? "Open" : "Join");
      button.type = "button";
      button.addEventListener("click", () => openRoom(room.id).catch(fail));
      item.append(label, button);
      return item;
    }),
  );
}

ui.createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = ui.newRoomName.value.trim();
  if (!name) return;
  try {
    const room = await app.client.createRoom(name);
    ui.newRoomName.value = "";
    await openRoom(room.id);
  } catch (err) {
    fail(err);
  }
});

async function openRoom(roomId) {
  if (!app.joined.has(roomId)) {
    const state = { messages: new Map(), online: new Set() };
    app.joined.set(roomId, state);
    try {
      const joined = await app.client.joinRoom(roomId);
      joined.recent.forEach((m) => state.messages.set(m.seq, m));
      state.online = new Set(joined.online.map((p) => p.user_id));
      app.rooms.set(roomId, joined.room);
    } catch (err) {
      app.joined.delete(roomId);
      throw err;
    }
  }
  app.current = roomId;
  ui.roomTitle.textContent = `# ${app.rooms.get(roomId)?.name ?? roomId}`;
  ui.text.disabled = ui.send.disabled = app.client.state !== "connected";
  renderMessages();
  renderOnline();
  renderTyping();
  await refreshRooms();
  ui.text.focus();
}

// -- messages --------------------------------------------------------------------------

function onMessage(message) {
  const room = app.joined.get(message.room_id);
  if (!room) return;
  room.messages.set(message.seq, message);
  if (message.room_id === app.current) {
    const existing = ui.messages.querySelector(`li[data-seq="${Number(message.seq)}"]`);
    const item = messageItem(message);
    if (existing) existing.replaceWith(item);
    else ui.messages.append(item);
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
  clearTyper(message.author_id);
}

function messageItem(message) {
  const item = el("li", "message");
  item.dataset.seq = String(message.seq);
  item.classList.toggle("mine", message.author_id === app.me);
  item.classList.toggle("deleted", Boolean(message.deleted));
  item.append(
    el("span", "seq", `#${message.seq}`),
    el("span", "author", message.author_id),
    el("span", "text", message.deleted ? "(deleted)" : message.text),
  );
  return item;
}

function renderMessages() {
  const room = app.joined.get(app.current);
  const ordered = [...(room?.messages.values() ?? [])].sort((a, b) => a.seq - b.seq);
  ui.messages.replaceChildren(...ordered.map(messageItem));
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

ui.composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = ui.text.value;
  if (!text.trim() || !app.current) return;
  ui.text.value = "";
  try {
    clearTimeout(app.typingTimer);
    app.typingSentAt = 0;
    app.client.setTyping(app.current, false).catch(() => {});
    await app.client.send(app.current, text);
  } catch (err) {
    ui.text.value = text;
    fail(err);
  }
});

// -- typing ----------------------------------------------------------------------------

ui.text.addEventListener("input", () => {
  if (!app.current || !ui.text.value) return;
  const now = Date.now();
  if (now - app.typingSentAt > 2000) {
    app.typingSentAt = now;
    app.client.setTyping(app.current, true).catch(() => {});
  }
  clearTimeout(app.typingTimer);
  const room = app.current;
  app.typingTimer = setTimeout(() => {
    app.typingSentAt = 0;
    app.client.setTyping(room, false).catch(() => {});
  }, 3000);
});

function onTyping({ room_id, user_id, typing }) {
  if (room_id !== app.current) return;
  clearTimeout(app.typers.get(user_id));
  if (typing) app.typers.set(user_id, setTimeout(() => clearTyper(user_id), 6000));
  else app.typers.delete(user_id);
  renderTyping();
}

function clearTyper(userId) {
  if (!app.typers.has(userId)) return;
  clearTimeout(app.typers.get(userId));
  app.typers.delete(userId);
  renderTyping();
}

function renderTyping() {
  const names = [...app.typers.keys()];
  ui.typing.textContent = names.length
    ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`
    : "";
}

// -- presence --------------------------------------------------------------------------

function renderOnline() {
  const room = app.joined.get(app.current);
  const users = [...(room?.online ?? [])].sort();
  ui.online.replaceChildren(
    ...users.map((u) => {
      const item = el("li", null, u === app.me ? `${u} (you)` : u);
      item.dataset.userId = u;
      return item;
    }),
  );
}

// -- notifications ---------------------------------------------------------------------

function renderUnread(count) {
  ui.unread.textContent = String(count);
  ui.unread.classList.toggle("unread", count > 0);
}

function notificationItem(notification) {
  const item = el("li", notification.read_at ? "read" : "unread");
  item.dataset.notificationId = notification.id;
  item.append(el("span", "title", notification.title), el("span", "body", notification.body));
  return item;
}

ui.bell.addEventListener("click", async () => {
  ui.panel.hidden = !ui.panel.hidden;
  if (ui.panel.hidden) return;
  try {
    const page = await app.client.listNotifications({ limit: 50 });
    ui.notifications.replaceChildren(...page.notifications.map(notificationItem));
    if (!page.notifications.length) ui.notifications.append(el("li", null, "Nothing yet."));
    renderUnread(page.unread_count);
  } catch (err) {
    fail(err);
  }
});

ui.markAllRead.addEventListener("click", async () => {
  try {
    renderUnread(await app.client.markRead({ all: true }));
    ui.notifications.querySelectorAll("li.unread").forEach((li) => li.classList.replace("unread", "read"));
  } catch (err) {
    fail(err);
  }
});

const preset = new URLSearchParams(window.location.search).get("user");
if (preset) {
  ui.userId.value = preset;
  ui.login.requestSubmit();
}
