//! `gen-db`: writes a large SQLite database in the engine's own schema, fast, to measure
//! read paths at scale. The file is created and migrated by `chatcore::SqliteStore`, and
//! the first officer is created through `ChatService` (so the password hash is the
//! engine's); then officers, chats and messages are bulk-inserted with prepared
//! statements in large transactions, with journaling and syncing off during the load
//! (the file is only valid once the command succeeds) and WAL mode restored at the end.
//!
//! The data: customers PREFIX-c0.. each with one chat, chat ids and creation times in
//! order over the last 30 days; the newest `--pending` chats wait in the queue, the others
//! are assigned round-robin to officers PREFIX-o0.. (`--chats-per-officer` each), all
//! with the same password. Chat PREFIX-c0 (officer PREFIX-o0) holds `--big-chat-share` of
//! the messages; the rest are spread evenly. Each chat's `last_seq` matches its messages,
//! so the server continues at the right seq.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use chatcore::{Actor, ChatService, LocalBus, NewOfficer, OfficerId, ServiceConfig, SqliteStore};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, params};
use serde_json::json;
use uuid::{Builder, Uuid};

use crate::cli::GenDbArgs;
use crate::report::{Cell, Scenario};

/// Password of the generated officers unless `--officer-password` says otherwise.
pub(crate) const DEFAULT_PASSWORD: &str = "bench-password";

/// Messages inserted per transaction.
const MESSAGES_PER_TRANSACTION: u64 = 250_000;
const DAY_MS: i64 = 24 * 3600 * 1000;

const PHRASES: [&str; 8] = [
    "Hello, I have a question about my loan application",
    "Thanks, let me check that for you",
    "Could you tell me the current interest rate on a fixed mortgage?",
    "I have uploaded the documents you asked for",
    "Your application is being reviewed by our underwriting team",
    "When can I expect the funds to arrive in my account?",
    "Please confirm the last four digits of your account number",
    "Great, thank you for your help today",
];

/// The shape of the data, derived from the arguments.
struct Plan {
    chats: u64,
    messages: u64,
    pending: u64,
    officers: u64,
    big: u64,
}

impl Plan {
    fn new(args: &GenDbArgs) -> anyhow::Result<Self> {
        ensure!(args.chats >= 1, "--chats must be at least 1");
        ensure!(
            (0.0..=1.0).contains(&args.big_chat_share),
            "--big-chat-share must be between 0 and 1"
        );
        let chats = args.chats as u64;
        // Chat 0 (the large one) is always assigned.
        let pending = (args.pending as u64).min(chats - 1);
        let assigned = chats - pending;
        let officers = assigned
            .div_ceil(args.chats_per_officer.max(1) as u64)
            .max(1);
        let big = if chats == 1 {
            args.messages
        } else {
            ((args.messages as f64 * args.big_chat_share).round() as u64).min(args.messages)
        };
        Ok(Self {
            chats,
            messages: args.messages,
            pending,
            officers,
            big,
        })
    }

    /// Messages in chat `i`.
    fn messages_in(&self, i: u64) -> u64 {
        if i == 0 {
            return self.big;
        }
        let rest = self.messages - self.big;
        let others = self.chats - 1;
        rest / others + u64::from(i - 1 < rest % others)
    }

    fn is_pending(&self, i: u64) -> bool {
        i >= self.chats - self.pending
    }

    /// The officer index chat `i` is assigned to (when it is not pending).
    fn officer_of(&self, i: u64) -> u64 {
        i % self.officers
    }
}

