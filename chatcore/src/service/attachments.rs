//! Attachments (contract v2, "Typing, read receipts, attachments"): a file sent in a chat
//! as a message that carries it, and read back by whoever may read the chat.
//!
//! An upload is a message send: the same rights (`policy::write_chat`), the same
//! idempotency key, the same seq, event and limits, so it goes through the path
//! `send_message` takes once its bytes are stored. The bytes go first, streamed into the
//! [`BlobStore`] through the checks of [`Checked`] (size, type found in the bytes, name,
//! pace), and the message is stored only once the blob is durable: a crash in between
//! leaves a blob without a message, which [`ChatService::sweep_attachments`] removes
//! after a grace period, never a message without its bytes. The store's single writer is
//! never held while bytes arrive: it sees one small append.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{ChatService, Sender};
use crate::blob::{BlobId, BlobRead, BlobStore, ByteRange, ByteStream, PutError};
use crate::error::{Error, Result};
use crate::files::{self, FileType, FileTypes, SNIFF_BYTES, TextCheck};
use crate::identity::Actor;
use crate::ids::{AttachmentId, ChatId, MessageId};
use crate::limits::RateLimiter;
use crate::model::{Attachment, Message};
use crate::policy::{self, ReadRight};
use crate::store::NewMessage;

use super::messages::{MAX_CLIENT_MESSAGE_ID_LEN, Sent};

/// How attachments are taken and kept. Start from `AttachmentSettings::default()` and
/// set fields; new fields may be added.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttachmentSettings {
    /// Largest file, in bytes. Default 10 MiB.
    pub max_bytes: u64,
    /// The types taken, found in the bytes. Default PNG, JPEG, WebP, PDF, plain text.
    pub types: FileTypes,
    /// The pace an upload must keep once its first `upload_grace` is over: by any moment
    /// it must have sent `min_bytes_per_second` for every second past the grace, so that
    /// a client dribbling bytes cannot hold an upload slot for long. Default 16 KiB/s
    /// (a 10 MiB file may take up to about 11 minutes).
    pub min_bytes_per_second: u64,
    /// The start of an upload during which no pace is asked. Default 10 s.
    pub upload_grace: Duration,
    /// Uploads in progress at once on this node, from everyone; past it an upload is
    /// refused with `rate_limited` (retry after a second). Default 32.
    pub max_uploads: usize,
    /// Uploads in progress at once by one sender (an officer, a customer). Default 2.
    pub max_uploads_per_sender: usize,
    /// How old a blob no message points at, or an unfinished upload's leftovers, must be
    /// before [`ChatService::sweep_attachments`] removes it: longer than the append after
    /// an upload takes. The sweep waits longer when an upload may take longer (see
    /// [`AttachmentSettings::sweep_grace`]). Default 1 hour.
    pub orphan_grace: Duration,
}

impl AttachmentSettings {
    /// How old what a sweep removes must be: the orphan grace, or, when longer, the most
    /// an upload may take at the slowest pace allowed (its grace, then the largest file
    /// at `min_bytes_per_second`), so that a sweep never takes an upload in progress.
    /// With no pace asked (`min_bytes_per_second` 0) an upload may take any time, and
    /// only the orphan grace holds.
    pub fn sweep_grace(&self) -> Duration {
        if self.min_bytes_per_second == 0 {
            return self.orphan_grace;
        }
        let longest = self.upload_grace
            + Duration::from_secs(self.max_bytes.div_ceil(self.min_bytes_per_second))
            + Duration::from_secs(60);
        self.orphan_grace.max(longest)
    }
}

impl Default for AttachmentSettings {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            types: FileTypes::default(),
            min_bytes_per_second: 16 * 1024,
            upload_grace: Duration::from_secs(10),
            max_uploads: 32,
            max_uploads_per_sender: 2,
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

/// What an upload says of itself, besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    /// The file's name as the sender gave it (`?name=`).
    pub name: String,
    /// The `Content-Type` the sender declared, if any.
    pub content_type: Option<String>,
    /// The length the sender declared (`Content-Length`), if any: a file declared larger
    /// than the limit is refused before a byte is read.
    pub length: Option<u64>,
    /// Idempotency key, as for a text message.
    pub client_message_id: Option<String>,
}

