//! The WebSocket protocol with real clients: rooms, replay, slow consumers, malformed
//! frames, authentication, liveness and shutdown.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Ended, Options, PATIENCE, spawn_app};

/// The next frame a version-1 client acts on: it ignores the events it does not know
/// (`chat_updated`, from version 2 of the contract).
async fn next_v1(ws: &mut crate::helpers::WsClient) -> serde_json::Value {
    loop {
        let frame = ws.next_json().await;
        if frame["type"] != "chat_updated" {
            return frame;
        }
    }
}

/// The original Quick Test, end to end, as a version-1 client sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_test_end_to_end() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let officer = app.new_officer("alice").await;

        let mut officer_ws = app.ws_auth(&officer).await;
        officer_ws
            .send_json(json!({ "type": "join_officers" }))
            .await;
        assert_eq!(
            officer_ws.next_json().await,
            json!({ "type": "joined", "room": "officers:all" })
        );

        let (customer, chat) = app.new_customer("cust-1").await;
        let created = next_v1(&mut officer_ws).await;
        assert_eq!(created["type"], "queue_chat_created");
        assert_eq!(created["chat"]["id"], chat);
        assert_eq!(created["chat"]["status"], "pending");

        app.claim(Some(&officer), "alice", &chat).await.expect(200);
        // Both events reach this socket; their relative order is not specified.
        let mut got = vec![
            next_v1(&mut officer_ws).await,
            next_v1(&mut officer_ws).await,
        ];
        got.sort_by_key(|v| v["type"].as_str().unwrap().to_string());
        assert_eq!(got[0]["type"], "chat_assigned");
        assert_eq!(got[1]["type"], "queue_chat_claimed");
        for event in &got {
            assert_eq!(event["chat"]["id"], chat);
            assert_eq!(event["chat"]["assignedOfficerId"], "alice");
        }

        let mut customer_ws = app.ws_auth(&customer).await;
        for ws in [&mut officer_ws, &mut customer_ws] {
            ws.send_json(json!({ "type": "join_chat", "chatId": chat }))
                .await;
            assert_eq!(
                ws.next_json().await,
                json!({ "type": "joined", "room": format!("chat:{chat}") })
            );
        }
        let hello = app.say(&customer, &chat, "Hello, I need help").await;
        let reply = app.say(&officer, &chat, "Hi, I am Alice").await;
        for ws in [&mut officer_ws, &mut customer_ws] {
            assert_eq!(
                ws.next_json().await,
                json!({ "type": "new_message", "message": hello })
            );
            assert_eq!(
                ws.next_json().await,
                json!({ "type": "new_message", "message": reply })
            );
        }
        // The timeline: the claim's system entry, then the conversation.
        let history = app.messages(Some(&customer), &chat, "").await.expect(200);
        assert_eq!(history[0]["senderType"], "system");
        assert_eq!(history, json!([history[0], hello, reply]));
        app.stop().await;
    }
}

#[tokio::test]
async fn ready_frame_names_role_and_subject() {
    let app = spawn_app(Options::secured()).await;
    let officer = app.new_officer("alice").await;
    let (customer, _) = app.new_customer("cust-9").await;
    for (token, role, subject) in [
        (officer.as_str(), "officer", "alice"),
        (customer.as_str(), "customer", "cust-9"),
        (crate::helpers::ADMIN_TOKEN, "admin", "admin"),
    ] {
        let mut ws = app.ws_connect().await;
        ws.send_json(json!({ "type": "auth", "token": token }))
            .await;
        assert_eq!(
            ws.next_json().await,
            json!({ "type": "ready", "role": role, "subject": subject })
        );
    }
    app.stop().await;
}

