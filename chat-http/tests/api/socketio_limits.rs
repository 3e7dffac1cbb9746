//! What a Socket.IO client can make the server hold, bounded as `/ws`'s: long-polling
//! sessions under the connection caps per address and in all, given back when they end
//! (closed, a handshake that never joins the namespace, a client that stops polling),
//! and a WebSocket client that stops reading dropped after the slow-consumer grace. The
//! per-address cap is tested with the real `socket.io-client` under Node against the
//! binary; the rest speaks Engine.IO v4 by hand (a client that misbehaves on purpose)
//! against the server in the test's runtime, with short timings.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Ended, Options, PATIENCE, TestApp, WsClient, spawn_app};
use crate::node;
use crate::server::Server;

/// Engine.IO's packet separator in a long-polling body.
const SEPARATOR: char = '\u{1e}';

/// A raw Engine.IO v4 long-polling session: one request at a time through `client`.
pub(crate) struct Polling {
    client: reqwest::Client,
    url: String,
}

/// A refused handshake: status and body.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: u16,
    body: Value,
}

impl Polling {
    /// Opens a session at `base`, as `forwarded` (an `X-Forwarded-For`) when given.
    pub(crate) async fn open(
        client: &reqwest::Client,
        base: &str,
        forwarded: Option<&str>,
    ) -> Result<Self, Refusal> {
        let mut request = client.get(format!("{base}/socket.io/?EIO=4&transport=polling"));
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", address);
        }
        let resp = request.send().await.expect("handshake");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if status != 200 {
            let body = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Err(Refusal { status, body });
        }
        let open: Value = serde_json::from_str(text.strip_prefix('0').expect("an open packet"))
            .unwrap_or_else(|e| panic!("{e}: {text}"));
        let sid = open["sid"].as_str().expect("a sid").to_string();
        Ok(Self {
            client: client.clone(),
            url: format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}"),
        })
    }

    /// Sends packets; the server's status.
    pub(crate) async fn post(&self, packets: &str) -> u16 {
        let resp = self
            .client
            .post(&self.url)
            .body(packets.to_string())
            .send()
            .await
            .expect("post");
        resp.status().as_u16()
    }

    /// One poll: the status and the packets it brought.
    pub(crate) async fn poll(&self) -> (u16, Vec<String>) {
        let resp = self.client.get(&self.url).send().await.expect("poll");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, text.split(SEPARATOR).map(str::to_string).collect())
    }

    /// Joins the namespace with `token`, answering pings, until the server says connected.
    pub(crate) async fn connect(&self, token: &str) {
        assert_eq!(
            self.post(&format!("40{}", json!({ "token": token }))).await,
            200
        );
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, packets) = self.poll().await;
            assert_eq!(status, 200, "{packets:?}");
            if packets.iter().any(|p| p.starts_with("40{")) {
                return;
            }
            assert!(
                !packets.iter().any(|p| p.starts_with("44")),
                "refused: {packets:?}"
            );
            assert!(Instant::now() < deadline, "no connect: {packets:?}");
        }
    }
}

/// Opens sessions until one is refused: how many were opened, and the refusal.
async fn fill(client: &reqwest::Client, base: &str, at_most: usize) -> (Vec<Polling>, Refusal) {
    let mut held = Vec::new();
    loop {
        match Polling::open(client, base, None).await {
            Ok(session) => held.push(session),
            Err(refusal) => return (held, refusal),
        }
        assert!(held.len() <= at_most, "more sessions than the cap");
    }
}

/// Options with at most `total` connections in all, none per address, and no local
/// reserve (the tests' own address is 127.0.0.1: no room beyond the cap for it).
fn capped_at(total: usize) -> Options {
    let mut caps = chat_http::ConnSettings::default();
    caps.max_connections = Some(total);
    caps.max_connections_per_address = None;
    caps.local_reserve = 0;
    Options {
        connections: Some(caps),
        ..Options::open()
    }
}

