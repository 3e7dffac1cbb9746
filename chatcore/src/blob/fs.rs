//! [`FsBlobStore`]: blobs as files in a directory, content-addressed: the blob whose
//! SHA-256 is `abcd...` is the file `ab/cd...`. An upload is written to a file of its
//! own under `tmp/` (named after the time it started), fsynced, renamed into place and
//! its directory fsynced, so that a blob is either whole at its address or absent: a
//! process killed mid-upload leaves only a `tmp/` file, which [`BlobStore::purge_partial`]
//! removes. A blob's time is its file's modification time, set to the service's `now` by
//! every `put` of its bytes.
//!
//! A floor of free space ([`FsBlobStore::min_free`]) keeps files from taking the disk a
//! database beside them needs.
//!
//! File names come only from hashes and times, never from a client: an attachment's
//! name is metadata in the message and never touches the file system.

use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{
    BlobId, BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream, Hashing, PutError, whole_or,
};
use crate::model::Timestamp;
use crate::store::{StoreError, StoreResult};

/// Bytes read from a blob's file at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes of an upload written before they are flushed to disk, while it arrives.
const SYNC_EVERY: usize = 1024 * 1024;
/// The folder of unfinished uploads.
const TMP: &str = "tmp";

/// Blobs in a directory. Cheap to clone; clones share the directory and its lock.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: Arc<PathBuf>,
    /// Held while a blob is put into place or deleted, so that a sweep's check of a
    /// blob's time and its deletion are one step against a `put` of the same bytes in
    /// this process.
    placing: Arc<Mutex<()>>,
    /// Bytes that must stay free on the directory's file system (0: no floor).
    min_free: u64,
}

impl FsBlobStore {
    /// The store in `dir`, created (with its `tmp/`) if missing; its parent must exist.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        let root = dir.as_ref().to_path_buf();
        for dir in [root.clone(), root.join(TMP)] {
            match std::fs::create_dir(&dir) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        Ok(Self {
            root: Arc::new(root),
            placing: Arc::new(Mutex::new(())),
            min_free: 0,
        })
    }

    /// Refuses new blobs ([`StoreError::Unavailable`]) while the file system holding the
    /// directory has fewer than `bytes` free, so that files never take the space a
    /// database beside them needs. Default 0: no floor.
    pub fn min_free(mut self, bytes: u64) -> Self {
        self.min_free = bytes;
        self
    }

    /// Refuses a new blob when the disk is below its floor.
    fn check_room(&self) -> StoreResult<()> {
        if self.min_free == 0 {
            return Ok(());
        }
        let free = free_bytes(&self.root).map_err(unavailable)?;
        if free < self.min_free {
            return Err(StoreError::Unavailable(
                format!(
                    "{free} bytes free on the attachments' disk, under the floor of {}",
                    self.min_free
                )
                .into(),
            ));
        }
        Ok(())
    }

    /// The directory attachments go in for a SQLite file by default: beside it, named
    /// after it (`chat.db` -> `chat.db-attachments`), so that two databases in one folder
    /// never share (and sweep) each other's files.
    pub fn beside(db: impl AsRef<Path>) -> PathBuf {
        let db = db.as_ref();
        let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push("-attachments");
        db.with_file_name(name)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, id: &BlobId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }
}

fn unavailable(e: io::Error) -> StoreError {
    match e.kind() {
        // A full disk, a read-only file system or a quota passes by itself, or by the
        // operator's hand: a retry may succeed.
        ErrorKind::StorageFull | ErrorKind::ReadOnlyFilesystem | ErrorKind::QuotaExceeded => {
            StoreError::Unavailable(Box::new(e))
        }
        _ => StoreError::Backend(Box::new(e)),
    }
}

fn system_time(t: Timestamp) -> SystemTime {
    match u64::try_from(t.unix_millis()) {
        Ok(ms) => UNIX_EPOCH + Duration::from_millis(ms),
        Err(_) => UNIX_EPOCH,
    }
}

fn timestamp(t: SystemTime) -> Timestamp {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_millis(ms)
}

/// Bytes free to unprivileged users on the file system holding `dir`.
#[cfg(unix)]
fn free_bytes(dir: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Elsewhere the floor is not checked (a full disk still fails the write itself).
#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}

/// fsyncs a directory, so that a rename or a new entry in it survives a power loss.
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Sets a file's modification time (a blob's time).
fn touch(path: &Path, at: Timestamp) -> io::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(system_time(at))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::backend(format!("blob task failed: {e}")))?
        .map_err(unavailable)
}

