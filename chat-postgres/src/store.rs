//! [`PgStore`]: `chatcore::Store` on PostgreSQL through a deadpool connection pool.
//!
//! Every invariant is decided by the database in one statement or one transaction, so
//! any number of nodes may share it: the claim is one conditional `UPDATE`, a message's
//! `seq` comes from `UPDATE chats SET last_seq = last_seq + 1` in the transaction that
//! inserts it (the row lock orders concurrent senders on any connection), and a
//! customer's one chat from `INSERT ... ON CONFLICT (customer_id) DO NOTHING`. It holds
//! no rule of the chat itself; those live in `chatcore`.

use std::time::Duration;

use async_trait::async_trait;
use chatcore::store::{
    AppendOutcome, ClaimOutcome, NewChat, NewMessage, OfficerRecord, PageQuery, SessionRecord,
    SessionSubject, StoreResult, TokenHash, fill_page,
};
use chatcore::{
    Chat, ChatId, ChatStatus, CustomerId, Message, MessageId, Officer, OfficerId, SenderType,
    Store, StoreError, Timestamp,
};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row};

use crate::error::{classify, classify_pool};
use crate::schema::migrate;

/// Options for [`PgStore::connect_with`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections the pool opens to the server. Default 16.
    pub pool_size: usize,
    /// How long a request waits for a free connection, and for a new one to be
    /// established, before failing with `StoreError::Unavailable`. Default 5 s.
    pub timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL store. Cheap to clone; clones share one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection settings may hold a password; only the pool's shape is shown.
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// Parses a connection string (`postgres://user:pass@host:port/db` or
/// `host=... dbname=...`).
pub(crate) fn parse_url(url: &str) -> StoreResult<tokio_postgres::Config> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| StoreError::backend(format!("invalid PostgreSQL connection string: {e}")))
}

impl PgStore {
    /// Connects with default options and migrates the schema.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(parse_url(url)?, PgOptions::default()).await
    }

    /// Connects with `options` and migrates the schema (once, even if several nodes
    /// start at the same moment).
    pub async fn connect_with(
        mut config: tokio_postgres::Config,
        options: PgOptions,
    ) -> StoreResult<Self> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("chat-postgres");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| StoreError::backend(format!("cannot build the pool: {e}")))?;
        let store = Self { pool };
        let mut client = store.client().await?;
        migrate(&mut client).await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(classify_pool)
    }
}

macro_rules! chat_columns {
    () => {
        "id, customer_id, assigned_officer_id, status, created_at, customer_name"
    };
}
macro_rules! message_columns {
    () => {
        "id, chat_id, seq, sender_type, sender_id, content, created_at, client_message_id"
    };
}

const SQL_CHAT_BY_ID: &str = concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = $1");
const SQL_CHAT_BY_CUSTOMER: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE customer_id = $1"
);
const SQL_INSERT_CHAT: &str = concat!(
    "INSERT INTO chats (id, customer_id, assigned_officer_id, status, created_at, customer_name)",
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (customer_id) DO NOTHING RETURNING ",
    chat_columns!()
);
const SQL_RENAME_CUSTOMER: &str = concat!(
    "UPDATE chats SET customer_name = $2 WHERE customer_id = $1 RETURNING ",
    chat_columns!()
);
const SQL_QUEUE: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE assigned_officer_id IS NULL ORDER BY created_at, id LIMIT $1"
);
const SQL_OFFICER_CHATS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats WHERE assigned_officer_id = $1 ORDER BY created_at, id LIMIT $2"
);
const SQL_CLAIM: &str = concat!(
    "UPDATE chats SET assigned_officer_id = $2, status = 'assigned'",
    " WHERE id = $1 AND assigned_officer_id IS NULL RETURNING ",
    chat_columns!()
);
const SQL_IDEMPOTENT_ORIGINAL: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE chat_id = $1 AND sender_type = $2 AND sender_id = $3",
    " AND client_message_id = $4"
);
const SQL_NEXT_SEQ: &str =
    "UPDATE chats SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq";
const SQL_INSERT_MESSAGE: &str = "INSERT INTO messages (chat_id, seq, id, sender_type, \
     sender_id, content, created_at, client_message_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
