//! The store conformance suite: the behaviour every [`Store`] implementation must have,
//! written once and run against each backend (SQLite and memory here; PostgreSQL and
//! embedders' own stores elsewhere).
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! chatcore::conformance::run_all(|| async {
//!     Arc::new(chatcore::MemoryStore::new()) as Arc<dyn chatcore::Store>
//! })
//! .await;
//! # }
//! ```
//!
//! Each case gets a fresh, empty store from the factory and panics with the case's name
//! on the first violation. Run it on a multi-threaded tokio runtime so that the race
//! cases really race.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::ids::{ChatId, CustomerId, MessageId, OfficerId};
use crate::model::{ChatStatus, Officer, SenderType, Timestamp};
use crate::store::{
    AppendOutcome, ClaimOutcome, NewChat, NewMessage, OfficerRecord, PageQuery, SessionRecord,
    SessionSubject, Store, StoreError, TokenHash,
};

/// A boxed case body.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One named conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name.
    pub name: &'static str,
    /// Runs the case on an empty store.
    pub run: fn(Arc<dyn Store>) -> CaseFuture,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case of the suite.
        pub const CASES: &[Case] = &[$(Case { name: stringify!($name), run: |s| Box::pin($name(s)) }),*];
    };
}

cases!(
    officers_are_stored_unique_and_listed_by_id,
    one_chat_per_customer,
    concurrent_logins_of_one_customer_make_one_chat,
    chat_created_for_an_officer_is_assigned,
    a_customers_name_is_kept_and_replaced_only_by_a_new_one,
    queue_is_pending_chats_oldest_first,
    claim_outcomes,
    claim_race_has_exactly_one_winner_per_chat,
    officer_chats_are_theirs_oldest_first,
    seq_is_dense_for_sequential_appends,
    seq_is_dense_under_concurrent_appends,
    client_message_id_is_idempotent_per_sender_and_chat,
    pages_respect_bounds_and_limit,
    pages_stop_at_their_byte_cap,
    sessions_are_stored_found_deleted_and_purged,
    disabling_an_officer_revokes_their_sessions_and_refuses_new_ones,
    a_login_racing_a_disable_leaves_no_session_behind,
    ping_succeeds_on_an_open_store,
);

/// Runs every case, each on a fresh store from `make_store`.
pub async fn run_all<F, Fut>(make_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    for case in CASES {
        let store = make_store().await;
        tracing::info!(case = case.name, "store conformance case");
        let handle = tokio::spawn((case.run)(store.clone()));
        if let Err(e) = handle.await {
            panic!("store conformance case `{}` failed: {e}", case.name);
        }
        let _ = store.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn t(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + ms)
}

fn oid(s: &str) -> OfficerId {
    OfficerId::parse(s).expect("valid officer id")
}

fn cid(s: &str) -> CustomerId {
    CustomerId::parse(s).expect("valid customer id")
}

async fn add_officer(store: &Arc<dyn Store>, id: &str) -> OfficerId {
    let record = OfficerRecord {
        officer: Officer {
            id: oid(id),
            display_name: None,
            created_at: t(0),
            disabled: false,
        },
        password_hash: None,
    };
    store.create_officer(&record).await.expect("create officer");
    record.officer.id
}

async fn add_chat(store: &Arc<dyn Store>, customer: &str, at: i64) -> ChatId {
    let (chat, created) = store
        .get_or_create_chat(&NewChat {
            id: ChatId::new(),
            customer_id: cid(customer),
            customer_name: None,
            assigned_officer_id: None,
            created_at: t(at),
        })
        .await
        .expect("create chat");
    assert!(created, "chat for {customer} was not new");
    chat.id
}

fn msg(
    chat: ChatId,
    sender: SenderType,
    sender_id: &str,
    text: &str,
    key: Option<&str>,
) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        chat_id: chat,
        sender_type: sender,
        sender_id: sender_id.to_string(),
        content: text.to_string(),
        client_message_id: key.map(str::to_string),
        created_at: t(1),
    }
}

