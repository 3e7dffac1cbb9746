//! Transitions: a change applies only to a chat still in the state it was decided on, with
//! its system entry at the chat's next seq; at most one open chat per customer.

use std::sync::Arc;

use super::*;

pub(super) async fn a_transition_applies_only_to_the_state_it_was_decided_on(
    store: Arc<dyn Store>,
) {
    use ChatStatus::{Assigned, Pending, Resolved};
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    let chat = add_chat(&store, "c", 1).await;
    append(&store, msg(chat, SenderType::Customer, "c", "hi", None)).await;

    // Decided on a state the chat is not in: nothing changes.
    let stale = change(
        chat,
        (Assigned, Some(&amy)),
        (Pending, None),
        ChatChange::Released,
        2,
    );
    let TransitionOutcome::Stale(now) = apply(&store, &stale).await else {
        panic!("a change decided on another state applied");
    };
    assert_eq!((now.status, now.last_seq), (Pending, 1));

    // Taken by amy, transferred to ben: each entry at the next seq, the chat as it now is.
    let take = change(
        chat,
        (Pending, None),
        (Assigned, Some(&amy)),
        ChatChange::Claimed,
        3,
    );
    let TransitionOutcome::Applied(taken, entry) = apply(&store, &take).await else {
        panic!("claim by transition refused");
    };
    assert_eq!(
        (
            taken.status,
            taken.assigned_officer_id.as_ref(),
            taken.last_seq
        ),
        (Assigned, Some(&amy), 2)
    );
    assert_eq!((entry.seq, entry.sender_type), (2, SenderType::System));
    assert_eq!(entry.event, take.entry.event);
    assert_eq!(taken.updated_at, t(3));
    assert!(store.pending_chats(10).await.expect("queue").is_empty());
    let handed = change(
        chat,
        (Assigned, Some(&amy)),
        (Assigned, Some(&ben)),
        ChatChange::Transferred,
        4,
    );
    let TransitionOutcome::Applied(handed_on, _) = apply(&store, &handed).await else {
        panic!("transfer refused");
    };
    assert_eq!(handed_on.assigned_officer_id.as_ref(), Some(&ben));
    // The same transfer again was decided on amy's ownership: stale now.
    assert!(matches!(
        apply(&store, &handed).await,
        TransitionOutcome::Stale(_)
    ));

    // Released: back in the queue; resolved: out of it, with its time, keeping ben.
    let release = change(
        chat,
        (Assigned, Some(&ben)),
        (Pending, None),
        ChatChange::Released,
        5,
    );
    assert!(matches!(
        apply(&store, &release).await,
        TransitionOutcome::Applied(..)
    ));
    let queue = store.pending_chats(10).await.expect("queue");
    assert_eq!(queue.iter().map(|c| c.id).collect::<Vec<_>>(), vec![chat]);
    let back = change(
        chat,
        (Pending, None),
        (Assigned, Some(&ben)),
        ChatChange::Claimed,
        6,
    );
    apply(&store, &back).await;
    let resolve = change(
        chat,
        (Assigned, Some(&ben)),
        (Resolved, Some(&ben)),
        ChatChange::Resolved,
        7,
    );
    let TransitionOutcome::Applied(resolved, _) = apply(&store, &resolve).await else {
        panic!("resolve refused");
    };
    assert_eq!(
        (resolved.status, resolved.resolved_at, resolved.last_seq),
        (Resolved, Some(t(7)), 6)
    );
    assert!(store.pending_chats(10).await.expect("queue").is_empty());
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.pending_chats, counts.assigned_chats), (0, 0));

    // The timeline holds every entry, dense.
    let page = store.messages(&chat, &from_start(100)).await.expect("page");
    assert_eq!(seqs(&page), (1..=6).collect::<Vec<_>>());

    // A message allowed while the chat was ben's and assigned is not written past the
    // resolution; an unconditional one still is (system entries, tools).
    let mut late = msg(chat, SenderType::Officer, "ben", "one more thing", None);
    late.decided_on = Some((Assigned, Some(ben.clone())));
    let AppendOutcome::Stale(now) = append(&store, late).await else {
        panic!("a message was written past a resolution");
    };
    assert_eq!((now.status, now.last_seq), (Resolved, 6));
    let mut matching = msg(chat, SenderType::Customer, "c", "thanks", None);
    matching.decided_on = Some((Resolved, Some(ben.clone())));
    assert!(matches!(
        append(&store, matching).await,
        AppendOutcome::Created(_)
    ));

    let missing = change(
        ChatId::new(),
        (Pending, None),
        (Resolved, None),
        ChatChange::Resolved,
        8,
    );
    assert_eq!(apply(&store, &missing).await, TransitionOutcome::NotFound);
}

