//! The admin console's webhooks (`/admin`) in a real headless Chromium, against the
//! real secured server and a real receiver: each webhook's pending and dead deliveries
//! shown, and the dead ones retried from the page and then delivered.

use axum::http::Method;
use serde_json::json;

use crate::browser::{click, driver, eventually, fill, screenshot, text_of, wait_text};
use crate::helpers::{ADMIN_TOKEN, Options, spawn_app};
use crate::receiver::Receiver;

const SECRET: &str = "console-secret-0123456789";

/// The text of a cell of the first webhook's row.
async fn cell(b: &fantoccini::Client, css: &str) -> Option<String> {
    text_of(b, &format!("#webhooks tbody tr {css}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_sees_the_webhooks_backlog_and_retries_dead_deliveries() {
    let Some(driver) = driver() else { return };
    let receiver = Receiver::start(SECRET).await;
    receiver.fail_with(500);
    let mut webhooks = chatcore::WebhookSettings::default();
    webhooks.backoff_min = std::time::Duration::from_millis(50);
    webhooks.backoff_max = std::time::Duration::from_millis(100);
    webhooks.max_age = std::time::Duration::from_millis(500);
    webhooks.poll = std::time::Duration::from_millis(100);
    let app = spawn_app(Options {
        webhooks,
        ..Options::secured()
    })
    .await;
    let b = driver.browser("admin-webhooks").await;
    b.goto(&app.url("/admin")).await.expect("open the console");
    fill(&b, "#admin-token", ADMIN_TOKEN).await;
    click(&b, "#login-form button[type=submit]").await;
    wait_text(&b, ".connection", "Live").await;
    wait_text(&b, "#webhooks-empty", "No webhook is configured").await;

    app.request(
        Method::POST,
        "/api/webhooks",
        Some(ADMIN_TOKEN),
        Some(
            &json!({ "url": format!("{}?token=receiver-secret", receiver.url), "secret": SECRET }),
        ),
    )
    .await
    .expect(201);
    // A chat and a message: three events, none taken by the failing receiver.
    let (customer, chat) = app.new_customer("cust-1").await;
    app.say(&customer, &chat, "hello").await;
    b.refresh().await.expect("reload");
    wait_text(&b, ".connection", "Live").await;
    eventually("both deliveries dead", || async {
        cell(&b, ".dead").await.filter(|t| t.trim() == "2")
    })
    .await;
    let url = cell(&b, ".url").await.unwrap_or_default();
    assert!(url.ends_with("/hook"), "{url}");
    assert!(!url.contains("receiver-secret"), "the query shown: {url}");
    assert_eq!(
        cell(&b, ".events").await.as_deref(),
        Some("chat_updated, new_message")
    );
    screenshot(&b, "admin-webhooks-dead").await;

    // Fixed, then retried from the page: delivered, and the page says so.
    receiver.fail_with(0);
    click(&b, "#webhooks tbody tr .retry-dead").await;
    wait_text(
        &b,
        "#webhooks-notice",
        "2 dead deliveries are being sent again",
    )
    .await;
    receiver
        .wait_for(2, std::time::Duration::from_secs(10))
        .await;
    receiver.assert_clean();
    eventually("no dead delivery left", || async {
        let dead = cell(&b, ".dead").await?;
        let pending = cell(&b, ".pending").await?;
        (dead.trim() == "0" && pending.trim() == "0").then_some(())
    })
    .await;
    b.close().await.expect("close browser");
}
