//! Routing across two nodes on one PostgreSQL database: an officer's presence is known on
//! both nodes and forgotten once their node dies; in automatic mode a chat started on one
//! node goes to an officer connected to the other; and when both nodes assign at once,
//! no officer passes capacity and no chat is given twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::server::Api;
use crate::ws;

async fn officers(api: &Api, token: &str) -> Vec<Value> {
    let (status, listed) = api
        .call(Method::GET, "/api/officers", Some(token), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{listed}");
    listed.as_array().unwrap().clone()
}

async fn connected(api: &Api, token: &str, officer: &str) -> bool {
    officers(api, token)
        .await
        .iter()
        .any(|o| o["id"] == officer && o["connected"] == true)
}

/// Waits (up to `limit`) until `officer`'s presence on `api`'s node is `expected`.
async fn presence_becomes(api: &Api, token: &str, officer: &str, expected: bool, limit: Duration) {
    let deadline = Instant::now() + limit;
    while connected(api, token, officer).await != expected {
        assert!(
            Instant::now() < deadline,
            "{officer} not {} within {limit:?}",
            if expected {
                "connected"
            } else {
                "disconnected"
            }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Amy's socket is on node A; node B knows she is connected. Node A is killed: node B
/// forgets her once A's presence has gone unrenewed for the ttl (3 s here), tells the
/// officers' room, and the time it took stays within the ttl and a heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_nodes_officers_are_disconnected_after_the_presence_ttl() {
    let Some(mut nodes) = crate::two_nodes(
        "a_dead_nodes_officers_are_disconnected_after_the_presence_ttl",
        &["--presence-ttl", "3s"],
    ) else {
        return;
    };
    let (a, b) = (nodes.a.api.clone(), nodes.b.api.clone());
    let amy = a.officer("amy").await;
    let bob = b.officer("bob").await;
    let mut bobs = ws(&b, &bob).await;
    bobs.send(json!({ "type": "join_officers" })).await;
    bobs.next_of("joined").await;
    let _amys = ws(&a, &amy).await;
    let heard = bobs
        .next_where("officer_updated", |f| f["officer"]["id"] == "amy")
        .await;
    assert_eq!(heard["officer"]["connected"], true, "{heard}");
    presence_becomes(&b, &bob, "amy", true, Duration::from_secs(5)).await;

    let killed = Instant::now();
    nodes.a.kill();
    let gone = bobs
        .next_where("officer_updated", |f| {
            f["officer"]["id"] == "amy" && f["officer"]["connected"] == false
        })
        .await;
    let took = killed.elapsed();
    eprintln!("a killed node's officer was disconnected after {took:?} (ttl 3 s)");
    assert_eq!(gone["officer"]["connected"], false);
    assert!(!connected(&b, &bob, "amy").await);
    // Forgotten after between a ttl (3 s) and a ttl and a heartbeat (1 s) and a bit.
    assert!(
        took >= Duration::from_secs(2) && took <= Duration::from_secs(6),
        "disconnected after {took:?}"
    );
    // Bob, on the living node, is still connected.
    assert!(connected(&b, &bob, "bob").await);
}

/// Automatic mode: Amy is connected to node A only; a customer logs in on node B, and
/// the login's answer already names her; her socket on A hears `chat_assigned`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chat_started_on_one_node_goes_to_an_officer_on_the_other() {
    let Some(nodes) = crate::two_nodes(
        "a_chat_started_on_one_node_goes_to_an_officer_on_the_other",
        &["--assignment", "auto"],
    ) else {
        return;
    };
    let (a, b) = (&nodes.a.api, &nodes.b.api);
    let amy = a.officer("amy").await;
    let mut amys = ws(a, &amy).await;
    presence_becomes(b, &amy, "amy", true, Duration::from_secs(5)).await;
    let (token, chat) = b.customer("cust-1").await;
    let (status, answered) = b
        .call(
            Method::GET,
            &format!("/api/chats/{chat}"),
            Some(&token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        (&answered["status"], &answered["assignedOfficerId"]),
        (&json!("assigned"), &json!("amy")),
        "{answered}"
    );
    let assigned = amys
        .next_where("chat_assigned", |f| f["chat"]["id"] == chat.as_str())
        .await;
    assert_eq!(assigned["chat"]["assignedOfficerId"], "amy");
}

/// Automatic mode, a default capacity of 2: Amy on node A, Bob on node B, and twelve
/// customers logging in at once through both nodes. Exactly four chats are given, two
/// each, each once; the other eight wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_assigning_at_once_keep_capacity_and_give_each_chat_once() {
    const CUSTOMERS: usize = 12;
    let Some(nodes) = crate::two_nodes(
        "two_nodes_assigning_at_once_keep_capacity_and_give_each_chat_once",
        &["--assignment", "auto", "--officer-capacity", "2"],
    ) else {
        return;
    };
    let apis = [nodes.a.api.clone(), nodes.b.api.clone()];
    let amy = apis[0].officer("amy").await;
    let bob = apis[1].officer("bob").await;
    let _amys = ws(&apis[0], &amy).await;
    let _bobs = ws(&apis[1], &bob).await;
    for officer in ["amy", "bob"] {
        presence_becomes(&apis[0], &amy, officer, true, Duration::from_secs(5)).await;
        presence_becomes(&apis[1], &amy, officer, true, Duration::from_secs(5)).await;
    }
    let start = Arc::new(tokio::sync::Barrier::new(CUSTOMERS));
    let logins: Vec<_> = (0..CUSTOMERS)
        .map(|c| {
            let (api, start) = (apis[c % 2].clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                api.customer(&format!("cust-{c}")).await
            })
        })
        .collect();
    let mut chats = Vec::new();
    for login in logins {
        chats.push(login.await.unwrap());
    }
    // The sweep has had its chance to act too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listed = officers(&apis[1], &bob).await;
    for o in &listed {
        assert_eq!(o["openChats"], 2, "{listed:?}");
    }
    let (status, queue) = apis[0]
        .call(Method::GET, "/api/officers/queue", Some(&amy), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(queue.as_array().unwrap().len(), CUSTOMERS - 4, "{queue}");
    // Each chat given at most once: one system entry for each that was.
    let mut given = 0;
    for (token, chat) in &chats {
        let entries = apis[0].all_messages(token, chat).await;
        let assignments = entries
            .iter()
            .filter(|m| m["senderType"] == "system")
            .count();
        assert!(assignments <= 1, "{chat}: {entries:?}");
        given += assignments;
    }
    assert_eq!(given, 4);
}

/// A node that stops cleanly (SIGTERM) takes its officers' presence with it: the other
/// node sees Amy leave at once, not after the ttl (the default, 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_stops_takes_its_officers_presence_with_it() {
    let Some(mut nodes) =
        crate::two_nodes("a_node_that_stops_takes_its_officers_presence_with_it", &[])
    else {
        return;
    };
    let (a, b) = (nodes.a.api.clone(), nodes.b.api.clone());
    let amy = a.officer("amy").await;
    let bob = b.officer("bob").await;
    let _amys = ws(&a, &amy).await;
    presence_becomes(&b, &bob, "amy", true, Duration::from_secs(5)).await;
    let stopped = Instant::now();
    tokio::task::block_in_place(|| nodes.a.stop());
    presence_becomes(&b, &bob, "amy", false, Duration::from_secs(10)).await;
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: the ttl, not the stop"
    );
}
