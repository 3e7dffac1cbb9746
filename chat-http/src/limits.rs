//! The transport's own abuse limits, on what only it can see: the client's address
//! (failed logins, new WebSocket connections; and the key `conn/` counts a peer's open
//! connections under) and a WebSocket connection (its frames and rooms). They use chatcore's `RateLimiter` and refuse with the same
//! `chatcore::Error::RateLimited` as the engine's limits on identities. Whether a login
//! failed is the engine's answer (`ErrorKind::Unauthorized`); this file decides nothing
//! about chats.
//!
//! The client's address is the TCP peer's, or, when the peer is a configured trusted
//! proxy, the nearest untrusted address in its `X-Forwarded-For`. IPv6 clients are keyed
//! by their /64, which one host usually owns whole. Loopback clients (tools on this
//! machine, or a local reverse proxy whose clients would all share its address) are not
//! limited per address unless configured.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use chatcore::{Clock, ErrorKind, Rate, RateLimiter, Throttle};

use crate::error::ApiError;

/// Settings of the transport's limits (see `--limit-*` in `chat-http --help`). Start from
/// `HttpLimits::default()` and set fields; new fields may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpLimits {
    /// Failed logins (officer passwords, customer signatures) per client address; counted
    /// up front, given back on success. Default 30 per 15 minutes.
    pub login_failures_per_address: Option<Rate>,
    /// New WebSocket connections per client address. Default 60 per minute.
    pub ws_connects_per_address: Option<Rate>,
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
            ws_connects_per_address: Some(Rate::per_minute(60)),
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
            ws_connects_per_address: None,
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
    ws_connects: RateLimiter<IpAddr>,
    clock: Arc<dyn Clock>,
}

impl Guards {
    pub(crate) fn new(settings: HttpLimits, clock: Arc<dyn Clock>) -> Self {
        let max = settings.max_tracked_addresses;
        Self {
            login_failures: RateLimiter::new(
                settings.login_failures_per_address,
                max,
                clock.clone(),
            ),
            ws_connects: RateLimiter::new(settings.ws_connects_per_address, max, clock.clone()),
            settings,
            clock,
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

    /// Runs a login attempt under the client's budget of failures: refused at once when
    /// it is spent; the attempt is counted up front (concurrent guesses cannot overshoot)
    /// and given back unless the engine refused the credentials.
    pub(crate) async fn login<T>(
        &self,
        client: Option<IpAddr>,
        attempt: impl Future<Output = chatcore::Result<T>>,
    ) -> Result<T, ApiError> {
        let key = self.key(client);
        if let Some(key) = &key {
            self.login_failures.check(key)?;
        }
        let result = attempt.await;
        if let Some(key) = &key {
            let failed = matches!(&result, Err(e) if e.kind() == ErrorKind::Unauthorized);
            if !failed {
                self.login_failures.refund(key);
            }
        }
        Ok(result?)
    }

    /// Counts a new WebSocket connection of the client.
    pub(crate) fn ws_connect(&self, client: Option<IpAddr>) -> Result<(), ApiError> {
        match self.key(client) {
            Some(key) => Ok(self.ws_connects.check(&key)?),
            None => Ok(()),
        }
    }

    /// A fresh frame budget for one WebSocket connection.
    pub(crate) fn ws_frames(&self) -> Throttle {
        Throttle::new(self.settings.ws_frames_per_connection, self.clock.clone())
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

/// The client's address: the peer's, or, when the peer is a trusted proxy, the
/// rightmost address in `X-Forwarded-For` that is not itself a trusted proxy. A header
/// that cannot be read falls back to the peer: what a client wrote there is trusted
/// only behind a trusted hop.
pub(crate) fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?.ip().to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return Some(peer);
        };
        hops.extend(value.split(',').map(str::trim));
    }
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => continue,
            Some(ip) => return Some(ip),
            None => return Some(peer),
        }
    }
    Some(peer)
}

/// One `X-Forwarded-For` entry: an IP address, possibly with a port (`1.2.3.4:5`,
/// `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
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

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(s.parse().unwrap(), 40000))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let h = headers(&["198.51.100.1"]);
        assert_eq!(
            client_ip(peer("203.0.113.9"), &h, &[]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(client_ip(None, &h, &[]), None);
    }

    #[test]
    fn behind_a_trusted_proxy_the_nearest_untrusted_hop_is_the_client() {
        let proxy = [ip("10.0.0.1"), ip("10.0.0.2")];
        // The client may have written anything to the left; the proxies append.
        let h = headers(&["6.6.6.6, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            Some(ip("198.51.100.7"))
        );
        let h = headers(&["[2001:db8::1]:443", "198.51.100.8:5000"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            Some(ip("198.51.100.8"))
        );
        // No header, an unreadable entry, or only proxies: the peer itself.
        assert_eq!(
            client_ip(peer("10.0.0.1"), &headers(&[]), &proxy),
            Some(ip("10.0.0.1"))
        );
        let h = headers(&["198.51.100.7, garbage"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            Some(ip("10.0.0.1"))
        );
        let h = headers(&["10.0.0.2"]);
        assert_eq!(
            client_ip(peer("10.0.0.1"), &h, &proxy),
            Some(ip("10.0.0.1"))
        );
        // An untrusted peer's header is not read.
        let h = headers(&["198.51.100.7"]);
        assert_eq!(
            client_ip(peer("10.0.0.3"), &h, &proxy),
            Some(ip("10.0.0.3"))
        );
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
