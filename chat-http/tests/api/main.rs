//! Integration tests of chat-http: the real server on port 0 with a temporary SQLite
//! file, driven by real HTTP and WebSocket clients (one test binary, so one link).

mod helpers;
#[path = "../support/server.rs"]
mod server;

mod authz;
mod browser;
mod crash;
mod faults;
mod fuzz;
mod hardening;
mod identity;
mod limits;
mod process;
mod races;
mod rest;
mod robustness;
mod soak;
mod ws;
