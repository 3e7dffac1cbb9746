//! Property tests (fuzzing on stable Rust) of every validator a client's input meets:
//! officer and customer ids, chat and message ids, message content, idempotency keys,
//! claimed senders, names shown to others (an officer's display name, the `name` of a
//! customer's identity token) and passwords. None may panic; each accepts exactly what
//! its rule says; a refused request changes nothing.
//!
//! CI runs the default number of cases; `PROPTEST_CASES=100000 cargo test -p chatcore
//! --test validators` runs longer (docs/RELIABILITY.md).

use std::sync::Arc;

use chatcore::{
    Actor, ChatId, ChatService, CustomerId, CustomerLogin, ErrorKind, IdentityClaims, LocalBus,
    MemoryStore, MessageId, MessagePage, NewOfficer, OfficerId, SendMessage, ServiceConfig,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The contract's rule for officer and customer ids, written independently of the code.
fn is_name_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
}

/// Strings near the rule's edges as well as arbitrary Unicode.
fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._-]{0,70}",
        "[A-Za-z0-9._ /\\\\%\u{0}-\u{1f}é🙂-]{0,70}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn officer_and_customer_ids_accept_exactly_the_rule(s in id_like()) {
        let officer = OfficerId::parse(s.clone());
        let customer = CustomerId::parse(s.clone());
        prop_assert_eq!(officer.is_ok(), is_name_id(&s));
        prop_assert_eq!(customer.is_ok(), is_name_id(&s));
        match officer {
            Ok(id) => prop_assert_eq!(id.as_str(), s.as_str()),
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::Unprocessable);
                prop_assert_eq!(e.code(), "invalid_id");
            }
        }
    }

    #[test]
    fn chat_and_message_ids_parse_only_uuids_and_round_trip(
        s in prop_oneof![
            "[0-9a-f-]{0,40}",
            any::<[u8; 16]>().prop_map(|b| uuid::Uuid::from_bytes(b).to_string()),
            any::<String>(),
        ]
    ) {
        let expected = uuid::Uuid::parse_str(&s).ok();
        let chat = ChatId::parse(&s);
        let message = MessageId::parse(&s);
        prop_assert_eq!(chat.as_ref().ok().map(|c| c.as_uuid()), expected);
        prop_assert_eq!(message.as_ref().ok().map(|m| m.as_uuid()), expected);
        if let Ok(chat) = chat {
            // Display gives the canonical form, which parses back to the same id.
            prop_assert_eq!(ChatId::parse(&chat.to_string()).unwrap(), chat);
        } else {
            prop_assert_eq!(chat.unwrap_err().code(), "invalid_id");
        }
    }
}

/// One chat with a customer and its officer, on the in-memory store.
struct Room {
    runtime: tokio::runtime::Runtime,
    service: ChatService,
    chat: ChatId,
    customer: Actor,
    officer: Actor,
}

const MAX_CHARS: usize = 50;

fn room() -> Room {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = ServiceConfig::default();
    config.max_message_chars = MAX_CHARS;
    let service = ChatService::new(
        Arc::new(MemoryStore::new()),
        Arc::new(LocalBus::new()),
        config,
    );
    let (chat, customer, officer) = runtime.block_on(async {
        let alice = OfficerId::parse("alice").unwrap();
        service
            .create_officer(
                &Actor::Anonymous,
                NewOfficer {
                    id: alice.clone(),
                    password: None,
                    display_name: None,
                    capacity: None,
                },
            )
            .await
            .unwrap();
        let login = service
            .customer_login(CustomerLogin {
                customer_id: CustomerId::parse("c1").unwrap(),
                officer_id: Some(alice.clone()),
                signature: None,
            })
            .await
            .unwrap();
        let customer = service.authenticate(&login.token).await.unwrap().actor;
        (login.chat.id, customer, Actor::Officer(alice))
    });
    Room {
        runtime,
        service,
        chat,
        customer,
        officer,
    }
}

impl Room {
    /// How many messages the chat holds, paging through all of them.
    fn count(&self) -> usize {
        self.runtime.block_on(async {
            let (mut count, mut after) = (0, 0);
            loop {
                let page = MessagePage {
                    after: Some(after),
                    before: None,
                    limit: Some(1000),
                };
                let messages = self
                    .service
                    .messages(&self.officer, self.chat, page)
                    .await
                    .unwrap();
                let Some(last) = messages.last() else {
                    return count;
                };
                count += messages.len();
                after = last.seq;
            }
        })
    }
}

