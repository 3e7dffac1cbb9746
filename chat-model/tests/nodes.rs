//! Two nodes (two `ChatService`s, each with its own `PgStore` pool and `PgBus`) over
//! one PostgreSQL database, automatic assignment on both, and every actor of the model
//! at once: customers logging in (some naming an officer, who gets the new chat if they
//! have room), sending and ending their chats, officers claiming,
//! releasing, transferring, resolving, reopening, going away and coming back,
//! connecting and disconnecting, each request on either node. While they run, the
//! database is read in one snapshot (a repeatable-read transaction) every few
//! milliseconds and read back as the model's state: it must keep every invariant the
//! checker proves of the model. Once they stop, no chat may wait while an officer is
//! eligible, and every acknowledged message is in its chat.
//!
//! Needs PostgreSQL (`chat_postgres::testing`); under `CI` it must be there.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_model::state::{Change, ChatRec, Entry, Logged, OfficerRec, State as ModelState};
use chat_model::{ModelConfig, Protocol};
use chat_postgres::testing::TestDatabase;
use chat_postgres::{PgBus, PgOptions, PgStore};
use chatcore::{
    Actor, Availability, ChatId, ChatService, ChatStatus, ChatsFilter, CustomerLogin, ErrorKind,
    LiveSession, SendMessage, Store, SystemClock, SystemEvent,
};
use support::{Rng, add_officers, customer_id, entry_of_parts, officer_id};

const CAPACITIES: [u8; 3] = [1, 1, 2];
const CUSTOMERS: u8 = 3;
/// Operations per actor.
const OPS: usize = 60;

/// Acknowledged messages: (customer, chat, number).
type Acked = Arc<Mutex<Vec<(u8, ChatId, u16)>>>;

/// Where the trails of chats created for an officer (a login that named one with room)
/// start, which the database does not keep.
#[derive(Default)]
struct Named {
    /// The officer each such chat was created for, once its login answered.
    created_for: HashMap<ChatId, u8>,
    /// The officer each customer's login in flight names.
    in_flight: HashMap<u8, u8>,
}

type CreatedFor = Arc<Mutex<Named>>;

fn model() -> Protocol {
    Protocol::new(ModelConfig {
        capacities: CAPACITIES.to_vec(),
        customers: CUSTOMERS,
        max_chats: u8::MAX,
        ..ModelConfig::small(0)
    })
}