async fn append(store: &Arc<dyn Store>, m: NewMessage) -> AppendOutcome {
    store.append_message(&m).await.expect("append")
}

fn seqs(messages: &[crate::model::Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

// ---------------------------------------------------------------------------------------
// Cases.

async fn officers_are_stored_unique_and_listed_by_id(store: Arc<dyn Store>) {
    let record = OfficerRecord {
        officer: Officer {
            id: oid("zoe"),
            display_name: Some("Zoë".into()),
            created_at: t(5),
            disabled: false,
        },
        password_hash: Some("$argon2id$fake".into()),
    };
    store.create_officer(&record).await.expect("create");
    assert_eq!(
        store.officer(&oid("zoe")).await.expect("get"),
        Some(record.clone())
    );
    assert!(store.officer(&oid("nobody")).await.expect("get").is_none());
    let dup = store.create_officer(&record).await;
    assert!(
        matches!(dup, Err(StoreError::Duplicate)),
        "duplicate id accepted: {dup:?}"
    );
    add_officer(&store, "adam").await;
    let ids: Vec<String> = store
        .officers()
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.id.to_string())
        .collect();
    assert_eq!(ids, ["adam", "zoe"]);
}

async fn one_chat_per_customer(store: Arc<dyn Store>) {
    let first = NewChat {
        id: ChatId::new(),
        customer_id: cid("c1"),
        customer_name: None,
        assigned_officer_id: None,
        created_at: t(10),
    };
    let (chat, created) = store.get_or_create_chat(&first).await.expect("create");
    assert!(created);
    assert_eq!(chat.id, first.id);
    assert_eq!(chat.status, ChatStatus::Pending);
    assert_eq!(chat.assigned_officer_id, None);
    assert_eq!(chat.created_at, t(10));
    let again = NewChat {
        id: ChatId::new(),
        created_at: t(20),
        ..first.clone()
    };
    let (same, created) = store.get_or_create_chat(&again).await.expect("again");
    assert!(!created);
    assert_eq!(same, chat);
    assert_eq!(store.chat(&chat.id).await.expect("get"), Some(chat));
    assert!(store.chat(&again.id).await.expect("get").is_none());
}

async fn concurrent_logins_of_one_customer_make_one_chat(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .get_or_create_chat(&NewChat {
                        id: ChatId::new(),
                        customer_id: cid("same-customer"),
                        customer_name: None,
                        assigned_officer_id: None,
                        created_at: t(i),
                    })
                    .await
                    .expect("get or create")
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (chat, was_created) = task.await.expect("task");
        ids.insert(chat.id);
        created += usize::from(was_created);
    }
    assert_eq!(ids.len(), 1, "one customer got several chats");
    assert_eq!(created, 1, "`created` reported {created} times");
    assert_eq!(store.pending_chats(100).await.expect("queue").len(), 1);
}

async fn chat_created_for_an_officer_is_assigned(store: Arc<dyn Store>) {
    let bob = add_officer(&store, "bob").await;
    let (chat, created) = store
        .get_or_create_chat(&NewChat {
            id: ChatId::new(),
            customer_id: cid("c-assigned"),
            customer_name: None,
            assigned_officer_id: Some(bob.clone()),
            created_at: t(1),
        })
        .await
        .expect("create");
    assert!(created);
    assert_eq!(chat.status, ChatStatus::Assigned);
    assert_eq!(chat.assigned_officer_id, Some(bob.clone()));
    assert!(store.pending_chats(10).await.expect("queue").is_empty());
    assert_eq!(
        store.officer_chats(&bob, 10).await.expect("chats"),
        vec![chat]
    );
}

