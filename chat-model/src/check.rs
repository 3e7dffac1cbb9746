//! Running the checker: exhaustively (breadth first, every reachable state), or by
//! random simulation for bounds too large for that; and a counterexample printed as the
//! steps that lead to it, for docs/PROTOCOL.md.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use stateright::{Checker, Model};

use crate::state::{InFlight, Round, State};
use crate::steps::{Action, Protocol};

/// A path through the model: each state with the step taken from it (none for the
/// last).
pub type Trace = Vec<(State, Option<Action>)>;

/// What a run of the checker found.
#[derive(Debug)]
pub struct Outcome {
    /// States generated (with repeats).
    pub states: usize,
    /// Distinct states.
    pub unique: usize,
    /// The longest path explored.
    pub max_depth: usize,
    /// How long it took.
    pub elapsed: Duration,
    /// Properties that failed (`always`, `eventually`), each with its trace.
    pub failures: Vec<(&'static str, Trace)>,
    /// `sometimes` properties that were reached.
    pub reached: Vec<&'static str>,
}

fn outcome(model: &Protocol, checker: &impl Checker<Protocol>, started: Instant) -> Outcome {
    let mut failures = Vec::new();
    let mut reached = Vec::new();
    for property in model.properties() {
        if let Some(path) = checker.discovery(property.name) {
            if property.expectation.discovery_is_failure() {
                failures.push((property.name, path.into_vec()));
            } else {
                reached.push(property.name);
            }
        }
    }
    failures.sort_by_key(|(name, _)| *name);
    reached.sort();
    Outcome {
        states: checker.state_count(),
        unique: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed: started.elapsed(),
        failures,
        reached,
    }
}

/// Every reachable state of `model`, breadth first on `threads` threads.
pub fn exhaustive(model: Protocol, threads: usize) -> Outcome {
    let started = Instant::now();
    let checker = model.clone().checker().threads(threads).spawn_bfs().join();
    outcome(&model, &checker, started)
}

/// Breadth first on one thread until the first failure of a safety or liveness
/// property (or every state): for the weakened variants, whose counterexample is near
/// and, found this way, as short as any.
pub fn first_failure(model: Protocol) -> Outcome {
    let started = Instant::now();
    let checker = model
        .clone()
        .checker()
        .finish_when(stateright::HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    outcome(&model, &checker, started)
}

/// Random walks from the initial state to a terminal one, for `time`, each walk's
/// choices from `seed` onwards.
pub fn simulate(model: Protocol, threads: usize, seed: u64, time: Duration) -> Outcome {
    let started = Instant::now();
    let checker = model
        .clone()
        .checker()
        .threads(threads)
        .timeout(time)
        .spawn_simulation(seed, stateright::UniformChooser)
        .join();
    outcome(&model, &checker, started)
}

/// A trace as numbered lines: each step, and the store after it (chats and officers'
/// loads), for a person to follow.
pub fn render(model: &Protocol, trace: &[(State, Option<Action>)]) -> String {
    let mut out = String::new();
    for (i, (state, action)) in trace.iter().enumerate() {
        if i == 0 {
            let _ = writeln!(out, "start: {}", describe(model, state));
        }
        let Some(action) = action else { continue };
        let Some((next, _)) = trace.get(i + 1) else {
            continue;
        };
        let _ = writeln!(
            out,
            "{:>2}. {}\n    -> {}",
            i + 1,
            step_name(state, action),
            describe(model, next)
        );
    }
    out
}

fn step_name(state: &State, action: &Action) -> String {
    match action {
        Action::Start(op) => format!("starts {op:?}"),
        Action::Step(who) => {
            let what = match &state.in_flight[state.slot(*who)] {
                InFlight::Idle => "nothing".to_string(),
                InFlight::Decide(intent) => format!("reads chat {} again and decides", intent.chat),
                InFlight::Write(intent, plan) => format!(
                    "writes {:?} of chat {} (transition {:?} -> {:?} {:?})",
                    intent.what, intent.chat, plan.expected, plan.status, plan.owner
                ),
                InFlight::Append { chat, n, .. } => format!("appends message {n} to chat {chat}"),
                InFlight::Route(chat) => {
                    format!("login's own attempt reads the queue and the officers for chat {chat}")
                }
                InFlight::Give { chat, officer, .. } => {
                    format!("login's own attempt gives chat {chat} to o{officer}")
                }
            };
            format!("{who:?} {what}")
        }
        Action::Round(node) => {
            let what = match &state.nodes[*node as usize].round {
                Round::Idle | Round::Pass => {
                    "reads the queue and the eligible officers".to_string()
                }
                Round::Giving {
                    waiting,
                    candidates,
                    ..
                } => format!(
                    "gives chat {} to o{}",
                    waiting[0].0,
                    crate::steps::pick(waiting[0].1, candidates).unwrap_or_default()
                ),
            };
            format!("node {node}'s round {what}")
        }
    }
}

/// The store in one line: each chat's customer, status, owner and last seq, and each
/// officer's load, availability and connection.
pub fn describe(model: &Protocol, state: &State) -> String {
    let chats: Vec<String> = state
        .store
        .chats
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let owner = c.owner.map_or(String::new(), |o| format!(" o{o}"));
            format!(
                "chat {i} (c{}) {:?}{owner} seq {}",
                c.customer, c.status, c.last_seq
            )
        })
        .collect();
    let officers: Vec<String> = (0..model.cfg.officers())
        .map(|o| {
            let rec = &state.store.officers[o as usize];
            format!(
                "o{o} {}/{}{}{}",
                state.store.open_chats(o),
                model.cfg.capacities[o as usize],
                if rec.available { "" } else { " away" },
                if rec.connected { "" } else { " offline" }
            )
        })
        .collect();
    format!("[{}] officers [{}]", chats.join(", "), officers.join(", "))
}
