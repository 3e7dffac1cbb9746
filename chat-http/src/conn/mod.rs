//! The server's accept loop and its connections, in place of `axum::serve` (which has no
//! header-read or idle timeout and no cap on connections): each accepted socket is
//! admitted under the connection caps (`caps`), then served by hyper (HTTP/1.1, with
//! upgrades for `/ws`) over a socket that times out stalled writes (`io`), and closed when
//! a request head takes too long or it idles too long between requests (`activity`).
//! Accept errors (out of file descriptors) pause the loop instead of spinning. It knows
//! nothing of routes or chats: it serves whatever router it is given.

mod activity;
mod caps;
mod io;
mod kill;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use futures_util::FutureExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::Service;

use crate::shutdown::{Shutdown, Stopping};

pub use activity::BodyDeadline;
use activity::{Activity, Next, Timeouts, Tracked};
pub(crate) use caps::{Caps, Permit, Refused};
use io::ConnIo;
pub(crate) use kill::Kill;

/// File descriptors `--max-connections auto` leaves for everything but client
/// connections: standard streams, the listener, the runtime's, SQLite's files, logs.
pub const RESERVED_FILES: u64 = 128;

/// Connections 127.0.0.1 and ::1 may open beyond `max_connections` (default), so that a
/// health check or an operator on this machine still gets in when the cap is full.
pub const LOCAL_RESERVE: usize = 32;

/// The smallest cap `--max-connections auto` derives, whatever the open-file limit.
const MIN_AUTO_CONNECTIONS: usize = 16;

/// How long `serve` waits for HTTP connections to finish their requests at shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// The pause after a failed accept (out of file descriptors, say), doubled while it keeps
/// failing, up to the maximum.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(5);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_millis(500);

/// At most one log line per this period about refused connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Largest request head (and read buffer) of a connection, in bytes: hyper's default is
/// about 400 KiB, which a slow client could make every connection hold. A longer head is
/// answered 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Connection timeouts and caps (`--header-read-timeout`, `--body-read-timeout`,
/// `--keep-alive-timeout`, `--write-timeout`, `--max-connections-per-address`, `--max-connections` in
/// `chat-http --help`). `None` turns one off. Start from `ConnSettings::default()` and
/// set fields; new fields may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnSettings {
    /// How long a client may take to send a complete request head: from the accept for
    /// the first request, from its first byte for a later one. Default 10 s.
    pub header_read_timeout: Option<Duration>,
    /// How long a request's body may take to arrive whole, from the end of its head. A
    /// body still incomplete then is answered 400 and its connection closed. Default 30 s.
    pub body_read_timeout: Option<Duration>,
    /// How long a connection may wait for a next request, with nothing in flight and
    /// nothing read or written, before it is closed. Default 60 s.
    pub keep_alive_timeout: Option<Duration>,
    /// How long a write may make no progress (the client takes no data) before the
    /// connection is dropped. Default 30 s.
    pub write_timeout: Option<Duration>,
    /// Connections one client address (IPv6: its /64) may hold open at once; loopback
    /// peers (unless `HttpLimits::limit_loopback`) and trusted proxies are not counted.
    /// Default 256.
    pub max_connections_per_address: Option<usize>,
    /// Connections open at once in all. Default: derived from the process's open-file
    /// limit when the settings are made ([`ConnSettings::max_connections_for`]).
    pub max_connections: Option<usize>,
    /// Connections 127.0.0.1 and ::1 may open beyond `max_connections`. Default 32.
    pub local_reserve: usize,
}

impl Default for ConnSettings {
    fn default() -> Self {
        let open_files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        Self {
            header_read_timeout: Some(Duration::from_secs(10)),
            body_read_timeout: Some(Duration::from_secs(30)),
            keep_alive_timeout: Some(Duration::from_secs(60)),
            write_timeout: Some(Duration::from_secs(30)),
            max_connections_per_address: Some(256),
            max_connections: Some(Self::max_connections_for(open_files, 0)),
            local_reserve: LOCAL_RESERVE,
        }
    }
}

impl ConnSettings {
    /// No timeout and no cap.
    pub fn none() -> Self {
        Self {
            header_read_timeout: None,
            body_read_timeout: None,
            keep_alive_timeout: None,
            write_timeout: None,
            max_connections_per_address: None,
            max_connections: None,
            local_reserve: 0,
        }
    }

    /// The cap `--max-connections auto` derives from the open-file limit, leaving
    /// [`RESERVED_FILES`] and `other_files` (a PostgreSQL pool, say) for the rest of the
    /// process and [`LOCAL_RESERVE`] for local connections beyond the cap:
    /// `open_files - 128 - other_files - 32`, and at least 16.
    pub fn max_connections_for(open_files: u64, other_files: u64) -> usize {
        let spare = open_files
            .saturating_sub(RESERVED_FILES)
            .saturating_sub(other_files)
            .saturating_sub(LOCAL_RESERVE as u64);
        usize::try_from(spare)
            .unwrap_or(usize::MAX)
            .max(MIN_AUTO_CONNECTIONS)
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            header_read: self.header_read_timeout,
            keep_alive: self.keep_alive_timeout,
        }
    }
}