pub(super) async fn a_customer_has_at_most_one_open_chat(store: Arc<dyn Store>) {
    use ChatStatus::{Assigned, Pending, Resolved};
    let amy = add_officer(&store, "amy").await;
    let first = add_chat(&store, "c", 1).await;
    let end = |chat, at| {
        change(
            chat,
            (Pending, None),
            (Resolved, None),
            ChatChange::Resolved,
            at,
        )
    };
    assert!(matches!(
        apply(&store, &end(first, 2)).await,
        TransitionOutcome::Applied(..)
    ));
    // With the first resolved, a login starts a second chat.
    let (second, created) = store
        .get_or_create_chat(&NewChat {
            id: ChatId::new(),
            customer_id: cid("c"),
            customer_name: None,
            assigned_officer_id: None,
            default_capacity: None,
            created_at: t(3),
        })
        .await
        .expect("second chat");
    assert!(created && second.id != first);
    let (again, created) = store
        .get_or_create_chat(&NewChat {
            id: ChatId::new(),
            customer_id: cid("c"),
            customer_name: None,
            assigned_officer_id: None,
            default_capacity: None,
            created_at: t(4),
        })
        .await
        .expect("login again");
    assert!(!created, "a second open chat");
    assert_eq!(again.id, second.id);
    let history = store.customer_chats(&cid("c"), 10).await.expect("history");
    assert_eq!(
        history.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![second.id, first],
        "a customer's chats, newest first"
    );
    assert!(
        store
            .customer_chats(&cid("other"), 10)
            .await
            .expect("none")
            .is_empty()
    );
    // Reopening the first while the second is open: refused, nothing changed.
    let reopen = change(
        first,
        (Resolved, None),
        (Assigned, Some(&amy)),
        ChatChange::Reopened,
        5,
    );
    assert_eq!(
        apply(&store, &reopen).await,
        TransitionOutcome::CustomerHasOpenChat
    );
    let first_now = store.chat(&first).await.expect("read").expect("chat");
    assert_eq!((first_now.status, first_now.last_seq), (Resolved, 1));
    // Once the second is resolved, the first can be reopened.
    apply(&store, &end(second.id, 6)).await;
    let TransitionOutcome::Applied(reopened, _) = apply(&store, &reopen).await else {
        panic!("reopen refused");
    };
    assert_eq!(
        (reopened.status, reopened.resolved_at),
        (Assigned, None),
        "a reopened chat is no longer resolved"
    );
    let (login, created) = store
        .get_or_create_chat(&NewChat {
            id: ChatId::new(),
            customer_id: cid("c"),
            customer_name: None,
            assigned_officer_id: None,
            default_capacity: None,
            created_at: t(7),
        })
        .await
        .expect("login after the reopen");
    assert!(!created);
    assert_eq!(
        login.id, first,
        "the reopened chat is the customer's open one"
    );
}

pub(super) async fn racing_transitions_have_exactly_one_outcome(store: Arc<dyn Store>) {
    use ChatStatus::{Assigned, Pending, Resolved};
    const RACERS: usize = 12;
    let mut officers = Vec::new();
    for i in 0..RACERS {
        officers.push(add_officer(&store, &format!("o{i}")).await);
    }
    let owner = officers[0].clone();
    let chat = add_chat(&store, "c", 1).await;
    apply(
        &store,
        &change(
            chat,
            (Pending, None),
            (Assigned, Some(&owner)),
            ChatChange::Claimed,
            2,
        ),
    )
    .await;
    // Every racer decided on "assigned to o0": transfers to each, a release, a resolve.
    let mut changes = Vec::new();
    for officer in &officers[1..] {
        changes.push(change(
            chat,
            (Assigned, Some(&owner)),
            (Assigned, Some(officer)),
            ChatChange::Transferred,
            3,
        ));
    }
    changes.push(change(
        chat,
        (Assigned, Some(&owner)),
        (Pending, None),
        ChatChange::Released,
        3,
    ));
    changes.push(change(
        chat,
        (Assigned, Some(&owner)),
        (Resolved, Some(&owner)),
        ChatChange::Resolved,
        3,
    ));
    let tasks: Vec<_> = changes
        .into_iter()
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move { (store.transition(&c).await.expect("transition"), c) })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (TransitionOutcome::Applied(chat, _), c) => applied.push((chat, c)),
            (TransitionOutcome::Stale(_), _) => {}
            (other, _) => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(applied.len(), 1, "{} changes applied", applied.len());
    let (won, c) = &applied[0];
    let stored = store.chat(&chat).await.expect("read").expect("chat");
    assert_eq!(&stored, won);
    assert_eq!(
        (stored.status, stored.assigned_officer_id.as_ref()),
        (c.status, c.owner.as_ref())
    );
    assert_eq!(
        stored.last_seq, 2,
        "one entry for the claim, one for the winner"
    );

    // Two reopens of a resolved chat, for two officers: one wins.
    let resolved = if stored.status == Resolved {
        stored
    } else {
        let TransitionOutcome::Applied(resolved, _) = apply(
            &store,
            &change(
                chat,
                (stored.status, stored.assigned_officer_id.as_ref()),
                (Resolved, stored.assigned_officer_id.as_ref()),
                ChatChange::Resolved,
                4,
            ),
        )
        .await
        else {
            panic!("resolve refused");
        };
        resolved
    };
    let reopens: Vec<_> = officers[1..3]
        .iter()
        .map(|officer| {
            let c = change(
                chat,
                (Resolved, resolved.assigned_officer_id.as_ref()),
                (Assigned, Some(officer)),
                ChatChange::Reopened,
                5,
            );
            let store = store.clone();
            tokio::spawn(async move { store.transition(&c).await.expect("reopen") })
        })
        .collect();
    let mut won = 0;
    for task in reopens {
        if let TransitionOutcome::Applied(..) = task.await.expect("task") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "two reopens applied");
}