async fn node(config: &tokio_postgres::Config) -> ChatService {
    let store: Arc<dyn Store> = Arc::new(
        PgStore::connect_with(
            config.clone(),
            PgOptions {
                pool_size: 8,
                ..PgOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let bus = PgBus::connect_with(config.clone(), store.clone(), 1024)
        .await
        .unwrap();
    ChatService::new(store, Arc::new(bus), support::config(Arc::new(SystemClock)))
}

/// A refusal is an answer; anything else (a store failure, an internal error) fails.
fn expected<T>(result: chatcore::Result<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::Forbidden) => None,
        Err(e) => panic!("unexpected failure: {e:?}"),
    }
}

async fn customer(
    nodes: Arc<Vec<ChatService>>,
    c: u8,
    acked: Acked,
    created_for: CreatedFor,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut me: Option<(Actor, ChatId)> = None;
    let mut sent = 0u16;
    for _ in 0..OPS {
        let service = &nodes[rng.below(nodes.len())];
        // Mostly sends; a login or an end now and then.
        match (rng.below(8), &me) {
            (0, _) | (_, None) => {
                // Half the logins name an officer.
                let named = (rng.below(2) == 0).then(|| rng.below(CAPACITIES.len()) as u8);
                if let Some(o) = named {
                    created_for.lock().unwrap().in_flight.insert(c, o);
                }
                let session = service
                    .customer_login(CustomerLogin {
                        customer_id: customer_id(c),
                        officer_id: named.map(officer_id),
                        signature: None,
                    })
                    .await
                    .unwrap();
                // Created for the officer named: theirs, with nothing in its trail yet
                // (a chat created pending and then assigned has the assignment's entry;
                // the answer of a new chat created assigned is the chat as created).
                let chat = &session.chat;
                if let Some(o) = named {
                    let mut named = created_for.lock().unwrap();
                    if session.created
                        && chat.assigned_officer_id == Some(officer_id(o))
                        && chat.last_seq == 0
                    {
                        named.created_for.insert(chat.id, o);
                    }
                    named.in_flight.remove(&c);
                }
                me = Some((
                    Actor::Customer {
                        customer_id: customer_id(c),
                        chat_id: session.chat.id,
                    },
                    session.chat.id,
                ));
            }
            (1, Some((actor, chat))) => {
                expected(service.resolve(actor, *chat).await);
            }
            (_, Some((actor, chat))) => {
                sent += 1;
                let answer = service
                    .send_message(actor, *chat, SendMessage::text(format!("m{sent}")))
                    .await;
                if expected(answer).is_some() {
                    acked.lock().unwrap().push((c, *chat, sent));
                }
            }
        }
    }
}

async fn officer(nodes: Arc<Vec<ChatService>>, o: u8, token: String, seed: u64) -> LiveSession {
    let mut rng = Rng::new(seed);
    let me = officer_id(o);
    let actor = Actor::Officer(me.clone());
    let home = &nodes[usize::from(o) % nodes.len()];
    let mut live: Option<LiveSession> = Some(home.open_live_session(&token).await.unwrap());
    let mut available = true;
    for _ in 0..OPS {
        let service = &nodes[rng.below(nodes.len())];
        let mine = service
            .officer_chats(&actor, &me, ChatsFilter::Open)
            .await
            .unwrap();
        match rng.below(10) {
            0..=2 => {
                let queue = service.queue(&actor).await.unwrap();
                if !queue.is_empty() {
                    let chat = queue[rng.below(queue.len())].id;
                    expected(service.claim(&actor, &me, chat).await);
                }
            }
            3 if !mine.is_empty() => {
                expected(
                    service
                        .release(&actor, mine[rng.below(mine.len())].id)
                        .await,
                );
            }
            4 if !mine.is_empty() => {
                let to = officer_id(rng.below(CAPACITIES.len()) as u8);
                expected(
                    service
                        .transfer(&actor, mine[rng.below(mine.len())].id, &to)
                        .await,
                );
            }
            5 if !mine.is_empty() => {
                expected(
                    service
                        .resolve(&actor, mine[rng.below(mine.len())].id)
                        .await,
                );
            }
            7 => {
                let customer = customer_id(rng.below(usize::from(CUSTOMERS)) as u8);
                let ended: Vec<_> = service
                    .customer_chats(&actor, &customer)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|c| c.status == ChatStatus::Resolved)
                    .collect();
                if !ended.is_empty() {
                    let chat = ended[rng.below(ended.len())].id;
                    expected(service.reopen(&actor, chat, None).await);
                }
            }
            8 => {
                available = !available;
                let availability = if available {
                    Availability::Available
                } else {
                    Availability::Away
                };
                service
                    .set_availability(&actor, &me, availability)
                    .await
                    .unwrap();
            }
            9 => {
                live = match live {
                    Some(_) => None,
                    None => Some(home.open_live_session(&token).await.unwrap()),
                };
            }
            _ => {}
        }
    }
    // The run ends with every officer back, so that the end shows whether the queue
    // drains to whoever has room; the connection is held until the test ends.
    if !available {
        home.set_availability(&actor, &me, Availability::Available)
            .await
            .unwrap();
    }
    match live {
        Some(live) => live,
        None => home.open_live_session(&token).await.unwrap(),
    }
}