impl FsBlobStore {
    /// Writes the body to `tmp`, fsynced; its id and size.
    async fn write_part(&self, tmp: &Path, mut body: ByteStream) -> Result<BlobInfo, PutError> {
        let mut file = tokio::fs::File::options()
            .write(true)
            .create_new(true)
            .open(tmp)
            .await
            .map_err(|e| PutError::Store(unavailable(e)))?;
        let mut hashing = Hashing::default();
        let mut unsynced = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(PutError::Body)?;
            hashing.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| PutError::Store(unavailable(e)))?;
            // Written back as it comes, a MiB at a time: the last flush is then small,
            // and a database commit's fsync on the same disk never waits behind a whole
            // file's dirty pages.
            unsynced += chunk.len();
            if unsynced >= SYNC_EVERY {
                file.sync_data()
                    .await
                    .map_err(|e| PutError::Store(unavailable(e)))?;
                unsynced = 0;
            }
        }
        file.flush()
            .await
            .map_err(|e| PutError::Store(unavailable(e)))?;
        file.sync_all()
            .await
            .map_err(|e| PutError::Store(unavailable(e)))?;
        Ok(hashing.finish())
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, body: ByteStream, now: Timestamp) -> Result<BlobInfo, PutError> {
        self.check_room()?;
        let tmp = self.root.join(TMP).join(format!(
            "{}-{}.part",
            now.unix_millis(),
            uuid::Uuid::now_v7().simple()
        ));
        let info = match self.write_part(&tmp, body).await {
            Ok(info) => info,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let (path, placing) = (self.path_of(&info.id), self.placing.clone());
        let root = self.root.clone();
        let placed = blocking(move || {
            let dir = path.parent().unwrap_or(root.as_path()).to_path_buf();
            if !dir.exists() {
                std::fs::create_dir_all(&dir)?;
                sync_dir(&root)?;
            }
            let _placing = placing.lock().unwrap_or_else(PoisonError::into_inner);
            if path.exists() {
                // The same bytes are there already: they are kept once, and are fresh.
                std::fs::remove_file(&tmp)?;
                touch(&path, now)?;
            } else {
                touch(&tmp, now)?;
                std::fs::rename(&tmp, &path)?;
                sync_dir(&dir)?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = placed {
            return Err(PutError::Store(e));
        }
        Ok(info)
    }

    async fn get(&self, id: &BlobId, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
        let mut file = match tokio::fs::File::open(self.path_of(id)).await {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let size = file.metadata().await.map_err(unavailable)?.len();
        let range = whole_or(range, size)?;
        if range.start > 0 {
            file.seek(io::SeekFrom::Start(range.start))
                .await
                .map_err(unavailable)?;
        }
        // The open file keeps its bytes even if a sweep deletes the blob meanwhile.
        let body =
            futures_util::stream::unfold((file, range.len()), |(mut file, left)| async move {
                if left == 0 {
                    return None;
                }
                let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
                let mut buf = BytesMut::zeroed(want);
                match file.read(&mut buf).await {
                    Ok(0) => Some((
                        Err(io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "the blob is shorter than its size",
                        )),
                        (file, 0),
                    )),
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(buf.freeze()), (file, left - n as u64)))
                    }
                    Err(e) => Some((Err(e), (file, 0))),
                }
            });
        Ok(Some(BlobRead {
            size,
            range,
            body: Box::pin(body),
        }))
    }

    async fn delete(&self, id: &BlobId) -> StoreResult<bool> {
        let (path, placing) = (self.path_of(id), self.placing.clone());
        blocking(move || {
            let _placing = placing.lock().unwrap_or_else(PoisonError::into_inner);
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn stale(
        &self,
        before: Timestamp,
        after: Option<BlobId>,
        limit: usize,
    ) -> StoreResult<Vec<BlobId>> {
        let root = self.root.clone();
        blocking(move || {
            let mut prefixes: Vec<String> = std::fs::read_dir(root.as_path())?
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect();
            prefixes.sort_unstable();
            let after_prefix = after.map(|a| a.to_hex()[..2].to_string());
            let mut found = Vec::new();
            for prefix in prefixes {
                if after_prefix.as_ref().is_some_and(|a| prefix < *a) {
                    continue;
                }
                let mut ids: Vec<(BlobId, PathBuf)> = std::fs::read_dir(root.join(&prefix))?
                    .filter_map(|entry| entry.ok())
                    .filter_map(|entry| {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        BlobId::parse(&format!("{prefix}{name}")).map(|id| (id, entry.path()))
                    })
                    .filter(|(id, _)| after.is_none_or(|a| *id > a))
                    .collect();
                ids.sort_unstable_by_key(|(id, _)| *id);
                for (id, path) in ids {
                    let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                        Ok(modified) => timestamp(modified),
                        // Deleted meanwhile.
                        Err(_) => continue,
                    };
                    if modified < before {
                        found.push(id);
                        if found.len() >= limit {
                            return Ok(found);
                        }
                    }
                }
            }
            Ok(found)
        })
        .await
    }

    async fn delete_if_stale(&self, id: &BlobId, before: Timestamp) -> StoreResult<bool> {
        let (path, placing) = (self.path_of(id), self.placing.clone());
        blocking(move || {
            let _placing = placing.lock().unwrap_or_else(PoisonError::into_inner);
            let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(modified) => timestamp(modified),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            if modified >= before {
                return Ok(false);
            }
            std::fs::remove_file(&path)?;
            Ok(true)
        })
        .await
    }

    async fn purge_partial(&self, before: Timestamp) -> StoreResult<u64> {
        let tmp = self.root.join(TMP);
        blocking(move || {
            let mut purged = 0;
            for file in std::fs::read_dir(&tmp)? {
                let file = file?;
                let name = file.file_name().to_string_lossy().into_owned();
                // `<started ms>-<random>.part`; anything else here is no upload of ours.
                let started = name
                    .split_once('-')
                    .and_then(|(ms, _)| ms.parse::<i64>().ok())
                    .map(Timestamp::from_unix_millis);
                if started.is_some_and(|at| at < before)
                    && std::fs::remove_file(file.path()).is_ok()
                {
                    purged += 1;
                }
            }
            Ok(purged)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_disk_under_its_floor_takes_no_new_blob() {
        let dir = tempfile::tempdir().unwrap();
        let full = FsBlobStore::open(dir.path()).unwrap().min_free(u64::MAX);
        match full
            .put(
                super::super::bytes_stream(&b"x"[..]),
                Timestamp::from_unix_millis(0),
            )
            .await
        {
            Err(PutError::Store(StoreError::Unavailable(_))) => {}
            other => panic!("a full disk must refuse, as unavailable: {other:?}"),
        }
        let roomy = FsBlobStore::open(dir.path()).unwrap().min_free(1);
        roomy
            .put(
                super::super::bytes_stream(&b"x"[..]),
                Timestamp::from_unix_millis(0),
            )
            .await
            .expect("a disk with room takes it");
    }
}
