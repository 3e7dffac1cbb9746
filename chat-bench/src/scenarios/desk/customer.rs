//! One customer's visit: log in (a new chat), open a socket on the chat from its first
//! entry, write the first message, learn who took the chat (the login's answer, or the
//! assignment's entry on the socket), answer each of the officer's messages after a
//! pause to think, and leave once the officer has resolved the chat. The socket lives
//! only for the visit and is read without pause (sends run in a task of their own), so
//! that every frame is timed when it arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_client::{ChatStatus, Client, ClientFrame, Error, Message, Socket};
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

use super::frames::{self, FrameMessage};
use super::ledger::Side;
use super::{Ctx, draw, draw_count};
use crate::api::{self, Api};

/// What one visit measured (the chat's own story is in its ledger).
#[derive(Default)]
pub(super) struct Visit {
    pub(super) login: Option<Duration>,
    /// Login to assignment, and whether the login's answer already had it.
    pub(super) assigned: Option<(Duration, bool)>,
    /// Officer message sent -> received on the customer's socket (live deliveries).
    pub(super) to_customer: Vec<Duration>,
    /// The customer's own sends, until answered.
    pub(super) sends: Vec<Duration>,
    pub(super) gaps: u64,
    pub(super) duplicates: u64,
    pub(super) queue_positions: u64,
    /// The login answered the chat pending, yet its assignment's entry was stored before
    /// the answer arrived (the server's clock against this machine's, the same clock).
    pub(super) answered_pending_when_assigned: bool,
}

/// How long a customer who gave up still reads their socket for the rest of the chat.
const GIVE_UP_DRAIN: Duration = Duration::from_secs(5);

type Sending = JoinHandle<(String, Instant, Result<(u16, Option<Message>), Error>)>;

pub(super) async fn visit(ctx: Arc<Ctx>, node: Api, i: usize) -> Visit {
    let mut visit = Visit::default();
    let ledger = &ctx.ledgers[i];
    let rounds = draw_count(ctx.args.messages);
    let start = Instant::now();
    {
        let mut chat = ledger.lock();
        chat.rounds = rounds;
        chat.login_start = Some(start);
    }
    let login = match node.customer_login(&ctx.customer_id(i), None).await {
        Ok(login) => login,
        Err(e) => {
            ledger.lock().fail(format!("login: {e:#}"));
            return visit;
        }
    };
    let end = Instant::now();
    let answered_at = chatcore::Timestamp::now();
    visit.login = Some(end - start);
    let chat = login.chat.id.to_string();
    {
        let mut record = ledger.lock();
        record.login_end = Some(end);
        if login.chat.status == ChatStatus::Assigned {
            record.assigned_seen = Some(end);
            record.assigned_in_login = true;
            visit.assigned = Some((end - start, true));
        } else if login.chat.status != ChatStatus::Pending || !login.created {
            record.fail(format!(
                "the login answered a chat {:?}, created: {}",
                login.chat.status, login.created
            ));
            return visit;
        }
    }
    let client = node.as_user(&login.token);
    let mut socket = match open(&client, &chat).await {
        Ok(socket) => socket,
        Err(e) => {
            ledger.lock().fail(format!("the customer's socket: {e}"));
            give_up(&client, &chat).await;
            return visit;
        }
    };

    let mut deadline = start + ctx.args.patience;
    let mut gave_up = false;
    let mut next_send: Option<(Instant, u32)> = None;
    let mut sending: Option<Sending> = None;
    let mut last_seq = 0;
    loop {
        tokio::select! {
            frame = socket.next_text() => match frame {
                Ok(text) => {
                    let at = Instant::now();
                    let step = on_frame(&ctx, i, &text, at, (start, answered_at), &mut last_seq, &mut visit);
                    match step {
                        Step::Send(at, k) if !gave_up => next_send = Some((at, k)),
                        Step::Go | Step::Send(..) => {}
                        Step::Resolved => break,
                    }
                }
                Err(e) => {
                    ledger.lock().fail(format!("the customer's socket ended: {e}"));
                    give_up(&client, &chat).await;
                    break;
                }
            },
            () = async { sleep_until(next_send.map_or(deadline, |(at, _)| at).into()).await },
                if next_send.is_some() =>
            {
                let Some((_, k)) = next_send.take() else { continue };
                let key = format!("c{k}");
                let start = Instant::now();
                ledger.lock().sending(Side::Customer, &key, start);
                let (client, chat, content) = (client.clone(), chat.clone(), ctx.content.clone());
                sending = Some(tokio::spawn(async move {
                    let answer = api::send(&client, &chat, &content, &key).await;
                    (key, start, answer)
                }));
            }
            done = async { sending.as_mut().expect("guarded").await }, if sending.is_some() => {
                sending = None;
                match done {
                    Ok((key, start, Ok((201, Some(message))))) => {
                        visit.sends.push(start.elapsed());
                        ledger.lock().acknowledged(Side::Customer, &key, message.seq);
                    }
                    Ok((key, _, Ok((status, _)))) => {
                        ledger.lock().fail(format!("the customer's message {key} was answered {status}"));
                    }
                    Ok((key, _, Err(e))) => {
                        ledger.lock().fail(format!("the customer's message {key} had no answer: {e}"));
                    }
                    Err(e) => ledger.lock().fail(format!("a send task failed: {e}")),
                }
            }
            () = sleep_until(deadline.into()) => {
                if gave_up {
                    break;
                }
                ledger.lock().fail(format!(
                    "not resolved within {:?} of the login (the customer resolved it)",
                    ctx.args.patience
                ));
                give_up(&client, &chat).await;
                // Reads on until the resolution's entry, so that every message stored
                // before it is received (or counted lost).
                gave_up = true;
                next_send = None;
                deadline = Instant::now() + GIVE_UP_DRAIN;
            }
        }
    }
    if let Some(sending) = sending {
        let _ = sending.await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close()).await;
    visit
}

