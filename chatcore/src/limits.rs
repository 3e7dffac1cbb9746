//! Abuse limits: a [`Rate`] ("N per period"), the keyed [`RateLimiter`] that enforces one
//! per key (an officer id, a sender, a client address), the single-key [`Throttle`], and
//! [`Limits`], the engine's own settings. Transports use the same types for the limits
//! only they can see (client addresses, WebSocket frames), so every refusal is the same
//! [`Error::RateLimited`].
//!
//! The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one
//! number per key): `N/P` lets `N` requests through at once, then one every `P/N`. Time is
//! read only through the [`Clock`], so tests move it with [`crate::ManualClock`]. Memory is
//! bounded whatever keys an attacker invents: each limiter tracks at most a configured
//! number of keys; when full it forgets keys whose budget has refilled, then the keys
//! closest to refilled, so the keys being limited hardest are the last forgotten.
//!
//! This file must not know of HTTP, addresses or sockets: keys are whatever the caller
//! hashes.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};

/// "At most `count` per `period`": up to `count` at once, refilling evenly over `period`.
///
/// Written and parsed as `COUNT/PERIOD`, the period a number and a unit (`ms`, `s`, `m`,
/// `h`), the number optional when it is 1: `10/15m`, `30/10s`, `5/s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    count: u32,
    period: Duration,
}

/// Longest period a [`Rate`] may have.
const MAX_PERIOD: Duration = Duration::from_secs(7 * 24 * 3600);

impl Rate {
    /// `count` per `period`. A count of 0 is taken as 1, and the period is kept between
    /// 1 ms and 7 days.
    pub fn new(count: u32, period: Duration) -> Self {
        Self {
            count: count.max(1),
            period: period.clamp(Duration::from_millis(1), MAX_PERIOD),
        }
    }

