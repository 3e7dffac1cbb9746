//! Cases on what routing reads and writes: presence per node (and forgetting a node that
//! stopped), the officers a chat may be given to automatically in the contract's order,
//! and the queue's order.

use super::*;
use crate::store::OfficerUpdate;

async fn connected(store: &Arc<dyn Store>, officer: &OfficerId) -> bool {
    store
        .officer(officer)
        .await
        .expect("officer")
        .expect("exists")
        .officer
        .connected
}

pub(super) async fn presence_is_per_node_and_dead_nodes_are_forgotten(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    assert!(
        !connected(&store, &amy).await,
        "a new officer is not connected"
    );
    // Amy connects on node A and node B; Ben on B only.
    let seen = store
        .set_presence("node-a", &amy, true, t(0))
        .await
        .expect("presence")
        .expect("amy exists");
    assert!(seen.connected);
    store
        .set_presence("node-b", &amy, true, t(0))
        .await
        .expect("presence");
    store
        .set_presence("node-b", &ben, true, t(0))
        .await
        .expect("presence");
    // Twice is once.
    store
        .set_presence("node-b", &ben, true, t(1))
        .await
        .expect("presence");
    assert_eq!(
        store
            .set_presence("node-a", &oid("nobody"), true, t(1))
            .await
            .expect("presence"),
        None,
        "no presence for an officer who does not exist"
    );
    let listed: Vec<(String, bool)> = store
        .officers()
        .await
        .expect("officers")
        .into_iter()
        .map(|o| (o.id.to_string(), o.connected))
        .collect();
    assert_eq!(listed, [("amy".into(), true), ("ben".into(), true)]);
    // Amy leaves node A: still connected through B.
    let left = store
        .set_presence("node-a", &amy, false, t(2))
        .await
        .expect("presence")
        .expect("amy exists");
    assert!(left.connected, "connected on another node");
    store
        .set_presence("node-a", &amy, true, t(2))
        .await
        .expect("presence");
    // Node A beats at t(100); node B was last seen at t(1): with a ttl of 50, B is
    // forgotten, and Ben (only on B) is disconnected; Amy is still on A.
    let beat = store
        .node_heartbeat("node-a", t(100), t(50))
        .await
        .expect("heartbeat");
    assert!(beat.known, "node A wrote presence, so it is known");
    assert_eq!(beat.disconnected, std::slice::from_ref(&ben));
    assert!(connected(&store, &amy).await);
    assert!(!connected(&store, &ben).await);
    // Node B comes back: it was forgotten, and learns so from its heartbeat.
    let back = store
        .node_heartbeat("node-b", t(101), t(51))
        .await
        .expect("heartbeat");
    assert!(!back.known, "a forgotten node is told so");
    assert!(back.disconnected.is_empty());
    assert!(
        !connected(&store, &ben).await,
        "its presence is not restored by itself"
    );
    // A node's own heartbeat never forgets itself, however late.
    let late = store
        .node_heartbeat("node-a", t(1000), t(999))
        .await
        .expect("heartbeat");
    assert!(late.known);
    assert!(connected(&store, &amy).await);
}

