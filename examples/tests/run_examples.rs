//! Runs every example as a process (`cargo run --example NAME`, so it is built fresh) and
//! checks what it prints; `tcp_chat` is driven over real TCP connections.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn cargo_example(name: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "--quiet", "--example", name, "--"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    cmd
}

fn run(name: &str) -> String {
    run_with(name, &[])
}

fn run_with(name: &str, args: &[&std::ffi::OsStr]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = cargo_example(name).args(args).output().expect("run cargo");
    let stdout = String::from_utf8(stdout).expect("utf-8 output");
    assert!(
        status.success(),
        "example {name} failed: {status}\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

#[test]
fn minimal_runs_the_whole_flow() {
    let dir = TempDir::new("minimal");
    let db = dir.0.join("minimal.db");
    let out = {
        let Output { status, stdout, .. } = cargo_example("minimal")
            .arg(&db)
            .output()
            .expect("run cargo");
        assert!(status.success());
        String::from_utf8(stdout).expect("utf-8")
    };
    for expected in [
        "officer alice logged in",
        "customer cust-42 logged in; chat is pending",
        "queue event: chat of cust-42 is waiting",
        "alice claimed the chat; status assigned",
        "timeline #1: Alice took the chat",
        "alice sees #2 from cust-42: Hello, is my loan approved?",
        "customer sees #3 from alice: Hi! Let me check that for you.",
        "history holds 3 messages",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        db.exists(),
        "the example did not use the given database file"
    );
}

#[test]
fn greeter_bot_claims_up_to_its_capacity() {
    let dir = TempDir::new("greeter");
    let out = run_with("greeter_bot", &[dir.0.join("bot.db").as_os_str()]);
    let greeted = out
        .lines()
        .filter(|l| l.contains("was greeted: Hello"))
        .count();
    let waiting = out
        .lines()
        .filter(|l| l.contains("waits in the queue"))
        .count();
    assert_eq!((greeted, waiting), (3, 2), "{out}");
    assert!(
        out.contains("the bot holds 3 chats; 2 wait in the queue"),
        "{out}"
    );
}

#[test]
fn metered_store_passes_the_conformance_suite() {
    let out = run("metered_store");
    let cases = chatcore::conformance::CASES.len();
    assert!(
        out.contains(&format!(
            "conformance: all {cases} cases passed on MeteredStore<SqliteStore>"
        )),
        "{out}"
    );
    assert!(out.contains("  append_message: 10,"), "{out}");
    assert!(out.contains("  get_or_create_chat: 1,"), "{out}");
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(port: &str) -> Self {
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.writer, "{line}").expect("write");
    }

    /// Reads lines until each of `prefixes` has started one, in any order (a reply and
    /// the events its change caused may come either way round).
    fn expect_each(&mut self, prefixes: &[String]) {
        let mut wanted: Vec<&String> = prefixes.iter().collect();
        let mut seen = Vec::new();
        while !wanted.is_empty() {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("waiting for {wanted:?}: {e}; seen {seen:?}"));
            assert!(
                n > 0,
                "connection closed while waiting for {wanted:?}; seen {seen:?}"
            );
            let line = line.trim_end().to_string();
            wanted.retain(|p| !line.starts_with(p.as_str()));
            seen.push(line);
        }
    }

    /// Reads lines until one starts with `prefix` (events may come before or after a
    /// reply) and returns it.
    fn expect(&mut self, prefix: &str) -> String {
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("waiting for {prefix:?}: {e}; seen {seen:?}"));
            assert!(
                n > 0,
                "connection closed while waiting for {prefix:?}; seen {seen:?}"
            );
            let line = line.trim_end().to_string();
            if line.starts_with(prefix) {
                return line;
            }
            seen.push(line);
        }
    }
}

