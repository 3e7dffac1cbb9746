//! Test support (feature `testing`): a private, throwaway PostgreSQL cluster per test (or
//! the server named by `CHAT_TEST_DATABASE_URL`), and a fresh database per store. It must
//! not touch any cluster it did not start, beyond creating `test_*` databases on the one
//! it is given. Panics on failure: it is for tests only.
//!
//! [`TestDatabase::start`] is the one way a test of another crate (chat-http's nodes,
//! chat-cli's `--database-url`) opens PostgreSQL: a cluster and one fresh database on it.
//! [`TestPg`] is for tests that need several databases or restart the cluster.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A PostgreSQL server the tests may create databases on. Stops the cluster it
/// started when dropped.
pub struct TestPg {
    /// Connection settings of the maintenance database (`postgres`).
    base: tokio_postgres::Config,
    /// The cluster this process started (stopped on drop); `None` for an external
    /// server.
    cluster: Option<Cluster>,
}

struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_postgres: bool,
    /// The server options it was started with (port, socket dir, settings).
    options: String,
}

impl Cluster {
    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let mut all = vec!["-D", path_str(&data), "-l", path_str(&log), "-w"];
        all.extend_from_slice(args);
        run(self.as_postgres, &self.bin.join("pg_ctl"), &all)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run(
            self.as_postgres,
            &self.bin.join("pg_ctl"),
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root (the server
/// refuses to run as root).
fn run(as_postgres: bool, bin: &Path, args: &[&str]) -> Result<(), String> {
    let output = if as_postgres {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin)
            .args(args)
            .output()
    } else {
        Command::new(bin).args(args).output()
    }
    .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {args:?} failed: {}{}",
            bin.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TestPg {
    /// A server for this test, or `None` (with a printed `SKIPPED:` line) when
    /// PostgreSQL is not installed. Under `CI` a missing PostgreSQL fails the test.
    pub fn start(test: &str) -> Option<Self> {
        if let Ok(url) = std::env::var("CHAT_TEST_DATABASE_URL") {
            let mut base: tokio_postgres::Config = url
                .parse()
                .expect("CHAT_TEST_DATABASE_URL is a connection string");
            base.dbname("postgres");
            return Some(Self {
                base,
                cluster: None,
            });
        }
        let Some(bin) = find_bin() else {
            let reason = "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin \
                          (apt-get install postgresql, or set CHAT_TEST_DATABASE_URL)";
            assert!(std::env::var_os("CI").is_none(), "{test}: {reason}");
            println!("SKIPPED: {test}: {reason}");
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("chat-pg-")
            .tempdir()
            .expect("temp dir");
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:postgres", path_str(dir.path())])
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let data = dir.path().join("data");
        run(
            as_postgres,
            &bin.join("initdb"),
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        )
        .expect("initdb");
        let log = dir.path().join("log");
        // A port picked free may be taken before the server binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off",
                path_str(dir.path())
            );
            match run(
                as_postgres,
                &bin.join("pg_ctl"),
                &[
                    "-D",
                    path_str(&data),
                    "-l",
                    path_str(&log),
                    "-w",
                    "-o",
                    &options,
                    "start",
                ],
            ) {
                Ok(()) => {
                    let mut base = tokio_postgres::Config::new();
                    base.host("127.0.0.1")
                        .port(port)
                        .user("postgres")
                        .dbname("postgres");
                    return Some(Self {
                        base,
                        cluster: Some(Cluster {
                            bin,
                            dir,
                            as_postgres,
                            options,
                        }),
                    });
                }
                Err(e) => last_error = e,
            }
        }
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("{test}: cannot start PostgreSQL: {last_error}\n{log}");
    }

    /// Stops the server (fast shutdown: sessions are terminated) and starts it again on
    /// the same port after `down`. `false`, doing nothing, for an external server.
    pub fn restart(&self, down: std::time::Duration) -> bool {
        let Some(cluster) = &self.cluster else {
            return false;
        };
        cluster
            .pg_ctl(&["-m", "fast", "stop"])
            .expect("stop PostgreSQL");
        std::thread::sleep(down);
        cluster
            .pg_ctl(&["-o", &cluster.options, "start"])
            .expect("start PostgreSQL again");
        true
    }

    /// A new, empty database named `test_<random>`; its connection settings.
    pub async fn database(&self) -> tokio_postgres::Config {
        let name = format!("test_{}", uuid::Uuid::now_v7().simple());
        let (client, connection) = self
            .base
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to the maintenance database");
        let conn = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        drop(client);
        let _ = conn.await;
        let mut config = self.base.clone();
        config.dbname(&name);
        config
    }

    /// A connection string for `config`, in the `key=value` form that
    /// `--database-url` also accepts.
    pub fn url(config: &tokio_postgres::Config) -> String {
        let mut parts = Vec::new();
        if let Some(tokio_postgres::config::Host::Tcp(h)) = config.get_hosts().first() {
            parts.push(format!("host={h}"));
        }
        if let Some(p) = config.get_ports().first() {
            parts.push(format!("port={p}"));
        }
        if let Some(u) = config.get_user() {
            parts.push(format!("user={u}"));
        }
        if let Some(p) = config.get_password() {
            parts.push(format!("password={}", String::from_utf8_lossy(p)));
        }
        if let Some(d) = config.get_dbname() {
            parts.push(format!("dbname={d}"));
        }
        parts.join(" ")
    }
}

/// One fresh database on a [`TestPg`] cluster: what a test that runs nodes or the CLI on
/// PostgreSQL needs. The cluster stops when this is dropped.
pub struct TestDatabase {
    pg: TestPg,
    config: tokio_postgres::Config,
}

impl TestDatabase {
    /// A cluster for `test` (see [`TestPg::start`]: `None`, with a printed `SKIPPED:`
    /// line, when PostgreSQL is not installed; a failure under `CI`) and a new, empty
    /// database on it. Callable from sync tests and from async ones alike: the database
    /// is created on a thread and runtime of its own.
    pub fn start(test: &str) -> Option<Self> {
        let pg = TestPg::start(test)?;
        let config = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime")
                        .block_on(pg.database())
                })
                .join()
                .expect("create the test database")
        });
        Some(Self { pg, config })
    }

    /// Its connection settings (for `PgStore`, `PgBus`, a chat-http test node).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Its connection string, for `--database-url` / `CHAT_DATABASE_URL`.
    pub fn url(&self) -> String {
        TestPg::url(&self.config)
    }

    /// The cluster it is on.
    pub fn cluster(&self) -> &TestPg {
        &self.pg
    }
}
