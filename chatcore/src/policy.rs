//! Who may do what: every authorization rule of the contract, in one place. Functions
//! here are pure (they look only at the actor and the chat); the service calls them
//! before touching the store.

use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::{ChatId, CustomerId, OfficerId};
use crate::model::{Chat, ChatChange, ChatStatus, SenderType, SystemEvent};

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

/// What operators read (metrics, the desk report): the admin only, open mode or not
/// (an open-mode server has no admin; `--metrics-bind` serves metrics without a token).
pub(crate) fn operate(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin => Ok(()),
        _ => Err(refuse(
            actor,
            "only the administrator may read operators' figures",
        )),
    }
}

/// Listing officers: the admin and officers.
pub(crate) fn list_officers(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin | Actor::Officer(_) => Ok(()),
        _ => Err(refuse(actor, "only officers may list officers")),
    }
}

/// Reading a customer's history of chats: that customer, officers (context for the chat
/// they work on) and the admin.
pub(crate) fn read_customer_chats(actor: &Actor, customer: &CustomerId) -> Result<()> {
    match actor {
        Actor::Admin | Actor::Officer(_) => Ok(()),
        Actor::Customer { customer_id, .. } if customer_id == customer => Ok(()),
        _ => Err(refuse(actor, "customers may list only their own chats")),
    }
}

/// Asking who a token is: anyone identified.
pub(crate) fn who_am_i(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Anonymous => Err(Error::Unauthorized),
        _ => Ok(()),
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

/// Subscribing to the queue's events (`officers:all`): officers, and the admin, who may
/// read everything these events carry (the queue, every chat, every officer) by REST
/// already, so that an admin console stays live.
pub(crate) fn watch_queue(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin | Actor::Officer(_) => Ok(()),
        _ => Err(refuse(
            actor,
            "only officers and the administrator may join the officers room",
        )),
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
/// only on a chat of that customer (the one named, else their newest). That chat is their
/// identity's chat.
pub(crate) fn act_as_customer(customer: &CustomerId, chat: Option<&Chat>) -> Result<ChatId> {
    match chat {
        Some(chat) if chat.customer_id == *customer => Ok(chat.id),
        Some(chat) => Err(Error::forbidden(format!(
            "chat {} is not customer {customer}'s chat",
            chat.id
        ))),
        None => Err(Error::forbidden(format!(
            "customer {customer} has no chat to act on"
        ))),
    }
}

/// Looking a chat up by id, before anything is read: anyone identified. Whether the chat
/// found may be read is [`read_chat`]; a chat that is not found is [`chat_missing`].
pub(crate) fn look_up_chat(actor: &Actor, _chat: ChatId) -> Result<()> {
    match actor {
        Actor::Anonymous => Err(Error::Unauthorized),
        _ => Ok(()),
    }
}

/// Looking an attachment up by id, before anything is read: anyone identified. Whether
/// it may be read is [`read_chat`] on its chat.
pub(crate) fn look_up_attachment(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Anonymous => Err(Error::Unauthorized),
        _ => Ok(()),
    }
}

/// The answer for a chat id that names no chat: 404 `chat_not_found`, except to a
/// customer, who is told what another customer's chat would tell them (403), so that
/// they cannot learn which chat ids exist.
pub(crate) fn chat_missing(actor: &Actor) -> Error {
    match actor {
        Actor::Customer { .. } => Error::forbidden("customers may use only their own chats"),
        _ => Error::ChatNotFound,
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
        // A customer token is scoped to the customer: every chat of theirs.
        Actor::Customer { customer_id, .. } => {
            (*customer_id == chat.customer_id).then_some(ReadRight::Lasting)
        }
        Actor::Officer(me) => match (chat.status, &chat.assigned_officer_id) {
            (ChatStatus::Pending, _) => Some(ReadRight::WhilePending),
            (_, Some(owner)) => (owner == me).then_some(ReadRight::Lasting),
            (_, None) => None,
        },
        Actor::Anonymous => None,
    };
    right.ok_or_else(|| refuse(actor, "you may not read this chat"))
}

/// Setting an officer's availability: that officer and the admin.
pub(crate) fn set_availability(actor: &Actor, officer: &OfficerId) -> Result<()> {
    match actor {
        Actor::Admin => Ok(()),
        Actor::Officer(me) if me == officer => Ok(()),
        _ => Err(refuse(actor, "officers set their own availability only")),
    }
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

/// Webhooks (their endpoints, secrets and deliveries): the admin only. In open mode
/// too: a webhook receives every conversation, so no token that anyone can get may
/// point one somewhere.
pub(crate) fn manage_webhooks(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin => Ok(()),
        _ => Err(refuse(actor, "only the administrator may manage webhooks")),
    }
}

/// Who the actor writes as, whatever the chat: customers and officers (the admin writes
/// nothing).
pub(crate) fn sender(actor: &Actor) -> Option<(SenderType, String)> {
    match actor {
        Actor::Customer { customer_id, .. } => {
            Some((SenderType::Customer, customer_id.to_string()))
        }
        Actor::Officer(me) => Some((SenderType::Officer, me.to_string())),
        _ => None,
    }
}

/// Moving a read mark: the chat's customer (any chat of theirs) or its officer (while
/// it is theirs, open or ended). Returns the side and the reader's id.
pub(crate) fn mark_read(actor: &Actor, chat: &Chat) -> Result<(SenderType, String)> {
    match actor {
        Actor::Customer { customer_id, .. } if *customer_id == chat.customer_id => {
            Ok((SenderType::Customer, customer_id.to_string()))
        }
        Actor::Officer(me) if chat.assigned_officer_id.as_ref() == Some(me) => {
            Ok((SenderType::Officer, me.to_string()))
        }
        _ => Err(refuse(
            actor,
            "only the chat's customer and its officer have read marks",
        )),
    }
}

/// Writing to a chat: its customer or its assigned officer. Returns the sender identity
/// that the message will carry, which always comes from the actor.
pub(crate) fn write_chat(actor: &Actor, chat: &Chat) -> Result<(SenderType, String)> {
    let sender = match actor {
        // Their open chat (at most one): a resolved one is refused below.
        Actor::Customer { customer_id, .. } if *customer_id == chat.customer_id => {
            Ok((SenderType::Customer, customer_id.to_string()))
        }
        Actor::Officer(me) if chat.assigned_officer_id.as_ref() == Some(me) => {
            Ok((SenderType::Officer, me.to_string()))
        }
        Actor::Officer(_) if chat.status == ChatStatus::Pending => {
            Err(Error::forbidden("claim the chat before writing to it"))
        }
        _ => Err(refuse(actor, "you may not write to this chat")),
    }?;
    // Its customer and its officer learn that it ended; nobody writes to it any more.
    if chat.status == ChatStatus::Resolved {
        return Err(Error::ChatResolved);
    }
    Ok(sender)
}

/// A change of a chat's state that the rules allow: what the chat becomes, and what its
/// system entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) status: ChatStatus,
    pub(crate) owner: Option<OfficerId>,
    pub(crate) event: SystemEvent,
}

