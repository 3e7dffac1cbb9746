//! What the model-based tests share: a real `ChatService` driven by the model's
//! operations (`World`), the real store read back into a model state, and a clock that
//! moves on every reading (so that every change has a time of its own, as each step of
//! the model has a place in its order).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chat_model::state::{
    Change, ChatIx, ChatRec, Entry, Logged, OfficerRec, State as ModelState, Status, What, Who,
};
use chat_model::{Op, Protocol};
use chatcore::store::PageQuery;
use chatcore::{
    Actor, Assignment, Availability, ChatChange, ChatId, ChatService, ChatStatus, Clock,
    CustomerId, CustomerLogin, LiveSession, Message, NewOfficer, OfficerId, SendMessage,
    ServiceConfig, Store, SystemEvent, Timestamp,
};

/// A clock one millisecond further on every reading: every change, and every
/// officer's last assignment, has a time of its own, in the order the changes were
/// made.
#[derive(Debug)]
pub struct TickingClock(AtomicI64);

impl Default for TickingClock {
    fn default() -> Self {
        Self(AtomicI64::new(1_800_000_000_000))
    }
}

impl Clock for TickingClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.fetch_add(1, Ordering::SeqCst))
    }
}

/// The service's settings for the model's bounds: automatic assignment, a clock of the
/// test's choosing.
pub fn config(clock: Arc<dyn Clock>) -> ServiceConfig {
    let mut config = ServiceConfig::default();
    config.assignment = Assignment::Auto;
    config.clock = clock;
    config
}

pub fn officer_id(o: u8) -> OfficerId {
    OfficerId::parse(format!("o{o}")).unwrap()
}

pub fn customer_id(c: u8) -> CustomerId {
    CustomerId::parse(format!("c{c}")).unwrap()
}

/// Creates the model's officers with their capacities; returns their tokens.
pub async fn add_officers(service: &ChatService, capacities: &[u8]) -> Vec<String> {
    let mut tokens = Vec::new();
    for (o, cap) in capacities.iter().enumerate() {
        let id = officer_id(o as u8);
        service
            .create_officer(
                &Actor::Admin,
                NewOfficer {
                    id: id.clone(),
                    password: None,
                    display_name: None,
                    capacity: Some(u32::from(*cap)),
                },
            )
            .await
            .unwrap();
        tokens.push(
            service
                .officer_login(id.as_str(), None)
                .await
                .unwrap()
                .token,
        );
    }
    tokens
}

/// The entry a stored message is in the model, or `None` for what the model does not
/// have (an officer's message).
pub fn entry_of(message: &Message, officers: &HashMap<String, u8>) -> Option<Entry> {
    entry_of_parts(
        &message.sender_id,
        &message.content,
        message.event.as_ref(),
        officers,
    )
}

/// [`entry_of`] from a row's columns.
pub fn entry_of_parts(
    sender_id: &str,
    content: &str,
    event: Option<&SystemEvent>,
    officers: &HashMap<String, u8>,
) -> Option<Entry> {
    if let Some(event) = event {
        let change = match event.kind {
            ChatChange::Claimed => Change::Claimed,
            ChatChange::Assigned => Change::Assigned,
            ChatChange::Released => Change::Released,
            ChatChange::Transferred => Change::Transferred,
            ChatChange::Resolved => Change::Resolved,
            ChatChange::Reopened => Change::Reopened,
            // A creation writes no entry: one that did is not the protocol's, and the
            // replay of the trail refuses an assignment to nobody.
            _ => {
                return Some(Entry::System {
                    change: Change::Claimed,
                    officer: None,
                });
            }
        };
        return Some(Entry::System {
            change,
            officer: event
                .officer_id
                .as_ref()
                .and_then(|o| officers.get(o.as_str()).copied()),
        });
    }
    let customer: u8 = sender_id.strip_prefix('c')?.parse().ok()?;
    let n: u16 = content.strip_prefix('m')?.parse().ok()?;
    Some(Entry::Message { customer, n })
}

pub fn status_of(status: ChatStatus) -> Status {
    match status {
        ChatStatus::Pending => Status::Pending,
        ChatStatus::Assigned => Status::Assigned,
        _ => Status::Resolved,
    }
}