/// The server cap counts long-polling sessions from their handshake until they end:
/// one whose client joined and then stopped polling (its ping timeout), and ones that
/// never joined the namespace (the connect timeout). Over it, a handshake is a 503
/// `unavailable` in the contract's shape; once they have ended, as many fit as before.
#[tokio::test]
async fn long_polling_sessions_hold_a_slot_until_they_end() {
    let mut options = capped_at(6);
    options.ws.ping_interval = Duration::from_millis(300);
    options.ws.auth_timeout = Duration::from_millis(500);
    let app = spawn_app(options).await;
    let officer = app.new_officer("alice").await;
    let base = format!("http://{}", app.addr);
    // One client, one request at a time: its connection is one kept-alive slot.
    let client = app.client.clone();

    let quiet = Polling::open(&client, &base, None).await.unwrap();
    quiet.connect(&officer).await;
    let (held, refusal) = fill(&client, &base, 6).await;
    // The cap holds the test's connections too (this client's, the officer's login).
    let fitted = held.len() + 1;
    assert!(fitted >= 2, "only {fitted} sessions fit under a cap of 6");
    assert_eq!(refusal.status, 503, "{refusal:?}");
    assert_eq!(refusal.body["error"]["code"], "unavailable", "{refusal:?}");
    assert!(refusal.body["error"]["message"].is_string(), "{refusal:?}");

    // The quiet one never polls again: a ping timeout (two intervals) ends it; the
    // others never joined: the connect timeout ends them.
    drop(held);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, _) = quiet.poll().await;
    assert_eq!(status, 400, "the session outlived its ping timeout");
    let (again, refusal) = fill(&client, &base, 6).await;
    assert_eq!(
        again.len(),
        fitted,
        "the ended sessions' slots did not all come back"
    );
    assert_eq!(refusal.status, 503, "{refusal:?}");
    app.stop().await;
}

/// A session upgraded from long-polling to a WebSocket counts once, as its WebSocket's
/// connection: its own slot goes back after the upgrade; and that one too once it
/// ends.
#[tokio::test]
async fn an_upgraded_session_counts_once() {
    let mut options = capped_at(8);
    options.ws.auth_timeout = Duration::from_millis(500);
    let app = spawn_app(options).await;
    let officer = app.new_officer("alice").await;
    let base = format!("http://{}", app.addr);

    let upgraded = upgrade(&app, &officer).await;
    // The session looks for its upgrade within moments.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (with_it, _) = fill(&app.client, &base, 8).await;
    let with_it = with_it.len();
    drop(upgraded);
    // The filled sessions never join: their connect timeout ends them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (without, _) = fill(&app.client, &base, 8).await;
    assert_eq!(
        without.len(),
        with_it + 1,
        "the upgraded session held {} slots",
        without.len() - with_it
    );
    app.stop().await;
}

/// A session joined over long-polling and upgraded to a WebSocket, as socket.io-client
/// does it (probe, then upgrade).
async fn upgrade(app: &TestApp, token: &str) -> WsClient {
    let polling = Polling::open(&app.client, &format!("http://{}", app.addr), None)
        .await
        .unwrap();
    polling.connect(token).await;
    let url = format!(
        "{}&transport=websocket",
        polling
            .url
            .replace("http://", "ws://")
            .replace("&transport=polling", "")
    );
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let mut ws = WsClient { stream };
    ws.send(Message::text("2probe")).await;
    assert_eq!(next_text(&mut ws).await, "3probe");
    ws.send(Message::text("5")).await;
    ws
}

/// The per-address cap holds for long-polling sessions opened by the real
/// `socket.io-client`; the address counted is the client's as a trusted proxy forwards
/// it (the test's connections come from the proxy, 127.0.0.1, which the cap exempts), so
/// that only sessions count. Over it: `connect_error`, and a handshake answered 429
/// `rate_limited` with `Retry-After`; another address is served; a closed session's
/// slot comes back.
#[tokio::test]
async fn long_polling_sessions_count_under_the_address_cap() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("caps.db"),
        &dir.path().join("server.log"),
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--max-connections-per-address",
            "3",
        ],
    );
    let alice = server.api.officer("alice").await;
    let url = server.api.base.clone();
    let report = node::scenario(
        "caps",
        &[
            ("CHAT_URL", url.as_str()),
            ("ALICE", alice.as_str()),
            ("BOB", alice.as_str()),
            ("TRANSPORTS", "polling"),
            ("CAP", "3"),
        ],
    )
    .await;
    assert_eq!(report["held"], 3, "{report}");
    assert!(report["connectError"].is_string(), "{report}");
    assert_eq!(report["refused"]["status"], 429, "{report}");
    assert_eq!(report["refused"]["retryAfter"], "1", "{report}");
    assert_eq!(
        report["refused"]["body"]["error"]["code"], "rate_limited",
        "{report}"
    );
    assert!(
        report["refused"]["body"]["error"]["message"].is_string(),
        "{report}"
    );
}

