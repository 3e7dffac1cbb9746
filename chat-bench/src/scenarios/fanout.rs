//! `fanout`: one chat, N WebSocket receivers joined to it (half on the customer's token,
//! half on the assigned officer's), one REST sender. Latency runs from the start of each
//! POST to each receiver's receipt of that message. Every receiver must get every message
//! exactly once, in seq order; anything missing when the time is up counts as lost.
//!
//! With `--typing`, three more sockets (not joined: they only write) make the chat's other
//! traffic as the pages make it: the customer's and the officer's `typing` (once a second
//! each, all the server passes on, on a clock of its own and not in step with the sends)
//! and the officer's read mark of the latest message (at most every 300 ms, as the pages
//! coalesce marks), which the receivers get as `typing` and `read` events beside the
//! messages (and skip unparsed past their type).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chat_client::{Error, Socket};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::api::{self, Api, run_id};
use crate::cli::FanoutArgs;
use crate::report::{Cell, LATENCY_COLUMNS, Scenario, latency_cells};
use crate::stats::Latencies;
use crate::target::Target;

pub(crate) async fn run(target: &Target, args: &FanoutArgs) -> Scenario {
    let mut columns = vec![
        ("receivers", "receivers"),
        ("messages", "messages"),
        ("delivered", "delivered"),
        ("lost", "lost"),
        ("duplicates", "dups"),
        ("sendP99Ms", "send p99 ms"),
        ("allReceivedP50Ms", "all rcvd p50"),
        ("allReceivedP99Ms", "all rcvd p99"),
    ];
    columns.extend(LATENCY_COLUMNS);
    let mut scenario = Scenario::new(
        "fanout",
        "fan-out: REST send -> WebSocket receipt at every receiver of one chat",
        &columns,
    );
    for &receivers in &args.receivers {
        match level(&target.nodes, args, receivers.max(1)).await {
            Ok(level) => level.report(&mut scenario),
            Err(e) => scenario.check(
                format!("{receivers} receivers: run"),
                false,
                format!("{e:#}"),
            ),
        }
    }
    if args.typing {
        scenario.note(
            "typing traffic on: the customer and the officer send `typing` once a second \
             (all the server passes on), the officer marks the latest message read at most \
             every 300 ms (as the pages coalesce marks); receivers get those events beside \
             the messages",
        );
    }
    scenario.note(format!(
        "latency from the start of the POST to the receipt of the frame, client clock; sends \
         one at a time, {:?} apart; 'send p99' is the POST's own latency; 'all rcvd' is, per \
         message, until its last receiver had it; sockets close only after every receiver \
         is done; sent through the first of {} node(s), receivers spread over all",
        args.interval,
        target.nodes.len()
    ));
    scenario
}

struct Level {
    receivers: usize,
    messages: usize,
    delivered: u64,
    lost: u64,
    duplicates: u64,
    out_of_order: u64,
    latencies: Latencies,
    /// Per message: from the start of the POST until the last receiver had it.
    everyone: Latencies,
    sends: Latencies,
    send_failures: usize,
    receiver_errors: Vec<String>,
    /// With `--typing`: frames the two writers sent, and what went wrong with them.
    typing: Option<Traffic>,
}

/// The typing and read frames of `--typing`.
#[derive(Default)]
struct Traffic {
    typing: usize,
    reads: usize,
    errors: Vec<String>,
}

/// What one receiver saw: the receipt time of each message (by index), and anomalies.
struct Received {
    at: Vec<Option<Instant>>,
    duplicates: u64,
    out_of_order: u64,
    error: Option<String>,
}

/// The fields of a frame a receiver reads.
#[derive(Deserialize)]
pub(super) struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) message: Option<FrameMessage<'a>>,
}

#[derive(Deserialize)]
pub(super) struct FrameMessage<'a> {
    pub(super) seq: u64,
    #[serde(rename = "clientMessageId", borrow)]
    pub(super) client_message_id: Option<Cow<'a, str>>,
}

