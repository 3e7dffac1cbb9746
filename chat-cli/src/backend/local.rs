//! Local mode: every operation through `chatcore::ChatService` on a SQLite file
//! (`--db`) or on the PostgreSQL database chat-http nodes share (`--database-url`).
//!
//! Local mode is trusted (whoever runs it holds the database): it acts as the
//! administrator, or as the officer or customer named by `--as`, without a token. The
//! service still runs in secured mode (a random admin token nobody knows), so every rule
//! of chatcore applies exactly as on a secured server.
//!
//! Events: on SQLite they reach only this process's own bus, so a server on the same
//! file does not push them live. On PostgreSQL they go through `PgBus`, as a node's do:
//! every chat-http node on the database pushes them to its sockets live. The bus only
//! queues notifications, so [`Local::close`] flushes it before the process exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chat_postgres::tokio_postgres;
use chat_postgres::{PgBus, PgOptions, PgStore};
use chatcore::{
    Actor, Chat, ChatId, ChatService, ChatsFilter, CustomerId, LocalBus, Message, MessagePage,
    NewOfficer, Officer, OfficerId, SendMessage, ServiceConfig, Store,
};

use super::{CustomerSession, Incoming, OfficerSession, Outgoing, Page, Sent, Status};
use crate::error::{ApiError, ExitKind};

/// Who local mode acts as (`--as`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocalActor {
    Admin,
    Officer(OfficerId),
    Customer(CustomerId),
}

impl LocalActor {
    /// Parses `admin`, `officer:ID` or `customer:ID`.
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::usage(format!(
                "--as must be `admin`, `officer:ID` or `customer:ID`, not `{s}`"
            ))
        };
        match s.split_once(':') {
            None if s == "admin" => Ok(LocalActor::Admin),
            Some(("officer", id)) => Ok(LocalActor::Officer(OfficerId::parse(id)?)),
            Some(("customer", id)) => Ok(LocalActor::Customer(CustomerId::parse(id)?)),
            _ => Err(bad()),
        }
    }
}

/// Connections local mode opens to PostgreSQL for requests: commands run one operation
/// at a time.
const PG_POOL_SIZE: usize = 2;
/// How long closing waits for this run's notifications to reach PostgreSQL.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The database local mode works on.
#[derive(Debug)]
enum Database {
    Sqlite(PathBuf),
    Postgres {
        /// Where it is, without the password, for `status`.
        target: String,
        /// The service's bus, kept to flush it on close.
        bus: Arc<PgBus>,
    },
}

/// The local backend.
#[derive(Debug)]
pub(crate) struct Local {
    pub(super) service: ChatService,
    database: Database,
    actor: LocalActor,
}

/// The engine's settings for local mode: secured, with an admin token nobody will ever
/// present. Local mode acts as `Actor::Admin` directly, and rules that depend on open
/// mode (password-less logins, anyone creating officers) stay off, as on a secured
/// server. Webhooks added here are delivered by chat-http, which sends to `http` and
/// `https` receivers: both are taken.
fn secured_config() -> ServiceConfig {
    let mut config = ServiceConfig::default();
    config.webhooks.schemes = vec!["http".into(), "https".into()];
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    config.admin_token = Some(secret.iter().map(|b| format!("{b:02x}")).collect());
    config
}

/// A connection target for people: `postgres://user@host:port/dbname`, never the
/// password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let dbname = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{host}:{port}/{dbname}")
}

