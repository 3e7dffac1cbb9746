//! Local mode on PostgreSQL (`--database-url`): the built binary as a process against a
//! throwaway cluster (`chat_postgres::testing`, or `CHAT_TEST_DATABASE_URL`), asserting
//! stdout, stderr and exit code; and a chat-http node (`chat_http::testing::TestServer`)
//! on the same database whose sockets see the CLI's writes live. Without PostgreSQL these
//! tests skip, or fail under `CI`.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use chat_client::{Client, Socket};
use chat_http::testing::TestServer;
use chat_postgres::testing::TestDatabase;
use common::{Cli, race};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(10);

fn seqs(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn every_command_runs_on_postgres() {
    let Some(pg) = TestDatabase::start("every_command_runs_on_postgres") else {
        return;
    };
    let cli = Cli::postgres(&pg.url());

    // Officers: created (the schema is migrated on first use), listed, logged in.
    let alice = cli.add_officer("alice", "correct horse");
    assert_eq!(alice["id"], "alice");
    cli.run(&["officer", "add", "bob", "--no-password"]).code(0);
    cli.run_stdin(
        &["--json", "officer", "add", "alice", "--password-stdin"],
        "again and again\n",
    )
    .json_error(4, "officer_exists");
    let ids: Vec<String> = cli
        .json(&["officer", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    let login = cli.run_stdin(
        &["officer", "login", "alice", "--password-stdin"],
        "correct horse\n",
    );
    login.code(0);
    assert_eq!(login.stdout.trim().len(), 64, "{}", login.stdout);
    cli.run_stdin(
        &["officer", "login", "alice", "--password-stdin"],
        "wrong\n",
    )
    .error(5, "invalid_credentials");

    // A customer's one chat waits in the queue.
    let (chat, _) = cli.customer("cust-1");
    let again = cli.json(&["customer", "login", "cust-1"]);
    assert_eq!(
        (&again["created"], &again["chat"]["id"]),
        (&json!(false), &json!(chat))
    );
    let queue = cli.json(&["queue"]);
    assert_eq!(queue.as_array().unwrap().len(), 1);
    assert_eq!(queue[0]["id"], chat.as_str());

    // Claim: alice wins, bob gets the conflict, the queue empties.
    let claimed = cli.json(&["--as", "officer:alice", "claim", &chat]);
    assert_eq!(claimed["assignedOfficerId"], "alice");
    cli.run(&["--json", "--as", "officer:bob", "claim", &chat])
        .json_error(4, "already_assigned");
    assert_eq!(cli.json(&["queue"]), json!([]));
    assert_eq!(cli.json(&["chats", "alice"])[0]["id"], chat.as_str());
    // The claim is the chat's first entry, a system entry (the lost claim wrote none).
    let took = cli.json(&["messages", &chat]);
    assert_eq!(took.as_array().unwrap().len(), 1, "{took}");
    assert_eq!(
        (&took[0]["seq"], &took[0]["senderType"], &took[0]["content"]),
        (&json!(1), &json!("system"), &json!("alice took the chat"))
    );
    assert_eq!(
        took[0]["event"],
        json!({ "kind": "claimed", "officerId": "alice" })
    );

    // Send: both sides, seq grows by one, a repeated client id stores nothing twice.
    let m1 = cli.json(&["--as", "customer:cust-1", "send", &chat, "Hello?"]);
    assert_eq!((&m1["seq"], &m1["senderId"]), (&json!(2), &json!("cust-1")));
    let m2 = cli.run(&["--as", "officer:alice", "send", &chat, "Hi, Alice here."]);
    m2.code(0);
    assert_eq!(m2.stdout, format!("sent #3 to chat {chat}\n"));
    assert_eq!(m2.stderr, "");
    let k = [
        "--as",
        "officer:alice",
        "send",
        &chat,
        "once",
        "--client-id",
        "k1",
    ];
    assert_eq!(cli.json(&k)["seq"], 4);
    let retry = cli.run(&k);
    retry.code(0);
    assert!(
        retry.stdout.starts_with("already sent as #4"),
        "{}",
        retry.stdout
    );
    cli.run(&["--as", "officer:bob", "send", &chat, "me too"])
        .error(5, "forbidden");
    cli.run(&["--as", "officer:alice", "send", &chat, "  "])
        .error(7, "empty_content");

    // Messages: the stored chat, paged.
    assert_eq!(seqs(&cli.json(&["messages", &chat])), [1, 2, 3, 4]);
    assert_eq!(
        seqs(&cli.json(&["messages", &chat, "--after", "1"])),
        [2, 3, 4]
    );
    let page = cli.json(&["--as", "customer:cust-1", "messages", &chat, "--limit", "2"]);
    assert_eq!(
        (&page[0]["senderType"], &page[0]["content"]),
        (&json!("system"), &json!("alice took the chat"))
    );
    assert_eq!(page[1]["content"], "Hello?");

    // Status names the database without a password and counts what is there.
    let status = cli.json(&["status"]);
    assert_eq!(status["mode"], "local");
    assert_eq!(status["health"], "ok");
    assert_eq!(status["schemaVersion"], chat_postgres::PG_SCHEMA_VERSION);
    assert_eq!(
        (
            &status["officers"],
            &status["pendingChats"],
            &status["assignedChats"]
        ),
        (&json!(2), &json!(0), &json!(1))
    );
    let dbname = pg.config().get_dbname().unwrap();
    let target = status["postgres"].as_str().unwrap();
    assert!(
        target.starts_with("postgres://postgres@127.0.0.1:"),
        "{target}"
    );
    assert!(target.ends_with(&format!("/{dbname}")), "{target}");
    assert!(status.get("db").is_none(), "{status}");

    // Processes racing to claim one chat on the shared database: one winner.
    let racers: Vec<String> = (0..8).map(|i| format!("racer-{i}")).collect();
    for id in &racers {
        cli.run(&["officer", "add", id, "--no-password"]).code(0);
    }
    let (contested, _) = cli.customer("cust-2");
    let runs = race(
        racers
            .iter()
            .map(|o| {
                cli.command(&[
                    "--json",
                    "--as",
                    &format!("officer:{o}"),
                    "claim",
                    &contested,
                ])
            })
            .collect(),
    );
    let winners: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].code == 0).collect();
    assert_eq!(winners.len(), 1, "{runs:#?}");
    let winner = &racers[winners[0]];
    for (i, run) in runs.iter().enumerate() {
        if i != winners[0] {
            run.json_error(4, "already_assigned");
        }
    }
    let owned = cli.json(&["chats", winner]);
    assert_eq!(owned.as_array().unwrap().len(), 1);
    assert_eq!(owned[0]["id"], contested.as_str());
}

/// Local mode on PostgreSQL publishes through `PgBus`: a socket on a chat-http node sees
/// the queue change and the messages a `chat-cli --database-url` process writes, live.
/// Nothing else writes to the chat, so a message can only reach the socket by its
/// notification (a feed repairs a gap only when a later event shows it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_on_a_chat_http_node_sees_what_the_cli_writes_live() {
    let Some(pg) =
        TestDatabase::start("a_socket_on_a_chat_http_node_sees_what_the_cli_writes_live")
    else {
        return;
    };
    let cli = Cli::postgres(&pg.url());
    // The CLI migrates the new database; then a node (open mode) starts on it.
    let run = |args: &[&str]| tokio::task::block_in_place(|| cli.json(args));
    assert_eq!(
        run(&["officer", "add", "amy", "--no-password"])["id"],
        "amy"
    );
    let node =
        tokio::task::block_in_place(|| TestServer::builder().postgres(pg.config().clone()).start());

    // Amy works on the node: logged in over REST, watching the queue on a socket.
    let node_client = Client::new(node.url()).unwrap();
    let login = node_client.officer_login("amy", None).await.unwrap();
    let mut ws = Ws(node_client.with_token(login.token).connect().await.unwrap());
    ws.0.join_officers().await.unwrap();

    // The CLI starts a chat: the node's socket is told it started (chat_updated,
    // created), then sees it arrive in the queue, in that order (one topic).
    let chat = run(&["customer", "login", "cust-1"])["chat"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = ws.next().await;
    assert_eq!(
        (&started["type"], &started["change"], &started["chat"]["id"]),
        (&json!("chat_updated"), &json!("created"), &json!(chat)),
        "{started}"
    );
    let created = ws.next().await;
    assert_eq!(
        (&created["type"], &created["chat"]["id"]),
        (&json!("queue_chat_created"), &json!(chat)),
        "{created}"
    );

    // The CLI claims it for Amy: officers are told of the change and the queue loses it,
    // and her own socket is told (two topics, so in any order).
    run(&["--as", "officer:amy", "claim", &chat]);
    let [updated, claimed, assigned] = ws
        .next_of_each(["chat_updated", "queue_chat_claimed", "chat_assigned"])
        .await;
    assert_eq!(
        (
            &updated["change"],
            &updated["chat"]["status"],
            &updated["chat"]["lastSeq"]
        ),
        (&json!("claimed"), &json!("assigned"), &json!(1)),
        "{updated}"
    );
    assert_eq!(claimed["chat"]["id"], chat.as_str());
    assert_eq!(
        (
            &assigned["chat"]["id"],
            &assigned["chat"]["assignedOfficerId"]
        ),
        (&json!(chat), &json!("amy"))
    );

    // Amy's socket joins the chat from the start: the replay is the claim's system entry;
    // then each message the CLI sends arrives live.
    ws.0.join_chat(&chat, Some(0)).await.unwrap();
    let took = ws.next_of("new_message").await;
    assert_eq!(
        (
            &took["message"]["seq"],
            &took["message"]["senderType"],
            &took["message"]["content"]
        ),
        (&json!(1), &json!("system"), &json!("amy took the chat"))
    );
    run(&[
        "--as",
        "customer:cust-1",
        "send",
        &chat,
        "hello from the cli",
    ]);
    let m = ws.next_of("new_message").await;
    assert_eq!(
        (&m["message"]["seq"], &m["message"]["content"]),
        (&json!(2), &json!("hello from the cli"))
    );
    run(&[
        "--as",
        "officer:amy",
        "send",
        &chat,
        "answered from the cli",
    ]);
    let m = ws.next_of("new_message").await;
    assert_eq!(
        (&m["message"]["seq"], &m["message"]["senderId"]),
        (&json!(3), &json!("amy"))
    );
}

#[test]
fn database_url_usage_and_unreachable_database() {
    let sqlite = Cli::local();
    let db = sqlite.db_path().display().to_string();
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("host=127.0.0.1 port={port} user=postgres dbname=chat");

    // Two modes on the command line exclude each other (clap's usage error).
    let both = sqlite.run(&["--database-url", &closed, "queue"]);
    both.code(2);
    assert!(
        both.stderr
            .contains("--db (CHAT_DB) and --database-url (CHAT_DATABASE_URL)"),
        "{}",
        both.stderr
    );
    let pg = Cli::postgres(&closed);
    let with_server = pg.run(&["--server", "http://127.0.0.1:9", "queue"]);
    with_server.code(2);
    assert!(
        with_server.stderr.contains("exclude each other"),
        "{}",
        with_server.stderr
    );

    // Two from the environment as well.
    let out = std::process::Command::new(common::BIN)
        .arg("queue")
        .env_clear()
        .env("CHAT_DB", &db)
        .env("CHAT_DATABASE_URL", &closed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // One on the command line wins over another from the environment, either way round:
    // --db works on the SQLite file, --database-url tries PostgreSQL.
    let out = sqlite
        .command(&["--json", "queue"])
        .env("CHAT_DATABASE_URL", &closed)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = pg
        .command(&["--json", "queue"])
        .env("CHAT_DB", &db)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A database that cannot be reached: exit 6, named without any password.
    let secret = format!("postgres://postgres:hunter2@127.0.0.1:{port}/chat");
    let err = Cli::postgres(&secret)
        .run(&["--json", "queue"])
        .json_error(6, "store_unreachable");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("postgres://postgres@127.0.0.1:{port}/chat")),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");

    // Not a connection string, or empty: usage errors that never connect.
    Cli::postgres("host=127.0.0.1 port=notaport")
        .run(&["queue"])
        .error(2, "usage");
    Cli::postgres("").run(&["queue"]).error(2, "usage");
    // --as still works the same way as with --db.
    pg.run(&["--as", "nobody", "queue"]).error(2, "usage");
}

/// A WebSocket client of the node, answering frames as JSON values.
struct Ws(Socket);

impl Ws {
    /// One frame of each of `kinds`, in whatever order they come, skipping others.
    async fn next_of_each<const N: usize>(&mut self, kinds: [&str; N]) -> [Value; N] {
        let mut found: [Value; N] = std::array::from_fn(|_| Value::Null);
        while found.iter().any(Value::is_null) {
            let frame = self.next().await;
            if let Some(i) = kinds.iter().position(|k| frame["type"] == *k) {
                found[i] = frame;
            }
        }
        found
    }

    /// The next frame of type `kind`, skipping others.
    async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next frame but the officers' presence and load (`officer_updated`, which
    /// this socket's own connection causes); an `error` frame fails the test.
    async fn next(&mut self) -> Value {
        loop {
            let incoming = tokio::time::timeout(PATIENCE, self.0.next())
                .await
                .expect("a frame in time")
                .unwrap_or_else(|e| panic!("socket ended: {e}"));
            let v: Value = serde_json::from_str(&incoming.text).expect("JSON frame");
            assert_ne!(v["type"], "error", "{v}");
            if v["type"] != "officer_updated" {
                return v;
            }
        }
    }
}
