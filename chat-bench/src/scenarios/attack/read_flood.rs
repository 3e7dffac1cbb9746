//! `attack read-flood`: memory amplification through reads that are never taken. A
//! chat is filled with long messages of one `x` and then U+0001 (escaped to 6 bytes each in JSON, so a
//! page of 1,000 messages of 4,000 is about 24 MB); then `--connections` sockets each ask
//! for that page and read nothing for `--hold`, while the server's VmRSS is sampled every
//! 100 ms. Then each socket reads what it can: the whole page, or a part and the end (the
//! server cut it off). Reported: RSS before, at its peak (and when), when 90% of what
//! the flood took was given back (if during the hold), at the end of the hold and after
//! the sockets are gone, and how many answers were cut off. Checked: the
//! messages were stored, and the page reads right before and after the flood. A server
//! with a page byte cap (chat-http's `--max-page-bytes`) answers fewer messages than
//! asked: the page then holds the first ones, and its size is what the flood multiplies.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chat_client::Client;
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{connect, read_answer, server_addr};
use crate::api::{self, run_id, timed_get};
use crate::cli::ReadFloodArgs;
use crate::mem;
use crate::report::{Cell, Scenario};
use crate::target::Target;

const TITLE: &str = "large pages asked for and never read; server memory";

/// Sends and connections in flight at once.
const CONCURRENCY: usize = 32;
/// How long a socket may take to read what is left at the end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause before the last memory reading, once every socket is closed.
const SETTLE: Duration = Duration::from_secs(2);

pub(crate) async fn run(target: &Target, args: &ReadFloodArgs) -> Scenario {
    let columns = [
        ("connections", "connections"),
        ("pageMessages", "page msgs"),
        ("pageBytes", "page bytes"),
        ("rssBeforeKiB", "before KiB"),
        ("rssPeakKiB", "peak KiB"),
        ("peakAtS", "peak at s"),
        ("freedAtS", "90% freed at s"),
        ("rssEndKiB", "hold end KiB"),
        ("rssAfterKiB", "after KiB"),
        ("cutOff", "cut off"),
        ("complete", "complete"),
    ];
    let mut scenario = Scenario::new("read-flood", TITLE, &columns);
    let Some(pid) = target.pid else {
        scenario.check(
            "server memory readable",
            false,
            "needs the server's process id: --server-pid PID, or --spawn PATH",
        );
        return scenario;
    };
    if let Err(e) = measure(target, args, pid, &mut scenario).await {
        scenario.check("run", false, format!("{e:#}"));
    }
    scenario
}

