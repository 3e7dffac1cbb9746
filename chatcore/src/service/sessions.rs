//! Sessions: bearer tokens resolved to identities, logout, and [`LiveSession`], a session
//! held open by a long-lived connection (a WebSocket). A live session learns, on every
//! node, when its session ends before its expiry (a logout anywhere, the officer
//! disabled), so that the connection closes instead of going on with a right that is
//! gone. It must not decide what a session may do; that is `policy`'s.
//!
//! How an early end travels: the change is committed, then a notice is published on the
//! bus's `sessions` topic: `session_revoked` (the token's hash, never the token) for a
//! logout, one `officer_sessions_revoked` for all of a disabled officer's sessions. The
//! change and its notice run in a task of their own, so a caller that goes away (a
//! dropped HTTP request) cannot leave a committed revocation unannounced. Each service
//! has one listener on that topic (started with the first live session) that marks the
//! live sessions concerned and wakes their connections. Registration comes before the
//! store is asked whether the token is valid, so a revocation cannot fall between the
//! two unseen. A bus that may have lost notices (its listener lagged, or a cross-node
//! bus reconnected) makes every live session re-check itself against the store; a
//! connection also re-checks now and then ([`LiveSession::recheck`]), which bounds how
//! long a notice lost between nodes can keep a session open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::ChatService;
use crate::bus::{Event, RecvError, Subscription, Topic};
use crate::credentials;
use crate::error::{Error, Result};
use crate::identity::{Actor, Authenticated};
use crate::ids::OfficerId;
use crate::model::Timestamp;
use crate::store::{SessionSubject, TokenHash};

/// Longest bearer token the engine reads, in bytes; a longer one is refused unread.
pub const MAX_TOKEN_BYTES: usize = 512;

impl ChatService {
    /// Resolves a bearer token to the identity it carries. Unknown, revoked and expired
    /// tokens are all [`Error::Unauthorized`].
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthorized);
        }
        if self.is_admin_token(token) {
            return Ok(Authenticated {
                actor: Actor::Admin,
                expires_at: None,
            });
        }
        self.authenticate_hash(&credentials::hash_token(token))
            .await
    }

    fn is_admin_token(&self, token: &str) -> bool {
        self.inner
            .config
            .admin_token
            .as_ref()
            .is_some_and(|admin| credentials::secrets_equal(token.as_bytes(), admin.as_bytes()))
    }

    async fn authenticate_hash(&self, hash: &TokenHash) -> Result<Authenticated> {
        let session = self
            .inner
            .store
            .session(hash)
            .await?
            .ok_or(Error::Unauthorized)?;
        if self.now() >= session.expires_at {
            return Err(Error::Unauthorized);
        }
        let actor = match session.subject {
            SessionSubject::Officer(id) => Actor::Officer(id),
            SessionSubject::Customer {
                customer_id,
                chat_id,
            } => Actor::Customer {
                customer_id,
                chat_id,
            },
        };
        Ok(Authenticated {
            actor,
            expires_at: Some(session.expires_at),
        })
    }

    /// Revokes a token, and with it every live session it authenticates, on every node.
    /// Returns whether it was a live session token.
    pub async fn logout(&self, token: &str) -> Result<bool> {
        let hash = credentials::hash_token(token);
        self.detached(move |this| async move {
            let revoked = this.inner.store.delete_session(&hash).await?;
            if revoked {
                this.publish(Topic::Sessions, Event::SessionRevoked { token_hash: hash });
            }
            Ok(revoked)
        })
        .await
    }

    /// Deletes expired sessions; returns how many. Run it now and then.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        Ok(self.inner.store.purge_expired_sessions(self.now()).await?)
    }

    /// Authenticates a token for a long-lived connection: the identity, and a
    /// [`LiveSession`] that tells the connection when to close. Refused like
    /// [`ChatService::authenticate`].
    pub async fn open_live_session(&self, token: &str) -> Result<LiveSession> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthorized);
        }
        if self.is_admin_token(token) {
            let live = Live::new(self, None);
            let _ = live.identity.set((Actor::Admin, None));
            return Ok(LiveSession(Arc::new(live)));
        }
        let hash = credentials::hash_token(token);
        // Watch first, then ask the store: a revocation committed after the store's
        // answer is announced after this registration, so it is seen. A refusal drops
        // the session, which unregisters it.
        let session = LiveSession(Arc::new(Live::new(self, Some(hash))));
        self.inner.revocations.watch(&session.0, self);
        let auth = self.authenticate_hash(&hash).await?;
        if let Actor::Officer(officer) = &auth.actor {
            // Counted from here until the session is dropped: the officer is connected.
            self.desk().connect(officer);
        }
        let _ = session.0.identity.set((auth.actor, auth.expires_at));
        Ok(session)
    }
}

