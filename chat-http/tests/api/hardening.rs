//! Attacks of the security review, replayed against the real server: client addresses
//! forged through `X-Forwarded-For`, bearer tokens guessed in bulk, WebSocket upgrades
//! from other sites' pages, answers a browser might cache or sniff, and names, messages
//! and passwords that hide or disguise what they are. Each refusal is in the contract's
//! shape and changes nothing.

use std::net::IpAddr;
use std::time::Duration;

use chat_http::HttpLimits;
use chatcore::{Limits, Rate};
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::helpers::{Ended, Options, PASSWORD, Resp, TestApp, into_resp, spawn_app};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A secured server on a manual clock with only these transport limits.
fn options(http: HttpLimits) -> Options {
    Options {
        limits: Limits::none(),
        http_limits: http,
        manual_clock: true,
        ..Options::secured()
    }
}

#[track_caller]
fn expect_limited(resp: &Resp) -> u64 {
    resp.expect_error(429, "rate_limited");
    resp.retry_after.expect("429 without Retry-After")
}

/// An officer login sent through the proxy with this raw `X-Forwarded-For`.
async fn login_via_proxy(app: &TestApp, forwarded: &[u8], password: &str) -> Resp {
    let resp = app
        .client
        .post(app.url("/api/officers/login"))
        .header(
            "x-forwarded-for",
            HeaderValue::from_bytes(forwarded).unwrap(),
        )
        .json(&json!({ "officerId": "amy", "password": password }))
        .send()
        .await
        .unwrap();
    into_resp(resp).await
}

/// The proxy is this test (127.0.0.1, a loopback peer, exempt from per-address limits).
fn behind_a_proxy(http: &mut HttpLimits) {
    http.trusted_proxies = vec![ip("127.0.0.1")];
}

#[tokio::test]
async fn a_non_ascii_byte_in_x_forwarded_for_does_not_turn_the_limits_off() {
    let mut http = HttpLimits::none();
    http.login_failures_per_address = Some(Rate::new(2, Duration::from_secs(60)));
    http.ws_connects_per_address = Some(Rate::new(1, Duration::from_secs(60)));
    behind_a_proxy(&mut http);
    let app = spawn_app(options(http)).await;
    app.new_officer("amy").await;

    // The client wrote a non-ASCII byte; the proxy appended its real address.
    let forged = b"\x80, 203.0.113.50";
    for _ in 0..2 {
        login_via_proxy(&app, forged, "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    expect_limited(&login_via_proxy(&app, forged, PASSWORD).await);
    // The limit is the client's, not the proxy's: another client is served.
    login_via_proxy(&app, b"203.0.113.51", PASSWORD)
        .await
        .expect(200);

    // The same for new WebSocket connections.
    let header = [("x-forwarded-for", &forged[..])];
    app.ws_try_connect_with(&header)
        .await
        .expect("first connection");
    let refused = app
        .ws_try_connect_with(&header)
        .await
        .err()
        .expect("refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused:?}");
    };
    assert_eq!(response.status().as_u16(), 429);
}

#[tokio::test]
async fn a_forwarded_for_that_names_no_client_is_refused_and_changes_nothing() {
    let mut http = HttpLimits::none();
    behind_a_proxy(&mut http);
    let app = spawn_app(options(http)).await;
    let officer = app.new_officer("amy").await;
    let bad = HeaderValue::from_bytes(b"203.0.113.50, \x80").unwrap();

    let resp = app
        .client
        .post(app.url("/api/customers/login"))
        .header("x-forwarded-for", bad.clone())
        .json(&json!({ "customerId": "c1", "signature": app.signature("c1") }))
        .send()
        .await
        .unwrap();
    into_resp(resp)
        .await
        .expect_error(400, "invalid_forwarded_for");
    assert_eq!(app.queue(Some(&officer)).await.expect(200), json!([]));
    // Authenticated requests and WebSocket upgrades are refused alike.
    let resp = app
        .client
        .get(app.url("/api/officers/queue"))
        .bearer_auth(&officer)
        .header("x-forwarded-for", bad.clone())
        .send()
        .await
        .unwrap();
    into_resp(resp)
        .await
        .expect_error(400, "invalid_forwarded_for");
    let refused = app
        .ws_try_connect_with(&[("x-forwarded-for", b"garbage")])
        .await
        .err()
        .expect("refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused:?}");
    };
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "invalid_forwarded_for");
}

/// A request with a bearer token, from a client at `from`.
async fn with_token(
    app: &TestApp,
    from: &reqwest::Client,
    method: &str,
    path: &str,
    token: &str,
) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = from.request(method, app.url(path)).bearer_auth(token);
    if path == "/api/officers" {
        request = request.json(&json!({ "id": "newcomer" }));
    }
    into_resp(request.send().await.unwrap()).await
}

