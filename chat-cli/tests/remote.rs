//! Remote mode (`--server`): the built binary against a real chat-http server on an
//! ephemeral port with a temporary SQLite file, asserting stdout, stderr and exit code;
//! a claim race between processes; `watch` as a child process seeing what other
//! processes send, across a server restart.

mod common;

use std::time::Duration;

use chat_http::testing::{ADMIN_TOKEN, CUSTOMER_SECRET, TestServer};
use common::{Cli, SECS_10, Watcher, chat_rows, ids, race, secured_server};
use serde_json::{Value, json};

const NO_SUCH_CHAT: &str = "01a20d5a-0000-7000-8000-000000000000";

/// A server with officer `alice` (password), logged in in `cli`'s config dir, and a
/// customer `cust-1` logged in in a config dir of their own.
struct Setup {
    server: TestServer,
    officer: Cli,
    customer: Cli,
    chat: String,
}

fn setup() -> Setup {
    let server = secured_server();
    let officer = Cli::remote(server.url());
    officer
        .run_stdin(
            &[
                "--token",
                ADMIN_TOKEN,
                "officer",
                "add",
                "alice",
                "--password-stdin",
            ],
            "correct horse\n",
        )
        .code(0);
    officer
        .run_stdin(
            &["officer", "login", "alice", "--password-stdin"],
            "correct horse\n",
        )
        .code(0);
    let customer = officer.with_config_dir("customer");
    let login = customer.json(&["customer", "login", "cust-1"]);
    let chat = login["chat"]["id"].as_str().unwrap().to_string();
    Setup {
        server,
        officer,
        customer,
        chat,
    }
}

