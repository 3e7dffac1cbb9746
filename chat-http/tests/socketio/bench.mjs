// Socket.IO figures for docs/BENCHMARKS.md, with the real socket.io-client, beside /ws
// measured by the same script in the same run (the `ws` package), so that both share the
// client's language and the machine's load. Not a test; run by hand against a running
// server in open mode (a release build, logs at warn, sends unlimited):
//
//   CHAT_URL=http://127.0.0.1:PORT node bench.mjs fanout 10,100,1000 [messages] [transports]
//   CHAT_URL=... SERVER_PID=PID node bench.mjs idle SOCKETS [warmup] [transports]
//
// fanout: one chat, N receivers joined to it (half on the customer's token, half on the
// officer's), one REST sender; latency from the start of each POST to each receiver's
// receipt; every receiver must get every message once, in order. idle: SOCKETS
// connections, each a customer joined to its own chat; the server's VmRSS after a
// warm-up batch and after the rest, per socket. Prints one JSON line per measurement.

import { readFileSync } from "node:fs";
import { io } from "socket.io-client";
import WebSocket from "ws";

const URL_ = process.env.CHAT_URL;
if (!URL_) throw new Error("CHAT_URL is not set");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function rest(method, path, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(URL_ + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const run = `${process.pid}-${Date.now()}`;

/** A receiver on `transport` (`ws`, `socketio-websocket`, `socketio-polling`) joined to
 * `chatId`, calling `onMessage(message)` for each new_message. */
async function receiver(transport, token, chatId, onMessage) {
  if (transport === "ws") {
    const ws = new WebSocket(URL_.replace(/^http/, "ws") + "/ws");
    await new Promise((res, rej) => { ws.once("open", res); ws.once("error", rej); });
    let joined;
    const ready = new Promise((r) => (joined = r));
    ws.on("message", (data) => {
      const f = JSON.parse(data.toString());
      if (f.type === "ready") ws.send(JSON.stringify({ type: "join_chat", chatId }));
      else if (f.type === "joined") joined();
      else if (f.type === "new_message") onMessage(f.message);
    });
    ws.send(JSON.stringify({ type: "auth", token }));
    await ready;
    return () => ws.close();
  }
  const socket = io(URL_, {
    auth: { token },
    transports: [transport === "socketio-polling" ? "polling" : "websocket"],
    reconnection: false,
    forceNew: true,
  });
  await new Promise((res, rej) => { socket.once("connect", res); socket.once("connect_error", rej); });
  socket.on("new_message", (e) => onMessage(e.message));
  const ack = await socket.timeout(20_000).emitWithAck("join_chat", chatId);
  if (!ack.ok) throw new Error(JSON.stringify(ack));
  return () => socket.disconnect();
}

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function fanout(receivers, messages, transport) {
  const officer = `bench-o-${run}-${transport}-${receivers}`;
  await rest("POST", "/api/officers", null, { id: officer });
  const { token: officerToken } = await rest("POST", "/api/officers/login", null, { officerId: officer });
  const login = await rest("POST", "/api/customers/login", null, { customerId: `bench-c-${run}-${transport}-${receivers}` });
  const chatId = login.chat.id;
  await rest("POST", `/api/officers/${officer}/claim/${chatId}`, officerToken);
  const sentAt = new Map();
  const latencies = [];
  const seen = [];
  let duplicates = 0;
  let outOfOrder = 0;
  const closers = [];
  for (let i = 0; i < receivers; i++) {
    const mine = new Set();
    let last = 0;
    seen.push(mine);
    const token = i % 2 === 0 ? login.token : officerToken;
    closers.push(
      await receiver(transport, token, chatId, (m) => {
        if (!m.content.startsWith("fan ")) return;
        const at = sentAt.get(m.seq);
        if (mine.has(m.seq)) duplicates++;
        if (m.seq < last) outOfOrder++;
        last = m.seq;
        mine.add(m.seq);
        if (at !== undefined) latencies.push(performance.now() - at);
      }),
    );
  }
  await sleep(500);
  const seqs = [];
  for (let i = 0; i < messages; i++) {
    const t0 = performance.now();
    const m = await rest("POST", `/api/chats/${chatId}/messages`, login.token, { content: `fan ${i}` });
    sentAt.set(m.seq, t0);
    seqs.push(m.seq);
    await sleep(20);
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && seen.some((s) => s.size < messages)) await sleep(50);
  for (const close of closers) close();
  const delivered = seen.reduce((n, s) => n + s.size, 0);
  latencies.sort((a, b) => a - b);
  return {
    scenario: "fanout",
    transport,
    receivers,
    messages,
    delivered,
    lost: receivers * messages - delivered,
    duplicates,
    outOfOrder,
    p50Ms: +percentile(latencies, 50).toFixed(2),
    p99Ms: +percentile(latencies, 99).toFixed(2),
    maxMs: +latencies[latencies.length - 1].toFixed(2),
  };
}

function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

async function idle(sockets, warmup, transport) {
  const pid = process.env.SERVER_PID;
  if (!pid) throw new Error("SERVER_PID is not set");
  const open = async (n, tag) => {
    const closers = [];
    for (let start = 0; start < n; start += 100) {
      const batch = [];
      for (let i = start; i < Math.min(n, start + 100); i++) {
        batch.push((async () => {
          const login = await rest("POST", "/api/customers/login", null, { customerId: `idle-${run}-${tag}-${i}` });
          return receiver(transport, login.token, login.chat.id, () => {});
        })());
      }
      closers.push(...(await Promise.all(batch)));
    }
    return closers;
  };
  const base = rssKiB(pid);
  const warm = await open(warmup, "warm");
  await sleep(3000);
  const rssWarm = rssKiB(pid);
  const measured = await open(sockets, "measured");
  await sleep(3000);
  const rssAfter = rssKiB(pid);
  for (const close of [...warm, ...measured]) close();
  return {
    scenario: "idle",
    transport,
    sockets,
    rssBaseKiB: base,
    rssWarmKiB: rssWarm,
    rssAfterKiB: rssAfter,
    kibPerSocket: +((rssAfter - rssWarm) / sockets).toFixed(2),
  };
}

const [what, arg, extra, transportsArg] = process.argv.slice(2);
const transports = (transportsArg || "ws,socketio-websocket,socketio-polling").split(",");
if (what === "fanout") {
  for (const n of arg.split(",").map(Number)) {
    for (const t of transports) console.log(JSON.stringify(await fanout(n, Number(extra || 200), t)));
  }
} else if (what === "idle") {
  for (const t of transports) console.log(JSON.stringify(await idle(Number(arg), Number(extra || 200), t)));
} else {
  console.error("usage: bench.mjs fanout 10,100,1000 [messages] [transports] | idle SOCKETS [warmup] [transports]");
  process.exit(2);
}
process.exit(0);
