//! Sessions: bearer tokens resolved to identities, logout, and [`LiveSession`], a session
//! held open by a long-lived connection (a WebSocket). A live session learns, on every
//! node, when its session ends before its expiry (a logout anywhere, the officer
//! disabled), so that the connection closes instead of going on with a right that is
//! gone. It must not decide what a session may do; that is `policy`'s.
//!
//! How an early end travels: the change is committed, then a `session_revoked` notice
//! (the token's hash, never the token) is published on the bus's `sessions` topic. Each
//! service has one listener on that topic (started with the first live session) that
//! marks the live sessions of that hash and wakes their connections. Registration comes
//! before the store is asked whether the token is valid, so a revocation cannot fall
//! between the two unseen. A bus that may have lost notices (its listener lagged) makes
//! every live session re-check itself against the store; a connection also re-checks
//! now and then ([`LiveSession::recheck`]), which bounds how long a notice lost between
//! nodes can keep a session open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::ChatService;
use crate::bus::{Event, RecvError, Subscription, Topic};
use crate::credentials;
use crate::error::{Error, Result};
use crate::identity::{Actor, Authenticated};
use crate::model::Timestamp;
use crate::store::{SessionSubject, TokenHash};

impl ChatService {
    /// Resolves a bearer token to the identity it carries. Unknown, revoked and expired
    /// tokens are all [`Error::Unauthorized`].
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated> {
        if token.is_empty() || token.len() > 512 {
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
        let revoked = self.inner.store.delete_session(&hash).await?;
        if revoked {
            self.announce_revoked(hash);
        }
        Ok(revoked)
    }

    /// Tells every node that a session ended, after the change is committed.
    pub(super) fn announce_revoked(&self, token_hash: TokenHash) {
        self.publish(Topic::Sessions, Event::SessionRevoked { token_hash });
    }

    /// Deletes expired sessions; returns how many. Run it now and then.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        Ok(self.inner.store.purge_expired_sessions(self.now()).await?)
    }

