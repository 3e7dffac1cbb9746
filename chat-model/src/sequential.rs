//! The model run one operation at a time, as a model-based test drives one real
//! `ChatService`: an operation's steps to completion (the request answered), then every
//! round of automatic assignment it asked for, until nothing is left to do. With one
//! node and nothing at once, every choice is the code's: the officer a round or a login
//! picks is the one the real service picks.

use crate::state::{InFlight, Round, State};
use crate::steps::{Action, Op, Protocol};

impl Protocol {
    /// The operations a test may start now (everyone is idle between operations).
    pub fn ops(&self, s: &State) -> Vec<Op> {
        let mut ops = Vec::new();
        self.startable(s, &mut ops);
        ops
    }

    /// `op` run to completion, then every round until the state is quiet. The budget
    /// is not spent (a test runs as many operations as it likes).
    pub fn run(&self, s: &State, op: Op) -> State {
        let budget = s.budget.max(1);
        let presence_changes = s.presence_changes.max(1);
        let mut s = State {
            budget,
            presence_changes,
            ..s.clone()
        };
        s = self
            .step(&s, Action::Start(op))
            .expect("an operation can start while there is budget");
        while let Some(action) = next_step(self, &s) {
            s = self
                .step(&s, action)
                .expect("a step that is enabled applies");
        }
        s.budget = budget;
        s.presence_changes = presence_changes;
        s
    }
}

/// The one step left to take: the acting operation's, else the lowest node's round.
fn next_step(m: &Protocol, s: &State) -> Option<Action> {
    if let Some(i) = s.in_flight.iter().position(|f| *f != InFlight::Idle) {
        return Some(Action::Step(s.who(i)));
    }
    s.nodes
        .iter()
        .position(|n| n.round != Round::Idle || (n.due && m.cfg.auto))
        .map(|n| Action::Round(n as u8))
}
