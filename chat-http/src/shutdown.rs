//! Shutdown plumbing: the signal that tells long-lived socket tasks to close (with code
//! 1001), a count of live sockets so `serve` can wait for them, and the process signals
//! (SIGINT, SIGTERM) the binary shuts down on. It must not touch the store: closing it is
//! `serve`'s last step.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::watch;

/// Tells socket tasks the server is stopping and counts the ones still open.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown {
    waiters: Arc<Waiters>,
    sockets: watch::Sender<usize>,
}

impl Shutdown {
    pub(crate) fn new() -> Self {
        Self {
            waiters: Arc::default(),
            sockets: watch::Sender::new(0),
        }
    }

    /// Starts the shutdown: every socket task sees it and closes.
    pub(crate) fn trigger(&self) {
        self.waiters.trigger();
    }

    pub(crate) fn is_triggered(&self) -> bool {
        self.waiters.triggered.load(Ordering::SeqCst)
    }

    /// Resolves once the shutdown has started (at once if it has already). Polling it
    /// again with the same waker reads one flag and takes no lock: every socket task
    /// polls it on every wake-up.
    pub(crate) fn triggered(&self) -> Stopping {
        Stopping {
            waiters: Arc::clone(&self.waiters),
            slot: None,
            waker: None,
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

/// Number of locks the registered wakers are spread over.
const SHARDS: usize = 8;

/// The wakers of the tasks waiting for the shutdown, in shards so that tasks on
/// different workers seldom share a lock (a task takes one only to register or leave).
#[derive(Debug, Default)]
struct Waiters {
    triggered: AtomicBool,
    next_shard: AtomicUsize,
    shards: [Mutex<Slots>; SHARDS],
}

/// One shard: wakers by slot, and the slots free for reuse.
#[derive(Debug, Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<u32>,
}

impl Waiters {
    fn shard(&self, i: usize) -> MutexGuard<'_, Slots> {
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the flag, then wakes everyone registered. A waiter registers before it reads
    /// the flag again, and this sets the flag before it takes the shard locks, so no
    /// waiter can miss both.
    fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        for i in 0..SHARDS {
            for waker in self.shard(i).wakers.iter().flatten() {
                waker.wake_by_ref();
            }
        }
    }
}

/// The wait returned by [`Shutdown::triggered`].
#[derive(Debug)]
pub(crate) struct Stopping {
    waiters: Arc<Waiters>,
    /// Where its waker is registered (shard, slot), once polled.
    slot: Option<(u8, u32)>,
    /// The waker registered, so that a poll with the same one takes no lock.
    waker: Option<Waker>,
}

impl Future for Stopping {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.waiters.triggered.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if this
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let waker = cx.waker().clone();
        let shard = match this.slot {
            Some((shard, _)) => usize::from(shard),
            None => this.waiters.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS,
        };
        {
            let mut slots = this.waiters.shard(shard);
            match this.slot {
                Some((_, i)) => slots.wakers[i as usize] = Some(waker.clone()),
                None => {
                    let i = match slots.free.pop() {
                        Some(i) => {
                            slots.wakers[i as usize] = Some(waker.clone());
                            i
                        }
                        None => {
                            slots.wakers.push(Some(waker.clone()));
                            // More than 4 billion waiting sockets cannot happen: each
                            // holds a file descriptor.
                            u32::try_from(slots.wakers.len() - 1).unwrap_or(u32::MAX)
                        }
                    };
                    // SHARDS is far below 256.
                    this.slot = Some((shard as u8, i));
                }
            }
        }
        this.waker = Some(waker);
        // Registered: a trigger from now on wakes it; one before is seen here.
        if this.waiters.triggered.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Stopping {
    fn drop(&mut self) {
        if let Some((shard, i)) = self.slot {
            let mut slots = self.waiters.shard(usize::from(shard));
            slots.wakers[i as usize] = None;
            slots.free.push(i);
        }
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

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    #[tokio::test]
    async fn waiters_before_and_after_the_trigger_both_resolve() {
        let shutdown = Shutdown::new();
        let waiting: Vec<_> = (0..100)
            .map(|_| tokio::spawn(shutdown.triggered()))
            .collect();
        tokio::task::yield_now().await;
        assert!(!shutdown.is_triggered());
        shutdown.trigger();
        for task in waiting {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("a waiter registered before the trigger is woken")
                .unwrap();
        }
        assert!(shutdown.is_triggered());
        tokio::time::timeout(Duration::from_secs(5), shutdown.triggered())
            .await
            .expect("a wait started after the trigger resolves at once");
    }

    #[tokio::test]
    async fn a_pending_wait_stays_pending_and_dropping_it_frees_its_slot() {
        let shutdown = Shutdown::new();
        let mut first = shutdown.triggered();
        for _ in 0..3 {
            let polled = poll_fn(|cx| Poll::Ready(Pin::new(&mut first).poll(cx))).await;
            assert!(polled.is_pending());
        }
        let slot = first.slot.expect("registered on the first poll");
        drop(first);
        let free: usize = (0..SHARDS)
            .map(|i| shutdown.waiters.shard(i).free.len())
            .sum();
        assert_eq!(free, 1, "the dropped wait's slot is free again");
        // Waits are spread over the shards; one in the same shard reuses the slot.
        let mut reused = false;
        let mut held = Vec::new();
        for _ in 0..SHARDS {
            let mut next = shutdown.triggered();
            let _ = poll_fn(|cx| Poll::Ready(Pin::new(&mut next).poll(cx))).await;
            reused |= next.slot == Some(slot);
            held.push(next);
        }
        assert!(reused, "a later wait in that shard takes the freed slot");
        shutdown.trigger();
        for wait in held {
            tokio::time::timeout(Duration::from_secs(5), wait)
                .await
                .expect("resolves after the trigger");
        }
    }

    #[test]
    fn a_trigger_racing_registrations_wakes_every_waiter() {
        // Many rounds of waiters registering on two threads while a third triggers: a
        // waiter that read the flag before the trigger must still be woken.
        for _ in 0..200 {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_time()
                .build()
                .unwrap();
            runtime.block_on(async {
                let shutdown = Shutdown::new();
                let waiting: Vec<_> = (0..32)
                    .map(|_| tokio::spawn(shutdown.triggered()))
                    .collect();
                let trigger = {
                    let shutdown = shutdown.clone();
                    std::thread::spawn(move || shutdown.trigger())
                };
                for task in waiting {
                    tokio::time::timeout(Duration::from_secs(5), task)
                        .await
                        .expect("no waiter is missed by a concurrent trigger")
                        .unwrap();
                }
                trigger.join().unwrap();
            });
        }
    }
}
