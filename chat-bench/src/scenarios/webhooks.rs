//! `webhooks`: what webhooks cost and how fast they go, against a receiver the bench
//! runs on 127.0.0.1 (an axum server that answers 200 at once and checks each event's
//! order in its chat). Three phases on the same server:
//!
//! 1. `sends off`: the `sends` load with no webhook configured;
//! 2. `sends on`: a webhook to the receiver created (`POST /api/webhooks`, the admin),
//!    the same load again, while the server delivers; then the time until every event
//!    of the phase (each chat's creation and every message) has arrived;
//! 3. `backlog`: the receiver refuses (503) while `--backlog` messages are sent, the
//!    outbox holds them (`GET /api/webhooks` counts them pending), then it takes them
//!    and the drain is timed: events delivered per second.
//!
//! With `--rounds N`, phases 1 and 2 alternate N times (the webhook deleted between
//! rounds, once every event has arrived) and are summed, then phase 3 runs once. With
//! the server's process known (`--spawn`, `--server-pid`), each phase also reports the
//! server's CPU time per acknowledged send (user and system, all threads; the `on`
//! phases until their last event arrived), which a busy machine disturbs less than the
//! throughput.
//!
//! Checks: every event arrives, once, in order per chat. The webhook is deleted at the
//! end. Needs the admin token (given, or `--spawn`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::future::join_all;
use serde::Deserialize;

use super::sends;
use crate::api::{self, run_id};
use crate::cli::{SendsArgs, WebhooksArgs};
use crate::mem;
use crate::report::{Cell, LATENCY_COLUMNS, Scenario, latency_cells};
use crate::stats::Latencies;
use crate::target::Target;

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Times each event id arrived.
    ids: HashMap<String, u32>,
    /// Each chat's last position (see [`position`]).
    last: HashMap<String, u64>,
    out_of_order: u64,
    /// Bodies that were not an event of the contract.
    malformed: u64,
}

/// The fields of an event the receiver reads, borrowed from the body: the receiver
/// shares the machine with the server, so what it spends per event is load measured.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    data: EventData<'a>,
}

#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(borrow)]
    message: Option<EventMessage<'a>>,
    #[serde(borrow)]
    chat: Option<EventChat<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventMessage<'a> {
    #[serde(borrow)]
    chat_id: Cow<'a, str>,
    seq: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventChat<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    last_seq: u64,
}

/// An event's position in its chat: a message by its seq, a chat change just after the
/// entry it follows. `None` for a body that is neither.
fn position<'a>(event: &'a Event<'_>) -> Option<(&'a str, u64)> {
    match (&event.data.message, &event.data.chat) {
        (Some(m), _) => Some((&m.chat_id, m.seq * 2)),
        (None, Some(c)) => Some((&c.id, c.last_seq * 2 + 1)),
        (None, None) => None,
    }
}

