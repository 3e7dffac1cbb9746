//! The desk: this node's part in routing chats to officers (contract v2, "Presence,
//! capacity, automatic assignment"). One task per service, started with its first use,
//! keeps:
//!
//! - **Presence.** How many live connections (WebSockets) each officer has on this node,
//!   counted by [`LiveSession`](super::LiveSession). An officer's first connection and
//!   last close are written to the store ([`Store::set_presence`], keyed by this node's
//!   id), so `connected` is known on every node. A heartbeat every third of
//!   [`ServiceConfig::presence_ttl`](super::ServiceConfig) keeps the node alive in the
//!   store and forgets nodes not seen for a whole ttl, with their presence: a node that
//!   dies without a word leaves its officers connected for at most about 1⅓ ttl.
//! - **The queue's order**, a snapshot of the pending chats' keys, read again at most
//!   once a second and only when the queue changed (on any node: the task follows
//!   `officers:all`). Positions are answered from it by binary search, and chat feeds
//!   derive `queue_position` events from it, so that neither a request nor an event
//!   costs work in proportion to the queue.
//! - **Automatic assignment** (`assign.rs`), run when asked (a chat entered the queue,
//!   an officer became eligible) and swept every few seconds.
//!
//! Every change is also announced: `officer_updated` on a change of connection.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::{ChatService, Inner};
use crate::bus::{Event, RecvError, Topic};
use crate::error::Result;
use crate::ids::OfficerId;
use crate::model::{Chat, ChatStatus};
use crate::store::QueueKey;

/// How often the queue's order is read again at most (and so how often a chat's
/// `queue_position` may change).
const QUEUE_REFRESH: Duration = Duration::from_secs(1);
/// How often automatic assignment runs without being asked, to catch what a failed or
/// raced attempt left waiting.
const ASSIGN_SWEEP: Duration = Duration::from_secs(2);
/// Most pending chats the view holds (4.8 MB of keys): a chat beyond them is placed
/// just after the last one.
const MAX_QUEUE_VIEW: u32 = 200_000;

/// How chats reach officers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Assignment {
    /// Officers claim chats from the queue (version 1).
    #[default]
    Manual,
    /// A chat that enters the queue goes at once to an eligible officer; officers may
    /// still claim by hand.
    Auto,
}

impl Assignment {
    /// Parses `manual` or `auto`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(Assignment::Manual),
            "auto" => Some(Assignment::Auto),
            _ => None,
        }
    }
}

/// The pending chats' keys in queue order, as read at one moment.
#[derive(Debug, Default, Clone)]
pub(super) struct QueueView {
    keys: Vec<QueueKey>,
}

impl QueueView {
    /// A pending chat's place (1: next): how many pending chats come before it, plus one.
    /// Also right for a chat newer than the view, which has no place in it yet.
    pub(super) fn position(&self, chat: &Chat) -> Option<u32> {
        if chat.status != ChatStatus::Pending {
            return None;
        }
        let key = (chat.created_at, chat.id);
        let before = self.keys.partition_point(|k| *k < key);
        Some(u32::try_from(before).unwrap_or(u32::MAX).saturating_add(1))
    }

    /// Puts the chat in the view or takes it out, as its status says.
    fn update(&mut self, chat: &Chat) {
        let key = (chat.created_at, chat.id);
        match (self.keys.binary_search(&key), chat.status) {
            (Err(at), ChatStatus::Pending) => self.keys.insert(at, key),
            (Ok(at), status) if status != ChatStatus::Pending => {
                self.keys.remove(at);
            }
            _ => {}
        }
    }

    /// How many chats wait (up to the view's cap).
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// When the chat first in line entered the queue.
    pub(super) fn oldest(&self) -> Option<crate::model::Timestamp> {
        self.keys.first().map(|(entered, _)| *entered)
    }

    /// The place of a chat the view holds; `None` when it does not (not pending when
    /// the view was read).
    pub(super) fn exact(&self, key: &QueueKey) -> Option<u32> {
        self.keys
            .binary_search(key)
            .ok()
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1))
    }
}

