// Switchboard's JavaScript client (browser and Node), over socket.io-client 4.x.
//
// Same model as the Python SDK (docs/clients.md): observable states (connecting,
// connected, reconnecting, error, closed), reconnection done here with exponential backoff
// and full jitter, a token provider called before every attempt, rooms rejoined with
// `since_seq` after a reconnect, messages delivered gap-free and exactly once per
// (room_id, seq), and commands issued while reconnecting held in a bounded queue.
//
// socket.io-client's `Manager` is injected (`options.io`, default: the global `io` of the
// browser bundle), so Node can use the npm package.

export const States = Object.freeze({
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  ERROR: "error",
  CLOSED: "closed",
});

const ALLOWED = {
  closed: ["connecting"],
  connecting: ["connected", "error", "closed"],
  connected: ["reconnecting", "closed"],
  reconnecting: ["connected", "error", "closed"],
  error: ["connecting", "closed"],
};

const CATEGORY = {
  auth_required: "auth",
  auth_invalid: "auth",
  auth_expired: "auth",
  unauthenticated: "auth",
  validation_failed: "validation",
  payload_too_large: "validation",
  unknown_event: "validation",
  forbidden: "forbidden",
  not_found: "not_found",
  conflict: "conflict",
  rate_limited: "rate_limited",
  too_many_connections: "rate_limited",
  disconnected: "network",
  not_connected: "network",
  ack_timeout: "network",
  queue_full: "network",
  queue_timeout: "network",
  connect_failed: "network",
  closed: "network",
};

/** An error with the wire `code`, its `category`, the server's `correlationId`, `details`. */
export class SwitchboardError extends Error {
  constructor(code, message, { correlationId = null, details = {} } = {}) {
    super(`${code}: ${message}`);
    this.name = "SwitchboardError";
    this.code = code;
    this.category = CATEGORY[code] ?? "server";
    this.correlationId = correlationId;
    this.details = details;
  }
}

function networkError(code, message) {
  return new SwitchboardError(code, message);
}

/** The `data` of a success ack; a failure ack throws its SwitchboardError. */
export function ackData(envelope) {
  if (envelope && envelope.ok === true) return envelope.data ?? {};
  if (envelope && envelope.ok === false && envelope.error) {
    const e = envelope.error;
    throw new SwitchboardError(String(e.code ?? "internal"), String(e.message ?? ""), {
      correlationId: e.correlation_id ?? null,
      details: e.details ?? {},
    });
  }
  throw new SwitchboardError("bad_response", "unexpected answer from the server");
}

/** Exponential backoff with full jitter: delay n (from 0) is uniform(0, min(ceiling, base*2^n)). */
export class Backoff {
  constructor({ baseMs = 500, ceilingMs = 15000, maxAttempts = 20 } = {}) {
    if (!(baseMs > 0) || !(ceilingMs >= baseMs) || !(maxAttempts >= 1)) {
      throw new RangeError("need baseMs > 0, ceilingMs >= baseMs, maxAttempts >= 1");
    }
    Object.assign(this, { baseMs, ceilingMs, maxAttempts });
  }
  cap(attempt) {
    return Math.min(this.ceilingMs, this.baseMs * 2 ** Math.min(Math.max(attempt, 0), 60));
  }
  delay(attempt, random = Math.random) {
    return Math.min(Math.max(random(), 0), 1) * this.cap(attempt);
  }
  exhausted(attemptsMade) {
    return attemptsMade >= this.maxAttempts;
  }
}

