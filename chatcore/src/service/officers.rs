//! Officers: creation (admin, or anyone in open mode), listing, and password login.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::ChatService;
use crate::bus::{Event, Topic};
use crate::credentials::{self, HashMemory};
use crate::error::{Error, Result};
use crate::identity::Actor;
use crate::ids::OfficerId;
use crate::model::{Availability, Officer, Timestamp};
use crate::policy;
use crate::store::{OfficerRecord, OfficerUpdate, SessionSubject, StoreError};
use crate::text;

/// Input of [`ChatService::create_officer`].
#[derive(Debug, Clone)]
pub struct NewOfficer {
    /// The new officer's id.
    pub id: OfficerId,
    /// Their password; `None` creates an officer who can log in only in open mode. At
    /// least the configured number of characters, and not only whitespace.
    pub password: Option<String>,
    /// A name to show; blank (nothing visible) counts as none. At most 100 characters,
    /// without control or bidirectional formatting characters.
    pub display_name: Option<String>,
    /// Their own capacity, the most open chats they may hold (at most [`MAX_CAPACITY`]);
    /// `None`: the server's default.
    pub capacity: Option<u32>,
}

/// Result of an officer login: the contract's answer to `POST /api/officers/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"officer": {"id": "alice", "displayName": "Alice", "createdAt": "2026-11-24T11:17:19.120Z", "disabled": false, "availability": "available", "capacity": 5, "openChats": 1, "connected": true}, "token": "9f2c0d6e1b7a4c3f8e5d2a1b0c9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f", "expiresAt": "2026-11-24T23:17:19.120Z"}))
)]
pub struct OfficerSession {
    /// The officer.
    pub officer: Officer,
    /// Their bearer token.
    pub token: String,
    /// When the token expires.
    pub expires_at: Timestamp,
}

/// Who a token is: the contract's answer to `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"role": "officer", "subject": "alice", "officer": {"id": "alice", "displayName": "Alice", "createdAt": "2026-11-24T11:17:19.120Z", "disabled": false, "availability": "available", "capacity": 5, "openChats": 1, "connected": true}}))
)]
pub struct Me {
    /// `officer`, `customer` or `admin`.
    pub role: String,
    /// The officer's or customer's id; `admin` for the admin.
    pub subject: String,
    /// For an officer, their record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<Officer>,
}

/// The largest capacity an officer may be given (open chats at once).
pub const MAX_CAPACITY: u32 = 10_000;

/// A capacity is at most [`MAX_CAPACITY`].
fn check_capacity(capacity: Option<u32>) -> Result<()> {
    match capacity {
        Some(c) if c > MAX_CAPACITY => Err(Error::InvalidField {
            name: "capacity",
            reason: format!("must be at most {MAX_CAPACITY} open chats"),
        }),
        _ => Ok(()),
    }
}

impl ChatService {
    /// Creates an officer. Allowed to the admin, and to anyone in open mode.
    pub async fn create_officer(&self, actor: &Actor, new: NewOfficer) -> Result<Officer> {
        policy::create_officer(actor, self.config().open_mode())?;
        let display_name = text::shown_name("displayName", new.display_name.as_deref())?;
        check_capacity(new.capacity)?;
        let password_hash = match new.password {
            None => None,
            Some(password) => {
                let min = self.config().min_password_chars;
                if !password.is_empty() && password.chars().all(char::is_whitespace) {
                    return Err(Error::InvalidField {
                        name: "password",
                        reason: "must not be only whitespace".into(),
                    });
                }
                if password.chars().count() < min {
                    return Err(Error::InvalidField {
                        name: "password",
                        reason: format!("must be at least {min} characters"),
                    });
                }
                let hash = self
                    .hashing(move |memory| credentials::hash_password(&password, memory))
                    .await?
                    .map_err(Error::internal)?;
                Some(hash)
            }
        };
        let officer = Officer {
            id: new.id,
            display_name,
            created_at: self.now(),
            disabled: false,
            availability: Availability::Available,
            capacity: new.capacity,
            open_chats: 0,
            connected: false,
        };
        let record = OfficerRecord {
            officer: officer.clone(),
            password_hash,
        };
        match self.inner.store.create_officer(&record).await {
            Ok(()) => Ok(self.in_force(officer)),
            Err(StoreError::Duplicate) => Err(Error::OfficerExists(officer.id)),
            Err(e) => Err(e.into()),
        }
    }

    /// All officers, by id. Allowed to the admin and to officers.
    pub async fn officers(&self, actor: &Actor) -> Result<Vec<Officer>> {
        policy::list_officers(actor)?;
        let officers = self.inner.store.officers().await?;
        Ok(officers.into_iter().map(|o| self.in_force(o)).collect())
    }

