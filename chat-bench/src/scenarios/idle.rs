//! `idle`: the server's memory per idle real-time connection. Opens sockets that are
//! authenticated and joined to a chat (a customer in their own chat, by default), holds
//! them, and reads the server's VmRSS: after a warm-up batch (so one-time costs are not
//! charged to sockets), then after the measured batch. Per socket = the difference
//! divided by the number of measured sockets. Every socket must open, authenticate,
//! join and stay connected until the end.

use std::time::{Duration, Instant};

use anyhow::Context;
use chat_client::{CustomerSession, Event, ServerFrame, Socket};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, Api, run_id};
use crate::cli::IdleArgs;
use crate::mem;
use crate::report::{Cell, Scenario};
use crate::target::Target;

const TITLE: &str = "idle WebSockets: server memory per authenticated, joined socket";

/// Connections opened at once.
const OPEN_CONCURRENCY: usize = 128;

pub(crate) async fn run(target: &Target, args: &IdleArgs) -> Scenario {
    let columns = [
        ("sockets", "sockets"),
        ("perChat", "per chat"),
        ("rssBaseKiB", "base KiB"),
        ("rssWarmKiB", "warm KiB"),
        ("rssAfterKiB", "after KiB"),
        ("perSocketKiB", "KiB/socket"),
        ("openPerSecond", "opened/s"),
    ];
    let mut scenario = Scenario::new("idle", TITLE, &columns);
    let Some(pid) = target.pid else {
        scenario.check(
            "server memory readable",
            false,
            "needs the server's process id: --server-pid PID, or --spawn PATH",
        );
        return scenario;
    };
    if let Err(e) = measure(&target.api, args, pid, &mut scenario).await {
        scenario.check("run", false, format!("{e:#}"));
    }
    scenario
}

/// A held socket: its task ends when told to stop, answering whether the socket was
/// still connected then, and how many `new_message` frames it received.
struct Held {
    task: JoinHandle<(bool, usize)>,
}