async fn a_customers_name_is_kept_and_replaced_only_by_a_new_one(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let login = |name: Option<&str>| NewChat {
        id: ChatId::new(),
        customer_id: cid("named"),
        customer_name: name.map(str::to_string),
        assigned_officer_id: None,
        created_at: t(1),
    };
    let (chat, _) = store
        .get_or_create_chat(&login(Some("Ada Lovelace")))
        .await
        .expect("create");
    assert_eq!(chat.customer_name.as_deref(), Some("Ada Lovelace"));
    let (kept, _) = store.get_or_create_chat(&login(None)).await.expect("again");
    assert_eq!(kept, chat, "a login without a name changed the chat");
    let (renamed, created) = store
        .get_or_create_chat(&login(Some("Ada King")))
        .await
        .expect("rename");
    assert!(!created);
    assert_eq!(
        (renamed.id, renamed.customer_name.as_deref()),
        (chat.id, Some("Ada King"))
    );
    // Every read of the chat carries the name.
    assert_eq!(
        store.chat(&chat.id).await.expect("get"),
        Some(renamed.clone())
    );
    assert_eq!(
        store.pending_chats(10).await.expect("queue"),
        vec![renamed.clone()]
    );
    let ClaimOutcome::Claimed(claimed) = store.claim_chat(&chat.id, &amy).await.expect("claim")
    else {
        panic!("the pending chat was not claimed");
    };
    assert_eq!(claimed.customer_name.as_deref(), Some("Ada King"));
    assert_eq!(
        store.officer_chats(&amy, 10).await.expect("chats"),
        vec![claimed]
    );
}

async fn queue_is_pending_chats_oldest_first(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    // Created out of order; two share a timestamp (then the id orders them).
    let c3 = add_chat(&store, "c3", 300).await;
    let c1 = add_chat(&store, "c1", 100).await;
    let c2a = add_chat(&store, "c2a", 200).await;
    let c2b = add_chat(&store, "c2b", 200).await;
    let (lo, hi) = if c2a < c2b { (c2a, c2b) } else { (c2b, c2a) };
    let queue: Vec<ChatId> = store
        .pending_chats(100)
        .await
        .expect("queue")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(queue, vec![c1, lo, hi, c3]);
    let limited = store.pending_chats(2).await.expect("queue");
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].id, c1);
    store.claim_chat(&c1, &amy).await.expect("claim");
    let queue: Vec<ChatId> = store
        .pending_chats(100)
        .await
        .expect("queue")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        queue,
        vec![lo, hi, c3],
        "a claimed chat stayed in the queue"
    );
}

async fn claim_outcomes(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    let chat = add_chat(&store, "c", 1).await;
    match store.claim_chat(&chat, &amy).await.expect("claim") {
        ClaimOutcome::Claimed(c) => {
            assert_eq!(c.assigned_officer_id, Some(amy.clone()));
            assert_eq!(c.status, ChatStatus::Assigned);
        }
        other => panic!("expected Claimed, got {other:?}"),
    }
    assert!(matches!(
        store.claim_chat(&chat, &amy).await.expect("again"),
        ClaimOutcome::AlreadyOwned(c) if c.assigned_officer_id == Some(amy.clone())
    ));
    assert!(matches!(
        store.claim_chat(&chat, &ben).await.expect("other"),
        ClaimOutcome::TakenByOther(c) if c.assigned_officer_id == Some(amy.clone())
    ));
    assert_eq!(
        store
            .claim_chat(&ChatId::new(), &ben)
            .await
            .expect("missing"),
        ClaimOutcome::NotFound
    );
    let stored = store.chat(&chat).await.expect("get").expect("exists");
    assert_eq!(stored.assigned_officer_id, Some(amy));
}

