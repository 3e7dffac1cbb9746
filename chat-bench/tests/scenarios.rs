//! Every scenario once, tiny, against a real chat-http server (in this process, over
//! real sockets), run through the built `chat-bench` binary: the JSON report must show
//! every correctness check passed and figures that match what was asked. And the
//! failure paths: a failed check exits 1, an unusable target exits 3.

mod common;

use chat_postgres::testing::TestDatabase;
use common::{TestServer, bench, passed, row, server, strings, target_args};

fn with_target(server: &TestServer, args: &[&str]) -> Vec<String> {
    let mut all = target_args(server);
    all.extend(strings(args));
    all
}

#[test]
fn sends_acknowledges_and_reads_back_every_message() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "sends",
            "--connections",
            "1,2",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let sends = passed(&run, "sends");
    for (i, connections) in [1, 2].into_iter().enumerate() {
        let r = row(sends, i);
        assert_eq!(r["connections"], connections);
        assert!(r["acknowledged"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["errors"], 0);
        assert!(r["perSecond"].as_f64().unwrap() > 0.0);
        assert!(r["p99Ms"].as_f64().unwrap() >= r["p50Ms"].as_f64().unwrap());
        assert_eq!(r["samples"], r["acknowledged"]);
    }
}

/// Followed as at the desk: every chat created for an officer, its customer's and
/// officer's sockets each get every message once, in order (the scenario's check says
/// how many sockets followed).
#[test]
fn sends_with_followers_delivers_every_message_to_both_sockets() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "sends",
            "--connections",
            "3",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--followers",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let sends = passed(&run, "sends");
    assert!(row(sends, 0)["acknowledged"].as_u64().unwrap() > 0);
    let followed = sends["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .unwrap()
                .contains("every follower got every message")
        })
        .unwrap_or_else(|| panic!("no follower check: {sends:#}"));
    assert!(
        followed["detail"]
            .as_str()
            .unwrap()
            .starts_with("6 sockets followed"),
        "{followed}"
    );
}

/// A paced load sends no faster than its rate (2 connections, 40 sends a second in
/// all: 20 due in the half second measured), and still reads every message back.
#[test]
fn a_paced_load_keeps_to_its_rate() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "sends",
            "--connections",
            "2",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--rate",
            "40",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let r = row(passed(&run, "sends"), 0);
    let measured = r["acknowledged"].as_u64().unwrap();
    assert!((1..=22).contains(&measured), "{r}");
    assert!(r["perSecond"].as_f64().unwrap() <= 44.0, "{r}");
    assert_eq!(r["errors"], 0);
}

#[test]
fn fanout_delivers_every_message_to_every_receiver() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "fanout",
            "--receivers",
            "5",
            "--messages",
            "12",
            "--interval",
            "2ms",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let r = row(passed(&run, "fanout"), 0);
    assert_eq!(r["receivers"], 5);
    assert_eq!(r["delivered"], 60);
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicates"], 0);
    assert_eq!(r["samples"], 60);
}

/// `--typing` adds the two people's typing and read marks; receivers still get every
/// message once, and the server refuses none of the writers' frames.
#[test]
fn fanout_with_typing_traffic_still_delivers_everything() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "fanout",
            "--receivers",
            "4",
            "--messages",
            "10",
            "--interval",
            "2ms",
            "--typing",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let fanout = passed(&run, "fanout");
    let r = row(fanout, 0);
    assert_eq!(r["delivered"], 40);
    assert_eq!(r["lost"], 0);
    let checks = fanout["checks"].as_array().expect("checks");
    let typing = checks
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .unwrap_or("")
                .contains("typing and read marks")
        })
        .unwrap_or_else(|| panic!("a typing check: {checks:#?}"));
    assert_eq!(typing["passed"], true, "{typing:#}");
    // Ten messages 2 ms apart: typing once (both people), the mark of the first message
    // and of the last.
    assert!(
        typing["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("2 typing and 2 read frames sent, 0 refused"),
        "{typing:#}"
    );
}

