//! One officer at the desk: a task that owns the officer's WebSocket (in `officers:all`
//! and in each of their open chats) and reads it without pause, so that every frame is
//! timed when it arrives; what takes time (REST calls, pauses to think) runs in tasks of
//! its own that report back. In manual mode the officer goes for chats heard in the
//! queue (after a reaction time, one claim at a time, while they have room); in both
//! modes they answer each customer message and resolve the chat after the last. Some
//! officers come and go: away for a while, or their socket dropped and opened again
//! (rejoining their chats with `afterSeq`, so that nothing is missed).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_client::{Availability, ChatStatus, ChatsFilter, Client, ClientFrame, Error, Socket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

use super::frames::{self, FrameMessage};
use super::ledger::{CapacityTracker, QueueLog, Side};
use super::{Ctx, draw, draw_around};
use crate::api;
use crate::stats::Latencies;

/// How long an officer who was told to stop may still take to finish their open chats.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Pause before a socket that the server closed is opened again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// Most errors an officer keeps, in words.
const MAX_ERRORS: usize = 5;

/// An officer as the desk drives them.
pub(super) struct Officer {
    pub(super) index: usize,
    /// The node their REST client and socket use (officer `j` on node `j % nodes`).
    pub(super) node: usize,
    pub(super) id: String,
    /// The officer's REST client, on their node.
    pub(super) client: Client,
    /// Capacity in force (`None`: unlimited).
    pub(super) capacity: Option<u32>,
    /// Whether they come and go during the run.
    pub(super) churns: bool,
}

/// What an officer's task reports at the end.
#[derive(Default)]
pub(super) struct OfficerReport {
    pub(super) queue: QueueLog,
    /// Customer message sent -> received on this officer's socket (live deliveries).
    pub(super) to_officer: Latencies,
    /// The officer's own sends, until answered.
    pub(super) sends: Latencies,
    pub(super) claims: Latencies,
    pub(super) claims_won: u64,
    /// Refused claims by code (`already_assigned` is a lost race).
    pub(super) claims_refused: HashMap<String, u64>,
    /// Their own count of open chats against their capacity.
    pub(super) capacity: CapacityTracker,
    pub(super) chats: u64,
    /// Messages whose seq was not the next one expected (a gap, or a repeat).
    pub(super) gaps: u64,
    pub(super) duplicates: u64,
    pub(super) times_away: u64,
    pub(super) disconnects: u64,
    pub(super) errors: Vec<String>,
    pub(super) error_count: u64,
    /// Chats still open when the officer had to stop.
    pub(super) left_open: usize,
    /// Chats the officer learned were theirs only by reading their chats after their
    /// socket opened again.
    pub(super) found_on_reconnect: u64,
}

/// What the officer's helpers and the scenario tell the officer's task.
pub(super) enum Cmd {
    /// A claim was answered: `None` won, else the refusal's code.
    Claimed {
        chat: String,
        customer: usize,
        refused: Option<String>,
        took: Duration,
    },
    /// The queue as read by REST: (chat, customer index), oldest first.
    Queue(Vec<(String, usize)>),
    /// The officer's open chats as read by REST after their socket opened again: a chat
    /// given to them while it was closed (its `chat_assigned` went nowhere) is theirs.
    Mine(Vec<(String, usize)>),
    /// A chat's conversation ended (resolved by the officer or by the customer), with
    /// how long each of the officer's sends in it took to be answered.
    Done { chat: String, sends: Vec<Duration> },
    /// A helper's failure, for the report.
    Failed(String),
    /// No more customers are coming: finish the open chats and stop.
    Stop,
}

/// A chat the officer has.
struct OpenChat {
    customer: usize,
    last_seq: u64,
    /// The conversation's task hears the customer's message numbers here; dropped when
    /// the chat was resolved, which ends the conversation.
    heard: Option<mpsc::UnboundedSender<u32>>,
}

enum Absence {
    Present,
    Away { back: Instant },
    Gone { back: Instant },
}

struct Desk {
    ctx: Arc<Ctx>,
    me: Officer,
    socket: Option<Socket>,
    tx: mpsc::UnboundedSender<Cmd>,
    open: HashMap<String, OpenChat>,
    /// Every chat the officer ever took (a `chat_assigned` after a won claim is not a
    /// second taking).
    taken: HashSet<String>,
    available: bool,
    claiming: bool,
    reading_queue: bool,
    /// Manual mode: chats heard waiting in the queue, and when the officer goes for each.
    queue: HashMap<String, usize>,
    attempts: BinaryHeap<Reverse<(Instant, String)>>,
    absence: Absence,
    next_absence: Option<Instant>,
    stopping: Option<Instant>,
    report: OfficerReport,
}