async fn claim_race_has_exactly_one_winner_per_chat(store: Arc<dyn Store>) {
    const OFFICERS: usize = 32;
    const CHATS: usize = 200;
    let mut officers = Vec::new();
    for i in 0..OFFICERS {
        officers.push(add_officer(&store, &format!("o{i}")).await);
    }
    let mut chats = Vec::new();
    for i in 0..CHATS {
        chats.push(add_chat(&store, &format!("c{i}"), i as i64).await);
    }
    let chats = Arc::new(chats);
    let tasks: Vec<_> = officers
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, officer)| {
            let (store, chats) = (store.clone(), chats.clone());
            tokio::spawn(async move {
                let mut won = Vec::new();
                // Each officer walks the chats from a different start, so they collide.
                for k in 0..CHATS {
                    let chat = chats[(i * 7 + k) % CHATS];
                    match store.claim_chat(&chat, &officer).await.expect("claim") {
                        ClaimOutcome::Claimed(_) => won.push(chat),
                        ClaimOutcome::TakenByOther(_) => {}
                        other => panic!("unexpected claim outcome {other:?}"),
                    }
                }
                (officer, won)
            })
        })
        .collect();
    let mut winner: HashMap<ChatId, OfficerId> = HashMap::new();
    for task in tasks {
        let (officer, won) = task.await.expect("task");
        for chat in won {
            if let Some(prev) = winner.insert(chat, officer.clone()) {
                panic!("chat {chat} won by both {prev} and {officer}");
            }
        }
    }
    assert_eq!(winner.len(), CHATS, "some chat had no winner");
    for (chat, officer) in &winner {
        let stored = store.chat(chat).await.expect("get").expect("exists");
        assert_eq!(stored.assigned_officer_id.as_ref(), Some(officer));
    }
    assert!(store.pending_chats(1000).await.expect("queue").is_empty());
}

async fn officer_chats_are_theirs_oldest_first(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    let late = add_chat(&store, "late", 50).await;
    let early = add_chat(&store, "early", 10).await;
    let bens = add_chat(&store, "bens", 20).await;
    for (chat, officer) in [(late, &amy), (early, &amy), (bens, &ben)] {
        store.claim_chat(&chat, officer).await.expect("claim");
    }
    let ids: Vec<ChatId> = store
        .officer_chats(&amy, 100)
        .await
        .expect("chats")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![early, late]);
    assert_eq!(store.officer_chats(&amy, 1).await.expect("chats").len(), 1);
    assert!(
        store
            .officer_chats(&oid("nobody"), 100)
            .await
            .expect("chats")
            .is_empty()
    );
}

async fn seq_is_dense_for_sequential_appends(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "c", 1).await;
    let other = add_chat(&store, "other", 2).await;
    assert_eq!(store.last_seq(&chat).await.expect("last"), 0);
    for i in 1..=5u64 {
        let AppendOutcome::Created(m) = append(
            &store,
            msg(chat, SenderType::Customer, "c", &format!("m{i}"), None),
        )
        .await
        else {
            panic!("not created");
        };
        assert_eq!(m.seq, i);
        assert_eq!(m.content, format!("m{i}"));
    }
    // Another chat counts from 1 on its own.
    let AppendOutcome::Created(m) =
        append(&store, msg(other, SenderType::Customer, "other", "x", None)).await
    else {
        panic!("not created");
    };
    assert_eq!(m.seq, 1);
    assert_eq!(store.last_seq(&chat).await.expect("last"), 5);
    let all = store
        .messages(
            &chat,
            &PageQuery {
                after: None,
                before: None,
                limit: 100,
                max_bytes: usize::MAX,
            },
        )
        .await
        .expect("page");
    assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5]);
    assert_eq!(all[0].sender_type, SenderType::Customer);
    assert_eq!(all[0].sender_id, "c");
    assert_eq!(all[0].created_at, t(1));
}

