//! The store operations: `impl Store for PgStore`, each one's statements and
//! transaction on a pooled connection. The database decides every data invariant here in
//! one statement or one transaction; the rules of the chat live in `chatcore`.

use async_trait::async_trait;
use chatcore::store::{
    AppendOutcome, AttachmentColumns, Counts, Heartbeat, NewChat, NewMessage, OfficerRecord,
    OfficerUpdate, PageQuery, QueueKey, ReadOutcome, SessionRecord, SessionSubject, StoreResult,
    TokenHash, Transition, TransitionOutcome, event_column, fill_page, read_mark_sql, seq_param,
};
use chatcore::webhooks::OutboxEvent;
use chatcore::{
    AttachmentId, Availability, BlobId, Chat, ChatId, ChatStatus, CustomerId, Message, Officer,
    OfficerId, SenderType, Store, StoreError, Timestamp,
};
use deadpool_postgres::{GenericClient, Object};

use super::PgStore;
use super::rows::{
    SQL_APPEND, SQL_ATTACHMENT, SQL_BLOB_IN_USE, SQL_CHAT_BY_CUSTOMER, SQL_CHAT_BY_ID,
    SQL_CUSTOMER_CHATS, SQL_ELIGIBLE_OFFICERS, SQL_ENTRIES, SQL_IDEMPOTENT_ORIGINAL,
    SQL_INSERT_CHAT, SQL_LOCK_OFFICERS, SQL_OFFICER, SQL_OFFICER_CHATS, SQL_PAGE_AFTER,
    SQL_PAGE_BEFORE, SQL_QUEUE, SQL_QUEUE_KEYS, SQL_RENAME_CUSTOMER, SQL_SESSION, SQL_TRANSITION,
    chat_from_row, message_from_row, officer_columns, officer_from_row,
};
use super::webhooks::write_outbox;
use crate::error::classify;

impl PgStore {
    async fn chat_rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<Chat>> {
        let client = self.client().await?;
        let st = client.prepare_cached(sql).await.map_err(classify)?;
        let rows = client.query(&st, params).await.map_err(classify)?;
        rows.iter().map(chat_from_row).collect()
    }

    async fn one_chat(&self, client: &Object, sql: &str, key: &str) -> StoreResult<Option<Chat>> {
        let st = client.prepare_cached(sql).await.map_err(classify)?;
        let row = client.query_opt(&st, &[&key]).await.map_err(classify)?;
        row.as_ref().map(chat_from_row).transpose()
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_officer(&self, officer: &OfficerRecord) -> StoreResult<()> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "INSERT INTO officers (id, display_name, password_hash, created_at, capacity)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(classify)?;
        client
            .execute(
                &st,
                &[
                    &officer.officer.id.as_str(),
                    &officer.officer.display_name,
                    &officer.password_hash,
                    &officer.officer.created_at.unix_millis(),
                    &officer
                        .officer
                        .capacity
                        .map(|c| i32::try_from(c).unwrap_or(i32::MAX)),
                ],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn officer(&self, id: &OfficerId) -> StoreResult<Option<OfficerRecord>> {
        let client = self.client().await?;
        let st = client.prepare_cached(SQL_OFFICER).await.map_err(classify)?;
        let row = client
            .query_opt(&st, &[&id.as_str()])
            .await
            .map_err(classify)?;
        row.as_ref().map(officer_from_row).transpose()
    }

    async fn officers(&self) -> StoreResult<Vec<Officer>> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(concat!(officer_columns!(), " ORDER BY id"))
            .await
            .map_err(classify)?;
        let rows = client.query(&st, &[]).await.map_err(classify)?;
        rows.iter()
            .map(|r| officer_from_row(r).map(|o| o.officer))
            .collect()
    }

    async fn get_or_create_chat(&self, new: &NewChat) -> StoreResult<(Chat, bool)> {
        let mut client = self.client().await?;
        // The open chat may be resolved between the conflict and the read that follows
        // (by another node): then there is room for a new one, so insert again.
        for _ in 0..RACE_RETRIES {
            if let Some(found) = self.insert_or_find_chat(&mut client, new).await? {
                return Ok(found);
            }
        }
        Err(StoreError::Unavailable(
            "the customer's open chat kept changing during the login".into(),
        ))
    }

    async fn chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        let client = self.client().await?;
        self.one_chat(&client, SQL_CHAT_BY_ID, &id.to_string())
            .await
    }

