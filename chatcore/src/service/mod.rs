//! [`ChatService`]: the one entry point for every operation of the contract, built from a
//! [`Store`] and an [`EventBus`]. Each operation takes the acting identity, asks
//! `policy` whether it is allowed, validates input, changes the store, and
//! publishes events only after the store has committed.
//!
//! Event order: changes that publish (messages, chat creation, claims) run under a lock
//! striped by chat id, held from the store write until the event is published, so each
//! chat's events leave in commit order (seq order for messages, "created" before
//! "claimed"). They also run in a spawned task, so a caller that gives up mid-way (a
//! dropped HTTP request) cannot leave a committed change unpublished.

mod assign;
mod attachments;
mod claim;
mod customers;
mod desk;
mod feed;
mod lifecycle;
mod marks;
mod messages;
mod officers;
mod operators;
mod sessions;
mod webhooks;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

pub use assign::AUTO_SENDER;
pub use attachments::{AttachmentSettings, Readable, Swept, Upload};
pub use customers::{CustomerLogin, CustomerSession};
pub use desk::Assignment;
pub use feed::ChatFeed;
pub use marks::{ReadMark, TYPING_SHOWN_FOR};
pub use messages::{MAX_CLIENT_MESSAGE_ID_LEN, MessagePage, SendMessage, Sent};
pub use officers::{MAX_CAPACITY, Me, NewOfficer, OfficerSession};
pub use sessions::{LiveSession, MAX_TOKEN_BYTES, SessionNotice};
pub use webhooks::{FLAG_WEBHOOK_ID, MAX_DELIVERY_PAGE, MAX_WEBHOOKS, NewWebhook, WebhookWorker};

use crate::blob::BlobStore;
use crate::bus::{Envelope, Event, EventBus, Topic};
use crate::clock::{Clock, SystemClock};
use crate::credentials;
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::{ChatId, CustomerId, OfficerId};
use crate::limits::{Limits, RateLimiter};
use crate::model::Timestamp;
#[cfg(feature = "sqlite")]
use crate::store::SqliteStore;
use crate::store::{SessionRecord, SessionSubject, Store};
use crate::webhooks::WebhookSettings;

/// Settings of a [`ChatService`]. Start from `ServiceConfig::default()` and set fields;
/// new fields may be added in minor versions.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// The operator's bearer token. `None` means open mode: anyone may create officers,
    /// and officers without a password log in by id alone. Make it long and random (32
    /// characters or more; chat-http refuses shorter ones).
    pub admin_token: Option<String>,
    /// The secret shared with the host application. When set, customer login requires
    /// proof of the customer's id: an identity token (a JWT, HS256 with this secret) or
    /// `signature` = hex HMAC-SHA256(secret, customerId); and only an identity token may
    /// name the officer of a new chat. Make it long and random (32 characters or more;
    /// chat-http refuses shorter ones): it is an HMAC key.
    pub customer_secret: Option<Vec<u8>>,
    /// Longest message content, in characters (Unicode scalar values). Default 4,000.
    pub max_message_chars: usize,
    /// Shortest password accepted when an officer is created. Default 8.
    pub min_password_chars: usize,
    /// Lifetime of an officer's token. Default 12 hours.
    pub officer_session_ttl: Duration,
    /// Lifetime of a customer's token. Default 24 hours.
    pub customer_session_ttl: Duration,
    /// Most bytes of message JSON in one page of [`ChatService::messages`]; a page stops
    /// before passing it (holding at least one message), so that one request cannot
    /// make the server hold a huge answer. Default 1 MiB (about 3,000 ordinary messages,
    /// or 43 of the longest kind when every character needs a six-byte JSON escape).
    pub max_page_bytes: usize,
    /// Abuse limits on identities (failed logins per officer, sends per sender). Default
    /// [`Limits::default()`]: failed logins limited, sends not.
    pub limits: Limits,
    /// The capacity of an officer who has none of their own: the most open chats a
    /// claim, transfer or reopen may give them. Default `None`: unlimited.
    pub officer_capacity: Option<u32>,
    /// How chats reach officers: claimed by hand ([`Assignment::Manual`], the default)
    /// or given to an eligible officer as they enter the queue ([`Assignment::Auto`]).
    pub assignment: Assignment,
    /// How long a node may go unheard before the officers connected through it count as
    /// disconnected (it writes a heartbeat every third of this). Default 30 seconds.
    pub presence_ttl: Duration,
    /// How attachments are taken and kept (size, types, pace, uploads at once, the
    /// sweep's grace). Default [`AttachmentSettings::default()`].
    pub attachments: AttachmentSettings,
    /// How webhooks are delivered (timeouts, retries, concurrency, leases). Default
    /// [`WebhookSettings::default()`].
    pub webhooks: WebhookSettings,
    /// Where the service reads the time. Default: the system clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            customer_secret: None,
            max_message_chars: 4000,
            min_password_chars: 8,
            officer_session_ttl: Duration::from_secs(12 * 3600),
            customer_session_ttl: Duration::from_secs(24 * 3600),
            max_page_bytes: 1024 * 1024,
            limits: Limits::default(),
            officer_capacity: None,
            assignment: Assignment::Manual,
            presence_ttl: Duration::from_secs(30),
            attachments: AttachmentSettings::default(),
            webhooks: WebhookSettings::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl ServiceConfig {
    /// True when no admin token is configured.
    pub fn open_mode(&self) -> bool {
        self.admin_token.is_none()
    }
}

