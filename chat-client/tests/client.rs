//! chat-client against the real server (`chat_http::testing::TestServer`: chat-http on
//! an ephemeral port with a SQLite file): typed answers, the contract's errors, joins,
//! and a watch that survives a server restart without missing or repeating a message.

use std::time::Duration;

use chat_client::{Client, Error, ErrorKind, ServerFrame, Watch, WatchEvent};
use chat_http::testing::{ADMIN_TOKEN, CUSTOMER_SECRET, TestServer};
use chatcore::{Event, IdentityClaims, Timestamp};

const PATIENCE: Duration = Duration::from_secs(10);

fn identity(customer: &str) -> String {
    let now = Timestamp::now().unix_millis() / 1000;
    let claims = IdentityClaims {
        sub: customer.into(),
        exp: u64::try_from(now + 300).unwrap(),
        officer_id: None,
        name: Some("Ada".into()),
    };
    chatcore::customer_identity_token(CUSTOMER_SECRET.as_bytes(), &claims)
}

async fn next_event(watch: &mut Watch) -> WatchEvent {
    tokio::time::timeout(PATIENCE, watch.next())
        .await
        .expect("an event in time")
        .expect("the watch goes on")
}

/// The next message a watch hands out, skipping joins, reconnects and other events.
async fn next_message(watch: &mut Watch) -> chatcore::Message {
    loop {
        if let WatchEvent::Event(incoming) = next_event(watch).await
            && let ServerFrame::Event(Event::NewMessage { message }) = incoming.frame
        {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_answers_are_typed_and_refusals_carry_the_contracts_code() {
    let server = TestServer::secured();
    let anonymous = Client::new(server.url()).unwrap();
    let admin = anonymous.with_token(ADMIN_TOKEN);

    let officer = admin
        .create_officer("alice", Some("correct horse battery"), Some("Alice"))
        .await
        .unwrap();
    assert_eq!(officer.id.as_str(), "alice");
    let again = admin.create_officer("alice", None, None).await.unwrap_err();
    assert_eq!(
        (again.status(), again.code()),
        (Some(409), "officer_exists")
    );
    assert_eq!(again.api().unwrap().kind(), Some(ErrorKind::Conflict));
    let not_admin = anonymous
        .create_officer("bob", None, None)
        .await
        .unwrap_err();
    assert!(not_admin.is_unauthorized(), "{not_admin}");

    let session = anonymous
        .officer_login("alice", Some("correct horse battery"))
        .await
        .unwrap();
    let alice = anonymous.with_token(session.token);
    let wrong = anonymous
        .officer_login("alice", Some("wrong password!"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), "invalid_credentials");

    let customer = anonymous
        .customer_login_with_identity(&identity("cust-1"))
        .await
        .unwrap();
    assert!(customer.created);
    assert_eq!(customer.chat.customer_name.as_deref(), Some("Ada"));
    let chat = customer.chat.id.to_string();
    let me = anonymous.with_token(customer.token);

    let first = me.send(&chat, "hello", Some("m-1")).await.unwrap();
    let repeat = me.send(&chat, "hello", Some("m-1")).await.unwrap();
    assert!(first.created && !repeat.created);
    assert_eq!(first.message, repeat.message);
    let empty = me.send(&chat, "  ", None).await.unwrap_err();
    assert_eq!((empty.status(), empty.code()), (Some(422), "empty_content"));

    assert_eq!(alice.queue().await.unwrap().len(), 1);
    let claimed = alice.claim("alice", &chat).await.unwrap();
    assert_eq!(claimed.assigned_officer_id.unwrap().as_str(), "alice");
    let other = admin.create_officer("bob", Some("correct horse battery"), None);
    other.await.unwrap();
    let bob = anonymous.with_token(
        anonymous
            .officer_login("bob", Some("correct horse battery"))
            .await
            .unwrap()
            .token,
    );
    let lost = bob.claim("bob", &chat).await.unwrap_err();
    assert_eq!(
        (lost.status(), lost.code()),
        (Some(409), "already_assigned")
    );
    let missing = bob
        .claim("bob", "0193a7f0-0000-7000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "chat_not_found");

    for i in 2..=5 {
        alice
            .send(&chat, &format!("reply {i}"), None)
            .await
            .unwrap();
    }
    // The customer's first message, the claim's system entry, then the four replies.
    let all = me.all_messages(&chat).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(all[1].sender_type, chatcore::SenderType::System);
    assert_eq!(me.last_seq(&chat).await.unwrap(), 6);
    assert_eq!(me.messages_after(&chat, 3).await.unwrap().len(), 3);
    assert_eq!(alice.whoami().await.unwrap().subject, "alice");

    me.logout().await.unwrap();
    let revoked = me.chat(&chat).await.unwrap_err();
    assert!(revoked.is_unauthorized(), "{revoked}");
    assert!(matches!(
        anonymous.queue().await.unwrap_err(),
        Error::NoToken
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_replays_after_a_seq_and_a_refused_join_is_a_typed_error() {
    let server = TestServer::open();
    let client = Client::new(server.url()).unwrap();
    let customer = client.customer_login("cust-1", None, None).await.unwrap();
    let chat = customer.chat.id.to_string();
    let me = client.with_token(customer.token);
    for i in 1..=3 {
        me.send(&chat, &format!("m{i}"), None).await.unwrap();
    }
    let mut socket = me.connect().await.unwrap();
    assert_eq!(socket.identity().role, "customer");
    socket.join_chat(&chat, Some(1)).await.unwrap();
    // (The chat waits in the queue: its customer is also told their place, which is not
    // the point here.)
    let mut seqs = vec![2, 3];
    while !seqs.is_empty() {
        let incoming = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .unwrap()
            .unwrap();
        match incoming.frame {
            ServerFrame::Event(Event::NewMessage { message }) => {
                assert_eq!(message.seq, seqs.remove(0));
                assert!(incoming.text.contains("\"new_message\""));
            }
            ServerFrame::Event(Event::QueuePosition { position, .. }) => assert_eq!(position, 1),
            other => panic!("expected message {seqs:?}, got {other:?}"),
        }
    }
    // The raw read hands out the text as sent, unparsed.
    me.send(&chat, "m4", None).await.unwrap();
    let raw: serde_json::Value = loop {
        let text = tokio::time::timeout(PATIENCE, socket.next_text())
            .await
            .unwrap()
            .unwrap();
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        if raw["type"] != "queue_position" {
            break raw;
        }
    };
    assert_eq!(
        (&raw["type"], &raw["message"]["seq"]),
        (&serde_json::json!("new_message"), &serde_json::json!(4))
    );
    let refused = socket.join_officers().await.unwrap_err();
    assert_eq!(refused.code(), "forbidden");
    assert_eq!(refused.api().unwrap().kind(), Some(ErrorKind::Forbidden));

    let stranger = client.customer_login("cust-2", None, None).await.unwrap();
    let mut other = client.with_token(stranger.token).connect().await.unwrap();
    let not_theirs = other.join_chat(&chat, None).await.unwrap_err();
    assert_eq!(not_theirs.code(), "forbidden");

    let bad = client
        .with_token("not-a-token")
        .connect()
        .await
        .unwrap_err();
    assert!(bad.is_unauthorized(), "{bad}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_survives_a_restart_without_missing_or_repeating_and_ends_on_logout() {
    let mut server = TestServer::open();
    let client = Client::new(server.url()).unwrap();
    let customer = client.customer_login("cust-1", None, None).await.unwrap();
    let chat = customer.chat.id.to_string();
    let me = client.with_token(customer.token.clone());
    me.send(&chat, "before the watch", None).await.unwrap();

    let mut watch = Watch::chat(me.clone(), &chat, me.last_seq(&chat).await.unwrap());
    match next_event(&mut watch).await {
        WatchEvent::Joined { room, after_seq } => {
            assert_eq!((room, after_seq), (format!("chat:{chat}"), Some(1)));
        }
        other => panic!("expected joined, got {other:?}"),
    }
    me.send(&chat, "two", None).await.unwrap();
    assert_eq!(next_message(&mut watch).await.seq, 2);

    // Restarted on the same port and file; messages sent before the watch is back are
    // replayed from afterSeq, once.
    let restart = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    });
    let mut saw_reconnect = false;
    loop {
        match next_event(&mut watch).await {
            WatchEvent::Reconnecting { .. } => saw_reconnect = true,
            WatchEvent::Joined { after_seq, .. } => {
                assert_eq!(after_seq, Some(2));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_reconnect);
    let server = restart.await.unwrap();
    for text in ["three", "four"] {
        me.send(&chat, text, None).await.unwrap();
    }
    assert_eq!(next_message(&mut watch).await.seq, 3);
    assert_eq!(next_message(&mut watch).await.seq, 4);
    assert_eq!(watch.last_seq(), Some(4));

    // A logout ends the watch for good (4401), it does not reconnect.
    me.logout().await.unwrap();
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match watch.next().await {
                Ok(WatchEvent::Reconnecting { reason, .. }) => panic!("reconnected: {reason}"),
                Ok(_) => continue,
                Err(e) => return e,
            }
        }
    })
    .await
    .expect("the watch ends");
    assert!(ended.is_unauthorized(), "{ended}");
    drop(server);
}
