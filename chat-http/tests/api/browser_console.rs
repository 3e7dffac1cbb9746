//! The officer console as an inbox (issue 18), in real headless browsers against the real
//! server: unread counts per chat and in the tab's title, previews of each chat's newest
//! entry (as text) with the time of its last activity and "My chats" re-ordered by it,
//! opt-in alerts remembered per browser, where the keyboard's focus goes at sign-in, and
//! the one sentence of a lost claim, with two officers racing in two browsers. Setup that
//! is not the point of a test goes through the REST API; what a person sees is read from
//! the page.

use std::time::Duration;

use axum::http::Method;
use fantoccini::Client;
use serde_json::{Value, json};

use crate::browser::{
    click, count, driver, eventually, js, login_officer, screenshot, text_of, wait_text,
};
use crate::browser_lifecycle::desk;
use crate::helpers::{Options, PASSWORD, TestApp};

async fn close(browsers: impl IntoIterator<Item = Client>) {
    for b in browsers {
        b.close().await.expect("close browser");
    }
}

/// A customer writes in their chat; returns the message's seq.
async fn say(app: &TestApp, token: &str, chat: &str, text: &str) -> u64 {
    app.say(token, chat, text).await["seq"]
        .as_u64()
        .expect("a seq")
}

/// What the row of `chat` in "My chats" says of its unread messages: the count the page
/// keeps on the row, and the badge's words ("" without a badge). None: no such row.
async fn unread(b: &Client, chat: &str) -> Option<(u64, String)> {
    let script = format!(
        "const li = document.querySelector('#my-chats li[data-chat-id=\"{chat}\"]');
         if (!li) return null;
         const badge = li.querySelector('.badge.unread');
         return [Number(li.dataset.unread), badge ? badge.textContent : ''];"
    );
    serde_json::from_value(js(b, &script).await).expect("a row's unread state")
}

/// Waits until the row of `chat` shows `n` unread messages (no badge for 0).
async fn wait_unread(b: &Client, chat: &str, n: u64) {
    let badge = if n == 0 {
        String::new()
    } else {
        format!("{n} unread")
    };
    eventually(&format!("{n} unread in {chat}"), || async {
        (unread(b, chat).await == Some((n, badge.clone()))).then_some(())
    })
    .await;
}

async fn title(b: &Client) -> String {
    js(b, "return document.title;")
        .await
        .as_str()
        .expect("a title")
        .to_string()
}

async fn wait_title(b: &Client, expected: &str) {
    eventually(&format!("the title {expected:?}"), || async {
        (title(b).await == expected).then_some(())
    })
    .await;
}

/// The preview line of `chat`'s row in the list at `list`, as the page shows it.
async fn preview(b: &Client, list: &str, chat: &str) -> Option<String> {
    let script = format!(
        "const e = document.querySelector('{list} li[data-chat-id=\"{chat}\"] .preview');
         return e ? e.textContent : null;"
    );
    js(b, &script).await.as_str().map(str::to_string)
}

async fn wait_preview(b: &Client, list: &str, chat: &str, expected: &str) {
    eventually(
        &format!("{list}'s preview of {chat}: {expected:?}"),
        || async { (preview(b, list, chat).await.as_deref() == Some(expected)).then_some(()) },
    )
    .await;
}

/// The chats of "My chats" in the order shown.
async fn my_chats(b: &Client) -> Vec<String> {
    let v = js(
        b,
        "return [...document.querySelectorAll('#my-chats li[data-chat-id]')].map(li => li.dataset.chatId);",
    )
    .await;
    serde_json::from_value(v).expect("chat ids")
}

async fn open_chat(b: &Client, chat: &str) {
    let button = format!("#my-chats li[data-chat-id={chat:?}] button.open");
    eventually(&format!("{chat} in My chats"), || async {
        (count(b, &button).await == 1).then_some(())
    })
    .await;
    click(b, &button).await;
    wait_text(b, "#chat-status", "You are talking with").await;
}

