//! The lifecycle (contract version 2) across two nodes on one database: a change made on
//! one node is heard on the other's sockets (the former owner's `chat_unassigned` and
//! loss of the room, the new owner's `chat_assigned`, the queue's events, the customer's
//! `chat_updated`), and changes racing through both nodes have one outcome, with dense
//! seqs: two reopens of one chat, a transfer and a resolution, and a customer's logins
//! after their chat ended. (A claim racing a release: `stale_reads.rs`.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

use crate::server::Api;
use crate::{PATIENCE, Ws, frames_until_quiet, two_nodes, ws};

/// How many chats each race is run on.
const CHATS: usize = 6;

/// `POST /api/chats/{chat}/{action}`: the status and the body (a chat or an error).
pub(crate) async fn act(
    api: &Api,
    token: &str,
    chat: &str,
    action: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api.call(
        Method::POST,
        &format!("/api/chats/{chat}/{action}"),
        Some(token),
        body,
    )
    .await
    .unwrap_or_else(|e| panic!("{action} {chat}: no answer: {e}"))
}

/// A lifecycle change that must succeed; returns the chat.
#[track_caller]
pub(crate) fn must(answer: (u16, Value)) -> Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1
}

/// A customer login (open mode): the whole answer (`chat`, `token`, `created`).
async fn customer_login(api: &Api, id: &str) -> Value {
    api.expect(
        Method::POST,
        "/api/customers/login",
        None,
        Some(json!({ "customerId": id })),
        200,
    )
    .await
}

/// Reads frames until `done` holds for what arrived (failing after a while); returns
/// them all.
async fn frames_until(ws: &mut Ws, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut got: Vec<Value> = Vec::new();
    let wait = async {
        while !done(&got) {
            match ws.0.next().await {
                Some(Ok(Message::Text(t))) => {
                    got.push(serde_json::from_str(&t).expect("JSON frame"));
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended waiting for {what}: {other:?}; got {got:?}"),
            }
        }
    };
    if tokio::time::timeout(PATIENCE, wait).await.is_err() {
        panic!("{what}: not in time; got {got:?}");
    }
    got
}

/// Whether `frames` hold one of `kind` about `chat` (by `chat.id`, `message.chatId` or
/// `chatId`), and, for `chat_updated`, with `change`.
fn has(frames: &[Value], kind: &str, chat: &str, change: Option<&str>) -> bool {
    frames
        .iter()
        .any(|f| f["type"] == kind && about(f, chat) && change.is_none_or(|c| f["change"] == c))
}

fn about(frame: &Value, chat: &str) -> bool {
    frame["chat"]["id"] == chat || frame["message"]["chatId"] == chat || frame["chatId"] == chat
}

/// The chat's whole timeline, read page by page on `api`; checks that its seqs are
/// 1..=N with no gap and no duplicate.
pub(crate) async fn dense_timeline(api: &Api, token: &str, chat: &str) -> Vec<Value> {
    let all = api.all_messages(token, chat).await;
    let seqs: Vec<u64> = all.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    let n = all.len() as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "chat {chat}: seqs dense");
    all
}

/// The kinds of a timeline's system entries, in seq order.
pub(crate) fn entry_kinds(timeline: &[Value]) -> Vec<String> {
    timeline
        .iter()
        .filter(|m| m["senderType"] == "system")
        .map(|m| m["event"]["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The timeline's one system entry of `kind`.
#[track_caller]
pub(crate) fn by_kind<'t>(timeline: &'t [Value], kind: &str) -> &'t Value {
    let mut found = timeline
        .iter()
        .filter(|m| m["senderType"] == "system" && m["event"]["kind"] == kind);
    let entry = found
        .next()
        .unwrap_or_else(|| panic!("no {kind} entry: {timeline:?}"));
    assert!(found.next().is_none(), "two {kind} entries: {timeline:?}");
    entry
}

/// A chat for customer `id`, logged in on `api`, with one message, claimed by `officer`:
/// (customer's token, chat id). The customer's message is seq 1, the claim's system entry
/// (`claimed`) seq 2.
pub(crate) async fn assigned_chat(api: &Api, id: &str, officer: (&str, &str)) -> (String, String) {
    let (customer, chat) = api.customer(id).await;
    let (status, body) = api.send(&customer, &chat, "Hello?").await.unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = api.claim(officer.1, officer.0, &chat).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["lastSeq"], 2,
        "the claim's entry follows the message: {body}"
    );
    (customer, chat)
}