impl Local {
    /// Opens (creating and migrating if needed) the SQLite database at `path`, with its
    /// attachments in `attachments` (default: beside it, as the server's).
    pub(crate) fn open_sqlite(
        path: &Path,
        attachments: Option<&Path>,
        actor: LocalActor,
    ) -> anyhow::Result<Self> {
        let opened = match attachments {
            None => ChatService::open_sqlite(path, secured_config()),
            Some(dir) => chatcore::SqliteStore::open(path)
                .map_err(chatcore::Error::from)
                .and_then(|store| {
                    let blobs = chatcore::FsBlobStore::open(dir)
                        .map_err(|e| chatcore::Error::Unavailable(Box::new(e)))?;
                    Ok(ChatService::with_blobs(
                        Arc::new(store),
                        Arc::new(blobs),
                        Arc::new(LocalBus::new()),
                        secured_config(),
                    ))
                }),
        };
        let service = opened.map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.to_string());
            ApiError::new(
                ExitKind::Unreachable,
                "store_unreachable",
                format!("cannot open the database {}: {cause}", path.display()),
            )
        })?;
        Ok(Self {
            service,
            database: Database::Sqlite(path.to_path_buf()),
            actor,
        })
    }

    /// Connects to the PostgreSQL database at `url` (migrating it if needed), with the
    /// cross-node bus, as a chat-http node does.
    pub(crate) async fn open_postgres(url: &str, actor: LocalActor) -> anyhow::Result<Self> {
        if url.is_empty() {
            return Err(ApiError::usage("--database-url must not be empty").into());
        }
        // The connection string may hold a password: messages name the setting, never
        // its value.
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            ApiError::usage(format!(
                "--database-url is not a valid PostgreSQL connection string: {e}"
            ))
        })?;
        let target = describe(&config);
        let unreachable = |e: chatcore::StoreError| {
            ApiError::new(
                ExitKind::Unreachable,
                "store_unreachable",
                format!("cannot open the PostgreSQL database {target}: {e}"),
            )
        };
        let options = PgOptions {
            pool_size: PG_POOL_SIZE,
            ..PgOptions::default()
        };
        let pg = PgStore::connect_with(config.clone(), options)
            .await
            .map_err(unreachable)?;
        let blobs = Arc::new(pg.blobs());
        let store: Arc<dyn Store> = Arc::new(pg);
        let bus = Arc::new(
            PgBus::connect_with(config, store.clone(), LocalBus::DEFAULT_CAPACITY)
                .await
                .map_err(unreachable)?,
        );
        let service = ChatService::with_blobs(store, blobs, bus.clone(), secured_config());
        Ok(Self {
            service,
            database: Database::Postgres { target, bus },
            actor,
        })
    }

    /// The engine's actor for an operation; `chat` is the chat it concerns, if any.
    ///
    /// Whether the identity exists and may act at all (an officer not disabled, a
    /// customer on their own chat) is the engine's answer, as is everything after.
    pub(super) async fn actor(&self, chat: Option<ChatId>) -> anyhow::Result<Actor> {
        Ok(match &self.actor {
            LocalActor::Admin => Actor::Admin,
            // The engine says whether this officer exists and may act.
            LocalActor::Officer(id) => self
                .service
                .act_as_officer(id)
                .await
                .map_err(ApiError::from)?,
            // So does whether this customer may act on that chat.
            LocalActor::Customer(customer_id) => self
                .service
                .act_as_customer(customer_id, chat)
                .await
                .map_err(ApiError::from)?,
        })
    }

    /// The officer an officer-only operation acts for.
    fn acting_officer(&self, what: &str) -> anyhow::Result<OfficerId> {
        match &self.actor {
            LocalActor::Officer(id) => Ok(id.clone()),
            _ => Err(ApiError::usage(format!("{what} in local mode needs --as officer:ID")).into()),
        }
    }

    pub(crate) async fn create_officer(
        &self,
        id: &str,
        password: Option<String>,
        display_name: Option<String>,
    ) -> anyhow::Result<Officer> {
        let id = OfficerId::parse(id).map_err(ApiError::from)?;
        let actor = self.actor(None).await?;
        Ok(self
            .service
            .create_officer(
                &actor,
                NewOfficer {
                    id,
                    password,
                    display_name,
                    capacity: None,
                },
            )
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn officers(&self) -> anyhow::Result<Vec<Officer>> {
        let actor = self.actor(None).await?;
        Ok(self
            .service
            .officers(&actor)
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn set_officer_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> anyhow::Result<Officer> {
        let id = OfficerId::parse(id).map_err(ApiError::from)?;
        let actor = self.actor(None).await?;
        let officer = if disabled {
            self.service.disable_officer(&actor, &id).await
        } else {
            self.service.enable_officer(&actor, &id).await
        };
        Ok(officer.map_err(ApiError::from)?)
    }

    pub(crate) async fn set_availability(
        &self,
        id: Option<&str>,
        availability: chatcore::Availability,
    ) -> anyhow::Result<Officer> {
        let id = match id {
            Some(id) => OfficerId::parse(id).map_err(ApiError::from)?,
            None => self.acting_officer("`officer availability` without --officer")?,
        };
        let actor = self.actor(None).await?;
        let officer = self
            .service
            .set_availability(&actor, &id, availability)
            .await;
        Ok(officer.map_err(ApiError::from)?)
    }

    pub(crate) async fn set_capacity(
        &self,
        id: &str,
        capacity: Option<u32>,
    ) -> anyhow::Result<Officer> {
        let id = OfficerId::parse(id).map_err(ApiError::from)?;
        let actor = self.actor(None).await?;
        let officer = self.service.set_capacity(&actor, &id, capacity).await;
        Ok(officer.map_err(ApiError::from)?)
    }

    pub(crate) async fn officer_login(
        &self,
        id: &str,
        password: Option<String>,
    ) -> anyhow::Result<OfficerSession> {
        Ok(self
            .service
            .officer_login(id, password.as_deref())
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn customer_login(
        &self,
        id: &str,
        officer: Option<String>,
        signature: Option<String>,
    ) -> anyhow::Result<CustomerSession> {
        let customer_id = CustomerId::parse(id).map_err(ApiError::from)?;
        let officer_id = officer
            .map(OfficerId::parse)
            .transpose()
            .map_err(ApiError::from)?;
        Ok(self
            .service
            .customer_login(chatcore::CustomerLogin {
                customer_id,
                officer_id,
                signature,
            })
            .await
            .map_err(ApiError::from)?)
    }

    /// Local mode has no customer secret, so the engine refuses every identity token
    /// (`invalid_identity`); it is here so that the command means the same in both modes.
    pub(crate) async fn customer_login_with_identity(
        &self,
        identity_token: &str,
    ) -> anyhow::Result<CustomerSession> {
        Ok(self
            .service
            .customer_login_with_identity(identity_token)
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn queue(&self) -> anyhow::Result<Vec<Chat>> {
        let actor = self.actor(None).await?;
        Ok(self.service.queue(&actor).await.map_err(ApiError::from)?)
    }

    pub(crate) async fn officer_chats(
        &self,
        officer: Option<&str>,
        filter: ChatsFilter,
    ) -> anyhow::Result<Vec<Chat>> {
        let officer = match officer {
            Some(id) => OfficerId::parse(id).map_err(ApiError::from)?,
            None => self.acting_officer("`chats` without an OFFICER")?,
        };
        let actor = self.actor(None).await?;
        Ok(self
            .service
            .officer_chats(&actor, &officer, filter)
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn customer_chats(&self, customer: Option<&str>) -> anyhow::Result<Vec<Chat>> {
        let customer = match (customer, &self.actor) {
            (Some(id), _) => CustomerId::parse(id).map_err(ApiError::from)?,
            (None, LocalActor::Customer(id)) => id.clone(),
            (None, _) => {
                return Err(ApiError::usage(
                    "`customer chats` in local mode needs an ID, or --as customer:ID",
                )
                .into());
            }
        };
        let actor = self.actor(None).await?;
        Ok(self
            .service
            .customer_chats(&actor, &customer)
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn claim(&self, chat: &str) -> anyhow::Result<Chat> {
        let chat = ChatId::parse(chat).map_err(ApiError::from)?;
        let officer = self.acting_officer("`claim`")?;
        let actor = self.actor(Some(chat)).await?;
        Ok(self
            .service
            .claim(&actor, &officer, chat)
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn resolve(&self, chat: &str) -> anyhow::Result<Chat> {
        let chat = ChatId::parse(chat).map_err(ApiError::from)?;
        let actor = self.actor(Some(chat)).await?;
        Ok(self
            .service
            .resolve(&actor, chat)
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn release(&self, chat: &str) -> anyhow::Result<Chat> {
        let chat = ChatId::parse(chat).map_err(ApiError::from)?;
        let actor = self.actor(Some(chat)).await?;
        Ok(self
            .service
            .release(&actor, chat)
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn transfer(&self, chat: &str, to: &str) -> anyhow::Result<Chat> {
        let chat = ChatId::parse(chat).map_err(ApiError::from)?;
        let to = OfficerId::parse(to).map_err(ApiError::from)?;
        let actor = self.actor(Some(chat)).await?;
        Ok(self
            .service
            .transfer(&actor, chat, &to)
            .await
            .map_err(ApiError::from)?)
    }

    /// Whom the chat goes to when `officer` is `None` (the acting officer; the admin must
    /// name one) is the engine's answer, as on a server.
    pub(crate) async fn reopen(&self, chat: &str, officer: Option<&str>) -> anyhow::Result<Chat> {
        let chat = ChatId::parse(chat).map_err(ApiError::from)?;
        let officer = officer
            .map(OfficerId::parse)
            .transpose()
            .map_err(ApiError::from)?;
        let actor = self.actor(Some(chat)).await?;
        Ok(self
            .service
            .reopen(&actor, chat, officer.as_ref())
            .await
            .map_err(ApiError::from)?)
    }

    pub(crate) async fn send(
        &self,
        chat: &str,
        content: String,
        client_id: Option<String>,
    ) -> anyhow::Result<Sent> {
        let chat = ChatId::parse(chat).map_err(ApiError::from)?;
        let actor = self.actor(Some(chat)).await?;
        let request = SendMessage {
            content,
            client_message_id: client_id,
            ..SendMessage::default()
        };
        let sent = self
            .service
            .send_message(&actor, chat, request)
            .await
            .map_err(ApiError::from)?;
        Ok(Sent {
            message: sent.message,
            created: sent.created,
        })
    }

    pub(crate) async fn attach(&self, chat: &str, file: Outgoing) -> anyhow::Result<Sent> {
        let chat = ChatId::parse(chat).map_err(ApiError::from)?;
        let actor = self.actor(Some(chat)).await?;
        let upload = chatcore::Upload {
            name: file.name,
            content_type: file.content_type,
            length: Some(file.length),
            client_message_id: file.client_id,
        };
        let sent = self
            .service
            .send_attachment(&actor, chat, upload, file.body)
            .await
            .map_err(ApiError::from)?;
        Ok(Sent {
            message: sent.message,
            created: sent.created,
        })
    }

    pub(crate) async fn download(&self, id: &str) -> anyhow::Result<Incoming> {
        let id = chatcore::AttachmentId::parse(id).map_err(ApiError::from)?;
        let actor = self.actor(None).await?;
        let readable = self
            .service
            .attachment(&actor, id)
            .await
            .map_err(ApiError::from)?;
        let read = self
            .service
            .open_attachment(&readable, None)
            .await
            .map_err(ApiError::from)?;
        let file = readable.attachment;
        Ok(Incoming {
            name: file.name,
            content_type: Some(file.content_type),
            size: Some(file.size),
            sha256: Some(file.sha256.to_hex()),
            body: read.body,
        })
    }

    pub(crate) async fn messages(&self, chat: &str, page: Page) -> anyhow::Result<Vec<Message>> {
        let chat = ChatId::parse(chat).map_err(ApiError::from)?;
        let actor = self.actor(Some(chat)).await?;
        let page = MessagePage {
            after: page.after,
            before: page.before,
            limit: page.limit,
        };
        Ok(self
            .service
            .messages(&actor, chat, page)
            .await
            .map_err(ApiError::from)?)
    }

    /// The `--as` identity as the engine sees it. A customer acts on a chat they name,
    /// so here they are only their id.
    pub(crate) async fn me(&self) -> anyhow::Result<chatcore::Me> {
        if let LocalActor::Customer(customer) = &self.actor {
            return Ok(chatcore::Me {
                role: "customer".into(),
                subject: customer.to_string(),
                officer: None,
            });
        }
        let actor = self.actor(None).await?;
        Ok(self.service.me(&actor).await.map_err(ApiError::from)?)
    }

    pub(crate) async fn status(&self) -> anyhow::Result<Status> {
        self.service.health().await.map_err(ApiError::from)?;
        // Counts are read as the administrator whatever --as says: status describes the
        // database, not one identity's view of it.
        let admin = Actor::Admin;
        let counts = self
            .service
            .counts(&admin)
            .await
            .map_err(ApiError::from)
            .context("counting officers and chats")?;
        let (role, subject) = match &self.actor {
            LocalActor::Admin => ("admin", "admin".to_string()),
            LocalActor::Officer(id) => ("officer", id.to_string()),
            LocalActor::Customer(id) => ("customer", id.to_string()),
        };
        let (db, postgres, schema_version) = match &self.database {
            Database::Sqlite(path) => (
                Some(path.display().to_string()),
                None,
                chatcore::store::SQLITE_SCHEMA_VERSION,
            ),
            Database::Postgres { target, .. } => {
                (None, Some(target.clone()), chat_postgres::PG_SCHEMA_VERSION)
            }
        };
        Ok(Status {
            mode: "local",
            db,
            postgres,
            health: "ok",
            schema_version: Some(schema_version),
            officers: Some(counts.officers),
            pending_chats: Some(counts.pending_chats),
            assigned_chats: Some(counts.assigned_chats),
            role: Some(role.to_string()),
            subject: Some(subject),
            ..Status::default()
        })
    }

    /// Flushes the events of this run to the other nodes (PostgreSQL), then closes the
    /// store. Returns a warning for the user when some events did not leave: the writes
    /// are stored, but connected clients see them only on their next rejoin or read.
    pub(crate) async fn close(self) -> anyhow::Result<Option<String>> {
        let warning = match &self.database {
            Database::Sqlite(_) => None,
            Database::Postgres { bus, .. } => match bus.flush(FLUSH_TIMEOUT).await {
                Some(0) => None,
                lost => Some(format!(
                    "{} of this run not sent to the chat-http nodes; what was written is \
                     stored, and their clients see it when they rejoin or read",
                    match lost {
                        Some(n) => format!("{n} event(s)"),
                        None => "some events".to_string(),
                    }
                )),
            },
        };
        self.service
            .close()
            .await
            .map_err(ApiError::from)
            .context("closing the database")?;
        Ok(warning)
    }
}
