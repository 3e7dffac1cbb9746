//! The checker from the command line, for bounds and runs beyond what CI's tests take:
//!
//! ```text
//! cargo run -p chat-model --release -- exhaustive [BUDGET]
//! cargo run -p chat-model --release -- history [BUDGET]
//! cargo run -p chat-model --release -- simulate BUDGET SECONDS [SEED]
//! cargo run -p chat-model --release -- login-names-officer [BUDGET]
//! cargo run -p chat-model --release -- weakened | no-sweep | round-stops [BUDGET]
//! ```
//!
//! Prints the state counts, the time taken, every property that failed with its trace,
//! and the `sometimes` properties reached.

use std::time::Duration;

use chat_model::check::{self, Outcome};
use chat_model::{ModelConfig, Protocol, Weakening};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> u64 {
        args.get(i)
            .map(|a| a.parse().expect("a number"))
            .unwrap_or(default)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let budget = arg(1, 4) as u8;
    let (cfg, outcome) = match args.first().map(String::as_str) {
        Some("exhaustive") => {
            let cfg = ModelConfig::small(budget);
            (cfg.clone(), check::exhaustive(Protocol::new(cfg), threads))
        }
        Some("history") => {
            let cfg = ModelConfig {
                history: true,
                ..ModelConfig::small(budget)
            };
            (cfg.clone(), check::exhaustive(Protocol::new(cfg), threads))
        }
        Some("simulate") => {
            // The bounds of the simulation test (tests/check.rs).
            let cfg = ModelConfig {
                customers: 3,
                max_chats: 6,
                max_in_flight: 4,
                presence_changes: 6,
                ..ModelConfig::small(budget)
            };
            let secs = arg(2, 60);
            let seed = arg(3, 1);
            (
                cfg.clone(),
                check::simulate(Protocol::new(cfg), threads, seed, Duration::from_secs(secs)),
            )
        }
        Some("weakened") => {
            let cfg = ModelConfig {
                weakening: Weakening::CapacityOutsideTransaction,
                ..ModelConfig::small(budget)
            };
            (cfg.clone(), check::first_failure(Protocol::new(cfg)))
        }
        Some("login-names-officer") => {
            let cfg = ModelConfig {
                login_names_officer: true,
                ..ModelConfig::small(budget)
            };
            (cfg.clone(), check::exhaustive(Protocol::new(cfg), threads))
        }
        Some("round-stops") => {
            let cfg = ModelConfig {
                sweep: false,
                pass_after_lost: false,
                eligible_at_write: false,
                ..ModelConfig::small(budget)
            };
            (cfg.clone(), check::first_failure(Protocol::new(cfg)))
        }
        Some("no-sweep") => {
            let cfg = ModelConfig {
                sweep: false,
                ..ModelConfig::small(budget)
            };
            (cfg.clone(), check::exhaustive(Protocol::new(cfg), threads))
        }
        _ => {
            eprintln!(
                "usage: chat-model exhaustive [BUDGET] | history [BUDGET] | simulate BUDGET SECONDS [SEED] | \
                 weakened [BUDGET] | login-names-officer [BUDGET] | no-sweep [BUDGET] | round-stops [BUDGET]"
            );
            std::process::exit(2);
        }
    };
    print(&Protocol::new(cfg), &outcome);
}

fn print(model: &Protocol, outcome: &Outcome) {
    println!("config: {:?}", model.cfg);
    println!(
        "states: {} generated, {} unique, max depth {}, {:.1} s",
        outcome.states,
        outcome.unique,
        outcome.max_depth,
        outcome.elapsed.as_secs_f64()
    );
    for name in &outcome.reached {
        println!("reached: {name}");
    }
    if outcome.failures.is_empty() {
        println!("no property failed");
    }
    for (name, trace) in &outcome.failures {
        println!("FAILED: {name}\n{}", check::render(model, trace));
    }
}
