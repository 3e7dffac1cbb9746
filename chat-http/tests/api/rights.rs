//! Rights re-checked while a WebSocket uses them: an officer who was reading a pending
//! chat loses it when a colleague claims it, and a socket closes with 4401 when its
//! session is logged out, expires, or its officer is disabled by the admin. Each test
//! is an attack of the security review, replayed against the real server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Ended, Options, PATIENCE, WsClient, spawn_app};

/// Joins a chat from the start and returns the frames the replay brings.
async fn join(ws: &mut WsClient, chat: &str) {
    ws.send_json(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
}

/// Frames that come within `wait`, until the connection goes quiet.
async fn frames_within(ws: &mut WsClient, wait: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    while let Some(frame) = ws.next_json_within(wait).await {
        got.push(frame);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_who_was_reading_a_pending_chat_hears_nothing_once_another_claims_it() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let alice = app.new_officer("alice").await;
        let bob = app.new_officer("bob").await;
        let (customer, chat) = app.new_customer("cust-1").await;
        app.say(&customer, &chat, "I need help with my loan").await;

        let mut bobs = app.ws_auth(&bob).await;
        join(&mut bobs, &chat).await;
        assert_eq!(bobs.next_json().await["message"]["seq"], 1);
        let mut customers = app.ws_auth(&customer).await;
        join(&mut customers, &chat).await;
        assert_eq!(customers.next_json().await["message"]["seq"], 1);

        app.claim(Some(&alice), "alice", &chat).await.expect(200);
        app.say(&customer, &chat, "my PIN is 9999").await;

        // Bob is told he lost the room, and nothing of the chat follows.
        let refused = bobs.next_json().await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["code"], "forbidden");
        assert_eq!(refused["room"], format!("chat:{chat}"));
        app.say(&customer, &chat, "and my account is 12345678")
            .await;
        let after = frames_within(&mut bobs, Duration::from_millis(500)).await;
        assert!(after.is_empty(), "bob still hears the chat: {after:?}");
        // His connection stays usable, and he cannot come back in.
        bobs.send_json(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
            .await;
        assert_eq!(bobs.next_json().await["code"], "forbidden");
        bobs.send_json(json!({ "type": "join_officers" })).await;
        assert_eq!(bobs.next_json().await["type"], "joined");

        // The customer learns of the claim (its entry, then the change) and goes on
        // hearing the chat.
        let seen = frames_within(&mut customers, Duration::from_millis(500)).await;
        let kinds: Vec<&str> = seen
            .iter()
            .map(|f| f["type"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            kinds,
            ["new_message", "chat_updated", "new_message", "new_message"],
            "{seen:?}"
        );
        assert_eq!(seen[0]["message"]["event"]["kind"], "claimed");
        assert_eq!(seen[1]["change"], "claimed");
        assert_eq!(seen[1]["chat"]["assignedOfficerId"], "alice");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_officer_watching_the_queue_loses_a_chat_when_it_is_claimed() {
    // The attack at scale: several officers join every pending chat.
    let app = spawn_app(Options::open()).await;
    let alice = app.new_officer("alice").await;
    let mut watchers = Vec::new();
    for i in 0..4 {
        let token = app.new_officer(&format!("watcher{i}")).await;
        watchers.push(app.ws_auth(&token).await);
    }
    let mut chats = Vec::new();
    for i in 0..5 {
        let (customer, chat) = app.new_customer(&format!("cust-{i}")).await;
        for ws in &mut watchers {
            join(ws, &chat).await;
        }
        chats.push((customer, chat));
    }
    for (customer, chat) in &chats {
        app.claim(Some(&alice), "alice", chat).await.expect(200);
        app.say(customer, chat, "secret").await;
    }
    for ws in &mut watchers {
        let frames = frames_within(ws, Duration::from_millis(500)).await;
        let mut lost: Vec<&str> = frames
            .iter()
            .map(|f| {
                assert_eq!(f["code"], "forbidden", "a watcher got {f}");
                f["chatId"].as_str().unwrap()
            })
            .collect();
        lost.sort_unstable();
        let mut all: Vec<&str> = chats.iter().map(|(_, c)| c.as_str()).collect();
        all.sort_unstable();
        assert_eq!(lost, all);
    }
    app.stop().await;
}

/// How long until the connection ends, and how.
async fn ends_within(ws: &mut WsClient, wait: Duration) -> (Ended, Duration) {
    let start = Instant::now();
    let (ended, _) = ws.read_until_end(wait).await;
    (ended, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_closes_the_sockets_of_that_token_within_a_second() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let alice_again = app.login_officer("alice").await;
    let (customer, chat) = app.new_customer("cust-1").await;
    let mut first = app.ws_auth(&alice).await;
    let mut second = app.ws_auth(&alice).await;
    let mut other = app.ws_auth(&alice_again).await;
    let mut customers = app.ws_auth(&customer).await;
    join(&mut customers, &chat).await;

    app.logout(&alice).await.expect(204);
    for ws in [&mut first, &mut second] {
        let (ended, took) = ends_within(ws, PATIENCE).await;
        assert_eq!(ended, Ended::Closed(4401));
        assert!(took < Duration::from_secs(1), "closed after {took:?}");
    }
    // The same officer's other token, and the customer, go on.
    other.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(other.next_json().await["type"], "joined");
    app.logout(&customer).await.expect(204);
    let (ended, _) = ends_within(&mut customers, PATIENCE).await;
    assert_eq!(ended, Ended::Closed(4401));
    other.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(other.next_json().await["type"], "joined");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_closes_when_its_token_expires() {
    let mut options = Options::open();
    options.session_ttl = Some(Duration::from_millis(1500));
    let app = spawn_app(options).await;
    let alice = app.new_officer("alice").await;
    let issued = Instant::now();
    let mut ws = app.ws_auth(&alice).await;
    ws.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(ws.next_json().await["type"], "joined");
    let (ended, _) = ends_within(&mut ws, PATIENCE).await;
    let at = issued.elapsed();
    assert_eq!(ended, Ended::Closed(4401));
    assert!(
        at >= Duration::from_millis(1400) && at < Duration::from_millis(2500),
        "closed {at:?} after login, for a 1.5 s token"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_disables_an_officer_and_their_sockets_close() {
    let app = spawn_app(Options::secured()).await;
    let bob = app.new_officer("bob").await;
    let carol = app.new_officer("carol").await;
    let mut bobs = app.ws_auth(&bob).await;
    let mut carols = app.ws_auth(&carol).await;

    // Only the admin may.
    app.officer_switch(Some(&carol), "bob", "disable")
        .await
        .expect_error(403, "forbidden");
    app.officer_switch(Some(ADMIN_TOKEN), "nobody", "disable")
        .await
        .expect_error(404, "officer_not_found");
    let disabled = app
        .officer_switch(Some(ADMIN_TOKEN), "bob", "disable")
        .await
        .expect(200);
    assert_eq!(disabled["disabled"], true);
    let (ended, took) = ends_within(&mut bobs, PATIENCE).await;
    assert_eq!(ended, Ended::Closed(4401));
    assert!(took < Duration::from_secs(1), "closed after {took:?}");
    app.queue(Some(&bob))
        .await
        .expect_error(401, "unauthorized");
    app.officer_login(json!({ "officerId": "bob", "password": crate::helpers::PASSWORD }))
        .await
        .expect_error(403, "officer_disabled");
    app.officer_login(json!({ "officerId": "bob", "password": "wrong password" }))
        .await
        .expect_error(401, "invalid_credentials");
    carols.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(carols.next_json().await["type"], "joined");

    app.officer_switch(Some(ADMIN_TOKEN), "bob", "enable")
        .await
        .expect(200);
    let bob_again = app.login_officer("bob").await;
    app.queue(Some(&bob_again)).await.expect(200);
    app.stop().await;
}
