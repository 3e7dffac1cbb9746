//! A real webhook receiver for chat-http's test binaries (included with `#[path]`): an
//! axum server on port 0 that checks every request's `Chat-Signature` exactly as the
//! contract states it (computed here with `hmac`, independently of chatcore), counts
//! each event id it took (duplicates are redeliveries), and checks that the events it
//! took first arrive in order per chat. It can be told to refuse (`fail_with`), to
//! refuse one chat's events only (`fail_chats_of`), or to answer slowly (`delay`). It
//! serves plain HTTP (`start`) or HTTPS with a given certificate (`start_tls`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{KeyInit, Mac};
use serde_json::Value;

/// What the receiver saw.
#[derive(Default, Debug)]
pub(crate) struct Log {
    /// Every request, answered or refused.
    pub(crate) requests: usize,
    /// Requests whose signature, headers or body were not as the contract says.
    pub(crate) bad: Vec<String>,
    /// Times each event id was taken (answered 2xx).
    pub(crate) taken: HashMap<String, usize>,
    /// The bodies taken, first time each, in arrival order.
    pub(crate) first: Vec<Value>,
    /// Events that arrived before an event of their chat that precedes them.
    pub(crate) out_of_order: Vec<String>,
    /// When each request arrived, with its event id and the status it got.
    pub(crate) attempts: Vec<(Instant, String, u16)>,
    /// TLS connections that completed their handshake (`start_tls`).
    pub(crate) tls_connections: usize,
    last: HashMap<String, u64>,
}

impl Log {
    /// Events taken more than once.
    pub(crate) fn duplicates(&self) -> usize {
        self.taken.values().map(|n| n - 1).sum()
    }
}

/// Where an event stands in its chat: a message by its seq, a chat change just after
/// the system entry it follows (its chat's `lastSeq`); a new chat's `created` is 1.
pub(crate) fn ordinal(body: &Value) -> (String, u64) {
    let data = &body["data"];
    if let Some(message) = data.get("message") {
        let chat = message["chatId"].as_str().unwrap_or_default().to_string();
        (chat, message["seq"].as_u64().unwrap_or_default() * 2)
    } else {
        let chat = data["chat"]["id"].as_str().unwrap_or_default().to_string();
        (
            chat,
            data["chat"]["lastSeq"].as_u64().unwrap_or_default() * 2 + 1,
        )
    }
}

struct Shared {
    secret: Mutex<Vec<u8>>,
    fail_with: AtomicU16,
    delay_ms: AtomicU64,
    failing_text: Mutex<Option<String>>,
    log: Mutex<Log>,
}