async fn seq_is_dense_under_concurrent_appends(store: Arc<dyn Store>) {
    const TASKS: usize = 32;
    const EACH: usize = 20;
    let chat = add_chat(&store, "busy", 1).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for k in 0..EACH {
                    let m = msg(
                        chat,
                        SenderType::Customer,
                        "busy",
                        &format!("{i}-{k}"),
                        None,
                    );
                    match store.append_message(&m).await.expect("append") {
                        AppendOutcome::Created(m) => got.push(m.seq),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(TASKS * EACH) as u64).collect();
    assert_eq!(all, expected, "acknowledged seqs are not exactly 1..N");
    let stored = store
        .messages(
            &chat,
            &PageQuery {
                after: None,
                before: None,
                limit: 1000,
                max_bytes: usize::MAX,
            },
        )
        .await
        .expect("page");
    assert_eq!(seqs(&stored), expected, "stored seqs are not exactly 1..N");
}

async fn client_message_id_is_idempotent_per_sender_and_chat(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let chat = add_chat(&store, "c", 1).await;
    let other = add_chat(&store, "d", 2).await;
    store.claim_chat(&chat, &amy).await.expect("claim");
    let AppendOutcome::Created(original) = append(
        &store,
        msg(chat, SenderType::Customer, "c", "hello", Some("k1")),
    )
    .await
    else {
        panic!("first send not created");
    };
    assert_eq!(original.client_message_id.as_deref(), Some("k1"));
    // A retry, even with other text, returns the original and stores nothing.
    let again = append(
        &store,
        msg(chat, SenderType::Customer, "c", "hello again", Some("k1")),
    )
    .await;
    assert_eq!(again, AppendOutcome::Duplicate(original.clone()));
    // The same key from another sender, or in another chat, is another message.
    let AppendOutcome::Created(officers) = append(
        &store,
        msg(chat, SenderType::Officer, "amy", "hi", Some("k1")),
    )
    .await
    else {
        panic!("officer's message with the same key was not stored");
    };
    assert_eq!(officers.seq, 2);
    assert!(matches!(
        append(
            &store,
            msg(other, SenderType::Customer, "d", "x", Some("k1"))
        )
        .await,
        AppendOutcome::Created(_)
    ));
    assert_eq!(store.last_seq(&chat).await.expect("last"), 2);
}

async fn pages_respect_bounds_and_limit(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "c", 1).await;
    for i in 1..=10 {
        append(
            &store,
            msg(chat, SenderType::Customer, "c", &format!("m{i}"), None),
        )
        .await;
    }
    let page = |after: Option<u64>, before: Option<u64>, limit: u32| {
        let store = store.clone();
        async move {
            seqs(
                &store
                    .messages(
                        &chat,
                        &PageQuery {
                            after,
                            before,
                            limit,
                            max_bytes: usize::MAX,
                        },
                    )
                    .await
                    .expect("page"),
            )
        }
    };
    assert_eq!(page(None, None, 3).await, vec![1, 2, 3]);
    assert_eq!(page(Some(3), None, 3).await, vec![4, 5, 6]);
    assert_eq!(page(Some(8), None, 100).await, vec![9, 10]);
    assert_eq!(page(Some(10), None, 100).await, Vec::<u64>::new());
    assert_eq!(page(Some(99), None, 100).await, Vec::<u64>::new());
    // With `before`: the newest `limit` below it, still ascending.
    assert_eq!(page(None, Some(8), 3).await, vec![5, 6, 7]);
    assert_eq!(page(None, Some(3), 10).await, vec![1, 2]);
    assert_eq!(page(None, Some(1), 10).await, Vec::<u64>::new());
    assert_eq!(page(None, Some(99), 2).await, vec![9, 10]);
    assert_eq!(page(Some(4), Some(8), 10).await, vec![5, 6, 7]);
    assert_eq!(page(Some(4), Some(8), 2).await, vec![6, 7]);
    assert_eq!(page(Some(6), Some(5), 10).await, Vec::<u64>::new());
    assert_eq!(page(Some(u64::MAX), None, 10).await, Vec::<u64>::new());
    assert_eq!(page(None, Some(u64::MAX), 1).await, vec![10]);
    // A chat with no messages, and one that does not exist, have empty pages.
    let empty = add_chat(&store, "e", 2).await;
    let q = PageQuery {
        after: None,
        before: None,
        limit: 10,
        max_bytes: usize::MAX,
    };
    assert!(store.messages(&empty, &q).await.expect("page").is_empty());
    assert!(
        store
            .messages(&ChatId::new(), &q)
            .await
            .expect("page")
            .is_empty()
    );
}

