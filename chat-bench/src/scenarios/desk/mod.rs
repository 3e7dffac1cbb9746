//! `desk`: a day at the desk. Officers, each with a WebSocket in `officers:all` for the
//! whole run, serve customers who arrive at random over the run: each logs in (a new
//! chat), writes a first message, is assigned (by the server in automatic mode; in
//! manual mode by the officers, who go for chats they hear of in the queue and race for
//! them), exchanges a few messages with their officer at a human pace, and leaves once
//! the officer has resolved the chat, which frees the officer's slot. Some officers come
//! and go meanwhile (away for a while, or their socket dropped and opened again).
//!
//! Measured: login to assignment (the login's answer, or the assignment's entry on the
//! customer's socket), message delivery both ways (send to receipt on the other party's
//! socket), queue events to every officer (login to each officer's receipt, and to the
//! last one's), and the server's CPU and memory when its process is known. Checked:
//! every customer served, every chat assigned exactly once and resolved, every
//! acknowledged message received by the other party in seq order, no officer ever past
//! capacity (in `officer_updated` events, in the officers' list read every `--poll`, and
//! in each officer's own count), every queue event at every officer in the room on the
//! node of the chat's login (another node hands it out only while the chat is still
//! pending), every slot free at the end.
//!
//! Files: `officer.rs` and `customer.rs` (the two parties), `ledger.rs` (what each chat
//! went through, and the checks' bookkeeping), `frames.rs` (the frames' fields read).

mod customer;
mod frames;
mod ledger;
mod officer;
mod summary;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{Availability, ChatStatus, Client, Socket};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::customer::Visit;
use self::ledger::{CapacityTracker, Ledger};
use self::officer::{Cmd, Officer, OfficerReport};
use crate::api::{Api, run_id};
use crate::cli::{AssignmentMode, CountRange, DeskArgs, DurationRange};
use crate::mem;
use crate::report::{LATENCY_COLUMNS, Scenario};
use crate::stats::Latencies;
use crate::target::Target;

const TITLE: &str = "a day at the desk: customers arrive, are assigned, talk with an officer and are \
                     resolved";

/// How long the officers may take to show as connected before the customers come.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the probe's chat may stay pending before the server is taken for manual.
const DETECT_WAIT: Duration = Duration::from_secs(2);
/// How often a long run says how far it is (on stderr).
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

pub(crate) async fn run(target: &Target, args: &DeskArgs) -> Scenario {
    let mut columns = vec![("figure", "figure")];
    columns.extend(LATENCY_COLUMNS);
    let mut scenario = Scenario::new("desk", TITLE, &columns);
    if let Err(e) = day(target, args, &mut scenario).await {
        scenario.check("run", false, format!("{e:#}"));
    }
    scenario
}

/// What every task of a run shares.
struct Ctx {
    args: DeskArgs,
    /// Set once the mode is known (before the first customer): officers claim only then.
    manual: AtomicBool,
    /// The run's start: queue receipts are kept as times since it.
    epoch: Instant,
    /// One per customer, by index.
    ledgers: Vec<Ledger>,
    /// Every message's content.
    content: String,
    customer_prefix: String,
}

impl Ctx {
    fn auto(&self) -> bool {
        !self.manual.load(Ordering::Acquire)
    }

    fn customer_id(&self, i: usize) -> String {
        format!("{}{i}", self.customer_prefix)
    }

    /// The index of one of this run's customers (`None` for anyone else, such as the
    /// probe).
    fn customer_index(&self, customer_id: &str) -> Option<usize> {
        customer_id
            .strip_prefix(&self.customer_prefix)?
            .parse()
            .ok()
            .filter(|i| *i < self.ledgers.len())
    }
}

/// A duration drawn evenly from the range.
fn draw(range: DurationRange) -> Duration {
    if range.max <= range.min {
        return range.min;
    }
    range.min + (range.max - range.min).mul_f64(rand::random::<f64>())
}

/// A duration drawn evenly from half to one and a half times `mean`.
fn draw_around(mean: Duration) -> Duration {
    mean.mul_f64(0.5 + rand::random::<f64>())
}

fn draw_count(range: CountRange) -> u32 {
    rand::random_range(range.min..=range.max)
}

/// An officer's task while it runs.
struct Running {
    tx: mpsc::UnboundedSender<Cmd>,
    task: JoinHandle<OfficerReport>,
}

