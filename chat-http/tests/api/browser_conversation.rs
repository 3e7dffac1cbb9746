//! The conversation view of both pages (issue 18) in real headless browsers against the
//! real server: a send that fails is kept and delivered once when the server is back
//! (and a refusal is said and not retried), an empty send says so, day separators and
//! relative times, typing both ways, read marks only for what was seen, and "Seen".

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatcore::{
    ChatService, CustomerId, CustomerLogin, ManualClock, SendMessage, ServiceConfig, Timestamp,
};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{
    click, count, driver, eventually, fill, js, login_customer, login_officer, screenshot, send,
    text_of, wait_text,
};
use crate::helpers::{Options, PASSWORD, TestApp, spawn_app};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The text of the message "Seen" stands under, or null.
const SEEN_UNDER: &str = "const s = document.querySelector('.messages .seen');
     return s ? s.closest('li').querySelector('.content').textContent : null;";

/// An officer "alice" called Alice.
async fn with_alice(app: &TestApp) {
    app.create_officer(
        app.admin(),
        json!({ "id": "alice", "password": PASSWORD, "displayName": "Alice" }),
    )
    .await
    .expect(201);
}

/// The chat's messages as stored, (sender type, content), in seq order.
async fn stored(app: &TestApp, token: &str, chat: &str) -> Vec<(String, String)> {
    let page = app
        .messages(Some(token), chat, "limit=1000")
        .await
        .expect(200);
    page.as_array()
        .expect("a list")
        .iter()
        .map(|m| {
            (
                m["senderType"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The customer's messages as stored, in order.
async fn customer_said(app: &TestApp, token: &str, chat: &str) -> Vec<String> {
    stored(app, token, chat)
        .await
        .into_iter()
        .filter(|(who, _)| who == "customer")
        .map(|(_, text)| text)
        .collect()
}

/// The contents of the stored messages the page shows, in display order.
async fn shown_contents(b: &Client) -> Vec<String> {
    let v = js(
        b,
        "return [...document.querySelectorAll('.messages li[data-seq] .content')].map(e => e.textContent);",
    )
    .await;
    serde_json::from_value(v).expect("strings")
}

/// The chat as the server has it now.
async fn chat_now(app: &TestApp, token: &str, chat: &str) -> Value {
    app.chat(Some(token), chat).await.expect(200)
}

/// The one chat in the queue.
async fn queued_chat(app: &TestApp, officer: &str) -> String {
    app.queue(Some(officer)).await.expect(200)[0]["id"]
        .as_str()
        .expect("a queued chat")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_while_the_server_is_down_is_delivered_once_when_it_is_back() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::open();
    options.db = Some(dir.path().join("chat.db"));
    options.max_message_chars = Some(200);
    let app = spawn_app(options.clone()).await;
    let officer = app.new_officer("alice").await;
    let customer = driver.browser("customer").await;
    login_customer(&customer, &app, "cust-1").await;
    let chat = queued_chat(&app, &officer).await;
    app.claim(Some(&officer), "alice", &chat).await.expect(200);
    send(&customer, "before the drop").await;
    eventually("the first message stored", || async {
        (customer_said(&app, &officer, &chat).await == ["before the drop"]).then_some(())
    })
    .await;

    // The server goes away; the customer writes two messages meanwhile. Each leaves the
    // box at once and waits in the timeline, marked as not sent, in order.
    let addr = app.addr;
    app.stop().await;
    wait_text(&customer, ".connection", "Reconnecting").await;
    send(&customer, "first while down").await;
    wait_text(&customer, ".messages li.pending", "Not sent").await;
    let boxed = js(
        &customer,
        "return document.querySelector('#message-input').value;",
    )
    .await;
    assert_eq!(boxed, "", "the text left the box");
    send(&customer, "second while down").await;
    eventually("both to wait, in order", || async {
        let v = js(
            &customer,
            "return [...document.querySelectorAll('.messages li.pending.queued .content')].map(e => e.textContent);",
        )
        .await;
        (v == json!(["first while down", "second while down"])).then_some(())
    })
    .await;
    screenshot(&customer, "customer-not-sent").await;

    // Back on the same address and database: both are sent by themselves, once each.
    options.bind = Some(addr);
    let app = spawn_app(options).await;
    wait_text(&customer, ".connection", "Live").await;
    eventually("the waiting messages to be delivered", || async {
        (count(&customer, ".messages li.pending").await == 0).then_some(())
    })
    .await;
    assert_eq!(
        customer_said(&app, &officer, &chat).await,
        ["before the drop", "first while down", "second while down"],
        "each stored once, in order"
    );

    // The next message is a message of its own, not appended to anything.
    send(&customer, "after the return").await;
    eventually("the next message to be stored", || async {
        (customer_said(&app, &officer, &chat).await.len() == 4).then_some(())
    })
    .await;
    assert_eq!(
        customer_said(&app, &officer, &chat).await,
        [
            "before the drop",
            "first while down",
            "second while down",
            "after the return"
        ]
    );
    eventually("the page to show each once", || async {
        let shown = shown_contents(&customer).await;
        (shown
            == [
                "before the drop",
                "first while down",
                "second while down",
                "after the return",
            ])
        .then_some(())
    })
    .await;

    // A refusal that a retry cannot change (too long for this server) is said, kept for
    // the person to decide, and not retried by itself.
    send(&customer, &"x".repeat(300)).await;
    let refused = wait_text(&customer, ".messages li.pending.failed", "Not sent").await;
    assert!(!refused.contains("connection is back"), "{refused}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&customer, ".messages li.pending.failed").await, 1);
    assert_eq!(customer_said(&app, &officer, &chat).await.len(), 4);
    click(&customer, ".messages li.pending.failed button.discard").await;
    eventually("the refused message to be discarded", || async {
        (count(&customer, ".messages li.pending").await == 0).then_some(())
    })
    .await;
    customer.close().await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_send_says_so_and_sends_nothing() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::open()).await;
    let customer = driver.browser("customer").await;
    login_customer(&customer, &app, "cust-1").await;
    send(&customer, "   \n  ").await;
    let said = wait_text(&customer, ".composer-hint", "nothing to send").await;
    assert!(said.starts_with("Please"), "{said}");
    let role = js(
        &customer,
        "return document.querySelector('.composer-hint').getAttribute('role');",
    )
    .await;
    assert_eq!(role, "status", "announced to screen readers");
    // Enter does the same as the button.
    fill(&customer, "#message-input", "").await;
    customer
        .find(Locator::Css("#message-input"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&customer, ".messages li.message").await, 0);
    let (token, chat) = app.new_customer("cust-1").await;
    assert!(
        stored(&app, &token, &chat).await.is_empty(),
        "nothing was sent"
    );
    // Typing clears the note.
    fill(&customer, "#message-input", "Hello").await;
    eventually("the note to go", || async {
        text_of(&customer, ".composer-hint")
            .await?
            .is_empty()
            .then_some(())
    })
    .await;
    customer.close().await.unwrap();
    app.stop().await;
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap();
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap();
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// "Mon 23 Nov 2026" for an instant, in the browser's time zone (`offset_min` as
/// `Date.getTimezoneOffset` gives it).
fn day_label(ms: i64, offset_min: i64) -> String {
    let days = (ms - offset_min * 60_000).div_euclid(DAY_MS);
    let (y, m, d) = civil(days);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][m as usize - 1];
    format!("{weekday} {d} {month} {y}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_has_day_separators_and_relative_times() {
    let Some(driver) = driver() else { return };
    // The customer wrote three days ago and yesterday: written through the engine on a
    // clock set back, into the database the server then opens.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let now = Timestamp::now().unix_millis();
    let three_days_ago = now - 3 * DAY_MS;
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        three_days_ago,
    )));
    let mut config = ServiceConfig::default();
    config.clock = clock.clone();
    let service = ChatService::open_sqlite(&db, config).expect("open the database");
    let customer_id = CustomerId::parse("cust-1").unwrap();
    let session = service
        .customer_login(CustomerLogin {
            customer_id: customer_id.clone(),
            officer_id: None,
            signature: None,
        })
        .await
        .expect("log in");
    let actor = service
        .act_as_customer(&customer_id, Some(session.chat.id))
        .await
        .unwrap();
    service
        .send_message(&actor, session.chat.id, SendMessage::text("three days ago"))
        .await
        .unwrap();
    clock.advance(Duration::from_millis(u64::try_from(2 * DAY_MS).unwrap()));
    service
        .send_message(&actor, session.chat.id, SendMessage::text("yesterday"))
        .await
        .unwrap();
    service.close().await.unwrap();
    drop(service);

    let mut options = Options::open();
    options.db = Some(db);
    let app = spawn_app(options).await;
    let customer = driver.browser("customer").await;
    login_customer(&customer, &app, "cust-1").await;
    wait_text(&customer, ".messages", "yesterday").await;
    send(&customer, "today").await;
    eventually("today's message stored", || async {
        (count(&customer, ".messages li.message[data-seq]").await == 3).then_some(())
    })
    .await;

    // One separator before the first entry of each day, and nothing else in between.
    let offset = js(
        &customer,
        &format!("return new Date({three_days_ago}).getTimezoneOffset();"),
    )
    .await
    .as_i64()
    .unwrap();
    // (Newer ICU data writes September "Sept": either is right.)
    let timeline = js(
        &customer,
        "return [...document.querySelectorAll('.messages ol > li')].map(li =>
           li.classList.contains('day-separator') ? 'day: ' + li.textContent.replace('Sept', 'Sep')
           : 'said: ' + li.querySelector('.content').textContent);",
    )
    .await;
    let expected = json!([
        format!("day: {}", day_label(three_days_ago, offset)),
        "said: three days ago",
        "day: Yesterday",
        "said: yesterday",
        "day: Today",
        "said: today",
    ]);
    assert_eq!(timeline, expected);

    // Times: relative while recent, the clock time otherwise, the full date in a title.
    let times = js(
        &customer,
        "return [...document.querySelectorAll('.messages li.message time')].map(t =>
           [t.getAttribute('datetime'), t.getAttribute('title'), t.querySelector('.ago').textContent]);",
    )
    .await;
    let times = times.as_array().unwrap();
    assert_eq!(times.len(), 3);
    for t in times {
        assert!(
            t[0].as_str().unwrap().ends_with('Z'),
            "an ISO datetime: {t}"
        );
        let title = t[1].as_str().unwrap();
        assert!(
            title.contains(&civil(three_days_ago.div_euclid(DAY_MS)).0.to_string()),
            "the full date: {t}"
        );
    }
    for old in &times[..2] {
        let words = old[2].as_str().unwrap();
        assert!(
            words.contains(':') && !words.contains("ago") && words != "just now",
            "an older message shows its clock time: {old}"
        );
    }
    assert_eq!(times[2][2], "just now");

    // Relative times move on by themselves (refreshed every 30 s, and when the page
    // becomes visible again, which this test uses rather than wait).
    js(
        &customer,
        "const real = Date.now.bind(Date); Date.now = () => real() + 5 * 60 * 1000;
         document.dispatchEvent(new Event('visibilitychange')); return null;",
    )
    .await;
    wait_text(
        &customer,
        ".messages li.message:last-child time",
        "5 min ago",
    )
    .await;

    // The live log wraps a plain list: no list item is orphaned.
    let roles = js(
        &customer,
        "const log = document.querySelector('[role=log]');
         return [log.tagName, log.classList.contains('messages'), log.querySelector('ol').getAttribute('role'),
                 [...log.querySelectorAll('li')].every(li => li.parentElement.tagName === 'OL')];",
    )
    .await;
    assert_eq!(roles, json!(["DIV", true, null, true]));
    screenshot(&customer, "customer-day-separators").await;
    customer.close().await.unwrap();
    app.stop().await;
}

/// Alice (in a console) has claimed the chat of cust-1 (in the customer page), and
/// each page shows it.
async fn talking(driver: &crate::browser::Driver, app: &TestApp) -> (Client, Client) {
    let alice = driver.browser("alice").await;
    let customer = driver.browser("customer").await;
    login_officer(&alice, app, "alice").await;
    login_customer(&customer, app, "cust-1").await;
    wait_text(&alice, "#queue", "cust-1").await;
    click(&alice, "#queue li[data-chat-id] button.claim").await;
    wait_text(&alice, "#chat-title", "Chat with cust-1").await;
    wait_text(&customer, "#chat-status", "Alice has joined").await;
    (alice, customer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_shows_on_the_other_side_and_never_sticks() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::open()).await;
    with_alice(&app).await;
    let (alice, customer) = talking(&driver, &app).await;

    // The customer types without sending: the console says so, then forgets it by
    // itself (the server's expiresInMs) although no message came.
    fill(&customer, "#message-input", "I am wondering whether").await;
    wait_text(&alice, ".typing", "cust-1 is typing…").await;
    let seen = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        text_of(&alice, ".typing").await.unwrap(),
        "cust-1 is typing…",
        "shown for a while"
    );
    eventually("the indicator to go by itself", || async {
        text_of(&alice, ".typing").await?.is_empty().then_some(())
    })
    .await;
    assert!(
        seen.elapsed() < Duration::from_secs(12),
        "{:?}",
        seen.elapsed()
    );

    // Alice types: the customer sees her name; her message hides it at once.
    fill(&alice, "#message-input", "Let me check your file").await;
    wait_text(&customer, ".typing", "Alice is typing…").await;
    click(&alice, ".composer button[type=submit]").await;
    wait_text(&customer, ".messages", "Let me check your file").await;
    assert_eq!(
        text_of(&customer, ".typing").await.unwrap(),
        "",
        "gone with the message, not seconds later"
    );
    for b in [alice, customer] {
        b.close().await.unwrap();
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_marks_follow_what_is_seen_and_the_customer_sees_seen() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::open()).await;
    with_alice(&app).await;
    let officer = app.login_officer("alice").await;
    let (alice, customer) = talking(&driver, &app).await;
    let chat_id = alices_chat(&app, &officer).await;
    js(
        &customer,
        "window.reads = []; document.addEventListener('chat:read', e => window.reads.push(e.detail)); return null;",
    )
    .await;

    // A burst of messages seen at once: one mark or two, not one each, moving forward.
    let mut last = 0;
    for i in 1..=5 {
        last = app.say(&officer, &chat_id, &format!("burst {i}")).await["seq"]
            .as_u64()
            .unwrap();
    }
    eventually("the customer's mark to reach the burst", || async {
        (chat_now(&app, &officer, &chat_id).await["customerLastReadSeq"] == last).then_some(())
    })
    .await;
    let reads = js(&customer, "return window.reads;").await;
    let reads = reads.as_array().unwrap();
    assert!(!reads.is_empty() && reads.len() < 5, "coalesced: {reads:?}");
    let seqs: Vec<u64> = reads.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "forward only: {seqs:?}"
    );
    assert_eq!(*seqs.last().unwrap(), last);
    assert!(reads.iter().all(|r| r["chatId"] == chat_id.as_str()));

    // A hidden page reads nothing; shown again, it does.
    js(
        &customer,
        "Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
         document.dispatchEvent(new Event('visibilitychange')); return null;",
    )
    .await;
    let hidden = app.say(&officer, &chat_id, "while hidden").await["seq"]
        .as_u64()
        .unwrap();
    wait_text(&customer, ".messages", "while hidden").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        chat_now(&app, &officer, &chat_id).await["customerLastReadSeq"],
        last
    );
    js(
        &customer,
        "delete document.visibilityState; document.dispatchEvent(new Event('visibilitychange')); return null;",
    )
    .await;
    eventually("the mark once the page is seen", || async {
        (chat_now(&app, &officer, &chat_id).await["customerLastReadSeq"] == hidden).then_some(())
    })
    .await;

    // A message below the fold is not read until it is scrolled to.
    for i in 1..=30 {
        app.say(&officer, &chat_id, &format!("line {i}")).await;
    }
    wait_text(&customer, ".messages li:last-child", "line 30").await;
    js(
        &customer,
        "document.querySelector('.messages').scrollTop = 0; return null;",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let folded = app.say(&officer, &chat_id, "below the fold").await["seq"]
        .as_u64()
        .unwrap();
    wait_text(&customer, ".messages", "below the fold").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mark = chat_now(&app, &officer, &chat_id).await["customerLastReadSeq"]
        .as_u64()
        .unwrap();
    assert!(mark < folded, "not on screen, not read: {mark} vs {folded}");
    js(
        &customer,
        "const log = document.querySelector('.messages'); log.scrollTop = log.scrollHeight; return null;",
    )
    .await;
    eventually("the mark once scrolled to", || async {
        (chat_now(&app, &officer, &chat_id).await["customerLastReadSeq"] == folded).then_some(())
    })
    .await;

    // "Seen": under the customer's newest message the officer has read, moving on.
    send(&customer, "Did you get my papers?").await;
    wait_text(&alice, ".messages", "Did you get my papers?").await;
    eventually("Seen under the first question", || async {
        (js(&customer, SEEN_UNDER).await == "Did you get my papers?").then_some(())
    })
    .await;
    send(&customer, "And the payslips?").await;
    eventually("Seen to move on", || async {
        (js(&customer, SEEN_UNDER).await == "And the payslips?").then_some(())
    })
    .await;
    // At the foot of the timeline, "Seen" is in view, not just below it.
    let seen_in_view =
        "const s = document.querySelector('.messages .seen').getBoundingClientRect();
         const log = document.querySelector('.messages').getBoundingClientRect();
         return s.top >= log.top - 1 && s.bottom <= log.bottom + 1;";
    eventually("Seen in view", || async {
        (js(&customer, seen_in_view).await == json!(true)).then_some(())
    })
    .await;
    assert_eq!(count(&customer, ".messages .seen").await, 1);
    // Read from the chat's officer mark on loading too.
    customer.refresh().await.unwrap();
    wait_text(&customer, ".connection", "Live").await;
    eventually("Seen after a reload", || async {
        (js(&customer, SEEN_UNDER).await == "And the payslips?").then_some(())
    })
    .await;
    eventually("Seen in view after a reload", || async {
        (js(&customer, seen_in_view).await == json!(true)).then_some(())
    })
    .await;
    // The officer sees the same for theirs: the customer has read "below the fold".
    eventually("Seen in the console", || async {
        (js(&alice, SEEN_UNDER).await == "below the fold").then_some(())
    })
    .await;
    screenshot(&customer, "customer-seen").await;
    for b in [alice, customer] {
        b.close().await.unwrap();
    }
    app.stop().await;
}

