//! A model of the queue protocol (issue 22), checked with the `stateright` model
//! checker, and the driver of the model-based tests that hold the real stores to it.
//! Dev-only: nothing shipped depends on this crate. docs/PROTOCOL.md says what the model
//! states and what was checked.
//!
//! Layout:
//! - `config.rs`: the bounds (officers and their capacities, customers, chats, nodes,
//!   operations) and the switches (automatic assignment, the sweep, the weakened step).
//! - `state.rs`: the state: the store, each actor's operation in flight, each node's
//!   round.
//! - `policy.rs`: `chatcore::policy`'s decisions, as the model needs them.
//! - `steps.rs`: the steps, each one atomic store call of the code.
//! - `props.rs`: the invariants and the liveness goal, as plain functions.
//! - `model.rs`: the `stateright::Model`.
//! - `sequential.rs`: operations run one at a time to completion, as the model-based
//!   tests drive a real `ChatService`.
//! - `check.rs`: running the checker (exhaustive, simulation) and printing a trace.

pub mod check;
pub mod config;
pub mod model;
pub mod policy;
pub mod props;
pub mod sequential;
pub mod state;
pub mod steps;

pub use config::{ModelConfig, Weakening};
pub use state::State;
pub use steps::{Action, Op, Protocol};
