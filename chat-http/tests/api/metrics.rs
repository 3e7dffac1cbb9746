//! `GET /metrics` against the real binary (a process of its own, so that its figures are
//! its own): the admin token's rules on the main address, the separate `--metrics-bind`
//! address without one, the figures moving when what they count happens (a request, a
//! socket, a queued chat, a reply, a resolution, a refusal), and the Grafana dashboard
//! checked in under docs/ naming only metrics the server exports.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::http_client;
use crate::receiver::Receiver;
use crate::server::{Api, Server};
use crate::socketio_limits::Polling;

const ADMIN: &str = "metrics-admin-token-0123456789abcdef0123";
const WEBHOOK_SECRET: &str = "metrics-webhook-secret-0123456789";

/// Creates officer `id` (password `<id>-password`) as the admin and logs them in; their
/// token.
async fn officer(api: &Api, id: &str) -> String {
    api.officer_as(ADMIN, id, &format!("{id}-password")).await
}

/// The binary with an admin token, the metrics on a second address, and a tight limit
/// of failed logins per officer id (to see a refusal counted).
fn start(dir: &std::path::Path) -> (Server, String) {
    start_with(dir, &[])
}

/// [`start`] with more flags.
fn start_with(dir: &std::path::Path, extra: &[&str]) -> (Server, String) {
    let mut args = vec![
        "--admin-token",
        ADMIN,
        "--metrics-bind",
        "127.0.0.1:0",
        "--limit-officer-login-failures",
        "2/1h",
    ];
    args.extend_from_slice(extra);
    let server = Server::start_with(&dir.join("metrics.db"), &dir.join("server.log"), &args);
    let metrics = server
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("metrics:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no metrics address in the banner: {}", server.banner))
        .to_string();
    assert!(metrics.ends_with("/metrics"), "{metrics}");
    (server, metrics)
}

/// One parsed sample line: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The Prometheus text format's samples (the exporter writes no escaped quote in our
/// label values, which are route templates, methods, numbers and fixed names).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value
                    .parse()
                    .unwrap_or_else(|_| panic!("value in {line:?}")),
            }
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(v)))
        .map(|s| s.value)
        .sum()
}