    async fn pending_chats(&self, limit: u32) -> StoreResult<Vec<Chat>> {
        self.chat_rows(SQL_QUEUE, &[&i64::from(limit)]).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT (SELECT count(*) FROM officers),
                        (SELECT count(*) FROM chats WHERE status = 'pending'),
                        (SELECT count(*) FROM chats WHERE status = 'assigned')",
            )
            .await
            .map_err(classify)?;
        let row = client.query_one(&st, &[]).await.map_err(classify)?;
        let count = |i: usize| -> StoreResult<u64> {
            let n: i64 = row.try_get(i).map_err(classify)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok(Counts {
            officers: count(0)?,
            pending_chats: count(1)?,
            assigned_chats: count(2)?,
        })
    }

    async fn customer_chats(&self, customer: &CustomerId, limit: u32) -> StoreResult<Vec<Chat>> {
        self.chat_rows(SQL_CUSTOMER_CHATS, &[&customer.as_str(), &i64::from(limit)])
            .await
    }

    async fn officer_chats(
        &self,
        officer: &OfficerId,
        status: ChatStatus,
        limit: u32,
    ) -> StoreResult<Vec<Chat>> {
        self.chat_rows(
            SQL_OFFICER_CHATS,
            &[&officer.as_str(), &status.as_str(), &i64::from(limit)],
        )
        .await
    }

    async fn transition(&self, change: &Transition) -> StoreResult<TransitionOutcome> {
        let mut client = self.client().await?;
        let m = &change.entry;
        let chat_id = m.chat_id.to_string();
        let deltas = open_chat_deltas(change);
        let ids: Vec<&str> = deltas.iter().map(|(id, _)| *id).collect();
        let moves: Vec<i32> = deltas.iter().map(|(_, d)| *d).collect();
        let tx = client.transaction().await.map_err(classify)?;
        if !deltas.is_empty() {
            // The rows of the officers whose open chats this changes, locked until commit:
            // every change that gives or takes one of their chats, on every node, waits
            // here, so the counter read here is the one that holds at commit.
            let st = tx
                .prepare_cached(SQL_LOCK_OFFICERS)
                .await
                .map_err(classify)?;
            let locked = tx.query(&st, &[&ids]).await.map_err(classify)?;
            if let Some(owner) = change.new_owner() {
                let mut room = (None, 0);
                for r in &locked {
                    if r.try_get::<_, &str>(0).map_err(classify)? == owner.as_str() {
                        let capacity: Option<i32> = r.try_get(1).map_err(classify)?;
                        let open: i32 = r.try_get(2).map_err(classify)?;
                        let eligible: bool = r.try_get(3).map_err(classify)?;
                        // Availability is on the locked row; presence is as this
                        // statement reads it (a disconnect committed before it is seen).
                        if change.only_to_eligible && !eligible {
                            return Ok(TransitionOutcome::Ineligible);
                        }
                        room = (capacity.map(|c| u32::try_from(c).unwrap_or(0)), open);
                    }
                }
                let (capacity, open) = room;
                if !change.has_room(capacity, u64::try_from(open).unwrap_or(0)) {
                    return Ok(TransitionOutcome::AtCapacity);
                }
            }
        }
        let file = AttachmentColumns::of(m.attachment.as_ref());
        let st = tx.prepare_cached(SQL_TRANSITION).await.map_err(classify)?;
        let updated = tx
            .query_opt(
                &st,
                &[
                    &chat_id,
                    &change.expected_status.as_str(),
                    &change.expected_owner.as_ref().map(OfficerId::as_str),
                    &change.status.as_str(),
                    &change.owner.as_ref().map(OfficerId::as_str),
                    &m.created_at.unix_millis(),
                    &m.id.to_string(),
                    &m.sender_type.as_str(),
                    &m.sender_id,
                    &m.content,
                    &m.client_message_id,
                    &event_column(m.event.as_ref()),
                    &file.id,
                    &file.name,
                    &file.content_type,
                    &file.size,
                    &file.sha256,
                    &ids,
                    &moves,
                    &change.new_owner().map(OfficerId::as_str),
                ],
            )
            .await
            .map_err(classify);
        let chat = match updated {
            Ok(Some(row)) => chat_from_row(&row)?,
            // The partial unique index: the customer has another open chat.
            Err(StoreError::Duplicate) => return Ok(TransitionOutcome::CustomerHasOpenChat),
            Err(e) => return Err(e),
            Ok(None) => {
                drop(tx);
                return Ok(
                    match self.one_chat(&client, SQL_CHAT_BY_ID, &chat_id).await? {
                        Some(now) => TransitionOutcome::Stale(now),
                        None => TransitionOutcome::NotFound,
                    },
                );
            }
        };
        let entry = m.clone().stored(chat.last_seq);
        write_outbox(&tx, &OutboxEvent::for_transition(&chat, &entry)).await?;
        tx.commit().await.map_err(classify)?;
        Ok(TransitionOutcome::Applied(chat, entry))
    }

