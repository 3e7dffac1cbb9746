//! Traffic across two nodes: live talk, racing claims, and a node killed mid-traffic.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_postgres::testing::TestDatabase;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::server::Server;
use crate::{PATIENCE, Ws, ws};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_on_node_a_and_officer_on_node_b_talk_live() {
    let Some(pg) = TestDatabase::start("customer_on_node_a_and_officer_on_node_b_talk_live") else {
        return;
    };
    let url = pg.url();
    let (node_a, node_b) = (Server::on_postgres(&url), Server::on_postgres(&url));
    let (a, b) = (&node_a.api, &node_b.api);

    // The officer works on node B and watches the queue there.
    let officer = b.officer("amy").await;
    let mut officer_ws = ws(b, &officer).await;
    officer_ws.send(json!({ "type": "join_officers" })).await;
    officer_ws.next_of("joined").await;

    // A customer logs in on node A: the chat appears in node B's queue live.
    let (customer, chat) = a.customer("cust-1").await;
    let created = officer_ws.next_of("queue_chat_created").await;
    assert_eq!(created["chat"]["id"], chat);

    // The officer claims on B and joins the chat; the customer writes on A. The queue
    // hears the claim as a change (`chat_updated` `claimed`), then the chat leave.
    let (status, body) = b.claim(&officer, "amy", &chat).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let updated = officer_ws.next_of("chat_updated").await;
    assert_eq!(
        (&updated["chat"]["id"], &updated["change"]),
        (&json!(chat), &json!("claimed")),
        "{updated}"
    );
    let claimed = officer_ws.next_of("queue_chat_claimed").await;
    assert_eq!(claimed["chat"]["assignedOfficerId"], "amy", "{claimed}");
    officer_ws
        .send(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    officer_ws.next_of("joined").await;
    let mut customer_ws = ws(a, &customer).await;
    customer_ws
        .send(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    customer_ws.next_of("joined").await;

    // Both sockets replay the claim's system entry (seq 1) first.
    for socket in [&mut officer_ws, &mut customer_ws] {
        let entry = socket.next_of("new_message").await;
        assert_eq!(
            (
                &entry["message"]["seq"],
                &entry["message"]["senderType"],
                &entry["message"]["content"],
                &entry["message"]["event"]
            ),
            (
                &json!(1),
                &json!("system"),
                &json!("amy took the chat"),
                &json!({ "kind": "claimed", "officerId": "amy" })
            ),
            "{entry}"
        );
    }

    let (status, body) = a.send(&customer, &chat, "hello from A").await.unwrap();
    assert_eq!(status, 201, "{body}");
    let m = officer_ws.next_of("new_message").await;
    assert_eq!(
        (&m["message"]["seq"], &m["message"]["content"]),
        (&json!(2), &json!("hello from A"))
    );
    // And back: the officer answers on B, the customer's socket on A gets it live.
    let (status, body) = b.send(&officer, &chat, "hi, Amy here").await.unwrap();
    assert_eq!(status, 201, "{body}");
    let first = customer_ws.next_of("new_message").await;
    assert_eq!(
        (&first["message"]["seq"], &first["message"]["content"]),
        (&json!(2), &json!("hello from A"))
    );
    let answer = customer_ws.next_of("new_message").await;
    assert_eq!(
        (&answer["message"]["seq"], &answer["message"]["content"]),
        (&json!(3), &json!("hi, Amy here"))
    );
}

/// Officers logged in on two nodes all claim the same chats at the same moment, half of
/// the claims through node A and half through node B: for each chat exactly one claim
/// answers 200, every other one 409 `already_assigned` naming the winner, and both
/// nodes read back the winner as the chat's officer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_racing_across_two_nodes_have_one_winner_per_chat() {
    const OFFICERS: usize = 24;
    const CHATS: usize = 5;
    let Some(pg) = TestDatabase::start("claims_racing_across_two_nodes_have_one_winner_per_chat")
    else {
        return;
    };
    let url = pg.url();
    let servers = [Server::on_postgres(&url), Server::on_postgres(&url)];
    let nodes = [&servers[0].api, &servers[1].api];

    let mut officers = Vec::new();
    for i in 0..OFFICERS {
        let id = format!("officer-{i:02}");
        let token = nodes[i % 2].officer(&id).await;
        officers.push((id, token));
    }
    let mut chats = Vec::new();
    for c in 0..CHATS {
        chats.push(nodes[c % 2].customer(&format!("cust-{c}")).await.1);
    }

    // Every officer claims every chat; officer i claims chat c through node (i + c) % 2,
    // so each chat is contested by 12 officers on each node. All claims start together.
    let start = Arc::new(tokio::sync::Barrier::new(OFFICERS * CHATS));
    let mut claims = Vec::new();
    for (c, chat) in chats.iter().enumerate() {
        for (i, (id, token)) in officers.iter().enumerate() {
            let node = (i + c) % 2;
            let api = nodes[node].clone();
            let (start, chat, id, token) = (start.clone(), chat.clone(), id.clone(), token.clone());
            claims.push(tokio::spawn(async move {
                start.wait().await;
                let (status, body) = api.claim(&token, &id, &chat).await.expect("claim request");
                (chat, id, node, status, body)
            }));
        }
    }
    let mut by_chat: HashMap<String, Vec<(String, usize, u16, Value)>> = HashMap::new();
    for claim in claims {
        let (chat, id, node, status, body) = claim.await.unwrap();
        by_chat
            .entry(chat)
            .or_default()
            .push((id, node, status, body));
    }

    let mut winners = HashMap::new();
    for chat in &chats {
        let results = &by_chat[chat];
        assert_eq!(results.len(), OFFICERS);
        let won: Vec<_> = results.iter().filter(|r| r.2 == 200).collect();
        assert_eq!(won.len(), 1, "chat {chat}: {results:#?}");
        let (winner, _, _, chat_body) = won[0];
        assert_eq!(
            (&chat_body["assignedOfficerId"], &chat_body["status"]),
            (&json!(winner), &json!("assigned"))
        );
        for (id, node, status, body) in results.iter().filter(|r| r.2 != 200) {
            assert_eq!(
                (*status, &body["error"]["code"]),
                (409, &json!("already_assigned")),
                "{id} on node {node}: {body}"
            );
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.ends_with(winner.as_str()), "{message}");
        }
        // Both nodes read the winner back from the store.
        let token = &officers.iter().find(|(id, _)| id == winner).unwrap().1;
        for node in &nodes {
            let stored = node
                .expect(
                    Method::GET,
                    &format!("/api/chats/{chat}"),
                    Some(token),
                    None,
                    200,
                )
                .await;
            assert_eq!(stored["assignedOfficerId"], winner.as_str());
            assert_eq!(stored["status"], "assigned");
        }
        winners.insert(chat.clone(), winner.clone());
    }
    // Nothing is left in the queue, and each officer's list holds exactly the chats
    // they won, on either node.
    let any = &officers[0].1;
    for node in &nodes {
        let queue = node
            .expect(Method::GET, "/api/officers/queue", Some(any), None, 200)
            .await;
        assert_eq!(queue, json!([]));
    }
    for (i, (id, token)) in officers.iter().enumerate() {
        let path = format!("/api/officers/{id}/chats");
        let mine = nodes[(i + 1) % 2]
            .expect(Method::GET, &path, Some(token), None, 200)
            .await;
        let mut mine: Vec<&str> = mine
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        let mut won: Vec<&str> = winners
            .iter()
            .filter(|(_, w)| *w == id)
            .map(|(c, _)| c.as_str())
            .collect();
        mine.sort();
        won.sort();
        assert_eq!(mine, won, "chats of {id}");
    }
}