async fn measure(
    api: &Api,
    args: &IdleArgs,
    pid: u32,
    scenario: &mut Scenario,
) -> anyhow::Result<()> {
    let per_chat = args.per_chat.max(1);
    let total = args.warmup_sockets + args.sockets;
    let run = run_id();
    let logins: Vec<CustomerSession> = stream::iter(0..total.div_ceil(per_chat))
        .map(|i| {
            let api = api.clone();
            let customer = format!("bench-{run}-i{i}");
            async move { api.customer_login(&customer, None).await }
        })
        .buffer_unordered(64)
        .try_collect()
        .await
        .context("logging customers in")?;
    let (stop_tx, stop_rx) = watch::channel(false);

    let rss_base = mem::rss_kib(pid)?;
    let join = !args.no_join;
    let mut held = open_batch(
        api,
        &logins,
        0..args.warmup_sockets,
        per_chat,
        join,
        &stop_rx,
    )
    .await?;
    send_into_chats(api, args, &logins, 0..args.warmup_sockets).await?;
    tokio::time::sleep(args.settle).await;
    let rss_warm = mem::rss_kib(pid)?;
    let opening = Instant::now();
    held.extend(
        open_batch(
            api,
            &logins,
            args.warmup_sockets..total,
            per_chat,
            join,
            &stop_rx,
        )
        .await?,
    );
    let opened_in = opening.elapsed();
    send_into_chats(api, args, &logins, args.warmup_sockets..total).await?;
    tokio::time::sleep(args.settle).await;
    let rss_after = mem::rss_kib(pid)?;

    let _ = stop_tx.send(true);
    let (mut alive, mut carried) = (0, 0);
    for socket in held {
        let (connected, messages) = socket.task.await.unwrap_or((false, 0));
        alive += usize::from(connected);
        carried += usize::from(messages > 0);
    }
    let per_socket = rss_after.saturating_sub(rss_warm) as f64 / args.sockets.max(1) as f64;
    scenario.row(vec![
        Cell::Int(args.sockets as u64),
        Cell::Int(per_chat as u64),
        Cell::Int(rss_base),
        Cell::Int(rss_warm),
        Cell::Int(rss_after),
        Cell::Num(per_socket, 2),
        Cell::Num(args.sockets as f64 / opened_in.as_secs_f64().max(1e-9), 0),
    ]);
    scenario.check(
        if join {
            "every socket authenticated, joined and still connected at the end"
        } else {
            "every socket authenticated and still connected at the end (--no-join)"
        },
        alive == total,
        format!(
            "{alive} of {total} (warm-up {} + measured {})",
            args.warmup_sockets, args.sockets
        ),
    );
    if args.message_chars > 0 && join {
        scenario.check(
            "every socket received its chat's message",
            carried == total,
            format!("{carried} of {total}"),
        );
    }
    scenario.note(format!(
        "KiB/socket = (VmRSS after - VmRSS warm) / {} measured sockets; {:?} settle before each \
         reading; the server's RSS also holds SQLite's page cache and the sessions read meanwhile{}",
        args.sockets,
        args.settle,
        if args.message_chars > 0 && !args.no_join {
            format!(
                "; each chat got one message of {} characters before the reading",
                args.message_chars
            )
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// With `--message-chars`, sends one message into each chat of these sockets (its
/// customer is the sender), so that every socket has written a frame of that size.
async fn send_into_chats(
    api: &Api,
    args: &IdleArgs,
    logins: &[CustomerSession],
    sockets: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    if args.message_chars == 0 || args.no_join || sockets.is_empty() {
        return Ok(());
    }
    let per_chat = args.per_chat.max(1);
    let content = "m".repeat(args.message_chars);
    // A chat can hold sockets of both batches: the batch's first socket keeps the
    // message ids apart, or the second send would be a retry of the first.
    let batch = sockets.start;
    let chats = sockets.start / per_chat..=(sockets.end - 1) / per_chat;
    stream::iter(chats)
        .map(|i| {
            let (login, content) = (&logins[i], &content);
            async move {
                let customer = api.as_user(&login.token);
                let chat = login.chat.id.to_string();
                match api::send(&customer, &chat, content, &format!("idle-{batch}-{i}")).await? {
                    (201, _) => anyhow::Ok(()),
                    (status, _) => anyhow::bail!("a send into chat {i} answered {status}"),
                }
            }
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
}

async fn open_batch(
    api: &Api,
    logins: &[CustomerSession],
    range: std::ops::Range<usize>,
    per_chat: usize,
    join: bool,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<Held>> {
    stream::iter(range)
        .map(|i| {
            let login = &logins[i / per_chat];
            let stop = stop.clone();
            async move {
                let socket = open(api, login, join)
                    .await
                    .with_context(|| format!("socket {i}"))?;
                anyhow::Ok(Held {
                    task: tokio::spawn(hold(socket, stop)),
                })
            }
        })
        .buffer_unordered(OPEN_CONCURRENCY)
        .try_collect()
        .await
}

/// Opens a socket, authenticated with the customer's token and, when `join`, joined to
/// their chat (without `afterSeq`: only messages stored from now on).
async fn open(
    api: &Api,
    login: &CustomerSession,
    join: bool,
) -> Result<Socket, chat_client::Error> {
    let mut socket = api.as_user(&login.token).connect().await?;
    if join {
        socket.join_chat(&login.chat.id.to_string(), None).await?;
    }
    Ok(socket)
}

/// Keeps reading (so pings are answered) until told to stop; answers whether the socket
/// was still connected then, and how many `new_message` frames it got.
async fn hold(mut socket: Socket, mut stop: watch::Receiver<bool>) -> (bool, usize) {
    let mut messages = 0;
    let alive = loop {
        tokio::select! {
            changed = stop.wait_for(|s| *s) => {
                let _ = changed;
                break true;
            }
            incoming = socket.next() => match incoming {
                Ok(incoming) => {
                    let new_message =
                        matches!(incoming.frame, ServerFrame::Event(Event::NewMessage { .. }));
                    messages += usize::from(new_message);
                }
                Err(_) => break false,
            },
        }
    };
    if alive {
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.close()).await;
    }
    (alive, messages)
}
