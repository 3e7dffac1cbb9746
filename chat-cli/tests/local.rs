//! Local mode (`--db`): every command run as a process on a temporary SQLite file,
//! asserting stdout, stderr and exit code, plus a claim race between processes.

mod common;

use std::process::Stdio;

use common::{Cli, chat_rows, ids, race};
use serde_json::{Value, json};

const NO_SUCH_CHAT: &str = "01a20d5a-0000-7000-8000-000000000000";

#[test]
fn help_documents_the_exit_codes() {
    let cli = Cli::local();
    let run = cli.run(&["--help"]);
    run.code(0);
    for line in [
        "0  ok",
        "2  usage",
        "3  not found",
        "4  conflict",
        "5  auth",
        "6  server unreachable",
        "7  invalid input",
        "1  anything else",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in:\n{}",
            run.stdout
        );
    }
}

#[test]
fn officers_are_created_listed_and_logged_in() {
    let cli = Cli::local();
    let alice = cli.add_officer("alice", "correct horse");
    assert_eq!(alice["id"], "alice");
    assert!(alice.get("password").is_none() && alice.get("passwordHash").is_none());

    let bob = cli.run(&[
        "officer",
        "add",
        "bob",
        "--display-name",
        "Bob B",
        "--no-password",
    ]);
    bob.code(0);
    assert_eq!(bob.stdout, "created officer bob (Bob B)\n");
    assert_eq!(bob.stderr, "");

    // Human table, then the contract's JSON.
    let list = cli.run(&["officer", "list"]);
    list.code(0);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", list.stdout);
    assert!(lines[0].starts_with("ID ") && lines[0].contains("DISPLAY NAME"));
    assert!(lines[1].starts_with("alice "));
    assert!(lines[2].starts_with("bob ") && lines[2].contains("Bob B"));
    let list = cli.json(&["officer", "list"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    assert_eq!(list[1]["displayName"], "Bob B");

    // Login prints a token (local mode saves nothing).
    let login = cli.run_stdin(
        &["officer", "login", "alice", "--password-stdin"],
        "correct horse\n",
    );
    login.code(0);
    let token = login.stdout.trim();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!cli.config_dir.exists(), "local login must not save tokens");
    let login = cli
        .run_stdin(
            &["--json", "officer", "login", "alice", "--password-stdin"],
            "correct horse\n",
        )
        .ok_json();
    assert_eq!(login["officer"]["id"], "alice");
    assert!(login["token"].is_string());

    // Wrong password: auth (5), one message for unknown id and wrong password alike.
    cli.run_stdin(
        &["officer", "login", "alice", "--password-stdin"],
        "wrong password\n",
    )
    .error(5, "invalid_credentials");
    cli.run_stdin(
        &["officer", "login", "nobody", "--password-stdin"],
        "wrong password\n",
    )
    .error(5, "invalid_credentials");
    // The local service is secured: an officer without a password cannot log in.
    cli.run(&["officer", "login", "bob", "--no-password"])
        .error(5, "invalid_credentials");
}

#[test]
fn the_admin_disables_and_enables_an_officer() {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    let disabled = cli.run(&["officer", "disable", "alice"]);
    disabled.code(0);
    assert_eq!(
        disabled.stdout,
        "disabled officer alice (sessions revoked)\n"
    );
    let list = cli.json(&["officer", "list"]);
    assert_eq!(list[0]["disabled"], true);
    assert!(cli.run(&["officer", "list"]).stdout.contains("disabled"));
    // The right password is told the account is disabled (auth, exit 5).
    cli.run_stdin(
        &["officer", "login", "alice", "--password-stdin"],
        "correct horse\n",
    )
    .error(5, "officer_disabled");
    cli.run(&["officer", "disable", "nobody"])
        .error(3, "officer_not_found");
    let enabled = cli.json(&["officer", "enable", "alice"]);
    assert_eq!(enabled["disabled"], false);
    cli.run_stdin(
        &["officer", "login", "alice", "--password-stdin"],
        "correct horse\n",
    )
    .code(0);
}

#[test]
fn officer_add_refusals_have_their_exit_codes() {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    let dup = cli.run(&["officer", "add", "alice", "--no-password"]);
    dup.error(4, "officer_exists");
    assert!(
        dup.stderr.contains("while creating officer alice"),
        "{}",
        dup.stderr
    );
    cli.run(&["--json", "officer", "add", "alice", "--no-password"])
        .json_error(4, "officer_exists");
    cli.run(&["officer", "add", "no/slash", "--no-password"])
        .error(7, "invalid_id");
    cli.run_stdin(&["officer", "add", "carol", "--password-stdin"], "short\n")
        .error(7, "invalid_field");
    cli.run_stdin(&["officer", "add", "carol", "--password-stdin"], "\n")
        .error(7, "invalid_field");
    // Never a password in argv; without a terminal there is no prompt either.
    let argv = cli.run(&["officer", "add", "carol", "--password", "secret-pass"]);
    argv.code(2);
    assert!(argv.stderr.contains("--password"), "{}", argv.stderr);
    cli.run(&["officer", "add", "carol"]).error(2, "usage");
    // Nothing of the refused attempts was stored.
    assert_eq!(cli.json(&["officer", "list"]).as_array().unwrap().len(), 1);
}

#[test]
fn customers_get_one_chat_which_waits_in_the_queue() {
    let cli = Cli::local();
    let first = cli.run(&["customer", "login", "cust-1"]);
    first.code(0);
    assert!(
        first.stdout.contains("status    pending"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains("new chat  yes"), "{}", first.stdout);
    assert!(first.stdout.lines().any(|l| l.starts_with("token ")));

    let again = cli.json(&["customer", "login", "cust-1"]);
    assert_eq!(again["created"], false);
    assert_eq!(again["chat"]["customerId"], "cust-1");
    assert_eq!(again["chat"]["status"], "pending");
    assert!(again["chat"]["assignedOfficerId"].is_null());
    let chat = again["chat"]["id"].as_str().unwrap();

    let queue = cli.json(&["queue"]);
    assert_eq!(queue.as_array().unwrap().len(), 1);
    assert_eq!(queue[0]["id"], chat);
    let table = cli.run(&["queue"]);
    table.code(0);
    assert!(table.stdout.starts_with("CHAT "), "{}", table.stdout);
    assert!(table.stdout.contains(chat));

    // A customer naming an officer: assigned at once, not queued.
    cli.add_officer("alice", "correct horse");
    let direct = cli.json(&["customer", "login", "cust-2", "--officer", "alice"]);
    assert_eq!(direct["chat"]["status"], "assigned");
    assert_eq!(direct["chat"]["assignedOfficerId"], "alice");
    assert_eq!(cli.json(&["queue"]).as_array().unwrap().len(), 1);
    // An officer who does not exist: the chat waits in the queue, as with no officer.
    let ghost = cli.json(&["customer", "login", "cust-3", "--officer", "ghost"]);
    assert_eq!(ghost["chat"]["status"], "pending");
    assert_eq!(cli.json(&["queue"]).as_array().unwrap().len(), 2);
    cli.run(&["customer", "login", "bad id"])
        .error(7, "invalid_id");
}

#[test]
fn claim_send_and_read_a_chat() {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    cli.add_officer("bob", "correct horse");
    let (chat, _) = cli.customer("cust-1");

    // The administrator cannot claim; the CLI says how to name an officer.
    cli.run(&["claim", &chat]).error(2, "usage");
    let claimed = cli.run(&["--as", "officer:alice", "claim", &chat]);
    claimed.code(0);
    assert_eq!(
        claimed.stdout,
        format!("claimed chat {chat} (customer cust-1) for officer alice\n")
    );
    // Claiming again is a no-op success; another officer loses with a conflict.
    let again = cli.json(&["--as", "officer:alice", "claim", &chat]);
    assert_eq!(again["assignedOfficerId"], "alice");
    assert_eq!(again["status"], "assigned");
    cli.run(&["--as", "officer:bob", "claim", &chat])
        .error(4, "already_assigned");
    let lost = cli.run(&["--json", "--as", "officer:bob", "claim", &chat]);
    let err = lost.json_error(4, "already_assigned");
    assert_eq!(
        err["error"]["message"],
        "the chat is already assigned to officer alice"
    );
    cli.run(&["--as", "officer:alice", "claim", NO_SUCH_CHAT])
        .error(3, "chat_not_found");
    cli.run(&["--as", "officer:alice", "claim", "not-a-uuid"])
        .error(7, "invalid_id");
    // An officer the engine does not know cannot act (not a storage error).
    cli.run(&["--as", "officer:nobody", "claim", &chat])
        .error(3, "officer_not_found");
    assert_eq!(cli.json(&["queue"]), serde_json::json!([]));

    // chats: by name, or the --as officer.
    let mine = cli.json(&["--as", "officer:alice", "chats"]);
    assert_eq!(mine[0]["id"], chat.as_str());
    assert_eq!(cli.json(&["chats", "alice"]), mine);
    assert_eq!(cli.json(&["chats", "bob"]), serde_json::json!([]));
    cli.run(&["chats"]).error(2, "usage");
    cli.run(&["--as", "officer:bob", "chats", "alice"])
        .error(5, "forbidden");

    // The claim left one system entry at seq 1 (the repeated and the lost claims none).
    let timeline = cli.json(&["messages", &chat]);
    assert_eq!(timeline.as_array().unwrap().len(), 1, "{timeline}");
    let took = &timeline[0];
    assert_eq!(
        (
            &took["seq"],
            &took["senderType"],
            &took["senderId"],
            &took["content"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!("system"),
            &serde_json::json!("alice"),
            &serde_json::json!("alice took the chat")
        )
    );
    assert_eq!(
        took["event"],
        serde_json::json!({ "kind": "claimed", "officerId": "alice" })
    );

    // Both sides write; seq grows by one, after the claim's entry.
    let m1 = cli.json(&["--as", "customer:cust-1", "send", &chat, "Hello?"]);
    assert_eq!(m1["seq"], 2);
    assert_eq!(m1["senderType"], "customer");
    assert_eq!(m1["senderId"], "cust-1");
    assert!(m1.get("event").is_none() || m1["event"].is_null(), "{m1}");
    let m2 = cli.run(&["--as", "officer:alice", "send", &chat, "Hi, I am Alice."]);
    m2.code(0);
    assert_eq!(m2.stdout, format!("sent #3 to chat {chat}\n"));
    // Text from stdin.
    let m3 = cli
        .run_stdin(
            &["--json", "--as", "customer:cust-1", "send", &chat, "-"],
            "line one\nline two\n",
        )
        .ok_json();
    assert_eq!(m3["content"], "line one\nline two");
    // Idempotent retry with a client id.
    let k1 = cli.json(&[
        "--as",
        "officer:alice",
        "send",
        &chat,
        "once",
        "--client-id",
        "k1",
    ]);
    assert_eq!(k1["seq"], 5);
    assert_eq!(k1["clientMessageId"], "k1");
    let retry = cli.run(&[
        "--as",
        "officer:alice",
        "send",
        &chat,
        "once",
        "--client-id",
        "k1",
    ]);
    retry.code(0);
    assert!(
        retry.stdout.starts_with("already sent as #5"),
        "{}",
        retry.stdout
    );

    // Refusals.
    cli.run(&["--as", "officer:bob", "send", &chat, "me too"])
        .error(5, "forbidden");
    cli.run(&["--as", "customer:cust-9", "send", &chat, "not mine"])
        .error(5, "forbidden");
    cli.run(&["send", &chat, "as admin"]).error(5, "forbidden");
    cli.run(&["--as", "officer:alice", "send", &chat, "   "])
        .error(7, "empty_content");
    let long = "x".repeat(4001);
    cli.run(&["--json", "--as", "officer:alice", "send", &chat, &long])
        .json_error(7, "message_too_large");
    cli.run(&["--as", "officer:alice", "send", NO_SUCH_CHAT, "hi"])
        .error(3, "chat_not_found");

    // Paging.
    let all = cli.json(&["messages", &chat]);
    let seqs: Vec<u64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let page = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["messages", &chat];
        a.extend_from_slice(args);
        cli.json(&a)
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(page(&["--after", "2"]), [3, 4, 5]);
    assert_eq!(page(&["--before", "5", "--limit", "2"]), [3, 4]);
    assert_eq!(page(&["--after", "1", "--limit", "1"]), [2]);
    // The customer sees the claim's entry too, as its sentence marked [system].
    let table = cli.run(&["--as", "customer:cust-1", "messages", &chat, "--limit", "3"]);
    table.code(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", table.stdout);
    assert!(lines[0].starts_with("SEQ "));
    assert!(
        lines[1].starts_with("1 ")
            && lines[1].contains("  [system]  ")
            && lines[1].ends_with("  alice took the chat"),
        "{}",
        table.stdout
    );
    assert!(lines[2].contains("customer:cust-1") && lines[2].ends_with("Hello?"));
    assert!(lines[3].contains("officer:alice") && lines[3].ends_with("Hi, I am Alice."));
    cli.run(&["messages", &chat, "--limit", "0"])
        .error(7, "invalid_parameter");
    cli.run(&["messages", &chat, "--limit", "many"]).code(2);
    cli.run(&["--as", "officer:bob", "messages", &chat])
        .error(5, "forbidden");
    cli.run(&["messages", NO_SUCH_CHAT])
        .error(3, "chat_not_found");
}

/// The conversation lifecycle as the acting identities of `--as`: release, transfer,
/// resolve (by the customer too) and reopen, each refusal with its exit code, and the
/// system entries they leave in the timeline.
#[test]
fn resolve_release_transfer_and_reopen_a_chat() {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    cli.run(&[
        "officer",
        "add",
        "bob",
        "--display-name",
        "Bob",
        "--no-password",
    ])
    .code(0);
    let (chat, _) = cli.customer("cust-1");
    for (command, code) in [
        ("resolve", "not_assigned"),
        ("release", "chat_resolved"),
        ("transfer", "officer_not_found"),
        ("reopen", "customer_has_open_chat"),
    ] {
        let help = cli.run(&[command, "--help"]);
        help.code(0);
        assert!(help.stdout.contains(code), "{command}: {}", help.stdout);
    }

    // A pending chat is nobody's to hand on or end: its officer takes it first.
    cli.run(&["--as", "officer:alice", "release", &chat])
        .error(4, "not_assigned");
    cli.run(&["--json", "--as", "officer:alice", "release", &chat])
        .json_error(4, "not_assigned");
    cli.run(&["--as", "officer:alice", "resolve", &chat])
        .error(4, "not_assigned");
    cli.run(&["--as", "officer:alice", "transfer", &chat, "bob"])
        .error(4, "not_assigned");

    // Release: back in the queue.
    cli.json(&["--as", "officer:alice", "claim", &chat]);
    let released = cli.run(&["--as", "officer:alice", "release", &chat]);
    released.code(0);
    assert_eq!(
        released.stdout,
        format!("released chat {chat} (customer cust-1) back to the queue\n")
    );
    assert_eq!(cli.json(&["queue"])[0]["id"], chat.as_str());

    // Transfer: to an officer who exists, by the chat's own officer.
    cli.json(&["--as", "officer:alice", "claim", &chat]);
    cli.run(&["--as", "officer:alice", "transfer", &chat, "nobody"])
        .error(3, "officer_not_found");
    cli.run(&[
        "--json",
        "--as",
        "officer:alice",
        "transfer",
        &chat,
        "nobody",
    ])
    .json_error(3, "officer_not_found");
    cli.run(&["--as", "officer:alice", "transfer", &chat, "a b"])
        .error(7, "invalid_id");
    cli.run(&["--as", "officer:bob", "transfer", &chat, "bob"])
        .error(5, "forbidden");
    cli.run(&["--as", "officer:alice", "transfer", NO_SUCH_CHAT, "bob"])
        .error(3, "chat_not_found");
    let transferred = cli.run(&["--as", "officer:alice", "transfer", &chat, "bob"]);
    transferred.code(0);
    assert_eq!(
        transferred.stdout,
        format!("transferred chat {chat} (customer cust-1) to officer bob\n")
    );
    cli.run(&["--as", "officer:alice", "send", &chat, "still mine?"])
        .error(5, "forbidden");
    cli.run(&["--as", "officer:bob", "release", &chat]).code(0);
    cli.json(&["--as", "officer:bob", "claim", &chat]);
    cli.json(&["--as", "officer:bob", "send", &chat, "Bob here"]);

    // Resolve: the customer ends their own chat; again changes nothing.
    cli.run(&["--as", "customer:cust-9", "resolve", &chat])
        .error(5, "forbidden");
    cli.run(&["--as", "customer:cust-1", "release", &chat])
        .error(5, "forbidden");
    let resolved = cli.json(&["--as", "customer:cust-1", "resolve", &chat]);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["assignedOfficerId"], "bob");
    assert!(resolved["resolvedAt"].is_string(), "{resolved}");
    let again = cli.run(&["--as", "customer:cust-1", "resolve", &chat]);
    again.code(0);
    assert_eq!(
        again.stdout,
        format!("resolved chat {chat} (customer cust-1)\n")
    );
    cli.run(&["--as", "officer:alice", "resolve", NO_SUCH_CHAT])
        .error(3, "chat_not_found");

    // Nobody writes to, hands on or claims a resolved chat.
    cli.run(&["--as", "customer:cust-1", "send", &chat, "one more thing"])
        .error(4, "chat_resolved");
    cli.run(&["--json", "--as", "officer:bob", "send", &chat, "bye"])
        .json_error(4, "chat_resolved");
    cli.run(&["--as", "officer:bob", "release", &chat])
        .error(4, "chat_resolved");
    cli.run(&["--as", "officer:bob", "transfer", &chat, "alice"])
        .error(4, "chat_resolved");

    // Reopen: an officer for themselves, the admin for the officer named.
    cli.run(&["--as", "officer:bob", "reopen", &chat, "--for", "alice"])
        .error(5, "forbidden");
    cli.run(&["reopen", &chat]).error(7, "invalid_field");
    cli.run(&["reopen", &chat, "--for", "nobody"])
        .error(3, "officer_not_found");
    let reopened = cli.run(&["--as", "officer:bob", "reopen", &chat]);
    reopened.code(0);
    assert_eq!(
        reopened.stdout,
        format!("reopened chat {chat} (customer cust-1) for officer bob\n")
    );
    cli.run(&["--as", "officer:bob", "reopen", &chat])
        .error(4, "not_resolved");
    cli.run(&["--json", "--as", "officer:bob", "reopen", &chat])
        .json_error(4, "not_resolved");

    // A customer has one open chat: once they start another, the old one stays closed.
    cli.json(&["resolve", &chat]);
    let (second, _) = cli.customer("cust-1");
    assert_ne!(second, chat);
    cli.run(&["reopen", &chat, "--for", "alice"])
        .error(4, "customer_has_open_chat");
    cli.run(&["--json", "--as", "officer:alice", "reopen", &chat])
        .json_error(4, "customer_has_open_chat");
    cli.json(&["--as", "customer:cust-1", "resolve", &second]);
    let reopened = cli.json(&["reopen", &chat, "--for", "alice"]);
    assert_eq!(reopened["status"], "assigned");
    assert_eq!(reopened["assignedOfficerId"], "alice");
    assert!(reopened["resolvedAt"].is_null(), "{reopened}");

    // Each change left a system entry in the timeline, in order with the messages.
    let timeline = cli.json(&["messages", &chat]);
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
    // Each claim is one of them, named with the officer's display name where they have
    // one ("Bob took the chat").
    assert_eq!(
        entries,
        [
            ("system", "alice took the chat"),
            ("system", "alice put the chat back in the queue"),
            ("system", "alice took the chat"),
            ("system", "alice transferred the chat to Bob"),
            ("system", "Bob put the chat back in the queue"),
            ("system", "Bob took the chat"),
            ("officer", "Bob here"),
            ("system", "The customer ended the chat"),
            ("system", "Bob reopened the chat"),
            ("system", "An administrator ended the chat"),
            ("system", "An administrator reopened the chat for alice"),
        ]
    );
    let seqs: Vec<u64> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>());
    // Each claim's event names its officer, with the display name they had (bob's).
    for (i, event) in [
        (
            0,
            serde_json::json!({ "kind": "claimed", "officerId": "alice" }),
        ),
        (
            2,
            serde_json::json!({ "kind": "claimed", "officerId": "alice" }),
        ),
        (
            5,
            serde_json::json!({ "kind": "claimed", "officerId": "bob", "officerName": "Bob" }),
        ),
    ] {
        assert_eq!(timeline[i]["event"], event, "{}", timeline[i]);
        assert_eq!(timeline[i]["senderId"], event["officerId"]);
    }
    assert_eq!(timeline[3]["event"]["kind"], "transferred");
    assert_eq!(timeline[3]["event"]["fromOfficerId"], "alice");
    let table = cli.run(&["messages", &chat]);
    table.code(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 12, "{}", table.stdout);
    assert!(
        lines[1].starts_with("1 ")
            && lines[1].contains("  [system]  ")
            && lines[1].ends_with("  alice took the chat"),
        "{}",
        table.stdout
    );
    assert!(
        lines[4].starts_with("4 ")
            && lines[4].contains("  [system]  ")
            && lines[4].ends_with("  alice transferred the chat to Bob"),
        "{}",
        table.stdout
    );
    assert!(
        lines[6].starts_with("6 ") && lines[6].ends_with("  Bob took the chat"),
        "{}",
        table.stdout
    );
    assert!(lines[7].contains("officer:bob") && lines[7].ends_with("Bob here"));

    // The chats list shows where each chat stands.
    let alice = cli.run(&["chats", "alice"]);
    alice.code(0);
    assert!(
        alice
            .stdout
            .lines()
            .any(|l| l.starts_with(&chat) && l.contains("  assigned  alice  ")),
        "{}",
        alice.stdout
    );
}

/// `chats --status open|resolved|all`: an officer's chats, newest activity first; open by
/// default; a resolved chat stays with the officer who had it until it is reopened.
#[test]
fn chats_by_status_newest_activity_first() {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    cli.run(&["officer", "add", "bob", "--no-password"]).code(0);
    let (c1, _) = cli.customer("cust-1");
    let (c2, _) = cli.customer("cust-2");
    let (c3, _) = cli.customer("cust-3");
    for chat in [&c1, &c2, &c3] {
        cli.json(&["--as", "officer:alice", "claim", chat]);
    }
    // Activity: a message on the oldest, then the middle one ends.
    cli.json(&["--as", "customer:cust-1", "send", &c1, "still there?"]);
    cli.json(&["--as", "officer:alice", "resolve", &c2]);

    let open = cli.json(&["chats", "alice"]);
    assert_eq!(ids(&open), [c1.as_str(), c3.as_str()]);
    assert!(
        open.as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "assigned")
    );
    assert_eq!(cli.json(&["chats", "alice", "--status", "open"]), open);
    assert_eq!(cli.json(&["--as", "officer:alice", "chats"]), open);
    let resolved = cli.json(&["--as", "officer:alice", "chats", "--status", "resolved"]);
    assert_eq!(ids(&resolved), [c2.as_str()]);
    assert_eq!(
        (
            &resolved[0]["status"],
            &resolved[0]["assignedOfficerId"],
            resolved[0]["resolvedAt"].is_string()
        ),
        (
            &serde_json::json!("resolved"),
            &serde_json::json!("alice"),
            true
        ),
        "{resolved}"
    );
    let all = cli.json(&["chats", "alice", "--status", "all"]);
    assert_eq!(ids(&all), [c2.as_str(), c1.as_str(), c3.as_str()]);

    // The table, in the same order, says where each stands.
    let table = cli.run(&["chats", "alice", "--status", "all"]);
    table.code(0);
    assert_eq!(table.stderr, "");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", table.stdout);
    assert!(
        lines[0].starts_with("CHAT ") && lines[0].contains("STATUS"),
        "{}",
        table.stdout
    );
    let rows = chat_rows(&table.stdout);
    assert_eq!(
        rows,
        [
            [c2.as_str(), "cust-2", "resolved", "alice"],
            [c1.as_str(), "cust-1", "assigned", "alice"],
            [c3.as_str(), "cust-3", "assigned", "alice"],
        ],
        "{}",
        table.stdout
    );
    // None of them: an empty list, and a line saying so.
    assert_eq!(
        cli.json(&["chats", "bob", "--status", "resolved"]),
        serde_json::json!([])
    );
    let none = cli.run(&["--as", "officer:bob", "chats", "--status", "all"]);
    none.code(0);
    assert_eq!(none.stdout, "(no chats)\n");

    // Reopened for another officer, the chat moves to their open chats.
    cli.json(&["reopen", &c2, "--for", "bob"]);
    assert_eq!(
        cli.json(&["chats", "alice", "--status", "resolved"]),
        serde_json::json!([])
    );
    assert_eq!(ids(&cli.json(&["chats", "bob"])), [c2.as_str()]);

    // Refusals: a value clap does not know is a usage error (2), before any work;
    // another officer's chats are forbidden (5) whatever the status.
    let bad = cli.run(&["chats", "alice", "--status", "closed"]);
    bad.code(2);
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    assert!(
        bad.stderr.contains("--status") && bad.stderr.contains("resolved"),
        "{}",
        bad.stderr
    );
    cli.run(&["--json", "chats", "alice", "--status", "closed"])
        .code(2);
    cli.run(&[
        "--as",
        "officer:bob",
        "chats",
        "alice",
        "--status",
        "resolved",
    ])
    .error(5, "forbidden");
    cli.run(&[
        "--json",
        "--as",
        "officer:bob",
        "chats",
        "alice",
        "--status",
        "all",
    ])
    .json_error(5, "forbidden");
    cli.run(&["chats", "--status", "all"]).error(2, "usage");
}

/// A customer with a resolved chat (alice's) and a newer pending one, and another
/// customer: (cli, first, second).
fn customer_with_two_chats() -> (Cli, String, String) {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    let (first, _) = cli.customer("cust-1");
    cli.json(&["--as", "officer:alice", "claim", &first]);
    cli.json(&["--as", "customer:cust-1", "resolve", &first]);
    let (second, _) = cli.customer("cust-1");
    assert_ne!(first, second);
    cli.customer("cust-2");
    (cli, first, second)
}

/// `customer chats ID`: a customer's chats, newest first, for officers and the admin;
/// another customer's are forbidden.
#[test]
fn customer_chats_newest_first() {
    let (cli, first, second) = customer_with_two_chats();

    let theirs = cli.json(&["customer", "chats", "cust-1"]);
    assert_eq!(ids(&theirs), [second.as_str(), first.as_str()]);
    assert_eq!(
        (
            &theirs[0]["status"],
            &theirs[1]["status"],
            &theirs[1]["assignedOfficerId"]
        ),
        (
            &serde_json::json!("pending"),
            &serde_json::json!("resolved"),
            &serde_json::json!("alice")
        )
    );
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["customerId"] == "cust-1"),
        "{theirs}"
    );
    // An officer sees the same list.
    assert_eq!(
        cli.json(&["--as", "officer:alice", "customer", "chats", "cust-1"]),
        theirs
    );
    // A customer with no chats: an empty list.
    assert_eq!(
        cli.json(&["customer", "chats", "cust-9"]),
        serde_json::json!([])
    );
    let none = cli.run(&["customer", "chats", "cust-9"]);
    none.code(0);
    assert_eq!(none.stdout, "(no chats)\n");

    let table = cli.run(&["--as", "officer:alice", "customer", "chats", "cust-1"]);
    table.code(0);
    assert_eq!(table.stderr, "");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[0].starts_with("CHAT "), "{}", table.stdout);
    assert_eq!(
        chat_rows(&table.stdout),
        [
            [second.as_str(), "cust-1", "pending", "-"],
            [first.as_str(), "cust-1", "resolved", "alice"],
        ],
        "{}",
        table.stdout
    );

    // Refusals: another customer's chats (5), a malformed id (7), an unknown officer (3).
    cli.run(&["--as", "customer:cust-2", "customer", "chats", "cust-1"])
        .error(5, "forbidden");
    cli.run(&[
        "--json",
        "--as",
        "customer:cust-2",
        "customer",
        "chats",
        "cust-1",
    ])
    .json_error(5, "forbidden");
    cli.run(&["customer", "chats", "bad id"])
        .error(7, "invalid_id");
    cli.run(&["--as", "officer:nobody", "customer", "chats", "cust-1"])
        .error(3, "officer_not_found");
}

