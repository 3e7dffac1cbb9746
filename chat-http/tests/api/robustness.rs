//! No client input may produce a 5xx: random methods, paths, query strings, headers and
//! bodies against the real server.

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use reqwest::Method;

use crate::helpers::{Options, spawn_app};

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
    ]
}

/// Paths shaped like the real ones, with random segments mixed in.
fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("api".to_string()),
        Just("officers".to_string()),
        Just("customers".to_string()),
        Just("chats".to_string()),
        Just("messages".to_string()),
        Just("claim".to_string()),
        Just("queue".to_string()),
        Just("login".to_string()),
        Just("CHAT".to_string()),
        Just("OFFICER".to_string()),
        "[a-zA-Z0-9._~-]{0,12}",
        "(%[0-9A-F]{2}){1,4}",
        Just("..".to_string()),
        Just("%00".to_string()),
    ];
    prop::collection::vec(segment, 0..6).prop_map(|s| format!("/{}", s.join("/")))
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("after"),
        Just("before"),
        Just("limit"),
        Just("x"),
        Just(""),
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[a-z0-9%+.-]{0,8}",
        Just(String::new()),
    ];
    prop::collection::vec((key, value), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        Just("id"),
        Just("password"),
        Just("displayName"),
        Just("officerId"),
        Just("customerId"),
        Just("signature"),
        Just("identityToken"),
        Just("content"),
        Just("clientMessageId"),
        Just("senderType"),
        Just("senderId"),
        Just("zzz"),
    ];
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,40}".prop_map(serde_json::Value::from),
        Just(serde_json::json!([1, "a"])),
        Just(serde_json::json!({ "nested": {} })),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        ".{0,200}".prop_map(String::into_bytes),
        prop::collection::btree_map(field, value, 0..6)
            .prop_map(|m| serde_json::to_vec(&m).unwrap()),
    ]
}

#[test]
fn random_requests_never_yield_a_5xx() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, tokens, chat) = runtime.block_on(async {
        let app = spawn_app(Options::secured()).await;
        let officer = app.new_officer("alice").await;
        let (customer, chat) = app.new_customer("c1").await;
        (app, vec![officer, customer], chat)
    });
    let mut runner = TestRunner::new(crate::fuzz::config(400));
    let strategy = (
        method(),
        path(),
        query(),
        body(),
        prop::option::of(0usize..3),
        any::<bool>(),
        any::<bool>(),
    );
    runner
        .run(
            &strategy,
            |(method, path, query, body, token, json_type, real_chat)| {
                // Sometimes aim at a real chat so deeper code paths run.
                let path = if real_chat {
                    path.replace("CHAT", &chat).replace("OFFICER", "alice")
                } else {
                    path
                };
                let url = format!("{}?{query}", app.url(&path));
                let token = token.map(|i| tokens.get(i).map(String::as_str).unwrap_or("garbage"));
                let status = runtime.block_on(async {
                    let mut req = app.client.request(method.clone(), &url).body(body.clone());
                    if json_type {
                        req = req.header("content-type", "application/json");
                    }
                    if let Some(token) = token {
                        req = req.bearer_auth(token);
                    }
                    match req.send().await {
                        Ok(resp) => Some(resp.status().as_u16()),
                        // A URL the client itself refuses never reached the server.
                        Err(e) if e.is_builder() => None,
                        Err(e) => panic!("request failed: {e}"),
                    }
                });
                if let Some(status) = status
                    && status >= 500
                {
                    return Err(TestCaseError::fail(format!(
                        "{method} {url} -> {status} (body {:?})",
                        String::from_utf8_lossy(&body)
                    )));
                }
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(
        runtime.block_on(app.health()).status,
        200,
        "the server survived"
    );
    runtime.block_on(app.stop());
}
