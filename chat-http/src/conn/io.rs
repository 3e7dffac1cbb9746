//! The socket of one connection as hyper (and, after an upgrade, the WebSocket) reads and
//! writes it: a `TcpStream` that holds the connection's slot under the caps ([`Permit`])
//! for as long as it lives, reports reads and writes to the connection's [`Activity`]
//! while it serves HTTP, and fails a write that has made no progress for
//! `--write-timeout` (the client takes no data), so that the connection ends and frees
//! what it held. Only a pending write is timed: an idle WebSocket writes nothing and is
//! never cut off here. A killed connection ([`Kill`]) fails its reads and writes at once.
//! It must not buffer: every byte goes straight to the socket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::activity::Activity;
use super::caps::Permit;
use super::kill::{Kill, Side};

/// A connection's socket.
#[derive(Debug)]
pub(crate) struct ConnIo {
    stream: TcpStream,
    /// Until the connection is done with HTTP.
    activity: Option<Arc<Activity>>,
    write_timeout: Option<Duration>,
    _permit: Permit,
    kill: Kill,
    /// Running while a write is pending: since the last write that made progress. Boxed
    /// and only while a write waits, so an idle socket carries one pointer for it.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl ConnIo {
    pub(crate) fn new(
        stream: TcpStream,
        activity: Arc<Activity>,
        write_timeout: Option<Duration>,
        permit: Permit,
        kill: Kill,
    ) -> Self {
        Self {
            stream,
            activity: Some(activity),
            write_timeout,
            _permit: permit,
            kill,
            stalled: None,
        }
    }

    /// The connection's record, until it is detached (then dropped here, which frees it).
    fn activity(&mut self) -> Option<&Activity> {
        if self.activity.as_ref().is_some_and(|a| a.is_detached()) {
            self.activity = None;
        }
        self.activity.as_deref()
    }

    /// Passes a write's outcome on; a pending write past the write timeout becomes an
    /// error.
    fn watch_write(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.stalled = None;
                    if let Some(activity) = self.activity() {
                        activity.on_write();
                    }
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(limit) = self.write_timeout else {
                    return Poll::Pending;
                };
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client took no data for the write timeout",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

fn killed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "the connection was ended")
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.kill.check(Side::Read, cx) {
            return Poll::Ready(Err(killed()));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && let Some(activity) = this.activity()
        {
            activity.on_read();
        }
        poll
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.kill.check(Side::Write, cx) {
            return Poll::Ready(Err(killed()));
        }
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch_write(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.kill.check(Side::Write, cx) {
            return Poll::Ready(Err(killed()));
        }
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.watch_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
