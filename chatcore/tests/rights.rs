//! Rights that change while they are in use: a chat feed whose reader loses the chat
//! (another officer claims it), live sessions ended by a logout or by the admin disabling
//! an officer, and the page byte cap that bounds what one read makes the engine hold.
//! Each on a real SQLite file.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use chatcore::{
    Actor, ChatChange, ChatService, Envelope, Error, Event, EventBus, LocalBus, MessagePage,
    NewOfficer, OfficerId, SendMessage, ServiceConfig, SessionNotice, SqliteStore, Topic,
};
use tempfile::TempDir;

#[path = "support/login.rs"]
mod login;
use login::customer;

const PATIENCE: Duration = Duration::from_secs(5);

fn service(dir: &TempDir, config: ServiceConfig) -> ChatService {
    ChatService::open_sqlite(dir.path().join("chat.db"), config).unwrap()
}

fn oid(s: &str) -> OfficerId {
    OfficerId::parse(s).unwrap()
}

async fn officer(s: &ChatService, id: &str, password: Option<&str>) -> Actor {
    s.create_officer(
        &Actor::Admin,
        NewOfficer {
            id: oid(id),
            password: password.map(str::to_string),
            display_name: None,
            capacity: None,
        },
    )
    .await
    .unwrap();
    Actor::Officer(oid(id))
}

async fn send(s: &ChatService, actor: &Actor, chat: chatcore::ChatId, text: &str) {
    s.send_message(actor, chat, SendMessage::text(text))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_reading_a_pending_chat_loses_it_when_another_claims_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(&dir, ServiceConfig::default());
    let alice = officer(&s, "alice", None).await;
    let bob = officer(&s, "bob", None).await;
    let (cust, chat, _) = customer(&s, "cust-1").await;
    send(&s, &cust, chat, "hello, anyone?").await;

    let mut bobs = s.watch_chat(&bob, chat, Some(0)).await.unwrap();
    let mut alices = s.watch_chat(&alice, chat, Some(0)).await.unwrap();
    let mut customers = s.watch_chat(&cust, chat, Some(0)).await.unwrap();
    for feed in [&mut bobs, &mut alices, &mut customers] {
        let first = tokio::time::timeout(PATIENCE, feed.next()).await.unwrap();
        assert_eq!(first.unwrap().unwrap().content, "hello, anyone?");
    }

    s.claim(&alice, &oid("alice"), chat).await.unwrap();
    send(&s, &cust, chat, "my PIN is 9999").await;

    // Bob's feed ends with a refusal, before anything stored after the claim.
    let refused = tokio::time::timeout(PATIENCE, bobs.next_event())
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(Error::Forbidden(_))),
        "bob still reads: {refused:?}"
    );
    assert!(matches!(bobs.next().await, Err(Error::Forbidden(_))));
    // The new owner and the customer get the change, its system entry and the message
    // (a feed still catching up from the store may hand out the messages first).
    for feed in [&mut alices, &mut customers] {
        let mut got = Vec::new();
        while got.len() < 3 {
            let event = tokio::time::timeout(PATIENCE, feed.next_event())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            got.push(match event.event() {
                // The customer's feed also tells where the waiting chat stood.
                Event::QueuePosition { position, .. } => {
                    assert_eq!(*position, 1);
                    continue;
                }
                Event::ChatUpdated {
                    change: ChatChange::Claimed,
                    chat,
                } => format!("claimed by {:?}", chat.assigned_officer_id),
                Event::NewMessage { message } => message.content.clone(),
                other => panic!("unexpected {other:?}"),
            });
        }
        got.sort();
        assert_eq!(
            got,
            [
                "alice took the chat",
                "claimed by Some(OfficerId(\"alice\"))",
                "my PIN is 9999"
            ]
        );
    }
    // And bob cannot join again.
    assert!(matches!(
        s.watch_chat(&bob, chat, Some(0)).await,
        Err(Error::Forbidden(_))
    ));
}

