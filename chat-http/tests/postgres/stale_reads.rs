//! Writes decided on a chat as read before another node changed it. A message is
//! allowed on the chat as it was read; a change committed on the other node between
//! that read and the message's write must not let the message land after the change (in
//! a resolved chat, or from an officer the chat was transferred away from). A customer
//! login that finds the customer's open chat must answer a chat, also when that chat is
//! resolved on the other node while the login reads it, and a claim that finds the chat
//! taken must answer 409, also when that chat is released on the other node meanwhile.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::lifecycle::{act, assigned_chat, by_kind, dense_timeline, entry_kinds, must};
use crate::server::Api;
use crate::two_nodes;

/// Sends to `chat` as `token` through `api` until `stop`, or until refused (a 403 or a
/// 409 once the change is seen). Returns the refusals' codes.
fn spawn_writer(
    api: Api,
    token: String,
    chat: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let (status, body) = api.send(&token, &chat, &format!("#{n}")).await.unwrap();
            match status {
                201 => {}
                403 | 409 => return vec![body["error"]["code"].as_str().unwrap().to_string()],
                _ => panic!("send to {chat}: {status} {body}"),
            }
        }
        Vec::new()
    })
}

/// Olga owns each chat. Her customer (through node A) and Olga herself (through node A)
/// write to it without pause while Olga, through node B, ends half of the chats and
/// transfers the other half to Pete. No message of the customer or of Olga lands after a
/// resolution's entry, and no message of Olga after a transfer's entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_lands_after_a_resolution_or_transfer_made_on_the_other_node() {
    const CHATS: usize = 12;
    let Some(nodes) = two_nodes("no_message_lands_after_a_resolution_or_transfer", &[]) else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (node_a.api.clone(), node_b.api.clone());
    let olga = a.officer("olga").await;
    b.officer("pete").await;
    let mut late = Vec::new();
    for c in 0..CHATS {
        let (customer, chat) = assigned_chat(&a, &format!("cust-{c}"), ("olga", &olga)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers = [
            spawn_writer(a.clone(), customer.clone(), chat.clone(), stop.clone()),
            spawn_writer(a.clone(), olga.clone(), chat.clone(), stop.clone()),
        ];
        // Let the writers get going, at a different point of their sends each time.
        tokio::time::sleep(Duration::from_millis(20 + 3 * c as u64)).await;
        let resolve = c % 2 == 0;
        let changed = if resolve {
            must(act(&b, &olga, &chat, "resolve", None).await)
        } else {
            must(
                act(
                    &b,
                    &olga,
                    &chat,
                    "transfer",
                    Some(json!({ "officerId": "pete" })),
                )
                .await,
            )
        };
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.unwrap();
        }
        let timeline = dense_timeline(&a, &customer, &chat).await;
        let kind = if resolve { "resolved" } else { "transferred" };
        assert_eq!(entry_kinds(&timeline), ["claimed", kind], "chat {chat}");
        // The claim's entry follows the customer's first message; the writers began
        // after it.
        assert_eq!(by_kind(&timeline, "claimed")["seq"], 2, "chat {chat}");
        let entry = timeline
            .iter()
            .position(|m| m["senderType"] == "system" && m["event"]["kind"] == kind)
            .expect("the change's entry");
        let after: Vec<&Value> = timeline[entry + 1..]
            .iter()
            .filter(|m| resolve || m["senderId"] == "olga")
            .collect();
        if !after.is_empty() {
            late.push(format!(
                "chat {chat} ({}, entry seq {}): {after:?}",
                changed["status"], timeline[entry]["seq"]
            ));
        }
    }
    assert!(
        late.is_empty(),
        "messages stored after the change that should have refused them:\n{}",
        late.join("\n")
    );
}

