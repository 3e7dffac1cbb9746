//! Who may do what: every authorization rule of the contract, in one place. Functions
//! here are pure (they look only at the actor and the chat); the service calls them
//! before touching the store.

use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::{ChatId, CustomerId, OfficerId};
use crate::model::{Chat, SenderType};

/// Refuses anonymous callers with 401 and everyone else with 403.
fn refuse(actor: &Actor, why: &str) -> Error {
    match actor {
        Actor::Anonymous => Error::Unauthorized,
        _ => Error::forbidden(why),
    }
}

/// Creating officers: the admin, or anyone when the server runs in open mode.
pub(crate) fn create_officer(actor: &Actor, open_mode: bool) -> Result<()> {
    if open_mode || matches!(actor, Actor::Admin) {
        Ok(())
    } else {
        Err(refuse(actor, "only the administrator may create officers"))
    }
}

/// Listing officers: the admin and officers.
pub(crate) fn list_officers(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin | Actor::Officer(_) => Ok(()),
        _ => Err(refuse(actor, "only officers may list officers")),
    }
}

/// Reading the queue: officers (and the admin, who may read everything).
pub(crate) fn read_queue(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin | Actor::Officer(_) => Ok(()),
        _ => Err(refuse(actor, "only officers may read the queue")),
    }
}

/// Counting officers and chats (status screens): officers and the admin.
pub(crate) fn read_counts(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin | Actor::Officer(_) => Ok(()),
        _ => Err(refuse(actor, "only officers may count officers and chats")),
    }
}

/// Subscribing to the queue's events: officers only.
pub(crate) fn watch_queue(actor: &Actor) -> Result<&OfficerId> {
    match actor {
        Actor::Officer(id) => Ok(id),
        _ => Err(refuse(actor, "only officers may join the officers room")),
    }
}

/// An officer's own events (chats assigned to them): officers only.
pub(crate) fn watch_officer(actor: &Actor) -> Result<&OfficerId> {
    match actor {
        Actor::Officer(id) => Ok(id),
        _ => Err(refuse(actor, "only officers have officer events")),
    }
}

/// A trusted caller acting as a customer without a token (`ChatService::act_as_customer`):
/// only on a chat of that customer. The chat it names is their identity's chat.
pub(crate) fn act_as_customer(customer: &CustomerId, chat: Option<&Chat>) -> Result<ChatId> {
    match chat {
        Some(chat) if chat.customer_id == *customer => Ok(chat.id),
        Some(chat) => Err(Error::forbidden(format!(
            "chat {} is not customer {customer}'s chat",
            chat.id
        ))),
        None => Err(Error::forbidden(
            "a customer may act only on their own chat: name it",
        )),
    }
}

/// Looking a chat up by id, before anything is read: anyone identified, but a customer
/// only their own chat, refused before the lookup so that 403 and 404 cannot tell them
/// which other chat ids exist. Whether the chat found may be read is [`read_chat`].
pub(crate) fn look_up_chat(actor: &Actor, chat: ChatId) -> Result<()> {
    match actor {
        Actor::Anonymous => Err(Error::Unauthorized),
        Actor::Customer { chat_id, .. } if *chat_id != chat => {
            Err(Error::forbidden("customers may use only their own chat"))
        }
        _ => Ok(()),
    }
}

/// Reading an officer's chats: that officer (and the admin).
pub(crate) fn read_officer_chats(actor: &Actor, officer: &OfficerId) -> Result<()> {
    match actor {
        Actor::Admin => Ok(()),
        Actor::Officer(me) if me == officer => Ok(()),
        _ => Err(refuse(actor, "officers may list only their own chats")),
    }
}

/// Claiming for `officer`: that officer only.
pub(crate) fn claim(actor: &Actor, officer: &OfficerId) -> Result<()> {
    match actor {
        Actor::Officer(me) if me == officer => Ok(()),
        _ => Err(refuse(
            actor,
            "officers may claim chats only for themselves",
        )),
    }
}

/// How long a right to read a chat holds once [`read_chat`] has granted it. A feed that
/// delivers a chat in real time asks again whenever the answer may have changed: on every
/// change of the chat, and, for a right that holds only while the chat is pending, before
/// each message it hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadRight {
    /// For as long as the session lives: the admin, the chat's customer, and its
    /// assigned officer (a claim is final).
    Lasting,
    /// Only while the chat is pending: any officer may read the chats in the queue.
    WhilePending,
}

/// Reading a chat and its messages: its customer, its assigned officer, any officer while
/// it is pending, and the admin.
pub(crate) fn read_chat(actor: &Actor, chat: &Chat) -> Result<ReadRight> {
    let right = match actor {
        Actor::Admin => Some(ReadRight::Lasting),
        Actor::Customer { chat_id, .. } => (*chat_id == chat.id).then_some(ReadRight::Lasting),
        Actor::Officer(me) => match &chat.assigned_officer_id {
            None => Some(ReadRight::WhilePending),
            Some(owner) => (owner == me).then_some(ReadRight::Lasting),
        },
        Actor::Anonymous => None,
    };
    right.ok_or_else(|| refuse(actor, "you may not read this chat"))
}

/// Disabling and enabling officers: the admin only.
pub(crate) fn manage_officers(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin => Ok(()),
        _ => Err(refuse(
            actor,
            "only the administrator may disable or enable officers",
        )),
    }
}

/// Writing to a chat: its customer or its assigned officer. Returns the sender identity
/// that the message will carry, which always comes from the actor.
pub(crate) fn write_chat(actor: &Actor, chat: &Chat) -> Result<(SenderType, String)> {
    match actor {
        Actor::Customer {
            chat_id,
            customer_id,
        } if *chat_id == chat.id => Ok((SenderType::Customer, customer_id.to_string())),
        Actor::Officer(me) if chat.assigned_officer_id.as_ref() == Some(me) => {
            Ok((SenderType::Officer, me.to_string()))
        }
        Actor::Officer(_) if chat.assigned_officer_id.is_none() => {
            Err(Error::forbidden("claim the chat before writing to it"))
        }
        _ => Err(refuse(actor, "you may not write to this chat")),
    }
}

/// `senderType`/`senderId` sent by a client are accepted only when they match the token.
pub(crate) fn claimed_sender(
    claimed_type: Option<&str>,
    claimed_id: Option<&str>,
    actual: &(SenderType, String),
) -> Result<()> {
    if let Some(t) = claimed_type {
        if t != actual.0.as_str() {
            return Err(Error::forbidden(
                "senderType does not match your credentials",
            ));
        }
    }
    if let Some(id) = claimed_id {
        if id != actual.1 {
            return Err(Error::forbidden("senderId does not match your credentials"));
        }
    }
    Ok(())
}
