//! The shared queue and the atomic claim: of any number of officers claiming one pending
//! chat at once, exactly one wins (the store's single conditional update decides), the
//! owner's repeated claim is a no-op success, everyone else gets `already_assigned`.

use super::{ChatService, MAX_PAGE};
use crate::bus::{Event, Topic};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::{ChatId, CustomerId, OfficerId};
use crate::model::{Chat, ChatChange};
use crate::policy;
use crate::store::{ClaimOutcome, Counts};

impl ChatService {
    /// Pending chats, oldest first (at most [`MAX_PAGE`]). Officers and the admin.
    pub async fn queue(&self, actor: &Actor) -> Result<Vec<Chat>> {
        policy::read_queue(actor)?;
        Ok(self.inner.store.pending_chats(MAX_PAGE).await?)
    }

    /// How many officers, pending chats and assigned chats there are (for status
    /// screens), counted by the store in one query. Officers and the admin.
    pub async fn counts(&self, actor: &Actor) -> Result<Counts> {
        policy::read_counts(actor)?;
        Ok(self.inner.store.counts().await?)
    }

    /// A customer's chats, newest first (at most [`MAX_PAGE`]): that customer, officers
    /// and the admin.
    pub async fn customer_chats(&self, actor: &Actor, customer: &CustomerId) -> Result<Vec<Chat>> {
        policy::read_customer_chats(actor, customer)?;
        Ok(self.inner.store.customer_chats(customer, MAX_PAGE).await?)
    }

    /// Chats assigned to `officer`, oldest first (at most [`MAX_PAGE`]). That officer and
    /// the admin.
    pub async fn officer_chats(&self, actor: &Actor, officer: &OfficerId) -> Result<Vec<Chat>> {
        policy::read_officer_chats(actor, officer)?;
        Ok(self.inner.store.officer_chats(officer, MAX_PAGE).await?)
    }

    /// `officer` claims a pending chat. Only that officer may claim for themselves.
    /// On success publishes `chat_updated` (`claimed`) to `chat:<id>`, which ends the
    /// feeds of every other officer who was reading the pending chat,
    /// `queue_chat_claimed` to `officers:all` and `chat_assigned` to `officer:<id>`.
    pub async fn claim(&self, actor: &Actor, officer: &OfficerId, chat: ChatId) -> Result<Chat> {
        policy::claim(actor, officer)?;
        let officer = officer.clone();
        self.ordered(chat, move |this| async move {
            match this
                .inner
                .store
                .claim_chat(&chat, &officer, this.now())
                .await?
            {
                ClaimOutcome::Claimed(chat) => {
                    this.publish(
                        Topic::Chat(chat.id),
                        Event::ChatUpdated {
                            chat: chat.clone(),
                            change: ChatChange::Claimed,
                        },
                    );
                    this.publish(
                        Topic::Officers,
                        Event::QueueChatClaimed { chat: chat.clone() },
                    );
                    this.publish(
                        Topic::Officer(officer),
                        Event::ChatAssigned { chat: chat.clone() },
                    );
                    Ok(chat)
                }
                ClaimOutcome::AlreadyOwned(chat) => Ok(chat),
                ClaimOutcome::TakenByOther(chat) => Err(Error::AlreadyAssigned(
                    chat.assigned_officer_id
                        .ok_or_else(|| Error::internal("taken chat without an owner"))?,
                )),
                ClaimOutcome::Resolved(_) => Err(Error::ChatResolved),
                ClaimOutcome::NotFound => Err(Error::ChatNotFound),
            }
        })
        .await
    }
}
