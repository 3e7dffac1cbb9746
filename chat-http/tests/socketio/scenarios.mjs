// chat-http's Socket.IO transport driven by the real socket.io-client (and the `ws`
// package for /ws), against a real server the Rust tests started: tests/api/socketio.rs
// (SQLite) and tests/postgres/socketio.rs (two nodes). Run as
//   node scenarios.mjs SCENARIO
// with CHAT_URL (the server; the officers' node), CHAT_URL_B (the customers' node; the
// same server by default), ALICE and BOB (two officers' tokens) and TRANSPORTS
// (`polling`, `websocket` or `polling,websocket`: socket.io-client's order, polling
// first and then the upgrade). Each scenario asserts, prints one JSON line of what it
// saw for the Rust side to check again, and exits non-zero on any failure.

import assert from "node:assert/strict";
import { io } from "socket.io-client";
import WebSocket from "ws";

const A = need("CHAT_URL");
const B = process.env.CHAT_URL_B || A;
const TRANSPORTS = (process.env.TRANSPORTS || "polling,websocket").split(",");
const PATIENCE_MS = 10_000;

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A REST call: `{ status, body }`. */
async function rest(base, method, path, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function customer(base, id) {
  const login = await rest(base, "POST", "/api/customers/login", null, { customerId: id });
  assert.equal(login.status, 200, JSON.stringify(login.body));
  return { token: login.body.token, chat: login.body.chat };
}

async function say(base, token, chatId, content) {
  const sent = await rest(base, "POST", `/api/chats/${chatId}/messages`, token, { content });
  assert.equal(sent.status, 201, JSON.stringify(sent.body));
  return sent.body;
}

async function claim(base, token, officer, chatId) {
  const claimed = await rest(base, "POST", `/api/officers/${officer}/claim/${chatId}`, token);
  assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
  return claimed.body;
}

/** A socket.io-client socket that keeps every event it receives, to be waited for. */
class Client {
  constructor(base, token, options = {}) {
    this.events = [];
    this.waiters = new Set();
    this.socket = io(base, {
      auth: token === undefined ? undefined : { token },
      transports: TRANSPORTS,
      reconnection: false,
      forceNew: true,
      ...options,
    });
    this.socket.onAny((name, payload) => {
      this.events.push({ name, payload, taken: false });
      for (const wake of this.waiters) wake();
    });
    this.disconnected = new Promise((resolve) => this.socket.on("disconnect", resolve));
  }

  static async open(base, token, options) {
    const client = new Client(base, token, options);
    await within(
      PATIENCE_MS,
      new Promise((resolve, reject) => {
        client.socket.once("connect", resolve);
        client.socket.once("connect_error", reject);
      }),
      "connect",
    );
    return client;
  }

  /** Emits with an acknowledgement, and returns it. */
  ask(event, ...args) {
    return this.socket.timeout(PATIENCE_MS).emitWithAck(event, ...args);
  }

  async askOk(event, ...args) {
    assert.deepEqual(await this.ask(event, ...args), { ok: true }, `${event} refused`);
  }

  /** The first event `name` not taken yet that `matches` (waiting for it). */
  next(name, matches = () => true) {
    const find = () => {
      const found = this.events.find((e) => !e.taken && e.name === name && matches(e.payload));
      if (found) found.taken = true;
      return found?.payload;
    };
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    let wake;
    const waiting = new Promise((resolve) => {
      wake = () => {
        const payload = find();
        if (payload !== undefined) resolve(payload);
      };
      this.waiters.add(wake);
    });
    return within(PATIENCE_MS, waiting, `${name} event`).finally(() => this.waiters.delete(wake));
  }

  received(name, matches = () => true) {
    return this.events.filter((e) => e.name === name && matches(e.payload)).map((e) => e.payload);
  }

  transport() {
    return this.socket.io.engine?.transport?.name;
  }

  close() {
    this.socket.disconnect();
  }
}

/** A /ws client (the `ws` package), authenticated. */
class WsClient {
  static async open(base, token) {
    const client = new WsClient();
    client.frames = [];
    client.waiters = new Set();
    client.ws = new WebSocket(base.replace(/^http/, "ws") + "/ws");
    client.ws.on("message", (data) => {
      client.frames.push({ frame: JSON.parse(data.toString()), taken: false });
      for (const wake of client.waiters) wake();
    });
    await within(PATIENCE_MS, new Promise((resolve, reject) => {
      client.ws.once("open", resolve);
      client.ws.once("error", reject);
    }), "/ws open");
    client.ws.send(JSON.stringify({ type: "auth", token }));
    await client.next("ready");
    return client;
  }

  next(type, matches = () => true) {
    const find = () => {
      const found = this.frames.find((f) => !f.taken && f.frame.type === type && matches(f.frame));
      if (found) found.taken = true;
      return found?.frame;
    };
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    let wake;
    const waiting = new Promise((resolve) => {
      wake = () => {
        const frame = find();
        if (frame !== undefined) resolve(frame);
      };
      this.waiters.add(wake);
    });
    return within(PATIENCE_MS, waiting, `${type} frame`).finally(() => this.waiters.delete(wake));
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  close() {
    this.ws.close();
  }
}

const unique = (prefix) => `${prefix}-${process.pid}-${Date.now()}`;

const scenarios = {
  /**
   * The original design's Quick Test over Socket.IO: a customer starts a chat and
   * sends; an officer sees it in the queue live, claims it, and both talk live (with
   * typing and a read mark on the way). The officer is on CHAT_URL, the customer on
   * CHAT_URL_B.
   */
  async quick() {
    const alice = await Client.open(A, need("ALICE"));
    await alice.askOk("join_officers");
    const { token, chat } = await customer(B, unique("quick"));
    const cust = await Client.open(B, token);
    // The plain chat id, as the Express clients sent it.
    await cust.askOk("join_chat", chat.id);
    const created = await alice.next("queue_chat_created", (e) => e.chat.id === chat.id);
    assert.equal(created.type, "queue_chat_created");
    assert.equal(created.chat.status, "pending");

    await say(B, token, chat.id, "hello, my card is blocked");
    await claim(A, need("ALICE"), "alice", chat.id);
    const claimed = await alice.next("queue_chat_claimed", (e) => e.chat.id === chat.id);
    assert.equal(claimed.chat.assignedOfficerId, "alice");
    const assigned = await alice.next("chat_assigned", (e) => e.chat.id === chat.id);
    assert.equal(assigned.chat.status, "assigned");

    await alice.askOk("join_chat", { chatId: chat.id, afterSeq: 0 });
    const first = await alice.next("new_message", (e) => e.message.content === "hello, my card is blocked");
    assert.equal(first.message.senderType, "customer");

    await say(A, need("ALICE"), chat.id, "I can help with that");
    const reply = await cust.next("new_message", (e) => e.message.content === "I can help with that");
    assert.equal(reply.message.senderId, "alice");
    await cust.askOk("typing", { chatId: chat.id });
    const typing = await alice.next("typing", (e) => e.chatId === chat.id);
    assert.equal(typing.senderType, "customer");
    await say(B, token, chat.id, "thank you");
    const thanks = await alice.next("new_message", (e) => e.message.content === "thank you");
    await alice.askOk("read", { chatId: chat.id, seq: thanks.message.seq });
    const read = await cust.next("read", (e) => e.readerId === "alice");
    assert.equal(read.seq, thanks.message.seq);

    const result = {
      chat: chat.id,
      transports: { officer: alice.transport(), customer: cust.transport() },
      officerSaw: alice.received("new_message").map((e) => [e.message.seq, e.message.content]),
      customerSaw: cust.received("new_message").map((e) => [e.message.seq, e.message.content]),
    };
    alice.close();
    cust.close();
    return result;
  },

  /**
   * Reconnect with afterSeq: what was sent while away and while rejoining arrives once
   * each, in seq order, with no gap.
   */
  async replay() {
    const { token, chat } = await customer(B, unique("replay"));
    const first = await Client.open(B, token);
    await first.askOk("join_chat", { chatId: chat.id, afterSeq: 0 });
    for (let i = 1; i <= 3; i++) await say(B, token, chat.id, `before ${i}`);
    for (let i = 1; i <= 3; i++) await first.next("new_message", (e) => e.message.content === `before ${i}`);
    const seen = first.received("new_message").map((e) => e.message.seq);
    first.close();
    await first.disconnected;

    for (let i = 1; i <= 5; i++) await say(B, token, chat.id, `away ${i}`);
    const second = await Client.open(A, token);
    // More messages race the join: the replay and the live events meet with no gap and
    // no duplicate.
    const racing = (async () => {
      for (let i = 1; i <= 10; i++) await say(A, token, chat.id, `racing ${i}`);
    })();
    await second.askOk("join_chat", { chatId: chat.id, afterSeq: Math.max(...seen) });
    await racing;
    const stored = await rest(A, "GET", `/api/chats/${chat.id}`, token);
    const lastSeq = stored.body.lastSeq;
    await second.next("new_message", (e) => e.message.seq === lastSeq);
    await sleep(300);
    const after = second.received("new_message").map((e) => e.message.seq);
    const expected = [];
    for (let seq = Math.max(...seen) + 1; seq <= lastSeq; seq++) expected.push(seq);
    assert.deepEqual(after, expected, "a gap or a duplicate after the rejoin");
    second.close();
    return { before: seen, after, lastSeq };
  },

  /**
   * Two officers read a pending chat; the one who loses the claim is dropped from the
   * chat's room (an `error` event naming it) and hears nothing more of it.
   */
  async losing() {
    const { token, chat } = await customer(B, unique("losing"));
    await say(B, token, chat.id, "first");
    const alice = await Client.open(A, need("ALICE"));
    const bob = await Client.open(B, need("BOB"));
    await alice.askOk("join_chat", chat.id);
    await bob.askOk("join_chat", { chatId: chat.id });
    await claim(B, need("BOB"), "bob", chat.id);
    const dropped = await alice.next("error", (e) => e.room === `chat:${chat.id}`);
    assert.equal(dropped.type, "error");
    assert.equal(dropped.code, "forbidden");
    assert.equal(dropped.chatId, chat.id);
    await say(B, token, chat.id, "second");
    await bob.next("new_message", (e) => e.message.content === "second");
    await sleep(500);
    assert.deepEqual(alice.received("new_message", (e) => e.message.content === "second"), []);
    const again = await alice.ask("join_chat", chat.id);
    assert.equal(again.error.code, "forbidden");
    alice.close();
    bob.close();
    return { dropped, rejoin: again };
  },

  /** Refusals: the handshake's token, and each request's contract error in its ack. */
  async refusals() {
    const refusedWith = async (auth) => {
      const client = new Client(A, undefined, { auth });
      const error = await within(
        PATIENCE_MS,
        new Promise((resolve, reject) => {
          client.socket.once("connect_error", resolve);
          client.socket.once("connect", () => reject(new Error("connected without a valid token")));
        }),
        "connect_error",
      );
      client.close();
      return error.message;
    };
    const badToken = await refusedWith({ token: "not-a-token" });
    assert.match(badToken, /^unauthorized/);
    const noToken = await refusedWith(undefined);
    assert.match(noToken, /^unauthorized/);

    const { token, chat } = await customer(B, unique("refusals"));
    const cust = await Client.open(A, token);
    const officers = await cust.ask("join_officers");
    assert.equal(officers.error.code, "forbidden");
    const malformed = await cust.ask("join_chat", "not-a-uuid");
    assert.equal(malformed.error.code, "invalid_parameter");
    const noSuch = await cust.ask("join_chat", { chatId: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" });
    assert.ok(["chat_not_found", "forbidden", "not_found"].includes(noSuch.error.code), JSON.stringify(noSuch));
    const pastEnd = await cust.ask("read", { chatId: chat.id, seq: 999 });
    assert.ok(pastEnd.error, JSON.stringify(pastEnd));
    const unknown = await cust.ask("shout", { chatId: chat.id });
    assert.equal(unknown.error.code, "invalid_frame");
    const wrongShape = await cust.ask("read", "just a string");
    assert.equal(wrongShape.error.code, "invalid_frame");
    await cust.askOk("leave_chat", chat.id);

    // A logout ends the socket's session: an `error` event, then the server disconnects.
    const alice = await Client.open(A, need("ALICE"));
    await alice.askOk("join_officers");
    const out = await rest(A, "POST", "/api/logout", need("ALICE"));
    assert.ok(out.status === 200 || out.status === 204, JSON.stringify(out));
    const ended = await alice.next("error", (e) => e.code === "unauthorized");
    const reason = await within(PATIENCE_MS, alice.disconnected, "disconnect");
    assert.equal(reason, "io server disconnect");
    const afterLogout = await refusedWith({ token: need("ALICE") });
    assert.match(afterLogout, /^unauthorized/);
    cust.close();
    return {
      badToken,
      noToken,
      acks: { officers, malformed, noSuch, pastEnd, unknown, wrongShape },
      ended,
      reason,
    };
  },

  /** The frame budget of /ws: past it, acks say `rate_limited` with `retryAfter`. */
  async budget() {
    const { token, chat } = await customer(A, unique("budget"));
    const cust = await Client.open(A, token);
    let refused;
    let allowed = 0;
    for (let i = 0; i < 400 && !refused; i++) {
      const ack = await cust.ask("leave_chat", chat.id);
      if (ack.error) refused = ack.error;
      else allowed++;
    }
    assert.ok(refused, "no refusal in 400 events");
    assert.equal(refused.code, "rate_limited");
    assert.ok(refused.retryAfter >= 1, JSON.stringify(refused));
    cust.close();
    return { allowed, refused };
  },

  /**
   * Mixed transports: a customer on /ws and an officer on Socket.IO see each other
   * live, and the officer's message reaches both with the same payload.
   */
  async mixed() {
    const alice = await Client.open(A, need("ALICE"));
    await alice.askOk("join_officers");
    const { token, chat } = await customer(B, unique("mixed"));
    const cust = await WsClient.open(B, token);
    cust.send({ type: "join_chat", chatId: chat.id });
    await cust.next("joined");
    await alice.next("queue_chat_created", (e) => e.chat.id === chat.id);
    await say(B, token, chat.id, "hello from /ws");
    await claim(A, need("ALICE"), "alice", chat.id);
    await alice.askOk("join_chat", { chatId: chat.id, afterSeq: 0 });
    await alice.next("new_message", (e) => e.message.content === "hello from /ws");
    await say(A, need("ALICE"), chat.id, "hello from Socket.IO");
    const overWs = await cust.next("new_message", (e) => e.message.content === "hello from Socket.IO");
    const overSio = await alice.next("new_message", (e) => e.message.content === "hello from Socket.IO");
    assert.deepEqual(overSio, overWs, "the two transports carry different payloads");
    cust.send({ type: "typing", chatId: chat.id });
    const typing = await alice.next("typing", (e) => e.chatId === chat.id);
    assert.equal(typing.senderType, "customer");
    alice.close();
    cust.close();
    return { overWs, overSio, transport: alice.transport() };
  },

  /**
   * The room limit of /ws (the server runs with `--limit-ws-rooms 2`): a join past it is
   * refused with `too_many_rooms` in its ack, the socket stays open, and a leave makes
   * room again.
   */
  async rooms() {
    const alice = await Client.open(A, need("ALICE"));
    const chats = [];
    for (let i = 0; i < 3; i++) {
      const { chat } = await customer(A, unique("rooms"));
      chats.push(chat.id);
    }
    await alice.askOk("join_chat", { chatId: chats[0] });
    await alice.askOk("join_chat", chats[1]);
    const refused = await alice.ask("join_chat", { chatId: chats[2] });
    assert.equal(refused.error?.code, "too_many_rooms", JSON.stringify(refused));
    assert.ok(alice.socket.connected, "the socket closed after a refused join");
    await alice.askOk("leave_chat", chats[0]);
    await alice.askOk("join_chat", { chatId: chats[2] });
    alice.close();
    return { refused: refused.error, transport: alice.transport() };
  },

  /**
   * The connection cap per address holds for long-polling sessions (the server runs
   * with `--trusted-proxy 127.0.0.1 --max-connections-per-address CAP`, so the address
   * counted is the one this proxy-like client forwards, and only its sessions count):
   * CAP sessions from one address connect, the next is refused (its handshake a 429
   * `rate_limited` with the contract's body), another address is served meanwhile, and
   * once one session is closed its address may connect again.
   */
  async caps() {
    const cap = Number(need("CAP"));
    const from = (address) => ({ extraHeaders: { "x-forwarded-for": address } });
    const held = [];
    for (let i = 0; i < cap; i++) held.push(await Client.open(A, need("ALICE"), from("192.0.2.7")));
    for (const client of held) assert.equal(client.transport(), "polling");

    const over = new Client(A, need("ALICE"), from("192.0.2.7"));
    const refusal = await within(
      PATIENCE_MS,
      new Promise((resolve, reject) => {
        over.socket.once("connect_error", resolve);
        over.socket.once("connect", () => reject(new Error("connected over the address's cap")));
      }),
      "connect_error",
    );
    over.close();
    const handshake = await fetch(`${A}/socket.io/?EIO=4&transport=polling`, {
      headers: { "x-forwarded-for": "192.0.2.7" },
    });
    const refused = {
      status: handshake.status,
      retryAfter: handshake.headers.get("retry-after"),
      body: await handshake.json(),
    };

    const other = await Client.open(A, need("ALICE"), from("192.0.2.8"));
    await other.askOk("join_officers");

    // One closed: its slot comes back once the server has ended its session.
    const leaving = held.pop();
    leaving.close();
    let again;
    let attempts = 0;
    const deadline = Date.now() + PATIENCE_MS;
    while (!again) {
      attempts++;
      try {
        again = await Client.open(A, need("ALICE"), from("192.0.2.7"));
      } catch (e) {
        assert.ok(Date.now() < deadline, `the closed session's slot never came back: ${e}`);
        await sleep(100);
      }
    }
    await again.askOk("join_officers");
    for (const client of [...held, other, again]) client.close();
    return { held: cap, connectError: refusal.message, refused, attempts };
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario ${name}; one of ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
try {
  const result = await scenarios[name]();
  console.log(JSON.stringify({ scenario: name, ok: true, result }));
  process.exit(0);
} catch (e) {
  console.error(`scenario ${name} failed:`, e);
  process.exit(1);
}
