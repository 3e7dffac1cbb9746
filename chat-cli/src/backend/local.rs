//! Local mode: every operation through `chatcore::ChatService` on a SQLite file.
//!
//! Local mode is trusted (whoever runs it holds the database file): it acts as the
//! administrator, or as the officer or customer named by `--as`, without a token. The
//! service still runs in secured mode (a random admin token nobody knows), so every rule
//! of chatcore applies exactly as on a secured server. Events of these writes reach only
//! this process's own bus: a server on the same file does not push them live.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chatcore::{
    Actor, Chat, ChatId, ChatService, CustomerId, Message, MessagePage, NewOfficer, Officer,
    OfficerId, SendMessage, ServiceConfig,
};

use super::{CustomerLogin, OfficerLogin, Page, Sent, Status};
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

/// The local backend.
#[derive(Debug)]
pub(crate) struct Local {
    service: ChatService,
    path: PathBuf,
    actor: LocalActor,
}

impl Local {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub(crate) fn open(path: &Path, actor: LocalActor) -> anyhow::Result<Self> {
        let mut config = ServiceConfig::default();
        // Secured mode with an admin token nobody will ever present: local mode acts as
        // Actor::Admin directly, and rules that depend on open mode (password-less logins,
        // anyone creating officers) stay off, as on a secured server.
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        config.admin_token = Some(secret.iter().map(|b| format!("{b:02x}")).collect());
        let service = ChatService::open_sqlite(path, config).map_err(|e| {
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
            path: path.to_path_buf(),
            actor,
        })
    }

    /// The engine's actor for an operation; `chat` is the chat it concerns, if any.
    ///
    /// A customer acts only on their own chat: it is looked up (as the administrator) and
    /// must belong to them. For operations without a chat, the customer gets an id of no
    /// chat at all, so chatcore's rules refuse whatever customers may not do.
    async fn actor(&self, chat: Option<ChatId>) -> anyhow::Result<Actor> {
        Ok(match &self.actor {
            LocalActor::Admin => Actor::Admin,
            LocalActor::Officer(id) => Actor::Officer(id.clone()),
            LocalActor::Customer(customer_id) => {
                let chat_id = match chat {
                    Some(chat) => {
                        let found = self
                            .service
                            .chat(&Actor::Admin, chat)
                            .await
                            .map_err(ApiError::from)?;
                        if found.customer_id != *customer_id {
                            return Err(ApiError::new(
                                ExitKind::Auth,
                                "forbidden",
                                format!("chat {chat} is not customer {customer_id}'s chat"),
                            )
                            .into());
                        }
                        chat
                    }
                    None => ChatId::new(),
                };
                Actor::Customer {
                    customer_id: customer_id.clone(),
                    chat_id,
                }
            }
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

    pub(crate) async fn officer_login(
        &self,
        id: &str,
        password: Option<String>,
    ) -> anyhow::Result<OfficerLogin> {
        let session = self
            .service
            .officer_login(id, password.as_deref())
            .await
            .map_err(ApiError::from)?;
        Ok(OfficerLogin {
            officer: session.officer,
            token: session.token,
            expires_at: Some(session.expires_at),
        })
    }

    pub(crate) async fn customer_login(
        &self,
        id: &str,
        officer: Option<String>,
        signature: Option<String>,
    ) -> anyhow::Result<CustomerLogin> {
        let customer_id = CustomerId::parse(id).map_err(ApiError::from)?;
        let officer_id = officer
            .map(OfficerId::parse)
            .transpose()
            .map_err(ApiError::from)?;
        let session = self
            .service
            .customer_login(chatcore::CustomerLogin {
                customer_id,
                officer_id,
                signature,
            })
            .await
            .map_err(ApiError::from)?;
        Ok(CustomerLogin {
            chat: session.chat,
            token: session.token,
            created: session.created,
            expires_at: Some(session.expires_at),
        })
    }

    pub(crate) async fn queue(&self) -> anyhow::Result<Vec<Chat>> {
        let actor = self.actor(None).await?;
        Ok(self.service.queue(&actor).await.map_err(ApiError::from)?)
    }

    pub(crate) async fn officer_chats(&self, officer: Option<&str>) -> anyhow::Result<Vec<Chat>> {
        let officer = match officer {
            Some(id) => OfficerId::parse(id).map_err(ApiError::from)?,
            None => self.acting_officer("`chats` without an OFFICER")?,
        };
        let actor = self.actor(None).await?;
        Ok(self
            .service
            .officer_chats(&actor, &officer)
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

    pub(crate) async fn status(&self) -> anyhow::Result<Status> {
        self.service.health().await.map_err(ApiError::from)?;
        // Counts are read as the administrator whatever --as says: status describes the
        // database, not one identity's view of it.
        let admin = Actor::Admin;
        let officers = self
            .service
            .officers(&admin)
            .await
            .map_err(ApiError::from)?;
        let pending = self.service.queue(&admin).await.map_err(ApiError::from)?;
        let mut assigned = 0;
        for officer in &officers {
            assigned += self
                .service
                .officer_chats(&admin, &officer.id)
                .await
                .map_err(ApiError::from)
                .with_context(|| format!("counting the chats of officer {}", officer.id))?
                .len();
        }
        let (role, subject) = match &self.actor {
            LocalActor::Admin => ("admin", "admin".to_string()),
            LocalActor::Officer(id) => ("officer", id.to_string()),
            LocalActor::Customer(id) => ("customer", id.to_string()),
        };
        Ok(Status {
            mode: "local",
            db: Some(self.path.display().to_string()),
            health: "ok",
            schema_version: Some(chatcore::store::SQLITE_SCHEMA_VERSION),
            officers: Some(officers.len()),
            pending_chats: Some(pending.len()),
            assigned_chats: Some(assigned),
            role: Some(role.to_string()),
            subject: Some(subject),
            ..Status::default()
        })
    }

    pub(crate) async fn close(self) -> anyhow::Result<()> {
        self.service
            .close()
            .await
            .map_err(ApiError::from)
            .context("closing the database")
    }
}