/// `customer chats` as the `--as` customer, by default or named, and without anyone to
/// list (a usage error, as `chats` without an officer).
#[test]
fn customer_chats_as_the_customer() {
    let (cli, first, second) = customer_with_two_chats();
    let mine = cli.json(&["--as", "customer:cust-1", "customer", "chats"]);
    assert_eq!(ids(&mine), [second.as_str(), first.as_str()]);
    assert_eq!(
        cli.json(&["--as", "customer:cust-1", "customer", "chats", "cust-1"]),
        mine
    );
    assert_eq!(cli.json(&["customer", "chats", "cust-1"]), mine);
    let table = cli.run(&["--as", "customer:cust-1", "customer", "chats"]);
    table.code(0);
    assert_eq!(
        chat_rows(&table.stdout),
        [
            [second.as_str(), "cust-1", "pending", "-"],
            [first.as_str(), "cust-1", "resolved", "alice"],
        ],
        "{}",
        table.stdout
    );
    // Refused for the policy's reason, not for want of a chat.
    let other = cli.run(&[
        "--json",
        "--as",
        "customer:cust-2",
        "customer",
        "chats",
        "cust-1",
    ]);
    let err = other.json_error(5, "forbidden");
    assert_eq!(
        err["error"]["message"],
        "customers may list only their own chats"
    );
    cli.run(&["customer", "chats"]).error(2, "usage");
    cli.run(&["--as", "officer:alice", "customer", "chats"])
        .error(2, "usage");
}

