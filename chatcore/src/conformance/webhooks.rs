//! Cases on the webhooks' outbox: events written by the change operations themselves
//! (and only for changes that happened), each webhook's filter, lanes claimed by one
//! claimant at a time in order, leases that expire and are taken over, settlements,
//! dead deliveries retried, a webhook deleted with its deliveries.

use super::*;
use crate::store::{
    DeliveryQuery, Failure, LaneClaim, PendingDelivery, Settled, Settlement, WebhookRecord,
};
use crate::webhooks::WebhookSecret;

fn hook(id: &str, events: &[&str]) -> WebhookRecord {
    WebhookRecord {
        id: id.to_string(),
        url: format!("http://receiver.test/{id}"),
        secret: WebhookSecret::new(format!("secret-of-{id}-0123456789")).expect("secret"),
        events: events.iter().map(|e| e.to_string()).collect(),
        created_at: t(0),
    }
}

/// These deliveries delivered, the lease renewed until `t(until)`.
fn delivered(ids: &[i64], until: i64) -> Settlement {
    Settlement {
        delivered: ids.to_vec(),
        failed: None,
        lease_until: t(until),
        then_next: None,
    }
}

/// `id` failed with `error`: retried at `t(at)`, or dead (`None`, the lease renewed).
fn failed(id: i64, error: &str, retry_at: Option<i64>, until: i64) -> Settlement {
    Settlement {
        delivered: Vec::new(),
        failed: Some(Failure {
            delivery: id,
            error: error.to_string(),
            retry_at: retry_at.map(t),
        }),
        lease_until: t(until),
        then_next: None,
    }
}

/// Records `settlement` for `token`'s claim of the lane (`webhook`, `chat`) at `t(at)`.
async fn settle(
    store: &Arc<dyn Store>,
    webhook: &str,
    chat: &str,
    token: &str,
    settlement: &Settlement,
    at: i64,
) -> Settled {
    store
        .settle_deliveries(webhook, chat, token, settlement, t(at))
        .await
        .expect("settle")
}

fn claim_at(now: i64, token: &str, lanes: u32) -> LaneClaim {
    LaneClaim {
        now: t(now),
        lease_until: t(now + 60_000),
        token: token.to_string(),
        lanes,
        batch: 100,
    }
}

