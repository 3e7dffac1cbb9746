//! Tokens saved by `login`, one per server URL, in `sessions.json` under the config dir:
//! `$CHAT_CLI_CONFIG_DIR`, else `$XDG_CONFIG_HOME/chat-cli`, else `~/.config/chat-cli`.
//! The file holds bearer tokens, so it is created with mode 0600 (directory 0700) and
//! replaced atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};

const FILE: &str = "sessions.json";

/// A saved token and whom it belongs to (as the login answered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub(crate) token: String,
    pub(crate) role: String,
    pub(crate) subject: String,
}

/// The config directory.
pub(crate) fn config_dir() -> anyhow::Result<PathBuf> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("CHAT_CLI_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("chat-cli"));
    }
    let home = non_empty("HOME").ok_or_else(|| {
        anyhow!("no config directory: set CHAT_CLI_CONFIG_DIR, XDG_CONFIG_HOME or HOME")
    })?;
    Ok(PathBuf::from(home).join(".config").join("chat-cli"))
}

/// One key per server, so `http://h:1/` and `http://h:1` share a token.
fn key(server: &str) -> String {
    server.trim_end_matches('/').to_string()
}

fn read_all() -> anyhow::Result<BTreeMap<String, Saved>> {
    let path = config_dir()?.join(FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading saved sessions from {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_all(all: &BTreeMap<String, Saved>) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = config_dir()?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.{}.tmp", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(&serde_json::to_vec_pretty(all)?)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(path)
}

/// The token saved for `server`, if any.
pub(crate) fn load(server: &str) -> anyhow::Result<Option<Saved>> {
    Ok(read_all()?.remove(&key(server)))
}

/// Saves the token for `server`; returns the file's path.
pub(crate) fn save(server: &str, saved: Saved) -> anyhow::Result<PathBuf> {
    let mut all = read_all()?;
    all.insert(key(server), saved);
    write_all(&all)
}

/// Forgets the token for `server`; true if there was one.
pub(crate) fn remove(server: &str) -> anyhow::Result<bool> {
    let mut all = read_all()?;
    let had = all.remove(&key(server)).is_some();
    if had {
        write_all(&all)?;
    }
    Ok(had)
}
