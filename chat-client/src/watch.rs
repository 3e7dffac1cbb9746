//! [`Watch`]: a chat's or the queue's events, across reconnects. After a dropped
//! connection, a 4008 close (too slow), a server restart or a 1001 shutdown it reconnects
//! by itself, with exponential backoff and jitter, and rejoins a chat with `afterSeq` =
//! the last seq it handed out, so no message is missed or handed out twice. The queue
//! has no replay in the contract: re-read it (`Client::queue`) on
//! [`WatchEvent::Joined`] to resync. Refusals (a bad or ended session, no such chat, no
//! right to it) end the watch with their error.

use std::time::Duration;

use chatcore::Event;
use chatcore::wire::ServerFrame;
use tokio::time::Instant;

use crate::error::{ApiError, Error};
use crate::rest::Client;
use crate::ws::{Incoming, Socket};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that lasted this long counts as healthy even if it handed out nothing.
const STABLE: Duration = Duration::from_secs(10);

/// What a [`Watch`] follows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Queue,
    Chat { chat: String, last_seq: u64 },
}

/// What [`Watch::next`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// A room was (re)joined: from here on nothing is missed. `after_seq` is where a
    /// chat's replay starts.
    Joined {
        /// `chat:<id>` or `officers:all`.
        room: String,
        /// For a chat, the seq the replay follows.
        after_seq: Option<u64>,
    },
    /// An event: a chat's new messages (each once, in seq order) and its other events,
    /// or the queue's events (and an officer's own `chat_assigned`).
    Event(Incoming),
    /// The server refused a frame but the watch goes on (`rate_limited`, say).
    Notice(ApiError),
    /// The connection ended; the watch reconnects after `delay`.
    Reconnecting {
        /// Why it ended.
        reason: String,
        /// How long until the next attempt.
        delay: Duration,
    },
}

/// A reconnecting watch of a chat or of the queue.
#[derive(Debug)]
pub struct Watch {
    client: Client,
    target: Target,
    socket: Option<Socket>,
    /// The wait before the next connection attempt, once announced.
    wait: Option<Duration>,
    backoff: Duration,
    ever_joined: bool,
    /// When the current connection joined, and whether it has handed anything out.
    joined_at: Option<Instant>,
    progressed: bool,
}

impl Watch {
    /// A chat's messages with a seq over `after_seq` (take it from
    /// [`Client::last_seq`] to start from "now" without a gap), and its other events.
    pub fn chat(client: Client, chat: &str, after_seq: u64) -> Self {
        Self::new(
            client,
            Target::Chat {
                chat: chat.to_string(),
                last_seq: after_seq,
            },
        )
    }

    /// The shared queue's events (officers only).
    pub fn queue(client: Client) -> Self {
        Self::new(client, Target::Queue)
    }

    fn new(client: Client, target: Target) -> Self {
        Self {
            client,
            target,
            socket: None,
            wait: None,
            backoff: MIN_BACKOFF,
            ever_joined: false,
            joined_at: None,
            progressed: false,
        }
    }

    /// For a chat, the last seq handed out (or the one it started after).
    pub fn last_seq(&self) -> Option<u64> {
        match &self.target {
            Target::Chat { last_seq, .. } => Some(*last_seq),
            Target::Queue => None,
        }
    }

    fn room(&self) -> String {
        match &self.target {
            Target::Queue => "officers:all".into(),
            Target::Chat { chat, .. } => format!("chat:{chat}"),
        }
    }

    /// The next event. Cancel-safe between events: dropping the future loses nothing
    /// that was handed out.
    pub async fn next(&mut self) -> Result<WatchEvent, Error> {
        loop {
            let Some(socket) = self.socket.as_mut() else {
                if let Some(wait) = self.wait.take() {
                    tokio::time::sleep(wait).await;
                }
                return self.connect().await;
            };
            let incoming = match socket.next().await {
                Ok(incoming) => incoming,
                Err(e) => return self.dropped(e),
            };
            if let Some(event) = self.judge(incoming)? {
                return Ok(event);
            }
        }
    }

    /// One connection attempt: connect, authenticate, join.
    async fn connect(&mut self) -> Result<WatchEvent, Error> {
        let mut socket = match self.client.connect().await {
            Ok(socket) => socket,
            Err(e) => return self.dropped(e),
        };
        let joined = match &self.target {
            Target::Queue => socket.join_officers().await,
            Target::Chat { chat, last_seq } => socket.join_chat(chat, Some(*last_seq)).await,
        };
        if let Err(e) = joined {
            return self.dropped(e);
        }
        self.socket = Some(socket);
        self.ever_joined = true;
        self.joined_at = Some(Instant::now());
        self.progressed = false;
        Ok(WatchEvent::Joined {
            room: self.room(),
            after_seq: self.last_seq(),
        })
    }

    /// The connection ended or could not be made: a refusal ends the watch, so do a TLS
    /// failure and failing to reach the server before the first join; anything else
    /// reconnects.
    fn dropped(&mut self, e: Error) -> Result<WatchEvent, Error> {
        self.socket = None;
        let retry = e.is_transient() && (self.ever_joined || matches!(e, Error::Closed { .. }));
        if !retry {
            return Err(e);
        }
        // Start over from the shortest delay only after a connection that did some good,
        // so a server that keeps cutting us off at once is not hammered.
        let healthy = self.progressed || self.joined_at.is_some_and(|t| t.elapsed() >= STABLE);
        if healthy {
            self.backoff = MIN_BACKOFF;
        }
        self.joined_at = None;
        // Equal jitter: between half and all of the backoff, so that the clients of a
        // restarted server do not all come back at once.
        let delay = self.backoff.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.wait = Some(delay);
        let reason = match e {
            Error::Closed { code: Some(4008) } => {
                "the server dropped this slow connection (4008)".to_string()
            }
            Error::Closed { code: Some(code) } => {
                format!("the server closed the connection ({code})")
            }
            Error::Closed { code: None } => "the connection dropped".to_string(),
            other => other.to_string(),
        };
        Ok(WatchEvent::Reconnecting { reason, delay })
    }

    /// What to hand out for a frame, if anything.
    fn judge(&mut self, incoming: Incoming) -> Result<Option<WatchEvent>, Error> {
        match &incoming.frame {
            ServerFrame::Error(e) if e.room.as_deref() == Some(self.room().as_str()) => {
                // The right to the watched chat ended: final.
                Err(Error::Api(ApiError::from_frame(e.clone())))
            }
            ServerFrame::Error(e) => Ok(Some(WatchEvent::Notice(ApiError::from_frame(e.clone())))),
            ServerFrame::Event(Event::NewMessage { message }) => {
                if let Target::Chat { chat, last_seq } = &mut self.target {
                    // A replay after a rejoin may overlap what was handed out: seq tells.
                    if message.chat_id.to_string() != *chat || message.seq <= *last_seq {
                        return Ok(None);
                    }
                    *last_seq = message.seq;
                }
                self.progressed = true;
                Ok(Some(WatchEvent::Event(incoming)))
            }
            ServerFrame::Event(_) => {
                self.progressed = true;
                Ok(Some(WatchEvent::Event(incoming)))
            }
            _ => Ok(None),
        }
    }
}
