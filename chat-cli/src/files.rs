//! Files as the CLI streams them: a file on disk as a stream of bounded chunks (never
//! read whole), and the progress of a large transfer on stderr. It decides nothing about
//! what a file may be; the engine does.

use std::io::Write;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

/// Files at least this large show progress.
const PROGRESS_FROM: u64 = 1024 * 1024;
/// Bytes read from a file at a time.
const CHUNK: usize = 64 * 1024;

/// Progress of one transfer, printed to stderr in tenths for large files.
pub(crate) struct Progress {
    verb: &'static str,
    name: String,
    total: Option<u64>,
    done: u64,
    shown: u64,
    on: bool,
}

impl Progress {
    pub(crate) fn new(verb: &'static str, name: &str, total: Option<u64>) -> Self {
        Self {
            verb,
            name: name.to_string(),
            total,
            done: 0,
            shown: 0,
            on: total.is_none_or(|t| t >= PROGRESS_FROM),
        }
    }

    pub(crate) fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if !self.on {
            return;
        }
        match self.total {
            Some(total) if total > 0 => {
                let tenth = self.done * 10 / total;
                if tenth > self.shown && tenth < 10 {
                    self.shown = tenth;
                    self.print(&format!("{}%", tenth * 10));
                }
            }
            _ => {
                let mib = self.done / PROGRESS_FROM;
                if mib > self.shown {
                    self.shown = mib;
                    self.print(&format!("{mib} MiB"));
                }
            }
        }
    }

    pub(crate) fn finish(&mut self) {
        if self.on {
            self.print(&format!("100% ({} bytes)", self.done));
            self.on = false;
        }
    }

    fn print(&self, at: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{} {}: {at}", self.verb, self.name);
    }
}

/// A file's bytes as a stream, advancing `progress` as they are read.
pub(crate) fn file_stream(file: tokio::fs::File, progress: Progress) -> chatcore::ByteStream {
    Box::pin(futures_util::stream::unfold(
        Some((file, progress)),
        |state| async move {
            let (mut file, mut progress) = state?;
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => {
                    progress.finish();
                    None
                }
                Ok(n) => {
                    buf.truncate(n);
                    progress.advance(n as u64);
                    Some((Ok(Bytes::from(buf)), Some((file, progress))))
                }
                Err(e) => Some((Err(e), None)),
            }
        },
    ))
}
