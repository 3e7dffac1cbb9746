//! Conformance cases on officers, chats and the claim: one chat per customer (also under
//! concurrent logins), the queue's order, and exactly one winner of racing claims.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::*;

pub(super) async fn officers_are_stored_unique_and_listed_by_id(store: Arc<dyn Store>) {
    let record = OfficerRecord {
        officer: Officer {
            id: oid("zoe"),
            display_name: Some("Zoë".into()),
            created_at: t(5),
            disabled: false,
            availability: Availability::Available,
            capacity: None,
            open_chats: 0,
            connected: false,
        },
        password_hash: Some("$argon2id$fake".into()),
    };
    store.create_officer(&record).await.expect("create");
    assert_eq!(
        store.officer(&oid("zoe")).await.expect("get"),
        Some(record.clone())
    );
    assert!(store.officer(&oid("nobody")).await.expect("get").is_none());
    let dup = store.create_officer(&record).await;
    assert!(
        matches!(dup, Err(StoreError::Duplicate)),
        "duplicate id accepted: {dup:?}"
    );
    add_officer(&store, "adam").await;
    let ids: Vec<String> = store
        .officers()
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.id.to_string())
        .collect();
    assert_eq!(ids, ["adam", "zoe"]);
}

pub(super) async fn one_chat_per_customer(store: Arc<dyn Store>) {
    let first = NewChat {
        id: ChatId::new(),
        customer_id: cid("c1"),
        customer_name: None,
        assigned_officer_id: None,
        default_capacity: None,
        created_at: t(10),
    };
    let (chat, created) = store.get_or_create_chat(&first).await.expect("create");
    assert!(created);
    assert_eq!(chat.id, first.id);
    assert_eq!(chat.status, ChatStatus::Pending);
    assert_eq!(chat.assigned_officer_id, None);
    assert_eq!(chat.created_at, t(10));
    let again = NewChat {
        id: ChatId::new(),
        created_at: t(20),
        ..first.clone()
    };
    let (same, created) = store.get_or_create_chat(&again).await.expect("again");
    assert!(!created);
    assert_eq!(same, chat);
    assert_eq!(store.chat(&chat.id).await.expect("get"), Some(chat));
    assert!(store.chat(&again.id).await.expect("get").is_none());
}

pub(super) async fn concurrent_logins_of_one_customer_make_one_chat(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .get_or_create_chat(&NewChat {
                        id: ChatId::new(),
                        customer_id: cid("same-customer"),
                        customer_name: None,
                        assigned_officer_id: None,
                        default_capacity: None,
                        created_at: t(i),
                    })
                    .await
                    .expect("get or create")
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (chat, was_created) = task.await.expect("task");
        ids.insert(chat.id);
        created += usize::from(was_created);
    }
    assert_eq!(ids.len(), 1, "one customer got several chats");
    assert_eq!(created, 1, "`created` reported {created} times");
    assert_eq!(store.pending_chats(100).await.expect("queue").len(), 1);
}

pub(super) async fn chat_created_for_an_officer_is_assigned(store: Arc<dyn Store>) {
    let bob = add_officer(&store, "bob").await;
    let (chat, created) = store
        .get_or_create_chat(&NewChat {
            id: ChatId::new(),
            customer_id: cid("c-assigned"),
            customer_name: None,
            assigned_officer_id: Some(bob.clone()),
            default_capacity: None,
            created_at: t(1),
        })
        .await
        .expect("create");
    assert!(created);
    assert_eq!(chat.status, ChatStatus::Assigned);
    assert_eq!(chat.assigned_officer_id, Some(bob.clone()));
    assert!(store.pending_chats(10).await.expect("queue").is_empty());
    assert_eq!(
        store
            .officer_chats(&bob, ChatStatus::Assigned, 10)
            .await
            .expect("chats"),
        vec![chat]
    );
}