#[tokio::test]
async fn guessing_bearer_tokens_is_limited_per_address_on_rest_and_the_websocket() {
    let mut http = HttpLimits::none();
    http.token_failures_per_address = Some(Rate::new(3, Duration::from_secs(60)));
    http.limit_loopback = true;
    let app = spawn_app(options(http)).await;
    let officer = app.new_officer("amy").await;
    let (guesser, other) = (
        TestApp::client_from(ip("127.0.0.2")),
        TestApp::client_from(ip("127.0.0.3")),
    );
    // Valid tokens do not count.
    for _ in 0..5 {
        with_token(&app, &guesser, "GET", "/api/officers/queue", &officer)
            .await
            .expect(200);
    }
    for n in 0..3 {
        let guess = format!("{n:064x}");
        with_token(&app, &guesser, "GET", "/api/officers/queue", &guess)
            .await
            .expect_error(401, "unauthorized");
    }
    // Over the limit every token is refused from that address, a valid one included,
    // wherever a token is checked.
    let wait =
        expect_limited(&with_token(&app, &guesser, "GET", "/api/officers/queue", &officer).await);
    for (method, path) in [("POST", "/api/officers"), ("POST", "/api/logout")] {
        expect_limited(&with_token(&app, &guesser, method, path, &officer).await);
    }
    let mut ws = app.ws_try_connect_from(ip("127.0.0.2")).await.unwrap();
    ws.send_json(json!({ "type": "auth", "token": officer }))
        .await;
    let frame = ws.next_json().await;
    assert_eq!(
        (&frame["type"], &frame["code"]),
        (&json!("error"), &json!("rate_limited")),
        "{frame}"
    );
    assert!(
        frame["retryAfter"].as_u64().is_some_and(|s| s >= 1),
        "{frame}"
    );
    let (ended, _) = ws.read_until_end(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(chat_http::CLOSE_POLICY));
    // Another address is served, and its own guesses are its own.
    with_token(&app, &other, "GET", "/api/officers/queue", &officer)
        .await
        .expect(200);
    with_token(&app, &other, "GET", "/api/officers/queue", "guess")
        .await
        .expect_error(401, "unauthorized");
    app.ws_auth(&officer).await;

    app.advance(Duration::from_secs(wait));
    with_token(&app, &guesser, "GET", "/api/officers/queue", &officer)
        .await
        .expect(200);
}

#[tokio::test]
async fn api_answers_are_never_cached_and_no_answer_is_sniffed() {
    let app = spawn_app(Options::secured()).await;
    let officer = app.new_officer("amy").await;
    let login = app
        .client
        .post(app.url("/api/officers/login"))
        .json(&json!({ "officerId": "amy", "password": PASSWORD }));
    let queue = app
        .client
        .get(app.url("/api/officers/queue"))
        .bearer_auth(&officer);
    for (request, api) in [
        (login, true),
        (queue, true),
        (app.client.get(app.url("/api/officers/queue")), true),
        (app.client.get(app.url("/api/nowhere")), true),
        (app.client.get(app.url("/healthz")), false),
        (app.client.get(app.url("/")), false),
        (app.client.get(app.url("/customer")), false),
    ] {
        let resp = request.send().await.unwrap();
        let url = resp.url().to_string();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{url}"
        );
        if api {
            assert_eq!(
                header("cache-control").as_deref(),
                Some("no-store"),
                "{url}"
            );
        }
    }
}

#[tokio::test]
async fn websocket_upgrades_from_pages_of_other_origins_are_refused() {
    let mut options = Options::secured();
    options.cors_origins = vec!["https://shop.example".to_string()];
    let app = spawn_app(options).await;
    let (customer, _) = app.new_customer("c1").await;

    let refused = app
        .ws_try_connect_with(&[("origin", b"https://evil.example")])
        .await
        .err()
        .expect("refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused:?}");
    };
    assert_eq!(response.status().as_u16(), 403);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    // An allowed origin, the server's own pages, and clients that send no Origin.
    let own = format!("http://{}", app.addr);
    for headers in [
        vec![("origin", &b"https://shop.example"[..])],
        vec![("origin", own.as_bytes())],
        vec![],
    ] {
        let mut ws = app.ws_try_connect_with(&headers).await.expect("accepted");
        ws.send_json(json!({ "type": "auth", "token": customer }))
            .await;
        assert_eq!(ws.next_json().await["type"], "ready");
    }

    // Without --cors-origin nothing is checked (the pages authenticate by a token in a
    // frame, never by a cookie).
    let open = spawn_app(Options::open()).await;
    open.ws_try_connect_with(&[("origin", b"https://evil.example")])
        .await
        .expect("no allowlist, no check");
}

#[tokio::test]
async fn names_messages_and_passwords_that_hide_or_disguise_are_refused() {
    let app = spawn_app(Options::secured()).await;
    for (body, field) in [
        (
            json!({ "id": "eve", "displayName": "Alice\u{202E}ecilA", "password": PASSWORD }),
            "displayName",
        ),
        (
            json!({ "id": "eve", "displayName": "Alice\nAdmin", "password": PASSWORD }),
            "displayName",
        ),
        (
            json!({ "id": "eve", "password": "            " }),
            "password",
        ),
    ] {
        let resp = app.create_officer(app.admin(), body).await;
        resp.expect_error(422, "invalid_field");
        let message = resp.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
    }
    // Nothing was created: the id is free.
    app.create_officer(app.admin(), json!({ "id": "eve", "password": PASSWORD }))
        .await
        .expect(201);

    let (customer, chat) = app.new_customer("c1").await;
    for invisible in [
        "\u{200B}\u{200B}",
        " \u{FEFF}\u{2060} ",
        "\u{00AD}",
        "\u{202E}\u{2066}",
    ] {
        app.send_message(Some(&customer), &chat, json!({ "content": invisible }))
            .await
            .expect_error(422, "empty_content");
    }
    let stored = app.messages(Some(&customer), &chat, "").await.expect(200);
    assert_eq!(stored, json!([]));
    // Invisible characters inside visible text are text like any other.
    app.say(&customer, &chat, "a\u{200B}b").await;
}
