//! Routing through `ChatService` (contract v2, "Presence, capacity, automatic
//! assignment"): presence from live sessions, automatic assignment in the contract's
//! order, the oldest waiting chat served first, queue positions, and, as properties over
//! random interleavings of operations on two nodes sharing one store, that no chat is
//! given twice, no officer passes capacity and no chat waits while an officer could take
//! it.

use std::sync::Arc;
use std::time::Duration;

use chatcore::{
    Actor, Assignment, Availability, Chat, ChatChange, ChatId, ChatService, ChatStatus, CustomerId,
    CustomerLogin, Event, LiveSession, LocalBus, MemoryStore, MessagePage, NewOfficer, OfficerId,
    SenderType, ServiceConfig, SqliteStore, Store,
};
use proptest::prelude::*;
use tempfile::TempDir;

const PATIENCE: Duration = Duration::from_secs(10);

fn oid(s: &str) -> OfficerId {
    OfficerId::parse(s).unwrap()
}

fn auto() -> ServiceConfig {
    let mut config = ServiceConfig::default();
    config.assignment = Assignment::Auto;
    config
}

/// `nodes` services ("nodes") over one store, each with a bus of its own.
fn nodes(store: Arc<dyn Store>, config: &ServiceConfig, nodes: usize) -> Vec<ChatService> {
    (0..nodes)
        .map(|_| ChatService::new(store.clone(), Arc::new(LocalBus::new()), config.clone()))
        .collect()
}

fn sqlite() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("chat.db")).unwrap();
    (Arc::new(store), dir)
}

async fn add_officer(s: &ChatService, id: &str, capacity: Option<u32>) -> OfficerId {
    let name = format!("{}{}", id[..1].to_uppercase(), &id[1..]);
    s.create_officer(
        &Actor::Admin,
        NewOfficer {
            id: oid(id),
            password: None,
            display_name: Some(name),
            capacity,
        },
    )
    .await
    .unwrap();
    oid(id)
}

/// The officer's live connection (as a WebSocket holds one): connected while it lives.
async fn connect(s: &ChatService, officer: &OfficerId) -> LiveSession {
    let login = s.officer_login(officer.as_str(), None).await.unwrap();
    s.open_live_session(&login.token).await.unwrap()
}

async fn login(s: &ChatService, customer: &str) -> Chat {
    s.customer_login(CustomerLogin {
        customer_id: CustomerId::parse(customer).unwrap(),
        officer_id: None,
        signature: None,
    })
    .await
    .unwrap()
    .chat
}

async fn chat(s: &ChatService, id: ChatId) -> Chat {
    s.chat(&Actor::Admin, id).await.unwrap()
}

/// Waits until `f` holds (it is asked every few milliseconds), or fails after PATIENCE.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {PATIENCE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn owner_becomes(s: &ChatService, id: ChatId, officer: &OfficerId) {
    eventually(&format!("{id} goes to {officer}"), || async {
        let c = chat(s, id).await;
        c.status == ChatStatus::Assigned && c.assigned_officer_id.as_ref() == Some(officer)
    })
    .await;
}