/// What [`LiveSession::poll_notice`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionNotice {
    /// The session was revoked (logout, the officer disabled): close the connection.
    Ended,
    /// Notices may have been lost: check the session with [`LiveSession::recheck`].
    Recheck,
}

/// A session held by a long-lived connection; see the module documentation. Dropping it
/// stops watching. One pointer wide, and one allocation shared with the registry: a
/// connection idles on it for hours, and every idle connection's memory counts.
pub struct LiveSession(Arc<Live>);

/// A live session, shared by its connection and the registry.
struct Live {
    service: ChatService,
    /// The token's hash; `None` for the admin token, which is configuration and cannot
    /// be revoked.
    hash: Option<TokenHash>,
    /// `LIVE`, `ENDED` or `RECHECK`.
    state: AtomicU8,
    waker: Mutex<Option<Waker>>,
    /// Who, and until when: set once the store has answered (the session is registered
    /// before that, so that no revocation can slip between the two).
    identity: OnceLock<(Actor, Option<Timestamp>)>,
}

impl Live {
    fn new(service: &ChatService, hash: Option<TokenHash>) -> Self {
        Self {
            service: service.clone(),
            hash,
            state: AtomicU8::new(LIVE),
            waker: Mutex::new(None),
            identity: OnceLock::new(),
        }
    }

    /// Moves to `state` (an ended session stays ended) and wakes the connection.
    fn raise(&self, state: u8) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != ENDED).then_some(state)
            });
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        if let Some(hash) = &self.0.hash {
            self.0.service.inner.revocations.unwatch(hash, &self.0);
        }
        if let Some((Actor::Officer(officer), _)) = self.0.identity.get() {
            self.0.service.inner.desk.disconnect(officer);
        }
    }
}

impl std::fmt::Debug for LiveSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSession")
            .field("actor", self.actor())
            .field("expires_at", &self.expires_at())
            .finish_non_exhaustive()
    }
}

impl LiveSession {
    /// Who the session is.
    pub fn actor(&self) -> &Actor {
        static ANONYMOUS: Actor = Actor::Anonymous;
        self.0.identity.get().map_or(&ANONYMOUS, |(actor, _)| actor)
    }

    /// When the session expires; `None` for the admin token.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.0.identity.get().and_then(|(_, at)| *at)
    }

    /// How long until the session expires by the service's clock (zero once it has);
    /// `None` for the admin token. The connection closes when this runs out.
    pub fn expires_in(&self) -> Option<Duration> {
        let left = self.expires_at()?.unix_millis() - self.0.service.now().unix_millis();
        Some(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }

    /// Ready once the session was revoked, or once notices may have been lost; pending
    /// otherwise (always, for the admin token). Registers the task's waker.
    pub fn poll_notice(&self, cx: &mut Context<'_>) -> Poll<SessionNotice> {
        let live = &self.0;
        if live.hash.is_none() {
            return Poll::Pending;
        }
        let state = live.state.load(Ordering::Acquire);
        if state != LIVE {
            return Poll::Ready(notice(state));
        }
        {
            let mut waker = lock(&live.waker);
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        // Registered: a notice from now on wakes the task; one before is seen here.
        match live.state.load(Ordering::Acquire) {
            LIVE => Poll::Pending,
            state => Poll::Ready(notice(state)),
        }
    }

    /// Checks the session against the store again: `Ok` while it is valid (which also
    /// clears a [`SessionNotice::Recheck`]), [`Error::Unauthorized`] once it was revoked
    /// or has expired.
    pub async fn recheck(&self) -> Result<()> {
        let live = &self.0;
        let Some(hash) = &live.hash else {
            return Ok(());
        };
        // Cleared before asking: a notice arriving meanwhile sets it again.
        let _ = live
            .state
            .compare_exchange(RECHECK, LIVE, Ordering::AcqRel, Ordering::Acquire);
        live.service.authenticate_hash(hash).await?;
        if live.state.load(Ordering::Acquire) == ENDED {
            return Err(Error::Unauthorized);
        }
        Ok(())
    }
}

fn notice(state: u8) -> SessionNotice {
    if state == ENDED {
        SessionNotice::Ended
    } else {
        SessionNotice::Recheck
    }
}

const LIVE: u8 = 0;
const ENDED: u8 = 1;
const RECHECK: u8 = 2;

/// Number of locks the live sessions are spread over.
const SHARDS: usize = 16;

/// The live sessions of this service, and the listener that ends them. They are found
/// by the first eight bytes of their token's hash (a session whose full hash differs is
/// skipped): one small entry per token, most of which have one connection.
#[derive(Default)]
pub(super) struct Revocations {
    shards: [Mutex<HashMap<u64, Slot>>; SHARDS],
    listener: OnceLock<tokio::task::AbortHandle>,
}

/// The live sessions under one key: most often one.
enum Slot {
    One(Arc<Live>),
    Many(Vec<Arc<Live>>),
}

impl Slot {
    fn sessions(&self) -> &[Arc<Live>] {
        match self {
            Slot::One(live) => std::slice::from_ref(live),
            Slot::Many(all) => all,
        }
    }
}

fn key(hash: &TokenHash) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&hash.0[..8]);
    u64::from_le_bytes(prefix)
}