/// The message contents of new-message deliveries, in their order.
fn texts(deliveries: &[PendingDelivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| {
            let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
            body["data"]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn pending(store: &Arc<dyn Store>, webhook: &str) -> Vec<crate::webhooks::WebhookDelivery> {
    store
        .webhook_deliveries(&DeliveryQuery {
            webhook_id: Some(webhook.to_string()),
            dead: false,
            after_id: None,
            limit: 1000,
        })
        .await
        .expect("deliveries")
}

pub(super) async fn changes_write_their_webhook_events_in_the_same_operation(
    store: Arc<dyn Store>,
) {
    // No webhook: changes write nothing.
    let before = add_chat(&store, "early", 0).await;
    append(
        &store,
        msg(before, SenderType::Customer, "early", "hi", None),
    )
    .await;
    store
        .put_webhook(&hook("all", &["chat_updated", "new_message"]))
        .await
        .expect("put");
    store
        .put_webhook(&hook("messages", &["new_message"]))
        .await
        .expect("put");
    assert!(pending(&store, "all").await.is_empty());
    let officer = add_officer(&store, "amy").await;
    let chat = add_chat(&store, "c1", 1).await;
    let kinds = |d: &[crate::webhooks::WebhookDelivery]| -> Vec<String> {
        d.iter().map(|d| d.kind.clone()).collect()
    };
    assert_eq!(kinds(&pending(&store, "all").await), ["chat_updated"]);
    assert!(pending(&store, "messages").await.is_empty());
    // A login that finds the open chat writes nothing.
    let (_, created) = store
        .get_or_create_chat(&NewChat {
            id: ChatId::new(),
            customer_id: cid("c1"),
            customer_name: None,
            assigned_officer_id: None,
            default_capacity: None,
            created_at: t(2),
        })
        .await
        .expect("login");
    assert!(!created);
    append(
        &store,
        msg(chat, SenderType::Customer, "c1", "hello", Some("k1")),
    )
    .await;
    // A repeated key stores nothing and writes nothing.
    append(
        &store,
        msg(chat, SenderType::Customer, "c1", "hello", Some("k1")),
    )
    .await;
    assert!(matches!(
        claim(&store, chat, &officer, 3).await,
        TransitionOutcome::Applied(..)
    ));
    // A stale change writes nothing.
    assert!(matches!(
        claim(&store, chat, &officer, 4).await,
        TransitionOutcome::Stale(_)
    ));
    // Listed: the deliveries with a record of their own, the chat's changes. Its
    // messages are read from the chat when their lane is claimed; they are counted.
    let all = pending(&store, "all").await;
    assert_eq!(kinds(&all), ["chat_updated", "chat_updated"]);
    assert!(pending(&store, "messages").await.is_empty());
    assert!(all.iter().all(|d| d.chat_id == chat.to_string()));
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "ids grow in write order"
    );
    let counts: Vec<(String, u64)> = store
        .webhooks()
        .await
        .expect("list")
        .into_iter()
        .map(|w| (w.id, w.pending))
        .collect();
    assert_eq!(
        counts,
        [("all".to_string(), 4), ("messages".to_string(), 2)],
        "the two changes and the two messages (a send and the claim's entry)"
    );
    // The bodies are the events: claim the lane and read them.
    let lanes = store
        .claim_webhook_lanes(&claim_at(10, "tok", 10))
        .await
        .expect("claim");
    let lane = lanes
        .iter()
        .find(|l| l.webhook_id == "all")
        .expect("the lane");
    assert_eq!(lane.url, "http://receiver.test/all");
    assert_eq!(lane.secret.expose(), "secret-of-all-0123456789");
    let bodies: Vec<serde_json::Value> = lane
        .deliveries
        .iter()
        .map(|d| serde_json::from_str(&d.body).expect("JSON body"))
        .collect();
    assert_eq!(bodies[0]["type"], "chat_updated");
    assert_eq!(bodies[0]["data"]["change"], "created");
    assert_eq!(bodies[0]["data"]["chat"]["id"], chat.to_string());
    assert_eq!(bodies[1]["data"]["message"]["content"], "hello");
    assert_eq!(bodies[1]["data"]["message"]["seq"], 1);
    assert_eq!(bodies[2]["data"]["message"]["senderType"], "system");
    assert_eq!(bodies[3]["data"]["change"], "claimed");
    assert_eq!(bodies[3]["data"]["chat"]["assignedOfficerId"], "amy");
    assert_eq!(bodies[3]["data"]["chat"]["lastSeq"], 2);
    for (body, d) in bodies.iter().zip(&lane.deliveries) {
        assert_eq!(body["id"], d.event_id);
        assert_eq!(body["type"], d.kind);
    }
    let ids: std::collections::HashSet<_> = lane.deliveries.iter().map(|d| &d.event_id).collect();
    assert_eq!(ids.len(), 4, "one event id per event");
    assert_eq!(
        bodies[1]["id"], bodies[1]["data"]["message"]["id"],
        "a message's event has the message's id"
    );
    let messages = lanes
        .iter()
        .find(|l| l.webhook_id == "messages")
        .expect("the other webhook's lane");
    assert_eq!(
        messages
            .deliveries
            .iter()
            .map(|d| d.event_id.as_str())
            .collect::<Vec<_>>(),
        [
            lane.deliveries[1].event_id.as_str(),
            lane.deliveries[2].event_id.as_str()
        ],
        "two webhooks get the same event with the same id"
    );
}

pub(super) async fn lanes_are_claimed_by_one_claimant_in_order_and_leases_expire(
    store: Arc<dyn Store>,
) {
    store
        .put_webhook(&hook("w", &["new_message"]))
        .await
        .expect("put");
    let chats = [
        add_chat(&store, "a", 0).await,
        add_chat(&store, "b", 0).await,
    ];
    for chat in chats {
        for text in ["1", "2", "3"] {
            append(&store, msg(chat, SenderType::Customer, "x", text, None)).await;
        }
    }
    // Two claimants at once: each lane goes to one of them.
    let (one, two) = (claim_at(10, "one", 10), claim_at(10, "two", 10));
    let (first, second) = tokio::join!(
        store.claim_webhook_lanes(&one),
        store.claim_webhook_lanes(&two),
    );
    let (first, second) = (first.expect("claim"), second.expect("claim"));
    assert_eq!(first.len() + second.len(), 2, "{first:?} {second:?}");
    let mut lanes = first.into_iter().map(|l| ("one", l)).collect::<Vec<_>>();
    lanes.extend(second.into_iter().map(|l| ("two", l)));
    for (_, lane) in &lanes {
        assert_eq!(
            texts(&lane.deliveries),
            ["1", "2", "3"],
            "a lane's events in order"
        );
    }
    // Held: nobody else gets them before the lease ends.
    let again = store
        .claim_webhook_lanes(&claim_at(20, "three", 10))
        .await
        .expect("claim");
    assert!(again.is_empty(), "{again:?}");
    let (token, lane) = &lanes[0];
    // Delivered: the row goes, the lease holds.
    let held = settle(
        &store,
        &lane.webhook_id,
        &lane.chat_id,
        token,
        &delivered(&[lane.deliveries[0].id], 60_000),
        21,
    )
    .await;
    assert_eq!(held, Settled::Held);
    // A claimant whose lease was taken over learns it.
    let (other_token, other) = &lanes[1];
    let taken = store
        .claim_webhook_lanes(&claim_at(70_011, "four", 10))
        .await
        .expect("claim after the leases");
    assert_eq!(taken.len(), 2, "expired leases are taken over");
    let resumed = taken
        .iter()
        .find(|l| l.chat_id == lane.chat_id)
        .expect("the first lane");
    assert_eq!(resumed.deliveries.len(), 2, "what was delivered is gone");
    let lost = settle(
        &store,
        &other.webhook_id,
        &other.chat_id,
        other_token,
        &delivered(&[other.deliveries[0].id], 80_000),
        70_012,
    )
    .await;
    assert_eq!(
        lost,
        Settled::Lost,
        "the old claimant no longer holds the lane"
    );
    // A failure: the lane waits until its retry, its lease given up.
    let held = settle(
        &store,
        &resumed.webhook_id,
        &resumed.chat_id,
        "four",
        &failed(resumed.deliveries[0].id, "HTTP 500", Some(90_000), 130_000),
        70_013,
    )
    .await;
    assert_eq!(held, Settled::Held);
    let listed = pending(&store, "w").await;
    let head = listed
        .iter()
        .find(|d| d.event_id == resumed.deliveries[0].event_id)
        .expect("listed once it failed");
    assert_eq!(
        (head.attempts, head.last_error.as_deref()),
        (1, Some("HTTP 500"))
    );
    let early = store
        .claim_webhook_lanes(&claim_at(80_000, "five", 10))
        .await
        .expect("claim");
    assert!(
        early.iter().all(|l| l.chat_id != resumed.chat_id),
        "not before its retry"
    );
    let due = store
        .claim_webhook_lanes(&claim_at(90_000, "six", 10))
        .await
        .expect("claim");
    assert!(
        due.iter().any(|l| l.chat_id == resumed.chat_id),
        "due at its retry"
    );
}

pub(super) async fn dead_deliveries_are_kept_retried_and_deleted_with_their_webhook(
    store: Arc<dyn Store>,
) {
    store
        .put_webhook(&hook("w", &["new_message"]))
        .await
        .expect("put");
    let chat = add_chat(&store, "a", 0).await;
    for text in ["1", "2"] {
        append(&store, msg(chat, SenderType::Customer, "x", text, None)).await;
    }
    let lane = store
        .claim_webhook_lanes(&claim_at(10, "tok", 1))
        .await
        .expect("claim")
        .pop()
        .expect("a lane");
    let first = lane.deliveries[0].id;
    assert_eq!(lane.deliveries.len(), 2);
    let held = settle(
        &store,
        "w",
        &lane.chat_id,
        "tok",
        &failed(first, "timed out", None, 60_000),
        11,
    )
    .await;
    assert_eq!(held, Settled::Held);
    // The batch's end, letting the lane go: nothing is left pending, so it is gone.
    let settled = settle(
        &store,
        "w",
        &lane.chat_id,
        "tok",
        &Settlement {
            then_next: Some(0),
            ..delivered(&[lane.deliveries[1].id], 60_000)
        },
        12,
    )
    .await;
    assert_eq!(settled, Settled::Emptied);
    let hooks = store.webhooks().await.expect("list");
    assert_eq!((hooks[0].pending, hooks[0].dead), (0, 1));
    assert!(
        store
            .claim_webhook_lanes(&claim_at(14, "x", 10))
            .await
            .expect("claim")
            .is_empty(),
        "an emptied lane is gone"
    );
    let dead = store
        .webhook_deliveries(&DeliveryQuery {
            webhook_id: None,
            dead: true,
            after_id: None,
            limit: 10,
        })
        .await
        .expect("dead");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].state.as_str(), dead[0].attempts), ("dead", 1));
    assert_eq!(dead[0].last_error.as_deref(), Some("timed out"));
    // Retried: pending again, with a fresh period, due now.
    assert_eq!(
        store
            .retry_dead_deliveries(Some("w"), None, t(20))
            .await
            .expect("retry"),
        1
    );
    let lanes = store
        .claim_webhook_lanes(&claim_at(20, "y", 10))
        .await
        .expect("claim");
    assert_eq!(lanes.len(), 1);
    assert_eq!(lanes[0].deliveries[0].event_id, lane.deliveries[0].event_id);
    assert_eq!(
        lanes[0].deliveries.len(),
        1,
        "the one delivered stays delivered"
    );
    assert_eq!(lanes[0].deliveries[0].queued_at, t(20));
    assert_eq!(lanes[0].deliveries[0].attempts, 0);
    // Replaced by id: same deliveries, new url.
    let mut moved = hook("w", &["new_message"]);
    moved.url = "http://elsewhere.test/".into();
    store.put_webhook(&moved).await.expect("put");
    let hooks = store.webhooks().await.expect("list");
    assert_eq!(
        (hooks.len(), hooks[0].url.as_str(), hooks[0].pending),
        (1, "http://elsewhere.test/", 1)
    );
    assert!(store.delete_webhook("w").await.expect("delete"));
    assert!(!store.delete_webhook("w").await.expect("delete again"));
    assert!(store.webhooks().await.expect("list").is_empty());
    assert!(pending(&store, "w").await.is_empty());
    append(&store, msg(chat, SenderType::Customer, "x", "3", None)).await;
    assert!(
        store
            .claim_webhook_lanes(&claim_at(30, "z", 10))
            .await
            .expect("claim")
            .is_empty()
    );
}

