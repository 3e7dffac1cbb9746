//! The admin console (`/admin`) in a real headless Chromium, against the real secured
//! server: signing in with the admin token, creating officers, setting capacities,
//! disabling and enabling, and the queue and the officers followed live. Everything the
//! admin does is typed and clicked as a person would; what others do (customers logging
//! in, officers claiming or going away) goes through the REST API, and the page is
//! checked to show it without a reload. What the page did is checked through REST too.

use axum::http::Method;
use fantoccini::Client;
use serde_json::{Value, json};

use crate::browser::{click, count, driver, eventually, fill, js, screenshot, text_of, wait_text};
use crate::helpers::{ADMIN_TOKEN, Options, PASSWORD, TestApp, spawn_app};

/// Types a token into the sign-in form and submits it.
async fn submit_token(b: &Client, token: &str) {
    fill(b, "#admin-token", token).await;
    click(b, "#login-form button[type=submit]").await;
}

/// Opens the console, signs in with the admin token and waits until it is live.
async fn sign_in(b: &Client, app: &TestApp) {
    b.goto(&app.url("/admin")).await.expect("open the console");
    submit_token(b, ADMIN_TOKEN).await;
    wait_text(b, ".connection", "Live").await;
}

/// The CSS path of something in an officer's row.
fn in_row(officer: &str, css: &str) -> String {
    format!("#officers-table tr[data-officer-id={officer:?}] {css}")
}

/// Waits until that part of the officer's row says exactly `text`.
async fn wait_cell(b: &Client, officer: &str, css: &str, text: &str) {
    let path = in_row(officer, css);
    eventually(&format!("{path} to say {text:?}"), || async {
        text_of(b, &path).await.filter(|t| t.trim() == text)
    })
    .await;
}