#[test]
fn tcp_chat_is_a_working_transport() {
    let dir = TempDir::new("tcp");
    let mut child = cargo_example("tcp_chat")
        .args(["0", "alice,bob"])
        .arg(dir.0.join("tcp.db"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("run cargo");
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let _server = Server(child);
    let port = banner
        .trim()
        .rsplit(':')
        .next()
        .expect("listening on HOST:PORT")
        .to_string();

    let mut alice = Client::connect(&port);
    alice.send("login officer alice");
    alice.expect("ok officer alice");

    let mut customer = Client::connect(&port);
    customer.send("login customer cust-1");
    let ok = customer.expect("ok customer cust-1 chat ");
    let chat = ok.rsplit(' ').next().unwrap().to_string();

    // The officer learns of the new chat live, claims it, and hears of the claim.
    assert_eq!(
        alice.expect("queue_created"),
        format!("queue_created {chat} cust-1")
    );
    alice.send(&format!("claim {chat}"));
    alice.expect_each(&[format!("claimed {chat}"), format!("assigned {chat}")]);

    let mut bob = Client::connect(&port);
    bob.send("login officer bob");
    bob.expect("ok officer bob");
    bob.send(&format!("claim {chat}"));
    assert!(bob.expect("error").starts_with("error already_assigned"));

    alice.send(&format!("join {chat} 0"));
    alice.expect(&format!("joined chat:{chat}"));
    customer.send(&format!("join {chat} 0"));
    customer.expect(&format!("joined chat:{chat}"));
    // The replay from 0 starts with the claim's system entry.
    for reader in [&mut alice, &mut customer] {
        assert_eq!(
            reader.expect("msg"),
            format!("msg {chat} #1 alice: alice took the chat")
        );
    }
    customer.send(&format!("say {chat} Hello, anyone there?"));
    assert_eq!(
        alice.expect("msg"),
        format!("msg {chat} #2 cust-1: Hello, anyone there?")
    );
    alice.send(&format!("say {chat} Yes, Alice here."));
    customer.expect("msg"); // its own message, #2
    assert_eq!(
        customer.expect("msg"),
        format!("msg {chat} #3 alice: Yes, Alice here.")
    );

    // The core's rules apply here as everywhere: bob may not write to alice's chat.
    bob.send(&format!("say {chat} hijack"));
    assert!(bob.expect("error").starts_with("error forbidden"));
}

/// A directory of its own for an example's files, removed with everything in it when
/// the test ends, passed or failed.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("examples-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn remote_bot_greets_over_the_wire_contract() {
    let server = chat_http::testing::TestServer::open();
    let mut child = cargo_example("remote_bot")
        .args([server.url(), "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run cargo");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    // Once it watches the queue, two customers arrive.
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "ended: {seen:?}");
        seen.push(line.trim().to_string());
        if line.contains("watching the queue") {
            break;
        }
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = chat_client::Client::new(server.url()).unwrap();
    let chats: Vec<(chat_client::Client, String)> = runtime.block_on(async {
        let mut chats = Vec::new();
        for customer in ["cust-1", "cust-2"] {
            let login = client.customer_login(customer, None, None).await.unwrap();
            chats.push((client.with_token(login.token), login.chat.id.to_string()));
        }
        chats
    });
    // It stops by itself after two greetings; a bot that hangs fails the test.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("remote_bot did not finish: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    assert!(status.success(), "{seen:?} {rest:?}");
    for customer in ["cust-1", "cust-2"] {
        assert!(
            rest.iter()
                .any(|l| l.starts_with(&format!("greeted {customer} in chat"))),
            "{rest:?}"
        );
    }
    // Each customer reads the claim's entry, then the greeting, once.
    runtime.block_on(async {
        for (me, chat) in &chats {
            let messages = me.all_messages(chat).await.unwrap();
            assert_eq!(messages.len(), 2, "{messages:?}");
            assert_eq!(messages[0].content, "Remote bot took the chat");
            assert!(messages[1].content.starts_with("Hello cust-"));
            assert_eq!(messages[1].sender_id, "remote-bot");
        }
    });
}
