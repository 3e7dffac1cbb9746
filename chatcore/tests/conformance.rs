//! Runs the store conformance suite against every store this crate ships.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chatcore::{MemoryStore, SqliteStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    chatcore::conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    chatcore::conformance::run_all(|| {
        let path = dir
            .path()
            .join(format!("case{}.db", n.fetch_add(1, Ordering::SeqCst)));
        async move { Arc::new(SqliteStore::open(path).unwrap()) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_store_conforms() {
    chatcore::conformance::run_all(|| async {
        Arc::new(SqliteStore::in_memory().unwrap()) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_blob_store_conforms() {
    chatcore::conformance::blobs::run_all(|| async {
        Arc::new(chatcore::MemoryBlobStore::new()) as Arc<dyn chatcore::BlobStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_system_blob_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    chatcore::conformance::blobs::run_all(|| {
        let path = dir
            .path()
            .join(format!("case{}", n.fetch_add(1, Ordering::SeqCst)));
        async move {
            Arc::new(chatcore::FsBlobStore::open(path).unwrap()) as Arc<dyn chatcore::BlobStore>
        }
    })
    .await;
}