async fn level(nodes: &[Api], args: &FanoutArgs, receivers: usize) -> anyhow::Result<Level> {
    let api = &nodes[0];
    let n = args.messages;
    let run = run_id();
    let officer = format!("bench-{run}-fo");
    let officer_client = api.new_officer(&officer).await?;
    let officer_token = officer_client.token().unwrap_or_default().to_string();
    let customer = api
        .customer_login(&format!("bench-{run}-fc"), Some(&officer))
        .await?;
    let chat = customer.chat.id.to_string();
    let sender = api.as_user(&customer.token);

    // Open and join every receiver before the first send.
    let (joined_tx, mut joined_rx) = mpsc::channel::<anyhow::Result<()>>(receivers);
    let tokens: Vec<String> = (0..receivers)
        .map(|i| {
            if i % 2 == 0 {
                customer.token.clone()
            } else {
                officer_token.clone()
            }
        })
        .collect();
    let sockets: Vec<anyhow::Result<Socket>> = stream::iter(tokens.into_iter().enumerate())
        .map(|(i, token)| {
            let (client, chat) = (nodes[i % nodes.len()].as_user(&token), chat.clone());
            async move {
                let mut socket = client.connect().await?;
                socket.join_chat(&chat, None).await?;
                anyhow::Ok(socket)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    // Each receiver has its own stop signal: a signal shared by all of them would be a
    // lock every receiver takes on every frame, which is load on the machine measured.
    let mut tasks = Vec::with_capacity(receivers);
    for socket in sockets {
        let socket = socket.context("opening a receiver")?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(receive(socket, n, stop_rx, joined_tx.clone()));
        tasks.push((task, stop_tx));
    }
    drop(joined_tx);
    for _ in 0..receivers {
        match joined_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => bail!("a receiver ended before the sends"),
        }
    }

    // The two people's other traffic (`--typing`), on sockets of their own: `typing` on
    // its own clock, as people type while messages come and go (a page sends it while
    // its user types, seconds before their message, never in step with the other
    // side's sends), and the officer's read marks after the messages they saw.
    let mut writers = match args.typing {
        true => {
            let typists = [
                api.as_user(&customer.token).connect().await?,
                officer_client.connect().await?,
            ];
            let (stop, stopped) = oneshot::channel();
            Some((
                tokio::spawn(type_until(chat.clone(), typists, stopped)),
                stop,
                officer_client.connect().await?,
                Traffic::default(),
            ))
        }
        false => None,
    };

    let mut starts = Vec::with_capacity(n);
    let mut sends = Latencies::new();
    let mut send_failures = 0;
    // The read mark at most every 300 ms, for the latest message (the pages coalesce
    // marks so).
    let mut read_at = None::<Instant>;
    let mut unread = None::<u64>;
    for i in 0..n {
        let start = Instant::now();
        starts.push(start);
        match api::send(&sender, &chat, &format!("fan-out {i}"), &format!("f-{i}")).await {
            Ok((201, Some(message))) => {
                sends.record(start.elapsed());
                unread = Some(message.seq);
            }
            _ => send_failures += 1,
        }
        if let Some((_, _, reader, traffic)) = &mut writers {
            let due = read_at.is_none_or(|at| at.elapsed() >= Duration::from_millis(300));
            if let Some(seq) = unread.filter(|_| due || i + 1 == n) {
                read_at = Some(Instant::now());
                unread = None;
                match reader.mark_read(&chat, seq).await {
                    Ok(()) => traffic.reads += 1,
                    Err(e) => traffic.errors.push(format!("read: {e}")),
                }
            }
        }
        tokio::time::sleep(args.interval).await;
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    let typing = match writers {
        Some((typists, stop, reader, mut traffic)) => {
            let _ = stop.send(());
            let sockets = match typists.await {
                Ok((typed, sockets)) => {
                    traffic.typing = typed.typing;
                    traffic.errors.extend(typed.errors);
                    sockets.into_iter().collect()
                }
                Err(e) => {
                    traffic.errors.push(format!("typing task: {e}"));
                    Vec::new()
                }
            };
            // A writer hears nothing but a refusal (it joined no room): any frame is one.
            for mut socket in sockets.into_iter().chain([reader]) {
                while let Ok(frame) =
                    tokio::time::timeout(Duration::from_millis(200), socket.next_text()).await
                {
                    match frame {
                        Ok(text) => traffic.errors.push(format!("refused: {text}")),
                        Err(e) => {
                            traffic.errors.push(format!("writer socket: {e}"));
                            break;
                        }
                    }
                }
                socket.close().await;
            }
            Some(traffic)
        }
        None => None,
    };

    let mut level = Level {
        receivers,
        messages: n,
        delivered: 0,
        lost: 0,
        duplicates: 0,
        out_of_order: 0,
        latencies: Latencies::new(),
        everyone: Latencies::new(),
        sends,
        send_failures,
        receiver_errors: Vec::new(),
        typing,
    };
    let mut last_receipt: Vec<Option<Instant>> = vec![None; n];
    let mut complete = vec![0usize; n];
    // Receivers keep their sockets open until every one has finished, so that no close
    // handshake competes with the delivery of the last messages to the others.
    let mut sockets = Vec::with_capacity(receivers);
    for (mut task, stop) in tasks {
        let (socket, received) = match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(done) => done?,
            Err(_elapsed) => {
                // Time is up: what it has not received by now counts as lost.
                let _ = stop.send(());
                task.await?
            }
        };
        sockets.push(socket);
        for (i, at) in received.at.iter().enumerate() {
            match at {
                Some(at) => {
                    level.delivered += 1;
                    complete[i] += 1;
                    last_receipt[i] = last_receipt[i].max(Some(*at));
                    level
                        .latencies
                        .record(at.saturating_duration_since(starts[i]));
                }
                None => level.lost += 1,
            }
        }
        level.duplicates += received.duplicates;
        level.out_of_order += received.out_of_order;
        if let Some(e) = received.error {
            level.receiver_errors.push(e);
        }
    }
    // A message is with everyone when its last receiver has it (messages someone lost
    // are counted as lost, not here).
    for (i, last) in last_receipt.iter().enumerate() {
        if let Some(last) = last.filter(|_| complete[i] == receivers) {
            level
                .everyone
                .record(last.saturating_duration_since(starts[i]));
        }
    }
    super::close_sockets(sockets).await;
    Ok(level)
}

/// Reads one receiver's socket until it has every message or is told to stop, and
/// hands the socket back open.
async fn receive(
    mut socket: Socket,
    n: usize,
    mut stop: oneshot::Receiver<()>,
    joined: mpsc::Sender<anyhow::Result<()>>,
) -> (Socket, Received) {
    let _ = joined.send(Ok(())).await;
    drop(joined);
    let mut received = Received {
        at: vec![None; n],
        duplicates: 0,
        out_of_order: 0,
        error: None,
    };
    let mut count = 0;
    let mut last_seq = None::<u64>;
    while count < n {
        let frame = tokio::select! {
            biased;
            frame = socket.next_text() => frame,
            _ = &mut stop => break,
        };
        let at = Instant::now();
        // Only the two fields it needs, borrowed from the text: the receivers share the
        // machine with the server, so what they spend per frame is load measured.
        let text = match frame {
            Ok(text) => text,
            Err(Error::Closed { code: Some(code) }) => {
                received.error = Some(format!("closed by the server with code {code}"));
                break;
            }
            Err(Error::Closed { code: None }) => {
                received.error = Some("the connection ended".into());
                break;
            }
            Err(e) => {
                received.error = Some(format!("read failed: {e}"));
                break;
            }
        };
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            received.error = Some(format!("a frame that is not JSON: {text}"));
            break;
        };
        let Some(message) = frame.message.filter(|_| frame.kind == "new_message") else {
            continue;
        };
        if let Some(last) = last_seq {
            if message.seq != last + 1 {
                received.out_of_order += 1;
            }
        }
        last_seq = Some(message.seq);
        let index = message
            .client_message_id
            .as_deref()
            .and_then(|k| k.strip_prefix("f-"))
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < n);
        match index {
            Some(i) if received.at[i].is_none() => {
                received.at[i] = Some(at);
                count += 1;
            }
            Some(_) => received.duplicates += 1,
            None => {}
        }
    }
    (socket, received)
}

