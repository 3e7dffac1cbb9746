//! The blob store conformance suite: the behaviour every [`BlobStore`] must have (the
//! file system's, memory's, PostgreSQL's, an embedder's), written once.
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! chatcore::conformance::blobs::run_all(|| async {
//!     Arc::new(chatcore::MemoryBlobStore::new()) as Arc<dyn chatcore::BlobStore>
//! })
//! .await;
//! # }
//! ```
//!
//! Each case gets a fresh, empty store and panics with its name on the first violation.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::blob::{
    BlobId, BlobStore, ByteRange, ByteStream, PutError, bytes_stream, chunked_stream,
};
use crate::model::Timestamp;

/// A boxed case body.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One named case.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name.
    pub name: &'static str,
    /// Runs the case on an empty store.
    pub run: fn(Arc<dyn BlobStore>) -> CaseFuture,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case of the suite.
        pub const CASES: &[Case] = &[$(Case { name: stringify!($name), run: |s| Box::pin($name(s)) }),*];
    };
}

cases!(
    bytes_come_back_as_stored_under_their_sha256,
    ranges_are_exactly_the_bytes_asked_for,
    the_same_bytes_are_kept_once_and_made_fresh,
    a_failed_body_leaves_nothing_behind,
    missing_blobs_are_none_and_deletes_say_so,
    stale_blobs_are_listed_a_page_at_a_time_in_order,
    only_stale_blobs_are_deleted_by_a_sweep,
    large_blobs_stream_in_bounded_chunks,
    concurrent_puts_of_the_same_bytes_keep_one_blob,
);

/// Runs every case, each on a fresh store from `make_store`.
pub async fn run_all<F, Fut>(make_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn BlobStore>>,
{
    for case in CASES {
        let store = make_store().await;
        tracing::info!(case = case.name, "blob store conformance case");
        if let Err(e) = tokio::spawn((case.run)(store)).await {
            panic!("blob store conformance case `{}` failed: {e}", case.name);
        }
    }
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + ms)
}

/// `len` bytes of a pattern that differs with `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn put(store: &Arc<dyn BlobStore>, bytes: &[u8], chunk: usize, at: i64) -> BlobId {
    let info = store
        .put(chunked_stream(bytes.to_vec(), chunk), t(at))
        .await
        .expect("put");
    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(info.id, BlobId::of(bytes), "a blob's id is its SHA-256");
    info.id
}

/// Reads a blob (or a range of it) whole; `None` when there is no such blob. Also
/// returns the largest chunk the stream yielded.
async fn read(
    store: &Arc<dyn BlobStore>,
    id: &BlobId,
    range: Option<ByteRange>,
) -> Option<(u64, Vec<u8>, usize)> {
    let read = store.get(id, range).await.expect("get")?;
    let mut body = read.body;
    let mut out = Vec::new();
    let mut largest = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("a chunk");
        largest = largest.max(chunk.len());
        out.extend_from_slice(&chunk);
    }
    assert_eq!(
        out.len() as u64,
        read.range.len(),
        "the stream holds the range"
    );
    Some((read.size, out, largest))
}

async fn bytes_come_back_as_stored_under_their_sha256(store: Arc<dyn BlobStore>) {
    let bytes = pattern(200_000, 1);
    let id = put(&store, &bytes, 7_001, 0).await;
    let (size, back, _) = read(&store, &id, None).await.expect("stored");
    assert_eq!(size, bytes.len() as u64);
    assert!(back == bytes, "the bytes changed");
    // A one-byte blob, in one chunk.
    let one = store
        .put(bytes_stream(Bytes::from_static(b"x")), t(0))
        .await
        .expect("put");
    assert_eq!((one.size, one.id), (1, BlobId::of(b"x")));
    assert_eq!(read(&store, &one.id, None).await.expect("stored").1, b"x");
}

async fn ranges_are_exactly_the_bytes_asked_for(store: Arc<dyn BlobStore>) {
    let bytes = pattern(300_000, 2);
    let id = put(&store, &bytes, 65_536, 0).await;
    for (start, end) in [
        (0, 1),
        (0, 300_000),
        (1, 2),
        (65_535, 65_537),
        (100_000, 250_001),
        (299_999, 300_000),
        (300_000, 300_000),
        (12_345, 12_345),
    ] {
        let (size, back, _) = read(&store, &id, Some(ByteRange { start, end }))
            .await
            .expect("stored");
        assert_eq!(size, 300_000);
        assert!(
            back == bytes[start as usize..end as usize],
            "range {start}..{end} differs"
        );
    }
}

