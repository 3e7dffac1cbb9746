//! The protocol as a `stateright::Model`: its steps (`steps.rs`) and its properties
//! (`props.rs`), the liveness one only where automatic assignment runs.

use stateright::{Model, Property};

use crate::props;
use crate::state::{Change, Entry, Round, State};
use crate::steps::{Action, Protocol};

impl Model for Protocol {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.initial()]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.all_actions(state, actions);
    }

    fn next_state(&self, state: &State, action: Action) -> Option<State> {
        self.step(state, action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties = vec![
            Property::always(props::ONE_OWNER, |_, s: &State| {
                s.store.chats.iter().all(props::one_owner)
            }),
            Property::always(props::WITHIN_CAPACITY, props::within_capacity),
            Property::always(props::ONE_OPEN_CHAT, props::one_open_chat_per_customer),
            Property::always(props::DENSE_AND_KEPT, |_, s: &State| {
                s.store.chats.iter().all(props::dense) && props::acked_kept(s)
            }),
            Property::always(props::NOTHING_WRITTEN_WHEN_ENDED, |_, s: &State| {
                s.store.chats.iter().all(props::nothing_written_when_ended)
            }),
            // Reachability: the bounds are large enough to reach what the invariants
            // are about (a test asserts that each is found).
            Property::sometimes(REACHES_FULL_OFFICER, |m, s: &State| {
                props::someone_full(m, s).is_some() && !s.store.pending().is_empty()
            }),
            Property::sometimes(REACHES_SECOND_CHAT, |_, s: &State| {
                s.store
                    .chats
                    .iter()
                    .any(|c| c.customer == 0 && c.status.is_open())
                    && s.store
                        .chats
                        .iter()
                        .any(|c| c.customer == 0 && !c.status.is_open())
            }),
            Property::sometimes(REACHES_REOPEN, |_, s: &State| {
                s.store.chats.iter().any(|c| {
                    c.log.iter().any(|l| {
                        matches!(
                            l.entry,
                            Entry::System {
                                change: Change::Reopened,
                                ..
                            }
                        )
                    })
                })
            }),
        ];
        if self.cfg.auto {
            properties.push(Property::eventually(
                props::EVENTUALLY_ASSIGNED,
                props::settled,
            ));
            properties.push(Property::sometimes(REACHES_TWO_ROUNDS, |_, s: &State| {
                s.nodes.len() > 1
                    && s.nodes
                        .iter()
                        .all(|n| matches!(n.round, Round::Giving { .. }))
            }));
            properties.push(Property::sometimes(
                REACHES_AUTO_ASSIGNED,
                |_, s: &State| {
                    s.store.chats.iter().any(|c| {
                        c.log.iter().any(|l| {
                            matches!(
                                l.entry,
                                Entry::System {
                                    change: Change::Assigned,
                                    ..
                                }
                            )
                        })
                    })
                },
            ));
        }
        properties
    }
}

/// `sometimes`: an officer is full while a chat waits.
pub const REACHES_FULL_OFFICER: &str = "an officer is full while a chat waits";
/// `sometimes`: a customer has an ended chat and an open one.
pub const REACHES_SECOND_CHAT: &str = "a customer has an ended chat and an open one";
/// `sometimes`: a chat was reopened.
pub const REACHES_REOPEN: &str = "a chat was reopened";
/// `sometimes`: both nodes are giving chats at once.
pub const REACHES_TWO_ROUNDS: &str = "both nodes give chats at once";
/// `sometimes`: a chat was assigned automatically.
pub const REACHES_AUTO_ASSIGNED: &str = "a chat was assigned automatically";