/// An officer as the REST API lists them to the admin.
async fn officer(app: &TestApp, id: &str) -> Option<Value> {
    let all = app
        .request(Method::GET, "/api/officers", Some(ADMIN_TOKEN), None)
        .await
        .expect(200);
    all.as_array()
        .expect("a list")
        .iter()
        .find(|o| o["id"] == id)
        .cloned()
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

/// The longest wait the page shows, in seconds (`None` while nobody waits or for a
/// wait of a minute or more, which these tests never reach).
async fn longest_wait(b: &Client) -> Option<u64> {
    let text = text_of(b, "#longest-wait").await?;
    text.strip_suffix(" s")?.trim().parse().ok()
}

async fn set_availability(app: &TestApp, token: &str, officer: &str, availability: &str) {
    app.request(
        Method::PUT,
        &format!("/api/officers/{officer}/availability"),
        Some(token),
        Some(&json!({ "availability": availability })),
    )
    .await
    .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_signs_in_with_the_admin_token_only() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let b = driver.browser("admin").await;
    b.goto(&app.url("/admin")).await.expect("open the console");

    // A wrong token, then a real token that is not the admin's: each said in words, and
    // nothing of the console is shown.
    submit_token(&b, "not-the-admin-token-0123456789abcdef").await;
    wait_text(
        &b,
        "#login-form .error",
        "not the admin token of this server",
    )
    .await;
    submit_token(&b, &alice).await;
    wait_text(&b, "#login-form .error", "not the administrator").await;
    assert_eq!(count(&b, "#officers-table").await, 0);
    assert_eq!(js(&b, "return sessionStorage.length;").await, json!(0));

    // The right one: the console, live, listing the officers.
    submit_token(&b, ADMIN_TOKEN).await;
    wait_text(&b, ".connection", "Live").await;
    wait_cell(&b, "alice", ".officer-id", "alice").await;
    let url = b.current_url().await.expect("current url");
    assert!(!url.as_str().contains(ADMIN_TOKEN), "{url}");
    let kept = js(&b, "return sessionStorage.getItem('chat.admin');").await;
    assert!(kept.to_string().contains(ADMIN_TOKEN), "{kept}");

    // A reload keeps the tab signed in; signing out forgets the token.
    b.refresh().await.expect("reload");
    wait_text(&b, ".connection", "Live").await;
    click(&b, "#sign-out").await;
    wait_text(&b, "#login-form", "Admin token").await;
    assert_eq!(
        js(&b, "return sessionStorage.getItem('chat.admin');").await,
        Value::Null
    );
    b.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_is_created_from_the_page_and_refusals_are_said_in_words() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::secured()).await;
    let b = driver.browser("admin").await;
    sign_in(&b, &app).await;
    wait_text(&b, "#officers-table", "No officers yet").await;

    fill(&b, "#new-officer-id", "carol").await;
    fill(&b, "#new-officer-name", "Carol").await;
    fill(&b, "#new-officer-password", PASSWORD).await;
    fill(&b, "#new-officer-capacity", "3").await;
    click(&b, "#create-officer button[type=submit]").await;
    wait_text(&b, "#create-done", "Carol (carol) was created").await;
    wait_cell(&b, "carol", ".name", "Carol").await;
    wait_cell(&b, "carol", ".load", "0 of 3").await;
    wait_cell(&b, "carol", ".state", "Active").await;
    let carol = officer(&app, "carol").await.expect("carol exists");
    assert_eq!(
        (
            &carol["displayName"],
            &carol["capacity"],
            &carol["disabled"]
        ),
        (&json!("Carol"), &json!(3), &json!(false)),
        "{carol}"
    );
    // With the password typed.
    app.login_officer("carol").await;

    // The same id again: refused, said in words, and still one Carol.
    fill(&b, "#new-officer-id", "carol").await;
    fill(&b, "#new-officer-password", PASSWORD).await;
    click(&b, "#create-officer button[type=submit]").await;
    wait_text(
        &b,
        "#create-error",
        "An officer with this id exists already",
    )
    .await;
    assert_eq!(count(&b, "#officers-table tbody tr").await, 1);

    // A password the server does not accept: its reason, and nobody created.
    fill(&b, "#new-officer-id", "dave").await;
    fill(&b, "#new-officer-password", "short").await;
    click(&b, "#create-officer button[type=submit]").await;
    wait_text(&b, "#create-error", "password: must be at least").await;
    assert_eq!(officer(&app, "dave").await, None);
    assert_eq!(count(&b, "#officers-table tbody tr").await, 1);
    b.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_set_and_given_back_to_the_server_default_and_accounts_switched() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options {
        officer_capacity: Some(5),
        ..Options::secured()
    })
    .await;
    let alice = app.new_officer("alice").await;
    let b = driver.browser("admin").await;
    sign_in(&b, &app).await;
    wait_cell(&b, "alice", ".load", "0 of 5").await;

    // Her own capacity.
    fill(&b, &in_row("alice", ".capacity-input"), "2").await;
    click(&b, &in_row("alice", ".save-capacity")).await;
    wait_cell(&b, "alice", ".load", "0 of 2").await;
    assert_eq!(officer(&app, "alice").await.unwrap()["capacity"], 2);

    // A chat she claims counts in her load, live.
    let (_, chat) = app.new_customer("cust-1").await;
    app.claim(Some(&alice), "alice", &chat).await.expect(200);
    wait_cell(&b, "alice", ".load", "1 of 2").await;

    // A capacity the server refuses: its reason, and nothing changed.
    fill(&b, &in_row("alice", ".capacity-input"), "-1").await;
    click(&b, &in_row("alice", ".save-capacity")).await;
    wait_text(&b, "#officers-notice", "Not accepted: capacity").await;
    assert_eq!(officer(&app, "alice").await.unwrap()["capacity"], 2);
    wait_cell(&b, "alice", ".load", "1 of 2").await;

    // Back to the server's default.
    click(&b, &in_row("alice", ".default-capacity")).await;
    wait_cell(&b, "alice", ".load", "1 of 5").await;
    wait_text(&b, "#officers-notice", "server's default capacity").await;
    assert_eq!(officer(&app, "alice").await.unwrap()["capacity"], 5);
    let shown = js(
        &b,
        r#"return document.querySelector('tr[data-officer-id="alice"] .capacity-input').value;"#,
    )
    .await;
    assert_eq!(shown, json!("5"));

    // Disabled (asked first), then enabled again.
    click(&b, &in_row("alice", "button.disable")).await;
    click(&b, &in_row("alice", "button.disable-yes")).await;
    wait_cell(&b, "alice", ".state", "Disabled").await;
    assert_eq!(officer(&app, "alice").await.unwrap()["disabled"], true);
    app.officer_login(json!({ "officerId": "alice", "password": PASSWORD }))
        .await
        .expect_error(403, "officer_disabled");
    click(&b, &in_row("alice", "button.enable")).await;
    wait_cell(&b, "alice", ".state", "Active").await;
    assert_eq!(officer(&app, "alice").await.unwrap()["disabled"], false);
    app.login_officer("alice").await;
    b.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_and_the_longest_wait_follow_customers_and_claims_live() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let b = driver.browser("admin").await;
    sign_in(&b, &app).await;
    wait_text(&b, "#queue-length", "No chats waiting").await;
    wait_text(&b, "#longest-wait", "Nobody is waiting").await;
    wait_cell(&b, "alice", ".load", "0 (no limit)").await;
    mark(&b).await;

    // A customer logs in: a pending chat, and its wait counts up in the page by itself.
    let (_, first) = app.new_customer("cust-1").await;
    wait_text(&b, "#queue-length", "1 chat waiting").await;
    let at_first = eventually("a longest wait in seconds", || longest_wait(&b)).await;
    eventually("the longest wait to tick on", || async {
        longest_wait(&b).await.filter(|&s| s >= at_first + 2)
    })
    .await;

    // A second one, two seconds or more younger.
    let (_, second) = app.new_customer("cust-2").await;
    wait_text(&b, "#queue-length", "2 chats waiting").await;
    screenshot(&b, "admin-console").await;

    // Alice claims the oldest: one left, waiting for less time, and her load shows it.
    let before = longest_wait(&b).await.expect("a wait");
    app.claim(Some(&alice), "alice", &first).await.expect(200);
    wait_text(&b, "#queue-length", "1 chat waiting").await;
    eventually("the longest wait to be the younger chat's", || async {
        longest_wait(&b).await.filter(|&s| s + 1 < before)
    })
    .await;
    wait_cell(&b, "alice", ".load", "1 (no limit)").await;

    // And the other: nobody waits.
    app.claim(Some(&alice), "alice", &second).await.expect(200);
    wait_text(&b, "#queue-length", "No chats waiting").await;
    wait_text(&b, "#longest-wait", "Nobody is waiting").await;
    wait_cell(&b, "alice", ".load", "2 (no limit)").await;
    assert_not_reloaded(&b).await;
    b.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officers_presence_and_availability_show_live_without_losing_a_typed_capacity() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let b = driver.browser("admin").await;
    sign_in(&b, &app).await;
    wait_cell(&b, "alice", ".availability", "available").await;
    // Presence follows Alice's WebSocket, live.
    wait_cell(&b, "alice", ".presence", "offline").await;
    let socket = app.ws_auth(&alice).await;
    wait_cell(&b, "alice", ".presence", "online").await;
    drop(socket);
    wait_cell(&b, "alice", ".presence", "offline").await;
    mark(&b).await;
    // A capacity being typed, not saved.
    fill(&b, &in_row("alice", ".capacity-input"), "7").await;

    set_availability(&app, &alice, "alice", "away").await;
    wait_cell(&b, "alice", ".availability", "away").await;
    set_availability(&app, &alice, "alice", "available").await;
    wait_cell(&b, "alice", ".availability", "available").await;
    assert_not_reloaded(&b).await;
    let typed = js(
        &b,
        r#"return document.querySelector('tr[data-officer-id="alice"] .capacity-input').value;"#,
    )
    .await;
    assert_eq!(typed, json!("7"), "the update threw away what was typed");
    b.close().await.expect("close browser");
}
