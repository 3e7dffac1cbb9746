//! Integration tests of `PgStore` and `PgBus` on a real PostgreSQL: the store
//! conformance suite unchanged, concurrent migration, and events crossing nodes (two
//! buses, two `ChatService`s on one database). Each test starts its own throwaway
//! cluster (`chat_postgres::testing`) and each store gets its own database.

use std::sync::Arc;
use std::time::Duration;

use chat_postgres::testing::TestPg;
use chat_postgres::{PG_SCHEMA_VERSION, PgBus, PgOptions, PgStore};
use chatcore::{
    Actor, Chat, ChatId, ChatService, ChatStatus, CustomerId, CustomerLogin, Envelope, Event,
    EventBus, NewOfficer, OfficerId, SendMessage, ServiceConfig, Store, Timestamp, Topic,
};

const WAIT: Duration = Duration::from_secs(10);

async fn store_on(config: &tokio_postgres::Config) -> PgStore {
    PgStore::connect_with(
        config.clone(),
        PgOptions {
            pool_size: 8,
            ..PgOptions::default()
        },
    )
    .await
    .expect("connect PgStore")
}

/// A node: a store and a bus on the shared database, and a service over them.
async fn node(config: &tokio_postgres::Config) -> ChatService {
    let store: Arc<dyn Store> = Arc::new(store_on(config).await);
    let bus = PgBus::connect_with(config.clone(), store.clone(), 1024)
        .await
        .expect("connect PgBus");
    ChatService::new(store, Arc::new(bus), ServiceConfig::default())
}

/// One store and two buses on it, as two nodes would have (rings of 64 events).
async fn two_buses(config: &tokio_postgres::Config) -> (Arc<dyn Store>, PgBus, PgBus) {
    let store: Arc<dyn Store> = Arc::new(store_on(config).await);
    let a = PgBus::connect_with(config.clone(), store.clone(), 64)
        .await
        .expect("connect PgBus a");
    let b = PgBus::connect_with(config.clone(), store.clone(), 64)
        .await
        .expect("connect PgBus b");
    (store, a, b)
}

