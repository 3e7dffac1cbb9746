//! [`MemoryBlobStore`]: blobs in a map, for tests and embedders that keep nothing on
//! disk (pair it with `MemoryStore`). Bytes still come in and go out as bounded chunks;
//! a finished blob is one contiguous buffer. It must not be used where attachments must
//! survive the process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::{
    BlobId, BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream, Hashing, PutError, slice_stream,
    whole_or,
};
use crate::model::Timestamp;
use crate::store::StoreResult;

/// Chunk size of a memory blob's reads.
const READ_CHUNK: usize = 64 * 1024;

/// Blobs in memory. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<BlobId, (Bytes, Timestamp)>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn blobs(&self) -> std::sync::MutexGuard<'_, HashMap<BlobId, (Bytes, Timestamp)>> {
        self.blobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, mut body: ByteStream, now: Timestamp) -> Result<BlobInfo, PutError> {
        let mut hashing = Hashing::default();
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(PutError::Body)?;
            hashing.update(&chunk);
            buffer.extend_from_slice(&chunk);
        }
        let info = hashing.finish();
        self.blobs()
            .entry(info.id)
            .and_modify(|(_, at)| *at = now)
            .or_insert((buffer.freeze(), now));
        Ok(info)
    }

    async fn get(&self, id: &BlobId, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
        let Some((bytes, _)) = self.blobs().get(id).cloned() else {
            return Ok(None);
        };
        let size = bytes.len() as u64;
        let range = whole_or(range, size)?;
        Ok(Some(BlobRead {
            size,
            range,
            body: slice_stream(bytes, range, READ_CHUNK),
        }))
    }

    async fn delete(&self, id: &BlobId) -> StoreResult<bool> {
        Ok(self.blobs().remove(id).is_some())
    }

    async fn stale(
        &self,
        before: Timestamp,
        after: Option<BlobId>,
        limit: usize,
    ) -> StoreResult<Vec<BlobId>> {
        let mut found: Vec<BlobId> = self
            .blobs()
            .iter()
            .filter(|(id, (_, at))| *at < before && after.is_none_or(|a| **id > a))
            .map(|(id, _)| *id)
            .collect();
        found.sort_unstable();
        found.truncate(limit);
        Ok(found)
    }

    async fn delete_if_stale(&self, id: &BlobId, before: Timestamp) -> StoreResult<bool> {
        let mut blobs = self.blobs();
        match blobs.get(id) {
            Some((_, at)) if *at < before => {
                blobs.remove(id);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn purge_partial(&self, _before: Timestamp) -> StoreResult<u64> {
        // An upload that fails or is dropped leaves nothing here: its buffer goes with it.
        Ok(0)
    }
}