pub(super) async fn a_batchs_last_settlement_deletes_an_empty_lane_or_goes_on_with_it(
    store: Arc<dyn Store>,
) {
    store
        .put_webhook(&hook("w", &["new_message"]))
        .await
        .expect("put");
    let chat = add_chat(&store, "a", 0).await;
    append(&store, msg(chat, SenderType::Customer, "x", "1", None)).await;
    let lane = store
        .claim_webhook_lanes(&claim_at(10, "tok", 1))
        .await
        .expect("claim")
        .pop()
        .expect("a lane");
    assert_eq!(lane.deliveries.len(), 1);
    let end = |ids: &[i64], next| Settlement {
        then_next: Some(next),
        ..delivered(ids, 60_000)
    };
    // Events come while the batch is out: the batch's end keeps the lane and reads the
    // next batch (at most the number asked), in order.
    for text in ["2", "3", "4"] {
        append(&store, msg(chat, SenderType::Customer, "x", text, None)).await;
    }
    let settled = settle(
        &store,
        "w",
        &lane.chat_id,
        "tok",
        &end(&[lane.deliveries[0].id], 2),
        11,
    )
    .await;
    let Settled::More(next) = settled else {
        panic!("events are pending in it: {settled:?}");
    };
    assert_eq!(texts(&next), ["2", "3"]);
    assert!(
        store
            .claim_webhook_lanes(&claim_at(12, "other", 10))
            .await
            .expect("claim")
            .is_empty(),
        "still the claim's"
    );
    // Another claimant's batch end changes nothing and learns it lost the lane.
    let lost = settle(&store, "w", &lane.chat_id, "other", &end(&[], 16), 13).await;
    assert_eq!(lost, Settled::Lost);
    // Letting it go with an event left: free, and due at once for the next claim.
    let ids: Vec<i64> = next.iter().map(|d| d.id).collect();
    let settled = settle(&store, "w", &lane.chat_id, "tok", &end(&ids, 0), 14).await;
    assert_eq!(settled, Settled::Released);
    let again = store
        .claim_webhook_lanes(&claim_at(15, "later", 10))
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(texts(&again[0].deliveries), ["4"]);
    // The last batch's end with nothing left: the lane is gone.
    let settled = settle(
        &store,
        "w",
        &lane.chat_id,
        "later",
        &end(&[again[0].deliveries[0].id], 16),
        16,
    )
    .await;
    assert_eq!(settled, Settled::Emptied);
    let hooks = store.webhooks().await.expect("list");
    assert_eq!((hooks[0].pending, hooks[0].dead), (0, 0));
    // A later event makes a new lane, due at once for any claimant.
    append(&store, msg(chat, SenderType::Customer, "x", "5", None)).await;
    let again = store
        .claim_webhook_lanes(&claim_at(20, "d", 10))
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    // A batch end whose event was given up on (dead), nothing else left: gone too.
    let dead = Settlement {
        then_next: Some(16),
        ..failed(again[0].deliveries[0].id, "HTTP 410", None, 60_000)
    };
    let settled = settle(&store, "w", &lane.chat_id, "d", &dead, 21).await;
    assert_eq!(settled, Settled::Emptied);
    assert_eq!(store.webhooks().await.expect("list")[0].dead, 1);
    // A batch end whose failure is to be retried waits for the retry, lane kept.
    append(&store, msg(chat, SenderType::Customer, "x", "6", None)).await;
    let retry = store
        .claim_webhook_lanes(&claim_at(30, "r", 10))
        .await
        .expect("claim")
        .pop()
        .expect("a lane");
    let waits = Settlement {
        then_next: Some(16),
        ..failed(retry.deliveries[0].id, "HTTP 503", Some(40), 60_000)
    };
    let settled = settle(&store, "w", &lane.chat_id, "r", &waits, 31).await;
    assert_eq!(settled, Settled::Held);
    assert!(
        store
            .claim_webhook_lanes(&claim_at(35, "s", 10))
            .await
            .expect("claim")
            .is_empty(),
        "not before its retry"
    );
    assert_eq!(
        store
            .claim_webhook_lanes(&claim_at(40, "s", 10))
            .await
            .expect("claim")
            .len(),
        1,
        "due at its retry"
    );
}

