//! Property-based fuzzing through the real handlers (stable Rust, so CI can run it):
//! random WebSocket frame sequences, and random bodies and queries on each real endpoint
//! with valid credentials. No input may panic the server, yield a 5xx, break the protocol
//! or change anything when it is refused.
//!
//! CI runs a few hundred cases per target; `PROPTEST_CASES=20000 cargo test -p chat-http
//! --test api fuzz` runs longer (docs/RELIABILITY.md).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Options, PATIENCE, TestApp, WsClient, spawn_app};

/// `default_cases` cases, or `PROPTEST_CASES` when set (to fuzz longer).
pub(crate) fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A secured server with officer alice, customer c1, and c1's chat claimed by alice, with
/// one message: (app, alice's token, c1's token, chat id).
async fn one_claimed_chat() -> (TestApp, String, String, String) {
    let app = spawn_app(Options::secured()).await;
    let officer = app.new_officer("alice").await;
    let (customer, chat) = app.new_customer("c1").await;
    app.claim(Some(&officer), "alice", &chat).await.expect(200);
    app.say(&customer, &chat, "hello").await;
    (app, officer, customer, chat)
}

/// A JSON value of any shape, biased towards what the handlers look at.
fn json_value(real: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,30}".prop_map(Value::from),
        proptest::sample::select(real).prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{0,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Client frames: mostly contract-shaped objects with random or real field values, plus
/// raw text, binary, pings and oversized frames.
fn frame(real: Vec<String>) -> impl Strategy<Value = Message> {
    let kind = prop_oneof![
        Just("auth"),
        Just("join_chat"),
        Just("leave_chat"),
        Just("join_officers"),
        Just("typing"),
        Just("read"),
        Just("send_message"),
        Just("ready"),
        Just(""),
        Just("JOIN_CHAT"),
    ];
    let field = prop_oneof![
        Just("type"),
        Just("token"),
        Just("chatId"),
        Just("afterSeq"),
        Just("content"),
        Just("seq"),
        Just("zzz"),
    ];
    let shaped = (
        kind,
        prop::collection::btree_map(field, json_value(real.clone()), 0..4),
    )
        .prop_map(|(kind, fields)| {
            let mut object: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            object
                .entry("type".to_string())
                .or_insert_with(|| Value::from(kind));
            Message::text(Value::Object(object).to_string())
        });
    prop_oneof![
        6 => shaped,
        1 => ".{0,100}".prop_map(Message::text),
        1 => json_value(real).prop_map(|v| Message::text(v.to_string())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Message::binary),
        1 => prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| Message::Ping(b.into())),
        1 => prop::collection::vec(any::<u8>(), 0..16).prop_map(|b| Message::Pong(b.into())),
        1 => (70_000usize..80_000).prop_map(|n| Message::text("x".repeat(n))),
    ]
}

/// The frame types the server may send, and their required fields.
fn check_server_frame(frame: &Value) -> Result<(), TestCaseError> {
    let kind = frame["type"].as_str().unwrap_or_default();
    let ok = match kind {
        "ready" => frame["role"].is_string() && frame["subject"].is_string(),
        "joined" | "left" => frame["room"].is_string(),
        "error" => frame["code"].is_string() && frame["message"].is_string(),
        "new_message" => frame["message"]["seq"].is_u64(),
        "queue_chat_created" | "queue_chat_claimed" | "chat_assigned" | "chat_unassigned"
        | "chat_updated" => frame["chat"]["id"].is_string(),
        "officer_updated" => {
            frame["officer"]["id"].is_string() && frame["officer"]["connected"].is_boolean()
        }
        "queue_position" => frame["chatId"].is_string() && frame["position"].is_u64(),
        "read" => frame["chatId"].is_string() && frame["seq"].is_u64(),
        "typing" => frame["chatId"].is_string() && frame["expiresInMs"].is_u64(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "not a contract frame: {frame}"
        )))
    }
}

/// What happened to a connection after a sequence of frames.
enum Outcome {
    Open(Vec<Value>),
    Closed(u16),
}

