//! `report-scale`: the desk report's speed at scale (issue 20: "fast at 100,000 chats").
//! Fills a store in the engine's schema with `--chats` chats of a month at the desk
//! (bulk SQL: a customer message, the claim's system entry, the officer's first reply
//! 5-600 s after the chat entered the queue, a later reply, and for four chats in five
//! the resolution 1-60 min after), on a fresh SQLite file or, with `--database-url`, a
//! PostgreSQL database (which must be empty: the bench refuses one that has chats);
//! then times `ChatService::desk_report` (the same call `GET /api/reports/desk` makes)
//! for a day, a week and the whole month, `--runs` times each, and checks the month's
//! figures against what was loaded. Like `gen-db`, it starts no server: it measures the
//! engine's query, not HTTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chat_postgres::{PgOptions, PgStore};
use chatcore::{Actor, ChatService, LocalBus, ReportPeriod, ServiceConfig, SqliteStore, Timestamp};

use crate::cli::ReportScaleArgs;
use crate::report::{Cell, Scenario};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Officers the chats are spread over.
const OFFICERS: i64 = 50;
/// The month the chats are spread over ends here (a fixed time, so that runs compare).
const END_MS: i64 = 1_800_000_000_000;

/// The loaded data's shape, in SQL both databases run: chat `i` of `n` (from a series
/// `s(i)`), its creation time, officer, first reply wait and resolution.
const CREATED: &str = "(:end - 30 * :day + i * (30 * :day) / :n)";
const WAIT: &str = "((i * 7919) % 596 + 5) * 1000";
const RESOLVE: &str = "((i * 104729) % 3541 + 60) * 1000";

pub(crate) async fn run(args: &ReportScaleArgs) -> anyhow::Result<Scenario> {
    ensure!(args.chats >= 10, "--chats must be at least 10");
    let n = args.chats as i64;
    let (service, backend, load, _dir) = match &args.database_url {
        None => sqlite(args, n).await?,
        Some(url) => postgres(url, n).await?,
    };
    let mut scenario = Scenario::new(
        "report-scale",
        format!("Desk report over {n} chats ({backend})"),
        &[
            ("period", "period"),
            ("chatsCreated", "created"),
            ("runs", "runs"),
            ("minMs", "min ms"),
            ("medianMs", "median ms"),
            ("maxMs", "max ms"),
        ],
    );
    scenario.note(format!("loaded in {:.1} s", load.as_secs_f64()));
    let month = ReportPeriod::new(
        Timestamp::from_unix_millis(END_MS - 30 * DAY_MS),
        Timestamp::from_unix_millis(END_MS),
    )?;
    for (name, days) in [("1 day", 1), ("7 days", 7), ("30 days", 30)] {
        let period = ReportPeriod::new(
            Timestamp::from_unix_millis(END_MS - days * DAY_MS),
            Timestamp::from_unix_millis(END_MS),
        )?;
        let mut times = Vec::new();
        let mut created = 0;
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            let report = service.desk_report(&Actor::Admin, period).await?;
            times.push(started.elapsed());
            created = report.chats_created;
        }
        times.sort();
        let ms = |d: Duration| Cell::Num(d.as_secs_f64() * 1000.0, 1);
        scenario.row(vec![
            Cell::Text(name.into()),
            Cell::Int(created),
            Cell::Int(times.len() as u64),
            ms(times[0]),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1]),
        ]);
    }
    // The month's figures are what was loaded.
    let report = service.desk_report(&Actor::Admin, month).await?;
    // Resolved in the month: four chats in five, less those resolved after its end.
    let resolved = (0..n)
        .filter(|i| {
            let created = END_MS - 30 * DAY_MS + i * (30 * DAY_MS) / n;
            let wait = ((i * 7919) % 596 + 5) * 1000;
            let resolve = ((i * 104729) % 3541 + 60) * 1000;
            i % 5 != 0 && created + wait + resolve < END_MS
        })
        .count() as u64;
    scenario.check(
        "every chat created in the month is counted",
        report.chats_created == n as u64,
        format!("{} of {n}", report.chats_created),
    );
    scenario.check(
        "every chat has its first reply",
        report.first_reply.count == n as u64,
        format!("{}", report.first_reply.count),
    );
    let resolved_in_month = report.chats_resolved;
    scenario.check(
        "the chats resolved in the month are counted",
        resolved_in_month == resolved,
        format!("{resolved_in_month}, loaded {resolved}"),
    );
    scenario.check(
        "every officer has figures",
        report.officers.len() == OFFICERS.min(n) as usize,
        format!("{}", report.officers.len()),
    );
    let median = report.first_reply.median_seconds.unwrap_or(0.0);
    scenario.check(
        "the median first reply is within the loaded 5-600 s",
        (5.0..=600.0).contains(&median),
        format!("{median} s"),
    );
    service.close().await?;
    Ok(scenario)
}

fn service(store: Arc<dyn chatcore::Store>) -> ChatService {
    let mut config = ServiceConfig::default();
    config.admin_token = Some("report-scale-admin-token-nobody-presents-01234".into());
    ChatService::new(store, Arc::new(LocalBus::new()), config)
}