/// Alice transfers her chat to Bob through node B. On node A, Alice's socket hears
/// `chat_unassigned` and loses the chat's room with a `forbidden` error frame naming it,
/// then hears nothing more of the chat, whatever is written to it after; Bob's socket on
/// node A hears `chat_assigned` without joining anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_on_node_b_moves_the_chat_between_sockets_on_node_a() {
    let Some(nodes) = two_nodes("a_transfer_on_node_b_moves_the_chat_between_sockets", &[]) else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (&node_a.api, &node_b.api);
    let alice = a.officer("alice").await;
    let bob = a.officer("bob").await;
    let (customer, chat) = assigned_chat(a, "cust-1", ("alice", &alice)).await;

    let mut alices = ws(a, &alice).await;
    alices.join(&chat, 0).await;
    assert_eq!(alices.next_of("new_message").await["message"]["seq"], 1);
    let claimed = alices.next_of("new_message").await;
    assert_eq!(
        (
            &claimed["message"]["seq"],
            &claimed["message"]["senderType"],
            &claimed["message"]["event"]["kind"],
            &claimed["message"]["event"]["officerId"]
        ),
        (
            &json!(2),
            &json!("system"),
            &json!("claimed"),
            &json!("alice")
        ),
        "{claimed}"
    );
    let mut bobs = ws(a, &bob).await;

    let moved = must(
        act(
            b,
            &alice,
            &chat,
            "transfer",
            Some(json!({ "officerId": "bob" })),
        )
        .await,
    );
    assert_eq!(
        (&moved["status"], &moved["assignedOfficerId"]),
        (&json!("assigned"), &json!("bob"))
    );

    // Alice: told the chat is no longer hers, and out of its room.
    let room = format!("chat:{chat}");
    let frames = frames_until(
        &mut alices,
        "alice's unassignment and loss of the room",
        |f| {
            has(f, "chat_unassigned", &chat, None)
                && f.iter().any(|f| f["type"] == "error" && f["room"] == room)
        },
    )
    .await;
    let unassigned = frames
        .iter()
        .find(|f| f["type"] == "chat_unassigned")
        .unwrap();
    assert_eq!(unassigned["chat"]["assignedOfficerId"], "bob");
    let lost = frames.iter().find(|f| f["type"] == "error").unwrap();
    assert_eq!(
        (&lost["code"], &lost["chatId"]),
        (&json!("forbidden"), &json!(chat))
    );
    // Before losing the room she may have seen the transfer's own entry (seq 3, after the
    // claim's), no more.
    let lost_at = frames.iter().position(|f| f["type"] == "error").unwrap();
    for f in &frames[..lost_at] {
        if f["type"] == "new_message" {
            assert_eq!(f["message"]["event"]["kind"], "transferred", "{f}");
            assert_eq!(f["message"]["seq"], 3, "{f}");
        }
        assert_ne!(f["type"], "chat_updated", "alice heard the change: {f}");
    }
    // (`chat_unassigned` comes on her own topic, before or after the room's end.)
    assert!(
        frames[lost_at + 1..]
            .iter()
            .all(|f| f["type"] == "chat_unassigned" || !about(f, &chat)),
        "{frames:?}"
    );

    // Bob: told the chat is his, with no join.
    let assigned = bobs.next_of("chat_assigned").await;
    assert_eq!(
        (
            &assigned["chat"]["id"],
            &assigned["chat"]["assignedOfficerId"]
        ),
        (&json!(chat), &json!("bob"))
    );

    // Both sides write on; Bob reads it all on node A, Alice hears none of it.
    bobs.join(&chat, 0).await;
    let (status, body) = b.send(&bob, &chat, "Bob here").await.unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = a.send(&customer, &chat, "Hi Bob").await.unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = b.send(&alice, &chat, "still mine?").await.unwrap();
    assert_eq!(status, 403, "{body}");
    let seen = frames_until(&mut bobs, "bob reads the chat to its end", |f| {
        f.iter()
            .any(|f| f["type"] == "new_message" && f["message"]["seq"] == 5)
    })
    .await;
    let seqs: Vec<&Value> = seen
        .iter()
        .filter(|f| f["type"] == "new_message")
        .map(|f| &f["message"]["seq"])
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let after = frames_until_quiet(&mut alices, Duration::from_secs(1)).await;
    assert!(
        after.iter().all(|f| !about(f, &chat)),
        "alice heard of the chat after losing it: {after:?}"
    );
    for node in [a, b] {
        node.expect(
            Method::GET,
            &format!("/api/chats/{chat}"),
            Some(&alice),
            None,
            403,
        )
        .await;
    }
    let timeline = dense_timeline(b, &bob, &chat).await;
    assert_eq!(entry_kinds(&timeline), ["claimed", "transferred"]);
    let claimed = by_kind(&timeline, "claimed");
    assert_eq!(
        (&claimed["seq"], &claimed["event"]["officerId"]),
        (&json!(2), &json!("alice"))
    );
    let transferred = by_kind(&timeline, "transferred");
    assert_eq!(transferred["seq"], 3);
    assert_eq!(transferred["event"]["fromOfficerId"], "alice");
    assert_eq!(transferred["event"]["officerId"], "bob");
}