/** One room's bookkeeping: the last seq delivered, and live messages held back meanwhile. */
export class RoomStream {
  constructor(roomId, lastSeq = null) {
    this.roomId = roomId;
    this.lastSeq = lastSeq;
    this.syncing = false;
    this.held = new Map();
  }
  offer(m) {
    if (this.lastSeq !== null && m.seq <= this.lastSeq) return { deliver: [], fetchAfter: null };
    if (this.syncing || this.lastSeq === null) {
      if (!this.held.has(m.seq)) this.held.set(m.seq, m);
      return { deliver: [], fetchAfter: null };
    }
    if (m.seq === this.lastSeq + 1) {
      this.lastSeq = m.seq;
      return { deliver: [m], fetchAfter: null };
    }
    this.held.set(m.seq, m);
    this.syncing = true;
    return { deliver: [], fetchAfter: this.lastSeq };
  }
  beginSync() {
    this.syncing = true;
  }
  setBaseline(seq) {
    this.lastSeq = seq;
    for (const s of [...this.held.keys()]) if (s <= seq) this.held.delete(s);
  }
  fill(messages) {
    const out = [];
    for (const m of [...messages].sort((a, b) => a.seq - b.seq)) {
      if (this.lastSeq !== null && m.seq <= this.lastSeq) continue;
      out.push(m);
      this.lastSeq = m.seq;
      this.held.delete(m.seq);
    }
    return out;
  }
  finish() {
    let last = this.lastSeq ?? Math.min(...this.held.keys(), 1) - 1;
    for (const s of [...this.held.keys()]) if (s <= last) this.held.delete(s);
    const deliver = [];
    while (this.held.has(last + 1)) {
      last += 1;
      deliver.push(this.held.get(last));
      this.held.delete(last);
    }
    this.lastSeq = last;
    if (this.held.size) return { deliver, fetchAfter: last };
    this.syncing = false;
    return { deliver, fetchAfter: null };
  }
  releaseAll() {
    const out = [...this.held.values()].sort((a, b) => a.seq - b.seq);
    this.held.clear();
    if (out.length) this.lastSeq = Math.max(this.lastSeq ?? 0, out[out.length - 1].seq);
    this.syncing = false;
    return out;
  }
}

/** Deliver everything after stream.lastSeq, then the held live messages, in seq order. */
export async function catchUp(stream, fetch, deliver, { first = null, maxRounds = 20 } = {}) {
  let more = true;
  if (first) {
    stream.fill(first.messages).forEach(deliver);
    more = first.has_more;
  }
  for (let rounds = 0; ; ) {
    while (more) {
      const page = await fetch(stream.roomId, stream.lastSeq ?? 0);
      stream.fill(page.messages).forEach(deliver);
      more = page.has_more && page.messages.length > 0;
    }
    const offer = stream.finish();
    offer.deliver.forEach(deliver);
    if (offer.fetchAfter === null) return;
    rounds += 1;
    if (rounds >= maxRounds) {
      stream.releaseAll().forEach(deliver);
      return;
    }
    more = true;
  }
}

const CHAT = "/chat";
const NOTIFICATIONS = "/notifications";
const HISTORY_PAGE = 100;

/** A Switchboard connection for one user: typed-ish commands and gap-free room streams. */
export class SwitchboardClient {
  constructor(url, tokenProvider, options = {}) {
    this.url = url;
    this.tokenProvider = tokenProvider;
    this.options = {
      backoff: new Backoff(),
      connectTimeoutMs: 5000,
      ackTimeoutMs: 10000,
      queueMaxSize: 100,
      queueMaxWaitMs: 30000,
      namespaces: [CHAT, NOTIFICATIONS],
      transports: ["websocket", "polling"],
      recentOnJoin: 50,
      random: Math.random,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      io: globalThis.io,
      ...options,
    };
    this.state = States.CLOSED;
    this.stateHistory = [States.CLOSED];
    this.metrics = {
      timeToConnectMs: null,
      reconnectCount: 0,
      reconnectAttempts: 0,
      lastRttMs: null,
      backoffDelaysMs: [],
    };
    this._handlers = new Map();
    this._streams = new Map();
    this._queue = [];
    this._draining = false;
    this._link = null;
    this._generation = 0;
    this._filling = new Set();
  }

  // -- observing -------------------------------------------------------------------------