/// What the rules make of a requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Apply this change.
    Change(Plan),
    /// Nothing to do: the chat is already as asked (answered with the chat, 200).
    Unchanged,
}

fn plan(status: ChatStatus, owner: Option<OfficerId>, event: SystemEvent) -> Decision {
    Decision::Change(Plan {
        status,
        owner,
        event,
    })
}

fn event(
    kind: ChatChange,
    officer_id: Option<&OfficerId>,
    from_officer_id: Option<&OfficerId>,
) -> SystemEvent {
    SystemEvent {
        kind,
        officer_id: officer_id.cloned(),
        from_officer_id: from_officer_id.cloned(),
        // Named by the service when it writes the entry.
        officer_name: None,
        from_officer_name: None,
    }
}

/// Resolving: its assigned officer, its customer (also while pending), the admin. A
/// resolved chat is answered as it is. An officer resolving a pending chat is told it is
/// not theirs to end (`not_assigned`): they take it first.
pub(crate) fn resolve(actor: &Actor, chat: &Chat) -> Result<Decision> {
    let owner = chat.assigned_officer_id.as_ref();
    let allowed = match actor {
        Actor::Admin => true,
        Actor::Customer { customer_id, .. } => *customer_id == chat.customer_id,
        Actor::Officer(_) if chat.status == ChatStatus::Pending => {
            return Err(Error::NotAssigned);
        }
        Actor::Officer(me) => owner == Some(me),
        Actor::Anonymous => false,
    };
    if !allowed {
        return Err(refuse(
            actor,
            "only the chat's officer or customer may end it",
        ));
    }
    if chat.status == ChatStatus::Resolved {
        return Ok(Decision::Unchanged);
    }
    Ok(plan(
        ChatStatus::Resolved,
        chat.assigned_officer_id.clone(),
        event(ChatChange::Resolved, owner, None),
    ))
}

