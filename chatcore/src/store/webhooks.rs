//! The webhooks' outbox as a store keeps it: [`WebhookStore`], a part of every
//! [`Store`](super::Store), and the records that cross it.
//!
//! Three tables in every backend, written by `transition`, `append_message` and
//! `get_or_create_chat` in the transaction of the change itself, so an event exists
//! exactly when its change does:
//! - the webhooks (url, secret, event filter);
//! - the lanes, one per (webhook, chat) with events pending, which carry the lane's
//!   next attempt, its lease, and its cursor: the last of the chat's messages it
//!   delivered. A message's event is not written anywhere else: the messages table is
//!   its log, and a lane's pending messages are those after its cursor, read (and their
//!   bodies made) when it is delivered. A send writes only its lane, which already
//!   exists while its chat's events wait;
//! - the deliveries: a row per chat change per webhook whose filter takes it, and a
//!   row for a message whose delivery failed (it has attempts, an error, maybe a death
//!   to keep), each placed in the chat's order by `after_seq` (after that message,
//!   before the next).
//!
//! A lane is what a node claims: its events go out one at a time in the chat's order,
//! while other lanes (other chats, other webhooks) go on independently. A claim is a
//! lease with an expiry: a node that dies mid-delivery leaves its lanes to whoever
//! claims after the lease. Delivered rows are deleted, and delivered messages move the
//! cursor; dead rows stay until retried or their webhook is deleted. A webhook that
//! starts taking messages (created, or its filter changed) takes those sent from then
//! on.

use async_trait::async_trait;

use super::StoreResult;
use crate::model::{Message, Timestamp};
use crate::webhooks::{OutboxEvent, Webhook, WebhookDelivery, WebhookSecret};

/// A webhook as stored, with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// Its id.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Its signing secret.
    pub secret: WebhookSecret,
    /// The events it receives ([`crate::webhooks::EVENT_KINDS`]).
    pub events: Vec<String>,
    /// When it was created.
    pub created_at: Timestamp,
}

impl WebhookRecord {
    /// The filter column: the event kinds separated and surrounded by spaces
    /// (`" chat_updated new_message "`), which the outbox's insert matches with
    /// `LIKE '% ' || kind || ' %'`.
    pub fn events_column(&self) -> String {
        format!(" {} ", self.events.join(" "))
    }

    /// The event kinds of a filter column.
    pub fn events_from_column(column: &str) -> Vec<String> {
        column.split_whitespace().map(str::to_string).collect()
    }
}

/// One event waiting in a claimed lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    /// The delivery's id, for its settlement: a row's id (positive, increasing in the
    /// order rows were written), or a message read through the lane's cursor: its seq,
    /// negated.
    pub id: i64,
    /// The event's id.
    pub event_id: String,
    /// Its `type`.
    pub kind: String,
    /// The body to send.
    pub body: String,
    /// When it entered the outbox (or was last retried by the admin): the retry period
    /// counts from here.
    pub queued_at: Timestamp,
    /// Attempts made so far.
    pub attempts: u32,
}

impl PendingDelivery {
    /// A chat's message read through a lane's cursor (it has no row): its body made
    /// now, its id its seq negated, which a settlement tells from a row's.
    pub fn of_message(message: &Message) -> Self {
        let event = OutboxEvent::new_message(message);
        Self {
            id: -i64::try_from(message.seq).unwrap_or(i64::MAX),
            event_id: event.event_id,
            kind: event.kind.into(),
            body: event.body,
            queued_at: message.created_at,
            attempts: 0,
        }
    }
}

