//! How many connections are open, per client address and in all, and the admission of a
//! new one under `--max-connections-per-address` and `--max-connections`. A connection
//! holds a [`Permit`] for as long as its socket lives (a WebSocket's included); dropping
//! it gives the slot back. A long-polling Socket.IO session, which holds memory but no
//! socket between its requests, holds one too (`socketio/`), under its client's address.
//! It decides only whether a socket or a session may stay open, nothing about requests.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::limits::{HttpLimits, connection_key};

use super::ConnSettings;

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Its address already holds `max_connections_per_address`.
    Address,
    /// The server holds `max_connections` (and, for 127.0.0.1 and ::1, the reserve too).
    Server,
}

/// The counts and the caps.
#[derive(Debug)]
pub(crate) struct Caps {
    open: AtomicUsize,
    /// Open connections per address key; an address with none has no entry, so this
    /// holds at most as many entries as there are open connections.
    by_address: Mutex<HashMap<IpAddr, usize>>,
    max: Option<usize>,
    reserve: usize,
    per_address: Option<usize>,
    exemptions: HttpLimits,
}

impl Caps {
    pub(crate) fn new(settings: &ConnSettings, limits: &HttpLimits) -> Self {
        Self {
            open: AtomicUsize::new(0),
            by_address: Mutex::default(),
            max: settings.max_connections,
            reserve: settings.local_reserve,
            per_address: settings.max_connections_per_address,
            exemptions: limits.clone(),
        }
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    fn by_address(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a new connection from `peer`, or says why not.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Permit, Refused> {
        self.admit_from(Some(peer))
    }

    /// Admits a new connection or session from `client`; one whose address is unknown
    /// (a router run without connection info) counts only in all, without the local
    /// reserve. The accept loop and Socket.IO handshakes admit concurrently: the total is
    /// taken by a compare-and-swap and an address's count under its lock, so neither
    /// overshoots its cap.
    pub(crate) fn admit_from(self: &Arc<Self>, client: Option<IpAddr>) -> Result<Permit, Refused> {
        let client = client.map(|c| c.to_canonical());
        let limit = self.max.map(|max| {
            if client.is_some_and(is_local) {
                max.saturating_add(self.reserve)
            } else {
                max
            }
        });
        // The address is checked first, under its lock, and the lock is held until the
        // connection counts there: an attempt its own address refuses never holds a
        // slot of the whole server, not even for a moment (another address's client
        // would be refused as if the server were full).
        let capped = match (self.per_address, client) {
            (Some(cap), Some(client)) => connection_key(&self.exemptions, client).map(|k| (cap, k)),
            _ => None,
        };
        let mut counts = capped.map(|_| self.by_address());
        if let (Some((cap, key)), Some(counts)) = (capped, &counts)
            && counts.get(&key).copied().unwrap_or(0) >= cap
        {
            return Err(Refused::Address);
        }
        self.open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                (limit.is_none_or(|limit| open < limit)).then_some(open + 1)
            })
            .map_err(|_| Refused::Server)?;
        let mut permit = Permit {
            caps: Arc::clone(self),
            key: None,
        };
        if let (Some((_, key)), Some(counts)) = (capped, counts.as_mut()) {
            *counts.entry(key).or_insert(0) += 1;
            permit.key = Some(key);
        }
        Ok(permit)
    }
}