async fn connected(s: &ChatService, officer: &OfficerId) -> bool {
    s.officers(&Actor::Admin)
        .await
        .unwrap()
        .into_iter()
        .any(|o| o.id == *officer && o.connected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_chat_goes_to_an_officer_who_is_connected_available_and_has_room() {
    let (store, _dir) = sqlite();
    let s = nodes(store, &auto(), 1).remove(0);
    let amy = add_officer(&s, "amy", Some(2)).await;
    let mut officers = s.watch_queue(&Actor::Admin).unwrap();

    // Nobody is connected: the chat waits, first in line.
    let first = login(&s, "c1").await;
    assert_eq!(
        (first.status, first.queue_position),
        (ChatStatus::Pending, Some(1))
    );
    // Amy connects: presence is announced, and the waiting chat goes to her.
    let session = connect(&s, &amy).await;
    owner_becomes(&s, first.id, &amy).await;
    assert!(connected(&s, &amy).await);
    let mut saw_connected = false;
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), officers.recv()).await {
        if let Event::OfficerUpdated { officer } = e.event() {
            saw_connected |= officer.id == amy && officer.connected;
        }
    }
    assert!(saw_connected, "officer_updated with connected: true");
    let entries = s
        .messages(&Actor::Admin, first.id, MessagePage::default())
        .await
        .unwrap();
    let entry = entries.last().unwrap();
    assert_eq!(entry.sender_type, SenderType::System);
    assert_eq!(entry.sender_id, "auto");
    assert_eq!(entry.content, "The chat was assigned to Amy");
    let event = entry.event.as_ref().unwrap();
    assert_eq!(
        (event.kind, event.officer_id.as_ref()),
        (ChatChange::Assigned, Some(&amy))
    );

    // The next chat goes to her as it starts: the login's answer says so.
    let second = login(&s, "c2").await;
    assert_eq!(
        (
            second.status,
            second.assigned_officer_id.as_ref(),
            second.queue_position
        ),
        (ChatStatus::Assigned, Some(&amy), None)
    );
    // She is full (2 of 2): the third waits.
    let third = login(&s, "c3").await;
    assert_eq!(
        (third.status, third.queue_position),
        (ChatStatus::Pending, Some(1))
    );
    // Away, she gets nothing when a slot frees; available again, she does.
    s.set_availability(&Actor::Officer(amy.clone()), &amy, Availability::Away)
        .await
        .unwrap();
    s.resolve(&Actor::Officer(amy.clone()), first.id)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(chat(&s, third.id).await.status, ChatStatus::Pending);
    s.set_availability(&Actor::Officer(amy.clone()), &amy, Availability::Available)
        .await
        .unwrap();
    owner_becomes(&s, third.id, &amy).await;

    // Disconnected, she is not eligible.
    drop(session);
    eventually("amy disconnected", || async { !connected(&s, &amy).await }).await;
    s.resolve(&Actor::Officer(amy.clone()), second.id)
        .await
        .unwrap();
    let fourth = login(&s, "c4").await;
    assert_eq!(fourth.status, ChatStatus::Pending);
}

/// In manual mode nothing is given by itself: an officer who is connected, available
/// and has room still claims (a login must not route its own chat; the desk benchmark
/// caught one that did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_manual_mode_a_new_chat_waits_for_a_claim() {
    let (store, _dir) = sqlite();
    let s = nodes(store, &ServiceConfig::default(), 1).remove(0);
    let amy = add_officer(&s, "amy", Some(2)).await;
    let _session = connect(&s, &amy).await;
    eventually("amy connected", || async { connected(&s, &amy).await }).await;
    let waiting = login(&s, "c1").await;
    assert_eq!(
        (waiting.status, waiting.queue_position),
        (ChatStatus::Pending, Some(1))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(chat(&s, waiting.id).await.status, ChatStatus::Pending);
}

