//! The service on a real SQLite file: races, ordering, idempotency, validation, identity
//! and the authorization matrix, checked against the stored state.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chatcore::{
    Actor, ChatChange, ChatId, ChatService, ChatsFilter, CustomerId, CustomerLogin, Error, Event,
    LocalBus, ManualClock, MessagePage, NewOfficer, OfficerId, SendMessage, ServiceConfig,
    SqliteStore, Timestamp, Topic,
};
use tempfile::TempDir;

#[path = "support/login.rs"]
mod login;
use login::customer;

struct Env {
    service: ChatService,
    dir: TempDir,
}

fn path(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("chat.db")
}

fn open_with(config: ServiceConfig) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let service = ChatService::open_sqlite(path(&dir), config).unwrap();
    Env { service, dir }
}

fn open() -> Env {
    open_with(ServiceConfig::default())
}

const ADMIN_TOKEN: &str = "admin-secret-token-0123456789abcdef";
const CUSTOMER_SECRET: &[u8] = b"host-secret-0123456789abcdef0123456";

fn secured() -> ServiceConfig {
    let mut c = ServiceConfig::default();
    c.admin_token = Some(ADMIN_TOKEN.into());
    c.customer_secret = Some(CUSTOMER_SECRET.to_vec());
    c
}

fn oid(s: &str) -> OfficerId {
    OfficerId::parse(s).unwrap()
}

fn cid(s: &str) -> CustomerId {
    CustomerId::parse(s).unwrap()
}

async fn officer(s: &ChatService, id: &str) -> Actor {
    s.create_officer(
        &Actor::Admin,
        NewOfficer {
            id: oid(id),
            password: None,
            display_name: None,
            capacity: None,
        },
    )
    .await
    .unwrap();
    Actor::Officer(oid(id))
}