/// Alice releases her chat through node A: Carol's queue socket on node B hears it come
/// back (`chat_updated` `released`, `queue_chat_created`), Alice's socket on B hears
/// `chat_unassigned`. Then the customer ends the chat through node B, and their socket
/// on node A hears `chat_updated` `resolved` after the system entry; the queue hears it
/// leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_and_a_resolution_are_heard_on_the_other_node() {
    let Some(nodes) = two_nodes(
        "a_release_and_a_resolution_are_heard_on_the_other_node",
        &[],
    ) else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (&node_a.api, &node_b.api);
    let alice = a.officer("alice").await;
    let carol = b.officer("carol").await;
    let (customer, chat) = assigned_chat(a, "cust-1", ("alice", &alice)).await;

    let mut queue = ws(b, &carol).await;
    queue.send(json!({ "type": "join_officers" })).await;
    assert_eq!(queue.next_of("joined").await["room"], "officers:all");
    let mut alices = ws(b, &alice).await;
    let mut customers = ws(a, &customer).await;
    customers.join(&chat, 1).await;
    // After the customer's message: the claim's entry (seq 2), replayed.
    let claimed = customers.next_of("new_message").await;
    assert_eq!(
        (
            &claimed["message"]["seq"],
            &claimed["message"]["senderType"],
            &claimed["message"]["event"]["kind"],
            &claimed["message"]["event"]["officerId"]
        ),
        (
            &json!(2),
            &json!("system"),
            &json!("claimed"),
            &json!("alice")
        ),
        "{claimed}"
    );

    let released = must(act(a, &alice, &chat, "release", None).await);
    assert_eq!(
        (&released["status"], &released["assignedOfficerId"]),
        (&json!("pending"), &Value::Null)
    );
    let heard = frames_until(&mut queue, "the queue hears the release", |f| {
        has(f, "chat_updated", &chat, Some("released")) && has(f, "queue_chat_created", &chat, None)
    })
    .await;
    let back = heard
        .iter()
        .find(|f| f["type"] == "queue_chat_created")
        .unwrap();
    assert_eq!(back["chat"]["status"], "pending");
    let gone = alices.next_of("chat_unassigned").await;
    assert_eq!(
        (&gone["chat"]["id"], &gone["chat"]["status"]),
        (&json!(chat), &json!("pending"))
    );
    for node in [a, b] {
        let listed = node
            .expect(Method::GET, "/api/officers/queue", Some(&carol), None, 200)
            .await;
        assert_eq!(listed[0]["id"], chat.as_str(), "{listed}");
    }
    // The customer's page learned of it too.
    let heard = frames_until(&mut customers, "the customer hears the release", |f| {
        has(f, "chat_updated", &chat, Some("released"))
    })
    .await;
    let entries: Vec<(&Value, &Value)> = heard
        .iter()
        .filter(|f| f["type"] == "new_message")
        .map(|f| (&f["message"]["event"]["kind"], &f["message"]["seq"]))
        .collect();
    assert_eq!(entries, [(&json!("released"), &json!(3))], "{heard:?}");

    // The customer ends it through node B.
    let ended = must(act(b, &customer, &chat, "resolve", None).await);
    assert_eq!(ended["status"], "resolved");
    assert!(ended["resolvedAt"].is_string(), "{ended}");
    let heard = frames_until(&mut customers, "the customer hears the resolution", |f| {
        has(f, "chat_updated", &chat, Some("resolved"))
    })
    .await;
    let entry = heard
        .iter()
        .find(|f| f["type"] == "new_message")
        .expect("the resolution's entry comes before its chat_updated");
    assert_eq!(
        (
            &entry["message"]["senderType"],
            &entry["message"]["senderId"],
            &entry["message"]["event"]["kind"],
            &entry["message"]["seq"]
        ),
        (
            &json!("system"),
            &json!("cust-1"),
            &json!("resolved"),
            &json!(4)
        )
    );
    let updated = heard.last().unwrap();
    assert_eq!(updated["chat"]["status"], "resolved");
    let heard = frames_until(&mut queue, "the queue hears the chat leave", |f| {
        has(f, "chat_updated", &chat, Some("resolved")) && has(f, "queue_chat_claimed", &chat, None)
    })
    .await;
    let left = heard
        .iter()
        .find(|f| f["type"] == "queue_chat_claimed")
        .unwrap();
    assert_eq!(left["chat"]["status"], "resolved");
    for node in [a, b] {
        let listed = node
            .expect(Method::GET, "/api/officers/queue", Some(&carol), None, 200)
            .await;
        assert_eq!(listed, json!([]));
    }
    let timeline = dense_timeline(a, &customer, &chat).await;
    assert_eq!(entry_kinds(&timeline), ["claimed", "released", "resolved"]);
}