/// An attachment the actor was found allowed to read, to open with
/// [`ChatService::open_attachment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readable {
    /// The attachment as its message describes it.
    pub attachment: Attachment,
    /// Its message's chat.
    pub chat_id: ChatId,
    /// The `Content-Type` to serve it with (text with `; charset=utf-8`).
    pub served_as: String,
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Leftovers of uploads that never finished.
    pub partial: u64,
    /// Blobs no message points at.
    pub orphans: u64,
}

/// The node's uploads in progress, in all and per sender.
pub(super) struct Uploads {
    in_all: Arc<Semaphore>,
    per_sender: Arc<Mutex<HashMap<Sender, usize>>>,
    max_per_sender: usize,
    /// Uploads per sender over time (`Limits::uploads_per_sender`).
    pub(super) rate: RateLimiter<Sender>,
}

/// An upload slot, given back when dropped.
struct Slot {
    sender: Sender,
    per_sender: Arc<Mutex<HashMap<Sender, usize>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self
            .per_sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.sender) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.sender);
            }
        }
    }
}

impl Uploads {
    pub(super) fn new(settings: &AttachmentSettings, rate: RateLimiter<Sender>) -> Self {
        Self {
            in_all: Arc::new(Semaphore::new(settings.max_uploads.max(1))),
            per_sender: Arc::default(),
            max_per_sender: settings.max_uploads_per_sender.max(1),
            rate,
        }
    }

    fn slot(&self, sender: &Sender) -> Result<Slot> {
        let busy = || {
            crate::metrics::rate_limited(crate::metrics::limit::UPLOAD_SLOTS);
            Error::RateLimited {
                retry_after: Duration::from_secs(1),
            }
        };
        let mut map = self
            .per_sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mine = map.get(sender).copied().unwrap_or(0);
        if mine >= self.max_per_sender {
            return Err(busy());
        }
        let permit = self
            .in_all
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        map.insert(sender.clone(), mine + 1);
        Ok(Slot {
            sender: sender.clone(),
            per_sender: self.per_sender.clone(),
            _permit: permit,
        })
    }
}

impl ChatService {
    fn blobs(&self) -> Result<&Arc<dyn BlobStore>> {
        self.inner.blobs.as_ref().ok_or(Error::AttachmentsDisabled)
    }

    /// The service's blob store, if it takes attachments.
    pub fn blob_store(&self) -> Option<&Arc<dyn BlobStore>> {
        self.inner.blobs.as_ref()
    }

