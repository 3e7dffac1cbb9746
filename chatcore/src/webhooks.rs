//! Webhooks' rules that need neither a store nor a network: what an event's body is,
//! how it is signed (the contract's `Chat-Signature`), which endpoints and filters are
//! acceptable, and how long a failed delivery waits before its next attempt. The
//! outbox itself is the stores' (`store::webhooks`), the delivery worker the service's
//! (`service/webhooks.rs`), and the HTTP request a transport's ([`WebhookSender`]).
//!
//! Nothing here logs or prints a secret: [`WebhookSecret`]'s `Debug` is redacted.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::ChatId;
use crate::model::{Chat, ChatChange, ChatStatus, Message, Timestamp};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The header that carries an event's signature.
pub const SIGNATURE_HEADER: &str = "Chat-Signature";

/// The events a webhook may receive (the contract's `chat_updated` and `new_message`).
pub const EVENT_KINDS: [&str; 2] = ["chat_updated", "new_message"];

/// Longest endpoint URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Shortest and longest webhook secret accepted, in characters.
pub const SECRET_CHARS: std::ops::RangeInclusive<usize> = 16..=256;

/// A webhook's signing secret. Its `Debug` never shows it; only [`WebhookSecret::expose`]
/// does, for signing and for the one answer that creates it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// A secret given by the operator: 16 to 256 printable characters
    /// ([`Error::InvalidField`] `secret` otherwise; the message never repeats it).
    pub fn new(secret: impl Into<String>) -> Result<Self> {
        let secret = secret.into();
        let chars = secret.chars().count();
        if !SECRET_CHARS.contains(&chars) {
            return Err(Error::InvalidField {
                name: "secret",
                reason: format!(
                    "must be {} to {} characters (it is {chars}); `openssl rand -hex 32` \
                     makes a good one",
                    SECRET_CHARS.start(),
                    SECRET_CHARS.end()
                ),
            });
        }
        if secret.chars().any(char::is_control) {
            return Err(Error::InvalidField {
                name: "secret",
                reason: "must not hold control characters".into(),
            });
        }
        Ok(Self(secret))
    }

    /// A new random secret: 32 random bytes as 64 hex characters.
    pub fn generate() -> Self {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        Self(hex::encode(raw))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The contract's `Chat-Signature` value for `body` sent at `t` (Unix seconds):
/// `t=<t>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver checks (and how docs/API.md tells one to): the header's `v1` is the
/// HMAC of `"<t>.<body>"` (compared in constant time; any `v1` of several may match) and
/// `t` is within `tolerance` of `now_secs`, so that a captured request cannot be
/// replayed later.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance: Duration,
) -> bool {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if now_secs.abs_diff(t) > tolerance.as_secs() {
        return false;
    }
    candidates.iter().any(|given| {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
            .expect("HMAC accepts keys of any length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(given).is_ok()
    })
}

/// Checks an endpoint URL: `http://` or `https://`, a host, at most
/// [`MAX_URL_BYTES`], no whitespace, no credentials ([`Error::InvalidField`] `url`).
/// `schemes` are those the server's sender speaks ([`WebhookSettings::schemes`]).
pub fn check_url<S: AsRef<str>>(url: &str, schemes: &[S]) -> Result<()> {
    let bad = |reason: String| Error::InvalidField {
        name: "url",
        reason,
    };
    if url.len() > MAX_URL_BYTES {
        return Err(bad(format!("must be at most {MAX_URL_BYTES} bytes")));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must not hold spaces or control characters".into()));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(
            "must be an absolute URL like http://crm.internal/hooks".into(),
        ));
    };
    if !schemes
        .iter()
        .any(|s| s.as_ref().eq_ignore_ascii_case(scheme))
    {
        let names: Vec<&str> = schemes.iter().map(AsRef::as_ref).collect();
        return Err(bad(format!(
            "the scheme must be {} (this server sends with no other)",
            names.join(" or ")
        )));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad(
            "must not carry credentials; the signature authenticates the sender".into(),
        ));
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty())
        .map_or(authority, |(host, _)| host);
    if host.is_empty() {
        return Err(bad("must name a host".into()));
    }
    Ok(())
}