async fn the_same_bytes_are_kept_once_and_made_fresh(store: Arc<dyn BlobStore>) {
    let bytes = pattern(10_000, 3);
    let first = put(&store, &bytes, 999, 0).await;
    let again = put(&store, &bytes, 4_096, 1_000).await;
    assert_eq!(first, again);
    // Fresh as of the second put: not stale before it, stale after.
    assert!(
        store
            .stale(t(1_000), None, 10)
            .await
            .expect("stale")
            .is_empty()
    );
    assert_eq!(
        store.stale(t(1_001), None, 10).await.expect("stale"),
        vec![first],
        "the bytes are kept once"
    );
}

async fn a_failed_body_leaves_nothing_behind(store: Arc<dyn BlobStore>) {
    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from(pattern(50_000, 4))),
        Ok(Bytes::from(pattern(50_000, 5))),
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "client gone",
        )),
    ]));
    match store.put(failing, t(0)).await {
        Err(PutError::Body(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("a failed body must fail the put with its error: {other:?}"),
    }
    assert!(
        store
            .stale(t(1_000_000), None, 10)
            .await
            .expect("stale")
            .is_empty(),
        "a failed upload left a blob"
    );
    // Nothing partial is left once the failed put has returned, whatever its age.
    assert_eq!(store.purge_partial(t(1_000_000)).await.expect("purge"), 0);
    let whole = pattern(100_000, 4);
    assert!(read(&store, &BlobId::of(&whole), None).await.is_none());
}

async fn missing_blobs_are_none_and_deletes_say_so(store: Arc<dyn BlobStore>) {
    let nothing = BlobId::of(b"never stored");
    assert!(store.get(&nothing, None).await.expect("get").is_none());
    assert!(!store.delete(&nothing).await.expect("delete"));
    let id = put(&store, b"short-lived", 3, 0).await;
    assert!(store.delete(&id).await.expect("delete"));
    assert!(store.get(&id, None).await.expect("get").is_none());
    assert!(!store.delete(&id).await.expect("delete"));
    // Stored again after a delete, it is back.
    let back = put(&store, b"short-lived", 100, 5).await;
    assert_eq!(
        read(&store, &back, None).await.expect("back").1,
        b"short-lived"
    );
}

async fn stale_blobs_are_listed_a_page_at_a_time_in_order(store: Arc<dyn BlobStore>) {
    let mut ids = Vec::new();
    for seed in 0..7u8 {
        ids.push(put(&store, &pattern(100 + usize::from(seed), seed), 50, 0).await);
    }
    let fresh = put(&store, b"fresh", 5, 10_000).await;
    ids.sort_unstable();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.stale(t(1), after, 3).await.expect("stale");
        assert!(page.len() <= 3);
        assert!(page.windows(2).all(|w| w[0] < w[1]), "a page is ascending");
        seen.extend(page.iter().copied());
        match page.last() {
            Some(last) if page.len() == 3 => after = Some(*last),
            _ => break,
        }
    }
    assert_eq!(
        seen, ids,
        "every stale blob once, in order, and no fresh one"
    );
    assert!(!seen.contains(&fresh));
}

async fn only_stale_blobs_are_deleted_by_a_sweep(store: Arc<dyn BlobStore>) {
    let id = put(&store, b"kept while fresh", 4, 100).await;
    assert!(!store.delete_if_stale(&id, t(100)).await.expect("sweep"));
    assert!(store.get(&id, None).await.expect("get").is_some());
    // The same bytes put again meanwhile: fresh again, kept.
    put(&store, b"kept while fresh", 4, 200).await;
    assert!(!store.delete_if_stale(&id, t(150)).await.expect("sweep"));
    assert!(store.delete_if_stale(&id, t(201)).await.expect("sweep"));
    assert!(store.get(&id, None).await.expect("get").is_none());
    assert!(!store.delete_if_stale(&id, t(10_000)).await.expect("sweep"));
}

async fn large_blobs_stream_in_bounded_chunks(store: Arc<dyn BlobStore>) {
    let bytes = pattern(3 * 1024 * 1024 + 17, 6);
    let id = put(&store, &bytes, 16 * 1024, 0).await;
    let (_, back, largest) = read(&store, &id, None).await.expect("stored");
    assert!(back == bytes, "the bytes changed");
    assert!(
        largest <= 1024 * 1024,
        "a read yielded a chunk of {largest} bytes: blobs must stream"
    );
}

async fn concurrent_puts_of_the_same_bytes_keep_one_blob(store: Arc<dyn BlobStore>) {
    let bytes = Arc::new(pattern(80_000, 7));
    let puts: Vec<_> = (0..8)
        .map(|i| {
            let (store, bytes) = (store.clone(), bytes.clone());
            tokio::spawn(async move { put(&store, &bytes, 1_000 + i * 777, 0).await })
        })
        .collect();
    let mut ids = Vec::new();
    for p in puts {
        ids.push(p.await.expect("a put task"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        store.stale(t(1), None, 10).await.expect("stale"),
        ids,
        "one blob"
    );
    assert!(read(&store, &ids[0], None).await.expect("stored").1 == *bytes);
}
