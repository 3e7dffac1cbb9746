//! An event-driven bot on chatcore: a bot officer watches the shared queue, claims each
//! new chat while it has capacity, and greets the customer. Chats over its limit stay in
//! the queue for human officers.
//!
//! Run: `cargo run --example greeter_bot [DB]`. It simulates five customers arriving.

use std::time::Duration;

use chatcore::{
    Actor, ChatService, ChatsFilter, CustomerId, CustomerLogin, Error, Event, NewOfficer,
    OfficerId, RecvError, SendMessage, ServiceConfig,
};
use tokio::sync::mpsc;

const BOT: &str = "greeter-bot";
const CAPACITY: usize = 3;
const CUSTOMERS: usize = 5;

/// What the bot did with one queue event.
enum Outcome {
    Greeted(String),
    AtCapacity(String),
    LostRace(String),
}

/// Follows the queue (`queue`, subscribed before the first customer can arrive) and
/// claims new chats until it holds `capacity` of them.
async fn run_bot(
    service: ChatService,
    bot: OfficerId,
    capacity: usize,
    mut queue: chatcore::Subscription,
    report: mpsc::UnboundedSender<Outcome>,
) -> Result<(), Error> {
    let actor = Actor::Officer(bot.clone());
    let mut held = service
        .officer_chats(&actor, &bot, ChatsFilter::Open)
        .await?
        .len();
    loop {
        let chat = match queue.recv().await {
            Ok(envelope) => match envelope.event() {
                Event::QueueChatCreated { chat } => chat.clone(),
                _ => continue,
            },
            // Fell behind the bus: the queue itself is the truth, take its oldest chat.
            Err(RecvError::Lagged(_)) => match service.queue(&actor).await?.into_iter().next() {
                Some(chat) => chat,
                None => continue,
            },
            Err(RecvError::Closed) => return Ok(()),
        };
        let customer = chat.customer_id.to_string();
        if held >= capacity {
            let _ = report.send(Outcome::AtCapacity(customer));
            continue;
        }
        match service.claim(&actor, &bot, chat.id).await {
            Ok(_) => {
                held += 1;
                let greeting = format!(
                    "Hello {customer}! I am the assistant; an officer will join you shortly."
                );
                service
                    .send_message(&actor, chat.id, SendMessage::text(greeting))
                    .await?;
                let _ = report.send(Outcome::Greeted(customer));
            }
            // A human officer was faster: fine, that is what the atomic claim is for.
            Err(Error::AlreadyAssigned(_)) => {
                let _ = report.send(Outcome::LostRace(customer));
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).map(Into::into).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("chatcore-bot-{}.db", std::process::id()))
    });
    let service = ChatService::open_sqlite(&path, ServiceConfig::default())?;
    let bot = OfficerId::parse(BOT)?;
    service
        .create_officer(
            &Actor::Anonymous,
            NewOfficer {
                id: bot.clone(),
                password: None,
                display_name: Some("Greeter".into()),
                capacity: None,
            },
        )
        .await?;

    let (tx, mut outcomes) = mpsc::unbounded_channel();
    // Subscribed here, before any customer logs in: a task's first poll may come after
    // the first chats were created, and their events would be missed.
    let queue = service.watch_queue(&Actor::Officer(bot.clone()))?;
    let bot_task = tokio::spawn(run_bot(service.clone(), bot, CAPACITY, queue, tx));

    for i in 1..=CUSTOMERS {
        let login = service
            .customer_login(CustomerLogin {
                customer_id: CustomerId::parse(format!("customer-{i}"))?,
                officer_id: None,
                signature: None,
            })
            .await?;
        let customer = service.authenticate(&login.token).await?.actor;
        match tokio::time::timeout(Duration::from_secs(10), outcomes.recv()).await? {
            Some(Outcome::Greeted(who)) => {
                let mut feed = service
                    .watch_chat(&customer, login.chat.id, Some(0))
                    .await?;
                // The claim's system entry ("Greeter took the chat"), then the greeting.
                let took = feed.next().await?.ok_or("feed closed")?;
                let greeting = feed.next().await?.ok_or("feed closed")?;
                println!("{who} was greeted: {} ({})", greeting.content, took.content);
            }
            Some(Outcome::AtCapacity(who)) => {
                println!("{who} waits in the queue (bot at capacity)")
            }
            Some(Outcome::LostRace(who)) => println!("{who} was claimed by someone else"),
            None => return Err("the bot stopped".into()),
        }
    }

    let queue = service.queue(&Actor::Admin).await?;
    println!(
        "the bot holds {CAPACITY} chats; {} wait in the queue",
        queue.len()
    );
    bot_task.abort();
    service.close().await?;
    let _ = std::fs::remove_file(&path);
    Ok(())
}
