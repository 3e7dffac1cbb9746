//! Shutdown plumbing: the signal that tells long-lived socket tasks to close (with code
//! 1001), a count of live sockets so `serve` can wait for them, and the process signals
//! (SIGINT, SIGTERM) the binary shuts down on. It must not touch the store: closing it is
//! `serve`'s last step.

use std::time::Duration;

use tokio::sync::watch;

/// Tells socket tasks the server is stopping and counts the ones still open.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    stopping: watch::Sender<bool>,
    sockets: watch::Sender<usize>,
}

impl Shutdown {
    pub(crate) fn new() -> Self {
        Self {
            stopping: watch::Sender::new(false),
            sockets: watch::Sender::new(0),
        }
    }

    /// Starts the shutdown: every socket task sees it and closes.
    pub(crate) fn trigger(&self) {
        self.stopping.send_replace(true);
    }

    pub(crate) fn is_triggered(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once the shutdown has started (at once if it has already).
    pub(crate) fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            // An error means the sender is gone, which also means the server is gone.
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// Registers a live socket until the guard is dropped.
    pub(crate) fn socket_guard(&self) -> SocketGuard {
        self.sockets.send_modify(|n| *n += 1);
        SocketGuard {
            sockets: self.sockets.clone(),
        }
    }

    /// Waits until every socket has closed, or `limit` has passed; returns how many
    /// were still open.
    pub(crate) async fn sockets_closed(&self, limit: Duration) -> usize {
        let mut rx = self.sockets.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
        *self.sockets.borrow()
    }
}

/// Held by a socket task while its connection lives.
#[derive(Debug)]
pub(crate) struct SocketGuard {
    sockets: watch::Sender<usize>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.sockets.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this is called, not when the future is first polled, so a signal that arrives right
/// after start (say, once the banner is printed) is not lost. Call it inside the runtime.
#[cfg(unix)]
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let (mut interrupt, mut terminate) = match (interrupt, terminate) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGINT/SIGTERM");
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received; shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
        }
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received; shutting down");
    }
}
