//! Two chat-http processes on one PostgreSQL database (`--database-url`), as behind a
//! load balancer without sticky sessions: a customer on node A and an officer on node B
//! talk live. The database is a throwaway cluster from `chat_postgres::testing` (or
//! `CHAT_TEST_DATABASE_URL`); without PostgreSQL the test skips, or fails under `CI`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chat_postgres::testing::TestPg;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_chat-http");
const PATIENCE: Duration = Duration::from_secs(10);

/// One server process; killed on drop.
struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(url: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["--bind", "127.0.0.1:0", "--log", "warn"])
            .env("CHAT_DATABASE_URL", url)
            .env_remove("CHAT_ADMIN_TOKEN")
            .env_remove("CHAT_CUSTOMER_SECRET")
            .env_remove("CHAT_DB")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start chat-http");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read banner");
        let base = line
            .trim()
            .strip_prefix("chat-http listening on ")
            .unwrap_or_else(|| panic!("unexpected banner line {line:?}"))
            .to_string();
        // Keep draining the banner so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        Self { child, base }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    async fn ws(&self, token: &str) -> Ws {
        let url = format!("{}/ws", self.base.replacen("http://", "ws://", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connect");
        let mut ws = Ws(stream);
        ws.send(json!({ "type": "auth", "token": token })).await;
        assert_eq!(ws.next_of("ready").await["type"], "ready");
        ws
    }
}

struct Ws(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Ws {
    async fn send(&mut self, v: Value) {
        self.0
            .send(Message::text(v.to_string()))
            .await
            .expect("send frame");
    }

    /// The next frame of type `kind`, skipping others.
    async fn next_of(&mut self, kind: &str) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_on_node_a_and_officer_on_node_b_talk_live() {
    let Some(pg) = TestPg::start("customer_on_node_a_and_officer_on_node_b_talk_live") else {
        return;
    };
    let url = TestPg::url(&pg.database().await);
    let a = Node::start(&url);
    let b = Node::start(&url);

    // The officer works on node B and watches the queue there.
    b.post("/api/officers", None, json!({ "id": "amy" })).await;
    let officer = b
        .post("/api/officers/login", None, json!({ "officerId": "amy" }))
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut officer_ws = b.ws(&officer).await;
    officer_ws.send(json!({ "type": "join_officers" })).await;
    officer_ws.next_of("joined").await;

    // A customer logs in on node A: the chat appears in node B's queue live.
    let login = a
        .post(
            "/api/customers/login",
            None,
            json!({ "customerId": "cust-1" }),
        )
        .await;
    let (customer, chat) = (
        login["token"].as_str().unwrap().to_string(),
        login["chat"]["id"].as_str().unwrap().to_string(),
    );
    let created = officer_ws.next_of("queue_chat_created").await;
    assert_eq!(created["chat"]["id"], chat);

    // The officer claims on B and joins the chat; the customer writes on A.
    b.post(
        &format!("/api/officers/amy/claim/{chat}"),
        Some(&officer),
        json!({}),
    )
    .await;
    officer_ws
        .send(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    officer_ws.next_of("joined").await;
    let mut customer_ws = a.ws(&customer).await;
    customer_ws
        .send(json!({ "type": "join_chat", "chatId": chat, "afterSeq": 0 }))
        .await;
    customer_ws.next_of("joined").await;

    a.post(
        &format!("/api/chats/{chat}/messages"),
        Some(&customer),
        json!({ "content": "hello from A" }),
    )
    .await;
    let m = officer_ws.next_of("new_message").await;
    assert_eq!(
        (&m["message"]["seq"], &m["message"]["content"]),
        (&json!(1), &json!("hello from A"))
    );
    // And back: the officer answers on B, the customer's socket on A gets it live.
    b.post(
        &format!("/api/chats/{chat}/messages"),
        Some(&officer),
        json!({ "content": "hi, Amy here" }),
    )
    .await;
    let first = customer_ws.next_of("new_message").await;
    assert_eq!(first["message"]["seq"], 1);
    let answer = customer_ws.next_of("new_message").await;
    assert_eq!(
        (&answer["message"]["seq"], &answer["message"]["content"]),
        (&json!(2), &json!("hi, Amy here"))
    );
}
