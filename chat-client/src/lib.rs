//! `chat-client`: the typed async client of the chat server's wire contract
//! (docs/API.md), for Rust services that talk to a remote server, and for this
//! workspace's own tools (chat-cli's remote mode, chat-bench) and tests.
//!
//! - [`Client`]: the REST API, one method per endpoint. Answers are chatcore's types
//!   (they are the contract's shapes); a refusal is [`Error::Api`] with the contract's
//!   code, status and `Retry-After`.
//! - [`Socket`]: one WebSocket: authenticated on open, joins that wait for their answer,
//!   typed frames ([`chatcore::wire`]) with their text as received.
//! - [`Watch`]: a chat's or the queue's events across reconnects, with backoff and
//!   jitter, rejoining a chat with `afterSeq` so that nothing is missed or repeated.
//!
//! `https://` servers are spoken to over TLS, REST and uploads as well as the WebSocket
//! (`wss://`), with rustls on its `ring` provider (`tls.rs`). The server's certificate is
//! always verified, against the system's CA roots (`/etc/ssl/certs`, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`) and any CA certificates given with [`ClientBuilder::ca_pem`] (a private
//! CA's PEM); there is no option to skip it. A failed handshake is [`Error::Tls`], its
//! reason in words (`the server's certificate is not trusted: ...`).
//!
//! **For embedders:** this crate enables reqwest's `rustls-no-provider` feature (so that
//! aws-lc-rs, a C build that needs cmake, is not built), and Cargo unifies features:
//! in your build, a reqwest client that is not given a rustls configuration then has no
//! crypto provider, and building it panics, even for plain `http`. Build such clients
//! from [`Client::http_builder`], give them a configuration of your own, enable another
//! TLS feature of reqwest (its `rustls` feature brings aws-lc-rs as the provider), or
//! install a process-wide provider once at start
//! (`rustls::crypto::ring::default_provider().install_default()`).
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = chat_client::Client::builder("https://chat.bank.internal")
//!     .ca_pem(std::fs::read("/etc/chat/bank-ca.pem")?)
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), chat_client::Error> {
//! use chat_client::{Client, Watch, WatchEvent};
//!
//! let server = Client::new("http://127.0.0.1:3001")?;
//! let customer = server.customer_login("cust-1", None, None).await?;
//! let me = server.with_token(customer.token);
//! let chat = customer.chat.id.to_string();
//! me.send(&chat, "Hello, I need help", Some("m-1")).await?;
//! let mut watch = Watch::chat(me.clone(), &chat, me.last_seq(&chat).await?);
//! while let WatchEvent::Event(event) = watch.next().await? {
//!     println!("{}", event.text);
//! }
//! # Ok(()) }
//! ```

mod error;
mod rest;
mod tls;
mod watch;
mod ws;

pub use error::{ApiError, Error};
pub use rest::{Client, ClientBuilder, Download, Page, Sent};
pub use watch::{Watch, WatchEvent};
pub use ws::{Identity, Incoming, Socket, ws_url};

/// The contract's types the client answers with, for callers that do not depend on
/// chatcore themselves.
pub use chatcore::wire::{ClientFrame, ErrorFrame, ServerFrame};
pub use chatcore::{
    Availability, Chat, ChatStatus, ChatsFilter, CustomerSession, ErrorKind, Event, Message,
    Officer, OfficerSession,
};
