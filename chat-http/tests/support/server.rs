//! Test support shared by chat-http's test binaries (included with `#[path]`): the real
//! `chat-http` binary started on port 0 and killed on drop ([`Server`]), its banner
//! ([`read_banner`]), and its REST API ([`Api`]: `chat_client::Client` for the
//! contract's calls, raw requests for wire details). Each binary uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_client::Client;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_chat-http");

/// The REST API of a running server, as a client sees it: the contract's calls through
/// `chat_client::Client`, and raw requests ([`Api::call`], [`Api::expect`]) for what a
/// test asserts on the wire. Both share one connection pool.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) base: String,
    client: Client,
}

/// An answer as the tests read it: the status, and the body as JSON (a stored message or
/// chat, or the contract's error object).
type Answer = Result<(u16, Value), chat_client::Error>;

impl Api {
    fn new(base: String) -> Self {
        let client = Client::builder(&base)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Self { base, client }
    }

    /// One request; `Err` when no complete answer came (the connection failed or
    /// broke off), `Ok((status, body))` otherwise (`Value::Null` for a non-JSON body).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut req = self
            .client()
            .request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// A request that must be answered with `status`; returns the body.
    #[track_caller]
    pub(crate) fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        status: u16,
    ) -> impl Future<Output = Value> + '_ {
        let caller = std::panic::Location::caller();
        let path = path.to_string();
        let token = token.map(str::to_string);
        async move {
            let (got, body) = self
                .call(method.clone(), &path, token.as_deref(), body)
                .await
                .unwrap_or_else(|e| panic!("{method} {path} ({caller}): no answer: {e}"));
            assert_eq!(got, status, "{method} {path} ({caller}): {body}");
            body
        }
    }

    /// The HTTP client, for requests these helpers do not cover.
    pub(crate) fn client(&self) -> &reqwest::Client {
        self.client.http()
    }

    /// The same API on a new HTTP client: the old client's pooled connections close
    /// once it is dropped.
    pub(crate) fn with_new_client(&self) -> Self {
        Self::new(self.base.clone())
    }

    /// The contract's client acting with `token`.
    fn with(&self, token: &str) -> Client {
        self.client.with_token(token)
    }

    /// Creates an officer (open mode: no password) and logs them in; returns the token.
    pub(crate) async fn officer(&self, id: &str) -> String {
        self.client
            .create_officer(id, None, None)
            .await
            .unwrap_or_else(|e| panic!("create officer {id}: {e}"));
        let login = self
            .client
            .officer_login(id, None)
            .await
            .unwrap_or_else(|e| panic!("log officer {id} in: {e}"));
        login.token
    }

    /// Creates officer `id` with `password` as the admin (`admin`: the server's admin
    /// token) and logs them in; returns the token.
    pub(crate) async fn officer_as(&self, admin: &str, id: &str, password: &str) -> String {
        self.expect(
            Method::POST,
            "/api/officers",
            Some(admin),
            Some(json!({ "id": id, "password": password })),
            201,
        )
        .await;
        let login = self
            .expect(
                Method::POST,
                "/api/officers/login",
                None,
                Some(json!({ "officerId": id, "password": password })),
                200,
            )
            .await;
        login["token"].as_str().expect("a token").to_string()
    }

    /// Logs a customer in (open mode: no signature); returns (token, chat id).
    pub(crate) async fn customer(&self, id: &str) -> (String, String) {
        let login = self
            .client
            .customer_login(id, None, None)
            .await
            .unwrap_or_else(|e| panic!("log customer {id} in: {e}"));
        (login.token, login.chat.id.to_string())
    }

    /// Sends a message: `(201, message)`, or `(200, message)` for a repeated key, or the
    /// refusal's status and error object.
    pub(crate) async fn send(&self, token: &str, chat: &str, content: &str) -> Answer {
        answer(
            self.with(token)
                .send(chat, content, None)
                .await
                .map(|sent| {
                    let status = if sent.created { 201 } else { 200 };
                    (status, sent.message)
                }),
        )
    }

    /// Logs customer `id` in and sends `count` messages to their chat one at a time,
    /// `gap` apart (each its own change, not a burst), every one stored (201).
    pub(crate) async fn send_paced(&self, id: &str, count: usize, gap: std::time::Duration) {
        let (token, chat) = self.customer(id).await;
        for n in 0..count {
            let (status, body) = self.send(&token, &chat, &format!("#{n}")).await.unwrap();
            assert_eq!(status, 201, "{body}");
            tokio::time::sleep(gap).await;
        }
    }

    /// Claims a chat: `(200, chat)`, or the refusal's status and error object.
    pub(crate) async fn claim(&self, token: &str, officer: &str, chat: &str) -> Answer {
        answer(
            self.with(token)
                .claim(officer, chat)
                .await
                .map(|chat| (200, chat)),
        )
    }

    /// Every message of a chat, read page by page.
    pub(crate) async fn all_messages(&self, token: &str, chat: &str) -> Vec<Value> {
        self.with(token)
            .all_messages(chat)
            .await
            .unwrap_or_else(|e| panic!("messages of {chat}: {e}"))
            .iter()
            .map(json)
            .collect()
    }
}

/// A typed answer as `(status, JSON)`: a refusal becomes its status and the contract's
/// error object; only a missing or broken answer stays an error.
fn answer<T: Serialize>(result: Result<(u16, T), chat_client::Error>) -> Answer {
    match result {
        Ok((status, body)) => Ok((status, json(&body))),
        Err(chat_client::Error::Api(refusal)) => Ok((
            refusal.status.expect("a REST refusal has a status"),
            json!({ "error": { "code": refusal.code, "message": refusal.message } }),
        )),
        Err(e) => Err(e),
    }
}

