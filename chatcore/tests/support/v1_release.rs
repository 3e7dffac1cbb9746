//! Test support shared by the upgrade tests of chatcore (SQLite) and chat-postgres
//! (included with `#[path]`): what the previous release itself reported about the data
//! in its v1-release fixtures (`chatcore/tests/fixtures/v1-release.json`, written by
//! `make-v1-release.sh`), and the checks that a service opened on an upgraded copy still
//! holds every bit of it and keeps working on it.
//!
//! Fields are compared as the wire JSON has them, and only those the old release
//! reported: fields added later are ignored, a field it reported must come back equal
//! (an absent optional field counts as `null`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chatcore::{
    Actor, ChatId, ChatService, ChatsFilter, CustomerId, CustomerLogin, Error, ManualClock,
    MessagePage, OfficerId, SendMessage, ServiceConfig, Timestamp,
};
use serde_json::Value;

/// The fixtures' JSON, one backend's section of it.
pub(crate) struct Fixture {
    root: Value,
    data: Value,
}

/// The path of a file in `chatcore/tests/fixtures`, from any crate of the workspace.
pub(crate) fn fixture_path(crate_dir: &str, name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(crate_dir);
    let chatcore = if dir.ends_with("chatcore") {
        dir.to_path_buf()
    } else {
        dir.join("../chatcore")
    };
    chatcore.join("tests/fixtures").join(name)
}

impl Fixture {
    /// The section `backend` (`sqlite` or `postgres`) of v1-release.json.
    pub(crate) fn load(crate_dir: &str, backend: &str) -> Self {
        let path = fixture_path(crate_dir, "v1-release.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let root: Value = serde_json::from_str(&text).expect("v1-release.json is JSON");
        let data = root[backend].clone();
        assert!(data.is_object(), "v1-release.json has no section {backend}");
        Self { root, data }
    }

    fn list(&self, key: &str) -> &Vec<Value> {
        self.data[key]
            .as_array()
            .unwrap_or_else(|| panic!("v1-release.json: {key} is not a list"))
    }

    fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
        value[key]
            .as_str()
            .unwrap_or_else(|| panic!("v1-release.json: {key} of {value} is not a string"))
    }

    /// The schema version the old release left the database at.
    pub(crate) fn old_schema_version(&self) -> u64 {
        self.data["schemaVersion"]
            .as_u64()
            .expect("v1-release.json: schemaVersion")
    }

    /// A service configured as the old server was (admin token, customer secret), on a
    /// clock standing a second after the data was made, so that its sessions are live.
    pub(crate) fn config(&self) -> ServiceConfig {
        let made_at: Timestamp =
            serde_json::from_value(self.data["madeAt"].clone()).expect("madeAt is a time");
        let mut config = ServiceConfig::default();
        config.admin_token = Some(Self::str_at(&self.root, "adminToken").to_owned());
        config.customer_secret = Some(
            Self::str_at(&self.root, "customerSecret")
                .as_bytes()
                .to_vec(),
        );
        config.clock = Arc::new(ManualClock::new(made_at.plus(Duration::from_secs(1))));
        config
    }
}

/// Asserts that every field of `expected` (an object) is in `actual` with the same value;
/// `actual` may hold more.
fn assert_fields(what: &str, expected: &Value, actual: &Value) {
    let expected = expected.as_object().expect("an object");
    for (key, want) in expected {
        let got = actual.get(key).unwrap_or(&Value::Null);
        assert_eq!(got, want, "{what}: field {key} differs (now {actual})");
    }
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializable")
}

/// Every check, in an order that reads everything before anything is written.
pub(crate) async fn check_all(service: &ChatService, fixture: &Fixture) {
    check_officers(service, fixture).await;
    check_chats(service, fixture).await;
    check_messages(service, fixture).await;
    check_sessions(service, fixture).await;
    check_logins(service, fixture).await;
    check_writes(service, fixture).await;
}

/// Every officer, as the old release listed them (display name, disabled, created).
pub(crate) async fn check_officers(service: &ChatService, fixture: &Fixture) {
    let now: BTreeMap<String, Value> = service
        .officers(&Actor::Admin)
        .await
        .expect("list officers")
        .iter()
        .map(|o| (o.id.as_str().to_owned(), json(o)))
        .collect();
    let expected = fixture.list("officers");
    assert_eq!(
        now.keys().cloned().collect::<BTreeSet<_>>(),
        expected
            .iter()
            .map(|o| Fixture::str_at(o, "id").to_owned())
            .collect::<BTreeSet<_>>(),
        "the officers' ids"
    );
    for want in expected {
        let id = Fixture::str_at(want, "id");
        assert_fields(&format!("officer {id}"), want, &now[id]);
    }
    assert!(
        expected.iter().any(|o| o["disabled"] == true),
        "the fixture has a disabled officer"
    );
}

fn chat_id(value: &Value, key: &str) -> ChatId {
    ChatId::parse(Fixture::str_at(value, key)).expect("a chat id")
}

