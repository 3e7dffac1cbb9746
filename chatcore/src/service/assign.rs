//! Automatic assignment (`ServiceConfig::assignment` = [`Assignment::Auto`]): pending
//! chats, oldest first, go to eligible officers (enabled, available, connected, under
//! capacity), each to the officer the customer last spoke to if eligible, else to the
//! one with the fewest open chats, then the longest since their last assignment.
//!
//! Race-free by construction: every assignment is a [`Store::transition`] from
//! "pending, no officer", so a chat is given once however many nodes try; and it carries
//! the capacity check in its transaction, so no officer passes capacity. A node's view
//! of who is eligible may be a moment old: an attempt that loses (the chat was taken,
//! the officer filled up meanwhile) only moves on to the next. One round runs at a time
//! per node; rounds run when a chat enters the queue, when an officer becomes eligible,
//! and every few seconds (`desk.rs`), so the oldest waiting chat is always the next
//! one served when room appears: nothing starves.
//!
//! A login does not queue behind the node's rounds: its new chat makes its own attempt
//! ([`ChatService::assign_if_room`]) when the officers have room for it and for every
//! chat waiting before it, so that it passes nobody; only otherwise does it run a
//! round. Logins at the same moment on one node pick as if the chats being given
//! meanwhile were open already (`Desk::pick_giving`), so they spread over the officers
//! rather than all going to the one with the fewest. (Measured: with every login
//! running a round, 33 logins a second on a busy machine queued for seconds behind each
//! other; docs/BENCHMARKS.md, "A day at the desk".)
//!
//! [`Assignment::Auto`]: super::Assignment::Auto
//! [`Store::transition`]: crate::store::Store::transition

use std::collections::HashMap;

use super::ChatService;
use crate::error::{Error, Result};
use crate::ids::{MessageId, OfficerId};
use crate::model::{Chat, ChatChange, ChatStatus, Officer, SenderType, SystemEvent};
use crate::store::{NewMessage, Transition, TransitionOutcome};

/// Most chats one pass of a round tries to place (a round makes passes until nothing is
/// placed).
const PASS: u32 = 200;
/// Most officers a pass considers.
const MAX_CANDIDATES: u32 = 10_000;
/// The `senderId` of the system entry of an automatic assignment.
pub const AUTO_SENDER: &str = "auto";

/// What one attempt to give a chat to an officer came to (moved once to its caller: the
/// chat's size costs nothing worth a box).
#[allow(clippy::large_enum_variant)]
enum Attempt {
    Given(Chat),
    /// The officer has no room after all, or is no longer eligible.
    Full,
    /// The chat is no longer waiting.
    Gone,
}

/// What a new chat's own attempt came to ([`ChatService::assign_if_room`]).
#[allow(clippy::large_enum_variant)]
pub(super) enum OwnAttempt {
    /// Given, as it now is.
    Given(Chat),
    /// No eligible officer has room: it waits for one.
    NoRoom,
    /// Older chats need the room first, or it is no longer waiting: a round decides.
    ToRound,
}

/// The officers of one pass with the room each has left, picked from in the contract's
/// order.
struct Candidates {
    /// (officer, open chats, room left or `None` for unlimited, order of last assignment)
    officers: Vec<(OfficerId, u32, Option<u32>, u64)>,
    /// Given to officers that take a chat in this pass: they go after everyone else
    /// with as many open chats.
    next_turn: u64,
}

impl Candidates {
    fn new(eligible: Vec<Officer>) -> Self {
        let officers: Vec<_> = eligible
            .into_iter()
            .enumerate()
            .map(|(turn, o)| {
                let room = o.capacity.map(|cap| cap.saturating_sub(o.open_chats));
                (o.id, o.open_chats, room, turn as u64)
            })
            .collect();
        let next_turn = officers.len() as u64;
        Self {
            officers,
            next_turn,
        }
    }

    fn is_empty(&self) -> bool {
        self.officers.is_empty()
    }

