//! The engine's abuse limits on a real SQLite file, with time moved by hand: failed officer
//! logins per officer id, and message sends per identity. Each limit refuses with
//! `rate_limited` and a wait, changes nothing when it refuses, leaves other identities
//! alone, and lets the identity through again once the wait has passed.

use std::sync::Arc;
use std::time::Duration;

use chatcore::{
    Actor, ChatService, Error, ErrorKind, Limits, ManualClock, MessagePage, NewOfficer, OfficerId,
    Rate, SendMessage, ServiceConfig, Timestamp,
};
use tempfile::TempDir;

#[path = "support/login.rs"]
mod login;
use login::customer;

const PASSWORD: &str = "correct horse";

struct Env {
    service: ChatService,
    clock: Arc<ManualClock>,
    _dir: TempDir,
}

/// A secured service (passwords required) with these limits and a hand-moved clock.
fn open(limits: Limits) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_800_000_000_000,
    )));
    let mut config = ServiceConfig::default();
    config.admin_token = Some("admin-secret-token-0123456789abcdef".into());
    config.limits = limits;
    config.clock = clock.clone();
    let service = ChatService::open_sqlite(dir.path().join("chat.db"), config).unwrap();
    Env {
        service,
        clock,
        _dir: dir,
    }
}

async fn officer(s: &ChatService, id: &str) {
    s.create_officer(
        &Actor::Admin,
        NewOfficer {
            id: OfficerId::parse(id).unwrap(),
            password: Some(PASSWORD.into()),
            display_name: None,
            capacity: None,
        },
    )
    .await
    .unwrap();
}

#[track_caller]
fn wait_of(result: Result<impl std::fmt::Debug, Error>) -> Duration {
    match result {
        Err(e) => {
            assert_eq!(e.code(), "rate_limited", "{e:?}");
            assert_eq!(e.kind(), ErrorKind::TooManyRequests);
            assert!(e.public_message().contains("try again"), "{e}");
            e.retry_after()
                .expect("a rate_limited error says how long to wait")
        }
        Ok(v) => panic!("expected rate_limited, got {v:?}"),
    }
}

#[tokio::test]
async fn failed_logins_are_limited_per_officer_id() {
    let limits = Limits::default()
        .with_login_failures_per_officer(Some(Rate::new(3, Duration::from_secs(60))));
    let env = open(limits);
    let s = &env.service;
    officer(s, "amy").await;
    officer(s, "bob").await;

    for _ in 0..3 {
        let e = s
            .officer_login("amy", Some("wrong guess"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_credentials");
    }
    // Over the limit: refused before the password is looked at, even the right one.
    let wait = wait_of(s.officer_login("amy", Some(PASSWORD)).await);
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(20),
        "{wait:?}"
    );
    assert_eq!(
        wait_of(s.officer_login("amy", Some("another guess")).await),
        wait,
        "a refused attempt counts nothing"
    );
    // Another officer is served meanwhile.
    s.officer_login("bob", Some(PASSWORD)).await.unwrap();

    // Once the wait has passed, amy logs in.
    env.clock.advance(wait);
    let session = s.officer_login("amy", Some(PASSWORD)).await.unwrap();
    assert_eq!(
        s.authenticate(&session.token).await.unwrap().actor,
        Actor::Officer(OfficerId::parse("amy").unwrap())
    );
}

#[tokio::test]
async fn successful_logins_do_not_count() {
    let limits = Limits::default()
        .with_login_failures_per_officer(Some(Rate::new(2, Duration::from_secs(3600))));
    let env = open(limits);
    let s = &env.service;
    officer(s, "amy").await;
    for _ in 0..5 {
        s.officer_login("amy", Some(PASSWORD)).await.unwrap();
    }
    // The budget is whole: two failures still get the honest answer.
    for _ in 0..2 {
        let e = s.officer_login("amy", Some("nope")).await.unwrap_err();
        assert_eq!(e.code(), "invalid_credentials");
    }
    wait_of(s.officer_login("amy", Some(PASSWORD)).await);
}

#[tokio::test]
async fn unknown_officer_ids_are_limited_alike() {
    let limits = Limits::default()
        .with_login_failures_per_officer(Some(Rate::new(2, Duration::from_secs(60))));
    let env = open(limits);
    let s = &env.service;
    officer(s, "amy").await;
    let mut waits = Vec::new();
    for id in ["amy", "ghost"] {
        for _ in 0..2 {
            assert_eq!(
                s.officer_login(id, Some("nope")).await.unwrap_err().code(),
                "invalid_credentials"
            );
        }
        waits.push(wait_of(s.officer_login(id, Some("nope")).await));
    }
    // Whether the id exists shows nowhere: same answer, same wait.
    assert_eq!(waits[0], waits[1]);
}

#[tokio::test]
async fn concurrent_guesses_cannot_overshoot_the_limit() {
    let limits = Limits::default()
        .with_login_failures_per_officer(Some(Rate::new(3, Duration::from_secs(3600))));
    let env = open(limits);
    let s = env.service.clone();
    officer(&s, "amy").await;
    let guesses: Vec<_> = (0..12)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.officer_login("amy", Some(&format!("guess-{i}"))).await })
        })
        .collect();
    let mut codes = Vec::new();
    for g in guesses {
        codes.push(g.await.unwrap().unwrap_err().code());
    }
    let checked = codes
        .iter()
        .filter(|c| **c == "invalid_credentials")
        .count();
    let limited = codes.iter().filter(|c| **c == "rate_limited").count();
    assert_eq!((checked, limited), (3, 9), "{codes:?}");
}

