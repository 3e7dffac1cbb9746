//! Abuse limits through the real server: each limit refuses with the contract's error
//! (429 `rate_limited` with `Retry-After` on REST, an error frame or a close on the
//! WebSocket), a refused request changes nothing, other clients and identities are served
//! meanwhile, and the limited one is served again once the wait has passed. The server
//! runs on a clock the tests move by hand, so nothing here depends on timing. Other
//! client addresses are real: 127.0.0.2 and 127.0.0.3 are loopback addresses too.

use std::net::IpAddr;
use std::time::Duration;

use chat_http::HttpLimits;
use chatcore::{Limits, Rate};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use clap::Parser;

use crate::helpers::{Ended, Options, PASSWORD, Resp, TestApp, into_resp, spawn_app};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A secured server on a manual clock with these limits (the rest off, so each test
/// sees only its own).
fn options(limits: Limits, http: HttpLimits) -> Options {
    Options {
        limits,
        http_limits: http,
        manual_clock: true,
        ..Options::secured()
    }
}

/// Checks a 429 in the contract's shape; returns `Retry-After` in seconds.
#[track_caller]
fn expect_limited(resp: &Resp) -> u64 {
    resp.expect_error(429, "rate_limited");
    let secs = resp
        .retry_after
        .unwrap_or_else(|| panic!("429 without Retry-After: {:?}", resp.body));
    assert!(secs >= 1, "Retry-After {secs}");
    secs
}

/// Checks a WebSocket error frame for a rate limit; returns its `retryAfter`.
#[track_caller]
fn expect_limited_frame(frame: &Value) -> u64 {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "rate_limited", "{frame}");
    assert!(frame["message"].as_str().is_some_and(|m| !m.is_empty()));
    let secs = frame["retryAfter"].as_u64().expect("retryAfter in seconds");
    assert!(secs >= 1);
    secs
}

async fn login_from(app: &TestApp, client: &reqwest::Client, officer: &str, pw: &str) -> Resp {
    let resp = client
        .post(app.url("/api/officers/login"))
        .json(&json!({ "officerId": officer, "password": pw }))
        .send()
        .await
        .expect("request failed");
    into_resp(resp).await
}

#[tokio::test]
async fn failed_logins_are_limited_per_officer_id() {
    let limits =
        Limits::none().with_login_failures_per_officer(Some(Rate::new(3, Duration::from_secs(60))));
    let app = spawn_app(options(limits, HttpLimits::none())).await;
    app.new_officer("amy").await;
    app.new_officer("bob").await;

    for _ in 0..3 {
        app.officer_login(json!({ "officerId": "amy", "password": "guess" }))
            .await
            .expect_error(401, "invalid_credentials");
    }
    // Over the limit even the right password is refused, and no token is issued.
    let refused = app
        .officer_login(json!({ "officerId": "amy", "password": PASSWORD }))
        .await;
    let wait = expect_limited(&refused);
    assert!(refused.body.get("token").is_none());
    // Another officer is served meanwhile, from the same address.
    app.officer_login(json!({ "officerId": "bob", "password": PASSWORD }))
        .await
        .expect(200);

    app.advance(Duration::from_secs(wait));
    let body = app
        .officer_login(json!({ "officerId": "amy", "password": PASSWORD }))
        .await
        .expect(200);
    let token = body["token"].as_str().unwrap();
    app.queue(Some(token)).await.expect(200);
}

