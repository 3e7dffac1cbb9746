//! The README's two sessions, as a newcomer runs them: the server started as "Start"
//! says (open mode, `./chat.db`), the curl quick test, then the chat-cli session, all
//! in one directory and one after the other, with the first server still running. The
//! shell blocks are taken from README.md itself, so the README cannot drift from what
//! works. Only the ports change (3001 and 3002 become free ephemeral ports, so that
//! tests can run side by side); a session that reused the other's port or database
//! still fails here.
//!
//! Needs bash, curl, jq and openssl (the README's sessions use them) and the chat-http
//! binary built beside chat-cli (`cargo test --workspace` builds both). Under CI a
//! missing one fails the test; elsewhere it is skipped with the reason.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The first ```sh block after the heading `## {heading}` in README.md.
fn readme_block(heading: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("read README.md");
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let rest = &readme[start..];
    let open = rest.find("```sh\n").expect("a sh block in the section") + "```sh\n".len();
    let len = rest[open..].find("```").expect("the block ends");
    rest[open..open + len].to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// What the sessions need, or why not (a failure under CI, a skip elsewhere).
fn tools() -> Option<PathBuf> {
    let chat_cli = PathBuf::from(env!("CARGO_BIN_EXE_chat-cli"));
    let chat_http = chat_cli.with_file_name("chat-http");
    let mut missing: Vec<String> = ["bash", "curl", "jq", "openssl"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(String::from)
        .collect();
    if !chat_http.exists() {
        missing.push(format!(
            "{} (run `cargo build -p chat-http` or `cargo test --workspace`)",
            chat_http.display()
        ));
    }
    if missing.is_empty() {
        return Some(chat_cli.parent().expect("bin dir").to_path_buf());
    }
    let why = format!("the README sessions need {missing:?}");
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("SKIPPED: {why}");
    None
}

/// A process group killed on drop (a session's background jobs go with it).
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        kill_group(self.0.id());
        let _ = self.0.wait();
    }
}

fn kill_group(leader: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{leader}")])
        .stderr(Stdio::null())
        .status();
}

/// A shell in `dir` with the built binaries first on PATH, its own process group, a
/// home of its own and no CHAT_* settings from the test's environment.
fn shell(dir: &Path, bin: &Path, script: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("CHAT_LOG", "warn")
        .process_group(0);
    cmd
}

fn run(dir: &Path, bin: &Path, what: &str, script: &str) -> Output {
    // curl fails the session on an HTTP error, as a reader would notice one.
    let script = format!("curl() {{ command curl --fail-with-body \"$@\"; }}\n{script}\n");
    // Output to files, not pipes: the session's background jobs (a server, a watch)
    // keep what they inherit open after the session ends.
    let logs = tempfile::tempdir().expect("log dir");
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let file = |p: &Path| std::fs::File::create(p).expect("log file");
    let mut child = shell(dir, bin, &script)
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .spawn()
        .expect("start bash");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the session") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Its background jobs end with it.
    kill_group(child.id());
    let _ = child.wait();
    let output = Output {
        status: status.unwrap_or_else(|| panic!("the {what} session did not finish in 120 s")),
        stdout: std::fs::read(&out_path).expect("read stdout"),
        stderr: std::fs::read(&err_path).expect("read stderr"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the README's {what} session failed ({}):\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    output
}

#[test]
fn the_readme_sessions_run_top_to_bottom_in_one_directory() {
    let Some(bin) = tools() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let (first, second) = (free_port(), free_port());
    let ports = |block: String| {
        block
            .replace("127.0.0.1:3001", &format!("127.0.0.1:{first}"))
            .replace("127.0.0.1:3002", &format!("127.0.0.1:{second}"))
    };

    // "Start": the server in open mode on ./chat.db, left running as a reader would.
    let _server = Group(
        shell(
            dir.path(),
            &bin,
            &format!("exec chat-http --bind 127.0.0.1:{first}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chat-http"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", first)).is_err() {
        assert!(Instant::now() < deadline, "chat-http did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let curl = run(
        dir.path(),
        &bin,
        "curl",
        &ports(readme_block("Quick test with curl")),
    );
    let out = String::from_utf8_lossy(&curl.stdout);
    assert!(
        out.contains("Hello, is my loan approved?") && out.contains("Hi! Let me check."),
        "the history lists both messages: {out}"
    );

    let cli = run(
        dir.path(),
        &bin,
        "chat-cli",
        &ports(readme_block("Command line")),
    );
    let out = String::from_utf8_lossy(&cli.stdout);
    assert!(
        out.contains("Hello, is anyone there?") && out.contains("Hi, I am Alice. How can I help?"),
        "the chat-cli session shows both messages: {out}"
    );
    assert!(
        dir.path().join("chat.db").exists() && dir.path().join("desk.db").exists(),
        "each session kept its own database file"
    );
}
