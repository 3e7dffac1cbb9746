//! What one connection is doing, for its deadlines: whether a request is in flight (from
//! the moment hyper hands over a complete request head until the answer's body is done),
//! when bytes of the next request head started to arrive, when it last wrote. From these
//! [`Activity::next`] says when the connection must be closed: a request head that takes
//! longer than `--header-read-timeout`, or an idle stretch longer than
//! `--keep-alive-timeout`. Once the connection is done with HTTP (closed, or upgraded
//! to a WebSocket) it is detached, and the socket lets go of it: an upgraded socket
//! carries none of this for the rest of its life. It decides nothing about what a request
//! may do.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::ServiceExt;

use super::kill::Kill;

/// No byte of a next request has arrived since the connection went idle.
const NONE: u64 = u64::MAX;

/// The two deadlines of a connection waiting for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) header_read: Option<Duration>,
    pub(crate) keep_alive: Option<Duration>,
}

/// Why a connection is closed by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A request head was not complete within the header-read timeout.
    HeaderRead,
    /// Nothing happened for the keep-alive timeout.
    Idle,
}

impl Expired {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Expired::HeaderRead => "no complete request head within the header-read timeout",
            Expired::Idle => "idle for the keep-alive timeout",
        }
    }
}

/// What the connection's task waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Close it now.
    Expired(Expired),
    /// Check again at this instant.
    At(Instant),
    /// No deadline runs (a request is in flight, or the timeouts are off): wait until a
    /// request ends.
    RequestEnd,
}

/// The shared record of one connection. Times are milliseconds since it was accepted.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    requests: AtomicU32,
    in_flight: AtomicU32,
    idle_since: AtomicU64,
    first_read: AtomicU64,
    last_write: AtomicU64,
    ended: Notify,
    detached: AtomicBool,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            opened: Instant::now(),
            requests: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            first_read: AtomicU64::new(NONE),
            last_write: AtomicU64::new(0),
            ended: Notify::new(),
            detached: AtomicBool::new(false),
        }
    }

    /// The connection is done with HTTP: its socket may let go of this record.
    pub(crate) fn detach(&self) {
        self.detached.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_detached(&self) -> bool {
        self.detached.load(Ordering::Relaxed)
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// Bytes arrived.
    pub(crate) fn on_read(&self) {
        if self.first_read.load(Ordering::Relaxed) == NONE {
            self.first_read.store(self.now(), Ordering::Relaxed);
        }
    }

    /// A write made progress.
    pub(crate) fn on_write(&self) {
        self.last_write.store(self.now(), Ordering::Relaxed);
    }

    /// A complete request head arrived; the guard ends the request when dropped.
    fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard(Arc::clone(self))
    }

    fn request_ended(&self) {
        self.idle_since.store(self.now(), Ordering::Relaxed);
        self.first_read.store(NONE, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.ended.notify_one();
    }

    /// The connection's next deadline. While it waits for a request: the header-read
    /// timeout runs from its accept (for the first request, whether or not anything
    /// arrives) or from the first byte of a later request; the keep-alive timeout runs,
    /// while no byte of a next request has arrived, from the end of the last request or
    /// its last write, whichever is later. No deadline runs while a request is in flight
    /// (a stalled answer is the write timeout's business).
    pub(crate) fn next(&self, timeouts: Timeouts) -> Next {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Next::RequestEnd;
        }
        let first_read = self.first_read.load(Ordering::Relaxed);
        let fresh = self.requests.load(Ordering::Relaxed) == 0;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 2);
        let mut deadline: Option<(u64, Expired)> = None;
        let mut consider = |at: u64, why| {
            if deadline.is_none_or(|(earliest, _)| at < earliest) {
                deadline = Some((at, why));
            }
        };
        if let Some(limit) = timeouts.header_read {
            let from = if fresh { 0 } else { first_read };
            if from != NONE {
                consider(from.saturating_add(ms(limit)), Expired::HeaderRead);
            }
        }
        if let Some(limit) = timeouts.keep_alive
            && first_read == NONE
        {
            let from = self
                .idle_since
                .load(Ordering::Relaxed)
                .max(self.last_write.load(Ordering::Relaxed));
            consider(from.saturating_add(ms(limit)), Expired::Idle);
        }
        match deadline {
            None => Next::RequestEnd,
            Some((at, why)) if at <= self.now() => Next::Expired(why),
            Some((at, _)) => Next::At(self.opened + Duration::from_millis(at)),
        }
    }

    /// Waits for what `next` asked for.
    pub(crate) async fn wait(&self, next: Next) {
        match next {
            Next::Expired(_) => {}
            Next::At(at) => tokio::time::sleep_until(at).await,
            Next::RequestEnd => self.ended.notified().await,
        }
    }
}