impl Level {
    fn report(self, scenario: &mut Scenario) {
        let mut cells = vec![
            Cell::Int(self.receivers as u64),
            Cell::Int(self.messages as u64),
            Cell::Int(self.delivered),
            Cell::Int(self.lost),
            Cell::Int(self.duplicates),
            Cell::Num(self.sends.summary().p99_ms, 3),
            Cell::Num(self.everyone.summary().p50_ms, 3),
            Cell::Num(self.everyone.summary().p99_ms, 3),
        ];
        cells.extend(latency_cells(&self.latencies.summary()));
        scenario.row(cells);
        let r = self.receivers;
        let expected = (self.receivers * self.messages) as u64;
        if let Some(traffic) = &self.typing {
            scenario.check(
                format!("{r} receivers: typing and read marks accepted"),
                traffic.errors.is_empty(),
                format!(
                    "{} typing and {} read frames sent, {} refused or failed{}",
                    traffic.typing,
                    traffic.reads,
                    traffic.errors.len(),
                    traffic
                        .errors
                        .first()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                ),
            );
        }
        scenario.check(
            format!("{r} receivers: every message sent"),
            self.send_failures == 0,
            format!(
                "{} of {} sends answered 201",
                self.messages - self.send_failures,
                self.messages
            ),
        );
        scenario.check(
            format!("{r} receivers: every receiver got every message exactly once, in order"),
            self.lost == 0
                && self.duplicates == 0
                && self.out_of_order == 0
                && self.delivered == expected
                && self.receiver_errors.is_empty(),
            format!(
                "{} of {expected} delivered, {} lost, {} duplicates, {} out of order{}",
                self.delivered,
                self.lost,
                self.duplicates,
                self.out_of_order,
                match self.receiver_errors.first() {
                    Some(e) => format!(
                        ", {} receiver errors (first: {e})",
                        self.receiver_errors.len()
                    ),
                    None => String::new(),
                }
            ),
        );
    }
}

/// `typing` from each socket at once, then once a second on a clock of its own (the
/// sends keep no clock, so the typing falls anywhere between them), until told to stop.
async fn type_until(
    chat: String,
    mut sockets: [Socket; 2],
    mut stop: oneshot::Receiver<()>,
) -> (Traffic, [Socket; 2]) {
    let mut traffic = Traffic::default();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {}
        }
        for socket in &mut sockets {
            match socket.typing(&chat).await {
                Ok(()) => traffic.typing += 1,
                Err(e) => traffic.errors.push(format!("typing: {e}")),
            }
        }
    }
    (traffic, sockets)
}