/// Every chat, read one by one as the admin, and the queue and officers' lists hold
/// exactly them.
pub(crate) async fn check_chats(service: &ChatService, fixture: &Fixture) {
    let expected = fixture.list("chats");
    for want in expected {
        let id = chat_id(want, "id");
        let chat = service
            .chat(&Actor::Admin, id)
            .await
            .unwrap_or_else(|e| panic!("chat {id}: {e}"));
        assert_fields(&format!("chat {id}"), want, &json(&chat));
    }
    let mut listed: Vec<String> = service
        .queue(&Actor::Admin)
        .await
        .expect("queue")
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    for officer in fixture.list("officers") {
        let id = OfficerId::parse(Fixture::str_at(officer, "id")).unwrap();
        let chats = service
            .officer_chats(&Actor::Admin, &id, ChatsFilter::All)
            .await
            .expect("officer's chats");
        listed.extend(chats.iter().map(|c| c.id.to_string()));
    }
    listed.sort();
    let mut want: Vec<String> = expected
        .iter()
        .map(|c| Fixture::str_at(c, "id").to_owned())
        .collect();
    want.sort();
    assert_eq!(listed, want, "the queue and the officers' chats");
}

/// Every message of every chat, paged through as the admin two at a time.
pub(crate) async fn check_messages(service: &ChatService, fixture: &Fixture) {
    let mut expected: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for chat in fixture.list("chats") {
        expected.insert(Fixture::str_at(chat, "id").to_owned(), Vec::new());
    }
    for message in fixture.list("messages") {
        expected
            .get_mut(Fixture::str_at(message, "chatId"))
            .expect("a message of a listed chat")
            .push(message);
    }
    assert!(
        fixture.list("messages").iter().any(|m| m["content"]
            .as_str()
            .is_some_and(|c| c.chars().count() == 4000)),
        "the fixture has a message of 4,000 characters"
    );
    for (id, want) in expected {
        let chat = ChatId::parse(&id).unwrap();
        let mut got = Vec::new();
        let mut after = 0;
        loop {
            let page = service
                .messages(
                    &Actor::Admin,
                    chat,
                    MessagePage {
                        after: Some(after),
                        before: None,
                        limit: Some(2),
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("messages of {id}: {e}"));
            let Some(last) = page.last() else { break };
            after = last.seq;
            got.extend(page);
        }
        assert_eq!(
            got.len(),
            want.len(),
            "chat {id}: number of messages (now {:?})",
            got.iter().map(|m| (m.seq, &m.content)).collect::<Vec<_>>()
        );
        for (message, want) in got.iter().zip(want) {
            assert_fields(
                &format!("chat {id} message {}", message.seq),
                want,
                &json(message),
            );
        }
        // What the upgrade derived: the newest entry's seq, the last change (the newest
        // message, or the creation of a chat without one), and no chat resolved.
        let upgraded = service.chat(&Actor::Admin, chat).await.unwrap();
        assert_eq!(upgraded.last_seq, got.len() as u64, "chat {id}: lastSeq");
        let newest = got.last().map_or(upgraded.created_at, |m| m.created_at);
        assert_eq!(upgraded.updated_at, newest, "chat {id}: updatedAt");
        assert_eq!(upgraded.resolved_at, None, "chat {id}: resolvedAt");
        assert!(upgraded.status.is_open(), "chat {id}: status");
    }
}

/// Sessions made by the old release still authenticate as the same identity until the
/// same expiry; revoked ones (logged out, an officer disabled) stay revoked.
pub(crate) async fn check_sessions(service: &ChatService, fixture: &Fixture) {
    let sessions = fixture.list("sessions");
    assert!(sessions.len() >= 2, "the fixture has live sessions");
    for session in sessions {
        let token = Fixture::str_at(session, "token");
        let subject = Fixture::str_at(session, "subject");
        let auth = service
            .authenticate(token)
            .await
            .unwrap_or_else(|e| panic!("a session of {subject}: {e}"));
        let expires: Timestamp = serde_json::from_value(session["expiresAt"].clone()).unwrap();
        assert_eq!(
            auth.expires_at,
            Some(expires),
            "expiry of {subject}'s session"
        );
        match (Fixture::str_at(session, "role"), &auth.actor) {
            ("officer", Actor::Officer(id)) => assert_eq!(id.as_str(), subject),
            (
                "customer",
                Actor::Customer {
                    customer_id,
                    chat_id: chat,
                },
            ) => {
                assert_eq!(customer_id.as_str(), subject);
                assert_eq!(*chat, chat_id(session, "chatId"), "{subject}'s chat");
            }
            (role, actor) => panic!("a {role} session of {subject} is now {actor:?}"),
        }
    }
    for token in fixture.list("revokedTokens") {
        let token = token.as_str().expect("a token");
        assert!(
            matches!(service.authenticate(token).await, Err(Error::Unauthorized)),
            "a revoked token works again"
        );
    }
}

/// Officers log in with their old passwords (a disabled one is refused as disabled, a
/// passwordless one not at all on a secured service); customers get their existing
/// chats back.
pub(crate) async fn check_logins(service: &ChatService, fixture: &Fixture) {
    let passwords = fixture.data["passwords"]
        .as_object()
        .expect("v1-release.json: passwords");
    for officer in fixture.list("officers") {
        let id = Fixture::str_at(officer, "id");
        let password = passwords.get(id).and_then(Value::as_str);
        let login = service.officer_login(id, password).await;
        match (password, officer["disabled"] == true) {
            (None, _) => assert!(
                matches!(login, Err(Error::InvalidCredentials)),
                "passwordless {id} on a secured service: {login:?}"
            ),
            (Some(_), true) => assert!(
                matches!(login, Err(Error::OfficerDisabled)),
                "disabled {id}: {login:?}"
            ),
            (Some(_), false) => {
                let session = login.unwrap_or_else(|e| panic!("{id} logs in: {e}"));
                assert_fields(&format!("officer {id}"), officer, &json(&session.officer));
                let auth = service.authenticate(&session.token).await.unwrap();
                assert!(matches!(&auth.actor, Actor::Officer(o) if o.as_str() == id));
            }
        }
        if password.is_some() {
            let wrong = service.officer_login(id, Some("not-the-password")).await;
            assert!(
                matches!(wrong, Err(Error::InvalidCredentials)),
                "{id} with a wrong password: {wrong:?}"
            );
        }
    }
    let secret = Fixture::str_at(&fixture.root, "customerSecret").as_bytes();
    for chat in fixture.list("chats") {
        let customer = Fixture::str_at(chat, "customerId");
        let session = service
            .customer_login(CustomerLogin {
                customer_id: CustomerId::parse(customer).unwrap(),
                officer_id: None,
                signature: Some(chatcore::customer_signature(secret, customer)),
            })
            .await
            .unwrap_or_else(|e| panic!("{customer} logs in: {e}"));
        assert!(!session.created, "{customer}'s login made a new chat");
        assert_fields(&format!("{customer}'s chat"), chat, &json(&session.chat));
        let auth = service.authenticate(&session.token).await.unwrap();
        assert!(
            matches!(&auth.actor, Actor::Customer { customer_id, chat_id: c }
                if customer_id.as_str() == customer && *c == chat_id(chat, "id")),
            "{customer}'s new token is {:?}",
            auth.actor
        );
    }
}

/// The upgraded data takes new writes where it left off: a chat's next message gets the
/// next seq, an old idempotency key still finds its message, a pending chat can be
/// claimed.
pub(crate) async fn check_writes(service: &ChatService, fixture: &Fixture) {
    let messages = fixture.list("messages");
    let last_seq = |chat: &str| {
        messages
            .iter()
            .filter(|m| m["chatId"] == chat)
            .filter_map(|m| m["seq"].as_u64())
            .max()
            .unwrap_or(0)
    };
    let sessions = fixture.list("sessions");
    for chat in fixture.list("chats") {
        let id = chat_id(chat, "id");
        let customer = Fixture::str_at(chat, "customerId");
        let actor = Actor::Customer {
            customer_id: CustomerId::parse(customer).unwrap(),
            chat_id: id,
        };
        // An old key of this customer's in this chat answers with the original message.
        if let Some(keyed) = messages.iter().find(|m| {
            m["chatId"] == chat["id"]
                && m["senderType"] == "customer"
                && m["clientMessageId"].is_string()
        }) {
            let again = service
                .send_message(
                    &actor,
                    id,
                    SendMessage::text(Fixture::str_at(keyed, "content"))
                        .with_client_message_id(Fixture::str_at(keyed, "clientMessageId")),
                )
                .await
                .unwrap_or_else(|e| panic!("{customer} resends a key: {e}"));
            assert!(
                !again.created,
                "{customer}'s old key stored a second message"
            );
            assert_fields("the original message", keyed, &json(&again.message));
        }
        let sent = service
            .send_message(&actor, id, SendMessage::text("after the upgrade"))
            .await
            .unwrap_or_else(|e| panic!("{customer} writes after the upgrade: {e}"));
        assert!(sent.created);
        assert!(
            sent.message.seq > last_seq(Fixture::str_at(chat, "id")),
            "{customer}'s new message has seq {} after {}",
            sent.message.seq,
            last_seq(Fixture::str_at(chat, "id"))
        );
    }
    // A pending chat is claimed by an officer whose session the old release made.
    let pending = fixture
        .list("chats")
        .iter()
        .find(|c| c["status"] == "pending")
        .expect("the fixture has a pending chat");
    let officer = sessions
        .iter()
        .find(|s| s["role"] == "officer")
        .expect("the fixture has an officer's session");
    let actor = service
        .authenticate(Fixture::str_at(officer, "token"))
        .await
        .unwrap()
        .actor;
    let id = OfficerId::parse(Fixture::str_at(officer, "subject")).unwrap();
    let claimed = service
        .claim(&actor, &id, chat_id(pending, "id"))
        .await
        .expect("claim an old pending chat");
    assert_eq!(claimed.assigned_officer_id.as_ref(), Some(&id));
}