pub(crate) async fn run(args: &GenDbArgs) -> anyhow::Result<Scenario> {
    let plan = Plan::new(args)?;
    let path = args.path.as_path();
    prepare_path(path, args.force)?;
    let started = Instant::now();

    // The engine creates the schema and the first officer (and so the password hash).
    let first_officer = OfficerId::parse(format!("{}-o0", args.prefix))
        .with_context(|| format!("--prefix {:?} does not make valid ids", args.prefix))?;
    OfficerId::parse(format!("{}-o{}", args.prefix, plan.officers))
        .with_context(|| format!("--prefix {:?} is too long", args.prefix))?;
    {
        let store = SqliteStore::open(path)
            .with_context(|| format!("creating {} with chatcore", path.display()))?;
        let mut config = ServiceConfig::default();
        config.admin_token = Some("gen-db-admin-token-nobody-presents-0123456789".into());
        let service = ChatService::new(Arc::new(store), Arc::new(LocalBus::new()), config);
        service
            .create_officer(
                &Actor::Admin,
                NewOfficer {
                    id: first_officer,
                    password: Some(args.officer_password.clone()),
                    display_name: Some("Generated officer 0".into()),
                    capacity: None,
                },
            )
            .await
            .context("creating the first officer")?;
        service.close().await.context("closing the store")?;
    }

    let args_owned = args.clone();
    let big_chat = tokio::task::spawn_blocking(move || bulk_load(&args_owned, &plan))
        .await
        .context("the load task failed")??;
    let plan = Plan::new(args)?;
    let elapsed = started.elapsed();
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);

    let mut scenario = Scenario::new(
        "gen-db",
        format!("generated {}", path.display()),
        &[
            ("chats", "chats"),
            ("messages", "messages"),
            ("officers", "officers"),
            ("pending", "pending"),
            ("bigChatMessages", "big chat msgs"),
            ("seconds", "seconds"),
            ("fileMiB", "file MiB"),
            ("messagesPerSecond", "messages/s"),
        ],
    );
    scenario.row(vec![
        Cell::Int(plan.chats),
        Cell::Int(plan.messages),
        Cell::Int(plan.officers),
        Cell::Int(plan.pending),
        Cell::Int(plan.big),
        Cell::Num(elapsed.as_secs_f64(), 1),
        Cell::Num(bytes as f64 / (1024.0 * 1024.0), 1),
        Cell::Num(plan.messages as f64 / elapsed.as_secs_f64().max(1e-9), 0),
    ]);
    scenario
        .extra
        .insert("path".into(), json!(path.display().to_string()));
    scenario.extra.insert("prefix".into(), json!(args.prefix));
    scenario.extra.insert("bigChatId".into(), json!(big_chat));
    scenario.extra.insert("bytes".into(), json!(bytes));
    scenario.note(format!(
        "officers {p}-o0..{p}-o{last} (password from --officer-password), customers \
         {p}-c0..{p}-c{lastc}; the large chat is {p}-c0's ({big_chat}), assigned to {p}-o0. \
         Serve it with: chat-http --db {path}; read it with: chat-bench read --dataset {p}",
        p = args.prefix,
        last = plan.officers - 1,
        lastc = plan.chats - 1,
        path = path.display(),
    ));
    Ok(scenario)
}

