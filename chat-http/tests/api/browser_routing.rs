//! Presence, capacity and routing in the pages, in real headless browsers against the
//! real server: the officer's availability switch and load, colleagues' presence in the
//! transfer picker, chats that reach an officer by themselves under automatic assignment
//! (announced, with the opt-in beep), and the customer's place in the queue. What the
//! person under test does is clicked as they would; what others do (customers logging in,
//! claims, the admin's changes) goes through the REST API, and the page is checked to
//! show it without a reload. The server writes presence asynchronously, so presence is
//! always awaited, never read once.

use axum::http::Method;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{
    click, count, driver, eventually, js, login_officer, screenshot, text_of, wait_text,
};
use crate::helpers::{ADMIN_TOKEN, Options, PASSWORD, TestApp, spawn_app};

/// A secured server with officers Alice and Bob (display names).
async fn desk(options: Options) -> TestApp {
    let app = spawn_app(options).await;
    for (id, name) in [("alice", "Alice"), ("bob", "Bob")] {
        app.create_officer(
            app.admin(),
            json!({ "id": id, "password": PASSWORD, "displayName": name }),
        )
        .await
        .expect(201);
    }
    app
}

/// Waits until the element at `css` says exactly `text` (trimmed).
async fn wait_exact(b: &Client, css: &str, text: &str) {
    eventually(&format!("{css} to say {text:?}"), || async {
        text_of(b, css).await.filter(|t| t.trim() == text)
    })
    .await;
}

/// Whether the element at `css` is shown (it and its ancestors not hidden).
async fn shown(b: &Client, css: &str) -> bool {
    let script = format!(
        "const e = document.querySelector({css:?}); return e !== null && e.offsetParent !== null;"
    );
    js(b, &script).await.as_bool().expect("a boolean")
}

/// An officer as the REST API lists them to the admin.
async fn officer(app: &TestApp, id: &str) -> Value {
    let all = app
        .request(Method::GET, "/api/officers", Some(ADMIN_TOKEN), None)
        .await
        .expect(200);
    all.as_array()
        .expect("a list")
        .iter()
        .find(|o| o["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no officer {id}"))
}

/// Waits until the server says the officer has (or has no) live connection.
async fn wait_connected(app: &TestApp, id: &str, connected: bool) {
    eventually(&format!("{id} to be connected: {connected}"), || async {
        (officer(app, id).await["connected"] == connected).then_some(())
    })
    .await;
}

async fn set_availability(app: &TestApp, token: &str, id: &str, availability: &str) {
    app.request(
        Method::PUT,
        &format!("/api/officers/{id}/availability"),
        Some(token),
        Some(&json!({ "availability": availability })),
    )
    .await
    .expect(200);
}

/// The option of the switch that is on, as the page shows it.
async fn availability_shown(b: &Client) -> Option<String> {
    text_of(b, "#availability button[aria-pressed=\"true\"]").await
}

async fn wait_availability(b: &Client, text: &str) {
    eventually(&format!("the switch to show {text:?}"), || async {
        availability_shown(b).await.filter(|t| t.trim() == text)
    })
    .await;
}

/// Sets a flag in the page's window: gone if the page is reloaded.
async fn mark(b: &Client) {
    js(b, "window.notReloaded = true; return null;").await;
}

async fn assert_not_reloaded(b: &Client) {
    assert_eq!(
        js(b, "return window.notReloaded === true;").await,
        json!(true),
        "the page was reloaded"
    );
}

/// Opens the customer page from the host application's link, signed in as `id`.
async fn open_customer(b: &Client, app: &TestApp, id: &str) {
    let link = app.identity_token(id, 600, None, None);
    b.goto(&app.url(&format!("/customer?identityToken={link}")))
        .await
        .expect("open the link");
    wait_text(b, ".connection", "Live").await;
}

/// The text of the transfer picker's option for `officer`.
async fn picker_option(b: &Client, officer: &str) -> Option<String> {
    text_of(b, &format!("#transfer-to option[value={officer:?}]")).await
}

async fn wait_option(b: &Client, officer: &str, text: &str) {
    eventually(&format!("the picker to offer {text:?}"), || async {
        picker_option(b, officer).await.filter(|t| t.trim() == text)
    })
    .await;
}

/// Puts a stand-in for WebAudio in the page that counts the tones started.
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