async fn scrape(url: &str) -> Vec<Sample> {
    let resp = http_client().get(url).send().await.expect("scrape");
    assert_eq!(resp.status().as_u16(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain"), "{kind}");
    parse(&resp.text().await.unwrap())
}

/// Scrapes until `check` holds (the first reply is observed after the send is answered;
/// the queue's view follows within a second), for at most 10 s.
async fn eventually(url: &str, what: &str, check: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(url).await;
        if check(&samples) {
            return samples;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: never seen in {samples:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Socket.IO's connections and the events and acknowledgements sent to them are counted
/// with `/ws`'s, under `transport="socketio"` (both series registered at zero).
#[tokio::test]
async fn socketio_connections_and_events_are_counted_under_their_transport() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bind) = start(dir.path());
    let api = &server.api;
    let before = scrape(&bind).await;
    for transport in ["ws", "socketio"] {
        let with = [("transport", transport)];
        assert_eq!(
            sum(&before, "chat_ws_connections", &with),
            0.0,
            "{before:#?}"
        );
        assert_eq!(sum(&before, "chat_ws_events_sent_total", &with), 0.0);
        assert!(
            before
                .iter()
                .any(|s| s.name == "chat_ws_connections" && s.label("transport") == Some(transport)),
            "{transport} not registered"
        );
    }
    let token = officer(api, "sio").await;
    let session = Polling::open(api.client(), &api.base, None).await.unwrap();
    session.connect(&token).await;
    assert_eq!(session.post(r#"421["join_officers"]"#).await, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, packets) = session.poll().await;
        assert_eq!(status, 200);
        if packets.iter().any(|p| p == r#"431[{"ok":true}]"#) {
            break;
        }
        assert!(Instant::now() < deadline, "no acknowledgement: {packets:?}");
    }
    let open = scrape(&bind).await;
    let socketio = [("transport", "socketio")];
    assert_eq!(sum(&open, "chat_ws_connections", &socketio), 1.0);
    assert_eq!(
        sum(&open, "chat_ws_connections", &[("transport", "ws")]),
        0.0
    );
    assert!(sum(&open, "chat_ws_events_sent_total", &socketio) >= 1.0);
    // The client leaves the namespace: no longer counted.
    assert_eq!(session.post("41").await, 200);
    eventually(&bind, "the Socket.IO socket closed", |s| {
        sum(s, "chat_ws_connections", &socketio) == 0.0
    })
    .await;
}

#[tokio::test]
async fn metrics_need_the_admin_token_on_the_main_address_and_none_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bind) = start(dir.path());
    let api = &server.api;
    // Main address: no token 401, an officer's 403, the admin's 200 with the text.
    api.expect(Method::GET, "/metrics", None, None, 401).await;
    let olga = officer(api, "olga").await;
    let olga = olga.as_str();
    let refused = api
        .expect(Method::GET, "/metrics", Some(olga), None, 403)
        .await;
    assert_eq!(refused["error"]["code"], "forbidden");
    let resp = api
        .client()
        .get(format!("{}/metrics", api.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# TYPE chat_http_requests_total counter"),
        "{text}"
    );
    // The separate address: no token needed, only /metrics there.
    let samples = scrape(&bind).await;
    assert!(samples.iter().any(|s| s.name == "chat_queue_length"));
    let other = http_client()
        .get(bind.replace("/metrics", "/api/officers"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
}

#[tokio::test]
async fn the_figures_move_when_what_they_count_happens() {
    let dir = tempfile::tempdir().unwrap();
    let (server, bind) = start(dir.path());
    let api = &server.api;
    let before = scrape(&bind).await;
    assert_eq!(sum(&before, "chat_queue_length", &[]), 0.0);
    assert_eq!(sum(&before, "chat_ws_connections", &[]), 0.0);
    assert_eq!(sum(&before, "chat_resolutions_total", &[]), 0.0);
    assert_eq!(
        sum(
            &before,
            "chat_rate_limited_total",
            &[("limit", "officer_login_failures")]
        ),
        0.0,
        "registered at zero"
    );

    // A queued chat: the queue's length and its oldest wait.
    let (customer, chat) = {
        let body = api
            .expect(
                Method::POST,
                "/api/customers/login",
                None,
                Some(json!({"customerId": "cust-1"})),
                200,
            )
            .await;
        (
            body["token"].as_str().unwrap().to_string(),
            body["chat"]["id"].as_str().unwrap().to_string(),
        )
    };
    api.expect(
        Method::POST,
        &format!("/api/chats/{chat}/messages"),
        Some(&customer),
        Some(json!({"content": "hello"})),
        201,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued = eventually(&bind, "a queued chat", |s| {
        sum(s, "chat_queue_length", &[]) == 1.0
    })
    .await;
    assert!(sum(&queued, "chat_queue_oldest_wait_seconds", &[]) >= 0.3);
    // Requests by route template and status, never the raw path.
    let sends = sum(
        &queued,
        "chat_http_requests_total",
        &[
            ("route", "/api/chats/{chatId}/messages"),
            ("method", "POST"),
            ("status", "201"),
        ],
    );
    assert_eq!(sends, 1.0);
    assert!(
        queued
            .iter()
            .all(|s| s.label("route").is_none_or(|r| !r.contains(&chat))),
        "a raw path in the labels"
    );
    assert_eq!(
        sum(
            &queued,
            "chat_http_request_duration_seconds_count",
            &[
                ("route", "/api/chats/{chatId}/messages"),
                ("method", "POST")
            ]
        ),
        1.0
    );
    api.expect(Method::GET, "/no/such/path/123", None, None, 404)
        .await;

    // An officer on a socket: the connection gauge, and frames sent counted.
    let alice = officer(api, "alice").await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/ws", api.base.replace("http://", "ws://")))
            .await
            .unwrap();
    ws.send(WsMessage::text(
        json!({"type": "auth", "token": alice}).to_string(),
    ))
    .await
    .unwrap();
    let ready = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ready.to_text().unwrap().contains("ready"), "{ready:?}");
    let open = scrape(&bind).await;
    assert_eq!(sum(&open, "chat_ws_connections", &[]), 1.0);
    assert!(sum(&open, "chat_ws_events_sent_total", &[]) >= 1.0);

    // Claimed and answered: out of the queue, one first reply observed after the wait.
    api.expect(
        Method::POST,
        &format!("/api/officers/alice/claim/{chat}"),
        Some(&alice),
        None,
        200,
    )
    .await;
    api.expect(
        Method::POST,
        &format!("/api/chats/{chat}/messages"),
        Some(&alice),
        Some(json!({"content": "Hi, Alice here"})),
        201,
    )
    .await;
    api.expect(
        Method::POST,
        &format!("/api/chats/{chat}/messages"),
        Some(&alice),
        Some(json!({"content": "a second reply is no first reply"})),
        201,
    )
    .await;
    let replied = eventually(&bind, "a first reply", |s| {
        sum(s, "chat_first_reply_seconds_count", &[]) == 1.0
    })
    .await;
    assert!(sum(&replied, "chat_first_reply_seconds_sum", &[]) >= 0.3);
    assert_eq!(sum(&replied, "chat_queue_length", &[]), 0.0);
    assert_eq!(sum(&replied, "chat_queue_oldest_wait_seconds", &[]), 0.0);
    // Every write went through the SQLite writer's group commit.
    assert!(sum(&replied, "chat_store_write_batch_size_count", &[]) >= 5.0);

    // Resolved: counted.
    api.expect(
        Method::POST,
        &format!("/api/chats/{chat}/resolve"),
        Some(&alice),
        None,
        200,
    )
    .await;
    // Refused logins over the per-officer limit (2 failures an hour): counted by limit.
    for _ in 0..2 {
        api.expect(
            Method::POST,
            "/api/officers/login",
            None,
            Some(json!({"officerId": "alice", "password": "wrong-password"})),
            401,
        )
        .await;
    }
    api.expect(
        Method::POST,
        "/api/officers/login",
        None,
        Some(json!({"officerId": "alice", "password": "wrong-password"})),
        429,
    )
    .await;
    drop(ws);
    let after = eventually(&bind, "the socket closed", |s| {
        sum(s, "chat_ws_connections", &[]) == 0.0
    })
    .await;
    assert_eq!(sum(&after, "chat_resolutions_total", &[]), 1.0);
    assert_eq!(
        sum(
            &after,
            "chat_rate_limited_total",
            &[("limit", "officer_login_failures")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &after,
            "chat_http_requests_total",
            &[("route", "/api/officers/login"), ("status", "429")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &after,
            "chat_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(sum(&after, "chat_store_errors_total", &[]), 0.0);
}

/// Every metric the checked-in Grafana dashboard queries exists in a live server's
/// `/metrics`, after a little traffic (so that labelled series exist), one of it
/// delivered to a webhook (a real receiver).
#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana/chat-desk.json"
    );
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard")).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("an expr").to_string());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut named: Vec<String> = Vec::new();
    for expr in &exprs {
        // Metric names are the identifiers starting `chat_`; histograms are queried by
        // their `_bucket`, `_sum` or `_count` series.
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("chat_") && !named.iter().any(|n| n == word) {
                named.push(word.to_string());
            }
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(WEBHOOK_SECRET).await;
    let (server, bind) = start_with(
        dir.path(),
        &[
            "--webhook-url",
            receiver.url.as_str(),
            "--webhook-secret",
            WEBHOOK_SECRET,
        ],
    );
    server
        .api
        .expect(Method::GET, "/healthz", None, None, 200)
        .await;
    let (token, chat) = server.api.customer("dashboard-watcher").await;
    let (status, _) = server.api.send(&token, &chat, "hello").await.expect("send");
    assert_eq!(status, 201);
    // The chat's creation and the message.
    receiver.wait_for(2, Duration::from_secs(30)).await;
    receiver.assert_clean();
    // The delivery's outcome is counted once the receiver has answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let samples = scrape(&bind).await;
        let delivered = samples
            .iter()
            .any(|s| s.name == "chat_webhook_deliveries_total");
        if delivered || Instant::now() > deadline {
            break samples;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let exported: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    let mut missing = Vec::new();
    for name in &named {
        if !exported.contains(&name.as_str()) {
            missing.push(name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, not exported"
    );
    // And the dashboard covers what the issue asks to watch.
    for wanted in [
        "chat_http_requests_total",
        "chat_http_request_duration_seconds_bucket",
        "chat_ws_connections",
        "chat_ws_events_sent_total",
        "chat_queue_length",
        "chat_queue_oldest_wait_seconds",
        "chat_first_reply_seconds_bucket",
        "chat_resolutions_total",
        "chat_store_errors_total",
        "chat_store_write_batch_size_bucket",
        "chat_rate_limited_total",
        "chat_webhook_deliveries_pending",
    ] {
        assert!(
            named.iter().any(|n| n == wanted),
            "the dashboard lacks {wanted}"
        );
    }
}
