//! Property tests (fuzzing on stable Rust) of every validator a client's input meets:
//! officer and customer ids, chat and message ids, message content, idempotency keys and
//! claimed senders. None may panic; each accepts exactly what its rule says; a refused
//! message changes nothing.
//!
//! CI runs the default number of cases; `PROPTEST_CASES=100000 cargo test -p chatcore
//! --test validators` runs longer (docs/RELIABILITY.md).

use std::sync::Arc;

use chatcore::{
    Actor, ChatId, ChatService, CustomerId, CustomerLogin, ErrorKind, LocalBus, MemoryStore,
    MessageId, MessagePage, NewOfficer, OfficerId, SendMessage, ServiceConfig,
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

fn content() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t\r\n\u{a0}\u{2003}]{0,5}",
        "[a-zé🙂 ]{40,60}",
        ".{0,80}",
    ]
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
                let content_ok = !content.trim().is_empty() && content.chars().count() <= MAX_CHARS;
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
