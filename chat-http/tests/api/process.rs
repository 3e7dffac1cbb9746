//! The server as a process and across restarts: the built binary started on port 0,
//! SIGTERM, refusing open mode on a public address, and data and tokens that survive a
//! restart on the same database file.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Options, spawn_app};
use crate::server::read_banner;

const BIN: &str = env!("CARGO_BIN_EXE_chat-http");
const ADMIN: &str = "process-admin-token-0123456789abcdef";
const SECRET: &str = "process-customer-secret-0123456789ab";

#[tokio::test]
async fn restart_keeps_messages_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let options = Options {
        db: Some(db.clone()),
        ..Options::secured()
    };
    let app = spawn_app(options.clone()).await;
    let officer = app.new_officer("alice").await;
    let (customer, chat) = app.new_customer("c1").await;
    app.claim(Some(&officer), "alice", &chat).await.expect(200);
    let m1 = app.say(&customer, &chat, "before restart").await;
    let m2 = app.say(&officer, &chat, "answer").await;
    app.stop().await;

    let app = spawn_app(options).await;
    let history = app.messages(Some(&customer), &chat, "").await.expect(200);
    assert_eq!(history[0]["content"], "Officer alice took the chat");
    assert_eq!(history, json!([history[0], m1, m2]));
    let m3 = app.say(&officer, &chat, "after restart").await;
    assert_eq!(m3["seq"], 4);
    let stored = app.chat(Some(&officer), &chat).await.expect(200);
    assert_eq!(stored["assignedOfficerId"], "alice");
    app.stop().await;
}

/// Starts the binary on port 0 in a temp dir; returns the child, its base URL and the
/// banner it printed.
fn start_binary(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, String, String) {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["--bind", "127.0.0.1:0", "--db", "test.db", "--log", "warn"])
        .args(extra)
        .env_remove("CHAT_ADMIN_TOKEN")
        .env_remove("CHAT_CUSTOMER_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chat-http");
    let (base, banner) = read_banner(&mut child);
    (child, base, banner)
}

fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn binary_serves_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, _) = start_binary(dir.path(), &[]);
    let client = crate::helpers::http_client();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let created = client
        .post(format!("{base}/api/officers"))
        .json(&json!({ "id": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    // A WebSocket open at shutdown is closed with 1001 and does not hold the exit up.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/ws", base.replace("http://", "ws://")))
            .await
            .unwrap();

    sigterm(&child);
    use futures_util::StreamExt;
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap();
    match frame {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(close)))) => {
            assert_eq!(u16::from(close.code), 1001);
        }
        other => panic!("expected a 1001 close, got {other:?}"),
    }
    let exit = tokio::task::spawn_blocking(move || wait_exit(&mut child, Duration::from_secs(15)))
        .await
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(dir.path().join("test.db").exists());
}

#[test]
fn open_mode_on_a_public_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["--bind", "0.0.0.0:0", "--db", "test.db"])
        .env_remove("CHAT_ADMIN_TOKEN")
        .env_remove("CHAT_ALLOW_OPEN_REMOTE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("open mode"), "stderr: {stderr}");
    assert!(stderr.contains("--allow-open-remote"), "stderr: {stderr}");
    assert!(
        !dir.path().join("test.db").exists(),
        "nothing opened before refusing"
    );
}

#[test]
fn banner_tells_open_mode_and_trust() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base, banner) = start_binary(dir.path(), &[]);
    assert!(banner.contains(&format!("{base}/customer")), "{banner}");
    assert!(banner.contains(&format!("{base}/officer")), "{banner}");
    assert!(banner.contains("OPEN MODE"), "{banner}");
    assert!(banner.contains("taken on trust"), "{banner}");
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");

    let secured = ["--admin-token", ADMIN, "--customer-secret", SECRET];
    let (mut child, _, banner) = start_binary(dir.path(), &secured);
    assert!(!banner.contains("OPEN MODE"), "{banner}");
    assert!(!banner.contains("on trust"), "{banner}");
    assert!(
        !banner.contains(ADMIN) && !banner.contains(SECRET),
        "{banner}"
    );
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
}