// A page's rows stop, in the database, at the first row whose preceding contents
// already hold the byte cap (`$4`, `$5`): a message's JSON is never shorter than its
// content, so no later row could fit, and a window of huge rows is never sent whole.
// `fill_page` then cuts at the exact JSON size.
const SQL_PAGE_AFTER: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM (SELECT ",
    message_columns!(),
    ", SUM(octet_length(content)) OVER (ORDER BY seq ASC ROWS UNBOUNDED PRECEDING)",
    " - octet_length(content) AS ahead",
    " FROM messages WHERE chat_id = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3) page",
    " WHERE ahead < $4 ORDER BY seq ASC"
);
const SQL_PAGE_BEFORE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM (SELECT ",
    message_columns!(),
    ", SUM(octet_length(content)) OVER (ORDER BY seq DESC ROWS UNBOUNDED PRECEDING)",
    " - octet_length(content) AS ahead",
    " FROM messages WHERE chat_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq DESC LIMIT $4)",
    " page WHERE ahead < $5 ORDER BY seq DESC"
);
const SQL_OFFICER: &str =
    "SELECT id, display_name, password_hash, created_at, disabled FROM officers WHERE id = $1";
const SQL_SESSION: &str = "SELECT role, subject, chat_id, created_at, expires_at \
     FROM sessions WHERE token_hash = $1";

fn corrupt(what: &str) -> StoreError {
    StoreError::backend(format!("malformed row: {what}"))
}

fn chat_from_row(r: &Row) -> StoreResult<Chat> {
    let id: String = r.try_get(0).map_err(classify)?;
    let customer: String = r.try_get(1).map_err(classify)?;
    let officer: Option<String> = r.try_get(2).map_err(classify)?;
    let status: String = r.try_get(3).map_err(classify)?;
    Ok(Chat {
        id: ChatId::parse(&id).map_err(|_| corrupt("chats.id"))?,
        customer_id: CustomerId::parse(customer).map_err(|_| corrupt("chats.customer_id"))?,
        assigned_officer_id: officer
            .map(OfficerId::parse)
            .transpose()
            .map_err(|_| corrupt("chats.assigned_officer_id"))?,
        status: ChatStatus::parse(&status).ok_or_else(|| corrupt("chats.status"))?,
        created_at: Timestamp::from_unix_millis(r.try_get(4).map_err(classify)?),
        customer_name: r.try_get(5).map_err(classify)?,
    })
}

fn message_from_row(r: &Row) -> StoreResult<Message> {
    let id: String = r.try_get(0).map_err(classify)?;
    let chat: String = r.try_get(1).map_err(classify)?;
    let seq: i64 = r.try_get(2).map_err(classify)?;
    let sender_type: String = r.try_get(3).map_err(classify)?;
    Ok(Message {
        id: MessageId::parse(&id).map_err(|_| corrupt("messages.id"))?,
        chat_id: ChatId::parse(&chat).map_err(|_| corrupt("messages.chat_id"))?,
        seq: u64::try_from(seq).map_err(|_| corrupt("messages.seq"))?,
        sender_type: SenderType::parse(&sender_type)
            .ok_or_else(|| corrupt("messages.sender_type"))?,
        sender_id: r.try_get(4).map_err(classify)?,
        content: r.try_get(5).map_err(classify)?,
        created_at: Timestamp::from_unix_millis(r.try_get(6).map_err(classify)?),
        client_message_id: r.try_get(7).map_err(classify)?,
    })
}

fn officer_from_row(r: &Row) -> StoreResult<OfficerRecord> {
    let id: String = r.try_get(0).map_err(classify)?;
    Ok(OfficerRecord {
        officer: Officer {
            id: OfficerId::parse(id).map_err(|_| corrupt("officers.id"))?,
            display_name: r.try_get(1).map_err(classify)?,
            created_at: Timestamp::from_unix_millis(r.try_get(3).map_err(classify)?),
            disabled: r.try_get(4).map_err(classify)?,
        },
        password_hash: r.try_get(2).map_err(classify)?,
    })
}