/// The rule for "shows nothing", written from Unicode's lists rather than from the code:
/// White_Space, the control characters (Cc), Default_Ignorable_Code_Point, and the blank
/// Braille pattern (U+2800), which renders as nothing.
fn shows_nothing(c: char) -> bool {
    const DEFAULT_IGNORABLE: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x034F, 0x034F),
        (0x061C, 0x061C),
        (0x115F, 0x1160),
        (0x17B4, 0x17B5),
        (0x180B, 0x180F),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x206F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF0, 0xFFF8),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0000, 0xE0FFF),
    ];
    let cp = u32::from(c);
    c.is_whitespace()
        || c.is_control()
        || cp == 0x2800
        || DEFAULT_IGNORABLE
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

/// Characters a shown name may not hold: controls (Cc), line and paragraph separators,
/// and the bidirectional formatting characters (ALM, LRM, RLM, LRE..RLO, LRI..PDI).
fn disguises(c: char) -> bool {
    c.is_control()
        || matches!(
            u32::from(c),
            0x061C | 0x200E | 0x200F | 0x2028 | 0x2029 | 0x202A..=0x202E | 0x2066..=0x2069
        )
}

/// The rule for a name shown to others: trimmed; nothing visible is no name; otherwise
/// no disguising character and at most 100 characters.
fn name_rule(raw: &str) -> Result<Option<String>, ()> {
    let name = raw.trim();
    if name.chars().all(shows_nothing) {
        Ok(None)
    } else if name.chars().any(disguises) || name.chars().count() > 100 {
        Err(())
    } else {
        Ok(Some(name.to_string()))
    }
}

/// Invisible and formatting characters, mixed with a little visible text.
fn sneaky() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t\r\n\u{a0}\u{2003}\u{3000}]{0,5}",
        "[\u{200b}-\u{200f}\u{2060}-\u{2064}\u{feff}\u{ad}\u{202a}-\u{202e}\u{2066}-\u{2069}\u{180e}\u{2800}\u{3164}\u{e0020}\u{fe0f} ]{0,6}",
        "[a\u{200b}\u{202e}\u{2066}\u{1} \n\u{2028}]{0,6}",
    ]
}

fn content() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), sneaky(), "[a-zé🙂 ]{40,60}", ".{0,80}",]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        sneaky(),
        "[ ]{0,2}[A-Za-zé' -]{1,20}[ ]{0,2}",
        "[a-z]{98,102}",
        ".{0,110}",
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A service on the in-memory store, open or with a customer secret.
fn service(secret: Option<&[u8]>) -> ChatService {
    let mut config = ServiceConfig::default();
    config.customer_secret = secret.map(<[u8]>::to_vec);
    ChatService::new(
        Arc::new(MemoryStore::new()),
        Arc::new(LocalBus::new()),
        config,
    )
}

