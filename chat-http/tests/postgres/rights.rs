//! Rights that change on one node, enforced on the sockets of the other: a chat claimed
//! on node B leaves the rooms of officers reading it on node A before anything more of
//! it reaches them, and a logout or a disabled officer on B closes the sockets on A.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{Ws, frames_until_quiet, two_nodes, ws};

const ADMIN: &str = "admin-token-for-two-node-tests-0123456789";

/// The close code the server ends the socket with, and how long it took.
async fn close_code(ws: &mut Ws, wait: Duration) -> (Option<u16>, Duration) {
    let start = Instant::now();
    let code = tokio::time::timeout(wait, async {
        loop {
            match ws.0.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the socket was not closed in time");
    (code, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_on_node_b_ends_the_rooms_of_readers_on_node_a() {
    const CHATS: usize = 10;
    let Some(nodes) = two_nodes("a_claim_on_node_b_ends_the_rooms_of_readers_on_node_a", &[])
    else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (&node_a.api, &node_b.api);
    let bob = a.officer("bob").await;
    let alice = b.officer("alice").await;
    let mut chats = Vec::new();
    for i in 0..CHATS {
        let (customer, chat) = b.customer(&format!("cust-{i}")).await;
        let (status, _) = b.send(&customer, &chat, "hello").await.unwrap();
        assert_eq!(status, 201);
        chats.push((customer, chat));
    }
    // Bob, on node A, reads every pending chat.
    let mut bobs = ws(a, &bob).await;
    for (_, chat) in &chats {
        bobs.join(chat, 0).await;
        assert_eq!(bobs.next_of("new_message").await["message"]["seq"], 1);
    }
    // On node B, each chat is claimed and its customer at once writes a secret: the
    // claim's notice and the message's race to node A.
    for (i, (customer, chat)) in chats.iter().enumerate() {
        let (status, body) = b.claim(&alice, "alice", chat).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, _) = b
            .send(customer, chat, &format!("secret {i}"))
            .await
            .unwrap();
        assert_eq!(status, 201);
    }
    let frames = frames_until_quiet(&mut bobs, Duration::from_secs(2)).await;
    let leaked: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "new_message")
        .collect();
    assert!(leaked.is_empty(), "bob read after the claim: {leaked:?}");
    let mut lost: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] == "error" && f["code"] == "forbidden")
        .map(|f| f["chatId"].as_str().unwrap())
        .collect();
    lost.sort_unstable();
    let mut all: Vec<&str> = chats.iter().map(|(_, c)| c.as_str()).collect();
    all.sort_unstable();
    assert_eq!(
        lost, all,
        "every room is left, with a forbidden frame: {frames:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_node_b_closes_the_tokens_sockets_on_node_a_within_a_second() {
    let Some(nodes) = two_nodes(
        "a_logout_on_node_b_closes_the_tokens_sockets_on_node_a",
        &[],
    ) else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (&node_a.api, &node_b.api);
    let token = a.officer("amy").await;
    let (customer, chat) = a.customer("cust-1").await;
    let mut on_a = ws(a, &token).await;
    let mut on_b = ws(b, &token).await;
    let mut customers = ws(a, &customer).await;

    b.expect(Method::POST, "/api/logout", Some(&token), None, 204)
        .await;
    for socket in [&mut on_a, &mut on_b] {
        let (code, took) = close_code(socket, Duration::from_secs(5)).await;
        assert_eq!(code, Some(4401));
        assert!(took < Duration::from_secs(1), "closed after {took:?}");
    }
    // Another session goes on.
    customers.join(&chat, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_officer_on_node_b_closes_their_sockets_on_node_a() {
    let Some(nodes) = two_nodes(
        "disabling_an_officer_on_node_b_closes_their_sockets",
        &["--admin-token", ADMIN],
    ) else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (&node_a.api, &node_b.api);
    let password = "correct horse battery staple";
    let mut tokens = Vec::new();
    for id in ["bob", "carol"] {
        tokens.push(a.officer_as(ADMIN, id, password).await);
    }
    let mut bobs = ws(a, &tokens[0]).await;
    let mut carols = ws(a, &tokens[1]).await;

    b.expect(
        Method::POST,
        "/api/officers/bob/disable",
        Some(ADMIN),
        None,
        200,
    )
    .await;
    let (code, took) = close_code(&mut bobs, Duration::from_secs(5)).await;
    assert_eq!(code, Some(4401));
    assert!(took < Duration::from_secs(1), "closed after {took:?}");
    a.expect(
        Method::POST,
        "/api/officers/login",
        None,
        Some(json!({ "officerId": "bob", "password": password })),
        403,
    )
    .await;
    carols.send(json!({ "type": "join_officers" })).await;
    assert_eq!(carols.next_of("joined").await["room"], "officers:all");
}
