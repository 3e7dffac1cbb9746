//! Routing over the real server (contract v2, "Presence, capacity, automatic
//! assignment"): `connected` follows an officer's WebSockets with `officer_updated` to
//! `officers:all`; in automatic mode a customer's login answers with the officer the chat
//! went to, who hears `chat_assigned` on their own socket; a waiting customer is told
//! their place (`queuePosition`, `queue_position`); the `--assignment` flag.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Options, TestApp, WsClient, spawn_app};

fn auto() -> Options {
    Options {
        assignment: chatcore::Assignment::Auto,
        ..Options::secured()
    }
}

/// Reads frames until one matches, within the test's patience.
async fn until(ws: &mut WsClient, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    ws.next_matching(what, f).await
}

async fn officer(app: &TestApp, id: &str) -> Value {
    let all = app
        .request(Method::GET, "/api/officers", Some(ADMIN_TOKEN), None)
        .await
        .expect(200);
    all.as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no officer {id} in {all}"))
}

/// An officer's socket, authenticated: they are connected from here.
async fn online(app: &TestApp, token: &str) -> WsClient {
    app.ws_auth(token).await
}

/// A customer's login answer (`chat`, `token`).
async fn login(app: &TestApp, customer: &str) -> Value {
    app.customer_login(json!({ "customerId": customer, "signature": app.signature(customer) }))
        .await
        .expect(200)
}