/// A lane's first `batch` pending deliveries, from its rows (each with its `after_seq`,
/// in that order) and its chat's messages after its cursor (in seq order), merged by
/// position: a message `s` comes after the rows at `s - 1` and before those at `s`.
/// Both must come from one state of the store (one snapshot, or under the lane's lock).
pub fn merge_lane(
    rows: impl IntoIterator<Item = (u64, PendingDelivery)>,
    messages: impl IntoIterator<Item = Message>,
    batch: usize,
) -> Vec<PendingDelivery> {
    let mut rows = rows.into_iter().peekable();
    let mut messages = messages.into_iter().peekable();
    let mut out = Vec::new();
    while out.len() < batch {
        let row_first = match (rows.peek(), messages.peek()) {
            (Some((after, _)), Some(m)) => *after < m.seq,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if row_first {
            out.extend(rows.next().map(|(_, d)| d));
        } else {
            out.extend(messages.next().map(|m| PendingDelivery::of_message(&m)));
        }
    }
    out
}

/// A lane a node claimed: where to send, with what secret, and the first deliveries in
/// order.
#[derive(Debug, Clone)]
pub struct ClaimedLane {
    /// The webhook.
    pub webhook_id: String,
    /// The chat.
    pub chat_id: String,
    /// The webhook's URL.
    pub url: String,
    /// The webhook's secret.
    pub secret: WebhookSecret,
    /// The lane's first pending deliveries, in order (at most [`LaneClaim::batch`]).
    pub deliveries: Vec<PendingDelivery>,
}

/// What [`WebhookStore::claim_webhook_lanes`] takes.
#[derive(Debug, Clone)]
pub struct LaneClaim {
    /// Now: lanes due at or before it, and not leased past it, are taken.
    pub now: Timestamp,
    /// The lease taken.
    pub lease_until: Timestamp,
    /// The claim's token: only its holder may settle or release the lanes.
    pub token: String,
    /// Most lanes.
    pub lanes: u32,
    /// Most deliveries per lane.
    pub batch: u32,
}

/// What a lane's attempts came to since its last settlement, for
/// [`WebhookStore::settle_deliveries`]: recorded in one write, however many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Delivered (answered 2xx): their rows are deleted, and the lane's cursor moves
    /// past its messages among them.
    pub delivered: Vec<i64>,
    /// The attempt that failed after them, if one did.
    pub failed: Option<Failure>,
    /// The lane's lease, renewed until then; unless `failed` is to be retried: then the
    /// lane gives its lease up and waits until the retry.
    pub lease_until: Timestamp,
    /// `None`: mid-batch, the lease renewed. `Some(n)`: the claim's batch is through
    /// (every event of it delivered or dead), and in the same write the lane is
    /// deleted when nothing is pending in it any more ([`Settled::Emptied`]); else, with
    /// `n > 0`, it stays the claim's, its lease renewed, and its next `n` pending
    /// deliveries come back ([`Settled::More`]), so that the claim goes on without
    /// claiming again; with `n = 0`, the claim lets it go, due now for the next claim
    /// ([`Settled::Released`]). Ignored when `failed` is to be retried.
    pub then_next: Option<u32>,
}

/// What a [`Settlement`] left of the lane, from [`WebhookStore::settle_deliveries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The claim no longer holds the lane: another node took it over (what was
    /// delivered is recorded all the same). The caller stops working on it.
    Lost,
    /// Recorded; the lane is still the claim's (its lease renewed), or it now waits for
    /// its failed delivery's retry.
    Held,
    /// Recorded at the batch's end with nothing pending left: the lane is gone.
    Emptied,
    /// Recorded at the batch's end; the lane, with deliveries pending, is free for the
    /// next claim.
    Released,
    /// Recorded at the batch's end; the lane is still the claim's, with these next
    /// pending deliveries, in order.
    More(Vec<PendingDelivery>),
}

/// A failed attempt, in a [`Settlement`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The delivery (a message's, read through the cursor, becomes a row here).
    pub delivery: i64,
    /// Why, for the operator (`HTTP 500`, `timed out`, ...).
    pub error: String,
    /// `Some`: tried again then, the lane waiting until it; `None`: given up on, the
    /// delivery is dead and the lane goes on with its next one.
    pub retry_at: Option<Timestamp>,
}

impl Settlement {
    /// The lease the lane keeps after it (`None`: given up, see
    /// [`Settlement::lease_until`]) and the lane's next attempt when it waits.
    pub fn lane_after(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        match &self.failed {
            Some(Failure {
                retry_at: Some(at), ..
            }) => (None, Some(*at)),
            _ => (Some(self.lease_until), None),
        }
    }
}