/// Each customer has an open chat. Through node B the customer ends it, while through
/// node A the customer logs in again and again until a login answers a new chat. Every
/// login answers 200 with the old chat (open when the login looked) or the new one; the
/// new one is the same for every login that got it, and created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_racing_the_resolution_of_the_open_chat_answers_a_chat() {
    const CUSTOMERS: usize = 60;
    const LOGINS: usize = 4;
    let Some(nodes) = two_nodes("a_login_racing_the_resolution_of_the_open_chat", &[]) else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (node_a.api.clone(), node_b.api.clone());
    let mut failures = Vec::new();
    for c in 0..CUSTOMERS {
        let id = format!("cust-{c}");
        let (customer, old) = a.customer(&id).await;
        let logins: Vec<_> = (0..LOGINS)
            .map(|_| {
                let (api, id, old) = (a.clone(), id.clone(), old.clone());
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    loop {
                        let answer = api
                            .call(
                                Method::POST,
                                "/api/customers/login",
                                None,
                                Some(json!({ "customerId": id })),
                            )
                            .await
                            .unwrap();
                        let done = answer.0 != 200 || answer.1["chat"]["id"] != old.as_str();
                        answers.push(answer);
                        if done || answers.len() > 500 {
                            return answers;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5 + c as u64 % 7)).await;
        must(act(&b, &customer, &old, "resolve", None).await);
        let mut new_chats = HashSet::new();
        let mut created = 0;
        for login in logins {
            for (status, body) in login.await.unwrap() {
                if status != 200 {
                    failures.push(format!("{id}: {status} {body}"));
                    continue;
                }
                let chat = body["chat"]["id"].as_str().unwrap().to_string();
                if chat != old {
                    assert_eq!(body["chat"]["status"], "pending", "{body}");
                    created += usize::from(body["created"] == true);
                    new_chats.insert(chat);
                }
            }
        }
        assert!(new_chats.len() <= 1, "{id}: {new_chats:?}");
        assert_eq!(created, new_chats.len(), "{id}: new chats created");
    }
    assert!(
        failures.is_empty(),
        "logins racing a resolution were refused:\n{}",
        failures.join("\n")
    );
}

/// Olga owns each chat. Through node B she releases it, while through node A three
/// officers claim it again and again until one claim wins or a claim is refused for
/// another reason than `already_assigned`. Every claim answers 200 or 409
/// `already_assigned` (never a 5xx, also when the release commits between the claim's
/// update and its reading of the chat); exactly one claim wins, made after the release;
/// both nodes agree on the winner, the queue is empty, and seqs stay dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_racing_a_release_on_the_other_node_answer_200_or_409() {
    const CHATS: usize = 30;
    const CLAIMERS: [&str; 3] = ["pete", "quinn", "rita"];
    let Some(nodes) = two_nodes("claims_racing_a_release_on_the_other_node", &[]) else {
        return;
    };
    let (node_a, node_b) = (&nodes.a, &nodes.b);
    let (a, b) = (node_a.api.clone(), node_b.api.clone());
    let olga = a.officer("olga").await;
    let mut claimers = Vec::new();
    for id in CLAIMERS {
        claimers.push((id, a.officer(id).await));
    }
    let mut failures = Vec::new();
    for c in 0..CHATS {
        let (customer, chat) = assigned_chat(&b, &format!("cust-{c}"), ("olga", &olga)).await;
        let tasks: Vec<_> = claimers
            .iter()
            .map(|(id, token)| {
                let (api, id, token, chat) =
                    (a.clone(), id.to_string(), token.clone(), chat.clone());
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    loop {
                        let (status, body) = api.claim(&token, &id, &chat).await.unwrap();
                        let again = status == 409
                            && body["error"]["code"] == "already_assigned"
                            && body["error"]["message"].as_str().unwrap().ends_with("olga");
                        answers.push((id.clone(), status, body));
                        if !again || answers.len() > 500 {
                            return answers;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5 + c as u64 % 7)).await;
        let released = must(act(&b, &olga, &chat, "release", None).await);
        assert_eq!(released["status"], "pending");
        let mut winners = Vec::new();
        for task in tasks {
            for (id, status, body) in task.await.unwrap() {
                match status {
                    200 => winners.push(id),
                    409 if body["error"]["code"] == "already_assigned" => {}
                    _ => failures.push(format!("chat {chat}: {id}'s claim: {status} {body}")),
                }
            }
        }
        if winners.is_empty() {
            // Every claimer stopped on a failure: nothing more to check for this chat.
            continue;
        }
        assert_eq!(winners.len(), 1, "chat {chat}: {winners:?}; {failures:?}");
        for node in [&a, &b] {
            let stored = node
                .expect(
                    Method::GET,
                    &format!("/api/chats/{chat}"),
                    Some(&customer),
                    None,
                    200,
                )
                .await;
            assert_eq!(
                (&stored["status"], &stored["assignedOfficerId"]),
                (&json!("assigned"), &json!(winners[0]))
            );
        }
        dense_timeline(&a, &customer, &chat).await;
    }
    for node in [&a, &b] {
        let queue = node
            .expect(Method::GET, "/api/officers/queue", Some(&olga), None, 200)
            .await;
        if failures.is_empty() {
            assert_eq!(queue, json!([]));
        }
    }
    assert!(
        failures.is_empty(),
        "claims racing a release failed:\n{}",
        failures.join("\n")
    );
}