/// Reads what the server sends. Without `expect`, until a short quiet period; with it,
/// until a frame it accepts arrives (or the connection closes, or [`PATIENCE`] passes), so
/// that a slow server under load is not mistaken for a silent one.
async fn drain(
    ws: &mut WsClient,
    expect: Option<&dyn Fn(&Value) -> bool>,
) -> Result<Outcome, TestCaseError> {
    let wait = if expect.is_some() {
        PATIENCE
    } else {
        Duration::from_millis(150)
    };
    let mut frames = Vec::new();
    loop {
        match tokio::time::timeout(wait, ws.stream.next()).await {
            Err(_) => return Ok(Outcome::Open(frames)),
            Ok(Some(Ok(Message::Text(text)))) => {
                let value: Value = serde_json::from_str(text.as_str())
                    .map_err(|e| TestCaseError::fail(format!("non-JSON frame {text}: {e}")))?;
                check_server_frame(&value)?;
                let done = expect.is_some_and(|expect| expect(&value));
                frames.push(value);
                if done {
                    return Ok(Outcome::Open(frames));
                }
            }
            Ok(Some(Ok(Message::Close(close)))) => {
                return Ok(Outcome::Closed(
                    close.map(|c| u16::from(c.code)).unwrap_or(1005),
                ));
            }
            Ok(Some(Ok(Message::Binary(_)))) => {
                return Err(TestCaseError::fail("the server sent a binary frame"));
            }
            Ok(Some(Ok(_))) => {}
            // The server dropped the connection after an oversized frame (the library's
            // size check) is the only drop allowed: reported as 1009 below.
            Ok(Some(Err(_)) | None) => return Ok(Outcome::Closed(0)),
        }
    }
}

#[test]
fn random_websocket_frames_never_break_the_protocol() {
    let runtime = runtime();
    let (app, officer, customer, chat) = runtime.block_on(one_claimed_chat());
    let real = vec![
        officer.clone(),
        customer.clone(),
        chat.clone(),
        "alice".to_string(),
    ];
    let strategy = (
        prop::option::of(prop_oneof![Just(officer.clone()), Just(customer.clone())]),
        prop::collection::vec(frame(real), 1..6),
    );
    let mut runner = TestRunner::new(config(150));
    runner
        .run(&strategy, |(token, frames)| {
            runtime.block_on(one_ws_case(&app, token, frames, &chat, &officer))
        })
        .unwrap();
    runtime.block_on(async {
        assert_eq!(app.health().await.status, 200, "the server survived");
        app.say(&customer, &chat, "still served").await;
    });
    runtime.block_on(app.stop());
}

async fn one_ws_case(
    app: &TestApp,
    token: Option<String>,
    frames: Vec<Message>,
    chat: &str,
    officer: &str,
) -> Result<(), TestCaseError> {
    let authenticated = token.is_some();
    let mut ws = match &token {
        Some(token) => app.ws_auth(token).await,
        None => app.ws_connect().await,
    };
    let oversized = frames
        .iter()
        .any(|f| matches!(f, Message::Text(t) if t.len() > 65_536));
    // An unauthenticated socket's first data frame decides: `ready`, or a close.
    let decides = !authenticated
        && frames
            .iter()
            .any(|f| matches!(f, Message::Text(_) | Message::Binary(_)));
    for frame in frames {
        if ws.stream.send(frame).await.is_err() {
            break;
        }
    }
    let is_ready = |f: &Value| f["type"] == "ready";
    // After an oversized frame the connection must end: wait for it.
    let never = |_: &Value| false;
    let expect: Option<&dyn Fn(&Value) -> bool> = if oversized {
        Some(&never)
    } else if decides {
        Some(&is_ready)
    } else {
        None
    };
    let frames = match drain(&mut ws, expect).await? {
        Outcome::Open(frames) => frames,
        Outcome::Closed(code) => {
            // Allowed: an unauthenticated socket refused (4401), or a frame over the
            // size limit ending the connection (1009, or a drop).
            let allowed =
                (!authenticated && code == 4401) || (oversized && matches!(code, 1009 | 0));
            return if allowed {
                Ok(())
            } else {
                Err(TestCaseError::fail(format!(
                    "closed with {code} (authenticated {authenticated}, oversized {oversized})"
                )))
            };
        }
    };
    if oversized {
        return Err(TestCaseError::fail(
            "a frame over the size limit did not end the connection",
        ));
    }
    // Still open. A socket never authenticated (only pings and pongs were sent) must
    // still accept its auth frame.
    if !authenticated && !frames.iter().any(|f| f["type"] == "ready") {
        send(&mut ws, json!({ "type": "auth", "token": officer })).await?;
        match drain(&mut ws, Some(&is_ready)).await? {
            Outcome::Open(frames) if frames.iter().any(|f| f["type"] == "ready") => {}
            _ => return Err(TestCaseError::fail("a valid auth after fuzz was refused")),
        }
    }
    // It must still serve a valid request.
    send(&mut ws, json!({ "type": "join_chat", "chatId": chat })).await?;
    let joined = json!({ "type": "joined", "room": format!("chat:{chat}") });
    match drain(&mut ws, Some(&|f: &Value| *f == joined)).await? {
        Outcome::Open(frames) if frames.contains(&joined) => {}
        Outcome::Open(frames) => {
            return Err(TestCaseError::fail(format!(
                "no joined reply after fuzz: {frames:?}"
            )));
        }
        Outcome::Closed(code) => {
            return Err(TestCaseError::fail(format!(
                "closed with {code} after a valid frame"
            )));
        }
    }
    Ok(())
}