impl Revocations {
    fn shard(&self, key: u64) -> MutexGuard<'_, HashMap<u64, Slot>> {
        lock(&self.shards[(key % SHARDS as u64) as usize])
    }

    /// Registers a live session (which has a hash); the listener is started on first use.
    fn watch(&self, live: &Arc<Live>, service: &ChatService) {
        let Some(hash) = &live.hash else { return };
        self.listener.get_or_init(|| {
            // Subscribed here, before any session is registered: no notice published
            // after a registration can be missed.
            let subscription = service.inner.bus.subscribe(&Topic::Sessions);
            let registry = Arc::downgrade(&service.inner.revocations);
            tokio::spawn(listen(subscription, registry)).abort_handle()
        });
        let key = key(hash);
        let mut shard = self.shard(key);
        let live = Arc::clone(live);
        match shard.remove(&key) {
            None => shard.insert(key, Slot::One(live)),
            Some(Slot::One(first)) => shard.insert(key, Slot::Many(vec![first, live])),
            Some(Slot::Many(mut all)) => {
                all.push(live);
                shard.insert(key, Slot::Many(all))
            }
        };
    }

    fn unwatch(&self, hash: &TokenHash, live: &Arc<Live>) {
        let key = key(hash);
        let mut shard = self.shard(key);
        let left = match shard.remove(&key) {
            Some(Slot::Many(mut all)) => {
                all.retain(|s| !Arc::ptr_eq(s, live));
                match all.len() {
                    0 => None,
                    1 => all.pop().map(Slot::One),
                    _ => Some(Slot::Many(all)),
                }
            }
            Some(Slot::One(only)) if !Arc::ptr_eq(&only, live) => Some(Slot::One(only)),
            _ => None,
        };
        if let Some(left) = left {
            shard.insert(key, left);
        }
    }

    /// Ends every live session of `officer`. A session still being opened (its identity
    /// not known yet) checks itself against the store instead: the disable deleted its
    /// session if it was the officer's.
    fn end_officer(&self, officer: &OfficerId) {
        for live in self.all() {
            match live.identity.get() {
                Some((Actor::Officer(id), _)) if id == officer => live.raise(ENDED),
                Some(_) => {}
                None => live.raise(RECHECK),
            }
        }
    }

    /// Every live session now, copied out of the shards (so no lock is held while they
    /// are woken).
    fn all(&self) -> Vec<Arc<Live>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(
                lock(shard)
                    .values()
                    .flat_map(|slot| slot.sessions().iter().cloned()),
            );
        }
        all
    }

    /// Ends every live session of `hash`.
    fn end(&self, hash: &TokenHash) {
        let key = key(hash);
        let sessions: Vec<Arc<Live>> = self
            .shard(key)
            .get(&key)
            .map(|slot| slot.sessions().to_vec())
            .unwrap_or_default();
        for live in sessions {
            if live.hash.as_ref() == Some(hash) {
                live.raise(ENDED);
            }
        }
    }

    /// Asks every live session to check itself against the store.
    fn recheck_all(&self) {
        for live in self.all() {
            live.raise(RECHECK);
        }
    }

    /// Live sessions registered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                lock(s)
                    .values()
                    .map(|slot| slot.sessions().len())
                    .sum::<usize>()
            })
            .sum()
    }
}

impl Drop for Revocations {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get() {
            listener.abort();
        }
    }
}

