//! Read marks and typing over the real server (contract v2, "Typing, read receipts"):
//! `POST /api/chats/{id}/read` and the WebSocket's `read` and `typing` frames, heard by
//! the other side of the chat; lists' `lastMessage`.

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, WsClient, spawn_app};

async fn read(app: &TestApp, token: &str, chat: &str, body: Value) -> crate::helpers::Resp {
    app.request(
        Method::POST,
        &format!("/api/chats/{chat}/read"),
        Some(token),
        Some(&body),
    )
    .await
}

async fn joined(app: &TestApp, token: &str, chat: &str) -> WsClient {
    let mut ws = app.ws_auth(token).await;
    ws.send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    ws.next_matching("joined", |f| f["type"] == "joined").await;
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_marks_over_rest_and_the_socket_reach_the_other_side() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let bob = app.new_officer("bob").await;
    let (customer, chat) = app.new_customer("cust-1").await;
    app.say(&customer, &chat, "hello").await;
    app.claim(Some(&alice), "alice", &chat).await.expect(200);
    let mut customers = joined(&app, &customer, &chat).await;
    let mut alices = joined(&app, &alice, &chat).await;

    // Alice has seen both entries (the message and her claim's).
    let mark = read(&app, &alice, &chat, json!({ "seq": 2 }))
        .await
        .expect(200);
    assert_eq!(
        mark,
        json!({ "chatId": chat, "readerType": "officer", "readerId": "alice", "seq": 2 })
    );
    let heard = customers
        .next_matching("read", |f| f["type"] == "read")
        .await;
    assert_eq!(
        heard,
        json!({ "type": "read", "chatId": chat, "readerType": "officer", "readerId": "alice", "seq": 2 })
    );
    // Refusals: past the end, malformed, not a side of the chat.
    read(&app, &alice, &chat, json!({ "seq": 3 }))
        .await
        .expect_error(422, "invalid_field");
    for malformed in [json!({ "seq": -1 }), json!({ "seq": "2" }), json!({})] {
        read(&app, &alice, &chat, malformed)
            .await
            .expect_error(400, "invalid_body");
    }
    read(&app, &bob, &chat, json!({ "seq": 1 }))
        .await
        .expect_error(403, "forbidden");
    // Over the socket: the customer's mark, heard by Alice; a refusal is an error frame.
    customers
        .send_json(json!({ "type": "read", "chatId": chat, "seq": 2 }))
        .await;
    let heard = alices.next_matching("read", |f| f["type"] == "read").await;
    assert_eq!(
        (&heard["readerType"], &heard["seq"]),
        (&json!("customer"), &json!(2))
    );
    customers
        .send_json(json!({ "type": "read", "chatId": chat, "seq": 99 }))
        .await;
    let refused = customers
        .next_matching("error", |f| f["type"] == "error")
        .await;
    assert_eq!(refused["code"], "invalid_field");
    let now = app.chat(Some(&customer), &chat).await.expect(200);
    assert_eq!(
        (&now["customerLastReadSeq"], &now["officerLastReadSeq"]),
        (&json!(2), &json!(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_over_the_socket_reaches_only_the_other_side() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let (customer, chat) = app.new_customer("cust-1").await;
    app.claim(Some(&alice), "alice", &chat).await.expect(200);
    let mut customers = joined(&app, &customer, &chat).await;
    let mut alices = joined(&app, &alice, &chat).await;
    customers
        .send_json(json!({ "type": "typing", "chatId": chat }))
        .await;
    let heard = alices
        .next_matching("typing", |f| f["type"] == "typing")
        .await;
    assert_eq!(
        heard,
        json!({ "type": "typing", "chatId": chat, "senderType": "customer", "senderId": "cust-1", "expiresInMs": 6000 })
    );
    // Not echoed to the typist.
    assert!(
        customers
            .next_json_within(std::time::Duration::from_millis(300))
            .await
            .is_none()
    );
    // A bad chat id is refused in a frame, and the socket stays open.
    alices
        .send_json(json!({ "type": "typing", "chatId": "nope" }))
        .await;
    let refused = alices
        .next_matching("error", |f| f["type"] == "error")
        .await;
    assert_eq!(refused["code"], "invalid_parameter");
    alices
        .send_json(json!({ "type": "typing", "chatId": chat }))
        .await;
    let heard = customers
        .next_matching("typing", |f| f["type"] == "typing")
        .await;
    assert_eq!(heard["senderId"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_shows_each_chats_first_question() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let (customer, chat) = app.new_customer("cust-1").await;
    app.say(&customer, &chat, "Can I repay my loan early?")
        .await;
    let queue = app.queue(Some(&alice)).await.expect(200);
    let last = &queue[0]["lastMessage"];
    assert_eq!(last["seq"], 1);
    assert_eq!(last["senderType"], "customer");
    assert_eq!(last["preview"], "Can I repay my loan early?");
    assert!(last["createdAt"].is_string());
}