/// An endpoint's event filter from a list of kinds (each one of [`EVENT_KINDS`]; none
/// or an empty list: all of them), in [`EVENT_KINDS`]'s order, without repeats.
pub fn parse_events<S: AsRef<str>>(kinds: Option<&[S]>) -> Result<Vec<String>> {
    let Some(kinds) = kinds.filter(|k| !k.is_empty()) else {
        return Ok(EVENT_KINDS.iter().map(|k| k.to_string()).collect());
    };
    let given: Vec<&str> = kinds.iter().map(|k| AsRef::<str>::as_ref(k)).collect();
    if let Some(bad) = given.iter().find(|k| !EVENT_KINDS.contains(*k)) {
        return Err(Error::InvalidField {
            name: "events",
            reason: format!(
                "{bad:?} is not an event a webhook receives; use {}",
                EVENT_KINDS.join(", ")
            ),
        });
    }
    Ok(EVENT_KINDS
        .iter()
        .filter(|k| given.contains(*k))
        .map(|k| k.to_string())
        .collect())
}

/// One event as a change hands it to the outbox, in the change's transaction: its id
/// (stable across retries: receivers dedupe by it), `type`, chat, time, position in the
/// chat, and body. A chat's change is stored with its body; a message's event is only
/// its lane's mark ([`OutboxEvent::message_mark`]): the message is the log, read again
/// (and its body made, the same every time) when the lane delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The event's id (a UUIDv7, so ids also sort by time): a `new_message`'s is its
    /// message's id.
    pub event_id: String,
    /// `chat_updated` or `new_message`.
    pub kind: &'static str,
    /// The chat it is about: deliveries are in order per chat.
    pub chat_id: ChatId,
    /// When the change happened.
    pub created_at: Timestamp,
    /// `{"id", "type", "createdAt", "data"}`, where `data` is the WebSocket event's
    /// object without its `type` (`{"message"}` or `{"chat", "change"}`); empty in a
    /// message's mark.
    pub body: String,
    /// Where it stands in its chat: a message's seq, or the chat's last seq when it
    /// changed (a change comes after that message and before the next).
    pub position: u64,
}

/// An event's body, serialized as it is written (no intermediate JSON tree: a change's
/// is made on its write's path, a message's each time its lane reads it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a, D> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    created_at: Timestamp,
    data: D,
}

/// `data` of a `new_message`: the WebSocket event's fields without its `type`.
#[derive(Serialize)]
struct MessageData<'a> {
    message: &'a Message,
}

/// `data` of a `chat_updated`: the WebSocket event's fields without its `type`.
#[derive(Serialize)]
struct ChatData<'a> {
    chat: &'a Chat,
    change: ChatChange,
}

impl OutboxEvent {
    fn of(
        event_id: String,
        chat_id: ChatId,
        created_at: Timestamp,
        kind: &'static str,
        position: u64,
        data: impl Serialize,
    ) -> Self {
        let body = serde_json::to_string(&Body {
            id: &event_id,
            kind,
            created_at,
            data,
        })
        .unwrap_or_default();
        Self {
            event_id,
            kind,
            chat_id,
            created_at,
            body,
            position,
        }
    }

    /// `new_message` for a stored message (a send, or a change's system entry). Its id
    /// is the message's: the same event whichever store (or cursor) makes it again.
    pub fn new_message(message: &Message) -> Self {
        Self::of(
            message.id.to_string(),
            message.chat_id,
            message.created_at,
            "new_message",
            message.seq,
            MessageData { message },
        )
    }

    /// A `new_message` as a change writes it to the outbox: its id and position, no
    /// body. Every store's outbox reads the message again when a lane delivers it (a
    /// lane's cursor in its chat's messages), and makes the body then
    /// ([`OutboxEvent::new_message`]).
    pub fn message_mark(message: &Message) -> Self {
        Self {
            event_id: message.id.to_string(),
            kind: "new_message",
            chat_id: message.chat_id,
            created_at: message.created_at,
            body: String::new(),
            position: message.seq,
        }
    }