/// A raw Socket.IO client over a WebSocket, authenticated and in `chat`'s room, that
/// then never reads: on a WebSocket of its own (`transport=websocket`), or upgraded
/// from long-polling.
async fn slow_socketio_client(app: &TestApp, token: &str, chat: &str, upgraded: bool) -> WsClient {
    let mut ws = if upgraded {
        upgrade(app, token).await
    } else {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        WsClient { stream }
    };
    if !upgraded {
        assert!(next_text(&mut ws).await.starts_with("0{"));
        ws.send(Message::text(format!("40{}", json!({ "token": token }))))
            .await;
        let connected = next_text(&mut ws).await;
        assert!(connected.starts_with("40{"), "{connected}");
    }
    ws.stream
        .send(Message::text(format!(
            "420{}",
            json!(["join_chat", { "chatId": chat }])
        )))
        .await
        .unwrap();
    loop {
        let packet = next_text(&mut ws).await;
        if let Some(ack) = packet.strip_prefix("430") {
            assert_eq!(ack, r#"[{"ok":true}]"#);
            return ws;
        }
    }
}

/// The next text message of a raw Engine.IO WebSocket, answering its pings.
async fn next_text(ws: &mut WsClient) -> String {
    loop {
        match futures_util::StreamExt::next(&mut ws.stream).await {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => ws.send(Message::text("3")).await,
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => {}
            other => panic!("ended: {other:?}"),
        }
    }
}

/// A Socket.IO client on a WebSocket that stops reading is dropped once its buffer has
/// stayed full for the slow-consumer grace, as `/ws`'s is closed with 4008, while a
/// client that reads gets everything; whether its WebSocket was its first transport or
/// an upgrade. Its pings come every minute and a stalled write is cut after 30 s: it
/// ends well before either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socketio_client_that_stops_reading_is_dropped_after_the_grace() {
    const CHARS: usize = 60_000;
    const COUNT: u64 = 400;
    let mut options = Options::open();
    options.max_message_chars = Some(CHARS);
    options.ws.slow_consumer_grace = Duration::from_millis(300);
    options.ws.ping_interval = Duration::from_secs(60);
    let app = std::sync::Arc::new(spawn_app(options).await);
    for upgraded in [false, true] {
        let (customer, chat) = app
            .new_customer(if upgraded { "upgraded" } else { "direct" })
            .await;
        let mut slow = slow_socketio_client(&app, &customer, &chat, upgraded).await;
        let mut good = app.ws_auth(&customer).await;
        good.send_json(json!({ "type": "join_chat", "chatId": chat }))
            .await;
        assert_eq!(good.next_json().await["type"], "joined");

        let started = Instant::now();
        let reader = tokio::spawn(async move {
            for seq in 1..=COUNT {
                let frame = good.next_json().await;
                assert_eq!(frame["message"]["seq"], seq);
            }
        });
        let body = "x".repeat(CHARS);
        for _ in 0..COUNT {
            app.say(&customer, &chat, &body).await;
        }
        reader.await.unwrap();

        let (ended, packets) = slow.read_until_end(Duration::from_secs(20)).await;
        let took = started.elapsed();
        eprintln!("upgraded {upgraded}: {ended:?} after {packets} packets, {took:?}");
        assert_eq!(ended, Ended::Dropped, "upgraded {upgraded}");
        assert!(
            (packets as u64) < COUNT,
            "upgraded {upgraded}: the slow client was buffered without bound ({packets})"
        );
        assert!(
            took < Duration::from_secs(25),
            "upgraded {upgraded}: dropped only after {took:?}, not by the grace"
        );
    }
}
