//! Who a customer is and who their chat goes to, at the core: identity tokens (a JWT,
//! HS256 with the customer secret) that expire, the officer a login may name (only a
//! verified claim on a secured service), an unknown officer answered like none, and the
//! customer's name shown to officers.

use std::sync::Arc;
use std::time::Duration;

use chatcore::{
    Actor, ChatService, ChatStatus, CustomerId, CustomerLogin, Event, IdentityClaims, LocalBus,
    ManualClock, MemoryStore, NewOfficer, OfficerId, ServiceConfig, Timestamp,
    customer_identity_token, customer_signature,
};

const SECRET: &[u8] = b"host-secret-0123456789abcdef0123456";
const NOW_SECS: u64 = 1_800_000_000;

struct Desk {
    service: ChatService,
    clock: Arc<ManualClock>,
}

/// A service on the in-memory store and a clock the test moves, secured with the
/// customer secret or not, with one officer, amy.
async fn desk(secured: bool) -> Desk {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
        NOW_SECS as i64 * 1000,
    )));
    let mut config = ServiceConfig::default();
    config.clock = clock.clone();
    if secured {
        config.admin_token = Some("admin-token-0123456789abcdef0123456789".into());
        config.customer_secret = Some(SECRET.to_vec());
    }
    let service = ChatService::new(
        Arc::new(MemoryStore::new()),
        Arc::new(LocalBus::new()),
        config,
    );
    service
        .create_officer(
            &Actor::Admin,
            NewOfficer {
                id: OfficerId::parse("amy").unwrap(),
                password: None,
                display_name: None,
                capacity: None,
            },
        )
        .await
        .unwrap();
    Desk { service, clock }
}

/// A token for `sub` that expires `ttl` seconds from the start of the test.
fn token(sub: &str, ttl: u64, officer: Option<&str>, name: Option<&str>) -> String {
    customer_identity_token(
        SECRET,
        &IdentityClaims {
            sub: sub.into(),
            exp: NOW_SECS + ttl,
            officer_id: officer.map(str::to_string),
            name: name.map(str::to_string),
        },
    )
}

fn by_id(customer: &str, officer: Option<&str>, signature: bool) -> CustomerLogin {
    CustomerLogin {
        customer_id: CustomerId::parse(customer).unwrap(),
        officer_id: officer.map(|o| OfficerId::parse(o).unwrap()),
        signature: signature.then(|| customer_signature(SECRET, customer)),
    }
}

#[tokio::test]
async fn an_identity_token_logs_the_customer_in_until_it_expires() {
    let d = desk(true).await;
    let s = &d.service;
    let first = token("cust-1", 60, None, Some("Ada Lovelace"));
    let login = s.customer_login_with_identity(&first).await.unwrap();
    assert!(login.created);
    assert_eq!(login.chat.customer_id.as_str(), "cust-1");
    assert_eq!(login.chat.customer_name.as_deref(), Some("Ada Lovelace"));
    let customer = s.authenticate(&login.token).await.unwrap().actor;
    assert_eq!(s.chat(&customer, login.chat.id).await.unwrap(), login.chat);

    // Past `exp` by less than the 30 s leeway it still counts; past that it is refused.
    d.clock.advance(Duration::from_secs(60 + 29));
    let again = s.customer_login_with_identity(&first).await.unwrap();
    assert_eq!((again.created, again.chat.id), (false, login.chat.id));
    d.clock.advance(Duration::from_secs(2));
    let refused = s.customer_login_with_identity(&first).await.unwrap_err();
    assert_eq!(refused.code(), "invalid_identity");
    assert!(refused.to_string().contains("expired"), "{refused}");

    // A token made with another key, or a bare customer id with it, gets nothing.
    let forged = customer_identity_token(
        b"not the customer secret, but just as long",
        &IdentityClaims {
            sub: "cust-2".into(),
            exp: NOW_SECS + 3600,
            officer_id: None,
            name: None,
        },
    );
    let refused = s.customer_login_with_identity(&forged).await.unwrap_err();
    assert_eq!(refused.code(), "invalid_identity");
    assert_eq!(
        s.queue(&Actor::Admin).await.unwrap().len(),
        1,
        "cust-2 got a chat"
    );
}