/// What a delivery is, for the order checks: a message's content, `entry` for a
/// change's system entry, or a change's name.
fn steps(deliveries: &[PendingDelivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| {
            let body: serde_json::Value = serde_json::from_str(&d.body).expect("JSON body");
            let message = &body["data"]["message"];
            match message["content"].as_str() {
                _ if message["senderType"] == "system" => "entry".to_string(),
                Some(text) => text.to_string(),
                None => body["data"]["change"]
                    .as_str()
                    .expect("a change")
                    .to_string(),
            }
        })
        .collect()
}

pub(super) async fn a_chats_changes_and_messages_keep_its_order_through_failures(
    store: Arc<dyn Store>,
) {
    store
        .put_webhook(&hook("w", &["chat_updated", "new_message"]))
        .await
        .expect("put");
    let officer = add_officer(&store, "amy").await;
    let chat = add_chat(&store, "a", 0).await;
    for text in ["m1", "m2"] {
        append(&store, msg(chat, SenderType::Customer, "a", text, None)).await;
    }
    assert!(matches!(
        claim(&store, chat, &officer, 3).await,
        TransitionOutcome::Applied(..)
    ));
    append(&store, msg(chat, SenderType::Officer, "amy", "m4", None)).await;
    let lane = store
        .claim_webhook_lanes(&claim_at(10, "one", 10))
        .await
        .expect("claim")
        .pop()
        .expect("a lane");
    let order = ["created", "m1", "m2", "entry", "claimed", "m4"];
    assert_eq!(steps(&lane.deliveries), order);
    // The created event delivered, then m1 fails: recorded (listed, with its error),
    // and the lane waits for its retry.
    let settled = settle(
        &store,
        "w",
        &lane.chat_id,
        "one",
        &Settlement {
            delivered: vec![lane.deliveries[0].id],
            ..failed(lane.deliveries[1].id, "HTTP 502", Some(20), 60_000)
        },
        11,
    )
    .await;
    assert_eq!(settled, Settled::Held);
    let listed = pending(&store, "w").await;
    let m1 = listed
        .iter()
        .find(|d| d.event_id == lane.deliveries[1].event_id)
        .expect("the failed message is listed");
    assert_eq!(
        (m1.attempts, m1.last_error.as_deref()),
        (1, Some("HTTP 502"))
    );
    assert_eq!(store.webhooks().await.expect("list")[0].pending, 5);
    // Its retry: the same events after the one delivered, in the same order, m1 with
    // its attempt counted.
    let retry = store
        .claim_webhook_lanes(&claim_at(20, "two", 10))
        .await
        .expect("claim")
        .pop()
        .expect("due at its retry");
    assert_eq!(steps(&retry.deliveries), &order[1..]);
    assert_eq!(retry.deliveries[0].attempts, 1);
    let ids: Vec<&str> = retry
        .deliveries
        .iter()
        .map(|d| d.event_id.as_str())
        .collect();
    let before: Vec<&str> = lane.deliveries[1..]
        .iter()
        .map(|d| d.event_id.as_str())
        .collect();
    assert_eq!(ids, before, "the same event ids in every attempt");
    // m1 and m2 delivered, the entry fails for good (dead): the lane goes on with the
    // rest, and the dead one is listed as dead.
    let settled = settle(
        &store,
        "w",
        &retry.chat_id,
        "two",
        &Settlement {
            delivered: vec![retry.deliveries[0].id, retry.deliveries[1].id],
            ..failed(retry.deliveries[2].id, "HTTP 410", None, 60_000)
        },
        21,
    )
    .await;
    assert_eq!(settled, Settled::Held);
    let rest = settle(
        &store,
        "w",
        &retry.chat_id,
        "two",
        &Settlement {
            then_next: Some(16),
            ..delivered(&[], 60_000)
        },
        22,
    )
    .await;
    let Settled::More(rest) = rest else {
        panic!("events are left: {rest:?}");
    };
    assert_eq!(steps(&rest), ["claimed", "m4"]);
    let hooks = store.webhooks().await.expect("list");
    assert_eq!((hooks[0].pending, hooks[0].dead), (2, 1));
}

