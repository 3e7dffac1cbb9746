//! Real storage faults under the real `chat-http` binary: its database on a tmpfs that
//! fills up, or that is remounted read-only. Clients must get 503 with the contract's
//! body (`unavailable`) for writes, 200 for reads, nothing acknowledged may be lost or
//! changed, and writes must succeed again once the fault is gone, without a restart.
//!
//! Mounting needs root (as here and in CI). Without it the tests say why and pass,
//! unless the environment variable CI is set, where they fail.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::server::{Api, Server};

#[path = "../../../chatcore/tests/support/tmpfs.rs"]
mod tmpfs;
use tmpfs::{Tmpfs, fill};

#[track_caller]
fn assert_unavailable(answer: (u16, Value), what: &str) {
    let (status, body) = answer;
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("unavailable")),
        "{what}: {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: no message in {body}"
    );
}

/// An officer and a customer in one claimed chat: (officer token, customer token, chat).
/// A chat claimed by officer alice, with its timeline so far: the claim's entry.
async fn claimed_chat(api: &Api) -> (String, String, String, Vec<Value>) {
    let officer = api.officer("alice").await;
    let (customer, chat) = api.customer("bob").await;
    let (status, body) = api.claim(&officer, "alice", &chat).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let timeline = api.all_messages(&customer, &chat).await;
    assert_eq!(timeline.len(), 1, "{timeline:?}");
    assert_eq!(timeline[0]["event"]["kind"], "claimed");
    (officer, customer, chat, timeline)
}

async fn health(api: &Api) -> (u16, Value) {
    api.call(Method::GET, "/healthz", None, None).await.unwrap()
}

async fn login(api: &Api, customer: &str) -> (u16, Value) {
    let body = json!({ "customerId": customer });
    api.call(Method::POST, "/api/customers/login", None, Some(body))
        .await
        .unwrap()
}

/// Opens the file with the library after the server stopped and checks it.
async fn assert_intact(db: &Path) {
    let store = chatcore::SqliteStore::open(db).unwrap();
    store.integrity_check().await.expect("integrity check");
    chatcore::Store::close(&store).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_gives_503_keeps_reads_and_recovers_without_restart() {
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let db = fs.path().join("chat.db");
    let mut server = Server::start(&db, &logs.path().join("server.log"));
    let api = server.api.clone();
    let (officer, customer, chat, mut acked) = claimed_chat(&api).await;
    let body = "x".repeat(1000);
    for i in 0..10 {
        let (status, m) = api
            .send(&customer, &chat, &format!("{i} {body}"))
            .await
            .unwrap();
        assert_eq!(status, 201, "{m}");
        acked.push(m);
    }

    let filled = fill(&fs.path().join("filler"));
    assert!(filled > 0, "the filler wrote nothing");
    // SQLite may still reuse WAL space it has; the first send that needs a new page
    // fails.
    let mut refused = None;
    for i in 10..20_000 {
        let content = format!("{i} {body}");
        let (status, m) = api.send(&customer, &chat, &content).await.unwrap();
        match status {
            201 => acked.push(m),
            _ => {
                assert_unavailable((status, m), "send on a full disk");
                refused = Some(content);
                break;
            }
        }
    }
    let refused = refused.expect("no send failed on a full disk");
    assert_unavailable(health(&api).await, "/healthz on a full disk");
    assert_unavailable(login(&api, "carol").await, "login on a full disk");
    // Reads go on, with tokens issued before the fault, and show every acknowledged
    // message and nothing else.
    assert_eq!(api.all_messages(&customer, &chat).await, acked);
    assert_eq!(api.all_messages(&officer, &chat).await, acked);

    std::fs::remove_file(fs.path().join("filler")).unwrap();
    let (status, m) = api.send(&officer, &chat, "space again").await.unwrap();
    assert_eq!(status, 201, "no recovery without a restart: {m}");
    assert_eq!(m["seq"], acked.len() + 1, "the refused send left a trace");
    acked.push(m);
    assert_eq!(health(&api).await.0, 200);
    assert_eq!(login(&api, "carol").await.0, 200);
    let stored = api.all_messages(&customer, &chat).await;
    assert_eq!(stored, acked);
    assert!(stored.iter().all(|m| m["content"] != refused.as_str()));
    server.stop();
    assert_intact(&db).await;
    eprintln!(
        "full disk: filler of {filled} bytes, {} messages acknowledged, the next refused",
        acked.len() - 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_database_serves_reads_and_recovers_without_restart() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("server.log");
    let db = fs.path().join("chat.db");
    let mut server = Server::start(&db, &log);
    let (officer, customer, chat, mut acked) = claimed_chat(&server.api).await;
    for text in ["one", "two", "three"] {
        let (status, m) = server.api.send(&customer, &chat, text).await.unwrap();
        assert_eq!(status, 201, "{m}");
        acked.push(m);
    }
    // A file system cannot become read-only while a process has a file on it open for
    // writing: stop the server, remount, start it again on the read-only database.
    server.stop();
    fs.remount("ro");
    let mut server = Server::start(&db, &log);
    let api = server.api.clone();

    assert_eq!(api.all_messages(&customer, &chat).await, acked);
    let path = "/api/officers/alice/chats";
    let mine = api
        .expect(Method::GET, path, Some(&officer), None, 200)
        .await;
    assert_eq!(mine[0]["id"], chat.as_str());
    let refused = api.send(&customer, &chat, "refused").await.unwrap();
    assert_unavailable(refused, "send on a read-only file system");
    assert_unavailable(health(&api).await, "/healthz on a read-only file system");
    assert_unavailable(
        login(&api, "carol").await,
        "login on a read-only file system",
    );

    // Writable again while the server runs: writes succeed without a restart.
    fs.remount("rw");
    let (status, m) = api.send(&officer, &chat, "writable again").await.unwrap();
    assert_eq!(status, 201, "no recovery without a restart: {m}");
    assert_eq!(m["seq"], 5, "the refused send left a trace");
    acked.push(m);
    assert_eq!(health(&api).await.0, 200);
    assert_eq!(login(&api, "carol").await.0, 200);
    assert_eq!(api.all_messages(&customer, &chat).await, acked);
    server.stop();
    assert_intact(&db).await;
}
