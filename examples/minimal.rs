//! The smallest complete embed of chatcore: a SQLite file, an officer, a customer, a
//! claim, two messages each way through real-time feeds, and the stored history.
//!
//! Run: `cargo run --example minimal [DB_PATH]` (default: a fresh file in the temp dir).

use chatcore::{
    Actor, ChatService, CustomerId, CustomerLogin, Event, MessagePage, NewOfficer, OfficerId,
    SendMessage, ServiceConfig,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).map(Into::into).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("chatcore-minimal-{}.db", std::process::id()))
    });
    // Open mode (no admin token): anyone may create officers. Production services set
    // `config.admin_token` and create officers as `Actor::Admin`.
    let service = ChatService::open_sqlite(&path, ServiceConfig::default())?;
    println!("store: {}", path.display());

    service
        .create_officer(
            &Actor::Anonymous,
            NewOfficer {
                id: OfficerId::parse("alice")?,
                password: None,
                display_name: Some("Alice".into()),
                capacity: None,
            },
        )
        .await?;
    // Transports authenticate a token into an Actor; an embedder that knows its user
    // could also build `Actor::Officer(id)` directly.
    let alice_login = service.officer_login("alice", None).await?;
    let alice = service.authenticate(&alice_login.token).await?.actor;
    println!("officer alice logged in");

    let mut queue = service.watch_queue(&alice)?;
    let customer_login = service
        .customer_login(CustomerLogin {
            customer_id: CustomerId::parse("cust-42")?,
            officer_id: None,
            signature: None,
        })
        .await?;
    let chat = customer_login.chat.id;
    let customer = service.authenticate(&customer_login.token).await?.actor;
    println!(
        "customer cust-42 logged in; chat is {}",
        customer_login.chat.status.as_str()
    );

    // Officers hear that the chat started (`chat_updated`), then that it waits in the
    // queue (`queue_chat_created`).
    loop {
        let event = queue.recv().await?;
        if let Event::QueueChatCreated { chat } = event.event() {
            println!("queue event: chat of {} is waiting", chat.customer_id);
            break;
        }
    }

    let claimed = service
        .claim(&alice, &OfficerId::parse("alice")?, chat)
        .await?;
    println!("alice claimed the chat; status {}", claimed.status.as_str());

    // Each side watches the chat from the start (afterSeq 0): replay, then live.
    let mut alice_feed = service.watch_chat(&alice, chat, Some(0)).await?;
    let mut customer_feed = service.watch_chat(&customer, chat, Some(0)).await?;
    // The claim wrote the timeline's first entry, a system one.
    let took = alice_feed.next().await?.ok_or("feed closed")?;
    println!("timeline #{}: {}", took.seq, took.content);
    customer_feed.next().await?.ok_or("feed closed")?;

    service
        .send_message(
            &customer,
            chat,
            SendMessage::text("Hello, is my loan approved?"),
        )
        .await?;
    let seen = alice_feed.next().await?.ok_or("feed closed")?;
    println!(
        "alice sees #{} from {}: {}",
        seen.seq, seen.sender_id, seen.content
    );
    let own = customer_feed.next().await?.ok_or("feed closed")?;
    println!("customer sees own #{}", own.seq);

    service
        .send_message(
            &alice,
            chat,
            SendMessage::text("Hi! Let me check that for you."),
        )
        .await?;
    let reply = customer_feed.next().await?.ok_or("feed closed")?;
    println!(
        "customer sees #{} from {}: {}",
        reply.seq, reply.sender_id, reply.content
    );

    let history = service
        .messages(&customer, chat, MessagePage::default())
        .await?;
    println!("history holds {} messages", history.len());
    service.close().await?;
    Ok(())
}
