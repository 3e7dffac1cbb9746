//! The invariants, as functions of a state, so that the checker (`stateright`'s
//! `always`), the model-based tests (on the model's state after every step) and the
//! concurrent runs on PostgreSQL (on the database's state, read back into a [`State`])
//! check the very same conditions.

use crate::state::{Change, ChatRec, Entry, Officer, State, Status};
use crate::steps::Protocol;

/// A chat has at most one owner: its audit trail, replayed from its creation, never
/// takes an owned chat (a claim or assignment only of a pending chat, a hand-over only
/// by its owner), and ends where the chat is: an assigned chat has one officer, a
/// pending one none.
pub fn one_owner(chat: &ChatRec) -> bool {
    let mut at = match chat.created_owner {
        Some(o) => (Status::Assigned, Some(o)),
        None => (Status::Pending, None),
    };
    for logged in &chat.log {
        let Entry::System { change, officer } = logged.entry else {
            continue;
        };
        at = match (change, at) {
            (Change::Claimed | Change::Assigned, (Status::Pending, None)) if officer.is_some() => {
                (Status::Assigned, officer)
            }
            (Change::Released, (Status::Assigned, Some(o))) if officer == Some(o) => {
                (Status::Pending, None)
            }
            (Change::Transferred, (Status::Assigned, Some(o)))
                if officer.is_some() && officer != Some(o) =>
            {
                (Status::Assigned, officer)
            }
            (Change::Resolved, (Status::Pending | Status::Assigned, owner)) if officer == owner => {
                (Status::Resolved, owner)
            }
            (Change::Reopened, (Status::Resolved, _)) if officer.is_some() => {
                (Status::Assigned, officer)
            }
            _ => return false,
        };
    }
    let consistent = match chat.status {
        Status::Pending => chat.owner.is_none(),
        Status::Assigned => chat.owner.is_some(),
        Status::Resolved => true,
    };
    consistent && at == (chat.status, chat.owner)
}

/// No message is stored in a chat while it is ended (its trail, replayed, is open at
/// every message).
pub fn nothing_written_when_ended(chat: &ChatRec) -> bool {
    let mut open = true;
    for logged in &chat.log {
        match logged.entry {
            Entry::Message { .. } if !open => return false,
            Entry::System {
                change: Change::Resolved,
                ..
            } => open = false,
            Entry::System {
                change: Change::Reopened,
                ..
            } => open = true,
            _ => {}
        }
    }
    true
}

/// A chat's seqs are 1, 2, 3, ... with no gap or repeat, its `last_seq` is the newest,
/// and no message is stored twice.
pub fn dense(chat: &ChatRec) -> bool {
    let in_order = chat
        .log
        .iter()
        .enumerate()
        .all(|(i, l)| usize::from(l.seq) == i + 1);
    let mut messages: Vec<Entry> = chat
        .log
        .iter()
        .map(|l| l.entry)
        .filter(|e| matches!(e, Entry::Message { .. }))
        .collect();
    let stored = messages.len();
    messages.sort();
    messages.dedup();
    in_order && usize::from(chat.last_seq) == chat.log.len() && messages.len() == stored
}

/// Every acknowledged message is in its chat's timeline.
pub fn acked_kept(s: &State) -> bool {
    s.customers.iter().enumerate().all(|(c, customer)| {
        customer.acked.iter().all(|&(chat, n)| {
            s.store.chats.get(chat as usize).is_some_and(|rec| {
                rec.log.iter().any(|l| {
                    l.entry
                        == Entry::Message {
                            customer: c as u8,
                            n,
                        }
                })
            })
        })
    })
}

/// An officer's open chats never pass their capacity.
pub fn within_capacity(m: &Protocol, s: &State) -> bool {
    (0..m.cfg.officers()).all(|o| s.store.open_chats(o) <= m.cfg.capacities[o as usize])
}

/// A customer has at most one open chat.
pub fn one_open_chat_per_customer(m: &Protocol, s: &State) -> bool {
    (0..m.cfg.customers).all(|c| {
        s.store
            .chats
            .iter()
            .filter(|ch| ch.customer == c && ch.status.is_open())
            .count()
            <= 1
    })
}

/// Whether a chat waits in the queue while an officer is eligible (available,
/// connected, under capacity).
pub fn starving(m: &Protocol, s: &State) -> bool {
    m.cfg.auto && !s.store.pending().is_empty() && !m.eligible(&s.store).is_empty()
}

/// The liveness goal, for `stateright`'s `eventually`: the environment has stopped,
/// every operation and round has finished, and no chat waits while an officer could
/// take it. A run that ends (no step left) without reaching it is a counterexample.
pub fn settled(m: &Protocol, s: &State) -> bool {
    s.budget == 0 && s.quiet() && !starving(m, s)
}

/// The names of the safety invariants `s` breaks (empty: none), for checking a state
/// read back from a real store.
pub fn violations(m: &Protocol, s: &State) -> Vec<&'static str> {
    let mut broken = Vec::new();
    if !s.store.chats.iter().all(one_owner) {
        broken.push(ONE_OWNER);
    }
    if !within_capacity(m, s) {
        broken.push(WITHIN_CAPACITY);
    }
    if !one_open_chat_per_customer(m, s) {
        broken.push(ONE_OPEN_CHAT);
    }
    if !(s.store.chats.iter().all(dense) && acked_kept(s)) {
        broken.push(DENSE_AND_KEPT);
    }
    if !s.store.chats.iter().all(nothing_written_when_ended) {
        broken.push(NOTHING_WRITTEN_WHEN_ENDED);
    }
    broken
}

/// Property names, as the checker reports them.
pub const ONE_OWNER: &str = "a chat has at most one owner";
/// See [`within_capacity`].
pub const WITHIN_CAPACITY: &str = "no officer is over capacity";
/// See [`one_open_chat_per_customer`].
pub const ONE_OPEN_CHAT: &str = "a customer has at most one open chat";
/// See [`dense`] and [`acked_kept`].
pub const DENSE_AND_KEPT: &str = "seqs are dense and no acknowledged message is lost";
/// See [`nothing_written_when_ended`].
pub const NOTHING_WRITTEN_WHEN_ENDED: &str = "no message is stored in an ended chat";
/// See [`settled`].
pub const EVENTUALLY_ASSIGNED: &str =
    "a pending chat is eventually assigned while an eligible officer has room";

/// Officers who are at capacity (for `sometimes` properties: the bounds reach it).
pub fn someone_full(m: &Protocol, s: &State) -> Option<Officer> {
    (0..m.cfg.officers()).find(|&o| s.store.open_chats(o) == m.cfg.capacities[o as usize])
}