#[tokio::test]
async fn sends_are_limited_per_sender_and_a_refusal_stores_nothing() {
    let limits =
        Limits::default().with_sends_per_sender(Some(Rate::new(3, Duration::from_secs(10))));
    let env = open(limits);
    let s = &env.service;
    let (c1, chat1, _) = customer(s, "c1").await;
    let (c2, chat2, _) = customer(s, "c2").await;
    for i in 0..3 {
        s.send_message(&c1, chat1, SendMessage::text(format!("m{i}")))
            .await
            .unwrap();
    }
    let wait = wait_of(
        s.send_message(&c1, chat1, SendMessage::text("one too many"))
            .await,
    );
    assert!(wait <= Duration::from_secs(4), "{wait:?}");
    let stored = s
        .messages(&c1, chat1, MessagePage::default())
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "the refused message was not stored");

    // Another customer is served meanwhile.
    s.send_message(&c2, chat2, SendMessage::text("hello"))
        .await
        .unwrap();

    env.clock.advance(wait);
    let sent = s
        .send_message(&c1, chat1, SendMessage::text("after the wait"))
        .await
        .unwrap();
    assert_eq!(sent.message.seq, 4, "no gap where the refusal was");
}

#[tokio::test]
async fn a_new_token_does_not_reset_the_senders_budget() {
    let limits =
        Limits::default().with_sends_per_sender(Some(Rate::new(2, Duration::from_secs(60))));
    let env = open(limits);
    let s = &env.service;
    let (first, chat, _) = customer(s, "c1").await;
    for _ in 0..2 {
        s.send_message(&first, chat, SendMessage::text("hi"))
            .await
            .unwrap();
    }
    // Logging in again gives a new token for the same identity: the same budget.
    let (again, same_chat, _) = customer(s, "c1").await;
    assert_eq!(same_chat, chat);
    wait_of(
        s.send_message(&again, chat, SendMessage::text("again"))
            .await,
    );
}

#[tokio::test]
async fn by_default_sends_are_not_limited_and_failed_logins_are() {
    let defaults = Limits::default();
    assert_eq!(defaults.sends_per_sender, None);
    assert_eq!(
        defaults.login_failures_per_officer,
        Some(Rate::new(10, Duration::from_secs(15 * 60)))
    );
    let env = open(ServiceConfig::default().limits);
    let s = &env.service;
    let (c, chat, _) = customer(s, "c1").await;
    for i in 0..200 {
        s.send_message(&c, chat, SendMessage::text(format!("m{i}")))
            .await
            .unwrap();
    }
}