  /** Subscribe to "state", "message", "message:updated", "message:deleted", "room:members",
   * "presence:diff", "typing", "notification:new", "notification:unread_count", "rejoined".
   * Returns a function that unsubscribes. */
  on(event, handler) {
    if (!this._handlers.has(event)) this._handlers.set(event, new Set());
    this._handlers.get(event).add(handler);
    return () => this._handlers.get(event).delete(handler);
  }

  _emit(event, value) {
    for (const handler of [...(this._handlers.get(event) ?? [])]) {
      try {
        handler(value);
      } catch (err) {
        console.error(`switchboard: ${event} handler failed`, err);
      }
    }
  }

  _to(target, error = null) {
    if (!ALLOWED[this.state].includes(target)) {
      throw new Error(`switchboard: ${this.state} -> ${target} is not allowed`);
    }
    const change = { previous: this.state, current: target, error };
    this.state = target;
    this.stateHistory.push(target);
    this._emit("state", change);
  }

  lastSeq(roomId) {
    return this._streams.get(roomId)?.lastSeq ?? null;
  }

  // -- connecting ------------------------------------------------------------------------

  /** Connect, retrying with backoff; an auth refusal rejects at once. */
  async connect() {
    if (this.state === States.CONNECTED) return;
    if (this.state !== States.CLOSED && this.state !== States.ERROR) {
      throw networkError("not_connected", `already ${this.state}`);
    }
    this._to(States.CONNECTING);
    const started = Date.now();
    for (let attempts = 0; ; ) {
      try {
        await this._attempt();
        break;
      } catch (err) {
        this._dropLink();
        if (this.state !== States.CONNECTING) throw networkError("closed", "the client was closed");
        attempts += 1;
        if (err.category === "auth" || this.options.backoff.exhausted(attempts)) {
          this._giveUp(err);
          throw err;
        }
        await this._backoff(attempts - 1);
        if (this.state !== States.CONNECTING) throw networkError("closed", "the client was closed");
      }
    }
    this.metrics.timeToConnectMs = Date.now() - started;
    this._to(States.CONNECTED);
    this._drain();
  }

  /** Disconnect for good; waiting commands reject with `closed`. */
  async close() {
    if (this.state === States.CLOSED) return;
    this._to(States.CLOSED);
    for (const item of this._queue.splice(0)) item.fail(networkError("closed", "the client was closed"));
    this._dropLink();
  }

  /** Simulate a network drop (for demos and tests): the client reconnects by itself. */
  dropConnection() {
    const link = this._link;
    if (link) link.manager.engine?.close();
  }

  async _attempt() {
    let token;
    try {
      token = await this.tokenProvider();
    } catch (err) {
      if (err instanceof SwitchboardError) throw err;
      throw networkError("token_unavailable", `the token provider failed: ${err}`);
    }
    const generation = ++this._generation;
    const link = await this._open(token, generation);
    this._link = link;
    await this._resync();
    if (!link.live) throw networkError("disconnected", "the connection was lost");
  }

