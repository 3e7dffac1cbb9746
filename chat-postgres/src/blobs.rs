//! [`PgBlobStore`]: `chatcore::BlobStore` in the PostgreSQL database the nodes share, so
//! that an attachment uploaded through one node is served by every other.
//!
//! An upload is recorded in `blob_uploads`, its bytes written as fixed-size chunks
//! (`blob_chunks`, [`CHUNK_BYTES`] each but the last), each chunk one statement on a
//! pooled connection taken for it alone: a slow client holds no connection, and the
//! node holds one chunk of its bytes at a time. At the end one transaction names the
//! chunks by their SHA-256 in `blobs` (or, when those bytes are there already, makes
//! them fresh and drops the new copy) and forgets the upload. An upload that never ends
//! (a node killed mid-way) stays in `blob_uploads` until `purge_partial` removes it with
//! its chunks. Reads take the chunks that cover the range, one query each. It holds no
//! rule about who may read what; that is `chatcore`'s.

use std::io;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chatcore::blob::{BlobInfo, BlobRead, ByteRange, ByteStream, Hashing, PutError};
use chatcore::store::StoreResult;
use chatcore::{BlobId, BlobStore, StoreError, Timestamp};
use deadpool_postgres::{Object, Pool};
use futures_util::StreamExt;

use crate::error::{classify, classify_pool};

/// Bytes in one stored chunk (the last of a blob may be shorter).
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Attachments' bytes in PostgreSQL. Cheap to clone; shares the pool of the [`PgStore`]
/// it came from ([`PgStore::blobs`]).
///
/// [`PgStore`]: crate::PgStore
/// [`PgStore::blobs`]: crate::PgStore::blobs
#[derive(Clone)]
pub struct PgBlobStore {
    pool: Pool,
}

impl std::fmt::Debug for PgBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgBlobStore")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PgBlobStore {
    pub(crate) fn new(pool: Pool) -> Self {
        Self { pool }
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(classify_pool)
    }

    async fn write_chunk(&self, upload: &str, n: i32, data: &[u8]) -> StoreResult<()> {
        let client = self.client().await?;
        let st = client
            .prepare_cached("INSERT INTO blob_chunks (upload_id, n, data) VALUES ($1, $2, $3)")
            .await
            .map_err(classify)?;
        client
            .execute(&st, &[&upload, &n, &data])
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Forgets an upload and its chunks (a failed one, or a copy of bytes stored
    /// already).
    async fn drop_upload(&self, upload: &str) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        tx.execute("DELETE FROM blob_chunks WHERE upload_id = $1", &[&upload])
            .await
            .map_err(classify)?;
        tx.execute("DELETE FROM blob_uploads WHERE id = $1", &[&upload])
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    /// Streams `body` into chunks of `upload`; its id and size.
    async fn write_all(&self, upload: &str, mut body: ByteStream) -> Result<BlobInfo, PutError> {
        let mut hashing = Hashing::default();
        let mut buffer = BytesMut::with_capacity(CHUNK_BYTES);
        let mut n: i32 = 0;
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.map_err(PutError::Body)?;
            hashing.update(&chunk);
            while !chunk.is_empty() {
                let take = (CHUNK_BYTES - buffer.len()).min(chunk.len());
                buffer.extend_from_slice(&chunk.split_to(take));
                if buffer.len() == CHUNK_BYTES {
                    self.write_chunk(upload, n, &buffer).await?;
                    buffer.clear();
                    n += 1;
                }
            }
        }
        if !buffer.is_empty() {
            self.write_chunk(upload, n, &buffer).await?;
        }
        Ok(hashing.finish())
    }
}

#[async_trait]
impl BlobStore for PgBlobStore {
    async fn put(&self, body: ByteStream, now: Timestamp) -> Result<BlobInfo, PutError> {
        let upload = uuid::Uuid::now_v7().simple().to_string();
        {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO blob_uploads (id, started_at) VALUES ($1, $2)",
                    &[&upload, &now.unix_millis()],
                )
                .await
                .map_err(classify)?;
        }
        let info = match self.write_all(&upload, body).await {
            Ok(info) => info,
            Err(e) => {
                // Best effort: a sweep removes what this could not.
                let _ = self.drop_upload(&upload).await;
                return Err(e);
            }
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let size = i64::try_from(info.size).unwrap_or(i64::MAX);
        let chunk = i32::try_from(CHUNK_BYTES).unwrap_or(i32::MAX);
        let kept: String = tx
            .query_one(
                "INSERT INTO blobs (sha256, upload_id, size, chunk_size, touched_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (sha256) DO UPDATE
                 SET touched_at = GREATEST(blobs.touched_at, EXCLUDED.touched_at)
                 RETURNING upload_id",
                &[
                    &info.id.to_hex(),
                    &upload,
                    &size,
                    &chunk,
                    &now.unix_millis(),
                ],
            )
            .await
            .map_err(classify)?
            .try_get(0)
            .map_err(classify)?;
        if kept != upload {
            // The same bytes were there: they are kept once.
            tx.execute("DELETE FROM blob_chunks WHERE upload_id = $1", &[&upload])
                .await
                .map_err(classify)?;
        }
        tx.execute("DELETE FROM blob_uploads WHERE id = $1", &[&upload])
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(info)
    }