/// The SQL of the load, for one database's syntax: `series` makes `s(i)` for
/// `0 <= i < n`, `id(expr)` a UUID from a number.
fn load_sql(series: &str, id: &dyn Fn(&str) -> String, n: i64) -> Vec<String> {
    let bind = |sql: &str| {
        // Typed as 64-bit integers: PostgreSQL would multiply plain literals as 32-bit.
        sql.replace(":end", &format!("CAST({END_MS} AS BIGINT)"))
            .replace(":day", &format!("CAST({DAY_MS} AS BIGINT)"))
            .replace(":n", &n.to_string())
    };
    let chat = id("i");
    let officer = format!("'rs-o' || (i % {OFFICERS})");
    let (created, wait, resolve) = (CREATED, WAIT, RESOLVE);
    let message = |seq: u32, kind: &str, sender: &str, at: &str, event: &str, filter: &str| {
        bind(&format!(
            "{series} INSERT INTO messages (chat_id, seq, id, sender_type, sender_id, content,
                                            created_at, event)
             SELECT {chat}, {seq}, {mid}, '{kind}', {sender}, 'text', {at}, {event}
             FROM s WHERE {filter}",
            mid = id(&format!("i * 8 + {seq} + 1000000000")),
        ))
    };
    vec![
        bind(&format!(
            "{series_officers} INSERT INTO officers (id, display_name, password_hash, created_at)
             SELECT 'rs-o' || i, NULL, NULL, :end - 60 * :day FROM s",
            series_officers = series.replace(":count", &OFFICERS.to_string()),
        )),
        bind(&format!(
            "{series} INSERT INTO chats (id, customer_id, assigned_officer_id, status,
                                created_at, last_seq, updated_at, resolved_at)
             SELECT {chat}, 'rs-c' || i, {officer},
               CASE WHEN i % 5 = 0 THEN 'assigned' ELSE 'resolved' END,
               {created}, CASE WHEN i % 5 = 0 THEN 4 ELSE 5 END,
               {created} + {wait} + {resolve},
               CASE WHEN i % 5 = 0 THEN NULL ELSE {created} + {wait} + {resolve} END
             FROM s",
            series = series.replace(":count", ":n"),
        )),
        message(
            1,
            "customer",
            "'rs-c' || i",
            &format!("{created} + 1000"),
            "NULL",
            "1 = 1",
        ),
        message(
            2,
            "system",
            &officer,
            &format!("{created} + 2000"),
            "'{\"kind\":\"claimed\"}'",
            "1 = 1",
        ),
        message(
            3,
            "officer",
            &officer,
            &format!("{created} + {wait}"),
            "NULL",
            "1 = 1",
        ),
        message(
            4,
            "officer",
            &officer,
            &format!("{created} + {wait} + 30000"),
            "NULL",
            "1 = 1",
        ),
        message(
            5,
            "system",
            &officer,
            &format!("{created} + {wait} + {resolve}"),
            "'{\"kind\":\"resolved\"}'",
            "i % 5 <> 0",
        ),
    ]
    .into_iter()
    .map(|sql| sql.replace(":count", &n.to_string()))
    .collect()
}

type Loaded = (ChatService, String, Duration, Option<tempfile::TempDir>);

async fn sqlite(args: &ReportScaleArgs, n: i64) -> anyhow::Result<Loaded> {
    let dir = tempfile::tempdir_in(args.dir.as_deref().unwrap_or(&std::env::temp_dir()))
        .context("a temporary directory")?;
    let path = dir.path().join("report-scale.db");
    // The engine creates the schema; its writer must be gone before the bulk load.
    chatcore::Store::close(&SqliteStore::open(&path).context("creating the database")?)
        .await
        .context("closing the new database")?;
    let started = Instant::now();
    let load_path = path.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut conn = rusqlite::Connection::open(&load_path)?;
        conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
        let tx = conn.transaction()?;
        let series =
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :count)";
        let id = |x: &str| format!("printf('%08x-0000-7000-8000-%012x', {x}, {x})");
        for sql in load_sql(series, &id, n) {
            tx.execute_batch(&sql)
                .with_context(|| format!("loading: {sql}"))?;
        }
        tx.commit()?;
        conn.execute_batch("PRAGMA journal_mode = WAL; ANALYZE;")?;
        Ok(())
    })
    .await??;
    let load = started.elapsed();
    let store = SqliteStore::open(&path).context("opening the loaded database")?;
    // The file goes with the directory once the run ends, unless --keep.
    let dir = if args.keep {
        eprintln!("report-scale: the database is {}", path.display());
        None
    } else {
        Some(dir)
    };
    Ok((service(Arc::new(store)), "SQLite".into(), load, dir))
}

async fn postgres(url: &str, n: i64) -> anyhow::Result<Loaded> {
    let config: chat_postgres::tokio_postgres::Config = url
        .parse()
        .context("--database-url is not a PostgreSQL connection string")?;
    let store = PgStore::connect_with(config.clone(), PgOptions::default())
        .await
        .context("connecting to PostgreSQL")?;
    let (client, connection) = config
        .connect(chat_postgres::tokio_postgres::NoTls)
        .await
        .context("a loading connection")?;
    let driver = tokio::spawn(connection);
    let existing: i64 = client
        .query_one("SELECT count(*) FROM chats", &[])
        .await?
        .get(0);
    ensure!(
        existing == 0,
        "the database has {existing} chats already: give an empty one"
    );
    let started = Instant::now();
    let series = "WITH s(i) AS (SELECT generate_series(0, :count - 1)::bigint)";
    let id = |x: &str| {
        format!("lpad(to_hex({x}), 8, '0') || '-0000-7000-8000-' || lpad(to_hex({x}), 12, '0')")
    };
    for sql in load_sql(series, &id, n) {
        client
            .batch_execute(&sql)
            .await
            .with_context(|| format!("loading: {sql}"))?;
    }
    client.batch_execute("ANALYZE").await?;
    let load = started.elapsed();
    drop(client);
    driver.abort();
    Ok((service(Arc::new(store)), "PostgreSQL".into(), load, None))
}