#[tokio::test]
async fn failed_logins_are_limited_per_client_address() {
    let mut http = HttpLimits::none();
    http.login_failures_per_address = Some(Rate::new(3, Duration::from_secs(60)));
    http.limit_loopback = true;
    let app = spawn_app(options(Limits::none(), http)).await;
    app.new_officer("amy").await;
    let (here, there) = (
        TestApp::client_from(ip("127.0.0.1")),
        TestApp::client_from(ip("127.0.0.2")),
    );

    // Successful logins do not count.
    for _ in 0..5 {
        login_from(&app, &here, "amy", PASSWORD).await.expect(200);
    }
    // Guesses at several officer ids all count against the address.
    for id in ["amy", "ghost-1", "ghost-2"] {
        login_from(&app, &here, id, "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    let wait = expect_limited(&login_from(&app, &here, "amy", PASSWORD).await);
    // The same officer from another address is served.
    login_from(&app, &there, "amy", PASSWORD).await.expect(200);

    app.advance(Duration::from_secs(wait));
    login_from(&app, &here, "amy", PASSWORD).await.expect(200);
}

#[tokio::test]
async fn wrong_customer_signatures_count_as_failed_logins() {
    let mut http = HttpLimits::none();
    http.login_failures_per_address = Some(Rate::new(2, Duration::from_secs(60)));
    http.limit_loopback = true;
    let app = spawn_app(options(Limits::none(), http)).await;
    let client = TestApp::client_from(ip("127.0.0.3"));
    let login = |signature: Option<String>| {
        let request = client
            .post(app.url("/api/customers/login"))
            .json(&json!({ "customerId": "c1", "signature": signature }));
        async move { into_resp(request.send().await.unwrap()).await }
    };
    for _ in 0..2 {
        login(Some("00".repeat(32)))
            .await
            .expect_error(401, "invalid_signature");
    }
    let wait = expect_limited(&login(app.signature("c1")).await);
    // The refused login created nothing: the queue is empty.
    let officer = app.new_officer("amy").await;
    assert_eq!(app.queue(Some(&officer)).await.expect(200), json!([]));
    // Customers from other addresses log in meanwhile.
    app.new_customer("c2").await;

    app.advance(Duration::from_secs(wait));
    let body = login(app.signature("c1")).await.expect(200);
    assert_eq!(body["created"], true);
}

#[tokio::test]
async fn sends_are_limited_per_sender_and_a_refused_message_is_not_stored() {
    let limits = Limits::none().with_sends_per_sender(Some(Rate::new(3, Duration::from_secs(30))));
    let app = spawn_app(options(limits, HttpLimits::none())).await;
    let officer = app.new_officer("amy").await;
    let (customer, chat) = app.new_customer("c1").await;
    let (other, other_chat) = app.new_customer("c2").await;
    app.claim(Some(&officer), "amy", &chat).await.expect(200);

    for i in 0..3 {
        app.say(&customer, &chat, &format!("m{i}")).await;
    }
    let refused = app
        .send_message(Some(&customer), &chat, json!({ "content": "one too many" }))
        .await;
    let wait = expect_limited(&refused);
    // A second token of the same customer shares the budget.
    let (again, same_chat) = app.new_customer("c1").await;
    assert_eq!(same_chat, chat);
    expect_limited(
        &app.send_message(Some(&again), &chat, json!({ "content": "new token" }))
            .await,
    );
    // Other identities are served, in the same chat and in another one.
    let answer = app.say(&officer, &chat, "officer here").await;
    assert_eq!(answer["seq"], 5, "after the claim's entry and m0..m2");
    app.say(&other, &other_chat, "hello").await;
    // Nothing refused was stored.
    let stored = app.messages(Some(&customer), &chat, "").await.expect(200);
    let contents: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "Officer amy took the chat",
            "m0",
            "m1",
            "m2",
            "officer here"
        ]
    );

    app.advance(Duration::from_secs(wait));
    let sent = app.say(&customer, &chat, "after the wait").await;
    assert_eq!(sent["seq"], 6);
}

