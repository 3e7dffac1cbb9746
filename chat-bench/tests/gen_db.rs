//! `gen-db` writes a database the real server serves correctly: generated on a small
//! scale (200 chats, 5,000 messages), then read through chat-http over HTTP: the queue,
//! every officer's chats, whole histories paged both ways, and new messages continuing
//! each chat's seq. Then `chat-bench read --dataset` runs against it.

mod common;

use std::collections::HashMap;

use common::{ADMIN_TOKEN, CUSTOMER_SECRET, Server, bench, passed, row, strings};
use serde_json::{Value, json};

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, token, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn customer(&self, id: &str) -> (String, Value) {
        let signature = chatcore::customer_signature(CUSTOMER_SECRET.as_bytes(), id);
        let response = self
            .http
            .post(format!("{}/api/customers/login", self.url))
            .json(&json!({ "customerId": id, "signature": signature }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["created"], false,
            "{id} should exist in the generated data"
        );
        (
            body["token"].as_str().unwrap().to_string(),
            body["chat"].clone(),
        )
    }

    /// A chat's whole history, paged forward 1,000 at a time.
    async fn history(&self, chat: &str, token: &str) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let after = all.last().map_or(0, |m| m["seq"].as_u64().unwrap());
            let page = self
                .get(
                    &format!("/api/chats/{chat}/messages?after={after}&limit=1000"),
                    token,
                )
                .await;
            let page = page.as_array().unwrap().clone();
            let done = page.len() < 1000;
            all.extend(page);
            if done {
                return all;
            }
        }
    }

    async fn send(&self, chat: &str, token: &str) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/chats/{chat}/messages"),
                token,
                Some(json!({ "content": "a new message" })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_database_is_served_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gen.db");
    let generated = bench(&strings(&[
        "gen-db",
        db.to_str().unwrap(),
        "--chats",
        "200",
        "--messages",
        "5000",
        "--pending",
        "10",
        "--chats-per-officer",
        "20",
    ]));
    assert_eq!(
        generated.code, 0,
        "{:#}\n{}",
        generated.report, generated.stderr
    );
    let r = row(&generated.report["scenarios"][0], 0);
    assert_eq!(
        (r["chats"].as_u64(), r["messages"].as_u64()),
        (Some(200), Some(5000))
    );
    assert_eq!(
        (r["officers"].as_u64(), r["bigChatMessages"].as_u64()),
        (Some(10), Some(500))
    );
    // A second run refuses to overwrite without --force.
    let again = bench(&strings(&[
        "gen-db",
        db.to_str().unwrap(),
        "--chats",
        "2",
        "--messages",
        "2",
    ]));
    assert_eq!(again.code, 3);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);

    let server = Server::start_on(Some(&db));
    let client = Client {
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };

    // The queue: the 10 newest chats, pending, oldest first.
    let queue = client.get("/api/officers/queue", ADMIN_TOKEN).await;
    let customers: Vec<&str> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(
                (c["status"].as_str(), &c["assignedOfficerId"]),
                (Some("pending"), &Value::Null)
            );
            c["customerId"].as_str().unwrap()
        })
        .collect();
    let expected: Vec<String> = (190..200).map(|i| format!("gen-c{i}")).collect();
    assert_eq!(customers, expected);

    // Every officer's chats: the 190 assigned chats, each exactly once, round-robin.
    let mut seen: HashMap<String, String> = HashMap::new();
    for o in 0..10 {
        let officer = format!("gen-o{o}");
        let chats = client
            .get(&format!("/api/officers/{officer}/chats"), ADMIN_TOKEN)
            .await;
        let chats = chats.as_array().unwrap();
        assert_eq!(chats.len(), 19, "{officer}");
        let mut previous = i64::MIN;
        for chat in chats {
            assert_eq!(chat["assignedOfficerId"], officer.as_str());
            assert_eq!(chat["status"], "assigned");
            let customer = chat["customerId"].as_str().unwrap();
            let i: usize = customer.strip_prefix("gen-c").unwrap().parse().unwrap();
            assert_eq!(i % 10, o, "{customer} should belong to gen-o{}", i % 10);
            let created: chatcore::Timestamp =
                serde_json::from_value(chat["createdAt"].clone()).unwrap();
            assert!(created.unix_millis() > previous, "oldest first");
            previous = created.unix_millis();
            assert!(seen.insert(customer.to_string(), officer.clone()).is_none());
        }
    }
    assert_eq!(seen.len(), 190);

    // The large chat: 500 messages, dense, paged both ways; the next send is seq 501.
    let (token, chat) = client.customer("gen-c0").await;
    assert_eq!(chat["assignedOfficerId"], "gen-o0");
    let chat_id = chat["id"].as_str().unwrap();
    let history = client.history(chat_id, &token).await;
    assert_eq!(seqs(&history), (1..=500).collect::<Vec<_>>());
    let last_page = client
        .get(
            &format!("/api/chats/{chat_id}/messages?before=501&limit=100"),
            &token,
        )
        .await;
    assert_eq!(
        seqs(last_page.as_array().unwrap()),
        (401..=500).collect::<Vec<_>>()
    );
    assert_eq!(client.send(chat_id, &token).await["seq"], 501);

    // An ordinary assigned chat: customer and officer take turns; seq continues.
    let (token, chat) = client.customer("gen-c7").await;
    let chat_id = chat["id"].as_str().unwrap();
    let history = client.history(chat_id, &token).await;
    let n = history.len() as u64;
    assert!(n == 22 || n == 23, "4,500 messages over 199 chats: {n}");
    assert_eq!(seqs(&history), (1..=n).collect::<Vec<_>>());
    for m in &history {
        let officer_turn = m["seq"].as_u64().unwrap() % 2 == 0;
        let (kind, sender) = if officer_turn {
            ("officer", "gen-o7")
        } else {
            ("customer", "gen-c7")
        };
        assert_eq!(
            (m["senderType"].as_str(), m["senderId"].as_str()),
            (Some(kind), Some(sender))
        );
        assert_eq!(m["chatId"], chat_id);
    }
    assert_eq!(client.send(chat_id, &token).await["seq"], n + 1);

    // A pending chat holds only the customer's messages.
    let (token, chat) = client.customer("gen-c195").await;
    let history = client.history(chat["id"].as_str().unwrap(), &token).await;
    assert!(!history.is_empty());
    assert!(history.iter().all(|m| m["senderType"] == "customer"));

    // The read scenario on the dataset.
    let mut args = server.target_args();
    args.extend(strings(&[
        "read",
        "--dataset",
        "gen",
        "--requests",
        "10",
        "--page-size",
        "50",
    ]));
    let read = tokio::task::spawn_blocking(move || bench(&args))
        .await
        .unwrap();
    assert_eq!(read.code, 0, "{:#}\n{}", read.report, read.stderr);
    let page = row(passed(&read, "read"), 0);
    assert_eq!(page["items"], 50);
    assert_eq!(row(passed(&read, "read"), 2)["items"], 19);
}