/// Two officers, one through each node, reopen the same resolved chats at the same
/// moment: for each chat exactly one reopen answers 200, the other 409 `not_resolved`;
/// the chat is the winner's on both nodes, with one `reopened` entry (after the claim's
/// and the resolution's) and dense seqs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopens_racing_across_two_nodes_have_one_winner_per_chat() {
    let Some(nodes) = two_nodes("reopens_racing_across_two_nodes_have_one_winner", &[]) else {
        return;
    };
    let servers = [&nodes.a, &nodes.b];
    let nodes = [servers[0].api.clone(), servers[1].api.clone()];
    let ann = nodes[0].officer("ann").await;
    let ben = nodes[1].officer("ben").await;
    let mut chats = Vec::new();
    for c in 0..CHATS {
        let (customer, chat) =
            assigned_chat(&nodes[c % 2], &format!("cust-{c}"), ("ann", &ann)).await;
        must(act(&nodes[c % 2], &customer, &chat, "resolve", None).await);
        chats.push((customer, chat));
    }

    // Ann reopens every chat through node A and Ben through node B, all at once.
    let start = Arc::new(Barrier::new(CHATS * 2));
    let mut racers = Vec::new();
    for (_, chat) in &chats {
        for (node, (officer, token)) in [("ann", &ann), ("ben", &ben)].into_iter().enumerate() {
            let (api, start) = (nodes[node].clone(), start.clone());
            let (chat, officer, token) = (chat.clone(), officer.to_string(), token.clone());
            racers.push(tokio::spawn(async move {
                start.wait().await;
                let answer = act(&api, &token, &chat, "reopen", None).await;
                (chat, officer, answer)
            }));
        }
    }
    let mut results = Vec::new();
    for racer in racers {
        results.push(racer.await.unwrap());
    }

    for (customer, chat) in &chats {
        let mine: Vec<_> = results.iter().filter(|r| r.0 == *chat).collect();
        let won: Vec<_> = mine.iter().filter(|r| r.2.0 == 200).collect();
        assert_eq!(won.len(), 1, "chat {chat}: {mine:#?}");
        let (_, winner, (_, body)) = won[0];
        assert_eq!(
            (
                &body["status"],
                &body["assignedOfficerId"],
                &body["resolvedAt"]
            ),
            (&json!("assigned"), &json!(winner), &Value::Null)
        );
        for (_, officer, (status, body)) in mine.iter().filter(|r| r.2.0 != 200) {
            assert_eq!(
                (*status, &body["error"]["code"]),
                (409, &json!("not_resolved")),
                "{officer}: {body}"
            );
        }
        for node in &nodes {
            let stored = node
                .expect(
                    Method::GET,
                    &format!("/api/chats/{chat}"),
                    Some(customer),
                    None,
                    200,
                )
                .await;
            assert_eq!(
                (&stored["status"], &stored["assignedOfficerId"]),
                (&json!("assigned"), &json!(winner))
            );
        }
        let timeline = dense_timeline(&nodes[1], customer, chat).await;
        assert_eq!(entry_kinds(&timeline), ["claimed", "resolved", "reopened"]);
        assert_eq!(by_kind(&timeline, "claimed")["event"]["officerId"], "ann");
        assert_eq!(timeline.last().unwrap()["senderId"], winner.as_str());
    }
}

