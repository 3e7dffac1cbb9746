//! The transport's own abuse limits, on what only it can see: the client's address
//! (failed logins, failed bearer tokens, new WebSocket connections; and the key `conn/`
//! counts a peer's open connections under) and a WebSocket connection (its frames and
//! rooms). They use chatcore's `RateLimiter` and refuse with the same
//! `chatcore::Error::RateLimited` as the engine's limits on identities. Whether a login
//! or a token failed is the engine's answer (`ErrorKind::Unauthorized`); this file decides
//! nothing about chats. Failures and refusals are logged with the client's address (and
//! the login's subject), never with a secret, so that guessing leaves a trail.
//!
//! The client's address is the TCP peer's, or, when the peer is a configured trusted
//! proxy, the nearest untrusted address in its `X-Forwarded-For`; a header that does not
//! name one there is refused, never answered with the proxy's own address. IPv6 clients
//! are keyed by their /64, which one host usually owns whole. Loopback clients (tools on
//! this machine, or a local reverse proxy whose clients would all share its address) are
//! not limited per address unless configured.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use chatcore::{Clock, ErrorKind, Rate, RateLimiter, Throttle};

use crate::error::ApiError;
use crate::metrics::limit;

/// Settings of the transport's limits (see `--limit-*` in `chat-http --help`). Start from
/// `HttpLimits::default()` and set fields; new fields may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Failed logins (officer passwords, customer signatures) per client address; counted
    /// up front, given back on success. Default 30 per 15 minutes.
    pub login_failures_per_address: Option<Rate>,
    /// Failed bearer-token authentications (an unknown, revoked or expired token, on
    /// REST or in a WebSocket `auth` frame) per client address; counted up front, given
    /// back on success. Default 60 per minute.
    pub token_failures_per_address: Option<Rate>,
    /// New WebSocket connections per client address. Default 60 per minute.
    pub ws_connects_per_address: Option<Rate>,
    /// Attachment uploads per client address, whatever their outcome (the engine also
    /// limits them per sender; this bounds a client that makes up new customers).
    /// Default 60 per 10 minutes.
    pub uploads_per_address: Option<Rate>,
    /// Frames a WebSocket client may send after `auth`. Over it, each frame is refused
    /// with an error frame; a client that goes on sending as many frames again while
    /// refused is closed with 1008. Default 200 per 10 seconds.
    pub ws_frames_per_connection: Option<Rate>,
    /// Rooms (chats, plus `officers:all`) one WebSocket connection may have joined at
    /// once. Default 100.
    pub ws_rooms_per_connection: usize,
    /// Apply the per-address limits to loopback clients too. Default false.
    pub limit_loopback: bool,
    /// Peers whose `X-Forwarded-For` names the client. Default none: the header is
    /// ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Most addresses each per-address limiter remembers. Default 100,000.
    pub max_tracked_addresses: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            login_failures_per_address: Some(Rate::new(30, Duration::from_secs(15 * 60))),
            token_failures_per_address: Some(Rate::per_minute(60)),
            ws_connects_per_address: Some(Rate::per_minute(60)),
            uploads_per_address: Some(Rate::new(60, Duration::from_secs(600))),
            ws_frames_per_connection: Some(Rate::new(200, Duration::from_secs(10))),
            ws_rooms_per_connection: 100,
            limit_loopback: false,
            trusted_proxies: Vec::new(),
            max_tracked_addresses: 100_000,
        }
    }
}

impl HttpLimits {
    /// No limit at all (WebSocket rooms unbounded).
    pub fn none() -> Self {
        Self {
            login_failures_per_address: None,
            token_failures_per_address: None,
            ws_connects_per_address: None,
            uploads_per_address: None,
            ws_frames_per_connection: None,
            ws_rooms_per_connection: usize::MAX,
            ..Self::default()
        }
    }
}

/// The per-address limiters and the settings, shared by every request.
pub(crate) struct Guards {
    settings: HttpLimits,
    login_failures: RateLimiter<IpAddr>,
    token_failures: RateLimiter<IpAddr>,
    ws_connects: RateLimiter<IpAddr>,
    uploads: RateLimiter<IpAddr>,
}

impl Guards {
    pub(crate) fn new(settings: HttpLimits, clock: Arc<dyn Clock>) -> Self {
        let max = settings.max_tracked_addresses;
        Self {
            login_failures: RateLimiter::new(
                settings.login_failures_per_address,
                max,
                clock.clone(),
            )
            .named(limit::ADDRESS_LOGIN_FAILURES),
            token_failures: RateLimiter::new(
                settings.token_failures_per_address,
                max,
                clock.clone(),
            )
            .named(limit::ADDRESS_TOKEN_FAILURES),
            ws_connects: RateLimiter::new(settings.ws_connects_per_address, max, clock.clone())
                .named(limit::WS_CONNECTS),
            uploads: RateLimiter::new(settings.uploads_per_address, max, clock)
                .named(limit::ADDRESS_UPLOADS),
            settings,
        }
    }