/// The receiver runs on a thread and a runtime of its own, as a system apart from the
/// load it measures: its requests do not queue behind the bench's senders on one
/// scheduler (it still shares the machine's cores).
struct Receiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
    refusing: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let refusing = Arc::new(AtomicBool::new(false));
        let (s, r) = (seen.clone(), refusing.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (seen, refusing) = (s.clone(), r.clone());
                async move {
                    if refusing.load(Ordering::Acquire) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    let event = serde_json::from_slice::<Event>(&body).ok();
                    let Some((event, (chat, at))) =
                        event.as_ref().and_then(|e| Some((e, position(e)?)))
                    else {
                        seen.malformed += 1;
                        return axum::http::StatusCode::BAD_REQUEST;
                    };
                    let times = seen.ids.entry(event.id.to_string()).or_default();
                    *times += 1;
                    if *times == 1 {
                        // The chat's id is copied only the first time it is seen.
                        let last = match seen.last.get_mut(chat) {
                            Some(last) => std::mem::replace(last, at),
                            None => {
                                seen.last.insert(chat.to_string(), at);
                                0
                            }
                        };
                        if at <= last {
                            seen.out_of_order += 1;
                        }
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("webhook-receiver".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(Self {
            url,
            seen,
            refusing,
            stop: Some(stop),
        })
    }

    fn distinct(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.ids.len())
    }

    /// Waits until `n` distinct events arrived (or `limit` passed); how long it took.
    async fn wait_for(&self, n: usize, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while self.distinct() < n {
            if start.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Some(start.elapsed())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub(crate) async fn run(target: &Target, args: &WebhooksArgs) -> Scenario {
    let mut columns = vec![
        ("phase", "phase"),
        ("acknowledged", "acked"),
        ("perSecond", "req/s"),
    ];
    columns.extend(LATENCY_COLUMNS);
    columns.push(("events", "events"));
    columns.push(("deliveredPerSecond", "delivered/s"));
    columns.push(("drainMs", "drain ms"));
    columns.push(("serverCpuUsPerSend", "server CPU µs/send"));
    let mut scenario = Scenario::new(
        "webhooks",
        "sends with webhooks off and on, and a backlog's drain, to a local receiver",
        &columns,
    );
    if let Err(e) = phases(target, args, &mut scenario).await {
        scenario.check("webhooks: run", false, format!("{e:#}"));
    }
    scenario
}

/// One kind of phase (`off` or `on`) summed over the rounds.
struct Phase {
    latencies: Latencies,
    measured: u64,
    measured_secs: f64,
    acked_total: usize,
    /// The server's CPU over the phases (the `on` ones until their last event arrived).
    ticks: Option<u64>,
    events: usize,
    delivery_secs: f64,
    drain: Duration,
    /// What the sends' own checks found (failed requests, chats read back, followers).
    problems: Vec<String>,
}

impl Phase {
    fn new() -> Self {
        Self {
            latencies: Latencies::new(),
            measured: 0,
            measured_secs: 0.0,
            acked_total: 0,
            ticks: Some(0),
            events: 0,
            delivery_secs: 0.0,
            drain: Duration::ZERO,
            problems: Vec::new(),
        }
    }

    fn add(&mut self, level: &sends::Level, ticks: Option<u64>) {
        self.latencies.merge(&level.latencies);
        self.measured += level.measured;
        self.measured_secs += level.measured as f64 / level.per_second.max(1e-9);
        self.acked_total += level.acked_total;
        self.ticks = self.ticks.zip(ticks).map(|(a, b)| a + b);
        self.problems.extend(level.problems());
    }

    fn per_second(&self) -> f64 {
        self.measured as f64 / self.measured_secs.max(1e-9)
    }

    fn cells(&self, name: &str, delivered: bool) -> Vec<Cell> {
        let mut cells = vec![
            Cell::Text(name.to_string()),
            Cell::Int(self.measured),
            Cell::Num(self.per_second(), 0),
        ];
        cells.extend(latency_cells(&self.latencies.summary()));
        if delivered {
            cells.extend([
                Cell::Int(self.events as u64),
                Cell::Num(self.events as f64 / self.delivery_secs.max(1e-9), 0),
                Cell::Num(self.drain.as_secs_f64() * 1000.0, 0),
            ]);
        } else {
            cells.extend([
                Cell::Text("-".into()),
                Cell::Text("-".into()),
                Cell::Text("-".into()),
            ]);
        }
        cells.push(match self.ticks {
            Some(ticks) if self.acked_total > 0 => Cell::Num(
                ticks as f64 * 1e6 / mem::TICKS_PER_SECOND as f64 / self.acked_total as f64,
                1,
            ),
            _ => Cell::Text("-".into()),
        });
        cells
    }
}

async fn phases(
    target: &Target,
    args: &WebhooksArgs,
    scenario: &mut Scenario,
) -> anyhow::Result<()> {
    let receiver = Receiver::start().await.context("starting the receiver")?;
    let load = SendsArgs {
        connections: vec![args.connections],
        duration: args.duration,
        warmup: args.warmup,
        content_chars: args.content_chars,
        rate: args.rate,
        followers: args.followers,
    };
    let admin = target.api.admin();
    let secret = format!("bench-webhook-{}", run_id());
    let (mut off, mut on) = (Phase::new(), Phase::new());
    for round in 1..=args.rounds {
        let cpu = ServerCpu::start(target);
        let level = sends::level(&target.nodes, &load, args.connections).await?;
        off.add(&level, cpu.used());
        let webhook = admin
            .create_webhook(&receiver.url, Some(&secret), None)
            .await
            .context("creating the webhook (needs the admin token)")?;
        let result = on_phase(target, args, &receiver, &load, &mut on).await;
        // Between rounds every event has arrived, so nothing pending goes with it.
        if round < args.rounds || result.is_err() {
            let _ = admin.delete_webhook(&webhook.webhook.id).await;
            result?;
            continue;
        }
        scenario.row(off.cells("sends off", false));
        scenario.row(on.cells("sends on", true));
        let result = backlog(target, args, scenario, &receiver).await;
        let _ = admin.delete_webhook(&webhook.webhook.id).await;
        result?;
    }
    let seen = receiver
        .seen
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let duplicates: u32 = seen.ids.values().map(|n| n - 1).sum();
    scenario.check(
        "webhooks: every event delivered once",
        duplicates == 0,
        format!("{} events, {duplicates} delivered twice", seen.ids.len()),
    );
    scenario.check(
        "webhooks: the sends acknowledged, stored and followed whole",
        off.problems.is_empty() && on.problems.is_empty(),
        match off.problems.iter().chain(&on.problems).count() {
            0 => format!(
                "{} sends acknowledged, every one stored{}",
                off.acked_total + on.acked_total,
                if args.followers {
                    " and received by the chat's two followers"
                } else {
                    ""
                }
            ),
            _ => off
                .problems
                .iter()
                .chain(&on.problems)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        },
    );
    scenario.check(
        "webhooks: every body an event of the contract",
        seen.malformed == 0,
        format!("{} bodies that were not", seen.malformed),
    );
    scenario.check(
        "webhooks: in order per chat",
        seen.out_of_order == 0,
        format!("{} events out of order", seen.out_of_order),
    );
    scenario.note(format!(
        "send throughput with webhooks on: {:.1}% of off ({:.0} vs {:.0} req/s; the \
         issue's bar: within 15%); server CPU per send {}; {} connections, {} round(s) \
         of {:.1}s off then {:.1}s on",
        100.0 * on.per_second() / off.per_second().max(1e-9),
        on.per_second(),
        off.per_second(),
        match (off.ticks, on.ticks) {
            (Some(a), Some(b)) if a > 0 && b > 0 => format!(
                "off/on {:.3}",
                (a as f64 / off.acked_total.max(1) as f64)
                    / (b as f64 / on.acked_total.max(1) as f64)
            ),
            _ => "not measured (no server process)".into(),
        },
        args.connections,
        args.rounds,
        args.duration.as_secs_f64(),
        args.duration.as_secs_f64(),
    ));
    Ok(())
}

/// One `on` phase: the sends, then until every event of it arrived.
async fn on_phase(
    target: &Target,
    args: &WebhooksArgs,
    receiver: &Receiver,
    load: &SendsArgs,
    on: &mut Phase,
) -> anyhow::Result<()> {
    let before = receiver.distinct();
    let started = Instant::now();
    let cpu = ServerCpu::start(target);
    let level = sends::level(&target.nodes, load, args.connections).await?;
    let sent_for = started.elapsed();
    // Each chat's creation and every message of the phase.
    let events = level.acked_total + args.connections;
    let drain = receiver
        .wait_for(before + events, args.drain_timeout)
        .await
        .context("not every event of the `sends on` phase arrived")?;
    on.add(&level, cpu.used());
    on.events += events;
    on.delivery_secs += (sent_for + drain).as_secs_f64();
    on.drain = on.drain.max(drain);
    Ok(())
}

/// The backlog: refused while it is written, then drained.
async fn backlog(
    target: &Target,
    args: &WebhooksArgs,
    scenario: &mut Scenario,
    receiver: &Receiver,
) -> anyhow::Result<()> {
    receiver.refusing.store(true, Ordering::Release);
    let before = receiver.distinct();
    let chats = args.connections.max(1);
    let per_chat = args.backlog.div_ceil(chats);
    let run = run_id();
    let writers = (0..chats).map(|i| {
        let api = target.nodes[i % target.nodes.len()].clone();
        let customer = format!("bench-{run}-w{i}");
        let padding = "x".repeat(args.content_chars);
        async move {
            let login = api.customer_login(&customer, None).await?;
            let client = api.as_user(&login.token);
            let chat = login.chat.id.to_string();
            for n in 0..per_chat {
                api::send(&client, &chat, &padding, &format!("b-{n}")).await?;
            }
            anyhow::Ok(())
        }
    });
    for written in join_all(writers).await {
        written?;
    }
    let backlog = chats * (1 + per_chat);
    let admin = target.api.admin();
    let deadline = Instant::now() + args.drain_timeout;
    loop {
        let pending: u64 = admin.webhooks().await?.iter().map(|w| w.pending).sum();
        if pending as usize >= backlog {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {pending} of {backlog} events pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.refusing.store(false, Ordering::Release);
    let drain = receiver
        .wait_for(before + backlog, args.drain_timeout)
        .await
        .context("the backlog did not drain")?;
    scenario.row(vec![
        Cell::Text("backlog".into()),
        Cell::Text("-".into()),
        Cell::Text("-".into()),
        Cell::Text("-".into()),
        Cell::Text("-".into()),
        Cell::Text("-".into()),
        Cell::Text("-".into()),
        Cell::Text("-".into()),
        Cell::Int(backlog as u64),
        Cell::Num(backlog as f64 / drain.as_secs_f64().max(1e-9), 0),
        Cell::Num(drain.as_secs_f64() * 1000.0, 0),
        Cell::Text("-".into()),
    ]);
    scenario.note(
        "backlog: the receiver answers 503 while the messages are sent (the outbox holds \
         them), then 200; drain = from then until the last one arrived (the first \
         retries wait out their backoff, at most --webhook-backoff-max)",
    );
    Ok(())
}

/// The server's CPU time over a phase (user and system, all threads), when its process
/// is known (`--spawn` or `--server-pid`): per acknowledged send (warm-up included, as
/// the CPU of the whole phase is), a figure that a busy machine disturbs much less than
/// the throughput.
struct ServerCpu {
    pid: Option<u32>,
    ticks: Option<u64>,
}

impl ServerCpu {
    fn start(target: &Target) -> Self {
        Self {
            pid: target.pid,
            ticks: target.pid.and_then(|pid| mem::cpu_ticks(pid).ok()),
        }
    }

    /// Clock ticks used since the start, when known.
    fn used(&self) -> Option<u64> {
        let (pid, ticks) = self.pid.zip(self.ticks)?;
        Some(mem::cpu_ticks(pid).ok()?.saturating_sub(ticks))
    }
}
