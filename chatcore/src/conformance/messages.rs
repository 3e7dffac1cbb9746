//! Conformance cases on messages: dense seqs (also under concurrent appends),
//! idempotency keys, and pages (bounds, limit and byte cap).

use super::*;

pub(super) async fn seq_is_dense_for_sequential_appends(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "c", 1).await;
    let other = add_chat(&store, "other", 2).await;
    assert_eq!(store.last_seq(&chat).await.expect("last"), 0);
    for i in 1..=5u64 {
        let AppendOutcome::Created(m) = append(
            &store,
            msg(chat, SenderType::Customer, "c", &format!("m{i}"), None),
        )
        .await
        else {
            panic!("not created");
        };
        assert_eq!(m.seq, i);
        assert_eq!(m.content, format!("m{i}"));
    }
    // Another chat counts from 1 on its own.
    let AppendOutcome::Created(m) =
        append(&store, msg(other, SenderType::Customer, "other", "x", None)).await
    else {
        panic!("not created");
    };
    assert_eq!(m.seq, 1);
    assert_eq!(store.last_seq(&chat).await.expect("last"), 5);
    let all = store.messages(&chat, &from_start(100)).await.expect("page");
    assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5]);
    assert_eq!(all[0].sender_type, SenderType::Customer);
    assert_eq!(all[0].sender_id, "c");
    assert_eq!(all[0].created_at, t(1));
}

pub(super) async fn seq_is_dense_under_concurrent_appends(store: Arc<dyn Store>) {
    const TASKS: usize = 32;
    const EACH: usize = 20;
    let chat = add_chat(&store, "busy", 1).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for k in 0..EACH {
                    let m = msg(
                        chat,
                        SenderType::Customer,
                        "busy",
                        &format!("{i}-{k}"),
                        None,
                    );
                    match store.append_message(&m).await.expect("append") {
                        AppendOutcome::Created(m) => got.push(m.seq),
                        other => panic!("unexpected {other:?}"),
                    }
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(TASKS * EACH) as u64).collect();
    assert_eq!(all, expected, "acknowledged seqs are not exactly 1..N");
    let stored = store
        .messages(&chat, &from_start(1000))
        .await
        .expect("page");
    assert_eq!(seqs(&stored), expected, "stored seqs are not exactly 1..N");
}

pub(super) async fn client_message_id_is_idempotent_per_sender_and_chat(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "c", 1).await;
    let other = add_chat(&store, "d", 2).await;
    let AppendOutcome::Created(original) = append(
        &store,
        msg(chat, SenderType::Customer, "c", "hello", Some("k1")),
    )
    .await
    else {
        panic!("first send not created");
    };
    assert_eq!(original.client_message_id.as_deref(), Some("k1"));
    // A retry, even with other text, returns the original and stores nothing.
    let again = append(
        &store,
        msg(chat, SenderType::Customer, "c", "hello again", Some("k1")),
    )
    .await;
    assert_eq!(again, AppendOutcome::Duplicate(original.clone()));
    // The same key from another sender, or in another chat, is another message.
    let AppendOutcome::Created(officers) = append(
        &store,
        msg(chat, SenderType::Officer, "amy", "hi", Some("k1")),
    )
    .await
    else {
        panic!("officer's message with the same key was not stored");
    };
    assert_eq!(officers.seq, 2);
    assert!(matches!(
        append(
            &store,
            msg(other, SenderType::Customer, "d", "x", Some("k1"))
        )
        .await,
        AppendOutcome::Created(_)
    ));
    assert_eq!(store.last_seq(&chat).await.expect("last"), 2);
    // The original is found by its sender and key, and by nothing else.
    let found = |sender_type, sender_id: &'static str, key: &'static str, chat| {
        let store = store.clone();
        async move {
            store
                .sent_message(&chat, sender_type, sender_id, key)
                .await
                .expect("sent message")
        }
    };
    assert_eq!(
        found(SenderType::Customer, "c", "k1", chat).await,
        Some(original)
    );
    assert_eq!(
        found(SenderType::Officer, "amy", "k1", chat).await,
        Some(officers)
    );
    assert_eq!(found(SenderType::Customer, "c", "k2", chat).await, None);
    assert_eq!(found(SenderType::Customer, "amy", "k1", chat).await, None);
    assert_eq!(
        found(SenderType::Customer, "c", "k1", ChatId::new()).await,
        None
    );
}

