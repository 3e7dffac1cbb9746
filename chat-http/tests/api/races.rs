//! Concurrency claims checked by racing real HTTP requests, then reading the stored state.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::helpers::{Options, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_racing_claims_exactly_one_wins() {
    let app = Arc::new(spawn_app(Options::open()).await);
    let mut officers = Vec::new();
    for i in 0..20 {
        let id = format!("officer-{i}");
        let token = app.new_officer(&id).await;
        officers.push((id, token));
    }
    let (customer, chat) = app.new_customer("racer").await;

    let barrier = Arc::new(tokio::sync::Barrier::new(officers.len()));
    let mut tasks = Vec::new();
    for (id, token) in officers.clone() {
        let (app, chat, barrier) = (app.clone(), chat.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let resp = app.claim(Some(&token), &id, &chat).await;
            (id, resp)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (id, resp) = task.await.unwrap();
        match resp.status {
            200 => winners.push(id),
            409 => resp.expect_error(409, "already_assigned"),
            other => panic!("unexpected {other}: {:?}", resp.body),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = app.chat(Some(&customer), &chat).await.expect(200);
    assert_eq!(stored["assignedOfficerId"], winners[0].as_str());
    assert_eq!(stored["status"], "assigned");
    assert_eq!(app.queue(Some(&officers[0].1)).await.expect(200), json!([]));
    // One claim won, so the timeline holds exactly one claim entry, the winner's.
    let timeline = app.messages(Some(&customer), &chat, "").await.expect(200);
    let claims: Vec<&Value> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["event"]["kind"] == "claimed")
        .collect();
    assert_eq!(claims.len(), 1, "{timeline}");
    assert_eq!(claims[0]["senderId"], winners[0].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_get_dense_seqs() {
    let app = Arc::new(spawn_app(Options::open()).await);
    let officer = app.new_officer("alice").await;
    let (customer, chat) = app.new_customer("c1").await;
    app.claim(Some(&officer), "alice", &chat).await.expect(200);

    const PER_SENDER: usize = 30;
    let mut tasks = Vec::new();
    for (who, token) in [("c", customer.clone()), ("o", officer.clone())] {
        for lane in 0..3 {
            let (app, token, chat) = (app.clone(), token.clone(), chat.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..PER_SENDER / 3 {
                    app.say(&token, &chat, &format!("{who}-{lane}-{i}")).await;
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = app
        .messages(Some(&customer), &chat, "limit=1000")
        .await
        .expect(200);
    let all = all.as_array().unwrap();
    // The claim's entry, then every message.
    let n = 2 * PER_SENDER + 1;
    let seqs: Vec<u64> = all.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>());
    let contents: HashSet<&str> = all.iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents.len(), n, "every message stored once");
}
