//! The model checked: every reachable state for the bounds CI affords, the liveness
//! goal on every run's end, and the checker shown to catch a weakened step and the flaw
//! found in the code (docs/PROTOCOL.md prints their traces). Each test prints its
//! state counts and time (`cargo test -p chat-model --test check -- --nocapture`).

use std::time::Duration;

use chat_model::check::{self, Outcome};
use chat_model::model::{
    REACHES_AUTO_ASSIGNED, REACHES_FULL_OFFICER, REACHES_REOPEN, REACHES_SECOND_CHAT,
    REACHES_TWO_ROUNDS,
};
use chat_model::{ModelConfig, Protocol, Weakening, props};

/// Operations the environment starts in the exhaustive check (see docs/PROTOCOL.md for
/// the counts and times of this and larger budgets).
const BUDGET: u8 = 6;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn report(name: &str, model: &Protocol, outcome: &Outcome) {
    println!(
        "{name}: {} states generated, {} unique, depth {}, {:.1} s",
        outcome.states,
        outcome.unique,
        outcome.max_depth,
        outcome.elapsed.as_secs_f64()
    );
    for (property, trace) in &outcome.failures {
        println!("{name}: FAILED {property}\n{}", check::render(model, trace));
    }
}

fn failed(outcome: &Outcome) -> Vec<&'static str> {
    outcome.failures.iter().map(|(name, _)| *name).collect()
}

#[test]
fn every_reachable_state_keeps_every_invariant() {
    let model = Protocol::new(ModelConfig::small(BUDGET));
    let outcome = check::exhaustive(model.clone(), threads());
    report("exhaustive", &model, &outcome);
    assert_eq!(failed(&outcome), Vec::<&str>::new());
    // Not vacuous: the bounds reach what the invariants are about.
    for reached in [
        REACHES_FULL_OFFICER,
        REACHES_SECOND_CHAT,
        REACHES_REOPEN,
        REACHES_TWO_ROUNDS,
        REACHES_AUTO_ASSIGNED,
    ] {
        assert!(outcome.reached.contains(&reached), "never reached: {reached}");
    }
    assert!(outcome.unique > 100_000, "{} states", outcome.unique);
}

#[test]
fn larger_bounds_keep_every_invariant_in_random_runs() {
    let model = Protocol::new(ModelConfig {
        customers: 3,
        max_chats: 6,
        ..ModelConfig::small(14)
    });
    let outcome = check::simulate(model.clone(), threads(), 22, Duration::from_secs(20));
    report("simulation", &model, &outcome);
    assert_eq!(failed(&outcome), Vec::<&str>::new());
    assert!(outcome.unique > 10_000, "{} states", outcome.unique);
}

#[test]
fn capacity_counted_outside_the_transaction_is_caught() {
    let model = Protocol::new(ModelConfig {
        weakening: Weakening::CapacityOutsideTransaction,
        ..ModelConfig::small(BUDGET)
    });
    let outcome = check::first_failure(model.clone(), threads());
    report("weakened", &model, &outcome);
    assert!(
        failed(&outcome).contains(&props::WITHIN_CAPACITY),
        "the checker must find an officer over capacity: {:?}",
        failed(&outcome)
    );
}

/// The flaw modelling found: a login that names an officer creates the chat assigned
/// to them with no capacity check (`Store::get_or_create_chat`), so an officer at
/// capacity gets one more. The model reproduces it; docs/PROTOCOL.md, "Findings".
#[test]
fn a_login_naming_an_officer_passes_their_capacity() {
    let model = Protocol::new(ModelConfig {
        login_names_officer: true,
        ..ModelConfig::small(4)
    });
    let outcome = check::first_failure(model.clone(), threads());
    report("login names officer", &model, &outcome);
    assert!(failed(&outcome).contains(&props::WITHIN_CAPACITY));
}