async fn day(target: &Target, args: &DeskArgs, scenario: &mut Scenario) -> anyhow::Result<()> {
    let nodes = &target.nodes;
    let run = run_id();
    let ctx = Arc::new(Ctx {
        args: args.clone(),
        manual: AtomicBool::new(false),
        epoch: Instant::now(),
        ledgers: (0..args.customers).map(|_| Ledger::default()).collect(),
        content: "a".repeat(args.content_chars.max(1)),
        customer_prefix: format!("bench-{run}-d"),
    });

    // The watcher: an officer who never takes a chat (away before ever connecting, so
    // never eligible), whose token reads the officers' list and whose sockets follow
    // `officers:all` on every node for the capacity check.
    let watcher_id = format!("bench-{run}-watch");
    let watcher = nodes[0].new_officer(&watcher_id).await?;
    watcher
        .set_availability(&watcher_id, Availability::Away)
        .await
        .context("setting the watcher away")?;

    let officer_ids: Vec<String> = (0..args.officers)
        .map(|j| format!("bench-{run}-o{j}"))
        .collect();
    let churning = (args.officers as f64 * args.churn.clamp(0.0, 1.0)).round() as usize;
    // Officers start as soon as each is set up, so that no socket waits unread.
    let officers: Vec<Running> = stream::iter(0..args.officers)
        .map(|j| {
            let (ctx, node, id) = (
                ctx.clone(),
                nodes[j % nodes.len()].clone(),
                officer_ids[j].clone(),
            );
            async move {
                let (client, capacity, socket, joined) = open_officer(&node, &id).await?;
                let me = Officer {
                    index: j,
                    node: j % nodes.len(),
                    id,
                    client,
                    capacity,
                    churns: j < churning,
                };
                let (tx, task) = officer::spawn(ctx, me, socket, joined);
                anyhow::Ok(Running { tx, task })
            }
        })
        // Creating an officer hashes a password on the server (argon2): a few at once.
        .buffered(4)
        .try_collect()
        .await?;
    let capacities = wait_until_connected(&watcher, &officer_ids).await?;
    let auto = match args.assignment {
        AssignmentMode::Auto => true,
        AssignmentMode::Manual => false,
        AssignmentMode::Detect => detect_auto(&nodes[0], &run).await?,
    };
    ctx.manual.store(!auto, Ordering::Release);

    let (stop_tx, monitors) = start_monitors(nodes, &watcher, &officer_ids, args.poll).await?;
    let server = target.pid.map(ServerUsage::start);
    let bench_ticks = mem::cpu_ticks(std::process::id()).ok();

    // Customers arrive at random (a Poisson process) over the duration.
    let started = Instant::now();
    let mean_gap = args.duration.as_secs_f64() / args.customers.max(1) as f64;
    let mut next = tokio::time::Instant::now();
    let mut progress = started + PROGRESS_EVERY;
    let mut visits: Vec<JoinHandle<Visit>> = Vec::with_capacity(args.customers);
    for i in 0..args.customers {
        tokio::time::sleep_until(next).await;
        visits.push(tokio::spawn(customer::visit(
            ctx.clone(),
            nodes[i % nodes.len()].clone(),
            i,
        )));
        next += Duration::from_secs_f64(-mean_gap * (1.0 - rand::random::<f64>()).ln());
        if Instant::now() >= progress {
            progress += PROGRESS_EVERY;
            eprintln!(
                "desk: {} of {} customers arrived in {:.0?}",
                i + 1,
                args.customers,
                started.elapsed()
            );
        }
    }
    let arrivals = started.elapsed();
    let mut visited = Vec::with_capacity(visits.len());
    for visit in visits {
        visited.push(visit.await.context("a customer's task")?);
    }
    let served_in = started.elapsed();
    let server = match server {
        Some(usage) => Some(usage.finish().await),
        None => None,
    };
    let bench_ticks = bench_ticks.and_then(|before| {
        mem::cpu_ticks(std::process::id())
            .ok()
            .map(|after| after - before)
    });

    for officer in &officers {
        let _ = officer.tx.send(Cmd::Stop);
    }
    let mut reports = Vec::with_capacity(officers.len());
    for officer in officers {
        reports.push(officer.task.await.context("an officer's task")?);
    }
    let _ = stop_tx.send(());
    let mut capacity = CapacityTracker::default();
    let mut monitor_errors = Vec::new();
    let mut list_reads = Latencies::new();
    for monitor in monitors {
        let watched = monitor.await.context("a monitor's task")?;
        capacity.merge(&watched.capacity);
        monitor_errors.extend(watched.errors);
        list_reads.merge(&watched.list_reads);
    }
    // A server that no longer answers still gets the rest of its report.
    let still_open = open_at_the_end(&watcher, &officer_ids)
        .await
        .map_err(|e| format!("{e:#}"));

    let figures = Figures {
        auto,
        churning,
        arrivals,
        served_in,
        capacities,
        server,
        bench_ticks,
        monitors: capacity,
        monitor_errors,
        list_reads,
        still_open,
    };
    summary::report(
        scenario,
        &ctx,
        nodes.len(),
        &officer_ids,
        figures,
        &visited,
        reports,
    );
    Ok(())
}