    /// Room left in all, counting an unlimited officer as `cap`.
    fn room(&self, cap: u32) -> u32 {
        self.officers
            .iter()
            .map(|(_, _, room, _)| room.unwrap_or(cap))
            .fold(0u32, u32::saturating_add)
            .min(cap)
    }

    /// The officer for the next chat: `preferred` if they are a candidate, else the
    /// fewest open chats, then the earliest turn.
    fn pick(&self, preferred: Option<&OfficerId>) -> Option<OfficerId> {
        self.pick_beside(preferred, &HashMap::new())
    }

    /// [`Candidates::pick`], counting the chats each officer is being given meanwhile
    /// (`giving`) as open, and an officer with no room left for them as full.
    fn pick_beside(
        &self,
        preferred: Option<&OfficerId>,
        giving: &HashMap<OfficerId, u32>,
    ) -> Option<OfficerId> {
        let given = |id: &OfficerId| giving.get(id).copied().unwrap_or(0);
        let has_room = |id: &OfficerId, room: &Option<u32>| room.is_none_or(|r| r > given(id));
        if let Some(p) = preferred {
            if self
                .officers
                .iter()
                .any(|(id, _, room, _)| id == p && has_room(id, room))
            {
                return Some(p.clone());
            }
        }
        self.officers
            .iter()
            .filter(|(id, _, room, _)| has_room(id, room))
            .min_by_key(|(id, open, _, turn)| (open.saturating_add(given(id)), *turn))
            .map(|(id, ..)| id.clone())
    }

    fn took_one(&mut self, officer: &OfficerId) {
        let turn = self.next_turn;
        self.next_turn += 1;
        if let Some(i) = self.officers.iter().position(|(id, ..)| id == officer) {
            let entry = &mut self.officers[i];
            entry.1 += 1;
            entry.3 = turn;
            if let Some(room) = &mut entry.2 {
                *room = room.saturating_sub(1);
                if *room == 0 {
                    self.officers.swap_remove(i);
                }
            }
        }
    }

    fn drop_officer(&mut self, officer: &OfficerId) {
        self.officers.retain(|(id, ..)| id != officer);
    }
}

impl ChatService {
    /// One round of automatic assignment (see the module documentation); the chats it
    /// gave, as they now are. Does nothing in manual mode.
    pub(super) async fn assign_waiting(&self) -> Result<Vec<Chat>> {
        if self.config().assignment != super::Assignment::Auto {
            return Ok(Vec::new());
        }
        let _one_at_a_time = self.desk().assigning.lock().await;
        let store = &self.inner.store;
        let mut given = Vec::new();
        loop {
            // The waiting chats first: a round asked for when nothing waits (a slot freed,
            // an officer came back) costs one read of the queue index, not the officers'.
            let waiting = store.pending_chats(PASS).await?;
            if waiting.is_empty() {
                break;
            }
            let eligible = store
                .eligible_officers(self.config().officer_capacity, MAX_CANDIDATES)
                .await?;
            let mut candidates = Candidates::new(eligible);
            if candidates.is_empty() {
                break;
            }
            let room = usize::try_from(candidates.room(PASS)).unwrap_or(usize::MAX);
            let mut placed = 0;
            // Chats of this pass that another attempt took first (a login's own, another
            // node's round, a claim): the chats after the `room` this pass read may
            // still wait, so another pass reads the queue again (found by the model
            // checker, docs/PROTOCOL.md: without it they waited for the sweep).
            let mut lost = 0;
            for chat in waiting.into_iter().take(room) {
                let preferred = self.previous_officer(&chat).await?;
                while let Some(officer) = candidates.pick(preferred.as_ref()) {
                    match self.give(&chat, &officer).await? {
                        Attempt::Given(now) => {
                            candidates.took_one(&officer);
                            given.push(now);
                            placed += 1;
                            break;
                        }
                        Attempt::Full => candidates.drop_officer(&officer),
                        Attempt::Gone => {
                            lost += 1;
                            break;
                        }
                    }
                }
                if candidates.is_empty() {
                    break;
                }
            }
            if placed == 0 && lost == 0 {
                break;
            }
        }
        Ok(given)
    }

