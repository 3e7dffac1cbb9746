//! Integration tests of chat-http: the real server on port 0 with a temporary SQLite
//! file, driven by real HTTP and WebSocket clients (one test binary, so one link).

mod helpers;
#[path = "../support/node.rs"]
mod node;
#[path = "../support/receiver.rs"]
mod receiver;
#[path = "../support/server.rs"]
mod server;
#[path = "../support/tls.rs"]
mod tls;

mod attachments;
mod authz;
mod browser;
mod browser_admin;
mod browser_attachments;
mod browser_axe;
mod browser_console;
mod browser_conversation;
mod browser_customer;
mod browser_files;
mod browser_lifecycle;
mod browser_reports;
mod browser_routing;
mod browser_webhooks;
mod capacity;
mod connections;
mod crash;
mod faults;
mod fuzz;
mod hardening;
mod identity;
mod lifecycle;
mod limits;
mod marks;
mod metrics;
mod openapi;
mod process;
mod races;
mod reads;
mod reports;
mod rest;
mod rights;
mod robustness;
mod routing;
mod soak;
mod socketio;
mod socketio_limits;
mod upload_crash;
mod webhooks;
mod webhooks_tls;
mod ws;