/// Creates an officer and logs them in, reads their capacity in force, and opens their
/// socket in `officers:all`.
async fn open_officer(
    node: &Api,
    id: &str,
) -> anyhow::Result<(Client, Option<u32>, Socket, Instant)> {
    let client = node.new_officer(id).await?;
    let me = client
        .me()
        .await
        .with_context(|| format!("GET /api/me as {id}"))?;
    let capacity = me.officer.and_then(|o| o.capacity);
    let mut socket = client
        .connect()
        .await
        .with_context(|| format!("{id}'s socket"))?;
    socket
        .join_officers()
        .await
        .with_context(|| format!("{id} joining officers:all"))?;
    Ok((client, capacity, socket, Instant::now()))
}

/// Waits until the server counts every officer as connected (automatic assignment gives
/// chats only to them); answers each officer's capacity in force.
async fn wait_until_connected(
    watcher: &Client,
    ids: &[String],
) -> anyhow::Result<HashMap<String, Option<u32>>> {
    let started = Instant::now();
    loop {
        let list = watcher.officers().await.context("GET /api/officers")?;
        let ours: HashMap<&str, _> = list
            .iter()
            .map(|o| (o.id.as_str(), (o.connected, o.capacity)))
            .collect();
        let waiting = ids
            .iter()
            .filter(|id| !ours.get(id.as_str()).is_some_and(|(c, _)| *c))
            .count();
        if waiting == 0 {
            return Ok(ids
                .iter()
                .map(|id| (id.clone(), ours.get(id.as_str()).and_then(|(_, cap)| *cap)))
                .collect());
        }
        anyhow::ensure!(
            started.elapsed() < CONNECT_TIMEOUT,
            "{waiting} of {} officers not shown as connected after {CONNECT_TIMEOUT:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks the server which mode it runs in: in automatic mode a probe customer's chat is
/// assigned at once (every officer is connected, available and free now), in manual mode
/// it waits (officers never claim the probe). The login's answer may show the chat
/// pending although a concurrent round of assignment gave it already, so the chat is
/// read again for a while before concluding. The probe then resolves their chat.
async fn detect_auto(node: &Api, run: &str) -> anyhow::Result<bool> {
    let probe = node
        .customer_login(&format!("bench-{run}-probe"), None)
        .await?;
    let client = node.as_user(&probe.token);
    let chat = probe.chat.id.to_string();
    let mut assigned = probe.chat.status == ChatStatus::Assigned;
    let started = Instant::now();
    while !assigned && started.elapsed() < DETECT_WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = client
            .chat(&chat)
            .await
            .context("the probe reading their chat")?;
        assigned = now.status == ChatStatus::Assigned;
    }
    client
        .resolve(&chat)
        .await
        .context("the probe resolving their chat")?;
    Ok(assigned)
}

/// What a monitor saw.
struct Watched {
    capacity: CapacityTracker,
    errors: Vec<String>,
    list_reads: Latencies,
}

type Monitor = JoinHandle<Watched>;

/// One monitor per node: the watcher's socket in `officers:all` checks every
/// `officer_updated`; the first also reads the officers' list every `poll`.
async fn start_monitors(
    nodes: &[Api],
    watcher: &Client,
    ids: &[String],
    poll: Duration,
) -> anyhow::Result<(tokio::sync::watch::Sender<()>, Vec<Monitor>)> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let token = watcher.token().unwrap_or_default().to_string();
    let ours: Arc<std::collections::HashSet<String>> = Arc::new(ids.iter().cloned().collect());
    let mut monitors = Vec::new();
    for (k, node) in nodes.iter().enumerate() {
        let client = node.as_user(&token);
        let mut socket = client.connect().await.context("the watcher's socket")?;
        socket.join_officers().await?;
        let poll = (k == 0).then_some(poll);
        monitors.push(tokio::spawn(monitor(
            client,
            socket,
            k,
            poll,
            ours.clone(),
            stop_rx.clone(),
        )));
    }
    Ok((stop_tx, monitors))
}

async fn monitor(
    client: Client,
    mut socket: Socket,
    node: usize,
    poll: Option<Duration>,
    ours: Arc<std::collections::HashSet<String>>,
    mut stop: tokio::sync::watch::Receiver<()>,
) -> Watched {
    let mut tracker = CapacityTracker::default();
    let mut errors = Vec::new();
    let mut list_reads = Latencies::new();
    let mut tick = tokio::time::interval(poll.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let event_source = format!("officer_updated on node {}", node + 1);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            frame = socket.next_text() => match frame {
                Ok(text) => {
                    if frames::leading_type(&text).is_some_and(|t| t != "officer_updated") {
                        continue;
                    }
                    if let Some(officer) = frames::parse(&text).and_then(|f| f.officer) {
                        if ours.contains(officer.id.as_ref()) {
                            tracker.observe(&officer.id, officer.open_chats, officer.capacity, &event_source);
                        }
                    }
                }
                Err(e) => {
                    errors.push(format!("the watcher's socket on node {} ended: {e}", node + 1));
                    break;
                }
            },
            _ = tick.tick(), if poll.is_some() => {
                let started = Instant::now();
                match client.officers().await {
                    Ok(list) => {
                        list_reads.record(started.elapsed());
                        for o in list.iter().filter(|o| ours.contains(o.id.as_str())) {
                            tracker.observe(o.id.as_str(), o.open_chats, o.capacity, "GET /api/officers");
                        }
                    }
                    Err(e) => errors.push(format!("GET /api/officers: {e}")),
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close()).await;
    Watched {
        capacity: tracker,
        errors,
        list_reads,
    }
}

/// The officers who still hold open chats once everyone has left: (id, open chats).
async fn open_at_the_end(watcher: &Client, ids: &[String]) -> anyhow::Result<Vec<(String, u32)>> {
    let ours: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let list = watcher.officers().await.context("GET /api/officers")?;
    Ok(list
        .into_iter()
        .filter(|o| ours.contains(o.id.as_str()) && o.open_chats > 0)
        .map(|o| (o.id.to_string(), o.open_chats))
        .collect())
}

/// The server's CPU time and memory over the customers' arrivals and visits.
struct ServerUsage {
    pid: u32,
    started: Instant,
    ticks: Option<u64>,
    rss_start: Option<u64>,
    sampler: (oneshot::Sender<()>, JoinHandle<Option<u64>>),
}

/// What [`ServerUsage`] measured.
struct Usage {
    cores: Option<f64>,
    rss_start_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
    rss_end_kib: Option<u64>,
}

impl ServerUsage {
    fn start(pid: u32) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let sampler = tokio::spawn(async move {
            let mut peak = None;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = &mut stopped => return peak,
                    _ = tick.tick() => {
                        if let Ok(rss) = mem::rss_kib(pid) {
                            peak = peak.max(Some(rss));
                        }
                    }
                }
            }
        });
        Self {
            pid,
            started: Instant::now(),
            ticks: mem::cpu_ticks(pid).ok(),
            rss_start: mem::rss_kib(pid).ok(),
            sampler: (stop, sampler),
        }
    }

    async fn finish(self) -> Usage {
        let elapsed = self.started.elapsed().as_secs_f64();
        let ticks = mem::cpu_ticks(self.pid).ok();
        let rss_end = mem::rss_kib(self.pid).ok();
        let (stop, sampler) = self.sampler;
        let _ = stop.send(());
        let peak = sampler.await.ok().flatten();
        let cores = match (self.ticks, ticks) {
            (Some(before), Some(after)) if elapsed > 0.0 => {
                Some((after - before) as f64 / mem::TICKS_PER_SECOND as f64 / elapsed)
            }
            _ => None,
        };
        Usage {
            cores,
            rss_start_kib: self.rss_start,
            rss_peak_kib: peak.max(rss_end),
            rss_end_kib: rss_end,
        }
    }
}

/// What the run measured beside the visits and the officers' reports.
struct Figures {
    auto: bool,
    churning: usize,
    /// From the first arrival to the last.
    arrivals: Duration,
    /// From the first arrival until every customer had left.
    served_in: Duration,
    capacities: HashMap<String, Option<u32>>,
    server: Option<Usage>,
    /// The bench's own CPU time over the same span, in clock ticks.
    bench_ticks: Option<u64>,
    /// Loads seen by the monitors (events and the list).
    monitors: CapacityTracker,
    monitor_errors: Vec<String>,
    /// The monitor's reads of the officers' list, timed (a stalled server shows here).
    list_reads: Latencies,
    /// Officers holding open chats once everyone had left: (id, open chats), or why
    /// the list could not be read.
    still_open: Result<Vec<(String, u32)>, String>,
}