/// A new chat for an officer with no room left is created in the queue, decided in the
/// creating transaction: of logins racing for an officer's one free slot, exactly one
/// chat is hers; with no capacity of her own, the login's default rules.
pub(super) async fn a_chat_created_for_a_full_officer_waits_in_the_queue(store: Arc<dyn Store>) {
    const RACERS: usize = 8;
    let amy = add_officer(&store, "amy").await;
    store
        .update_officer(&amy, &capacity(Some(1)))
        .await
        .expect("set")
        .expect("amy exists");
    let login = |customer: String, default_capacity: Option<u32>, at: i64| NewChat {
        id: ChatId::new(),
        customer_id: cid(&customer),
        customer_name: None,
        assigned_officer_id: Some(amy.clone()),
        default_capacity,
        created_at: t(at),
    };
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let (store, new) = (store.clone(), login(format!("c{i}"), None, i as i64));
            tokio::spawn(async move { store.get_or_create_chat(&new).await.expect("login") })
        })
        .collect();
    let (mut hers, mut queued) = (0, 0);
    for racer in racers {
        let (chat, created) = racer.await.expect("racer");
        assert!(created, "each customer's first login creates their chat");
        match (chat.status, &chat.assigned_officer_id) {
            (ChatStatus::Assigned, Some(owner)) if *owner == amy => hers += 1,
            (ChatStatus::Pending, None) => queued += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((hers, queued), (1, RACERS - 1));
    let amy_now = store.officer(&amy).await.expect("officer").expect("amy");
    assert_eq!(amy_now.officer.open_chats, 1);
    assert_eq!(
        store.pending_chats(100).await.expect("queue").len(),
        RACERS - 1
    );
    // Her own capacity cleared, the login's default decides: 2 (she holds 1).
    store
        .update_officer(&amy, &capacity(None))
        .await
        .expect("set")
        .expect("amy exists");
    let (second, _) = store
        .get_or_create_chat(&login("d1".into(), Some(2), 100))
        .await
        .expect("login");
    assert_eq!(second.assigned_officer_id.as_ref(), Some(&amy));
    let (third, _) = store
        .get_or_create_chat(&login("d2".into(), Some(2), 101))
        .await
        .expect("login");
    assert_eq!(
        (third.status, third.assigned_officer_id),
        (ChatStatus::Pending, None)
    );
    // Unlimited by default: given.
    let (fourth, _) = store
        .get_or_create_chat(&login("d3".into(), None, 102))
        .await
        .expect("login");
    assert_eq!(fourth.assigned_officer_id.as_ref(), Some(&amy));
    let amy_now = store.officer(&amy).await.expect("officer").expect("amy");
    assert_eq!(amy_now.officer.open_chats, 3);
}

pub(super) async fn a_customers_name_is_kept_and_replaced_only_by_a_new_one(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let login = |name: Option<&str>| NewChat {
        id: ChatId::new(),
        customer_id: cid("named"),
        customer_name: name.map(str::to_string),
        assigned_officer_id: None,
        default_capacity: None,
        created_at: t(1),
    };
    let (chat, _) = store
        .get_or_create_chat(&login(Some("Ada Lovelace")))
        .await
        .expect("create");
    assert_eq!(chat.customer_name.as_deref(), Some("Ada Lovelace"));
    let (kept, _) = store.get_or_create_chat(&login(None)).await.expect("again");
    assert_eq!(kept, chat, "a login without a name changed the chat");
    let (renamed, created) = store
        .get_or_create_chat(&login(Some("Ada King")))
        .await
        .expect("rename");
    assert!(!created);
    assert_eq!(
        (renamed.id, renamed.customer_name.as_deref()),
        (chat.id, Some("Ada King"))
    );
    // Every read of the chat carries the name.
    assert_eq!(
        store.chat(&chat.id).await.expect("get"),
        Some(renamed.clone())
    );
    assert_eq!(
        store.pending_chats(10).await.expect("queue"),
        vec![renamed.clone()]
    );
    let TransitionOutcome::Applied(claimed, _) = claim(&store, chat.id, &amy, 2).await else {
        panic!("the pending chat was not claimed");
    };
    assert_eq!(claimed.customer_name.as_deref(), Some("Ada King"));
    assert_eq!(
        store
            .officer_chats(&amy, ChatStatus::Assigned, 10)
            .await
            .expect("chats"),
        vec![claimed]
    );
}

pub(super) async fn queue_is_pending_chats_oldest_first(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    // Created out of order; two share a timestamp (then the id orders them).
    let c3 = add_chat(&store, "c3", 300).await;
    let c1 = add_chat(&store, "c1", 100).await;
    let c2a = add_chat(&store, "c2a", 200).await;
    let c2b = add_chat(&store, "c2b", 200).await;
    let (lo, hi) = if c2a < c2b { (c2a, c2b) } else { (c2b, c2a) };
    let queue: Vec<ChatId> = store
        .pending_chats(100)
        .await
        .expect("queue")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(queue, vec![c1, lo, hi, c3]);
    let limited = store.pending_chats(2).await.expect("queue");
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].id, c1);
    claim(&store, c1, &amy, 400).await;
    let queue: Vec<ChatId> = store
        .pending_chats(100)
        .await
        .expect("queue")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        queue,
        vec![lo, hi, c3],
        "a claimed chat stayed in the queue"
    );
}