/// This node's desk (see the module documentation).
pub(super) struct Desk {
    /// This node's id in the store's presence: new for every service.
    node: String,
    /// Live connections per officer on this node.
    connections: Mutex<HashMap<OfficerId, u32>>,
    /// Officers whose presence on this node changed since it was last written.
    dirty: Mutex<HashSet<OfficerId>>,
    /// Automatic assignment was asked for.
    assign_wanted: AtomicBool,
    wake: Notify,
    queue: watch::Sender<Arc<QueueView>>,
    /// True once `queue` holds a view read from the store.
    queue_read: AtomicBool,
    /// One automatic assignment at a time on this node (nodes race in the store).
    pub(super) assigning: tokio::sync::Mutex<()>,
    /// Chats this node's logins are giving right now, per officer: a login picks as if
    /// they were given already, so that logins at the same moment spread over the
    /// officers instead of all picking the one with the fewest open chats.
    giving: Mutex<HashMap<OfficerId, u32>>,
    /// The latest chats this node's logins gave, numbered: a login that read the
    /// officers before one of them was stored counts it too (its read cannot show it).
    given: Mutex<std::collections::VecDeque<(u64, OfficerId)>>,
    /// The number of the latest of `given`.
    given_count: std::sync::atomic::AtomicU64,
    task: OnceLock<tokio::task::AbortHandle>,
}

impl Default for Desk {
    fn default() -> Self {
        Self {
            node: uuid::Uuid::now_v7().to_string(),
            connections: Mutex::default(),
            dirty: Mutex::default(),
            assign_wanted: AtomicBool::new(false),
            wake: Notify::new(),
            queue: watch::Sender::new(Arc::default()),
            queue_read: AtomicBool::new(false),
            assigning: tokio::sync::Mutex::new(()),
            giving: Mutex::default(),
            given: Mutex::default(),
            given_count: std::sync::atomic::AtomicU64::new(0),
            task: OnceLock::new(),
        }
    }
}

impl Desk {
    /// Stops the task (the service is going away).
    pub(super) fn stop(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An officer picked by a login, counted as giving until dropped.
pub(super) struct Giving<'a> {
    desk: &'a Desk,
    pub(super) officer: OfficerId,
}

/// How many of the latest gives a node remembers for logins reading meanwhile.
const GIVEN_KEPT: usize = 1024;

impl Giving<'_> {
    /// The chat was given: logins that read the officers before now count it.
    pub(super) fn given(&self) {
        let mut given = lock(&self.desk.given);
        let n = self.desk.given_count.fetch_add(1, Ordering::AcqRel) + 1;
        given.push_back((n, self.officer.clone()));
        if given.len() > GIVEN_KEPT {
            given.pop_front();
        }
    }
}

impl Drop for Giving<'_> {
    fn drop(&mut self) {
        let mut giving = lock(&self.desk.giving);
        if let Some(n) = giving.get_mut(&self.officer) {
            *n -= 1;
            if *n == 0 {
                giving.remove(&self.officer);
            }
        }
    }
}

impl Desk {
    /// Where the numbering of this node's gives stands: taken before reading the
    /// officers, for [`Desk::pick_giving`].
    pub(super) fn gives_so_far(&self) -> u64 {
        self.given_count.load(Ordering::Acquire)
    }

    /// Picks with `pick` (given the chats each officer is being given now, and those
    /// given since `read_at`, which a read of the officers then did not show) and counts
    /// the pick as giving, in one step, so that two logins never pick on the same count.
    pub(super) fn pick_giving(
        &self,
        read_at: u64,
        pick: impl FnOnce(&HashMap<OfficerId, u32>) -> Option<OfficerId>,
    ) -> Option<Giving<'_>> {
        let mut giving = lock(&self.giving);
        let mut counted = giving.clone();
        for (_, officer) in lock(&self.given).iter().filter(|(n, _)| *n > read_at) {
            *counted.entry(officer.clone()).or_insert(0) += 1;
        }
        let officer = pick(&counted)?;
        *giving.entry(officer.clone()).or_insert(0) += 1;
        Some(Giving {
            desk: self,
            officer,
        })
    }

    /// An officer's connection opened on this node.
    pub(super) fn connect(&self, officer: &OfficerId) {
        let mut connections = lock(&self.connections);
        let n = connections.entry(officer.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            lock(&self.dirty).insert(officer.clone());
            self.wake.notify_one();
        }
    }

    /// An officer's connection closed on this node.
    pub(super) fn disconnect(&self, officer: &OfficerId) {
        let mut connections = lock(&self.connections);
        let Some(n) = connections.get_mut(officer) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            connections.remove(officer);
            lock(&self.dirty).insert(officer.clone());
            self.wake.notify_one();
        }
    }

    /// Brings this node's view of the queue up to date with a change it made itself
    /// (so that its own answers are exact at once), without waking the feeds: they hear
    /// of places at the next reading of the queue, at most once a second.
    pub(super) fn saw(&self, chat: &Chat) {
        self.queue.send_if_modified(|view| {
            Arc::make_mut(view).update(chat);
            false
        });
    }

    /// Asks the desk's task for a round of automatic assignment.
    pub(super) fn want_assignment(&self) {
        self.assign_wanted.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Follows the queue's order (for a chat feed's `queue_position`).
    pub(super) fn watch_queue(&self) -> watch::Receiver<Arc<QueueView>> {
        self.queue.subscribe()
    }
}