    async fn append_message(&self, m: &NewMessage) -> StoreResult<AppendOutcome> {
        let client = self.client().await?;
        let chat_id = m.chat_id.to_string();
        let (status, owner) = match &m.decided_on {
            Some((status, owner)) => (Some(status.as_str()), owner.as_ref().map(OfficerId::as_str)),
            None => (None, None),
        };
        let file = AttachmentColumns::of(m.attachment.as_ref());
        let st = client.prepare_cached(SQL_APPEND).await.map_err(classify)?;
        let appended = client
            .query_opt(
                &st,
                &[
                    &chat_id,
                    &m.created_at.unix_millis(),
                    &status,
                    &owner,
                    &m.sender_type.as_str(),
                    &m.sender_id,
                    &m.client_message_id,
                    &m.id.to_string(),
                    &m.content,
                    &event_column(m.event.as_ref()),
                    &file.id,
                    &file.name,
                    &file.content_type,
                    &file.size,
                    &file.sha256,
                ],
            )
            .await
            .map_err(classify);
        // Nothing written: the chat is no longer as the write was allowed on, or the
        // sender stored this key already (seen by the statement, or by the unique index
        // when the other send committed while this one waited for the chat's row).
        let refused = match appended {
            Ok(Some(row)) => {
                let seq: i64 = row.try_get(0).map_err(classify)?;
                return Ok(AppendOutcome::Created(m.clone().stored(seq as u64)));
            }
            Ok(None) => None,
            Err(StoreError::Duplicate) if m.client_message_id.is_some() => {
                Some(StoreError::Duplicate)
            }
            Err(e) => return Err(e),
        };
        // A retry is answered with the original, also after the chat changed.
        if let Some(key) = &m.client_message_id {
            let original = sent_message(&client, &chat_id, m.sender_type, &m.sender_id, key);
            if let Some(original) = original.await? {
                return Ok(AppendOutcome::Duplicate(original));
            }
        }
        if let Some(e) = refused {
            return Err(e);
        }
        match self.one_chat(&client, SQL_CHAT_BY_ID, &chat_id).await? {
            Some(now) => Ok(AppendOutcome::Stale(now)),
            None => Err(StoreError::backend("append to a chat that does not exist")),
        }
    }

    async fn messages(&self, chat: &ChatId, page: &PageQuery) -> StoreResult<Vec<Message>> {
        let client = self.client().await?;
        let chat = chat.to_string();
        let after = seq_param(page.after, 0);
        let limit = i64::from(page.limit);
        let max_bytes = i64::try_from(page.max_bytes).unwrap_or(i64::MAX);
        let rows = if page.before.is_some() {
            let before = seq_param(page.before, i64::MAX);
            let st = client
                .prepare_cached(SQL_PAGE_BEFORE)
                .await
                .map_err(classify)?;
            client
                .query(&st, &[&chat, &after, &before, &limit, &max_bytes])
                .await
                .map_err(classify)?
        } else {
            let st = client
                .prepare_cached(SQL_PAGE_AFTER)
                .await
                .map_err(classify)?;
            client
                .query(&st, &[&chat, &after, &limit, &max_bytes])
                .await
                .map_err(classify)?
        };
        let mut out = fill_page(rows.iter().map(message_from_row), page.max_bytes)?;
        if page.before.is_some() {
            out.reverse();
        }
        Ok(out)
    }

