//! `sends`: durable REST sends. Each of N connections is a fresh customer with a chat of
//! their own, sending the next message as soon as the previous one is acknowledged (an
//! acknowledgement means committed), or, with `--rate`, when it is due on an even pace
//! (its latency then counted from that moment). After the run every chat is read back: every 2xx
//! must have a distinct id, be stored with the seq it was acknowledged with, and each
//! chat's seqs must be 1..n with no gap.
//!
//! With `--followers`, each chat is followed as at the desk: created for an officer of
//! its own, with the customer's socket and the officer's socket joined to it (so that
//! every send also fans out to two sockets, as a real send does); each socket must get
//! every stored message once, in order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{Client, Socket};
use chatcore::MessageId;
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::fanout::Frame;

use crate::api::{self, Api, run_id};
use crate::cli::SendsArgs;
use crate::report::{Cell, LATENCY_COLUMNS, Scenario, latency_cells};
use crate::stats::Latencies;
use crate::target::Target;

pub(crate) async fn run(target: &Target, args: &SendsArgs) -> Scenario {
    let mut columns = vec![
        ("connections", "connections"),
        ("acknowledged", "acked"),
        ("errors", "errors"),
        ("perSecond", "req/s"),
    ];
    columns.extend(LATENCY_COLUMNS);
    let mut scenario = Scenario::new(
        "sends",
        "durable sends: POST /api/chats/{id}/messages, acknowledged = committed",
        &columns,
    );
    for &connections in &args.connections {
        match level(&target.nodes, args, connections.max(1)).await {
            Ok(level) => level.report(&mut scenario),
            Err(e) => scenario.check(
                format!("{connections} connections: run"),
                false,
                format!("{e:#}"),
            ),
        }
    }
    scenario.note(format!(
        "each level: {} warm-up (not counted), then {} measured; {}; {} node(s)",
        humanize(args.warmup),
        humanize(args.duration),
        match args.rate {
            Some(rate) => format!(
                "paced at {rate} sends a second in all, latency from when each send was \
                 due to its answer, client-side"
            ),
            None => "latency from request to answer, client-side".into(),
        },
        target.nodes.len()
    ));
    scenario
}