impl fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets are reported as present or absent, never printed.
        f.debug_struct("ServiceConfig")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "customer_secret",
                &self.customer_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("max_message_chars", &self.max_message_chars)
            .field("min_password_chars", &self.min_password_chars)
            .field("officer_session_ttl", &self.officer_session_ttl)
            .field("customer_session_ttl", &self.customer_session_ttl)
            .field("max_page_bytes", &self.max_page_bytes)
            .field("limits", &self.limits)
            .field("officer_capacity", &self.officer_capacity)
            .field("assignment", &self.assignment)
            .field("presence_ttl", &self.presence_ttl)
            .field("attachments", &self.attachments)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

/// Largest page of messages, and of the queue and an officer's chats.
pub const MAX_PAGE: u32 = 1000;
/// Page size when the caller gives none.
pub const DEFAULT_PAGE: u32 = 100;
/// Locks that order events per chat; chats share a lock when their ids hash alike.
const ORDER_STRIPES: usize = 256;

/// The engine. Cheap to clone: clones share the store, the bus and the configuration.
#[derive(Clone)]
pub struct ChatService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// Attachments' bytes; `None`: the service takes no attachments.
    blobs: Option<Arc<dyn BlobStore>>,
    bus: Arc<dyn EventBus>,
    config: ServiceConfig,
    order: Box<[Arc<Mutex<()>>]>,
    /// Failed logins per officer id (as given, when well-formed).
    login_failures: RateLimiter<OfficerId>,
    /// Message sends per identity.
    sends: RateLimiter<Sender>,
    /// Uploads in progress and over time.
    uploads: attachments::Uploads,
    /// Typing notices per chat and sender (more are dropped).
    typing: RateLimiter<(ChatId, Sender)>,
    /// The live sessions of long-lived connections, ended when revoked.
    revocations: Arc<sessions::Revocations>,
    /// This node's presence, view of the queue and automatic assignment.
    desk: Arc<desk::Desk>,
    /// Password hashes computed at once (each holds 19 MiB while it runs): as many as
    /// the machine has cores, so a crowd of logins queues instead of taking the memory.
    hashing: officers::Hashing,
    /// Wakes this node's webhook worker when a change wrote to the outbox.
    webhook_wake: tokio::sync::Notify,
    /// Whether webhooks may exist: false once the worker's last read of them found none
    /// and none was set on this node since. Then a change wakes no worker (a server
    /// without webhooks does no work per message for them); a webhook another node or
    /// process creates is found by the worker's next read, and its events meanwhile by
    /// its poll.
    webhooks_maybe: std::sync::atomic::AtomicBool,
    /// Counts the webhooks set on this node, so that a read that found none while one
    /// was being set does not clear `webhooks_maybe`.
    webhooks_set: std::sync::atomic::AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.desk.stop();
    }
}

/// Whom a send is counted against: the identity, not the token, so that logging in
/// again does not buy a fresh budget.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Sender {
    Officer(OfficerId),
    Customer(CustomerId),
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sender::Officer(id) => write!(f, "officer:{id}"),
            Sender::Customer(id) => write!(f, "customer:{id}"),
        }
    }
}

impl Sender {
    /// The identity a send by `actor` counts against; `None` for actors who cannot send.
    fn of(actor: &Actor) -> Option<Self> {
        match actor {
            Actor::Officer(id) => Some(Sender::Officer(id.clone())),
            Actor::Customer { customer_id, .. } => Some(Sender::Customer(customer_id.clone())),
            Actor::Admin | Actor::Anonymous => None,
        }
    }
}

