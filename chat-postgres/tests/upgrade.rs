//! Upgrading a PostgreSQL database made by the previous release in place (issue 16):
//! `tests/fixtures/v1-release.sql`, a `pg_dump` of a database that release's own server
//! and CLI filled (`chatcore/tests/fixtures/README.md`), is restored with `psql` into a
//! fresh database of a throwaway cluster; `PgStore` migrates it to `PG_SCHEMA_VERSION`;
//! then every officer, chat, message and session the old release reported
//! (`chatcore/tests/fixtures/v1-release.json`, section `postgres`) must be there
//! unchanged, logins work as before, and new writes continue where the old data left off.
//! The checks are chatcore's SQLite upgrade test's own (`chatcore/tests/support`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use chat_postgres::testing::TestPg;
use chat_postgres::{PG_SCHEMA_VERSION, PgOptions, PgStore};
use chatcore::{ChatService, LocalBus, Store};

#[path = "../../chatcore/tests/support/v1_release.rs"]
mod v1_release;
use v1_release::{Fixture, check_all};

const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// `psql` of the newest `/usr/lib/postgresql/*/bin` (the one the test cluster runs),
/// else the one on `PATH`.
fn psql() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let psql = e.path().join("bin/psql");
            psql.exists().then_some((version, psql))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map_or_else(|| PathBuf::from("psql"), |(_, psql)| psql)
}

/// Restores the plain-SQL dump as an operator would: `psql -f`, stopping at the first
/// error, in one transaction.
fn restore(config: &tokio_postgres::Config, dump: &std::path::Path) {
    let output = Command::new(psql())
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            "-d",
        ])
        .arg(TestPg::url(config))
        .arg("-f")
        .arg(dump)
        .output()
        .expect("run psql (PostgreSQL's client, installed with the server)");
    assert!(
        output.status.success(),
        "restoring {} failed: {}{}",
        dump.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn client(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

async fn schema_version(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .await
        .expect("schema_migrations")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_release_database_upgrades_in_place_without_losing_data() {
    let Some(pg) = TestPg::start("a_v1_release_database_upgrades_in_place_without_losing_data")
    else {
        return;
    };
    let fixture = Fixture::load(CRATE_DIR, "postgres");
    let config = pg.database().await;
    restore(
        &config,
        &std::path::Path::new(CRATE_DIR).join("tests/fixtures/v1-release.sql"),
    );
    let db = client(&config).await;
    assert_eq!(
        i64::from(schema_version(&db).await),
        i64::try_from(fixture.old_schema_version()).unwrap(),
        "the dump's schema version"
    );

    let store = PgStore::connect_with(config.clone(), PgOptions::default())
        .await
        .expect("open the v1 database");
    assert_eq!(
        usize::try_from(schema_version(&db).await).unwrap(),
        PG_SCHEMA_VERSION
    );
    let store: Arc<dyn Store> = Arc::new(store);
    let service = ChatService::new(store, Arc::new(LocalBus::new()), fixture.config());
    check_all(&service, &fixture).await;
    service.close().await.expect("close");

    // Every constraint of the upgraded schema holds for the old rows.
    let unvalidated = db
        .query(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace AND NOT convalidated",
            &[],
        )
        .await
        .unwrap();
    assert!(
        unvalidated.is_empty(),
        "constraints not validated: {:?}",
        unvalidated
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    );

    // Each officer's open-chats counter (v11) starts at their assigned chats (alice,
    // bob.smith and dave_99 hold one each in the dump), and the checks' writes kept it.
    let counters: Vec<(String, i32, i64)> = db
        .query(
            "SELECT o.id, o.open_chats, (SELECT count(*) FROM chats c \
             WHERE c.assigned_officer_id = o.id AND c.status = 'assigned') \
             FROM officers o ORDER BY o.id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (id, counter, assigned) in &counters {
        assert_eq!(i64::from(*counter), *assigned, "{id}'s open chats");
    }
    assert!(counters.iter().any(|(_, n, _)| *n > 0), "{counters:?}");

    // Opening the upgraded database again is a no-op.
    let again = PgStore::connect_with(config.clone(), PgOptions::default())
        .await
        .expect("reopen the upgraded database");
    drop(again);
    assert_eq!(
        usize::try_from(schema_version(&db).await).unwrap(),
        PG_SCHEMA_VERSION
    );
}
