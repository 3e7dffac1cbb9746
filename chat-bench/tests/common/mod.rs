//! Shared by chat-bench's tests: the workspace's test server
//! (`chat_http::testing::TestServer`, secured, with Server-Timing on), the target options
//! that point chat-bench at it, and a runner for the built `chat-bench` binary that
//! returns its exit code and JSON report.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub use chat_http::testing::{ADMIN_TOKEN, CUSTOMER_SECRET, TestServer};
use serde_json::Value;

/// A secured server on a fresh database.
pub fn server() -> TestServer {
    builder().start()
}

/// A secured server on `db`.
pub fn server_on(db: &Path) -> TestServer {
    builder().db(db).start()
}

fn builder() -> chat_http::testing::TestServerBuilder {
    TestServer::builder()
        .secured()
        .configure_state(|state| state.server_timing(true))
}

/// The target options that point chat-bench at `server` (in this test process).
pub fn target_args(server: &TestServer) -> Vec<String> {
    vec![
        "--server".into(),
        server.url().to_string(),
        "--admin-token".into(),
        ADMIN_TOKEN.into(),
        "--customer-secret".into(),
        CUSTOMER_SECRET.into(),
        "--server-pid".into(),
        std::process::id().to_string(),
    ]
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
