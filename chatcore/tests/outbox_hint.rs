//! SQLite's outbox looks for webhooks in each change's own transaction: a webhook
//! created by another process on the same file (chat-cli on the server's database)
//! gets every event, with its right seq, from the first send after it.

use std::sync::Arc;

use chatcore::store::{LaneClaim, WebhookRecord, WebhookStore};
use chatcore::webhooks::WebhookSecret;
use chatcore::{ChatService, LocalBus, SendMessage, ServiceConfig, SqliteStore, Store, Timestamp};

#[path = "support/login.rs"]
mod login;
use login::customer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_another_process_creates_gets_the_next_send_with_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let service = ChatService::new(
        store.clone() as Arc<dyn Store>,
        Arc::new(LocalBus::new()),
        ServiceConfig::default(),
    );
    let (actor, chat, _) = customer(&service, "cust-1").await;
    // No webhook yet: this send finds none, and the store remembers that.
    service
        .send_message(&actor, chat, SendMessage::text("before"))
        .await
        .unwrap();

    // Another process (its own store on the same file) creates a webhook.
    let other = SqliteStore::open(&path).unwrap();
    other
        .put_webhook(&WebhookRecord {
            id: "crm".into(),
            url: "http://crm.test/hook".into(),
            secret: WebhookSecret::new("a-secret-of-sixteen-or-more").unwrap(),
            events: vec!["new_message".into()],
            created_at: Timestamp::from_unix_millis(0),
        })
        .await
        .unwrap();
    other.close().await.unwrap();

    let mut sent = Vec::new();
    for text in ["after 1", "after 2"] {
        let message = service
            .send_message(&actor, chat, SendMessage::text(text))
            .await
            .unwrap()
            .message;
        sent.push(message);
    }

    let now = Timestamp::from_unix_millis(i64::MAX / 2);
    let lanes = store
        .claim_webhook_lanes(&LaneClaim {
            now,
            lease_until: now,
            token: "t".into(),
            lanes: 10,
            batch: 10,
        })
        .await
        .unwrap();
    assert_eq!(lanes.len(), 1, "{lanes:?}");
    let bodies: Vec<serde_json::Value> = lanes[0]
        .deliveries
        .iter()
        .map(|d| serde_json::from_str(&d.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2, "both sends after the webhook: {bodies:?}");
    for (body, message) in bodies.iter().zip(&sent) {
        assert_eq!(body["type"], "new_message");
        let data = &body["data"]["message"];
        assert_eq!(data["content"], message.content.as_str());
        assert_eq!(data["seq"], message.seq, "the real seq, not a placeholder");
        assert_eq!(data["id"], message.id.to_string());
    }
}