/// What one sending client had acknowledged, and what went wrong for it.
#[derive(Debug, Default)]
struct SenderReport {
    /// `clientMessageId` to the acknowledged message (from a 201, or a 200 for a retry).
    acked: BTreeMap<String, Value>,
    /// Anything other than a 2xx or, for a client allowed to fail over, the first lost
    /// connection.
    errors: Vec<String>,
    /// Times it moved to the other node after its node went away.
    failovers: usize,
}

/// A client sending messages to one chat until told to stop: through `bases[0]`, and
/// when `bases[0]` stops answering (connection lost) through `bases[1]`, resending the
/// same `clientMessageId`, as a client behind a load balancer does when its node dies.
fn spawn_sender(
    client: reqwest::Client,
    name: &'static str,
    token: String,
    chat: String,
    bases: Vec<String>,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<SenderReport> {
    tokio::spawn(async move {
        let mut report = SenderReport::default();
        let mut node = 0;
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) && report.errors.is_empty() {
            n += 1;
            let client_id = format!("{name}-{n}");
            loop {
                let response = client
                    .post(format!("{}/api/chats/{chat}/messages", bases[node]))
                    .bearer_auth(&token)
                    .json(
                        &json!({ "content": format!("{name} #{n}"), "clientMessageId": client_id }),
                    )
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let body: Value = r.json().await.expect("message body");
                        report.acked.insert(client_id, body);
                        progress.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        report.errors.push(format!("{client_id}: {status} {body}"));
                        break;
                    }
                    Err(_) if node + 1 < bases.len() => {
                        // Not acknowledged: it may or may not be stored. The same
                        // clientMessageId on the other node stores it at most once.
                        node += 1;
                        report.failovers += 1;
                    }
                    Err(e) => {
                        report.errors.push(format!("{client_id}: {e}"));
                        break;
                    }
                }
            }
            // Leave room for the other clients on two shared cores.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        report
    })
}