    /// A new chat's own attempt, made by its login without waiting for this node's
    /// round (rounds queue behind each other; a login must not, or a burst of logins
    /// becomes a convoy): when the officers have room for every chat waiting before it
    /// and for it, so that taking a slot now passes nobody, it goes to the officer a
    /// round would pick, through the same conditional transition; a round or another
    /// node racing for it or for the same officer's last slot is arbitrated by the
    /// store as always. Otherwise the round decides, serving the oldest first.
    pub(super) async fn assign_if_room(&self, chat: &Chat) -> Result<OwnAttempt> {
        let store = &self.inner.store;
        let read_at = self.desk().gives_so_far();
        let ahead = store.pending_chats(PASS).await?;
        let Some(place) = ahead.iter().position(|c| c.id == chat.id) else {
            // Given already, or behind a long queue.
            return Ok(OwnAttempt::ToRound);
        };
        let eligible = store
            .eligible_officers(self.config().officer_capacity, MAX_CANDIDATES)
            .await?;
        let mut candidates = Candidates::new(eligible);
        if candidates.is_empty() {
            return Ok(OwnAttempt::NoRoom);
        }
        if (candidates.room(PASS) as usize) <= place {
            return Ok(OwnAttempt::ToRound);
        }
        let preferred = self.previous_officer(chat).await?;
        let desk = self.desk();
        while let Some(picked) = desk.pick_giving(read_at, |giving| {
            candidates.pick_beside(preferred.as_ref(), giving)
        }) {
            match self.give(chat, &picked.officer).await? {
                Attempt::Given(now) => {
                    picked.given();
                    return Ok(OwnAttempt::Given(now));
                }
                Attempt::Full => candidates.drop_officer(&picked.officer),
                Attempt::Gone => return Ok(OwnAttempt::ToRound),
            }
        }
        Ok(OwnAttempt::NoRoom)
    }

    /// The officer of the customer's latest other chat, if it had one.
    async fn previous_officer(&self, chat: &Chat) -> Result<Option<OfficerId>> {
        let recent = self
            .inner
            .store
            .customer_chats(&chat.customer_id, 2)
            .await?;
        Ok(recent
            .into_iter()
            .find(|c| c.id != chat.id)
            .and_then(|c| c.assigned_officer_id))
    }