fn chat() -> Chat {
    Chat {
        id: ChatId::new(),
        customer_id: CustomerId::parse("cust").unwrap(),
        customer_name: None,
        assigned_officer_id: None,
        status: ChatStatus::Pending,
        created_at: Timestamp::from_unix_millis(1_700_000_000_000),
        updated_at: Timestamp::from_unix_millis(1_700_000_000_000),
        resolved_at: None,
        last_seq: 0,
        customer_last_read_seq: 0,
        officer_last_read_seq: 0,
        queue_position: None,
        last_message: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_store_passes_the_conformance_suite() {
    let Some(pg) = TestPg::start("pg_store_passes_the_conformance_suite") else {
        return;
    };
    let pg = &pg;
    chatcore::conformance::run_all(|| async move {
        let config = pg.database().await;
        Arc::new(store_on(&config).await) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_blob_store_passes_the_blob_conformance_suite() {
    let Some(pg) = TestPg::start("pg_blob_store_passes_the_blob_conformance_suite") else {
        return;
    };
    let pg = &pg;
    chatcore::conformance::blobs::run_all(|| async move {
        let config = pg.database().await;
        Arc::new(store_on(&config).await.blobs()) as Arc<dyn chatcore::BlobStore>
    })
    .await;
}

/// A blob stored through one node's pool is read whole, and by range, through
/// another's: what lets every node serve every attachment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_blob_stored_on_one_node_is_read_on_another() {
    let Some(pg) = TestPg::start("a_blob_stored_on_one_node_is_read_on_another") else {
        return;
    };
    let config = pg.database().await;
    let (a, b) = (
        store_on(&config).await.blobs(),
        store_on(&config).await.blobs(),
    );
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let now = Timestamp::from_unix_millis(1_800_000_000_000);
    let info = chatcore::BlobStore::put(
        &a,
        chatcore::blob::chunked_stream(bytes.clone(), 10_000),
        now,
    )
    .await
    .expect("put on node A");
    let read = chatcore::BlobStore::get(
        &b,
        &info.id,
        Some(chatcore::ByteRange {
            start: 262_000,
            end: 600_001,
        }),
    )
    .await
    .expect("get on node B")
    .expect("the blob is there");
    let mut got = Vec::new();
    let mut body = read.body;
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        got.extend_from_slice(&chunk.expect("a chunk"));
    }
    assert_eq!(read.size, 700_000);
    assert!(got == bytes[262_000..600_001], "node B read other bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_migrate_once() {
    let Some(pg) = TestPg::start("nodes_starting_at_once_migrate_once") else {
        return;
    };
    let config = pg.database().await;
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { PgStore::connect_with(config, PgOptions::default()).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().expect("a concurrent open failed");
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = (1..=PG_SCHEMA_VERSION as i32).collect();
    assert_eq!(versions, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_published_on_one_bus_reaches_the_other_once() {
    let Some(pg) = TestPg::start("an_event_published_on_one_bus_reaches_the_other_once") else {
        return;
    };
    let config = pg.database().await;
    let (_store, a, b) = two_buses(&config).await;
    assert_ne!(a.node_id(), b.node_id());
    let mut on_a = a.subscribe(&Topic::Officers);
    let mut on_b = b.subscribe(&Topic::Officers);
    let officer = OfficerId::parse("amy").unwrap();
    let mut on_b_officer = b.subscribe(&Topic::Officer(officer.clone()));
    let created = chat();
    a.publish(Envelope::new(
        Topic::Officers,
        Event::QueueChatCreated {
            chat: created.clone(),
        },
    ));
    a.publish(Envelope::new(
        Topic::Officer(officer),
        Event::ChatAssigned {
            chat: created.clone(),
        },
    ));
    let got = tokio::time::timeout(WAIT, on_b.recv())
        .await
        .expect("event reached the other node")
        .unwrap();
    assert_eq!(
        got.event(),
        &Event::QueueChatCreated {
            chat: created.clone()
        }
    );
    let got = tokio::time::timeout(WAIT, on_b_officer.recv())
        .await
        .expect("officer event reached the other node")
        .unwrap();
    assert_eq!(got.event(), &Event::ChatAssigned { chat: created });
    // The publishing node got it once, locally, and not again from its own NOTIFY.
    assert!(on_a.recv().await.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        on_a.try_recv().is_none(),
        "own notification delivered again"
    );
    assert!(on_b.try_recv().is_none());
}

/// What a short-lived process (chat-cli) relies on: after `flush`, dropping the bus at
/// once (as exiting does) loses none of the notifications it had only queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_flushed_before_the_bus_is_dropped_reach_the_other_node() {
    let Some(pg) = TestPg::start("events_flushed_before_the_bus_is_dropped_reach_the_other_node")
    else {
        return;
    };
    let config = pg.database().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&config).await);
    let b = PgBus::connect_with(config.clone(), store.clone(), 256)
        .await
        .unwrap();
    let mut on_b = b.subscribe(&Topic::Officers);
    let a = PgBus::connect_with(config.clone(), store.clone(), 256)
        .await
        .unwrap();
    let chats: Vec<Chat> = (0..50).map(|_| chat()).collect();
    for c in &chats {
        a.publish(Envelope::new(
            Topic::Officers,
            Event::QueueChatCreated { chat: c.clone() },
        ));
    }
    assert_eq!(a.flush(WAIT).await, Some(0), "every event sent");
    drop(a);
    for c in &chats {
        let got = tokio::time::timeout(WAIT, on_b.recv())
            .await
            .expect("a flushed event reached the other node")
            .unwrap();
        assert_eq!(got.event(), &Event::QueueChatCreated { chat: c.clone() });
    }
}

/// The sender batches what has queued into one transaction: a burst reaches the other
/// node whole and in order, and an event published twice in a row (which PostgreSQL
/// would deliver once if two payloads of one transaction were the same) arrives twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_with_repeated_events_reaches_the_other_node_whole_and_in_order() {
    let Some(pg) =
        TestPg::start("a_burst_with_repeated_events_reaches_the_other_node_whole_and_in_order")
    else {
        return;
    };
    let config = pg.database().await;
    let store: Arc<dyn Store> = Arc::new(store_on(&config).await);
    let b = PgBus::connect_with(config.clone(), store.clone(), 8192)
        .await
        .unwrap();
    let mut on_b = b.subscribe(&Topic::Officers);
    let a = PgBus::connect_with(config.clone(), store.clone(), 8192)
        .await
        .unwrap();
    let chats: Vec<Chat> = (0..1500).map(|_| chat()).collect();
    for c in &chats {
        for _ in 0..2 {
            a.publish(Envelope::new(
                Topic::Officers,
                Event::QueueChatCreated { chat: c.clone() },
            ));
        }
    }
    assert_eq!(a.flush(WAIT).await, Some(0), "every event sent");
    for c in &chats {
        for copy in 0..2 {
            let got = tokio::time::timeout(WAIT, on_b.recv())
                .await
                .unwrap_or_else(|_| panic!("copy {copy} of an event reached the other node"))
                .unwrap();
            assert_eq!(got.event(), &Event::QueueChatCreated { chat: c.clone() });
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(on_b.try_recv().is_none(), "nothing more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_sent_on_node_a_reaches_a_feed_on_node_b_live() {
    let Some(pg) = TestPg::start("a_message_sent_on_node_a_reaches_a_feed_on_node_b_live") else {
        return;
    };
    let config = pg.database().await;
    let node_a = node(&config).await;
    let node_b = node(&config).await;
    let amy = OfficerId::parse("amy").unwrap();
    node_b
        .create_officer(
            &Actor::Anonymous,
            NewOfficer {
                id: amy.clone(),
                password: None,
                display_name: None,
                capacity: None,
            },
        )
        .await
        .unwrap();
    let officer = Actor::Officer(amy.clone());
    // The officer on node B watches the queue; a customer logs in on node A.
    let mut queue = node_b.watch_queue(&officer).unwrap();
    let login = node_a
        .customer_login(CustomerLogin {
            customer_id: CustomerId::parse("cust-1").unwrap(),
            officer_id: None,
            signature: None,
        })
        .await
        .unwrap();
    let customer = node_a.authenticate(&login.token).await.unwrap().actor;
    // The start (version 2's chat_updated), then version 1's queue event.
    for expected in ["chat_updated", "queue_chat_created"] {
        let seen = tokio::time::timeout(WAIT, queue.recv())
            .await
            .expect("queue event crossed nodes")
            .unwrap();
        assert_eq!(seen.event().kind(), expected);
        assert!(matches!(seen.event(),
            Event::ChatUpdated { chat, .. } | Event::QueueChatCreated { chat }
                if chat.id == login.chat.id));
    }
    node_b.claim(&officer, &amy, login.chat.id).await.unwrap();
    let mut feed = node_b
        .watch_chat(&officer, login.chat.id, Some(0))
        .await
        .unwrap();
    // The claim's entry first (stored on node B), then the customer's messages.
    let took = tokio::time::timeout(WAIT, feed.next())
        .await
        .expect("the claim's entry")
        .unwrap()
        .unwrap();
    assert_eq!((took.seq, took.content.as_str()), (1, "amy took the chat"));
    for i in 2..=4u64 {
        node_a
            .send_message(
                &customer,
                login.chat.id,
                SendMessage::text(format!("hello {i}")),
            )
            .await
            .unwrap();
        let m = tokio::time::timeout(WAIT, feed.next())
            .await
            .expect("message crossed nodes live")
            .unwrap()
            .unwrap();
        assert_eq!((m.seq, m.content), (i, format!("hello {i}")));
    }
    // A message too large for a notification crosses by reference.
    let big = "€".repeat(3000);
    assert!(big.len() > 8000);
    node_a
        .send_message(&customer, login.chat.id, SendMessage::text(big.clone()))
        .await
        .unwrap();
    let m = tokio::time::timeout(WAIT, feed.next())
        .await
        .expect("large message crossed nodes")
        .unwrap()
        .unwrap();
    assert_eq!((m.seq, m.content), (5, big));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_listener_reconnects_after_its_connection_is_killed() {
    let Some(pg) = TestPg::start("the_listener_reconnects_after_its_connection_is_killed") else {
        return;
    };
    let config = pg.database().await;
    let (_store, a, b) = two_buses(&config).await;
    let mut on_b = b.subscribe(&Topic::Officers);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'chat-postgres-listen'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 2, "both listeners terminated");
    // Events published while B is reconnecting may be lost; keep publishing until one
    // arrives, which proves B listens again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        a.publish(Envelope::new(
            Topic::Officers,
            Event::QueueChatCreated { chat: chat() },
        ));
        match tokio::time::timeout(Duration::from_millis(200), on_b.recv()).await {
            Ok(got) => {
                got.unwrap();
                break;
            }
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "the listener never came back"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remote_queue_created_event_for_a_claimed_chat_is_dropped() {
    let Some(pg) = TestPg::start("a_remote_queue_created_event_for_a_claimed_chat_is_dropped")
    else {
        return;
    };
    let config = pg.database().await;
    let (store, a, b) = two_buses(&config).await;
    let mut on_b = b.subscribe(&Topic::Officers);
    let (created, _) = store
        .get_or_create_chat(&chatcore::store::NewChat {
            id: ChatId::new(),
            customer_id: CustomerId::parse("late").unwrap(),
            customer_name: None,
            assigned_officer_id: None,
            default_capacity: None,
            created_at: Timestamp::from_unix_millis(1_700_000_000_000),
        })
        .await
        .unwrap();
    store
        .create_officer(&chatcore::store::OfficerRecord {
            officer: chatcore::Officer {
                id: OfficerId::parse("amy").unwrap(),
                display_name: None,
                created_at: Timestamp::from_unix_millis(0),
                disabled: false,
                availability: chatcore::Availability::Available,
                capacity: None,
                open_chats: 0,
                connected: false,
            },
            password_hash: None,
        })
        .await
        .unwrap();
    // Amy claims it (as the service does: a transition with its system entry).
    let amy = OfficerId::parse("amy").unwrap();
    let claimed = store
        .transition(&chatcore::store::Transition {
            expected_status: ChatStatus::Pending,
            expected_owner: None,
            status: ChatStatus::Assigned,
            owner: Some(amy.clone()),
            entry: chatcore::store::NewMessage {
                id: chatcore::MessageId::new(),
                chat_id: created.id,
                sender_type: chatcore::SenderType::System,
                sender_id: amy.to_string(),
                content: "amy took the chat".into(),
                client_message_id: None,
                created_at: Timestamp::now(),
                event: None,
                decided_on: None,
                attachment: None,
            },
            default_capacity: None,
            only_to_eligible: false,
        })
        .await
        .unwrap();
    assert!(matches!(
        claimed,
        chatcore::store::TransitionOutcome::Applied(..)
    ));
    // Node A announces the creation only now, after the claim: B must not show it.
    a.publish(Envelope::new(
        Topic::Officers,
        Event::QueueChatCreated {
            chat: created.clone(),
        },
    ));
    let marker = chat();
    a.publish(Envelope::new(
        Topic::Officers,
        Event::QueueChatCreated {
            chat: marker.clone(),
        },
    ));
    let got = tokio::time::timeout(WAIT, on_b.recv())
        .await
        .expect("marker arrived")
        .unwrap();
    assert_eq!(got.event(), &Event::QueueChatCreated { chat: marker });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_and_bus_recover_when_postgres_restarts() {
    let Some(pg) = TestPg::start("store_and_bus_recover_when_postgres_restarts") else {
        return;
    };
    let config = pg.database().await;
    let (store, a, b) = two_buses(&config).await;
    let mut on_b = b.subscribe(&Topic::Officers);
    store.ping().await.unwrap();
    // While the server is down the store says Unavailable (a retry may succeed).
    let restart = tokio::task::spawn_blocking({
        let pg = Arc::new(pg);
        move || {
            let restarted = pg.restart(Duration::from_millis(1500));
            (pg, restarted)
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let down = store.ping().await;
    let (_pg, restarted) = restart.await.unwrap();
    if !restarted {
        println!("SKIPPED: restart needs a private cluster (CHAT_TEST_DATABASE_URL is set)");
        return;
    }
    assert!(
        matches!(down, Err(chatcore::StoreError::Unavailable(_))),
        "ping while down: {down:?}"
    );
    // Once it is back, broken pooled connections are replaced and the listener
    // reconnects: the store serves and events cross nodes again.
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.ping().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "store never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        a.publish(Envelope::new(
            Topic::Officers,
            Event::QueueChatCreated { chat: chat() },
        ));
        match tokio::time::timeout(Duration::from_millis(300), on_b.recv()).await {
            Ok(got) => {
                got.unwrap();
                break;
            }
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "events never crossed nodes again"
            ),
        }
    }
}

/// Each officer's open chats are a counter on their row (kept by every change that gives
/// or takes a chat). Three officers with room for two chats each, on two nodes, claim,
/// resolve, release, transfer and reopen twelve customers' chats at random, all at
/// once: at the end every counter equals the officer's assigned chats, none ever passes
/// the capacity, and the chats' own states agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_chat_counters_hold_under_racing_changes_on_two_nodes() {
    let Some(pg) = TestPg::start("open_chat_counters_hold_under_racing_changes_on_two_nodes")
    else {
        return;
    };
    let config = pg.database().await;
    let nodes = [Arc::new(node(&config).await), Arc::new(node(&config).await)];
    let officers: Vec<OfficerId> = ["amy", "ben", "cat"]
        .iter()
        .map(|id| OfficerId::parse(*id).unwrap())
        .collect();
    for id in &officers {
        nodes[0]
            .create_officer(
                &Actor::Anonymous,
                NewOfficer {
                    id: id.clone(),
                    password: None,
                    display_name: None,
                    capacity: Some(2),
                },
            )
            .await
            .unwrap();
    }
    let mut chats = Vec::new();
    for i in 0..12 {
        let login = nodes[i % 2]
            .customer_login(CustomerLogin {
                customer_id: CustomerId::parse(format!("cust-{i}")).unwrap(),
                officer_id: None,
                signature: None,
            })
            .await
            .unwrap();
        chats.push(login.chat.id);
    }
    let chats = Arc::new(chats);
    let mut racers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for (o, me) in officers.iter().enumerate() {
            let (node, chats, officers) = (node.clone(), chats.clone(), officers.clone());
            let me = me.clone();
            // A small xorshift per racer: each run interleaves differently anyway.
            let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ ((n * 3 + o + 1) as u64 * 0x2545_F491);
            racers.push(tokio::spawn(async move {
                let actor = Actor::Officer(me.clone());
                let (mut applied, mut at_capacity) = (0u32, 0u32);
                for _ in 0..60 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let chat = chats[(state % chats.len() as u64) as usize];
                    let other = &officers[((state >> 8) % officers.len() as u64) as usize];
                    let done = match (state >> 16) % 5 {
                        0 => node.claim(&actor, &me, chat).await,
                        1 => node.resolve(&actor, chat).await,
                        2 => node.release(&actor, chat).await,
                        3 => node.transfer(&actor, chat, other).await,
                        _ => node.reopen(&actor, chat, None).await,
                    };
                    match done {
                        Ok(_) => applied += 1,
                        Err(chatcore::Error::AtCapacity(_)) => at_capacity += 1,
                        Err(_) => {}
                    }
                }
                (applied, at_capacity)
            }));
        }
    }
    let (mut applied, mut at_capacity) = (0, 0);
    for racer in racers {
        let (a, c) = racer.await.unwrap();
        applied += a;
        at_capacity += c;
    }
    // The race must have done something of each kind that matters here.
    assert!(applied > 20, "{applied} changes applied");
    assert!(at_capacity > 0, "no change was refused at capacity");
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT o.id, o.open_chats, (SELECT count(*) FROM chats c
               WHERE c.assigned_officer_id = o.id AND c.status = 'assigned')
             FROM officers o ORDER BY o.id",
            &[],
        )
        .await
        .unwrap();
    let mut total = 0;
    for r in &rows {
        let (id, counter, counted): (String, i32, i64) = (r.get(0), r.get(1), r.get(2));
        assert_eq!(i64::from(counter), counted, "{id}'s counter");
        assert!(counter <= 2, "{id} holds {counter} chats, capacity 2");
        total += counted;
    }
    // What the service lists agrees with the rows.
    let listed = nodes[1].officers(&Actor::Admin).await.unwrap();
    let loads: i64 = listed.iter().map(|o| i64::from(o.open_chats)).sum();
    assert_eq!(loads, total);
}

/// `n` reads at once, each holding a connection while it runs.
async fn reads(store: &PgStore, n: usize) -> Vec<chatcore::store::StoreResult<Option<Chat>>> {
    let id = ChatId::new();
    futures_util::future::join_all((0..n).map(|_| store.chat(&id))).await
}

/// A task on another runtime that borrows the pool's connections (chat-http's webhook
/// thread, whose runtime runs at a lower priority and stops before the server) never
/// drives them: connections it made the pool open are opened and driven on the store's
/// runtime, so they serve this runtime's requests while the other one is not running.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_opened_for_another_runtime_are_driven_by_the_stores() {
    let Some(pg) = TestPg::start("connections_opened_for_another_runtime_are_driven") else {
        return;
    };
    let config = pg.database().await;
    let store = PgStore::connect_with(
        config,
        PgOptions {
            pool_size: 4,
            ..PgOptions::default()
        },
    )
    .await
    .expect("connect PgStore");
    let (opened_tx, opened) = tokio::sync::oneshot::channel::<Vec<bool>>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let other = store.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Sixteen reads at once: the pool grows to its four connections here.
        let done = runtime.block_on(reads(&other, 16));
        let _ = opened_tx.send(done.iter().map(Result::is_ok).collect());
        // The runtime stays, but nothing runs it until the test is done.
        let _ = released.recv();
        drop(runtime);
    });
    let done = opened.await.unwrap();
    assert!(done.iter().all(|ok| *ok), "{done:?}");
    assert!(
        format!("{store:?}").contains("size: 4"),
        "the pool opened all four: {store:?}"
    );
    // Every connection, whoever asked for it first, answers here.
    let answered = tokio::time::timeout(WAIT, async {
        for _ in 0..3 {
            let done = reads(&store, 8).await;
            assert!(done.iter().all(Result::is_ok), "{done:?}");
        }
    })
    .await;
    let _ = release.send(());
    thread.join().unwrap();
    assert!(
        answered.is_ok(),
        "a connection waited for the idle runtime that opened it"
    );
}
