//! criterion benchmarks of the engine's hot paths on the SQLite store (a real file in a
//! temp dir, WAL, `Durability::Normal`: no fsync per commit, so that the figures measure
//! the engine rather than the disk, and stay comparable with docs/BENCHMARKS.md; the
//! default, `Full`, adds one fsync per commit group, measured end to end by chat-bench):
//!
//! - `send/one`: one message, awaited alone (the latency of a commit).
//! - `send/concurrent_64`: 64 messages sent at once into 64 chats (group commit).
//! - `claim/one`: claiming one pending chat out of a queue.
//! - `page/history_100`: a page of 100 messages from the middle of a 10,000-message chat.
//! - `page/queue`, `page/officer_chats`: the queue and an officer's chats, 200 each.
//! - `fanout/1000`: one event published to a topic with 1,000 subscribers, until every
//!   subscriber has it (serialized once, shared).
//!
//! Run with `cargo bench -p chatcore --bench hot_paths`; `cargo test --benches` runs each
//! once, as CI does. docs/BENCHMARKS.md records the numbers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatcore::{
    Actor, ChatId, ChatService, ChatsFilter, CustomerId, CustomerLogin, Durability, Envelope,
    Event, EventBus, LocalBus, Message, MessageId, MessagePage, NewOfficer, OfficerId, SendMessage,
    SenderType, ServiceConfig, SqliteOptions, SqliteStore, Timestamp, Topic,
};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::future::join_all;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A service on a fresh SQLite file (open mode), the directory kept alive beside it.
struct Fixture {
    service: ChatService,
    _dir: tempfile::TempDir,
    customers: u64,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SqliteOptions {
            durability: Durability::Normal,
            ..SqliteOptions::default()
        };
        let store =
            SqliteStore::open_with(dir.path().join("bench.db"), options).expect("open SQLite");
        let service = ChatService::new(
            Arc::new(store),
            Arc::new(LocalBus::new()),
            ServiceConfig::default(),
        );
        Self {
            service,
            _dir: dir,
            customers: 0,
        }
    }

    async fn officer(&self, id: &str) -> Actor {
        let id = OfficerId::parse(id).expect("officer id");
        self.service
            .create_officer(
                &Actor::Anonymous,
                NewOfficer {
                    id: id.clone(),
                    password: None,
                    display_name: None,
                    capacity: None,
                },
            )
            .await
            .expect("create officer");
        Actor::Officer(id)
    }

    /// A new customer's pending chat and the customer acting in it.
    async fn customer(&mut self) -> (ChatId, Actor) {
        self.customers += 1;
        let session = self
            .service
            .customer_login(CustomerLogin {
                customer_id: CustomerId::parse(format!("c{}", self.customers)).expect("id"),
                officer_id: None,
                signature: None,
            })
            .await
            .expect("customer login");
        let actor = self
            .service
            .authenticate(&session.token)
            .await
            .expect("token")
            .actor;
        (session.chat.id, actor)
    }
}

fn send(c: &mut Criterion) {
    let rt = runtime();
    let mut fixture = Fixture::new();
    let customers: Vec<(ChatId, Actor)> = rt.block_on(async {
        let mut customers = Vec::with_capacity(64);
        for _ in 0..64 {
            customers.push(fixture.customer().await);
        }
        customers
    });
    let service = &fixture.service;
    let mut group = c.benchmark_group("send");
    group.bench_function("one", |b| {
        let (chat, actor) = &customers[0];
        b.to_async(&rt).iter(|| async {
            service
                .send_message(actor, *chat, SendMessage::text("How do I repay early?"))
                .await
                .expect("send")
        });
    });
    group.bench_function("concurrent_64", |b| {
        b.to_async(&rt).iter(|| async {
            let sends = customers.iter().map(|(chat, actor)| {
                service.send_message(actor, *chat, SendMessage::text("How do I repay early?"))
            });
            for sent in join_all(sends).await {
                sent.expect("send");
            }
        });
    });
    group.finish();
}