async fn close(browsers: impl IntoIterator<Item = Client>) {
    for b in browsers {
        b.close().await.expect("close browser");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_routing_the_availability_switch_asks_the_server_and_follows_the_admin() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::secured()).await;
    let alice = driver.browser("alice").await;
    login_officer(&alice, &app, "alice").await;
    wait_availability(&alice, "Available").await;
    wait_exact(&alice, "#my-load", "0 (no limit)").await;
    mark(&alice).await;

    // Alice goes away: the server has her away, and the switch shows it.
    click(&alice, "#set-away").await;
    eventually("alice to be away on the server", || async {
        (officer(&app, "alice").await["availability"] == "away").then_some(())
    })
    .await;
    wait_availability(&alice, "Away").await;

    // The admin makes her available again: the switch follows, without a reload.
    set_availability(&app, ADMIN_TOKEN, "alice", "available").await;
    wait_availability(&alice, "Available").await;
    // And away again, from elsewhere (another of her sessions).
    let elsewhere = app.login_officer("alice").await;
    set_availability(&app, &elsewhere, "alice", "away").await;
    wait_availability(&alice, "Away").await;
    screenshot(&alice, "officer-console-away").await;

    // Back to available by her own click.
    click(&alice, "#set-available").await;
    wait_availability(&alice, "Available").await;
    assert_eq!(officer(&app, "alice").await["availability"], "available");
    assert_not_reloaded(&alice).await;
    close([alice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_routing_the_officers_load_follows_claims_and_capacity() {
    let Some(driver) = driver() else { return };
    let app = desk(Options {
        officer_capacity: Some(2),
        ..Options::secured()
    })
    .await;
    let alice = driver.browser("alice").await;
    login_officer(&alice, &app, "alice").await;
    wait_exact(&alice, "#my-load", "0 of 2").await;
    mark(&alice).await;

    // A customer waits; Alice claims the chat in her console: one of two.
    app.new_customer("cust-1").await;
    wait_text(&alice, "#queue", "cust-1").await;
    click(&alice, "#queue li[data-chat-id] button.claim").await;
    wait_text(&alice, "#chat-status", "You are talking with").await;
    wait_exact(&alice, "#my-load", "1 of 2").await;

    // The admin changes her capacity: the load follows.
    app.request(
        Method::PUT,
        "/api/officers/alice/capacity",
        Some(ADMIN_TOKEN),
        Some(&json!({ "capacity": 5 })),
    )
    .await
    .expect(200);
    wait_exact(&alice, "#my-load", "1 of 5").await;

    // Ending the chat frees the slot.
    click(&alice, ".chat-actions button.resolve").await;
    click(&alice, ".chat-actions button.resolve-yes").await;
    wait_exact(&alice, "#my-load", "0 of 5").await;
    assert_not_reloaded(&alice).await;
    close([alice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_routing_the_transfer_picker_shows_colleagues_presence_live() {
    let Some(driver) = driver() else { return };
    let app = desk(Options {
        officer_capacity: Some(5),
        ..Options::secured()
    })
    .await;
    let alice = driver.browser("alice").await;
    login_officer(&alice, &app, "alice").await;
    app.new_customer("cust-1").await;
    wait_text(&alice, "#queue", "cust-1").await;
    click(&alice, "#queue li[data-chat-id] button.claim").await;
    wait_text(&alice, "#chat-status", "You are talking with").await;

    // Bob has no console open: offline.
    click(&alice, ".chat-actions button.transfer").await;
    wait_text(&alice, ".transfer-picker", "Transfer to").await;
    wait_option(&alice, "bob", "Bob — offline, 0 of 5").await;
    mark(&alice).await;

    // Bob opens his console: online, in the picker Alice has open.
    let bob = driver.browser("bob").await;
    login_officer(&bob, &app, "bob").await;
    wait_option(&alice, "bob", "Bob — online, 0 of 5").await;

    // Bob goes away, and takes a chat: both show.
    click(&bob, "#set-away").await;
    wait_option(&alice, "bob", "Bob — online, away, 0 of 5").await;
    let (_, second) = app.new_customer("cust-2").await;
    let bob_token = app.login_officer("bob").await;
    app.claim(Some(&bob_token), "bob", &second)
        .await
        .expect(200);
    wait_option(&alice, "bob", "Bob — online, away, 1 of 5").await;
    screenshot(&alice, "officer-console-transfer-presence").await;

    // Bob's browser leaves the console: offline again, once the server has noticed.
    bob.goto("about:blank").await.expect("leave the console");
    wait_connected(&app, "bob", false).await;
    wait_option(&alice, "bob", "Bob — offline, away, 1 of 5").await;

    // Back (the page as it was left, or loaded again: either way connected again), then
    // the browser closed outright.
    bob.back().await.expect("back to the console");
    wait_text(&bob, ".connection", "Live").await;
    wait_option(&alice, "bob", "Bob — online, away, 1 of 5").await;
    close([bob]).await;
    wait_option(&alice, "bob", "Bob — offline, away, 1 of 5").await;

    // The picker still hands the chat over, to the colleague it shows.
    alice
        .find(Locator::Css("#transfer-to"))
        .await
        .expect("picker")
        .select_by_value("bob")
        .await
        .expect("pick Bob");
    click(&alice, ".transfer-picker button.transfer-yes").await;
    wait_text(&alice, "#notice", "transferred to Bob").await;
    assert_not_reloaded(&alice).await;
    close([alice]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_routing_automatic_assignment_brings_chats_without_a_click() {
    let Some(driver) = driver() else { return };
    let app = desk(Options {
        assignment: chatcore::Assignment::Auto,
        ..Options::secured()
    })
    .await;
    let alice = driver.browser("alice").await;
    login_officer(&alice, &app, "alice").await;
    wait_connected(&app, "alice", true).await;
    // Bob is away: every chat goes to Alice.
    let bob = app.login_officer("bob").await;
    set_availability(&app, &bob, "bob", "away").await;

    // The alert is off until she turns it on; then it is remembered in this browser.
    let checked = "return document.querySelector('#alert-new-chats').checked;";
    assert_eq!(js(&alice, checked).await, json!(false));
    count_beeps(&alice).await;
    click(&alice, "#alert-new-chats").await;
    assert_eq!(
        js(
            &alice,
            "return localStorage.getItem('chat.officer.alerts');"
        )
        .await,
        json!("on")
    );
    mark(&alice).await;

    // A customer logs in (REST): the chat is Alice's at once, in My chats, announced,
    // marked new, with a beep; nothing was clicked.
    let (_, first) = app.new_customer("cust-1").await;
    wait_text(&alice, "#my-chats", "cust-1").await;
    wait_text(&alice, "#arrivals", "New chat from cust-1").await;
    let item = format!("#my-chats li[data-chat-id={first:?}]");
    eventually("the chat to be marked new", || async {
        (count(&alice, &format!("{item}.arrived")).await == 1).then_some(())
    })
    .await;
    wait_text(&alice, &item, "New").await;
    eventually("a beep", || async {
        (beeps(&alice).await == 1).then_some(())
    })
    .await;
    assert_eq!(count(&alice, "#queue li[data-chat-id]").await, 0);
    let chat = app
        .chat(Some(&app.login_officer("alice").await), &first)
        .await
        .expect(200);
    assert_eq!(
        (&chat["status"], &chat["assignedOfficerId"]),
        (&json!("assigned"), &json!("alice"))
    );
    screenshot(&alice, "officer-console-auto-assigned").await;

    // A customer in a browser: the same, and the customer sees Alice join.
    let customer = driver.browser("customer").await;
    open_customer(&customer, &app, "cust-2").await;
    wait_text(&customer, "#chat-status", "Alice has joined the chat").await;
    assert!(!shown(&customer, "#queue-position").await);
    wait_text(&alice, "#arrivals", "New chat from cust-2").await;
    eventually("two chats in My chats", || async {
        (count(&alice, "#my-chats li[data-chat-id]").await == 2).then_some(())
    })
    .await;
    eventually("a second beep", || async {
        (beeps(&alice).await == 2).then_some(())
    })
    .await;

    // Opening a chat clears its mark and its announcement.
    click(&alice, "#my-chats li.arrived button.open").await;
    wait_text(&alice, "#chat-status", "You are talking with").await;
    eventually("one chat still marked new", || async {
        (count(&alice, "#my-chats li.arrived").await == 1).then_some(())
    })
    .await;
    assert_not_reloaded(&alice).await;

    // The alert stays on across a reload in this browser.
    alice.refresh().await.expect("reload");
    wait_text(&alice, ".connection", "Live").await;
    assert_eq!(js(&alice, checked).await, json!(true));
    close([alice, customer]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_routing_the_customer_sees_their_place_in_line_live() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::secured()).await;
    let alice = app.login_officer("alice").await;
    let (_, first) = app.new_customer("cust-1").await;

    // The second customer to wait is number 2, from the login's answer on.
    let customer = driver.browser("customer").await;
    open_customer(&customer, &app, "cust-2").await;
    wait_text(&customer, "#queue-position", "You are number 2 in line").await;
    wait_text(&customer, "#chat-status", "Waiting for an officer").await;
    mark(&customer).await;
    screenshot(&customer, "customer-chat-in-line").await;

    // The first chat is claimed: number 1, live.
    app.claim(Some(&alice), "alice", &first).await.expect(200);
    wait_text(&customer, "#queue-position", "You are number 1 in line").await;

    // A reload shows the place the server gives (the chat's `queuePosition`).
    customer.refresh().await.expect("reload");
    wait_text(&customer, "#queue-position", "You are number 1 in line").await;
    mark(&customer).await;

    // Its own chat is claimed: the line goes, and the officer is named.
    let chats = app
        .request(
            Method::GET,
            "/api/customers/cust-2/chats",
            Some(&alice),
            None,
        )
        .await
        .expect(200);
    let chat = chats[0]["id"].as_str().expect("a chat id").to_string();
    app.claim(Some(&alice), "alice", &chat).await.expect(200);
    wait_text(&customer, "#chat-status", "Alice has joined the chat").await;
    eventually("the place in line to go", || async {
        (!shown(&customer, "#queue-position").await).then_some(())
    })
    .await;
    assert_not_reloaded(&customer).await;
    close([customer]).await;
}