#[test]
fn idle_holds_joined_sockets_and_reads_the_servers_memory() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "idle",
            "--sockets",
            "50",
            "--warmup-sockets",
            "5",
            "--settle",
            "100ms",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let r = row(passed(&run, "idle"), 0);
    assert_eq!(r["sockets"], 50);
    assert!(r["rssWarmKiB"].as_u64().unwrap() > 0, "{r}");
    assert!(r["rssAfterKiB"].as_u64().is_some(), "{r}");
    assert!(r["perSocketKiB"].as_f64().is_some(), "{r}");
}

#[test]
fn read_checks_every_page_and_list_and_reports_server_timing() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "read",
            "--requests",
            "20",
            "--history",
            "60",
            "--page-size",
            "10",
            "--officer-chats",
            "3",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let read = passed(&run, "read");
    let page = row(read, 0);
    assert_eq!(page["items"], 10);
    assert_eq!(page["samples"], 20);
    // The test server sends Server-Timing, so server-side figures are there.
    assert!(page["serverP99Ms"].as_f64().is_some(), "{page}");
    assert_eq!(row(read, 2)["items"], 3);
}

/// Webhooks off, then on to the bench's own receiver, twice (the webhook deleted and
/// made again between the rounds), then a backlog drained: every event arrives once
/// and in order (the scenario's checks), with the figures asked for, summed.
#[test]
fn webhooks_deliver_every_event_of_both_phases_and_the_backlog() {
    let server = TestServer::builder()
        .secured()
        .configure_service(|config| {
            config.webhooks.backoff_min = std::time::Duration::from_millis(20);
            config.webhooks.backoff_max = std::time::Duration::from_millis(200);
            config.webhooks.poll = std::time::Duration::from_millis(100);
        })
        .start();
    let run = bench(&with_target(
        &server,
        &[
            "webhooks",
            "--connections",
            "2",
            "--duration",
            "500ms",
            "--warmup",
            "100ms",
            "--backlog",
            "200",
            "--drain-timeout",
            "30s",
            "--rounds",
            "2",
            "--followers",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let webhooks = passed(&run, "webhooks");
    assert!(
        webhooks["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["detail"]
                .as_str()
                .unwrap()
                .ends_with("received by the chat's two followers")),
        "{webhooks}"
    );
    assert_eq!(row(webhooks, 0)["phase"], "sends off");
    assert!(row(webhooks, 0)["perSecond"].as_f64().unwrap() > 0.0);
    let on = row(webhooks, 1);
    assert_eq!(on["phase"], "sends on");
    // Each round's two chats' creations and their messages, both rounds summed.
    assert!(on["events"].as_u64().unwrap() > 2 * 2, "{on}");
    assert!(on["acknowledged"].as_u64().unwrap() > 0, "{on}");
    assert!(
        webhooks["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("2 round(s)")),
        "{webhooks}"
    );
    assert!(on["deliveredPerSecond"].as_f64().unwrap() > 0.0, "{on}");
    let backlog = row(webhooks, 2);
    assert_eq!(backlog["events"], 2 * (1 + 100));
    assert!(
        backlog["deliveredPerSecond"].as_f64().unwrap() > 0.0,
        "{backlog}"
    );
}

#[test]
fn claims_find_exactly_one_winner_per_chat() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &["claims", "--officers", "3", "--chats", "10"],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let r = row(passed(&run, "claims"), 0);
    assert_eq!(r["attempts"], 30);
    assert_eq!(r["won"], 10);
    assert_eq!(r["lost"], 20);
    assert!(r["attemptsPerSecond"].as_f64().unwrap() > 0.0);
}

/// Manual assignment (the test server's default, no capacity): officers race to claim
/// each chat as they hear of it; one of them comes and goes.
#[test]
fn desk_serves_every_customer_with_officers_claiming() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "desk",
            "--officers",
            "3",
            "--customers",
            "12",
            "--duration",
            "1s",
            "--messages",
            "1-2",
            "--think",
            "10ms-40ms",
            "--reaction",
            "5ms-40ms",
            "--churn",
            "0.34",
            "--churn-every",
            "300ms",
            "--away-for",
            "100ms-300ms",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let desk = passed(&run, "desk");
    assert_eq!(desk["extra"]["assignment"], "manual");
    assert_eq!(desk["extra"]["served"], 12);
    assert_eq!(desk["extra"]["claimsWon"], 12);
    // login -> assigned: every chat, each on the customer's socket (claims come after).
    assert_eq!(row(desk, 1)["samples"], 12);
    assert_eq!(row(desk, 3)["samples"], 12);
    assert!(row(desk, 8)["samples"].as_u64().unwrap() > 0, "{desk:#}");
}

/// Automatic assignment with a capacity of 2: the server gives each chat at once, and
/// no officer ever holds more than 2.
#[test]
fn desk_serves_every_customer_with_automatic_assignment_within_capacity() {
    let server = TestServer::builder()
        .secured()
        .configure_service(|config| {
            config.assignment = chatcore::Assignment::Auto;
            config.officer_capacity = Some(2);
        })
        .start();
    let run = bench(&with_target(
        &server,
        &[
            "desk",
            "--officers",
            "4",
            "--customers",
            "20",
            "--duration",
            "1s",
            "--messages",
            "1-2",
            "--think",
            "10ms-40ms",
            "--churn",
            "0.5",
            "--churn-every",
            "300ms",
            "--away-for",
            "100ms-300ms",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let desk = passed(&run, "desk");
    assert_eq!(desk["extra"]["assignment"], "auto");
    assert_eq!(desk["extra"]["served"], 20);
    assert_eq!(desk["extra"]["capacity"], "2");
    assert!(
        desk["extra"]["peakOpenChats"].as_u64().unwrap() <= 2,
        "{desk:#}"
    );
    assert_eq!(row(desk, 1)["samples"], 20);
    assert_eq!(desk["extra"]["claimsWon"], 0);
}

/// Two nodes on one PostgreSQL database, automatic assignment, capacity 2: officers and
/// customers are spread over both nodes, and every check holds across them.
#[test]
fn desk_runs_across_two_nodes_on_postgres() {
    let Some(pg) = TestDatabase::start("desk_runs_across_two_nodes_on_postgres") else {
        return;
    };
    let node = || {
        TestServer::builder()
            .secured()
            .postgres(pg.config().clone())
            .configure_service(|config| {
                config.assignment = chatcore::Assignment::Auto;
                config.officer_capacity = Some(2);
            })
            .start()
    };
    let (a, b) = (node(), node());
    let mut args = target_args(&a);
    args.extend(strings(&[
        "--also-server",
        b.url(),
        "desk",
        "--officers",
        "4",
        "--customers",
        "20",
        "--duration",
        "1s",
        "--messages",
        "1-2",
        "--think",
        "10ms-40ms",
        "--churn",
        "0.5",
        "--churn-every",
        "300ms",
        "--away-for",
        "100ms-300ms",
    ]));
    let run = bench(&args);
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let desk = passed(&run, "desk");
    assert_eq!(desk["extra"]["assignment"], "auto");
    assert_eq!(desk["extra"]["served"], 20);
    assert!(
        desk["extra"]["peakOpenChats"].as_u64().unwrap() <= 2,
        "{desk:#}"
    );
}

#[test]
fn slowloris_holds_half_open_connections_while_clients_are_served() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "attack",
            "slowloris",
            "--connections",
            "20",
            "--trickle",
            "200ms",
            "--warmup",
            "500ms",
            "--duration",
            "1s",
            "--clients",
            "2",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let r = row(passed(&run, "slowloris"), 0);
    assert_eq!(r["attackers"], 20);
    // Loopback is not capped per address on this server: it holds all 20.
    assert_eq!(r["heldMax"], 20, "{r}");
    assert!(r["attackerConnects"].as_u64().unwrap() >= 20, "{r}");
    assert!(r["requests"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["failed"], 0);
    assert_eq!(r["samples"], r["requests"]);
}

#[test]
fn read_flood_asks_for_pages_it_never_reads_and_reads_the_servers_memory() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "attack",
            "read-flood",
            "--connections",
            "3",
            "--messages",
            "20",
            "--hold",
            "1s",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let r = row(passed(&run, "read-flood"), 0);
    assert_eq!(r["connections"], 3);
    // 20 messages of 4,000 characters, each escaped to 6 bytes.
    assert!(r["pageBytes"].as_u64().unwrap() > 20 * 4000 * 6, "{r}");
    assert!(r["rssPeakKiB"].as_u64().unwrap() >= r["rssBeforeKiB"].as_u64().unwrap());
    // The hold is far under the write timeout: every answer arrives whole.
    assert_eq!(r["complete"], 3, "{r}");
    assert_eq!(r["cutOff"], 0, "{r}");
}

#[test]
fn all_in_smoke_size_runs_every_scenario() {
    let server = server();
    let run = bench(&with_target(&server, &["all", "--smoke"]));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    for name in ["sends", "fanout", "idle", "read", "claims", "desk"] {
        passed(&run, name);
    }
    assert_eq!(run.report["passed"], true);
}

/// A check that fails (here: the dataset to read is not on the server) exits 1, and the
/// report says which check.
#[test]
fn a_failed_check_exits_1() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &["read", "--dataset", "no-such-dataset"],
    ));
    assert_eq!(run.code, 1, "{:#}", run.report);
    assert_eq!(run.report["passed"], false);
    let read = &run.report["scenarios"][0];
    assert_eq!(read["checks"][0]["passed"], false);
    assert!(
        read["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-dataset-o0"),
        "{read:#}"
    );
}

/// A secured server and no admin token: the run cannot start (exit 3) and says why.
#[test]
fn a_target_without_the_secrets_it_needs_exits_3() {
    let server = server();
    let output = std::process::Command::new(common::bench_binary())
        .args(["--server", server.url(), "claims"])
        .env_remove("CHAT_ADMIN_TOKEN")
        .env_remove("CHAT_CUSTOMER_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin-token"), "{stderr}");
}

