//! Customer login: check the host application's proof of who the customer is (an
//! identity token, or the older HMAC signature), get the customer's open chat or create
//! a new one, issue a token scoped to the customer, and announce a new chat.
//!
//! Which officer a new chat goes to is the host application's to say, never the
//! customer's: on a server with a customer secret, an officer counts only as a claim of
//! a verified identity token. An officer id that names nobody leaves the chat in the
//! queue, answered exactly as a login naming no officer, so that logins cannot be used
//! to find out which officer ids exist.

use serde::{Deserialize, Serialize};

use super::ChatService;
use super::assign::OwnAttempt;
use crate::bus::{Event, Topic};
use crate::credentials;
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::{ChatId, CustomerId, OfficerId};
use crate::model::{Chat, ChatChange, ChatStatus, Timestamp};
use crate::policy;
use crate::store::{NewChat, SessionSubject};
use crate::text;

/// Input of [`ChatService::customer_login`].
#[derive(Debug, Clone)]
pub struct CustomerLogin {
    /// The customer, as the host application knows them.
    pub customer_id: CustomerId,
    /// Assign a new chat to this officer instead of queueing it (an existing chat keeps
    /// its state). Only without a customer secret: a secured service ignores it, since
    /// the signature does not cover it (use an identity token's `officerId` claim). An
    /// officer who does not exist, is disabled or has no room under their capacity
    /// leaves the chat in the queue.
    pub officer_id: Option<OfficerId>,
    /// Lowercase hex HMAC-SHA256(secret, customerId); required when the service has a
    /// customer secret, ignored otherwise. It never expires: prefer
    /// [`ChatService::customer_login_with_identity`].
    pub signature: Option<String>,
}

/// Result of a customer login: the contract's answer to `POST /api/customers/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"chat": {"id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "customerId": "cust-1", "customerName": null, "assignedOfficerId": "alice", "status": "assigned", "createdAt": "2026-11-24T11:17:19.120Z", "updatedAt": "2026-11-24T11:18:02.518Z", "resolvedAt": null, "lastSeq": 3, "customerLastReadSeq": 3, "officerLastReadSeq": 2, "lastMessage": null, "queuePosition": null}, "token": "5be1c0d6e1b7a4c3f8e5d2a1b0c9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1", "created": true, "expiresAt": "2026-11-24T23:17:19.120Z"}))
)]
pub struct CustomerSession {
    /// The customer's chat.
    pub chat: Chat,
    /// A bearer token scoped to the customer (every chat of theirs to read, the open one
    /// to write).
    pub token: String,
    /// Whether this login created the chat.
    pub created: bool,
    /// When the token expires.
    pub expires_at: Timestamp,
}

impl ChatService {
    /// The identity of a customer acting on their chat, for a trusted caller without a
    /// token (an administrator's tool on the database, a program embedding the engine).
    /// Without `chat`, their newest chat. [`Error::ChatNotFound`] when `chat` does not
    /// exist, [`Error::Forbidden`] when it is not theirs or they have none. Whatever the
    /// customer then does is checked by the same rules as with a token (which is scoped
    /// to the customer: every chat of theirs).
    pub async fn act_as_customer(
        &self,
        customer: &CustomerId,
        chat: Option<ChatId>,
    ) -> Result<Actor> {
        let found = match chat {
            Some(id) => Some(
                self.inner
                    .store
                    .chat(&id)
                    .await?
                    .ok_or(Error::ChatNotFound)?,
            ),
            None => self
                .inner
                .store
                .customer_chats(customer, 1)
                .await?
                .into_iter()
                .next(),
        };
        let chat_id = policy::act_as_customer(customer, found.as_ref())?;
        Ok(Actor::Customer {
            customer_id: customer.clone(),
            chat_id,
        })
    }

    /// Logs a customer in by id (anyone may call it; the signature proves the host
    /// application vouches for the customer id when a secret is configured). Concurrent
    /// logins of one customer yield one chat.
    pub async fn customer_login(&self, login: CustomerLogin) -> Result<CustomerSession> {
        let mut officer = login.officer_id;
        if let Some(secret) = &self.config().customer_secret {
            let signature = login.signature.as_deref().unwrap_or_default();
            if !credentials::verify_customer_signature(
                secret,
                login.customer_id.as_str(),
                signature,
            ) {
                return Err(Error::InvalidSignature);
            }
            if let Some(ignored) = officer.take() {
                tracing::debug!(
                    customer = %login.customer_id,
                    officer = %ignored,
                    "officerId ignored: on a secured server only an identity token names one"
                );
            }
        }
        self.start_chat(login.customer_id, officer, None).await
    }

    /// Logs a customer in with an identity token: a JWT the host application signed with
    /// HS256 and the customer secret, whose `sub` is the customer id and whose `exp`
    /// has not passed (30 s of leeway). Its optional `officerId` claim routes a new chat
    /// to that officer, and its optional `name` claim becomes the chat's customer name
    /// (validated like an officer's display name: 422 `invalid_field` naming `name`).
    ///
    /// [`Error::InvalidIdentity`] when the token does not verify or has expired, or the
    /// service has no customer secret to check it with.
    pub async fn customer_login_with_identity(
        &self,
        identity_token: &str,
    ) -> Result<CustomerSession> {
        let Some(secret) = &self.config().customer_secret else {
            return Err(Error::InvalidIdentity(
                "this server has no customer secret to verify identity tokens with",
            ));
        };
        let claims = credentials::verify_identity_token(secret, identity_token, self.now())?;
        let customer_id = CustomerId::parse(claims.sub)?;
        let officer = claims.officer_id.map(OfficerId::parse).transpose()?;
        let name = text::shown_name("name", claims.name.as_deref())?;
        self.start_chat(customer_id, officer, name).await
    }

