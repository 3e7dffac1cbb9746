//! Model-based tests of the real code: random operations the model allows, run one at
//! a time through a real `ChatService` (automatic assignment on) on `MemoryStore`,
//! `SqliteStore` (a temporary file) and `PgStore` (a throwaway PostgreSQL cluster;
//! under `CI` it must be there). After every operation the real store, once the desk's
//! task has settled, must be exactly the model's prediction: every chat's status,
//! officer and last seq, its whole timeline (each system entry and message at its seq),
//! each officer's availability, connection and open chats, and every acknowledged
//! message; and it keeps every invariant.
//!
//! A failure prints the seed and the operations so far; `MODEL_SEEDS=from..to` runs
//! other seeds (the default is a fixed few, so CI is repeatable).

mod support;

use std::sync::Arc;

use chat_model::{ModelConfig, Protocol};
use chatcore::{ChatService, LocalBus, MemoryStore, SqliteStore, Store};
use support::{TickingClock, World, config, drive};

/// Operations per run.
const STEPS: usize = 60;

fn seeds() -> std::ops::Range<u64> {
    match std::env::var("MODEL_SEEDS") {
        Ok(range) => {
            let (from, to) = range.split_once("..").expect("MODEL_SEEDS=from..to");
            from.parse().unwrap()..to.parse().unwrap()
        }
        Err(_) => 1..5,
    }
}

/// One node; logins may name an officer (the chat is theirs only if they have room).
fn model() -> Protocol {
    Protocol::new(ModelConfig {
        login_names_officer: true,
        ..ModelConfig::single_node(u8::MAX)
    })
}

async fn on(store: Arc<dyn Store>, seed: u64) {
    let service = ChatService::new(
        store,
        Arc::new(LocalBus::new()),
        config(Arc::new(TickingClock::default())),
    );
    let mut world = World::new(service, model()).await;
    drive(&mut world, seed, STEPS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_follows_the_model() {
    for seed in seeds() {
        on(Arc::new(MemoryStore::new()), seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_follows_the_model() {
    for seed in seeds() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("chat.db")).unwrap();
        on(Arc::new(store), seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_follows_the_model() {
    let Some(pg) = chat_postgres::testing::TestPg::start("postgres_store_follows_the_model") else {
        return;
    };
    for seed in seeds() {
        let config = pg.database().await;
        let store =
            chat_postgres::PgStore::connect_with(config, chat_postgres::PgOptions::default())
                .await
                .unwrap();
        on(Arc::new(store), seed).await;
    }
}
