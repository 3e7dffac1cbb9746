//! `GET /api/reports/desk?from=&to=` on the real server (a manual clock, so that every
//! duration is exact): only the admin, clear 400s for bad periods, and the figures of a
//! small day at the desk: first replies by whoever sent them, a transfer, a reopening.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Options, TestApp, spawn_app};

/// The manual clock's start, 2027-01-15T08:00:00Z: the day these tests report on.
const DAY: &str = "from=2027-01-15T00:00:00Z&to=2027-01-16T00:00:00Z";

async fn report(app: &TestApp, token: Option<&str>, query: &str) -> crate::helpers::Resp {
    app.request(
        Method::GET,
        &format!("/api/reports/desk?{query}"),
        token,
        None,
    )
    .await
}

#[tokio::test]
async fn only_the_admin_reads_reports_and_bad_periods_are_400() {
    let app = spawn_app(Options {
        manual_clock: true,
        ..Options::secured()
    })
    .await;
    let alice = app.new_officer("alice").await;
    report(&app, None, DAY)
        .await
        .expect_error(401, "unauthorized");
    // An officer is refused before the period is even read.
    report(&app, Some(&alice), "from=nonsense")
        .await
        .expect_error(403, "forbidden");
    for (query, says) in [
        ("to=2027-01-16T00:00:00Z", "from: is required"),
        ("from=2027-01-15T00:00:00Z", "to: is required"),
        (
            "from=yesterday&to=2027-01-16T00:00:00Z",
            "from: must be an RFC 3339 time",
        ),
        (
            "from=2027-01-15&to=2027-01-16",
            "from: must be an RFC 3339 time",
        ),
        (
            "from=2027-01-16T00:00:00Z&to=2027-01-15T00:00:00Z",
            "to: must be after from",
        ),
        (
            "from=2027-01-15T00:00:00Z&to=2027-01-15T00:00:00Z",
            "to: must be after from",
        ),
        (
            "from=2026-01-01T00:00:00Z&to=2027-01-03T00:00:00Z",
            "at most 366 days",
        ),
    ] {
        let resp = report(&app, Some(ADMIN_TOKEN), query).await;
        resp.expect_error(400, "invalid_parameter");
        let message = resp.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(message.contains(says), "{query}: {message}");
    }
    // Any offset is read; an empty period has zeros and no officer.
    let empty = report(
        &app,
        Some(ADMIN_TOKEN),
        "from=2027-01-01T00:00:00%2B01:00&to=2027-01-02T00:00:00%2B01:00",
    )
    .await
    .expect(200);
    assert_eq!(empty["from"], "2026-12-31T23:00:00.000Z");
    assert_eq!(
        (
            &empty["chatsCreated"],
            &empty["chatsResolved"],
            &empty["officers"]
        ),
        (&json!(0), &json!(0), &json!([]))
    );
    assert_eq!(
        empty["firstReply"],
        json!({"count": 0, "medianSeconds": null, "p90Seconds": null})
    );
    app.stop().await;
}

#[tokio::test]
async fn the_report_measures_first_replies_and_resolutions_as_documented() {
    let app = spawn_app(Options {
        manual_clock: true,
        ..Options::secured()
    })
    .await;
    let alice = app.new_officer("alice").await;
    let bob = app.new_officer("bob").await;
    let (c1, chat1) = app.new_customer("cust-1").await;
    let (_c2, chat2) = app.new_customer("cust-2").await;
    let (_c3, _chat3) = app.new_customer("cust-3").await;
    app.say(&c1, &chat1, "hello?").await;
    // Chat 1: alice claims it at 20 s and answers at 30 s, then hands it to bob, who
    // answers too (not a first reply) and resolves it at 120 s.
    app.advance(Duration::from_secs(20));
    app.claim(Some(&alice), "alice", &chat1).await.expect(200);
    app.advance(Duration::from_secs(10));
    app.say(&alice, &chat1, "Hi, Alice here").await;
    app.request(
        Method::POST,
        &format!("/api/chats/{chat1}/transfer"),
        Some(&alice),
        Some(&json!({"officerId": "bob"})),
    )
    .await
    .expect(200);
    app.advance(Duration::from_secs(30));
    app.say(&bob, &chat1, "Bob here, taking over").await;
    app.advance(Duration::from_secs(60));
    app.request(
        Method::POST,
        &format!("/api/chats/{chat1}/resolve"),
        Some(&bob),
        None,
    )
    .await
    .expect(200);
    // Chat 2: bob answers at 180 s and resolves at 200 s; reopened by alice, and still
    // open: no longer resolved, and its first reply stays bob's.
    app.advance(Duration::from_secs(60));
    app.claim(Some(&bob), "bob", &chat2).await.expect(200);
    app.say(&bob, &chat2, "Hello from Bob").await;
    app.advance(Duration::from_secs(20));
    app.request(
        Method::POST,
        &format!("/api/chats/{chat2}/resolve"),
        Some(&bob),
        None,
    )
    .await
    .expect(200);
    app.request(
        Method::POST,
        &format!("/api/chats/{chat2}/reopen"),
        Some(&alice),
        None,
    )
    .await
    .expect(200);
    app.say(&alice, &chat2, "Alice reopening").await;
    // Chat 3 waits, unanswered.

    let day = report(&app, Some(ADMIN_TOKEN), DAY).await.expect(200);
    let d = |count: u64, median: f64, p90: f64| json!({"count": count, "medianSeconds": median, "p90Seconds": p90});
    let none = json!({"count": 0, "medianSeconds": null, "p90Seconds": null});
    assert_eq!(day["chatsCreated"], 3, "{day}");
    assert_eq!(day["chatsResolved"], 1, "{day}");
    assert_eq!(day["firstReply"], d(2, 30.0, 180.0), "{day}");
    assert_eq!(day["resolution"], d(1, 120.0, 120.0), "{day}");
    let officers: &Vec<Value> = day["officers"].as_array().unwrap();
    assert_eq!(
        officers,
        &vec![
            json!({"officerId": "alice", "firstReply": d(1, 30.0, 30.0), "resolution": none}),
            json!({"officerId": "bob", "firstReply": d(1, 180.0, 180.0), "resolution": d(1, 120.0, 120.0)}),
        ],
        "{day}"
    );
    // The day before: nothing.
    let before = report(
        &app,
        Some(ADMIN_TOKEN),
        "from=2027-01-14T00:00:00Z&to=2027-01-15T00:00:00Z",
    )
    .await
    .expect(200);
    assert_eq!(before["chatsCreated"], 0);
    app.stop().await;
}