    /// `chat_updated` for a chat as it now is.
    pub fn chat_updated(chat: &Chat, change: ChatChange) -> Self {
        Self::of(
            uuid::Uuid::now_v7().to_string(),
            chat.id,
            chat.updated_at,
            "chat_updated",
            chat.last_seq,
            ChatData { chat, change },
        )
    }

    /// What a change of state announces: its system entry, then the chat (the order
    /// the WebSocket events go in).
    pub fn for_transition(chat: &Chat, entry: &Message) -> Vec<Self> {
        let mut events = vec![Self::message_mark(entry)];
        if let Some(change) = entry.event.as_ref().map(|e| e.kind) {
            events.push(Self::chat_updated(chat, change));
        }
        events
    }

    /// What a new chat announces: `created` for the queue, `assigned` when it went
    /// straight to an officer.
    pub fn for_new_chat(chat: &Chat) -> Self {
        let change = match chat.status {
            ChatStatus::Pending => ChatChange::Created,
            _ => ChatChange::Assigned,
        };
        Self::chat_updated(chat, change)
    }
}

/// How long a delivery that failed for the `attempts`-th time waits before the next
/// attempt: `min` doubled per earlier failure, at most `max`, then "equal jitter" (a
/// random point in its upper half, `jitter` in 0..1), so that receivers coming back
/// are not hit by every lane at once.
pub fn backoff(attempts: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let doubled = min.saturating_mul(1u32 << attempts.saturating_sub(1).min(30));
    let full = doubled.min(max).max(min);
    full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// One POST of an event, as the worker asks a [`WebhookSender`] to make it.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// The endpoint.
    pub url: String,
    /// The event's id, also sent as `Chat-Event-Id`.
    pub event_id: String,
    /// `chat_updated` or `new_message`, also sent as `Chat-Event-Type`.
    pub kind: String,
    /// The body, exactly as signed.
    pub body: Bytes,
    /// The `Chat-Signature` header's value.
    pub signature: String,
    /// The longest the whole request may take, connection included.
    pub timeout: Duration,
}

/// How an attempt ended: the receiver's status, or why there was none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookResponse {
    /// The receiver answered with this status (2xx: delivered; anything else,
    /// redirects included, which are never followed: a failure).
    Status(u16),
    /// No answer: connection refused, timed out, reset. A short reason for the
    /// operator (no secret, no body).
    Failed(String),
}

/// Makes the HTTP request of a delivery: the one thing the engine leaves to a
/// transport (chat-http's is on reqwest). An implementation must not follow
/// redirects, must give up after [`WebhookRequest::timeout`], must read at most a
/// small bound of a response's body, and must send `Content-Type: application/json`,
/// [`SIGNATURE_HEADER`], `Chat-Event-Id` and `Chat-Event-Type`.
#[async_trait]
pub trait WebhookSender: Send + Sync + 'static {
    /// Sends one event.
    async fn send(&self, request: WebhookRequest) -> WebhookResponse;
}

/// A webhook as the admin sees it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70", "url": "http://crm.internal:8080/chat-events", "events": ["chat_updated", "new_message"], "createdAt": "2026-11-24T11:17:19.120Z", "pending": 2, "dead": 0}))
)]
pub struct Webhook {
    /// Its id (`flag` for the one `--webhook-url` configures).
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Which events it receives.
    pub events: Vec<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Deliveries waiting to be made (or retried).
    pub pending: u64,
    /// Deliveries given up on (retried for the whole retry period); the admin may
    /// retry them.
    pub dead: u64,
}

/// The answer to creating a webhook: the webhook, and its secret this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70", "url": "http://crm.internal:8080/chat-events", "events": ["chat_updated", "new_message"], "createdAt": "2026-11-24T11:17:19.120Z", "pending": 0, "dead": 0, "secret": "4f1e0c9d2b7a6e5f3c8d1a0b9e7f6d5c4f1e0c9d2b7a6e5f3c8d1a0b9e7f6d5c"}))
)]
pub struct CreatedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret (given or generated); never shown again.
    pub secret: String,
}