#[test]
fn status_reports_store_schema_and_counts() {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    let (chat, _) = cli.customer("cust-1");
    cli.customer("cust-2");
    cli.json(&["--as", "officer:alice", "claim", &chat]);

    let status = cli.json(&["status"]);
    assert_eq!(status["mode"], "local");
    assert_eq!(status["health"], "ok");
    assert_eq!(
        status["schemaVersion"],
        chatcore::store::SQLITE_SCHEMA_VERSION
    );
    assert_eq!(status["officers"], 1);
    assert_eq!(status["pendingChats"], 1);
    assert_eq!(status["assignedChats"], 1);
    assert_eq!(status["role"], "admin");
    assert_eq!(status["db"], cli.db_path().display().to_string());

    let human = cli.run(&["--as", "officer:alice", "status"]);
    human.code(0);
    assert!(
        human.stdout.contains("health          ok"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("acting as       officer alice"),
        "{}",
        human.stdout
    );
}

#[test]
fn usage_and_store_errors() {
    let cli = Cli::local();
    // No mode at all.
    let mut bare = std::process::Command::new(common::BIN);
    bare.arg("queue")
        .env_clear()
        .env("CHAT_CLI_CONFIG_DIR", &cli.config_dir)
        .stdin(Stdio::null());
    let out = bare.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: usage: choose where to work"));
    // Both modes.
    cli.run(&["--server", "http://127.0.0.1:9", "queue"])
        .code(2);
    cli.run(&["--as", "nobody", "queue"]).error(2, "usage");
    cli.run(&["--as", "officer:bad id", "queue"])
        .error(7, "invalid_id");
    cli.run(&["watch", "queue"]).error(2, "usage");
    cli.run(&["logout"]).error(2, "usage");
    cli.run(&["frobnicate"]).code(2);

    // The database comes from CHAT_DB as well as --db.
    let mut from_env = std::process::Command::new(common::BIN);
    from_env
        .args(["--json", "queue"])
        .env_remove("CHAT_SERVER")
        .env("CHAT_DB", cli.db_path())
        .env("CHAT_CLI_CONFIG_DIR", &cli.config_dir)
        .stdin(Stdio::null());
    let out = from_env.output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    // A mode on the command line wins over the other from the environment (chat-http
    // reads CHAT_DB too, so shells export it).
    let out = cli
        .command(&["--json", "queue"])
        .env("CHAT_SERVER", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    // A database that cannot be opened is "unreachable".
    let missing = cli.dir.path().join("no/such/dir/chat.db");
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["--json", "--db"])
        .arg(&missing)
        .arg("queue")
        .env_remove("CHAT_SERVER")
        .stdin(Stdio::null());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "store_unreachable");
}