pub(super) async fn a_claim_is_a_transition_from_pending(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    let chat = add_chat(&store, "c", 1).await;
    match claim(&store, chat, &amy, 5).await {
        TransitionOutcome::Applied(c, entry) => {
            assert_eq!(c.assigned_officer_id, Some(amy.clone()));
            assert_eq!(
                (c.status, c.last_seq, c.updated_at),
                (ChatStatus::Assigned, 1, t(5))
            );
            assert_eq!((entry.seq, entry.sender_type), (1, SenderType::System));
        }
        other => panic!("expected the claim applied, got {other:?}"),
    }
    // Decided on a pending chat that is no longer pending: nothing changes, whoever asks.
    for officer in [&amy, &ben] {
        assert!(matches!(
            claim(&store, chat, officer, 6).await,
            TransitionOutcome::Stale(c) if c.assigned_officer_id == Some(amy.clone())
        ));
    }
    assert_eq!(
        claim(&store, ChatId::new(), &ben, 7).await,
        TransitionOutcome::NotFound
    );
    let stored = store.chat(&chat).await.expect("get").expect("exists");
    assert_eq!(
        (stored.assigned_officer_id, stored.last_seq),
        (Some(amy), 1)
    );
}

pub(super) async fn claim_race_has_exactly_one_winner_per_chat(store: Arc<dyn Store>) {
    const OFFICERS: usize = 32;
    const CHATS: usize = 200;
    let mut officers = Vec::new();
    for i in 0..OFFICERS {
        officers.push(add_officer(&store, &format!("o{i}")).await);
    }
    let mut chats = Vec::new();
    for i in 0..CHATS {
        chats.push(add_chat(&store, &format!("c{i}"), i as i64).await);
    }
    let chats = Arc::new(chats);
    let tasks: Vec<_> = officers
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, officer)| {
            let (store, chats) = (store.clone(), chats.clone());
            tokio::spawn(async move {
                let mut won = Vec::new();
                // Each officer walks the chats from a different start, so they collide.
                for k in 0..CHATS {
                    let chat = chats[(i * 7 + k) % CHATS];
                    match claim(&store, chat, &officer, 1).await {
                        TransitionOutcome::Applied(..) => won.push(chat),
                        TransitionOutcome::Stale(_) => {}
                        other => panic!("unexpected claim outcome {other:?}"),
                    }
                }
                (officer, won)
            })
        })
        .collect();
    let mut winner: HashMap<ChatId, OfficerId> = HashMap::new();
    for task in tasks {
        let (officer, won) = task.await.expect("task");
        for chat in won {
            if let Some(prev) = winner.insert(chat, officer.clone()) {
                panic!("chat {chat} won by both {prev} and {officer}");
            }
        }
    }
    assert_eq!(winner.len(), CHATS, "some chat had no winner");
    for (chat, officer) in &winner {
        let stored = store.chat(chat).await.expect("get").expect("exists");
        assert_eq!(stored.assigned_officer_id.as_ref(), Some(officer));
    }
    assert!(store.pending_chats(1000).await.expect("queue").is_empty());
}

