//! Two chat-http processes on one PostgreSQL database (`--database-url`), as behind a
//! load balancer without sticky sessions. The database is a throwaway cluster from
//! `chat_postgres::testing` (or `CHAT_TEST_DATABASE_URL`); without PostgreSQL the tests
//! skip, or fail under `CI`.
//!
//! - `traffic`: a customer on node A and an officer on node B talk live; officers on both
//!   nodes race to claim the same chats; node A is killed (SIGKILL) in the middle of
//!   traffic while node B keeps serving.
//! - `rights`: a right that changes on one node is enforced on the other's sockets (a
//!   claim, a logout, a disabled officer).
//! - `lifecycle`: resolve, release, transfer and reopen made on one node, heard on the
//!   other's sockets; reopens, transfers, resolutions and logins racing through both
//!   nodes, each with one outcome and dense seqs.
//! - `marks`: typing and read marks told on one node reach the other side's socket on
//!   the other, and a mark moves only forward through either node.
//! - `routing`: presence known on both nodes and forgotten when a node dies, automatic
//!   assignment of a chat started on one node to an officer connected to the other, and
//!   capacity held when both nodes assign at once.
//! - `attachments`: a file uploaded through one node, announced on and downloaded
//!   through the other (its bytes in the shared database).
//! - `webhooks`: events made on both nodes delivered once each, in order per chat, to a
//!   real receiver, over plain HTTP and over TLS (a receiver whose certificate a CA
//!   given with `--webhook-ca` signed); a node killed mid-delivery hands its deliveries
//!   over.
//! - `socketio`: Socket.IO clients (the real socket.io-client) on one node hear what
//!   happens on the other, through the engine's bus.
//! - `stale_reads`: a message, a login or a claim decided on a chat as read before the
//!   other node changed it (a resolution, a transfer, a release).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[path = "../support/node.rs"]
mod node;
#[path = "../support/receiver.rs"]
mod receiver;
#[path = "../support/server.rs"]
mod server;
#[path = "../support/tls.rs"]
mod tls;

mod attachments;
mod lifecycle;
mod marks;
mod rights;
mod routing;
mod socketio;
mod stale_reads;
mod traffic;
mod webhooks;

use chat_postgres::testing::TestDatabase;
use server::{Api, Server};

const PATIENCE: Duration = Duration::from_secs(10);

/// Two nodes (the binary in open mode, with `extra` arguments) on one fresh database.
/// The nodes are stopped before the database goes.
pub(crate) struct TwoNodes {
    pub(crate) a: Server,
    pub(crate) b: Server,
    _database: TestDatabase,
}

/// [`TwoNodes`] for `test`; `None` (the test skips) without PostgreSQL outside `CI`.
pub(crate) fn two_nodes(test: &str, extra: &[&str]) -> Option<TwoNodes> {
    let database = TestDatabase::start(test)?;
    let url = database.url();
    Some(TwoNodes {
        a: Server::on_postgres_with(&url, extra),
        b: Server::on_postgres_with(&url, extra),
        _database: database,
    })
}

/// A WebSocket on `api`'s server, authenticated with `token`.
pub(crate) async fn ws(api: &Api, token: &str) -> Ws {
    let url = format!("{}/ws", api.base.replacen("http://", "ws://", 1));
    let (stream, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connect");
    let mut ws = Ws(stream);
    ws.send(json!({ "type": "auth", "token": token })).await;
    assert_eq!(ws.next_of("ready").await["type"], "ready");
    ws
}

/// Every data frame that arrives within `quiet` of the previous one.
pub(crate) async fn frames_until_quiet(ws: &mut Ws, quiet: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(quiet, ws.0.next()).await {
        if let Message::Text(text) = frame {
            got.push(serde_json::from_str(&text).expect("JSON frame"));
        }
    }
    got
}

pub(crate) struct Ws(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Ws {
    pub(crate) async fn send(&mut self, v: Value) {
        self.0
            .send(Message::text(v.to_string()))
            .await
            .expect("send frame");
    }

    /// Joins a chat, replaying what comes after `after_seq`.
    pub(crate) async fn join(&mut self, chat: &str, after_seq: u64) {
        self.send(json!({ "type": "join_chat", "chatId": chat, "afterSeq": after_seq }))
            .await;
        let joined = self.next_of("joined").await;
        assert_eq!(joined["room"], format!("chat:{chat}"));
    }

    /// The next frame of type `kind` that `matches`, skipping others.
    pub(crate) async fn next_where(
        &mut self,
        kind: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = tokio::time::timeout(left, self.next_of(kind))
                .await
                .unwrap_or_else(|_| panic!("no matching {kind} frame in time"));
            if matches(&frame) {
                return frame;
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub(crate) async fn next_of(&mut self, kind: &str) -> Value {
        let wait = async {
            loop {
                match self.0.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(&t).expect("JSON frame");
                        if v["type"] == kind {
                            return v;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("socket ended waiting for {kind}: {other:?}"),
                }
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame in time"))
    }
}