    /// Sets an officer's capacity, the most open chats they may hold (the admin only;
    /// `None`: the server's default). Chats they hold over it stay theirs.
    pub async fn set_capacity(
        &self,
        actor: &Actor,
        officer: &OfficerId,
        capacity: Option<u32>,
    ) -> Result<Officer> {
        policy::manage_officers(actor)?;
        check_capacity(capacity)?;
        let officer = self
            .inner
            .store
            .update_officer(
                officer,
                &OfficerUpdate {
                    capacity: Some(capacity),
                    availability: None,
                },
            )
            .await?
            .ok_or(Error::OfficerNotFound)?;
        tracing::info!(officer = %officer.id, ?capacity, "officer capacity set");
        self.want_assignment();
        Ok(self.announce_officer(officer))
    }

    /// Sets whether an officer takes chats now (that officer and the admin), and tells
    /// every officer (`officer_updated` on `officers:all`).
    pub async fn set_availability(
        &self,
        actor: &Actor,
        officer: &OfficerId,
        availability: Availability,
    ) -> Result<Officer> {
        policy::set_availability(actor, officer)?;
        let update = OfficerUpdate {
            capacity: None,
            availability: Some(availability),
        };
        let officer = self
            .inner
            .store
            .update_officer(officer, &update)
            .await?
            .ok_or(Error::OfficerNotFound)?;
        if availability == Availability::Available {
            self.want_assignment();
        }
        Ok(self.announce_officer(officer))
    }

    /// Publishes an officer's new settings to every officer; the officer as answered.
    pub(super) fn announce_officer(&self, officer: Officer) -> Officer {
        let officer = self.in_force(officer);
        self.publish(
            Topic::Officers,
            Event::OfficerUpdated {
                officer: officer.clone(),
            },
        );
        officer
    }

    /// The officer as answers show them: the capacity in force (their own, else the
    /// server's default).
    pub(super) fn in_force(&self, mut officer: Officer) -> Officer {
        officer.capacity = officer.capacity.or(self.config().officer_capacity);
        officer
    }

    /// Who `actor` is (anyone identified): role, subject and, for an officer, their
    /// record.
    pub async fn me(&self, actor: &Actor) -> Result<Me> {
        policy::who_am_i(actor)?;
        let officer = match actor {
            Actor::Officer(id) => Some(
                self.inner
                    .store
                    .officer(id)
                    .await?
                    .ok_or(Error::OfficerNotFound)
                    .map(|r| self.in_force(r.officer))?,
            ),
            _ => None,
        };
        Ok(Me {
            role: actor.role().to_string(),
            subject: actor.subject().to_string(),
            officer,
        })
    }

    /// The identity of an officer for a trusted caller that acts on their behalf without a
    /// token (an administrator's tool on the database, a program embedding the engine):
    /// [`Error::OfficerNotFound`] when there is no such officer, and
    /// [`Error::OfficerDisabled`] when the admin disabled them. Whatever the officer then
    /// does is checked by the same rules as with a token.
    pub async fn act_as_officer(&self, officer: &OfficerId) -> Result<Actor> {
        let record = self
            .inner
            .store
            .officer(officer)
            .await?
            .ok_or(Error::OfficerNotFound)?;
        if record.officer.disabled {
            return Err(Error::OfficerDisabled);
        }
        Ok(Actor::Officer(record.officer.id))
    }

    /// Disables an officer (the admin only): they can no longer log in, and every session
    /// they hold is revoked, so their open connections close on every node. Their chats
    /// stay assigned to them. Idempotent.
    pub async fn disable_officer(&self, actor: &Actor, officer: &OfficerId) -> Result<Officer> {
        policy::manage_officers(actor)?;
        let officer = officer.clone();
        self.detached(move |this| async move {
            let (officer, revoked) = this
                .inner
                .store
                .set_officer_disabled(&officer, true)
                .await?
                .ok_or(Error::OfficerNotFound)?;
            tracing::info!(officer = %officer.id, sessions = revoked.len(), "officer disabled");
            let officer = this.in_force(officer);
            // One notice for all of them, however many sessions the officer had.
            this.publish(
                Topic::Sessions,
                Event::OfficerSessionsRevoked {
                    officer_id: officer.id.clone(),
                },
            );
            Ok(officer)
        })
        .await
    }

    /// Enables a disabled officer again (the admin only); they log in anew. Idempotent.
    pub async fn enable_officer(&self, actor: &Actor, officer: &OfficerId) -> Result<Officer> {
        policy::manage_officers(actor)?;
        let (officer, _) = self
            .inner
            .store
            .set_officer_disabled(officer, false)
            .await?
            .ok_or(Error::OfficerNotFound)?;
        tracing::info!(officer = %officer.id, "officer enabled");
        Ok(self.in_force(officer))
    }

