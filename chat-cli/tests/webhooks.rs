//! `webhook ...` as a process, on a local database and against a running server: add
//! (a secret from stdin or generated, printed once), list (never a secret, the events
//! made meanwhile counted pending), deliveries with a record, retry, remove; http and https URLs; the contract's
//! refusals as exit codes.

mod common;

use chat_http::testing::ADMIN_TOKEN;
use common::{Cli, secured_server};

/// A URL nothing listens on: deliveries stay pending.
const NOWHERE: &str = "http://127.0.0.1:9/hook";

fn manages_webhooks(cli: &Cli, token: &[&str]) {
    let with = |args: &[&str]| -> Vec<String> {
        token.iter().chain(args).map(|s| s.to_string()).collect()
    };
    let run = |args: &[&str]| {
        let args = with(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli.run(&args)
    };
    // A secret from standard input, and a filter.
    let args = with(&[
        "--json",
        "webhook",
        "add",
        NOWHERE,
        "--secret-stdin",
        "--events",
        "new_message",
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let added = cli.run_stdin(&args, "cli-secret-0123456789\n").ok_json();
    assert_eq!(added["secret"], "cli-secret-0123456789");
    assert_eq!(added["events"], serde_json::json!(["new_message"]));
    let id = added["id"].as_str().unwrap().to_string();
    // Generated, in words: the secret is printed once.
    let generated = run(&["webhook", "add", NOWHERE]);
    generated.code(0);
    assert!(
        generated.stdout.contains("secret: "),
        "{}",
        generated.stdout
    );
    let list = run(&["webhook", "list"]);
    list.code(0);
    assert!(list.stdout.starts_with("ID "), "{}", list.stdout);
    assert_eq!(list.stdout.lines().count(), 3, "{}", list.stdout);
    assert!(!list.stdout.contains("cli-secret"), "a secret listed");
    let listed = run(&["--json", "webhook", "list"]).ok_json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("cli-secret"));
    // Events made meanwhile wait for their deliveries.
    let (chat, customer) = cli.customer("cust-1");
    let send: Vec<String> = if token.is_empty() {
        vec![
            "--as".into(),
            "customer:cust-1".into(),
            "send".into(),
            chat.clone(),
            "hello".into(),
        ]
    } else {
        vec![
            "--token".into(),
            customer,
            "send".into(),
            chat.clone(),
            "hello".into(),
        ]
    };
    let send: Vec<&str> = send.iter().map(String::as_str).collect();
    cli.run(&send).code(0);
    // Counted: the message for the filtered one; the chat's creation and the message
    // for the other.
    let listed = run(&["--json", "webhook", "list"]).ok_json();
    let pending = |webhook: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == webhook)
            .map(|w| w["pending"].clone())
    };
    let other = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] != id.as_str())
        .and_then(|w| w["id"].as_str())
        .unwrap()
        .to_string();
    assert_eq!(pending(&id), Some(1.into()), "{listed}");
    assert_eq!(pending(&other), Some(2.into()), "{listed}");
    // Listed: the deliveries with a record of their own, the chat's creation (a
    // message gets one once an attempt failed: the server's worker may have tried).
    let all = run(&["--json", "webhook", "deliveries"]).ok_json();
    let all = all.as_array().unwrap();
    assert!(all.iter().all(|d| d["chatId"] == chat), "{all:?}");
    assert!(
        all.iter()
            .any(|d| d["type"] == "chat_updated" && d["webhookId"] == other.as_str()),
        "{all:?}"
    );
    let attempted = |d: &&serde_json::Value| d["attempts"].as_u64().unwrap() > 0;
    assert!(
        all.iter()
            .filter(|d| d["type"] == "new_message")
            .all(|d| attempted(&d)),
        "a message listed before an attempt: {all:?}"
    );
    let filtered = run(&["--json", "webhook", "deliveries", "--webhook", &id]).ok_json();
    assert!(
        filtered
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["webhookId"] == id.as_str() && d["type"] == "new_message"),
        "{filtered}"
    );
    let dead = run(&["--json", "webhook", "deliveries", "--dead"]).ok_json();
    assert_eq!(dead.as_array().unwrap().len(), 0);
    let retried = run(&["--json", "webhook", "retry"]).ok_json();
    assert_eq!(retried["retried"], 0);
    // Refusals as exit codes.
    run(&["--json", "webhook", "add", "ftp://x/y"]).json_error(7, "invalid_field");
    run(&["--json", "webhook", "add", NOWHERE, "--events", "typing"])
        .json_error(7, "invalid_field");
    run(&["--json", "webhook", "retry", "--delivery", "99999"]).json_error(3, "webhook_not_found");
    run(&["--json", "webhook", "deliveries", "--limit", "0"]).json_error(7, "invalid_parameter");
    // Removed with its deliveries.
    run(&["webhook", "remove", &id]).code(0);
    run(&["--json", "webhook", "remove", &id]).json_error(3, "webhook_not_found");
    let all = run(&["--json", "webhook", "deliveries"]).ok_json();
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["webhookId"], other.as_str(), "{all}");
    // An https receiver (chat-http sends over TLS), added and removed.
    let https = run(&["--json", "webhook", "add", "https://crm.bank.example/hooks"]).ok_json();
    assert_eq!(https["url"], "https://crm.bank.example/hooks");
    run(&["webhook", "remove", https["id"].as_str().unwrap()]).code(0);
}

#[test]
fn webhooks_are_managed_on_a_local_database() {
    let cli = Cli::local();
    manages_webhooks(&cli, &[]);
    // Only the administrator.
    cli.run(&["--json", "--as", "customer:cust-1", "webhook", "list"])
        .json_error(5, "forbidden");
}

#[test]
fn webhooks_are_managed_on_a_running_server_with_the_admin_token() {
    let server = secured_server();
    let cli = Cli::remote(server.url());
    manages_webhooks(&cli, &["--token", ADMIN_TOKEN]);
    // Without the admin token: refused.
    cli.run(&["--json", "--token", "not-a-token", "webhook", "list"])
        .json_error(5, "unauthorized");
}