/// Olga owns each chat; at the same moment she transfers it to Pete through node A,
/// ends it through node B, and the customer writes to it through node A. Exactly one of
/// the transfer and the resolution applies: a transfer that came second gets 409
/// `chat_resolved`, a resolution that came second 403 (the chat is no longer Olga's).
/// The chat is as the winner left it on both nodes, its timeline holds the claim's entry
/// and the winner's only, and its seqs stay dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_racing_a_resolution_across_nodes_has_one_outcome() {
    let Some(nodes) = two_nodes("a_transfer_racing_a_resolution_has_one_outcome", &[]) else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (node_a.api.clone(), node_b.api.clone());
    let olga = a.officer("olga").await;
    b.officer("pete").await;
    let mut chats = Vec::new();
    for c in 0..CHATS {
        chats.push(assigned_chat(&a, &format!("cust-{c}"), ("olga", &olga)).await);
    }

    let start = Arc::new(Barrier::new(CHATS * 3));
    let mut racers = Vec::new();
    for (customer, chat) in &chats {
        let transfer = {
            let (api, start, chat, olga) = (a.clone(), start.clone(), chat.clone(), olga.clone());
            tokio::spawn(async move {
                start.wait().await;
                act(
                    &api,
                    &olga,
                    &chat,
                    "transfer",
                    Some(json!({ "officerId": "pete" })),
                )
                .await
            })
        };
        let resolve = {
            let (api, start, chat, olga) = (b.clone(), start.clone(), chat.clone(), olga.clone());
            tokio::spawn(async move {
                start.wait().await;
                act(&api, &olga, &chat, "resolve", None).await
            })
        };
        let write = {
            let (api, start) = (a.clone(), start.clone());
            let (chat, customer) = (chat.clone(), customer.clone());
            tokio::spawn(async move {
                start.wait().await;
                api.send(&customer, &chat, "are you there?").await.unwrap()
            })
        };
        racers.push((transfer, resolve, write));
    }

    let mut transfers_won = 0;
    for ((customer, chat), (transfer, resolve, write)) in chats.iter().zip(racers) {
        let (transfer, resolve, write) = (
            transfer.await.unwrap(),
            resolve.await.unwrap(),
            write.await.unwrap(),
        );
        let story = format!("chat {chat}: transfer {transfer:?}, resolve {resolve:?}");
        let (expected, entry) = match (transfer.0, resolve.0) {
            (200, 403) => {
                assert_eq!(resolve.1["error"]["code"], "forbidden", "{story}");
                assert_eq!(transfer.1["assignedOfficerId"], "pete", "{story}");
                transfers_won += 1;
                (("assigned", "pete"), "transferred")
            }
            (409, 200) => {
                assert_eq!(transfer.1["error"]["code"], "chat_resolved", "{story}");
                assert_eq!(resolve.1["assignedOfficerId"], "olga", "{story}");
                (("resolved", "olga"), "resolved")
            }
            _ => panic!("not exactly one outcome: {story}"),
        };
        // The customer's message went in before the resolution, or was refused after it.
        match write.0 {
            201 => {}
            409 => assert_eq!(write.1["error"]["code"], "chat_resolved", "{story}"),
            _ => panic!("the customer's message: {write:?}; {story}"),
        }
        for node in [&a, &b] {
            let stored = node
                .expect(
                    Method::GET,
                    &format!("/api/chats/{chat}"),
                    Some(customer),
                    None,
                    200,
                )
                .await;
            assert_eq!(
                (&stored["status"], &stored["assignedOfficerId"]),
                (&json!(expected.0), &json!(expected.1)),
                "{story}"
            );
        }
        let timeline = dense_timeline(&b, customer, chat).await;
        assert_eq!(entry_kinds(&timeline), ["claimed", entry], "{story}");
        assert_eq!(
            by_kind(&timeline, "claimed")["event"]["officerId"],
            "olga",
            "{story}"
        );
        let messages = timeline
            .iter()
            .filter(|m| m["senderType"] == "customer")
            .count();
        assert_eq!(messages, if write.0 == 201 { 2 } else { 1 }, "{story}");
    }
    eprintln!("transfers won {transfers_won} of {CHATS} races");
}

