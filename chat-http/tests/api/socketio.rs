//! Socket.IO at `/socket.io/` with the real `socket.io-client` run by Node
//! (`tests/socketio/scenarios.mjs`, through `support/node.rs`), against the real binary on
//! a SQLite file: the original design's Quick Test on each Engine.IO transport, replay
//! after a reconnect, rights re-checked while a socket uses them, the contract's
//! refusals, the frame budget and the room limit, and a customer on `/ws` talking with an
//! officer on Socket.IO. The scenario asserts as it goes; these tests check its report
//! again against the store.

use serde_json::Value;

use crate::node;
use crate::server::Server;

/// A server in open mode with the officers alice and bob: `(server, alice, bob)`.
async fn desk(dir: &std::path::Path) -> (Server, String, String) {
    let server = Server::start(&dir.join("socketio.db"), &dir.join("server.log"));
    let alice = server.api.officer("alice").await;
    let bob = server.api.officer("bob").await;
    (server, alice, bob)
}

async fn run(server: &Server, scenario: &str, alice: &str, bob: &str, transports: &str) -> Value {
    let url = server.api.base.clone();
    let mut env = vec![("CHAT_URL", url.as_str()), ("ALICE", alice), ("BOB", bob)];
    if !transports.is_empty() {
        env.push(("TRANSPORTS", transports));
    }
    node::scenario(scenario, &env).await
}

/// The Quick Test's report checked against the store: each side saw the chat's messages
/// in seq order, the officer all three.
async fn check_quick(server: &Server, alice: &str, report: &Value) {
    let chat = report["chat"].as_str().unwrap();
    let stored = server.api.all_messages(alice, chat).await;
    let texts: Vec<(u64, String)> = stored
        .iter()
        .filter(|m| m["senderType"] != "system")
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(texts.len(), 3, "{stored:?}");
    let saw: Vec<(u64, String)> = report["officerSaw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_str().unwrap().to_string()))
        .filter(|seen| texts.contains(seen))
        .collect();
    assert_eq!(saw, texts, "the officer's view: {report}");
}

#[tokio::test]
async fn the_quick_test_over_socketio_polling_then_upgraded() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, alice, bob) = desk(dir.path()).await;
    let report = run(&server, "quick", &alice, &bob, "").await;
    check_quick(&server, &alice, &report).await;
}

#[tokio::test]
async fn the_quick_test_over_socketio_long_polling_only() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, alice, bob) = desk(dir.path()).await;
    let report = run(&server, "quick", &alice, &bob, "polling").await;
    assert_eq!(report["transports"]["officer"], "polling", "{report}");
    assert_eq!(report["transports"]["customer"], "polling", "{report}");
    check_quick(&server, &alice, &report).await;
}

#[tokio::test]
async fn the_quick_test_over_socketio_websocket_only() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, alice, bob) = desk(dir.path()).await;
    let report = run(&server, "quick", &alice, &bob, "websocket").await;
    assert_eq!(report["transports"]["officer"], "websocket", "{report}");
    assert_eq!(report["transports"]["customer"], "websocket", "{report}");
    check_quick(&server, &alice, &report).await;
}

/// What was sent while a client was away, and while it rejoined, arrives once each and
/// in order after `join_chat` with `afterSeq`; on both transports.
#[tokio::test]
async fn a_rejoin_with_after_seq_replays_with_no_gap_and_no_duplicate() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, alice, bob) = desk(dir.path()).await;
    for transports in ["polling", "websocket"] {
        let report = run(&server, "replay", &alice, &bob, transports).await;
        let before: Vec<u64> = serde_json::from_value(report["before"].clone()).unwrap();
        let after: Vec<u64> = serde_json::from_value(report["after"].clone()).unwrap();
        let last = report["lastSeq"].as_u64().unwrap();
        let all: Vec<u64> = before.iter().chain(&after).copied().collect();
        assert_eq!(*all.last().unwrap(), last, "{report}");
        assert!(
            all.windows(2).all(|w| w[1] == w[0] + 1),
            "{transports}: {all:?}"
        );
        assert!(after.len() >= 15, "{transports}: {report}");
    }
}

/// Rights re-checked while used: an officer reading a pending chat is dropped from its
/// room when a colleague claims it, as on `/ws`, and cannot join it again.
#[tokio::test]
async fn an_officer_who_loses_the_claim_is_dropped_from_the_chats_room() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, alice, bob) = desk(dir.path()).await;
    let report = run(&server, "losing", &alice, &bob, "").await;
    assert_eq!(report["dropped"]["code"], "forbidden", "{report}");
    assert_eq!(report["rejoin"]["error"]["code"], "forbidden", "{report}");
}

/// The handshake refuses a bad or missing token (`/ws`'s 4401); each request's refusal
/// is its acknowledgement, in the contract's error shape; a logout ends the socket.
#[tokio::test]
async fn refusals_are_the_contracts_and_a_logout_ends_the_socket() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, alice, bob) = desk(dir.path()).await;
    let report = run(&server, "refusals", &alice, &bob, "").await;
    for (ack, code) in [
        ("officers", "forbidden"),
        ("malformed", "invalid_parameter"),
        ("unknown", "invalid_frame"),
        ("wrongShape", "invalid_frame"),
    ] {
        assert_eq!(report["acks"][ack]["error"]["code"], code, "{report}");
        assert!(
            report["acks"][ack]["error"]["message"].is_string(),
            "{report}"
        );
    }
    assert_eq!(report["ended"]["code"], "unauthorized", "{report}");
    assert_eq!(report["reason"], "io server disconnect", "{report}");
}

/// `/ws`'s frame budget (200 per 10 s by default) holds for Socket.IO's events: past
/// it, each is acknowledged with `rate_limited` and `retryAfter`.
#[tokio::test]
async fn the_frame_budget_of_ws_holds_for_socketio_events() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, alice, bob) = desk(dir.path()).await;
    let report = run(&server, "budget", &alice, &bob, "websocket").await;
    // 200 at once, and the few the budget earns back meanwhile (one per 50 ms).
    let allowed = report["allowed"].as_u64().unwrap();
    assert!((200..=215).contains(&allowed), "{report}");
    assert_eq!(report["refused"]["code"], "rate_limited", "{report}");
}

/// A customer on `/ws` and an officer on Socket.IO see each other live, with the same
/// payloads.
#[tokio::test]
async fn a_customer_on_ws_and_an_officer_on_socketio_see_each_other() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (server, alice, bob) = desk(dir.path()).await;
    for transports in ["polling", "websocket"] {
        let report = run(&server, "mixed", &alice, &bob, transports).await;
        assert_eq!(report["overWs"], report["overSio"], "{report}");
        assert_eq!(report["transport"], transports, "{report}");
    }
}

/// `/ws`'s room limit holds for Socket.IO joins: past it the join's acknowledgement
/// says `too_many_rooms`, the socket stays open, and a leave makes room again.
#[tokio::test]
async fn the_room_limit_of_ws_holds_for_socketio_joins() {
    if !node::ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("rooms.db"),
        &dir.path().join("server.log"),
        &["--limit-ws-rooms", "2"],
    );
    let alice = server.api.officer("alice").await;
    let bob = server.api.officer("bob").await;
    for transports in ["polling", "websocket"] {
        let report = run(&server, "rooms", &alice, &bob, transports).await;
        assert_eq!(report["refused"]["code"], "too_many_rooms", "{report}");
        assert_eq!(report["transport"], transports, "{report}");
    }
}