    pub(crate) fn settings(&self) -> &HttpLimits {
        &self.settings
    }

    /// The key a client is limited under, `None` when per-address limits do not apply.
    fn key(&self, client: Option<IpAddr>) -> Option<IpAddr> {
        let client = client?;
        if client.is_loopback() && !self.settings.limit_loopback {
            return None;
        }
        Some(address_key(client))
    }

    /// Runs a login attempt under the client's budget of failed logins: refused at once
    /// when it is spent; the attempt is counted up front (concurrent guesses cannot
    /// overshoot) and given back unless the engine refused the credentials. A failure
    /// is logged at info and a refusal at warn, with the client and `subject` (the
    /// officer or customer id the login was for).
    pub(crate) async fn login<T>(
        &self,
        client: Option<IpAddr>,
        subject: &str,
        attempt: impl Future<Output = chatcore::Result<T>>,
    ) -> Result<T, ApiError> {
        let result = counted(&self.login_failures, self.key(client), attempt).await;
        if let Err(e) = &result {
            let (client, subject) = (Client(client), Shown(subject));
            match e.kind() {
                ErrorKind::TooManyRequests => {
                    tracing::warn!(%client, %subject, code = e.code(), "login refused: rate limited");
                }
                ErrorKind::Unauthorized => {
                    tracing::info!(%client, %subject, code = e.code(), "login failed");
                }
                _ => {}
            }
        }
        Ok(result?)
    }

    /// Runs a bearer-token check (REST or a WebSocket `auth` frame) under the client's
    /// budget of failed tokens, counted like failed logins. A failure is logged at info
    /// and a refusal at warn, with the client's address (never the token).
    pub(crate) async fn token<T>(
        &self,
        client: Option<IpAddr>,
        attempt: impl Future<Output = chatcore::Result<T>>,
    ) -> Result<T, ApiError> {
        let result = counted(&self.token_failures, self.key(client), attempt).await;
        if let Err(e) = &result {
            let client = Client(client);
            match e.kind() {
                ErrorKind::TooManyRequests => {
                    tracing::warn!(%client, "bearer token refused: rate limited");
                }
                ErrorKind::Unauthorized => tracing::info!(%client, "bearer token refused"),
                _ => {}
            }
        }
        Ok(result?)
    }

    /// Counts a new WebSocket connection of the client.
    pub(crate) fn ws_connect(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(key) = self.key(client) else {
            return Ok(());
        };
        self.ws_connects.check(&key).map_err(|e| {
            tracing::warn!(client = %Client(client), "WebSocket connection refused: rate limited");
            e.into()
        })
    }

    /// Counts an attachment upload of the client.
    pub(crate) fn upload(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(key) = self.key(client) else {
            return Ok(());
        };
        self.uploads.check(&key).map_err(|e| {
            tracing::warn!(client = %Client(client), "upload refused: rate limited");
            e.into()
        })
    }

    /// A fresh frame budget for one WebSocket connection.
    pub(crate) fn ws_frames(&self) -> Throttle {
        Throttle::new(self.settings.ws_frames_per_connection)
    }
}

/// The key a TCP peer's open connections are counted under (`--max-connections-per-address`),
/// `None` when they are not counted: a loopback peer unless `limit_loopback`, and a
/// trusted proxy, whose own connections carry many clients (it caps them itself).
pub(crate) fn connection_key(settings: &HttpLimits, peer: IpAddr) -> Option<IpAddr> {
    let peer = peer.to_canonical();
    if peer.is_loopback() && !settings.limit_loopback {
        return None;
    }
    if settings
        .trusted_proxies
        .iter()
        .any(|t| t.to_canonical() == peer)
    {
        return None;
    }
    Some(address_key(peer))
}

/// Runs `attempt` under `key`'s budget of failures in `limiter` (no key: no limit):
/// refused at once when the budget is spent; counted up front, so that concurrent
/// attempts cannot overshoot, and given back unless the engine refused the credentials.
async fn counted<T>(
    limiter: &RateLimiter<IpAddr>,
    key: Option<IpAddr>,
    attempt: impl Future<Output = chatcore::Result<T>>,
) -> chatcore::Result<T> {
    if let Some(key) = &key {
        limiter.check(key)?;
    }
    let result = attempt.await;
    if let Some(key) = &key {
        let failed = matches!(&result, Err(e) if e.kind() == ErrorKind::Unauthorized);
        if !failed {
            limiter.refund(key);
        }
    }
    result
}

