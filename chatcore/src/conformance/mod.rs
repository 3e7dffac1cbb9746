//! The store conformance suite: the behaviour every [`Store`] implementation must have,
//! written once and run against each backend (SQLite and memory here; PostgreSQL and
//! embedders' own stores elsewhere). [`blobs`] is the same for every
//! [`crate::BlobStore`].
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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub mod blobs;
mod chats;
mod lifecycle;
mod marks;
mod messages;
mod reports;
mod routing;
mod sessions;
mod webhooks;

use chats::*;
use lifecycle::*;
use marks::*;
use messages::*;
use reports::*;
use routing::*;
use sessions::*;
use webhooks::*;

use crate::ids::{ChatId, CustomerId, MessageId, OfficerId};
use crate::model::{
    Availability, ChatChange, ChatStatus, Officer, SenderType, SystemEvent, Timestamp,
};
use crate::store::{
    AppendOutcome, NewChat, NewMessage, OfficerRecord, PageQuery, SessionRecord, SessionSubject,
    Store, StoreError, TokenHash, Transition, TransitionOutcome,
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
    a_chat_created_for_a_full_officer_waits_in_the_queue,
    a_customers_name_is_kept_and_replaced_only_by_a_new_one,
    queue_is_pending_chats_oldest_first,
    a_claim_is_a_transition_from_pending,
    claim_race_has_exactly_one_winner_per_chat,
    officer_chats_by_status_newest_activity_first,
    counts_are_what_the_store_holds,
    capacity_is_checked_in_the_same_transaction,
    seq_is_dense_for_sequential_appends,
    seq_is_dense_under_concurrent_appends,
    client_message_id_is_idempotent_per_sender_and_chat,
    a_chat_knows_its_last_seq_and_when_it_changed,
    pages_respect_bounds_and_limit,
    pages_stop_at_their_byte_cap,
    attachments_are_stored_found_and_counted,
    sessions_are_stored_found_deleted_and_purged,
    disabling_an_officer_revokes_their_sessions_and_refuses_new_ones,
    a_login_racing_a_disable_leaves_no_session_behind,
    a_transition_applies_only_to_the_state_it_was_decided_on,
    a_customer_has_at_most_one_open_chat,
    racing_transitions_have_exactly_one_outcome,
    presence_is_per_node_and_dead_nodes_are_forgotten,
    eligible_officers_are_ordered_as_the_contract_says,
    an_automatic_assignment_needs_its_officer_eligible_when_it_applies,
    queue_keys_are_the_queues_order,
    read_marks_only_move_forward_and_never_past_the_end,
    entries_are_read_by_chat_and_seq,
    ping_succeeds_on_an_open_store,
    changes_write_their_webhook_events_in_the_same_operation,
    lanes_are_claimed_by_one_claimant_in_order_and_leases_expire,
    dead_deliveries_are_kept_retried_and_deleted_with_their_webhook,
    a_batchs_last_settlement_deletes_an_empty_lane_or_goes_on_with_it,
    a_chats_changes_and_messages_keep_its_order_through_failures,
    a_webhook_gets_the_messages_sent_after_it_takes_them,
    a_claimant_that_lost_its_lane_records_no_failure_in_it,
    a_chats_first_reply_is_its_first_officer_message,
    the_desk_report_counts_the_period_as_defined,
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
            availability: Availability::Available,
            capacity: None,
            open_chats: 0,
            connected: false,
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
            default_capacity: None,
            created_at: t(at),
        })
        .await
        .expect("create chat");
    assert!(created, "chat for {customer} was not new");
    chat.id
}

/// A page from a chat's first message, with no byte cap.
fn from_start(limit: u32) -> PageQuery {
    PageQuery {
        after: None,
        before: None,
        limit,
        max_bytes: usize::MAX,
    }
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
        event: None,
        decided_on: None,
        attachment: None,
    }
}

/// A transition of `chat` from (`from`, `owner`) to (`to`, `new_owner`), recorded as
/// `kind` at `t(at)`.
fn change(
    chat: ChatId,
    from: (ChatStatus, Option<&OfficerId>),
    to: (ChatStatus, Option<&OfficerId>),
    kind: ChatChange,
    at: i64,
) -> Transition {
    let mut entry = msg(chat, SenderType::System, "admin", "changed", None);
    entry.created_at = t(at);
    entry.event = Some(SystemEvent {
        kind,
        officer_id: to.1.or(from.1).cloned(),
        from_officer_id: None,
        officer_name: to.1.or(from.1).map(|o| format!("Officer {o}")),
        from_officer_name: None,
    });
    Transition {
        expected_status: from.0,
        expected_owner: from.1.cloned(),
        status: to.0,
        owner: to.1.cloned(),
        entry,
        default_capacity: None,
        only_to_eligible: false,
    }
}

async fn apply(store: &Arc<dyn Store>, t: &Transition) -> TransitionOutcome {
    store.transition(t).await.expect("transition")
}

/// `officer` claims `chat` at `t(at)` as the service does: a transition from pending to
/// theirs, with its system entry.
async fn claim(
    store: &Arc<dyn Store>,
    chat: ChatId,
    officer: &OfficerId,
    at: i64,
) -> TransitionOutcome {
    let mut took = change(
        chat,
        (ChatStatus::Pending, None),
        (ChatStatus::Assigned, Some(officer)),
        ChatChange::Claimed,
        at,
    );
    took.entry.sender_id = officer.to_string();
    apply(store, &took).await
}

async fn append(store: &Arc<dyn Store>, m: NewMessage) -> AppendOutcome {
    store.append_message(&m).await.expect("append")
}

fn seqs(messages: &[crate::model::Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}
