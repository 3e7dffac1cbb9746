//! Read marks, typing and list previews through `ChatService` on a real SQLite file
//! (contract v2, "Typing, read receipts"; chat lists' `lastMessage`).

use std::time::Duration;

use chatcore::{
    Actor, ChatService, ChatsFilter, CustomerId, Event, ManualClock, NewOfficer, OfficerId,
    SendMessage, SenderType, ServiceConfig, Timestamp,
};
use std::sync::Arc;
use tempfile::TempDir;

#[path = "support/login.rs"]
mod login;

const PATIENCE: Duration = Duration::from_secs(10);

struct Env {
    service: ChatService,
    clock: Arc<ManualClock>,
    _dir: TempDir,
}

fn open() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_800_000_000_000,
    )));
    let mut config = ServiceConfig::default();
    config.clock = clock.clone();
    let service = ChatService::open_sqlite(dir.path().join("chat.db"), config).unwrap();
    Env {
        service,
        clock,
        _dir: dir,
    }
}

fn oid(s: &str) -> OfficerId {
    OfficerId::parse(s).unwrap()
}

async fn officer(s: &ChatService, id: &str) -> Actor {
    s.create_officer(
        &Actor::Admin,
        NewOfficer {
            id: oid(id),
            password: None,
            display_name: None,
            capacity: None,
        },
    )
    .await
    .unwrap();
    Actor::Officer(oid(id))
}

async fn say(s: &ChatService, actor: &Actor, chat: chatcore::ChatId, text: &str) -> u64 {
    s.send_message(actor, chat, SendMessage::text(text))
        .await
        .unwrap()
        .message
        .seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_marks_move_forward_for_the_two_sides_only_and_are_announced() {
    let env = open();
    let s = &env.service;
    let amy = officer(s, "amy").await;
    let bob = officer(s, "bob").await;
    let (cust, chat, _) = login::customer(s, "cust-1").await;
    say(s, &cust, chat, "hello").await;
    s.claim(&amy, &oid("amy"), chat).await.unwrap();
    let last = say(s, &cust, chat, "are you there?").await;
    let mut customers = s.watch_chat(&cust, chat, None).await.unwrap();
    let mut amys = s.watch_chat(&amy, chat, None).await.unwrap();

    // Amy reads everything: the customer hears it; Amy's own feed does not echo it.
    let mark = s.mark_read(&amy, chat, last).await.unwrap();
    assert_eq!(
        (mark.reader_type, mark.reader_id.as_str(), mark.seq),
        (SenderType::Officer, "amy", last)
    );
    let heard = tokio::time::timeout(PATIENCE, customers.next_event())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        heard.event(),
        &Event::Read {
            chat_id: chat,
            reader_type: SenderType::Officer,
            reader_id: "amy".into(),
            seq: last
        }
    );
    // A lower mark changes nothing and is not announced; past the end is 422.
    assert_eq!(s.mark_read(&amy, chat, 1).await.unwrap().seq, last);
    assert_eq!(
        s.mark_read(&amy, chat, last + 1).await.unwrap_err().code(),
        "invalid_field"
    );
    // The customer has a mark of their own; another officer and the admin have none.
    assert_eq!(s.mark_read(&cust, chat, 1).await.unwrap().seq, 1);
    let read = s.chat(&cust, chat).await.unwrap();
    assert_eq!(
        (read.customer_last_read_seq, read.officer_last_read_seq),
        (1, last)
    );
    assert_eq!(
        s.mark_read(&bob, chat, 1).await.unwrap_err().code(),
        "forbidden"
    );
    assert_eq!(
        s.mark_read(&Actor::Admin, chat, 1)
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    // Amy's feed heard the customer's mark, not her own.
    let heard = tokio::time::timeout(PATIENCE, amys.next_event())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            heard.event(),
            Event::Read {
                reader_type: SenderType::Customer,
                seq: 1,
                ..
            }
        ),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_other_side_at_most_once_a_second_and_is_stored_nowhere() {
    let env = open();
    let s = &env.service;
    let amy = officer(s, "amy").await;
    let bob = officer(s, "bob").await;
    let (cust, chat, _) = login::customer(s, "cust-1").await;
    s.claim(&amy, &oid("amy"), chat).await.unwrap();
    let mut amys = s.watch_chat(&amy, chat, None).await.unwrap();
    let mut customers = s.watch_chat(&cust, chat, None).await.unwrap();

    // Three keystrokes in a second: one notice; a second later, another.
    for _ in 0..3 {
        s.typing(&cust, chat).await.unwrap();
    }
    env.clock.advance(Duration::from_millis(1100));
    s.typing(&cust, chat).await.unwrap();
    for _ in 0..2 {
        let heard = tokio::time::timeout(PATIENCE, amys.next_event())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            heard.event(),
            &Event::Typing {
                chat_id: chat,
                sender_type: SenderType::Customer,
                sender_id: "cust-1".into(),
                expires_in_ms: 6000
            }
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), amys.next_event())
            .await
            .is_err(),
        "a third notice"
    );
    // The customer's own feed does not echo it; a colleague may not type there.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), customers.next_event())
            .await
            .is_err()
    );
    assert_eq!(s.typing(&bob, chat).await.unwrap_err().code(), "forbidden");
    assert_eq!(
        s.chat(&cust, chat).await.unwrap().last_seq,
        1,
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_carry_each_chats_newest_entry_as_a_preview() {
    let env = open();
    let s = &env.service;
    let amy = officer(s, "amy").await;
    let (c1, chat1, _) = login::customer(s, "cust-1").await;
    let (_, chat2, _) = login::customer(s, "cust-2").await;
    let long = "é".repeat(300);
    say(s, &c1, chat1, &long).await;
    let queue = s.queue(&amy).await.unwrap();
    let preview = queue[0].last_message.as_ref().expect("a preview");
    assert_eq!(queue[0].id, chat1);
    assert_eq!(
        (preview.seq, preview.sender_type),
        (1, SenderType::Customer)
    );
    assert_eq!(preview.preview.chars().count(), 140);
    assert!(preview.preview.ends_with('…'));
    assert!(queue[1].last_message.is_none(), "an empty chat has none");
    assert_eq!(queue[1].id, chat2);
    // The claim's system entry is now the newest, in the officer's list and the
    // customer's.
    s.claim(&amy, &oid("amy"), chat1).await.unwrap();
    let mine = s
        .officer_chats(&amy, &oid("amy"), ChatsFilter::Open)
        .await
        .unwrap();
    let newest = mine[0].last_message.as_ref().unwrap();
    assert_eq!(
        (newest.seq, newest.sender_type, newest.preview.as_str()),
        (2, SenderType::System, "amy took the chat")
    );
    let theirs = s
        .customer_chats(&c1, &CustomerId::parse("cust-1").unwrap())
        .await
        .unwrap();
    assert_eq!(theirs[0].last_message.as_ref().unwrap().seq, 2);
    // A single chat's answer carries none (lists only).
    assert!(s.chat(&c1, chat1).await.unwrap().last_message.is_none());
}
