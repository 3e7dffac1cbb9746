//! Upgrading a SQLite file made by the previous release in place (issue 16): a copy of
//! `tests/fixtures/v1-release.db`, made by that release's own server and CLI
//! (`tests/fixtures/README.md`), is opened by this build, which migrates it to
//! `SQLITE_SCHEMA_VERSION`; then every officer, chat, message and session the old release
//! reported (`tests/fixtures/v1-release.json`) must be there unchanged, logins must work
//! as before, new writes continue where the old data left off, and the file must pass
//! SQLite's integrity and foreign key checks.

use chatcore::store::SQLITE_SCHEMA_VERSION;
use chatcore::{ChatService, SqliteStore};
use rusqlite::Connection;

#[path = "support/v1_release.rs"]
mod v1_release;
use v1_release::{Fixture, check_all, fixture_path};

const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// A private copy of the fixture (the test must never change the committed file).
fn copy_of_fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1-release.db");
    std::fs::copy(fixture_path(CRATE_DIR, "v1-release.db"), &path).expect("copy the fixture");
    (dir, path)
}

fn user_version(conn: &Connection) -> u64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .unwrap()
        .try_into()
        .unwrap()
}

/// SQLite's own checks of the whole file: structure, indexes and foreign keys.
fn assert_sound(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(integrity, ["ok"], "integrity_check");
    let violations: Vec<(String, i64, String)> = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(violations.is_empty(), "foreign_key_check: {violations:?}");
}

#[test]
fn the_fixture_is_what_the_previous_release_left() {
    let fixture = Fixture::load(CRATE_DIR, "sqlite");
    let (_dir, path) = copy_of_fixture();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn), fixture.old_schema_version());
    assert!(
        (user_version(&conn) as usize) <= SQLITE_SCHEMA_VERSION,
        "the fixture is newer than this build"
    );
    drop(conn);
    assert_sound(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_release_file_upgrades_in_place_without_losing_data() {
    let fixture = Fixture::load(CRATE_DIR, "sqlite");
    let (_dir, path) = copy_of_fixture();
    {
        let before = Connection::open(&path).unwrap();
        assert_eq!(user_version(&before), fixture.old_schema_version());
    }

    let service = ChatService::open_sqlite(&path, fixture.config()).expect("open the v1 file");
    {
        let upgraded = Connection::open(&path).unwrap();
        assert_eq!(user_version(&upgraded) as usize, SQLITE_SCHEMA_VERSION);
    }
    check_all(&service, &fixture).await;
    service.close().await.expect("close");
    drop(service);
    assert_sound(&path);

    // Opening the upgraded file again is a no-op that keeps everything.
    let store = SqliteStore::open(&path).expect("reopen the upgraded file");
    drop(store);
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn) as usize, SQLITE_SCHEMA_VERSION);
    assert_sound(&path);
}
