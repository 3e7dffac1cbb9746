//! Webhooks from two nodes on one PostgreSQL database, to one real receiver (which
//! checks every signature, counts duplicates and checks order per chat): events made
//! on both nodes, for the same chats, are delivered once each and in order per chat
//! (each lane claimed by one node at a time), to a plain HTTP receiver and to an https
//! one that each node verifies against the CA it was given; a webhook created through
//! one node gets the events of the other, which found none before; and a node killed
//! mid-delivery hands its deliveries over to the other once its lease expires.

use std::time::{Duration, Instant};

use crate::receiver::Receiver;
use crate::tls::TestCa;
use crate::{TwoNodes, two_nodes};

const SECRET: &str = "whsec-two-nodes-0123456789";
const ADMIN: &str = "admin-token-two-nodes-0123456789abcdef";

/// `chats` chats, each written through both nodes at once: its customer (`prefix-i`) on
/// A sends `per_side` messages while its officer, who claimed it on B, sends as many on
/// B. Returns how many events that makes: each chat's creation, the claim's entry and
/// change, and the messages.
async fn both_nodes_write(nodes: &TwoNodes, prefix: &str, chats: usize, per_side: usize) -> usize {
    let (a, b) = (nodes.a.api.clone(), nodes.b.api.clone());
    let officer = b.officer("amy").await;
    let mut tasks = Vec::new();
    for i in 0..chats {
        let (customer, chat) = a.customer(&format!("{prefix}-{i}")).await;
        let (status, body) = b.claim(&officer, "amy", &chat).await.unwrap();
        assert_eq!(status, 200, "{body}");
        for (api, token) in [(a.clone(), customer), (b.clone(), officer.clone())] {
            let chat = chat.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..per_side {
                    let (status, _) = api.send(&token, &chat, &format!("#{n}")).await.unwrap();
                    assert_eq!(status, 201);
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    chats * (3 + 2 * per_side)
}

/// Waits for `total` events, and a second more for any sent twice: each arrived once,
/// signed and in order per chat.
async fn delivered_once_each(receiver: &Receiver, total: usize) {
    receiver.wait_for(total, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    receiver.assert_clean();
    receiver.log(|l| {
        assert_eq!(l.taken.len(), total);
        assert_eq!(l.duplicates(), 0, "an event was sent by both nodes");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_from_two_nodes_are_delivered_once_each_in_order_per_chat() {
    let receiver = Receiver::start(SECRET).await;
    let args = [
        "--webhook-url",
        receiver.url.as_str(),
        "--webhook-secret",
        SECRET,
        "--webhook-poll",
        "200ms",
    ];
    let Some(nodes) = two_nodes(
        "events_from_two_nodes_are_delivered_once_each_in_order_per_chat",
        &args,
    ) else {
        return;
    };
    let total = both_nodes_write(&nodes, "cust", 8, 25).await;
    delivered_once_each(&receiver, total).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_https_receiver_gets_both_nodes_events_once_each_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("bank internal CA");
    let ca_file = ca.pem_file(dir.path());
    let receiver = Receiver::start_tls(SECRET, ca.acceptor(&["localhost"])).await;
    assert!(receiver.url.starts_with("https://localhost:"));
    let args = [
        "--webhook-url",
        receiver.url.as_str(),
        "--webhook-secret",
        SECRET,
        "--webhook-ca",
        ca_file.to_str().unwrap(),
        "--webhook-poll",
        "200ms",
    ];
    let Some(nodes) = two_nodes(
        "an_https_receiver_gets_both_nodes_events_once_each_in_order",
        &args,
    ) else {
        return;
    };
    let total = both_nodes_write(&nodes, "tls", 4, 10).await;
    delivered_once_each(&receiver, total).await;
    receiver.log(|l| {
        // Each node keeps its connections between a lane's events: not one per event.
        assert!(
            (1..total).contains(&l.tls_connections),
            "{} TLS connections for {total} events",
            l.tls_connections
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_created_through_one_node_gets_the_other_nodes_events() {
    let Some(nodes) = two_nodes(
        "a_webhook_created_through_one_node_gets_the_other_nodes_events",
        &["--admin-token", ADMIN],
    ) else {
        return;
    };
    // With no webhook anywhere, node B's changes wake none of its delivery threads.
    let before = nodes.b.thread_switches("chat-webhooks");
    assert!(!before.is_empty(), "no webhook thread on node B");
    nodes
        .b
        .api
        .send_paced("quiet", 50, Duration::from_millis(5))
        .await;
    let quiet = nodes.b.thread_switches_since("chat-webhooks", &before);
    assert!(
        quiet < 25,
        "{quiet} switches on node B for 51 events without a webhook"
    );
    // A webhook created through node A: node B learns of it at its next read of the
    // webhooks, and until then its events are found by the polls; none is missed.
    let receiver = Receiver::start(SECRET).await;
    nodes
        .a
        .api
        .expect(
            reqwest::Method::POST,
            "/api/webhooks",
            Some(ADMIN),
            Some(serde_json::json!({ "url": receiver.url, "secret": SECRET })),
            201,
        )
        .await;
    nodes
        .b
        .api
        .send_paced("busy", 50, Duration::from_millis(5))
        .await;
    // The chat's creation and its 50 messages, all made on node B.
    delivered_once_each(&receiver, 51).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_delivery_hands_its_deliveries_over() {
    let receiver = Receiver::start(SECRET).await;
    receiver.delay(Duration::from_millis(100));
    let args = [
        "--webhook-url",
        receiver.url.as_str(),
        "--webhook-secret",
        SECRET,
        "--webhook-timeout",
        "1s",
        "--webhook-lease",
        "3s",
        "--webhook-poll",
        "200ms",
    ];
    let Some(mut nodes) = two_nodes(
        "a_node_killed_mid_delivery_hands_its_deliveries_over",
        &args,
    ) else {
        return;
    };
    let a = nodes.a.api.clone();
    // Events made on node A: it wakes first and takes most lanes.
    let chats = 16;
    let per_chat = 30;
    let mut tasks = Vec::new();
    for i in 0..chats {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let (token, chat) = a.customer(&format!("cust-{i}")).await;
            for n in 0..per_chat {
                a.send(&token, &chat, &format!("#{n}")).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = chats * (1 + per_chat);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.distinct() < 40 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = Instant::now();
    let before = receiver.distinct();
    nodes.a.kill();
    assert!(before < total, "all delivered before the kill");
    // Node B takes everything over (A's lanes once their leases expire).
    receiver.wait_for(total, Duration::from_secs(90)).await;
    eprintln!(
        "node A killed after {before} of {total} events; all delivered {:?} later",
        killed_at.elapsed()
    );
    receiver.assert_clean();
    let duplicates = receiver.log(|l| l.duplicates());
    // At least once: what A had sent but not yet recorded may come again, at most a
    // batch (16) for each of its lanes (16 at once).
    assert!(duplicates <= 16 * 16, "{duplicates} duplicates");
}
