//! `attachments`: files through the server. For each size, workers (each a customer in a
//! chat of their own, on a connection of their own) upload files of that size, every one
//! different, as fast as the server acknowledges them; then every file is downloaded
//! back and checked against its SHA-256. Then the text path under that load: one more
//! customer sends short messages at a steady pace, first alone (idle), then while the
//! workers upload the largest size without pause; uploads must not stall the store's
//! one writer, so the loaded p99 is reported beside the idle one (the target: under 2x).
//! Checks: every upload acknowledged with the file's SHA-256, every download whole and
//! equal, every chat's seqs dense.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chat_client::Client;
use futures_util::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::api::{self, Api, run_id};
use crate::cli::AttachmentsArgs;
use crate::report::{Cell, LATENCY_COLUMNS, Scenario, latency_cells};
use crate::stats::Latencies;
use crate::target::Target;

const TITLE: &str = "attachments: upload and download throughput, and text sends while large \
                     files upload";

pub(crate) async fn run(target: &Target, args: &AttachmentsArgs) -> Scenario {
    let mut columns = vec![
        ("phase", "phase"),
        ("sizeKiB", "KiB"),
        ("files", "files"),
        ("mibPerSecond", "MiB/s"),
    ];
    columns.extend(LATENCY_COLUMNS);
    let mut scenario = Scenario::new("attachments", TITLE, &columns);
    if let Err(e) = measure(&target.api, args, &mut scenario).await {
        scenario.check("run", false, format!("{e:#}"));
    }
    scenario.note(format!(
        "{} workers, each a customer uploading to their own chat; every file distinct \
         (PDF); MiB/s = bytes moved / wall time of the phase; latency per request, \
         client-side; text sends paced every {} ms",
        args.workers,
        args.text_interval.as_millis()
    ));
    scenario
}

/// A worker: a customer and their chat.
#[derive(Clone)]
struct Worker {
    client: Client,
    chat: String,
}