async fn send(ws: &mut WsClient, value: Value) -> Result<(), TestCaseError> {
    ws.stream
        .send(Message::text(value.to_string()))
        .await
        .map_err(|e| TestCaseError::fail(format!("send after fuzz: {e}")))
}

/// One request aimed at a real endpoint with real credentials and a random body or query.
#[derive(Debug, Clone)]
enum Aimed {
    Send(Value),
    CustomerLogin(Value),
    CreateOfficer(Value),
    OfficerLogin(Value),
    Claim(String, Value),
    Page(String),
}

fn aimed(real: Vec<String>) -> impl Strategy<Value = Aimed> {
    let field = |names: &'static [&'static str]| {
        prop::collection::btree_map(
            proptest::sample::select(names),
            json_value(real.clone()),
            0..5,
        )
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    };
    let query_value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9a-z%+.-]{0,6}",
    ];
    let query = prop::collection::vec(
        (
            proptest::sample::select(&["after", "before", "limit", "afterSeq", "x"][..]),
            query_value,
        ),
        0..4,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    });
    prop_oneof![
        field(&[
            "content",
            "clientMessageId",
            "senderType",
            "senderId",
            "zzz"
        ])
        .prop_map(Aimed::Send),
        field(&[
            "customerId",
            "officerId",
            "signature",
            "identityToken",
            "zzz"
        ])
        .prop_map(Aimed::CustomerLogin),
        field(&["id", "password", "displayName", "zzz"]).prop_map(Aimed::CreateOfficer),
        field(&["officerId", "password", "zzz"]).prop_map(Aimed::OfficerLogin),
        (
            prop_oneof![
                Just("alice".to_string()),
                Just("bob".to_string()),
                "[a-z%.]{0,6}"
            ],
            json_value(real.clone())
        )
            .prop_map(|(officer, body)| Aimed::Claim(officer, body)),
        query.prop_map(Aimed::Page),
    ]
}

/// Everything a refused request might have changed, read back through the API.
async fn snapshot(app: &TestApp, officer: &str, chat: &str) -> Value {
    let messages = app
        .messages(Some(officer), chat, "limit=1000")
        .await
        .expect(200);
    let queue = app.queue(Some(officer)).await.expect(200);
    let chats = app.officer_chats(Some(officer), "alice").await.expect(200);
    let pending = app.chat(Some(officer), chat).await.expect(200);
    json!([messages, queue, chats, pending])
}

#[test]
fn random_bodies_on_real_endpoints_change_nothing_when_refused() {
    let runtime = runtime();
    let (app, officer, customer, chat) = runtime.block_on(one_claimed_chat());
    let signature = app.signature("c2").unwrap_or_default();
    let real = vec![
        chat.clone(),
        "alice".to_string(),
        "c1".to_string(),
        "c2".to_string(),
        signature,
        "officer".to_string(),
        "customer".to_string(),
        "correct horse battery".to_string(),
    ];
    let tokens = [officer.clone(), customer.clone()];
    let strategy = (aimed(real), 0usize..2);
    let mut runner = TestRunner::new(config(300));
    runner
        .run(&strategy, |(request, who)| {
            runtime.block_on(async {
                let token = tokens[who].as_str();
                let before = snapshot(&app, &officer, &chat).await;
                let resp = match &request {
                    Aimed::Send(body) => app.send_message(Some(token), &chat, body.clone()).await,
                    Aimed::CustomerLogin(body) => app.customer_login(body.clone()).await,
                    Aimed::CreateOfficer(body) => {
                        app.create_officer(app.admin(), body.clone()).await
                    }
                    Aimed::OfficerLogin(body) => app.officer_login(body.clone()).await,
                    Aimed::Claim(officer, body) => {
                        app.request(
                            reqwest::Method::POST,
                            &format!("/api/officers/{officer}/claim/{chat}"),
                            Some(token),
                            Some(body),
                        )
                        .await
                    }
                    Aimed::Page(query) => app.messages(Some(token), &chat, query).await,
                };
                let status = resp.status;
                if status >= 500 {
                    return Err(TestCaseError::fail(format!("{request:?} -> {status}")));
                }
                if status >= 400 {
                    let error = &resp.body["error"];
                    if !(error["code"].is_string() && error["message"].is_string()) {
                        return Err(TestCaseError::fail(format!(
                            "{request:?} -> {status} without the error shape: {}",
                            resp.body
                        )));
                    }
                    let after = snapshot(&app, &officer, &chat).await;
                    if after != before {
                        return Err(TestCaseError::fail(format!(
                            "{request:?} -> {status} changed state"
                        )));
                    }
                }
                Ok(())
            })
        })
        .unwrap();
    runtime.block_on(app.stop());
}