/// A read mark made while the customer's socket was away is not replayed with the
/// messages: the page reads the chat again when it rejoins, and shows "Seen". The mark
/// is made on the database while the server is down, so that the page cannot hear it
/// live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seen_is_read_again_after_a_reconnect() {
    let Some(driver) = driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let mut options = Options::open();
    options.db = Some(db.clone());
    let app = spawn_app(options.clone()).await;
    let officer = app.new_officer("alice").await;
    let customer = driver.browser("customer").await;
    login_customer(&customer, &app, "cust-1").await;
    let chat = queued_chat(&app, &officer).await;
    app.claim(Some(&officer), "alice", &chat).await.expect(200);
    send(&customer, "Are you there?").await;
    eventually("the question stored", || async {
        (customer_said(&app, &officer, &chat).await == ["Are you there?"]).then_some(())
    })
    .await;
    let seq = chat_now(&app, &officer, &chat).await["lastSeq"]
        .as_u64()
        .expect("lastSeq");
    assert_eq!(count(&customer, ".messages .seen").await, 0);

    // The server goes; alice's mark is made on the database meanwhile.
    let addr = app.addr;
    app.stop().await;
    wait_text(&customer, ".connection", "Reconnecting").await;
    let service = ChatService::open_sqlite(&db, ServiceConfig::default()).expect("open");
    let alice = service
        .act_as_officer(&chatcore::OfficerId::parse("alice").unwrap())
        .await
        .unwrap();
    let chat_id = chatcore::ChatId::parse(&chat).expect("chat id");
    service.mark_read(&alice, chat_id, seq).await.expect("mark");
    service.close().await.expect("close");
    drop(service);

    // Back: the page rejoins, reads the chat again, and shows "Seen".
    options.bind = Some(addr);
    let app = spawn_app(options).await;
    wait_text(&customer, ".connection", "Live").await;
    eventually("Seen after the reconnect", || async {
        (js(&customer, SEEN_UNDER).await == "Are you there?").then_some(())
    })
    .await;
    customer.close().await.unwrap();
    app.stop().await;
}

/// The id of alice's one open chat.
async fn alices_chat(app: &TestApp, officer: &str) -> String {
    let open = app.officer_chats(Some(officer), "alice").await.expect(200);
    open[0]["id"].as_str().expect("alice's chat").to_string()
}