/// Eight processes claim one chat on one database file at once: exactly one wins.
#[test]
fn claim_race_between_processes_has_one_winner() {
    let cli = Cli::local();
    let officers: Vec<String> = (0..8).map(|i| format!("officer-{i}")).collect();
    for id in &officers {
        cli.run(&["officer", "add", id, "--no-password"]).code(0);
    }
    for round in 0..3 {
        let (chat, _) = cli.customer(&format!("racer-{round}"));
        let runs = race(
            officers
                .iter()
                .map(|o| cli.command(&["--json", "--as", &format!("officer:{o}"), "claim", &chat]))
                .collect(),
        );
        let winners: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].code == 0).collect();
        assert_eq!(winners.len(), 1, "round {round}: {runs:#?}");
        let winner = &officers[winners[0]];
        for (i, run) in runs.iter().enumerate() {
            if i == winners[0] {
                let chat: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
                assert_eq!(chat["assignedOfficerId"], winner.as_str());
            } else {
                run.json_error(4, "already_assigned");
                assert!(run.stderr.contains(winner.as_str()), "{}", run.stderr);
            }
        }
        // The stored state agrees with the exit codes.
        let owned = cli.json(&["chats", winner]);
        assert!(
            owned
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == chat.as_str())
        );
    }
    assert_eq!(cli.json(&["queue"]), serde_json::json!([]));
}