/// 127.0.0.1 and ::1: where a health check or an operator on this machine connects from
/// by default. Other loopback addresses are deliberate choices (and what the tests use
/// to stand for remote clients), so they get no reserve.
fn is_local(peer: IpAddr) -> bool {
    peer == IpAddr::V4(Ipv4Addr::LOCALHOST) || peer == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// A slot of an open connection, given back on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    caps: Arc<Caps>,
    /// The address key it counts under, when its address is capped.
    key: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            let mut counts = self.caps.by_address();
            if let Some(count) = counts.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&key);
                }
            }
        }
        self.caps.open.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn caps(max: Option<usize>, per_address: Option<usize>, limits: HttpLimits) -> Arc<Caps> {
        let settings = ConnSettings {
            max_connections: max,
            max_connections_per_address: per_address,
            local_reserve: 2,
            ..ConnSettings::default()
        };
        Arc::new(Caps::new(&settings, &limits))
    }

    #[test]
    fn an_address_over_its_cap_is_refused_and_its_slots_come_back() {
        let caps = caps(None, Some(2), HttpLimits::default());
        let a = [
            caps.admit(ip("192.0.2.1")).unwrap(),
            caps.admit(ip("192.0.2.1")).unwrap(),
        ];
        assert_eq!(caps.admit(ip("192.0.2.1")).unwrap_err(), Refused::Address);
        // Another address is counted apart; an IPv6 /64 is one address.
        let _b = caps.admit(ip("192.0.2.2")).unwrap();
        let _c = caps.admit(ip("2001:db8::1")).unwrap();
        let _d = caps.admit(ip("2001:db8::2:1")).unwrap();
        assert_eq!(caps.admit(ip("2001:db8::3")).unwrap_err(), Refused::Address);
        assert_eq!(caps.open(), 5);
        drop(a);
        assert_eq!(caps.open(), 3);
        let _again = caps.admit(ip("::ffff:192.0.2.1")).unwrap();
        // Entries of addresses with nothing open are gone.
        drop(_again);
        assert_eq!(caps.by_address().len(), 2);
    }

    #[test]
    fn loopback_and_trusted_proxies_are_exempt_from_the_address_cap_as_configured() {
        let limits = HttpLimits {
            trusted_proxies: vec![ip("10.0.0.1")],
            ..HttpLimits::default()
        };
        let caps = caps(None, Some(1), limits.clone());
        let held: Vec<_> = (0..5)
            .flat_map(|_| {
                [
                    caps.admit(ip("127.0.0.2")).unwrap(),
                    caps.admit(ip("::1")).unwrap(),
                    caps.admit(ip("10.0.0.1")).unwrap(),
                ]
            })
            .collect();
        assert_eq!(held.len(), 15);
        let caps = self::caps(
            None,
            Some(1),
            HttpLimits {
                limit_loopback: true,
                ..limits
            },
        );
        let _first = caps.admit(ip("127.0.0.2")).unwrap();
        assert_eq!(caps.admit(ip("127.0.0.2")).unwrap_err(), Refused::Address);
        // A trusted proxy stays exempt: it caps its own clients.
        let _p = [
            caps.admit(ip("10.0.0.1")).unwrap(),
            caps.admit(ip("10.0.0.1")).unwrap(),
        ];
    }

    #[test]
    fn racing_admissions_never_pass_either_cap() {
        let caps = caps(Some(5), Some(3), HttpLimits::default());
        let held = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for i in 0..8 {
                let (caps, held) = (&caps, &held);
                s.spawn(move || {
                    let from = if i % 2 == 0 { "192.0.2.1" } else { "192.0.2.2" };
                    for _ in 0..200 {
                        if let Ok(permit) = caps.admit_from(Some(ip(from))) {
                            held.lock().unwrap().push(permit);
                        }
                    }
                });
            }
        });
        let held = held.into_inner().unwrap();
        assert_eq!(held.len(), 5);
        assert_eq!(caps.open(), 5);
        assert!(caps.by_address().values().all(|&n| n <= 3));
        drop(held);
        assert_eq!(caps.open(), 0);
        assert!(caps.by_address().is_empty());
    }

    #[test]
    fn a_session_of_unknown_address_counts_in_all_without_the_reserve() {
        let caps = caps(Some(2), Some(1), HttpLimits::default());
        let _held = [
            caps.admit_from(None).unwrap(),
            caps.admit_from(None).unwrap(),
        ];
        assert_eq!(caps.admit_from(None).unwrap_err(), Refused::Server);
        let _local = caps.admit(ip("127.0.0.1")).unwrap();
    }

    #[test]
    fn the_server_cap_leaves_a_reserve_for_this_machine() {
        let caps = caps(Some(3), None, HttpLimits::default());
        let held: Vec<_> = (0..3)
            .map(|_| caps.admit(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(caps.admit(ip("192.0.2.9")).unwrap_err(), Refused::Server);
        assert_eq!(caps.admit(ip("127.0.0.2")).unwrap_err(), Refused::Server);
        let local = [
            caps.admit(ip("127.0.0.1")).unwrap(),
            caps.admit(ip("::1")).unwrap(),
        ];
        assert_eq!(caps.admit(ip("127.0.0.1")).unwrap_err(), Refused::Server);
        drop(local);
        drop(held);
        assert_eq!(caps.open(), 0);
        let _ = caps.admit(ip("192.0.2.9")).unwrap();
    }
}