pub(super) async fn pages_respect_bounds_and_limit(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "c", 1).await;
    for i in 1..=10 {
        append(
            &store,
            msg(chat, SenderType::Customer, "c", &format!("m{i}"), None),
        )
        .await;
    }
    let page = |after: Option<u64>, before: Option<u64>, limit: u32| {
        let store = store.clone();
        async move {
            seqs(
                &store
                    .messages(
                        &chat,
                        &PageQuery {
                            after,
                            before,
                            limit,
                            max_bytes: usize::MAX,
                        },
                    )
                    .await
                    .expect("page"),
            )
        }
    };
    assert_eq!(page(None, None, 3).await, vec![1, 2, 3]);
    assert_eq!(page(Some(3), None, 3).await, vec![4, 5, 6]);
    assert_eq!(page(Some(8), None, 100).await, vec![9, 10]);
    assert_eq!(page(Some(10), None, 100).await, Vec::<u64>::new());
    assert_eq!(page(Some(99), None, 100).await, Vec::<u64>::new());
    // With `before`: the newest `limit` below it, still ascending.
    assert_eq!(page(None, Some(8), 3).await, vec![5, 6, 7]);
    assert_eq!(page(None, Some(3), 10).await, vec![1, 2]);
    assert_eq!(page(None, Some(1), 10).await, Vec::<u64>::new());
    assert_eq!(page(None, Some(99), 2).await, vec![9, 10]);
    assert_eq!(page(Some(4), Some(8), 10).await, vec![5, 6, 7]);
    assert_eq!(page(Some(4), Some(8), 2).await, vec![6, 7]);
    assert_eq!(page(Some(6), Some(5), 10).await, Vec::<u64>::new());
    assert_eq!(page(Some(u64::MAX), None, 10).await, Vec::<u64>::new());
    assert_eq!(page(None, Some(u64::MAX), 1).await, vec![10]);
    // A chat with no messages, and one that does not exist, have empty pages.
    let empty = add_chat(&store, "e", 2).await;
    let q = PageQuery {
        after: None,
        before: None,
        limit: 10,
        max_bytes: usize::MAX,
    };
    assert!(store.messages(&empty, &q).await.expect("page").is_empty());
    assert!(
        store
            .messages(&ChatId::new(), &q)
            .await
            .expect("page")
            .is_empty()
    );
}

pub(super) async fn pages_stop_at_their_byte_cap(store: Arc<dyn Store>) {
    let chat = add_chat(&store, "c", 1).await;
    // Nine messages of one size each (one-digit seqs, contents of equal length).
    for i in 0..9 {
        append(
            &store,
            msg(
                chat,
                SenderType::Customer,
                "c",
                &format!("message-{i}"),
                None,
            ),
        )
        .await;
    }
    let all = store
        .messages(&chat, &PageQuery::after(0, 100))
        .await
        .expect("page");
    let size = all[0].json_len();
    assert!(all.iter().all(|m| m.json_len() == size));
    let page = |after: Option<u64>, before: Option<u64>, max_bytes: usize| {
        let store = store.clone();
        async move {
            let q = PageQuery {
                after,
                before,
                limit: 100,
                max_bytes,
            };
            seqs(&store.messages(&chat, &q).await.expect("page"))
        }
    };
    // Exactly three fit; one byte less and only two do.
    assert_eq!(page(None, None, 3 * size).await, vec![1, 2, 3]);
    assert_eq!(page(None, None, 3 * size - 1).await, vec![1, 2]);
    assert_eq!(page(Some(7), None, 3 * size).await, vec![8, 9]);
    // With `before`, the newest that fit, still ascending.
    assert_eq!(page(None, Some(9), 2 * size).await, vec![7, 8]);
    // A message larger than the cap still comes, alone: a page is never empty while
    // there is something to read.
    assert_eq!(page(None, None, 1).await, vec![1]);
    assert_eq!(page(None, Some(5), 1).await, vec![4]);
    assert_eq!(page(Some(9), None, 1).await, Vec::<u64>::new());
}