impl ChatService {
    /// This node's desk, its task started.
    pub(super) fn desk(&self) -> &Arc<Desk> {
        let desk = &self.inner.desk;
        desk.task.get_or_init(|| {
            // Subscribed before the task starts: no change of the queue is missed.
            let queue_events = self.inner.bus.subscribe(&Topic::Officers);
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(run(Arc::clone(desk), weak, queue_events)).abort_handle()
        });
        desk
    }

    /// Asks for a round of automatic assignment (in automatic mode), run by the desk's
    /// task.
    pub(super) fn want_assignment(&self) {
        if self.config().assignment == Assignment::Auto {
            self.desk().want_assignment();
        }
    }

    /// The queue's order as this node last read it (read now if it never was).
    pub(super) async fn queue_view(&self) -> Result<Arc<QueueView>> {
        let desk = self.desk();
        if !desk.queue_read.load(Ordering::Acquire) {
            self.read_queue().await?;
        }
        Ok(desk.queue.borrow().clone())
    }

    /// The chat with its queue position filled in (from this node's view of the queue).
    pub(super) async fn placed(&self, mut chat: Chat) -> Result<Chat> {
        chat.queue_position = match chat.status {
            ChatStatus::Pending => self.queue_view().await?.position(&chat),
            _ => None,
        };
        Ok(chat)
    }

    /// Chats with their queue positions filled in.
    pub(super) async fn all_placed(&self, chats: Vec<Chat>) -> Result<Vec<Chat>> {
        if chats.iter().all(|c| c.status != ChatStatus::Pending) {
            return Ok(chats);
        }
        let view = self.queue_view().await?;
        Ok(chats
            .into_iter()
            .map(|mut c| {
                c.queue_position = view.position(&c);
                c
            })
            .collect())
    }

    async fn read_queue(&self) -> Result<()> {
        let keys = self.inner.store.queue_keys(MAX_QUEUE_VIEW).await?;
        let desk = &self.inner.desk;
        desk.queue.send_replace(Arc::new(QueueView { keys }));
        desk.queue_read.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes the presence that changed on this node, and announces it.
    async fn write_presence(&self) {
        let desk = &self.inner.desk;
        let dirty: Vec<OfficerId> = lock(&desk.dirty).drain().collect();
        for (i, officer) in dirty.iter().enumerate() {
            let present = lock(&desk.connections).contains_key(officer);
            match self
                .inner
                .store
                .set_presence(&desk.node, officer, present, self.now())
                .await
            {
                Ok(Some(now)) => {
                    tracing::debug!(officer = %officer, present, "presence written");
                    if present {
                        desk.want_assignment();
                    }
                    self.announce_officer(now);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record presence; will retry");
                    lock(&desk.dirty).extend(dirty[i..].iter().cloned());
                    return;
                }
            }
        }
    }

    /// Stops the desk's task and takes back this node's presence (the service is
    /// closing: its sockets are closed or about to be), so that other nodes see its
    /// officers leave at once rather than after the ttl.
    pub(super) async fn leave_desk(&self) {
        let desk = &self.inner.desk;
        desk.stop();
        let present: Vec<OfficerId> = lock(&desk.connections).drain().map(|(o, _)| o).collect();
        lock(&desk.dirty).clear();
        for officer in present {
            let left = self
                .inner
                .store
                .set_presence(&desk.node, &officer, false, self.now())
                .await;
            match left {
                Ok(Some(now)) => {
                    self.announce_officer(now);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take back presence; other nodes forget it after the ttl");
                    return;
                }
            }
        }
    }

    /// Keeps this node alive in the store and forgets dead ones.
    async fn heartbeat(&self) {
        let desk = &self.inner.desk;
        let now = self.now();
        let ttl = self.config().presence_ttl;
        let stale_before = crate::model::Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        );
        let beat = match self
            .inner
            .store
            .node_heartbeat(&desk.node, now, stale_before)
            .await
        {
            Ok(beat) => beat,
            Err(e) => {
                tracing::warn!(error = %e, "presence heartbeat failed");
                return;
            }
        };
        if !beat.known {
            // Taken for dead (a long pause): record every presence of this node again.
            let present: Vec<OfficerId> = lock(&desk.connections).keys().cloned().collect();
            lock(&desk.dirty).extend(present);
        }
        for officer in beat.disconnected {
            tracing::info!(officer = %officer, "officer's node stopped answering; disconnected");
            if let Ok(Some(record)) = self.inner.store.officer(&officer).await {
                self.announce_officer(record.officer);
            }
        }
    }
}