#[test]
fn whoami_is_the_as_identity_as_the_engine_sees_it() {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    let me = cli.json(&["--as", "officer:alice", "whoami"]);
    assert_eq!(
        (&me["role"], &me["subject"]),
        (&serde_json::json!("officer"), &serde_json::json!("alice"))
    );
    assert_eq!(cli.json(&["whoami"])["role"], "admin");
    assert_eq!(
        cli.json(&["--as", "customer:cust-1", "whoami"])["subject"],
        "cust-1"
    );
    cli.run(&["--as", "officer:nobody", "whoami"])
        .error(3, "officer_not_found");
}

/// `officer capacity`: the admin sets it (a number or `default`), `officer list` shows
/// the load against it, and a claim past it exits 4 `at_capacity`.
#[test]
fn officer_capacity_is_set_shown_and_enforced() {
    let cli = Cli::local();
    cli.add_officer("alice", "correct horse");
    let (first, _) = cli.customer("cust-1");
    let (second, _) = cli.customer("cust-2");
    let set = cli.run(&["officer", "capacity", "alice", "1"]);
    set.code(0);
    assert_eq!(set.stdout, "officer alice may hold 1 open chats\n");
    cli.run(&["--as", "officer:alice", "claim", &first]).code(0);
    cli.run(&["--as", "officer:alice", "claim", &second])
        .error(4, "at_capacity");
    let list = cli.run(&["officer", "list"]);
    list.code(0);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].ends_with("LOAD"), "{}", list.stdout);
    assert!(lines[1].ends_with("1 of 1"), "{}", list.stdout);
    let json = cli.json(&["officer", "list"]);
    assert_eq!(
        (&json[0]["capacity"], &json[0]["openChats"]),
        (&json!(1), &json!(1))
    );
    // Back to the server's default (unlimited here): the claim goes through.
    let unset = cli.json(&["officer", "capacity", "alice", "default"]);
    assert_eq!(unset["capacity"], Value::Null);
    cli.run(&["--as", "officer:alice", "claim", &second])
        .code(0);
    // Only the admin; a capacity is a number or `default`.
    cli.run(&["--as", "officer:alice", "officer", "capacity", "alice", "3"])
        .error(5, "forbidden");
    cli.run(&["officer", "capacity", "alice", "many"]).code(2);
    cli.run(&["officer", "capacity", "alice", "10001"])
        .error(7, "invalid_field");
    cli.run(&["officer", "capacity", "nobody", "1"])
        .error(3, "officer_not_found");
    // Availability: the officer's own (by --as), or the admin's for anyone.
    let away = cli.run(&["--as", "officer:alice", "officer", "availability", "away"]);
    away.code(0);
    assert_eq!(away.stdout, "officer alice is away\n");
    let list = cli.run(&["officer", "list"]);
    assert!(
        list.stdout.lines().nth(1).unwrap().contains(" away "),
        "{}",
        list.stdout
    );
    let back = cli.json(&["officer", "availability", "available", "--officer", "alice"]);
    assert_eq!(back["availability"], "available");
    cli.run(&["officer", "availability", "away"])
        .error(2, "usage");
    cli.run(&["officer", "availability", "busy", "--officer", "alice"])
        .code(2);
}

