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

use anyhow::Context;
use chat_client::{ServerFrame, Watch, WatchEvent};
use chatcore::Event;

use crate::backend::{Backend, Remote};
use crate::cli::WatchCommand;
use crate::error::ApiError;
use crate::output::{Printer, message_line, officer_of};

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
    let (watch, what) = match cmd {
        WatchCommand::Queue => (
            Watch::queue(remote.client().clone()),
            "watching the queue".to_string(),
        ),
        WatchCommand::Chat(args) => {
            let after = match args.after_seq {
                Some(n) => n,
                None => remote
                    .last_seq(&args.chat)
                    .await
                    .with_context(|| format!("reading the newest message of chat {}", args.chat))?,
            };
            (
                Watch::chat(remote.client().clone(), &args.chat, after),
                format!("watching chat {}", args.chat),
            )
        }
    };
    tokio::select! {
        result = watch_loop(remote, printer, watch) => result.context(what),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Prints what the watch hands out until a refusal ends it.
async fn watch_loop(remote: &Remote, printer: Printer, mut watch: Watch) -> anyhow::Result<()> {
    let chat_only = watch.last_seq().is_some();
    loop {
        match watch.next().await.map_err(|e| remote.error(e))? {
            // On stderr, so stdout stays pure events: a person (or a test) learns from
            // here on nothing is missed.
            WatchEvent::Joined {
                room,
                after_seq: Some(seq),
            } => eprintln!("watch: joined {room} after seq {seq}"),
            WatchEvent::Joined { room, .. } => eprintln!("watch: joined {room}"),
            WatchEvent::Reconnecting { reason, delay } => {
                eprintln!("watch: {reason}; reconnecting in {} ms", delay.as_millis())
            }
            WatchEvent::Notice(e) => eprintln!("watch: the server said: {}: {}", e.code, e.message),
            WatchEvent::Event(incoming) => {
                let ServerFrame::Event(event) = &incoming.frame else {
                    continue;
                };
                print_event(printer, chat_only, event, &incoming.text)?;
            }
            _ => {}
        }
    }
}

/// Prints one event: a chat watch shows its messages, a queue watch every event.
fn print_event(printer: Printer, chat_only: bool, event: &Event, text: &str) -> anyhow::Result<()> {
    let line = match event {
        _ if printer.json => {
            if chat_only && !matches!(event, Event::NewMessage { .. }) {
                return Ok(());
            }
            text.to_string()
        }
        Event::NewMessage { message } => message_line(message),
        _ if chat_only => return Ok(()),
        // A lifecycle change says what changed and where the chat now stands.
        Event::ChatUpdated { chat, change } => format!(
            "{} chat={} customer={} officer={} status={} change={}",
            event.kind(),
            chat.id,
            chat.customer_id,
            officer_of(chat),
            chat.status.as_str(),
            change.as_str()
        ),
        Event::QueueChatCreated { chat }
        | Event::QueueChatClaimed { chat }
        | Event::ChatAssigned { chat }
        | Event::ChatUnassigned { chat } => format!(
            "{} chat={} customer={} officer={}",
            event.kind(),
            chat.id,
            chat.customer_id,
            officer_of(chat)
        ),
        Event::OfficerUpdated { officer } => format!(
            "{} officer={} state={} presence={} load={}",
            event.kind(),
            officer.id,
            if officer.disabled {
                "disabled"
            } else {
                officer.availability.as_str()
            },
            if officer.connected {
                "online"
            } else {
                "offline"
            },
            match officer.capacity {
                Some(cap) => format!("{}/{cap}", officer.open_chats),
                None => officer.open_chats.to_string(),
            }
        ),
        _ => format!("{} {text}", event.kind()),
    };
    printer.line(&line)?;
    Ok(())
}