pub(super) async fn a_webhook_gets_the_messages_sent_after_it_takes_them(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "a", 0).await;
    append(&store, msg(chat, SenderType::Customer, "a", "before", None)).await;
    // Made while the chat has a message: it gets the next one only.
    store
        .put_webhook(&hook("late", &["new_message"]))
        .await
        .expect("put");
    // Taking changes only: the chat's lane starts with its next change.
    store
        .put_webhook(&hook("changes", &["chat_updated"]))
        .await
        .expect("put");
    append(&store, msg(chat, SenderType::Customer, "a", "after", None)).await;
    let officer = add_officer(&store, "amy").await;
    assert!(matches!(
        claim(&store, chat, &officer, 3).await,
        TransitionOutcome::Applied(..)
    ));
    append(
        &store,
        msg(chat, SenderType::Officer, "amy", "ignored", None),
    )
    .await;
    // The second webhook now takes messages too: from the next one on.
    store
        .put_webhook(&hook("changes", &["chat_updated", "new_message"]))
        .await
        .expect("put");
    append(&store, msg(chat, SenderType::Officer, "amy", "taken", None)).await;
    let mut lanes = store
        .claim_webhook_lanes(&claim_at(10, "tok", 10))
        .await
        .expect("claim");
    lanes.sort_by(|a, b| a.webhook_id.cmp(&b.webhook_id));
    let got: Vec<(&str, Vec<String>)> = lanes
        .iter()
        .map(|l| (l.webhook_id.as_str(), steps(&l.deliveries)))
        .collect();
    assert_eq!(
        got,
        [
            ("changes", vec!["claimed".to_string(), "taken".to_string()]),
            (
                "late",
                ["after", "entry", "ignored", "taken"]
                    .map(String::from)
                    .to_vec()
            ),
        ]
    );
}

