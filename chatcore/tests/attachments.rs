//! Attachments through `ChatService` (contract v2, "attachments"): the engine's side of
//! an upload on memory stores and on a SQLite file with its directory: a message that
//! carries its file, the bytes read back, a service without a blob store refusing, and
//! the sweep of what no message points at, judged on the service's clock.

use std::sync::Arc;
use std::time::Duration;

use chatcore::blob::{bytes_stream, chunked_stream};
use chatcore::{
    Actor, BlobId, BlobStore, ChatService, LocalBus, ManualClock, MemoryBlobStore, MemoryStore,
    NewOfficer, OfficerId, ServiceConfig, Timestamp, Upload,
};
use futures_util::StreamExt;

#[path = "support/login.rs"]
mod login;

fn memory(clock: Arc<ManualClock>) -> (ChatService, Arc<MemoryBlobStore>) {
    let blobs = Arc::new(MemoryBlobStore::new());
    let mut config = ServiceConfig::default();
    config.clock = clock;
    let service = ChatService::with_blobs(
        Arc::new(MemoryStore::new()),
        blobs.clone(),
        Arc::new(LocalBus::new()),
        config,
    );
    (service, blobs)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        1_800_000_000_000,
    )))
}

fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.extend((0..len).map(|i| (i % 241) as u8));
    bytes
}

fn upload(name: &str) -> Upload {
    Upload {
        name: name.to_string(),
        ..Upload::default()
    }
}

async fn read_all(service: &ChatService, actor: &Actor, id: chatcore::AttachmentId) -> Vec<u8> {
    let readable = service.attachment(actor, id).await.unwrap();
    let mut body = service.open_attachment(&readable, None).await.unwrap().body;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_is_a_message_and_its_bytes_come_back() {
    let (service, _blobs) = memory(clock());
    let (customer, chat, _) = login::customer(&service, "cust-1").await;
    let bytes = pdf(300_000);
    let sent = service
        .send_attachment(
            &customer,
            chat,
            Upload {
                content_type: Some("application/pdf".into()),
                length: Some(bytes.len() as u64),
                ..upload("offer")
            },
            chunked_stream(bytes.clone(), 8192),
        )
        .await
        .unwrap();
    assert!(sent.created);
    let file = sent.message.attachment.clone().expect("an attachment");
    assert_eq!(file.name, "offer.pdf", "the type's extension is added");
    assert_eq!(file.content_type, "application/pdf");
    assert_eq!(
        (file.size, file.sha256),
        (bytes.len() as u64, BlobId::of(&bytes))
    );
    assert_eq!(sent.message.content, "");
    assert!(read_all(&service, &customer, file.id).await == bytes);
    // Its chat's preview names the file.
    let chats = service
        .customer_chats(&customer, &chatcore::CustomerId::parse("cust-1").unwrap())
        .await
        .unwrap();
    assert_eq!(
        chats[0].last_message.as_ref().unwrap().preview,
        "📎 offer.pdf"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_a_blob_store_refuses_attachments() {
    let service = ChatService::new(
        Arc::new(MemoryStore::new()),
        Arc::new(LocalBus::new()),
        ServiceConfig::default(),
    );
    let (customer, chat, _) = login::customer(&service, "cust-1").await;
    let refused = service
        .send_attachment(&customer, chat, upload("a.pdf"), bytes_stream(pdf(10)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "attachments_disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_removes_only_old_bytes_no_message_points_at() {
    let clock = clock();
    let (service, blobs) = memory(clock.clone());
    let (customer, chat, _) = login::customer(&service, "cust-1").await;
    let kept = service
        .send_attachment(&customer, chat, upload("kept.pdf"), bytes_stream(pdf(1000)))
        .await
        .unwrap()
        .message
        .attachment
        .unwrap();
    // Bytes stored and never pointed at (a crash before their message): an orphan.
    let orphan = blobs
        .put(
            bytes_stream(pdf(2000)),
            chatcore::Clock::now(clock.as_ref()),
        )
        .await
        .unwrap();
    // Within the grace nothing goes.
    clock.advance(Duration::from_secs(1800));
    assert_eq!(service.sweep_attachments().await.unwrap().orphans, 0);
    // The same bytes stored again by an upload in flight are fresh again.
    let fresh = blobs
        .put(
            bytes_stream(pdf(3000)),
            chatcore::Clock::now(clock.as_ref()),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1801));
    let swept = service.sweep_attachments().await.unwrap();
    assert_eq!(swept.orphans, 1);
    assert!(blobs.get(&orphan.id, None).await.unwrap().is_none());
    assert!(blobs.get(&fresh.id, None).await.unwrap().is_some());
    assert!(blobs.get(&kept.sha256, None).await.unwrap().is_some());
    assert!(read_all(&service, &customer, kept.id).await == pdf(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_the_files_go_beside_the_database_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let officer = OfficerId::parse("amy").unwrap();
    let (id, bytes) = {
        let service = ChatService::open_sqlite(&db, ServiceConfig::default()).unwrap();
        service
            .create_officer(
                &Actor::Admin,
                NewOfficer {
                    id: officer.clone(),
                    password: None,
                    display_name: None,
                    capacity: None,
                },
            )
            .await
            .unwrap();
        let (customer, chat, _) = login::customer(&service, "cust-1").await;
        let bytes = "Hello, here are my numbers.\n".repeat(5000).into_bytes();
        let sent = service
            .send_attachment(
                &customer,
                chat,
                upload("numbers.txt"),
                chunked_stream(bytes.clone(), 1000),
            )
            .await
            .unwrap();
        service.close().await.unwrap();
        (sent.message.attachment.unwrap().id, bytes)
    };
    assert!(chatcore::FsBlobStore::beside(&db).is_dir());
    let service = ChatService::open_sqlite(&db, ServiceConfig::default()).unwrap();
    // Any officer reads a pending chat's files.
    let readable = service
        .attachment(&Actor::Officer(officer), id)
        .await
        .unwrap();
    assert_eq!(readable.served_as, "text/plain; charset=utf-8");
    assert!(read_all(&service, &Actor::Admin, id).await == bytes);
}