    async fn get(&self, id: &BlobId, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT upload_id, size, chunk_size FROM blobs WHERE sha256 = $1",
                &[&id.to_hex()],
            )
            .await
            .map_err(classify)?;
        drop(client);
        let Some(row) = row else {
            return Ok(None);
        };
        let upload: String = row.try_get(0).map_err(classify)?;
        let size = u64::try_from(row.try_get::<_, i64>(1).map_err(classify)?)
            .map_err(|_| StoreError::backend("malformed row: blobs.size"))?;
        let chunk = u64::try_from(row.try_get::<_, i32>(2).map_err(classify)?)
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| StoreError::backend("malformed row: blobs.chunk_size"))?;
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
        let this = self.clone();
        let body = futures_util::stream::unfold(range.start, move |at| {
            let (this, upload) = (this.clone(), upload.clone());
            async move {
                if at >= range.end {
                    return None;
                }
                let n = at / chunk;
                let read = async {
                    let client = this.client().await.map_err(io::Error::other)?;
                    let row = client
                        .query_opt(
                            "SELECT data FROM blob_chunks WHERE upload_id = $1 AND n = $2",
                            &[&upload, &(i32::try_from(n).unwrap_or(i32::MAX))],
                        )
                        .await
                        .map_err(io::Error::other)?
                        .ok_or_else(|| {
                            io::Error::new(io::ErrorKind::UnexpectedEof, "a chunk is missing")
                        })?;
                    let data: Vec<u8> = row.try_get(0).map_err(io::Error::other)?;
                    Ok::<_, io::Error>(Bytes::from(data))
                };
                match read.await {
                    Ok(data) => {
                        let from = usize::try_from(at - n * chunk).unwrap_or(usize::MAX);
                        let to = usize::try_from((range.end - n * chunk).min(chunk))
                            .unwrap_or(usize::MAX)
                            .min(data.len());
                        if from >= to {
                            let short = io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "a chunk is shorter than its blob says",
                            );
                            return Some((Err(short), range.end));
                        }
                        let next = at + (to - from) as u64;
                        Some((Ok(data.slice(from..to)), next))
                    }
                    Err(e) => Some((Err(e), range.end)),
                }
            }
        });
        Ok(Some(BlobRead {
            size,
            range,
            body: Box::pin(body),
        }))
    }

    async fn delete(&self, id: &BlobId) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let row = tx
            .query_opt(
                "DELETE FROM blobs WHERE sha256 = $1 RETURNING upload_id",
                &[&id.to_hex()],
            )
            .await
            .map_err(classify)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let upload: String = row.try_get(0).map_err(classify)?;
        tx.execute("DELETE FROM blob_chunks WHERE upload_id = $1", &[&upload])
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn stale(
        &self,
        before: Timestamp,
        after: Option<BlobId>,
        limit: usize,
    ) -> StoreResult<Vec<BlobId>> {
        let client = self.client().await?;
        let after = after.map(|a| a.to_hex()).unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT sha256 FROM blobs WHERE touched_at < $1 AND sha256 > $2
                 ORDER BY sha256 LIMIT $3",
                &[&before.unix_millis(), &after, &limit],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|r| {
                let hex: String = r.try_get(0).map_err(classify)?;
                BlobId::parse(&hex)
                    .ok_or_else(|| StoreError::backend("malformed row: blobs.sha256"))
            })
            .collect()
    }

    async fn delete_if_stale(&self, id: &BlobId, before: Timestamp) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // One statement: a concurrent put of the same bytes either made the row fresh
        // first (it is kept) or finds it gone and stores the bytes anew.
        let row = tx
            .query_opt(
                "DELETE FROM blobs WHERE sha256 = $1 AND touched_at < $2 RETURNING upload_id",
                &[&id.to_hex(), &before.unix_millis()],
            )
            .await
            .map_err(classify)?;
        let Some(row) = row else {
            return Ok(false);
        };
        let upload: String = row.try_get(0).map_err(classify)?;
        tx.execute("DELETE FROM blob_chunks WHERE upload_id = $1", &[&upload])
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn purge_partial(&self, before: Timestamp) -> StoreResult<u64> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id FROM blob_uploads WHERE started_at < $1",
                &[&before.unix_millis()],
            )
            .await
            .map_err(classify)?;
        drop(client);
        let mut purged = 0;
        for row in rows {
            let upload: String = row.try_get(0).map_err(classify)?;
            self.drop_upload(&upload).await?;
            purged += 1;
        }
        Ok(purged)
    }
}
