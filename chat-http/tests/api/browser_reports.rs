//! The desk report in the admin console (`/admin`), in a real headless Chromium against
//! the real secured server on a manual clock: the admin picks a period by days and reads
//! the figures the server computed, in total and per officer; a period with nothing in
//! it, and one the server refuses, are said in words.

use std::time::Duration;

use fantoccini::Client;

use crate::browser::{click, driver, fill, screenshot, text_of, wait_text};
use crate::helpers::{ADMIN_TOKEN, Options, TestApp, spawn_app};

/// An element's text with every run of white space as one space (table cells are
/// separated by tabs or spaces, as the browser lays them out).
async fn words(b: &Client, css: &str) -> String {
    text_of(b, css)
        .await
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

async fn sign_in(b: &Client, app: &TestApp) {
    b.goto(&app.url("/admin")).await.expect("open the console");
    fill(b, "#admin-token", ADMIN_TOKEN).await;
    click(b, "#login-form button[type=submit]").await;
    wait_text(b, ".connection", "Live").await;
}

/// Shows the report for the days `from` to `to` (included), as the admin types them.
async fn show(b: &Client, from: &str, to: &str) {
    // A date input takes what is typed in the browser's locale order; set the value
    // the way a date picker does instead.
    let set = format!(
        "document.getElementById('report-from').value = '{from}'; \
         document.getElementById('report-to').value = '{to}'; return null;"
    );
    crate::browser::js(b, &set).await;
    click(b, "#report-show").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_reads_the_desk_report_for_a_chosen_period() {
    let Some(driver) = driver() else { return };
    let app = spawn_app(Options {
        manual_clock: true,
        ..Options::secured()
    })
    .await;
    // The manual clock starts on 2027-01-15 at 08:00 UTC. alice answers one chat after
    // 45 s and resolves it after 5 min; bob answers another after 2 min.
    let alice = app.new_officer("alice").await;
    let bob = app.new_officer("bob").await;
    let (c1, chat1) = app.new_customer("cust-1").await;
    let (_c2, chat2) = app.new_customer("cust-2").await;
    app.say(&c1, &chat1, "hello?").await;
    app.claim(Some(&alice), "alice", &chat1).await.expect(200);
    app.advance(Duration::from_secs(45));
    app.say(&alice, &chat1, "Hi, Alice here").await;
    app.claim(Some(&bob), "bob", &chat2).await.expect(200);
    app.advance(Duration::from_secs(75));
    app.say(&bob, &chat2, "Bob here").await;
    app.advance(Duration::from_secs(180));
    app.request(
        axum::http::Method::POST,
        &format!("/api/chats/{chat1}/resolve"),
        Some(&alice),
        None,
    )
    .await
    .expect(200);

    let b = driver.browser("admin-report").await;
    sign_in(&b, &app).await;
    show(&b, "2027-01-15", "2027-01-15").await;
    wait_text(
        &b,
        "#report-totals caption",
        "Chats created: 2; resolved: 1",
    )
    .await;
    let totals = words(&b, "#report-totals").await;
    // First replies 45 s and 120 s: median 45 s, p90 2 min; resolution 5 min.
    assert!(
        totals.contains("Time to first reply 2 45 s 2 min 00 s"),
        "{totals}"
    );
    assert!(
        totals.contains("Time to resolution 1 5 min 00 s 5 min 00 s"),
        "{totals}"
    );
    assert_eq!(
        words(&b, "#report-officers tr[data-officer=alice]").await,
        "alice 1 45 s 45 s 1 5 min 00 s 5 min 00 s"
    );
    assert_eq!(
        words(&b, "#report-officers tr[data-officer=bob]").await,
        "bob 1 2 min 00 s 2 min 00 s 0 – –"
    );
    screenshot(&b, "admin-desk-report").await;

    // The day before: nothing, said as such.
    show(&b, "2027-01-14", "2027-01-14").await;
    wait_text(
        &b,
        "#report-totals caption",
        "Chats created: 0; resolved: 0",
    )
    .await;
    wait_text(
        &b,
        "#report-result",
        "No officer replied to or resolved a chat",
    )
    .await;

    // A period the server refuses (over 366 days): its reason, and no stale figures.
    show(&b, "2025-01-01", "2027-01-15").await;
    wait_text(&b, "#report-notice", "at most 366 days").await;
    assert_eq!(text_of(&b, "#report-totals").await, None);
    b.close().await.expect("close browser");
    app.stop().await;
}