    /// Gives a pending chat to `officer`, stored with its system entry ("The chat was
    /// assigned to Alice", sent by `auto`) if the chat is still pending and the officer
    /// has room, and announced like a claim.
    async fn give(&self, chat: &Chat, officer: &OfficerId) -> Result<Attempt> {
        let (chat, officer) = (chat.clone(), officer.clone());
        let outcome = self
            .ordered(chat.id, move |this| async move {
                let mut event = SystemEvent {
                    kind: ChatChange::Assigned,
                    officer_id: Some(officer.clone()),
                    from_officer_id: None,
                    officer_name: None,
                    from_officer_name: None,
                };
                this.name_officers(&mut event).await?;
                let name = event
                    .officer_name
                    .clone()
                    .unwrap_or_else(|| officer.to_string());
                let change = Transition {
                    expected_status: ChatStatus::Pending,
                    expected_owner: None,
                    status: ChatStatus::Assigned,
                    owner: Some(officer),
                    entry: NewMessage {
                        id: MessageId::new(),
                        chat_id: chat.id,
                        sender_type: SenderType::System,
                        sender_id: AUTO_SENDER.to_string(),
                        content: format!("The chat was assigned to {name}"),
                        client_message_id: None,
                        created_at: this.now(),
                        event: Some(event),
                        decided_on: None,
                        attachment: None,
                    },
                    default_capacity: this.config().officer_capacity,
                    only_to_eligible: true,
                };
                Ok(match this.inner.store.transition(&change).await? {
                    TransitionOutcome::Applied(now, entry) => {
                        this.announce(&chat, &now, entry, ChatChange::Assigned);
                        this.announce_loads(&chat, &now).await;
                        Attempt::Given(now)
                    }
                    // Full, or gone away or disconnected since the round read them.
                    TransitionOutcome::AtCapacity | TransitionOutcome::Ineligible => Attempt::Full,
                    TransitionOutcome::Stale(_)
                    | TransitionOutcome::NotFound
                    | TransitionOutcome::CustomerHasOpenChat => Attempt::Gone,
                })
            })
            .await;
        match outcome {
            Err(Error::OfficerNotFound) => Ok(Attempt::Full),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Availability, Timestamp};

    fn officer(id: &str, open: u32, capacity: Option<u32>) -> Officer {
        Officer {
            id: OfficerId::parse(id).unwrap(),
            display_name: None,
            created_at: Timestamp::from_unix_millis(0),
            disabled: false,
            availability: Availability::Available,
            capacity,
            open_chats: open,
            connected: true,
        }
    }

    fn id(s: &str) -> OfficerId {
        OfficerId::parse(s).unwrap()
    }

    #[test]
    fn candidates_are_picked_in_the_contracts_order() {
        // As the store orders them: fewest open chats, then longest since assigned.
        let mut c = Candidates::new(vec![
            officer("b", 0, Some(2)),
            officer("a", 0, None),
            officer("c", 1, Some(2)),
        ]);
        assert_eq!(c.room(100), 100, "an unlimited officer counts as the cap");
        // The previous officer first when they are a candidate.
        assert_eq!(c.pick(Some(&id("c"))), Some(id("c")));
        assert_eq!(c.pick(Some(&id("zz"))), Some(id("b")));
        c.took_one(&id("b"));
        // b now has one open chat and the latest turn: a is next, then c (1 open, older
        // turn) before b.
        assert_eq!(c.pick(None), Some(id("a")));
        c.took_one(&id("a"));
        assert_eq!(c.pick(None), Some(id("c")));
        c.took_one(&id("c"));
        // c is full (2 of 2) and leaves; b (1 open, turn 3) comes before a (1, turn 4).
        assert_eq!(c.pick(None), Some(id("b")));
        c.took_one(&id("b"));
        assert_eq!(c.pick(None), Some(id("a")));
        assert_eq!(c.officers.len(), 1, "only the unlimited officer is left");
        c.drop_officer(&id("a"));
        assert!(c.is_empty());
        assert_eq!(c.pick(None), None);
    }

    #[test]
    fn chats_being_given_count_as_open_when_picking() {
        let c = Candidates::new(vec![
            officer("a", 0, Some(1)),
            officer("b", 0, Some(3)),
            officer("c", 1, Some(3)),
        ]);
        let giving = |pairs: &[(&str, u32)]| -> HashMap<OfficerId, u32> {
            pairs.iter().map(|(o, n)| (id(o), *n)).collect()
        };
        assert_eq!(c.pick_beside(None, &giving(&[])), Some(id("a")));
        // a's one slot is being filled: a is full, b is next.
        assert_eq!(c.pick_beside(None, &giving(&[("a", 1)])), Some(id("b")));
        // b being given two counts as 2 open: c (1 open) goes first.
        assert_eq!(
            c.pick_beside(None, &giving(&[("a", 1), ("b", 2)])),
            Some(id("c"))
        );
        // The previous officer goes first only while they have room.
        assert_eq!(c.pick_beside(Some(&id("a")), &giving(&[])), Some(id("a")));
        assert_eq!(
            c.pick_beside(Some(&id("a")), &giving(&[("a", 1)])),
            Some(id("b"))
        );
        // Nobody with room: none.
        assert_eq!(
            c.pick_beside(None, &giving(&[("a", 1), ("b", 3), ("c", 2)])),
            None
        );
    }
}