/// Whether an event of `officers:all` may have changed the queue's order.
fn changes_queue(event: &Event) -> bool {
    matches!(
        event,
        Event::QueueChatCreated { .. } | Event::QueueChatClaimed { .. } | Event::ChatUpdated { .. }
    )
}

/// The desk's task: presence, heartbeats, the queue's order and automatic assignment.
/// Holds the service only while it works, and ends when the service is dropped.
async fn run(desk: Arc<Desk>, service: Weak<Inner>, mut queue_events: crate::bus::Subscription) {
    let Some(beat) = service.upgrade().map(|inner| inner.config.presence_ttl / 3) else {
        return;
    };
    let mut heartbeat = tokio::time::interval(beat.max(Duration::from_millis(100)));
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sweep = tokio::time::interval(ASSIGN_SWEEP);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut queue_changed = true;
    let mut queue_read_at = Instant::now() - QUEUE_REFRESH;
    loop {
        let mut beat_due = false;
        let mut read_queue = false;
        tokio::select! {
            () = desk.wake.notified() => {}
            _ = heartbeat.tick() => beat_due = true,
            _ = sweep.tick() => desk.assign_wanted.store(true, Ordering::Release),
            event = queue_events.recv() => match event {
                Ok(envelope) => queue_changed |= changes_queue(envelope.event()),
                Err(RecvError::Lagged(_)) => queue_changed = true,
                Err(RecvError::Closed) => return,
            },
            () = tokio::time::sleep_until(queue_read_at + QUEUE_REFRESH), if queue_changed => {
                read_queue = true;
            }
        }
        let Some(inner) = service.upgrade() else {
            return;
        };
        let this = ChatService { inner };
        if beat_due {
            this.heartbeat().await;
        }
        if read_queue {
            match this.read_queue().await {
                Ok(()) => queue_changed = false,
                Err(e) => tracing::warn!(error = %e, "cannot read the queue's order"),
            }
            queue_read_at = Instant::now();
        }
        this.write_presence().await;
        if desk.assign_wanted.swap(false, Ordering::AcqRel)
            && this.config().assignment == Assignment::Auto
        {
            if let Err(e) = this.assign_waiting().await {
                tracing::warn!(error = %e, "automatic assignment failed; will retry");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ChatId, CustomerId};
    use crate::model::Timestamp;

    fn pending(at: i64) -> Chat {
        Chat {
            id: ChatId::new(),
            customer_id: CustomerId::parse("c").unwrap(),
            customer_name: None,
            assigned_officer_id: None,
            status: ChatStatus::Pending,
            created_at: Timestamp::from_unix_millis(at),
            updated_at: Timestamp::from_unix_millis(at),
            resolved_at: None,
            last_seq: 0,
            customer_last_read_seq: 0,
            officer_last_read_seq: 0,
            queue_position: None,
            last_message: None,
        }
    }

    #[test]
    fn positions_come_from_the_queue_order_by_binary_search() {
        let chats: Vec<Chat> = (0..5).map(|i| pending(i * 10)).collect();
        let view = QueueView {
            keys: chats.iter().map(|c| (c.created_at, c.id)).collect(),
        };
        for (i, chat) in chats.iter().enumerate() {
            assert_eq!(view.position(chat), Some(i as u32 + 1));
            assert_eq!(view.exact(&(chat.created_at, chat.id)), Some(i as u32 + 1));
        }
        // A chat newer than the view goes after all of it; one that is not pending has
        // no place.
        assert_eq!(view.position(&pending(1000)), Some(6));
        assert_eq!(
            view.exact(&(Timestamp::from_unix_millis(1000), ChatId::new())),
            None
        );
        let mut taken = pending(5);
        taken.status = ChatStatus::Assigned;
        assert_eq!(view.position(&taken), None);
    }
}