/// Claiming a chat for `officer` (the actor: [`claim`]): a pending chat becomes theirs,
/// one they own already is answered as it is (200), another officer's is
/// `already_assigned` and a resolved one `chat_resolved`.
pub(crate) fn take(actor: &Actor, chat: &Chat, officer: &OfficerId) -> Result<Decision> {
    claim(actor, officer)?;
    match (chat.status, chat.assigned_officer_id.as_ref()) {
        (ChatStatus::Pending, _) => Ok(plan(
            ChatStatus::Assigned,
            Some(officer.clone()),
            event(ChatChange::Claimed, Some(officer), None),
        )),
        (ChatStatus::Resolved, _) => Err(Error::ChatResolved),
        (ChatStatus::Assigned, Some(owner)) if owner == officer => Ok(Decision::Unchanged),
        (ChatStatus::Assigned, Some(owner)) => Err(Error::AlreadyAssigned(owner.clone())),
        (ChatStatus::Assigned, None) => Err(Error::internal("an assigned chat without an officer")),
    }
}

/// Who may hand an assigned chat on (release, transfer): its officer and the admin. The
/// officer it is handed on from.
fn hand_on(actor: &Actor, chat: &Chat) -> Result<OfficerId> {
    let owner = chat.assigned_officer_id.as_ref();
    match actor {
        Actor::Admin => {}
        Actor::Officer(me) if chat.status == ChatStatus::Pending || owner == Some(me) => {}
        _ => return Err(refuse(actor, "only the chat's officer may hand it on")),
    }
    match chat.status {
        ChatStatus::Pending => Err(Error::NotAssigned),
        ChatStatus::Resolved => Err(Error::ChatResolved),
        _ => owner
            .cloned()
            .ok_or_else(|| Error::internal("an assigned chat without an officer")),
    }
}

/// Handing a chat to an officer at all (transfer): officers and the admin, asked before
/// the officer named is looked up, so that nobody else can probe which officers exist.
pub(crate) fn hand_to_officers(actor: &Actor) -> Result<()> {
    match actor {
        Actor::Admin | Actor::Officer(_) => Ok(()),
        _ => Err(refuse(actor, "only the chat's officer may hand it on")),
    }
}

/// Releasing: the chat goes back to the queue, at its place by creation time.
pub(crate) fn release(actor: &Actor, chat: &Chat) -> Result<Decision> {
    let owner = hand_on(actor, chat)?;
    Ok(plan(
        ChatStatus::Pending,
        None,
        event(ChatChange::Released, Some(&owner), None),
    ))
}

/// Transferring to `to` (who exists and is enabled: the service checked). To its own
/// officer it changes nothing.
pub(crate) fn transfer(actor: &Actor, chat: &Chat, to: &OfficerId) -> Result<Decision> {
    let owner = hand_on(actor, chat)?;
    if owner == *to {
        return Ok(Decision::Unchanged);
    }
    Ok(plan(
        ChatStatus::Assigned,
        Some(to.clone()),
        event(ChatChange::Transferred, Some(to), Some(&owner)),
    ))
}

/// Reopening a resolved chat: an officer for themselves, the admin for the officer it
/// names. `officer` is whom it goes to (checked to exist and be enabled by the service).
pub(crate) fn reopen(actor: &Actor, chat: &Chat, officer: &OfficerId) -> Result<Decision> {
    match actor {
        Actor::Admin => {}
        Actor::Officer(me) if me == officer => {}
        Actor::Officer(_) => {
            return Err(Error::forbidden(
                "an officer reopens a chat for themselves only",
            ));
        }
        _ => return Err(refuse(actor, "only officers reopen chats")),
    }
    if chat.status != ChatStatus::Resolved {
        return Err(Error::NotResolved);
    }
    Ok(plan(
        ChatStatus::Assigned,
        Some(officer.clone()),
        event(ChatChange::Reopened, Some(officer), None),
    ))
}

/// Whom a reopen gives the chat to: the officer reopening it, or the officer the admin
/// names (the admin must name one).
pub(crate) fn reopen_for<'a>(
    actor: &'a Actor,
    named: Option<&'a OfficerId>,
) -> Result<&'a OfficerId> {
    match (actor, named) {
        (_, Some(officer)) => Ok(officer),
        (Actor::Officer(me), None) => Ok(me),
        (Actor::Admin, None) => Err(Error::InvalidField {
            name: "officerId",
            reason: "the administrator names the officer a reopened chat goes to".into(),
        }),
        _ => Err(refuse(actor, "only officers reopen chats")),
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