/// A real chat as the model's record (its whole timeline read).
pub async fn chat_rec(
    store: &Arc<dyn Store>,
    id: ChatId,
    officers: &HashMap<String, u8>,
) -> ChatRec {
    let chat = store.chat(&id).await.unwrap().expect("the chat exists");
    let messages = store
        .messages(&id, &PageQuery::after(0, 1000))
        .await
        .unwrap();
    let customer: u8 = chat.customer_id.as_str()[1..].parse().unwrap();
    ChatRec {
        customer,
        status: status_of(chat.status),
        owner: chat
            .assigned_officer_id
            .as_ref()
            .map(|o| officers[o.as_str()]),
        last_seq: u16::try_from(chat.last_seq).unwrap(),
        created_owner: None,
        log: messages
            .iter()
            .filter_map(|m| {
                entry_of(m, officers).map(|entry| Logged {
                    seq: u16::try_from(m.seq).unwrap(),
                    entry,
                })
            })
            .collect(),
    }
}

/// One real service driven by the model's operations.
pub struct World {
    pub service: ChatService,
    pub store: Arc<dyn Store>,
    pub model: Protocol,
    /// The model's chats' real ids, in creation order.
    pub chats: Vec<ChatId>,
    /// The officer each of those chats was created with (the store keeps no record of
    /// it: a chat created theirs has no system entry).
    created_owners: Vec<Option<u8>>,
    /// Each customer's identity, once logged in.
    pub customers: Vec<Option<Actor>>,
    /// Officers' tokens and live connections.
    pub tokens: Vec<String>,
    pub live: Vec<Option<LiveSession>>,
    /// Messages the service acknowledged: (chat index, number).
    pub acked: Vec<Vec<(ChatIx, u16)>>,
    officer_ix: HashMap<String, u8>,
}

impl World {
    /// The model's officers on `service`, each connected if the model starts so.
    pub async fn new(service: ChatService, model: Protocol) -> Self {
        let store = service.store().clone();
        let tokens = add_officers(&service, &model.cfg.capacities).await;
        let mut live = Vec::new();
        for token in &tokens {
            live.push(if model.cfg.start_connected {
                Some(service.open_live_session(token).await.unwrap())
            } else {
                None
            });
        }
        let officer_ix = (0..model.cfg.officers())
            .map(|o| (officer_id(o).to_string(), o))
            .collect();
        Self {
            service,
            store,
            customers: vec![None; model.cfg.customers as usize],
            acked: vec![Vec::new(); model.cfg.customers as usize],
            model,
            chats: Vec::new(),
            created_owners: Vec::new(),
            tokens,
            live,
            officer_ix,
        }
    }

    /// Runs `op` on the real service, as the model's `before` state names things.
    pub async fn apply(&mut self, before: &ModelState, op: Op) {
        let service = &self.service;
        match op {
            Op::Login(c) | Op::LoginWith(c, _) => {
                let session = service
                    .customer_login(CustomerLogin {
                        customer_id: customer_id(c),
                        officer_id: match op {
                            Op::LoginWith(_, o) => Some(officer_id(o)),
                            _ => None,
                        },
                        signature: None,
                    })
                    .await
                    .unwrap();
                if session.created {
                    self.chats.push(session.chat.id);
                    // Created theirs, or pending and then routed (the answer says where
                    // it is now): routing cannot give it to the officer named, who had
                    // no room, on this one node where nothing runs at once.
                    let owner = session.chat.assigned_officer_id.as_ref();
                    let owner = owner.map(|o| self.officer_ix[o.as_str()]);
                    self.created_owners.push(match op {
                        Op::LoginWith(_, named) if owner == Some(named) => owner,
                        _ => None,
                    });
                }
                self.customers[c as usize] = Some(Actor::Customer {
                    customer_id: customer_id(c),
                    chat_id: session.chat.id,
                });
            }
            Op::Send(c) => {
                let n = before.customers[c as usize].sent + 1;
                let chat = before.customers[c as usize].chat.expect("logged in");
                let actor = self.customers[c as usize].clone().expect("logged in");
                if service
                    .send_message(
                        &actor,
                        self.chats[chat as usize],
                        SendMessage::text(format!("m{n}")),
                    )
                    .await
                    .is_ok()
                {
                    self.acked[c as usize].push((chat, n));
                }
            }
            Op::Change(intent) => {
                let chat = self.chats[intent.chat as usize];
                let actor = match intent.who {
                    Who::Customer(c) => self.customers[c as usize].clone().expect("logged in"),
                    Who::Officer(o) => Actor::Officer(officer_id(o)),
                };
                let me = match intent.who {
                    Who::Officer(o) => officer_id(o),
                    Who::Customer(_) => officer_id(0),
                };
                // Refusals (at capacity, another open chat) are answers like any other:
                // the states compared afterwards say whether they were the model's.
                let _ = match intent.what {
                    What::Claim => service.claim(&actor, &me, chat).await,
                    What::Release => service.release(&actor, chat).await,
                    What::Transfer(to) => service.transfer(&actor, chat, &officer_id(to)).await,
                    What::Resolve => service.resolve(&actor, chat).await,
                    What::Reopen => service.reopen(&actor, chat, None).await,
                };
            }
            Op::Away(o) | Op::Available(o) => {
                let availability = if matches!(op, Op::Away(_)) {
                    Availability::Away
                } else {
                    Availability::Available
                };
                service
                    .set_availability(&Actor::Officer(officer_id(o)), &officer_id(o), availability)
                    .await
                    .unwrap();
            }
            Op::Connect(o) => {
                self.live[o as usize] = Some(
                    service
                        .open_live_session(&self.tokens[o as usize])
                        .await
                        .unwrap(),
                );
            }
            Op::Disconnect(o) => {
                self.live[o as usize] = None;
            }
        }
    }