    /// Authenticates a token for a long-lived connection: the identity, and a
    /// [`LiveSession`] that tells the connection when to close. Refused like
    /// [`ChatService::authenticate`].
    pub async fn open_live_session(&self, token: &str) -> Result<LiveSession> {
        if token.is_empty() || token.len() > 512 {
            return Err(Error::Unauthorized);
        }
        if self.is_admin_token(token) {
            return Ok(LiveSession {
                service: self.clone(),
                actor: Actor::Admin,
                expires_at: None,
                watch: None,
            });
        }
        let hash = credentials::hash_token(token);
        // Watch first, then ask the store: a revocation committed after the store's
        // answer is announced after this registration, so it is seen.
        let watch = self.inner.revocations.watch(hash, self);
        let auth = self.authenticate_hash(&hash).await?;
        Ok(LiveSession {
            service: self.clone(),
            actor: auth.actor,
            expires_at: auth.expires_at,
            watch: Some(watch),
        })
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
/// stops watching.
pub struct LiveSession {
    service: ChatService,
    actor: Actor,
    expires_at: Option<Timestamp>,
    /// `None` for the admin token, which is configuration and cannot be revoked.
    watch: Option<Watch>,
}

impl std::fmt::Debug for LiveSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSession")
            .field("actor", &self.actor)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl LiveSession {
    /// Who the session is.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// When the session expires; `None` for the admin token.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }

    /// How long until the session expires by the service's clock (zero once it has);
    /// `None` for the admin token. The connection closes when this runs out.
    pub fn expires_in(&self) -> Option<Duration> {
        let left = self.expires_at?.unix_millis() - self.service.now().unix_millis();
        Some(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }

    /// Ready once the session was revoked, or once notices may have been lost; pending
    /// otherwise (always, for the admin token). Registers the task's waker.
    pub fn poll_notice(&self, cx: &mut Context<'_>) -> Poll<SessionNotice> {
        let Some(watch) = &self.watch else {
            return Poll::Pending;
        };
        let state = watch.flag.state.load(Ordering::Acquire);
        if state != LIVE {
            return Poll::Ready(notice(state));
        }
        {
            let mut waker = lock(&watch.flag.waker);
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        // Registered: a notice from now on wakes the task; one before is seen here.
        match watch.flag.state.load(Ordering::Acquire) {
            LIVE => Poll::Pending,
            state => Poll::Ready(notice(state)),
        }
    }

    /// Checks the session against the store again: `Ok` while it is valid (which also
    /// clears a [`SessionNotice::Recheck`]), [`Error::Unauthorized`] once it was revoked
    /// or has expired.
    pub async fn recheck(&self) -> Result<()> {
        let Some(watch) = &self.watch else {
            return Ok(());
        };
        // Cleared before asking: a notice arriving meanwhile sets it again.
        let _ =
            watch
                .flag
                .state
                .compare_exchange(RECHECK, LIVE, Ordering::AcqRel, Ordering::Acquire);
        self.service.authenticate_hash(&watch.hash).await?;
        if watch.flag.state.load(Ordering::Acquire) == ENDED {
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

/// One live session's state, shared with the registry.
#[derive(Default)]
struct Flag {
    state: AtomicU8,
    waker: Mutex<Option<Waker>>,
}

impl Flag {
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

/// A live session's entry in the registry; removes itself when dropped.
struct Watch {
    hash: TokenHash,
    flag: Arc<Flag>,
    registry: Arc<Revocations>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut shard = self.registry.shard(&self.hash);
        if let Some(flags) = shard.get_mut(&self.hash) {
            flags.retain(|f| !Arc::ptr_eq(f, &self.flag));
            if flags.is_empty() {
                shard.remove(&self.hash);
            }
        }
    }
}

/// Number of locks the live sessions are spread over.
const SHARDS: usize = 16;

/// The live sessions of this service by token hash, and the listener that ends them.
#[derive(Default)]
pub(super) struct Revocations {
    shards: [Mutex<HashMap<TokenHash, Vec<Arc<Flag>>>>; SHARDS],
    listener: OnceLock<tokio::task::AbortHandle>,
}

impl Revocations {
    fn shard(&self, hash: &TokenHash) -> MutexGuard<'_, HashMap<TokenHash, Vec<Arc<Flag>>>> {
        lock(&self.shards[usize::from(hash.0[0]) % SHARDS])
    }

    /// Registers a live session of `hash`; the listener is started on first use.
    fn watch(self: &Arc<Self>, hash: TokenHash, service: &ChatService) -> Watch {
        self.listener.get_or_init(|| {
            // Subscribed here, before any session is registered: no notice published
            // after a registration can be missed.
            let subscription = service.inner.bus.subscribe(&Topic::Sessions);
            tokio::spawn(listen(subscription, Arc::clone(self))).abort_handle()
        });
        let flag = Arc::new(Flag::default());
        self.shard(&hash)
            .entry(hash)
            .or_default()
            .push(Arc::clone(&flag));
        Watch {
            hash,
            flag,
            registry: Arc::clone(self),
        }
    }

    /// Ends every live session of `hash`.
    fn end(&self, hash: &TokenHash) {
        let flags = self.shard(hash).get(hash).cloned().unwrap_or_default();
        for flag in flags {
            flag.raise(ENDED);
        }
    }

    /// Asks every live session to check itself against the store.
    fn recheck_all(&self) {
        for shard in &self.shards {
            let flags: Vec<Arc<Flag>> = lock(shard).values().flatten().cloned().collect();
            for flag in flags {
                flag.raise(RECHECK);
            }
        }
    }

    /// Live sessions registered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).values().map(Vec::len).sum::<usize>())
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

/// The service's one listener on the `sessions` topic.
async fn listen(mut subscription: Subscription, registry: Arc<Revocations>) {
    loop {
        match subscription.recv().await {
            Ok(envelope) => {
                if let Event::SessionRevoked { token_hash } = envelope.event() {
                    registry.end(token_hash);
                }
            }
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
}