/// A seq bound as a BIGINT; values past `i64::MAX` saturate (no seq is that large).
fn seq_param(v: Option<u64>, default: i64) -> i64 {
    v.map_or(default, |s| i64::try_from(s).unwrap_or(i64::MAX))
}

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
                "INSERT INTO officers (id, display_name, password_hash, created_at)
                 VALUES ($1, $2, $3, $4)",
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
            .prepare_cached(
                "SELECT id, display_name, password_hash, created_at, disabled FROM officers
                 ORDER BY id",
            )
            .await
            .map_err(classify)?;
        let rows = client.query(&st, &[]).await.map_err(classify)?;
        rows.iter()
            .map(|r| officer_from_row(r).map(|o| o.officer))
            .collect()
    }

    async fn get_or_create_chat(&self, new: &NewChat) -> StoreResult<(Chat, bool)> {
        let status = if new.assigned_officer_id.is_some() {
            ChatStatus::Assigned
        } else {
            ChatStatus::Pending
        };
        let client = self.client().await?;
        let st = client
            .prepare_cached(SQL_INSERT_CHAT)
            .await
            .map_err(classify)?;
        // ON CONFLICT waits for a concurrent insert of the same customer to commit, so
        // when nothing is inserted here the other chat is visible to the next statement.
        let inserted = client
            .query_opt(
                &st,
                &[
                    &new.id.to_string(),
                    &new.customer_id.as_str(),
                    &new.assigned_officer_id.as_ref().map(OfficerId::as_str),
                    &status.as_str(),
                    &new.created_at.unix_millis(),
                    &new.customer_name,
                ],
            )
            .await
            .map_err(classify)?;
        if let Some(row) = inserted {
            return Ok((chat_from_row(&row)?, true));
        }
        if let Some(name) = &new.customer_name {
            let st = client
                .prepare_cached(SQL_RENAME_CUSTOMER)
                .await
                .map_err(classify)?;
            let row = client
                .query_opt(&st, &[&new.customer_id.as_str(), name])
                .await
                .map_err(classify)?
                .ok_or_else(|| StoreError::backend("customer's chat vanished after a conflict"))?;
            return Ok((chat_from_row(&row)?, false));
        }
        let chat = self
            .one_chat(&client, SQL_CHAT_BY_CUSTOMER, new.customer_id.as_str())
            .await?
            .ok_or_else(|| StoreError::backend("customer's chat vanished after a conflict"))?;
        Ok((chat, false))
    }

    async fn chat(&self, id: &ChatId) -> StoreResult<Option<Chat>> {
        let client = self.client().await?;
        self.one_chat(&client, SQL_CHAT_BY_ID, &id.to_string())
            .await
    }

    async fn pending_chats(&self, limit: u32) -> StoreResult<Vec<Chat>> {
        self.chat_rows(SQL_QUEUE, &[&i64::from(limit)]).await
    }

    async fn officer_chats(&self, officer: &OfficerId, limit: u32) -> StoreResult<Vec<Chat>> {
        self.chat_rows(SQL_OFFICER_CHATS, &[&officer.as_str(), &i64::from(limit)])
            .await
    }

    async fn claim_chat(&self, chat: &ChatId, officer: &OfficerId) -> StoreResult<ClaimOutcome> {
        let client = self.client().await?;
        let id = chat.to_string();
        // The one conditional update that decides a race: only a pending chat changes.
        let st = client.prepare_cached(SQL_CLAIM).await.map_err(classify)?;
        let claimed = client
            .query_opt(&st, &[&id, &officer.as_str()])
            .await
            .map_err(classify)?;
        if let Some(row) = claimed {
            return Ok(ClaimOutcome::Claimed(chat_from_row(&row)?));
        }
        Ok(match self.one_chat(&client, SQL_CHAT_BY_ID, &id).await? {
            None => ClaimOutcome::NotFound,
            Some(existing) if existing.assigned_officer_id.as_ref() == Some(officer) => {
                ClaimOutcome::AlreadyOwned(existing)
            }
            Some(existing) => ClaimOutcome::TakenByOther(existing),
        })
    }

    async fn append_message(&self, m: &NewMessage) -> StoreResult<AppendOutcome> {
        let mut client = self.client().await?;
        let chat_id = m.chat_id.to_string();
        let tx = client.transaction().await.map_err(classify)?;
        // Taking the next seq locks the chat's row until commit: concurrent senders on
        // any connection queue here, so seqs are dense and committed in order, and the
        // idempotency lookup below sees every earlier message of the chat.
        let st = tx.prepare_cached(SQL_NEXT_SEQ).await.map_err(classify)?;
        let seq: i64 = tx
            .query_opt(&st, &[&chat_id])
            .await
            .map_err(classify)?
            .ok_or_else(|| StoreError::backend("append to a chat that does not exist"))?
            .try_get(0)
            .map_err(classify)?;
        if let Some(key) = &m.client_message_id {
            let st = tx
                .prepare_cached(SQL_IDEMPOTENT_ORIGINAL)
                .await
                .map_err(classify)?;
            let original = tx
                .query_opt(&st, &[&chat_id, &m.sender_type.as_str(), &m.sender_id, key])
                .await
                .map_err(classify)?;
            if let Some(row) = original {
                let original = message_from_row(&row)?;
                tx.rollback().await.map_err(classify)?;
                return Ok(AppendOutcome::Duplicate(original));
            }
        }
        let st = tx
            .prepare_cached(SQL_INSERT_MESSAGE)
            .await
            .map_err(classify)?;
        tx.execute(
            &st,
            &[
                &chat_id,
                &seq,
                &m.id.to_string(),
                &m.sender_type.as_str(),
                &m.sender_id,
                &m.content,
                &m.created_at.unix_millis(),
                &m.client_message_id,
            ],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(AppendOutcome::Created(Message {
            id: m.id,
            chat_id: m.chat_id,
            seq: seq as u64,
            sender_type: m.sender_type,
            sender_id: m.sender_id.clone(),
            content: m.content.clone(),
            created_at: m.created_at,
            client_message_id: m.client_message_id.clone(),
        }))
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
        let (role, subject, chat) = match &s.subject {
            SessionSubject::Officer(id) => ("officer", id.to_string(), None),
            SessionSubject::Customer {
                customer_id,
                chat_id,
            } => (
                "customer",
                customer_id.to_string(),
                Some(chat_id.to_string()),
            ),
        };
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
        let bad = || corrupt("sessions");
        let subject = match (role.as_str(), chat) {
            ("officer", _) => {
                SessionSubject::Officer(OfficerId::parse(subject).map_err(|_| bad())?)
            }
            ("customer", Some(chat)) => SessionSubject::Customer {
                customer_id: CustomerId::parse(subject).map_err(|_| bad())?,
                chat_id: ChatId::parse(&chat).map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        };
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

    async fn set_officer_disabled(
        &self,
        officer: &OfficerId,
        disabled: bool,
    ) -> StoreResult<Option<(Officer, Vec<TokenHash>)>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let st = tx
            .prepare_cached(
                "UPDATE officers SET disabled = $2 WHERE id = $1
                 RETURNING id, display_name, password_hash, created_at, disabled",
            )
            .await
            .map_err(classify)?;
        let Some(row) = tx
            .query_opt(&st, &[&officer.as_str(), &disabled])
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
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
                let bytes: Vec<u8> = row.try_get(0).map_err(classify)?;
                let hash: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| corrupt("sessions.token_hash"))?;
                revoked.push(TokenHash(hash));
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
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::TestPg;

    /// Every hot statement finds its rows through an index and gets them in index
    /// order: no sequential scan, no sort (the same check as the SQLite store's). The
    /// generic plan is checked, which is what a prepared statement runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hot_queries_use_an_index_and_never_sort() {
        let Some(pg) = TestPg::start("hot_queries_use_an_index_and_never_sort") else {
            return;
        };
        let config = pg.database().await;
        let store = PgStore::connect_with(config, PgOptions::default())
            .await
            .unwrap();
        let client = store.client().await.unwrap();
        // Empty tables make a sequential scan the cheapest plan; forbid it so that the
        // planner shows which index it would use at scale.
        client
            .batch_execute("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
            .await
            .unwrap();
        for (i, (name, sql)) in [
            ("chat by id", SQL_CHAT_BY_ID),
            ("chat by customer", SQL_CHAT_BY_CUSTOMER),
            ("queue", SQL_QUEUE),
            ("officer chats", SQL_OFFICER_CHATS),
            ("claim", SQL_CLAIM),
            ("idempotency lookup", SQL_IDEMPOTENT_ORIGINAL),
            ("next seq", SQL_NEXT_SEQ),
            ("page after", SQL_PAGE_AFTER),
            ("page before", SQL_PAGE_BEFORE),
            ("officer", SQL_OFFICER),
            ("session", SQL_SESSION),
        ]
        .into_iter()
        .enumerate()
        {
            let params = (1..=9).filter(|n| sql.contains(&format!("${n}"))).count();
            let args = vec!["'0'"; params].join(", ");
            client
                .batch_execute(&format!("PREPARE q{i} AS {sql}"))
                .await
                .unwrap();
            let plan: Vec<String> = client
                .query(&format!("EXPLAIN EXECUTE q{i}({args})"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let plan = plan.join(" | ");
            assert!(plan.contains("Index"), "{name}: no index in plan: {plan}");
            assert!(!plan.contains("Seq Scan"), "{name}: scans: {plan}");
            assert!(!plan.contains("Sort"), "{name}: sorts: {plan}");
        }
    }
}