/// Ends a request when dropped: with the answer's body once hyper has sent all of it, or
/// with the handler's future if the connection ends first.
#[derive(Debug)]
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The router as hyper calls it, marking each request's start and end on the
/// connection's [`Activity`], and giving each request body a deadline
/// (`--body-read-timeout`): a body still not complete then fails to read, which the
/// extractors answer 400.
#[derive(Debug, Clone)]
pub(crate) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    body_timeout: Option<Duration>,
    /// The connection's kill switch, handed to every request.
    kill: Kill,
}

impl<S> Tracked<S> {
    pub(crate) fn new(
        inner: S,
        activity: Arc<Activity>,
        body_timeout: Option<Duration>,
        kill: Kill,
    ) -> Self {
        Self {
            inner,
            activity,
            body_timeout,
            kill,
        }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = self.activity.request_started();
        let mut request = request;
        request.extensions_mut().insert(self.kill.clone());
        // The router boxes the body into `Body` anyway; the deadline rides in that box,
        // and a handle to lift it rides in the request's extensions.
        let request = match self.body_timeout {
            Some(limit) => {
                let lifted = BodyDeadline::default();
                let (mut parts, body) = request.into_parts();
                parts.extensions.insert(lifted.clone());
                let body = DeadlineBody {
                    inner: body,
                    sleep: Box::pin(tokio::time::sleep(limit)),
                    lifted,
                };
                Request::from_parts(parts, Body::new(body))
            }
            None => request.map(Body::new),
        };
        let answer = self.inner.clone().oneshot(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| TrackedBody {
                body,
                _guard: guard,
            }))
        })
    }
}

/// The handle of a request body's deadline (`--body-read-timeout`), in the request's
/// extensions when one runs. A route whose body has a pace rule of its own (an upload,
/// whose engine asks a minimum rate instead of a whole-body deadline) lifts it.
#[derive(Debug, Clone, Default)]
pub struct BodyDeadline(Arc<AtomicBool>);

impl BodyDeadline {
    /// The body may take as long as its route's own rule allows.
    pub fn lift(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_lifted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A request body that fails to read once its deadline passes, unless lifted.
struct DeadlineBody {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    lifted: BodyDeadline,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if !this.lifted.is_lifted() && this.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body took longer than the body-read timeout",
            ))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(std::io::Error::other)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that ends its request when hyper drops it (after the last byte).
#[derive(Debug)]
pub(crate) struct TrackedBody {
    body: Body,
    _guard: RequestGuard,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity() -> Arc<Activity> {
        Arc::new(Activity::new())
    }

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_has_the_header_timeout_from_its_accept() {
        let a = activity();
        let t = Timeouts {
            header_read: secs(10),
            keep_alive: secs(60),
        };
        assert_eq!(a.next(t), Next::At(a.opened + Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(5)).await;
        // Bytes do not extend it.
        a.on_read();
        assert_eq!(a.next(t), Next::At(a.opened + Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(a.next(t), Next::Expired(Expired::HeaderRead));
        // Without a header timeout, a silent new connection still idles out.
        let b = activity();
        let t = Timeouts {
            header_read: None,
            keep_alive: secs(60),
        };
        assert_eq!(b.next(t), Next::At(b.opened + Duration::from_secs(60)));
        b.on_read();
        assert_eq!(b.next(t), Next::RequestEnd);
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_idle_then_header_timeouts_run() {
        let a = activity();
        let t = Timeouts {
            header_read: secs(10),
            keep_alive: secs(60),
        };
        let guard = a.request_started();
        assert_eq!(a.next(t), Next::RequestEnd);
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(a.next(t), Next::RequestEnd, "no deadline while in flight");
        drop(guard);
        let idle_from = a.opened + Duration::from_secs(100);
        assert_eq!(a.next(t), Next::At(idle_from + Duration::from_secs(60)));
        // A write after the end (hyper flushing the tail) pushes the idle deadline.
        tokio::time::advance(Duration::from_secs(2)).await;
        a.on_write();
        assert_eq!(a.next(t), Next::At(idle_from + Duration::from_secs(62)));
        // The first byte of the next head starts the header timeout instead.
        tokio::time::advance(Duration::from_secs(30)).await;
        a.on_read();
        assert_eq!(a.next(t), Next::At(idle_from + Duration::from_secs(42)));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(a.next(t), Next::Expired(Expired::HeaderRead));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_and_off_means_no_deadline() {
        let a = activity();
        drop(a.request_started());
        let t = Timeouts {
            header_read: secs(10),
            keep_alive: secs(60),
        };
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(a.next(t), Next::Expired(Expired::Idle));
        let off = Timeouts {
            header_read: None,
            keep_alive: None,
        };
        assert_eq!(a.next(off), Next::RequestEnd);
    }
}