#[test]
fn officer_display_names_accept_exactly_the_rule() {
    let (runtime, service) = (runtime(), service(None));
    let n = std::sync::atomic::AtomicU64::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&name(), |raw| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let id = OfficerId::parse(format!("o{n}")).unwrap();
            let created = runtime.block_on(service.create_officer(
                &Actor::Anonymous,
                NewOfficer {
                    id: id.clone(),
                    password: None,
                    display_name: Some(raw.clone()),
                    capacity: None,
                },
            ));
            let stored = runtime.block_on(service.officers(&Actor::Admin)).unwrap();
            let found = stored.iter().find(|o| o.id == id);
            match (name_rule(&raw), created) {
                (Ok(expected), Ok(officer)) => {
                    prop_assert_eq!(&officer.display_name, &expected);
                    prop_assert_eq!(found.map(|o| &o.display_name), Some(&expected));
                }
                (Err(()), Err(e)) => {
                    prop_assert_eq!(e.code(), "invalid_field");
                    prop_assert!(e.to_string().starts_with("displayName:"), "{}", e);
                    prop_assert!(found.is_none(), "a refused officer was stored");
                }
                (rule, got) => prop_assert!(false, "{raw:?}: rule {rule:?}, got {got:?}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn identity_token_names_accept_exactly_the_rule() {
    const SECRET: &[u8] = b"validators-secret-0123456789abcdef";
    let runtime = runtime();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&name(), |raw| {
            // A fresh service each time: the queue then holds this case's chat or none.
            let service = service(Some(SECRET));
            let customer = "c1".to_string();
            let token = chatcore::customer_identity_token(
                SECRET,
                &IdentityClaims {
                    sub: customer.clone(),
                    exp: u64::MAX / 2000,
                    officer_id: None,
                    name: Some(raw.clone()),
                },
            );
            let login = runtime.block_on(service.customer_login_with_identity(&token));
            let chats = runtime.block_on(service.queue(&Actor::Admin)).unwrap();
            let found = chats.iter().find(|c| c.customer_id.as_str() == customer);
            match (name_rule(&raw), login) {
                (Ok(expected), Ok(login)) => {
                    prop_assert_eq!(&login.chat.customer_name, &expected);
                    prop_assert_eq!(found.map(|c| &c.customer_name), Some(&expected));
                }
                (Err(()), Err(e)) => {
                    prop_assert_eq!(e.code(), "invalid_field");
                    prop_assert!(e.to_string().starts_with("name:"), "{}", e);
                    prop_assert!(found.is_none(), "a refused login made a chat");
                }
                (rule, got) => prop_assert!(false, "{raw:?}: rule {rule:?}, got {got:?}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn passwords_accept_exactly_the_rule() {
    // Each accepted password is hashed with argon2 (slow without optimizations): fewer
    // cases, drawn mostly near the rule's edges.
    let (runtime, service) = (runtime(), service(None));
    let n = std::sync::atomic::AtomicU64::new(0);
    let cases = Config {
        cases: config().cases.min(48),
        ..config()
    };
    let strategy = prop_oneof![
        "[ \t\r\n\u{a0}\u{2003}\u{3000}]{0,12}",
        "[a-z ]{6,10}",
        ".{0,10}",
    ];
    let mut runner = proptest::test_runner::TestRunner::new(cases);
    runner
        .run(&strategy, |password| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ok = password.chars().count() >= 8 && !password.chars().all(char::is_whitespace);
            let created = runtime.block_on(service.create_officer(
                &Actor::Anonymous,
                NewOfficer {
                    id: OfficerId::parse(format!("p{n}")).unwrap(),
                    password: Some(password.clone()),
                    display_name: None,
                    capacity: None,
                },
            ));
            match created {
                Ok(_) => prop_assert!(ok, "{password:?} accepted"),
                Err(e) => {
                    prop_assert!(!ok, "{password:?} refused: {e}");
                    prop_assert_eq!(e.code(), "invalid_field");
                    prop_assert!(e.to_string().starts_with("password:"), "{}", e);
                }
            }
            Ok(())
        })
        .unwrap();
}

fn claimed_sender() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    let kind = prop_oneof![
        Just(None),
        Just(Some("customer".to_string())),
        Just(Some("officer".to_string())),
        any::<String>().prop_map(Some),
    ];
    let id = prop_oneof![
        Just(None),
        Just(Some("c1".to_string())),
        Just(Some("alice".to_string())),
        id_like().prop_map(Some),
    ];
    (kind, id)
}

#[test]
fn message_validation_accepts_exactly_the_rule_and_a_refusal_changes_nothing() {
    let room = room();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let strategy = (
        content(),
        prop::option::of(prop_oneof![".{0,3}", "[a-z]{120,130}", any::<String>()]),
        claimed_sender(),
        any::<bool>(),
    );
    runner
        .run(
            &strategy,
            |(content, key, (claimed_type, claimed_id), as_customer)| {
                let actor = if as_customer {
                    &room.customer
                } else {
                    &room.officer
                };
                let (own_type, own_id) = if as_customer {
                    ("customer", "c1")
                } else {
                    ("officer", "alice")
                };
                let sender_ok = claimed_type.as_deref().is_none_or(|t| t == own_type)
                    && claimed_id.as_deref().is_none_or(|i| i == own_id);
                let content_ok =
                    !content.chars().all(shows_nothing) && content.chars().count() <= MAX_CHARS;
                let key_ok = key.as_ref().is_none_or(|k| (1..=128).contains(&k.len()));
                let before = room.count();
                let request = SendMessage {
                    content: content.clone(),
                    client_message_id: key.clone(),
                    claimed_sender_type: claimed_type,
                    claimed_sender_id: claimed_id,
                };
                let result = room
                    .runtime
                    .block_on(room.service.send_message(actor, room.chat, request));
                let after = room.count();
                match result {
                    Ok(sent) => {
                        prop_assert!(sender_ok && content_ok && key_ok);
                        if sent.created {
                            prop_assert_eq!(&sent.message.content, &content);
                            prop_assert_eq!(after, before + 1);
                        } else {
                            // A repeated idempotency key returns the original and stores
                            // nothing.
                            prop_assert_eq!(sent.message.client_message_id, key);
                            prop_assert_eq!(after, before);
                        }
                    }
                    Err(e) => {
                        prop_assert!(!(sender_ok && content_ok && key_ok), "refused: {e}");
                        if sender_ok && key_ok && content.chars().all(shows_nothing) {
                            prop_assert_eq!(e.code(), "empty_content");
                        }
                        prop_assert!(
                            matches!(
                                e.kind(),
                                ErrorKind::Forbidden
                                    | ErrorKind::Unprocessable
                                    | ErrorKind::TooLarge
                            ),
                            "unexpected kind for {e}"
                        );
                        prop_assert_eq!(after, before, "a refused message changed nothing");
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}
