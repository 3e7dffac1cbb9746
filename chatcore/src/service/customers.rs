//! Customer login: check the host application's signature, get or create the customer's
//! one chat, issue a token scoped to that chat, and announce a new chat.

use serde::Serialize;

use super::ChatService;
use crate::bus::{Event, Topic};
use crate::credentials;
use crate::error::{Error, Result};
use crate::ids::{ChatId, CustomerId, OfficerId};
use crate::model::{Chat, ChatStatus, Timestamp};
use crate::store::{NewChat, SessionSubject};

/// Input of [`ChatService::customer_login`].
#[derive(Debug, Clone)]
pub struct CustomerLogin {
    /// The customer, as the host application knows them.
    pub customer_id: CustomerId,
    /// Assign a new chat to this officer instead of queueing it. An existing chat keeps
    /// its state.
    pub officer_id: Option<OfficerId>,
    /// Lowercase hex HMAC-SHA256(secret, customerId); required when the service has a
    /// customer secret, ignored otherwise.
    pub signature: Option<String>,
}

/// Result of a customer login.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSession {
    /// The customer's chat.
    pub chat: Chat,
    /// A bearer token scoped to that chat.
    pub token: String,
    /// Whether this login created the chat.
    pub created: bool,
    /// When the token expires.
    pub expires_at: Timestamp,
}

impl ChatService {
    /// Logs a customer in (anyone may call it; the signature proves the host application
    /// vouches for the customer id when a secret is configured). Concurrent logins of one
    /// customer yield one chat.
    pub async fn customer_login(&self, login: CustomerLogin) -> Result<CustomerSession> {
        if let Some(secret) = &self.config().customer_secret {
            let signature = login.signature.as_deref().unwrap_or_default();
            if !credentials::verify_customer_signature(
                secret,
                login.customer_id.as_str(),
                signature,
            ) {
                return Err(Error::InvalidSignature);
            }
        }
        if let Some(officer) = &login.officer_id {
            if self.inner.store.officer(officer).await?.is_none() {
                return Err(Error::OfficerNotFound);
            }
        }
        let new = NewChat {
            id: ChatId::new(),
            customer_id: login.customer_id.clone(),
            assigned_officer_id: login.officer_id.clone(),
            created_at: self.now(),
        };
        let (chat, created) = self
            .ordered(new.id, move |this| async move {
                let (chat, created) = this.inner.store.get_or_create_chat(&new).await?;
                if created {
                    this.announce_new_chat(&chat);
                }
                Ok((chat, created))
            })
            .await?;
        let (token, expires_at) = self
            .issue_session(
                SessionSubject::Customer {
                    customer_id: chat.customer_id.clone(),
                    chat_id: chat.id,
                },
                self.config().customer_session_ttl,
            )
            .await?;
        Ok(CustomerSession {
            chat,
            token,
            created,
            expires_at,
        })
    }

    fn announce_new_chat(&self, chat: &Chat) {
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
