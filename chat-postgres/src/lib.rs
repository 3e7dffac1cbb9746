//! `chat-postgres`: PostgreSQL for `chatcore`, so that several server nodes can share
//! one database and one queue. It adds storage and transport only; every rule of the
//! chat stays in `chatcore`.
//!
//! # Layout
//!
//! - `store/`: [`PgStore`], `chatcore::Store` on a deadpool-postgres pool; passes
//!   `chatcore::conformance`. `mod.rs` the options and the pool, `rows.rs` the
//!   statements and the row mapping, `ops.rs` the `Store` impl.
//! - `schema.rs`: versioned migrations in `schema_migrations`, applied under an advisory
//!   lock (concurrent nodes migrate once).
//! - `blobs.rs`: [`PgBlobStore`], `chatcore::BlobStore` in the same database (chunked),
//!   so that nodes sharing it share attachments; passes `chatcore::conformance::blobs`.
//! - `bus.rs`: [`PgBus`], `chatcore::EventBus` across nodes over LISTEN/NOTIFY on a
//!   dedicated connection, delivering locally through a `chatcore::LocalBus`.
//! - `error.rs`: the mapping of driver and pool errors to `chatcore::StoreError`.
//! - `testing.rs` (feature `testing`): a throwaway PostgreSQL cluster for tests, and one
//!   fresh database on it for other crates' tests (`TestDatabase`).

mod blobs;
mod bus;
mod error;
mod schema;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use blobs::{CHUNK_BYTES, PgBlobStore};
pub use bus::{CHANNEL, PgBus};
pub use schema::PG_SCHEMA_VERSION;
pub use store::{PgOptions, PgStore};

/// The driver, re-exported so that callers can build a `tokio_postgres::Config`.
pub use tokio_postgres;
