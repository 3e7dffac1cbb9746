//! A handle that ends one connection from outside the tasks that read and write it:
//! once killed, its socket's reads and writes fail at once, also those waiting for the
//! client, so whatever serves it (hyper, or the WebSocket it was upgraded to) ends and
//! frees what it held. It is in every request's extensions; Socket.IO uses it to drop a
//! WebSocket whose client stopped reading, whose own task may be stuck in a write. It
//! must not decide when: its holder does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;

use futures_util::task::AtomicWaker;

/// One connection's kill switch; clones share it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kill(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    killed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

/// Which side of the socket asks.
#[derive(Debug, Clone, Copy)]
pub(super) enum Side {
    Read,
    Write,
}

impl Kill {
    /// Ends the connection: its next read or write fails, and one waiting is woken to fail.
    pub(crate) fn kill(&self) {
        self.0.killed.store(true, Ordering::SeqCst);
        self.0.reader.wake();
        self.0.writer.wake();
    }

    /// Whether the connection was killed; if not, `cx` is woken when it is.
    pub(super) fn check(&self, side: Side, cx: &Context<'_>) -> bool {
        let waker = match side {
            Side::Read => &self.0.reader,
            Side::Write => &self.0.writer,
        };
        waker.register(cx.waker());
        self.0.killed.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Wake, Waker};

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_kill_wakes_a_waiting_side_and_every_later_check_sees_it() {
        let kill = Kill::default();
        let woken = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        let cx = Context::from_waker(&waker);
        assert!(!kill.check(Side::Write, &cx));
        kill.clone().kill();
        assert!(woken.0.load(Ordering::SeqCst));
        assert!(kill.check(Side::Read, &cx));
        assert!(kill.check(Side::Write, &cx));
    }
}
