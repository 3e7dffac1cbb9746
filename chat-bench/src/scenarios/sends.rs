//! `sends`: durable REST sends. Each of N connections is a fresh customer with a chat of
//! their own, sending the next message as soon as the previous one is acknowledged (an
//! acknowledgement means committed), or, with `--rate`, when it is due on an even pace
//! (its latency then counted from that moment). After the run every chat is read back: every 2xx
//! must have a distinct id, be stored with the seq it was acknowledged with, and each
//! chat's seqs must be 1..n with no gap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chat_client::Client;
use chatcore::MessageId;
use futures_util::{StreamExt, TryStreamExt, stream};

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
}

pub(super) async fn level(
    nodes: &[Api],
    args: &SendsArgs,
    connections: usize,
) -> anyhow::Result<Level> {
    let run = run_id();
    let workers: Vec<Worker> = stream::iter(0..connections)
        .map(|i| {
            // Connections spread evenly over the nodes.
            let api = nodes[i % nodes.len()].own_connection();
            let customer = format!("bench-{run}-s{i}");
            async move {
                let api = api?;
                let login = api.customer_login(&customer, None).await?;
                anyhow::Ok(Worker {
                    client: api.as_user(&login.token),
                    chat: login.chat.id.to_string(),
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

    // Read every chat back.
    let mut chat_problems = Vec::new();
    for (worker, result) in workers.iter().zip(&results) {
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
    }
    Ok(Level {
        connections,
        per_second: measured as f64 / measured_for.as_secs_f64().max(1e-9),
        latencies,
        measured,
        failures,
        acked_total,
        duplicate_ids,
        chat_problems,
    })
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