pub(super) async fn a_claimant_that_lost_its_lane_records_no_failure_in_it(store: Arc<dyn Store>) {
    store
        .put_webhook(&hook("w", &["new_message"]))
        .await
        .expect("put");
    let chat = add_chat(&store, "a", 0).await;
    for text in ["1", "2"] {
        append(&store, msg(chat, SenderType::Customer, "x", text, None)).await;
    }
    let old = store
        .claim_webhook_lanes(&claim_at(10, "old", 10))
        .await
        .expect("claim")
        .pop()
        .expect("a lane");
    // Its lease expires; another claimant takes the lane and delivers both.
    let new = store
        .claim_webhook_lanes(&claim_at(70_011, "new", 10))
        .await
        .expect("claim")
        .pop()
        .expect("taken over");
    assert_eq!(texts(&new.deliveries), ["1", "2"]);
    // The first claimant's late failure of message 2 records nothing and moves nothing:
    // the lane is not its own any more.
    let late = settle(
        &store,
        "w",
        &old.chat_id,
        "old",
        &failed(old.deliveries[1].id, "timed out", None, 80_000),
        70_012,
    )
    .await;
    assert_eq!(late, Settled::Lost);
    assert!(pending(&store, "w").await.is_empty());
    // The claimant that holds it fails message 1: at its retry, 1 then 2.
    let held = settle(
        &store,
        "w",
        &new.chat_id,
        "new",
        &failed(new.deliveries[0].id, "HTTP 503", Some(71_000), 130_000),
        70_013,
    )
    .await;
    assert_eq!(held, Settled::Held);
    let retry = store
        .claim_webhook_lanes(&claim_at(71_000, "retry", 10))
        .await
        .expect("claim")
        .pop()
        .expect("due at its retry");
    assert_eq!(texts(&retry.deliveries), ["1", "2"]);
    let ids: Vec<i64> = retry.deliveries.iter().map(|d| d.id).collect();
    let done = settle(
        &store,
        "w",
        &retry.chat_id,
        "retry",
        &Settlement {
            then_next: Some(16),
            ..delivered(&ids, 130_000)
        },
        71_001,
    )
    .await;
    assert_eq!(done, Settled::Emptied);
    let hooks = store.webhooks().await.expect("list");
    assert_eq!((hooks[0].pending, hooks[0].dead), (0, 0));
    assert!(pending(&store, "w").await.is_empty());
    // A webhook that stops taking messages stops at once, those waiting included.
    append(&store, msg(chat, SenderType::Customer, "x", "3", None)).await;
    assert_eq!(store.webhooks().await.expect("list")[0].pending, 1);
    store
        .put_webhook(&hook("w", &["chat_updated"]))
        .await
        .expect("put");
    assert_eq!(store.webhooks().await.expect("list")[0].pending, 0);
    let lanes = store
        .claim_webhook_lanes(&claim_at(80_000, "later", 10))
        .await
        .expect("claim");
    assert!(lanes.iter().all(|l| l.deliveries.is_empty()), "{lanes:?}");
}