async fn pages_stop_at_their_byte_cap(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "c", 1).await;
    // Nine messages of one size each (one-digit seqs, contents of equal length).
    for i in 0..9 {
        append(
            &store,
            msg(
                chat,
                SenderType::Customer,
                "c",
                &format!("message-{i}"),
                None,
            ),
        )
        .await;
    }
    let all = store
        .messages(&chat, &PageQuery::after(0, 100))
        .await
        .expect("page");
    let size = all[0].json_len();
    assert!(all.iter().all(|m| m.json_len() == size));
    let page = |after: Option<u64>, before: Option<u64>, max_bytes: usize| {
        let store = store.clone();
        async move {
            let q = PageQuery {
                after,
                before,
                limit: 100,
                max_bytes,
            };
            seqs(&store.messages(&chat, &q).await.expect("page"))
        }
    };
    // Exactly three fit; one byte less and only two do.
    assert_eq!(page(None, None, 3 * size).await, vec![1, 2, 3]);
    assert_eq!(page(None, None, 3 * size - 1).await, vec![1, 2]);
    assert_eq!(page(Some(7), None, 3 * size).await, vec![8, 9]);
    // With `before`, the newest that fit, still ascending.
    assert_eq!(page(None, Some(9), 2 * size).await, vec![7, 8]);
    // A message larger than the cap still comes, alone: a page is never empty while
    // there is something to read.
    assert_eq!(page(None, None, 1).await, vec![1]);
    assert_eq!(page(None, Some(5), 1).await, vec![4]);
    assert_eq!(page(Some(9), None, 1).await, Vec::<u64>::new());
}

async fn sessions_are_stored_found_deleted_and_purged(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let chat = add_chat(&store, "c", 1).await;
    let officer = SessionRecord {
        token_hash: TokenHash([1; 32]),
        subject: SessionSubject::Officer(amy),
        created_at: t(0),
        expires_at: t(1000),
    };
    let customer = SessionRecord {
        token_hash: TokenHash([2; 32]),
        subject: SessionSubject::Customer {
            customer_id: cid("c"),
            chat_id: chat,
        },
        created_at: t(0),
        expires_at: t(5000),
    };
    assert!(store.create_session(&officer).await.expect("create"));
    assert!(store.create_session(&customer).await.expect("create"));
    assert_eq!(
        store.session(&officer.token_hash).await.expect("get"),
        Some(officer.clone())
    );
    assert_eq!(
        store.session(&customer.token_hash).await.expect("get"),
        Some(customer.clone())
    );
    assert!(
        store
            .session(&TokenHash([3; 32]))
            .await
            .expect("get")
            .is_none()
    );
    // Purging at t(1000) removes the session that expires then, keeps the later one.
    assert_eq!(
        store.purge_expired_sessions(t(1000)).await.expect("purge"),
        1
    );
    assert!(
        store
            .session(&officer.token_hash)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .delete_session(&customer.token_hash)
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_session(&customer.token_hash)
            .await
            .expect("delete")
    );
    assert!(
        store
            .session(&customer.token_hash)
            .await
            .expect("get")
            .is_none()
    );
}

fn officer_session(officer: &OfficerId, n: u8) -> SessionRecord {
    SessionRecord {
        token_hash: TokenHash([n; 32]),
        subject: SessionSubject::Officer(officer.clone()),
        created_at: t(0),
        expires_at: t(1_000_000),
    }
}

