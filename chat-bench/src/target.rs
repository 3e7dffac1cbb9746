//! The server under test: either one already running (any deployment, given by URL and
//! secrets) or, with `--spawn`, a chat-http process started for the run on a free
//! loopback port, a temporary SQLite file and random secrets, and stopped at the end.
//! It checks that the bench has what the server requires (admin token, customer
//! secret) before any scenario starts.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::api::Api;
use crate::cli::TargetArgs;

/// How long a spawned server may take to print its banner.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a spawned server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) struct Target {
    pub(crate) api: Api,
    /// Every node to drive: `api` first, then each `--also-server`.
    pub(crate) nodes: Vec<Api>,
    /// The server's process id, when known (for memory figures).
    pub(crate) pid: Option<u32>,
    spawned: Option<Spawned>,
}

struct Spawned {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Target {
    /// Connects to the configured server, or starts one with `--spawn`; then checks that
    /// it answers and that the bench holds the secrets it requires.
    pub(crate) async fn start(args: &TargetArgs) -> anyhow::Result<Self> {
        let (base, admin, secret, pid, spawned) = match &args.spawn {
            Some(binary) => {
                let admin = format!("bench-admin-{}", random_hex());
                let secret = format!("bench-secret-{}", random_hex());
                let (base, spawned) = spawn(
                    binary,
                    args.spawn_db.as_deref(),
                    &admin,
                    &secret,
                    &args.server_args,
                )?;
                let pid = spawned.child.id();
                (base, Some(admin), Some(secret), Some(pid), Some(spawned))
            }
            None => (
                args.server.clone(),
                args.admin_token.clone(),
                args.customer_secret.clone(),
                args.server_pid,
                None,
            ),
        };
        let api = Api::new(&base, admin.clone(), secret.clone())?;
        let nodes = std::iter::once(api.clone())
            .chain(args.also_servers.iter().map(|url| api.on(url)))
            .collect();
        let target = Self {
            api,
            nodes,
            pid,
            spawned,
        };
        let index = target.api.index().await.with_context(|| {
            format!("the server at {base} does not answer GET / like chat-http")
        })?;
        if index["openMode"] == false && admin.is_none() {
            bail!(
                "the server is secured: give its admin token (--admin-token or CHAT_ADMIN_TOKEN) \
                 so the bench can create officers"
            );
        }
        if index["customerIdsOnTrust"] == false && secret.is_none() {
            bail!(
                "the server checks customer signatures: give its customer secret \
                 (--customer-secret or CHAT_CUSTOMER_SECRET)"
            );
        }
        Ok(target)
    }

    pub(crate) fn spawned(&self) -> bool {
        self.spawned.is_some()
    }

    /// Stops a spawned server (SIGTERM, then SIGKILL if it does not stop in time).
    pub(crate) fn stop(mut self) {
        if let Some(spawned) = self.spawned.take() {
            stop(spawned);
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(mut spawned) = self.spawned.take() {
            let _ = spawned.child.kill();
            let _ = spawned.child.wait();
        }
    }
}

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Starts chat-http on 127.0.0.1:0 and learns its address from the banner it prints.
fn spawn(
    binary: &Path,
    db: Option<&Path>,
    admin: &str,
    secret: &str,
    extra: &[String],
) -> anyhow::Result<(String, Spawned)> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let db = db.map_or_else(|| dir.path().join("bench.db"), Path::to_path_buf);
    let mut child = Command::new(binary)
        .arg("--bind")
        .arg("127.0.0.1:0")
        .arg("--db")
        .arg(&db)
        .args(extra)
        // Secrets by environment, so they do not show in the process list; a flag in
        // `extra` wins over these.
        .env("CHAT_ADMIN_TOKEN", admin)
        .env("CHAT_CUSTOMER_SECRET", secret)
        .env("CHAT_LOG", "warn")
        .env("CHAT_SERVER_TIMING", "true")
        // A load test sends far faster per person than the abuse limit allows a human.
        .env("CHAT_LIMIT_SENDS", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let (tx, rx) = mpsc::channel();
    // Reads the banner, then keeps draining stdout so the server never blocks on it.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("chat-http listening on ") {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        }
    });
    let started = Instant::now();
    let base = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(url) => break url,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().ok();
                bail!("{} exited before serving ({status:?})", binary.display());
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("{} exited before serving ({status})", binary.display());
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            bail!(
                "{} did not start within {START_TIMEOUT:?}",
                binary.display()
            );
        }
    };
    Ok((base, Spawned { child, _dir: dir }))
}

/// SIGTERM through kill(1) (the crate forbids unsafe code, so no libc call), then a
/// SIGKILL if the server has not stopped in time.
fn stop(mut spawned: Spawned) {
    let pid = spawned.child.id().to_string();
    let _ = Command::new("kill")
        .args(["-TERM", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let started = Instant::now();
    while started.elapsed() < STOP_TIMEOUT {
        if let Ok(Some(_)) = spawned.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("chat-bench: the spawned server did not stop within {STOP_TIMEOUT:?}; killing it");
    let _ = spawned.child.kill();
    let _ = spawned.child.wait();
}
