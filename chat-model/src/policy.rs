//! `chatcore::policy`'s decisions as the model needs them: what a change makes of a chat
//! as read (a plan to write, nothing to do, or a refusal), and who may write to it. Pure,
//! like the original; the model-based tests hold the two to the same answers.

use crate::state::{Change, ChatRec, Entry, Intent, Officer, Plan, Status, What, Who};

/// What the rules make of a requested change on the chat as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write this transition.
    Change(Plan),
    /// Already as asked: answered with the chat.
    Unchanged,
    /// Refused (403, 409 ...): the operation ends.
    Refused,
}

fn plan(chat: &ChatRec, status: Status, owner: Option<Officer>, entry: Entry) -> Decision {
    Decision::Change(Plan {
        expected: (chat.status, chat.owner),
        status,
        owner,
        entry,
    })
}

fn system(change: Change, officer: Option<Officer>) -> Entry {
    Entry::System { change, officer }
}

/// `policy::take`, `release`, `transfer`, `resolve`, `reopen` for the intent's actor.
pub fn decide(intent: &Intent, chat: &ChatRec) -> Decision {
    use Decision::{Refused, Unchanged};
    match (intent.who, intent.what) {
        (Who::Customer(c), What::Resolve) => {
            if chat.customer != c {
                Refused
            } else if chat.status == Status::Resolved {
                Unchanged
            } else {
                plan(
                    chat,
                    Status::Resolved,
                    chat.owner,
                    system(Change::Resolved, chat.owner),
                )
            }
        }
        (Who::Customer(_), _) => Refused,
        (Who::Officer(me), What::Claim) => match (chat.status, chat.owner) {
            (Status::Pending, _) => plan(
                chat,
                Status::Assigned,
                Some(me),
                system(Change::Claimed, Some(me)),
            ),
            (Status::Assigned, Some(o)) if o == me => Unchanged,
            _ => Refused,
        },
        (Who::Officer(me), What::Release) => match hand_on(me, chat) {
            Some(owner) => plan(
                chat,
                Status::Pending,
                None,
                system(Change::Released, Some(owner)),
            ),
            None => Refused,
        },
        (Who::Officer(me), What::Transfer(to)) => match hand_on(me, chat) {
            Some(owner) if owner == to => Unchanged,
            Some(_) => plan(
                chat,
                Status::Assigned,
                Some(to),
                system(Change::Transferred, Some(to)),
            ),
            None => Refused,
        },
        (Who::Officer(me), What::Resolve) => match chat.status {
            Status::Pending => Refused,
            _ if chat.owner != Some(me) => Refused,
            Status::Resolved => Unchanged,
            Status::Assigned => plan(
                chat,
                Status::Resolved,
                chat.owner,
                system(Change::Resolved, chat.owner),
            ),
        },
        (Who::Officer(me), What::Reopen) => match chat.status {
            Status::Resolved => plan(
                chat,
                Status::Assigned,
                Some(me),
                system(Change::Reopened, Some(me)),
            ),
            _ => Refused,
        },
    }
}

/// `policy::hand_on` for an officer: the owner an assigned chat of theirs is handed on
/// from; `None` when refused.
fn hand_on(me: Officer, chat: &ChatRec) -> Option<Officer> {
    match chat.status {
        Status::Assigned if chat.owner == Some(me) => chat.owner,
        _ => None,
    }
}

/// `policy::write_chat` for the chat's customer: its status and owner the write is
/// allowed on, or `None` when refused (an ended chat).
pub fn customer_may_write(chat: &ChatRec) -> Option<(Status, Option<Officer>)> {
    chat.status.is_open().then_some((chat.status, chat.owner))
}