/// The customer's socket, in their chat's room from its first entry (the `joined`
/// answer is read by the visit's loop).
async fn open(client: &Client, chat: &str) -> Result<Socket, Error> {
    let mut socket = client.connect().await?;
    socket
        .send(&ClientFrame::JoinChat {
            chat_id: chat.to_string(),
            after_seq: Some(0),
        })
        .await?;
    Ok(socket)
}

/// A customer who leaves without being served resolves their chat, so that it does not
/// hold an officer's slot or wait in the queue for ever.
async fn give_up(client: &Client, chat: &str) {
    let _ = client.resolve(chat).await;
}

enum Step {
    Go,
    /// Send message `k` at this time.
    Send(Instant, u32),
    Resolved,
}

/// `login`: when the login started, and when its answer arrived by the wall clock.
fn on_frame(
    ctx: &Ctx,
    i: usize,
    text: &str,
    at: Instant,
    login: (Instant, chatcore::Timestamp),
    last_seq: &mut u64,
    visit: &mut Visit,
) -> Step {
    let ledger = &ctx.ledgers[i];
    let Some(frame) = frames::parse(text) else {
        ledger
            .lock()
            .fail(format!("a frame that is not the contract's: {text}"));
        return Step::Go;
    };
    match frame.kind.as_ref() {
        "joined" => {
            ledger.lock().joined[0] = Some(at);
            // The first message goes as soon as the customer is in the room.
            Step::Send(at, 1)
        }
        "new_message" => match frame.message {
            Some(message) => on_message(ctx, i, &message, at, login, last_seq, visit),
            None => Step::Go,
        },
        "queue_position" => {
            visit.queue_positions += 1;
            Step::Go
        }
        "error" => {
            let code = frame.code.as_deref().unwrap_or("?");
            ledger
                .lock()
                .fail(format!("an error frame on the customer's socket: {code}"));
            Step::Go
        }
        _ => Step::Go,
    }
}

fn on_message(
    ctx: &Ctx,
    i: usize,
    message: &FrameMessage<'_>,
    at: Instant,
    (start, answered_at): (Instant, chatcore::Timestamp),
    last_seq: &mut u64,
    visit: &mut Visit,
) -> Step {
    if message.seq <= *last_seq {
        visit.duplicates += 1;
        return Step::Go;
    }
    if message.seq != *last_seq + 1 {
        visit.gaps += 1;
    }
    *last_seq = message.seq;
    let mut chat = ctx.ledgers[i].lock();
    match message.sender_type.as_ref() {
        "system" => {
            let Some(event) = &message.event else {
                return Step::Go;
            };
            match event.kind.as_ref() {
                "assigned" | "claimed" => {
                    let officer = event.officer_id.as_deref().unwrap_or_default();
                    chat.assignment_entries.push(officer.to_string());
                    if chat.assigned_seen.is_none() {
                        chat.assigned_seen = Some(at);
                        visit.assigned = Some((at.saturating_duration_since(start), false));
                        visit.answered_pending_when_assigned = message
                            .created_at
                            .is_some_and(|stored| stored <= answered_at);
                    }
                    Step::Go
                }
                "resolved" => {
                    chat.resolved_seen = true;
                    Step::Resolved
                }
                other => {
                    chat.fail(format!("an unexpected change of the chat: {other}"));
                    Step::Go
                }
            }
        }
        "officer" => {
            let Some(key) = message.client_message_id.as_deref() else {
                return Step::Go;
            };
            if let Some(latency) = chat.received(Side::Customer, key, message.seq, at) {
                visit.to_customer.push(latency);
            }
            match frames::message_number(key) {
                Some(('o', k)) if k < chat.rounds => Step::Send(at + draw(ctx.args.think), k + 1),
                _ => Step::Go,
            }
        }
        _ => Step::Go,
    }
}