    async fn sent_message(
        &self,
        chat: &ChatId,
        sender_type: SenderType,
        sender_id: &str,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        let client = self.client().await?;
        sent_message(&client, &chat.to_string(), sender_type, sender_id, key).await
    }

    async fn attachment(&self, id: &AttachmentId) -> StoreResult<Option<Message>> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(SQL_ATTACHMENT)
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&st, &[&id.to_string()])
            .await
            .map_err(classify)?;
        row.map(|r| message_from_row(&r)).transpose()
    }

    async fn blob_in_use(&self, blob: &BlobId) -> StoreResult<bool> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(SQL_BLOB_IN_USE)
            .await
            .map_err(classify)?;
        let row = client
            .query_one(&st, &[&blob.to_hex()])
            .await
            .map_err(classify)?;
        row.try_get(0).map_err(classify)
    }

    async fn last_seq(&self, chat: &ChatId) -> StoreResult<u64> {
        let client = self.client().await?;
        let st = client
            .prepare_cached("SELECT last_seq FROM chats WHERE id = $1")
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&st, &[&chat.to_string()])
            .await
            .map_err(classify)?;
        match row {
            None => Ok(0),
            Some(r) => Ok(r.try_get::<_, i64>(0).map_err(classify)? as u64),
        }
    }

    async fn create_session(&self, s: &SessionRecord) -> StoreResult<bool> {
        let (role, subject, chat) = s.subject.to_columns();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        if role == "officer" {
            // The share lock waits for a disable in flight (which updates the row) and
            // makes a later disable wait for this insert, whose session it then deletes.
            let st = tx
                .prepare_cached("SELECT disabled FROM officers WHERE id = $1 FOR SHARE")
                .await
                .map_err(classify)?;
            let row = tx.query_opt(&st, &[&subject]).await.map_err(classify)?;
            let enabled = match row {
                Some(r) => !r.try_get::<_, bool>(0).map_err(classify)?,
                None => false,
            };
            if !enabled {
                return Ok(false);
            }
        }
        let st = tx
            .prepare_cached(
                "INSERT INTO sessions (token_hash, role, subject, chat_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(classify)?;
        tx.execute(
            &st,
            &[
                &&s.token_hash.0[..],
                &role,
                &subject,
                &chat,
                &s.created_at.unix_millis(),
                &s.expires_at.unix_millis(),
            ],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn session(&self, token_hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        let client = self.client().await?;
        let st = client.prepare_cached(SQL_SESSION).await.map_err(classify)?;
        let Some(r) = client
            .query_opt(&st, &[&&token_hash.0[..]])
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
        let role: String = r.try_get(0).map_err(classify)?;
        let subject: String = r.try_get(1).map_err(classify)?;
        let chat: Option<String> = r.try_get(2).map_err(classify)?;
        let subject = SessionSubject::from_columns(&role, subject, chat)?;
        Ok(Some(SessionRecord {
            token_hash: *token_hash,
            subject,
            created_at: Timestamp::from_unix_millis(r.try_get(3).map_err(classify)?),
            expires_at: Timestamp::from_unix_millis(r.try_get(4).map_err(classify)?),
        }))
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<bool> {
        let client = self.client().await?;
        let st = client
            .prepare_cached("DELETE FROM sessions WHERE token_hash = $1")
            .await
            .map_err(classify)?;
        let n = client
            .execute(&st, &[&&token_hash.0[..]])
            .await
            .map_err(classify)?;
        Ok(n > 0)
    }

    async fn update_officer(
        &self,
        officer: &OfficerId,
        update: &OfficerUpdate,
    ) -> StoreResult<Option<Officer>> {
        let client = self.client().await?;
        let capacity = update
            .capacity
            .flatten()
            .map(|c| i32::try_from(c).unwrap_or(i32::MAX));
        let st = client
            .prepare_cached(
                "UPDATE officers SET capacity = CASE WHEN $2 THEN $3 ELSE capacity END,
                 availability = COALESCE($4, availability) WHERE id = $1",
            )
            .await
            .map_err(classify)?;
        if client
            .execute(
                &st,
                &[
                    &officer.as_str(),
                    &update.capacity.is_some(),
                    &capacity,
                    &update.availability.map(Availability::as_str),
                ],
            )
            .await
            .map_err(classify)?
            == 0
        {
            return Ok(None);
        }
        let st = client.prepare_cached(SQL_OFFICER).await.map_err(classify)?;
        let row = client
            .query_opt(&st, &[&officer.as_str()])
            .await
            .map_err(classify)?;
        Ok(row
            .map(|r| officer_from_row(&r))
            .transpose()?
            .map(|r| r.officer))
    }

    async fn set_presence(
        &self,
        node: &str,
        officer: &OfficerId,
        present: bool,
        now: Timestamp,
    ) -> StoreResult<Option<Officer>> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "INSERT INTO nodes (id, seen_at) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            )
            .await
            .map_err(classify)?;
        client
            .execute(&st, &[&node, &now.unix_millis()])
            .await
            .map_err(classify)?;
        let sql = if present {
            "INSERT INTO presence (officer_id, node_id)
             SELECT id, $2 FROM officers WHERE id = $1 ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM presence WHERE officer_id = $1 AND node_id = $2"
        };
        let st = client.prepare_cached(sql).await.map_err(classify)?;
        client
            .execute(&st, &[&officer.as_str(), &node])
            .await
            .map_err(classify)?;
        let st = client.prepare_cached(SQL_OFFICER).await.map_err(classify)?;
        let row = client
            .query_opt(&st, &[&officer.as_str()])
            .await
            .map_err(classify)?;
        Ok(row
            .map(|r| officer_from_row(&r))
            .transpose()?
            .map(|r| r.officer))
    }

    async fn node_heartbeat(
        &self,
        node: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<Heartbeat> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let st = tx
            .prepare_cached("UPDATE nodes SET seen_at = $2 WHERE id = $1")
            .await
            .map_err(classify)?;
        let known = tx
            .execute(&st, &[&node, &now.unix_millis()])
            .await
            .map_err(classify)?
            == 1;
        if !known {
            let st = tx
                .prepare_cached(
                    "INSERT INTO nodes (id, seen_at) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
                )
                .await
                .map_err(classify)?;
            tx.execute(&st, &[&node, &now.unix_millis()])
                .await
                .map_err(classify)?;
        }
        // The forgotten nodes' presence, and which of their officers no other node holds.
        let st = tx
            .prepare_cached(
                "WITH gone AS (DELETE FROM presence WHERE node_id IN
                   (SELECT id FROM nodes WHERE seen_at < $1) RETURNING officer_id)
                 SELECT DISTINCT officer_id FROM gone WHERE NOT EXISTS
                   (SELECT 1 FROM presence p WHERE p.officer_id = gone.officer_id
                    AND p.node_id NOT IN (SELECT id FROM nodes WHERE seen_at < $1))",
            )
            .await
            .map_err(classify)?;
        let rows = tx
            .query(&st, &[&stale_before.unix_millis()])
            .await
            .map_err(classify)?;
        let st = tx
            .prepare_cached("DELETE FROM nodes WHERE seen_at < $1")
            .await
            .map_err(classify)?;
        tx.execute(&st, &[&stale_before.unix_millis()])
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        let disconnected = rows
            .iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(classify)?;
                OfficerId::parse(id)
                    .map_err(|_| StoreError::backend("a malformed officer id in presence"))
            })
            .collect::<StoreResult<_>>()?;
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
        let client = self.client().await?;
        let st = client
            .prepare_cached(SQL_ELIGIBLE_OFFICERS)
            .await
            .map_err(classify)?;
        let default = default_capacity.map_or(i64::MAX, i64::from);
        let rows = client
            .query(&st, &[&default, &i64::from(limit)])
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|r| officer_from_row(r).map(|o| o.officer))
            .collect()
    }

    async fn queue_keys(&self, limit: u32) -> StoreResult<Vec<QueueKey>> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(SQL_QUEUE_KEYS)
            .await
            .map_err(classify)?;
        let rows = client
            .query(&st, &[&i64::from(limit)])
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|r| {
                let at: i64 = r.try_get(0).map_err(classify)?;
                let id: String = r.try_get(1).map_err(classify)?;
                let id = ChatId::parse(&id)
                    .map_err(|_| StoreError::backend("a malformed chat id in the queue"))?;
                Ok((Timestamp::from_unix_millis(at), id))
            })
            .collect()
    }

    async fn mark_read(
        &self,
        chat: &ChatId,
        side: SenderType,
        seq: u64,
    ) -> StoreResult<ReadOutcome> {
        let client = self.client().await?;
        let chat_id = chat.to_string();
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let st = client
            .prepare_cached(&read_mark_sql(side, "$1", "$2")?)
            .await
            .map_err(classify)?;
        if let Some(row) = client
            .query_opt(&st, &[&chat_id, &seq])
            .await
            .map_err(classify)?
        {
            return Ok(ReadOutcome::Moved(chat_from_row(&row)?));
        }
        Ok(
            match self.one_chat(&client, SQL_CHAT_BY_ID, &chat_id).await? {
                None => ReadOutcome::NotFound,
                Some(now) if seq as u64 > now.last_seq => ReadOutcome::PastEnd(now),
                Some(now) => ReadOutcome::Unchanged(now),
            },
        )
    }

    async fn entries(&self, keys: &[(ChatId, u64)]) -> StoreResult<Vec<Message>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let chats: Vec<String> = keys.iter().map(|(c, _)| c.to_string()).collect();
        let seqs: Vec<i64> = keys
            .iter()
            .map(|(_, s)| i64::try_from(*s).unwrap_or(i64::MAX))
            .collect();
        let client = self.client().await?;
        let st = client.prepare_cached(SQL_ENTRIES).await.map_err(classify)?;
        let rows = client
            .query(&st, &[&chats, &seqs])
            .await
            .map_err(classify)?;
        rows.iter().map(message_from_row).collect()
    }

    async fn set_officer_disabled(
        &self,
        officer: &OfficerId,
        disabled: bool,
    ) -> StoreResult<Option<(Officer, Vec<TokenHash>)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let st = tx
            .prepare_cached("UPDATE officers SET disabled = $2 WHERE id = $1")
            .await
            .map_err(classify)?;
        if tx
            .execute(&st, &[&officer.as_str(), &disabled])
            .await
            .map_err(classify)?
            == 0
        {
            return Ok(None);
        }
        let st = tx.prepare_cached(SQL_OFFICER).await.map_err(classify)?;
        let row = tx
            .query_one(&st, &[&officer.as_str()])
            .await
            .map_err(classify)?;
        let record = officer_from_row(&row)?;
        let mut revoked = Vec::new();
        if disabled {
            // After the row lock above: sessions inserted by logins that held the share
            // lock first are committed and seen here.
            let st = tx
                .prepare_cached(
                    "DELETE FROM sessions WHERE role = 'officer' AND subject = $1
                     RETURNING token_hash",
                )
                .await
                .map_err(classify)?;
            for row in tx
                .query(&st, &[&officer.as_str()])
                .await
                .map_err(classify)?
            {
                revoked.push(TokenHash::from_column(row.try_get(0).map_err(classify)?)?);
            }
        }
        tx.commit().await.map_err(classify)?;
        Ok(Some((record.officer, revoked)))
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        let client = self.client().await?;
        let st = client
            .prepare_cached("DELETE FROM sessions WHERE expires_at <= $1")
            .await
            .map_err(classify)?;
        client
            .execute(&st, &[&now.unix_millis()])
            .await
            .map_err(classify)
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(classify)?;
        Ok(())
    }

    async fn close(&self) -> StoreResult<()> {
        // Idle connections are closed now, busy ones when they are returned; later
        // calls fail with `Unavailable`.
        self.pool.close();
        Ok(())
    }

    async fn first_reply(&self, chat: &ChatId) -> StoreResult<Option<chatcore::MessageId>> {
        self.read_first_reply(chat).await
    }

    async fn desk_report(
        &self,
        period: chatcore::ReportPeriod,
    ) -> StoreResult<chatcore::DeskReport> {
        self.read_desk_report(period).await
    }
}

