//! `watch queue` and `watch chat CHAT`: stream events over the WebSocket as they happen.
//!
//! Each connection authenticates with its first frame, joins, and prints events (with
//! `--json`, each frame exactly as received, one per line). After a drop, a 4008 close
//! (too slow) or a server restart it reconnects by itself with exponential backoff and,
//! for a chat, rejoins with `afterSeq` = the last seq printed, so nothing is missed or
//! printed twice. A chat watch without `--after-seq` starts from the chat's newest
//! message, read over REST before the first join, so even a drop before the first event
//! loses nothing. The queue has no replay in the contract: events that happen while
//! reconnecting are not shown (run `queue` to resync). Refusals (bad token, no such
//! chat, not allowed) end the watch with their exit code; Ctrl-C ends it with 0.
//! Each successful join is reported on stderr (`watch: joined ...`), stdout carrying only
//! events.

use std::time::Duration;

use anyhow::Context;
use chatcore::{Chat, Message};
use serde_json::{Value, json};

use crate::backend::{Backend, Remote};
use crate::cli::WatchCommand;
use crate::error::{ApiError, ExitKind};
use crate::output::{Printer, message_line};
use crate::ws::{self, Connection, Frame};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that lasted this long counts as healthy even if it printed nothing.
const STABLE: Duration = Duration::from_secs(10);

/// What is watched, and how far a chat has been printed.
#[derive(Debug)]
enum Target {
    Queue,
    Chat { chat: String, last_seq: u64 },
}

impl Target {
    /// A measure of progress: the last seq printed (chats), 0 for the queue.
    fn printed(&self) -> u64 {
        match self {
            Target::Queue => 0,
            Target::Chat { last_seq, .. } => *last_seq,
        }
    }
}

/// How one connection ended.
#[derive(Debug)]
enum End {
    /// The server closed it (with this code) or the connection dropped.
    Closed(Option<u16>),
    /// A failure: permanent (auth, not found, invalid) or not (unreachable, other).
    Failed(ApiError),
}

pub(crate) async fn run(
    backend: &Backend,
    printer: Printer,
    cmd: WatchCommand,
) -> anyhow::Result<()> {
    let Backend::Remote(remote) = backend else {
        return Err(ApiError::usage(
            "watch needs --server: local mode has no live events from other processes",
        )
        .into());
    };
    let mut target = match cmd {
        WatchCommand::Queue => Target::Queue,
        WatchCommand::Chat(args) => {
            let last_seq = match args.after_seq {
                Some(n) => n,
                None => remote
                    .last_seq(&args.chat)
                    .await
                    .with_context(|| format!("reading the newest message of chat {}", args.chat))?,
            };
            Target::Chat {
                chat: args.chat,
                last_seq,
            }
        }
    };
    let what = match &target {
        Target::Queue => "watching the queue".to_string(),
        Target::Chat { chat, .. } => format!("watching chat {chat}"),
    };
    tokio::select! {
        result = watch(remote, printer, &mut target) => result.context(what),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Connects again and again until a permanent failure.
async fn watch(remote: &Remote, printer: Printer, target: &mut Target) -> anyhow::Result<()> {
    let token = remote.token()?.to_string();
    let mut backoff = MIN_BACKOFF;
    let mut ever_joined = false;
    loop {
        let mut joined = false;
        let printed_before = target.printed();
        let started = tokio::time::Instant::now();
        let end = connection(remote.base(), &token, printer, target, &mut joined).await?;
        ever_joined |= joined;
        // Start over from the shortest delay only after a connection that did some good,
        // so a server that keeps cutting us off at once is not hammered.
        let progressed = target.printed() > printed_before || started.elapsed() >= STABLE;
        let reason = match end {
            End::Closed(Some(ws::CLOSE_UNAUTHORIZED)) => {
                return Err(ApiError::from_ws_code("unauthorized", None).into());
            }
            End::Closed(code) => match code {
                Some(4008) => "the server dropped this slow connection (4008)".to_string(),
                Some(code) => format!("the server closed the connection ({code})"),
                None => "the connection dropped".to_string(),
            },
            // The first connection failing to reach the server is an answer: fail fast.
            End::Failed(e) if e.kind == ExitKind::Unreachable && ever_joined => e.to_string(),
            End::Failed(e) if e.kind == ExitKind::Other && ever_joined => e.to_string(),
            End::Failed(e) => return Err(e.into()),
        };
        if joined && progressed {
            backoff = MIN_BACKOFF;
        }
        eprintln!(
            "watch: {reason}; reconnecting in {} ms",
            backoff.as_millis()
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: auth, join, print until it ends. Only output errors are returned as
/// `Err`; everything about the connection is an [`End`].
async fn connection(
    base: &str,
    token: &str,
    printer: Printer,
    target: &mut Target,
    joined: &mut bool,
) -> anyhow::Result<End> {
    let (mut conn, _ready) = match Connection::open(base, token).await {
        Ok(c) => c,
        Err(e) => return Ok(End::Failed(e)),
    };
    let join = match target {
        Target::Queue => json!({ "type": "join_officers" }),
        Target::Chat { chat, last_seq } => {
            json!({ "type": "join_chat", "chatId": chat, "afterSeq": last_seq })
        }
    };
    if let Err(e) = conn.send(&join).await {
        return Ok(End::Failed(e));
    }
    loop {
        let (text, frame) = match conn.next().await {
            Ok(Frame::Json(text, frame)) => (text, frame),
            Ok(Frame::Closed(code)) => return Ok(End::Closed(code)),
            Err(e) => return Ok(End::Failed(e)),
        };
        match frame["type"].as_str().unwrap_or_default() {
            "joined" => {
                *joined = true;
                // On stderr, so stdout stays pure events: a person (or a test) learns
                // from here on nothing is missed.
                match target {
                    Target::Queue => eprintln!("watch: joined officers:all"),
                    Target::Chat { chat, last_seq } => {
                        eprintln!("watch: joined chat:{chat} after seq {last_seq}")
                    }
                }
            }
            "error" if !*joined => {
                conn.close().await;
                return Ok(End::Failed(ws::error_frame(&frame)));
            }
            "error" => eprintln!("watch: the server said: {}", ws::error_frame(&frame)),
            "ready" | "pong" | "left" => {}
            kind => print_event(printer, target, kind, &text, &frame)?,
        }
    }
}

/// Prints one event if it belongs to what is watched.
fn print_event(
    printer: Printer,
    target: &mut Target,
    kind: &str,
    text: &str,
    frame: &Value,
) -> anyhow::Result<()> {
    match target {
        Target::Chat { chat, last_seq } => {
            if kind != "new_message" {
                return Ok(());
            }
            let message: Message = serde_json::from_value(frame["message"].clone())
                .context("decoding a new_message frame")?;
            // Replays after a rejoin may overlap what was printed; seq tells.
            if message.chat_id.to_string() != *chat || message.seq <= *last_seq {
                return Ok(());
            }
            *last_seq = message.seq;
            if printer.json {
                printer.line(text)?;
            } else {
                printer.line(&message_line(&message))?;
            }
        }
        Target::Queue => {
            if printer.json {
                printer.line(text)?;
                return Ok(());
            }
            let line = match serde_json::from_value::<Chat>(frame["chat"].clone()) {
                Ok(chat) => format!(
                    "{kind} chat={} customer={} officer={}",
                    chat.id,
                    chat.customer_id,
                    chat.assigned_officer_id
                        .as_ref()
                        .map_or("-", |o| o.as_str())
                ),
                Err(_) => format!("{kind} {text}"),
            };
            printer.line(&line)?;
        }
    }
    Ok(())
}
