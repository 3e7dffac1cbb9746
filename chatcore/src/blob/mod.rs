//! Where attachments' bytes live: the async, object-safe [`BlobStore`] trait, the
//! content address every backend files bytes under ([`BlobId`], their SHA-256), and the
//! streams that carry bytes in and out, so that no file is ever held whole in memory.
//!
//! A blob store keeps bytes and nothing else: which message a blob belongs to, who may
//! read it and when it may go are the service's business (`service/attachments.rs`).
//! Backends: [`FsBlobStore`] (a directory, next to the SQLite file by default),
//! [`MemoryBlobStore`] (tests and embedders), and chat-postgres's `PgBlobStore`. Every
//! one passes `chatcore::conformance::blobs`.
//!
//! Time: a blob remembers when it was last written (`put` of the same bytes again
//! counts), in the service's clock, so that the sweep of unreferenced blobs
//! ([`BlobStore::delete_if_stale`]) never takes bytes that an upload has just stored and
//! not yet pointed a message at.

mod fs;
mod memory;

use std::fmt;
use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};

pub use fs::FsBlobStore;
pub use memory::MemoryBlobStore;

use crate::model::Timestamp;
use crate::store::{StoreError, StoreResult};

/// A stream of bytes: what an upload's body is read from and a download's is written
/// from. An `Err` item ends it.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A blob's address: the SHA-256 of its bytes. Shown and serialized as 64 lowercase hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, description = "SHA-256, 64 lowercase hex digits"))]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// The id of these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses 64 hex digits (either case).
    pub fn parse(s: &str) -> Option<Self> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(s, &mut id).ok()?;
        Some(Self(id))
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.to_hex()[..12])
    }
}

impl serde::Serialize for BlobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for BlobId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("sha256 must be 64 hex digits"))
    }
}

/// What [`BlobStore::put`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its address.
    pub id: BlobId,
    /// Its size in bytes.
    pub size: u64,
}

/// Bytes `start..end` of a blob (`end` exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// How many bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True for an empty range.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An open blob: its size and a stream of the bytes asked for.
pub struct BlobRead {
    /// The whole blob's size in bytes.
    pub size: u64,
    /// The bytes the stream yields (the whole blob when no range was asked for).
    pub range: ByteRange,
    /// The bytes, read as they are taken.
    pub body: ByteStream,
}

impl fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobRead")
            .field("size", &self.size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Why [`BlobStore::put`] failed.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    /// The body failed (the client went away, or a check on the bytes refused them):
    /// the error it yielded. Nothing was kept.
    #[error("the body failed: {0}")]
    Body(io::Error),
    /// The store failed. Nothing was kept.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Persistent storage for attachments' bytes, addressed by their SHA-256. Implementations
/// must be safe to share across tasks, must never hold a whole blob in memory (bytes go
/// through in bounded chunks), and must make a blob durable before `put` returns.
/// `chatcore::conformance::blobs` holds the tests every implementation must pass.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores the bytes `body` yields, under their SHA-256, durably (on disk: written to a
    /// file of its own, flushed and renamed into place) before it returns. The same bytes
    /// stored again are kept once, and their time becomes `now`. If `body` yields an
    /// error, the store keeps nothing of it and returns [`PutError::Body`].
    async fn put(&self, body: ByteStream, now: Timestamp) -> Result<BlobInfo, PutError>;

    /// Opens a blob, all of it or `range` (which the caller has checked against the
    /// size: `start <= end <= size`); `None` when there is no such blob.
    async fn get(&self, id: &BlobId, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>>;

    /// Deletes a blob; `true` if it existed.
    async fn delete(&self, id: &BlobId) -> StoreResult<bool>;

    /// Blobs whose time (their last `put`) is before `before` and whose id is greater
    /// than `after`, in ascending order of id, at most `limit`: the candidates of a
    /// sweep, a page at a time.
    async fn stale(
        &self,
        before: Timestamp,
        after: Option<BlobId>,
        limit: usize,
    ) -> StoreResult<Vec<BlobId>>;

    /// Deletes a blob only if its time is still before `before`, as one step against a
    /// concurrent `put` of the same bytes (which makes it fresh and keeps it). `true` if
    /// it was deleted.
    async fn delete_if_stale(&self, id: &BlobId, before: Timestamp) -> StoreResult<bool>;

    /// Removes what uploads that never finished left behind (a process killed
    /// mid-upload) and that started before `before`; returns how many.
    async fn purge_partial(&self, before: Timestamp) -> StoreResult<u64>;
}

/// A running SHA-256 and byte count, for implementations of [`BlobStore::put`].
#[derive(Default)]
pub struct Hashing {
    hasher: Sha256,
    size: u64,
}

impl Hashing {
    /// Counts and hashes a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
    }

    /// The bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The id and size of everything seen.
    pub fn finish(self) -> BlobInfo {
        BlobInfo {
            id: BlobId(self.hasher.finalize().into()),
            size: self.size,
        }
    }
}

impl fmt::Debug for Hashing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hashing").field("size", &self.size).finish()
    }
}

/// A stream of one chunk of bytes, for tests and small blobs.
pub fn bytes_stream(bytes: impl Into<Bytes>) -> ByteStream {
    let bytes = bytes.into();
    Box::pin(futures_util::stream::once(async move { Ok(bytes) }))
}

/// A stream of `bytes` in chunks of `chunk` bytes (at least 1).
pub fn chunked_stream(bytes: impl Into<Bytes>, chunk: usize) -> ByteStream {
    let bytes: Bytes = bytes.into();
    let chunk = chunk.max(1);
    let chunks: Vec<io::Result<Bytes>> = (0..bytes.len())
        .step_by(chunk)
        .map(|at| Ok(bytes.slice(at..(at + chunk).min(bytes.len()))))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

/// Serves a range of an in-memory blob as a stream of bounded chunks (a memory store's
/// and a test's `get`).
pub(crate) fn slice_stream(bytes: Bytes, range: ByteRange, chunk: usize) -> ByteStream {
    let start = usize::try_from(range.start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = usize::try_from(range.end)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    chunked_stream(bytes.slice(start..end.max(start)), chunk)
}

/// A range checked against a blob's size: the whole blob when none was asked for.
pub(crate) fn whole_or(range: Option<ByteRange>, size: u64) -> StoreResult<ByteRange> {
    let range = range.unwrap_or(ByteRange {
        start: 0,
        end: size,
    });
    if range.start > range.end || range.end > size {
        return Err(StoreError::backend(format!(
            "range {}..{} outside a blob of {size} bytes",
            range.start, range.end
        )));
    }
    Ok(range)
}