/// Starts an officer's task with their socket, already in `officers:all` since `joined`.
pub(super) fn spawn(
    ctx: Arc<Ctx>,
    me: Officer,
    socket: Socket,
    joined: Instant,
) -> (mpsc::UnboundedSender<Cmd>, JoinHandle<OfficerReport>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let next_absence = me
        .churns
        .then(|| Instant::now() + draw_around(ctx.args.churn_every));
    let mut report = OfficerReport::default();
    report.queue.node = me.node;
    report.queue.sessions.push((joined, None));
    let desk = Desk {
        ctx,
        me,
        socket: Some(socket),
        tx: tx.clone(),
        open: HashMap::new(),
        taken: HashSet::new(),
        available: true,
        claiming: false,
        reading_queue: false,
        queue: HashMap::new(),
        attempts: BinaryHeap::new(),
        absence: Absence::Present,
        next_absence,
        stopping: None,
        report,
    };
    (tx, tokio::spawn(desk.run(rx)))
}

/// The next text frame of the socket, or never while there is none.
async fn next_text(socket: &mut Option<Socket>) -> Result<String, Error> {
    match socket {
        Some(socket) => socket.next_text().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Desk {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) -> OfficerReport {
        loop {
            let attempt = self.attempts.peek().map(|Reverse((at, _))| *at);
            let turn = match self.absence {
                Absence::Present if self.stopping.is_none() => self.next_absence,
                Absence::Present => None,
                Absence::Away { back } | Absence::Gone { back } => Some(back),
            };
            tokio::select! {
                frame = next_text(&mut self.socket) => match frame {
                    Ok(text) => self.on_frame(&text, Instant::now()).await,
                    Err(e) => self.socket_ended(&e),
                },
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd).await,
                    None => break,
                },
                () = sleep_until_some(attempt) => self.attempt_due(),
                () = sleep_until_some(turn) => self.turn().await,
                () = sleep_until_some(self.stopping.map(|s| s + STOP_GRACE)) => break,
            }
            if self.stopping.is_some() && self.open.is_empty() {
                break;
            }
        }
        self.report.left_open = self.open.len();
        // A session still open now lasted the whole run (its end is left `None`): queue
        // events of the last logins are owed to it.
        if let Some(socket) = self.socket.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), socket.close()).await;
        }
        self.report
    }

    fn error(&mut self, what: impl Into<String>) {
        self.report.error_count += 1;
        if self.report.errors.len() < MAX_ERRORS {
            let what = what.into();
            self.report.errors.push(format!("{}: {what}", self.me.id));
        }
    }

    async fn on_frame(&mut self, text: &str, at: Instant) {
        // Every officer hears every load change and chat update of the desk; only the
        // monitors read them. Chats leaving the queue matter only to officers who claim.
        match frames::leading_type(text) {
            Some("officer_updated" | "chat_updated") => return,
            Some("queue_chat_claimed") if self.ctx.auto() => return,
            _ => {}
        }
        let Some(frame) = frames::parse(text) else {
            self.error(format!("a frame that is not the contract's: {text}"));
            return;
        };
        match frame.kind.as_ref() {
            "queue_chat_created" => {
                let Some(chat) = frame.chat else { return };
                let Some(customer) = self.ctx.customer_index(&chat.customer_id) else {
                    return;
                };
                let since = at.saturating_duration_since(self.ctx.epoch);
                self.report.queue.receipts.push((customer as u32, since));
                if !self.ctx.auto() {
                    self.queue.insert(chat.id.to_string(), customer);
                    if self.may_claim() {
                        self.plan_attempt(chat.id.to_string(), at);
                    }
                }
            }
            "queue_chat_claimed" => {
                if let Some(chat) = frame.chat {
                    self.queue.remove(chat.id.as_ref());
                }
            }
            "chat_assigned" => {
                let Some(chat) = frame.chat else { return };
                if let Some(customer) = self.ctx.customer_index(&chat.customer_id) {
                    self.take(chat.id.to_string(), customer).await;
                }
            }
            "chat_unassigned" => self.error("a chat was taken from the officer (chat_unassigned)"),
            "joined" => {
                let room = frame.room.as_deref().unwrap_or_default();
                if let Some(open) = room
                    .strip_prefix("chat:")
                    .and_then(|chat| self.open.get(chat))
                {
                    self.ctx.ledgers[open.customer].lock().joined[1] = Some(at);
                }
            }
            "new_message" => {
                if let Some(message) = frame.message {
                    self.on_message(&message, at);
                }
            }
            "error" => {
                let code = frame.code.as_deref().unwrap_or("?").to_string();
                self.error(format!("error frame {code}: {text}"));
            }
            _ => {}
        }
    }

    fn on_message(&mut self, message: &FrameMessage<'_>, at: Instant) {
        let Some(open) = self.open.get_mut(message.chat_id.as_ref()) else {
            // A chat already done (its frames may trail the leave).
            return;
        };
        if message.seq <= open.last_seq {
            self.report.duplicates += 1;
            return;
        }
        if message.seq != open.last_seq + 1 {
            self.report.gaps += 1;
        }
        open.last_seq = message.seq;
        let customer = open.customer;
        match message.sender_type.as_ref() {
            "customer" => {
                let Some(key) = message.client_message_id.as_deref() else {
                    return;
                };
                let latency =
                    self.ctx.ledgers[customer]
                        .lock()
                        .received(Side::Officer, key, message.seq, at);
                if let Some(latency) = latency {
                    self.report.to_officer.record(latency);
                }
                if let (Some(('c', k)), Some(heard)) = (frames::message_number(key), &open.heard) {
                    let _ = heard.send(k);
                }
            }
            "system" => {
                let kind = message.event.as_ref().map(|e| e.kind.as_ref());
                if kind == Some("resolved") {
                    // Resolved (by the officer, or by a customer who gave up): the
                    // conversation ends.
                    open.heard = None;
                }
            }
            _ => {}
        }
    }

    async fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Claimed {
                chat,
                customer,
                refused,
                took,
            } => {
                self.claiming = false;
                self.report.claims.record(took);
                self.queue.remove(&chat);
                match refused {
                    None => {
                        self.report.claims_won += 1;
                        self.take(chat, customer).await;
                    }
                    Some(code) => {
                        *self.report.claims_refused.entry(code).or_default() += 1;
                    }
                }
            }
            Cmd::Queue(chats) => {
                self.reading_queue = false;
                let now = Instant::now();
                let room = self.room_left();
                for (chat, customer) in chats {
                    if self.taken.contains(&chat) {
                        continue;
                    }
                    self.queue.insert(chat.clone(), customer);
                    if self.attempts.len() < room {
                        self.plan_attempt(chat, now);
                    }
                }
            }
            Cmd::Mine(chats) => {
                for (chat, customer) in chats {
                    if !self.taken.contains(&chat) {
                        self.report.found_on_reconnect += 1;
                        self.take(chat, customer).await;
                    }
                }
            }
            Cmd::Done { chat, sends } => {
                for took in sends {
                    self.report.sends.record(took);
                }
                if let Some(open) = self.open.remove(&chat) {
                    self.ctx.ledgers[open.customer].lock().joined[1] = None;
                    if let Some(socket) = &mut self.socket {
                        let leave = ClientFrame::LeaveChat { chat_id: chat };
                        if socket.send(&leave).await.is_err() {
                            // Seen again by the next read, which ends the session.
                        }
                    }
                    self.read_queue();
                }
            }
            Cmd::Failed(what) => self.error(what),
            Cmd::Stop => {
                self.stopping = Some(Instant::now());
                self.attempts.clear();
            }
        }
    }

    /// The chat is the officer's (assigned to them, or a claim won): in its room (from
    /// its first entry), and a conversation task that answers the customer.
    async fn take(&mut self, chat: String, customer: usize) {
        if !self.taken.insert(chat.clone()) {
            return;
        }
        self.report.chats += 1;
        self.queue.remove(&chat);
        self.ctx.ledgers[customer].lock().takers.push(self.me.index);
        let (heard, rx) = mpsc::unbounded_channel();
        self.open.insert(
            chat.clone(),
            OpenChat {
                customer,
                last_seq: 0,
                heard: Some(heard),
            },
        );
        let open = u32::try_from(self.open.len()).unwrap_or(u32::MAX);
        self.report.capacity.observe(
            &self.me.id,
            open,
            self.me.capacity,
            "the officer's own count",
        );
        tokio::spawn(converse(
            self.ctx.clone(),
            self.me.client.clone(),
            chat.clone(),
            customer,
            rx,
            self.tx.clone(),
        ));
        self.join(chat, 0).await;
    }

    /// Asks to join a chat's room from after `after_seq`; the `joined` answer is read
    /// by the loop. Without a socket, the chat is joined when it opens again.
    async fn join(&mut self, chat: String, after_seq: u64) {
        if let Some(socket) = &mut self.socket {
            let join = ClientFrame::JoinChat {
                chat_id: chat,
                after_seq: Some(after_seq),
            };
            if socket.send(&join).await.is_err() {
                // The next read fails too and ends the session.
            }
        }
    }

    fn room_left(&self) -> usize {
        let busy = self.open.len() + usize::from(self.claiming);
        match self.me.capacity {
            Some(capacity) => (capacity as usize).saturating_sub(busy),
            None => usize::MAX,
        }
    }

    fn may_claim(&self) -> bool {
        !self.ctx.auto()
            && self.available
            && self.socket.is_some()
            && self.stopping.is_none()
            && self.room_left() > 0
    }

    fn plan_attempt(&mut self, chat: String, now: Instant) {
        let at = now + draw(self.ctx.args.reaction);
        self.attempts.push(Reverse((at, chat)));
    }

    /// The earliest planned claim is due: made if the chat is still waiting and the
    /// officer has room (one claim at a time).
    fn attempt_due(&mut self) {
        let Some(Reverse((_, chat))) = self.attempts.pop() else {
            return;
        };
        let Some(&customer) = self.queue.get(&chat) else {
            return;
        };
        if !self.may_claim() {
            return;
        }
        if self.claiming {
            self.plan_attempt(chat, Instant::now());
            return;
        }
        self.claiming = true;
        let (client, id, tx) = (self.me.client.clone(), self.me.id.clone(), self.tx.clone());
        tokio::spawn(async move {
            let start = Instant::now();
            let refused = match client.claim(&id, &chat).await {
                Ok(_) => None,
                Err(e) => Some(e.code().to_string()),
            };
            let took = start.elapsed();
            let _ = tx.send(Cmd::Claimed {
                chat,
                customer,
                refused,
                took,
            });
        });
    }

    /// Manual mode, with room: reads the queue (what waited while the officer was full,
    /// away or gone).
    fn read_queue(&mut self) {
        if !self.may_claim() || self.reading_queue {
            return;
        }
        self.reading_queue = true;
        let (ctx, client, tx) = (self.ctx.clone(), self.me.client.clone(), self.tx.clone());
        tokio::spawn(async move {
            let chats = match client.queue().await {
                Ok(queue) => queue
                    .into_iter()
                    .filter_map(|c| {
                        let customer = ctx.customer_index(c.customer_id.as_str())?;
                        Some((c.id.to_string(), customer))
                    })
                    .collect(),
                Err(e) => {
                    let _ = tx.send(Cmd::Failed(format!("reading the queue: {e}")));
                    Vec::new()
                }
            };
            let _ = tx.send(Cmd::Queue(chats));
        });
    }

    /// A coming-and-going officer's next step: leave (away, or socket dropped, in turn),
    /// or come back.
    async fn turn(&mut self) {
        let now = Instant::now();
        match self.absence {
            Absence::Present => {
                let back = now + draw(self.ctx.args.away_for);
                if (self.report.times_away + self.report.disconnects) % 2 == 0 {
                    self.report.times_away += 1;
                    self.available = false;
                    self.set_availability(Availability::Away);
                    self.absence = Absence::Away { back };
                } else {
                    self.report.disconnects += 1;
                    if let Some(socket) = self.socket.take() {
                        let _ = tokio::time::timeout(Duration::from_secs(2), socket.close()).await;
                    }
                    self.end_session();
                    self.absence = Absence::Gone { back };
                }
                self.attempts.clear();
            }
            Absence::Away { .. } => {
                self.available = true;
                self.set_availability(Availability::Available);
                self.back(now);
            }
            Absence::Gone { .. } => match self.reconnect().await {
                Ok(()) => self.back(now),
                Err(e) => {
                    self.error(format!("reconnecting: {e}"));
                    self.absence = Absence::Gone {
                        back: now + RECONNECT_PAUSE,
                    };
                }
            },
        }
    }

    fn back(&mut self, now: Instant) {
        self.absence = Absence::Present;
        self.next_absence = Some(now + draw_around(self.ctx.args.churn_every));
        self.read_queue();
    }

    fn set_availability(&self, availability: Availability) {
        let (client, id, tx) = (self.me.client.clone(), self.me.id.clone(), self.tx.clone());
        tokio::spawn(async move {
            if let Err(e) = client.set_availability(&id, availability).await {
                let _ = tx.send(Cmd::Failed(format!(
                    "setting availability {}: {e}",
                    availability.as_str()
                )));
            }
        });
    }

    /// Opens the socket again: `officers:all`, then each open chat from after the last
    /// seq seen.
    async fn reconnect(&mut self) -> Result<(), Error> {
        let mut socket = self.me.client.connect().await?;
        socket.join_officers().await?;
        self.report.queue.sessions.push((Instant::now(), None));
        self.socket = Some(socket);
        let rejoin: Vec<(String, u64)> = self
            .open
            .iter()
            .map(|(chat, open)| (chat.clone(), open.last_seq))
            .collect();
        for (chat, after) in rejoin {
            self.join(chat, after).await;
        }
        self.read_mine();
        Ok(())
    }

    /// Reads the officer's open chats (REST is the source of truth): what was given to
    /// them while their socket was closed.
    fn read_mine(&self) {
        let (ctx, client, tx) = (self.ctx.clone(), self.me.client.clone(), self.tx.clone());
        let id = self.me.id.clone();
        tokio::spawn(async move {
            match client.officer_chats(&id, ChatsFilter::Open).await {
                Ok(chats) => {
                    let mine = chats
                        .into_iter()
                        .filter_map(|c| {
                            let customer = ctx.customer_index(c.customer_id.as_str())?;
                            Some((c.id.to_string(), customer))
                        })
                        .collect();
                    let _ = tx.send(Cmd::Mine(mine));
                }
                Err(e) => {
                    let _ = tx.send(Cmd::Failed(format!("reading the officer's chats: {e}")));
                }
            }
        });
    }

    /// The server ended the socket: noted, and opened again after a pause.
    fn socket_ended(&mut self, e: &Error) {
        self.error(format!("the socket ended: {e}"));
        self.socket = None;
        self.end_session();
        self.absence = Absence::Gone {
            back: Instant::now() + RECONNECT_PAUSE,
        };
    }

    /// The socket is gone: its session in `officers:all` ends, and the officer is in
    /// none of their chats' rooms until it opens again.
    fn end_session(&mut self) {
        let now = Instant::now();
        if let Some((_, end @ None)) = self.report.queue.sessions.last_mut() {
            *end = Some(now);
        }
        for open in self.open.values() {
            self.ctx.ledgers[open.customer].lock().joined[1] = None;
        }
    }
}

