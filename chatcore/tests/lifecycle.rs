//! The conversation lifecycle through `ChatService` on a real SQLite file: resolve,
//! release, transfer and reopen, who may do each, what each refusal is, the system
//! entries and events, and racing changes with exactly one outcome each.

use std::sync::Arc;

use chatcore::{
    Actor, ChatChange, ChatService, ChatStatus, ChatsFilter, CustomerId, CustomerLogin, Event,
    NewOfficer, OfficerId, SendMessage, SenderType, ServiceConfig,
};
use tempfile::TempDir;

#[path = "support/login.rs"]
mod login;

struct Env {
    service: ChatService,
    _dir: TempDir,
}

fn open() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let service =
        ChatService::open_sqlite(dir.path().join("chat.db"), ServiceConfig::default()).unwrap();
    Env { service, _dir: dir }
}

fn oid(s: &str) -> OfficerId {
    OfficerId::parse(s).unwrap()
}

async fn officer(s: &ChatService, id: &str, name: Option<&str>) -> Actor {
    s.create_officer(
        &Actor::Admin,
        NewOfficer {
            id: oid(id),
            password: None,
            display_name: name.map(str::to_string),
            capacity: None,
        },
    )
    .await
    .unwrap();
    Actor::Officer(oid(id))
}

fn code<T: std::fmt::Debug>(r: chatcore::Result<T>) -> &'static str {
    r.unwrap_err().code()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_change_has_its_rules_its_entry_and_its_events() {
    let env = open();
    let s = &env.service;
    let alice = officer(s, "alice", Some("Alice")).await;
    let bob = officer(s, "bob", Some("Bob")).await;
    let (customer, chat, _) = login::customer(s, "cust-1").await;
    s.send_message(&customer, chat, SendMessage::text("Hello?"))
        .await
        .unwrap();
    let mut queue = s.watch_queue(&alice).unwrap();
    let mut alices = s.watch_officer(&alice).unwrap();
    let mut bobs = s.watch_officer(&bob).unwrap();

    // Pending: an officer may not resolve, release or transfer it.
    assert_eq!(code(s.resolve(&alice, chat).await), "not_assigned");
    assert_eq!(code(s.release(&alice, chat).await), "not_assigned");
    assert_eq!(
        code(s.transfer(&alice, chat, &oid("bob")).await),
        "not_assigned"
    );
    assert_eq!(code(s.reopen(&alice, chat, None).await), "not_resolved");

    s.claim(&alice, &oid("alice"), chat).await.unwrap();
    // Only its officer or the admin hands it on; the customer may not.
    assert_eq!(code(s.release(&bob, chat).await), "forbidden");
    assert_eq!(code(s.release(&customer, chat).await), "forbidden");
    assert_eq!(
        code(s.transfer(&alice, chat, &oid("nobody")).await),
        "officer_not_found"
    );
    // A customer cannot probe officer ids through a transfer.
    assert_eq!(
        code(s.transfer(&customer, chat, &oid("nobody")).await),
        "forbidden"
    );

    let moved = s.transfer(&alice, chat, &oid("bob")).await.unwrap();
    assert_eq!(
        (moved.status, moved.assigned_officer_id.as_ref()),
        (ChatStatus::Assigned, Some(&oid("bob")))
    );
    // The former owner may no longer read or write it.
    assert_eq!(code(s.chat(&alice, chat).await), "forbidden");
    let released = s.release(&bob, chat).await.unwrap();
    assert_eq!(
        (released.status, released.assigned_officer_id),
        (ChatStatus::Pending, None)
    );
    s.claim(&alice, &oid("alice"), chat).await.unwrap();
    let ended = s.resolve(&customer, chat).await.unwrap();
    assert_eq!(ended.status, ChatStatus::Resolved);
    assert!(ended.resolved_at.is_some());
    assert_eq!(
        ended.assigned_officer_id,
        Some(oid("alice")),
        "keeps its officer"
    );
    // Resolving again answers the chat as it is.
    assert_eq!(s.resolve(&alice, chat).await.unwrap(), ended);
    // Nobody writes to a resolved chat, nobody claims it.
    assert_eq!(
        code(
            s.send_message(&customer, chat, SendMessage::text("more?"))
                .await
        ),
        "chat_resolved"
    );
    assert_eq!(
        code(
            s.send_message(&alice, chat, SendMessage::text("more?"))
                .await
        ),
        "chat_resolved"
    );
    assert_eq!(
        code(s.claim(&bob, &oid("bob"), chat).await),
        "chat_resolved"
    );
    assert_eq!(code(s.release(&alice, chat).await), "chat_resolved");
    // A reopen by an officer makes it theirs; the admin names the officer.
    assert_eq!(
        code(s.reopen(&Actor::Admin, chat, None).await),
        "invalid_field"
    );
    assert_eq!(code(s.reopen(&customer, chat, None).await), "forbidden");
    let reopened = s.reopen(&bob, chat, None).await.unwrap();
    assert_eq!(
        (
            reopened.status,
            reopened.assigned_officer_id.as_ref(),
            reopened.resolved_at
        ),
        (ChatStatus::Assigned, Some(&oid("bob")), None)
    );

    // The timeline: the customer's message, then one system entry per change.
    let history = s
        .messages(&Actor::Admin, chat, Default::default())
        .await
        .unwrap();
    let timeline: Vec<(u64, SenderType, String)> = history
        .iter()
        .map(|m| (m.seq, m.sender_type, m.content.clone()))
        .collect();
    let system = |seq: u64, text: &str| (seq, SenderType::System, text.to_string());
    assert_eq!(
        timeline,
        vec![
            (1, SenderType::Customer, "Hello?".to_string()),
            system(2, "Alice took the chat"),
            system(3, "Alice transferred the chat to Bob"),
            system(4, "Bob put the chat back in the queue"),
            system(5, "Alice took the chat"),
            system(6, "The customer ended the chat"),
            system(7, "Bob reopened the chat"),
        ]
    );
    let claim = history[1].event.as_ref().unwrap();
    assert_eq!(
        (
            claim.kind,
            claim.officer_id.as_ref(),
            history[1].sender_id.as_str()
        ),
        (ChatChange::Claimed, Some(&oid("alice")), "alice")
    );
    let transfer = history[2].event.as_ref().unwrap();
    assert_eq!(
        (
            transfer.kind,
            transfer.officer_id.as_ref(),
            transfer.from_officer_id.as_ref()
        ),
        (
            ChatChange::Transferred,
            Some(&oid("bob")),
            Some(&oid("alice"))
        )
    );
    // The entry names the officers as they were called then, for readers (customers)
    // who may not list officers.
    assert_eq!(
        (
            transfer.officer_name.as_deref(),
            transfer.from_officer_name.as_deref()
        ),
        (Some("Bob"), Some("Alice"))
    );
    assert_eq!(history[2].sender_id, "alice");
    assert_eq!(history[5].sender_id, "cust-1");

    // The events: the queue saw it enter and leave, and each change of an officer's
    // load (`officer_updated`: two for a transfer); each officer what concerns them.
    let drain = |sub: &mut chatcore::Subscription| {
        let mut kinds = Vec::new();
        while let Some(Ok(envelope)) = sub.try_recv() {
            let e = envelope.event();
            kinds.push(match e {
                Event::ChatUpdated { change, .. } => format!("updated:{}", change.as_str()),
                other => other.kind().to_string(),
            });
        }
        kinds
    };
    assert_eq!(
        drain(&mut queue),
        [
            "updated:claimed",
            "queue_chat_claimed",
            "officer_updated",
            "updated:transferred",
            "officer_updated",
            "officer_updated",
            "updated:released",
            "queue_chat_created",
            "officer_updated",
            "updated:claimed",
            "queue_chat_claimed",
            "officer_updated",
            "updated:resolved",
            "officer_updated",
            "updated:reopened",
            "officer_updated",
        ]
    );
    assert_eq!(
        drain(&mut alices),
        ["chat_assigned", "chat_unassigned", "chat_assigned"]
    );
    assert_eq!(
        drain(&mut bobs),
        ["chat_assigned", "chat_unassigned", "chat_assigned"]
    );
}