fn prepare_path(path: &Path, force: bool) -> anyhow::Result<()> {
    let companions = ["", "-wal", "-shm"].map(|suffix| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    });
    if path.exists() {
        if !force {
            bail!("{} exists; pass --force to replace it", path.display());
        }
        for p in &companions {
            if p.exists() {
                std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

/// A UUIDv7 with this timestamp and random bits.
fn uuid_at(ms: i64, rng: &mut SmallRng) -> Uuid {
    let mut random = [0u8; 10];
    rng.fill_bytes(&mut random);
    Builder::from_unix_timestamp_millis(ms.max(0) as u64, &random).into_uuid()
}

/// Inserts officers, chats and messages; returns the large chat's id.
fn bulk_load(args: &GenDbArgs, plan: &Plan) -> anyhow::Result<String> {
    let mut conn = Connection::open(&args.path).context("opening the database for the load")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = OFF", [], |r| r.get(0))?;
    ensure!(
        mode.eq_ignore_ascii_case("off"),
        "could not turn journaling off ({mode})"
    );
    conn.execute_batch(
        "PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE; \
         PRAGMA cache_size = -1048576; PRAGMA temp_store = MEMORY;",
    )?;
    let prefix = &args.prefix;
    let hash: String = conn
        .query_row(
            "SELECT password_hash FROM officers WHERE id = ?1",
            [format!("{prefix}-o0")],
            |r| r.get(0),
        )
        .context("reading the first officer's password hash")?;
    let now = now_ms();
    let base = now - 30 * DAY_MS;
    let step = (30 * DAY_MS / plan.chats as i64).max(1);
    let mut rng = SmallRng::seed_from_u64(7);

    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO officers (id, display_name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for o in 1..plan.officers {
            insert.execute(params![
                format!("{prefix}-o{o}"),
                format!("Generated officer {o}"),
                hash,
                base - DAY_MS,
            ])?;
        }
    }
    tx.commit()?;

    let chat_ids: Vec<String> = (0..plan.chats)
        .map(|i| {
            uuid_at(base + i as i64 * step, &mut rng)
                .hyphenated()
                .to_string()
        })
        .collect();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO chats (id, customer_id, assigned_officer_id, status, created_at, last_seq,
                                updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)",
        )?;
        for (i, id) in chat_ids.iter().enumerate() {
            let i = i as u64;
            let officer =
                (!plan.is_pending(i)).then(|| format!("{prefix}-o{}", plan.officer_of(i)));
            let status = if officer.is_some() {
                "assigned"
            } else {
                "pending"
            };
            insert.execute(params![
                id,
                format!("{prefix}-c{i}"),
                officer,
                status,
                base + i as i64 * step,
                plan.messages_in(i) as i64,
            ])?;
        }
    }
    tx.commit()?;

    // Message ids are UUIDv7s in insertion order (one millisecond apart from 30 days
    // ago), so the unique index on them grows at its end; their createdAt follow the chat.
    let mut id_ms = base;
    let mut in_transaction = 0u64;
    let mut tx = conn.transaction()?;
    for (i, chat) in chat_ids.iter().enumerate() {
        let i = i as u64;
        let n = plan.messages_in(i);
        let created = base + i as i64 * step;
        let gap = ((now - created) / (n as i64 + 1)).clamp(1, 60_000);
        let customer = format!("{prefix}-c{i}");
        let officer = (!plan.is_pending(i)).then(|| format!("{prefix}-o{}", plan.officer_of(i)));
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (chat_id, seq, id, sender_type, sender_id, content, created_at,
                                   client_message_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
        )?;
        for seq in 1..=n {
            let (sender_type, sender) = match &officer {
                Some(officer) if seq % 2 == 0 => ("officer", officer.as_str()),
                _ => ("customer", customer.as_str()),
            };
            id_ms += 1;
            let content = format!(
                "{} (#{seq})",
                PHRASES[(seq % PHRASES.len() as u64) as usize]
            );
            insert.execute(params![
                chat,
                seq as i64,
                uuid_at(id_ms, &mut rng).hyphenated().to_string(),
                sender_type,
                sender,
                content,
                created + seq as i64 * gap,
            ])?;
            in_transaction += 1;
            if in_transaction == MESSAGES_PER_TRANSACTION {
                drop(insert);
                tx.commit()?;
                tx = conn.transaction()?;
                insert = tx.prepare_cached(
                    "INSERT INTO messages (chat_id, seq, id, sender_type, sender_id, content, created_at,
                                           client_message_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
                )?;
                in_transaction = 0;
            }
        }
    }
    tx.commit()?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "could not restore WAL mode ({mode})"
    );
    conn.close()
        .map_err(|(_, e)| e)
        .context("closing the database")?;
    Ok(chat_ids[0].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(chats: usize, messages: u64, pending: usize) -> GenDbArgs {
        GenDbArgs {
            path: "unused.db".into(),
            chats,
            messages,
            big_chat_share: 0.1,
            pending,
            chats_per_officer: 20,
            prefix: "gen".into(),
            officer_password: DEFAULT_PASSWORD.into(),
            force: false,
        }
    }

    #[test]
    fn the_plan_places_every_message_once() {
        let plan = Plan::new(&args(200, 5003, 10)).unwrap();
        let total: u64 = (0..plan.chats).map(|i| plan.messages_in(i)).sum();
        assert_eq!(total, 5003);
        assert_eq!(plan.big, 500);
        assert_eq!(plan.officers, 10); // 190 assigned chats, 20 each
        assert!(!plan.is_pending(0));
        assert!(plan.is_pending(199) && plan.is_pending(190) && !plan.is_pending(189));
    }

    #[test]
    fn the_large_chat_is_never_pending() {
        let plan = Plan::new(&args(1, 10, 5)).unwrap();
        assert_eq!(plan.pending, 0);
        assert_eq!(plan.messages_in(0), 10);
    }
}