/// The database in one snapshot, read back as the model's state (chats in creation
/// order), with the messages acknowledged before the snapshot began and the officers
/// chats were created for.
async fn snapshot(
    client: &mut tokio_postgres::Client,
    acked: &Acked,
    created_for: &CreatedFor,
) -> ModelState {
    let acked_before: Vec<(u8, ChatId, u16)> = acked.lock().unwrap().clone();
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .unwrap();
    let chats = tx
        .query(
            "SELECT id, customer_id, assigned_officer_id, status, last_seq FROM chats \
             ORDER BY created_at, id",
            &[],
        )
        .await
        .unwrap();
    let messages = tx
        .query(
            "SELECT chat_id, seq, sender_id, content, event FROM messages ORDER BY chat_id, seq",
            &[],
        )
        .await
        .unwrap();
    let officers = tx
        .query(
            "SELECT o.id, o.availability, EXISTS (SELECT 1 FROM presence p WHERE p.officer_id = o.id) \
             FROM officers o",
            &[],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Read after the snapshot: the login of a chat the snapshot holds began before it, and
    // has answered since (the chat is known) or is still in flight (its customer is; the
    // answer is recorded before the login leaves the flight).
    let (created_for, in_flight) = {
        let named = created_for.lock().unwrap();
        (named.created_for.clone(), named.in_flight.clone())
    };

    let m = model();
    let officer_ix: HashMap<String, u8> = (0..m.cfg.officers())
        .map(|o| (officer_id(o).to_string(), o))
        .collect();
    let mut s = m.initial();
    let mut chat_ix: HashMap<String, u8> = HashMap::new();
    for row in &chats {
        let id: String = row.get(0);
        let customer: String = row.get(1);
        let owner: Option<String> = row.get(2);
        let status: String = row.get(3);
        let last_seq: i64 = row.get(4);
        let customer: u8 = customer[1..].parse().unwrap();
        let owner = owner.map(|o| officer_ix[&o]);
        let created_owner = ChatId::parse(&id)
            .ok()
            .and_then(|c| created_for.get(&c).copied());
        chat_ix.insert(id, s.store.chats.len() as u8);
        s.store.chats.push(ChatRec {
            customer,
            status: support::status_of(ChatStatus::parse(&status).unwrap()),
            owner,
            last_seq: u16::try_from(last_seq).unwrap(),
            created_owner,
            log: Vec::new(),
        });
    }
    for row in &messages {
        let chat: String = row.get(0);
        let seq: i64 = row.get(1);
        let sender: String = row.get(2);
        let content: String = row.get(3);
        let event: Option<String> = row.get(4);
        let event: Option<SystemEvent> = event.map(|e| serde_json::from_str(&e).unwrap());
        if let Some(entry) = entry_of_parts(&sender, &content, event.as_ref(), &officer_ix) {
            s.store.chats[chat_ix[&chat] as usize].log.push(Logged {
                seq: u16::try_from(seq).unwrap(),
                entry,
            });
        }
    }
    // A login in flight that names an officer may have created its customer's newest
    // chat for them, and the officer may have acted on it already: it was, if its trail
    // starts with that officer releasing or ending it or with a transfer (never how a
    // chat created pending starts), or is empty and the chat is theirs.
    for (&customer, &named) in &in_flight {
        let Some(chat) = s
            .store
            .chats
            .iter_mut()
            .rev()
            .find(|chat| chat.customer == customer)
        else {
            continue;
        };
        if chat.created_owner.is_some() {
            continue;
        }
        let first = chat.log.iter().find_map(|logged| match logged.entry {
            Entry::System { change, officer } => Some((change, officer)),
            Entry::Message { .. } => None,
        });
        let created_for_named = match first {
            None => chat.owner == Some(named),
            // A transfer's entry names the officer it went to.
            Some((Change::Transferred, _)) => true,
            Some((change, officer)) => {
                officer == Some(named) && !matches!(change, Change::Claimed | Change::Assigned)
            }
        };
        if created_for_named {
            chat.created_owner = Some(named);
        }
    }
    for row in &officers {
        let id: String = row.get(0);
        let availability: String = row.get(1);
        s.store.officers[officer_ix[&id] as usize] = OfficerRec {
            available: availability == "available",
            connected: row.get(2),
        };
    }
    for (c, chat, n) in acked_before {
        // A chat the snapshot does not hold is past every index: the check fails.
        let ix = chat_ix.get(&chat.to_string()).copied().unwrap_or(u8::MAX);
        s.customers[c as usize].acked.push((ix, n));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_keep_every_invariant_under_concurrent_random_operations() {
    let Some(db) =
        TestDatabase::start("two_nodes_keep_every_invariant_under_concurrent_random_operations")
    else {
        return;
    };
    let config = db.config().clone();
    let nodes = Arc::new(vec![node(&config).await, node(&config).await]);
    let tokens = add_officers(&nodes[0], &CAPACITIES).await;
    let (mut client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let acked: Acked = Arc::default();
    let created_for: CreatedFor = Arc::default();
    let m = model();

    let customers: Vec<_> = (0..CUSTOMERS)
        .map(|c| {
            tokio::spawn(customer(
                nodes.clone(),
                c,
                acked.clone(),
                created_for.clone(),
                100 + u64::from(c),
            ))
        })
        .collect();
    let officers: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(o, token)| tokio::spawn(officer(nodes.clone(), o as u8, token, 200 + o as u64)))
        .collect();
    let mut checks = 0;
    while !(customers.iter().all(|a| a.is_finished()) && officers.iter().all(|a| a.is_finished())) {
        let s = snapshot(&mut client, &acked, &created_for).await;
        let broken = chat_model::props::violations(&m, &s);
        assert!(broken.is_empty(), "{broken:?} in {s:?}");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for customer in customers {
        customer.await.unwrap();
    }
    let mut connected = Vec::new();
    for officer in officers {
        connected.push(officer.await.unwrap());
    }
    // Settled: no chat waits while an officer could take it (the desks' rounds and
    // sweeps on both nodes), and still every invariant.
    let deadline = tokio::time::Instant::now() + support::SETTLE;
    let s = loop {
        let s = snapshot(&mut client, &acked, &created_for).await;
        if !chat_model::props::starving(&m, &s) {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a chat waits while an officer is eligible: {}",
            chat_model::check::describe(&m, &s)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let broken = chat_model::props::violations(&m, &s);
    assert!(broken.is_empty(), "{broken:?} in {s:?}");
    let acked = acked.lock().unwrap().len();
    let created_for = created_for.lock().unwrap().created_for.len();
    println!(
        "{checks} snapshots checked while running; at the end {} chats ({created_for} created \
         for the officer their login named), {acked} messages acknowledged: {}",
        s.store.chats.len(),
        chat_model::check::describe(&m, &s)
    );
    assert!(checks > 10, "the run was checked while it ran");
    assert!(
        acked > 0 && s.store.chats.len() > 3 && created_for > 0,
        "the run did something"
    );
    drop(connected);
}