fn claim(c: &mut Criterion) {
    let rt = runtime();
    let mut fixture = Fixture::new();
    let officer = rt.block_on(fixture.officer("alice"));
    let alice = OfficerId::parse("alice").expect("id");
    c.bench_function("claim/one", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                // Fresh pending chats for this sample, made before the clock starts.
                let mut chats = Vec::with_capacity(iters as usize);
                for _ in 0..iters {
                    chats.push(fixture.customer().await.0);
                }
                let start = Instant::now();
                for chat in chats {
                    fixture
                        .service
                        .claim(&officer, &alice, chat)
                        .await
                        .expect("claim");
                }
                start.elapsed()
            })
        });
    });
}

fn page(c: &mut Criterion) {
    let rt = runtime();
    let mut fixture = Fixture::new();
    let (chat, officer) = rt.block_on(async {
        let officer = fixture.officer("bob").await;
        let bob = OfficerId::parse("bob").expect("id");
        let (chat, customer) = fixture.customer().await;
        fixture
            .service
            .claim(&officer, &bob, chat)
            .await
            .expect("claim");
        for batch in 0..100 {
            let sends = (0..100).map(|i| {
                fixture.service.send_message(
                    &customer,
                    chat,
                    SendMessage::text(format!("message {batch}-{i}")),
                )
            });
            for sent in join_all(sends).await {
                sent.expect("send");
            }
        }
        // 200 chats waiting in the queue and 200 more owned by bob.
        for i in 0..400 {
            let (other, _) = fixture.customer().await;
            if i % 2 == 0 {
                fixture
                    .service
                    .claim(&officer, &bob, other)
                    .await
                    .expect("claim");
            }
        }
        (chat, officer)
    });
    let service = &fixture.service;
    let bob = OfficerId::parse("bob").expect("id");
    let mut group = c.benchmark_group("page");
    group.bench_function("history_100", |b| {
        b.to_async(&rt).iter(|| async {
            let page = MessagePage {
                after: Some(5_000),
                before: None,
                limit: Some(100),
            };
            let messages = service.messages(&officer, chat, page).await.expect("page");
            assert_eq!(messages.len(), 100);
        });
    });
    group.bench_function("queue", |b| {
        b.to_async(&rt).iter(|| async {
            let queue = service.queue(&officer).await.expect("queue");
            assert_eq!(queue.len(), 200);
        });
    });
    group.bench_function("officer_chats", |b| {
        b.to_async(&rt).iter(|| async {
            let chats = service
                .officer_chats(&officer, &bob, ChatsFilter::Open)
                .await
                .expect("chats");
            assert_eq!(chats.len(), 201);
        });
    });
    group.finish();
}

fn fanout(c: &mut Criterion) {
    let bus = LocalBus::new();
    let chat = ChatId::new();
    let topic = Topic::Chat(chat);
    let mut subscribers: Vec<_> = (0..1000).map(|_| bus.subscribe(&topic)).collect();
    let message = Message {
        id: MessageId::new(),
        chat_id: chat,
        seq: 1,
        sender_type: SenderType::Officer,
        sender_id: "alice".to_string(),
        content: "Your repayment schedule is attached.".to_string(),
        created_at: Timestamp::now(),
        client_message_id: None,
        event: None,
        attachment: None,
    };
    c.bench_function("fanout/1000", |b| {
        b.iter(|| {
            let envelope = Envelope::new(
                topic.clone(),
                Event::NewMessage {
                    message: message.clone(),
                },
            );
            bus.publish(envelope);
            let mut bytes = 0;
            for subscriber in &mut subscribers {
                let received = subscriber
                    .try_recv()
                    .expect("an event for every subscriber")
                    .expect("not lagged");
                bytes += received.json().len();
            }
            bytes
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = send, claim, page, fanout
}
criterion_main!(benches);
