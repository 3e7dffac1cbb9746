//! Soak: the real binary under many customers and officers chatting, connecting and
//! disconnecting for a bounded time on loopback. Afterwards: no message lost or
//! duplicated (on any socket or in the store), no file descriptor leaked, and memory flat
//! after warm-up.
//!
//! CI runs it for `SOAK_SECS` (default 8 s). The figures in docs/BENCHMARKS.md come from
//! `SOAK_SECS=300 cargo test --release -p chat-http --test api soak -- --nocapture`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use reqwest::Method;

use crate::server::{self, Api};

const ADMIN: &str = "soak-admin-token-0123456789abcdefghij";
const SECRET: &str = "soak-customer-secret-0123456789abcdef";
const OFFICERS: usize = 4;
const CUSTOMERS: usize = 16;
const MESSAGES_PER_VISIT: u64 = 6;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The server under soak: its process (killed on drop) and the clients' view of it.
struct Server {
    process: server::Server,
    api: Api,
    ws: String,
}

impl Server {
    /// A request that must succeed (any 2xx); returns the body.
    async fn ok(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = self
            .api
            .call(method.clone(), path, token, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        assert!(
            (200..300).contains(&status),
            "{method} {path} -> {status}: {answer}"
        );
        answer
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        self.ok(Method::POST, path, token, Some(body)).await
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        self.ok(Method::GET, path, Some(token), None).await
    }

    async fn socket(&self, token: &str) -> Ws {
        let (mut ws, _) = tokio_tungstenite::connect_async(self.ws.as_str())
            .await
            .expect("WebSocket connect");
        send(&mut ws, json!({ "type": "auth", "token": token })).await;
        let ready = next(&mut ws).await;
        assert_eq!(ready["type"], "ready", "{ready}");
        ws
    }

    /// Resident memory of the server, in KiB.
    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The server's open descriptors: (sockets, everything else).
    fn open_fds(&self) -> (usize, usize) {
        let mut sockets = 0;
        let mut other = 0;
        for entry in std::fs::read_dir(format!("/proc/{}/fd", self.process.pid())).unwrap() {
            // A descriptor closed while we list is simply not counted.
            let Ok(target) = std::fs::read_link(entry.unwrap().path()) else {
                continue;
            };
            if target.to_string_lossy().starts_with("socket:") {
                sockets += 1;
            } else {
                other += 1;
            }
        }
        (sockets, other)
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string()))
        .await
        .expect("WebSocket send");
}

