//! `gen-db` writes a database the real server serves correctly: generated on a small
//! scale (200 chats, 5,000 messages), then read through chat-http over HTTP: the queue,
//! every officer's chats, whole histories paged both ways, and new messages continuing
//! each chat's seq. Then `chat-bench read --dataset` runs against it.

mod common;

use std::collections::HashMap;

use chat_client::{ChatStatus, ChatsFilter, Client, CustomerSession, Message, Page};
use chatcore::SenderType;
use common::{ADMIN_TOKEN, CUSTOMER_SECRET, bench, passed, row, server_on, strings, target_args};

/// Logs a customer of the generated data in (they must exist): a client acting as them,
/// and their session.
async fn customer(server: &Client, id: &str) -> (Client, CustomerSession) {
    let signature = chatcore::customer_signature(CUSTOMER_SECRET.as_bytes(), id);
    let session = server
        .customer_login(id, None, Some(&signature))
        .await
        .unwrap();
    assert!(!session.created, "{id} should exist in the generated data");
    (server.with_token(session.token.clone()), session)
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_database_is_served_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gen.db");
    let generated = bench(&strings(&[
        "gen-db",
        db.to_str().unwrap(),
        "--chats",
        "200",
        "--messages",
        "5000",
        "--pending",
        "10",
        "--chats-per-officer",
        "20",
    ]));
    assert_eq!(
        generated.code, 0,
        "{:#}\n{}",
        generated.report, generated.stderr
    );
    let r = row(&generated.report["scenarios"][0], 0);
    assert_eq!(
        (r["chats"].as_u64(), r["messages"].as_u64()),
        (Some(200), Some(5000))
    );
    assert_eq!(
        (r["officers"].as_u64(), r["bigChatMessages"].as_u64()),
        (Some(10), Some(500))
    );
    // A second run refuses to overwrite without --force.
    let again = bench(&strings(&[
        "gen-db",
        db.to_str().unwrap(),
        "--chats",
        "2",
        "--messages",
        "2",
    ]));
    assert_eq!(again.code, 3);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);

    let server = server_on(&db);
    let client = Client::new(server.url()).unwrap();
    let admin = client.with_token(ADMIN_TOKEN);

    // The queue: the 10 newest chats, pending, oldest first.
    let queue = admin.queue().await.unwrap();
    let customers: Vec<&str> = queue
        .iter()
        .map(|c| {
            assert_eq!(
                (c.status, &c.assigned_officer_id),
                (ChatStatus::Pending, &None)
            );
            c.customer_id.as_str()
        })
        .collect();
    let expected: Vec<String> = (190..200).map(|i| format!("gen-c{i}")).collect();
    assert_eq!(customers, expected);

    // Every officer's chats: the 190 assigned chats, each exactly once, round-robin.
    let mut seen: HashMap<String, String> = HashMap::new();
    for o in 0..10 {
        let officer = format!("gen-o{o}");
        let chats = admin
            .officer_chats(&officer, ChatsFilter::Open)
            .await
            .unwrap();
        assert_eq!(chats.len(), 19, "{officer}");
        let mut previous = i64::MAX;
        for chat in &chats {
            let owner = chat.assigned_officer_id.as_ref().map(|o| o.as_str());
            assert_eq!(owner, Some(officer.as_str()));
            assert_eq!(chat.status, ChatStatus::Assigned);
            let customer = chat.customer_id.as_str();
            let i: usize = customer.strip_prefix("gen-c").unwrap().parse().unwrap();
            assert_eq!(i % 10, o, "{customer} should belong to gen-o{}", i % 10);
            let activity = chat.updated_at.unix_millis();
            assert!(activity <= previous, "newest activity first");
            previous = activity;
            assert!(seen.insert(customer.to_string(), officer.clone()).is_none());
        }
    }
    assert_eq!(seen.len(), 190);

    // The large chat: 500 messages, dense, paged both ways; the next send is seq 501.
    let (me, session) = customer(&client, "gen-c0").await;
    let owner = session
        .chat
        .assigned_officer_id
        .as_ref()
        .map(|o| o.as_str());
    assert_eq!(owner, Some("gen-o0"));
    let chat_id = session.chat.id.to_string();
    let history = me.all_messages(&chat_id).await.unwrap();
    assert_eq!(seqs(&history), (1..=500).collect::<Vec<_>>());
    let last_page = me
        .messages(
            &chat_id,
            Page {
                before: Some(501),
                limit: Some(100),
                ..Page::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(seqs(&last_page), (401..=500).collect::<Vec<_>>());
    let sent = me.send(&chat_id, "a new message", None).await.unwrap();
    assert!(sent.created);
    assert_eq!(sent.message.seq, 501);

    // An ordinary assigned chat: customer and officer take turns; seq continues.
    let (me, session) = customer(&client, "gen-c7").await;
    let chat_id = session.chat.id.to_string();
    let history = me.all_messages(&chat_id).await.unwrap();
    let n = history.len() as u64;
    assert!(n == 22 || n == 23, "4,500 messages over 199 chats: {n}");
    assert_eq!(seqs(&history), (1..=n).collect::<Vec<_>>());
    for m in &history {
        let officer_turn = m.seq % 2 == 0;
        let (kind, sender) = if officer_turn {
            (SenderType::Officer, "gen-o7")
        } else {
            (SenderType::Customer, "gen-c7")
        };
        assert_eq!((m.sender_type, m.sender_id.as_str()), (kind, sender));
        assert_eq!(m.chat_id, session.chat.id);
    }
    let sent = me.send(&chat_id, "a new message", None).await.unwrap();
    assert_eq!(sent.message.seq, n + 1);

    // A pending chat holds only the customer's messages.
    let (me, session) = customer(&client, "gen-c195").await;
    let history = me.all_messages(&session.chat.id.to_string()).await.unwrap();
    assert!(!history.is_empty());
    assert!(
        history
            .iter()
            .all(|m| m.sender_type == SenderType::Customer)
    );

    // The read scenario on the dataset.
    let mut args = target_args(&server);
    args.extend(strings(&[
        "read",
        "--dataset",
        "gen",
        "--requests",
        "10",
        "--page-size",
        "50",
    ]));
    let read = tokio::task::spawn_blocking(move || bench(&args))
        .await
        .unwrap();
    assert_eq!(read.code, 0, "{:#}\n{}", read.report, read.stderr);
    let page = row(passed(&read, "read"), 0);
    assert_eq!(page["items"], 50);
    assert_eq!(row(passed(&read, "read"), 2)["items"], 19);
}
