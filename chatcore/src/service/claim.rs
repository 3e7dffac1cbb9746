//! The shared queue and the atomic claim: of any number of officers claiming one pending
//! chat at once, exactly one wins (the store's conditional transition decides), the
//! owner's repeated claim is a no-op success, everyone else gets `already_assigned`.

use super::{ChatService, MAX_PAGE};
use crate::error::Result;
use crate::identity::Actor;
use crate::ids::{ChatId, CustomerId, OfficerId};
use crate::model::{Chat, ChatStatus, ChatsFilter};
use crate::policy;
use crate::store::Counts;

impl ChatService {
    /// Pending chats, oldest first (at most [`MAX_PAGE`]). Officers and the admin.
    pub async fn queue(&self, actor: &Actor) -> Result<Vec<Chat>> {
        policy::read_queue(actor)?;
        let mut queue = self.inner.store.pending_chats(MAX_PAGE).await?;
        // The queue from its start: each chat's place is its index.
        for (place, chat) in (1..).zip(queue.iter_mut()) {
            chat.queue_position = Some(place);
        }
        self.with_last_messages(queue).await
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
        let chats = self.inner.store.customer_chats(customer, MAX_PAGE).await?;
        let chats = self.with_last_messages(chats).await?;
        self.all_placed(chats).await
    }

    /// `officer`'s chats, open, resolved or both (`filter`), newest activity first (at
    /// most [`MAX_PAGE`]). That officer and the admin.
    pub async fn officer_chats(
        &self,
        actor: &Actor,
        officer: &OfficerId,
        filter: ChatsFilter,
    ) -> Result<Vec<Chat>> {
        policy::read_officer_chats(actor, officer)?;
        let store = &self.inner.store;
        let chats = match filter {
            ChatsFilter::Open => {
                store
                    .officer_chats(officer, ChatStatus::Assigned, MAX_PAGE)
                    .await?
            }
            ChatsFilter::Resolved => {
                store
                    .officer_chats(officer, ChatStatus::Resolved, MAX_PAGE)
                    .await?
            }
            ChatsFilter::All => {
                // Two index ranges, each newest first, merged.
                let mut chats = store
                    .officer_chats(officer, ChatStatus::Assigned, MAX_PAGE)
                    .await?;
                chats.extend(
                    store
                        .officer_chats(officer, ChatStatus::Resolved, MAX_PAGE)
                        .await?,
                );
                chats.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id)));
                chats.truncate(MAX_PAGE as usize);
                chats
            }
        };
        self.with_last_messages(chats).await
    }

    /// `officer` claims a pending chat: only that officer may claim for themselves. Of
    /// any number of claims at once, exactly one wins (the store's conditional
    /// transition decides); the owner's repeated claim changes nothing. A claim is a
    /// lifecycle change like the others ([`ChatService::resolve`]): its system entry
    /// ("Alice took the chat") and the chat's new state are stored together, then
    /// announced: `chat_updated` (`claimed`) to `chat:<id>`, which ends the feeds of every
    /// other officer who was reading the pending chat, and to `officers:all`,
    /// `queue_chat_claimed` to `officers:all` and `chat_assigned` to `officer:<id>`.
    pub async fn claim(&self, actor: &Actor, officer: &OfficerId, chat: ChatId) -> Result<Chat> {
        policy::claim(actor, officer)?;
        self.change(
            actor,
            chat,
            Some(officer.clone()),
            |actor, chat, officer| {
                policy::take(actor, chat, officer.expect("a claim names its officer"))
            },
        )
        .await
    }
}
