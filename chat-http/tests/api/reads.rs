//! What one read can make the server hold: a page of messages stops at the byte cap
//! (`--max-page-bytes`, default 1 MiB), however large the messages and whatever `limit`
//! asks, and a client that pages on from the last seq it got still reads everything.
//! The attack of the security review: a chat of 1,000 messages of 4,000 control
//! characters, each escaped to six bytes, made a `limit=1000` page 24 MB.

use chatcore::Limits;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, spawn_app};

const CAP: usize = 1024 * 1024;

/// The raw body of a page, and its messages' seqs.
async fn page(app: &TestApp, token: &str, chat: &str, query: &str) -> (usize, Vec<u64>) {
    let resp = app
        .client
        .get(app.url(&format!("/api/chats/{chat}/messages?{query}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("page request");
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.expect("page body");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON page");
    let seqs = body
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    (bytes.len(), seqs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_huge_messages_stops_at_the_byte_cap_and_paging_on_reads_them_all() {
    let app = spawn_app(Options {
        limits: Limits::none(),
        ..Options::open()
    })
    .await;
    let (customer, chat) = app.new_customer("cust-1").await;
    // One visible character (a message of nothing visible is refused as empty), then
    // control characters, each escaped to six bytes.
    let long = format!("x{}", "\u{1}".repeat(3999));
    const MESSAGES: u64 = 300;
    for _ in 0..MESSAGES {
        app.send_message(Some(&customer), &chat, json!({ "content": long }))
            .await
            .expect(201);
    }

    let (bytes, first) = page(&app, &customer, &chat, "after=0&limit=1000").await;
    assert!(bytes <= CAP + 1024, "a page of {bytes} bytes");
    assert!(
        !first.is_empty() && (first.len() as u64) < MESSAGES,
        "{} messages in the first page",
        first.len()
    );
    // Paging on from the last seq reads every message once, in order.
    let mut seen = first;
    loop {
        let after = *seen.last().unwrap();
        let (bytes, next) =
            page(&app, &customer, &chat, &format!("after={after}&limit=1000")).await;
        assert!(bytes <= CAP + 1024, "a page of {bytes} bytes");
        if next.is_empty() {
            break;
        }
        seen.extend(next);
    }
    assert_eq!(seen, (1..=MESSAGES).collect::<Vec<_>>());
    // Backwards too: the newest that fit below `before`, ascending.
    let (bytes, newest) = page(&app, &customer, &chat, "before=301&limit=1000").await;
    assert!(bytes <= CAP + 1024);
    assert_eq!(*newest.last().unwrap(), MESSAGES);
    assert!(newest.windows(2).all(|w| w[1] == w[0] + 1));
    app.stop().await;
}
