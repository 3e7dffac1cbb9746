//! Another transport on the same core: a line-based chat over plain TCP. Each connection
//! logs in as an officer or a customer and gets the same real-time events a WebSocket
//! client of chat-http gets, from the same `ChatService` calls. Nothing here decides who
//! may do what; chatcore refuses what the contract refuses.
//!
//! Run: `cargo run --example tcp_chat -- [PORT] [OFFICER,...] [DB]` (defaults: a free
//! port; officers alice,bob; a SQLite file in the temporary directory), then e.g.
//! `nc 127.0.0.1 PORT` and type:
//!
//! ```text
//! login officer alice          login customer cust-1
//! queue                        claim <chatId>
//! join <chatId> [afterSeq]     say <chatId> <text>
//! leave <chatId>               quit
//! ```

use std::collections::HashMap;

use chatcore::{
    Actor, ChatId, ChatService, CustomerId, CustomerLogin, Event, NewOfficer, OfficerId, RecvError,
    SendMessage, ServiceConfig, Subscription,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let officers = args.next().unwrap_or_else(|| "alice,bob".into());

    let path = args.next().map(Into::into).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("chatcore-tcp-{}.db", std::process::id()))
    });
    let service = ChatService::open_sqlite(&path, ServiceConfig::default())?;
    for id in officers.split(',') {
        let new = NewOfficer {
            id: OfficerId::parse(id)?,
            password: None,
            display_name: None,
            capacity: None,
        };
        service.create_officer(&Actor::Anonymous, new).await?;
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(Connection::serve(service.clone(), socket));
    }
}

/// One client: a reader loop for commands, a writer task for lines, and one forwarding
/// task per subscription, all writing into one queue.
struct Connection {
    service: ChatService,
    actor: Actor,
    out: mpsc::Sender<String>,
    rooms: HashMap<ChatId, JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Connection {
    async fn serve(service: ChatService, socket: TcpStream) {
        let (read, mut write) = socket.into_split();
        // Bounded: a client that stops reading is cut off instead of growing memory.
        let (out, mut lines) = mpsc::channel::<String>(256);
        let writer = tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                if write
                    .write_all(format!("{line}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let mut conn = Connection {
            service,
            actor: Actor::Anonymous,
            out,
            rooms: HashMap::new(),
            background: Vec::new(),
        };
        let mut input = BufReader::new(read).lines();
        while let Ok(Some(line)) = input.next_line().await {
            if line.trim() == "quit" {
                break;
            }
            let reply = match conn.handle(line.trim()).await {
                Ok(reply) => reply,
                Err(e) => format!("error {} {e}", e.code()),
            };
            if conn.out.send(reply).await.is_err() {
                break;
            }
        }
        for task in conn.rooms.into_values().chain(conn.background) {
            task.abort();
        }
        drop(conn.out);
        let _ = writer.await;
    }

    async fn handle(&mut self, line: &str) -> Result<String, chatcore::Error> {
        let mut words = line.splitn(3, ' ');
        let command = words.next().unwrap_or_default();
        let arg = words.next().unwrap_or_default();
        let rest = words.next().unwrap_or_default();
        match command {
            "login" if arg == "officer" => {
                let session = self.service.officer_login(rest, None).await?;
                self.actor = self.service.authenticate(&session.token).await?.actor;
                // Officers get queue events and their own assignments without asking.
                let queue = self.service.watch_queue(&self.actor)?;
                let mine = self.service.watch_officer(&self.actor)?;
                self.background.push(forward(queue, self.out.clone()));
                self.background.push(forward(mine, self.out.clone()));
                Ok(format!("ok officer {rest}"))
            }
            "login" if arg == "customer" => {
                let login = self
                    .service
                    .customer_login(CustomerLogin {
                        customer_id: CustomerId::parse(rest)?,
                        officer_id: None,
                        signature: None,
                    })
                    .await?;
                self.actor = self.service.authenticate(&login.token).await?.actor;
                Ok(format!("ok customer {rest} chat {}", login.chat.id))
            }
            "queue" => {
                let queue = self.service.queue(&self.actor).await?;
                let mut reply = format!("queue {}", queue.len());
                for chat in queue {
                    reply.push_str(&format!("\npending {} {}", chat.id, chat.customer_id));
                }
                Ok(reply)
            }
            "claim" => {
                let Actor::Officer(me) = &self.actor else {
                    return Err(chatcore::Error::Unauthorized);
                };
                let chat = self
                    .service
                    .claim(&self.actor, me, ChatId::parse(arg)?)
                    .await?;
                Ok(format!("claimed {}", chat.id))
            }
            "join" => {
                let chat = ChatId::parse(arg)?;
                let after = rest.parse().ok();
                let mut feed = self.service.watch_chat(&self.actor, chat, after).await?;
                let out = self.out.clone();
                // The reply goes out before the first message: send it from the task.
                let task = tokio::spawn(async move {
                    if out.send(format!("joined chat:{chat}")).await.is_err() {
                        return;
                    }
                    loop {
                        let (line, last) = match feed.next().await {
                            Ok(Some(m)) => {
                                let text = m.content.replace(['\n', '\r'], " ");
                                let line =
                                    format!("msg {} #{} {}: {text}", m.chat_id, m.seq, m.sender_id);
                                (line, false)
                            }
                            Ok(None) => return,
                            // The reader lost the chat (another officer claimed it): the
                            // feed ends here, before anything more of the chat.
                            Err(e) => (format!("left chat:{chat} error {} {e}", e.code()), true),
                        };
                        if out.send(line).await.is_err() || last {
                            return;
                        }
                    }
                });
                if let Some(old) = self.rooms.insert(chat, task) {
                    old.abort();
                }
                Ok(String::from("ok"))
            }
            "leave" => {
                if let Some(task) = self.rooms.remove(&ChatId::parse(arg)?) {
                    task.abort();
                }
                Ok(format!("left chat:{arg}"))
            }
            "say" => {
                let sent = self
                    .service
                    .send_message(&self.actor, ChatId::parse(arg)?, SendMessage::text(rest))
                    .await?;
                Ok(format!("sent #{}", sent.message.seq))
            }
            _ => Ok(format!("error unknown_command {command:?}")),
        }
    }
}

/// Forwards queue and assignment events as lines until the client goes away.
fn forward(mut events: Subscription, out: mpsc::Sender<String>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let envelope = match events.recv().await {
                Ok(envelope) => envelope,
                // Fell behind: say so; the client re-reads the queue to resync.
                Err(RecvError::Lagged(n)) => {
                    if out
                        .send(format!("lagged {n} (send `queue` to resync)"))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let line = match envelope.event() {
                Event::QueueChatCreated { chat } => {
                    format!("queue_created {} {}", chat.id, chat.customer_id)
                }
                Event::QueueChatClaimed { chat } => format!(
                    "queue_claimed {} {}",
                    chat.id,
                    chat.assigned_officer_id.as_ref().map_or("", |o| o.as_str())
                ),
                Event::ChatAssigned { chat } => format!("assigned {}", chat.id),
                _ => continue,
            };
            if out.send(line).await.is_err() {
                return;
            }
        }
    })
}