#[tokio::test]
async fn new_websocket_connections_are_limited_per_client_address() {
    let mut http = HttpLimits::none();
    http.ws_connects_per_address = Some(Rate::new(2, Duration::from_secs(60)));
    http.limit_loopback = true;
    let app = spawn_app(options(Limits::none(), http)).await;
    let (customer, chat) = app.new_customer("c1").await;
    let here = ip("127.0.0.1");

    let mut first = app
        .ws_try_connect_from(here)
        .await
        .expect("first connection");
    let _second = app
        .ws_try_connect_from(here)
        .await
        .expect("second connection");
    let refused = app.ws_try_connect_from(here).await.err().expect("refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused:?}");
    };
    assert_eq!(response.status().as_u16(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // Open connections are not touched, and another address connects.
    first
        .send_json(json!({ "type": "auth", "token": customer }))
        .await;
    assert_eq!(first.next_json().await["type"], "ready");
    first
        .send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(first.next_json().await["type"], "joined");
    app.ws_try_connect_from(ip("127.0.0.2"))
        .await
        .expect("another address connects");

    app.advance(Duration::from_secs(wait));
    app.ws_try_connect_from(here)
        .await
        .expect("connects again after the wait");
}

#[tokio::test]
async fn rooms_per_connection_are_capped_and_the_connection_stays_open() {
    let mut http = HttpLimits::none();
    http.ws_rooms_per_connection = 2;
    let app = spawn_app(options(Limits::none(), http)).await;
    let officer = app.new_officer("amy").await;
    let mut chats = Vec::new();
    for c in ["c1", "c2"] {
        let (token, chat) = app.new_customer(c).await;
        app.claim(Some(&officer), "amy", &chat).await.expect(200);
        chats.push((token, chat));
    }
    let (c1, chat1) = chats[0].clone();
    let (c2, chat2) = chats[1].clone();

    let mut ws = app.ws_auth(&officer).await;
    ws.send_json(json!({ "type": "join_chat", "chatId": chat1 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    ws.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(ws.next_json().await["room"], "officers:all");
    ws.send_json(json!({ "type": "join_chat", "chatId": chat2 }))
        .await;
    let refused = ws.next_json().await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("too_many_rooms")),
        "{refused}"
    );
    // The refused join joined nothing: chat2's message is not delivered, chat1's is.
    app.say(&c2, &chat2, "not for this socket").await;
    let heard = app.say(&c1, &chat1, "heard").await;
    let frame = ws.next_json().await;
    assert_eq!(frame["message"]["id"], heard["id"], "{frame}");
    // Joining a room already joined replaces it and takes no new slot.
    ws.send_json(json!({ "type": "join_chat", "chatId": chat1 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    // Leaving frees a slot on the same connection.
    ws.send_json(json!({ "type": "leave_chat", "chatId": chat1 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "left");
    ws.send_json(json!({ "type": "join_chat", "chatId": chat2, "afterSeq": 0 }))
        .await;
    assert_eq!(ws.next_json().await["room"], format!("chat:{chat2}"));
    assert_eq!(
        ws.next_json().await["message"]["content"],
        "Officer amy took the chat"
    );
    assert_eq!(
        ws.next_json().await["message"]["content"],
        "not for this socket"
    );
}

#[tokio::test]
async fn frames_over_the_connection_limit_are_refused_then_the_connection_is_closed() {
    let mut http = HttpLimits::none();
    http.ws_frames_per_connection = Some(Rate::new(3, Duration::from_secs(30)));
    let app = spawn_app(options(Limits::none(), http)).await;
    let (customer, chat) = app.new_customer("c1").await;
    let join = json!({ "type": "join_chat", "chatId": chat });
    let leave = json!({ "type": "leave_chat", "chatId": chat });

    let mut ws = app.ws_auth(&customer).await;
    let mut other = app.ws_auth(&customer).await;
    ws.send_json(join.clone()).await;
    assert_eq!(ws.next_json().await["type"], "joined");
    ws.send_json(leave.clone()).await;
    assert_eq!(ws.next_json().await["type"], "left");
    ws.send_json(join.clone()).await;
    assert_eq!(ws.next_json().await["type"], "joined");
    // The fourth frame is refused and not handled: the socket stays in the chat.
    ws.send_json(leave.clone()).await;
    let wait = expect_limited_frame(&ws.next_json().await);
    let sent = app.say(&customer, &chat, "still joined").await;
    assert_eq!(ws.next_json().await["message"]["id"], sent["id"]);
    // Another connection has its own budget.
    other
        .send_json(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    assert_eq!(other.next_json().await["type"], "joined");
    assert_eq!(other.next_json().await["message"]["id"], sent["id"]);

    // After the wait the connection is served again.
    app.advance(Duration::from_secs(wait));
    ws.send_json(leave.clone()).await;
    assert_eq!(ws.next_json().await["type"], "left");
    // A client that goes on sending while refused (as many frames as the limit) is
    // closed with 1008 after an error frame for each.
    for _ in 0..3 {
        ws.send_json(join.clone()).await;
    }
    let (ended, frames) = ws.read_until_end(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(chat_http::CLOSE_POLICY));
    assert_eq!(frames, 3, "one error frame per refused frame");
    // The other connection is unaffected.
    let sent = app.say(&customer, &chat, "after the close").await;
    assert_eq!(other.next_json().await["message"]["id"], sent["id"]);
}

#[tokio::test]
async fn a_frame_over_the_size_limit_ends_only_that_connection() {
    let mut options = options(Limits::none(), HttpLimits::none());
    options.ws.max_message_bytes = 1024;
    let app = spawn_app(options).await;
    let (customer, chat) = app.new_customer("c1").await;
    let mut big = app.ws_auth(&customer).await;
    let mut other = app.ws_auth(&customer).await;
    other
        .send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(other.next_json().await["type"], "joined");

    // Just under the limit is a frame like any other.
    let pad = "x".repeat(900);
    big.send_json(json!({ "type": "leave_chat", "chatId": chat, "pad": pad }))
        .await;
    assert_eq!(big.next_json().await["type"], "left");
    let over = json!({ "type": "leave_chat", "chatId": chat, "pad": "x".repeat(2000) });
    big.send(Message::text(over.to_string())).await;
    let (ended, _) = big.read_until_end(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(chat_http::CLOSE_TOO_BIG));
    let sent = app.say(&customer, &chat, "others unaffected").await;
    assert_eq!(other.next_json().await["message"]["id"], sent["id"]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_limited() {
    let mut http = HttpLimits::none();
    http.login_failures_per_address = Some(Rate::new(2, Duration::from_secs(60)));
    http.trusted_proxies = vec![ip("127.0.0.1")];
    let app = spawn_app(options(Limits::none(), http)).await;
    app.new_officer("amy").await;
    let login = |forwarded: Option<&'static str>, password: &'static str| {
        let mut request = app
            .client
            .post(app.url("/api/officers/login"))
            .json(&json!({ "officerId": "amy", "password": password }));
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        async move { into_resp(request.send().await.unwrap()).await }
    };
    let attacker = Some("198.51.100.66, 203.0.113.7");
    for _ in 0..2 {
        login(attacker, "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    expect_limited(&login(attacker, PASSWORD).await);
    // Another client behind the same proxy is served, and so is the proxy itself
    // (a loopback peer, exempt by default).
    login(Some("203.0.113.8"), PASSWORD).await.expect(200);
    login(None, PASSWORD).await.expect(200);
    // What the client wrote left of the proxy's entry does not change who it is.
    expect_limited(&login(Some("192.0.2.1, 203.0.113.7"), PASSWORD).await);
}

#[tokio::test]
async fn an_untrusted_peer_cannot_dodge_its_limit_with_x_forwarded_for() {
    let mut http = HttpLimits::none();
    http.login_failures_per_address = Some(Rate::new(2, Duration::from_secs(60)));
    http.limit_loopback = true;
    let app = spawn_app(options(Limits::none(), http)).await;
    app.new_officer("amy").await;
    for n in 0..3 {
        let resp = app
            .client
            .post(app.url("/api/officers/login"))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .json(&json!({ "officerId": "amy", "password": "guess" }))
            .send()
            .await
            .unwrap();
        let resp = into_resp(resp).await;
        if n < 2 {
            resp.expect_error(401, "invalid_credentials");
        } else {
            expect_limited(&resp);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_default_limits_let_a_busy_office_work() {
    // The binary's defaults, applied to this loopback client as to any other.
    let config = chat_http::Config::try_parse_from(["chat-http"]).unwrap();
    let mut http = config.http_limits();
    http.limit_loopback = true;
    let app = std::sync::Arc::new(spawn_app(options(config.service_config().limits, http)).await);

    // Twenty officers behind one address start their shift at once, a few mistyping.
    // The limits run on the test's clock, which stands still: how the logins spread in
    // real time changes nothing they count. At most four are in flight, so that thirty
    // password hashes on a starved machine do not outlast the client's timeout.
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut logins = Vec::new();
    for i in 0..20 {
        let app = app.clone();
        let in_flight = in_flight.clone();
        logins.push(tokio::spawn(async move {
            let _turn = in_flight.acquire_owned().await.unwrap();
            let id = format!("officer-{i}");
            let token = app.new_officer(&id).await;
            if i % 4 == 0 {
                app.officer_login(json!({ "officerId": id, "password": "typo" }))
                    .await
                    .expect_error(401, "invalid_credentials");
                app.login_officer(&id).await;
            }
            (id, token)
        }));
    }
    let mut officers = Vec::new();
    for login in logins {
        officers.push(login.await.unwrap());
    }
    // Each opens the console's WebSocket.
    let mut sockets = Vec::new();
    for (_, token) in &officers {
        let mut ws = app.ws_try_connect_from(ip("127.0.0.1")).await.unwrap();
        ws.send_json(json!({ "type": "auth", "token": token }))
            .await;
        assert_eq!(ws.next_json().await["type"], "ready");
        sockets.push(ws);
    }
    // One officer handles thirty chats, each customer writing a burst of ten lines.
    let (amy, amy_token) = officers[0].clone();
    let mut chats = Vec::new();
    for c in 0..30 {
        let (customer, chat) = app.new_customer(&format!("cust-{c}")).await;
        app.claim(Some(&amy_token), &amy, &chat).await.expect(200);
        for line in 0..10 {
            app.say(&customer, &chat, &format!("line {line}")).await;
        }
        chats.push(chat);
    }
    // A reconnect rejoins every chat (after all it had seen: the claim's entry and the
    // ten lines) and the queue at once.
    let ws = &mut sockets[0];
    for chat in &chats {
        ws.send_json(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 11 }))
            .await;
    }
    ws.send_json(json!({ "type": "join_officers" })).await;
    // Every join is answered (the claims' chat_assigned events come first); no refusal.
    let mut joined = 0;
    while joined <= chats.len() {
        let frame = ws.next_json().await;
        match frame["type"].as_str() {
            Some("joined") => joined += 1,
            Some("chat_assigned") => {}
            _ => panic!("unexpected frame {frame}"),
        }
    }
}
