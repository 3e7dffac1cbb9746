//! The store operations: `impl Store for SqliteStore`, each one's statements run on the
//! writer (writes, inside its group transaction) or on a reader. The rules of the chat
//! are not decided here, only the data invariants the `Store` trait promises.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::error::classify;
use super::rows::{
    SQL_ATTACHMENT, SQL_BLOB_IN_USE, SQL_CHAT_BY_CUSTOMER, SQL_CUSTOMER_CHATS,
    SQL_ELIGIBLE_OFFICERS, SQL_ENTRY, SQL_INSERT_MESSAGE, SQL_NEXT_SEQ, SQL_OFFICER_CHATS,
    SQL_PAGE_AFTER, SQL_PAGE_BEFORE, SQL_QUEUE, SQL_QUEUE_KEYS, SQL_RENAME_CUSTOMER, SQL_SESSION,
    SQL_TRANSITION, chat_by_id, chat_from_row, message_from_row, officer_by_id, officer_columns,
    officer_from_row, sent_message,
};
use super::schema::schema_version;
use super::webhooks::write_outbox;
use crate::blob::BlobId;
use crate::ids::{AttachmentId, ChatId, CustomerId, OfficerId};
use crate::model::{Availability, Chat, ChatStatus, Message, Officer, SenderType, Timestamp};
use crate::store::{
    AppendOutcome, AttachmentColumns, Counts, Heartbeat, NewChat, NewMessage, OfficerRecord,
    OfficerUpdate, PageQuery, QueueKey, ReadOutcome, SessionRecord, SessionSubject, Store,
    StoreError, StoreResult, TokenHash, Transition, TransitionOutcome, event_column, fill_page,
    read_mark_sql, seq_param,
};
use crate::webhooks::OutboxEvent;