fn humanize(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

struct Worker {
    /// The customer, on a connection of their own.
    client: Client,
    chat: String,
    /// With `--followers`: the customer's socket and the officer's, joined to the chat.
    followers: Vec<Follower>,
}

/// A socket joined to a chat, read on a task of its own until told the chat's last seq.
struct Follower {
    task: JoinHandle<Followed>,
    last: oneshot::Sender<u64>,
}

/// What a follower received: the seqs of the `new_message` frames, in arrival order.
struct Followed {
    socket: Socket,
    seqs: Vec<u64>,
    error: Option<String>,
}

impl Follower {
    fn start(socket: Socket) -> Self {
        let (last, told) = oneshot::channel();
        Self {
            task: tokio::spawn(follow(socket, told)),
            last,
        }
    }
}

/// Reads a follower's socket until it has seen `new_message` up to the seq it is told
/// (or the socket fails). Only the two fields it needs are parsed, borrowed: the
/// followers share the machine with the server, so what they spend is load measured.
async fn follow(mut socket: Socket, mut told: oneshot::Receiver<u64>) -> Followed {
    let (mut seqs, mut until) = (Vec::new(), None::<u64>);
    loop {
        if until.is_some_and(|until| seqs.last().copied().unwrap_or(0) >= until) {
            return Followed {
                socket,
                seqs,
                error: None,
            };
        }
        let frame = tokio::select! {
            frame = socket.next_text() => frame,
            last = &mut told, if until.is_none() => {
                match last {
                    Ok(last) => until = Some(last),
                    Err(_) => until = Some(0),
                }
                continue;
            }
        };
        let error = match frame {
            Ok(text) => match serde_json::from_str::<Frame>(&text) {
                Ok(frame) => {
                    if let Some(message) = frame.message.filter(|_| frame.kind == "new_message") {
                        seqs.push(message.seq);
                    }
                    continue;
                }
                Err(e) => format!("a frame that is not the contract's ({e}): {text}"),
            },
            Err(e) => format!("read failed: {e}"),
        };
        return Followed {
            socket,
            seqs,
            error: Some(error),
        };
    }
}

#[derive(Default)]
struct WorkerResult {
    latencies: Option<Latencies>,
    measured: u64,
    /// Every acknowledged message: id and seq (warm-up included).
    acked: Vec<(MessageId, u64)>,
    /// Non-2xx answers by status; transport failures as status 0.
    failures: BTreeMap<u16, u64>,
}

/// One level's figures (also what `webhooks` measures with and without webhooks).
pub(super) struct Level {
    connections: usize,
    pub(super) latencies: Latencies,
    pub(super) measured: u64,
    pub(super) per_second: f64,
    failures: BTreeMap<u16, u64>,
    pub(super) acked_total: usize,
    duplicate_ids: usize,
    chat_problems: Vec<String>,
    /// Sockets that followed the chats (`--followers`), and what was wrong with them.
    followers: usize,
    follower_problems: Vec<String>,
}

pub(super) async fn level(
    nodes: &[Api],
    args: &SendsArgs,
    connections: usize,
) -> anyhow::Result<Level> {
    let run = run_id();
    let mut workers: Vec<Worker> = stream::iter(0..connections)
        .map(|i| {
            // Connections spread evenly over the nodes.
            let api = nodes[i % nodes.len()].own_connection();
            let customer = format!("bench-{run}-s{i}");
            let officer = args.followers.then(|| format!("bench-{run}-o{i}"));
            async move {
                let api = api?;
                let officer_client = match &officer {
                    Some(officer) => Some(
                        api.new_officer(officer)
                            .await
                            .context("--followers needs the admin token")?,
                    ),
                    None => None,
                };
                let login = api.customer_login(&customer, officer.as_deref()).await?;
                let client = api.as_user(&login.token);
                let chat = login.chat.id.to_string();
                let mut followers = Vec::new();
                for person in officer_client.iter().flat_map(|o| [&client, o]) {
                    let mut socket = person.connect().await?;
                    socket.join_chat(&chat, None).await?;
                    followers.push(Follower::start(socket));
                }
                anyhow::Ok(Worker {
                    client,
                    chat,
                    followers,
                })
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await?;
    let padding = "x".repeat(args.content_chars.saturating_sub(24));
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    // A paced load: each connection's share of the rate, its sends due at even gaps
    // (the connections offset from each other).
    let gap = args
        .rate
        .map(|rate| Duration::from_secs_f64(connections as f64 / f64::from(rate)));
    let tasks: Vec<_> = workers
        .iter()
        .enumerate()
        .map(|(w, worker)| {
            let (client, chat) = (worker.client.clone(), worker.chat.clone());
            let padding = padding.clone();
            tokio::spawn(async move {
                let mut result = WorkerResult {
                    latencies: Some(Latencies::new()),
                    ..WorkerResult::default()
                };
                let mut n = 0u64;
                while Instant::now() < end {
                    // Paced: the n-th send is due `n` gaps after this connection's offset;
                    // wait until then, and count the latency from then.
                    let sent_at = match gap {
                        Some(gap) => {
                            let due = start + gap.mul_f64(n as f64 + w as f64 / connections as f64);
                            if due >= end {
                                break;
                            }
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        None => Instant::now(),
                    };
                    n += 1;
                    let content = format!("bench {w} {n} {padding}");
                    let key = format!("s-{n}");
                    let answer = api::send(&client, &chat, &content, &key).await;
                    let took = sent_at.elapsed();
                    match answer {
                        Ok((_, Some(message))) => {
                            if sent_at >= measure_from {
                                if let Some(l) = result.latencies.as_mut() {
                                    l.record(took);
                                }
                                result.measured += 1;
                            }
                            result.acked.push((message.id, message.seq));
                        }
                        Ok((status, None)) => *result.failures.entry(status).or_default() += 1,
                        Err(_) => *result.failures.entry(0).or_default() += 1,
                    }
                }
                result
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await?);
    }
    let measured_for = Instant::now().saturating_duration_since(measure_from);

    let mut latencies = Latencies::new();
    let mut failures = BTreeMap::new();
    let mut measured = 0;
    let mut ids = HashSet::new();
    let mut acked_total = 0;
    let mut duplicate_ids = 0;
    for r in &results {
        if let Some(l) = &r.latencies {
            latencies.merge(l);
        }
        measured += r.measured;
        for (status, count) in &r.failures {
            *failures.entry(*status).or_default() += count;
        }
        for (id, _) in &r.acked {
            acked_total += 1;
            if !ids.insert(*id) {
                duplicate_ids += 1;
            }
        }
    }

    // Read every chat back; each follower must have had every stored message, in order.
    let mut chat_problems = Vec::new();
    let (mut follower_problems, mut sockets, mut follower_count) = (Vec::new(), Vec::new(), 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (worker, result) in workers.iter_mut().zip(&results) {
        let stored: Vec<(MessageId, u64)> = worker
            .client
            .all_messages(&worker.chat)
            .await?
            .into_iter()
            .map(|m| (m.id, m.seq))
            .collect();
        if let Some(problem) = check_chat(&stored, &result.acked) {
            chat_problems.push(format!("chat {}: {problem}", worker.chat));
        }
        let stored_seqs: Vec<u64> = stored.iter().map(|(_, seq)| *seq).collect();
        for follower in worker.followers.drain(..) {
            follower_count += 1;
            let _ = follower.last.send(stored_seqs.last().copied().unwrap_or(0));
            let mut task = follower.task;
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(followed)) => {
                    if let Some(problem) =
                        check_followed(followed.error.as_deref(), &followed.seqs, &stored_seqs)
                    {
                        follower_problems.push(format!("chat {}: {problem}", worker.chat));
                    }
                    sockets.push(followed.socket);
                }
                Ok(Err(e)) => follower_problems.push(format!("chat {}: {e}", worker.chat)),
                Err(_) => {
                    task.abort();
                    follower_problems.push(format!(
                        "chat {}: a follower still lacked messages after 30 s",
                        worker.chat
                    ));
                }
            }
        }
    }
    super::close_sockets(sockets).await;
    Ok(Level {
        connections,
        per_second: measured as f64 / measured_for.as_secs_f64().max(1e-9),
        latencies,
        measured,
        failures,
        acked_total,
        duplicate_ids,
        chat_problems,
        followers: follower_count,
        follower_problems,
    })
}

/// What is wrong with what a follower received, given the chat's stored seqs.
fn check_followed(error: Option<&str>, seqs: &[u64], stored: &[u64]) -> Option<String> {
    if let Some(error) = error {
        return Some(error.to_string());
    }
    if seqs != stored {
        let first_wrong = seqs
            .iter()
            .zip(stored)
            .position(|(got, want)| got != want)
            .unwrap_or(seqs.len().min(stored.len()));
        return Some(format!(
            "a follower got {} messages for {} stored; they differ from position {}",
            seqs.len(),
            stored.len(),
            first_wrong + 1
        ));
    }
    None
}

/// What is wrong with a chat read back, given what was acknowledged in it.
fn check_chat(stored: &[(MessageId, u64)], acked: &[(MessageId, u64)]) -> Option<String> {
    for (i, (_, seq)) in stored.iter().enumerate() {
        if *seq != i as u64 + 1 {
            return Some(format!("seq {seq} at position {} (gap or disorder)", i + 1));
        }
    }
    let by_id: HashMap<MessageId, u64> = stored.iter().copied().collect();
    for (id, seq) in acked {
        match by_id.get(id) {
            None => {
                return Some(format!(
                    "acknowledged message {id} (seq {seq}) is not stored"
                ));
            }
            Some(stored_seq) if stored_seq != seq => {
                return Some(format!(
                    "message {id} acknowledged as seq {seq}, stored as {stored_seq}"
                ));
            }
            Some(_) => {}
        }
    }
    if stored.len() != acked.len() {
        return Some(format!(
            "{} stored but {} acknowledged",
            stored.len(),
            acked.len()
        ));
    }
    None
}

impl Level {
    /// Everything its checks would fail on, in one list (for a scenario that runs the
    /// load as a part of its own).
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.acked_total == 0 || self.duplicate_ids > 0 {
            problems.push(format!(
                "{} acknowledged, {} duplicate ids",
                self.acked_total, self.duplicate_ids
            ));
        }
        if !self.failures.is_empty() {
            problems.push(format!(
                "answers other than 2xx by status (0 = no answer): {:?}",
                self.failures
            ));
        }
        problems.extend(self.chat_problems.iter().cloned());
        problems.extend(self.follower_problems.iter().cloned());
        problems
    }

    fn report(self, scenario: &mut Scenario) {
        let errors: u64 = self.failures.values().sum();
        let mut cells = vec![
            Cell::Int(self.connections as u64),
            Cell::Int(self.measured),
            Cell::Int(errors),
            Cell::Num(self.per_second, 0),
        ];
        cells.extend(latency_cells(&self.latencies.summary()));
        scenario.row(cells);
        let c = self.connections;
        scenario.check(
            format!("{c} connections: every 2xx has a distinct id"),
            self.duplicate_ids == 0 && self.acked_total > 0,
            format!(
                "{} acknowledged, {} duplicate ids",
                self.acked_total, self.duplicate_ids
            ),
        );
        scenario.check(
            format!("{c} connections: read back, seqs dense and every ack stored"),
            self.chat_problems.is_empty(),
            if self.chat_problems.is_empty() {
                format!("{c} chats read back whole")
            } else {
                self.chat_problems.join("; ")
            },
        );
        if self.followers > 0 {
            scenario.check(
                format!("{c} connections: every follower got every message once, in order"),
                self.follower_problems.is_empty(),
                if self.follower_problems.is_empty() {
                    format!("{} sockets followed the chats", self.followers)
                } else {
                    self.follower_problems.join("; ")
                },
            );
        }
        let server_errors: u64 = self
            .failures
            .iter()
            .filter(|(status, _)| **status == 0 || **status >= 500)
            .map(|(_, n)| n)
            .sum();
        scenario.check(
            format!("{c} connections: no 5xx and no failed request"),
            server_errors == 0,
            format!(
                "answers other than 2xx by status (0 = no answer): {:?}",
                self.failures
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_read_back_whole_passes() {
        let (a, b) = (MessageId::new(), MessageId::new());
        assert_eq!(check_chat(&[(a, 1), (b, 2)], &[(a, 1), (b, 2)]), None);
    }

    #[test]
    fn a_follower_missing_repeating_or_reordering_a_message_is_caught() {
        assert_eq!(check_followed(None, &[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(check_followed(None, &[], &[]), None);
        let problem = |seqs: &[u64]| check_followed(None, seqs, &[1, 2, 3]).unwrap();
        assert!(problem(&[1, 2]).contains("got 2 messages for 3"));
        assert!(problem(&[1, 2, 2, 3]).contains("from position 3"));
        assert!(problem(&[1, 3, 2]).contains("from position 2"));
        assert_eq!(
            check_followed(Some("read failed: reset"), &[1, 2, 3], &[1, 2, 3]).as_deref(),
            Some("read failed: reset")
        );
    }

    #[test]
    fn gaps_missing_acks_and_wrong_seqs_are_caught() {
        let (a, b, c) = (MessageId::new(), MessageId::new(), MessageId::new());
        let acked = [(a, 1), (b, 2)];
        assert!(
            check_chat(&[(a, 1), (b, 3)], &acked)
                .unwrap()
                .contains("gap")
        );
        assert!(
            check_chat(&[(a, 1)], &acked)
                .unwrap()
                .contains("not stored")
        );
        assert!(
            check_chat(&[(b, 1), (a, 2)], &acked)
                .unwrap()
                .contains("stored as")
        );
        assert!(
            check_chat(&[(a, 1), (b, 2), (c, 3)], &acked)
                .unwrap()
                .contains("3 stored but 2")
        );
    }
}