async fn watch_officers(app: &TestApp) -> WsClient {
    let mut ws = app.ws_auth(ADMIN_TOKEN).await;
    ws.send_json(json!({ "type": "join_officers" })).await;
    until(&mut ws, "joined", |f| f["type"] == "joined").await;
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_follows_an_officers_sockets_on_the_officers_room() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let mut room = watch_officers(&app).await;
    assert_eq!(officer(&app, "alice").await["connected"], false);

    // Two sockets: connected with the first, still connected when one closes, not
    // connected once both have.
    let first = online(&app, &alice).await;
    let update = until(&mut room, "alice connected", |f| {
        f["type"] == "officer_updated" && f["officer"]["id"] == "alice"
    })
    .await;
    assert_eq!(update["officer"]["connected"], true);
    assert_eq!(officer(&app, "alice").await["connected"], true);
    let second = online(&app, &alice).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        officer(&app, "alice").await["connected"],
        true,
        "one socket left"
    );
    drop(second);
    let update = until(&mut room, "alice disconnected", |f| {
        f["type"] == "officer_updated"
            && f["officer"]["id"] == "alice"
            && f["officer"]["connected"] == false
    })
    .await;
    assert_eq!(update["officer"]["openChats"], 0);
    // GET /api/me and the login answer carry it too.
    let me = app
        .request(Method::GET, "/api/me", Some(&alice), None)
        .await
        .expect(200);
    assert_eq!(me["officer"]["connected"], false, "{me}");

    // A change of load is announced too.
    let (_, chat) = app.new_customer("cust-1").await;
    app.claim(Some(&alice), "alice", &chat).await.expect(200);
    let load = until(&mut room, "alice's load", |f| {
        f["type"] == "officer_updated" && f["officer"]["openChats"] == 1
    })
    .await;
    assert_eq!(load["officer"]["id"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_automatic_mode_a_new_chat_goes_to_a_connected_available_officer() {
    let app = Arc::new(spawn_app(auto()).await);
    let alice = app.new_officer("alice").await;
    let mut room = watch_officers(&app).await;

    // Nobody connected: the chat waits, first in line, and its customer hears so.
    let waiting = login(&app, "cust-1").await;
    let first = waiting["chat"].clone();
    assert_eq!(
        (&first["status"], &first["queuePosition"]),
        (&json!("pending"), &json!(1))
    );
    let mut customer = app.ws_auth(waiting["token"].as_str().unwrap()).await;
    customer
        .send_json(json!({ "type": "join_chat", "chatId": first["id"], "afterSeq": 0 }))
        .await;
    let place = until(&mut customer, "queue_position", |f| {
        f["type"] == "queue_position"
    })
    .await;
    assert_eq!(
        place,
        json!({ "type": "queue_position", "chatId": first["id"], "position": 1 })
    );

    // Alice connects: the waiting chat comes to her socket by itself, and the customer
    // sees who took it.
    let mut alices = online(&app, &alice).await;
    let assigned = until(&mut alices, "chat_assigned", |f| {
        f["type"] == "chat_assigned"
    })
    .await;
    assert_eq!(assigned["chat"]["id"], first["id"]);
    assert_eq!(assigned["chat"]["assignedOfficerId"], "alice");
    let entry = until(&mut customer, "the system entry", |f| {
        f["type"] == "new_message" && f["message"]["senderType"] == "system"
    })
    .await;
    assert_eq!(entry["message"]["senderId"], "auto");
    assert_eq!(entry["message"]["event"]["kind"], "assigned");
    assert_eq!(entry["message"]["event"]["officerId"], "alice");
    let updated = until(&mut room, "chat_updated assigned", |f| {
        f["type"] == "chat_updated" && f["change"] == "assigned"
    })
    .await;
    assert_eq!(updated["chat"]["assignedOfficerId"], "alice");

    // The next customer's login answers with the officer already.
    let (token, chat) = app.new_customer("cust-2").await;
    let answered = app.chat(Some(&token), &chat).await.expect(200);
    assert_eq!(
        (
            &answered["status"],
            &answered["assignedOfficerId"],
            &answered["queuePosition"]
        ),
        (&json!("assigned"), &json!("alice"), &Value::Null)
    );
    // Away: new chats wait. Available again: the waiting one is hers.
    app.request(
        Method::PUT,
        "/api/officers/alice/availability",
        Some(&alice),
        Some(&json!({ "availability": "away" })),
    )
    .await
    .expect(200);
    let (token3, chat3) = app.new_customer("cust-3").await;
    assert_eq!(
        app.chat(Some(&token3), &chat3).await.expect(200)["status"],
        "pending"
    );
    app.request(
        Method::PUT,
        "/api/officers/alice/availability",
        Some(&alice),
        Some(&json!({ "availability": "available" })),
    )
    .await
    .expect(200);
    let third = until(&mut alices, "the third chat", |f| {
        f["type"] == "chat_assigned" && f["chat"]["id"] == chat3.as_str()
    })
    .await;
    assert_eq!(third["chat"]["status"], "assigned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_manual_mode_chats_wait_and_customers_hear_their_place_move() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let _socket = online(&app, &alice).await;
    let (_, first) = app.new_customer("cust-1").await;
    let second = login(&app, "cust-2").await;
    let chat = second["chat"].clone();
    assert_eq!(
        (&chat["status"], &chat["queuePosition"]),
        (&json!("pending"), &json!(2))
    );
    let queue = app.queue(Some(&alice)).await.expect(200);
    let places: Vec<_> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["queuePosition"].clone())
        .collect();
    assert_eq!(places, [json!(1), json!(2)]);
    let mut customer = app.ws_auth(second["token"].as_str().unwrap()).await;
    customer
        .send_json(json!({ "type": "join_chat", "chatId": chat["id"] }))
        .await;
    let place = until(&mut customer, "its place", |f| {
        f["type"] == "queue_position"
    })
    .await;
    assert_eq!(place["position"], 2);
    // A connected officer does not get chats by themselves in manual mode.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.chat(Some(&alice), &first).await.expect(200)["status"],
        "pending"
    );
    app.claim(Some(&alice), "alice", &first).await.expect(200);
    let moved = until(&mut customer, "its new place", |f| {
        f["type"] == "queue_position"
    })
    .await;
    assert_eq!(moved["position"], 1);
    // Once taken, the chat has no place.
    app.claim(Some(&alice), "alice", chat["id"].as_str().unwrap())
        .await
        .expect(200);
    let taken = app
        .chat(second["token"].as_str(), chat["id"].as_str().unwrap())
        .await
        .expect(200);
    assert_eq!(taken["queuePosition"], Value::Null);
}