#[async_trait]
impl Store for SqliteStore {
    async fn create_officer(&self, officer: &OfficerRecord) -> StoreResult<()> {
        let o = officer.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO officers (id, display_name, password_hash, created_at, capacity)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    o.officer.id.as_str(),
                    o.officer.display_name,
                    o.password_hash,
                    o.officer.created_at.unix_millis(),
                    o.officer.capacity
                ])
            })
            .map(|_| ())
            .map_err(classify)
        })
        .await
    }

    async fn officer(&self, id: &OfficerId) -> StoreResult<Option<OfficerRecord>> {
        let id = id.clone();
        self.read(move |c| officer_by_id(c, &id).map_err(classify))
            .await
    }

    async fn officers(&self) -> StoreResult<Vec<Officer>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(concat!(officer_columns!(), " ORDER BY id"))
                .map_err(classify)?;
            let rows = st
                .query_map([], officer_from_row)
                .map_err(classify)?
                .map(|r| r.map(|o| o.officer))
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn get_or_create_chat(&self, new: &NewChat) -> StoreResult<(Chat, bool)> {
        let new = new.clone();
        self.write(move |c| {
            // The one writer serializes this count and the insert below.
            let new = match &new.assigned_officer_id {
                Some(officer) => {
                    let load = officer_by_id(c, officer).map_err(classify)?;
                    let (capacity, open) = load.map_or((None, 0), |r| {
                        (r.officer.capacity, u64::from(r.officer.open_chats))
                    });
                    new.placed(capacity, open)
                }
                None => new,
            };
            let status = new.status();
            let inserted = c
                .prepare_cached(
                    "INSERT INTO chats (id, customer_id, assigned_officer_id, status, created_at,
                                        customer_name, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)
                     ON CONFLICT(customer_id) WHERE status <> 'resolved' DO NOTHING",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        new.id.to_string(),
                        new.customer_id.as_str(),
                        new.assigned_officer_id.as_ref().map(OfficerId::as_str),
                        status.as_str(),
                        new.created_at.unix_millis(),
                        new.customer_name
                    ])
                })
                .map_err(classify)?;
            if inserted == 0 && new.customer_name.is_some() {
                c.prepare_cached(SQL_RENAME_CUSTOMER)
                    .and_then(|mut st| {
                        st.execute(params![new.customer_id.as_str(), new.customer_name])
                    })
                    .map_err(classify)?;
            }
            let chat = c
                .prepare_cached(SQL_CHAT_BY_CUSTOMER)
                .and_then(|mut st| st.query_row([new.customer_id.as_str()], chat_from_row))
                .map_err(classify)?;
            if inserted == 1 {
                write_outbox(c, || vec![OutboxEvent::for_new_chat(&chat)])?;
            }
            Ok((chat, inserted == 1))
        })
        .await
    }

    async fn chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        let id = *id;
        self.read(move |c| chat_by_id(c, &id).map_err(classify))
            .await
    }

    async fn pending_chats(&self, limit: u32) -> StoreResult<Vec<Chat>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(SQL_QUEUE).map_err(classify)?;
            let rows = st
                .query_map([i64::from(limit)], chat_from_row)
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT (SELECT count(*) FROM officers),
                        (SELECT count(*) FROM chats WHERE status = 'pending'),
                        (SELECT count(*) FROM chats WHERE status = 'assigned')",
            )
            .and_then(|mut st| {
                st.query_row([], |r| {
                    Ok(Counts {
                        officers: r.get::<_, i64>(0)? as u64,
                        pending_chats: r.get::<_, i64>(1)? as u64,
                        assigned_chats: r.get::<_, i64>(2)? as u64,
                    })
                })
            })
            .map_err(classify)
        })
        .await
    }

    async fn customer_chats(&self, customer: &CustomerId, limit: u32) -> StoreResult<Vec<Chat>> {
        let customer = customer.clone();
        self.read(move |c| {
            let mut st = c.prepare_cached(SQL_CUSTOMER_CHATS).map_err(classify)?;
            let rows = st
                .query_map(params![customer.as_str(), i64::from(limit)], chat_from_row)
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn officer_chats(
        &self,
        officer: &OfficerId,
        status: ChatStatus,
        limit: u32,
    ) -> StoreResult<Vec<Chat>> {
        let officer = officer.clone();
        self.read(move |c| {
            let mut st = c.prepare_cached(SQL_OFFICER_CHATS).map_err(classify)?;
            let rows = st
                .query_map(
                    params![officer.as_str(), status.as_str(), i64::from(limit)],
                    chat_from_row,
                )
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn transition(&self, change: &Transition) -> StoreResult<TransitionOutcome> {
        let change = change.clone();
        self.write(move |c| {
            let m = &change.entry;
            let chat_id = m.chat_id.to_string();
            let at = m.created_at.unix_millis();
            // The one writer serializes this count and the update below.
            if let Some(owner) = change.new_owner() {
                let load = officer_by_id(c, owner).map_err(classify)?;
                if let Some(r) = &load {
                    if !change.may_go_to(&r.officer) {
                        return Ok(TransitionOutcome::Ineligible);
                    }
                }
                let (capacity, open) = load.map_or((None, 0), |r| {
                    (r.officer.capacity, u64::from(r.officer.open_chats))
                });
                if !change.has_room(capacity, open) {
                    return Ok(TransitionOutcome::AtCapacity);
                }
            }
            let updated = c
                .prepare_cached(SQL_TRANSITION)
                .and_then(|mut st| {
                    st.query_row(
                        params![
                            chat_id,
                            change.expected_status.as_str(),
                            change.expected_owner.as_ref().map(OfficerId::as_str),
                            change.status.as_str(),
                            change.owner.as_ref().map(OfficerId::as_str),
                            at
                        ],
                        chat_from_row,
                    )
                    .optional()
                })
                .map_err(classify);
            let chat = match updated {
                Ok(Some(chat)) => chat,
                // The partial unique index: the customer has another open chat.
                Err(StoreError::Duplicate) => return Ok(TransitionOutcome::CustomerHasOpenChat),
                Err(e) => return Err(e),
                Ok(None) => {
                    return Ok(match chat_by_id(c, &m.chat_id).map_err(classify)? {
                        Some(now) => TransitionOutcome::Stale(now),
                        None => TransitionOutcome::NotFound,
                    });
                }
            };
            insert_message(c, m, chat.last_seq as i64)?;
            if let Some(owner) = change.new_owner() {
                c.prepare_cached("UPDATE officers SET last_assigned_at = ?2 WHERE id = ?1")
                    .and_then(|mut st| st.execute(params![owner.as_str(), at]))
                    .map_err(classify)?;
            }
            let entry = m.clone().stored(chat.last_seq);
            write_outbox(c, || OutboxEvent::for_transition(&chat, &entry))?;
            Ok(TransitionOutcome::Applied(chat, entry))
        })
        .await
    }

    async fn append_message(&self, message: &NewMessage) -> StoreResult<AppendOutcome> {
        let m = message.clone();
        self.write(move |c| {
            let chat_id = m.chat_id.to_string();
            if let Some(key) = &m.client_message_id {
                let original = sent_message(c, &chat_id, m.sender_type, &m.sender_id, key)
                    .map_err(classify)?;
                if let Some(original) = original {
                    return Ok(AppendOutcome::Duplicate(original));
                }
            }
            let (status, owner) = match &m.decided_on {
                Some((status, owner)) => (Some(status.as_str()), owner.as_ref()),
                None => (None, None),
            };
            let seq: Option<i64> = c
                .prepare_cached(SQL_NEXT_SEQ)
                .and_then(|mut st| {
                    st.query_row(
                        params![
                            chat_id,
                            m.created_at.unix_millis(),
                            status,
                            owner.map(OfficerId::as_str)
                        ],
                        |r| r.get(0),
                    )
                    .optional()
                })
                .map_err(classify)?;
            let Some(seq) = seq else {
                return match chat_by_id(c, &m.chat_id).map_err(classify)? {
                    Some(now) => Ok(AppendOutcome::Stale(now)),
                    None => Err(StoreError::backend("append to a chat that does not exist")),
                };
            };
            insert_message(c, &m, seq)?;
            let stored = m.stored(seq as u64);
            // No body: the outbox reads the message when it delivers it.
            write_outbox(c, || vec![OutboxEvent::message_mark(&stored)])?;
            Ok(AppendOutcome::Created(stored))
        })
        .await
    }

    async fn messages(&self, chat: &ChatId, page: &PageQuery) -> StoreResult<Vec<Message>> {
        let (chat, page) = (chat.to_string(), *page);
        self.read(move |c| {
            let after = seq_param(page.after, 0);
            let limit = i64::from(page.limit);
            // Rows are read one by one and the page stops at its byte cap, so a window of
            // huge messages is not read whole.
            if page.before.is_some() {
                let before = seq_param(page.before, i64::MAX);
                let mut st = c.prepare_cached(SQL_PAGE_BEFORE).map_err(classify)?;
                let rows = st
                    .query_map(params![chat, after, before, limit], message_from_row)
                    .map_err(classify)?;
                let mut out = fill_page(rows, page.max_bytes).map_err(classify)?;
                out.reverse();
                Ok(out)
            } else {
                let mut st = c.prepare_cached(SQL_PAGE_AFTER).map_err(classify)?;
                let rows = st
                    .query_map(params![chat, after, limit], message_from_row)
                    .map_err(classify)?;
                fill_page(rows, page.max_bytes).map_err(classify)
            }
        })
        .await
    }

    async fn sent_message(
        &self,
        chat: &ChatId,
        sender_type: SenderType,
        sender_id: &str,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        let (chat, sender_id, key) = (chat.to_string(), sender_id.to_string(), key.to_string());
        self.read(move |c| sent_message(c, &chat, sender_type, &sender_id, &key).map_err(classify))
            .await
    }

    async fn attachment(&self, id: &AttachmentId) -> StoreResult<Option<Message>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(SQL_ATTACHMENT)
                .and_then(|mut st| st.query_row([id], message_from_row).optional())
                .map_err(classify)
        })
        .await
    }

    async fn blob_in_use(&self, blob: &BlobId) -> StoreResult<bool> {
        let blob = blob.to_hex();
        self.read(move |c| {
            c.prepare_cached(SQL_BLOB_IN_USE)
                .and_then(|mut st| st.query_row([blob], |_| Ok(())).optional())
                .map(|found| found.is_some())
                .map_err(classify)
        })
        .await
    }

    async fn last_seq(&self, chat: &ChatId) -> StoreResult<u64> {
        let chat = chat.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT last_seq FROM chats WHERE id = ?1")
                .and_then(|mut st| st.query_row([chat], |r| r.get::<_, i64>(0)).optional())
                .map(|v| v.unwrap_or(0) as u64)
                .map_err(classify)
        })
        .await
    }

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<bool> {
        let s = session.clone();
        self.write(move |c| {
            let (role, subject, chat) = s.subject.to_columns();
            // On the one writer, the check and the insert are one step: a disable cannot
            // fall between them.
            c.prepare_cached(
                "INSERT INTO sessions (token_hash, role, subject, chat_id, created_at, expires_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6
                 WHERE ?2 <> 'officer'
                    OR EXISTS (SELECT 1 FROM officers WHERE id = ?3 AND disabled = 0)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    &s.token_hash.0[..],
                    role,
                    subject,
                    chat,
                    s.created_at.unix_millis(),
                    s.expires_at.unix_millis()
                ])
            })
            .map(|n| n == 1)
            .map_err(classify)
        })
        .await
    }

    async fn session(&self, token_hash: &TokenHash) -> StoreResult<Option<SessionRecord>> {
        let hash = *token_hash;
        self.read(move |c| {
            let row = c
                .prepare_cached(SQL_SESSION)
                .and_then(|mut st| {
                    st.query_row([&hash.0[..]], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(classify)?;
            let Some((role, subject, chat, created, expires)) = row else {
                return Ok(None);
            };
            let subject = SessionSubject::from_columns(&role, subject, chat)?;
            Ok(Some(SessionRecord {
                token_hash: hash,
                subject,
                created_at: Timestamp::from_unix_millis(created),
                expires_at: Timestamp::from_unix_millis(expires),
            }))
        })
        .await
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> StoreResult<bool> {
        let hash = *token_hash;
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
                .and_then(|mut st| st.execute([&hash.0[..]]))
                .map(|n| n > 0)
                .map_err(classify)
        })
        .await
    }

    async fn update_officer(
        &self,
        officer: &OfficerId,
        update: &OfficerUpdate,
    ) -> StoreResult<Option<Officer>> {
        let (officer, update) = (officer.clone(), update.clone());
        self.write(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE officers SET capacity = CASE WHEN ?2 THEN ?3 ELSE capacity END,
                     availability = COALESCE(?4, availability) WHERE id = ?1",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        officer.as_str(),
                        update.capacity.is_some(),
                        update.capacity.flatten(),
                        update.availability.map(Availability::as_str)
                    ])
                })
                .map_err(classify)?;
            if changed == 0 {
                return Ok(None);
            }
            Ok(officer_by_id(c, &officer)
                .map_err(classify)?
                .map(|r| r.officer))
        })
        .await
    }

    async fn set_presence(
        &self,
        node: &str,
        officer: &OfficerId,
        present: bool,
        now: Timestamp,
    ) -> StoreResult<Option<Officer>> {
        let (node, officer) = (node.to_owned(), officer.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO nodes (id, seen_at) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            )
            .and_then(|mut st| st.execute(params![node, now.unix_millis()]))
            .map_err(classify)?;
            let sql = if present {
                "INSERT INTO presence (officer_id, node_id)
                 SELECT id, ?2 FROM officers WHERE id = ?1
                 ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM presence WHERE officer_id = ?1 AND node_id = ?2"
            };
            c.prepare_cached(sql)
                .and_then(|mut st| st.execute(params![officer.as_str(), node]))
                .map_err(classify)?;
            Ok(officer_by_id(c, &officer)
                .map_err(classify)?
                .map(|r| r.officer))
        })
        .await
    }

    async fn node_heartbeat(
        &self,
        node: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<Heartbeat> {
        let node = node.to_owned();
        self.write(move |c| {
            let known = c
                .prepare_cached("UPDATE nodes SET seen_at = ?2 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![node, now.unix_millis()]))
                .map_err(classify)?
                == 1;
            if !known {
                c.prepare_cached("INSERT INTO nodes (id, seen_at) VALUES (?1, ?2)")
                    .and_then(|mut st| st.execute(params![node, now.unix_millis()]))
                    .map_err(classify)?;
            }
            let stale = stale_before.unix_millis();
            let forgotten: Vec<String> = c
                .prepare_cached(
                    "DELETE FROM presence WHERE node_id IN
                     (SELECT id FROM nodes WHERE seen_at < ?1) RETURNING officer_id",
                )
                .and_then(|mut st| {
                    st.query_map([stale], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()
                })
                .map_err(classify)?;
            c.prepare_cached("DELETE FROM nodes WHERE seen_at < ?1")
                .and_then(|mut st| st.execute([stale]))
                .map_err(classify)?;
            let mut disconnected = Vec::new();
            for officer in forgotten {
                let still: bool = c
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM presence WHERE officer_id = ?1)")
                    .and_then(|mut st| st.query_row([&officer], |r| r.get(0)))
                    .map_err(classify)?;
                let officer = OfficerId::parse(officer)
                    .map_err(|_| StoreError::backend("a malformed officer id in presence"))?;
                if !still && !disconnected.contains(&officer) {
                    disconnected.push(officer);
                }
            }
            Ok(Heartbeat {
                known,
                disconnected,
            })
        })
        .await
    }

    async fn eligible_officers(
        &self,
        default_capacity: Option<u32>,
        limit: u32,
    ) -> StoreResult<Vec<Officer>> {
        let default = default_capacity.map_or(i64::MAX, i64::from);
        self.read(move |c| {
            let mut st = c.prepare_cached(SQL_ELIGIBLE_OFFICERS).map_err(classify)?;
            let rows = st
                .query_map(params![default, i64::from(limit)], officer_from_row)
                .map_err(classify)?
                .map(|r| r.map(|o| o.officer))
                .collect::<rusqlite::Result<Vec<_>>>();
            rows.map_err(classify)
        })
        .await
    }

    async fn queue_keys(&self, limit: u32) -> StoreResult<Vec<QueueKey>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(SQL_QUEUE_KEYS).map_err(classify)?;
            let rows = st
                .query_map([i64::from(limit)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(classify)?;
            rows.into_iter()
                .map(|(at, id)| {
                    let id = ChatId::parse(&id)
                        .map_err(|_| StoreError::backend("a malformed chat id in the queue"))?;
                    Ok((Timestamp::from_unix_millis(at), id))
                })
                .collect()
        })
        .await
    }

    async fn mark_read(
        &self,
        chat: &ChatId,
        side: SenderType,
        seq: u64,
    ) -> StoreResult<ReadOutcome> {
        let sql = read_mark_sql(side, "?1", "?2")?;
        let (chat, seq) = (*chat, i64::try_from(seq).unwrap_or(i64::MAX));
        self.write(move |c| {
            let moved = c
                .prepare_cached(&sql)
                .and_then(|mut st| {
                    st.query_row(params![chat.to_string(), seq], chat_from_row)
                        .optional()
                })
                .map_err(classify)?;
            if let Some(now) = moved {
                return Ok(ReadOutcome::Moved(now));
            }
            Ok(match chat_by_id(c, &chat).map_err(classify)? {
                None => ReadOutcome::NotFound,
                Some(now) if seq as u64 > now.last_seq => ReadOutcome::PastEnd(now),
                Some(now) => ReadOutcome::Unchanged(now),
            })
        })
        .await
    }

    async fn entries(&self, keys: &[(ChatId, u64)]) -> StoreResult<Vec<Message>> {
        let keys = keys.to_vec();
        self.read(move |c| {
            let mut st = c.prepare_cached(SQL_ENTRY).map_err(classify)?;
            let mut found = Vec::with_capacity(keys.len());
            for (chat, seq) in keys {
                let entry = st
                    .query_row(
                        params![chat.to_string(), i64::try_from(seq).unwrap_or(i64::MAX)],
                        message_from_row,
                    )
                    .optional()
                    .map_err(classify)?;
                found.extend(entry);
            }
            Ok(found)
        })
        .await
    }

    async fn set_officer_disabled(
        &self,
        officer: &OfficerId,
        disabled: bool,
    ) -> StoreResult<Option<(Officer, Vec<TokenHash>)>> {
        let officer = officer.clone();
        self.write(move |c| {
            let changed = c
                .prepare_cached("UPDATE officers SET disabled = ?2 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![officer.as_str(), disabled]))
                .map_err(classify)?;
            let Some(record) = officer_by_id(c, &officer)
                .map_err(classify)?
                .filter(|_| changed == 1)
            else {
                return Ok(None);
            };
            let mut revoked = Vec::new();
            if disabled {
                let mut st = c
                    .prepare_cached(
                        "DELETE FROM sessions WHERE role = 'officer' AND subject = ?1
                         RETURNING token_hash",
                    )
                    .map_err(classify)?;
                let rows = st
                    .query_map([officer.as_str()], |r| r.get::<_, Vec<u8>>(0))
                    .map_err(classify)?;
                for row in rows {
                    revoked.push(TokenHash::from_column(row.map_err(classify)?)?);
                }
            }
            Ok(Some((record.officer, revoked)))
        })
        .await
    }

    async fn purge_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")
                .and_then(|mut st| st.execute([now.unix_millis()]))
                .map(|n| n as u64)
                .map_err(classify)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(classify))
            .await?;
        // A write proves the writer is alive and the file is writable. An empty
        // transaction writes nothing, so it would succeed on a full disk or a read-only
        // file; setting `user_version` to its own value writes one page for real.
        self.write(|c| {
            let version = schema_version(c)?;
            c.execute_batch(&format!("PRAGMA user_version = {version}"))
                .map_err(classify)
        })
        .await
    }

    async fn close(&self) -> StoreResult<()> {
        self.stop().await
    }

    async fn first_reply(&self, chat: &ChatId) -> StoreResult<Option<crate::ids::MessageId>> {
        self.read_first_reply(chat).await
    }

    async fn desk_report(
        &self,
        period: crate::report::ReportPeriod,
    ) -> StoreResult<crate::report::DeskReport> {
        self.read_desk_report(period).await
    }
}

/// Writes a message at `seq` inside the writer's transaction (a send, or a transition's
/// system entry).
fn insert_message(c: &rusqlite::Connection, m: &NewMessage, seq: i64) -> StoreResult<()> {
    let file = AttachmentColumns::of(m.attachment.as_ref());
    c.prepare_cached(SQL_INSERT_MESSAGE)
        .and_then(|mut st| {
            st.execute(params![
                m.chat_id.to_string(),
                seq,
                m.id.to_string(),
                m.sender_type.as_str(),
                m.sender_id,
                m.content,
                m.created_at.unix_millis(),
                m.client_message_id,
                event_column(m.event.as_ref()),
                file.id,
                file.name,
                file.content_type,
                file.size,
                file.sha256
            ])
        })
        .map_err(classify)?;
    Ok(())
}
