//! `attack slowloris`: many half-open connections from one address, and ordinary clients
//! from another. Each attacker connection either sends a partial request head and adds a
//! header line every `--trickle` (never the blank line that ends it), or sends one whole
//! request, reads the answer and stays idle; whenever the server closes one, it
//! reconnects after `--retry`, so the attacker holds as many as the server lets it. After
//! `--warmup`, the clients make requests one at a time, each on a new connection (what
//! the attack starves first), alternating `/healthz` and a page of a chat's messages, for
//! `--duration`; every answer is checked. Reported: the clients' latency and failures,
//! and how many attacker connections were held (sampled every 100 ms) and closed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

use super::{connect, default_local, read_answer, server_addr, until_closed};
use crate::api::{self, run_id};
use crate::cli::SlowlorisArgs;
use crate::report::{Cell, LATENCY_COLUMNS, Scenario, latency_cells};
use crate::stats::Latencies;
use crate::target::Target;

const TITLE: &str = "half-open connections from one address; other clients' requests (ms)";

/// Attacker connections being opened at once.
const OPEN_CONCURRENCY: usize = 256;
/// Messages in the chat whose page the clients read.
const PAGE_MESSAGES: usize = 20;
/// A connection the server closes this soon, without a byte, counts as refused.
const REFUSED_WITHIN: Duration = Duration::from_secs(1);

pub(crate) async fn run(target: &Target, args: &SlowlorisArgs) -> Scenario {
    let mut columns = vec![
        ("attackers", "attackers"),
        ("heldMedian", "held p50"),
        ("heldMax", "held max"),
        ("attackerConnects", "connects"),
        ("refused", "refused"),
        ("cutOff", "cut off"),
        ("requests", "requests"),
        ("failed", "failed"),
    ];
    columns.extend(LATENCY_COLUMNS);
    let mut scenario = Scenario::new("slowloris", TITLE, &columns);
    if let Err(e) = measure(target, args, &mut scenario).await {
        scenario.check("run", false, format!("{e:#}"));
    }
    scenario
}

/// The attacker's counters, shared by its connections.
#[derive(Default)]
struct Attack {
    open: AtomicUsize,
    connects: AtomicU64,
    connect_errors: AtomicU64,
    /// Closed by the server within [`REFUSED_WITHIN`] without a byte.
    refused: AtomicU64,
    /// Closed by the server later.
    cut_off: AtomicU64,
}

/// What the ordinary clients saw.
struct Clients {
    latencies: Latencies,
    requests: u64,
    failures: Vec<String>,
    wrong: Vec<String>,
}