/// `--spawn` starts the real chat-http binary (built beside chat-bench by
/// `cargo test --workspace`), runs against it and stops it.
#[test]
fn spawn_runs_against_a_chat_http_process() {
    let chat_http = common::bench_binary().with_file_name("chat-http");
    if !chat_http.exists() {
        let why = format!(
            "{} is not built (run `cargo build -p chat-http` or `cargo test --workspace`)",
            chat_http.display()
        );
        assert!(std::env::var_os("CI").is_none(), "{why}");
        eprintln!("skipped: {why}");
        return;
    }
    let run = bench(&strings(&[
        "--spawn",
        chat_http.to_str().unwrap(),
        "claims",
        "--officers",
        "2",
        "--chats",
        "5",
    ]));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    assert_eq!(run.report["spawned"], true);
    assert_eq!(row(passed(&run, "claims"), 0)["won"], 5);
}

/// Files of two sizes up and back, every one checked; text timed alone and beside
/// uploads; every chat dense.
#[test]
fn attachments_move_every_file_and_time_text_beside_them() {
    let server = server();
    let run = bench(&with_target(
        &server,
        &[
            "attachments",
            "--sizes",
            "10KiB,200KiB",
            "--files",
            "6",
            "--workers",
            "2",
            "--text-messages",
            "10",
            "--text-interval",
            "5ms",
            "--load-workers",
            "1",
            "--load-mibps",
            "20",
        ],
    ));
    assert_eq!(run.code, 0, "{:#}\n{}", run.report, run.stderr);
    let scenario = passed(&run, "attachments");
    let phases = [
        ("upload", 10, 6),
        ("download", 10, 6),
        ("upload", 200, 6),
        ("download", 200, 6),
        ("text idle", 0, 10),
        ("text during uploads", 0, 10),
    ];
    for (i, (phase, kib, files)) in phases.into_iter().enumerate() {
        let r = row(scenario, i);
        assert_eq!(
            (
                r["phase"].as_str().unwrap(),
                r["sizeKiB"].as_u64().unwrap(),
                r["files"].as_u64().unwrap()
            ),
            (phase, kib, files),
            "{r}"
        );
        assert!(r["p99Ms"].as_f64().unwrap() > 0.0, "{r}");
        if kib > 0 {
            assert!(r["mibPerSecond"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
    let meanwhile = row(scenario, 6);
    assert_eq!(meanwhile["phase"], "uploads meanwhile");
    assert_eq!(meanwhile["sizeKiB"], 200);
}