/// Counts the beeps the page makes: WebAudio is replaced by a stand-in that counts the
/// tones started (headless Chromium has no sound to listen to).
async fn count_beeps(b: &Client) {
    js(
        b,
        r"
        window.beeps = 0;
        const param = { value: 0, setValueAtTime() {}, exponentialRampToValueAtTime() {} };
        window.AudioContext = class {
          constructor() { this.state = 'running'; this.currentTime = 0; this.destination = {}; }
          resume() { return Promise.resolve(); }
          createGain() { return { gain: param, connect: (next) => next }; }
          createOscillator() {
            return { frequency: param, connect: (next) => next, start() { window.beeps += 1; }, stop() {} };
          }
        };
        return null;
        ",
    )
    .await;
}

async fn beeps(b: &Client) -> u64 {
    js(b, "return window.beeps;")
        .await
        .as_u64()
        .expect("a count")
}

async fn active_element(b: &Client) -> String {
    js(
        b,
        "const e = document.activeElement; return e ? (e.id || e.tagName.toLowerCase()) : 'none';",
    )
    .await
    .as_str()
    .expect("an id")
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_console_unread_counts_per_chat_and_in_the_title() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let alice_token = app.login_officer("alice").await;
    let bob_token = app.login_officer("bob").await;
    let (c1, chat1) = app.new_customer("cust-1").await;
    let (c2, chat2) = app.new_customer("cust-2").await;
    let (c3, chat3) = app.new_customer("cust-3").await;
    for (token, officer, chat) in [
        (&alice_token, "alice", &chat1),
        (&alice_token, "alice", &chat2),
        (&bob_token, "bob", &chat3),
    ] {
        app.claim(Some(token), officer, chat).await.expect(200);
    }
    let read = say(&app, &c1, &chat1, "First question").await;
    say(&app, &c1, &chat1, "Second question").await;
    // Alice has read cust-1's first message elsewhere (the server keeps her mark).
    app.request(
        Method::POST,
        &format!("/api/chats/{chat1}/read"),
        Some(&alice_token),
        Some(&json!({ "seq": read })),
    )
    .await
    .expect(200);
    say(&app, &c2, &chat2, "Hello?").await;
    say(&app, &c3, &chat3, "A question for Bob").await;

    // On load: one unread in each of her chats (her mark counts), none from Bob's chat.
    let alice = driver.browser("alice").await;
    login_officer(&alice, &app, "alice").await;
    wait_unread(&alice, &chat1, 1).await;
    wait_unread(&alice, &chat2, 1).await;
    wait_title(&alice, "(2) Officer console").await;
    assert_eq!(unread(&alice, &chat3).await, None, "Bob's chat is not hers");
    // Newest activity first: cust-2 wrote last.
    assert_eq!(my_chats(&alice).await, [chat2.clone(), chat1.clone()]);
    screenshot(&alice, "officer-console-unread").await;

    // Opening a chat reads it.
    open_chat(&alice, &chat2).await;
    wait_unread(&alice, &chat2, 0).await;
    wait_title(&alice, "(1) Officer console").await;

    // A message in the chat that is not open: its badge, the title, and it moves to the
    // top; one in the chat on screen is read at once.
    say(&app, &c1, &chat1, "Are you there?").await;
    wait_unread(&alice, &chat1, 2).await;
    wait_title(&alice, "(2) Officer console").await;
    wait_preview(&alice, "#my-chats", &chat1, "Are you there?").await;
    assert_eq!(my_chats(&alice).await, [chat1.clone(), chat2.clone()]);
    say(&app, &c2, &chat2, "Still here").await;
    wait_text(&alice, ".messages", "Still here").await;
    wait_preview(&alice, "#my-chats", &chat2, "Still here").await;
    assert_eq!(my_chats(&alice).await, [chat2.clone(), chat1.clone()]);
    // Bob's customer writes too; Alice's count does not move.
    say(&app, &c3, &chat3, "Bob?").await;
    assert_eq!(unread(&alice, &chat2).await, Some((0, String::new())));
    assert_eq!(title(&alice).await, "(2) Officer console");

    // Opening cust-1 clears it; the title is plain again.
    open_chat(&alice, &chat1).await;
    wait_unread(&alice, &chat1, 0).await;
    wait_title(&alice, "Officer console").await;
    assert_eq!(unread(&alice, &chat2).await, Some((0, String::new())));
    close([alice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_console_previews_are_text_with_who_wrote_and_when() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let alice = driver.browser("alice").await;
    let bob = driver.browser("bob").await;
    login_officer(&alice, &app, "alice").await;
    login_officer(&bob, &app, "bob").await;

    // A waiting customer writes markup: both queues show it as text, live, and nothing
    // runs.
    let (c1, chat1) = app.new_customer("cust-1").await;
    let (_c2, chat2) = app.new_customer("cust-2").await;
    let markup = r#"<img src=x onerror="window.pwned=1"> hello"#;
    for officer in [&alice, &bob] {
        wait_text(officer, "#queue", "cust-2").await;
    }
    say(&app, &c1, &chat1, markup).await;
    for officer in [&alice, &bob] {
        wait_preview(officer, "#queue", &chat1, markup).await;
        assert_eq!(count(officer, "#queue img").await, 0);
        assert_eq!(
            js(officer, "return window.pwned ?? null;").await,
            Value::Null
        );
        assert_eq!(
            js(officer, &format!("return document.querySelector('#queue li[data-chat-id=\"{chat1}\"] time.ago').textContent;")).await,
            json!("just now")
        );
        // A chat without a message has no preview line.
        assert_eq!(preview(officer, "#queue", &chat2).await, None);
    }

    // Alice claims it: in her chats with the same preview; gone from Bob's queue.
    click(
        &alice,
        &format!("#queue li[data-chat-id={chat1:?}] button.claim"),
    )
    .await;
    wait_text(&alice, "#chat-status", "You are talking with").await;
    eventually("the chat to leave Bob's queue", || async {
        (count(&bob, &format!("#queue li[data-chat-id={chat1:?}]")).await == 0).then_some(())
    })
    .await;
    wait_preview(&alice, "#my-chats", &chat1, "Alice took the chat").await;
    // Her own message reads "You: ..."; the customer's answer is shown as is.
    let alice_token = app.login_officer("alice").await;
    say(&app, &alice_token, &chat1, "How can I help?").await;
    wait_preview(&alice, "#my-chats", &chat1, "You: How can I help?").await;
    say(&app, &c1, &chat1, "Line one\nline two").await;
    wait_preview(&alice, "#my-chats", &chat1, "Line one line two").await;
    assert_eq!(count(&alice, "#my-chats img").await, 0);
    assert_eq!(
        js(&alice, "return window.pwned ?? null;").await,
        Value::Null
    );
    close([alice, bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_console_alerts_are_opt_in_remembered_and_fire_for_news_not_on_screen() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let alice_token = app.login_officer("alice").await;
    let (c1, chat1) = app.new_customer("cust-1").await;
    let (c2, chat2) = app.new_customer("cust-2").await;
    for chat in [&chat1, &chat2] {
        app.claim(Some(&alice_token), "alice", chat)
            .await
            .expect(200);
    }
    let alice = driver.browser("alice").await;
    login_officer(&alice, &app, "alice").await;
    open_chat(&alice, &chat1).await;
    count_beeps(&alice).await;

    // Off by default: a message in the chat not on screen counts, quietly.
    let checked = "return document.querySelector('#alert-new-chats').checked;";
    assert_eq!(js(&alice, checked).await, json!(false));
    say(&app, &c2, &chat2, "ping").await;
    wait_unread(&alice, &chat2, 1).await;
    assert_eq!(beeps(&alice).await, 0);
    assert_eq!(
        js(
            &alice,
            "return document.querySelector('#arrivals').textContent;"
        )
        .await,
        json!("")
    );

    // On: stored in this browser; the next such message beeps and is announced.
    click(&alice, "#alert-new-chats").await;
    assert_eq!(
        js(
            &alice,
            "return localStorage.getItem('chat.officer.alerts');"
        )
        .await,
        json!("on")
    );
    say(&app, &c2, &chat2, "ping again").await;
    wait_text(&alice, "#arrivals", "New message from cust-2").await;
    eventually("a beep", || async {
        (beeps(&alice).await == 1).then_some(())
    })
    .await;
    wait_unread(&alice, &chat2, 2).await;

    // A message in the chat on screen is no news: shown, not alerted.
    say(&app, &c1, &chat1, "I am reading along").await;
    wait_text(&alice, ".messages", "I am reading along").await;
    assert_eq!(beeps(&alice).await, 1);
    assert_eq!(unread(&alice, &chat1).await, Some((0, String::new())));

    // A new chat in the queue is announced and beeps (beeps are at least 1 s apart).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.new_customer("cust-9").await;
    wait_text(&alice, "#arrivals", "New chat in the queue: cust-9").await;
    eventually("a second beep", || async {
        (beeps(&alice).await == 2).then_some(())
    })
    .await;

    // The choice survives a reload in this browser, and so do the counts (from the lists).
    alice.refresh().await.expect("reload");
    wait_text(&alice, ".connection", "Live").await;
    assert_eq!(js(&alice, checked).await, json!(true));
    wait_unread(&alice, &chat2, 2).await;

    // Turned off again, it stays off.
    click(&alice, "#alert-new-chats").await;
    assert_eq!(
        js(
            &alice,
            "return localStorage.getItem('chat.officer.alerts');"
        )
        .await,
        Value::Null
    );
    alice.refresh().await.expect("reload");
    wait_text(&alice, ".connection", "Live").await;
    assert_eq!(js(&alice, checked).await, json!(false));
    close([alice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_console_focus_starts_at_the_login_field_then_at_the_queue() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let alice = driver.browser("alice").await;
    alice
        .goto(&app.url("/officer"))
        .await
        .expect("open console");
    eventually("the id field to have the focus", || async {
        (active_element(&alice).await == "officer-id").then_some(())
    })
    .await;
    // Typed without clicking anywhere: the keys go to the focused field.
    alice
        .active_element()
        .await
        .expect("focused field")
        .send_keys("alice")
        .await
        .expect("type");
    click(&alice, "#password").await;
    alice
        .active_element()
        .await
        .expect("focused field")
        .send_keys(&format!("{PASSWORD}\n"))
        .await
        .expect("type and submit");
    wait_text(&alice, ".connection", "Live").await;
    assert_eq!(active_element(&alice).await, "queue-title");
    // Tab from there reaches the queue's first claim button once there is one.
    let (customer, chat) = app.new_customer("cust-1").await;
    wait_text(&alice, "#queue", "cust-1").await;
    js(
        &alice,
        "document.getElementById('queue-title').focus(); return null;",
    )
    .await;
    alice
        .active_element()
        .await
        .expect("focused heading")
        .send_keys("\u{E004}")
        .await
        .expect("tab");
    let focused = "return document.activeElement.className;";
    assert_eq!(js(&alice, focused).await, json!("claim"));
    // The queue is drawn anew when the customer writes; the focus stays on the button.
    say(&app, &customer, &chat, "Is anyone there?").await;
    wait_preview(&alice, "#queue", &chat, "Is anyone there?").await;
    assert_eq!(js(&alice, focused).await, json!("claim"));

    // Signing out brings the form back with the focus in its first field.
    click(&alice, ".topbar button.link").await;
    eventually("the id field to have the focus again", || async {
        (active_element(&alice).await == "officer-id").then_some(())
    })
    .await;
    close([alice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_console_the_officer_who_loses_a_claim_race_is_told_once_who_won() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let alice = driver.browser("alice").await;
    let bob = driver.browser("bob").await;
    login_officer(&alice, &app, "alice").await;
    login_officer(&bob, &app, "bob").await;
    let (customer, chat) = app.new_customer("cust-202").await;
    let hold = format!(
        "window.claimButton = document.querySelector('#queue li[data-chat-id=\"{chat}\"] button.claim'); return window.claimButton !== null;"
    );
    for officer in [&alice, &bob] {
        wait_text(officer, "#queue", "cust-202").await;
        // Each holds their Claim button, so both clicks happen even if a redraw removes it.
        assert_eq!(js(officer, &hold).await, json!(true));
    }
    let press = "window.claimButton.click(); return null;";
    tokio::join!(js(&alice, press), js(&bob, press));

    let winner = eventually("the chat to be claimed", || async {
        let answer = app.chat(Some(&customer), &chat).await;
        (answer.status == 200).then(|| {
            answer.body["assignedOfficerId"]
                .as_str()
                .map(str::to_string)
        })?
    })
    .await;
    let (won, lost, name) = match winner.as_str() {
        "alice" => (&alice, &bob, "Alice"),
        "bob" => (&bob, &alice, "Bob"),
        other => panic!("claimed by {other}"),
    };
    wait_text(won, "#chat-status", "You are talking with").await;
    let sentence = format!("Too late: {name} took the chat of cust-202.");
    wait_text(lost, "#notice", &sentence).await;
    assert_eq!(
        text_of(lost, "#notice").await.as_deref(),
        Some(sentence.as_str()),
        "one sentence, said once"
    );
    assert_eq!(
        count(lost, &format!("#queue li[data-chat-id={chat:?}]")).await,
        0
    );
    assert_eq!(
        count(lost, &format!("#my-chats li[data-chat-id={chat:?}]")).await,
        0
    );
    close([alice, bob]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_console_a_hidden_console_counts_alerts_and_flashes_its_title() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let alice_token = app.login_officer("alice").await;
    let (c1, chat1) = app.new_customer("cust-1").await;
    app.claim(Some(&alice_token), "alice", &chat1)
        .await
        .expect(200);
    let alice = driver.browser("alice").await;
    login_officer(&alice, &app, "alice").await;
    open_chat(&alice, &chat1).await;
    click(&alice, "#alert-new-chats").await;
    count_beeps(&alice).await;
    // The page's own record of what its tab showed and whether it was seen, to be read
    // once it is in front again.
    js(
        &alice,
        r"
        window.titles = [];
        window.states = [];
        new MutationObserver(() => window.titles.push(document.title))
          .observe(document.querySelector('title'), { childList: true, characterData: true, subtree: true });
        document.addEventListener('visibilitychange', () => window.states.push(document.visibilityState));
        return null;
        ",
    )
    .await;
    let console = alice.window().await.expect("the console's tab");

    // Another tab comes to the front: the console is hidden.
    let other = alice.new_window(true).await.expect("a new tab");
    alice
        .switch_to_window(other.handle)
        .await
        .expect("to the new tab");
    alice.goto("about:blank").await.expect("open another page");
    // The customer writes in the chat that is on the console's screen, and a new chat
    // enters the queue.
    say(&app, &c1, &chat1, "Hello? Anyone?").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.new_customer("cust-2").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    alice
        .switch_to_window(console)
        .await
        .expect("back to the console");
    let states = js(&alice, "return window.states;").await;
    assert_eq!(states[0], json!("hidden"), "the tab was hidden: {states}");
    let titles: Vec<String> =
        serde_json::from_value(js(&alice, "return window.titles;").await).expect("titles");
    assert!(
        titles.iter().any(|t| t == "(1) Officer console"),
        "the unread message was counted: {titles:?}"
    );
    assert!(
        titles.iter().any(|t| t == "(2) Officer console"),
        "the new queue entry was counted: {titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t == "New message from cust-1 · Officer console"),
        "the title flashed: {titles:?}"
    );
    assert!(beeps(&alice).await >= 1, "an alert sounded");
    // In front again: read, seen, and the title is plain.
    wait_title(&alice, "Officer console").await;
    wait_unread(&alice, &chat1, 0).await;
    close([alice]).await;
}
