//! Socket.IO across two nodes on one PostgreSQL: a Socket.IO client on node A hears
//! what was done on node B through the engine's bus (`PgBus`), with no Socket.IO adapter
//! of its own; the real `socket.io-client` run by Node (`support/node.rs`).

use crate::{node, two_nodes};

/// The Quick Test with the officer's sockets on node A and the customer's REST and
/// sockets on node B, then an officer on A dropped from a chat's room by a claim made on
/// B, and a customer on B's `/ws` talking with an officer on A's Socket.IO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_clients_on_node_a_hear_what_happens_on_node_b() {
    if !node::ready() {
        return;
    }
    let Some(nodes) = two_nodes("socketio_clients_on_node_a_hear_node_b", &[]) else {
        return;
    };
    let alice = nodes.a.api.officer("alice").await;
    let bob = nodes.b.api.officer("bob").await;
    let (a, b) = (nodes.a.api.base.clone(), nodes.b.api.base.clone());
    for transports in ["polling", "websocket"] {
        let env = [
            ("CHAT_URL", a.as_str()),
            ("CHAT_URL_B", b.as_str()),
            ("ALICE", alice.as_str()),
            ("BOB", bob.as_str()),
            ("TRANSPORTS", transports),
        ];
        let quick = node::scenario("quick", &env).await;
        assert_eq!(quick["transports"]["officer"], transports, "{quick}");
        let chat = quick["chat"].as_str().unwrap();
        let stored = nodes.b.api.all_messages(&alice, chat).await;
        let last = stored.last().unwrap()["seq"].clone();
        assert!(
            quick["officerSaw"]
                .as_array()
                .unwrap()
                .iter()
                .any(|seen| seen[0] == last),
            "the officer on A missed B's last message: {quick}"
        );

        let losing = node::scenario("losing", &env).await;
        assert_eq!(losing["dropped"]["code"], "forbidden", "{losing}");

        let replay = node::scenario("replay", &env).await;
        assert!(replay["after"].as_array().unwrap().len() >= 15, "{replay}");

        let mixed = node::scenario("mixed", &env).await;
        assert_eq!(mixed["overWs"], mixed["overSio"], "{mixed}");
    }
}