/// A message stored just before the chat ended or was handed on, whose answer was lost,
/// is retried with its key: the retry gets the original (not stored twice, not refused),
/// while a new message is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_the_chat_changed_gets_the_original() {
    let env = open();
    let s = &env.service;
    let alice = officer(s, "alice", None).await;
    officer(s, "bob", None).await;
    let (customer, chat, _) = login::customer(s, "cust-1").await;
    s.claim(&alice, &oid("alice"), chat).await.unwrap();
    let asked = SendMessage::text("is it done?").with_client_message_id("q-1");
    let original = s
        .send_message(&customer, chat, asked.clone())
        .await
        .unwrap();
    let answer = SendMessage::text("yes").with_client_message_id("a-1");
    let answered = s.send_message(&alice, chat, answer.clone()).await.unwrap();
    // Alice hands it to Bob: her retry gets her original, her new message is refused.
    s.transfer(&alice, chat, &oid("bob")).await.unwrap();
    let again = s.send_message(&alice, chat, answer).await.unwrap();
    assert_eq!((again.message, again.created), (answered.message, false));
    assert_eq!(
        code(
            s.send_message(&alice, chat, SendMessage::text("one more"))
                .await
        ),
        "forbidden"
    );
    // The customer ends it: the same for them.
    s.resolve(&customer, chat).await.unwrap();
    let again = s.send_message(&customer, chat, asked).await.unwrap();
    assert_eq!((again.message, again.created), (original.message, false));
    assert_eq!(
        code(
            s.send_message(
                &customer,
                chat,
                SendMessage::text("new").with_client_message_id("q-2")
            )
            .await
        ),
        "chat_resolved"
    );
    // Nothing was stored twice.
    let texts: Vec<String> = s
        .messages(&customer, chat, Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.sender_type != SenderType::System)
        .map(|m| m.content)
        .collect();
    assert_eq!(texts, ["is it done?", "yes"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_resolution_the_customer_starts_a_new_chat_and_the_old_one_cannot_reopen() {
    let env = open();
    let s = &env.service;
    let alice = officer(s, "alice", None).await;
    let (customer, first, _) = login::customer(s, "cust-1").await;
    s.resolve(&customer, first).await.unwrap();
    let (again, second, _) = login::customer(s, "cust-1").await;
    assert_ne!(first, second, "a new chat after the resolution");
    s.send_message(&again, second, SendMessage::text("new question"))
        .await
        .unwrap();
    // The old chat cannot be reopened while the new one is open.
    assert_eq!(
        code(s.reopen(&alice, first, None).await),
        "customer_has_open_chat"
    );
    s.resolve(&again, second).await.unwrap();
    s.reopen(&alice, first, None).await.unwrap();
    let login = s
        .customer_login(CustomerLogin {
            customer_id: CustomerId::parse("cust-1").unwrap(),
            officer_id: None,
            signature: None,
        })
        .await
        .unwrap();
    assert!(!login.created);
    assert_eq!(login.chat.id, first, "the reopened chat is the open one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_changes_have_one_outcome_each_and_no_chat_two_owners() {
    let env = open();
    let s = Arc::new(env.service.clone());
    let mut officers = Vec::new();
    for i in 0..6 {
        officers.push(officer(&s, &format!("o{i}"), None).await);
    }
    for round in 0..10 {
        let (_, chat, _) = login::customer(&s, &format!("c{round}")).await;
        s.claim(&officers[0], &oid("o0"), chat).await.unwrap();
        // The owner releases while others claim, transfers while the customer resolves.
        let mut tasks = Vec::new();
        {
            let s = s.clone();
            let owner = officers[0].clone();
            tasks.push(tokio::spawn(async move {
                ("release", s.release(&owner, chat).await.map(|_| ()))
            }));
        }
        for (i, o) in officers.iter().enumerate().skip(1) {
            let (s, o) = (s.clone(), o.clone());
            tasks.push(tokio::spawn(async move {
                let me = oid(&format!("o{i}"));
                ("claim", s.claim(&o, &me, chat).await.map(|_| ()))
            }));
        }
        let mut released = false;
        for task in tasks {
            let (what, result) = task.await.unwrap();
            match (what, result) {
                ("release", Ok(())) => released = true,
                ("claim", Ok(())) | ("claim", Err(_)) => {}
                (what, Err(e)) => panic!("{what}: {e}"),
                _ => {}
            }
        }
        assert!(
            released,
            "the owner's release cannot lose: nobody else may change it"
        );
        let now = s.chat(&Actor::Admin, chat).await.unwrap();
        let history = s
            .messages(&Actor::Admin, chat, Default::default())
            .await
            .unwrap();
        let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=history.len() as u64).collect::<Vec<_>>(),
            "dense"
        );
        // Whoever holds it now, one officer at most, and the store agrees with the queue.
        let queue = s.queue(&Actor::Admin).await.unwrap();
        assert_eq!(
            queue.iter().any(|c| c.id == chat),
            now.status == ChatStatus::Pending
        );
        let holder = now.assigned_officer_id.clone();
        if now.status == ChatStatus::Assigned {
            let holder = holder.unwrap();
            for o in &officers {
                let Actor::Officer(id) = o else {
                    unreachable!()
                };
                let theirs = s.officer_chats(o, id, ChatsFilter::Open).await.unwrap();
                assert_eq!(theirs.iter().any(|c| c.id == chat), *id == holder);
            }
        }

        // A transfer racing a resolution: exactly one of them applies first; the other
        // is decided again on what it finds (a transfer of a resolved chat is refused).
        let owner = match (now.status, now.assigned_officer_id) {
            (ChatStatus::Assigned, Some(o)) => Actor::Officer(o),
            _ => {
                s.claim(&officers[1], &oid("o1"), chat).await.unwrap();
                officers[1].clone()
            }
        };
        let (s1, s2, o1, o2) = (s.clone(), s.clone(), owner.clone(), owner.clone());
        let transfer = tokio::spawn(async move { s1.transfer(&o1, chat, &oid("o5")).await });
        let resolve = tokio::spawn(async move { s2.resolve(&o2, chat).await });
        let (t, r) = (transfer.await.unwrap(), resolve.await.unwrap());
        let end = s.chat(&Actor::Admin, chat).await.unwrap();
        match (&t, &r) {
            // Transfer first: the former owner may no longer resolve it.
            (Ok(_), Err(e)) => {
                assert_eq!(e.code(), "forbidden");
                assert_eq!(end.assigned_officer_id, Some(oid("o5")));
                assert_eq!(end.status, ChatStatus::Assigned);
            }
            // Resolution first: the transfer finds it resolved.
            (Err(e), Ok(_)) => {
                assert_eq!(e.code(), "chat_resolved");
                assert_eq!(end.status, ChatStatus::Resolved);
            }
            other => panic!("both or neither applied: {other:?}"),
        }
    }

    // Two officers reopening one resolved chat at once: one wins.
    let (customer, chat, _) = login::customer(&s, "last").await;
    s.resolve(&customer, chat).await.unwrap();
    let (s1, s2) = (s.clone(), s.clone());
    let (a, b) = (officers[2].clone(), officers[3].clone());
    let one = tokio::spawn(async move { s1.reopen(&a, chat, None).await });
    let two = tokio::spawn(async move { s2.reopen(&b, chat, None).await });
    let outcomes = [one.await.unwrap(), two.await.unwrap()];
    let won = outcomes.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{outcomes:?}");
    let lost = outcomes.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(lost.code(), "not_resolved", "the loser finds it reopened");
}

/// The server's default capacity holds for officers without their own; the admin sets
/// one; answers show the capacity in force and the load.
#[tokio::test(flavor = "multi_thread")]
async fn capacity_default_and_own_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServiceConfig::default();
    config.officer_capacity = Some(1);
    let s = &ChatService::open_sqlite(dir.path().join("chat.db"), config).unwrap();
    let alice = officer(s, "alice", None).await;
    let (_, first, _) = login::customer(s, "cust-1").await;
    let (_, second, _) = login::customer(s, "cust-2").await;
    s.claim(&alice, &oid("alice"), first).await.unwrap();
    let refused = s.claim(&alice, &oid("alice"), second).await;
    assert!(
        matches!(&refused, Err(chatcore::Error::AtCapacity(o)) if *o == oid("alice")),
        "{refused:?}"
    );
    let listed = s.officers(&alice).await.unwrap();
    assert_eq!((listed[0].capacity, listed[0].open_chats), (Some(1), 1));
    assert_eq!(
        code(s.set_capacity(&alice, &oid("alice"), Some(2)).await),
        "forbidden"
    );
    assert_eq!(
        code(
            s.set_capacity(&Actor::Admin, &oid("alice"), Some(10_001))
                .await
        ),
        "invalid_field"
    );
    let raised = s
        .set_capacity(&Actor::Admin, &oid("alice"), Some(2))
        .await
        .unwrap();
    assert_eq!((raised.capacity, raised.open_chats), (Some(2), 1));
    s.claim(&alice, &oid("alice"), second).await.unwrap();
    // Back to the default: she holds two, over it; she keeps them and gets no more.
    let lowered = s
        .set_capacity(&Actor::Admin, &oid("alice"), None)
        .await
        .unwrap();
    assert_eq!((lowered.capacity, lowered.open_chats), (Some(1), 2));
    let (_, third, _) = login::customer(s, "cust-3").await;
    assert_eq!(
        code(s.claim(&alice, &oid("alice"), third).await),
        "at_capacity"
    );
}
