//! Crash safety: a writer process is killed with SIGKILL while it sends at full speed;
//! every message it had acknowledged must be in the database afterwards, with dense
//! seqs, and its tokens must still work. The writer runs with the weaker durability,
//! `Durability::Normal` (no fsync per commit), which is what a process crash tests;
//! the default, `Full`, only adds fsyncs.
//!
//! The writer is this same test binary, re-run with `--exact crash_writer_child` and an
//! environment variable naming the database: a real separate process, killed for real.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use chatcore::{
    ChatId, ChatService, CustomerId, CustomerLogin, Durability, LocalBus, MessagePage, SendMessage,
    ServiceConfig, SqliteOptions, SqliteStore,
};

const DB_ENV: &str = "CHATCORE_CRASH_CHILD_DB";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of sigkill_loses_nothing_acknowledged, not a test of its own"]
async fn crash_writer_child() {
    let db = std::env::var(DB_ENV).expect("run by sigkill_loses_nothing_acknowledged");
    let options = SqliteOptions {
        durability: Durability::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(db, options).unwrap();
    let s = ChatService::new(
        Arc::new(store),
        Arc::new(LocalBus::new()),
        ServiceConfig::default(),
    );
    let login = s
        .customer_login(CustomerLogin {
            customer_id: CustomerId::parse("crash").unwrap(),
            officer_id: None,
            signature: None,
        })
        .await
        .unwrap();
    println!("login {} {}", login.chat.id, login.token);
    let actor = s.authenticate(&login.token).await.unwrap().actor;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (s, actor) = (s.clone(), actor.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let sent = s
                        .send_message(
                            &actor,
                            login.chat.id,
                            SendMessage::text(format!("w{w}-{i}")),
                        )
                        .await
                        .unwrap();
                    // Printed only after the store acknowledged the message.
                    println!("ack {} {}", sent.message.seq, sent.message.id);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
}

enum Line {
    Login(ChatId, String),
    Ack(u64, String),
}

/// Reads one line of the writer's output. libtest may print `test name ... ` in front of
/// the first line, so the keyword is searched for rather than expected at the start. A
/// line cut short by the kill parses as nothing.
fn parse(line: &str) -> Option<Line> {
    let from = |kw: &str| {
        line.find(kw)
            .map(|i| line[i + kw.len()..].split_whitespace())
    };
    if let Some(mut rest) = from("login ") {
        let chat = ChatId::parse(rest.next()?).ok()?;
        return Some(Line::Login(chat, rest.next()?.to_string()));
    }
    let mut rest = from("ack ")?;
    let seq = rest.next()?.parse().ok()?;
    let id = rest.next()?;
    (id.len() == 36).then(|| Line::Ack(seq, id.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_writer_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut login = None;
    let mut acked: Vec<(u64, String)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < 2000 {
        assert!(
            Instant::now() < deadline,
            "the writer acknowledged only {} messages",
            acked.len()
        );
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            panic!("the writer stopped talking after {} acks", acked.len());
        };
        match parse(&line) {
            Some(Line::Login(chat, token)) => login = Some((chat, token)),
            Some(Line::Ack(seq, id)) => acked.push((seq, id)),
            None => {}
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no checkpoint, no flush.
    child.wait().unwrap();
    // Whatever the pipe still held was acknowledged before the kill, too.
    acked.extend(rx.try_iter().filter_map(|line| match parse(&line) {
        Some(Line::Ack(seq, id)) => Some((seq, id)),
        _ => None,
    }));

    let (chat, token) = login.expect("the writer logged in");
    let s = ChatService::open_sqlite(&db, ServiceConfig::default()).unwrap();
    let actor = s
        .authenticate(&token)
        .await
        .expect("the token survives the crash")
        .actor;
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = s
            .messages(
                &actor,
                chat,
                MessagePage {
                    after: Some(after),
                    before: None,
                    limit: Some(1000),
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        stored.extend(page);
    }
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "seqs are not dense"
    );
    for (seq, id) in &acked {
        let m = stored
            .get(*seq as usize - 1)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} lost ({} stored)", stored.len()));
        assert_eq!(&m.id.to_string(), id, "seq {seq} holds another message");
    }
    assert!(stored.len() >= acked.len());
}