/// The officer's side of one chat: each customer message is answered after a pause to
/// think; after the last, the officer resolves the chat.
async fn converse(
    ctx: Arc<Ctx>,
    client: Client,
    chat: String,
    customer: usize,
    mut heard: mpsc::UnboundedReceiver<u32>,
    officer: mpsc::UnboundedSender<Cmd>,
) {
    let ledger = &ctx.ledgers[customer];
    let mut sends = Vec::new();
    while let Some(k) = heard.recv().await {
        let rounds = ledger.lock().rounds;
        tokio::time::sleep(draw(ctx.args.think)).await;
        let key = format!("o{k}");
        let start = Instant::now();
        ledger.lock().sending(Side::Officer, &key, start);
        match api::send(&client, &chat, &ctx.content, &key).await {
            Ok((201, Some(message))) => {
                sends.push(start.elapsed());
                ledger.lock().acknowledged(Side::Officer, &key, message.seq);
            }
            Ok((status, _)) => {
                ledger
                    .lock()
                    .fail(format!("the officer's message {key} was answered {status}"));
                break;
            }
            Err(e) => {
                ledger
                    .lock()
                    .fail(format!("the officer's message {key} had no answer: {e}"));
                break;
            }
        }
        if k >= rounds {
            tokio::time::sleep(draw(ctx.args.think)).await;
            match client.resolve(&chat).await {
                Ok(c) if c.status == ChatStatus::Resolved => {
                    ledger.lock().resolved_by_officer = true;
                }
                Ok(c) => ledger.lock().fail(format!(
                    "the officer's resolve answered the chat {:?}",
                    c.status
                )),
                Err(e) => ledger.lock().fail(format!("the officer's resolve: {e}")),
            }
            break;
        }
    }
    let _ = officer.send(Cmd::Done { chat, sends });
}