#[test]
fn officers_log_in_and_the_token_is_saved_privately() {
    let server = secured_server();
    let cli = Cli::remote(server.url());

    // Creating officers needs the admin token on a secured server.
    cli.run(&["officer", "add", "alice", "--no-password"])
        .error(5, "unauthorized");
    let created = cli
        .run_stdin(
            &[
                "--json",
                "--token",
                ADMIN_TOKEN,
                "officer",
                "add",
                "alice",
                "--password-stdin",
            ],
            "correct horse\n",
        )
        .ok_json();
    assert_eq!(created["id"], "alice");
    cli.run(&[
        "--token",
        ADMIN_TOKEN,
        "officer",
        "add",
        "alice",
        "--no-password",
    ])
    .error(4, "officer_exists");
    cli.run(&[
        "--token",
        ADMIN_TOKEN,
        "officer",
        "add",
        "a b",
        "--no-password",
    ])
    .error(7, "invalid_id");

    // Wrong password: 401 -> 5, and nothing saved.
    cli.run_stdin(
        &["officer", "login", "alice", "--password-stdin"],
        "nope nope\n",
    )
    .error(5, "invalid_credentials");
    assert!(!cli.config_dir.join("sessions.json").exists());

    let login = cli.run_stdin(
        &["officer", "login", "alice", "--password-stdin"],
        "correct horse\n",
    );
    login.code(0);
    assert!(
        login
            .stdout
            .starts_with(&format!("logged in as officer alice on {}", server.url())),
        "{}",
        login.stdout
    );
    let file = cli.config_dir.join("sessions.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved[server.url()]["role"], "officer");
    assert_eq!(saved[server.url()]["subject"], "alice");
    assert_eq!(saved[server.url()]["token"].as_str().unwrap().len(), 64);

    // The saved token is used from now on; status says who it is.
    let status = cli.json(&["status"]);
    assert_eq!(status["mode"], "remote");
    assert_eq!(status["health"], "ok");
    assert_eq!(status["role"], "officer");
    assert_eq!(status["subject"], "alice");
    assert_eq!(status["server"], server.url());
    // A trailing slash names the same server.
    let slash = Cli::remote(&format!("{}/", server.url()));
    let slash = Cli {
        config_dir: cli.config_dir.clone(),
        ..slash
    };
    assert_eq!(slash.json(&["queue"]), serde_json::json!([]));

    // An explicit token wins over the saved one, from the flag or CHAT_TOKEN.
    let admin = cli.json(&["--token", ADMIN_TOKEN, "status"]);
    assert_eq!(admin["role"], "admin");
    let out = cli
        .command(&["--json", "status"])
        .env("CHAT_TOKEN", "not-a-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));

    // Listing officers (contract v2): the logged-in officer sees the desk.
    let officers = cli.json(&["officer", "list"]);
    assert_eq!(officers[0]["id"], "alice");

    // logout revokes the token on the server, then forgets it.
    let token = saved[server.url()]["token"].as_str().unwrap().to_string();
    let out = cli.run(&["logout"]);
    out.code(0);
    assert_eq!(
        out.stdout,
        format!("revoked and forgot the token saved for {}\n", server.url())
    );
    let status = cli.json(&["status"]);
    assert!(status.get("role").is_none());
    cli.run(&["queue"]).error(5, "unauthorized");
    cli.run(&["--token", &token, "queue"])
        .error(5, "unauthorized");
    // Nothing left to revoke or forget.
    assert_eq!(
        cli.json(&["logout"]),
        serde_json::json!({ "removed": false, "revoked": false })
    );
}

#[test]
fn the_whole_flow_over_the_contract() {
    let s = setup();
    let (officer, customer, chat) = (&s.officer, &s.customer, s.chat.as_str());

    let saved: Value =
        serde_json::from_slice(&std::fs::read(customer.config_dir.join("sessions.json")).unwrap())
            .unwrap();
    assert_eq!(saved[s.server.url()]["role"], "customer");

    let queue = officer.json(&["queue"]);
    assert_eq!(queue[0]["id"], chat);
    assert_eq!(queue[0]["status"], "pending");
    customer.run(&["queue"]).error(5, "forbidden");

    let claimed = officer.run(&["claim", chat]);
    claimed.code(0);
    assert_eq!(
        claimed.stdout,
        format!("claimed chat {chat} (customer cust-1) for officer alice\n")
    );
    assert_eq!(officer.json(&["claim", chat])["assignedOfficerId"], "alice");
    customer.run(&["claim", chat]).error(5, "forbidden");
    officer
        .run(&["claim", NO_SUCH_CHAT])
        .error(3, "chat_not_found");
    // A malformed chat id gets the contract's words, not a web framework's.
    let bad = officer.run(&["claim", "nope"]);
    bad.error(7, "invalid_parameter");
    assert!(
        bad.stderr.contains("chatId in the path must be a UUID"),
        "{}",
        bad.stderr
    );

    let mine = officer.json(&["chats"]);
    assert_eq!(mine[0]["id"], chat);
    assert_eq!(officer.json(&["chats", "alice"]), mine);
    officer.run(&["chats", "bob"]).error(5, "forbidden");

    // The claim is the chat's first entry (seq 1); messages follow it.
    let m1 = customer.json(&["send", chat, "Hello?"]);
    assert_eq!(
        (m1["seq"].as_u64(), m1["senderType"].as_str()),
        (Some(2), Some("customer"))
    );
    let m2 = officer.run(&["send", chat, "Hi, I am Alice.", "--client-id", "k1"]);
    m2.code(0);
    assert_eq!(m2.stdout, format!("sent #3 to chat {chat}\n"));
    let retry = officer.json(&["send", chat, "Hi, I am Alice.", "--client-id", "k1"]);
    assert_eq!(retry["seq"], 3);
    officer.run(&["send", chat, " "]).error(7, "empty_content");
    officer
        .run(&["--json", "send", chat, &"x".repeat(4001)])
        .json_error(7, "message_too_large");
    // A customer cannot tell an unknown chat from someone else's: both are refused.
    customer
        .run(&["send", NO_SUCH_CHAT, "hi"])
        .error(5, "forbidden");
    officer
        .run(&["send", NO_SUCH_CHAT, "hi"])
        .error(3, "chat_not_found");

    let page = customer.json(&["messages", chat]);
    let seqs: Vec<u64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(
        (
            &page[0]["senderType"],
            &page[0]["senderId"],
            &page[0]["content"]
        ),
        (
            &json!("system"),
            &json!("alice"),
            &json!("alice took the chat")
        )
    );
    assert_eq!(
        page[0]["event"],
        json!({ "kind": "claimed", "officerId": "alice" })
    );
    assert_eq!(
        officer.json(&["messages", chat, "--after", "2"])[0]["content"],
        "Hi, I am Alice."
    );
    let before: Vec<u64> = officer
        .json(&["messages", chat, "--before", "3"])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(before, [1, 2]);
    assert_eq!(
        officer.json(&["messages", chat, "--before", "3", "--limit", "1"])[0]["seq"],
        2
    );
    officer
        .run(&["messages", chat, "--limit", "5000"])
        .error(7, "invalid_parameter");
    let table = officer.run(&["messages", chat]);
    table.code(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", table.stdout);
    assert!(
        lines[1].contains("  [system]  ") && lines[1].ends_with("  alice took the chat"),
        "{}",
        table.stdout
    );
    assert!(lines[2].ends_with("Hello?"), "{}", table.stdout);
    assert!(lines[3].ends_with("Hi, I am Alice."), "{}", table.stdout);

    let status = customer.json(&["status"]);
    assert_eq!(
        (status["role"].as_str(), status["subject"].as_str()),
        (Some("customer"), Some("cust-1"))
    );

    // A claim given only a token (no saved login) learns the officer over the WebSocket.
    let (chat2, _) = officer.with_config_dir("cust-2").customer("cust-2");
    let alice_token: Value =
        serde_json::from_slice(&std::fs::read(officer.config_dir.join("sessions.json")).unwrap())
            .unwrap();
    let alice_token = alice_token[s.server.url()]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = officer.with_config_dir("other");
    let claimed = other.json(&["--token", &alice_token, "claim", &chat2]);
    assert_eq!(claimed["assignedOfficerId"], "alice");
    assert_eq!(
        other.json(&["--token", &alice_token, "messages", &chat2])[0]["content"],
        "alice took the chat"
    );

    // Local mode on the server's own database while it runs: the write is stored and
    // REST reads see it (live WebSocket delivery is only for the server's own writes).
    let db = s.server.db().unwrap().display().to_string();
    let out = std::process::Command::new(common::BIN)
        .args([
            "--db",
            &db,
            "--json",
            "--as",
            "officer:alice",
            "send",
            chat,
            "from the shell",
        ])
        .env_remove("CHAT_SERVER")
        .env_remove("CHAT_DB")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = customer.json(&["messages", chat, "--after", "3"]);
    assert_eq!(page[0]["content"], "from the shell");
    assert_eq!(page[0]["seq"], 4);
}

/// The lifecycle commands over the contract: each officer with their saved token, the
/// customer with theirs, the admin with the admin token; refusals keep the contract's
/// code and their exit code.
#[test]
fn resolve_release_transfer_and_reopen_over_the_contract() {
    let s = setup();
    let (alice, customer, chat) = (&s.officer, &s.customer, s.chat.as_str());
    let bob = alice.with_config_dir("bob");
    bob.run_stdin(
        &[
            "--token",
            ADMIN_TOKEN,
            "officer",
            "add",
            "bob",
            "--display-name",
            "Bob",
            "--password-stdin",
        ],
        "battery staple\n",
    )
    .code(0);
    bob.run_stdin(
        &["officer", "login", "bob", "--password-stdin"],
        "battery staple\n",
    )
    .code(0);
    let admin = |args: &[&str]| {
        let mut all = vec!["--token", ADMIN_TOKEN];
        all.extend_from_slice(args);
        alice.run(&all)
    };

    alice.run(&["release", chat]).error(4, "not_assigned");
    alice
        .run(&["--json", "release", chat])
        .json_error(4, "not_assigned");

    alice.json(&["claim", chat]);
    let released = alice.run(&["release", chat]);
    released.code(0);
    assert_eq!(
        released.stdout,
        format!("released chat {chat} (customer cust-1) back to the queue\n")
    );
    assert_eq!(alice.json(&["queue"])[0]["id"], chat);

    alice.json(&["claim", chat]);
    alice
        .run(&["transfer", chat, "nobody"])
        .error(3, "officer_not_found");
    alice
        .run(&["--json", "transfer", chat, "nobody"])
        .json_error(3, "officer_not_found");
    bob.run(&["transfer", chat, "bob"]).error(5, "forbidden");
    let transferred = alice.run(&["transfer", chat, "bob"]);
    transferred.code(0);
    assert_eq!(
        transferred.stdout,
        format!("transferred chat {chat} (customer cust-1) to officer bob\n")
    );
    alice.run(&["release", chat]).error(5, "forbidden");
    bob.json(&["send", chat, "Bob here"]);

    customer.run(&["release", chat]).error(5, "forbidden");
    let resolved = customer.json(&["resolve", chat]);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["assignedOfficerId"], "bob");
    customer
        .run(&["send", chat, "one more thing"])
        .error(4, "chat_resolved");
    bob.run(&["--json", "send", chat, "bye"])
        .json_error(4, "chat_resolved");
    assert_eq!(
        bob.run(&["resolve", chat]).stdout,
        format!("resolved chat {chat} (customer cust-1)\n")
    );

    let reopened = bob.run(&["reopen", chat]);
    reopened.code(0);
    assert_eq!(
        reopened.stdout,
        format!("reopened chat {chat} (customer cust-1) for officer bob\n")
    );
    bob.run(&["reopen", chat]).error(4, "not_resolved");
    admin(&["resolve", chat]).code(0);
    admin(&["reopen", chat]).error(7, "invalid_field");

    // The customer starts another chat: the old one cannot be reopened while it is open.
    let second = customer.json(&["customer", "login", "cust-1"]);
    assert_eq!(second["created"], true);
    admin(&["reopen", chat, "--for", "alice"]).error(4, "customer_has_open_chat");
    alice
        .run(&["--json", "reopen", chat])
        .json_error(4, "customer_has_open_chat");
    customer.json(&["resolve", second["chat"]["id"].as_str().unwrap()]);
    let reopened = admin(&["--json", "reopen", chat, "--for", "alice"]).ok_json();
    assert_eq!(
        (
            reopened["status"].as_str(),
            reopened["assignedOfficerId"].as_str()
        ),
        (Some("assigned"), Some("alice"))
    );

    // The timeline reads as sentences, marked [system]: every change, each claim
    // included, in order with the messages.
    let table = alice.run(&["messages", chat]);
    table.code(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{}", table.stdout);
    for (line, sentence) in [
        (1, "alice took the chat"),
        (2, "alice put the chat back in the queue"),
        (3, "alice took the chat"),
        (4, "alice transferred the chat to Bob"),
    ] {
        assert!(
            lines[line].starts_with(&format!("{line} "))
                && lines[line].contains("  [system]  ")
                && lines[line].ends_with(&format!("  {sentence}")),
            "{}",
            table.stdout
        );
    }
    assert!(
        lines[5].contains("officer:bob") && lines[5].ends_with("Bob here"),
        "{}",
        table.stdout
    );
    assert!(
        lines
            .last()
            .unwrap()
            .ends_with("An administrator reopened the chat for alice"),
        "{}",
        table.stdout
    );
    let timeline = alice.json(&["messages", chat]);
    let entries: Vec<(&str, &str)> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["senderType"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("system", "alice took the chat"),
            ("system", "alice put the chat back in the queue"),
            ("system", "alice took the chat"),
            ("system", "alice transferred the chat to Bob"),
            ("officer", "Bob here"),
            ("system", "The customer ended the chat"),
            ("system", "Bob reopened the chat"),
            ("system", "An administrator ended the chat"),
            ("system", "An administrator reopened the chat for alice"),
        ]
    );
    for i in [0, 2] {
        assert_eq!(
            timeline[i]["event"],
            json!({ "kind": "claimed", "officerId": "alice" }),
            "{}",
            timeline[i]
        );
    }
    assert_eq!(timeline[3]["senderType"], "system");
    assert_eq!(timeline[3]["event"]["kind"], "transferred");
    assert_eq!(timeline[3]["event"]["fromOfficerId"], "alice");
}

/// `chats --status` over the contract (`?status=`): the logged-in officer's chats by
/// default, newest activity first; the admin names the officer; a customer may not.
#[test]
fn chats_by_status_over_the_contract() {
    let s = setup();
    let (alice, customer, c1) = (&s.officer, &s.customer, s.chat.clone());
    let (c2, _) = alice.with_config_dir("cust-2").customer("cust-2");
    let (c3, _) = alice.with_config_dir("cust-3").customer("cust-3");
    for chat in [&c1, &c2, &c3] {
        alice.json(&["claim", chat]);
    }
    // Activity: the customer writes in the oldest, then the middle one ends.
    customer.json(&["send", &c1, "still there?"]);
    alice.json(&["resolve", &c2]);

    let open = alice.json(&["chats"]);
    assert_eq!(ids(&open), [c1.as_str(), c3.as_str()]);
    assert_eq!(alice.json(&["chats", "--status", "open"]), open);
    let resolved = alice.json(&["chats", "--status", "resolved"]);
    assert_eq!(ids(&resolved), [c2.as_str()]);
    assert_eq!(
        (&resolved[0]["status"], &resolved[0]["assignedOfficerId"]),
        (&json!("resolved"), &json!("alice"))
    );
    let all = alice.json(&["chats", "alice", "--status", "all"]);
    assert_eq!(ids(&all), [c2.as_str(), c1.as_str(), c3.as_str()]);
    // The admin names the officer.
    assert_eq!(
        alice.json(&["--token", ADMIN_TOKEN, "chats", "alice", "--status", "all"]),
        all
    );
    assert_eq!(
        alice.json(&[
            "--token",
            ADMIN_TOKEN,
            "chats",
            "nobody",
            "--status",
            "resolved"
        ]),
        json!([])
    );

    let table = alice.run(&["chats", "--status", "all"]);
    table.code(0);
    assert_eq!(table.stderr, "");
    assert!(table.stdout.starts_with("CHAT "), "{}", table.stdout);
    assert_eq!(
        chat_rows(&table.stdout),
        [
            [c2.as_str(), "cust-2", "resolved", "alice"],
            [c1.as_str(), "cust-1", "assigned", "alice"],
            [c3.as_str(), "cust-3", "assigned", "alice"],
        ],
        "{}",
        table.stdout
    );
    // Once the open ones end too, none is open.
    alice.json(&["resolve", &c1]);
    alice.json(&["resolve", &c3]);
    let none = alice.run(&["chats"]);
    none.code(0);
    assert_eq!(none.stdout, "(no chats)\n");
    assert_eq!(
        ids(&alice.json(&["chats", "--status", "resolved"])),
        [c3.as_str(), c1.as_str(), c2.as_str()]
    );

    // A value clap does not know never reaches the server: usage (2).
    let bad = alice.run(&["chats", "--status", "closed"]);
    bad.code(2);
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    assert!(bad.stderr.contains("--status"), "{}", bad.stderr);
    // A customer sees no officer's chats (5); an officer no one else's.
    customer
        .run(&["chats", "alice", "--status", "resolved"])
        .error(5, "forbidden");
    customer
        .run(&["--json", "chats", "alice", "--status", "all"])
        .json_error(5, "forbidden");
    alice
        .run(&["chats", "bob", "--status", "all"])
        .error(5, "forbidden");
}

/// `customer chats` over the contract: the logged-in customer's chats by default,
/// newest first; officers and the admin name the customer; another customer's are
/// forbidden (5).
#[test]
fn customer_chats_over_the_contract() {
    let s = setup();
    let (alice, customer, first) = (&s.officer, &s.customer, s.chat.clone());
    let mine = customer.json(&["customer", "chats"]);
    assert_eq!(ids(&mine), [first.as_str()]);
    assert_eq!(mine[0]["status"], "pending");

    alice.json(&["claim", &first]);
    customer.json(&["resolve", &first]);
    let again = customer.json(&["customer", "login", "cust-1"]);
    assert_eq!(again["created"], true);
    let second = again["chat"]["id"].as_str().unwrap().to_string();

    let mine = customer.json(&["customer", "chats"]);
    assert_eq!(ids(&mine), [second.as_str(), first.as_str()]);
    assert_eq!(
        (
            &mine[0]["status"],
            &mine[1]["status"],
            &mine[1]["assignedOfficerId"]
        ),
        (&json!("pending"), &json!("resolved"), &json!("alice"))
    );
    assert_eq!(customer.json(&["customer", "chats", "cust-1"]), mine);
    assert_eq!(alice.json(&["customer", "chats", "cust-1"]), mine);
    assert_eq!(
        alice.json(&["--token", ADMIN_TOKEN, "customer", "chats", "cust-1"]),
        mine
    );
    assert_eq!(alice.json(&["customer", "chats", "cust-9"]), json!([]));

    let table = customer.run(&["customer", "chats"]);
    table.code(0);
    assert_eq!(table.stderr, "");
    assert!(table.stdout.starts_with("CHAT "), "{}", table.stdout);
    assert_eq!(
        chat_rows(&table.stdout),
        [
            [second.as_str(), "cust-1", "pending", "-"],
            [first.as_str(), "cust-1", "resolved", "alice"],
        ],
        "{}",
        table.stdout
    );
    let none = alice.run(&["customer", "chats", "cust-9"]);
    none.code(0);
    assert_eq!(none.stdout, "(no chats)\n");

    // Another customer's chats: forbidden, whoever asks as a customer.
    customer
        .run(&["customer", "chats", "cust-2"])
        .error(5, "forbidden");
    customer
        .run(&["--json", "customer", "chats", "cust-2"])
        .json_error(5, "forbidden");
    let other = alice.with_config_dir("cust-2");
    other.customer("cust-2");
    other
        .run(&["customer", "chats", "cust-1"])
        .error(5, "forbidden");
    assert_eq!(ids(&other.json(&["customer", "chats"])).len(), 1);
    // Without a token: unauthorized (5).
    Cli::remote(s.server.url())
        .run(&["customer", "chats", "cust-1"])
        .error(5, "unauthorized");
}

/// Without an id, `customer chats` lists the token's customer's chats; for a token of
/// an officer or the admin there is no such customer: a usage error, as `chats` without
/// an officer is for the admin.
#[test]
fn customer_chats_without_an_id_needs_a_customer_token() {
    let s = setup();
    // A customer whose id happens to be the officer's.
    s.officer.with_config_dir("namesake").customer("alice");
    s.officer.run(&["customer", "chats"]).error(2, "usage");
    s.officer
        .run(&["--token", ADMIN_TOKEN, "customer", "chats"])
        .error(2, "usage");
    s.officer
        .run(&["--token", ADMIN_TOKEN, "chats"])
        .error(2, "usage");
}

#[test]
fn an_unreachable_server_exits_6() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cli = Cli::remote(&format!("http://127.0.0.1:{port}"));
    cli.run(&["--token", "t", "queue"]).error(6, "unreachable");
    cli.run(&["--json", "status"]).json_error(6, "unreachable");
    cli.run(&["--token", "t", "watch", "queue"])
        .error(6, "unreachable");
    cli.run(&["--as", "officer:a", "queue"]).error(2, "usage");
}

/// Eight officers, each in their own CLI process with their own saved login, claim one
/// chat at once: exactly one exits 0, the others exit 4 with `already_assigned`.
#[test]
fn claim_race_between_processes_has_one_winner() {
    let server = secured_server();
    let admin = Cli::remote(server.url());
    let officers: Vec<Cli> = (0..8)
        .map(|i| {
            let id = format!("officer-{i}");
            admin
                .run(&[
                    "--token",
                    ADMIN_TOKEN,
                    "officer",
                    "add",
                    &id,
                    "--password-stdin",
                ])
                .error(7, "invalid_field"); // empty standard input: no password, refused
            admin
                .run_stdin(
                    &[
                        "--token",
                        ADMIN_TOKEN,
                        "officer",
                        "add",
                        &id,
                        "--password-stdin",
                    ],
                    "correct horse\n",
                )
                .code(0);
            let cli = admin.with_config_dir(&id);
            cli.run_stdin(
                &["officer", "login", &id, "--password-stdin"],
                "correct horse\n",
            )
            .code(0);
            cli
        })
        .collect();
    for round in 0..3 {
        let (chat, _) = admin.customer(&format!("racer-{round}"));
        let runs = race(
            officers
                .iter()
                .map(|o| o.command(&["--json", "claim", &chat]))
                .collect(),
        );
        let winners: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].code == 0).collect();
        assert_eq!(winners.len(), 1, "round {round}: {runs:#?}");
        let winner = format!("officer-{}", winners[0]);
        for (i, run) in runs.iter().enumerate() {
            if i != winners[0] {
                let err = run.json_error(4, "already_assigned");
                assert!(err["error"]["message"].as_str().unwrap().ends_with(&winner));
            }
        }
        let owned = officers[winners[0]].json(&["chats"]);
        assert!(
            owned
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == chat.as_str())
        );
    }
    assert_eq!(officers[0].json(&["queue"]), serde_json::json!([]));
}