/// The service's one listener on the `sessions` topic; it ends with the service (whose
/// registry it only borrows) or the bus.
async fn listen(mut subscription: Subscription, registry: Weak<Revocations>) {
    loop {
        let received = subscription.recv().await;
        let Some(registry) = registry.upgrade() else {
            return;
        };
        match received {
            Ok(envelope) => match envelope.event() {
                Event::SessionRevoked { token_hash } => registry.end(token_hash),
                Event::OfficerSessionsRevoked { officer_id } => registry.end_officer(officer_id),
                Event::SessionsMayBeStale => {
                    tracing::info!("session notices may have been lost; live sessions re-check");
                    registry.recheck_all();
                }
                _ => {}
            },
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "session notices lost; live sessions re-check");
                registry.recheck_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;
    use crate::ServiceConfig;

    async fn next_notice(session: &LiveSession) -> SessionNotice {
        tokio::time::timeout(
            Duration::from_secs(5),
            poll_fn(|cx| session.poll_notice(cx)),
        )
        .await
        .expect("a notice within 5 s")
    }

    #[tokio::test]
    async fn a_logout_ends_every_live_session_of_that_token_and_only_those() {
        let service = ChatService::new(
            Arc::new(crate::MemoryStore::new()),
            Arc::new(crate::LocalBus::new()),
            ServiceConfig::default(),
        );
        let login = |id: &'static str| {
            let service = service.clone();
            async move {
                service
                    .customer_login(crate::CustomerLogin {
                        customer_id: crate::CustomerId::parse(id).unwrap(),
                        officer_id: None,
                        signature: None,
                    })
                    .await
                    .unwrap()
                    .token
            }
        };
        let (a, b) = (login("a").await, login("b").await);
        let first = service.open_live_session(&a).await.unwrap();
        let second = service.open_live_session(&a).await.unwrap();
        let other = service.open_live_session(&b).await.unwrap();
        assert_eq!(service.inner.revocations.len(), 3);
        assert!(service.logout(&a).await.unwrap());
        assert_eq!(next_notice(&first).await, SessionNotice::Ended);
        assert_eq!(next_notice(&second).await, SessionNotice::Ended);
        assert!(first.recheck().await.is_err());
        let still = poll_fn(|cx| Poll::Ready(other.poll_notice(cx))).await;
        assert!(still.is_pending(), "another token's session goes on");
        other.recheck().await.unwrap();
        assert!(matches!(
            service.open_live_session(&a).await,
            Err(Error::Unauthorized)
        ));
        drop((first, second));
        assert_eq!(service.inner.revocations.len(), 1, "dropped watches leave");
    }

    #[tokio::test]
    async fn tokens_whose_hashes_share_a_prefix_are_told_apart() {
        let service = ChatService::new(
            Arc::new(crate::MemoryStore::new()),
            Arc::new(crate::LocalBus::new()),
            ServiceConfig::default(),
        );
        let (mut a, mut b) = ([7u8; 32], [7u8; 32]);
        a[31] = 1;
        b[31] = 2;
        let first = LiveSession(Arc::new(Live::new(&service, Some(TokenHash(a)))));
        let second = LiveSession(Arc::new(Live::new(&service, Some(TokenHash(b)))));
        let third = LiveSession(Arc::new(Live::new(&service, Some(TokenHash(b)))));
        for s in [&first, &second, &third] {
            service.inner.revocations.watch(&s.0, &service);
        }
        assert_eq!(service.inner.revocations.len(), 3);
        service.inner.revocations.end(&TokenHash(b));
        assert_eq!(second.0.state.load(Ordering::Acquire), ENDED);
        assert_eq!(third.0.state.load(Ordering::Acquire), ENDED);
        assert_eq!(first.0.state.load(Ordering::Acquire), LIVE);
        drop(second);
        assert_eq!(service.inner.revocations.len(), 2);
        drop((first, third));
        assert_eq!(service.inner.revocations.len(), 0);
    }

    #[tokio::test]
    async fn a_bus_that_may_have_lost_notices_makes_live_sessions_recheck() {
        let service = ChatService::new(
            Arc::new(crate::MemoryStore::new()),
            Arc::new(crate::LocalBus::new()),
            ServiceConfig::default(),
        );
        let login = service
            .customer_login(crate::CustomerLogin {
                customer_id: crate::CustomerId::parse("a").unwrap(),
                officer_id: None,
                signature: None,
            })
            .await
            .unwrap();
        let live = service.open_live_session(&login.token).await.unwrap();
        service.publish(Topic::Sessions, Event::SessionsMayBeStale);
        assert_eq!(next_notice(&live).await, SessionNotice::Recheck);
        // The check clears it; the session is still valid.
        live.recheck().await.unwrap();
        let again = poll_fn(|cx| Poll::Ready(live.poll_notice(cx))).await;
        assert!(again.is_pending());
    }
}
