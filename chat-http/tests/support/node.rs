//! The real `socket.io-client` (npm), run by Node on `tests/socketio/scenarios.mjs`
//! against a server a test started. Node and the packages are required: without them
//! the tests fail, with the command that installs them (`.ci/run` does: the `nodejs` and
//! `npm` packages, then `npm ci` in `tests/socketio/`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/socketio");

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