/// `watch chat --json` in a child process prints, as JSON Lines, what other CLI processes
/// send; after the server restarts it reconnects and prints what it missed, once.
#[test]
fn watch_chat_sees_other_processes_and_survives_a_restart() {
    let mut s = setup();
    let (officer, customer, chat) = (&s.officer, &s.customer, s.chat.clone());
    officer.json(&["claim", &chat]);
    customer.json(&["send", &chat, "before the watch"]);

    // Without --after-seq the watch starts at the newest message.
    let watcher = Watcher::spawn(officer.command(&["--json", "watch", "chat", &chat]));
    let human = Watcher::spawn(customer.command(&["watch", "chat", &chat, "--after-seq", "0"]));
    // Started without --after-seq, the watcher joins after the newest message: the
    // claim's entry is seq 1, the customer's message seq 2.
    assert_eq!(
        watcher.stderr_line(SECS_10),
        format!("watch: joined chat:{chat} after seq 2")
    );
    // The replay from 0 starts with the claim's system entry, as its sentence.
    let took = human.line(SECS_10);
    assert!(
        took.starts_with("#1 ") && took.ends_with(" [system] alice took the chat"),
        "{took}"
    );
    let first = human.line(SECS_10);
    assert!(
        first.starts_with("#2 ") && first.ends_with("customer:cust-1: before the watch"),
        "{first}"
    );

    let sent = customer.json(&["send", &chat, "is anyone there?"]);
    let frame = watcher.json_line(SECS_10);
    assert_eq!(frame["type"], "new_message");
    assert_eq!(frame["message"], sent);
    assert_eq!(frame["message"]["seq"], 3);
    assert!(
        human
            .line(SECS_10)
            .ends_with("customer:cust-1: is anyone there?")
    );

    let reply = officer.json(&["send", &chat, "yes, Alice here"]);
    assert_eq!(watcher.json_line(SECS_10)["message"], reply);
    assert!(
        human
            .line(SECS_10)
            .ends_with("officer:alice: yes, Alice here")
    );

    // The server goes away; meanwhile messages are written to its database directly
    // (local mode). On restart the watchers rejoin with afterSeq and print exactly those.
    s.server.stop();
    let db = s.server.db().unwrap().display().to_string();
    let local = |args: &[&str]| {
        let mut all = vec!["--db", db.as_str(), "--json"];
        all.extend_from_slice(args);
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.args(&all)
            .env_remove("CHAT_SERVER")
            .env_remove("CHAT_DB");
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    local(&[
        "--as",
        "officer:alice",
        "send",
        &chat,
        "while you were away 1",
    ]);
    local(&[
        "--as",
        "customer:cust-1",
        "send",
        &chat,
        "while you were away 2",
    ]);
    s.server.restart();

    for (seq, text) in [(5, "while you were away 1"), (6, "while you were away 2")] {
        let frame = watcher.json_line(Duration::from_secs(20));
        assert_eq!(frame["message"]["seq"], seq);
        assert_eq!(frame["message"]["content"], text);
        assert!(human.line(SECS_10).ends_with(text));
    }
    // Live again, and nothing printed twice.
    let after = customer.json(&["send", &chat, "back online"]);
    assert_eq!(watcher.json_line(SECS_10)["message"], after);
    assert!(human.line(SECS_10).ends_with("back online"));
    watcher.no_line(Duration::from_millis(300));
    assert!(
        watcher
            .stderr_so_far()
            .iter()
            .any(|l| l.contains("reconnecting")),
        "the watcher should say it reconnected"
    );
}

/// Many messages at once, from many processes: the watcher prints every message exactly
/// once, in seq order.
#[test]
fn watch_chat_under_a_burst_prints_each_message_once() {
    let server = secured_server();
    let officer = Cli::remote(server.url());
    officer
        .run_stdin(
            &[
                "--token",
                ADMIN_TOKEN,
                "officer",
                "add",
                "alice",
                "--password-stdin",
            ],
            "correct horse\n",
        )
        .code(0);
    officer
        .run_stdin(
            &["officer", "login", "alice", "--password-stdin"],
            "correct horse\n",
        )
        .code(0);
    let customer = officer.with_config_dir("customer");
    let (chat, _) = customer.customer("cust-1");
    officer.json(&["claim", &chat]);

    // The claim's entry is seq 1: the watch starts after it.
    let watcher = Watcher::spawn(officer.command(&["--json", "watch", "chat", &chat]));
    assert_eq!(
        watcher.stderr_line(SECS_10),
        format!("watch: joined chat:{chat} after seq 1")
    );
    const N: u64 = 24;
    let runs = race(
        (0..N)
            .map(|i| {
                let who = if i % 2 == 0 { &officer } else { &customer };
                who.command(&["send", &chat, &format!("burst {i}")])
            })
            .collect(),
    );
    assert!(runs.iter().all(|r| r.code == 0), "{runs:#?}");
    let seqs: Vec<u64> = (0..N)
        .map(|_| {
            watcher.json_line(Duration::from_secs(20))["message"]["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (2..=N + 1).collect::<Vec<_>>());
    watcher.no_line(Duration::from_millis(300));
}

/// `watch queue --json` prints each frame of `officers:all` (and of the officer's own
/// topic) as received: a new chat is `chat_updated` (created) then `queue_chat_created`;
/// a claim is `chat_updated` (claimed) then `queue_chat_claimed`, and `chat_assigned` to
/// the claiming officer (another topic, so anywhere among them).
/// What a queue watch prints besides the queue: the officers' presence and load.
const OFFICER_UPDATED: &str = "officer_updated";

#[test]
fn watch_queue_streams_created_and_claimed_chats() {
    let s = setup();
    let watcher = Watcher::spawn(s.officer.command(&["--json", "watch", "queue"]));
    assert_eq!(watcher.stderr_line(SECS_10), "watch: joined officers:all");
    let (chat, _) = s.officer.with_config_dir("cust-2").customer("cust-2");
    let updated = watcher.json_line_except(SECS_10, OFFICER_UPDATED);
    assert_eq!(
        (&updated["type"], &updated["change"]),
        (&json!("chat_updated"), &json!("created")),
        "{updated}"
    );
    assert_eq!(updated["chat"]["id"], chat.as_str());
    assert_eq!(updated["chat"]["status"], "pending");
    assert_eq!(updated["chat"]["lastSeq"], 0);
    let created = watcher.json_line_except(SECS_10, OFFICER_UPDATED);
    assert_eq!(created["type"], "queue_chat_created");
    assert_eq!(created["chat"]["id"], chat.as_str());
    assert_eq!(created["chat"]["status"], "pending");

    s.officer.json(&["claim", &chat]);
    let (mut frames, mut load) = (Vec::new(), None);
    while frames.len() < 3 || load.is_none() {
        let frame = watcher.json_line(SECS_10);
        if frame["type"] != "officer_updated" {
            frames.push(frame);
        } else if frame["officer"]["openChats"] == 1 {
            // Alice's load, announced with the claim.
            load = Some(frame);
        }
    }
    assert_eq!(load.unwrap()["officer"]["id"], "alice");
    let types: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    let at = |kind: &str| {
        types
            .iter()
            .position(|t| *t == kind)
            .unwrap_or_else(|| panic!("no {kind} in {types:?}"))
    };
    let (updated, claimed, assigned) = (
        at("chat_updated"),
        at("queue_chat_claimed"),
        at("chat_assigned"),
    );
    assert!(updated < claimed, "{types:?}");
    assert_eq!(frames[updated]["change"], "claimed");
    for i in [updated, claimed, assigned] {
        let chat_now = &frames[i]["chat"];
        assert_eq!(chat_now["id"], chat.as_str(), "{}", frames[i]);
        assert_eq!(chat_now["status"], "assigned", "{}", frames[i]);
        assert_eq!(chat_now["assignedOfficerId"], "alice", "{}", frames[i]);
    }
    // The claim's system entry is the chat's first.
    assert_eq!(frames[updated]["chat"]["lastSeq"], 1);
    // A repeated claim by the owner changes nothing and announces nothing.
    s.officer.json(&["claim", &chat]);
    watcher.no_line_except(Duration::from_millis(300), OFFICER_UPDATED);
}

/// `watch queue` without --json: one readable line per event, saying what changed and
/// where the chat now stands.
#[test]
fn watch_queue_prints_a_readable_line_for_each_change() {
    let s = setup();
    let human = Watcher::spawn(s.officer.command(&["watch", "queue"]));
    assert_eq!(human.stderr_line(SECS_10), "watch: joined officers:all");
    // The watch's socket makes Alice connected: `officer list` says so (the server
    // records presence a moment after the socket authenticates).
    let deadline = std::time::Instant::now() + SECS_10;
    loop {
        let list = s.officer.run(&["--token", ADMIN_TOKEN, "officer", "list"]);
        list.code(0);
        let row = list
            .stdout
            .lines()
            .find(|l| l.starts_with("alice"))
            .unwrap()
            .to_string();
        if row.contains(" online ") {
            assert!(row.contains(" available "), "{row}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alice never shown online: {row}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A new chat: its chat_updated (created), then the queue's event, in that order.
    let (chat, _) = s.officer.with_config_dir("cust-2").customer("cust-2");
    assert_eq!(
        human.line_except(SECS_10, OFFICER_UPDATED),
        format!("chat_updated chat={chat} customer=cust-2 officer=- status=pending change=created")
    );
    assert_eq!(
        human.line_except(SECS_10, OFFICER_UPDATED),
        format!("queue_chat_created chat={chat} customer=cust-2 officer=-")
    );

    // A claim: its chat_updated (claimed) before the queue's event; chat_assigned comes
    // on the officer's own topic, so anywhere among them.
    s.officer.run(&["claim", &chat]).code(0);
    let lines: Vec<String> = (0..3)
        .map(|_| human.line_except(SECS_10, OFFICER_UPDATED))
        .collect();
    let updated = format!(
        "chat_updated chat={chat} customer=cust-2 officer=alice status=assigned change=claimed"
    );
    let claimed = format!("queue_chat_claimed chat={chat} customer=cust-2 officer=alice");
    let assigned = format!("chat_assigned chat={chat} customer=cust-2 officer=alice");
    let at = |line: &str| {
        lines
            .iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("no {line:?} in {lines:#?}"))
    };
    assert!(at(&updated) < at(&claimed), "{lines:#?}");
    at(&assigned);

    // A login that names an officer: the chat starts assigned, never queued.
    let direct = s.officer.with_config_dir("cust-3").json(&[
        "customer",
        "login",
        "cust-3",
        "--officer",
        "alice",
    ]);
    let direct = direct["chat"]["id"].as_str().unwrap();
    let mut lines: Vec<String> = (0..2)
        .map(|_| human.line_except(SECS_10, OFFICER_UPDATED))
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("chat_assigned chat={direct} customer=cust-3 officer=alice"),
            format!(
                "chat_updated chat={direct} customer=cust-3 officer=alice status=assigned change=assigned"
            ),
        ]
    );
    human.no_line_except(Duration::from_millis(300), OFFICER_UPDATED);
}

#[test]
fn watch_refusals_end_with_their_exit_codes() {
    let s = setup();
    // A customer may not watch the queue: the join is refused (403 class).
    let mut w = Watcher::spawn(s.customer.command(&["watch", "queue"]));
    assert_eq!(w.wait_exit(SECS_10), 5);
    // A bad token is refused at auth.
    let mut w = Watcher::spawn(s.officer.command(&[
        "--token",
        "bad",
        "watch",
        "chat",
        &s.chat,
        "--after-seq",
        "0",
    ]));
    assert_eq!(w.wait_exit(SECS_10), 5);
    // No such chat (the initial REST read already says so).
    let mut w = Watcher::spawn(s.officer.command(&["watch", "chat", NO_SUCH_CHAT]));
    assert_eq!(w.wait_exit(SECS_10), 3);
    let mut w = Watcher::spawn(s.officer.command(&[
        "--json",
        "watch",
        "chat",
        NO_SUCH_CHAT,
        "--after-seq",
        "0",
    ]));
    assert_eq!(w.wait_exit(SECS_10), 3);
    let err: Value = serde_json::from_str(&w.stderr_line(SECS_10)).unwrap();
    assert_eq!(err["error"]["code"], "chat_not_found");
}

#[test]
fn disabling_an_officer_ends_their_watch_and_their_token() {
    let s = setup();
    let mut watcher = Watcher::spawn(s.officer.command(&["watch", "queue"]));
    assert_eq!(watcher.stderr_line(SECS_10), "watch: joined officers:all");
    let admin = s.officer.with_config_dir("admin");
    let disabled = admin.json(&["--token", ADMIN_TOKEN, "officer", "disable", "alice"]);
    assert_eq!(disabled["disabled"], true);
    // The watching socket is closed with 4401: an auth failure (exit 5).
    assert_eq!(watcher.wait_exit(SECS_10), 5);
    s.officer.run(&["queue"]).error(5, "unauthorized");
    admin
        .run(&["--token", ADMIN_TOKEN, "officer", "enable", "alice"])
        .code(0);
    // Only the admin may.
    s.customer
        .run(&["officer", "disable", "alice"])
        .error(5, "forbidden");
}

#[test]
fn customers_log_in_with_an_identity_token() {
    let server = TestServer::secured();
    let cli = Cli::remote(server.url()).with_config_dir("customer");
    let now = chatcore::Timestamp::now().unix_millis() / 1000;
    let token = |sub: &str, exp: i64| {
        chatcore::customer_identity_token(
            CUSTOMER_SECRET.as_bytes(),
            &chatcore::IdentityClaims {
                sub: sub.to_string(),
                exp: u64::try_from(exp).unwrap(),
                officer_id: None,
                name: Some("Ada Lovelace".to_string()),
            },
        )
    };
    let login = cli.json(&[
        "customer",
        "login",
        "--identity-token",
        &token("cust-9", now + 300),
    ]);
    assert_eq!(login["chat"]["customerId"], "cust-9");
    assert_eq!(login["chat"]["customerName"], "Ada Lovelace");
    // The token was saved: the customer writes at once.
    let chat = login["chat"]["id"].as_str().unwrap();
    cli.run(&["send", chat, "Hello"]).code(0);

    cli.run(&[
        "customer",
        "login",
        "--identity-token",
        &token("cust-9", now - 120),
    ])
    .error(5, "invalid_identity");
    // Either an identity token or an id, not both.
    cli.run(&["customer", "login", "cust-9", "--identity-token", "x"])
        .code(2);
}

#[test]
fn whoami_asks_the_server_who_the_token_is() {
    let s = setup();
    let me = s.officer.json(&["whoami"]);
    assert_eq!(
        (&me["role"], &me["subject"]),
        (&json!("officer"), &json!("alice"))
    );
    assert_eq!(me["officer"]["id"], "alice");
    let me = s.customer.json(&["whoami"]);
    assert_eq!(
        (&me["role"], &me["subject"]),
        (&json!("customer"), &json!("cust-1"))
    );
    let admin = s.officer.json(&["--token", ADMIN_TOKEN, "whoami"]);
    assert_eq!(admin["role"], "admin");
    s.officer
        .run(&["--token", "not-a-token", "whoami"])
        .error(5, "unauthorized");
    let human = s.officer.run(&["whoami"]);
    human.code(0);
    assert!(human.stdout.contains("officer") && human.stdout.contains("alice"));
}

/// Through the server: the customer attaches a file, the officer who claimed the chat
/// downloads it under its own name in the current directory.
#[test]
fn files_go_through_the_server_and_come_back_whole() {
    let s = setup();
    s.officer.run(&["claim", &s.chat]).code(0);
    let photo = s.customer.dir.path().join("id card.png");
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..40_000u32).map(|i| (i % 241) as u8));
    std::fs::write(&photo, &bytes).unwrap();
    let sent = s
        .customer
        .run(&[
            "--json",
            "attach",
            &s.chat,
            photo.to_str().unwrap(),
            "--type",
            "image/png",
        ])
        .ok_json();
    assert_eq!(sent["attachment"]["name"], "id card.png");
    let id = sent["attachment"]["id"].as_str().unwrap().to_string();
    let mut download = s.officer.command(&["download", &id]);
    download.current_dir(s.officer.dir.path());
    let out = download.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = s.officer.dir.path().join("id card.png");
    assert!(std::fs::read(saved).unwrap() == bytes);
    // A declared type the bytes do not match is refused by the server: exit 7.
    s.customer
        .run(&[
            "attach",
            &s.chat,
            photo.to_str().unwrap(),
            "--type",
            "application/pdf",
        ])
        .error(7, "unsupported_type");
}