/// Which deliveries [`WebhookStore::webhook_deliveries`] lists, in the order of their rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only this webhook's.
    pub webhook_id: Option<String>,
    /// Dead ones (else pending ones).
    pub dead: bool,
    /// Only those with a greater id (to page on).
    pub after_id: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// The outbox's operations. Every write is durable before it returns, like the rest of
/// [`Store`](super::Store); the events themselves are written by the store's change
/// operations, never through this trait.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates a webhook, or replaces the url, secret and filter of the one with its
    /// id (its rows stay; a filter that starts taking messages takes those sent from
    /// then on, and one that stops taking them stops at once, those waiting included).
    async fn put_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()>;

    /// Every webhook by id, with its pending events (rows, and messages after its
    /// lanes' cursors) and dead deliveries counted.
    async fn webhooks(&self) -> StoreResult<Vec<Webhook>>;

    /// Deletes a webhook with all its deliveries; `false` when there is none.
    async fn delete_webhook(&self, id: &str) -> StoreResult<bool>;

    /// Deliveries with a row, in the order rows were made (see [`DeliveryQuery`]): chat changes, and
    /// messages whose delivery failed. A message not attempted yet is counted by
    /// [`WebhookStore::webhooks`], not listed.
    async fn webhook_deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<WebhookDelivery>>;

    /// Makes dead deliveries pending again, due now, with a fresh retry period from
    /// `now`: all of them, a webhook's, or one delivery. Returns how many.
    async fn retry_dead_deliveries(
        &self,
        webhook_id: Option<&str>,
        delivery_id: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<u64>;

    /// Leases up to `claim.lanes` lanes that are due and not leased by anyone (an
    /// expired lease counts as none), earliest due first, each with its first
    /// deliveries. On several nodes at once, each lane goes to one of them.
    async fn claim_webhook_lanes(&self, claim: &LaneClaim) -> StoreResult<Vec<ClaimedLane>>;

    /// Records what a lane's attempts came to (see [`Settlement`]), `now` being the
    /// time of the failed one, in one write. Returns what became of the lane
    /// ([`Settled`]).
    async fn settle_deliveries(
        &self,
        webhook_id: &str,
        chat_id: &str,
        token: &str,
        settlement: &Settlement,
        now: Timestamp,
    ) -> StoreResult<Settled>;

    /// Ends every lease, for a process that knows it is the only one delivering from
    /// this store (a SQLite file): at its start, any lease is a previous run's, killed
    /// mid-delivery. Returns how many lanes were held.
    async fn release_webhook_leases(&self) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ChatId, MessageId};
    use crate::model::SenderType;

    fn row(id: i64, after: u64) -> (u64, PendingDelivery) {
        let d = PendingDelivery {
            id,
            event_id: format!("row-{id}"),
            kind: "chat_updated".into(),
            body: String::new(),
            queued_at: Timestamp::from_unix_millis(0),
            attempts: 0,
        };
        (after, d)
    }

    fn message(chat: ChatId, seq: u64) -> Message {
        Message {
            id: MessageId::new(),
            chat_id: chat,
            seq,
            sender_type: SenderType::Customer,
            sender_id: "c".into(),
            content: format!("m{seq}"),
            created_at: Timestamp::from_unix_millis(0),
            client_message_id: None,
            event: None,
            attachment: None,
        }
    }

    #[test]
    fn a_lanes_rows_go_after_the_message_they_follow_and_before_the_next() {
        let chat = ChatId::new();
        let rows = || vec![row(7, 0), row(8, 2), row(9, 2)];
        let messages = || (1..=3).map(|s| message(chat, s)).collect::<Vec<_>>();
        let ids: Vec<i64> = merge_lane(rows(), messages(), 16)
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, [7, -1, -2, 8, 9, -3]);
        let first: Vec<i64> = merge_lane(rows(), messages(), 3)
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(first, [7, -1, -2], "at most a batch");
        let sent = messages();
        let first = &merge_lane(Vec::new(), sent.clone(), 1)[0];
        assert_eq!(
            (first.event_id.as_str(), first.kind.as_str()),
            (sent[0].id.to_string().as_str(), "new_message"),
            "a message's event has its id"
        );
        let body: serde_json::Value = serde_json::from_str(&first.body).unwrap();
        assert_eq!(body["data"]["message"]["content"], "m1");
    }
}
