//! Helpers for running the built `chat-cli` binary as a process, in the style of
//! ripgrep's `tests/util.rs`: every test gets its own temporary directory (database and
//! config dir), a clean environment, and assertions on stdout, stderr and exit code.
//! Remote-mode tests talk to chat-http's own test server (`chat_http::testing`).

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chat_http::testing::{ADMIN_TOKEN, TestServer};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_chat-cli");

/// A server with the admin token [`ADMIN_TOKEN`], where customers log in by id alone (no
/// customer secret; `TestServer::secured()` sets both).
pub fn secured_server() -> TestServer {
    TestServer::builder().admin_token(ADMIN_TOKEN).start()
}

/// Where one test's CLI runs point: a local database (SQLite or PostgreSQL) or a server,
/// plus a config dir.
pub struct Cli {
    pub dir: tempfile::TempDir,
    pub mode: Vec<String>,
    pub config_dir: PathBuf,
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing the streams when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts success and returns stdout parsed as one JSON document.
    #[track_caller]
    pub fn ok_json(&self) -> Value {
        self.code(0);
        assert!(self.stderr.is_empty(), "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", self.stdout))
    }

    /// Asserts a failure with `code` whose stderr is the contract's JSON error object with
    /// this error code (for runs with --json); stdout must be empty.
    #[track_caller]
    pub fn json_error(&self, exit: i32, error_code: &str) -> Value {
        self.code(exit);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        let v: Value = serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", self.stderr));
        assert_eq!(v["error"]["code"], error_code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        v
    }

    /// Asserts a failure with `code` and a human error line `error: <error_code>: ...`.
    #[track_caller]
    pub fn error(&self, exit: i32, error_code: &str) -> &Self {
        self.code(exit);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        let prefix = format!("error: {error_code}: ");
        assert!(
            self.stderr.starts_with(&prefix),
            "stderr should start with {prefix:?}: {}",
            self.stderr
        );
        self
    }
}

impl Cli {
    /// Runs on a fresh SQLite file in a temporary directory.
    pub fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chat.db");
        Self::with_mode(dir, vec!["--db".into(), db.display().to_string()])
    }

    /// Runs on the PostgreSQL database at `url` (`--database-url`).
    pub fn postgres(url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::with_mode(dir, vec!["--database-url".into(), url.to_string()])
    }

    /// Runs against a server at `url`.
    pub fn remote(url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::with_mode(dir, vec!["--server".into(), url.to_string()])
    }

    fn with_mode(dir: tempfile::TempDir, mode: Vec<String>) -> Self {
        let config_dir = dir.path().join("config");
        Self {
            dir,
            mode,
            config_dir,
        }
    }

    /// The same target with a config dir of its own (another user's saved token).
    pub fn with_config_dir(&self, name: &str) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        Cli {
            config_dir: self.dir.path().join(name),
            mode: self.mode.clone(),
            dir,
        }
    }

    pub fn db_path(&self) -> &Path {
        Path::new(&self.mode[1])
    }

    /// A command with the mode flags, the config dir and no CHAT_* from the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(&self.mode)
            .args(args)
            .env_remove("CHAT_DB")
            .env_remove("CHAT_DATABASE_URL")
            .env_remove("CHAT_SERVER")
            .env_remove("CHAT_TOKEN")
            .env_remove("CHAT_CA")
            .env_remove("CHAT_ATTACHMENTS_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .env("CHAT_CLI_CONFIG_DIR", &self.config_dir)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// Runs with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    /// `--json` run that must succeed; its document.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all).ok_json()
    }

    /// Creates an officer with a password.
    #[track_caller]
    pub fn add_officer(&self, id: &str, password: &str) -> Value {
        self.run_stdin(
            &["--json", "officer", "add", id, "--password-stdin"],
            &format!("{password}\n"),
        )
        .ok_json()
    }

    /// A customer's login; returns (chat id, token).
    #[track_caller]
    pub fn customer(&self, id: &str) -> (String, String) {
        let v = self.json(&["customer", "login", id]);
        (
            v["chat"]["id"].as_str().unwrap().to_string(),
            v["token"].as_str().unwrap().to_string(),
        )
    }
}

/// A child process whose stdout lines arrive on a channel, killed when dropped.
pub struct Watcher {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Watcher {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = pipe_lines(child.stdout.take().unwrap());
        let stderr = pipe_lines(child.stderr.take().unwrap());
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// The next stdout line, waiting at most `timeout`.
    #[track_caller]
    pub fn line(&self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(e) => panic!(
                "no stdout line from the watcher within {timeout:?} ({e}); stderr: {:?}",
                self.stderr.try_iter().collect::<Vec<_>>()
            ),
        }
    }

    /// The next stdout line that does not contain `skip` (within `timeout` each): a
    /// queue watch also prints the officers' presence and load (`officer_updated`),
    /// which its own connection causes.
    #[track_caller]
    pub fn line_except(&self, timeout: Duration, skip: &str) -> String {
        loop {
            let line = self.line(timeout);
            if !line.contains(skip) {
                return line;
            }
        }
    }

    /// As [`Watcher::line_except`], parsed as JSON.
    #[track_caller]
    pub fn json_line_except(&self, timeout: Duration, skip: &str) -> Value {
        let line = self.line_except(timeout, skip);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Asserts that no stdout line but ones containing `skip` arrives within `wait`.
    #[track_caller]
    pub fn no_line_except(&self, wait: Duration, skip: &str) {
        let deadline = std::time::Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(skip) => {}
                Ok(line) => panic!("unexpected line: {line}"),
                Err(_) => return,
            }
        }
    }

    /// The next stdout line parsed as JSON.
    #[track_caller]
    pub fn json_line(&self, timeout: Duration) -> Value {
        let line = self.line(timeout);
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// The next stderr line, waiting at most `timeout`.
    #[track_caller]
    pub fn stderr_line(&self, timeout: Duration) -> String {
        self.stderr
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("no stderr line within {timeout:?} ({e})"))
    }

    /// Asserts no stdout line arrives within `wait`.
    #[track_caller]
    pub fn no_line(&self, wait: Duration) {
        if let Ok(line) = self.lines.recv_timeout(wait) {
            panic!("unexpected line: {line}");
        }
    }

    /// Waits for the process to exit by itself; its exit code.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the watcher did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything on stderr so far.
    pub fn stderr_so_far(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pipe_lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs `n` copies of a command at once (all spawned before any is waited for) and
/// returns their runs.
pub fn race(commands: Vec<Command>) -> Vec<Run> {
    let children: Vec<Child> = commands
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect()
}

pub const SECS_10: Duration = Duration::from_secs(10);

/// The ids of a JSON list of chats, in order.
pub fn ids(chats: &Value) -> Vec<&str> {
    chats
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

/// The first four columns of a `chats` table's rows (CHAT, CUSTOMER, STATUS, OFFICER),
/// without its header.
pub fn chat_rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(4).collect())
        .collect()
}
