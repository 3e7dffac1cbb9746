//! Officers' capacity over HTTP: the admin sets it, answers show it with the officer's
//! load, and a claim or transfer past it is 409 `at_capacity`, decided with the
//! assignment: of concurrent claims by an officer with one free slot, exactly one wins.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Options, TestApp, spawn_app};

async fn set(app: &TestApp, token: &str, officer: &str, body: Value) -> crate::helpers::Resp {
    app.request(
        Method::PUT,
        &format!("/api/officers/{officer}/capacity"),
        Some(token),
        Some(&body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_set_by_the_admin_shown_and_enforced() {
    let app = Arc::new(spawn_app(Options::secured()).await);
    let alice = app.new_officer("alice").await;
    let bob = app.new_officer("bob").await;

    // Only the admin sets it; its shape and range are checked; nothing else changes.
    set(&app, &alice, "alice", json!({ "capacity": 1 }))
        .await
        .expect_error(403, "forbidden");
    for bad in [
        json!({ "capacity": -1 }),
        json!({ "capacity": "2" }),
        json!({ "capacity": 1.5 }),
    ] {
        set(&app, ADMIN_TOKEN, "alice", bad)
            .await
            .expect_error(422, "invalid_field");
    }
    set(&app, ADMIN_TOKEN, "alice", json!({ "capacity": 10_001 }))
        .await
        .expect_error(422, "invalid_field");
    set(&app, ADMIN_TOKEN, "alice", json!({}))
        .await
        .expect_error(400, "invalid_body");
    set(&app, ADMIN_TOKEN, "nobody", json!({ "capacity": 1 }))
        .await
        .expect_error(404, "officer_not_found");
    let listed = app
        .request(Method::GET, "/api/officers", Some(&alice), None)
        .await
        .expect(200);
    assert_eq!(listed[0]["capacity"], Value::Null, "unlimited: {listed}");
    let officer = set(&app, ADMIN_TOKEN, "alice", json!({ "capacity": 1 }))
        .await
        .expect(200);
    assert_eq!(
        (&officer["id"], &officer["capacity"], &officer["openChats"]),
        (&json!("alice"), &json!(1), &json!(0))
    );

    // Eight chats; alice claims them all at once: one is hers, the rest 409.
    let mut chats = Vec::new();
    for i in 0..8 {
        chats.push(app.new_customer(&format!("c{i}")).await.1);
    }
    let racers: Vec<_> = chats
        .iter()
        .map(|chat| {
            let (app, alice, chat) = (app.clone(), alice.clone(), chat.clone());
            tokio::spawn(async move { app.claim(Some(&alice), "alice", &chat).await })
        })
        .collect();
    let mut won = Vec::new();
    for (racer, chat) in racers.into_iter().zip(&chats) {
        let resp = racer.await.unwrap();
        match resp.status {
            200 => won.push(chat.clone()),
            _ => resp.expect_error(409, "at_capacity"),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let me = app
        .request(Method::GET, "/api/me", Some(&alice), None)
        .await
        .expect(200);
    assert_eq!(
        (&me["officer"]["capacity"], &me["officer"]["openChats"]),
        (&json!(1), &json!(1))
    );

    // A transfer to her is refused the same way, and the chat stays bob's.
    let bobs = chats.iter().find(|c| !won.contains(c)).unwrap();
    app.claim(Some(&bob), "bob", bobs).await.expect(200);
    app.request(
        Method::POST,
        &format!("/api/chats/{bobs}/transfer"),
        Some(&bob),
        Some(&json!({ "officerId": "alice" })),
    )
    .await
    .expect_error(409, "at_capacity");
    let still = app.chat(Some(&bob), bobs).await.expect(200);
    assert_eq!(still["assignedOfficerId"], "bob");

    // Her chat ends: the slot is free again. Back to the default (unlimited): no limit.
    app.request(
        Method::POST,
        &format!("/api/chats/{}/resolve", won[0]),
        Some(&alice),
        None,
    )
    .await
    .expect(200);
    app.request(
        Method::POST,
        &format!("/api/chats/{bobs}/transfer"),
        Some(&bob),
        Some(&json!({ "officerId": "alice" })),
    )
    .await
    .expect(200);
    set(&app, ADMIN_TOKEN, "alice", json!({ "capacity": null }))
        .await
        .expect(200);
    let free = chats
        .iter()
        .find(|c| !won.contains(c) && *c != bobs)
        .unwrap();
    app.claim(Some(&alice), "alice", free).await.expect(200);
}

/// An officer sets their availability (the admin may too); every officer hears it as
/// `officer_updated`, as they hear a change of capacity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_is_set_and_every_officer_hears_of_it() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let bob = app.new_officer("bob").await;
    let mut bobs = app.ws_auth(&bob).await;
    bobs.send_json(json!({ "type": "join_officers" })).await;
    assert_eq!(bobs.next_json().await["type"], "joined");
    let put = |token: String, officer: &'static str, body: Value| {
        let app = &app;
        async move {
            app.request(
                Method::PUT,
                &format!("/api/officers/{officer}/availability"),
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    let listed = app
        .request(Method::GET, "/api/officers", Some(&bob), None)
        .await
        .expect(200);
    assert_eq!(
        listed[0]["availability"], "available",
        "a new officer: {listed}"
    );

    let away = put(alice.clone(), "alice", json!({ "availability": "away" }))
        .await
        .expect(200);
    assert_eq!(
        (&away["id"], &away["availability"]),
        (&json!("alice"), &json!("away"))
    );
    let heard = bobs
        .next_matching("alice's update", |f| {
            f["type"] == "officer_updated"
                && f["officer"]["id"] == "alice"
                && f["officer"]["availability"] == "away"
        })
        .await;
    assert_eq!(
        (
            &heard["type"],
            &heard["officer"]["id"],
            &heard["officer"]["availability"]
        ),
        (&json!("officer_updated"), &json!("alice"), &json!("away")),
        "{heard}"
    );
    // Not for a colleague; only the two values; the admin may, for anyone who exists.
    put(alice.clone(), "bob", json!({ "availability": "away" }))
        .await
        .expect_error(403, "forbidden");
    put(alice.clone(), "alice", json!({ "availability": "busy" }))
        .await
        .expect_error(422, "invalid_field");
    put(alice.clone(), "alice", json!({}))
        .await
        .expect_error(400, "invalid_body");
    put(
        ADMIN_TOKEN.to_string(),
        "nobody",
        json!({ "availability": "away" }),
    )
    .await
    .expect_error(404, "officer_not_found");
    put(
        ADMIN_TOKEN.to_string(),
        "alice",
        json!({ "availability": "available" }),
    )
    .await
    .expect(200);
    let heard = bobs
        .next_matching("alice's update", |f| {
            f["type"] == "officer_updated"
                && f["officer"]["id"] == "alice"
                && f["officer"]["availability"] == "available"
        })
        .await;
    assert_eq!(heard["officer"]["availability"], "available", "{heard}");
    // A capacity set by the admin is announced the same way.
    set(&app, ADMIN_TOKEN, "alice", json!({ "capacity": 3 }))
        .await
        .expect(200);
    let heard = bobs
        .next_matching("alice's update", |f| {
            f["type"] == "officer_updated"
                && f["officer"]["id"] == "alice"
                && f["officer"]["capacity"] == 3
        })
        .await;
    assert_eq!(
        (&heard["type"], &heard["officer"]["capacity"]),
        (&json!("officer_updated"), &json!(3)),
        "{heard}"
    );
    let me = app
        .request(Method::GET, "/api/me", Some(&alice), None)
        .await
        .expect(200);
    assert_eq!(me["officer"]["availability"], "available");
}

/// A capacity given at creation is the officer's own; a bad one creates nothing.
#[tokio::test]
async fn capacity_is_a_field_of_officer_creation() {
    let app = spawn_app(Options::secured()).await;
    for bad in [json!(-1), json!("2"), json!(10_001)] {
        app.create_officer(
            Some(ADMIN_TOKEN),
            json!({ "id": "carol", "password": "correct horse", "capacity": bad }),
        )
        .await
        .expect_error(422, "invalid_field");
    }
    let carol = app
        .create_officer(
            Some(ADMIN_TOKEN),
            json!({ "id": "carol", "password": "correct horse", "capacity": 2 }),
        )
        .await
        .expect(201);
    assert_eq!(
        (&carol["capacity"], &carol["openChats"]),
        (&json!(2), &json!(0))
    );
    let dave = app
        .create_officer(
            Some(ADMIN_TOKEN),
            json!({ "id": "dave", "password": "correct horse", "capacity": null }),
        )
        .await
        .expect(201);
    assert_eq!(dave["capacity"], Value::Null);
    let listed = app
        .request(Method::GET, "/api/officers", Some(ADMIN_TOKEN), None)
        .await
        .expect(200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["carol", "dave"], "a refused creation created nothing");
    assert_eq!(listed[0]["capacity"], 2);
}

/// A customer login that names an officer with no room left (here the server's default
/// capacity, 1) creates the chat pending, in the queue, not theirs: of logins racing
/// for her one free slot, exactly one chat is hers. Nothing is refused: each customer
/// gets a chat and a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_naming_a_full_officer_puts_the_chat_in_the_queue() {
    let app = Arc::new(
        spawn_app(Options {
            officer_capacity: Some(1),
            ..Options::open()
        })
        .await,
    );
    let alice = app.new_officer("alice").await;
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.customer_login(json!({ "customerId": format!("c{i}"), "officerId": "alice" }))
                    .await
                    .expect(200)
            })
        })
        .collect();
    let (mut hers, mut queued) = (Vec::new(), Vec::new());
    for racer in racers {
        let login = racer.await.unwrap();
        assert_eq!(login["created"], true, "{login}");
        assert!(login["token"].is_string(), "{login}");
        let chat = &login["chat"];
        match (chat["status"].as_str(), chat["assignedOfficerId"].as_str()) {
            (Some("assigned"), Some("alice")) => hers.push(chat["id"].clone()),
            (Some("pending"), None) => queued.push(chat["id"].clone()),
            other => panic!("unexpected {other:?}: {login}"),
        }
    }
    assert_eq!((hers.len(), queued.len()), (1, 5));
    let me = app
        .request(Method::GET, "/api/me", Some(&alice), None)
        .await
        .expect(200);
    assert_eq!(me["officer"]["openChats"], 1, "{me}");
    let queue = app.queue(Some(&alice)).await.expect(200);
    let mut waiting: Vec<Value> = queue
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    waiting.sort_by_key(Value::to_string);
    queued.sort_by_key(Value::to_string);
    assert_eq!(waiting, queued);
}