#[tokio::test]
async fn on_a_secured_service_only_a_verified_claim_names_the_officer() {
    let d = desk(true).await;
    let s = &d.service;
    // With a valid signature, the body's officer is ignored: the chat waits in the queue.
    let signed = s
        .customer_login(by_id("c1", Some("amy"), true))
        .await
        .unwrap();
    assert_eq!(signed.chat.status, ChatStatus::Pending);
    assert_eq!(signed.chat.assigned_officer_id, None);
    // The host application's token routes the chat.
    let routed = s
        .customer_login_with_identity(&token("c2", 60, Some("amy"), None))
        .await
        .unwrap();
    assert_eq!(
        routed.chat.assigned_officer_id.as_ref().map(|o| o.as_str()),
        Some("amy")
    );
    let queue: Vec<_> = s.queue(&Actor::Admin).await.unwrap();
    assert_eq!(queue, vec![signed.chat]);
}

#[tokio::test]
async fn an_unknown_officer_is_answered_like_no_officer() {
    for secured in [false, true] {
        let d = desk(secured).await;
        let s = &d.service;
        let amy = Actor::Officer(OfficerId::parse("amy").unwrap());
        let mut queue = s.watch_queue(&amy).unwrap();
        let login = |customer: &'static str, officer: Option<&'static str>| {
            let s = s.clone();
            async move {
                if secured {
                    s.customer_login_with_identity(&token(customer, 60, officer, None))
                        .await
                } else {
                    s.customer_login(by_id(customer, officer, false)).await
                }
            }
        };
        let ghost = login("c1", Some("ghost")).await.unwrap();
        let nobody = login("c2", None).await.unwrap();
        for chat in [&ghost.chat, &nobody.chat] {
            assert_eq!(chat.status, ChatStatus::Pending, "secured: {secured}");
            assert_eq!(chat.assigned_officer_id, None);
        }
        let shape = |v: &chatcore::CustomerSession| {
            let mut v = serde_json::to_value(v).unwrap();
            for volatile in ["token", "expiresAt"] {
                v[volatile] = serde_json::Value::Null;
            }
            for volatile in ["id", "customerId", "createdAt", "queuePosition"] {
                v["chat"][volatile] = serde_json::Value::Null;
            }
            v
        };
        assert_eq!(shape(&ghost), shape(&nobody), "the answers tell them apart");
        // Both wait in the queue, announced alike: started, then in the queue.
        for answered in [&ghost.chat, &nobody.chat] {
            // Events carry the chat as stored; only answers place it in the queue.
            assert!(answered.queue_position.is_some());
            let expected = &chatcore::Chat {
                queue_position: None,
                ..answered.clone()
            };
            let started = queue.recv().await.unwrap();
            assert_eq!(
                started.event(),
                &Event::ChatUpdated {
                    chat: expected.clone(),
                    change: chatcore::ChatChange::Created,
                }
            );
            let queued = queue.recv().await.unwrap();
            assert_eq!(
                queued.event(),
                &Event::QueueChatCreated {
                    chat: expected.clone()
                }
            );
        }
    }
}

#[tokio::test]
async fn identity_tokens_need_a_secret_and_a_name_fit_to_show() {
    let open = desk(false).await;
    let refused = open
        .service
        .customer_login_with_identity(&token("c1", 60, None, None))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid_identity");

    let d = desk(true).await;
    let s = &d.service;
    for name in ["Ada\u{202E}ecalovel", "Ada\nLovelace", &"A".repeat(101)] {
        let refused = s
            .customer_login_with_identity(&token("c1", 60, None, Some(name)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "invalid_field", "{name:?}");
        assert!(refused.to_string().starts_with("name:"), "{refused}");
    }
    let bad_sub = s
        .customer_login_with_identity(&token("not an id", 60, None, None))
        .await
        .unwrap_err();
    assert_eq!(bad_sub.code(), "invalid_id");
    assert!(
        s.queue(&Actor::Admin).await.unwrap().is_empty(),
        "a refusal made a chat"
    );

    // A blank name is none; a later token's name replaces an earlier one.
    let plain = s
        .customer_login_with_identity(&token("c1", 60, None, Some(" \u{200B} ")))
        .await
        .unwrap();
    assert_eq!(plain.chat.customer_name, None);
    let named = s
        .customer_login_with_identity(&token("c1", 60, None, Some("Ada King")))
        .await
        .unwrap();
    assert_eq!(
        (named.chat.id, named.chat.customer_name.as_deref()),
        (plain.chat.id, Some("Ada King"))
    );
}
