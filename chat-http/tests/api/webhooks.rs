//! Webhooks against the real binary and a real receiver (`support/receiver.rs`, which
//! checks every signature independently, counts duplicates and checks order per chat):
//! every event delivered, signed and in order; a receiver down while 10,000 events
//! queue on disk, then all delivered; SIGKILL mid-delivery; backoff, dead deliveries
//! and the admin's retry; one chat's failing receiver not holding up the others; the
//! admin's REST API with the contract's errors; no secret in the log; deliveries on a
//! thread of their own at a lower priority, which a server without a webhook never wakes.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::receiver::Receiver;
use crate::server::{Api, Server};

const SECRET: &str = "whsec-test-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef-0123456789";

fn webhook_args<'a>(receiver: &'a Receiver, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--sync-normal",
        "--webhook-url",
        receiver.url.as_str(),
        "--webhook-secret",
        SECRET,
    ];
    args.extend_from_slice(extra);
    args
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// `customers` chats, each sent `per_chat` messages of `content` by its customer,
/// `customers` senders at once. Returns the chats' ids.
async fn traffic(
    server: &Server,
    prefix: &str,
    customers: usize,
    per_chat: usize,
    content: &str,
) -> Vec<String> {
    let tasks: Vec<_> = (0..customers)
        .map(|i| {
            let api = server.api.clone();
            let (id, content) = (format!("{prefix}-{i}"), content.to_string());
            tokio::spawn(async move {
                let (token, chat) = api.customer(&id).await;
                for n in 0..per_chat {
                    let (status, _) = api
                        .send(&token, &chat, &format!("{content} #{n}"))
                        .await
                        .expect("send");
                    assert_eq!(status, 201);
                }
                chat
            })
        })
        .collect();
    let mut chats = Vec::new();
    for task in tasks {
        chats.push(task.await.unwrap());
    }
    chats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_reaches_a_real_receiver_signed_once_and_in_order_per_chat() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let receiver = Receiver::start(SECRET).await;
    let server = Server::start_with(
        &dir.path().join("chat.db"),
        &log,
        &webhook_args(&receiver, &["--log", "info"]),
    );
    assert!(server.banner.contains("webhook:"), "{}", server.banner);
    let api = &server.api;
    // A chat's whole life: created, messages both ways, claimed, resolved.
    let officer = api.officer("amy").await;
    let (customer, chat) = api.customer("cust-life").await;
    api.send(&customer, &chat, "hello").await.unwrap();
    api.claim(&officer, "amy", &chat).await.unwrap();
    let reply = api
        .send(&officer, &chat, "how can I help?")
        .await
        .unwrap()
        .1;
    api.expect(
        Method::POST,
        &format!("/api/chats/{chat}/resolve"),
        Some(officer.as_str()),
        None,
        200,
    )
    .await;
    // And ten more chats at once, twenty messages each.
    traffic(&server, "busy", 10, 20, "text").await;
    let expected = 7 + 10 * 21;
    receiver.wait_for(expected, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.assert_clean();
    receiver.log(|l| {
        assert_eq!(l.taken.len(), expected, "no event other than the changes'");
        assert_eq!(
            l.duplicates(),
            0,
            "nothing was redelivered without a failure"
        );
        let life: Vec<(String, String)> = l
            .first
            .iter()
            .filter(|b| crate::receiver::ordinal(b).0 == chat)
            .map(|b| {
                let what = match b["type"].as_str().unwrap() {
                    "chat_updated" => b["data"]["change"].as_str().unwrap().to_string(),
                    _ => b["data"]["message"]["senderType"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                };
                (b["type"].as_str().unwrap().to_string(), what)
            })
            .collect();
        let pairs: Vec<(&str, &str)> = life.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("chat_updated", "created"),
                ("new_message", "customer"),
                ("new_message", "system"),
                ("chat_updated", "claimed"),
                ("new_message", "officer"),
                ("new_message", "system"),
                ("chat_updated", "resolved"),
            ]
        );
        // The data is the WebSocket event's: the message as REST answered it.
        let sent = l
            .first
            .iter()
            .find(|b| b["data"]["message"]["id"] == reply["id"])
            .expect("the officer's reply");
        assert_eq!(sent["data"]["message"], reply);
        assert_eq!(sent["createdAt"], reply["createdAt"]);
    });
    // The secret never reached the log.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("webhook"),
        "the log says nothing of webhooks"
    );
    assert!(!logged.contains(SECRET), "the webhook secret is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_down_while_10000_events_queue_gets_them_all_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(SECRET).await;
    receiver.fail_with(503);
    let server = Server::start_with(
        &dir.path().join("chat.db"),
        &dir.path().join("server.log"),
        &webhook_args(
            &receiver,
            &[
                "--admin-token",
                ADMIN,
                "--webhook-backoff-min",
                "100ms",
                "--webhook-backoff-max",
                "1s",
            ],
        ),
    );
    // Large messages (about 4 KB of JSON each, 40 MB in all): were the backlog held in
    // memory, the server's would grow by that much.
    let content = "x".repeat(3900);
    let chats = 25;
    traffic(&server, "warm", chats, 40, &content).await;
    let warm = rss_kib(server.pid());
    let started = Instant::now();
    traffic(&server, "queued", chats, 360, &content).await;
    let sent_in = started.elapsed();
    let queued = rss_kib(server.pid());
    // Each phase's chats: created, then their messages.
    let total = chats * (1 + 40) + chats * (1 + 360);
    assert!(total >= 10_000, "{total} events");
    let listed = server
        .api
        .expect(Method::GET, "/api/webhooks", Some(ADMIN), None, 200)
        .await;
    let pending = listed[0]["pending"].as_u64().unwrap();
    assert_eq!(
        pending as usize, total,
        "the backlog is in the outbox: {listed}"
    );
    assert_eq!(receiver.distinct(), 0);
    assert!(receiver.log(|l| l.requests) > 0, "the worker kept trying");
    let grew = queued.saturating_sub(warm);
    eprintln!(
        "{total} events queued ({} sent in {sent_in:?}); RSS {warm} KiB -> {queued} KiB",
        chats * 360
    );
    assert!(
        grew < 20 * 1024,
        "the server grew by {grew} KiB while 36 MB of events queued"
    );
    // Back: every event, once, in order.
    receiver.fail_with(0);
    let back = Instant::now();
    receiver.wait_for(total, Duration::from_secs(180)).await;
    eprintln!(
        "{total} events delivered in {:?} once the receiver was back",
        back.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    receiver.assert_clean();
    assert_eq!(receiver.log(|l| l.duplicates()), 0);
    let listed = server
        .api
        .expect(Method::GET, "/api/webhooks", Some(ADMIN), None, 200)
        .await;
    assert_eq!(
        (listed[0]["pending"].as_u64(), listed[0]["dead"].as_u64()),
        (Some(0), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_mid_delivery_delivers_every_event_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("chat.db"), dir.path().join("server.log"));
    let receiver = Receiver::start(SECRET).await;
    // Slow enough that the kill falls among deliveries in flight.
    receiver.delay(Duration::from_millis(30));
    let args = webhook_args(&receiver, &[]);
    let mut server = Server::start_with(&db, &log, &args);
    let chats = traffic(&server, "crash", 12, 40, "before the kill").await;
    let total = 12 * 41;
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.distinct() < 60 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let in_flight_at_kill = receiver.distinct();
    server.kill();
    assert!(
        in_flight_at_kill < total,
        "everything was delivered before the kill"
    );
    let server = Server::start_with(&db, &log, &args);
    receiver.wait_for(total, Duration::from_secs(60)).await;
    // More after the restart, also delivered.
    let (token, chat) = server.api.customer("crash-0").await;
    assert_eq!(chat, chats[0]);
    server
        .api
        .send(&token, &chat, "after the restart")
        .await
        .unwrap();
    receiver.wait_for(total + 1, Duration::from_secs(30)).await;
    receiver.assert_clean();
    let duplicates = receiver.log(|l| l.duplicates());
    eprintln!("killed after {in_flight_at_kill} of {total} events; {duplicates} delivered twice");
    // At least once: what was sent but not yet recorded at the kill comes again, at
    // most a batch (16) per chat in flight.
    assert!(duplicates <= 12 * 16, "{duplicates} duplicates");
}

/// Waits until the first webhook's (dead, pending) counts are `counts`; fails with the
/// listing once `within` has passed.
async fn counts_become(api: &Api, counts: (u64, u64), within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let hooks = api
            .expect(Method::GET, "/api/webhooks", Some(ADMIN), None, 200)
            .await;
        if (hooks[0]["dead"].as_u64(), hooks[0]["pending"].as_u64())
            == (Some(counts.0), Some(counts.1))
        {
            return;
        }
        assert!(Instant::now() < deadline, "{hooks}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_back_off_then_die_and_the_admin_retries_them_while_other_chats_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(SECRET).await;
    receiver.fail_chats_of(Some("stuck-customer"));
    let server = Server::start_with(
        &dir.path().join("chat.db"),
        &dir.path().join("server.log"),
        &webhook_args(
            &receiver,
            &[
                "--admin-token",
                ADMIN,
                "--webhook-backoff-min",
                "200ms",
                "--webhook-backoff-max",
                "400ms",
                "--webhook-max-age",
                "3s",
                "--webhook-events",
                "new_message",
            ],
        ),
    );
    let api = &server.api;
    let (stuck, stuck_chat) = api.customer("stuck-customer").await;
    api.send(&stuck, &stuck_chat, "first").await.unwrap();
    api.send(&stuck, &stuck_chat, "second").await.unwrap();
    // Meanwhile another chat's events go through at once.
    let (other, other_chat) = api.customer("fine-customer").await;
    let started = Instant::now();
    for n in 0..5 {
        api.send(&other, &other_chat, &format!("fine {n}"))
            .await
            .unwrap();
    }
    receiver.wait_for(5, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "held up by the failing chat"
    );
    // The stuck chat's first event is retried with growing waits, then dies; the second
    // waits behind it (order), then gets its own period.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let dead = api
        .expect(
            Method::GET,
            "/api/webhooks/deliveries?state=dead",
            Some(ADMIN),
            None,
            200,
        )
        .await;
    let dead = dead.as_array().unwrap().clone();
    assert!(!dead.is_empty(), "nothing died");
    assert_eq!(dead[0]["lastError"], "HTTP 500");
    assert_eq!(dead[0]["chatId"], stuck_chat);
    assert_eq!(dead[0]["state"], "dead");
    let attempts = dead[0]["attempts"].as_u64().unwrap();
    assert!((4..=20).contains(&attempts), "{attempts} attempts in 3 s");
    let times: Vec<Instant> = receiver.log(|l| {
        l.attempts
            .iter()
            .filter(|(_, id, _)| *id == dead[0]["eventId"])
            .map(|(at, _, _)| *at)
            .collect()
    });
    // Each wait is at least half the backoff (jitter), but the last attempt is made at
    // the end of the retry period, however soon after the one before.
    for pair in times[..times.len() - 1].windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(95),
            "retried after only {gap:?}"
        );
    }
    // Every event of the stuck chat dies in turn (each after its own period).
    counts_become(api, (2, 0), Duration::from_secs(15)).await;
    // The receiver is fixed; the admin retries: delivered, in order.
    receiver.fail_chats_of(None);
    let retried = api
        .expect(
            Method::POST,
            "/api/webhooks/retry",
            Some(ADMIN),
            Some(json!({})),
            200,
        )
        .await;
    assert_eq!(retried["retried"], 2);
    receiver.wait_for(7, Duration::from_secs(10)).await;
    receiver.assert_clean();
    // Delivered events leave the counts once their lane records them, a moment after
    // the receiver had them.
    counts_become(api, (0, 0), Duration::from_secs(10)).await;
    // Only messages: this webhook's filter.
    assert!(receiver.log(|l| l.first.iter().all(|b| b["type"] == "new_message")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_manages_webhooks_over_rest_with_the_contracts_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("chat.db"),
        &dir.path().join("server.log"),
        &["--admin-token", ADMIN],
    );
    let api = &server.api;
    let messages_only = Receiver::start("messages-secret-0123456789").await;
    let changes_only = Receiver::start("changes-secret-0123456789").await;
    let error = |body: &Value| {
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // Who may: the admin only.
    let body = json!({ "url": messages_only.url });
    let refused = api
        .expect(Method::POST, "/api/webhooks", None, Some(body.clone()), 401)
        .await;
    assert_eq!(error(&refused), "unauthorized");
    let officer = {
        api.expect(
            Method::POST,
            "/api/officers",
            Some(ADMIN),
            Some(json!({ "id": "amy", "password": "correct horse" })),
            201,
        )
        .await;
        api.expect(
            Method::POST,
            "/api/officers/login",
            None,
            Some(json!({ "officerId": "amy", "password": "correct horse" })),
            200,
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (method, path) in [
        (Method::POST, "/api/webhooks"),
        (Method::GET, "/api/webhooks"),
        (Method::GET, "/api/webhooks/deliveries"),
        (Method::POST, "/api/webhooks/retry"),
    ] {
        let refused = api
            .expect(
                method,
                path,
                Some(officer.as_str()),
                Some(body.clone()),
                403,
            )
            .await;
        assert_eq!(error(&refused), "forbidden");
    }
    // Bad input: the contract's error shape.
    for (bad, field) in [
        (json!({ "url": "ftp://x/y" }), "url"),
        (json!({ "url": "not a url" }), "url"),
        (json!({ "url": "http://user:pw@crm/x" }), "url"),
        (
            json!({ "url": messages_only.url, "secret": "short" }),
            "secret",
        ),
        (
            json!({ "url": messages_only.url, "events": ["typing"] }),
            "events",
        ),
    ] {
        let refused = api
            .expect(
                Method::POST,
                "/api/webhooks",
                Some(ADMIN),
                Some(bad.clone()),
                422,
            )
            .await;
        assert_eq!(error(&refused), "invalid_field", "{bad}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{refused}"
        );
    }
    let refused = api
        .expect(
            Method::POST,
            "/api/webhooks",
            Some(ADMIN),
            Some(json!({ "url": 7 })),
            400,
        )
        .await;
    assert!(refused["error"]["code"].is_string(), "{refused}");
    // Two webhooks, each with its own filter and secret.
    let created = api
        .expect(
            Method::POST,
            "/api/webhooks",
            Some(ADMIN),
            Some(json!({
                "url": messages_only.url,
                "secret": "messages-secret-0123456789",
                "events": ["new_message"],
            })),
            201,
        )
        .await;
    assert_eq!(created["secret"], "messages-secret-0123456789");
    assert_eq!(created["events"], json!(["new_message"]));
    let generated = api
        .expect(
            Method::POST,
            "/api/webhooks",
            Some(ADMIN),
            Some(json!({ "url": changes_only.url, "events": ["chat_updated"] })),
            201,
        )
        .await;
    let secret = generated["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64, "a generated secret: {generated}");
    let listed = api
        .expect(Method::GET, "/api/webhooks", Some(ADMIN), None, 200)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&secret),
        "a secret listed: {listed}"
    );
    assert!(
        !listed.to_string().contains("messages-secret"),
        "a secret listed"
    );
    assert!(listed[0].get("secret").is_none());
    // The changes-only receiver checks signatures with the generated secret.
    changes_only.set_secret(&secret);
    let officer_api = &server.api;
    let (customer, chat) = officer_api.customer("cust-1").await;
    officer_api.send(&customer, &chat, "hello").await.unwrap();
    officer_api.claim(&officer, "amy", &chat).await.unwrap();
    messages_only.wait_for(2, Duration::from_secs(10)).await;
    changes_only.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    messages_only.assert_clean();
    changes_only.assert_clean();
    assert!(messages_only.log(|l| l.first.iter().all(|b| b["type"] == "new_message")));
    assert!(changes_only.log(|l| l.first.iter().all(|b| b["type"] == "chat_updated")));
    assert_eq!(changes_only.distinct(), 2, "created and claimed");
    // Listing deliveries: parameters checked; a retry of an unknown delivery refused.
    let refusals = [
        (
            Method::GET,
            "/api/webhooks/deliveries?state=lost",
            None,
            400,
            "invalid_parameter",
        ),
        (
            Method::GET,
            "/api/webhooks/deliveries?limit=0",
            None,
            400,
            "invalid_parameter",
        ),
        (
            Method::GET,
            "/api/webhooks/deliveries?webhookId=nope",
            None,
            404,
            "webhook_not_found",
        ),
        (
            Method::POST,
            "/api/webhooks/retry",
            Some(json!({ "deliveryId": 12345 })),
            404,
            "webhook_not_found",
        ),
    ];
    for (method, path, body, status, code) in refusals {
        let refused = api.expect(method, path, Some(ADMIN), body, status).await;
        assert_eq!(error(&refused), code, "{path}");
    }
    // Deleted: gone, and 404 after.
    let id = created["id"].as_str().unwrap();
    api.expect(
        Method::DELETE,
        &format!("/api/webhooks/{id}"),
        Some(ADMIN),
        None,
        204,
    )
    .await;
    let refused = api
        .expect(
            Method::DELETE,
            &format!("/api/webhooks/{id}"),
            Some(ADMIN),
            None,
            404,
        )
        .await;
    assert_eq!(error(&refused), "webhook_not_found");
    let listed = api
        .expect(Method::GET, "/api/webhooks", Some(ADMIN), None, 200)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// Each thread of a process by name, with its nice value (Linux: one per thread).
fn threads_nice(pid: u32) -> Vec<(String, i64)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap();
        // `pid (comm) state ...`: the name may hold spaces, the fields after it do not;
        // nice is the 19th field, the 17th after the name.
        let (name, rest) = stat.rsplit_once(") ").unwrap();
        let name = name.split_once(" (").unwrap().1.to_string();
        let nice = rest.split_whitespace().nth(16).unwrap().parse().unwrap();
        threads.push((name, nice));
    }
    threads
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_run_on_a_thread_of_their_own_below_the_chat_traffics_priority() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(SECRET).await;
    let server = Server::start_with(
        &dir.path().join("chat.db"),
        &dir.path().join("server.log"),
        &webhook_args(&receiver, &["--webhook-nice", "15"]),
    );
    traffic(&server, "nice", 2, 3, "text").await;
    receiver.wait_for(2 * 4, Duration::from_secs(30)).await;
    receiver.assert_clean();
    let threads = threads_nice(server.pid());
    let webhooks: Vec<i64> = threads
        .iter()
        .filter(|(name, _)| name == "chat-webhooks")
        .map(|(_, nice)| *nice)
        .collect();
    assert!(!webhooks.is_empty(), "no webhook thread in {threads:?}");
    assert!(
        webhooks.iter().all(|nice| *nice == 15),
        "the webhook thread and its blocking threads at 15: {threads:?}"
    );
    // The chat traffic's runtime and the store's writer keep the process's priority.
    let others: Vec<&(String, i64)> = threads
        .iter()
        .filter(|(name, _)| name != "chat-webhooks")
        .collect();
    for runs in ["tokio-r", "chatcore-sqlite"] {
        assert!(
            others.iter().any(|(name, _)| name.starts_with(runs)),
            "no {runs}* thread in {threads:?}"
        );
    }
    assert!(
        others.iter().all(|(_, nice)| *nice == 0),
        "only the webhook thread is lowered: {threads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_messages_wake_no_delivery_thread() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("chat.db"),
        &dir.path().join("server.log"),
        &["--sync-normal", "--admin-token", ADMIN],
    );
    let before = server.thread_switches("chat-webhooks");
    assert!(!before.is_empty(), "no webhook thread");
    // The chat's creation and 50 messages, 5 ms apart.
    server
        .api
        .send_paced("quiet", 50, Duration::from_millis(5))
        .await;
    let quiet = server.thread_switches_since("chat-webhooks", &before);
    // Once a webhook exists, the same traffic wakes the thread to deliver it.
    let receiver = Receiver::start(SECRET).await;
    server
        .api
        .expect(
            Method::POST,
            "/api/webhooks",
            Some(ADMIN),
            Some(json!({ "url": receiver.url, "secret": SECRET })),
            201,
        )
        .await;
    let before = server.thread_switches("chat-webhooks");
    server
        .api
        .send_paced("busy", 50, Duration::from_millis(5))
        .await;
    // The chat's creation and its 50 messages.
    receiver.wait_for(51, Duration::from_secs(30)).await;
    receiver.assert_clean();
    let busy = server.thread_switches_since("chat-webhooks", &before);
    // Without a webhook only the worker's polls (one a second) and reads of the
    // webhooks (one every 5 s) run: a few switches, not several per message.
    assert!(
        quiet < 25,
        "{quiet} switches for 51 events without a webhook ({busy} with one)"
    );
    assert!(busy > 50, "{busy} switches for 51 deliveries");
}

#[test]
fn bad_webhook_flags_stop_the_server_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["--webhook-url", "http://127.0.0.1:9/x"][..],
            "--webhook-secret",
        ),
        (
            &["--webhook-url", "ftp://x/y", "--webhook-secret", SECRET],
            "--webhook-url",
        ),
        (
            &[
                "--webhook-url",
                "http://127.0.0.1:9/x",
                "--webhook-secret",
                "short",
            ],
            "--webhook-secret",
        ),
        (&["--webhook-nice", "20"], "--webhook-nice"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-http"))
            .args(["--bind", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("chat.db"))
            .args(args)
            .env_remove("CHAT_WEBHOOK_URL")
            .env_remove("CHAT_WEBHOOK_SECRET")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains(SECRET), "the secret echoed: {stderr}");
    }
}
