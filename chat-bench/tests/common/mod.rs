//! Shared by chat-bench's tests: a real chat-http server (`chat_http::serve` on
//! 127.0.0.1:0 with a SQLite file, on a thread and runtime of its own, secured with an
//! admin token and a customer secret, Server-Timing on), and a runner for the built
//! `chat-bench` binary that returns its exit code and JSON report.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use chatcore::{ChatService, LocalBus, ServiceConfig, SqliteStore};
use serde_json::Value;
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "bench-test-admin-token-0123456789abcdef";
pub const CUSTOMER_SECRET: &str = "bench-test-customer-secret-0123456789ab";

pub struct Server {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A secured server on a fresh database.
    pub fn start() -> Self {
        Self::start_on(None)
    }

    /// A secured server on `db`, or on a fresh database.
    pub fn start_on(db: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = db.map_or_else(|| dir.path().join("server.db"), Path::to_path_buf);
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut config = ServiceConfig::default();
                config.admin_token = Some(ADMIN_TOKEN.into());
                config.customer_secret = Some(CUSTOMER_SECRET.as_bytes().to_vec());
                let store = SqliteStore::open(&db).expect("open the store");
                let service = ChatService::new(Arc::new(store), Arc::new(LocalBus::new()), config);
                let state = chat_http::AppState::builder(service)
                    .server_timing(true)
                    .build();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready_tx.send(listener.local_addr().unwrap()).unwrap();
                chat_http::serve(listener, state, async move {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = ready_rx.recv().expect("the server thread failed to start");
        Self {
            url: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// The target options that point chat-bench at this server (this test process).
    pub fn target_args(&self) -> Vec<String> {
        vec![
            "--server".into(),
            self.url.clone(),
            "--admin-token".into(),
            ADMIN_TOKEN.into(),
            "--customer-secret".into(),
            CUSTOMER_SECRET.into(),
            "--server-pid".into(),
            std::process::id().to_string(),
        ]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The built chat-bench binary.
pub fn bench_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chat-bench"))
}

/// What a chat-bench run gave.
pub struct Run {
    pub code: i32,
    pub report: Value,
    pub stderr: String,
}

/// Runs chat-bench with `--json` and these arguments.
pub fn bench(args: &[String]) -> Run {
    let output = Command::new(bench_binary())
        .arg("--json")
        .args(args)
        .env_remove("CHAT_ADMIN_TOKEN")
        .env_remove("CHAT_CUSTOMER_SECRET")
        .env_remove("CHAT_BENCH_SERVER")
        .output()
        .expect("running chat-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // A run that could not start prints no report (exit 3): Null then.
    let report = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("chat-bench printed a malformed report ({e}): {stdout}\nstderr: {stderr}")
        })
    };
    Run {
        code: output.status.code().unwrap_or(-1),
        report,
        stderr,
    }
}

/// `args` as owned strings.
pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

/// The named scenario of a report, which must have run and passed every check.
#[track_caller]
pub fn passed<'a>(run: &'a Run, name: &str) -> &'a Value {
    let scenario = run.report["scenarios"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no {name} scenario in {:#}", run.report));
    assert_eq!(
        scenario["skipped"],
        Value::Null,
        "{name} was skipped: {scenario:#}"
    );
    let checks = scenario["checks"].as_array().expect("checks");
    assert!(!checks.is_empty(), "{name} made no checks: {scenario:#}");
    for check in checks {
        assert_eq!(
            check["passed"], true,
            "{name}: failed check {check:#}\nstderr: {}",
            run.stderr
        );
    }
    assert_eq!(scenario["passed"], true);
    scenario
}

/// Row `i` of a scenario's results.
#[track_caller]
pub fn row(scenario: &Value, i: usize) -> &Value {
    &scenario["rows"][i]
}
