//! `report-scale` on a small scale, through the built binary: it loads a month of chats
//! into a fresh SQLite file, and into an empty PostgreSQL database, times the desk
//! report for three periods and checks the month's figures against what it loaded.

mod common;

use common::{bench, passed, strings};

fn check_run(args: &[&str]) {
    let run = bench(&strings(args));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let scenario = passed(&run, "report-scale");
    let rows = scenario["rows"].as_array().expect("rows");
    let periods: Vec<&str> = rows.iter().map(|r| r["period"].as_str().unwrap()).collect();
    assert_eq!(periods, ["1 day", "7 days", "30 days"]);
    assert_eq!(rows[2]["chatsCreated"], 2000);
    // A day of a month of 2,000 chats evenly spread.
    let day = rows[0]["chatsCreated"].as_u64().unwrap();
    assert!((60..=75).contains(&day), "{day}");
    assert!(rows[2]["medianMs"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_report_is_timed_at_scale_on_sqlite() {
    check_run(&["report-scale", "--chats", "2000", "--runs", "2"]);
}

#[test]
fn the_report_is_timed_at_scale_on_postgres() {
    let Some(db) = chat_postgres::testing::TestDatabase::start("report_scale") else {
        return;
    };
    let url = db.url();
    check_run(&[
        "report-scale",
        "--chats",
        "2000",
        "--runs",
        "2",
        "--database-url",
        &url,
    ]);
}