/// What a socket received: the seqs of `new_message` per chat, in arrival order, and
/// how it ended, if it did.
#[derive(Debug, Default)]
struct Seen {
    seqs: HashMap<String, Vec<u64>>,
    ended: Option<String>,
}

/// Reads a socket in the background until it ends, recording every message.
fn spawn_reader(mut ws: Ws) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let ended = match ws.0.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("JSON frame");
                    if v["type"] == "new_message" {
                        let m = &v["message"];
                        record
                            .lock()
                            .unwrap()
                            .seqs
                            .entry(m["chatId"].as_str().unwrap().to_string())
                            .or_default()
                            .push(m["seq"].as_u64().unwrap());
                        continue;
                    }
                    if v["type"] != "error" {
                        continue;
                    }
                    format!("error frame {v}")
                }
                Some(Ok(Message::Close(frame))) => format!("closed {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => format!("failed: {e}"),
                None => "ended".to_string(),
            };
            record.lock().unwrap().ended = Some(ended);
            return;
        }
    });
    (seen, task)
}

/// Waits until `done` holds for what the socket saw (or fails the test after a while).
async fn wait_for(seen: &Mutex<Seen>, what: &str, done: impl Fn(&Seen) -> bool) {
    let wait = async {
        while !done(&seen.lock().unwrap()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(PATIENCE, wait).await.is_err() {
        panic!("{what}: {:?}", seen.lock().unwrap());
    }
}

/// Waits until each counter reaches its target.
async fn wait_progress(counters: &[Arc<AtomicUsize>], targets: &[usize]) {
    let wait = async {
        while counters
            .iter()
            .zip(targets)
            .any(|(c, t)| c.load(Ordering::Relaxed) < *t)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the senders make progress");
}

/// Node A is killed with SIGKILL while clients send through both nodes. Node B's clients
/// keep sending and receiving live without a single error; the clients of node A resend
/// their unacknowledged message through node B with the same `clientMessageId`; the
/// socket that was on node A reconnects to node B and rejoins with `afterSeq`. Every
/// acknowledged message is stored exactly once, seqs are dense, and every socket ends
/// up with every message of its chats once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_traffic_loses_nothing_acknowledged() {
    const BEFORE: usize = 20;
    const AFTER: usize = 20;
    let Some(pg) = TestDatabase::start("a_node_killed_mid_traffic_loses_nothing_acknowledged")
    else {
        return;
    };
    let url = pg.url();
    let mut node_a = Server::on_postgres(&url);
    let node_b = Server::on_postgres(&url);
    let (a, b) = (node_a.api.clone(), &node_b.api);

    // Chat X's customer is on node A, chat Y's on node B; Amy owns both.
    let amy = b.officer("amy").await;
    let (cx, x) = a.customer("cust-x").await;
    let (cy, y) = b.customer("cust-y").await;
    for chat in [&x, &y] {
        let (status, body) = b.claim(&amy, "amy", chat).await.unwrap();
        assert_eq!(status, 200, "{body}");
    }

    // Sockets: X's customer on A; Amy (both chats) and Y's customer on B.
    let mut on_a = ws(&a, &cx).await;
    on_a.join(&x, 0).await;
    let (seen_a, reader_a) = spawn_reader(on_a);
    // Amy joins after the claims' entries (seq 1 of each, checked in the store below):
    // `join` skips the frames before its `joined`, which for a second join would
    // include the first chat's replay.
    let mut amy_b = ws(b, &amy).await;
    amy_b.join(&x, 1).await;
    amy_b.join(&y, 1).await;
    let (seen_amy, _reader_amy) = spawn_reader(amy_b);
    let mut cy_b = ws(b, &cy).await;
    cy_b.join(&y, 0).await;
    let (seen_cy, _reader_cy) = spawn_reader(cy_b);

    // Four clients send: two through A (falling over to B), two through B only.
    let stop = Arc::new(AtomicBool::new(false));
    let progress: Vec<Arc<AtomicUsize>> = (0..4).map(|_| Arc::default()).collect();
    let (to_a_then_b, to_b) = (vec![a.base.clone(), b.base.clone()], vec![b.base.clone()]);
    let plan = [
        ("cx-via-a", &cx, &x, &to_a_then_b),
        ("amy-x-via-b", &amy, &x, &to_b),
        ("cy-via-b", &cy, &y, &to_b),
        ("amy-y-via-a", &amy, &y, &to_a_then_b),
    ];
    let senders: Vec<_> = plan
        .iter()
        .zip(&progress)
        .map(|((name, token, chat, bases), progress)| {
            spawn_sender(
                b.client().clone(),
                name,
                (*token).clone(),
                (*chat).clone(),
                (*bases).clone(),
                stop.clone(),
                progress.clone(),
            )
        })
        .collect();

    // Mid-traffic: kill node A.
    wait_progress(&progress, &[BEFORE; 4]).await;
    node_a.kill();
    let at_kill: Vec<usize> = progress.iter().map(|p| p.load(Ordering::Relaxed)).collect();

    // The socket on A is gone; its client reconnects to B with the same token and
    // rejoins after the last seq it saw, while the others keep sending.
    tokio::time::timeout(PATIENCE, reader_a)
        .await
        .expect("the socket on the killed node ends")
        .unwrap();
    let before_kill = seen_a.lock().unwrap().seqs.remove(&x).unwrap_or_default();
    let last_seen = before_kill.last().copied().unwrap_or(0);
    let mut moved = ws(b, &cx).await;
    moved.join(&x, last_seen).await;
    let (seen_moved, _reader_moved) = spawn_reader(moved);

    let targets: Vec<usize> = at_kill.iter().map(|n| n + AFTER).collect();
    wait_progress(&progress, &targets).await;
    stop.store(true, Ordering::Relaxed);
    let mut reports = Vec::new();
    for sender in senders {
        reports.push(sender.await.unwrap());
    }

    // No client saw an error; the clients of A moved to B exactly once.
    for ((name, _, _, bases), report) in plan.iter().zip(&reports) {
        assert!(report.errors.is_empty(), "{name}: {:?}", report.errors);
        assert_eq!(report.failovers, bases.len() - 1, "{name}");
    }

    // Stored: seqs 1..=n, the claim's system entry first (seq 1), then each acknowledged
    // message once and as acknowledged, nothing else. (Every unacknowledged send was
    // resent until acknowledged.)
    let mut last = HashMap::new();
    for chat in [&x, &y] {
        let stored = b.all_messages(&amy, chat).await;
        let seqs: Vec<u64> = stored.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        let n = stored.len() as u64;
        assert_eq!(
            seqs,
            (1..=n).collect::<Vec<_>>(),
            "chat {chat} seqs are dense"
        );
        let acked: BTreeMap<&String, &Value> = plan
            .iter()
            .zip(&reports)
            .filter(|((_, _, c, _), _)| *c == chat)
            .flat_map(|(_, r)| r.acked.iter())
            .collect();
        let (entries, sent): (Vec<&Value>, Vec<&Value>) =
            stored.iter().partition(|m| m["senderType"] == "system");
        assert_eq!(entries.len(), 1, "chat {chat}: system entries {entries:?}");
        assert_eq!(
            (
                &entries[0]["seq"],
                &entries[0]["senderId"],
                &entries[0]["event"]
            ),
            (
                &json!(1),
                &json!("amy"),
                &json!({ "kind": "claimed", "officerId": "amy" })
            ),
            "chat {chat}: the claim's entry"
        );
        let by_client_id: BTreeMap<&str, &Value> = sent
            .iter()
            .map(|m| (m["clientMessageId"].as_str().expect("client id"), *m))
            .collect();
        assert_eq!(by_client_id.len(), sent.len(), "a client id stored twice");
        assert_eq!(acked.len(), sent.len(), "chat {chat}");
        for (client_id, message) in acked {
            let found = by_client_id
                .get(client_id.as_str())
                .unwrap_or_else(|| panic!("acknowledged {client_id} not stored"));
            assert_eq!(
                (&found["id"], &found["seq"]),
                (&message["id"], &message["seq"])
            );
        }
        last.insert(chat.clone(), n);
    }

    // Sockets: B's stayed up and saw every message of both chats once, in order; the
    // moved client, before and after its move together, saw every message of X once.
    let dense = |n: u64| (1..=n).collect::<Vec<u64>>();
    let (nx, ny) = (last[&x], last[&y]);
    wait_for(&seen_amy, "Amy's socket on B", |s| {
        s.seqs.get(&x).and_then(|v| v.last()) == Some(&nx)
            && s.seqs.get(&y).and_then(|v| v.last()) == Some(&ny)
    })
    .await;
    wait_for(&seen_cy, "Y's customer on B", |s| {
        s.seqs.get(&y).and_then(|v| v.last()) == Some(&ny)
    })
    .await;
    wait_for(&seen_moved, "X's customer after the move", |s| {
        s.seqs.get(&x).and_then(|v| v.last()) == Some(&nx)
    })
    .await;
    let amy_seen = seen_amy.lock().unwrap();
    assert_eq!(amy_seen.ended, None, "Amy's socket on B ended");
    assert_eq!(amy_seen.seqs[&x], dense(nx)[1..]);
    assert_eq!(amy_seen.seqs[&y], dense(ny)[1..]);
    let cy_seen = seen_cy.lock().unwrap();
    assert_eq!(cy_seen.ended, None, "Y's customer's socket on B ended");
    assert_eq!(cy_seen.seqs[&y], dense(ny));
    let mut moved_seqs = before_kill;
    moved_seqs.extend(&seen_moved.lock().unwrap().seqs[&x]);
    assert_eq!(moved_seqs, dense(nx), "X's customer across the move");
}

/// An officer with one free slot (the nodes' default capacity, 1) claims eight chats at
/// once, half through each node: exactly one claim wins, the others are 409
/// `at_capacity`, and the store holds one chat for her.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_officer_at_capacity_wins_one_claim_across_two_nodes() {
    const CHATS: usize = 8;
    let Some(nodes) = crate::two_nodes(
        "an_officer_at_capacity_wins_one_claim_across_two_nodes",
        &["--officer-capacity", "1"],
    ) else {
        return;
    };
    let apis = [&nodes.a.api, &nodes.b.api];
    let amy = apis[0].officer("amy").await;
    let mut chats = Vec::new();
    for c in 0..CHATS {
        chats.push(apis[c % 2].customer(&format!("cust-{c}")).await.1);
    }
    let start = Arc::new(tokio::sync::Barrier::new(CHATS));
    let claims: Vec<_> = chats
        .iter()
        .enumerate()
        .map(|(c, chat)| {
            let api = apis[c % 2].clone();
            let (start, chat, amy) = (start.clone(), chat.clone(), amy.clone());
            tokio::spawn(async move {
                start.wait().await;
                api.claim(&amy, "amy", &chat).await.expect("claim request")
            })
        })
        .collect();
    let mut won = 0;
    for claim in claims {
        let (status, body) = claim.await.unwrap();
        match status {
            200 => won += 1,
            409 => assert_eq!(body["error"]["code"], "at_capacity", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(won, 1);
    let (status, me) = apis[1]
        .call(Method::GET, "/api/me", Some(&amy), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (&me["officer"]["capacity"], &me["officer"]["openChats"]),
        (&json!(1), &json!(1))
    );
}

/// An officer's availability set through node A reaches a colleague's console on node B
/// as `officer_updated`, and node B's list shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn availability_set_on_one_node_is_heard_on_the_other() {
    let Some(nodes) = crate::two_nodes("availability_set_on_one_node_is_heard_on_the_other", &[])
    else {
        return;
    };
    let (a, b) = (&nodes.a.api, &nodes.b.api);
    let amy = a.officer("amy").await;
    let bob = b.officer("bob").await;
    let mut bobs = ws(b, &bob).await;
    bobs.send(json!({ "type": "join_officers" })).await;
    bobs.next_of("joined").await;
    let (status, body) = a
        .call(
            Method::PUT,
            "/api/officers/amy/availability",
            Some(&amy),
            Some(json!({ "availability": "away" })),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, &body["availability"]),
        (200, &json!("away")),
        "{body}"
    );
    // (Bob's own connection is announced too; Amy's change is the one awaited.)
    let heard = bobs
        .next_where("officer_updated", |f| f["officer"]["id"] == "amy")
        .await;
    assert_eq!(
        (&heard["officer"]["id"], &heard["officer"]["availability"]),
        (&json!("amy"), &json!("away")),
        "{heard}"
    );
    let (status, listed) = b
        .call(Method::GET, "/api/officers", Some(&bob), None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed[0]["availability"], "away", "{listed}");
}
