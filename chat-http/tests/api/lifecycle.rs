//! The lifecycle routes (contract version 2): resolve, release, transfer, reopen, over
//! real HTTP with their refusals in the contract's words, and what open sockets hear: the
//! customer's `chat_updated`, the former owner's `chat_unassigned` and loss of the room,
//! the queue's events.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Options, Resp, TestApp, WsClient, spawn_app};

async fn act(app: &TestApp, token: &str, chat: &str, action: &str, body: Option<Value>) -> Resp {
    app.request(
        Method::POST,
        &format!("/api/chats/{chat}/{action}"),
        Some(token),
        body.as_ref(),
    )
    .await
}

/// The next frame of `kind`, skipping others.
async fn next_of(ws: &mut WsClient, kind: &str) -> Value {
    loop {
        let frame = ws.next_json().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_over_http_with_its_refusals_and_its_events() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let alice = app.new_officer("alice").await;
        let bob = app.new_officer("bob").await;
        let (customer, chat) = app.new_customer("cust-1").await;
        app.say(&customer, &chat, "Hello?").await;

        let mut customers = app.ws_auth(&customer).await;
        customers
            .send_json(json!({ "type": "join_chat", "chatId": chat }))
            .await;
        assert_eq!(
            next_of(&mut customers, "joined").await["room"],
            format!("chat:{chat}")
        );
        let mut queue = app.ws_auth(&bob).await;
        queue.send_json(json!({ "type": "join_officers" })).await;
        next_of(&mut queue, "joined").await;
        let mut alices = app.ws_auth(&alice).await;

        // Pending: not the officers' to end or hand on.
        act(&app, &alice, &chat, "resolve", None)
            .await
            .expect_error(409, "not_assigned");
        act(&app, &alice, &chat, "release", None)
            .await
            .expect_error(409, "not_assigned");
        act(&app, &alice, &chat, "reopen", None)
            .await
            .expect_error(409, "not_resolved");
        app.claim(Some(&alice), "alice", &chat).await.expect(200);
        // The claim is a change like the others: its entry, then chat_updated, to the
        // chat and to every officer.
        let took = next_of(&mut customers, "new_message").await;
        assert_eq!(
            (
                &took["message"]["content"],
                &took["message"]["event"]["kind"]
            ),
            (&json!("Officer alice took the chat"), &json!("claimed"))
        );
        let claimed = next_of(&mut customers, "chat_updated").await;
        assert_eq!(claimed["change"], "claimed");
        assert_eq!(
            next_of(&mut queue, "chat_updated").await["change"],
            "claimed"
        );

        // Transfer: body checked, officer checked, then done; alice hears she lost it.
        act(&app, &alice, &chat, "transfer", Some(json!({})))
            .await
            .expect_error(400, "invalid_body");
        act(
            &app,
            &alice,
            &chat,
            "transfer",
            Some(json!({ "officerId": "no/pe" })),
        )
        .await
        .expect_error(422, "invalid_id");
        act(
            &app,
            &alice,
            &chat,
            "transfer",
            Some(json!({ "officerId": "ghost" })),
        )
        .await
        .expect_error(404, "officer_not_found");
        act(
            &app,
            &customer,
            &chat,
            "transfer",
            Some(json!({ "officerId": "bob" })),
        )
        .await
        .expect_error(403, "forbidden");
        let moved = act(
            &app,
            &alice,
            &chat,
            "transfer",
            Some(json!({ "officerId": "bob" })),
        )
        .await
        .expect(200);
        assert_eq!(moved["assignedOfficerId"], "bob");
        assert_eq!(moved["status"], "assigned");
        let gone = next_of(&mut alices, "chat_unassigned").await;
        assert_eq!(gone["chat"]["assignedOfficerId"], "bob");
        let entry = next_of(&mut customers, "new_message").await;
        assert_eq!(entry["message"]["senderType"], "system");
        assert_eq!(entry["message"]["event"]["kind"], "transferred");
        assert_eq!(entry["message"]["event"]["fromOfficerId"], "alice");
        let updated = next_of(&mut customers, "chat_updated").await;
        assert_eq!(updated["change"], "transferred");
        assert_eq!(
            next_of(&mut queue, "chat_updated").await["change"],
            "transferred"
        );
        app.chat(Some(&alice), &chat)
            .await
            .expect_error(403, "forbidden");

        // Release: back in the queue, which hears it as a new entry.
        act(&app, &bob, &chat, "release", None).await.expect(200);
        let back = next_of(&mut queue, "queue_chat_created").await;
        assert_eq!(back["chat"]["status"], "pending");
        let listed = app.queue(Some(&bob)).await.expect(200);
        assert_eq!(listed[0]["id"], chat.as_str());

        // The customer ends it; nothing more is written or claimed.
        let ended = act(&app, &customer, &chat, "resolve", None)
            .await
            .expect(200);
        assert_eq!(ended["status"], "resolved");
        assert!(ended["resolvedAt"].is_string());
        assert_eq!(
            next_of(&mut customers, "chat_updated").await["change"],
            "released"
        );
        assert_eq!(
            next_of(&mut customers, "chat_updated").await["change"],
            "resolved"
        );
        act(&app, &customer, &chat, "resolve", None)
            .await
            .expect(200);
        app.send_message(Some(&customer), &chat, json!({ "content": "more?" }))
            .await
            .expect_error(409, "chat_resolved");
        app.claim(Some(&bob), "bob", &chat)
            .await
            .expect_error(409, "chat_resolved");

        // The customer's next login is a new chat; the old one cannot reopen meanwhile.
        let (_, second) = app.new_customer("cust-1").await;
        assert_ne!(second, chat);
        act(&app, &bob, &chat, "reopen", None)
            .await
            .expect_error(409, "customer_has_open_chat");
        let (second_token, _) = app.new_customer("cust-1").await;
        act(&app, &second_token, &second, "resolve", None)
            .await
            .expect(200);
        let reopened = act(&app, &bob, &chat, "reopen", Some(json!({})))
            .await
            .expect(200);
        assert_eq!(
            (&reopened["status"], &reopened["assignedOfficerId"]),
            (&json!("assigned"), &json!("bob"))
        );

        // The customer's token reads every chat of theirs, newest first, and the old
        // one's history; officers read the list too, other customers do not.
        let history = app
            .request(
                Method::GET,
                "/api/customers/cust-1/chats",
                Some(&second_token),
                None,
            )
            .await
            .expect(200);
        let ids: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [second.as_str(), chat.as_str()]);
        app.messages(Some(&second_token), &chat, "after=0")
            .await
            .expect(200);
        app.request(
            Method::GET,
            "/api/customers/cust-1/chats",
            Some(&alice),
            None,
        )
        .await
        .expect(200);
        let (stranger, _) = app.new_customer("cust-2").await;
        app.request(
            Method::GET,
            "/api/customers/cust-1/chats",
            Some(&stranger),
            None,
        )
        .await
        .expect_error(403, "forbidden");
        app.messages(Some(&stranger), &chat, "after=0")
            .await
            .expect_error(403, "forbidden");
        app.messages(
            Some(&stranger),
            "0193a7f0-0000-7000-8000-000000000000",
            "after=0",
        )
        .await
        .expect_error(403, "forbidden");

        // The whole timeline, in seqs: the message and one entry per change.
        let history = app.messages(Some(&bob), &chat, "after=0").await.expect(200);
        let kinds: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["event"]["kind"].as_str().unwrap_or("message"))
            .collect();
        assert_eq!(
            kinds,
            [
                "message",
                "claimed",
                "transferred",
                "released",
                "resolved",
                "reopened"
            ]
        );
        app.stop().await;
    }
}