    /// Sends a file as the actor (the chat's customer or its assigned officer), read from
    /// `body` as it arrives: 201-like [`Sent`] with `created`, or the original message of
    /// a repeated `client_message_id` (`created: false`; `body` is not read at all).
    ///
    /// The bytes are checked while they stream ([`AttachmentSettings`]): larger than
    /// `max_bytes` is [`Error::AttachmentTooLarge`]; a type not taken, bytes that
    /// disagree with the declared type, a name whose extension is not the type's:
    /// [`Error::UnsupportedType`]; a bad name: [`Error::InvalidParameter`]; a body that
    /// fails or is too slow: [`Error::UploadIncomplete`]. Counted against the sender's
    /// sends and uploads ([`crate::Limits`]), and refused with [`Error::RateLimited`]
    /// while they have `max_uploads_per_sender` uploads in progress or the node has
    /// `max_uploads`. The message is stored and `new_message` published only once the
    /// bytes are durable.
    pub async fn send_attachment(
        &self,
        actor: &Actor,
        chat: ChatId,
        upload: Upload,
        body: ByteStream,
    ) -> Result<Sent> {
        let sender = Sender::of(actor);
        if let Some(sender) = &sender {
            self.inner.sends.check(sender)?;
            if let Err(e) = self.inner.uploads.rate.check(sender) {
                tracing::warn!(%sender, "upload refused: the sender is over their limit");
                return Err(e);
            }
        }
        let blobs = self.blobs()?.clone();
        let stored = self.load_chat(actor, chat).await?;
        let key = upload.client_message_id.as_deref();
        let (sender_type, sender_id) = match policy::write_chat(actor, &stored) {
            Ok(writer) => writer,
            // As for a text: a retry of an upload stored before the chat ended gets it.
            Err(refusal) => {
                return match self.sent_before(actor, &stored, key).await? {
                    Some(message) => Ok(Sent {
                        message,
                        created: false,
                    }),
                    None => Err(refusal),
                };
            }
        };
        if let Some(key) = key {
            if key.is_empty() || key.len() > MAX_CLIENT_MESSAGE_ID_LEN {
                return Err(Error::InvalidField {
                    name: "clientMessageId",
                    reason: format!("must be 1-{MAX_CLIENT_MESSAGE_ID_LEN} bytes"),
                });
            }
            // A retry of a stored upload is answered before its bytes are read again.
            if let Some(message) = self.sent_before(actor, &stored, Some(key)).await? {
                return Ok(Sent {
                    message,
                    created: false,
                });
            }
        }
        let name = files::clean_name(&upload.name)?;
        let settings = &self.config().attachments;
        if upload.length.is_some_and(|n| n > settings.max_bytes) {
            return Err(Error::AttachmentTooLarge {
                max: settings.max_bytes,
            });
        }
        let slot = match &sender {
            Some(sender) => Some(self.inner.uploads.slot(sender)?),
            // The admin and anonymous callers write nothing: `write_chat` refused them.
            None => None,
        };
        let verdict = Arc::new(Mutex::new(None));
        let checked = Checked::new(body, settings, upload.content_type, name, verdict.clone());
        let put = blobs.put(Box::pin(checked.into_stream()), self.now()).await;
        drop(slot);
        let info = put.map_err(|e| match e {
            PutError::Body(e) => refusal_of(e),
            PutError::Store(e) => Error::from(e),
        })?;
        let Some((found, name)) = verdict
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Err(Error::internal("an upload ended without a verdict"));
        };
        let new = NewMessage {
            id: MessageId::new(),
            chat_id: stored.id,
            sender_type,
            sender_id,
            content: String::new(),
            client_message_id: upload.client_message_id,
            created_at: self.now(),
            event: None,
            decided_on: Some((stored.status, stored.assigned_officer_id.clone())),
            attachment: Some(Attachment {
                id: AttachmentId::new(),
                name,
                content_type: found.mime().to_string(),
                size: info.size,
                sha256: info.id,
            }),
        };
        let sent = self.deliver(actor, new).await?;
        self.replied(&stored, &sent);
        Ok(sent)
    }

    /// An attachment, if the actor may read its chat now (checked on every call, as a
    /// page of messages is). Unknown to them: [`Error::AttachmentNotFound`] (to a
    /// customer also when it is in another customer's chat, so that ids tell nothing).
    pub async fn attachment(&self, actor: &Actor, id: AttachmentId) -> Result<Readable> {
        policy::look_up_attachment(actor)?;
        self.blobs()?;
        let Some(message) = self.inner.store.attachment(&id).await? else {
            return Err(Error::AttachmentNotFound);
        };
        let chat = self
            .inner
            .store
            .chat(&message.chat_id)
            .await?
            .ok_or(Error::AttachmentNotFound)?;
        let right = policy::read_chat(actor, &chat).map_err(|e| match actor {
            // Another customer's attachment is, to a customer, no attachment at all.
            Actor::Customer { .. } => Error::AttachmentNotFound,
            _ => e,
        })?;
        if right == ReadRight::WhilePending {
            // As a page does: a claim between the check and the read ends the right.
            let now = self
                .inner
                .store
                .chat(&chat.id)
                .await?
                .ok_or(Error::AttachmentNotFound)?;
            policy::read_chat(actor, &now)?;
        }
        readable(message)
    }

    /// Opens a [`Readable`] attachment's bytes, all or `range` (checked against its size
    /// by the caller).
    pub async fn open_attachment(
        &self,
        readable: &Readable,
        range: Option<ByteRange>,
    ) -> Result<BlobRead> {
        let blobs = self.blobs()?;
        match blobs.get(&readable.attachment.sha256, range).await? {
            Some(read) => Ok(read),
            None => Err(Error::internal(format!(
                "the bytes of attachment {} are missing",
                readable.attachment.id
            ))),
        }
    }

    /// Removes what no message will ever point at: leftovers of uploads that never
    /// finished, and blobs no message points at, both once older than
    /// [`AttachmentSettings::sweep_grace`]. Run it at start and now and then (chat-http
    /// does, hourly); several nodes may run it at once.
    pub async fn sweep_attachments(&self) -> Result<Swept> {
        let Some(blobs) = self.inner.blobs.clone() else {
            return Ok(Swept::default());
        };
        let before = self.now().minus(self.config().attachments.sweep_grace());
        let mut swept = Swept {
            partial: blobs.purge_partial(before).await?,
            orphans: 0,
        };
        let mut after: Option<BlobId> = None;
        loop {
            let page = blobs.stale(before, after, SWEEP_PAGE).await?;
            for id in &page {
                if !self.inner.store.blob_in_use(id).await?
                    && blobs.delete_if_stale(id, before).await?
                {
                    swept.orphans += 1;
                }
            }
            match page.last() {
                Some(last) if page.len() == SWEEP_PAGE => after = Some(*last),
                _ => break,
            }
        }
        if swept != Swept::default() {
            tracing::info!(
                partial = swept.partial,
                orphans = swept.orphans,
                "swept attachments no message points at"
            );
        }
        Ok(swept)
    }
}

