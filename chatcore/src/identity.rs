//! Who is acting: the [`Actor`] every service operation takes. Transports obtain one from a
//! bearer token with [`crate::ChatService::authenticate`]; embedders that authenticate
//! users themselves may construct one directly.

use crate::ids::{ChatId, CustomerId, OfficerId};
use crate::model::Timestamp;

/// The identity on whose behalf an operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// No credentials (allowed only where the contract says "anyone").
    Anonymous,
    /// The operator, holding the configured admin token.
    Admin,
    /// A logged-in officer.
    Officer(OfficerId),
    /// A logged-in customer. Their rights cover every chat of theirs (reading) and the
    /// open one (writing); `chat_id` is the chat their login answered with.
    Customer {
        /// The customer.
        customer_id: CustomerId,
        /// The chat their login answered with.
        chat_id: ChatId,
    },
}

impl Actor {
    /// The role's name as the contract spells it (`admin`, `officer`, `customer`,
    /// `anonymous`).
    pub fn role(&self) -> &'static str {
        match self {
            Actor::Anonymous => "anonymous",
            Actor::Admin => "admin",
            Actor::Officer(_) => "officer",
            Actor::Customer { .. } => "customer",
        }
    }

    /// The subject's id: the officer's or the customer's id, `admin` for the operator and
    /// an empty string for an anonymous caller.
    pub fn subject(&self) -> &str {
        match self {
            Actor::Anonymous => "",
            Actor::Admin => "admin",
            Actor::Officer(id) => id.as_str(),
            Actor::Customer { customer_id, .. } => customer_id.as_str(),
        }
    }
}

/// The result of authenticating a bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who the token belongs to.
    pub actor: Actor,
    /// When the token stops working; `None` for the admin token, which does not expire.
    pub expires_at: Option<Timestamp>,
}
