//! The [`Backend`] every command talks to, so each command is written once: [`Local`]
//! runs operations on a SQLite file or a PostgreSQL database through
//! `chatcore::ChatService`, [`Remote`] sends
//! them to a chat-http server over the wire contract. Both return chatcore's types, which
//! are the contract's shapes. Nothing here prints.

mod local;
mod remote;
mod webhooks;

use chatcore::{Chat, ChatsFilter, Message, Officer};
pub(crate) use chatcore::{CustomerSession, OfficerSession};
use serde::Serialize;

pub(crate) use local::{Local, LocalActor};
pub(crate) use remote::Remote;
pub(crate) use webhooks::DeliveryFilter;

/// A sent message and whether it was stored now (false: an earlier send with the same
/// client id already stored it).
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) message: Message,
    pub(crate) created: bool,
}

/// A file to send (`attach`): its bytes as they are read.
pub(crate) struct Outgoing {
    pub(crate) name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) length: u64,
    pub(crate) body: chatcore::ByteStream,
    pub(crate) client_id: Option<String>,
}

/// An attachment being read (`download`).
pub(crate) struct Incoming {
    /// Its name as stored (to be made safe again before it names a file here).
    pub(crate) name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) size: Option<u64>,
    /// The SHA-256 the bytes must have, when known.
    pub(crate) sha256: Option<String>,
    pub(crate) body: chatcore::ByteStream,
}

/// A page request for `messages`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Page {
    pub(crate) after: Option<u64>,
    pub(crate) before: Option<u64>,
    pub(crate) limit: Option<u32>,
}

/// What `status` reports; fields that do not apply to a mode are left out of the JSON.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    pub(crate) mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) db: Option<String>,
    /// The PostgreSQL database (`--database-url`), without its password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) postgres: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<String>,
    /// `ok` when the store (local) or `/healthz` (remote) answers.
    pub(crate) health: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) schema_version: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) officers: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pending_chats: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) assigned_chats: Option<u64>,
    /// Who the CLI acts as: the token's role (remote) or the --as identity (local).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) subject: Option<String>,
}

/// Local or remote; the same operations either way.
#[derive(Debug)]
pub(crate) enum Backend {
    Local(Local),
    Remote(Remote),
}

impl Backend {
    pub(crate) async fn create_officer(
        &self,
        id: &str,
        password: Option<String>,
        display_name: Option<String>,
    ) -> anyhow::Result<Officer> {
        match self {
            Backend::Local(b) => b.create_officer(id, password, display_name).await,
            Backend::Remote(b) => b.create_officer(id, password, display_name).await,
        }
    }

    pub(crate) async fn officers(&self) -> anyhow::Result<Vec<Officer>> {
        match self {
            Backend::Local(b) => b.officers().await,
            Backend::Remote(b) => b.officers().await,
        }
    }

    /// Sets an officer's availability (`None`: the acting officer).
    pub(crate) async fn set_availability(
        &self,
        id: Option<&str>,
        availability: chatcore::Availability,
    ) -> anyhow::Result<Officer> {
        match self {
            Backend::Local(b) => b.set_availability(id, availability).await,
            Backend::Remote(b) => b.set_availability(id, availability).await,
        }
    }

    /// Sets an officer's capacity (`None`: the server's default).
    pub(crate) async fn set_capacity(
        &self,
        id: &str,
        capacity: Option<u32>,
    ) -> anyhow::Result<Officer> {
        match self {
            Backend::Local(b) => b.set_capacity(id, capacity).await,
            Backend::Remote(b) => b.set_capacity(id, capacity).await,
        }
    }

    pub(crate) async fn set_officer_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> anyhow::Result<Officer> {
        match self {
            Backend::Local(b) => b.set_officer_disabled(id, disabled).await,
            Backend::Remote(b) => b.set_officer_disabled(id, disabled).await,
        }
    }

    pub(crate) async fn officer_login(
        &self,
        id: &str,
        password: Option<String>,
    ) -> anyhow::Result<OfficerSession> {
        match self {
            Backend::Local(b) => b.officer_login(id, password).await,
            Backend::Remote(b) => b.officer_login(id, password).await,
        }
    }

    pub(crate) async fn customer_login(
        &self,
        id: &str,
        officer: Option<String>,
        signature: Option<String>,
    ) -> anyhow::Result<CustomerSession> {
        match self {
            Backend::Local(b) => b.customer_login(id, officer, signature).await,
            Backend::Remote(b) => b.customer_login(id, officer, signature).await,
        }
    }