/// `attach` streams a file into a chat as the acting customer, `download` writes it back
/// (checked against its SHA-256), with progress on stderr for a large file; a refused
/// type and an existing output file are errors with their exit codes.
#[test]
fn files_are_attached_and_downloaded() {
    let cli = Cli::local();
    let (chat, _) = cli.customer("cust-1");
    let big = cli.dir.path().join("statement.pdf");
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..1_500_000u32).map(|i| (i % 253) as u8));
    std::fs::write(&big, &bytes).unwrap();
    let attach = cli.run(&[
        "--json",
        "--as",
        "customer:cust-1",
        "attach",
        &chat,
        big.to_str().unwrap(),
        "--client-id",
        "f-1",
    ]);
    attach.code(0);
    let message: Value = serde_json::from_str(&attach.stdout).unwrap();
    assert!(
        attach.stderr.contains("uploading statement.pdf: 100%"),
        "{}",
        attach.stderr
    );
    let file = &message["attachment"];
    assert_eq!(file["name"], "statement.pdf");
    assert_eq!(file["contentType"], "application/pdf");
    assert_eq!(file["size"], bytes.len());
    let id = file["id"].as_str().unwrap();
    // The same client id again: the original, nothing stored twice.
    let again = cli.run(&[
        "--as",
        "customer:cust-1",
        "attach",
        &chat,
        big.to_str().unwrap(),
        "--client-id",
        "f-1",
    ]);
    again.code(0);
    assert!(
        again.stdout.contains("nothing stored twice"),
        "{}",
        again.stdout
    );
    // The messages list shows it as a file.
    let list = cli.run(&["messages", &chat]);
    list.code(0);
    assert!(
        list.stdout.contains("[file statement.pdf, application/pdf"),
        "{}",
        list.stdout
    );

    let out = cli.dir.path().join("copy.pdf");
    let saved = cli.run(&["--json", "download", id, "-o", out.to_str().unwrap()]);
    saved.code(0);
    let report: Value = serde_json::from_str(&saved.stdout).unwrap();
    assert_eq!(report["size"], bytes.len());
    assert_eq!(report["sha256"], file["sha256"]);
    assert!(std::fs::read(&out).unwrap() == bytes);
    assert!(
        saved.stderr.contains("downloading statement.pdf: 100%"),
        "{}",
        saved.stderr
    );
    cli.run(&["download", id, "-o", out.to_str().unwrap()])
        .error(2, "file_exists");
    cli.run(&["download", id, "-o", out.to_str().unwrap(), "--force"])
        .code(0);

    // A script named as a text file is refused; nothing is stored.
    let script = cli.dir.path().join("notes.txt");
    std::fs::write(&script, "#!/bin/sh\nrm -rf ~\n").unwrap();
    cli.run(&[
        "--as",
        "customer:cust-1",
        "attach",
        &chat,
        script.to_str().unwrap(),
    ])
    .error(7, "unsupported_type");
    // Another customer may not read it.
    cli.customer("cust-2");
    cli.run(&["--as", "customer:cust-2", "download", id, "-o", "-"])
        .error(3, "attachment_not_found");
}