/// How many times an operation that lost a race to another node is tried again.
const RACE_RETRIES: usize = 8;

impl PgStore {
    /// One attempt at a login's chat: a new chat, or the customer's open one; `None` when
    /// the open chat that blocked the insert was resolved before it could be read.
    async fn insert_or_find_chat(
        &self,
        client: &mut Object,
        new: &NewChat,
    ) -> StoreResult<Option<(Chat, bool)>> {
        // The new chat, its officer's counter and its webhook events in one transaction.
        let tx = client.transaction().await.map_err(classify)?;
        let new = match &new.assigned_officer_id {
            Some(officer) => {
                // A chat created with its officer counts on their row, locked first
                // (officers before chats, as every transaction locks them): every change
                // that gives them a chat, on every node, waits here, so the room read
                // here is the room at commit.
                let st = tx
                    .prepare_cached(SQL_LOCK_OFFICERS)
                    .await
                    .map_err(classify)?;
                let locked = tx
                    .query(&st, &[&[officer.as_str()].as_slice()])
                    .await
                    .map_err(classify)?;
                let mut room = (None, 0);
                for r in &locked {
                    let capacity: Option<i32> = r.try_get(1).map_err(classify)?;
                    let open: i32 = r.try_get(2).map_err(classify)?;
                    room = (capacity.map(|c| u32::try_from(c).unwrap_or(0)), open);
                }
                let (capacity, open) = room;
                new.clone()
                    .placed(capacity, u64::try_from(open).unwrap_or(0))
            }
            None => new.clone(),
        };
        let (id, status) = (new.id.to_string(), new.status());
        let officer = new.assigned_officer_id.as_ref().map(OfficerId::as_str);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &id,
            &new.customer_id.as_str(),
            &officer,
            &status.as_str(),
            &new.created_at.unix_millis(),
            &new.customer_name,
        ];
        // ON CONFLICT waits for a concurrent insert of the same customer to commit, so
        // when nothing is inserted here the other chat is visible to the next statement.
        let st = tx.prepare_cached(SQL_INSERT_CHAT).await.map_err(classify)?;
        let inserted = tx.query_opt(&st, &params).await.map_err(classify)?;
        if let (Some(officer), Some(_)) = (officer, &inserted) {
            let st = tx
                .prepare_cached("UPDATE officers SET open_chats = open_chats + 1 WHERE id = $1")
                .await
                .map_err(classify)?;
            tx.execute(&st, &[&officer]).await.map_err(classify)?;
        }
        if let Some(row) = inserted {
            let chat = chat_from_row(&row)?;
            write_outbox(&tx, &[OutboxEvent::for_new_chat(&chat)]).await?;
            tx.commit().await.map_err(classify)?;
            return Ok(Some((chat, true)));
        }
        tx.commit().await.map_err(classify)?;
        if let Some(name) = &new.customer_name {
            let st = client
                .prepare_cached(SQL_RENAME_CUSTOMER)
                .await
                .map_err(classify)?;
            let row = client
                .query_opt(&st, &[&new.customer_id.as_str(), name])
                .await
                .map_err(classify)?;
            return Ok(match row {
                Some(row) => Some((chat_from_row(&row)?, false)),
                None => None,
            });
        }
        let chat = self
            .one_chat(client, SQL_CHAT_BY_CUSTOMER, new.customer_id.as_str())
            .await?;
        Ok(chat.map(|chat| (chat, false)))
    }
}