async fn disabling_an_officer_revokes_their_sessions_and_refuses_new_ones(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let bob = add_officer(&store, "bob").await;
    let chat = add_chat(&store, "c", 1).await;
    for session in [officer_session(&amy, 1), officer_session(&amy, 2)] {
        assert!(store.create_session(&session).await.expect("create"));
    }
    assert!(
        store
            .create_session(&officer_session(&bob, 3))
            .await
            .expect("create")
    );
    let customer = SessionRecord {
        token_hash: TokenHash([4; 32]),
        subject: SessionSubject::Customer {
            customer_id: cid("c"),
            chat_id: chat,
        },
        created_at: t(0),
        expires_at: t(1_000_000),
    };
    assert!(store.create_session(&customer).await.expect("create"));

    let (officer, mut revoked) = store
        .set_officer_disabled(&amy, true)
        .await
        .expect("disable")
        .expect("amy exists");
    assert!(officer.disabled);
    revoked.sort_by_key(|h| h.0);
    assert_eq!(revoked, vec![TokenHash([1; 32]), TokenHash([2; 32])]);
    for n in [1, 2] {
        assert!(
            store
                .session(&TokenHash([n; 32]))
                .await
                .expect("get")
                .is_none()
        );
    }
    for n in [3, 4] {
        assert!(
            store
                .session(&TokenHash([n; 32]))
                .await
                .expect("get")
                .is_some(),
            "another subject's session was revoked"
        );
    }
    let stored = store.officer(&amy).await.expect("get").expect("amy");
    assert!(stored.officer.disabled);
    assert!(
        !store
            .create_session(&officer_session(&amy, 5))
            .await
            .expect("create"),
        "a disabled officer got a session"
    );
    assert!(
        !store
            .create_session(&officer_session(&oid("nobody"), 6))
            .await
            .expect("create"),
        "an unknown officer got a session"
    );
    // Disabling again revokes nothing more; enabling lets the officer in again.
    let (_, again) = store
        .set_officer_disabled(&amy, true)
        .await
        .expect("disable")
        .expect("amy");
    assert!(again.is_empty());
    let (officer, none) = store
        .set_officer_disabled(&amy, false)
        .await
        .expect("enable")
        .expect("amy");
    assert!(!officer.disabled && none.is_empty());
    assert!(
        store
            .create_session(&officer_session(&amy, 7))
            .await
            .expect("create")
    );
    assert!(
        store
            .set_officer_disabled(&oid("nobody"), true)
            .await
            .expect("disable")
            .is_none()
    );
}

async fn a_login_racing_a_disable_leaves_no_session_behind(store: Arc<dyn Store>) {
    // Sessions are created while the officer is disabled: every session that was
    // stored must be among those the disable revoked, and none may be left.
    for round in 0..5u8 {
        let amy = add_officer(&store, &format!("amy{round}")).await;
        let logins: Vec<_> = (0..24u8)
            .map(|n| {
                let (store, amy) = (store.clone(), amy.clone());
                tokio::spawn(async move {
                    let session = officer_session(&amy, round * 32 + n + 1);
                    let stored = store.create_session(&session).await.expect("create");
                    (session.token_hash, stored)
                })
            })
            .collect();
        let disable = {
            let (store, amy) = (store.clone(), amy.clone());
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                store.set_officer_disabled(&amy, true).await
            })
        };
        let mut stored = Vec::new();
        for login in logins {
            let (hash, ok) = login.await.expect("login task");
            if ok {
                stored.push(hash);
            }
        }
        let (_, mut revoked) = disable
            .await
            .expect("disable task")
            .expect("disable")
            .expect("officer");
        stored.sort_by_key(|h| h.0);
        revoked.sort_by_key(|h| h.0);
        assert_eq!(
            stored, revoked,
            "round {round}: a stored session was not revoked"
        );
        for hash in &stored {
            assert!(
                store.session(hash).await.expect("get").is_none(),
                "round {round}: a session of a disabled officer is left"
            );
        }
    }
}

async fn ping_succeeds_on_an_open_store(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}