/// A delivery as the admin sees it: which event to which webhook, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"id": 41, "webhookId": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70", "eventId": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a71", "type": "new_message", "chatId": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "createdAt": "2026-11-24T11:17:19.120Z", "attempts": 3, "lastError": "HTTP 503", "lastAttemptAt": "2026-11-24T11:18:02.511Z", "state": "pending"}))
)]
pub struct WebhookDelivery {
    /// The delivery's id (one event to one webhook), for a retry of that one.
    pub id: i64,
    /// The webhook.
    pub webhook_id: String,
    /// The event's id (the body's `id`).
    pub event_id: String,
    /// `chat_updated` or `new_message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The chat.
    pub chat_id: String,
    /// When the event happened.
    pub created_at: Timestamp,
    /// Attempts made so far.
    pub attempts: u32,
    /// How the last attempt failed (`HTTP 500`, `timed out`, ...), if one did.
    pub last_error: Option<String>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<Timestamp>,
    /// `pending` or `dead`.
    pub state: String,
}

/// Settings of the delivery worker ([`crate::ServiceConfig::webhooks`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookSettings {
    /// The longest one request may take. Default 10 s.
    pub timeout: Duration,
    /// Most requests in flight on this node (each to a different chat's lane).
    /// Default 16.
    pub concurrency: usize,
    /// Events of one lane (one webhook, one chat) taken per claim. Default 16.
    pub batch: u32,
    /// How long an event is retried before it is marked dead, counted from when it
    /// entered the outbox (or was retried by the admin). Default 24 hours.
    pub max_age: Duration,
    /// The wait after a first failure; it doubles per failure. Default 1 s.
    pub backoff_min: Duration,
    /// The longest wait between attempts. Default 10 minutes.
    pub backoff_max: Duration,
    /// How long a node holds the lanes it claimed without renewing them; another node
    /// takes them over after that (a node that died mid-delivery). Default 60 s; it
    /// must exceed `timeout`.
    pub lease: Duration,
    /// How often the outbox is read when nothing woke the worker (changes on other
    /// nodes, retries coming due). Default 1 s.
    pub poll: Duration,
    /// The URL schemes the transport's [`WebhookSender`] speaks; endpoints with others
    /// are refused. Default `http`.
    pub schemes: Vec<String>,
    /// This process is the only one delivering from its store (a SQLite file): at
    /// start it takes over every lease, which can only be a previous run's that was
    /// killed mid-delivery (else those chats would wait for the lease to expire).
    /// Never with several nodes on one database. Default false.
    pub single_node: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            concurrency: 16,
            batch: 16,
            max_age: Duration::from_secs(24 * 3600),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            schemes: vec!["http".to_string()],
            single_node: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Event;
    use crate::ids::MessageId;
    use crate::model::SenderType;

    #[test]
    fn the_signature_is_the_hmac_of_the_time_a_dot_and_the_body() {
        // Computed independently: printf '1700000000.{"a":1}' |
        //   openssl dgst -sha256 -hmac 'whsec_test_0123456789'
        let header = signature(b"whsec_test_0123456789", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=d45143ed412aa9d672e3e06cc6753ced7e0e5a1757b1109ff599ba71790e646d"
        );
        assert!(header.starts_with("t=1700000000,v1="));
        let hex = header.strip_prefix("t=1700000000,v1=").unwrap();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let ok = |h: &str, body: &[u8], now: i64| {
            verify_signature(
                b"whsec_test_0123456789",
                h,
                body,
                now,
                Duration::from_secs(300),
            )
        };
        assert!(ok(&header, br#"{"a":1}"#, 1_700_000_100));
        assert!(!ok(&header, br#"{"a":2}"#, 1_700_000_100));
        assert!(
            !ok(&header, br#"{"a":1}"#, 1_700_000_400),
            "a replay outside the tolerance"
        );
        assert!(!ok("v1=00", br#"{"a":1}"#, 1_700_000_000));
        assert!(!verify_signature(
            b"another secret!!",
            &header,
            br#"{"a":1}"#,
            1_700_000_000,
            Duration::from_secs(300)
        ));
    }

    #[test]
    fn urls_events_and_secrets_are_checked() {
        let http = &["http"];
        assert!(check_url("http://127.0.0.1:9000/hook?x=1", http).is_ok());
        assert!(check_url("http://crm.internal/hooks", http).is_ok());
        for bad in [
            "",
            "crm.internal/hooks",
            "ftp://crm/x",
            "https://crm/x",
            "http:///x",
            "http://user:pw@crm/x",
            "http://crm/ x",
        ] {
            let e = check_url(bad, http).unwrap_err();
            assert_eq!(e.code(), "invalid_field", "{bad}");
        }
        assert!(check_url("https://crm/x", &["http", "https"]).is_ok());
        assert_eq!(parse_events::<&str>(None).unwrap(), EVENT_KINDS);
        assert_eq!(
            parse_events(Some(&["new_message", "new_message"][..])).unwrap(),
            ["new_message"]
        );
        assert_eq!(
            parse_events(Some(&["new_message", "chat_updated"][..])).unwrap(),
            EVENT_KINDS
        );
        assert!(parse_events(Some(&["typing"][..])).is_err());
        assert!(WebhookSecret::new("short").is_err());
        assert!(WebhookSecret::new("0123456789abcdef").is_ok());
        assert!(WebhookSecret::new("0123456789abcdef\n").is_err());
        let secret = WebhookSecret::generate();
        assert_eq!(secret.expose().len(), 64);
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(600));
        assert_eq!(backoff(1, min, max, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, min, max, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(4, min, max, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(4, min, max, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(40, min, max, 1.0), max);
        assert_eq!(backoff(0, min, max, 1.0), min);
    }

    #[test]
    fn an_event_body_is_the_websocket_event_without_its_type_under_data() {
        let message = Message {
            id: MessageId::new(),
            chat_id: ChatId::new(),
            seq: 3,
            sender_type: SenderType::Customer,
            sender_id: "cust-1".into(),
            content: "hello".into(),
            created_at: Timestamp::from_unix_millis(1_700_000_000_123),
            client_message_id: None,
            event: None,
            attachment: None,
        };
        let event = OutboxEvent::new_message(&message);
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["id"], event.event_id);
        assert_eq!(body["type"], "new_message");
        assert_eq!(body["createdAt"], "2023-11-14T22:13:20.123Z");
        assert_eq!(body["data"]["message"]["content"], "hello");
        assert_eq!(body["data"]["message"]["seq"], 3);
        assert!(body["data"].get("type").is_none());
        let ws = serde_json::to_value(Event::NewMessage {
            message: message.clone(),
        })
        .unwrap();
        assert_eq!(body["data"]["message"], ws["message"]);

        assert_eq!(event.event_id, message.id.to_string(), "the message's id");
        assert_eq!(event.position, 3);
        let mark = OutboxEvent::message_mark(&message);
        assert_eq!((mark.event_id, mark.position), (event.event_id, 3));
    }

    #[test]
    fn a_chat_updated_body_is_the_websocket_event_without_its_type_under_data() {
        let chat = Chat {
            id: ChatId::new(),
            customer_id: "cust-1".parse().unwrap(),
            customer_name: None,
            status: ChatStatus::Pending,
            assigned_officer_id: None,
            created_at: Timestamp::from_unix_millis(1_700_000_000_123),
            updated_at: Timestamp::from_unix_millis(1_700_000_000_456),
            last_seq: 1,
            resolved_at: None,
            customer_last_read_seq: 0,
            officer_last_read_seq: 0,
            last_message: None,
            queue_position: None,
        };
        let event = OutboxEvent::chat_updated(&chat, ChatChange::Created);
        let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
        assert_eq!(body["type"], "chat_updated");
        assert_eq!(body["createdAt"], "2023-11-14T22:13:20.456Z");
        let ws = serde_json::to_value(Event::ChatUpdated {
            chat,
            change: ChatChange::Created,
        })
        .unwrap();
        let mut data = ws.as_object().unwrap().clone();
        data.remove("type");
        assert_eq!(body["data"], serde_json::Value::Object(data));
    }
}
