//! The engine's metrics: their names, what each means, and the small helpers the engine
//! records them through. Recorded with the `metrics` facade: a library never owns the
//! registry, so with no recorder installed (an embedder that does not want metrics)
//! every call here is a no-op. A binary installs one (chat-http's Prometheus recorder)
//! and calls [`describe`] so that each name has its help text, and each series with a
//! bounded label set exists from the start (at zero) rather than from its first event.
//!
//! Labels are always from small fixed sets (a limit's name, an error class), never from
//! ids, paths or anything a client chooses.

use std::time::Duration;

/// Chats waiting in the queue, as this node's view of the queue's order has them
/// (refreshed at most a second after a change on any node): every node reports the
/// same figure, so dashboards take `max` over the nodes.
pub const QUEUE_LENGTH: &str = "chat_queue_length";
/// How long the oldest waiting chat has waited, in seconds (0 with an empty queue),
/// from the same view, measured when read.
pub const QUEUE_OLDEST_WAIT: &str = "chat_queue_oldest_wait_seconds";
/// Histogram: seconds from a chat entering the queue (its creation) to the first message
/// an officer sends in it, observed once per chat by the node that stored that message.
pub const FIRST_REPLY: &str = "chat_first_reply_seconds";
/// Counter: chats resolved.
pub const RESOLUTIONS: &str = "chat_resolutions_total";
/// Counter: store failures the engine met, by `class` (`unavailable`: a retry may
/// succeed, such as a full disk or a lost connection; `backend`: any other failure).
pub const STORE_ERRORS: &str = "chat_store_errors_total";
/// Histogram: writes committed together in one SQLite transaction (group commit).
pub const WRITE_BATCH: &str = "chat_store_write_batch_size";
/// Histogram: events sent to the other nodes in one PostgreSQL `NOTIFY` transaction.
pub const NOTIFY_BATCH: &str = "chat_bus_notify_batch_size";
/// Counter: requests refused by an abuse limit, by `limit` (the limit's name).
pub const RATE_LIMITED: &str = "chat_rate_limited_total";

/// The store error classes [`STORE_ERRORS`] counts.
const STORE_ERROR_CLASSES: [&str; 2] = ["unavailable", "backend"];

/// The names of the engine's limits, as [`RATE_LIMITED`]'s `limit` label gives them.
pub mod limit {
    /// Failed logins per officer id.
    pub const OFFICER_LOGIN_FAILURES: &str = "officer_login_failures";
    /// Messages per sender.
    pub const SENDS: &str = "sends";
    /// Uploads per sender.
    pub const UPLOADS: &str = "uploads";
    /// Uploads at once, per sender and per node (no free slot).
    pub const UPLOAD_SLOTS: &str = "upload_slots";
}

/// Gives every engine metric its help text and unit, and registers the series whose
/// labels are known in advance at zero. Call once after installing a recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        QUEUE_LENGTH,
        Unit::Count,
        "Chats waiting in the queue (same on every node: take max)"
    );
    describe_gauge!(
        QUEUE_OLDEST_WAIT,
        Unit::Seconds,
        "How long the oldest waiting chat has waited"
    );
    describe_histogram!(
        FIRST_REPLY,
        Unit::Seconds,
        "Time from a chat entering the queue to the first officer message in it"
    );
    describe_counter!(RESOLUTIONS, Unit::Count, "Chats resolved");
    describe_counter!(STORE_ERRORS, Unit::Count, "Store failures by class");
    describe_histogram!(
        WRITE_BATCH,
        Unit::Count,
        "Writes committed in one SQLite transaction"
    );
    describe_histogram!(
        NOTIFY_BATCH,
        Unit::Count,
        "Events sent to other nodes in one PostgreSQL NOTIFY transaction"
    );
    describe_counter!(
        RATE_LIMITED,
        Unit::Count,
        "Requests refused by an abuse limit, by limit"
    );
    // Asking for a handle registers the series (at zero); the handle is not needed.
    let _ = metrics::gauge!(QUEUE_LENGTH);
    let _ = metrics::gauge!(QUEUE_OLDEST_WAIT);
    let _ = metrics::histogram!(FIRST_REPLY);
    let _ = metrics::histogram!(WRITE_BATCH);
    let _ = metrics::histogram!(NOTIFY_BATCH);
    let _ = metrics::counter!(RESOLUTIONS);
    for class in STORE_ERROR_CLASSES {
        let _ = metrics::counter!(STORE_ERRORS, "class" => class);
    }
    for name in [
        limit::OFFICER_LOGIN_FAILURES,
        limit::SENDS,
        limit::UPLOADS,
        limit::UPLOAD_SLOTS,
    ] {
        register_limit(name);
    }
}

/// The queue as a node's view has it: how many wait, and how long the oldest has.
pub(crate) fn queue(length: usize, oldest_wait: Duration) {
    metrics::gauge!(QUEUE_LENGTH).set(length as f64);
    metrics::gauge!(QUEUE_OLDEST_WAIT).set(oldest_wait.as_secs_f64());
}

pub(crate) fn first_reply(after: Duration) {
    metrics::histogram!(FIRST_REPLY).record(after.as_secs_f64());
}

pub(crate) fn resolved() {
    metrics::counter!(RESOLUTIONS).increment(1);
}

pub(crate) fn store_error(class: &'static str) {
    metrics::counter!(STORE_ERRORS, "class" => class).increment(1);
}

/// A SQLite write transaction of `writes` writes was run.
#[cfg(feature = "sqlite")]
pub(crate) fn write_batch(writes: usize) {
    metrics::histogram!(WRITE_BATCH).record(writes as f64);
}

/// Records a `NOTIFY` transaction of `events` events (for chat-postgres's bus).
pub fn notify_batch(events: usize) {
    metrics::histogram!(NOTIFY_BATCH).record(events as f64);
}

/// Registers a limit's refusal counter at zero (for the limits of a transport, which
/// [`describe`] does not know).
pub fn register_limit(limit: &'static str) {
    let _ = metrics::counter!(RATE_LIMITED, "limit" => limit);
}

pub(crate) fn rate_limited(limit: &'static str) {
    metrics::counter!(RATE_LIMITED, "limit" => limit).increment(1);
}
