//! The conversation lifecycle (contract version 2): resolve, release, transfer, reopen
//! (and the claim, in `claim.rs`, which is decided and stored the same way).
//! Each change is decided by `policy` on the chat as stored, then written by the store
//! with its system entry (the chat's next seq) in one transaction, and only if the chat
//! is still as it was seen: a change that loses a race to another is decided again on
//! the chat as it now is. Once stored, it is announced: the entry as `new_message` and
//! `chat_updated` to `chat:<id>`, `chat_updated` (and the v1 queue events when the chat
//! enters or leaves the queue) to `officers:all`, `chat_assigned` to a new owner and
//! `chat_unassigned` to the former one.

use super::ChatService;
use crate::bus::{Event, Topic};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::{ChatId, MessageId, OfficerId};
use crate::model::{Chat, ChatChange, ChatStatus, Message, SenderType, SystemEvent};
use crate::policy::{self, Decision};
use crate::store::{NewMessage, Transition, TransitionOutcome};

/// How many times a change is decided again after losing a race before giving up.
const MAX_RACES: usize = 8;

impl ChatService {
    /// Ends a chat: its assigned officer, its customer (also while it is pending) and
    /// the admin. A resolved chat is answered as it is. An officer resolving a pending
    /// chat gets [`Error::NotAssigned`].
    pub async fn resolve(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        self.change(actor, chat, None, |actor, chat, _| {
            policy::resolve(actor, chat)
        })
        .await
    }

    /// Puts an assigned chat back in the queue, at its place by creation time: its
    /// officer and the admin. [`Error::NotAssigned`] for a pending chat,
    /// [`Error::ChatResolved`] for a resolved one.
    pub async fn release(&self, actor: &Actor, chat: ChatId) -> Result<Chat> {
        self.change(actor, chat, None, |actor, chat, _| {
            policy::release(actor, chat)
        })
        .await
    }

    /// Hands an assigned chat to officer `to` (who must exist and be enabled): its
    /// officer and the admin.
    pub async fn transfer(&self, actor: &Actor, chat: ChatId, to: &OfficerId) -> Result<Chat> {
        policy::hand_to_officers(actor)?;
        self.officer_may_take(to).await?;
        self.change(actor, chat, Some(to.clone()), |actor, chat, to| {
            policy::transfer(actor, chat, to.expect("a transfer names its officer"))
        })
        .await
    }

    /// Opens a resolved chat again, assigned: an officer for themselves, the admin for
    /// the officer it names. [`Error::CustomerHasOpenChat`] when the customer has
    /// started another chat since.
    pub async fn reopen(
        &self,
        actor: &Actor,
        chat: ChatId,
        officer: Option<&OfficerId>,
    ) -> Result<Chat> {
        let officer = policy::reopen_for(actor, officer)?.clone();
        self.officer_may_take(&officer).await?;
        self.change(actor, chat, Some(officer), |actor, chat, officer| {
            policy::reopen(actor, chat, officer.expect("a reopen names its officer"))
        })
        .await
    }

    /// An officer a chat may be given to: they exist and are not disabled.
    async fn officer_may_take(&self, officer: &OfficerId) -> Result<()> {
        let record = self
            .inner
            .store
            .officer(officer)
            .await?
            .ok_or(Error::OfficerNotFound)?;
        if record.officer.disabled {
            return Err(Error::OfficerDisabled);
        }
        Ok(())
    }

    /// Decides a change on the chat as stored, stores it with its system entry if the
    /// chat is still as seen (else decides again), and announces it.
    pub(super) async fn change(
        &self,
        actor: &Actor,
        chat: ChatId,
        officer: Option<OfficerId>,
        decide: fn(&Actor, &Chat, Option<&OfficerId>) -> Result<Decision>,
    ) -> Result<Chat> {
        policy::look_up_chat(actor, chat)?;
        let actor = actor.clone();
        self.ordered(chat, move |this| async move {
            for _ in 0..MAX_RACES {
                let before = this
                    .inner
                    .store
                    .chat(&chat)
                    .await?
                    .ok_or_else(|| policy::chat_missing(&actor))?;
                let mut plan = match decide(&actor, &before, officer.as_ref())? {
                    Decision::Unchanged => return Ok(before),
                    Decision::Change(plan) => plan,
                };
                this.name_officers(&mut plan.event).await?;
                let entry = NewMessage {
                    id: MessageId::new(),
                    chat_id: chat,
                    sender_type: SenderType::System,
                    sender_id: actor.subject().to_string(),
                    content: this.sentence(&actor, &plan.event).await?,
                    client_message_id: None,
                    created_at: this.now(),
                    event: Some(plan.event.clone()),
                    decided_on: None,
                    attachment: None,
                };
                let change = Transition {
                    expected_status: before.status,
                    expected_owner: before.assigned_officer_id.clone(),
                    status: plan.status,
                    owner: plan.owner,
                    entry,
                    default_capacity: this.config().officer_capacity,
                    only_to_eligible: false,
                };
                match this.inner.store.transition(&change).await? {
                    TransitionOutcome::Applied(now, entry) => {
                        if now.status == ChatStatus::Resolved {
                            crate::metrics::resolved();
                        }
                        this.announce(&before, &now, entry, plan.event.kind);
                        this.announce_loads(&before, &now).await;
                        return this.placed(now).await;
                    }
                    // Another change won: decide again on the chat as it now is.
                    TransitionOutcome::Stale(_) => continue,
                    TransitionOutcome::NotFound => return Err(Error::ChatNotFound),
                    TransitionOutcome::CustomerHasOpenChat => {
                        return Err(Error::CustomerHasOpenChat);
                    }
                    TransitionOutcome::Ineligible => {
                        return Err(Error::internal(
                            "a change by hand was refused for an ineligible officer",
                        ));
                    }
                    TransitionOutcome::AtCapacity => {
                        let officer = change.new_owner().cloned().ok_or_else(|| {
                            Error::internal("at capacity without an officer to give it to")
                        })?;
                        return Err(Error::AtCapacity(officer));
                    }
                }
            }
            Err(Error::Unavailable(
                "the chat kept changing while this change was decided".into(),
            ))
        })
        .await
    }