async fn measure(
    target: &Target,
    args: &SlowlorisArgs,
    scenario: &mut Scenario,
) -> anyhow::Result<()> {
    let server = server_addr(target.api.base()).await?;
    let attacker = default_local(server, args.attacker_address, 2);
    let client = default_local(server, args.client_address, 3);
    let api = &target.api;
    let login = api
        .customer_login(&format!("bench-{}-slowloris", run_id()), None)
        .await?;
    let (customer, chat) = (api.as_user(&login.token), login.chat.id.to_string());
    for i in 0..PAGE_MESSAGES {
        let (status, _) = api::send(
            &customer,
            &chat,
            &format!("message {i}"),
            &format!("sl-{i}"),
        )
        .await?;
        if status != 201 {
            bail!("a setup message was answered {status}");
        }
    }
    let page = format!(
        "{}/api/chats/{chat}/messages?limit={PAGE_MESSAGES}",
        api.base()
    );

    let attack = Arc::new(Attack::default());
    let (stop, stopped) = watch::channel(false);
    let opening = Arc::new(Semaphore::new(OPEN_CONCURRENCY));
    let slots: Vec<_> = (0..args.connections)
        .map(|i| {
            let idle = (i as f64) < args.idle_share * args.connections as f64;
            tokio::spawn(slot(
                Slot {
                    server,
                    local: attacker,
                    idle,
                    trickle: args.trickle,
                    retry: args.retry,
                },
                Arc::clone(&attack),
                Arc::clone(&opening),
                stopped.clone(),
            ))
        })
        .collect();
    let sampler = tokio::spawn(sample(Arc::clone(&attack), stopped.clone()));
    tokio::time::sleep(args.warmup).await;

    let http = api
        .admin()
        .http_builder()
        .local_address(client)
        .pool_max_idle_per_host(0)
        .tcp_nodelay(true)
        .timeout(args.request_timeout)
        .build()
        .context("building the clients' HTTP client")?;
    let deadline = Instant::now() + args.duration;
    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            let (http, page, token) = (http.clone(), page.clone(), login.token.clone());
            let health = format!("{}/healthz", api.base());
            let interval = args.interval;
            tokio::spawn(async move {
                ordinary(i, &http, &health, &page, &token, interval, deadline).await
            })
        })
        .collect();
    let mut seen = Clients {
        latencies: Latencies::new(),
        requests: 0,
        failures: Vec::new(),
        wrong: Vec::new(),
    };
    for task in clients {
        let one = task.await.context("a client task failed")?;
        seen.latencies.merge(&one.latencies);
        seen.requests += one.requests;
        seen.failures.extend(one.failures);
        seen.wrong.extend(one.wrong);
    }
    let _ = stop.send(true);
    let held = sampler.await.context("the sampler failed")?;
    for slot in slots {
        let _ = slot.await;
    }
    report(args, attacker, client, &attack, &held, &seen, scenario);
    Ok(())
}

/// One attacker connection's settings.
#[derive(Clone, Copy)]
struct Slot {
    server: SocketAddr,
    local: Option<IpAddr>,
    idle: bool,
    trickle: Duration,
    retry: Duration,
}

/// Holds one attacker connection open as long as the server allows, again and again.
async fn slot(
    slot: Slot,
    attack: Arc<Attack>,
    opening: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if *stopped.borrow() {
            return;
        }
        let connected = {
            let Ok(_permit) = opening.acquire().await else {
                return;
            };
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                connected = connect(slot.local, slot.server, None) => connected,
            }
        };
        match connected {
            Ok(mut stream) => {
                attack.connects.fetch_add(1, Ordering::Relaxed);
                attack.open.fetch_add(1, Ordering::Relaxed);
                let opened = Instant::now();
                let outcome = tokio::select! {
                    _ = stopped.wait_for(|s| *s) => None,
                    got = hold(&mut stream, slot) => Some(got),
                };
                attack.open.fetch_sub(1, Ordering::Relaxed);
                match outcome {
                    None => return,
                    Some(false) if opened.elapsed() < REFUSED_WITHIN => {
                        attack.refused.fetch_add(1, Ordering::Relaxed)
                    }
                    Some(_) => attack.cut_off.fetch_add(1, Ordering::Relaxed),
                };
            }
            Err(_) => {
                attack.connect_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            () = tokio::time::sleep(slot.retry) => {}
        }
    }
}

/// Plays one attacker connection until the server closes it; whether the server sent
/// anything.
async fn hold(stream: &mut TcpStream, slot: Slot) -> bool {
    if slot.idle {
        if stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            .await
            .is_err()
        {
            return false;
        }
        let answer = read_answer(stream, false).await;
        return until_closed(stream).await || answer.status != 0;
    }
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut line = 0u64;
    let mut got = false;
    loop {
        tokio::select! {
            closed = until_closed(stream) => return got || closed,
            () = tokio::time::sleep(slot.trickle) => {
                line += 1;
                let header = format!("X-Slow-{line}: {line}\r\n");
                if stream.write_all(header.as_bytes()).await.is_err() {
                    got |= until_closed(stream).await;
                    return got;
                }
            }
        }
    }
}

/// Samples how many attacker connections are open, every 100 ms until stopped.
async fn sample(attack: Arc<Attack>, mut stopped: watch::Receiver<bool>) -> Vec<usize> {
    let mut every = tokio::time::interval(Duration::from_millis(100));
    let mut held = Vec::new();
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return held,
            _ = every.tick() => held.push(attack.open.load(Ordering::Relaxed)),
        }
    }
}