pub(super) async fn eligible_officers_are_ordered_as_the_contract_says(store: Arc<dyn Store>) {
    let ids = ["amy", "ben", "cat", "dan", "eve", "fay"];
    for id in ids {
        add_officer(&store, id).await;
    }
    let [amy, ben, cat, dan, eve, fay] = ids.map(oid);
    for officer in [&amy, &ben, &cat, &dan, &fay] {
        store
            .set_presence("node", officer, true, t(0))
            .await
            .expect("presence");
    }
    // Eve is not connected; Dan is away; Fay is disabled.
    store
        .update_officer(
            &dan,
            &OfficerUpdate {
                capacity: None,
                availability: Some(Availability::Away),
            },
        )
        .await
        .expect("away");
    store
        .set_officer_disabled(&fay, true)
        .await
        .expect("disable");
    let order = |store: Arc<dyn Store>, default: Option<u32>| async move {
        store
            .eligible_officers(default, 100)
            .await
            .expect("eligible")
            .into_iter()
            .map(|o| o.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(order(store.clone(), None).await, ["amy", "ben", "cat"]);
    assert!(store.eligible_officers(None, 100).await.unwrap()[0].connected);
    assert_eq!(store.eligible_officers(None, 2).await.unwrap().len(), 2);
    // Cat takes a chat at t(10), then Amy at t(20): Ben (never assigned) comes first
    // among those with none open, ...
    let c1 = add_chat(&store, "c1", 1).await;
    let c2 = add_chat(&store, "c2", 2).await;
    assert!(matches!(
        claim(&store, c1, &cat, 10).await,
        TransitionOutcome::Applied(..)
    ));
    assert!(matches!(
        claim(&store, c2, &amy, 20).await,
        TransitionOutcome::Applied(..)
    ));
    assert_eq!(order(store.clone(), None).await, ["ben", "cat", "amy"]);
    // ... and once Cat's chat ends she has none open, but was assigned before Amy,
    // whose chat stays open: fewest open first, then the longest since assigned.
    let ended = change(
        c1,
        (ChatStatus::Assigned, Some(&cat)),
        (ChatStatus::Resolved, Some(&cat)),
        ChatChange::Resolved,
        30,
    );
    assert!(matches!(
        apply(&store, &ended).await,
        TransitionOutcome::Applied(..)
    ));
    assert_eq!(order(store.clone(), None).await, ["ben", "cat", "amy"]);
    // Capacity: the default applies to officers without their own; a full officer is
    // not eligible.
    assert_eq!(order(store.clone(), Some(1)).await, ["ben", "cat"]);
    store
        .update_officer(
            &amy,
            &OfficerUpdate {
                capacity: Some(Some(2)),
                availability: None,
            },
        )
        .await
        .expect("capacity");
    assert_eq!(order(store.clone(), Some(1)).await, ["ben", "cat", "amy"]);
    assert_eq!(order(store.clone(), Some(0)).await, ["amy"]);
    // Leaving the last node makes an officer ineligible.
    store
        .set_presence("node", &ben, false, t(40))
        .await
        .expect("presence");
    assert_eq!(order(store.clone(), None).await, ["cat", "amy"]);
    let _ = eve;
}

pub(super) async fn queue_keys_are_the_queues_order(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    // Created out of order: the queue is by creation time, then id.
    let late = add_chat(&store, "late", 30).await;
    let early = add_chat(&store, "early", 10).await;
    let mid = add_chat(&store, "mid", 20).await;
    let keys = store.queue_keys(100).await.expect("keys");
    assert_eq!(
        keys,
        [(t(10), early), (t(20), mid), (t(30), late)],
        "ordered as the queue"
    );
    assert_eq!(store.queue_keys(2).await.expect("keys").len(), 2);
    assert!(matches!(
        claim(&store, mid, &amy, 40).await,
        TransitionOutcome::Applied(..)
    ));
    let keys: Vec<ChatId> = store
        .queue_keys(100)
        .await
        .expect("keys")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(keys, [early, late], "a claimed chat leaves the queue");
    let queue: Vec<ChatId> = store
        .pending_chats(100)
        .await
        .expect("queue")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(keys, queue, "the same order as the queue itself");
}

/// An automatic assignment ([`Transition::only_to_eligible`]) applies only while its
/// officer is eligible, checked in its own transaction: not once they went away, were
/// disabled or have no connection left; a claim by hand goes through all the same.
pub(super) async fn an_automatic_assignment_needs_its_officer_eligible_when_it_applies(
    store: Arc<dyn Store>,
) {
    let amy = add_officer(&store, "amy").await;
    let chat = add_chat(&store, "c1", 1).await;
    let auto_of = |chat: ChatId, at: i64| Transition {
        only_to_eligible: true,
        ..change(
            chat,
            (ChatStatus::Pending, None),
            (ChatStatus::Assigned, Some(&amy)),
            ChatChange::Assigned,
            at,
        )
    };
    let auto = |at: i64| auto_of(chat, at);
    // Not connected anywhere.
    assert_eq!(apply(&store, &auto(2)).await, TransitionOutcome::Ineligible);
    store
        .set_presence("node-a", &amy, true, t(3))
        .await
        .expect("presence")
        .expect("amy exists");
    // Connected, but away.
    let away = OfficerUpdate {
        capacity: None,
        availability: Some(Availability::Away),
    };
    store.update_officer(&amy, &away).await.expect("set");
    assert_eq!(apply(&store, &auto(4)).await, TransitionOutcome::Ineligible);
    // Available again, but disabled.
    let back = OfficerUpdate {
        capacity: None,
        availability: Some(Availability::Available),
    };
    store.update_officer(&amy, &back).await.expect("set");
    store
        .set_officer_disabled(&amy, true)
        .await
        .expect("disable")
        .expect("amy exists");
    assert_eq!(apply(&store, &auto(5)).await, TransitionOutcome::Ineligible);
    store
        .set_officer_disabled(&amy, false)
        .await
        .expect("enable")
        .expect("amy exists");
    // Eligible: applied. Nothing was written by the refusals.
    let TransitionOutcome::Applied(now, entry) = apply(&store, &auto(6)).await else {
        panic!("an eligible officer's assignment applies");
    };
    assert_eq!(now.assigned_officer_id.as_ref(), Some(&amy));
    assert_eq!(entry.seq, 1, "the refused attempts wrote no entry");
    // Gone from her last node: the next automatic assignment is refused; a claim by hand
    // is not.
    store
        .set_presence("node-a", &amy, false, t(7))
        .await
        .expect("presence");
    let second = add_chat(&store, "c2", 8).await;
    assert_eq!(
        apply(&store, &auto_of(second, 9)).await,
        TransitionOutcome::Ineligible
    );
    assert!(matches!(
        claim(&store, second, &amy, 10).await,
        TransitionOutcome::Applied(..)
    ));
}