/// The message a sender stored in a chat under an idempotency key, if any, read on
/// `client` (a pooled connection or an open transaction).
async fn sent_message(
    client: &impl GenericClient,
    chat: &str,
    sender_type: SenderType,
    sender_id: &str,
    key: &str,
) -> StoreResult<Option<Message>> {
    let st = client
        .prepare_cached(SQL_IDEMPOTENT_ORIGINAL)
        .await
        .map_err(classify)?;
    let row = client
        .query_opt(&st, &[&chat, &sender_type.as_str(), &sender_id, &key])
        .await
        .map_err(classify)?;
    row.map(|r| message_from_row(&r)).transpose()
}

/// How a transition moves each officer's open chats: -1 for the officer who held the chat
/// open and no longer does, +1 for the one it is given to; zeros left out, ordered by id
/// (the order the rows are locked in).
fn open_chat_deltas(change: &Transition) -> Vec<(&str, i32)> {
    fn open(status: ChatStatus, owner: &Option<OfficerId>) -> Option<&str> {
        match (status, owner) {
            (ChatStatus::Assigned, Some(id)) => Some(id.as_str()),
            _ => None,
        }
    }
    let before = open(change.expected_status, &change.expected_owner);
    let after = open(change.status, &change.owner);
    let mut deltas = Vec::with_capacity(2);
    if before != after {
        deltas.extend(before.map(|id| (id, -1)));
        deltas.extend(after.map(|id| (id, 1)));
    }
    deltas.sort_unstable();
    deltas
}