fn text(s: &str) -> SendMessage {
    SendMessage::text(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_race_has_one_winner_per_chat_and_events_agree() {
    const OFFICERS: usize = 32;
    const CHATS: usize = 200;
    let env = open();
    let s = &env.service;
    let mut queue_events = s.watch_queue(&Actor::Officer(oid("watcher"))).unwrap();
    let mut officers = Vec::new();
    for i in 0..OFFICERS {
        officers.push(officer(s, &format!("o{i}")).await);
    }
    let mut chats = Vec::new();
    for i in 0..CHATS {
        chats.push(customer(s, &format!("c{i}")).await.1);
    }
    let chats = Arc::new(chats);
    let tasks: Vec<_> = officers
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, actor)| {
            let (s, chats) = (s.clone(), chats.clone());
            tokio::spawn(async move {
                let Actor::Officer(me) = &actor else {
                    unreachable!()
                };
                let mut won = Vec::new();
                for k in 0..CHATS {
                    let chat = chats[(i * 13 + k) % CHATS];
                    match s.claim(&actor, me, chat).await {
                        Ok(c) => {
                            assert_eq!(c.assigned_officer_id.as_ref(), Some(me));
                            won.push(chat);
                        }
                        Err(Error::AlreadyAssigned(owner)) => assert_ne!(&owner, me),
                        Err(e) => panic!("unexpected claim error: {e:?}"),
                    }
                }
                (me.clone(), won)
            })
        })
        .collect();
    let mut winners: HashMap<ChatId, OfficerId> = HashMap::new();
    for t in tasks {
        let (me, won) = t.await.unwrap();
        for chat in won {
            assert!(
                winners.insert(chat, me.clone()).is_none(),
                "two winners for {chat}"
            );
        }
    }
    assert_eq!(winners.len(), CHATS);
    for (chat, owner) in &winners {
        let stored = s.store().chat(chat).await.unwrap().unwrap();
        assert_eq!(stored.assigned_officer_id.as_ref(), Some(owner));
    }
    assert!(s.queue(&Actor::Admin).await.unwrap().is_empty());
    // 200 creations then exactly one claim event per chat, naming the winner (the v1
    // event and the v2 `chat_updated`).
    let mut created = 0;
    let mut started = 0;
    let mut claimed = HashMap::new();
    let mut updated = HashMap::new();
    while let Some(Ok(env)) = queue_events.try_recv() {
        match env.event() {
            Event::QueueChatCreated { .. } => created += 1,
            Event::ChatUpdated {
                change: ChatChange::Created,
                ..
            } => started += 1,
            Event::QueueChatClaimed { chat } => {
                assert!(
                    claimed
                        .insert(chat.id, chat.assigned_officer_id.clone().unwrap())
                        .is_none()
                );
            }
            Event::ChatUpdated {
                chat,
                change: ChatChange::Claimed,
            } => {
                assert!(
                    updated
                        .insert(chat.id, chat.assigned_officer_id.clone().unwrap())
                        .is_none()
                );
            }
            // Each winner's load.
            Event::OfficerUpdated { officer } => assert!(officer.open_chats >= 1),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, started), (CHATS, CHATS));
    assert_eq!(claimed, winners);
    assert_eq!(updated, winners);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_get_dense_seqs_and_events_leave_in_commit_order() {
    // A chat ring large enough to hold all 400 events, read only at the end.
    let dir = tempfile::tempdir().unwrap();
    let s = &ChatService::new(
        Arc::new(SqliteStore::open(path(&dir)).unwrap()),
        Arc::new(LocalBus::new().chat_capacity(512)),
        ServiceConfig::default(),
    );
    let amy = officer(s, "amy").await;
    let (cust, chat, _) = customer(s, "c").await;
    s.claim(&amy, &oid("amy"), chat).await.unwrap();
    let mut raw = s.bus().subscribe(&Topic::Chat(chat));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = s.clone();
            let actor = if i % 2 == 0 {
                cust.clone()
            } else {
                amy.clone()
            };
            tokio::spawn(async move {
                for k in 0..25 {
                    s.send_message(&actor, chat, text(&format!("{i}/{k}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stored = s
        .messages(
            &amy,
            chat,
            MessagePage {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The claim's system entry, then the 400 messages.
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=401).collect::<Vec<_>>());
    assert_eq!(stored[0].content, "amy took the chat");
    // Events arrived in exactly seq order, and each one's message is the stored one.
    for expected in &stored[1..] {
        let env = raw.recv().await.unwrap();
        assert_eq!(env.message(), Some(expected));
    }
    assert!(raw.try_recv().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_is_published_only_after_its_change_is_stored() {
    let env = open();
    let s = env.service.clone();
    let mut queue = s.watch_queue(&Actor::Officer(oid("w"))).unwrap();
    let checker = {
        let s = s.clone();
        tokio::spawn(async move {
            // Each login's two events (chat_updated, then queue_chat_created).
            for _ in 0..100 {
                let env = queue.recv().await.unwrap();
                let (Event::QueueChatCreated { chat } | Event::ChatUpdated { chat, .. }) =
                    env.event()
                else {
                    panic!("unexpected {:?}", env.event())
                };
                // A fresh read connection must already see what the event announces.
                let stored = s.store().chat(&chat.id).await.unwrap();
                assert_eq!(stored.as_ref(), Some(chat));
            }
        })
    };
    let logins: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { customer(&s, &format!("c{i}")).await })
        })
        .collect();
    for l in logins {
        l.await.unwrap();
    }
    checker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_of_one_customer_share_one_chat_and_one_event() {
    let env = open();
    let s = &env.service;
    let mut queue = s.watch_queue(&Actor::Officer(oid("w"))).unwrap();
    let logins: Vec<_> = (0..32)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.customer_login(CustomerLogin {
                    customer_id: cid("same"),
                    officer_id: None,
                    signature: None,
                })
                .await
                .unwrap()
            })
        })
        .collect();
    let mut chats = HashSet::new();
    let mut created = 0;
    let mut tokens = HashSet::new();
    for l in logins {
        let r = l.await.unwrap();
        chats.insert(r.chat.id);
        created += usize::from(r.created);
        tokens.insert(r.token);
    }
    assert_eq!(chats.len(), 1);
    assert_eq!(created, 1);
    assert_eq!(tokens.len(), 32, "every login gets its own token");
    assert!(
        matches!(queue.try_recv(), Some(Ok(e)) if matches!(e.event(),
        Event::ChatUpdated { change: ChatChange::Created, .. }))
    );
    assert!(
        matches!(queue.try_recv(), Some(Ok(e)) if matches!(e.event(), Event::QueueChatCreated { .. }))
    );
    assert!(
        queue.try_recv().is_none(),
        "more than one queue_chat_created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_message_id_makes_sends_idempotent() {
    let env = open();
    let s = &env.service;
    let (cust, chat, _) = customer(s, "c").await;
    let mut raw = s.bus().subscribe(&Topic::Chat(chat));
    let first = s
        .send_message(&cust, chat, text("hi").with_client_message_id("k-1"))
        .await
        .unwrap();
    assert!(first.created);
    let retry = s
        .send_message(&cust, chat, text("hi").with_client_message_id("k-1"))
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(retry.message, first.message);
    assert_eq!(s.store().last_seq(&chat).await.unwrap(), 1);
    assert!(raw.try_recv().is_some());
    assert!(raw.try_recv().is_none(), "a duplicate was published again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_refused_and_changes_nothing() {
    let env = open();
    let s = &env.service;
    let (cust, chat, _) = customer(s, "c").await;
    let bad = |r: Result<chatcore::Sent, Error>| r.unwrap_err().code();
    assert_eq!(
        bad(s.send_message(&cust, chat, text("")).await),
        "empty_content"
    );
    assert_eq!(
        bad(s.send_message(&cust, chat, text(" \n\t ")).await),
        "empty_content"
    );
    assert_eq!(
        bad(s.send_message(&cust, chat, text(&"x".repeat(4001))).await),
        "message_too_large"
    );
    // The limit counts characters, not bytes.
    assert!(
        s.send_message(&cust, chat, text(&"é".repeat(4000)))
            .await
            .is_ok()
    );
    let long_key = text("x").with_client_message_id("k".repeat(129));
    assert_eq!(
        bad(s.send_message(&cust, chat, long_key).await),
        "invalid_field"
    );
    assert_eq!(s.store().last_seq(&chat).await.unwrap(), 1);

    for limit in [0, 1001] {
        let page = MessagePage {
            limit: Some(limit),
            ..Default::default()
        };
        let err = s.messages(&cust, chat, page).await.unwrap_err();
        assert_eq!(err.code(), "invalid_parameter", "limit {limit}");
    }
    let short = NewOfficer {
        id: oid("p"),
        password: Some("short".into()),
        display_name: None,
        capacity: None,
    };
    assert_eq!(
        s.create_officer(&Actor::Admin, short)
            .await
            .unwrap_err()
            .code(),
        "invalid_field"
    );
    let long_name = NewOfficer {
        id: oid("p"),
        password: None,
        display_name: Some("n".repeat(101)),
        capacity: None,
    };
    assert_eq!(
        s.create_officer(&Actor::Admin, long_name)
            .await
            .unwrap_err()
            .code(),
        "invalid_field"
    );
    assert!(s.officers(&Actor::Admin).await.unwrap().is_empty());
    let dup = NewOfficer {
        id: oid("p"),
        password: None,
        display_name: Some("  ".into()),
        capacity: None,
    };
    let created = s.create_officer(&Actor::Admin, dup.clone()).await.unwrap();
    assert_eq!(
        created.display_name, None,
        "a blank display name counts as none"
    );
    assert_eq!(
        s.create_officer(&Actor::Admin, dup)
            .await
            .unwrap_err()
            .code(),
        "officer_exists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_holds_at_the_core() {
    let env = open_with(secured());
    let s = &env.service;
    let amy = officer(s, "amy").await;
    let ben = officer(s, "ben").await;
    let sign = |c: &str| chatcore::customer_signature(CUSTOMER_SECRET, c);
    let login = |c: &'static str| {
        let s = s.clone();
        async move {
            let r = s
                .customer_login(CustomerLogin {
                    customer_id: cid(c),
                    officer_id: None,
                    signature: Some(sign(c)),
                })
                .await
                .unwrap();
            (s.authenticate(&r.token).await.unwrap().actor, r.chat.id)
        }
    };
    let (c1, chat1) = login("c1").await;
    let (c2, chat2) = login("c2").await;
    let anon = Actor::Anonymous;
    let code = |e: Error| e.code();

    // Officers: only the admin creates them in secured mode.
    let new = || NewOfficer {
        id: oid("x"),
        password: None,
        display_name: None,
        capacity: None,
    };
    assert_eq!(
        code(s.create_officer(&anon, new()).await.unwrap_err()),
        "unauthorized"
    );
    assert_eq!(
        code(s.create_officer(&amy, new()).await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(
        code(s.create_officer(&c1, new()).await.unwrap_err()),
        "forbidden"
    );

    // Queue: officers (and admin) only.
    assert!(s.queue(&amy).await.is_ok());
    assert!(s.queue(&Actor::Admin).await.is_ok());
    assert_eq!(code(s.queue(&c1).await.unwrap_err()), "forbidden");
    assert_eq!(code(s.queue(&anon).await.unwrap_err()), "unauthorized");
    assert!(s.watch_queue(&c1).is_err());
    assert_eq!(s.watch_queue(&anon).err().map(code), Some("unauthorized"));
    // The admin reads all the queue's events carry, so may follow them live.
    assert!(s.watch_queue(&Actor::Admin).is_ok());

    // A pending chat: any officer reads it, nobody but its customer writes it.
    assert!(
        s.messages(&ben, chat1, MessagePage::default())
            .await
            .is_ok()
    );
    assert!(s.chat(&ben, chat1).await.is_ok());
    assert_eq!(
        code(s.send_message(&amy, chat1, text("x")).await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(
        code(s.send_message(&c2, chat1, text("x")).await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(code(s.chat(&c2, chat1).await.unwrap_err()), "forbidden");
    assert_eq!(
        code(s.watch_chat(&c2, chat1, None).await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(
        code(s.send_message(&anon, chat1, text("x")).await.unwrap_err()),
        "unauthorized"
    );
    assert_eq!(
        code(
            s.send_message(&Actor::Admin, chat1, text("x"))
                .await
                .unwrap_err()
        ),
        "forbidden"
    );
    assert!(s.send_message(&c1, chat1, text("hello")).await.is_ok());
    // A customer cannot probe which other chat ids exist: unknown and foreign look alike.
    let unknown = ChatId::new();
    let probe = s.send_message(&c1, unknown, text("x")).await.unwrap_err();
    assert_eq!(code(probe), "forbidden");
    assert_eq!(code(s.chat(&c1, unknown).await.unwrap_err()), "forbidden");
    assert_eq!(
        code(s.chat(&amy, unknown).await.unwrap_err()),
        "chat_not_found"
    );

    // Claims: only for oneself; then the chat is the owner's alone.
    assert_eq!(
        code(s.claim(&amy, &oid("ben"), chat1).await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(
        code(s.claim(&c1, &oid("amy"), chat1).await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(
        code(
            s.claim(&Actor::Admin, &oid("amy"), chat1)
                .await
                .unwrap_err()
        ),
        "forbidden"
    );
    s.claim(&amy, &oid("amy"), chat1).await.unwrap();
    assert!(
        s.claim(&amy, &oid("amy"), chat1).await.is_ok(),
        "a repeated claim by the owner succeeds"
    );
    assert_eq!(
        code(s.claim(&ben, &oid("ben"), chat1).await.unwrap_err()),
        "already_assigned"
    );
    assert_eq!(
        code(s.claim(&ben, &oid("ben"), ChatId::new()).await.unwrap_err()),
        "chat_not_found"
    );
    assert!(s.send_message(&amy, chat1, text("hi")).await.is_ok());
    assert_eq!(
        code(s.send_message(&ben, chat1, text("x")).await.unwrap_err()),
        "forbidden"
    );
    assert_eq!(
        code(
            s.messages(&ben, chat1, MessagePage::default())
                .await
                .unwrap_err()
        ),
        "forbidden"
    );
    assert!(s.messages(&c1, chat1, MessagePage::default()).await.is_ok());

    // An officer's chats: theirs only.
    assert_eq!(
        s.officer_chats(&amy, &oid("amy"), ChatsFilter::Open)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        code(
            s.officer_chats(&ben, &oid("amy"), ChatsFilter::Open)
                .await
                .unwrap_err()
        ),
        "forbidden"
    );
    assert_eq!(
        code(
            s.officer_chats(&c1, &oid("amy"), ChatsFilter::Open)
                .await
                .unwrap_err()
        ),
        "forbidden"
    );

    // Spoofed sender fields are refused; matching ones are accepted.
    let spoof = SendMessage {
        claimed_sender_type: Some("officer".into()),
        ..text("x")
    };
    assert_eq!(
        code(s.send_message(&c1, chat1, spoof).await.unwrap_err()),
        "forbidden"
    );
    let spoof = SendMessage {
        claimed_sender_id: Some("c2".into()),
        ..text("x")
    };
    assert_eq!(
        code(s.send_message(&c1, chat1, spoof).await.unwrap_err()),
        "forbidden"
    );
    let honest = SendMessage {
        claimed_sender_type: Some("customer".into()),
        claimed_sender_id: Some("c1".into()),
        ..text("x")
    };
    assert_eq!(
        s.send_message(&c1, chat1, honest)
            .await
            .unwrap()
            .message
            .sender_id,
        "c1"
    );
    let _ = chat2;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_in_open_and_secured_mode() {
    // Open mode: passwordless officers log in by id; password officers need the password.
    let env = open();
    let s = &env.service;
    officer(s, "nopw").await;
    let pw = NewOfficer {
        id: oid("pw"),
        password: Some("correct horse".into()),
        display_name: Some("Pat".into()),
        capacity: None,
    };
    s.create_officer(&Actor::Anonymous, pw).await.unwrap();
    assert!(s.officer_login("nopw", None).await.is_ok());
    let ok = s.officer_login("pw", Some("correct horse")).await.unwrap();
    assert_eq!(ok.officer.display_name.as_deref(), Some("Pat"));
    assert_eq!(
        s.authenticate(&ok.token).await.unwrap().actor,
        Actor::Officer(oid("pw"))
    );
    for (id, password) in [
        ("pw", Some("wrong")),
        ("pw", None),
        ("ghost", None),
        ("bad id!", Some("x")),
    ] {
        let err = s.officer_login(id, password).await.unwrap_err();
        assert_eq!(err.code(), "invalid_credentials", "{id} {password:?}");
        assert_eq!(err.to_string(), "unknown officer id or wrong password");
    }

    // Secured mode: passwordless officers cannot log in; signatures are required.
    let env = open_with(secured());
    let s = &env.service;
    officer(s, "nopw").await;
    assert_eq!(
        s.officer_login("nopw", None).await.unwrap_err().code(),
        "invalid_credentials"
    );
    let admin = s.authenticate(ADMIN_TOKEN).await.unwrap();
    assert_eq!(admin.actor, Actor::Admin);
    assert_eq!(admin.expires_at, None);
    let login = |sig: Option<String>| {
        s.customer_login(CustomerLogin {
            customer_id: cid("c1"),
            officer_id: None,
            signature: sig,
        })
    };
    assert_eq!(login(None).await.unwrap_err().code(), "invalid_signature");
    assert_eq!(
        login(Some("00".repeat(32))).await.unwrap_err().code(),
        "invalid_signature"
    );
    let other = chatcore::customer_signature(CUSTOMER_SECRET, "c2");
    assert_eq!(
        login(Some(other)).await.unwrap_err().code(),
        "invalid_signature"
    );
    assert!(
        s.queue(&Actor::Admin).await.unwrap().is_empty(),
        "a refused login created a chat"
    );
    let good = chatcore::customer_signature(CUSTOMER_SECRET, "c1");
    assert!(login(Some(good)).await.unwrap().created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_naming_an_officer_assigns_the_new_chat_to_them() {
    let env = open();
    let s = &env.service;
    let amy = officer(s, "amy").await;
    let mut queue = s.watch_queue(&amy).unwrap();
    let mut mine = s.watch_officer(&amy).unwrap();
    let r = s
        .customer_login(CustomerLogin {
            customer_id: cid("c"),
            officer_id: Some(oid("amy")),
            signature: None,
        })
        .await
        .unwrap();
    assert_eq!(r.chat.assigned_officer_id, Some(oid("amy")));
    let env = mine.recv().await.unwrap();
    assert_eq!(
        env.event(),
        &Event::ChatAssigned {
            chat: r.chat.clone()
        }
    );
    // Officers hear that it started, assigned; the queue's own event is not sent.
    assert!(
        matches!(queue.try_recv(), Some(Ok(e)) if matches!(e.event(),
        Event::ChatUpdated { change: ChatChange::Assigned, .. }))
    );
    // And that Amy's load grew.
    assert!(
        matches!(queue.try_recv(), Some(Ok(e)) if matches!(e.event(),
        Event::OfficerUpdated { officer } if officer.id == oid("amy") && officer.open_chats == 1))
    );
    assert!(
        queue.try_recv().is_none(),
        "an assigned chat was announced to the queue"
    );
    assert_eq!(
        s.officer_chats(&amy, &oid("amy"), ChatsFilter::Open)
            .await
            .unwrap(),
        vec![r.chat]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_can_be_revoked() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_800_000_000_000,
    )));
    let mut config = ServiceConfig::default();
    config.clock = clock.clone();
    config.officer_session_ttl = Duration::from_secs(60);
    let env = open_with(config);
    let s = &env.service;
    officer(s, "amy").await;
    let session = s.officer_login("amy", None).await.unwrap();
    let auth = s.authenticate(&session.token).await.unwrap();
    assert_eq!(auth.expires_at, Some(session.expires_at));
    clock.advance(Duration::from_secs(59));
    assert!(s.authenticate(&session.token).await.is_ok());
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        s.authenticate(&session.token).await.unwrap_err().code(),
        "unauthorized"
    );
    assert_eq!(s.purge_expired_sessions().await.unwrap(), 1);

    let other = s.officer_login("amy", None).await.unwrap();
    assert!(s.logout(&other.token).await.unwrap());
    assert_eq!(
        s.authenticate(&other.token).await.unwrap_err().code(),
        "unauthorized"
    );
    for garbage in ["", "nope", &"x".repeat(10_000)] {
        assert_eq!(
            s.authenticate(garbage).await.unwrap_err().code(),
            "unauthorized"
        );
    }
    // Without an admin token configured, no string is the admin token.
    assert!(s.authenticate(ADMIN_TOKEN).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_the_database_keeps_everything() {
    let env = open();
    let (token, officer_token, chat) = {
        let s = &env.service;
        let pw = NewOfficer {
            id: oid("amy"),
            password: Some("long enough".into()),
            display_name: None,
            capacity: None,
        };
        s.create_officer(&Actor::Anonymous, pw).await.unwrap();
        let amy = Actor::Officer(oid("amy"));
        let login = s
            .customer_login(CustomerLogin {
                customer_id: cid("c"),
                officer_id: None,
                signature: None,
            })
            .await
            .unwrap();
        let cust = s.authenticate(&login.token).await.unwrap().actor;
        s.claim(&amy, &oid("amy"), login.chat.id).await.unwrap();
        s.send_message(
            &cust,
            login.chat.id,
            text("one").with_client_message_id("k"),
        )
        .await
        .unwrap();
        s.send_message(&amy, login.chat.id, text("two"))
            .await
            .unwrap();
        let officer_token = s
            .officer_login("amy", Some("long enough"))
            .await
            .unwrap()
            .token;
        s.close().await.unwrap();
        (login.token, officer_token, login.chat.id)
    };
    let s = ChatService::open_sqlite(path(&env.dir), ServiceConfig::default()).unwrap();
    let cust = s.authenticate(&token).await.unwrap().actor;
    let amy = s.authenticate(&officer_token).await.unwrap().actor;
    assert_eq!(amy, Actor::Officer(oid("amy")));
    let history = s
        .messages(&cust, chat, MessagePage::default())
        .await
        .unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["amy took the chat", "one", "two"]);
    assert_eq!(
        s.chat(&cust, chat).await.unwrap().assigned_officer_id,
        Some(oid("amy"))
    );
    assert!(s.officer_login("amy", Some("long enough")).await.is_ok());
    // Idempotency keys survive too, and seq continues where it was.
    let retry = s
        .send_message(&cust, chat, text("one").with_client_message_id("k"))
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(
        s.send_message(&cust, chat, text("three"))
            .await
            .unwrap()
            .message
            .seq,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_replays_then_goes_live_with_no_gap_and_no_duplicate() {
    const N: u64 = 600;
    let env = open();
    let s = env.service.clone();
    let (cust, chat, _) = customer(&s, "c").await;
    let sender = {
        let (s, cust) = (s.clone(), cust.clone());
        tokio::spawn(async move {
            for i in 0..N {
                s.send_message(&cust, chat, text(&format!("m{i}")))
                    .await
                    .unwrap();
            }
        })
    };
    // Join while the sender is mid-way.
    while s.store().last_seq(&chat).await.unwrap() < 100 {
        tokio::task::yield_now().await;
    }
    let mut feed = s.watch_chat(&cust, chat, Some(0)).await.unwrap();
    let mut got = Vec::new();
    while got.len() < N as usize {
        let m = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push(m.seq);
    }
    sender.await.unwrap();
    assert_eq!(got, (1..=N).collect::<Vec<_>>());
    assert_eq!(feed.last_seq(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_lags_behind_the_bus_fills_the_gap_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(path(&dir)).unwrap());
    // A tiny ring: the feed below falls behind it at once.
    let s = ChatService::new(
        store,
        Arc::new(LocalBus::with_capacity(4)),
        ServiceConfig::default(),
    );
    let (cust, chat, _) = customer(&s, "c").await;
    s.send_message(&cust, chat, text("before")).await.unwrap();
    let mut live = s.watch_chat(&cust, chat, None).await.unwrap();
    assert_eq!(
        live.last_seq(),
        1,
        "a feed without afterSeq starts at the newest message"
    );
    for i in 0..100 {
        s.send_message(&cust, chat, text(&format!("m{i}")))
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..100 {
        got.push(live.next().await.unwrap().unwrap().seq);
    }
    assert_eq!(got, (2..=101).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_trusted_caller_acts_as_a_customer_only_on_their_own_chat() {
    let env = open();
    let s = &env.service;
    let (with_token, chat, _) = login::customer(s, "c1").await;
    let (_, other_chat, _) = login::customer(s, "c2").await;

    let acting = s.act_as_customer(&cid("c1"), Some(chat)).await.unwrap();
    assert_eq!(acting, with_token, "the same identity a token gives");
    let sent = s.send_message(&acting, chat, text("hi")).await.unwrap();
    assert_eq!(sent.message.sender_id, "c1");

    let not_theirs = s.act_as_customer(&cid("c1"), Some(other_chat)).await;
    assert_eq!(not_theirs.unwrap_err().code(), "forbidden");
    let missing = s.act_as_customer(&cid("c1"), Some(ChatId::new())).await;
    assert_eq!(missing.unwrap_err().code(), "chat_not_found");
    // Without a chat named: their newest; a customer without a chat has none to act on.
    assert_eq!(s.act_as_customer(&cid("c1"), None).await.unwrap(), acting);
    let no_chat = s.act_as_customer(&cid("nobody"), None).await;
    assert_eq!(no_chat.unwrap_err().code(), "forbidden");
}