/// Another node's events may arrive in any order: here the message stored after the
/// claim reaches the reader's bus, and the claim's change never does. The feed still
/// checks the chat before handing the message out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_announced_before_the_claim_it_follows_is_not_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store: Arc<dyn chatcore::Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let reader_bus = Arc::new(LocalBus::new());
    // Two services on one store: the reader's node and the node where things happen.
    let here = ChatService::new(store.clone(), reader_bus.clone(), ServiceConfig::default());
    let there = ChatService::new(store, Arc::new(LocalBus::new()), ServiceConfig::default());
    let alice = officer(&there, "alice", None).await;
    let bob = officer(&there, "bob", None).await;
    let (cust, chat, _) = customer(&there, "cust-1").await;

    let mut bobs = here.watch_chat(&bob, chat, None).await.unwrap();
    there.claim(&alice, &oid("alice"), chat).await.unwrap();
    let sent = there
        .send_message(&cust, chat, SendMessage::text("my PIN is 9999"))
        .await
        .unwrap();
    reader_bus.publish(Envelope::new(
        Topic::Chat(chat),
        Event::NewMessage {
            message: sent.message,
        },
    ));
    let got = tokio::time::timeout(PATIENCE, bobs.next_event())
        .await
        .unwrap();
    assert!(
        matches!(got, Err(Error::Forbidden(_))),
        "the message reached a reader who lost the chat: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_checked_after_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(&dir, ServiceConfig::default());
    let alice = officer(&s, "alice", None).await;
    let bob = officer(&s, "bob", None).await;
    let (cust, chat, _) = customer(&s, "cust-1").await;
    send(&s, &cust, chat, "before").await;
    // Bob opens the feed while the chat is pending, then alice claims it before bob
    // reads anything: the replay must not reach him.
    let mut bobs = s.watch_chat(&bob, chat, Some(0)).await.unwrap();
    s.claim(&alice, &oid("alice"), chat).await.unwrap();
    send(&s, &cust, chat, "after").await;
    let got = tokio::time::timeout(PATIENCE, bobs.next()).await.unwrap();
    assert!(matches!(got, Err(Error::Forbidden(_))), "{got:?}");
}