pub(super) async fn a_chat_knows_its_last_seq_and_when_it_changed(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let chat = add_chat(&store, "c", 1).await;
    let fresh = store.chat(&chat).await.expect("read").expect("chat");
    assert_eq!(
        (fresh.last_seq, fresh.updated_at, fresh.resolved_at),
        (0, t(1), None),
        "a new chat: no entry, changed when created"
    );
    let TransitionOutcome::Applied(claimed, entry) = claim(&store, chat, &amy, 5).await else {
        panic!("claim refused");
    };
    assert_eq!(
        (claimed.updated_at, claimed.last_seq),
        (t(5), 1),
        "a claim is a change, with its entry"
    );
    let mut reply = msg(chat, SenderType::Officer, "amy", "hello", None);
    reply.created_at = t(9);
    append(&store, reply).await;
    let now = store.chat(&chat).await.expect("read").expect("chat");
    assert_eq!(
        (now.last_seq, now.updated_at),
        (2, t(9)),
        "the newest entry's seq and time"
    );
    let page = store.messages(&chat, &from_start(10)).await.expect("page");
    assert_eq!(page[0].sender_type, SenderType::System);
    assert_eq!(
        page[0].event, entry.event,
        "the event reads back as written"
    );
    assert_eq!(page[1].event, None);
}

/// A message may carry an attachment: stored with it, read back on every path (pages,
/// entries, the idempotent original), found by the attachment's id, and counted as a
/// use of its bytes.
pub(super) async fn attachments_are_stored_found_and_counted(store: Arc<dyn Store>) {
    use crate::blob::BlobId;
    use crate::ids::AttachmentId;
    use crate::model::Attachment;

    let chat = add_chat(&store, "c", 1).await;
    append(&store, msg(chat, SenderType::Customer, "c", "first", None)).await;
    let file = Attachment {
        id: AttachmentId::new(),
        name: "pay slip – März.pdf".to_string(),
        content_type: "application/pdf".to_string(),
        size: 123_456,
        sha256: BlobId::of(b"the bytes"),
    };
    let mut sent = msg(chat, SenderType::Customer, "c", "", Some("upload-1"));
    sent.attachment = Some(file.clone());
    let AppendOutcome::Created(stored) = append(&store, sent.clone()).await else {
        panic!("an attachment's message was not created");
    };
    assert_eq!((stored.seq, stored.attachment.as_deref()), (2, Some(&file)));
    // The same key again: the original, with its attachment, nothing stored twice.
    sent.id = crate::ids::MessageId::new();
    let AppendOutcome::Duplicate(original) = append(&store, sent).await else {
        panic!("a repeated key stored twice");
    };
    assert_eq!(original, stored);
    assert_eq!(store.last_seq(&chat).await.expect("last"), 2);

    let page = store.messages(&chat, &from_start(10)).await.expect("page");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].attachment, None);
    assert_eq!(page[1], stored);
    let entries = store.entries(&[(chat, 2)]).await.expect("entries");
    assert_eq!(entries, vec![stored.clone()]);
    assert_eq!(
        store.attachment(&file.id).await.expect("by id"),
        Some(stored.clone())
    );
    assert_eq!(
        store.attachment(&AttachmentId::new()).await.expect("by id"),
        None
    );
    assert!(store.blob_in_use(&file.sha256).await.expect("in use"));
    assert!(
        !store
            .blob_in_use(&BlobId::of(b"other bytes"))
            .await
            .expect("in use")
    );

    // Two messages may share bytes; each attachment keeps its own id.
    let again = Attachment {
        id: AttachmentId::new(),
        name: "copy.pdf".to_string(),
        ..file.clone()
    };
    let mut second = msg(chat, SenderType::Customer, "c", "", None);
    second.attachment = Some(again.clone());
    let AppendOutcome::Created(copy) = append(&store, second).await else {
        panic!("not created");
    };
    assert_eq!(copy.seq, 3);
    assert_eq!(
        store
            .attachment(&again.id)
            .await
            .expect("by id")
            .and_then(|m| m.attachment)
            .map(|a| *a),
        Some(again)
    );
}
