//! Programs that show how to embed `chatcore` in another Rust service. Each is an example
//! target, run from the workspace root with `cargo run --example NAME`:
//!
//! - `minimal`: open a SQLite store, create an officer, log a customer in, claim,
//!   exchange messages and watch events: the whole flow in one page.
//! - `tcp_chat`: a line-based TCP front end on the same core, showing that the engine is
//!   transport-agnostic (it gets the same events as the WebSocket server).
//! - `metered_store`: a custom `Store` that wraps another and counts calls, passing the
//!   store conformance suite.
//! - `greeter_bot`: an event-driven bot that claims new chats for a bot officer, up to a
//!   limit, and greets the customer.
//! - `remote_bot`: the same kind of bot in another process, on a running server, with
//!   `chat-client` (the typed client of the wire contract).
//!
//! This library itself is empty; `tests/run_examples.rs` runs each example and checks
//! what it prints.