pub(super) async fn officer_chats_by_status_newest_activity_first(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    let late = add_chat(&store, "late", 50).await;
    let early = add_chat(&store, "early", 10).await;
    let bens = add_chat(&store, "bens", 20).await;
    let done = add_chat(&store, "done", 30).await;
    for (chat, officer, at) in [
        (late, &amy, 60),
        (early, &amy, 70),
        (bens, &ben, 65),
        (done, &amy, 80),
    ] {
        assert!(matches!(
            claim(&store, chat, officer, at).await,
            TransitionOutcome::Applied(..)
        ));
    }
    let resolved = change(
        done,
        (ChatStatus::Assigned, Some(&amy)),
        (ChatStatus::Resolved, Some(&amy)),
        ChatChange::Resolved,
        90,
    );
    assert!(matches!(
        apply(&store, &resolved).await,
        TransitionOutcome::Applied(..)
    ));
    // A message is activity: the chat claimed first is now the newest.
    let mut reply = msg(late, SenderType::Officer, "amy", "hello", None);
    reply.created_at = t(100);
    append(&store, reply).await;
    let ids = |chats: Vec<crate::model::Chat>| chats.iter().map(|c| c.id).collect::<Vec<_>>();
    let list = |officer: OfficerId, status: ChatStatus, limit: u32| {
        let store = store.clone();
        async move {
            store
                .officer_chats(&officer, status, limit)
                .await
                .expect("chats")
        }
    };
    assert_eq!(
        ids(list(amy.clone(), ChatStatus::Assigned, 100).await),
        vec![late, early]
    );
    assert_eq!(
        ids(list(amy.clone(), ChatStatus::Assigned, 1).await),
        vec![late]
    );
    assert_eq!(
        ids(list(amy.clone(), ChatStatus::Resolved, 100).await),
        vec![done]
    );
    assert_eq!(
        ids(list(ben.clone(), ChatStatus::Assigned, 100).await),
        vec![bens]
    );
    assert!(list(ben, ChatStatus::Resolved, 100).await.is_empty());
    assert!(list(amy, ChatStatus::Pending, 100).await.is_empty());
    assert!(
        list(oid("nobody"), ChatStatus::Assigned, 100)
            .await
            .is_empty()
    );
}

pub(super) async fn counts_are_what_the_store_holds(store: Arc<dyn Store>) {
    let empty = store.counts().await.expect("counts");
    assert_eq!(empty, crate::store::Counts::default());
    let amy = add_officer(&store, "amy").await;
    add_officer(&store, "bob").await;
    let first = add_chat(&store, "c1", 1).await;
    add_chat(&store, "c2", 2).await;
    add_chat(&store, "c3", 3).await;
    claim(&store, first, &amy, 4).await;
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        (counts.officers, counts.pending_chats, counts.assigned_chats),
        (2, 2, 1)
    );
}

fn capacity(capacity: Option<u32>) -> crate::store::OfficerUpdate {
    crate::store::OfficerUpdate {
        capacity: Some(capacity),
        availability: None,
    }
}

