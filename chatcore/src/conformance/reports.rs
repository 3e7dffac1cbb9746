//! The operators' reads: a chat's first reply, and the desk report of a period with the
//! definitions of `crate::report` (first replies of the chats created in the period, by
//! whoever sent them; resolutions in the period at the latest resolution, by the officer
//! who held the chat; nearest-rank percentiles).

use std::sync::Arc;

use super::*;
use crate::report::{Durations, ReportPeriod};

/// A message from `sender` in `chat` at `t(at)`.
async fn say(store: &Arc<dyn Store>, chat: ChatId, sender: SenderType, id: &str, at: i64) {
    let mut m = msg(chat, sender, id, "text", None);
    m.created_at = t(at);
    let AppendOutcome::Created(_) = append(store, m).await else {
        panic!("message not stored");
    };
}

/// `chat`, held by `officer`, resolved at `t(at)`.
async fn resolve(store: &Arc<dyn Store>, chat: ChatId, officer: &OfficerId, at: i64) {
    let done = change(
        chat,
        (ChatStatus::Assigned, Some(officer)),
        (ChatStatus::Resolved, Some(officer)),
        ChatChange::Resolved,
        at,
    );
    assert!(applied(apply(store, &done).await));
}

fn applied(outcome: TransitionOutcome) -> bool {
    matches!(outcome, TransitionOutcome::Applied(..))
}

fn secs(count: u64, median: f64, p90: f64) -> Durations {
    Durations {
        count,
        median_seconds: Some(median),
        p90_seconds: Some(p90),
    }
}

pub(super) async fn a_chats_first_reply_is_its_first_officer_message(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    let chat = add_chat(&store, "c", 0).await;
    assert_eq!(store.first_reply(&chat).await.expect("first reply"), None);
    say(&store, chat, SenderType::Customer, "c", 1).await;
    assert!(applied(claim(&store, chat, &amy, 2).await));
    // The claim's system entry is no reply, nor the customer's message.
    assert_eq!(store.first_reply(&chat).await.expect("first reply"), None);
    let mut first = msg(chat, SenderType::Officer, amy.as_str(), "hello", None);
    first.created_at = t(3);
    let AppendOutcome::Created(first) = append(&store, first).await else {
        panic!("reply not stored");
    };
    say(&store, chat, SenderType::Officer, ben.as_str(), 4).await;
    assert_eq!(
        store.first_reply(&chat).await.expect("first reply"),
        Some(first.id)
    );
    assert_eq!(
        store
            .first_reply(&ChatId::new())
            .await
            .expect("first reply"),
        None
    );
}

pub(super) async fn the_desk_report_counts_the_period_as_defined(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let ben = add_officer(&store, "ben").await;
    const S: i64 = 1000;
    // Eleven chats created in the period [0, 1000 s): amy answers the first six after
    // 10..60 s, ben the next four after 100..400 s, the last gets no answer.
    let mut chats = Vec::new();
    for i in 0..11 {
        let chat = add_chat(&store, &format!("c{i}"), i * S).await;
        say(
            &store,
            chat,
            SenderType::Customer,
            &format!("c{i}"),
            i * S + 1,
        )
        .await;
        chats.push(chat);
    }
    for (i, chat) in chats.iter().enumerate().take(10) {
        let i = i as i64;
        let (officer, after) = if i < 6 {
            (&amy, (i + 1) * 10 * S)
        } else {
            (&ben, (i - 5) * 100 * S)
        };
        assert!(applied(claim(&store, *chat, officer, i * S + 2).await));
        say(
            &store,
            *chat,
            SenderType::Officer,
            officer.as_str(),
            i * S + after,
        )
        .await;
        // A later reply, by the other officer, is not the first.
        let other = if i < 6 { &ben } else { &amy };
        say(
            &store,
            *chat,
            SenderType::Officer,
            other.as_str(),
            i * S + after + S,
        )
        .await;
    }
    // A chat created before the period, answered and resolved in it: its first reply
    // is not this period's; its resolution is (by ben, who held it).
    let early = add_chat(&store, "early", -5000 * S).await;
    assert!(applied(claim(&store, early, &ben, -4000 * S).await));
    say(&store, early, SenderType::Officer, ben.as_str(), 500 * S).await;
    resolve(&store, early, &ben, 600 * S).await;
    // amy resolves chats 0..3 at 100, 200, 300 s after their creation.
    for (i, chat) in chats.iter().enumerate().take(3) {
        let i = i as i64;
        resolve(&store, *chat, &amy, i * S + (i + 1) * 100 * S).await;
    }
    // Chat 3 is resolved, reopened to ben, and resolved again later: counted once, at its
    // latest resolution, for ben, from its creation.
    resolve(&store, chats[3], &amy, 3 * S + 50 * S).await;
    let reopen = change(
        chats[3],
        (ChatStatus::Resolved, Some(&amy)),
        (ChatStatus::Assigned, Some(&ben)),
        ChatChange::Reopened,
        3 * S + 60 * S,
    );
    assert!(applied(apply(&store, &reopen).await));
    resolve(&store, chats[3], &ben, 3 * S + 900 * S).await;
    // Chat 4 is resolved after the period ends: not this period's.
    resolve(&store, chats[4], &amy, 2000 * S).await;
    // Chat 5 is resolved, reopened and still open: not resolved at all.
    resolve(&store, chats[5], &amy, 5 * S + 70 * S).await;
    let reopen = change(
        chats[5],
        (ChatStatus::Resolved, Some(&amy)),
        (ChatStatus::Assigned, Some(&amy)),
        ChatChange::Reopened,
        5 * S + 80 * S,
    );
    assert!(applied(apply(&store, &reopen).await));
    // A chat created after the period: not counted.
    add_chat(&store, "late", 1500 * S).await;

    let period = ReportPeriod::new(t(0), t(1000 * S)).expect("period");
    let report = store.desk_report(period).await.expect("report");
    assert_eq!((report.from, report.to), (t(0), t(1000 * S)));
    assert_eq!(report.chats_created, 11);
    // First replies: 10, 20, 30, 40, 50, 60 s (amy), 100, 200, 300, 400 s (ben). Nearest
    // rank: median is the 5th (50 s), p90 the 9th (300 s).
    assert_eq!(report.first_reply, secs(10, 50.0, 300.0));
    // Resolutions in the period: chats 0, 1, 2 (100, 200, 300 s: amy), chat 3 (900 s:
    // ben), early (5600 s: ben).
    assert_eq!(report.chats_resolved, 5);
    assert_eq!(report.resolution, secs(5, 300.0, 5600.0));
    let officers: Vec<&str> = report
        .officers
        .iter()
        .map(|o| o.officer_id.as_str())
        .collect();
    assert_eq!(officers, ["amy", "ben"]);
    let (a, b) = (&report.officers[0], &report.officers[1]);
    assert_eq!(a.first_reply, secs(6, 30.0, 60.0));
    assert_eq!(a.resolution, secs(3, 200.0, 300.0));
    assert_eq!(b.first_reply, secs(4, 200.0, 400.0));
    assert_eq!(b.resolution, secs(2, 900.0, 5600.0));

    // An empty period: zeros and nulls, no officer.
    let empty = ReportPeriod::new(t(-100_000 * S), t(-90_000 * S)).expect("period");
    let report = store.desk_report(empty).await.expect("report");
    assert_eq!((report.chats_created, report.chats_resolved), (0, 0));
    assert_eq!(report.first_reply, Durations::default());
    assert_eq!(report.resolution, Durations::default());
    assert!(report.officers.is_empty());
}