    /// The real store, read back as the model's state (what the model compares: chats
    /// with their timelines, officers' availability and connection, acknowledged
    /// messages), and each officer's open chats as the store counts them.
    pub async fn observe(&self) -> (ModelState, Vec<u8>) {
        let mut s = self.model.initial();
        for (&id, &created_owner) in self.chats.iter().zip(&self.created_owners) {
            let rec = chat_rec(&self.store, id, &self.officer_ix).await;
            s.store.chats.push(ChatRec {
                created_owner,
                ..rec
            });
        }
        let officers = self.store.officers().await.unwrap();
        let mut open = vec![0; officers.len()];
        for officer in officers {
            let o = self.officer_ix[officer.id.as_str()];
            s.store.officers[o as usize] = OfficerRec {
                available: officer.availability == Availability::Available,
                connected: officer.connected,
            };
            open[o as usize] = u8::try_from(officer.open_chats).unwrap();
        }
        for (c, acked) in self.acked.iter().enumerate() {
            s.customers[c].acked.clone_from(acked);
        }
        (s, open)
    }
}

/// The part of a model state a real store shows: chats, officers, acknowledged
/// messages (not the order of last assignments, nor anything in flight).
type Visible = (Vec<ChatRec>, Vec<OfficerRec>, Vec<Vec<(ChatIx, u16)>>);

pub fn visible(s: &ModelState) -> Visible {
    (
        s.store.chats.clone(),
        s.store.officers.clone(),
        s.customers.iter().map(|c| c.acked.clone()).collect(),
    )
}

/// A small deterministic generator (splitmix64): a failing run is replayed from its
/// seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// How long a state may take to settle after an operation: the desk writes presence
/// and runs rounds on its own task, and its sweep runs every 2 s.
pub const SETTLE: Duration = Duration::from_secs(6);

/// Drives `world` through `steps` random operations the model allows, from `seed`,
/// and after each compares the real store with the model's prediction (waiting for the
/// desk's task to settle); panics with the run so far on the first difference.
pub async fn drive(world: &mut World, seed: u64, steps: usize) {
    let model = world.model.clone();
    let mut state = model.initial();
    state.budget = u8::MAX;
    let mut history: Vec<Op> = Vec::new();
    settle(world, &state, &history, seed).await;
    let mut rng = Rng::new(seed);
    for _ in 0..steps {
        let ops = model.ops(&state);
        let op = ops[rng.below(ops.len())];
        history.push(op);
        let expected = model.run(&state, op);
        world.apply(&state, op).await;
        settle(world, &expected, &history, seed).await;
        state = expected;
    }
    println!(
        "seed {seed}: {steps} operations, then {}",
        chat_model::check::describe(&model, &state)
    );
}

async fn settle(world: &World, expected: &ModelState, history: &[Op], seed: u64) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let (real, open) = world.observe().await;
        let counted: Vec<u8> = (0..world.model.cfg.officers())
            .map(|o| expected.store.open_chats(o))
            .collect();
        if visible(&real) == visible(expected) && open == counted {
            let broken = chat_model::props::violations(&world.model, &real);
            assert!(
                broken.is_empty(),
                "seed {seed}: {broken:?} after {history:?}"
            );
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "seed {seed}: the real state differs from the model's after {history:?}\n\
                 model: {}\nreal:  {}\nopen chats counted by the store: {open:?}\n\
                 model's chats: {:?}\nreal chats:    {:?}",
                chat_model::check::describe(&world.model, expected),
                chat_model::check::describe(&world.model, &real),
                expected.store.chats,
                real.store.chats
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