pub(super) async fn capacity_is_checked_in_the_same_transaction(store: Arc<dyn Store>) {
    const RACERS: usize = 8;
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    let set = store
        .update_officer(&amy, &capacity(Some(1)))
        .await
        .expect("set")
        .expect("amy exists");
    assert_eq!((set.capacity, set.open_chats), (Some(1), 0));
    assert_eq!(
        store
            .update_officer(&oid("nobody"), &capacity(Some(1)))
            .await
            .expect("set"),
        None
    );
    let mut chats = Vec::new();
    for i in 0..RACERS {
        chats.push(add_chat(&store, &format!("c{i}"), i as i64).await);
    }
    // Amy, with one free slot, claims every chat at once: exactly one is hers.
    let racers: Vec<_> = chats
        .iter()
        .map(|&chat| {
            let (store, amy) = (store.clone(), amy.clone());
            tokio::spawn(async move { claim(&store, chat, &amy, 10).await })
        })
        .collect();
    let (mut won, mut full) = (Vec::new(), 0);
    for (racer, chat) in racers.into_iter().zip(&chats) {
        match racer.await.expect("racer") {
            TransitionOutcome::Applied(..) => won.push(*chat),
            TransitionOutcome::AtCapacity => full += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((won.len(), full), (1, RACERS - 1));
    let officer = |id: OfficerId| {
        let store = store.clone();
        async move {
            store
                .officer(&id)
                .await
                .expect("officer")
                .expect("exists")
                .officer
        }
    };
    assert_eq!(officer(amy.clone()).await.open_chats, 1);
    // A transfer to her is refused alike; a change that keeps the chat hers is not.
    let free: Vec<ChatId> = chats.iter().copied().filter(|c| !won.contains(c)).collect();
    assert!(matches!(
        claim(&store, free[0], &ben, 11).await,
        TransitionOutcome::Applied(..)
    ));
    let transfer = change(
        free[0],
        (ChatStatus::Assigned, Some(&ben)),
        (ChatStatus::Assigned, Some(&amy)),
        ChatChange::Transferred,
        12,
    );
    assert_eq!(
        apply(&store, &transfer).await,
        TransitionOutcome::AtCapacity
    );
    let resolve = change(
        won[0],
        (ChatStatus::Assigned, Some(&amy)),
        (ChatStatus::Resolved, Some(&amy)),
        ChatChange::Resolved,
        13,
    );
    assert!(matches!(
        apply(&store, &resolve).await,
        TransitionOutcome::Applied(..)
    ));
    // The ended chat frees her slot.
    assert_eq!(officer(amy.clone()).await.open_chats, 0);
    assert!(matches!(
        apply(&store, &transfer).await,
        TransitionOutcome::Applied(..)
    ));
    // Without a capacity of her own, the change's default rules: ben holds none now.
    store
        .update_officer(&ben, &capacity(None))
        .await
        .expect("set")
        .expect("ben exists");
    let with_default = |chat: ChatId, at: i64| Transition {
        default_capacity: Some(2),
        ..change(
            chat,
            (ChatStatus::Pending, None),
            (ChatStatus::Assigned, Some(&ben)),
            ChatChange::Claimed,
            at,
        )
    };
    let mut outcomes = Vec::new();
    for (chat, at) in [(free[1], 20), (free[2], 21), (free[3], 22)] {
        outcomes.push(apply(&store, &with_default(chat, at)).await);
    }
    assert!(matches!(outcomes[0], TransitionOutcome::Applied(..)));
    assert!(matches!(outcomes[1], TransitionOutcome::Applied(..)));
    assert_eq!(outcomes[2], TransitionOutcome::AtCapacity);
    let listed = store.officers().await.expect("officers");
    let loads: Vec<(&str, Option<u32>, u32)> = listed
        .iter()
        .map(|o| (o.id.as_str(), o.capacity, o.open_chats))
        .collect();
    assert_eq!(loads, [("amy", Some(1), 1), ("ben", None, 2)]);
    // Availability is changed alone, and read back; the capacity stays.
    let away = crate::store::OfficerUpdate {
        capacity: None,
        availability: Some(Availability::Away),
    };
    let updated = store
        .update_officer(&amy, &away)
        .await
        .expect("update")
        .expect("amy exists");
    assert_eq!(
        (updated.availability, updated.capacity, updated.open_chats),
        (Availability::Away, Some(1), 1)
    );
    assert_eq!(officer(amy).await.availability, Availability::Away);
    assert_eq!(officer(ben).await.availability, Availability::Available);
    // A capacity given at creation is stored with the officer.
    let cy = OfficerRecord {
        officer: Officer {
            id: oid("cy"),
            display_name: None,
            created_at: t(0),
            disabled: false,
            availability: Availability::Available,
            capacity: Some(3),
            open_chats: 0,
            connected: false,
        },
        password_hash: None,
    };
    store.create_officer(&cy).await.expect("create cy");
    assert_eq!(officer(oid("cy")).await.capacity, Some(3));
}