/// One ordinary client: requests one at a time until `deadline`, alternating `/healthz`
/// and the page, each checked.
async fn ordinary(
    i: usize,
    http: &reqwest::Client,
    health: &str,
    page: &str,
    token: &str,
    interval: Duration,
    deadline: Instant,
) -> Clients {
    let mut seen = Clients {
        latencies: Latencies::new(),
        requests: 0,
        failures: Vec::new(),
        wrong: Vec::new(),
    };
    let mut n = i;
    while Instant::now() < deadline {
        let paged = n % 2 == 1;
        n += 1;
        let request = if paged {
            http.get(page).bearer_auth(token)
        } else {
            http.get(health)
        };
        let started = Instant::now();
        let answer = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        seen.requests += 1;
        match answer {
            Ok((200, body)) => {
                seen.latencies.record(started.elapsed());
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let right = if paged {
                    body.as_array().map(Vec::len) == Some(PAGE_MESSAGES)
                } else {
                    body["status"] == "ok"
                };
                if !right {
                    seen.wrong.push(format!(
                        "{}: {body}",
                        if paged { "page" } else { "/healthz" }
                    ));
                }
            }
            Ok((status, _)) => seen.failures.push(format!("answered {status}")),
            Err(e) => seen.failures.push(format!("{e}")),
        }
        tokio::time::sleep(interval).await;
    }
    seen
}

fn report(
    args: &SlowlorisArgs,
    attacker: Option<IpAddr>,
    client: Option<IpAddr>,
    attack: &Attack,
    held: &[usize],
    seen: &Clients,
    scenario: &mut Scenario,
) {
    let mut sorted = held.to_vec();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let max = sorted.last().copied().unwrap_or(0);
    let connects = attack.connects.load(Ordering::Relaxed);
    let mut row = vec![
        Cell::Int(args.connections as u64),
        Cell::Int(median as u64),
        Cell::Int(max as u64),
        Cell::Int(connects),
        Cell::Int(attack.refused.load(Ordering::Relaxed)),
        Cell::Int(attack.cut_off.load(Ordering::Relaxed)),
        Cell::Int(seen.requests),
        Cell::Int(seen.failures.len() as u64),
    ];
    row.extend(latency_cells(&seen.latencies.summary()));
    scenario.row(row);
    scenario.check(
        "the attacker connected",
        connects > 0,
        format!(
            "{connects} connections ({} connect errors)",
            attack.connect_errors.load(Ordering::Relaxed)
        ),
    );
    scenario.check(
        "every answer the clients got was right",
        seen.wrong.is_empty(),
        match seen.wrong.first() {
            None => format!("{} answers checked", seen.latencies.summary().count),
            Some(first) => format!("{} wrong, first: {first}", seen.wrong.len()),
        },
    );
    scenario.check(
        "every client request was answered 200",
        seen.failures.is_empty() && seen.requests > 0,
        match seen.failures.first() {
            None => format!("{} of {}", seen.requests, seen.requests),
            Some(first) => format!(
                "{} of {} failed (within {:?}), first: {first}",
                seen.failures.len(),
                seen.requests,
                args.request_timeout
            ),
        },
    );
    let show = |ip: Option<IpAddr>| {
        ip.map_or_else(|| "the system's choice".to_string(), |ip| ip.to_string())
    };
    scenario.note(format!(
        "attacker from {}, {:.0}% idle after one request, the rest trickling a header line \
         every {:?}, reconnecting {:?} after a close; clients from {}, {} at a time, a new \
         connection per request, {:?} apart, measured for {:?} after {:?} of attack; held = \
         attacker connections open (sampled every 100 ms); refused = closed within {:?} \
         without a byte; cut off = closed later",
        show(attacker),
        args.idle_share * 100.0,
        args.trickle,
        args.retry,
        show(client),
        args.clients,
        args.interval,
        args.duration,
        args.warmup,
        REFUSED_WITHIN,
    ));
}
