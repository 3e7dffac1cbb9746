//! A bot in another process, talking to a running chat-http server with `chat-client`
//! (the way a Rust service uses a remote server, where `greeter_bot` embeds the engine).
//! It logs in as an officer, watches the shared queue across reconnects, claims each
//! waiting chat and greets the customer. The greeting carries a `clientMessageId`, so a
//! retry after a lost answer stores it once.
//!
//! Run a server (`cargo run -p chat-http -- --db chat.db`), then
//! `cargo run --example remote_bot -- http://127.0.0.1:3001 [GREETINGS]`: it stops after
//! GREETINGS greetings (default: never). The server must be in open mode (the bot creates
//! its own officer) or already know the officer `remote-bot` without a password.

use chat_client::{Client, Error, Event, ServerFrame, Watch, WatchEvent};

const BOT: &str = "remote-bot";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:3001".into());
    let limit: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);

    let anonymous = Client::new(&server)?;
    match anonymous
        .create_officer(BOT, None, Some("Remote bot"))
        .await
    {
        Ok(_) => println!("created officer {BOT}"),
        Err(e) if e.code() == "officer_exists" => {}
        Err(e) => return Err(e),
    }
    let session = anonymous.officer_login(BOT, None).await?;
    let bot = anonymous.with_token(session.token);

    let mut greeted = 0;
    // A chat can come twice: in the queue read after a join and as the event of its
    // arrival, when it arrives while the queue is read. Each is taken once.
    let mut seen = std::collections::HashSet::new();
    let mut watch = Watch::queue(bot.clone());
    while greeted < limit {
        let waiting = match watch.next().await? {
            // (Re)joined: nothing is missed from here on. The queue has no replay, so
            // read it to catch what arrived while the bot was away.
            WatchEvent::Joined { .. } => {
                println!("watching the queue");
                bot.queue().await?.into_iter().map(|c| c.id).collect()
            }
            WatchEvent::Event(incoming) => match incoming.frame {
                ServerFrame::Event(Event::QueueChatCreated { chat }) => vec![chat.id],
                _ => continue,
            },
            WatchEvent::Reconnecting { reason, delay } => {
                println!("{reason}; reconnecting in {} ms", delay.as_millis());
                continue;
            }
            _ => continue,
        };
        for chat in waiting {
            if !seen.insert(chat) {
                continue;
            }
            let chat = chat.to_string();
            match bot.claim(BOT, &chat).await {
                Ok(claimed) => {
                    let greeting = format!("Hello {}, how can I help?", claimed.customer_id);
                    let key = format!("greeting-{chat}");
                    bot.send(&chat, &greeting, Some(&key)).await?;
                    println!("greeted {} in chat {chat}", claimed.customer_id);
                    greeted += 1;
                }
                // Another officer was faster: not an error for a bot.
                Err(e) if e.code() == "already_assigned" => println!("lost chat {chat}"),
                Err(e) => return Err(e),
            }
            if greeted >= limit {
                break;
            }
        }
    }
    Ok(())
}