/// Blobs a sweep checks per read of the blob store.
const SWEEP_PAGE: usize = 500;

fn readable(message: Message) -> Result<Readable> {
    let Some(attachment) = message.attachment.map(|a| *a) else {
        return Err(Error::AttachmentNotFound);
    };
    let served_as = FileTypes::parse([attachment.content_type.as_str()])
        .ok()
        .and_then(|t| t.allowed().next().map(FileType::served_as))
        // A type no longer in the table is served as bytes to save, never shown.
        .unwrap_or_else(|| "application/octet-stream".to_string());
    Ok(Readable {
        attachment,
        chat_id: message.chat_id,
        served_as,
    })
}

/// The engine's refusal a checked body failed with, or the client's failure.
fn refusal_of(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(refusal) = inner.downcast::<Error>() {
                return *refusal;
            }
        }
        return Error::internal("a refusal was lost");
    }
    Error::UploadIncomplete(match e.kind() {
        io::ErrorKind::UnexpectedEof => "the body ended early".to_string(),
        _ => format!("the body could not be read ({e})"),
    })
}

fn refuse(e: Error) -> io::Error {
    io::Error::other(e)
}

/// An upload's body with the checks of [`AttachmentSettings`] applied as it streams: the
/// size limit, the type found in its first bytes (held back until found, at most
/// [`SNIFF_BYTES`] and a chunk), the name against that type, text checked to its end, and
/// the pace. A refusal ends the stream with an `io::Error` holding the [`Error`]; the
/// type and the final name are left in `verdict` once the body has passed.
struct Checked {
    body: ByteStream,
    types: FileTypes,
    declared: Option<String>,
    name: String,
    max: u64,
    received: u64,
    head: Vec<u8>,
    held: Vec<Bytes>,
    found: Option<FileType>,
    text: Option<TextCheck>,
    ready: VecDeque<Bytes>,
    ended: bool,
    started: Instant,
    grace: Duration,
    min_rate: u64,
    verdict: Arc<Mutex<Option<(FileType, String)>>>,
}

impl Checked {
    fn new(
        body: ByteStream,
        settings: &AttachmentSettings,
        declared: Option<String>,
        name: String,
        verdict: Arc<Mutex<Option<(FileType, String)>>>,
    ) -> Self {
        Self {
            body,
            types: settings.types.clone(),
            declared,
            name,
            max: settings.max_bytes,
            received: 0,
            head: Vec::new(),
            held: Vec::new(),
            found: None,
            text: None,
            ready: VecDeque::new(),
            ended: false,
            started: Instant::now(),
            grace: settings.upload_grace,
            min_rate: settings.min_bytes_per_second,
            verdict,
        }
    }