/// Logins at the same moment spread over the officers (each picks as if the chats being
/// given meanwhile were open already) instead of all going to the one with the fewest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_at_the_same_moment_spread_over_the_officers() {
    let (store, _dir) = sqlite();
    let s = nodes(store, &auto(), 1).remove(0);
    let mut sessions = Vec::new();
    for name in ["amy", "bob", "cat", "dan"] {
        let officer = add_officer(&s, name, Some(4)).await;
        sessions.push(connect(&s, &officer).await);
        eventually("connected", || async { connected(&s, &officer).await }).await;
    }
    let chats = futures_util::future::join_all((0..4).map(|i| {
        let s = s.clone();
        async move { login(&s, &format!("c{i}")).await }
    }))
    .await;
    let mut owners: Vec<String> = chats
        .iter()
        .map(|c| {
            assert_eq!(c.status, ChatStatus::Assigned, "{c:?}");
            c.assigned_officer_id.as_ref().unwrap().to_string()
        })
        .collect();
    owners.sort();
    assert_eq!(owners, ["amy", "bob", "cat", "dan"], "one chat each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_is_previous_officer_then_fewest_open_then_longest_since_assigned() {
    let (store, _dir) = sqlite();
    let s = nodes(store, &auto(), 1).remove(0);
    let mut sessions = Vec::new();
    for id in ["amy", "ben", "cat"] {
        let officer = add_officer(&s, id, None).await;
        sessions.push(connect(&s, &officer).await);
        eventually("connected", || connected(&s, &officer)).await;
    }
    let [amy, ben, cat] = ["amy", "ben", "cat"].map(oid);
    let owner = |c: &Chat| c.assigned_officer_id.clone().unwrap();
    // None has a chat, none was ever assigned: by id. Then each has one, and the one
    // assigned the longest ago is next.
    let c1 = login(&s, "c1").await;
    let c2 = login(&s, "c2").await;
    let c3 = login(&s, "c3").await;
    let c4 = login(&s, "c4").await;
    assert_eq!(
        [&c1, &c2, &c3, &c4].map(owner),
        [amy.clone(), ben.clone(), cat.clone(), amy.clone()]
    );
    // Amy 1 open (c4), Ben 0, Cat 1.
    s.resolve(&Actor::Admin, c1.id).await.unwrap();
    s.resolve(&Actor::Admin, c2.id).await.unwrap();
    // c1 comes back: Amy, whom they last spoke to, though Ben has fewer open chats.
    let again = login(&s, "c1").await;
    assert_ne!(again.id, c1.id);
    assert_eq!(owner(&again), amy);
    // A new customer: the fewest open chats (Ben, 0).
    let c5 = login(&s, "c5").await;
    assert_eq!(owner(&c5), ben);
    // All at 1, 2, 1 (Amy 2): Cat (assigned before Ben's latest) then Ben.
    let c6 = login(&s, "c6").await;
    let c7 = login(&s, "c7").await;
    assert_eq!([&c6, &c7].map(owner), [cat.clone(), ben.clone()]);
    drop(sessions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_waiting_chat_is_served_first_and_none_starves() {
    let (store, _dir) = sqlite();
    let s = nodes(store, &auto(), 1).remove(0);
    let amy = add_officer(&s, "amy", Some(1)).await;
    let _session = connect(&s, &amy).await;
    eventually("connected", || connected(&s, &amy)).await;
    login(&s, "c1").await;
    let mut waiting = std::collections::VecDeque::new();
    for i in 2..=4 {
        waiting.push_back(login(&s, &format!("c{i}")).await);
    }
    for (place, c) in (1..).zip(&waiting) {
        assert_eq!(chat(&s, c.id).await.status, ChatStatus::Pending);
        assert_eq!(c.queue_position, Some(place), "{place}");
    }
    // Each time Amy ends her chat a newer customer arrives; the oldest waiting one is
    // always next, so none waits forever however many arrive.
    let mut current = s
        .officer_chats(&Actor::Admin, &amy, chatcore::ChatsFilter::Open)
        .await
        .unwrap()
        .remove(0);
    for i in 5..12 {
        s.resolve(&Actor::Admin, current.id).await.unwrap();
        let next = waiting.pop_front().unwrap();
        owner_becomes(&s, next.id, &amy).await;
        waiting.push_back(login(&s, &format!("c{i}")).await);
        for c in &waiting {
            assert_eq!(chat(&s, c.id).await.status, ChatStatus::Pending);
        }
        current = chat(&s, next.id).await;
    }
}

/// The next `queue_position` of a feed (skipping its other events).
async fn next_position(feed: &mut chatcore::ChatFeed) -> (ChatId, u32) {
    loop {
        let e = tokio::time::timeout(PATIENCE, feed.next_event())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        if let Event::QueuePosition { chat_id, position } = e.event() {
            return (*chat_id, *position);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_customer_hears_their_place_change() {
    let (store, _dir) = sqlite();
    let s = nodes(store, &ServiceConfig::default(), 1).remove(0);
    let amy = add_officer(&s, "amy", None).await;
    let first = login(&s, "c1").await;
    let login2 = s
        .customer_login(CustomerLogin {
            customer_id: CustomerId::parse("c2").unwrap(),
            officer_id: None,
            signature: None,
        })
        .await
        .unwrap();
    assert_eq!(login2.chat.queue_position, Some(2));
    let me = s.authenticate(&login2.token).await.unwrap().actor;
    let mut feed = s.watch_chat(&me, login2.chat.id, Some(0)).await.unwrap();
    // At once on joining, then when the chat ahead is taken.
    assert_eq!(next_position(&mut feed).await, (login2.chat.id, 2));
    s.claim(&Actor::Officer(amy.clone()), &amy, first.id)
        .await
        .unwrap();
    assert_eq!(next_position(&mut feed).await, (login2.chat.id, 1));
    // The queue list places every chat; an officer's feed gets no positions.
    let queue = s.queue(&Actor::Admin).await.unwrap();
    assert_eq!(
        queue
            .iter()
            .map(|c| (c.id, c.queue_position))
            .collect::<Vec<_>>(),
        [(login2.chat.id, Some(1))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_give_a_chat_twice_nor_pass_capacity() {
    const CUSTOMERS: usize = 60;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut config = auto();
    config.officer_capacity = Some(3);
    let desk = nodes(store.clone(), &config, 2);
    let mut sessions = Vec::new();
    for (i, id) in ["amy", "ben", "cat", "dan"].into_iter().enumerate() {
        let officer = add_officer(&desk[0], id, None).await;
        // Each officer on one node; both nodes assign.
        sessions.push(connect(&desk[i % 2], &officer).await);
        eventually("connected", || connected(&desk[0], &officer)).await;
    }
    let logins: Vec<_> = (0..CUSTOMERS)
        .map(|i| {
            let node = desk[i % 2].clone();
            tokio::spawn(async move { login(&node, &format!("c{i}")).await })
        })
        .collect();
    for l in logins {
        l.await.unwrap();
    }
    // Twelve slots in all: exactly twelve chats taken, three each; the rest wait.
    eventually("every slot filled", || async {
        store.counts().await.unwrap().assigned_chats == 12
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    check_safety(&store, Some(3)).await;
    let officers = store.officers().await.unwrap();
    assert!(officers.iter().all(|o| o.open_chats == 3), "{officers:?}");
    assert_eq!(store.counts().await.unwrap().pending_chats, 48);
}

/// Invariants that hold at every moment: no officer holds more open chats than their
/// capacity, and no chat was given while it already had an officer (each chat's
/// entries, read in order, never assign an assigned chat).
async fn check_safety(store: &Arc<dyn Store>, default_capacity: Option<u32>) {
    for officer in store.officers().await.unwrap() {
        if let Some(cap) = officer.capacity.or(default_capacity) {
            assert!(
                officer.open_chats <= cap,
                "{} holds {} of {cap}",
                officer.id,
                officer.open_chats
            );
        }
    }
    let mut chats = store.pending_chats(10_000).await.unwrap();
    for officer in store.officers().await.unwrap() {
        for status in [ChatStatus::Assigned, ChatStatus::Resolved] {
            chats.extend(
                store
                    .officer_chats(&officer.id, status, 10_000)
                    .await
                    .unwrap(),
            );
        }
    }
    for c in chats {
        let page = chatcore::store::PageQuery::after(0, 1000);
        let mut assigned = false;
        for m in store.messages(&c.id, &page).await.unwrap() {
            let Some(event) = &m.event else { continue };
            match event.kind {
                ChatChange::Claimed | ChatChange::Assigned | ChatChange::Reopened => {
                    assert!(!assigned, "{} given twice: {}", c.id, m.content);
                    assigned = true;
                }
                ChatChange::Transferred => assert!(assigned),
                ChatChange::Released | ChatChange::Resolved => assigned = false,
                _ => {}
            }
        }
    }
}

/// One step of the random desk.
#[derive(Debug, Clone)]
enum Op {
    /// A customer logs in on a node (a new chat when they have none open).
    Login(usize, usize),
    /// A customer's open chat ends.
    Resolve(usize),
    /// An officer puts their oldest open chat back in the queue.
    Release(usize),
    /// An officer claims a customer's waiting chat by hand (allowed in automatic mode).
    Claim(usize, usize),
    /// An officer goes away or comes back.
    Available(usize, bool),
    /// An officer's connection on a node opens, or their newest one closes.
    Connect(usize, usize),
    Disconnect(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..8usize, 0..2usize).prop_map(|(c, n)| Op::Login(c, n)),
        2 => (0..8usize).prop_map(Op::Resolve),
        1 => (0..3usize).prop_map(Op::Release),
        3 => (0..3usize, 0..8usize).prop_map(|(o, c)| Op::Claim(o, c)),
        1 => (0..3usize, any::<bool>()).prop_map(|(o, a)| Op::Available(o, a)),
        2 => (0..3usize, 0..2usize).prop_map(|(o, n)| Op::Connect(o, n)),
        1 => (0..3usize).prop_map(Op::Disconnect),
    ]
}

const OFFICERS: [&str; 3] = ["amy", "ben", "cat"];

struct World {
    nodes: Vec<ChatService>,
    store: Arc<dyn Store>,
    sessions: Vec<Vec<LiveSession>>,
}

impl World {
    async fn apply(&self, op: &Op) -> Option<LiveSession> {
        let node = &self.nodes[0];
        match *op {
            Op::Login(c, n) => {
                login(&self.nodes[n], &format!("c{c}")).await;
            }
            Op::Resolve(c) => {
                let customer = CustomerId::parse(format!("c{c}")).unwrap();
                let chats = node.customer_chats(&Actor::Admin, &customer).await.unwrap();
                if let Some(open) = chats.iter().find(|c| c.status.is_open()) {
                    // May lose a race to another step: any answer but a fault is fine.
                    let _ = node.resolve(&Actor::Admin, open.id).await;
                }
            }
            Op::Release(o) => {
                let officer = oid(OFFICERS[o]);
                let open = node
                    .officer_chats(&Actor::Admin, &officer, chatcore::ChatsFilter::Open)
                    .await
                    .unwrap();
                if let Some(c) = open.last() {
                    let _ = node.release(&Actor::Admin, c.id).await;
                }
            }
            Op::Claim(o, c) => {
                let customer = CustomerId::parse(format!("c{c}")).unwrap();
                let chats = node.customer_chats(&Actor::Admin, &customer).await.unwrap();
                if let Some(waiting) = chats.iter().find(|c| c.status == ChatStatus::Pending) {
                    let officer = oid(OFFICERS[o]);
                    match node
                        .claim(&Actor::Officer(officer.clone()), &officer, waiting.id)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) => assert!(
                            ["at_capacity", "already_assigned", "chat_resolved"]
                                .contains(&e.code()),
                            "{e:?}"
                        ),
                    }
                }
            }
            Op::Available(o, available) => {
                let availability = if available {
                    Availability::Available
                } else {
                    Availability::Away
                };
                node.set_availability(&Actor::Admin, &oid(OFFICERS[o]), availability)
                    .await
                    .unwrap();
            }
            Op::Connect(o, n) => return Some(connect(&self.nodes[n], &oid(OFFICERS[o])).await),
            Op::Disconnect(_) => {}
        }
        None
    }

    /// No chat waits while an eligible officer has room (checked once the desks have
    /// had time to act: the sweep runs every two seconds).
    async fn settled(&self, capacities: &[u32]) -> bool {
        let counts = self.store.counts().await.unwrap();
        if counts.pending_chats == 0 {
            return true;
        }
        let officers = self.store.officers().await.unwrap();
        !officers.iter().any(|o| {
            let cap = capacities[OFFICERS.iter().position(|id| *id == o.id.as_str()).unwrap()];
            o.connected && o.availability == Availability::Available && o.open_chats < cap
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random steps, run two or three at once on two nodes over one store: at every
    /// point no officer passes capacity and no chat is given twice; once the steps stop,
    /// no chat waits while an eligible officer has room.
    #[test]
    fn routing_is_safe_and_live_under_random_interleavings(
        capacities in proptest::collection::vec(1..3u32, 3),
        batches in proptest::collection::vec(proptest::collection::vec(op(), 1..4), 1..10),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
            let desk = nodes(store.clone(), &auto(), 2);
            for (id, cap) in OFFICERS.iter().zip(&capacities) {
                add_officer(&desk[0], id, Some(*cap)).await;
            }
            let mut world = World { nodes: desk, store: store.clone(), sessions: vec![Vec::new(), Vec::new(), Vec::new()] };
            for batch in &batches {
                let results = futures_util::future::join_all(batch.iter().map(|op| world.apply(op))).await;
                for (op, session) in batch.iter().zip(results) {
                    match (op, session) {
                        (Op::Connect(o, _), Some(s)) => world.sessions[*o].push(s),
                        (Op::Disconnect(o), _) => { world.sessions[*o].pop(); }
                        _ => {}
                    }
                }
                check_safety(&store, None).await;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
            while !world.settled(&capacities).await {
                assert!(tokio::time::Instant::now() < deadline, "a chat waits while an officer has room");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            check_safety(&store, None).await;
        });
    }
}