/// Accepts and serves connections on `listener`, each admitted under `caps` (which
/// Socket.IO's sessions share, for the main address), until `signal` resolves; then triggers
/// `shutdown` (WebSockets close), stops accepting, lets HTTP connections finish their
/// requests (closing idle ones at once) and returns once they have, or after
/// [`HTTP_DRAIN`].
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &ConnSettings,
    caps: Arc<Caps>,
    shutdown: &Shutdown,
    signal: impl Future<Output = ()>,
) {
    // The peer's address feeds the per-address limits (`ConnectInfo<SocketAddr>`).
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let (drain, draining) = watch::channel(());
    let mut signal = pin!(signal);
    let mut pause = ACCEPT_PAUSE_MIN;
    let mut refusals = Refusals::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut signal => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                pause = ACCEPT_PAUSE_MIN;
                accepted
            }
            // The peer gave up before the accept: nothing to wait for.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors (or memory): retrying at once would spin.
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed; pausing");
                tokio::select! {
                    biased;
                    () = &mut signal => break,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
                continue;
            }
        };
        let permit = match caps.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refused) => {
                // Dropping the stream closes it at once: the cheapest answer.
                refusals.count(refused, &caps, settings);
                continue;
            }
        };
        spawn_connection(
            stream,
            peer,
            permit,
            &mut make_service,
            settings,
            shutdown.triggered(),
            draining.clone(),
        );
    }
    shutdown.trigger();
    drop(listener);
    drop(draining);
    if tokio::time::timeout(HTTP_DRAIN, drain.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            still_open = drain.receiver_count(),
            "HTTP connections still busy at shutdown; dropping them"
        );
    }
}

fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: Permit,
    make_service: &mut IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
    settings: &ConnSettings,
    stopping: Stopping,
    draining: watch::Receiver<()>,
) {
    // Small writes (WebSocket frames, one per event) must leave at once: with Nagle's
    // algorithm a second frame waits for the peer's delayed ACK, up to 40 ms.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    // The router with `ConnectInfo(peer)`; making it is a clone and never fails.
    let service = match make_service.call(peer).now_or_never() {
        Some(Ok(service)) => service,
        Some(Err(never)) => match never {},
        None => unreachable!("IntoMakeServiceWithConnectInfo answers at once"),
    };
    let activity = Arc::new(Activity::new());
    let kill = Kill::default();
    let io = ConnIo::new(
        stream,
        Arc::clone(&activity),
        settings.write_timeout,
        permit,
        kill.clone(),
    );
    let timeouts = settings.timeouts();
    let body_timeout = settings.body_read_timeout;
    tokio::spawn(async move {
        connection(
            io,
            service,
            &activity,
            timeouts,
            body_timeout,
            kill,
            stopping,
        )
        .await;
        // Closed, or upgraded: the socket (a WebSocket's) keeps only its slot.
        activity.detach();
        drop(draining);
    });
}

/// Serves one connection until it ends, its deadline passes, or the shutdown has
/// started and its last request is done.
async fn connection<S>(
    io: ConnIo,
    service: S,
    activity: &Arc<Activity>,
    timeouts: Timeouts,
    body_timeout: Option<Duration>,
    kill: Kill,
    stopping: Stopping,
) where
    S: tower::Service<
            axum::http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let io = TokioIo::new(io);
    let service = Tracked::new(service, Arc::clone(activity), body_timeout, kill);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's own header timeout would need a timer and, set, would also close idle
    // connections at the same deadline, and it does not run while the builder sniffs
    // for HTTP/2's preface: `activity` keeps both deadlines instead.
    builder
        .http1()
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut conn = pin!(builder.serve_connection_with_upgrades(io, service));
    let mut stopping = pin!(stopping);
    let mut shutting_down = false;
    loop {
        let next = activity.next(timeouts);
        if let Next::Expired(why) = next {
            tracing::debug!(reason = why.as_str(), "closing a connection");
            return;
        }
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = &mut stopping, if !shutting_down => {
                conn.as_mut().graceful_shutdown();
                shutting_down = true;
            }
            () = activity.wait(next) => {}
        }
    }
}

/// Errors of one incoming connection, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Counts refused connections and logs them at most once per [`REFUSAL_LOG_EVERY`]: an
/// attacker must not be able to fill the log.
struct Refusals {
    since: Instant,
    address: u64,
    server: u64,
}

impl Refusals {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            address: 0,
            server: 0,
        }
    }

    fn count(&mut self, refused: Refused, caps: &Caps, settings: &ConnSettings) {
        match refused {
            Refused::Address => self.address += 1,
            Refused::Server => self.server += 1,
        }
        if self.since.elapsed() >= REFUSAL_LOG_EVERY {
            tracing::warn!(
                over_address_cap = self.address,
                over_server_cap = self.server,
                open = caps.open(),
                max_connections = settings.max_connections,
                max_connections_per_address = settings.max_connections_per_address,
                "refused new connections over the connection caps"
            );
            *self = Self::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_cap_leaves_room_for_files_and_the_local_reserve() {
        assert_eq!(ConnSettings::max_connections_for(20_000, 0), 19_840);
        assert_eq!(ConnSettings::max_connections_for(20_000, 17), 19_823);
        assert_eq!(ConnSettings::max_connections_for(1_048_576, 0), 1_048_416);
        assert_eq!(ConnSettings::max_connections_for(100, 0), 16);
    }
}