    fn into_stream(self) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
        futures_util::stream::unfold(Some(self), |state| async move {
            let mut this = state?;
            match this.next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(this))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// By when the next bytes must have come: the grace, then a second for every
    /// `min_rate` bytes received.
    fn deadline(&self) -> Option<Instant> {
        if self.min_rate == 0 {
            return None;
        }
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        Some(self.started + self.grace + earned)
    }

    async fn next(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if let Some(chunk) = self.ready.pop_front() {
                return Ok(Some(chunk));
            }
            if self.ended {
                return Ok(None);
            }
            let next = match self.deadline() {
                Some(at) => match tokio::time::timeout_at(at, self.body.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        return Err(refuse(Error::UploadIncomplete(format!(
                            "the body came more slowly than {} bytes a second",
                            self.min_rate
                        ))));
                    }
                },
                None => self.body.next().await,
            };
            match next {
                Some(Ok(chunk)) => self.take(chunk)?,
                Some(Err(e)) => return Err(e),
                None => self.end()?,
            }
        }
    }

    fn take(&mut self, chunk: Bytes) -> io::Result<()> {
        self.received += chunk.len() as u64;
        if self.received > self.max {
            return Err(refuse(Error::AttachmentTooLarge { max: self.max }));
        }
        if self.found.is_none() {
            let room = SNIFF_BYTES.saturating_sub(self.head.len());
            self.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
            self.held.push(chunk);
            if self.head.len() >= SNIFF_BYTES {
                self.decide()?;
            }
            return Ok(());
        }
        self.check_text(&chunk)?;
        self.ready.push_back(chunk);
        Ok(())
    }

    /// Finds the type in the head, checks the name against it, and lets the held bytes
    /// go.
    fn decide(&mut self) -> io::Result<()> {
        let extension = files::extension_of(&self.name);
        let found = self
            .types
            .detect(&self.head, self.declared.as_deref(), extension.as_deref())
            .map_err(refuse)?;
        self.name = files::name_for(&self.name, &found).map_err(refuse)?;
        if found.is_text() {
            self.text = Some(TextCheck::default());
        }
        self.found = Some(found);
        self.head = Vec::new();
        for chunk in std::mem::take(&mut self.held) {
            self.check_text(&chunk)?;
            self.ready.push_back(chunk);
        }
        Ok(())
    }

    fn check_text(&mut self, chunk: &[u8]) -> io::Result<()> {
        if let Some(text) = &mut self.text {
            text.update(chunk).map_err(|why| {
                refuse(Error::UnsupportedType(format!(
                    "the file is not plain text: {why}"
                )))
            })?;
        }
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        self.ended = true;
        if self.received == 0 {
            return Err(refuse(Error::UnsupportedType(
                "the file is empty".to_string(),
            )));
        }
        if self.found.is_none() {
            self.decide()?;
        }
        if let Some(text) = self.text.take() {
            text.finish().map_err(|why| {
                refuse(Error::UnsupportedType(format!(
                    "the file is not plain text: {why}"
                )))
            })?;
        }
        if let Some(found) = self.found {
            *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((found, self.name.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_waits_as_long_as_the_slowest_upload_may_take() {
        let mut settings = AttachmentSettings::default();
        assert_eq!(settings.sweep_grace(), Duration::from_secs(3600));
        // 1 GiB at 16 KiB/s: 65,536 s, plus the upload's grace and a minute.
        settings.max_bytes = 1024 * 1024 * 1024;
        assert_eq!(
            settings.sweep_grace(),
            Duration::from_secs(10 + 65_536 + 60)
        );
        // No pace: uploads have no bound, and only the grace holds.
        settings.min_bytes_per_second = 0;
        assert_eq!(settings.sweep_grace(), Duration::from_secs(3600));
        settings.orphan_grace = Duration::from_secs(1);
        assert_eq!(settings.sweep_grace(), Duration::from_secs(1));
    }
}
