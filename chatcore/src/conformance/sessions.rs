//! Conformance cases on sessions: stored, found, deleted and purged; an officer's
//! disable revokes their sessions, also against logins racing it; and the ping.

use super::*;

pub(super) async fn sessions_are_stored_found_deleted_and_purged(store: Arc<dyn Store>) {
    let amy = add_officer(&store, "amy").await;
    let chat = add_chat(&store, "c", 1).await;
    let officer = SessionRecord {
        token_hash: TokenHash([1; 32]),
        subject: SessionSubject::Officer(amy),
        created_at: t(0),
        expires_at: t(1000),
    };
    let customer = SessionRecord {
        token_hash: TokenHash([2; 32]),
        subject: SessionSubject::Customer {
            customer_id: cid("c"),
            chat_id: chat,
        },
        created_at: t(0),
        expires_at: t(5000),
    };
    assert!(store.create_session(&officer).await.expect("create"));
    assert!(store.create_session(&customer).await.expect("create"));
    assert_eq!(
        store.session(&officer.token_hash).await.expect("get"),
        Some(officer.clone())
    );
    assert_eq!(
        store.session(&customer.token_hash).await.expect("get"),
        Some(customer.clone())
    );
    assert!(
        store
            .session(&TokenHash([3; 32]))
            .await
            .expect("get")
            .is_none()
    );
    // Purging at t(1000) removes the session that expires then, keeps the later one.
    assert_eq!(
        store.purge_expired_sessions(t(1000)).await.expect("purge"),
        1
    );
    assert!(
        store
            .session(&officer.token_hash)
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        store
            .delete_session(&customer.token_hash)
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_session(&customer.token_hash)
            .await
            .expect("delete")
    );
    assert!(
        store
            .session(&customer.token_hash)
            .await
            .expect("get")
            .is_none()
    );
}

fn officer_session(officer: &OfficerId, n: u8) -> SessionRecord {
    SessionRecord {
        token_hash: TokenHash([n; 32]),
        subject: SessionSubject::Officer(officer.clone()),
        created_at: t(0),
        expires_at: t(1_000_000),
    }
}

pub(super) async fn disabling_an_officer_revokes_their_sessions_and_refuses_new_ones(
    store: Arc<dyn Store>,
) {
    let amy = add_officer(&store, "amy").await;
    let bob = add_officer(&store, "bob").await;
    let chat = add_chat(&store, "c", 1).await;
    for session in [officer_session(&amy, 1), officer_session(&amy, 2)] {
        assert!(store.create_session(&session).await.expect("create"));
    }
    assert!(
        store
            .create_session(&officer_session(&bob, 3))
            .await
            .expect("create")
    );
    let customer = SessionRecord {
        token_hash: TokenHash([4; 32]),
        subject: SessionSubject::Customer {
            customer_id: cid("c"),
            chat_id: chat,
        },
        created_at: t(0),
        expires_at: t(1_000_000),
    };
    assert!(store.create_session(&customer).await.expect("create"));

    let (officer, mut revoked) = store
        .set_officer_disabled(&amy, true)
        .await
        .expect("disable")
        .expect("amy exists");
    assert!(officer.disabled);
    revoked.sort_by_key(|h| h.0);
    assert_eq!(revoked, vec![TokenHash([1; 32]), TokenHash([2; 32])]);
    for n in [1, 2] {
        assert!(
            store
                .session(&TokenHash([n; 32]))
                .await
                .expect("get")
                .is_none()
        );
    }
    for n in [3, 4] {
        assert!(
            store
                .session(&TokenHash([n; 32]))
                .await
                .expect("get")
                .is_some(),
            "another subject's session was revoked"
        );
    }
    let stored = store.officer(&amy).await.expect("get").expect("amy");
    assert!(stored.officer.disabled);
    assert!(
        !store
            .create_session(&officer_session(&amy, 5))
            .await
            .expect("create"),
        "a disabled officer got a session"
    );
    assert!(
        !store
            .create_session(&officer_session(&oid("nobody"), 6))
            .await
            .expect("create"),
        "an unknown officer got a session"
    );
    // Disabling again revokes nothing more; enabling lets the officer in again.
    let (_, again) = store
        .set_officer_disabled(&amy, true)
        .await
        .expect("disable")
        .expect("amy");
    assert!(again.is_empty());
    let (officer, none) = store
        .set_officer_disabled(&amy, false)
        .await
        .expect("enable")
        .expect("amy");
    assert!(!officer.disabled && none.is_empty());
    assert!(
        store
            .create_session(&officer_session(&amy, 7))
            .await
            .expect("create")
    );
    assert!(
        store
            .set_officer_disabled(&oid("nobody"), true)
            .await
            .expect("disable")
            .is_none()
    );
}

pub(super) async fn a_login_racing_a_disable_leaves_no_session_behind(store: Arc<dyn Store>) {
    // Sessions are created while the officer is disabled: every session that was
    // stored must be among those the disable revoked, and none may be left.
    for round in 0..5u8 {
        let amy = add_officer(&store, &format!("amy{round}")).await;
        let logins: Vec<_> = (0..24u8)
            .map(|n| {
                let (store, amy) = (store.clone(), amy.clone());
                tokio::spawn(async move {
                    let session = officer_session(&amy, round * 32 + n + 1);
                    let stored = store.create_session(&session).await.expect("create");
                    (session.token_hash, stored)
                })
            })
            .collect();
        let disable = {
            let (store, amy) = (store.clone(), amy.clone());
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                store.set_officer_disabled(&amy, true).await
            })
        };
        let mut stored = Vec::new();
        for login in logins {
            let (hash, ok) = login.await.expect("login task");
            if ok {
                stored.push(hash);
            }
        }
        let (_, mut revoked) = disable
            .await
            .expect("disable task")
            .expect("disable")
            .expect("officer");
        stored.sort_by_key(|h| h.0);
        revoked.sort_by_key(|h| h.0);
        assert_eq!(
            stored, revoked,
            "round {round}: a stored session was not revoked"
        );
        for hash in &stored {
            assert!(
                store.session(hash).await.expect("get").is_none(),
                "round {round}: a session of a disabled officer is left"
            );
        }
    }
}

pub(super) async fn ping_succeeds_on_an_open_store(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}
