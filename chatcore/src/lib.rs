//! `chatcore`: the engine of a real-time customer-support chat with a shared queue.
//!
//! Customers start a chat; officers see one shared queue of unassigned chats, claim a
//! chat atomically (exactly one officer wins, however many race) and talk with the
//! customer in real time. This crate holds every rule of that system and knows nothing
//! of HTTP, WebSockets or command lines: `chat-http` and `chat-cli` are thin adapters
//! over it, and other Rust services can embed it the same way.
//!
//! # Layout
//!
//! - [`ids`], [`model`]: validated ids and the contract's objects (Officer, Chat, Message).
//! - [`error`]: [`Error`], one variant per contract error code.
//! - [`store`]: the [`Store`] trait and its two implementations, [`SqliteStore`] (the
//!   default: one file, WAL, group commit) and [`MemoryStore`], and what every store
//!   encodes alike (pages, session columns, row decoding), for other backends too.
//! - [`blob`]: the [`BlobStore`] trait, where attachments' bytes live (addressed by their
//!   SHA-256, streamed in and out), with [`FsBlobStore`] and [`MemoryBlobStore`].
//! - [`files`]: which file types an attachment may be, found in its bytes, and the rule
//!   for its name.
//! - [`bus`]: the [`EventBus`] trait, topics, events and the in-process [`LocalBus`].
//! - [`identity`], `policy`, `credentials`: who is acting, what they may do, and
//!   passwords, tokens, signatures and identity tokens (JWT).
//! - `text`: what counts as invisible in a message, and the rule for names shown to
//!   others.
//! - [`service`]: [`ChatService`], the single entry point for every operation.
//! - [`wire`]: the WebSocket protocol's frames, for servers and clients alike.
//! - [`webhooks`]: webhooks' rules (an event's body, the `Chat-Signature`, backoff) and
//!   the [`WebhookSender`] a transport implements; the outbox is the stores'
//!   (`store::WebhookStore`), the delivery worker the service's.
//! - [`limits`]: abuse limits ([`Limits`], [`Rate`]) and the [`RateLimiter`] transports
//!   use for their own.
//! - [`report`]: the desk report's figures, their definitions and its period.
//! - [`metrics`]: the engine's metrics (names, meanings), recorded through the `metrics`
//!   facade: no-ops until a binary installs a recorder.
//! - `conformance` (with the feature `conformance`): the test suite every `Store`
//!   implementation must pass.
//!
//! # Features
//!
//! - `sqlite` (default): [`SqliteStore`] and [`ChatService::open_sqlite`]. Without it the
//!   crate builds no SQLite: for a client that needs only the contract's types
//!   (`chat-client`), or a service that brings its own store.
//! - `conformance`: the store conformance suite.
//!
//! # Embedding
//!
//! The workspace's `examples/` folder shows the usual paths, each runnable from the
//! workspace root with `cargo run --example NAME`:
//!
//! - `minimal`: a [`ChatService`] on a SQLite file, the whole flow in one page.
//! - `tcp_chat`: another transport (line-based TCP) on the same calls and events as the
//!   WebSocket server.
//! - `metered_store`: a custom [`Store`] wrapping another, passing the conformance suite.
//! - `greeter_bot`: an event-driven bot that claims queue chats up to a limit.
//! - `remote_bot`: a bot in another process, talking to a running server with the
//!   `chat-client` crate (the typed client of the wire contract).
//!
//! Build a service with [`ChatService::open_sqlite`] (SQLite file + in-process bus) or
//! [`ChatService::new`] with any [`Store`] and [`EventBus`]. Transports turn a bearer
//! token into an [`Actor`] with [`ChatService::authenticate`]; embedders that
//! authenticate users themselves may construct the [`Actor`] directly.
//!
//! # Example
//!
//! ```
//! use chatcore::{Actor, ChatService, CustomerId, CustomerLogin, NewOfficer, OfficerId,
//!                SendMessage, ServiceConfig};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), chatcore::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("chat.db");
//! // A service on a SQLite file, in open mode (no admin token).
//! let service = ChatService::open_sqlite(&path, ServiceConfig::default())?;
//!
//! let alice = OfficerId::parse("alice")?;
//! service
//!     .create_officer(&Actor::Anonymous, NewOfficer { id: alice.clone(), password: None, display_name: None, capacity: None })
//!     .await?;
//!
//! // A customer logs in: their chat is created and waits in the queue.
//! let login = service
//!     .customer_login(CustomerLogin { customer_id: CustomerId::parse("cust-1")?, officer_id: None, signature: None })
//!     .await?;
//! let customer = service.authenticate(&login.token).await?.actor;
//!
//! // Alice watches the queue, sees nothing yet claimed, and claims the chat.
//! let officer = Actor::Officer(alice.clone());
//! assert_eq!(service.queue(&officer).await?.len(), 1);
//! service.claim(&officer, &alice, login.chat.id).await?;
//!
//! // Both talk; every entry gets the chat's next seq, the claim's own entry first.
//! let mut feed = service.watch_chat(&officer, login.chat.id, Some(0)).await?;
//! service.send_message(&customer, login.chat.id, SendMessage::text("Hello?")).await?;
//! service.send_message(&officer, login.chat.id, SendMessage::text("Hi, I am Alice.")).await?;
//! assert_eq!(feed.next().await?.unwrap().content, "alice took the chat");
//! assert_eq!(feed.next().await?.unwrap().seq, 2);
//! assert_eq!(feed.next().await?.unwrap().content, "Hi, I am Alice.");
//! service.close().await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod blob;
pub mod bus;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod credentials;
pub mod error;
pub mod files;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod model;
mod policy;
pub mod report;
pub mod service;
pub mod store;
mod text;
pub mod webhooks;
pub mod wire;

pub use blob::{
    BlobId, BlobInfo, BlobRead, BlobStore, ByteRange, ByteStream, FsBlobStore, MemoryBlobStore,
};
pub use bus::{Envelope, Event, EventBus, LocalBus, RecvError, Subscription, Topic};
pub use clock::{Clock, ManualClock, SystemClock};
pub use credentials::{
    IDENTITY_LEEWAY_SECS, IdentityClaims, customer_identity_token, customer_signature, hash_token,
};
pub use error::{Error, ErrorKind, Result};
pub use files::FileTypes;
pub use identity::{Actor, Authenticated};
pub use ids::{AttachmentId, ChatId, CustomerId, IdKind, MessageId, OfficerId};
pub use limits::{Limits, Rate, RateLimiter, Throttle};
pub use model::{
    Attachment, Availability, Chat, ChatChange, ChatStatus, ChatsFilter, LastMessage, Message,
    Officer, SenderType, SystemEvent, Timestamp,
};
pub use report::{DeskReport, Durations, OfficerFigures, ReportPeriod};
pub use service::{
    Assignment, AttachmentSettings, ChatFeed, ChatService, CustomerLogin, CustomerSession,
    FLAG_WEBHOOK_ID, LiveSession, MAX_TOKEN_BYTES, Me, MessagePage, NewOfficer, NewWebhook,
    OfficerSession, ReadMark, Readable, SendMessage, Sent, ServiceConfig, SessionNotice, Swept,
    TYPING_SHOWN_FOR, Upload, WebhookWorker,
};
#[cfg(feature = "sqlite")]
pub use store::{Durability, SqliteOptions, SqliteStore};
pub use store::{MemoryStore, Store, StoreError};
pub use webhooks::{
    CreatedWebhook, Webhook, WebhookDelivery, WebhookRequest, WebhookResponse, WebhookSender,
    WebhookSettings,
};