    /// Logs an officer in. An unknown id, a malformed id and a wrong password all give
    /// the same [`Error::InvalidCredentials`] after the same amount of work.
    ///
    /// Failed logins are limited per officer id ([`crate::Limits`]): an id over its limit
    /// gets [`Error::RateLimited`] before any password is checked, right or wrong, and
    /// whether or not the officer exists.
    pub async fn officer_login(
        &self,
        officer_id: &str,
        password: Option<&str>,
    ) -> Result<OfficerSession> {
        // Ids that cannot exist are not tracked; they can never log in anyway.
        let id = OfficerId::parse(officer_id).ok();
        // Counted up front, so concurrent guesses cannot overshoot the limit, and given
        // back unless the credentials were refused.
        if let Some(id) = &id {
            self.inner.login_failures.check(id)?;
        }
        let result = self.verify_officer_login(id.as_ref(), password).await;
        if let Some(id) = &id {
            if !matches!(result, Err(Error::InvalidCredentials)) {
                self.inner.login_failures.refund(id);
            }
        }
        result
    }

    async fn verify_officer_login(
        &self,
        officer_id: Option<&OfficerId>,
        password: Option<&str>,
    ) -> Result<OfficerSession> {
        let record = match officer_id {
            Some(id) => self.inner.store.officer(id).await?,
            None => None,
        };
        let open_mode = self.config().open_mode();
        let stored_hash = record.as_ref().and_then(|r| r.password_hash.clone());
        let password = password.map(str::to_owned);
        let accepted = match (&record, stored_hash, password) {
            // A passwordless officer logs in by id alone, in open mode only.
            (Some(_), None, _) if open_mode => true,
            (Some(_), Some(hash), Some(password)) => {
                self.hashing(move |memory| {
                    credentials::verify_password(Some(&hash), &password, memory)
                })
                .await?
            }
            // Every refusal does the work of one verification, so timing tells nothing.
            (_, _, password) => {
                let password = password.unwrap_or_default();
                self.hashing(move |memory| credentials::verify_password(None, &password, memory))
                    .await?
            }
        };
        let Some(record) = record.filter(|_| accepted) else {
            return Err(Error::InvalidCredentials);
        };
        // Said only to whoever proved the password, so it tells an outsider nothing.
        if record.officer.disabled {
            return Err(Error::OfficerDisabled);
        }
        let (token, expires_at) = self
            .issue_session(
                SessionSubject::Officer(record.officer.id.clone()),
                self.config().officer_session_ttl,
            )
            .await?;
        Ok(OfficerSession {
            officer: self.in_force(record.officer),
            token,
            expires_at,
        })
    }
}

impl ChatService {
    /// Runs a password hash or verification on the blocking pool, at most
    /// [`hashing_permits`] at once.
    async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T> {
        self.inner.hashing.run(f).await
    }
}

/// How many password hashes run at once: the machine's cores (at least 1, at most 16).
/// Each argon2id hash holds 19 MiB while it runs; more at once than cores would only
/// hold more memory, not finish sooner.
pub(super) fn hashing_permits() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 16))
}

/// Password hashing: at most so many at once, each in argon2's memory of an earlier one
/// ([`HashMemory`]), so that the service holds at most one block of memory per permit
/// (19 MiB each), however many logins come.
pub(super) struct Hashing {
    permits: Arc<tokio::sync::Semaphore>,
    /// Memory of the hashes that ended: at most one per permit.
    memory: Arc<Mutex<Vec<HashMemory>>>,
}

impl Hashing {
    pub(super) fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(permits)),
            memory: Arc::default(),
        }
    }

    /// Runs `f` on the blocking pool once a permit is free; the permit is held until `f`
    /// ends, also when the caller stops waiting (a dropped request).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the hashing pool is closed"))?;
        let pool = Arc::clone(&self.memory);
        tokio::task::spawn_blocking(move || {
            let mut memory = lock(&pool).pop().unwrap_or_default();
            let out = f(&mut memory);
            lock(&pool).push(memory);
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))
    }
}

/// The pool's lock; a panic while it was held cannot leave the list half changed.
fn lock(pool: &Mutex<Vec<HashMemory>>) -> std::sync::MutexGuard<'_, Vec<HashMemory>> {
    pool.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_runs_at_most_its_permits_at_once() {
        let hashing = Arc::new(Hashing::new(2));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..16).map(|_| {
            let (hashing, running, most) = (hashing.clone(), running.clone(), most.clone());
            tokio::spawn(async move {
                hashing
                    .run(move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            })
        });
        for job in futures_util::future::join_all(jobs).await {
            job.expect("job").expect("ran");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "two at once, never more");
        assert_eq!(
            lock(&hashing.memory).len(),
            2,
            "one memory per permit, kept"
        );
        assert!(hashing_permits() >= 1);
    }
}
