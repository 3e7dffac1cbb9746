//! Cases on read marks (forward only, never past the newest entry, one per side) and
//! reading a list's newest entries at once.

use super::*;
use crate::store::ReadOutcome;

pub(super) async fn read_marks_only_move_forward_and_never_past_the_end(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "c1", 0).await;
    for text in ["one", "two", "three"] {
        append(&store, msg(chat, SenderType::Customer, "c1", text, None)).await;
    }
    let marks = |c: &crate::model::Chat| (c.customer_last_read_seq, c.officer_last_read_seq);
    let moved = store
        .mark_read(&chat, SenderType::Officer, 2)
        .await
        .expect("mark");
    let ReadOutcome::Moved(now) = moved else {
        panic!("expected a move: {moved:?}")
    };
    assert_eq!(marks(&now), (0, 2));
    // Back or in place: nothing changes.
    for seq in [1, 2] {
        let same = store
            .mark_read(&chat, SenderType::Officer, seq)
            .await
            .expect("mark");
        assert!(
            matches!(&same, ReadOutcome::Unchanged(c) if marks(c) == (0, 2)),
            "{same:?}"
        );
    }
    // Past the newest entry: refused, unchanged.
    let past = store
        .mark_read(&chat, SenderType::Officer, 4)
        .await
        .expect("mark");
    assert!(
        matches!(&past, ReadOutcome::PastEnd(c) if c.last_seq == 3),
        "{past:?}"
    );
    // The customer's mark is their own.
    let theirs = store
        .mark_read(&chat, SenderType::Customer, 3)
        .await
        .expect("mark");
    assert!(
        matches!(&theirs, ReadOutcome::Moved(c) if marks(c) == (3, 2)),
        "{theirs:?}"
    );
    let read = store.chat(&chat).await.expect("chat").expect("exists");
    assert_eq!(marks(&read), (3, 2), "stored");
    assert_eq!(
        store
            .mark_read(&ChatId::new(), SenderType::Customer, 1)
            .await
            .expect("mark"),
        ReadOutcome::NotFound
    );
}

pub(super) async fn entries_are_read_by_chat_and_seq(store: Arc<dyn Store>) {
    let a = add_chat(&store, "c1", 0).await;
    let b = add_chat(&store, "c2", 1).await;
    for (chat, text) in [(a, "a1"), (a, "a2"), (b, "b1")] {
        append(&store, msg(chat, SenderType::Customer, "c", text, None)).await;
    }
    let mut found: Vec<String> = store
        .entries(&[(a, 2), (b, 1), (b, 9), (ChatId::new(), 1)])
        .await
        .expect("entries")
        .into_iter()
        .map(|m| m.content)
        .collect();
    found.sort();
    assert_eq!(found, ["a2", "b1"], "the existing ones, each once");
    assert!(store.entries(&[]).await.expect("entries").is_empty());
}