#[test]
fn help_lists_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind",
        "--db",
        "--admin-token",
        "--customer-secret",
        "--max-message-chars",
        "--cors-origin",
        "--log",
        "--allow-open-remote",
        "--sync-full",
        "--header-read-timeout",
        "--body-read-timeout",
        "--keep-alive-timeout",
        "--write-timeout",
        "--max-connections-per-address",
        "--max-connections",
        "--sync-normal",
        "--admin-token-file",
        "--customer-secret-file",
        "--limit-address-token-failures",
        "CHAT_BIND",
        "CHAT_DB",
        "CHAT_SYNC_NORMAL",
        "CHAT_ADMIN_TOKEN_FILE",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// Runs the binary with `args` in `dir`, expecting it to refuse to start; returns its
/// stderr.
fn refused_start(dir: &std::path::Path, args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["--bind", "127.0.0.1:0", "--db", "test.db"])
        .args(args)
        .env_remove("CHAT_ADMIN_TOKEN")
        .env_remove("CHAT_CUSTOMER_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A server that starts instead is killed (and the test fails) rather than awaited.
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(2), "{args:?} was not refused");
    assert!(
        !dir.join("test.db").exists(),
        "nothing opened before refusing"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    stderr
}

#[test]
fn a_short_admin_token_or_customer_secret_is_refused_with_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        ["--admin-token", "a", "--customer-secret", SECRET],
        ["--admin-token", ADMIN, "--customer-secret", "s3cret"],
        ["--admin-token", &ADMIN[..31], "--customer-secret", SECRET],
    ] {
        let stderr = refused_start(dir.path(), &args);
        assert!(stderr.contains("at least 32"), "{stderr}");
        assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
        // The message never repeats the secret it refuses.
        assert!(
            !stderr.contains("s3cret") && !stderr.contains(&ADMIN[..31]),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn secrets_are_read_from_files_without_their_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_file, secret_file) = (dir.path().join("admin"), dir.path().join("secret"));
    std::fs::write(&admin_file, format!("{ADMIN}\n")).unwrap();
    std::fs::write(&secret_file, format!("{SECRET}\r\n")).unwrap();
    let files = [
        "--admin-token-file",
        admin_file.to_str().unwrap(),
        "--customer-secret-file",
        secret_file.to_str().unwrap(),
    ];
    let (mut child, base, banner) = start_binary(dir.path(), &files);
    assert!(
        !banner.contains("OPEN MODE") && !banner.contains("on trust"),
        "{banner}"
    );
    let client = crate::helpers::http_client();
    let created = client
        .post(format!("{base}/api/officers"))
        .bearer_auth(ADMIN)
        .json(&json!({ "id": "alice", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status().as_u16(),
        201,
        "the admin token from the file"
    );
    let signature = chatcore::customer_signature(SECRET.as_bytes(), "c1");
    let login = client
        .post(format!("{base}/api/customers/login"))
        .json(&json!({ "customerId": "c1", "signature": signature }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.status().as_u16(),
        200,
        "the customer secret from the file"
    );
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
    std::fs::remove_file(dir.path().join("test.db")).unwrap();

    // A file and the plain flag together, a short secret in a file, a missing file.
    std::fs::write(&admin_file, "short\n").unwrap();
    let stderr = refused_start(
        dir.path(),
        &["--admin-token-file", admin_file.to_str().unwrap()],
    );
    assert!(
        stderr.contains("openssl rand -hex 32") && !stderr.contains("short"),
        "{stderr}"
    );
    let stderr = refused_start(
        dir.path(),
        &[
            "--customer-secret",
            SECRET,
            "--customer-secret-file",
            "/nonexistent",
        ],
    );
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    let stderr = refused_start(dir.path(), &["--admin-token-file", "/nonexistent/admin"]);
    assert!(stderr.contains("/nonexistent/admin"), "{stderr}");
}