    /// Records in the entry the display names the officers it concerns have now.
    pub(super) async fn name_officers(&self, event: &mut SystemEvent) -> Result<()> {
        if let Some(officer) = &event.officer_id {
            event.officer_name = self.display_name(officer).await?;
        }
        if let Some(officer) = &event.from_officer_id {
            event.from_officer_name = self.display_name(officer).await?;
        }
        Ok(())
    }

    /// The system entry's sentence, with the officers' display names where they have
    /// one ("Alice transferred the chat to Bob").
    async fn sentence(&self, actor: &Actor, event: &SystemEvent) -> Result<String> {
        let named = |id: &Option<OfficerId>, name: &Option<String>| {
            name.clone()
                .or_else(|| id.as_ref().map(ToString::to_string))
        };
        let who = match actor {
            Actor::Officer(me) if event.officer_id.as_ref() == Some(me) => {
                named(&event.officer_id, &event.officer_name).unwrap_or_default()
            }
            Actor::Officer(me) if event.from_officer_id.as_ref() == Some(me) => {
                named(&event.from_officer_id, &event.from_officer_name).unwrap_or_default()
            }
            Actor::Officer(me) => self
                .display_name(me)
                .await?
                .unwrap_or_else(|| me.to_string()),
            Actor::Customer { .. } => "The customer".to_string(),
            _ => "An administrator".to_string(),
        };
        let officer = named(&event.officer_id, &event.officer_name).unwrap_or_default();
        Ok(match event.kind {
            ChatChange::Resolved => format!("{who} ended the chat"),
            ChatChange::Released => format!("{who} put the chat back in the queue"),
            ChatChange::Transferred => format!("{who} transferred the chat to {officer}"),
            ChatChange::Reopened if matches!(actor, Actor::Officer(_)) => {
                format!("{who} reopened the chat")
            }
            ChatChange::Reopened => format!("{who} reopened the chat for {officer}"),
            ChatChange::Claimed => format!("{officer} took the chat"),
            _ => format!("{who} changed the chat"),
        })
    }

    async fn display_name(&self, officer: &OfficerId) -> Result<Option<String>> {
        let record = self.inner.store.officer(officer).await?;
        Ok(record.and_then(|r| r.officer.display_name))
    }

    /// After a change of a chat's owner: `officer_updated` (their `openChats`) for each
    /// officer whose load changed, and a round of automatic assignment when a slot was
    /// freed or the chat entered the queue.
    pub(super) async fn announce_loads(&self, before: &Chat, now: &Chat) {
        let owner = |c: &Chat| {
            (c.status == ChatStatus::Assigned)
                .then(|| c.assigned_officer_id.clone())
                .flatten()
        };
        let (had, has) = (owner(before), owner(now));
        if had == has {
            return;
        }
        for officer in [&had, &has].into_iter().flatten() {
            match self.inner.store.officer(officer).await {
                Ok(Some(record)) => {
                    self.announce_officer(record.officer);
                }
                Ok(None) => {}
                // The load shows again with the officer's next change.
                Err(e) => {
                    tracing::warn!(error = %e, officer = %officer, "cannot read an officer's load")
                }
            }
        }
        if had.is_some() || now.status == ChatStatus::Pending {
            self.want_assignment();
        }
    }

    /// Announces a stored change (see the module documentation).
    pub(super) fn announce(&self, before: &Chat, now: &Chat, entry: Message, change: ChatChange) {
        self.inner.desk.saw(now);
        self.publish(Topic::Chat(now.id), Event::NewMessage { message: entry });
        let updated = Event::ChatUpdated {
            chat: now.clone(),
            change,
        };
        self.publish(Topic::Chat(now.id), updated.clone());
        self.publish(Topic::Officers, updated);
        let was_pending = before.status == ChatStatus::Pending;
        let is_pending = now.status == ChatStatus::Pending;
        if was_pending && !is_pending {
            self.publish(
                Topic::Officers,
                Event::QueueChatClaimed { chat: now.clone() },
            );
        }
        if is_pending && !was_pending {
            self.publish(
                Topic::Officers,
                Event::QueueChatCreated { chat: now.clone() },
            );
        }
        let owner_before = (before.status == ChatStatus::Assigned)
            .then_some(before.assigned_officer_id.as_ref())
            .flatten();
        let owner_now = (now.status == ChatStatus::Assigned)
            .then_some(now.assigned_officer_id.as_ref())
            .flatten();
        if owner_now != owner_before {
            if let Some(officer) = owner_now {
                self.publish(
                    Topic::Officer(officer.clone()),
                    Event::ChatAssigned { chat: now.clone() },
                );
            }
            // Released or transferred (a resolution keeps the chat its officer's).
            if let (Some(officer), true) = (owner_before, now.status != ChatStatus::Resolved) {
                self.publish(
                    Topic::Officer(officer.clone()),
                    Event::ChatUnassigned { chat: now.clone() },
                );
            }
        }
    }
}