async fn measure(
    target: &Target,
    args: &ReadFloodArgs,
    pid: u32,
    scenario: &mut Scenario,
) -> anyhow::Result<()> {
    let server = server_addr(target.api.base()).await?;
    let api = target.api.own_connection()?;
    let login = api
        .customer_login(&format!("bench-{}-flood", run_id()), None)
        .await?;
    let (customer, chat) = (api.as_user(&login.token), login.chat.id.to_string());
    // One visible character first: a message of nothing visible is refused as empty.
    let content = format!("x{}", "\u{1}".repeat(args.chars.saturating_sub(1)));
    stream::iter(0..args.messages)
        .map(|i| {
            let (customer, chat, content) = (&customer, &chat, &content);
            async move {
                match api::send(customer, chat, content, &format!("flood-{i}")).await? {
                    (201, _) => anyhow::Ok(()),
                    (status, _) => bail!(
                        "a message was answered {status} (does the server run with \
                         --limit-sends off and --max-message-chars {} or more?)",
                        args.chars
                    ),
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let expected = args.messages.min(1000);
    let path = format!("/api/chats/{chat}/messages?limit=1000");
    let (page_messages, page_bytes) = check_page(&customer, &path, expected, &content)
        .await
        .context("the page before the flood")?;
    scenario.check(
        "the page reads right before the flood",
        true,
        format!("{page_messages} of {expected} messages, {page_bytes} bytes"),
    );

    let rss_before = mem::rss_kib(pid)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {}\r\n\r\n",
        login.token
    );
    let started = Instant::now();
    let mut sockets: Vec<TcpStream> = stream::iter(0..args.connections)
        .map(|i| {
            let request = request.as_bytes();
            async move {
                let mut socket = connect(None, server, None)
                    .await
                    .with_context(|| format!("connection {i}"))?;
                socket.write_all(request).await?;
                anyhow::Ok(socket)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut every = tokio::time::interval(Duration::from_millis(100));
    while started.elapsed() < args.hold {
        every.tick().await;
        samples.push((started.elapsed(), mem::rss_kib(pid)?));
    }
    // The first sample at the highest reading.
    let (peak_at, peak) =
        samples
            .iter()
            .copied()
            .fold((Duration::ZERO, rss_before), |best, (at, rss)| {
                if rss > best.1 { (at, rss) } else { best }
            });
    let rss_end = samples.last().map_or(rss_before, |(_, rss)| *rss);
    // When the server had given back 90% of what the flood made it take, if it did.
    let freed = rss_before + peak.saturating_sub(rss_before) / 10;
    let freed_at = samples
        .iter()
        .find(|(at, rss)| *at > peak_at && *rss <= freed)
        .map(|(at, _)| *at);
    scenario.extra.insert(
        "rssKiBEverySecond".into(),
        samples
            .iter()
            .step_by(10)
            .map(|(at, rss)| serde_json::json!([at.as_secs(), rss]))
            .collect(),
    );
    let answers: Vec<bool> = stream::iter(sockets.iter_mut())
        .map(|socket| async move {
            tokio::time::timeout(DRAIN_TIMEOUT, read_answer(socket, false))
                .await
                .is_ok_and(|answer| answer.complete())
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    drop(sockets);
    let complete = answers.iter().filter(|c| **c).count();
    tokio::time::sleep(SETTLE).await;
    let rss_after = mem::rss_kib(pid)?;
    scenario.row(vec![
        Cell::Int(args.connections as u64),
        Cell::Int(page_messages as u64),
        Cell::Int(page_bytes as u64),
        Cell::Int(rss_before),
        Cell::Int(peak),
        Cell::Num(peak_at.as_secs_f64(), 1),
        Cell::Text(freed_at.map_or_else(|| "-".into(), |at| format!("{:.1}", at.as_secs_f64()))),
        Cell::Int(rss_end),
        Cell::Int(rss_after),
        Cell::Int((answers.len() - complete) as u64),
        Cell::Int(complete as u64),
    ]);
    let after = check_page(&customer, &path, expected, &content).await;
    scenario.check(
        "the page reads right after the flood",
        after.is_ok(),
        match after {
            Ok((messages, bytes)) => format!("{messages} of {expected} messages, {bytes} bytes"),
            Err(e) => format!("{e:#}"),
        },
    );
    scenario.note(format!(
        "{} messages of {} x U+0001 in one chat; each connection sent one GET of the whole \
         page and read nothing for {:?} (VmRSS sampled every 100 ms from its start), then \
         read what it could: complete = the whole page, cut off = the connection ended \
         first; 90% freed = the first sample after the peak with VmRSS back within 10% of \
         the increase over before; after = {:?} after every socket closed",
        args.messages, args.chars, args.hold, SETTLE
    ));
    Ok(())
}

/// Reads the page through the API and checks it: the first `expected` messages, or the
/// first of them up to the server's byte cap (at least one), each with this content.
/// How many it holds, and its size in bytes.
async fn check_page(
    customer: &Client,
    path: &str,
    expected: usize,
    content: &str,
) -> anyhow::Result<(usize, usize)> {
    let page = timed_get(customer, path).await?;
    if page.status != 200 {
        bail!("GET {path} answered {}", page.status);
    }
    let messages = page
        .body
        .as_array()
        .context("the page is not a JSON array")?;
    let in_order = messages
        .iter()
        .enumerate()
        .all(|(i, m)| m["seq"] == i as u64 + 1 && m["content"] == content);
    if messages.is_empty() || messages.len() > expected || !in_order {
        bail!(
            "the page holds {} messages, not the first of {expected} with the content sent",
            messages.len()
        );
    }
    Ok((messages.len(), page.bytes))
}