async fn workers(api: &Api, n: usize, run: &str, tag: &str) -> anyhow::Result<Vec<Worker>> {
    stream::iter(0..n)
        .map(|i| {
            let api = api.own_connection();
            let customer = format!("bench-{run}-{tag}{i}");
            async move {
                let api = api?;
                let login = api.customer_login(&customer, None).await?;
                anyhow::Ok(Worker {
                    client: api.as_user(&login.token),
                    chat: login.chat.id.to_string(),
                })
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
}

/// File `n` of `size` bytes: a PDF header with the number, then a pattern (the same
/// for every file of a size, made once), so that every file differs.
fn file(base: &[u8], n: u64) -> Bytes {
    let mut bytes = base.to_vec();
    let header = format!("%PDF-1.7\n%{n:016}\n");
    let len = header.len().min(bytes.len());
    bytes[..len].copy_from_slice(&header.as_bytes()[..len]);
    Bytes::from(bytes)
}

/// The pattern files of `size` bytes are made from.
fn base(size: usize) -> Vec<u8> {
    (0..size.max(32)).map(|i| ((i * 31) % 251) as u8).collect()
}

/// `bytes` as a request body sent at `mibps` MiB/s (0: as fast as it is taken), in
/// 64 KiB chunks.
fn paced(bytes: Bytes, mibps: f64) -> reqwest::Body {
    if mibps <= 0.0 {
        return reqwest::Body::from(bytes);
    }
    let started = tokio::time::Instant::now();
    let per_byte = 1.0 / (mibps * 1024.0 * 1024.0);
    let chunks = stream::unfold(0usize, move |at| {
        let bytes = bytes.clone();
        async move {
            if at >= bytes.len() {
                return None;
            }
            let due = started + Duration::from_secs_f64(at as f64 * per_byte);
            tokio::time::sleep_until(due).await;
            let end = (at + 64 * 1024).min(bytes.len());
            Some((Ok::<_, std::io::Error>(bytes.slice(at..end)), end))
        }
    });
    reqwest::Body::wrap_stream(chunks)
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What one phase of transfers gave.
#[derive(Default)]
struct Moved {
    latencies: Latencies,
    files: u64,
    bytes: u64,
    failures: Vec<String>,
}

impl Moved {
    fn merge(&mut self, other: Moved) {
        self.latencies.merge(&other.latencies);
        self.files += other.files;
        self.bytes += other.bytes;
        self.failures.extend(other.failures);
    }
}

/// An uploaded file: where it went and what it was.
struct Uploaded {
    worker: usize,
    attachment: String,
    sha256: String,
}

async fn measure(api: &Api, args: &AttachmentsArgs, scenario: &mut Scenario) -> anyhow::Result<()> {
    let run = run_id();
    let pool = workers(api, args.workers.max(1), &run, "a").await?;
    let mut next_file = 0u64;
    let mut all_uploaded = 0usize;
    for &size in &args.sizes {
        let pattern = std::sync::Arc::new(base(size));
        // Uploads, spread over the workers.
        let per_worker = args.files.div_ceil(pool.len());
        let started = Instant::now();
        let tasks: Vec<_> = pool
            .iter()
            .cloned()
            .enumerate()
            .map(|(w, worker)| {
                let first = next_file + (w * per_worker) as u64;
                let pattern = pattern.clone();
                tokio::spawn(async move {
                    let mut moved = Moved::default();
                    let mut uploaded = Vec::new();
                    for k in 0..per_worker as u64 {
                        let bytes = file(&pattern, first + k);
                        let sha256 = hex_sha256(&bytes);
                        let at = Instant::now();
                        let sent = worker
                            .client
                            .upload(
                                &worker.chat,
                                "bench.pdf",
                                Some("application/pdf"),
                                bytes.clone(),
                                None,
                            )
                            .await;
                        moved.latencies.record(at.elapsed());
                        match sent {
                            Ok(sent) => {
                                moved.files += 1;
                                moved.bytes += bytes.len() as u64;
                                match sent.message.attachment {
                                    Some(a) if a.sha256.to_hex() == sha256 => {
                                        uploaded.push(Uploaded {
                                            worker: w,
                                            attachment: a.id.to_string(),
                                            sha256,
                                        });
                                    }
                                    other => moved.failures.push(format!(
                                        "upload answered {other:?}, not the file's SHA-256"
                                    )),
                                }
                            }
                            Err(e) => moved.failures.push(format!("upload: {e}")),
                        }
                    }
                    (moved, uploaded)
                })
            })
            .collect();
        let mut up = Moved::default();
        let mut uploaded = Vec::new();
        for task in tasks {
            let (moved, files) = task.await?;
            up.merge(moved);
            uploaded.extend(files);
        }
        let up_secs = started.elapsed().as_secs_f64();
        next_file += (per_worker * pool.len()) as u64;
        all_uploaded += uploaded.len();
        row(scenario, "upload", size, &up, up_secs);

        // Downloads of every file, by its uploader, as many at once as there are workers.
        let started = Instant::now();
        let downloads: Vec<Moved> = stream::iter(uploaded)
            .map(|u| {
                let client = pool[u.worker].client.clone();
                async move {
                    let mut moved = Moved::default();
                    let at = Instant::now();
                    match download(&client, &u.attachment).await {
                        Ok((sha256, len)) if sha256 == u.sha256 => {
                            moved.latencies.record(at.elapsed());
                            moved.files += 1;
                            moved.bytes += len;
                        }
                        Ok(_) => moved.failures.push("a download's bytes differ".to_string()),
                        Err(e) => moved.failures.push(format!("download: {e:#}")),
                    }
                    moved
                }
            })
            .buffer_unordered(pool.len())
            .collect()
            .await;
        let mut down = Moved::default();
        for d in downloads {
            down.merge(d);
        }
        row(
            scenario,
            "download",
            size,
            &down,
            started.elapsed().as_secs_f64(),
        );
        let failures: Vec<String> = up.failures.iter().chain(&down.failures).cloned().collect();
        scenario.check(
            format!(
                "{} KiB: every file acknowledged and read back whole",
                size / 1024
            ),
            failures.is_empty() && down.files == up.files && up.files > 0,
            if failures.is_empty() {
                format!("{} files up, {} down", up.files, down.files)
            } else {
                format!("{} failures, first: {}", failures.len(), failures[0])
            },
        );
    }

    // Text while large files upload.
    let texter = workers(api, 1, &run, "t").await?.remove(0);
    let idle = text_sends(&texter, args.text_messages, args.text_interval).await?;
    row(scenario, "text idle", 0, &idle, 0.0);
    let largest = args.sizes.iter().copied().max().unwrap_or(1024 * 1024);
    let load_base = std::sync::Arc::new(base(largest));
    let loaders = workers(api, args.load_workers.max(1), &run, "l").await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mibps = args.load_mibps;
    let load: Vec<_> = loaders
        .iter()
        .cloned()
        .enumerate()
        .map(|(w, worker)| {
            let mut stop = stop_rx.clone();
            let first = 1_000_000_000 + (w as u64) * 1_000_000;
            let load_base = load_base.clone();
            tokio::spawn(async move {
                let mut moved = Moved::default();
                let started = Instant::now();
                for k in 0.. {
                    if *stop.borrow_and_update() {
                        break;
                    }
                    let bytes = file(&load_base, first + k);
                    let len = bytes.len() as u64;
                    let at = Instant::now();
                    match worker
                        .client
                        .upload(&worker.chat, "load.pdf", None, paced(bytes, mibps), None)
                        .await
                    {
                        Ok(_) => {
                            moved.latencies.record(at.elapsed());
                            moved.files += 1;
                            moved.bytes += len;
                        }
                        Err(e) => moved.failures.push(format!("upload under load: {e}")),
                    }
                }
                (moved, started.elapsed().as_secs_f64())
            })
        })
        .collect();
    // Let the uploads get going before the text is timed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = text_sends(&texter, args.text_messages, args.text_interval).await?;
    let _ = stop_tx.send(true);
    let mut background = Moved::default();
    let mut secs = 0.0f64;
    for task in load {
        let (moved, took) = task.await?;
        secs = secs.max(took);
        background.merge(moved);
    }
    row(scenario, "text during uploads", 0, &loaded, 0.0);
    row(scenario, "uploads meanwhile", largest, &background, secs);
    let (idle_p99, loaded_p99) = (
        idle.latencies.summary().p99_ms,
        loaded.latencies.summary().p99_ms,
    );
    let pace = if mibps > 0.0 {
        format!("each at {mibps} MiB/s")
    } else {
        "each as fast as it is taken".to_string()
    };
    scenario.note(format!(
        "text p99 during {} KiB uploads ({} uploaders, {pace}): {loaded_p99:.2} ms, {:.2}x \
         its idle {idle_p99:.2} ms (target: under 2x)",
        largest / 1024,
        loaders.len(),
        loaded_p99 / idle_p99.max(1e-9)
    ));
    scenario.check(
        "text sends during uploads all acknowledged",
        loaded.failures.is_empty() && idle.failures.is_empty() && background.failures.is_empty(),
        format!(
            "{} + {} texts, {} uploads meanwhile; failures: {:?}",
            idle.files,
            loaded.files,
            background.files,
            idle.failures
                .iter()
                .chain(&loaded.failures)
                .chain(&background.failures)
                .take(3)
                .collect::<Vec<_>>()
        ),
    );

    // Every chat dense, with every acknowledged file in it.
    let mut problems = Vec::new();
    let mut files_seen = 0;
    for worker in pool.iter().chain(&loaders).chain(std::iter::once(&texter)) {
        let messages = worker.client.all_messages(&worker.chat).await?;
        files_seen += messages.iter().filter(|m| m.attachment.is_some()).count();
        for (i, m) in messages.iter().enumerate() {
            if m.seq != i as u64 + 1 {
                problems.push(format!("chat {}: seq {} at {}", worker.chat, m.seq, i + 1));
                break;
            }
        }
    }
    scenario.check(
        "every chat's seqs dense, every acknowledged file in its chat",
        problems.is_empty() && files_seen >= all_uploaded,
        if problems.is_empty() {
            format!(
                "{files_seen} files in {} chats",
                pool.len() + loaders.len() + 1
            )
        } else {
            problems.join("; ")
        },
    );
    Ok(())
}

fn row(scenario: &mut Scenario, phase: &str, size: usize, moved: &Moved, secs: f64) {
    let mib_per_second = if secs > 0.0 {
        moved.bytes as f64 / (1024.0 * 1024.0) / secs
    } else {
        0.0
    };
    let mut cells = vec![
        Cell::Text(phase.to_string()),
        Cell::Int((size / 1024) as u64),
        Cell::Int(moved.files),
        Cell::Num(mib_per_second, 1),
    ];
    cells.extend(latency_cells(&moved.latencies.summary()));
    scenario.row(cells);
}

/// Downloads a file whole: its SHA-256 and length.
async fn download(client: &Client, attachment: &str) -> anyhow::Result<(String, u64)> {
    let download = client.download(attachment, None).await?;
    let mut body = download.response.bytes_stream();
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("reading a download")?;
        hasher.update(&chunk);
        len += chunk.len() as u64;
    }
    Ok((hex::encode(hasher.finalize()), len))
}

/// `n` short texts from `worker`, one every `interval` (or right after the previous
/// answer, if that came later).
async fn text_sends(worker: &Worker, n: usize, interval: Duration) -> anyhow::Result<Moved> {
    let mut moved = Moved::default();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..n {
        tick.tick().await;
        let at = Instant::now();
        match api::send(
            &worker.client,
            &worker.chat,
            &format!("text {i}"),
            &format!("t-{i}-{}", rand::random::<u32>()),
        )
        .await
        {
            Ok((_, Some(_))) => {
                moved.latencies.record(at.elapsed());
                moved.files += 1;
            }
            Ok((status, None)) => moved.failures.push(format!("text answered {status}")),
            Err(e) => moved.failures.push(format!("text: {e:#}")),
        }
    }
    Ok(moved)
}