fn json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).expect("the contract's types serialize")
}

/// The real server binary in open mode on a given database file; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) api: Api,
    /// What it printed on start.
    pub(crate) banner: String,
}

impl Server {
    /// Starts the binary on port 0 on `db`, appending its log to `log`, and waits for
    /// the banner that says it is serving.
    pub(crate) fn start(db: &Path, log: &Path) -> Self {
        Self::start_with(db, log, &[])
    }

    /// [`Server::start`] with more arguments for the binary (a `--log` among them
    /// replaces the default `warn`).
    pub(crate) fn start_with(db: &Path, log: &Path, extra: &[&str]) -> Self {
        Self::start_limited(db, log, extra, None)
    }

    /// [`Server::start_with`], with the open-file limit (soft and hard) set to
    /// `open_files` first when given (through `sh -c 'ulimit -n'`, then `exec`).
    pub(crate) fn start_limited(
        db: &Path,
        log: &Path,
        extra: &[&str],
        open_files: Option<u32>,
    ) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let command = match open_files {
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", "ulimit -n \"$0\" && exec \"$@\""])
                    .arg(limit.to_string())
                    .arg(BIN);
                sh
            }
            None => Command::new(BIN),
        };
        Self::spawn_command(
            command,
            |command| {
                command
                    .arg("--db")
                    .arg(db)
                    .args(extra)
                    .env_remove("CHAT_DATABASE_URL");
            },
            log.into(),
        )
    }

    /// The binary on a PostgreSQL database (`CHAT_DATABASE_URL`), as one node of
    /// several; its log goes to the test's stderr.
    pub(crate) fn on_postgres(url: &str) -> Self {
        Self::on_postgres_with(url, &[])
    }

    /// [`Server::on_postgres`] with more arguments for the binary.
    pub(crate) fn on_postgres_with(url: &str, extra: &[&str]) -> Self {
        Self::spawn(
            |command| {
                command
                    .env("CHAT_DATABASE_URL", url)
                    .env_remove("CHAT_DB")
                    .args(extra);
            },
            Stdio::inherit(),
        )
    }

    /// Starts the binary in open mode on port 0 with `configure`'s storage, and waits
    /// for the banner that says it is serving.
    fn spawn(configure: impl FnOnce(&mut Command), stderr: Stdio) -> Self {
        Self::spawn_command(Command::new(BIN), configure, stderr)
    }

    /// [`Server::spawn`] through `command` (the binary, or a shell that execs it).
    fn spawn_command(
        mut command: Command,
        configure: impl FnOnce(&mut Command),
        stderr: Stdio,
    ) -> Self {
        // Clients here send at full speed; the per-sender message limit (tested in
        // api/limits.rs) would refuse most of that.
        command
            .args(["--bind", "127.0.0.1:0", "--limit-sends", "off"])
            .env_remove("CHAT_ADMIN_TOKEN")
            .env_remove("CHAT_CUSTOMER_SECRET")
            .env_remove("CHAT_SYNC_FULL")
            .env_remove("CHAT_SYNC_NORMAL");
        configure(&mut command);
        if !command.get_args().any(|a| a == "--log") {
            command.args(["--log", "warn"]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start chat-http");
        let (base, banner) = read_banner(&mut child);
        Self {
            child,
            api: Api::new(base),
            banner,
        }
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> std::net::SocketAddr {
        self.api
            .base
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected base URL {}", self.api.base))
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Context switches so far of each of its threads named `name`, by thread id
    /// (Linux, `/proc`).
    pub(crate) fn thread_switches(&self, name: &str) -> std::collections::HashMap<String, u64> {
        let mut threads = std::collections::HashMap::new();
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid())).unwrap() {
            let task = task.unwrap().path();
            // A thread that ended meanwhile is simply not counted.
            let Ok(status) = std::fs::read_to_string(task.join("status")) else {
                continue;
            };
            if status.lines().next() != Some(&format!("Name:\t{name}")) {
                continue;
            }
            let total = status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            threads.insert(task.file_name().unwrap().to_string_lossy().into(), total);
        }
        threads
    }

    /// The context switches of its threads named `name` since `before` (from
    /// [`Server::thread_switches`]; threads new since then count in full).
    pub(crate) fn thread_switches_since(
        &self,
        name: &str,
        before: &std::collections::HashMap<String, u64>,
    ) -> u64 {
        self.thread_switches(name)
            .iter()
            .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
            .sum()
    }

    /// SIGKILL: no destructor, no checkpoint, no flush.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit (the store is closed last).
    pub(crate) fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "chat-http exited with {status:?}");
                return;
            }
            assert!(Instant::now() < deadline, "chat-http did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads the banner of a `chat-http` started with a piped stdout (killing it if it exits
/// first), then keeps draining stdout so the child never blocks on a full pipe. Returns
/// its base URL and the banner.
pub(crate) fn read_banner(child: &mut Child) -> (String, String) {
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut banner = String::new();
    while !banner.contains("to stop") {
        if stdout.read_line(&mut banner).expect("read the banner") == 0 {
            let _ = child.kill();
            panic!("chat-http exited during start; printed {banner:?}");
        }
    }
    let base = banner
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("chat-http listening on "))
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_string();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
    });
    (base, banner)
}