    /// Gets or creates the customer's chat (for `officer` if they exist, are enabled and
    /// have room under their capacity, else in the queue), stores the name when one is
    /// given, and issues the customer's token.
    async fn start_chat(
        &self,
        customer_id: CustomerId,
        officer: Option<OfficerId>,
        customer_name: Option<String>,
    ) -> Result<CustomerSession> {
        let officer = match officer {
            Some(id) => {
                // A disabled officer is as good as none: the chat would wait on nobody.
                let usable = self
                    .inner
                    .store
                    .officer(&id)
                    .await?
                    .is_some_and(|o| !o.officer.disabled);
                if !usable {
                    tracing::warn!(
                        customer = %customer_id,
                        officer = %id,
                        "customer login names an officer who does not exist or is disabled; \
                         a new chat waits in the queue"
                    );
                }
                usable.then_some(id)
            }
            None => None,
        };
        let named = officer.is_some();
        let new = NewChat {
            id: ChatId::new(),
            customer_id,
            customer_name,
            assigned_officer_id: officer,
            default_capacity: self.config().officer_capacity,
            created_at: self.now(),
        };
        let (chat, created) = self
            .ordered(new.id, move |this| async move {
                let (chat, created) = this.inner.store.get_or_create_chat(&new).await?;
                if created {
                    if named && chat.assigned_officer_id.is_none() {
                        tracing::info!(
                            customer = %chat.customer_id,
                            chat = %chat.id,
                            "the officer the login names has no room (capacity); \
                             the new chat waits in the queue"
                        );
                    }
                    this.announce_new_chat(&chat);
                }
                Ok((chat, created))
            })
            .await?;
        // The session does not wait for the routing (nor the routing for it): both
        // writes go to the store at once, and may share its commit.
        let session = self.issue_session(
            SessionSubject::Customer {
                customer_id: chat.customer_id.clone(),
                chat_id: chat.id,
            },
            self.config().customer_session_ttl,
        );
        let routed = async {
            let chat = match (created, chat.status) {
                (true, ChatStatus::Pending) => self.route_new_chat(chat).await?,
                (true, _) => {
                    let before = Chat {
                        status: ChatStatus::Pending,
                        assigned_officer_id: None,
                        ..chat.clone()
                    };
                    self.announce_loads(&before, &chat).await;
                    chat
                }
                (false, _) => chat,
            };
            self.placed(chat).await
        };
        let (chat, (token, expires_at)) = tokio::try_join!(routed, session)?;
        Ok(CustomerSession {
            chat,
            token,
            created,
            expires_at,
        })
    }

    /// A new pending chat in automatic mode: a round of assignment now, before the
    /// login answers, so that the answer shows the officer it went to.
    async fn route_new_chat(&self, chat: Chat) -> Result<Chat> {
        if self.config().assignment != super::Assignment::Auto {
            return Ok(chat);
        }
        match self.assign_if_room(&chat).await {
            Ok(OwnAttempt::Given(now)) => return Ok(now),
            // It waits its turn (a round runs when an officer has room), unless a round
            // gave it meanwhile.
            Ok(OwnAttempt::NoRoom) => {
                return Ok(self.inner.store.chat(&chat.id).await?.unwrap_or(chat));
            }
            Ok(OwnAttempt::ToRound) => {}
            Err(e) => {
                tracing::warn!(error = %e, chat = %chat.id, "automatic assignment failed");
                self.want_assignment();
                return Ok(chat);
            }
        }
        let given = match self.assign_waiting().await {
            Ok(given) => given,
            Err(e) => {
                // Still waiting, and stored: the desk's next round tries again.
                tracing::warn!(error = %e, chat = %chat.id, "automatic assignment failed");
                self.want_assignment();
                Vec::new()
            }
        };
        if let Some(mine) = given.into_iter().find(|c| c.id == chat.id) {
            return Ok(mine);
        }
        // Another round (the desk's, another node's) may have given it meanwhile.
        Ok(self.inner.store.chat(&chat.id).await?.unwrap_or(chat))
    }

    /// A new chat: `chat_updated` (`created` for the queue, `assigned` when it went
    /// straight to an officer) to `chat:<id>` and `officers:all`, then the v1 events:
    /// `queue_chat_created`, or `chat_assigned` to its officer. A creation writes no
    /// system entry: a new chat has none (`lastSeq` 0).
    fn announce_new_chat(&self, chat: &Chat) {
        self.inner.desk.saw(chat);
        let change = match chat.status {
            ChatStatus::Pending => ChatChange::Created,
            _ => ChatChange::Assigned,
        };
        let updated = Event::ChatUpdated {
            chat: chat.clone(),
            change,
        };
        self.publish(Topic::Chat(chat.id), updated.clone());
        self.publish(Topic::Officers, updated);
        match (&chat.assigned_officer_id, chat.status) {
            (Some(officer), _) => self.publish(
                Topic::Officer(officer.clone()),
                Event::ChatAssigned { chat: chat.clone() },
            ),
            (None, ChatStatus::Pending) => self.publish(
                Topic::Officers,
                Event::QueueChatCreated { chat: chat.clone() },
            ),
            (None, _) => {}
        }
    }
}