/// The next data frame as JSON.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("connection open")
            .expect("frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads `new_message` events until seq `last`, checking they come in order from `from`
/// with no gap and no duplicate; other events are skipped.
async fn expect_messages(ws: &mut Ws, from: u64, last: u64) {
    let mut expected = from;
    while expected <= last {
        let event = next(ws).await;
        if event["type"] != "new_message" {
            continue;
        }
        let seq = event["message"]["seq"].as_u64().unwrap();
        assert_eq!(seq, expected, "a socket saw seq {seq}, expected {expected}");
        expected += 1;
    }
}

fn hmac_hex(customer: &str) -> String {
    chatcore::customer_signature(SECRET.as_bytes(), customer)
}

#[derive(Default)]
struct Tally {
    acknowledged: BTreeMap<String, Vec<Value>>,
}

/// One customer's visits: log in (the chat is created or found), have an officer claim
/// it, connect both sides, talk, disconnect. Returns the acknowledged messages by chat.
async fn customer_loop(
    server: Arc<Server>,
    index: usize,
    officers: Arc<Vec<(String, String)>>,
    stop: Arc<AtomicBool>,
    visits: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::default();
    // The last seq of each chat this task writes to (no one else writes to them).
    let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
    let mut visit = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Every third visit is a returning customer (their chat and history persist).
        let customer = if visit % 3 == 2 {
            format!("soak-{index}-0")
        } else {
            format!("soak-{index}-{visit}")
        };
        let login = server
            .post(
                "/api/customers/login",
                None,
                json!({ "customerId": customer, "signature": hmac_hex(&customer) }),
            )
            .await;
        let token = login["token"].as_str().unwrap().to_string();
        let chat = login["chat"]["id"].as_str().unwrap().to_string();
        let (officer_id, officer_token) = &officers[(index + visit as usize) % officers.len()];
        let owner = if login["chat"]["status"] == "pending" {
            server
                .post(
                    &format!("/api/officers/{officer_id}/claim/{chat}"),
                    Some(officer_token),
                    json!({}),
                )
                .await;
            // The claim's system entry is the chat's next seq, acknowledged with it.
            let before = last_seq.get(&chat).copied().unwrap_or(0);
            let entry = server
                .get(
                    &format!("/api/chats/{chat}/messages?after={before}"),
                    &token,
                )
                .await;
            assert_eq!(entry[0]["event"]["kind"], "claimed", "{entry}");
            assert_eq!(entry.as_array().map(Vec::len), Some(1), "{entry}");
            tally
                .acknowledged
                .entry(chat.clone())
                .or_default()
                .push(entry[0].clone());
            last_seq.insert(chat.clone(), before + 1);
            officer_token.clone()
        } else {
            let owner_id = login["chat"]["assignedOfficerId"].as_str().unwrap();
            officers
                .iter()
                .find(|(id, _)| id == owner_id)
                .map(|(_, t)| t.clone())
                .unwrap()
        };
        let already = last_seq.get(&chat).copied().unwrap_or(0);
        // Nothing after it is stored yet.
        let newer = server
            .get(
                &format!("/api/chats/{chat}/messages?after={already}"),
                &token,
            )
            .await;
        assert_eq!(
            newer,
            json!([]),
            "chat {chat} has no message after {already}"
        );

        let mut customer_ws = server.socket(&token).await;
        let mut officer_ws = server.socket(&owner).await;
        for ws in [&mut customer_ws, &mut officer_ws] {
            send(
                ws,
                json!({ "type": "join_chat", "chatId": chat, "afterSeq": already }),
            )
            .await;
            loop {
                let joined = next(ws).await;
                if joined["type"] == "joined" {
                    break;
                }
            }
        }
        for i in 0..MESSAGES_PER_VISIT {
            let (who, text) = if i % 2 == 0 {
                (&token, format!("question {visit}-{i}"))
            } else {
                (&owner, format!("answer {visit}-{i}"))
            };
            let sent = server
                .post(
                    &format!("/api/chats/{chat}/messages"),
                    Some(who),
                    json!({ "content": text }),
                )
                .await;
            tally
                .acknowledged
                .entry(chat.clone())
                .or_default()
                .push(sent);
        }
        let last = already + MESSAGES_PER_VISIT;
        last_seq.insert(chat.clone(), last);
        expect_messages(&mut customer_ws, already + 1, last).await;
        expect_messages(&mut officer_ws, already + 1, last).await;
        // Half the time a clean close, half the time the TCP connection just goes away.
        if visit.is_multiple_of(2) {
            let _ = customer_ws.close(None).await;
            let _ = officer_ws.close(None).await;
        }
        drop((customer_ws, officer_ws));
        visit += 1;
        visits.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_many_clients_lose_nothing_and_leak_nothing() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    // Time is compressed here: officers answer many chats a second; `server::Server`
    // turns the per-sender message limit (tested in limits.rs) off.
    let process = server::Server::start_with(
        &dir.path().join("soak.db"),
        &dir.path().join("server.log"),
        &["--admin-token", ADMIN, "--customer-secret", SECRET],
    );
    let mut server = Server {
        ws: format!("{}/ws", process.api.base.replacen("http", "ws", 1)),
        // Never `process.api`'s own client: its pooled connections would stay open.
        api: process.api.with_new_client(),
        process,
    };
    let mut officers = Vec::new();
    for i in 0..OFFICERS {
        let id = format!("officer-{i}");
        let password = "soak password";
        server
            .post(
                "/api/officers",
                Some(ADMIN),
                json!({ "id": id, "password": password }),
            )
            .await;
        let login = server
            .post(
                "/api/officers/login",
                None,
                json!({ "officerId": id, "password": password }),
            )
            .await;
        officers.push((id, login["token"].as_str().unwrap().to_string()));
    }
    let officers = Arc::new(officers);
    // A new client: the old one's pooled connection is closed and not counted at rest.
    server.api = server.api.with_new_client();
    let (sockets_at_rest, files_at_rest) = settled_fds(&server, usize::MAX).await;
    let server = Arc::new(server);

    let stop = Arc::new(AtomicBool::new(false));
    let visits = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..CUSTOMERS)
        .map(|i| {
            tokio::spawn(customer_loop(
                server.clone(),
                i,
                officers.clone(),
                stop.clone(),
                visits.clone(),
            ))
        })
        .collect();

    // Memory every half second; the first quarter is warm-up.
    let started = Instant::now();
    let total = Duration::from_secs(secs);
    let mut samples = Vec::new();
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if started.elapsed() > total / 4 {
            samples.push(server.rss_kib());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for task in tasks {
        for (chat, mut sent) in task.await.expect("customer task").acknowledged {
            acknowledged.entry(chat).or_default().append(&mut sent);
        }
    }

    // Every acknowledged message is stored exactly once, and each chat's seqs are dense.
    let reader = ADMIN;
    let mut stored_total = 0;
    for (chat, mut sent) in acknowledged {
        let stored = server.api.all_messages(reader, &chat).await;
        let seqs: Vec<u64> = stored.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=stored.len() as u64).collect::<Vec<_>>(),
            "dense seqs"
        );
        sent.sort_by_key(|m| m["seq"].as_u64());
        assert_eq!(stored, sent, "chat {chat}: stored == acknowledged");
        stored_total += stored.len();
    }

    // Every client is gone (the HTTP pool too): the server holds no socket but its
    // listener, and no more files than its database connections need.
    let mut server = Arc::try_unwrap(server).ok().expect("tasks ended");
    server.api = server.api.with_new_client();
    let (sockets, files) = settled_fds(&server, sockets_at_rest).await;
    let third = samples.len() / 3;
    let early = median(&samples[..third.max(1)]);
    let late = median(&samples[samples.len() - third.max(1)..]);
    let peak = samples.iter().max().copied().unwrap_or_default();
    println!(
        "soak: {secs} s, {} visits, {stored_total} messages stored and checked; \
         sockets at rest {sockets_at_rest}, after {sockets}; other descriptors at rest \
         {files_at_rest}, after {files}; RSS after warm-up: early median {early} KiB, \
         late median {late} KiB, peak {peak} KiB",
        visits.load(Ordering::Relaxed)
    );
    assert!(
        visits.load(Ordering::Relaxed) >= CUSTOMERS as u64,
        "the soak did work"
    );
    assert_eq!(sockets, sockets_at_rest, "sockets leaked");
    // SQLite opens up to 4 reader connections on demand, each with the database file
    // and its WAL (the shared-memory index may add one); nothing else may stay open.
    assert!(
        files <= files_at_rest + 4 * 3,
        "file descriptors leaked: {files_at_rest} at rest, {files} after"
    );
    // Flat memory: the late median may not exceed the early one by more than the larger of
    // 8 MiB (allocator and SQLite page-cache noise) and 15%.
    let allowance = (early * 15 / 100).max(8 * 1024);
    assert!(
        late <= early + allowance,
        "memory grew after warm-up: {early} KiB -> {late} KiB"
    );
}

/// The descriptor counts once the socket count is at most `sockets` (or after 10 s).
async fn settled_fds(server: &Server, sockets: usize) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    tokio::time::sleep(Duration::from_millis(200)).await;
    loop {
        let fds = server.open_fds();
        if fds.0 <= sockets || Instant::now() > deadline {
            return fds;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}