/// After each customer's chat was resolved, the customer logs in several times at once
/// through both nodes: every login answers the same new chat, pending, exactly one of
/// them with `created: true`; the old chat stays resolved, and the queue holds exactly
/// the new chats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_after_a_resolution_open_exactly_one_new_chat() {
    const LOGINS: usize = 6;
    let Some(nodes) = two_nodes("concurrent_logins_after_a_resolution_open_one_chat", &[]) else {
        return;
    };
    let servers = [&nodes.a, &nodes.b];
    let nodes = [servers[0].api.clone(), servers[1].api.clone()];
    let olga = nodes[0].officer("olga").await;
    let mut old = Vec::new();
    for c in 0..CHATS {
        let id = format!("cust-{c}");
        let (customer, chat) = assigned_chat(&nodes[c % 2], &id, ("olga", &olga)).await;
        must(act(&nodes[(c + 1) % 2], &customer, &chat, "resolve", None).await);
        old.push((id, chat));
    }

    let start = Arc::new(Barrier::new(CHATS * LOGINS));
    let mut logins = Vec::new();
    for (id, _) in &old {
        for i in 0..LOGINS {
            let (api, start, id) = (nodes[i % 2].clone(), start.clone(), id.clone());
            logins.push(tokio::spawn(async move {
                start.wait().await;
                (id.clone(), customer_login(&api, &id).await)
            }));
        }
    }
    let mut answers = Vec::new();
    for login in logins {
        answers.push(login.await.unwrap());
    }

    let mut new_chats = HashSet::new();
    for (id, old_chat) in &old {
        let mine: Vec<&Value> = answers
            .iter()
            .filter(|(c, _)| c == id)
            .map(|(_, a)| a)
            .collect();
        assert_eq!(mine.len(), LOGINS);
        let chat = mine[0]["chat"]["id"].as_str().unwrap().to_string();
        assert_ne!(chat, *old_chat, "{id} got the resolved chat back");
        for answer in &mine {
            assert_eq!(answer["chat"]["id"], chat.as_str(), "{id}: {mine:#?}");
            assert_eq!(answer["chat"]["status"], "pending", "{id}: {answer}");
        }
        let created = mine.iter().filter(|a| a["created"] == true).count();
        assert_eq!(created, 1, "{id}: {mine:#?}");
        for node in &nodes {
            let stored = node
                .expect(
                    Method::GET,
                    &format!("/api/chats/{old_chat}"),
                    Some(&olga),
                    None,
                    200,
                )
                .await;
            assert_eq!(stored["status"], "resolved");
        }
        new_chats.insert(chat);
    }
    for node in &nodes {
        let queue = node
            .expect(Method::GET, "/api/officers/queue", Some(&olga), None, 200)
            .await;
        let queued: HashSet<String> = queue
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(queued, new_chats);
    }
}