    pub(crate) async fn customer_login_with_identity(
        &self,
        identity_token: &str,
    ) -> anyhow::Result<CustomerSession> {
        match self {
            Backend::Local(b) => b.customer_login_with_identity(identity_token).await,
            Backend::Remote(b) => b.customer_login_with_identity(identity_token).await,
        }
    }

    pub(crate) async fn queue(&self) -> anyhow::Result<Vec<Chat>> {
        match self {
            Backend::Local(b) => b.queue().await,
            Backend::Remote(b) => b.queue().await,
        }
    }

    /// Chats of `officer`, or of the acting officer when `None`.
    pub(crate) async fn officer_chats(
        &self,
        officer: Option<&str>,
        filter: ChatsFilter,
    ) -> anyhow::Result<Vec<Chat>> {
        match self {
            Backend::Local(b) => b.officer_chats(officer, filter).await,
            Backend::Remote(b) => b.officer_chats(officer, filter).await,
        }
    }

    /// Chats of `customer`, or of the acting customer when `None`, newest first.
    pub(crate) async fn customer_chats(&self, customer: Option<&str>) -> anyhow::Result<Vec<Chat>> {
        match self {
            Backend::Local(b) => b.customer_chats(customer).await,
            Backend::Remote(b) => b.customer_chats(customer).await,
        }
    }

    /// Claims a chat for the acting officer.
    pub(crate) async fn claim(&self, chat: &str) -> anyhow::Result<Chat> {
        match self {
            Backend::Local(b) => b.claim(chat).await,
            Backend::Remote(b) => b.claim(chat).await,
        }
    }

    /// Ends a chat as the acting identity.
    pub(crate) async fn resolve(&self, chat: &str) -> anyhow::Result<Chat> {
        match self {
            Backend::Local(b) => b.resolve(chat).await,
            Backend::Remote(b) => b.resolve(chat).await,
        }
    }

    /// Puts an assigned chat back in the queue.
    pub(crate) async fn release(&self, chat: &str) -> anyhow::Result<Chat> {
        match self {
            Backend::Local(b) => b.release(chat).await,
            Backend::Remote(b) => b.release(chat).await,
        }
    }

    /// Hands an assigned chat to officer `to`.
    pub(crate) async fn transfer(&self, chat: &str, to: &str) -> anyhow::Result<Chat> {
        match self {
            Backend::Local(b) => b.transfer(chat, to).await,
            Backend::Remote(b) => b.transfer(chat, to).await,
        }
    }

    /// Opens a resolved chat again, for `officer` or (`None`) the acting officer.
    pub(crate) async fn reopen(&self, chat: &str, officer: Option<&str>) -> anyhow::Result<Chat> {
        match self {
            Backend::Local(b) => b.reopen(chat, officer).await,
            Backend::Remote(b) => b.reopen(chat, officer).await,
        }
    }

    pub(crate) async fn send(
        &self,
        chat: &str,
        content: String,
        client_id: Option<String>,
    ) -> anyhow::Result<Sent> {
        match self {
            Backend::Local(b) => b.send(chat, content, client_id).await,
            Backend::Remote(b) => b.send(chat, content, client_id).await,
        }
    }

    pub(crate) async fn messages(&self, chat: &str, page: Page) -> anyhow::Result<Vec<Message>> {
        match self {
            Backend::Local(b) => b.messages(chat, page).await,
            Backend::Remote(b) => b.messages(chat, page).await,
        }
    }

    /// Sends a file as an attachment.
    pub(crate) async fn attach(&self, chat: &str, file: Outgoing) -> anyhow::Result<Sent> {
        match self {
            Backend::Local(b) => b.attach(chat, file).await,
            Backend::Remote(b) => b.attach(chat, file).await,
        }
    }

    /// Opens an attachment's bytes.
    pub(crate) async fn download(&self, id: &str) -> anyhow::Result<Incoming> {
        match self {
            Backend::Local(b) => b.download(id).await,
            Backend::Remote(b) => b.download(id).await,
        }
    }

    /// Who the CLI acts as.
    pub(crate) async fn me(&self) -> anyhow::Result<chatcore::Me> {
        match self {
            Backend::Local(b) => b.me().await,
            Backend::Remote(b) => b.me().await,
        }
    }

    pub(crate) async fn status(&self) -> anyhow::Result<Status> {
        match self {
            Backend::Local(b) => b.status().await,
            Backend::Remote(b) => b.status().await,
        }
    }

    /// Releases what the backend holds (local: flushes events and closes the store).
    /// Returns a warning for the user when something written was not announced live.
    pub(crate) async fn close(self) -> anyhow::Result<Option<String>> {
        match self {
            Backend::Local(b) => b.close().await,
            Backend::Remote(_) => Ok(None),
        }
    }
}
