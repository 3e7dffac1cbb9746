//! [`MemoryStore`]: everything in process memory behind one lock. For tests and for
//! embedders who want no file; it keeps the same invariants as the SQLite store, but
//! nothing survives the process.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    AppendOutcome, Counts, Heartbeat, NewChat, NewMessage, OfficerRecord, PageQuery, QueueKey,
    ReadOutcome, SessionRecord, SessionSubject, Store, StoreError, StoreResult, TokenHash,
    Transition, TransitionOutcome, fill_page,
};
use crate::blob::BlobId;
use crate::ids::{AttachmentId, ChatId, CustomerId, MessageId, OfficerId};
use crate::model::{Availability, Chat, ChatStatus, Message, Officer, SenderType, Timestamp};
use crate::report::{self, DeskReport, ReportPeriod};
use crate::store::OfficerUpdate;
use crate::webhooks::OutboxEvent;

/// An in-memory [`Store`].
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
pub(super) struct State {
    closed: bool,
    officers: HashMap<OfficerId, OfficerRecord>,
    chats: HashMap<ChatId, Chat>,
    /// Each customer's open chat.
    by_customer: HashMap<CustomerId, ChatId>,
    /// Pending chats ordered as the queue is: by creation time, then id.
    queue: BTreeSet<(Timestamp, ChatId)>,
    pub(super) messages: HashMap<ChatId, Vec<Message>>,
    idempotency: HashMap<(ChatId, SenderType, String, String), usize>,
    /// Where each attachment's message is: (chat, index in its log).
    attachments: HashMap<AttachmentId, (ChatId, usize)>,
    /// How many messages carry each blob.
    blob_uses: HashMap<BlobId, usize>,
    sessions: HashMap<TokenHash, SessionRecord>,
    /// Which node holds live connections of which officer.
    presence: HashSet<(OfficerId, String)>,
    /// When each node was last seen alive.
    nodes: HashMap<String, Timestamp>,
    /// Each officer's last assignment.
    last_assigned: HashMap<OfficerId, Timestamp>,
    /// The webhooks' outbox, written under the same lock as the changes it reports.
    pub(super) outbox: super::memory_outbox::Outbox,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn state(&self) -> StoreResult<MutexGuard<'_, State>> {
        let guard = self
            .state
            .lock()
            .map_err(|_| StoreError::backend("memory store lock poisoned"))?;
        if guard.closed {
            return Err(StoreError::closed());
        }
        Ok(guard)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_officer(&self, officer: &OfficerRecord) -> StoreResult<()> {
        let mut s = self.state()?;
        if s.officers.contains_key(&officer.officer.id) {
            return Err(StoreError::Duplicate);
        }
        s.officers
            .insert(officer.officer.id.clone(), officer.clone());
        Ok(())
    }

    async fn officer(&self, id: &OfficerId) -> StoreResult<Option<OfficerRecord>> {
        let s = self.state()?;
        Ok(s.officers.get(id).map(|record| OfficerRecord {
            officer: live(&s, &record.officer),
            password_hash: record.password_hash.clone(),
        }))
    }

    async fn officers(&self) -> StoreResult<Vec<Officer>> {
        let s = self.state()?;
        let mut all: Vec<Officer> = s.officers.values().map(|o| live(&s, &o.officer)).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    async fn get_or_create_chat(&self, new: &NewChat) -> StoreResult<(Chat, bool)> {
        let mut s = self.state()?;
        if let Some(id) = s.by_customer.get(&new.customer_id).copied() {
            let chat = s
                .chats
                .get_mut(&id)
                .ok_or_else(|| StoreError::backend("customer index points at a missing chat"))?;
            if new.customer_name.is_some() {
                chat.customer_name.clone_from(&new.customer_name);
            }
            return Ok((chat.clone(), false));
        }
        let new = match &new.assigned_officer_id {
            Some(officer) => {
                let Some(record) = s.officers.get(officer) else {
                    return Err(StoreError::backend("chat assigned to an unknown officer"));
                };
                let capacity = record.officer.capacity;
                new.clone()
                    .placed(capacity, u64::from(open_chats(&s, officer)))
            }
            None => new.clone(),
        };
        let chat = Chat {
            id: new.id,
            customer_id: new.customer_id.clone(),
            customer_name: new.customer_name.clone(),
            assigned_officer_id: new.assigned_officer_id.clone(),
            status: new.status(),
            created_at: new.created_at,
            updated_at: new.created_at,
            resolved_at: None,
            last_seq: 0,
            customer_last_read_seq: 0,
            officer_last_read_seq: 0,
            queue_position: None,
            last_message: None,
        };
        if chat.assigned_officer_id.is_none() {
            s.queue.insert((chat.created_at, chat.id));
        }
        s.by_customer.insert(chat.customer_id.clone(), chat.id);
        s.chats.insert(chat.id, chat.clone());
        s.outbox.record(&[OutboxEvent::for_new_chat(&chat)]);
        Ok((chat, true))
    }

    async fn chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        Ok(self.state()?.chats.get(id).cloned())
    }

