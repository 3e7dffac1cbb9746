//! Real storage faults under the SQLite store: a file system made read-only and a full
//! disk, each on a tmpfs mounted for the test. Writes must fail as `Unavailable` and
//! change nothing, reads must go on, and the store must recover by itself, without
//! being reopened, once the fault is gone.
//!
//! Mounting needs root (as here and in CI). Without it the tests say why and pass,
//! unless the environment variable CI is set, where they fail.

use std::path::PathBuf;

use chatcore::{
    Actor, ChatId, ChatService, CustomerId, CustomerLogin, Error, Message, MessagePage,
    SendMessage, ServiceConfig, SqliteStore,
};

#[path = "support/login.rs"]
mod login;
#[path = "support/tmpfs.rs"]
mod tmpfs;
use login::customer;
use tmpfs::{Tmpfs, fill};

async fn all_messages(s: &ChatService, actor: &Actor, chat: ChatId) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    loop {
        let page = s
            .messages(
                actor,
                chat,
                MessagePage {
                    after: Some(out.last().map_or(0, |m| m.seq)),
                    before: None,
                    limit: Some(1000),
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[track_caller]
fn assert_unavailable<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    match r {
        Err(Error::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

fn db(fs: &Tmpfs) -> PathBuf {
    fs.path().join("chat.db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_file_system_serves_reads_and_recovers_without_reopening() {
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let s = ChatService::open_sqlite(db(&fs), ServiceConfig::default()).unwrap();
    let (_, chat, token) = customer(&s, "ro-customer").await;
    let actor = s.authenticate(&token).await.unwrap().actor;
    let first = s
        .send_message(&actor, chat, SendMessage::text("before"))
        .await
        .unwrap()
        .message;
    s.close().await.unwrap();
    drop(s);
    // Persistent WAL: what a read-only reopen needs is still there after a clean close.
    for suffix in ["-wal", "-shm"] {
        let file = fs.path().join(format!("chat.db{suffix}"));
        assert!(file.exists(), "{} was removed at close", file.display());
    }

    fs.remount("ro");
    let s = ChatService::open_sqlite(db(&fs), ServiceConfig::default())
        .expect("a current database on a read-only file system opens");
    let actor = s
        .authenticate(&token)
        .await
        .expect("tokens are read on a read-only database")
        .actor;
    assert_eq!(all_messages(&s, &actor, chat).await, vec![first.clone()]);
    assert_unavailable(
        s.send_message(&actor, chat, SendMessage::text("refused"))
            .await,
        "send on a read-only file system",
    );
    assert_unavailable(s.health().await, "health on a read-only file system");
    assert_unavailable(
        s.customer_login(CustomerLogin {
            customer_id: CustomerId::parse("another").unwrap(),
            officer_id: None,
            signature: None,
        })
        .await,
        "login on a read-only file system",
    );

    // Writable again: the same store takes writes, and its readers see them.
    fs.remount("rw");
    let second = s
        .send_message(&actor, chat, SendMessage::text("after"))
        .await
        .expect("writes succeed once the file system is writable, without reopening")
        .message;
    assert_eq!(second.seq, 2, "the refused send left no trace");
    s.health().await.unwrap();
    assert_eq!(all_messages(&s, &actor, chat).await, vec![first, second]);
    let (_, other_chat, _) = customer(&s, "another").await;
    assert_ne!(other_chat, chat);
    s.close().await.unwrap();

    let store = SqliteStore::open(db(&fs)).unwrap();
    store.integrity_check().await.unwrap();
    chatcore::Store::close(&store).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_fails_writes_cleanly_and_recovers_without_reopening() {
    let Some(fs) = Tmpfs::mount("4m") else {
        return;
    };
    let s = ChatService::open_sqlite(db(&fs), ServiceConfig::default()).unwrap();
    let (actor, chat, _) = customer(&s, "full-customer").await;
    let filler = fs.path().join("filler");
    let body = "x".repeat(1000);
    let mut acked = Vec::new();
    for i in 0..20 {
        let sent = s
            .send_message(&actor, chat, SendMessage::text(format!("{i} {body}")))
            .await
            .unwrap();
        acked.push(sent.message);
    }

    assert!(fill(&filler) > 0, "the filler wrote nothing");
    // Sends may still succeed while SQLite reuses WAL space it had already; the first
    // one that needs a new page fails.
    let mut refused = None;
    for i in 20..20_000 {
        let content = format!("{i} {body}");
        match s
            .send_message(&actor, chat, SendMessage::text(content.clone()))
            .await
        {
            Ok(sent) => acked.push(sent.message),
            Err(Error::Unavailable(_)) => {
                refused = Some(content);
                break;
            }
            Err(e) => panic!("a full disk must fail as Unavailable, not {e:?}"),
        }
    }
    let refused = refused.expect("no send failed on a full disk");
    assert_unavailable(s.health().await, "health on a full disk");
    let stored = all_messages(&s, &actor, chat).await;
    assert_eq!(
        stored, acked,
        "reads on a full disk see every acknowledged write"
    );

    std::fs::remove_file(&filler).unwrap();
    let after = s
        .send_message(&actor, chat, SendMessage::text("space again"))
        .await
        .expect("writes succeed once space is free, without reopening")
        .message;
    assert_eq!(
        after.seq,
        acked.len() as u64 + 1,
        "the refused send left no trace"
    );
    acked.push(after);
    s.health().await.unwrap();
    let stored = all_messages(&s, &actor, chat).await;
    assert_eq!(stored, acked);
    assert!(stored.iter().all(|m| m.content != refused));
    s.close().await.unwrap();

    let store = SqliteStore::open(db(&fs)).unwrap();
    store.integrity_check().await.unwrap();
    chatcore::Store::close(&store).await.unwrap();
}