/// A client address in a log line (`-` when unknown).
struct Client(Option<IpAddr>);

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// A string a client sent, in a log line: at most 64 characters, escaped, so that it
/// cannot forge or break lines.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().take(64) {
            write!(f, "{}", c.escape_debug())?;
        }
        if self.0.chars().nth(64).is_some() {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// The address a client is limited under: an IPv4 address as it is, an IPv6 address by
/// its /64 (one host usually owns a whole /64 and could rotate through it).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

/// `X-Forwarded-For` from a trusted proxy that does not name the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnreadableForwardedFor;

/// The client's address: the peer's, or, when the peer is a trusted proxy, the
/// rightmost entry of `X-Forwarded-For` (all its lines, in order) that is not itself a
/// trusted proxy. The header is read as bytes: what a client wrote further left is never
/// looked at, whatever bytes it holds. An entry there that is not an address is
/// [`UnreadableForwardedFor`], never a reason to fall back to the proxy's own address
/// (which would give every client behind it one budget, or none on loopback). No header,
/// or only trusted proxies in it: the request came from the proxy itself.
pub(crate) fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Result<Option<IpAddr>, UnreadableForwardedFor> {
    let Some(peer) = peer else {
        return Ok(None);
    };
    let peer = peer.ip().to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return Ok(Some(peer));
    }
    let lines: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    for line in lines.iter().rev() {
        for hop in line.rsplit(|b| *b == b',') {
            let hop = hop.trim_ascii();
            if hop.is_empty() {
                continue;
            }
            match parse_hop(hop) {
                Some(ip) if is_trusted(&ip) => continue,
                Some(ip) => return Ok(Some(ip)),
                None => return Err(UnreadableForwardedFor),
            }
        }
    }
    Ok(Some(peer))
}

/// One `X-Forwarded-For` entry: an IP address, possibly bracketed or with a port
/// (`1.2.3.4:5`, `[::1]`, `[::1]:5`).
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?;
    let bare = hop
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(hop);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|a| a.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(s.parse().unwrap(), 40000))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(s: &str) -> Result<Option<IpAddr>, UnreadableForwardedFor> {
        Ok(Some(ip(s)))
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let h = headers(&[b"198.51.100.1", b"\x80 garbage"]);
        assert_eq!(
            client_ip(peer("203.0.113.9"), &h, &[]),
            client("203.0.113.9")
        );
        assert_eq!(client_ip(None, &h, &[]), Ok(None));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let proxy = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The client may have written anything to the left; the proxies append.
        let h = headers(&[b"6.6.6.6, 198.51.100.7", b"10.0.0.2"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            client("198.51.100.7")
        );
        let h = headers(&[b"[2001:db8::1]:443", b"198.51.100.8:5000"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            client("198.51.100.8")
        );
        let h = headers(&[b"[2001:db8::2]"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            client("2001:db8::2")
        );
        // Bytes that are not text, left of the client's entry, are never read.
        let h = headers(&[b"\x80\xff, 203.0.113.50"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            client("203.0.113.50")
        );
        let h = headers(&[b"garbage, 203.0.113.51 ,, "]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            client("203.0.113.51")
        );
        // No header, or only proxies in it: the request is the proxy's own.
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers(&[]), &proxy),
            client("10.0.0.1")
        );
        let h = headers(&[b"10.0.0.2"]);
        assert_eq!(client_ip(peer("10.0.0.1"), &h, &proxy), client("10.0.0.1"));
        // An untrusted peer's header is not read.
        let h = headers(&[b"198.51.100.7"]);
        assert_eq!(client_ip(peer("10.0.0.3"), &h, &proxy), client("10.0.0.3"));
    }

    #[test]
    fn a_client_entry_that_is_no_address_is_refused_not_replaced_by_the_proxy() {
        let proxy = [ip("10.0.0.1")];
        for bad in [
            &b"198.51.100.7, garbage"[..],
            b"203.0.113.50, \x80",
            b"\x80",
            b"unknown",
            b"198.51.100.7:99999",
        ] {
            assert_eq!(
                client_ip(peer("10.0.0.1"), &headers(&[bad]), &proxy),
                Err(UnreadableForwardedFor),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(address_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn log_lines_show_what_a_client_sent_escaped_and_short() {
        assert_eq!(Shown("amy").to_string(), "amy");
        assert_eq!(Shown("a\nINFO forged").to_string(), "a\\nINFO forged");
        assert_eq!(
            Shown(&"x".repeat(70)).to_string(),
            format!("{}...", "x".repeat(64))
        );
        assert_eq!(Client(None).to_string(), "-");
    }

    #[test]
    fn loopback_is_exempt_unless_configured() {
        let clock: Arc<dyn Clock> = Arc::new(chatcore::SystemClock);
        let mut settings = HttpLimits {
            ws_connects_per_address: Some(Rate::per_minute(1)),
            ..HttpLimits::default()
        };
        let guards = Guards::new(settings.clone(), clock.clone());
        for _ in 0..10 {
            guards.ws_connect(Some(ip("127.0.0.1"))).unwrap();
            guards.ws_connect(Some(ip("::1"))).unwrap();
            guards.ws_connect(None).unwrap();
        }
        guards.ws_connect(Some(ip("192.0.2.1"))).unwrap();
        assert!(guards.ws_connect(Some(ip("192.0.2.1"))).is_err());
        settings.limit_loopback = true;
        let guards = Guards::new(settings, clock);
        guards.ws_connect(Some(ip("127.0.0.1"))).unwrap();
        assert!(guards.ws_connect(Some(ip("127.0.0.1"))).is_err());
    }
}
