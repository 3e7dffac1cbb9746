//! The real `socket.io-client` (npm), run by Node on `tests/socketio/scenarios.mjs`
//! against a server a test started. Each test asks [`ready`] first. Under CI (`CI` set)
//! Node, npm and the packages are required: without them the tests fail, naming the
//! command that installs them (`.ci/run` does: the `nodejs` and `npm` packages, then
//! `npm ci` in `tests/socketio/`). Elsewhere a missing `node_modules` is installed once
//! with `npm ci` (from the lock file), and without Node or npm the tests are skipped with
//! a printed reason, like the browser and PostgreSQL tests.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/socketio");

/// Whether the scenarios can run: true, or false after printing `SKIPPED:` and why
/// (never under CI, where it panics instead). Installs the packages once per test
/// process when they are missing and npm is there; concurrent tests wait for it.
pub(crate) fn ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    match READY.get_or_init(prepare) {
        Ok(()) => true,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}

fn prepare() -> Result<(), String> {
    let installed = || {
        Path::new(DIR)
            .join("node_modules/socket.io-client")
            .is_dir()
    };
    if !runs("node") {
        return Err(format!(
            "the Socket.IO tests need Node (apt-get install nodejs npm; then npm ci in {DIR})"
        ));
    }
    if installed() {
        return Ok(());
    }
    let how = format!("npm ci in {DIR} (needs the nodejs and npm packages; .ci/run installs both)");
    if std::env::var_os("CI").is_some() {
        return Err(format!("socket.io-client is not installed: run {how}"));
    }
    if !runs("npm") {
        return Err(format!(
            "socket.io-client is not installed and npm is missing: run {how}"
        ));
    }
    eprintln!("socket.io-client is not installed: running npm ci in {DIR}");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(DIR)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run npm ci ({e}): run {how}"))?;
    if !status.success() || !installed() {
        return Err(format!("npm ci failed ({status}): run {how}"));
    }
    Ok(())
}

/// Whether `program --version` runs.
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `scenario` with `env` (`CHAT_URL`, tokens, `TRANSPORTS`, ...) and returns the
/// `result` it printed; panics with Node's output when it fails.
pub(crate) async fn scenario(scenario: &str, env: &[(&str, &str)]) -> Value {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let scenario = scenario.to_string();
    tokio::task::spawn_blocking(move || run(&scenario, &env))
        .await
        .expect("the Node scenario's thread")
}

fn run(scenario: &str, env: &[(String, String)]) -> Value {
    assert!(
        Path::new(DIR)
            .join("node_modules/socket.io-client")
            .is_dir(),
        "socket.io-client is not installed: run `npm ci` in {DIR} (needs the nodejs and npm \
         packages; .ci/run installs both)"
    );
    let output = Command::new("node")
        .arg("scenarios.mjs")
        .arg(scenario)
        .current_dir(DIR)
        .env_remove("TRANSPORTS")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run node (apt-get install nodejs npm; then npm ci in {DIR}): {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Socket.IO scenario {scenario} failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("scenario {scenario} printed no JSON ({e}): {stdout}"));
    assert_eq!(report["ok"], true, "{report}");
    report["result"].clone()
}