    async fn pending_chats(&self, limit: u32) -> StoreResult<Vec<Chat>> {
        let s = self.state()?;
        Ok(s.queue
            .iter()
            .take(limit as usize)
            .filter_map(|(_, id)| s.chats.get(id).cloned())
            .collect())
    }

    async fn counts(&self) -> StoreResult<Counts> {
        let s = self.state()?;
        Ok(Counts {
            officers: s.officers.len() as u64,
            pending_chats: s.queue.len() as u64,
            assigned_chats: s
                .chats
                .values()
                .filter(|c| c.status == ChatStatus::Assigned)
                .count() as u64,
        })
    }

    async fn customer_chats(&self, customer: &CustomerId, limit: u32) -> StoreResult<Vec<Chat>> {
        let s = self.state()?;
        let mut chats: Vec<Chat> = s
            .chats
            .values()
            .filter(|c| c.customer_id == *customer)
            .cloned()
            .collect();
        chats.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
        chats.truncate(limit as usize);
        Ok(chats)
    }

    async fn officer_chats(
        &self,
        officer: &OfficerId,
        status: ChatStatus,
        limit: u32,
    ) -> StoreResult<Vec<Chat>> {
        let s = self.state()?;
        let mut chats: Vec<Chat> = s
            .chats
            .values()
            .filter(|c| c.assigned_officer_id.as_ref() == Some(officer) && c.status == status)
            .cloned()
            .collect();
        chats.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id)));
        chats.truncate(limit as usize);
        Ok(chats)
    }

    async fn transition(&self, change: &Transition) -> StoreResult<TransitionOutcome> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let m = &change.entry;
        let Some(chat) = s.chats.get(&m.chat_id).cloned() else {
            return Ok(TransitionOutcome::NotFound);
        };
        if chat.status != change.expected_status
            || chat.assigned_officer_id != change.expected_owner
        {
            return Ok(TransitionOutcome::Stale(chat));
        }
        if let Some(owner) = change.new_owner() {
            if let Some(record) = s.officers.get(owner) {
                if !change.may_go_to(&live(s, &record.officer)) {
                    return Ok(TransitionOutcome::Ineligible);
                }
            }
            let capacity = s.officers.get(owner).and_then(|o| o.officer.capacity);
            if !change.has_room(capacity, u64::from(open_chats(s, owner))) {
                return Ok(TransitionOutcome::AtCapacity);
            }
        }
        // At most one open chat per customer.
        if change.status.is_open() && !chat.status.is_open() {
            if s.by_customer.contains_key(&chat.customer_id) {
                return Ok(TransitionOutcome::CustomerHasOpenChat);
            }
            s.by_customer.insert(chat.customer_id.clone(), chat.id);
        }
        if !change.status.is_open() {
            s.by_customer.remove(&chat.customer_id);
        }
        let key = (chat.created_at, chat.id);
        if change.status == ChatStatus::Pending {
            s.queue.insert(key);
        } else {
            s.queue.remove(&key);
        }
        let log = s.messages.entry(chat.id).or_default();
        let entry = m.clone().stored(log.len() as u64 + 1);
        log.push(entry.clone());
        let stored = s
            .chats
            .get_mut(&chat.id)
            .ok_or_else(|| StoreError::backend("a chat vanished under the lock"))?;
        stored.status = change.status;
        stored.assigned_officer_id.clone_from(&change.owner);
        stored.updated_at = m.created_at;
        stored.resolved_at = (change.status == ChatStatus::Resolved).then_some(m.created_at);
        stored.last_seq = entry.seq;
        let stored = stored.clone();
        if let Some(owner) = change.new_owner() {
            s.last_assigned.insert(owner.clone(), m.created_at);
        }
        s.outbox
            .record(&OutboxEvent::for_transition(&stored, &entry));
        Ok(TransitionOutcome::Applied(stored, entry))
    }

    async fn append_message(&self, message: &NewMessage) -> StoreResult<AppendOutcome> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let Some(chat) = s.chats.get(&message.chat_id) else {
            return Err(StoreError::backend("append to a chat that does not exist"));
        };
        let stale = message.decided_on.as_ref().is_some_and(|(status, owner)| {
            chat.status != *status || chat.assigned_officer_id != *owner
        });
        let log = s.messages.entry(message.chat_id).or_default();
        let key = message.client_message_id.as_ref().map(|k| {
            (
                message.chat_id,
                message.sender_type,
                message.sender_id.clone(),
                k.clone(),
            )
        });
        if let Some(index) = key.as_ref().and_then(|k| s.idempotency.get(k)) {
            return Ok(AppendOutcome::Duplicate(log[*index].clone()));
        }
        if stale {
            let now = s
                .chats
                .get(&message.chat_id)
                .cloned()
                .ok_or_else(|| StoreError::backend("a chat vanished under the lock"))?;
            return Ok(AppendOutcome::Stale(now));
        }
        let stored = message.clone().stored(log.len() as u64 + 1);
        if let Some(k) = key {
            s.idempotency.insert(k, log.len());
        }
        if let Some(file) = &stored.attachment {
            s.attachments.insert(file.id, (stored.chat_id, log.len()));
            *s.blob_uses.entry(file.sha256).or_default() += 1;
        }
        log.push(stored.clone());
        if let Some(chat) = s.chats.get_mut(&message.chat_id) {
            chat.last_seq = stored.seq;
            chat.updated_at = stored.created_at;
        }
        s.outbox.record(&[OutboxEvent::message_mark(&stored)]);
        Ok(AppendOutcome::Created(stored))
    }

    async fn messages(&self, chat: &ChatId, page: &PageQuery) -> StoreResult<Vec<Message>> {
        let s = self.state()?;
        let Some(log) = s.messages.get(chat) else {
            return Ok(Vec::new());
        };
        // seq n lives at index n - 1, so the window is a slice.
        let len = log.len() as u64;
        let lo = page.after.unwrap_or(0).min(len); // first index with seq > after
        let hi = page.before.map_or(len, |b| b.saturating_sub(1).min(len)); // seq < before
        if lo >= hi {
            return Ok(Vec::new());
        }
        let limit = u64::from(page.limit);
        let ok = |m: &Message| Ok::<_, StoreError>(m.clone());
        if page.before.is_some() {
            let lo = hi.saturating_sub(limit).max(lo);
            let window = log[lo as usize..hi as usize].iter().rev().map(ok);
            let mut out = fill_page(window, page.max_bytes)?;
            out.reverse();
            Ok(out)
        } else {
            let hi = (lo + limit).min(hi);
            fill_page(log[lo as usize..hi as usize].iter().map(ok), page.max_bytes)
        }
    }

    async fn sent_message(
        &self,
        chat: &ChatId,
        sender_type: SenderType,
        sender_id: &str,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        let s = self.state()?;
        let index =
            s.idempotency
                .get(&(*chat, sender_type, sender_id.to_string(), key.to_string()));
        Ok(index.and_then(|&i| s.messages.get(chat).and_then(|log| log.get(i).cloned())))
    }

    async fn attachment(&self, id: &AttachmentId) -> StoreResult<Option<Message>> {
        let s = self.state()?;
        Ok(s.attachments.get(id).and_then(|(chat, index)| {
            s.messages
                .get(chat)
                .and_then(|log| log.get(*index).cloned())
        }))
    }

    async fn blob_in_use(&self, blob: &BlobId) -> StoreResult<bool> {
        Ok(self.state()?.blob_uses.contains_key(blob))
    }

    async fn last_seq(&self, chat: &ChatId) -> StoreResult<u64> {
        Ok(self
            .state()?
            .messages
            .get(chat)
            .map_or(0, |log| log.len() as u64))
    }

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<bool> {
        let mut s = self.state()?;
        if s.sessions.contains_key(&session.token_hash) {
            return Err(StoreError::Duplicate);
        }
        if let SessionSubject::Officer(id) = &session.subject {
            if s.officers.get(id).is_none_or(|o| o.officer.disabled) {
                return Ok(false);
            }
        }
        s.sessions.insert(session.token_hash, session.clone());
        Ok(true)
    }

    async fn session(&self, token_hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        Ok(self.state()?.sessions.get(token_hash).cloned())
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<bool> {
        Ok(self.state()?.sessions.remove(token_hash).is_some())
    }

    async fn update_officer(
        &self,
        officer: &OfficerId,
        update: &OfficerUpdate,
    ) -> StoreResult<Option<Officer>> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let Some(record) = s.officers.get_mut(officer) else {
            return Ok(None);
        };
        if let Some(capacity) = update.capacity {
            record.officer.capacity = capacity;
        }
        if let Some(availability) = update.availability {
            record.officer.availability = availability;
        }
        let record = record.officer.clone();
        Ok(Some(live(s, &record)))
    }

    async fn set_presence(
        &self,
        node: &str,
        officer: &OfficerId,
        present: bool,
        now: Timestamp,
    ) -> StoreResult<Option<Officer>> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        s.nodes.insert(node.to_owned(), now);
        let Some(record) = s.officers.get(officer).map(|r| r.officer.clone()) else {
            return Ok(None);
        };
        let key = (officer.clone(), node.to_owned());
        if present {
            s.presence.insert(key);
        } else {
            s.presence.remove(&key);
        }
        Ok(Some(live(s, &record)))
    }

    async fn node_heartbeat(
        &self,
        node: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<Heartbeat> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let known = s.nodes.insert(node.to_owned(), now).is_some();
        s.nodes.retain(|_, seen| *seen >= stale_before);
        let mut forgotten = Vec::new();
        let nodes = &s.nodes;
        s.presence.retain(|(officer, node)| {
            let alive = nodes.contains_key(node);
            if !alive {
                forgotten.push(officer.clone());
            }
            alive
        });
        let mut disconnected = Vec::new();
        for officer in forgotten {
            if !s.presence.iter().any(|(o, _)| *o == officer) && !disconnected.contains(&officer) {
                disconnected.push(officer);
            }
        }
        Ok(Heartbeat {
            known,
            disconnected,
        })
    }

    async fn eligible_officers(
        &self,
        default_capacity: Option<u32>,
        limit: u32,
    ) -> StoreResult<Vec<Officer>> {
        let s = self.state()?;
        let mut eligible: Vec<Officer> = s
            .officers
            .values()
            .map(|r| live(&s, &r.officer))
            .filter(|o| {
                !o.disabled
                    && o.availability == Availability::Available
                    && o.connected
                    && o.capacity
                        .or(default_capacity)
                        .is_none_or(|cap| o.open_chats < cap)
            })
            .collect();
        eligible.sort_by_key(|o| {
            (
                o.open_chats,
                s.last_assigned.get(&o.id).copied(),
                o.id.clone(),
            )
        });
        eligible.truncate(limit as usize);
        Ok(eligible)
    }

    async fn mark_read(
        &self,
        chat: &ChatId,
        side: SenderType,
        seq: u64,
    ) -> StoreResult<ReadOutcome> {
        let mut s = self.state()?;
        let Some(stored) = s.chats.get_mut(chat) else {
            return Ok(ReadOutcome::NotFound);
        };
        let mark = match side {
            SenderType::Customer => &mut stored.customer_last_read_seq,
            SenderType::Officer => &mut stored.officer_last_read_seq,
            SenderType::System => return Err(StoreError::backend("the system has no read mark")),
        };
        if seq > stored.last_seq {
            return Ok(ReadOutcome::PastEnd(stored.clone()));
        }
        if seq <= *mark {
            return Ok(ReadOutcome::Unchanged(stored.clone()));
        }
        *mark = seq;
        Ok(ReadOutcome::Moved(stored.clone()))
    }

    async fn entries(&self, keys: &[(ChatId, u64)]) -> StoreResult<Vec<Message>> {
        let s = self.state()?;
        Ok(keys
            .iter()
            .filter_map(|(chat, seq)| {
                let log = s.messages.get(chat)?;
                let i = usize::try_from(seq.checked_sub(1)?).ok()?;
                log.get(i).cloned()
            })
            .collect())
    }

    async fn queue_keys(&self, limit: u32) -> StoreResult<Vec<QueueKey>> {
        let s = self.state()?;
        Ok(s.queue.iter().take(limit as usize).copied().collect())
    }

    async fn set_officer_disabled(
        &self,
        officer: &OfficerId,
        disabled: bool,
    ) -> StoreResult<Option<(Officer, Vec<TokenHash>)>> {
        let mut guard = self.state()?;
        let s = &mut *guard;
        let Some(record) = s.officers.get_mut(officer) else {
            return Ok(None);
        };
        record.officer.disabled = disabled;
        let record = record.officer.clone();
        let updated = live(s, &record);
        let mut revoked = Vec::new();
        if disabled {
            s.sessions.retain(|hash, session| {
                let theirs =
                    matches!(&session.subject, SessionSubject::Officer(id) if id == officer);
                if theirs {
                    revoked.push(*hash);
                }
                !theirs
            });
        }
        Ok(Some((updated, revoked)))
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        let mut s = self.state()?;
        let before = s.sessions.len();
        s.sessions.retain(|_, v| v.expires_at > now);
        Ok((before - s.sessions.len()) as u64)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.state().map(|_| ())
    }

    async fn close(&self) -> StoreResult<()> {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        Ok(())
    }

    async fn first_reply(&self, chat: &ChatId) -> StoreResult<Option<MessageId>> {
        let s = self.state()?;
        Ok(first_officer_message(&s, chat).map(|m| m.id))
    }

    async fn desk_report(&self, period: ReportPeriod) -> StoreResult<DeskReport> {
        let s = self.state()?;
        let within = |t: Timestamp| period.from() <= t && t < period.to();
        let mut created = 0;
        let mut first_replies = Vec::new();
        let mut resolutions = Vec::new();
        for chat in s.chats.values() {
            let entered = chat.created_at.unix_millis();
            if within(chat.created_at) {
                created += 1;
                if let Some(m) = first_officer_message(&s, &chat.id) {
                    let officer = OfficerId::parse(&m.sender_id).ok();
                    first_replies.push((officer, m.created_at.unix_millis() - entered));
                }
            }
            if let Some(resolved) = chat.resolved_at.filter(|t| within(*t)) {
                resolutions.push((
                    chat.assigned_officer_id.clone(),
                    resolved.unix_millis() - entered,
                ));
            }
        }
        Ok(report::summarize(
            period,
            created,
            first_replies,
            resolutions,
        ))
    }
}

fn first_officer_message<'a>(s: &'a State, chat: &ChatId) -> Option<&'a Message> {
    s.messages
        .get(chat)?
        .iter()
        .find(|m| m.sender_type == SenderType::Officer)
}

/// The officer as they are now: their open chats counted, their presence looked up.
fn live(s: &State, officer: &Officer) -> Officer {
    Officer {
        open_chats: open_chats(s, &officer.id),
        connected: s.presence.iter().any(|(o, _)| *o == officer.id),
        ..officer.clone()
    }
}

/// How many open (assigned) chats an officer holds.
fn open_chats(s: &State, officer: &OfficerId) -> u32 {
    let held = s
        .chats
        .values()
        .filter(|c| {
            c.status == ChatStatus::Assigned && c.assigned_officer_id.as_ref() == Some(officer)
        })
        .count();
    u32::try_from(held).unwrap_or(u32::MAX)
}
