//! The conversation lifecycle (issue 16) in real headless browsers: two officers and a
//! customer at once, each in a browser of their own, against the real server. Every
//! change is made by clicking what a person would click, and every other page is checked
//! to follow it live, without a reload: the claim, a transfer, a release, an end of the
//! chat by the officer and by the customer, a reopen, the selected chat across a reload,
//! and the customer's earlier conversations. Setup that is not the point of a test goes
//! through the REST API.

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{
    Driver, click, count, driver, eventually, js, login_customer, login_officer, screenshot, send,
    wait_text,
};
use crate::helpers::{Options, PASSWORD, TestApp, spawn_app};

/// A server with officers Alice and Bob (display names), created by the admin when
/// there is one.
/// A server with officers Alice and Bob (display names, the test password).
pub(crate) async fn desk(options: Options) -> TestApp {
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

/// Alice, Bob and a customer, each in a browser of their own and signed in; the
/// customer (`cust-1`) has written a first message, which both queues show.
async fn three_people(driver: &Driver, app: &TestApp) -> (Client, Client, Client) {
    let alice = driver.browser("alice").await;
    let bob = driver.browser("bob").await;
    let customer = driver.browser("customer").await;
    login_officer(&alice, app, "alice").await;
    login_officer(&bob, app, "bob").await;
    login_customer(&customer, app, "cust-1").await;
    send(&customer, "Hello, I have a question about my loan.").await;
    for officer in [&alice, &bob] {
        wait_text(officer, "#queue", "cust-1").await;
    }
    (alice, bob, customer)
}

/// How many elements at `css` are shown (not hidden, nor inside something hidden).
async fn visible(b: &Client, css: &str) -> u64 {
    let script = format!(
        "return [...document.querySelectorAll({css:?})].filter(e => e.offsetParent !== null).length;"
    );
    js(b, &script).await.as_u64().expect("a count")
}

async fn composer_enabled(b: &Client) -> bool {
    js(
        b,
        "return !document.querySelector('#message-input').disabled;",
    )
    .await
    .as_bool()
    .expect("a boolean")
}

/// Waits until the list at `css` holds exactly `n` chats.
async fn wait_rows(b: &Client, css: &str, n: usize) {
    eventually(&format!("{n} chats in {css}"), || async {
        (count(b, &format!("{css} li[data-chat-id]")).await == n).then_some(())
    })
    .await;
}

/// The sentences of the system entries in the page's timeline.
async fn system_lines(b: &Client) -> Vec<String> {
    let v = js(
        b,
        "return [...document.querySelectorAll('.messages .system-entry .sentence')].map(e => e.textContent);",
    )
    .await;
    serde_json::from_value(v).expect("strings")
}

async fn wait_system_line(b: &Client, needle: &str) {
    eventually(&format!("a system line {needle:?}"), || async {
        system_lines(b)
            .await
            .iter()
            .any(|l| l.contains(needle))
            .then_some(())
    })
    .await;
}

/// Opens the transfer picker; returns the colleagues offered, as (id, name) pairs (each
/// option also says the colleague's presence after " — ", which browser_routing checks).
async fn open_picker(b: &Client) -> Value {
    click(b, ".chat-actions button.transfer").await;
    wait_text(b, ".transfer-picker", "Transfer to").await;
    js(
        b,
        "return [...document.querySelectorAll('#transfer-to option')].map(o => [o.value, o.textContent.split(' — ')[0]]);",
    )
    .await
}

/// Picks a colleague in the open transfer picker and confirms.
async fn pick(b: &Client, officer: &str) {
    b.find(Locator::Css("#transfer-to"))
        .await
        .expect("picker")
        .select_by_value(officer)
        .await
        .expect("pick a colleague");
    click(b, ".transfer-picker button.transfer-yes").await;
}

/// Claims the first chat of the queue in this console and waits until it is open.
async fn claim_first(b: &Client) {
    click(b, "#queue li[data-chat-id] button.claim").await;
    wait_text(b, "#chat-status", "You are talking with").await;
}

async fn close(browsers: impl IntoIterator<Item = Client>) {
    for b in browsers {
        b.close().await.expect("close browser");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_lifecycle_claim_then_transfer_seen_live_by_both_officers_and_the_customer() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::secured()).await;
    app.create_officer(
        app.admin(),
        json!({ "id": "carol", "password": PASSWORD, "displayName": "Carol" }),
    )
    .await
    .expect(201);
    app.officer_switch(app.admin(), "carol", "disable")
        .await
        .expect(200);
    let alice = driver.browser("alice").await;
    let bob = driver.browser("bob").await;
    let customer = driver.browser("customer").await;
    login_officer(&alice, &app, "alice").await;
    login_officer(&bob, &app, "bob").await;
    let link = app.identity_token("cust-1", 600, None, Some("Ada Lovelace"));
    customer
        .goto(&app.url(&format!("/customer?identityToken={link}")))
        .await
        .expect("open the link");
    wait_text(&customer, ".connection", "Live").await;
    wait_text(&customer, "#chat-status", "Waiting for an officer").await;
    send(&customer, "Hello, I have a question about my loan.").await;
    wait_text(&bob, "#queue", "Ada Lovelace").await;

    // The claim reaches the customer at once, over the socket (the page does not poll).
    wait_text(&alice, "#queue", "Ada Lovelace").await;
    claim_first(&alice).await;
    wait_text(&customer, "#chat-status", "Alice has joined the chat").await;
    wait_system_line(&customer, "Alice took the chat").await;
    wait_rows(&bob, "#queue", 0).await;
    send(&alice, "Hello Ada, this is Alice.").await;
    wait_text(&customer, ".messages", "this is Alice").await;

    // The transfer picker offers colleagues by name: not Alice herself, not Carol, who
    // is disabled.
    app.create_officer(
        app.admin(),
        json!({ "id": "dave", "password": PASSWORD, "displayName": "Dave" }),
    )
    .await
    .expect(201);
    assert_eq!(
        open_picker(&alice).await,
        json!([["bob", "Bob"], ["dave", "Dave"]])
    );
    // Dave is disabled while Alice picks him: the refusal is said in words, and the
    // chat stays hers.
    app.officer_switch(app.admin(), "dave", "disable")
        .await
        .expect(200);
    pick(&alice, "dave").await;
    wait_text(&alice, "#notice", "account is disabled").await;
    wait_text(&alice, "#chat-status", "You are talking with Ada Lovelace").await;
    assert!(composer_enabled(&alice).await);
    assert_eq!(open_picker(&alice).await, json!([["bob", "Bob"]]));
    pick(&alice, "bob").await;

    // Alice loses it: out of her chats, the conversation read-only with a notice.
    wait_text(&alice, "#notice", "transferred to Bob").await;
    wait_rows(&alice, "#my-chats", 0).await;
    wait_text(&alice, "#read-only", "now with Bob").await;
    assert!(!composer_enabled(&alice).await);
    assert_eq!(visible(&alice, ".chat-actions button").await, 0);
    // Bob gets it live, and talks to the customer.
    wait_rows(&bob, "#my-chats", 1).await;
    wait_text(&bob, "#my-chats", "Ada Lovelace").await;
    click(&bob, "#my-chats li[data-chat-id] button.open").await;
    wait_text(&bob, "#chat-status", "You are talking with Ada Lovelace").await;
    wait_text(&bob, ".messages", "this is Alice").await;
    wait_system_line(&bob, "Alice transferred the chat to Bob").await;
    send(&bob, "Hi Ada, Bob here, I will take it from here.").await;

    // The customer sees the hand-over as a quiet line, and Bob by name.
    wait_system_line(&customer, "Alice transferred the chat to Bob").await;
    wait_text(&customer, "#chat-status", "Bob has joined the chat").await;
    wait_text(&customer, ".messages", "Bob here").await;
    let officers_named = js(
        &customer,
        "return [...document.querySelectorAll('.messages li.message.officer .who')].map(e => e.textContent);",
    )
    .await;
    // Officers by name, the one before the transfer too (named by its sentence).
    assert_eq!(officers_named, json!(["Alice", "Bob"]));
    // A system entry is a line of the timeline, not a bubble.
    assert_eq!(
        count(&customer, ".messages li.message.system").await,
        0,
        "a system entry drawn as a bubble"
    );
    screenshot(&bob, "officer-console-transferred").await;
    screenshot(&customer, "customer-chat-transferred").await;
    close([alice, bob, customer]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_lifecycle_release_puts_the_chat_back_in_both_queues() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let (alice, bob, customer) = three_people(&driver, &app).await;
    claim_first(&alice).await;
    wait_rows(&bob, "#queue", 0).await;
    wait_rows(&alice, "#my-chats", 1).await;

    click(&alice, ".chat-actions button.release").await;
    for officer in [&alice, &bob] {
        wait_rows(officer, "#queue", 1).await;
        wait_text(officer, "#queue", "cust-1").await;
    }
    wait_rows(&alice, "#my-chats", 0).await;
    wait_text(&alice, "#chat-status", "waiting in the queue").await;
    wait_text(&alice, "#read-only", "claim it to reply").await;
    assert!(!composer_enabled(&alice).await);
    wait_system_line(&alice, "Alice put the chat back in the queue").await;
    wait_text(&customer, "#chat-status", "Waiting for an officer").await;
    wait_system_line(&customer, "Alice put the chat back in the queue").await;
    assert!(composer_enabled(&customer).await);

    // Bob takes it from the queue: it leaves Alice's queue, and the customer hears.
    claim_first(&bob).await;
    wait_rows(&alice, "#queue", 0).await;
    wait_text(&customer, "#chat-status", "has joined the chat").await;
    // Alice, still looking at it, may no longer write in it.
    wait_text(&alice, "#read-only", "now with Bob").await;
    close([alice, bob, customer]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_lifecycle_officer_ends_the_chat_and_the_customer_starts_a_new_one() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let (alice, bob, customer) = three_people(&driver, &app).await;
    let first = js(
        &alice,
        "return document.querySelector('#queue li[data-chat-id]').dataset.chatId;",
    )
    .await;
    claim_first(&alice).await;

    // End chat asks first.
    click(&alice, ".chat-actions button.resolve").await;
    wait_text(&alice, ".chat-actions .confirm", "End this conversation").await;
    click(&alice, ".chat-actions button.resolve-yes").await;
    wait_text(&alice, "#chat-status", "This conversation has ended").await;
    wait_text(&alice, "#read-only", "Reopen").await;
    assert!(!composer_enabled(&alice).await);
    wait_rows(&alice, "#my-chats", 0).await;
    click(&alice, "#tab-resolved").await;
    wait_rows(&alice, "#my-resolved", 1).await;
    wait_text(&alice, "#tab-resolved", "Resolved (1)").await;

    // The customer sees the end at once: composer off, a new conversation offered.
    wait_text(&customer, "#ended", "This conversation has ended").await;
    wait_system_line(&customer, "Alice ended the chat").await;
    assert!(!composer_enabled(&customer).await);
    assert_eq!(
        visible(&customer, "button.end-chat").await,
        0,
        "End chat still offered"
    );
    screenshot(&customer, "customer-chat-ended").await;
    click(&customer, "#new-conversation").await;
    wait_text(&customer, "#chat-status", "Waiting for an officer").await;
    assert!(composer_enabled(&customer).await);
    assert_eq!(
        count(&customer, ".messages li[data-seq]").await,
        0,
        "the new chat shows the old one's messages"
    );
    send(&customer, "One more question, please.").await;

    // Both officers see the new chat in the queue: another chat than the ended one.
    for officer in [&alice, &bob] {
        wait_rows(officer, "#queue", 1).await;
        let queued = js(
            officer,
            "return document.querySelector('#queue li[data-chat-id]').dataset.chatId;",
        )
        .await;
        assert_ne!(queued, first, "the ended chat is back in the queue");
    }
    // Bob takes it: the customer's earlier conversation is shown beside it.
    claim_first(&bob).await;
    wait_text(&bob, "#earlier-chats", "ended").await;
    assert_eq!(count(&bob, "#earlier-chats li[data-chat-id]").await, 1);
    wait_text(&customer, "#chat-status", "has joined the chat").await;
    close([alice, bob, customer]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_lifecycle_the_customer_ends_the_chat_after_confirming() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let (alice, bob, customer) = three_people(&driver, &app).await;
    claim_first(&alice).await;
    wait_text(&customer, "#chat-status", "has joined the chat").await;

    // Asked first; "Keep chatting" changes nothing.
    click(&customer, "button.end-chat").await;
    wait_text(&customer, ".confirm", "End this conversation?").await;
    click(&customer, ".confirm button.cancel").await;
    wait_text(&customer, "button.end-chat", "End chat").await;
    assert!(composer_enabled(&customer).await);
    send(&customer, "Actually, one last thing.").await;
    wait_text(&alice, ".messages", "one last thing").await;

    click(&customer, "button.end-chat").await;
    click(&customer, "button.end-chat-yes").await;
    wait_text(&customer, "#ended", "This conversation has ended").await;
    assert!(!composer_enabled(&customer).await);
    wait_system_line(&customer, "The customer ended the chat").await;

    // Alice's console follows: read-only, Reopen offered, in her Resolved tab.
    wait_text(&alice, "#chat-status", "This conversation has ended").await;
    wait_system_line(&alice, "The customer ended the chat").await;
    assert!(!composer_enabled(&alice).await);
    wait_text(&alice, ".chat-actions button.reopen", "Reopen").await;
    wait_rows(&alice, "#my-chats", 0).await;
    click(&alice, "#tab-resolved").await;
    wait_text(&alice, "#my-resolved", "cust-1").await;
    // Nobody's queue has it.
    assert_eq!(count(&bob, "#queue li[data-chat-id]").await, 0);
    close([alice, bob, customer]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_lifecycle_reopen_from_the_resolved_tab_and_its_refusal() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let (alice, bob, customer) = three_people(&driver, &app).await;
    claim_first(&alice).await;
    click(&alice, ".chat-actions button.resolve").await;
    click(&alice, ".chat-actions button.resolve-yes").await;
    wait_text(&customer, "#ended", "This conversation has ended").await;

    // From the Resolved tab: open it (read-only), reopen it.
    click(&alice, "#tab-resolved").await;
    click(&alice, "#my-resolved li[data-chat-id] button.open").await;
    wait_text(&alice, "#chat-status", "This conversation has ended").await;
    click(&alice, ".chat-actions button.reopen").await;
    wait_text(&alice, "#chat-status", "You are talking with cust-1").await;
    assert!(composer_enabled(&alice).await);
    wait_text(&alice, "#tab-open", "Open (1)").await;
    wait_rows(&alice, "#my-chats", 1).await;
    wait_text(&alice, "#tab-resolved", "Resolved (0)").await;
    wait_system_line(&alice, "Alice reopened the chat").await;
    // The customer's page comes back to life: the same conversation, writable.
    wait_system_line(&customer, "Alice reopened the chat").await;
    wait_text(&customer, "#chat-status", "Alice has joined the chat").await;
    assert!(composer_enabled(&customer).await);
    send(&alice, "I reopened our conversation.").await;
    wait_text(&customer, ".messages", "I reopened").await;

    // Ended again, and meanwhile the customer started another conversation: reopening
    // the old one is refused, in words.
    click(&alice, ".chat-actions button.resolve").await;
    click(&alice, ".chat-actions button.resolve-yes").await;
    wait_text(&alice, ".chat-actions button.reopen", "Reopen").await;
    app.customer_login(json!({ "customerId": "cust-1" }))
        .await
        .expect(200);
    wait_rows(&bob, "#queue", 1).await;
    click(&alice, ".chat-actions button.reopen").await;
    wait_text(&alice, "#notice", "started a new conversation").await;
    wait_text(&alice, "#chat-status", "This conversation has ended").await;
    assert!(!composer_enabled(&alice).await);
    close([alice, bob, customer]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_lifecycle_the_selected_chat_and_tab_are_kept_across_a_reload() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let (alice, bob, customer) = three_people(&driver, &app).await;
    claim_first(&alice).await;
    send(&alice, "Let me look at your file.").await;
    wait_text(&customer, ".messages", "look at your file").await;

    alice.refresh().await.expect("reload");
    wait_text(&alice, ".connection", "Live").await;
    wait_text(&alice, "#chat-title", "Chat with cust-1").await;
    wait_text(&alice, ".messages", "look at your file").await;
    wait_text(&alice, "#chat-status", "You are talking with cust-1").await;
    assert!(composer_enabled(&alice).await);
    send(&alice, "Still here after a reload.").await;
    wait_text(&customer, ".messages", "Still here after a reload").await;

    // An ended chat, opened from the Resolved tab, is kept too, tab included.
    click(&alice, ".chat-actions button.resolve").await;
    click(&alice, ".chat-actions button.resolve-yes").await;
    click(&alice, "#tab-resolved").await;
    wait_rows(&alice, "#my-resolved", 1).await;
    alice.refresh().await.expect("reload");
    wait_text(&alice, ".connection", "Live").await;
    wait_text(&alice, "#chat-status", "This conversation has ended").await;
    wait_text(&alice, "#my-resolved", "cust-1").await;
    wait_text(&alice, ".messages", "Still here after a reload").await;
    close([alice, bob, customer]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_lifecycle_earlier_conversations_are_shown_when_a_chat_is_opened() {
    let Some(driver) = driver() else { return };
    let app = desk(Options::open()).await;
    let alice_token = app.login_officer("alice").await;
    let bob_token = app.login_officer("bob").await;
    // Two earlier chats of cust-1: one Alice handled, one Bob did.
    for (officer, token, text) in [
        ("alice", &alice_token, "About my mortgage rate"),
        ("bob", &bob_token, "About my car loan"),
    ] {
        let (customer, chat) = app.new_customer("cust-1").await;
        app.say(&customer, &chat, text).await;
        app.claim(Some(token), officer, &chat).await.expect(200);
        app.request(
            reqwest::Method::POST,
            &format!("/api/chats/{chat}/resolve"),
            Some(token),
            None,
        )
        .await
        .expect(200);
    }
    let alice = driver.browser("alice").await;
    let customer = driver.browser("customer").await;
    login_officer(&alice, &app, "alice").await;
    login_customer(&customer, &app, "cust-1").await;
    send(&customer, "Hello again.").await;
    wait_text(&alice, "#queue", "cust-1").await;
    claim_first(&alice).await;

    // Both earlier chats, newest first, not the one that is open.
    wait_text(&alice, ".earlier h2", "Earlier conversations (2)").await;
    assert_eq!(count(&alice, "#earlier-chats li[data-chat-id]").await, 2);
    let statuses = js(
        &alice,
        "return [...document.querySelectorAll('#earlier-chats .badge')].map(e => e.textContent);",
    )
    .await;
    assert_eq!(statuses, json!(["ended", "ended"]));
    send(
        &alice,
        "Welcome back! I see we spoke about your mortgage rate.",
    )
    .await;
    wait_text(&customer, ".messages", "Welcome back").await;
    screenshot(&alice, "officer-console-lifecycle").await;
    // Alice may read the one she handled (read-only), not Bob's.
    click(&alice, "#earlier-chats li:nth-child(2) button.show").await;
    wait_text(
        &alice,
        "#earlier-chats li:nth-child(2)",
        "About my mortgage rate",
    )
    .await;
    wait_system_line(&alice, "Alice ended the chat").await;
    click(&alice, "#earlier-chats li:nth-child(1) button.show").await;
    wait_text(
        &alice,
        "#earlier-chats li:nth-child(1)",
        "Only the officer who handled",
    )
    .await;
    let current = wait_text(
        &alice,
        ".messages[aria-label='Selected conversation']",
        "Hello again",
    )
    .await;
    assert!(!current.contains("About my mortgage"), "{current}");
    close([alice, customer]).await;
}