/// A running receiver; it stops when dropped.
pub(crate) struct Receiver {
    /// Its URL (`http://127.0.0.1:PORT/hook`).
    pub(crate) url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks the contract's `Chat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(S,
/// "<t>.<body>")>`, to the letter.
pub(crate) fn check_signature(secret: &[u8], header: &str, body: &[u8]) -> Result<(), String> {
    let rest = header
        .strip_prefix("t=")
        .ok_or_else(|| format!("{header:?} does not start with t="))?;
    let (t, v1) = rest
        .split_once(",v1=")
        .ok_or_else(|| format!("{header:?} has no ,v1="))?;
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("t={t:?} is not unix seconds"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t_secs: u64 = t.parse().map_err(|_| format!("t={t:?}"))?;
    if now.abs_diff(t_secs) > 300 {
        return Err(format!("t={t} is {}s from now", now.abs_diff(t_secs)));
    }
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    if v1 != expected {
        return Err(format!(
            "v1={v1} but HMAC-SHA256(S, \"<t>.<body>\") = {expected}"
        ));
    }
    Ok(())
}

async fn take(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut problems = Vec::new();
    let secret = shared.secret.lock().unwrap().clone();
    if let Err(e) = check_signature(&secret, &header("chat-signature"), &body) {
        problems.push(e);
    }
    if header("content-type") != "application/json" {
        problems.push(format!("content-type {:?}", header("content-type")));
    }
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = parsed["id"].as_str().unwrap_or_default().to_string();
    for field in ["id", "type", "createdAt", "data"] {
        if parsed.get(field).is_none() {
            problems.push(format!("no {field} in {parsed}"));
        }
    }
    if header("chat-event-id") != id || header("chat-event-type") != parsed["type"] {
        problems.push("Chat-Event-Id or Chat-Event-Type differ from the body".into());
    }
    let failing_text = shared.failing_text.lock().unwrap().clone();
    let refused = match shared.fail_with.load(Ordering::Acquire) {
        0 => failing_text
            .filter(|text| {
                std::str::from_utf8(&body)
                    .unwrap_or_default()
                    .contains(text)
            })
            .map(|_| 500),
        code => Some(code),
    };
    let delay = shared.delay_ms.load(Ordering::Acquire);
    if delay > 0 && refused.is_none() {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = refused.unwrap_or(200);
    let mut log = shared.log.lock().unwrap();
    log.requests += 1;
    log.attempts.push((arrived, id.clone(), status));
    log.bad.extend(problems);
    if status == 200 {
        let times = log.taken.entry(id.clone()).or_default();
        *times += 1;
        if *times == 1 {
            let (chat, at) = ordinal(&parsed);
            let last = log.last.get(&chat).copied().unwrap_or(0);
            if at <= last {
                log.out_of_order
                    .push(format!("{id} ({at}) after {last} in chat {chat}"));
            }
            log.last.insert(chat, at.max(last));
            log.first.push(parsed);
        }
    }
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// A receiver checking signatures made with `secret`, taking everything.
    pub(crate) async fn start(secret: &str) -> Self {
        let (shared, app) = Self::app(secret);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, shared, task }
    }

    /// [`Receiver::start`] over TLS at `https://localhost:PORT/hook` (listening on
    /// 127.0.0.1), presenting `acceptor`'s certificate (`support/tls.rs`).
    pub(crate) async fn start_tls(secret: &str, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        let (shared, app) = Self::app(secret);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://localhost:{}/hook",
            listener.local_addr().unwrap().port()
        );
        let counted = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app, counted) = (acceptor.clone(), app.clone(), counted.clone());
                tokio::spawn(async move {
                    // A client that refused the certificate: no request, nothing counted.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counted.log.lock().unwrap().tls_connections += 1;
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(tls),
                            hyper_util::service::TowerToHyperService::new(app),
                        )
                        .await;
                });
            }
        });
        Self { url, shared, task }
    }

    fn app(secret: &str) -> (Arc<Shared>, axum::Router) {
        let shared = Arc::new(Shared {
            secret: Mutex::new(secret.as_bytes().to_vec()),
            fail_with: AtomicU16::new(0),
            delay_ms: AtomicU64::new(0),
            failing_text: Mutex::new(None),
            log: Mutex::new(Log::default()),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(take))
            .with_state(shared.clone());
        (shared, app)
    }

    /// Checks signatures with `secret` from now on.
    pub(crate) fn set_secret(&self, secret: &str) {
        *self.shared.secret.lock().unwrap() = secret.as_bytes().to_vec();
    }

    /// Refuses every event with `status` from now on; 0 takes them again.
    pub(crate) fn fail_with(&self, status: u16) {
        self.shared.fail_with.store(status, Ordering::Release);
    }

    /// Refuses (500) the events whose body holds `text` (a customer id: that chat's);
    /// `None` takes them again.
    pub(crate) fn fail_chats_of(&self, text: Option<&str>) {
        *self.shared.failing_text.lock().unwrap() = text.map(str::to_string);
    }

    /// Answers each event taken after `delay`.
    pub(crate) fn delay(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Release);
    }

    /// Reads the log.
    pub(crate) fn log<T>(&self, f: impl FnOnce(&Log) -> T) -> T {
        f(&self.shared.log.lock().unwrap())
    }

    /// How many distinct events were taken.
    pub(crate) fn distinct(&self) -> usize {
        self.log(|l| l.taken.len())
    }

    /// Waits until `n` distinct events were taken, or panics after `within`.
    pub(crate) async fn wait_for(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.distinct() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} events reached the receiver within {within:?}",
                self.distinct()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Panics unless every request was signed and shaped as the contract says and the
    /// events first arrived in order per chat.
    pub(crate) fn assert_clean(&self) {
        self.log(|l| {
            assert!(
                l.bad.is_empty(),
                "malformed deliveries: {:?}",
                &l.bad[..l.bad.len().min(5)]
            );
            assert!(
                l.out_of_order.is_empty(),
                "events out of order: {:?}",
                &l.out_of_order[..l.out_of_order.len().min(5)]
            );
        });
    }
}