/// The admin reads the queue, every chat and every officer, so may follow
/// `officers:all` live (the admin console does); a customer may not.
#[tokio::test]
async fn the_admin_follows_the_officers_room() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let mut admin = app.ws_auth(crate::helpers::ADMIN_TOKEN).await;
    admin.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(
        admin.next_json().await,
        json!({ "type": "joined", "room": "officers:all" })
    );
    let (_, chat) = app.new_customer("cust-1").await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = admin.next_json().await;
        assert_eq!(frame["chat"]["id"], chat.as_str(), "{frame}");
        seen.push(frame["type"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["chat_updated", "queue_chat_created"]);
    app.request(
        axum::http::Method::PUT,
        "/api/officers/alice/availability",
        Some(&alice),
        Some(&json!({ "availability": "away" })),
    )
    .await
    .expect(200);
    let heard = admin
        .next_matching("alice away", |f| f["officer"]["availability"] == "away")
        .await;
    assert_eq!(
        (&heard["type"], &heard["officer"]["availability"]),
        (&json!("officer_updated"), &json!("away"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_customer_login_naming_an_officer_notifies_them() {
    let app = spawn_app(Options::open()).await;
    let officer = app.new_officer("alice").await;
    let mut ws = app.ws_auth(&officer).await;
    let login = app
        .customer_login(json!({ "customerId": "vip", "officerId": "alice" }))
        .await
        .expect(200);
    let event = ws.next_json().await;
    assert_eq!(event["type"], "chat_assigned");
    assert_eq!(event["chat"], login["chat"]);
    app.stop().await;
}

#[tokio::test]
async fn bad_or_missing_auth_closes_with_4401() {
    let mut options = Options::open();
    options.ws.auth_timeout = Duration::from_millis(300);
    let app = spawn_app(options).await;

    // A token nobody issued.
    let mut ws = app.ws_connect().await;
    ws.send_json(json!({ "type": "auth", "token": "forged" }))
        .await;
    let error = ws.next_json().await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("unauthorized"))
    );
    assert_eq!(ws.read_until_end(PATIENCE).await.0, Ended::Closed(4401));

    // A first frame that is not auth.
    let mut ws = app.ws_connect().await;
    ws.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(ws.next_json().await["code"], "unauthorized");
    assert_eq!(ws.read_until_end(PATIENCE).await.0, Ended::Closed(4401));

    // Nothing at all within the auth timeout.
    let mut ws = app.ws_connect().await;
    let started = std::time::Instant::now();
    assert_eq!(ws.next_json().await["code"], "unauthorized");
    assert_eq!(ws.read_until_end(PATIENCE).await.0, Ended::Closed(4401));
    assert!(started.elapsed() >= Duration::from_millis(250));
    app.stop().await;
}

#[tokio::test]
async fn malformed_and_refused_frames_keep_the_connection_open() {
    let app = spawn_app(Options::open()).await;
    let officer = app.new_officer("alice").await;
    let (customer, chat) = app.new_customer("c1").await;
    let (_, other_chat) = app.new_customer("c2").await;
    let mut ws = app.ws_auth(&customer).await;

    let cases = [
        (Message::text("{not json"), "invalid_frame"),
        (Message::text(r#"{"type":"dance"}"#), "invalid_frame"),
        (Message::text(r#"{"no":"type"}"#), "invalid_frame"),
        (Message::text(r#"{"type":"join_chat"}"#), "invalid_frame"),
        (
            Message::text(r#"{"type":"join_chat","chatId":"nope"}"#),
            "invalid_parameter",
        ),
        (
            Message::text(r#"{"type":"join_chat","chatId":5}"#),
            "invalid_frame",
        ),
        (
            Message::text(json!({"type":"join_chat","chatId":chat,"afterSeq":-1}).to_string()),
            "invalid_frame",
        ),
        (Message::binary(vec![1u8, 2, 3]), "invalid_frame"),
        (
            Message::text(r#"{"type":"auth","token":"again"}"#),
            "invalid_frame",
        ),
        // Rooms this customer may not join.
        (Message::text(r#"{"type":"join_officers"}"#), "forbidden"),
        (
            Message::text(json!({"type":"join_chat","chatId":other_chat}).to_string()),
            "forbidden",
        ),
        // A customer learns nothing of chats not theirs, even whether they exist.
        (
            Message::text(
                json!({"type":"join_chat","chatId":uuid::Uuid::now_v7().to_string()}).to_string(),
            ),
            "forbidden",
        ),
    ];
    for (frame, code) in cases {
        ws.send(frame.clone()).await;
        let error = ws.next_json().await;
        assert_eq!(error["type"], "error", "{frame:?}: {error}");
        assert_eq!(error["code"], code, "{frame:?}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Still open and working.
    ws.send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    let message = app.say(&customer, &chat, "still here").await;
    assert_eq!(ws.next_json().await["message"], message);

    // An officer may not join a chat another officer owns.
    app.claim(Some(&officer), "alice", &other_chat)
        .await
        .expect(200);
    let bob = app.new_officer("bob").await;
    let mut bob_ws = app.ws_auth(&bob).await;
    bob_ws
        .send_json(json!({ "type": "join_chat", "chatId": other_chat }))
        .await;
    assert_eq!(bob_ws.next_json().await["code"], "forbidden");
    bob_ws
        .send_json(json!({ "type": "join_chat", "chatId": uuid::Uuid::now_v7().to_string() }))
        .await;
    assert_eq!(bob_ws.next_json().await["code"], "chat_not_found");
    app.stop().await;
}

#[tokio::test]
async fn leave_and_rejoin() {
    let app = spawn_app(Options::open()).await;
    let officer = app.new_officer("alice").await;
    let (c1, chat1) = app.new_customer("c1").await;
    let (c2, chat2) = app.new_customer("c2").await;
    let mut ws = app.ws_auth(&officer).await;
    for chat in [&chat1, &chat2] {
        ws.send_json(json!({ "type": "join_chat", "chatId": chat }))
            .await;
        assert_eq!(ws.next_json().await["type"], "joined");
    }
    ws.send_json(json!({ "type": "leave_chat", "chatId": chat1 }))
        .await;
    assert_eq!(
        ws.next_json().await,
        json!({ "type": "left", "room": format!("chat:{chat1}") })
    );
    // A message to the left chat is not forwarded: the next frame is chat2's.
    app.say(&c1, &chat1, "unheard").await;
    let heard = app.say(&c2, &chat2, "heard").await;
    assert_eq!(ws.next_json().await["message"], heard);

    // Joining twice replaces the first feed: the replay comes once, then live once.
    ws.send_json(json!({ "type": "join_chat", "chatId": chat2 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    ws.send_json(json!({ "type": "join_chat", "chatId": chat2, "afterSeq": 0 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    assert_eq!(ws.next_json().await["message"], heard);
    let next = app.say(&c2, &chat2, "once").await;
    assert_eq!(ws.next_json().await["message"], next);
    let last = app.say(&c1, &chat1, "still unheard").await;
    let marker = app.say(&c2, &chat2, "marker").await;
    let frame = ws.next_json().await;
    assert_eq!(
        frame["message"], marker,
        "no duplicate and nothing of chat1 ({last})"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_under_concurrent_sends_has_no_gap_and_no_duplicate() {
    let app = Arc::new(spawn_app(Options::open()).await);
    let (customer, chat) = app.new_customer("c1").await;
    for i in 0..20 {
        app.say(&customer, &chat, &format!("before {i}")).await;
    }
    const TOTAL: u64 = 150;
    let sender = {
        let (app, customer, chat) = (app.clone(), customer.clone(), chat.clone());
        tokio::spawn(async move {
            for i in 20..TOTAL {
                app.say(&customer, &chat, &format!("during {i}")).await;
            }
        })
    };
    let mut ws = app.ws_auth(&customer).await;
    ws.send_json(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 5 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    let mut expected = 6;
    while expected <= TOTAL {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "new_message");
        assert_eq!(frame["message"]["seq"], expected, "gap or duplicate");
        expected += 1;
    }
    sender.await.unwrap();
    assert!(
        ws.next_json_within(Duration::from_millis(200))
            .await
            .is_none(),
        "nothing past the last message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_longer_than_the_socket_buffers_hold_arrives_whole_at_the_readers_pace() {
    const COUNT: u64 = 120;
    const CHARS: usize = 40_000; // 4.8 MB in all: more than the socket buffers hold
    let mut options = Options::open();
    options.max_message_chars = Some(CHARS);
    options.ws.slow_consumer_grace = Duration::from_secs(5);
    let app = spawn_app(options).await;
    let (customer, chat) = app.new_customer("c1").await;
    for i in 0..COUNT {
        app.say(
            &customer,
            &chat,
            &format!("{i:05}{}", "x".repeat(CHARS - 5)),
        )
        .await;
    }
    // A client coming back far behind, with more to replay than the sockets buffer.
    let mut ws = app.ws_auth(&customer).await;
    ws.send_json(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    // Read nothing for a moment: the replay fills the buffers and must wait, not fail.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for seq in 1..=COUNT {
        let frame = ws.next_json().await;
        assert_eq!(frame["type"], "new_message", "{frame}");
        assert_eq!(frame["message"]["seq"], seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_with_4008_and_others_keep_receiving() {
    const CHARS: usize = 60_000;
    const COUNT: u64 = 400;
    let mut options = Options::open();
    options.max_message_chars = Some(CHARS);
    options.ws.slow_consumer_grace = Duration::from_millis(300);
    let app = Arc::new(spawn_app(options).await);
    let (customer, chat) = app.new_customer("c1").await;

    let mut slow = app.ws_auth(&customer).await;
    slow.send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(slow.next_json().await["type"], "joined");
    let mut good = app.ws_auth(&customer).await;
    good.send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(good.next_json().await["type"], "joined");

    // The good client reads everything while messages are sent; the slow one never
    // reads until the end.
    let reader = tokio::spawn(async move {
        for seq in 1..=COUNT {
            let frame = good.next_json().await;
            assert_eq!(frame["message"]["seq"], seq);
        }
    });
    let body = "x".repeat(CHARS);
    let mut senders = Vec::new();
    for lane in 0..2 {
        let (app, customer, chat, body) =
            (app.clone(), customer.clone(), chat.clone(), body.clone());
        senders.push(tokio::spawn(async move {
            for _ in 0..COUNT / 2 {
                let _ = lane;
                app.say(&customer, &chat, &body).await;
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    reader.await.unwrap();

    let (ended, frames) = slow.read_until_end(Duration::from_secs(60)).await;
    eprintln!("slow client: {ended:?} after {frames} frames");
    assert!(
        ended == Ended::Closed(4008) || ended == Ended::Dropped,
        "slow client ended with {ended:?}"
    );
    assert!(
        (frames as u64) < COUNT,
        "the slow client was buffered without bound ({frames} frames)"
    );
}

#[tokio::test]
async fn a_silent_peer_is_dropped_and_a_responsive_one_is_kept() {
    let mut options = Options::open();
    options.ws.ping_interval = Duration::from_millis(100);
    let app = spawn_app(options).await;
    let (customer, chat) = app.new_customer("c1").await;

    // Reading answers the server's pings (tungstenite replies by itself), so this one
    // stays connected across many intervals.
    let mut alive = app.ws_auth(&customer).await;
    assert!(
        alive
            .next_json_within(Duration::from_millis(700))
            .await
            .is_none()
    );
    alive
        .send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(alive.next_json().await["type"], "joined");

    // This one never reads, so never answers: the server drops it after two intervals.
    let mut silent = app.ws_auth(&customer).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (ended, _) = silent.read_until_end(PATIENCE).await;
    assert_eq!(ended, Ended::Dropped);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let app = spawn_app(Options::open()).await;
    let officer = app.new_officer("alice").await;
    let mut ws = app.ws_auth(&officer).await;
    ws.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(ws.next_json().await["type"], "joined");
    let stopping = tokio::spawn(app.stop());
    assert_eq!(ws.read_until_end(PATIENCE).await.0, Ended::Closed(1001));
    stopping.await.unwrap();
}

#[tokio::test]
async fn plain_get_on_ws_is_a_json_error() {
    let app = spawn_app(Options::open()).await;
    let resp = app.request(reqwest::Method::GET, "/ws", None, None).await;
    assert!((400..500).contains(&resp.status), "{resp:?}");
    assert_eq!(resp.code(), "websocket_required");
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_ends_only_that_connection() {
    let app = spawn_app(Options::open()).await;
    let (customer, chat) = app.new_customer("c1").await;
    let mut big = app.ws_auth(&customer).await;
    let mut other = app.ws_auth(&customer).await;
    other
        .send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(other.next_json().await["type"], "joined");

    let huge = json!({ "type": "join_chat", "chatId": "x".repeat(100 * 1024) });
    // The server may reset the connection while the frame is still being written.
    let _ = futures_util::SinkExt::send(&mut big.stream, Message::text(huge.to_string())).await;
    let (ended, frames) = big.read_until_end(PATIENCE).await;
    assert_eq!(frames, 0, "no answer to an oversized frame ({ended:?})");

    let message = app.say(&customer, &chat, "others unaffected").await;
    assert_eq!(other.next_json().await["message"], message);
    app.stop().await;
}

/// The read buffer is small (256 bytes by default, so idle sockets cost little); a frame
/// far larger than it, but within the limit, is still read whole and answered.
#[tokio::test]
async fn a_frame_larger_than_the_read_buffer_is_read_whole() {
    let app = spawn_app(Options::open()).await;
    let (customer, chat) = app.new_customer("c1").await;
    let mut ws = app.ws_auth(&customer).await;
    let large = json!({ "type": "join_chat", "chatId": "x".repeat(60 * 1024) });
    ws.send_json(large).await;
    let answer = ws.next_json().await;
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_str()),
        (Some("error"), Some("invalid_parameter")),
        "{answer}"
    );
    ws.send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    let message = app.say(&customer, &chat, "after a large frame").await;
    assert_eq!(ws.next_json().await["message"], message);
    app.stop().await;
}