    /// `count` per second.
    pub fn per_second(count: u32) -> Self {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` per minute.
    pub fn per_minute(count: u32) -> Self {
        Self::new(count, Duration::from_secs(60))
    }

    /// How many at once (the burst).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period over which `count` refills.
    pub fn period(&self) -> Duration {
        self.period
    }

    fn gcra(&self) -> Gcra {
        let period = i64::try_from(self.period.as_micros()).unwrap_or(i64::MAX);
        let interval = (period / i64::from(self.count)).max(1);
        Gcra {
            interval,
            tolerance: period.saturating_sub(interval).max(0),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.period.as_millis();
        let (n, unit) = [(3_600_000, "h"), (60_000, "m"), (1_000, "s")]
            .into_iter()
            .find(|(size, _)| ms % size == 0)
            .map(|(size, unit)| (ms / size, unit))
            .unwrap_or((ms, "ms"));
        write!(f, "{}/{n}{unit}", self.count)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a rate like 10/15m, 30/10s or 5/s");
        let (count, period) = s.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > 1_000_000 {
            return Err(format!("{s:?}: the count must be 1 to 1000000"));
        }
        let period = period.trim();
        let split = period.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = period.split_at(split);
        let number: u64 = if number.is_empty() {
            1
        } else {
            number.parse().map_err(|_| bad())?
        };
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        let period = Duration::from_millis(number.saturating_mul(unit_ms));
        if period.is_zero() || period > MAX_PERIOD {
            return Err(format!("{s:?}: the period must be 1ms to 7 days"));
        }
        Ok(Rate::new(count, period))
    }
}

/// GCRA in microseconds: `interval` between requests at the sustained rate, and how far
/// ahead of now the theoretical arrival time may run (`tolerance`) before a refusal.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval: i64,
    tolerance: i64,
}

impl Gcra {
    /// The key's next theoretical arrival time if a request now is allowed, else how long
    /// until it would be (microseconds).
    fn admit(&self, tat: i64, now: i64) -> std::result::Result<i64, i64> {
        let tat = tat.max(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            Err(ahead - self.tolerance)
        } else {
            Ok(tat.saturating_add(self.interval))
        }
    }
}

fn now_micros(clock: &dyn Clock) -> i64 {
    clock.now().unix_millis().saturating_mul(1000)
}

/// The refusal, its wait rounded up to the clock's millisecond, so that a caller who
/// waits exactly that long is let through.
fn refused(wait_micros: i64) -> Error {
    let millis = u64::try_from(wait_micros).unwrap_or(0).div_ceil(1000);
    Error::RateLimited {
        retry_after: Duration::from_millis(millis),
    }
}

/// Shards of a limiter; keys hash to one, so that callers rarely wait on each other.
const SHARDS: usize = 16;

/// A limit per key: each key may make `rate` requests. Cheap to share (`&self` methods,
/// one short lock per call on the key's shard); tracks at most `max_keys` keys.
pub struct RateLimiter<K> {
    /// The `limit` label its refusals are counted under ([`crate::metrics::RATE_LIMITED`]);
    /// not counted when unnamed.
    name: Option<&'static str>,
    gcra: Option<Gcra>,
    rate: Option<Rate>,
    clock: Arc<dyn Clock>,
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<K, i64>>]>,
    shard_capacity: usize,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `rate` per key (`None`: no limit, every check passes), tracking
    /// at most about `max_keys` keys.
    pub fn new(rate: Option<Rate>, max_keys: usize, clock: Arc<dyn Clock>) -> Self {
        let shard_capacity = max_keys.div_ceil(SHARDS).max(8);
        Self {
            name: None,
            gcra: rate.map(|r| r.gcra()),
            rate,
            clock,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            shard_capacity,
        }
    }

    /// Names the limit in the refusals' metric (`chat_rate_limited_total{limit}`); an
    /// unnamed limiter's refusals are not counted (a throttle whose refusals no client
    /// sees, such as typing notices). A name is one of a fixed set, never a key.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// The rate per key, `None` when this limiter limits nothing.
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// A refusal, counted.
    fn refused(&self, wait_micros: i64) -> Error {
        if let Some(name) = self.name {
            crate::metrics::rate_limited(name);
        }
        refused(wait_micros)
    }

    /// Counts one request of `key`: `Ok` if it is within the rate, else
    /// [`Error::RateLimited`] with the time until it would be, and nothing is counted.
    pub fn check(&self, key: &K) -> Result<()> {
        let Some(gcra) = self.gcra else {
            return Ok(());
        };
        let now = now_micros(self.clock.as_ref());
        let mut shard = self.shard(key);
        match shard.get_mut(key) {
            Some(tat) => {
                *tat = gcra.admit(*tat, now).map_err(|w| self.refused(w))?;
            }
            None => {
                let tat = gcra.admit(now, now).map_err(|w| self.refused(w))?;
                if shard.len() >= self.shard_capacity {
                    make_room(&mut shard, self.shard_capacity, now);
                }
                shard.insert(key.clone(), tat);
            }
        }
        Ok(())
    }

    /// Gives back one request counted by [`check`](Self::check), for callers that count
    /// attempts up front but mean to limit only some outcomes (failed logins).
    pub fn refund(&self, key: &K) {
        let Some(gcra) = self.gcra else {
            return;
        };
        let now = now_micros(self.clock.as_ref());
        let mut shard = self.shard(key);
        if let Some(tat) = shard.get_mut(key) {
            *tat -= gcra.interval;
            if *tat <= now {
                shard.remove(key);
            }
        }
    }

    /// How many keys are tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, HashMap<K, i64>> {
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        // A panic while holding a shard cannot leave a half-written entry: recover it.
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Frees at least one slot in a full shard: first the keys whose budget has refilled
/// (they are as good as absent), then, if none has, the eighth of the keys closest to
/// refilled. Evicting a batch keeps the cost per insert constant on average when an
/// attacker floods the limiter with new keys.
fn make_room<K: Hash + Eq>(shard: &mut HashMap<K, i64>, capacity: usize, now: i64) {
    shard.retain(|_, tat| *tat > now);
    if shard.len() < capacity {
        return;
    }
    let mut tats: Vec<i64> = shard.values().copied().collect();
    let nth = (capacity / 8).clamp(1, tats.len()) - 1;
    let (_, threshold, _) = tats.select_nth_unstable(nth);
    let threshold = *threshold;
    shard.retain(|_, tat| *tat > threshold);
}

impl<K> fmt::Debug for RateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate", &self.rate)
            .field("max_keys", &(self.shard_capacity * SHARDS))
            .finish_non_exhaustive()
    }
}

/// A limit on one thing (a WebSocket connection's frames): a [`RateLimiter`] with a single
/// key, owned by its user, so without locks. It does not hold the clock (its user passes
/// it), so that each of many idle connections keeps only 32 bytes for it.
pub struct Throttle {
    gcra: Option<Gcra>,
    tat: i64,
}

impl Throttle {
    /// A throttle allowing `rate` (`None`: no limit).
    pub fn new(rate: Option<Rate>) -> Self {
        Self {
            gcra: rate.map(|r| r.gcra()),
            tat: i64::MIN,
        }
    }

    /// Counts one event at the clock's time: `Ok` if within the rate, else
    /// [`Error::RateLimited`] and nothing is counted.
    pub fn check(&mut self, clock: &dyn Clock) -> Result<()> {
        let Some(gcra) = self.gcra else {
            return Ok(());
        };
        let now = now_micros(clock);
        self.tat = gcra.admit(self.tat, now).map_err(refused)?;
        Ok(())
    }
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

/// The engine's abuse limits, on identities it knows. Transports add the ones only they
/// can see (client addresses, connections); chat-http's are in its `--limit-*` flags.
///
/// `Limits::default()` limits failed officer logins (10 per 15 minutes per officer id),
/// which never hinders an officer who knows their password, and leaves message sends
/// unlimited: an embedding program (a bot, an import) is trusted by default, while
/// `chat-http`, which serves untrusted clients, sets [`Limits::sends_per_sender`] (30 per
/// 10 seconds unless configured otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Failed officer logins per officer id (unknown ids included, so that a refusal tells
    /// nothing of which ids exist). Attempts are counted up front and given back when the
    /// password was right, so concurrent guesses cannot overshoot; while an id is over its
    /// limit every login to it is refused, right password or not. Default 10 per 15 min.
    pub login_failures_per_officer: Option<Rate>,
    /// Messages one identity (an officer, a customer) may send, whatever the outcome and
    /// whichever of its tokens it uses. Default `None` (no limit).
    pub sends_per_sender: Option<Rate>,
    /// Attachments one identity may upload (each also counts as a send), whatever the
    /// outcome. Default `None` (no limit); chat-http sets 20 per 10 minutes.
    pub uploads_per_sender: Option<Rate>,
    /// Most keys each limiter remembers (memory stays bounded whatever keys clients
    /// invent). Default 100,000.
    pub max_tracked_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            login_failures_per_officer: Some(Rate::new(10, Duration::from_secs(15 * 60))),
            sends_per_sender: None,
            uploads_per_sender: None,
            max_tracked_keys: 100_000,
        }
    }
}

impl Limits {
    /// No limit at all.
    pub fn none() -> Self {
        Self {
            login_failures_per_officer: None,
            sends_per_sender: None,
            uploads_per_sender: None,
            ..Self::default()
        }
    }

    /// Sets [`Limits::login_failures_per_officer`].
    pub fn with_login_failures_per_officer(mut self, rate: Option<Rate>) -> Self {
        self.login_failures_per_officer = rate;
        self
    }

    /// Sets [`Limits::sends_per_sender`].
    pub fn with_sends_per_sender(mut self, rate: Option<Rate>) -> Self {
        self.sends_per_sender = rate;
        self
    }

    /// Sets [`Limits::uploads_per_sender`].
    pub fn with_uploads_per_sender(mut self, rate: Option<Rate>) -> Self {
        self.uploads_per_sender = rate;
        self
    }

    /// Sets [`Limits::max_tracked_keys`].
    pub fn with_max_tracked_keys(mut self, keys: usize) -> Self {
        self.max_tracked_keys = keys;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::model::Timestamp;

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(Timestamp::from_unix_millis(
            1_700_000_000_000,
        )))
    }

    fn retry_after(result: Result<()>) -> Duration {
        match result {
            Err(Error::RateLimited { retry_after }) => retry_after,
            other => panic!("expected rate_limited, got {other:?}"),
        }
    }

    #[test]
    fn rates_parse_and_print() {
        let r: Rate = "10/15m".parse().unwrap();
        assert_eq!((r.count(), r.period()), (10, Duration::from_secs(900)));
        assert_eq!(r.to_string(), "10/15m");
        assert_eq!("5/s".parse::<Rate>().unwrap(), Rate::per_second(5));
        assert_eq!("30/10s".parse::<Rate>().unwrap().to_string(), "30/10s");
        assert_eq!("2/1h".parse::<Rate>().unwrap().to_string(), "2/1h");
        assert_eq!("7/250ms".parse::<Rate>().unwrap().to_string(), "7/250ms");
        for bad in [
            "", "10", "10/", "/s", "0/s", "-1/s", "10/0s", "10/5", "10/5d", "x/s", "10/8000h",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn a_key_gets_its_burst_then_waits_for_the_refill() {
        let clock = clock();
        let limiter = RateLimiter::new(Some("3/3s".parse().unwrap()), 100, clock.clone());
        for _ in 0..3 {
            limiter.check(&"a").unwrap();
        }
        // The fourth must wait one interval (1 s).
        assert_eq!(retry_after(limiter.check(&"a")), Duration::from_secs(1));
        // A refused request counts nothing: still one second to wait.
        assert_eq!(retry_after(limiter.check(&"a")), Duration::from_secs(1));
        clock.advance(Duration::from_millis(400));
        assert_eq!(retry_after(limiter.check(&"a")), Duration::from_millis(600));
        clock.advance(Duration::from_millis(600));
        limiter.check(&"a").unwrap();
        assert!(limiter.check(&"a").is_err());
        // After a whole period the whole burst is back.
        clock.advance(Duration::from_secs(3));
        for _ in 0..3 {
            limiter.check(&"a").unwrap();
        }
        assert!(limiter.check(&"a").is_err());
    }

    #[test]
    fn keys_are_limited_independently() {
        let clock = clock();
        let limiter = RateLimiter::new(Some(Rate::per_minute(2)), 100, clock);
        limiter.check(&"a").unwrap();
        limiter.check(&"a").unwrap();
        assert!(limiter.check(&"a").is_err());
        limiter.check(&"b").unwrap();
        limiter.check(&"b").unwrap();
        assert!(limiter.check(&"b").is_err());
    }

    #[test]
    fn a_refund_gives_back_one_request() {
        let clock = clock();
        let limiter = RateLimiter::new(Some(Rate::per_minute(2)), 100, clock);
        for _ in 0..10 {
            limiter.check(&"ok").unwrap();
            limiter.refund(&"ok");
        }
        // Fully refunded keys are forgotten.
        assert_eq!(limiter.tracked_keys(), 0);
        limiter.check(&"ok").unwrap();
        limiter.check(&"ok").unwrap();
        assert!(limiter.check(&"ok").is_err());
        limiter.refund(&"ok");
        limiter.check(&"ok").unwrap();
        assert!(limiter.check(&"ok").is_err());
        // Refunding a key never counted does nothing.
        limiter.refund(&"never");
        limiter.check(&"never").unwrap();
    }

    #[test]
    fn no_rate_limits_nothing() {
        let limiter = RateLimiter::new(None, 100, clock());
        for _ in 0..10_000 {
            limiter.check(&1u32).unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 0);
        let mut throttle = Throttle::new(None);
        let clock = clock();
        for _ in 0..10_000 {
            throttle.check(clock.as_ref()).unwrap();
        }
    }

    #[test]
    fn memory_stays_bounded_when_keys_rotate_and_the_hardest_limited_key_is_kept() {
        let clock = clock();
        let max = 1_000;
        let limiter = RateLimiter::new(Some(Rate::per_minute(5)), max, clock.clone());
        // The victim's key is driven to its limit.
        for _ in 0..5 {
            limiter.check(&u64::MAX).unwrap();
        }
        assert!(limiter.check(&u64::MAX).is_err());
        // An attacker rotates through many fresh keys, one request each, while time moves
        // only a little: every entry is still owed, so eviction has to choose.
        for key in 0..100_000u64 {
            limiter.check(&key).unwrap();
            if key % 1000 == 0 {
                clock.advance(Duration::from_millis(1));
            }
            assert!(limiter.tracked_keys() <= max.div_ceil(SHARDS).max(8) * SHARDS);
        }
        // The victim owed the most and is still limited.
        assert!(limiter.check(&u64::MAX).is_err());
        // Keys whose budget refilled are swept when room is needed.
        clock.advance(Duration::from_secs(60));
        limiter.check(&u64::MAX).unwrap();
    }

    #[test]
    fn a_throttle_limits_its_one_key() {
        let clock = clock();
        let mut throttle = Throttle::new(Some("2/1s".parse().unwrap()));
        let at = clock.as_ref();
        throttle.check(at).unwrap();
        throttle.check(at).unwrap();
        assert_eq!(retry_after(throttle.check(at)), Duration::from_millis(500));
        clock.advance(Duration::from_millis(500));
        throttle.check(at).unwrap();
        assert!(throttle.check(at).is_err());
    }

    #[test]
    fn concurrent_checks_never_overshoot() {
        let clock = clock();
        let limiter = Arc::new(RateLimiter::new(Some(Rate::per_minute(50)), 100, clock));
        let allowed = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..100 {
                        if limiter.check(&"shared").is_ok() {
                            allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.into_inner(), 50);
    }
}