/// Pages read while the chat is being claimed: a page that was allowed when asked for
/// but read after the claim must not carry what the new owner's chat holds by then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_read_while_a_chat_is_claimed_hold_nothing_from_after_the_claim() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(&dir, ServiceConfig::default());
    let alice = officer(&s, "alice", None).await;
    let bob = officer(&s, "bob", None).await;
    for round in 0..20 {
        let (cust, chat, _) = customer(&s, &format!("cust-{round}")).await;
        send(&s, &cust, chat, "hello").await;
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (s, bob) = (s.clone(), bob.clone());
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for _ in 0..20 {
                        if let Ok(page) = s.messages(&bob, chat, MessagePage::default()).await {
                            seen.extend(page.into_iter().map(|m| m.content));
                        }
                        tokio::task::yield_now().await;
                    }
                    seen
                })
            })
            .collect();
        s.claim(&alice, &oid("alice"), chat).await.unwrap();
        send(&s, &cust, chat, "secret").await;
        for reader in readers {
            let seen = reader.await.unwrap();
            assert!(
                !seen.iter().any(|c| c == "secret"),
                "round {round}: a page read by bob held a message sent after the claim"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claimer_keeps_reading_and_gets_the_chat_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let s = service(&dir, ServiceConfig::default());
    let alice = officer(&s, "alice", None).await;
    let (cust, chat, _) = customer(&s, "cust-1").await;
    let mut alices = s.watch_chat(&alice, chat, None).await.unwrap();
    s.claim(&alice, &oid("alice"), chat).await.unwrap();
    for i in 0..5 {
        send(&s, &cust, chat, &format!("m{i}")).await;
    }
    let claim = tokio::time::timeout(PATIENCE, alices.next()).await.unwrap();
    assert_eq!(claim.unwrap().unwrap().content, "alice took the chat");
    for i in 0..5 {
        let got = tokio::time::timeout(PATIENCE, alices.next()).await.unwrap();
        assert_eq!(got.unwrap().unwrap().content, format!("m{i}"));
    }
}

async fn next_notice(session: &chatcore::LiveSession) -> SessionNotice {
    tokio::time::timeout(PATIENCE, poll_fn(|cx| session.poll_notice(cx)))
        .await
        .expect("a session notice in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_officer_ends_their_sessions_and_refuses_their_logins() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServiceConfig::default();
    config.admin_token = Some("a".repeat(40));
    let s = service(&dir, config);
    let bob = officer(&s, "bob", Some("correct horse")).await;
    let carol = officer(&s, "carol", Some("correct horse")).await;
    let bobs = s.officer_login("bob", Some("correct horse")).await.unwrap();
    let carols = s
        .officer_login("carol", Some("correct horse"))
        .await
        .unwrap();
    let live = s.open_live_session(&bobs.token).await.unwrap();
    let other = s.open_live_session(&carols.token).await.unwrap();
    assert_eq!(live.actor(), &bob);

    // Only the admin may disable.
    assert!(matches!(
        s.disable_officer(&carol, &oid("bob")).await,
        Err(Error::Forbidden(_))
    ));
    let disabled = s.disable_officer(&Actor::Admin, &oid("bob")).await.unwrap();
    assert!(disabled.disabled);
    assert_eq!(next_notice(&live).await, SessionNotice::Ended);
    assert!(matches!(live.recheck().await, Err(Error::Unauthorized)));
    assert!(matches!(
        s.authenticate(&bobs.token).await,
        Err(Error::Unauthorized)
    ));
    // The right password is told the account is disabled; a wrong one learns nothing.
    assert!(matches!(
        s.officer_login("bob", Some("correct horse")).await,
        Err(Error::OfficerDisabled)
    ));
    assert!(matches!(
        s.officer_login("bob", Some("wrong password")).await,
        Err(Error::InvalidCredentials)
    ));
    // Carol is untouched.
    other.recheck().await.unwrap();
    assert!(matches!(
        s.disable_officer(&Actor::Admin, &oid("nobody")).await,
        Err(Error::OfficerNotFound)
    ));

    // A customer login routed to the disabled officer waits in the queue instead.
    let routed = s
        .customer_login(chatcore::CustomerLogin {
            customer_id: chatcore::CustomerId::parse("routed").unwrap(),
            officer_id: Some(oid("bob")),
            signature: None,
        })
        .await
        .unwrap();
    assert_eq!(routed.chat.assigned_officer_id, None);

    let enabled = s.enable_officer(&Actor::Admin, &oid("bob")).await.unwrap();
    assert!(!enabled.disabled);
    let again = s.officer_login("bob", Some("correct horse")).await.unwrap();
    s.authenticate(&again.token).await.unwrap();
    // The old token stays revoked.
    assert!(s.authenticate(&bobs.token).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_session_expires_by_the_service_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(chatcore::ManualClock::new(
        chatcore::Timestamp::from_unix_millis(1_800_000_000_000),
    ));
    let mut config = ServiceConfig::default();
    config.clock = clock.clone();
    config.customer_session_ttl = Duration::from_secs(60);
    let s = service(&dir, config);
    let (_, _, token) = customer(&s, "cust-1").await;
    let live = s.open_live_session(&token).await.unwrap();
    assert_eq!(live.expires_in(), Some(Duration::from_secs(60)));
    live.recheck().await.unwrap();
    clock.advance(Duration::from_secs(61));
    assert_eq!(live.expires_in(), Some(Duration::ZERO));
    assert!(matches!(live.recheck().await, Err(Error::Unauthorized)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_stops_at_the_byte_cap_and_the_reader_pages_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServiceConfig::default();
    config.max_page_bytes = 64 * 1024;
    let s = service(&dir, config);
    let (cust, chat, _) = customer(&s, "cust-1").await;
    // Forty long messages of control characters (after one visible one): six JSON
    // bytes each.
    let long = format!("x{}", "\u{1}".repeat(3999));
    for _ in 0..40 {
        send(&s, &cust, chat, &long).await;
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = s
            .messages(
                &cust,
                chat,
                MessagePage {
                    after: Some(after),
                    before: None,
                    limit: Some(1000),
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        let bytes: usize = page.iter().map(chatcore::Message::json_len).sum();
        assert!(bytes <= 64 * 1024, "a page of {bytes} bytes");
        assert!(page.len() < 40, "the cap did not cut the page");
        after = last.seq;
        seen.extend(page.iter().map(|m| m.seq));
    }
    assert_eq!(
        seen,
        (1..=40).collect::<Vec<u64>>(),
        "paging on lost nothing"
    );
}