impl ChatService {
    /// A service over `store` and `bus`, taking no attachments (they are refused with
    /// [`Error::AttachmentsDisabled`]): see [`ChatService::with_blobs`].
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn EventBus>, config: ServiceConfig) -> Self {
        Self::build(store, None, bus, config)
    }

    /// A service over `store` and `bus` that keeps attachments' bytes in `blobs`. Pair
    /// stores that keep alike: a [`crate::FsBlobStore`] with a SQLite file, chat-postgres's
    /// `PgBlobStore` with its `PgStore` (nodes then share attachments), a
    /// [`crate::MemoryBlobStore`] with a [`crate::MemoryStore`].
    pub fn with_blobs(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        config: ServiceConfig,
    ) -> Self {
        Self::build(store, Some(blobs), bus, config)
    }

    fn build(
        store: Arc<dyn Store>,
        blobs: Option<Arc<dyn BlobStore>>,
        bus: Arc<dyn EventBus>,
        config: ServiceConfig,
    ) -> Self {
        let order = (0..ORDER_STRIPES)
            .map(|_| Arc::new(Mutex::new(())))
            .collect();
        let limits = &config.limits;
        let login_failures = RateLimiter::new(
            limits.login_failures_per_officer,
            limits.max_tracked_keys,
            config.clock.clone(),
        )
        .named(crate::metrics::limit::OFFICER_LOGIN_FAILURES);
        let sends = RateLimiter::new(
            limits.sends_per_sender,
            limits.max_tracked_keys,
            config.clock.clone(),
        )
        .named(crate::metrics::limit::SENDS);
        let uploads = attachments::Uploads::new(
            &config.attachments,
            RateLimiter::new(
                limits.uploads_per_sender,
                limits.max_tracked_keys,
                config.clock.clone(),
            )
            .named(crate::metrics::limit::UPLOADS),
        );
        let typing = RateLimiter::new(
            Some(crate::limits::Rate::per_second(marks::TYPING_PER_SECOND)),
            limits.max_tracked_keys,
            config.clock.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                store,
                blobs,
                bus,
                config,
                order,
                login_failures,
                sends,
                uploads,
                typing,
                revocations: Arc::default(),
                desk: Arc::default(),
                hashing: officers::Hashing::new(officers::hashing_permits()),
                webhook_wake: tokio::sync::Notify::new(),
                webhooks_maybe: std::sync::atomic::AtomicBool::new(true),
                webhooks_set: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// A service on a SQLite file (created and migrated if needed) with an in-process bus,
    /// keeping attachments in a directory beside it ([`crate::FsBlobStore::beside`]).
    #[cfg(feature = "sqlite")]
    pub fn open_sqlite(path: impl AsRef<std::path::Path>, config: ServiceConfig) -> Result<Self> {
        let store = SqliteStore::open(&path)?;
        let blobs = crate::FsBlobStore::open(crate::FsBlobStore::beside(&path))
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        Ok(Self::with_blobs(
            Arc::new(store),
            Arc::new(blobs),
            Arc::new(crate::bus::LocalBus::new()),
            config,
        ))
    }

    /// The store, for embedders that need more than the service offers.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The event bus.
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.inner.bus
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// Succeeds when the store can serve.
    pub async fn health(&self) -> Result<()> {
        Ok(self.inner.store.ping().await?)
    }

    /// Closes the store after the writes already accepted have been committed; this
    /// node's officers stop counting as connected.
    pub async fn close(&self) -> Result<()> {
        self.leave_desk().await;
        Ok(self.inner.store.close().await?)
    }

    fn now(&self) -> Timestamp {
        self.inner.config.clock.now()
    }

    async fn issue_session(
        &self,
        subject: SessionSubject,
        ttl: Duration,
    ) -> Result<(String, Timestamp)> {
        let (token, token_hash) = credentials::new_token();
        let now = self.now();
        let expires_at = now.plus(ttl);
        let stored = self
            .inner
            .store
            .create_session(&SessionRecord {
                token_hash,
                subject,
                created_at: now,
                expires_at,
            })
            .await?;
        // Only an officer's session can be refused: the officer was disabled meanwhile.
        if !stored {
            return Err(Error::OfficerDisabled);
        }
        Ok((token, expires_at))
    }

    fn publish(&self, topic: Topic, event: Event) {
        // The events webhooks carry were written to the outbox with their change.
        if matches!(event, Event::NewMessage { .. } | Event::ChatUpdated { .. })
            && self.inner.webhooks_maybe.load(Ordering::SeqCst)
        {
            self.inner.webhook_wake.notify_one();
        }
        self.inner.bus.publish(Envelope::new(topic, event));
    }

    /// Takes the ordering lock of a chat's stripe.
    async fn order_lock(&self, chat: &ChatId) -> OwnedMutexGuard<()> {
        let i = (chat.as_uuid().as_u128() % ORDER_STRIPES as u128) as usize;
        self.inner.order[i].clone().lock_owned().await
    }

    /// Runs a store change and its event publication in a task of its own (so that the
    /// caller dropping its future cannot separate the two), under the chat's order lock.
    async fn ordered<T, F, Fut>(&self, chat: ChatId, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(ChatService) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        self.detached(move |this| async move {
            let _guard = this.order_lock(&chat).await;
            f(this.clone()).await
        })
        .await
    }

    /// Runs a store change and its event publication in a task of its own, so that the
    /// caller dropping its future (a dropped HTTP request) cannot leave a committed change
    /// unannounced.
    async fn detached<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(ChatService) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        tokio::spawn(f(self.clone()))
            .await
            .map_err(|e| Error::internal(format!("detached task failed: {e}")))?
    }
}

impl fmt::Debug for ChatService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}