  _open(token, generation) {
    const { io, namespaces, transports, connectTimeoutMs } = this.options;
    const Manager = io.Manager;
    const manager = new Manager(this.url, {
      reconnection: false,
      autoConnect: false,
      timeout: connectTimeoutMs,
      transports,
    });
    const link = { manager, sockets: {}, live: false, pending: new Set(), generation };
    return new Promise((resolve, reject) => {
      let waiting = namespaces.length;
      let settled = false;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        for (const s of Object.values(link.sockets)) s.disconnect();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(networkError("connect_failed", `no connection within ${connectTimeoutMs} ms`)),
        connectTimeoutMs * 2,
      );
      for (const ns of namespaces) {
        const socket = manager.socket(ns, { auth: { token } });
        link.sockets[ns] = socket;
        socket.on("connect", () => {
          waiting -= 1;
          if (waiting === 0 && !settled) {
            settled = true;
            clearTimeout(timer);
            link.live = true;
            resolve(link);
          }
        });
        socket.on("connect_error", (err) => {
          const data = err && err.data;
          fail(
            data && typeof data.code === "string"
              ? new SwitchboardError(data.code, String(data.message ?? err.message))
              : networkError("connect_failed", `could not connect: ${err && err.message}`),
          );
        });
        socket.on("disconnect", (reason) => this._onLost(link, `${ns}: ${reason}`));
        socket.onAny((event, payload) => {
          if (link.generation === this._generation) this._onEvent(ns, event, payload);
        });
        socket.connect();
      }
    });
  }

  _onLost(link, reason) {
    if (!link.live) return;
    link.live = false;
    for (const entry of link.pending) entry.reject(networkError("disconnected", reason));
    link.pending.clear();
    for (const s of Object.values(link.sockets)) s.disconnect();
    if (link !== this._link || this.state !== States.CONNECTED) return;
    this._link = null;
    for (const stream of this._streams.values()) stream.beginSync();
    this._to(States.RECONNECTING, networkError("disconnected", `connection lost (${reason})`));
    this._reconnect();
  }

  async _reconnect() {
    const started = Date.now();
    for (let attempts = 0; ; ) {
      await this._backoff(attempts);
      if (this.state !== States.RECONNECTING) return;
      attempts += 1;
      this.metrics.reconnectAttempts += 1;
      try {
        await this._attempt();
      } catch (err) {
        this._dropLink();
        if (this.state !== States.RECONNECTING) return;
        if (err.category === "auth" || this.options.backoff.exhausted(attempts)) {
          this._giveUp(err);
          return;
        }
        continue;
      }
      if (this.state !== States.RECONNECTING) return;
      this.metrics.reconnectCount += 1;
      this.metrics.timeToConnectMs = Date.now() - started;
      this._to(States.CONNECTED);
      this._drain();
      return;
    }
  }

  async _backoff(attempt) {
    const delay = this.options.backoff.delay(attempt, this.options.random);
    this.metrics.backoffDelaysMs.push(delay);
    await this.options.sleep(delay);
  }

  _giveUp(err) {
    this._to(States.ERROR, err);
    const reason = err.category === "auth" ? err : networkError("not_connected", `gave up: ${err.message}`);
    for (const item of this._queue.splice(0)) item.fail(reason);
  }

  _dropLink() {
    const link = this._link;
    this._link = null;
    if (!link) return;
    link.live = false;
    for (const entry of link.pending) entry.reject(networkError("disconnected", "closed"));
    link.pending.clear();
    for (const s of Object.values(link.sockets)) s.disconnect();
  }

  async _resync() {
    for (const stream of [...this._streams.values()]) {
      if (stream.lastSeq === null) continue;
      stream.beginSync();
      let joined;
      try {
        joined = ackData(
          await this._call(CHAT, "room:join", { room_id: stream.roomId, since_seq: stream.lastSeq }),
        );
        await catchUp(stream, (r, a) => this._fetchDirect(r, a), (m) => this._emit("message", m), {
          first: { messages: joined.missed, has_more: joined.has_more },
        });
      } catch (err) {
        if (err.category === "network") throw err;
        stream.releaseAll().forEach((m) => this._emit("message", m));
        this._streams.delete(stream.roomId);
        continue;
      }
      this._emit("rejoined", { ...joined, last_seq: stream.lastSeq });
    }
    if (this.options.namespaces.includes(NOTIFICATIONS)) {
      const data = ackData(await this._call(NOTIFICATIONS, "notification:unread_count", {}));
      this._emit("notification:unread_count", data.unread_count);
    }
  }

  // -- sending ---------------------------------------------------------------------------

  _call(ns, event, payload) {
    const link = this._link;
    if (!link || !link.live) return Promise.reject(networkError("disconnected", "not connected"));
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const entry = { reject };
      const timer = setTimeout(() => {
        link.pending.delete(entry);
        reject(networkError("ack_timeout", `no answer to ${event} within ${this.options.ackTimeoutMs} ms`));
      }, this.options.ackTimeoutMs);
      entry.reject = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      link.pending.add(entry);
      link.sockets[ns].emit(event, payload, (ack) => {
        clearTimeout(timer);
        link.pending.delete(entry);
        this.metrics.lastRttMs = Date.now() - started;
        resolve(ack);
      });
    });
  }

  /** Send a command and resolve with its ack data; waits in the queue while reconnecting. */
  async request(ns, event, payload, { retrySafe = true } = {}) {
    if (this.state === States.CLOSED || this.state === States.ERROR) {
      throw networkError("not_connected", `not connected (${this.state}); call connect()`);
    }
    if (this.state === States.CONNECTED && this._queue.length === 0 && !this._draining) {
      try {
        return ackData(await this._call(ns, event, payload));
      } catch (err) {
        if (err.code !== "disconnected" || !retrySafe) throw err;
      }
    }
    if (this._queue.length >= this.options.queueMaxSize) {
      throw networkError("queue_full", `${this.options.queueMaxSize} commands are already waiting`);
    }
    const raw = await new Promise((resolve, reject) => {
      const item = { ns, event, payload, retrySafe, sending: false, resolve, fail: reject };
      item.timer = setTimeout(() => {
        if (item.sending) return;
        this._queue.splice(this._queue.indexOf(item), 1);
        reject(networkError("queue_timeout", `not connected within ${this.options.queueMaxWaitMs} ms`));
      }, this.options.queueMaxWaitMs);
      this._queue.push(item);
      this._drain();
    });
    return ackData(raw);
  }

  async _drain() {
    if (this._draining || this.state !== States.CONNECTED) return;
    this._draining = true;
    try {
      while (this.state === States.CONNECTED && this._queue.length) {
        const item = this._queue[0];
        item.sending = true;
        try {
          const raw = await this._call(item.ns, item.event, item.payload);
          this._queue.shift();
          clearTimeout(item.timer);
          item.resolve(raw);
        } catch (err) {
          item.sending = false;
          if (err.code === "disconnected" && item.retrySafe) return;
          this._queue.shift();
          clearTimeout(item.timer);
          item.fail(err);
        }
      }
    } finally {
      this._draining = false;
    }
  }

  async _fetchDirect(roomId, afterSeq) {
    return ackData(
      await this._call(CHAT, "message:history", { room_id: roomId, after_seq: afterSeq, limit: HISTORY_PAGE }),
    );
  }

  // -- incoming --------------------------------------------------------------------------

  _onEvent(ns, event, payload) {
    if (ns === CHAT && event === "message:new") {
      this._onNewMessage(payload);
      return;
    }
    if (ns === NOTIFICATIONS && event === "notification:unread_count") {
      this._emit(event, payload?.unread_count ?? 0);
      return;
    }
    this._emit(event, payload);
  }

  _onNewMessage(m) {
    if (!m || typeof m.room_id !== "string" || !Number.isInteger(m.seq)) return;
    let stream = this._streams.get(m.room_id);
    if (!stream) {
      stream = new RoomStream(m.room_id, m.seq - 1);
      this._streams.set(m.room_id, stream);
    }
    const offer = stream.offer(m);
    offer.deliver.forEach((d) => this._emit("message", d));
    if (offer.fetchAfter !== null && !this._filling.has(m.room_id)) this._fillGap(stream);
  }

  async _fillGap(stream) {
    this._filling.add(stream.roomId);
    try {
      await catchUp(stream, (r, a) => this._fetchDirect(r, a), (m) => this._emit("message", m));
    } catch (err) {
      if (err.category !== "network") stream.releaseAll().forEach((m) => this._emit("message", m));
    } finally {
      this._filling.delete(stream.roomId);
    }
  }

  // -- /chat commands --------------------------------------------------------------------

  async createRoom(name, { visibility = "public", members = [] } = {}) {
    const payload = { name, visibility };
    if (members.length) payload.members = members;
    const data = await this.request(CHAT, "room:create", payload, { retrySafe: false });
    if (!this._streams.has(data.room.id)) this._streams.set(data.room.id, new RoomStream(data.room.id, 0));
    return data.room;
  }

  async listRooms() {
    return (await this.request(CHAT, "room:list", {})).rooms;
  }

  /** Join and track a room. Without sinceSeq, `recent` holds the last page of history and
   * "message" continues after it; with sinceSeq, every later message goes to "message". */
  async joinRoom(roomId, { sinceSeq = null } = {}) {
    let stream = this._streams.get(roomId);
    const created = !stream;
    if (!stream) {
      stream = new RoomStream(roomId);
      this._streams.set(roomId, stream);
    } else if (stream.lastSeq !== null) {
      sinceSeq = sinceSeq === null ? stream.lastSeq : Math.max(sinceSeq, stream.lastSeq);
    }
    stream.beginSync();
    const deliver = (m) => this._emit("message", m);
    const fetch = (r, a) => this.history(r, { afterSeq: a, limit: HISTORY_PAGE });
    try {
      if (sinceSeq !== null) {
        stream.setBaseline(sinceSeq);
        const joined = await this.request(CHAT, "room:join", { room_id: roomId, since_seq: sinceSeq });
        await catchUp(stream, fetch, deliver, { first: { messages: joined.missed, has_more: joined.has_more } });
        return { ...joined, recent: [], last_seq: stream.lastSeq };
      }
      const joined = await this.request(CHAT, "room:join", { room_id: roomId });
      const recent = await this.history(roomId, { limit: this.options.recentOnJoin });
      const last = recent.messages.length ? recent.messages[recent.messages.length - 1].seq : 0;
      stream.setBaseline(last);
      await catchUp(stream, fetch, deliver, { first: { messages: [], has_more: false } });
      return { ...joined, recent: recent.messages, last_seq: stream.lastSeq };
    } catch (err) {
      if (created && stream.lastSeq === null) this._streams.delete(roomId);
      throw err;
    }
  }

  async leaveRoom(roomId) {
    await this.request(CHAT, "room:leave", { room_id: roomId });
    this._streams.delete(roomId);
  }

  invite(roomId, userId) {
    return this.request(CHAT, "room:invite", { room_id: roomId, user_id: userId });
  }

  /** message:send with a client_msg_id made once per send, so a resend never duplicates. */
  async send(roomId, text, { clientMsgId = null } = {}) {
    const id = clientMsgId ?? (globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`);
    return (await this.request(CHAT, "message:send", { room_id: roomId, text, client_msg_id: id })).message;
  }

  async edit(roomId, messageId, text) {
    return (await this.request(CHAT, "message:edit", { room_id: roomId, message_id: messageId, text })).message;
  }

  delete(roomId, messageId) {
    return this.request(CHAT, "message:delete", { room_id: roomId, message_id: messageId });
  }

  history(roomId, { beforeSeq = null, afterSeq = null, limit = null } = {}) {
    const payload = { room_id: roomId };
    if (beforeSeq !== null) payload.before_seq = beforeSeq;
    if (afterSeq !== null) payload.after_seq = afterSeq;
    if (limit !== null) payload.limit = limit;
    return this.request(CHAT, "message:history", payload);
  }

  /** typing is ephemeral: dropped (not queued) while not connected. */
  async setTyping(roomId, typing = true) {
    if (this.state !== States.CONNECTED) return;
    await this.request(CHAT, "typing", { room_id: roomId, typing });
  }

  async getPresence(userIds) {
    return (await this.request(CHAT, "presence:get", { user_ids: userIds })).presence;
  }

  // -- /notifications commands -----------------------------------------------------------

  listNotifications({ unreadOnly = false, before = null, limit = null } = {}) {
    const payload = { unread_only: unreadOnly };
    if (before !== null) payload.before = before;
    if (limit !== null) payload.limit = limit;
    return this.request(NOTIFICATIONS, "notification:list", payload);
  }

  async markRead({ ids = [], all = false } = {}) {
    const payload = all ? { all: true } : { ids };
    return (await this.request(NOTIFICATIONS, "notification:mark_read", payload)).unread_count;
  }

  async unreadCount() {
    return (await this.request(NOTIFICATIONS, "notification:unread_count", {})).unread_count;
  }
}
