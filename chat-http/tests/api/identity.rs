//! Who a customer is, and what reaches the log, against the real server: customer login
//! with an identity token (a JWT the host application signs with the customer secret,
//! which expires), the customer's name shown to officers, officer ids that a customer
//! can neither probe nor choose, and a log that records failed logins with the client's
//! address but never a secret (signatures, identity tokens, bearer tokens, passwords).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, CUSTOMER_SECRET, Options, PASSWORD, spawn_app};
use crate::server::Server;

#[tokio::test]
async fn an_identity_token_logs_a_customer_in_and_shows_their_name_to_officers() {
    let app = spawn_app(Options::secured()).await;
    let officer = app.new_officer("olga").await;
    let token = app.identity_token("cust-1", 60, None, Some("Ada Lovelace"));
    let login = app
        .customer_login(json!({ "identityToken": token }))
        .await
        .expect(200);
    assert_eq!(login["created"], true);
    assert_eq!(login["chat"]["customerId"], "cust-1");
    assert_eq!(login["chat"]["customerName"], "Ada Lovelace");
    let chat = login["chat"]["id"].as_str().unwrap();
    let customer = login["token"].as_str().unwrap();
    app.say(customer, chat, "Hello").await;
    // Officers see the name in the queue and on the chat.
    let queue = app.queue(Some(&officer)).await.expect(200);
    assert_eq!(queue[0]["customerName"], "Ada Lovelace");
    let claimed = app.claim(Some(&officer), "olga", chat).await.expect(200);
    assert_eq!(claimed["customerName"], "Ada Lovelace");

    // The same token again resumes the chat; the signed id still works beside it.
    let again = app
        .customer_login(json!({ "identityToken": token }))
        .await
        .expect(200);
    assert_eq!(
        (&again["created"], &again["chat"]["id"]),
        (&json!(false), &json!(chat))
    );
    let signed = app
        .customer_login(json!({ "customerId": "cust-1", "signature": app.signature("cust-1") }))
        .await
        .expect(200);
    assert_eq!(signed["chat"]["customerName"], "Ada Lovelace");
}

#[tokio::test]
async fn identity_tokens_that_do_not_verify_or_have_expired_are_refused() {
    let app = spawn_app(Options::secured()).await;
    let officer = app.new_officer("olga").await;
    let forged = chatcore::customer_identity_token(
        b"a key that is not the customer secret at all",
        &chatcore::IdentityClaims {
            sub: "cust-1".into(),
            exp: u64::MAX / 2000,
            officer_id: None,
            name: None,
        },
    );
    let valid = app.identity_token("cust-1", 60, None, None);
    let payload = valid.split('.').nth(1).unwrap();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    // A customer id that reads as a JWT's `{"alg":"HS256"}.{"sub":"x","exp":9999999999}`:
    // its signed link holds the HMAC a JWT signature is made of.
    let id = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ";
    let signature = app.signature(id).unwrap();
    app.customer_login(json!({ "customerId": id, "signature": signature }))
        .await
        .expect(200);
    let mac = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        (0..signature.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&signature[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    );
    let from_a_signed_link = format!("{id}.{mac}");
    for token in [
        app.identity_token("cust-1", -31, None, None),
        forged,
        unsigned,
        from_a_signed_link,
        "eyJ.not.a-token".to_string(),
        String::new(),
    ] {
        let refused = app.customer_login(json!({ "identityToken": token })).await;
        refused.expect_error(401, "invalid_identity");
    }
    // A name that could disguise itself is refused; both proofs at once is a body error.
    let rlo = app.identity_token("cust-2", 60, None, Some("olga\u{202E}reciffo"));
    app.customer_login(json!({ "identityToken": rlo }))
        .await
        .expect_error(422, "invalid_field");
    app.customer_login(json!({ "identityToken": valid, "customerId": "cust-1" }))
        .await
        .expect_error(400, "invalid_body");
    // Nothing was created but the signed customer's chat.
    let queue = app.queue(Some(&officer)).await.expect(200);
    assert_eq!(queue.as_array().unwrap().len(), 1, "{queue}");
    assert_eq!(queue[0]["customerId"], id);

    // A server without a customer secret has nothing to verify a token with.
    let open = spawn_app(Options::open()).await;
    open.customer_login(json!({ "identityToken": valid }))
        .await
        .expect_error(401, "invalid_identity");
}

/// The parts of a login answer that do not vary by themselves between two logins.
fn shape(login: &Value) -> Value {
    let mut login = login.clone();
    for volatile in ["token", "expiresAt"] {
        login[volatile] = Value::Null;
    }
    for volatile in [
        "id",
        "customerId",
        "createdAt",
        "updatedAt",
        "queuePosition",
    ] {
        login["chat"][volatile] = Value::Null;
    }
    login
}

#[tokio::test]
async fn officer_ids_can_be_neither_probed_nor_chosen_through_customer_login() {
    let app = spawn_app(Options::secured()).await;
    let olga = app.new_officer("olga").await;
    let login = |customer: &str, officer: &str| {
        let body = json!({
            "customerId": customer,
            "officerId": officer,
            "signature": app.signature(customer),
        });
        app.customer_login(body)
    };
    // A valid signature with a real officer id and with a made-up one: the same answer,
    // and the customer chose no one.
    let real = login("c1", "olga").await.expect(200);
    let made_up = login("c2", "nosuchofficer").await.expect(200);
    assert_eq!(shape(&real), shape(&made_up));
    assert_eq!(real["chat"]["status"], "pending");
    assert!(real["chat"]["assignedOfficerId"].is_null());
    assert_eq!(
        app.queue(Some(&olga))
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // The host application routes a chat with a claim of its token; an officer who does
    // not exist leaves the chat in the queue, answered like no officer.
    let routed = app
        .customer_login(
            json!({ "identityToken": app.identity_token("c3", 60, Some("olga"), None) }),
        )
        .await
        .expect(200);
    assert_eq!(routed["chat"]["assignedOfficerId"], "olga");
    let ghost = app
        .customer_login(
            json!({ "identityToken": app.identity_token("c4", 60, Some("ghost"), None) }),
        )
        .await
        .expect(200);
    let nobody = app
        .customer_login(json!({ "identityToken": app.identity_token("c5", 60, None, None) }))
        .await
        .expect(200);
    assert_eq!(shape(&ghost), shape(&nobody));
    assert_eq!(ghost["chat"]["status"], "pending");
}

#[tokio::test]
async fn no_secret_reaches_the_log_and_failed_logins_leave_a_trail() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_file, secret_file) = (dir.path().join("admin"), dir.path().join("secret"));
    std::fs::write(&admin_file, ADMIN_TOKEN).unwrap();
    std::fs::write(&secret_file, CUSTOMER_SECRET).unwrap();
    let log = dir.path().join("server.log");
    let mut server = Server::start_with(
        &dir.path().join("chat.db"),
        &log,
        &[
            "--log",
            "debug",
            // Tight limits, so that the test also sees refusals in the log.
            "--limit-officer-login-failures",
            "1/1h",
            "--limit-address-token-failures",
            "1/1h",
            "--limit-loopback",
            "--admin-token-file",
            admin_file.to_str().unwrap(),
            "--customer-secret-file",
            secret_file.to_str().unwrap(),
        ],
    );
    let api = server.api.clone();
    let wrong = "not-the-password-but-close";
    api.expect(
        Method::POST,
        "/api/officers",
        Some(ADMIN_TOKEN),
        Some(json!({ "id": "amy", "password": PASSWORD })),
        201,
    )
    .await;
    let officer = api
        .expect(
            Method::POST,
            "/api/officers/login",
            None,
            Some(json!({ "officerId": "amy", "password": PASSWORD })),
            200,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    for status in [401, 429] {
        api.expect(
            Method::POST,
            "/api/officers/login",
            None,
            Some(json!({ "officerId": "amy", "password": wrong })),
            status,
        )
        .await;
    }
    // A host application's links carry a signature or an identity token in the URL.
    let signature = chatcore::customer_signature(CUSTOMER_SECRET.as_bytes(), "c1");
    let identity = chatcore::customer_identity_token(
        CUSTOMER_SECRET.as_bytes(),
        &chatcore::IdentityClaims {
            sub: "c2".into(),
            exp: u64::try_from(chatcore::Timestamp::now().unix_millis() / 1000 + 300).unwrap(),
            officer_id: None,
            name: Some("Ada".into()),
        },
    );
    for page in [
        format!("/customer?customerId=c1&signature={signature}"),
        format!("/customer?identityToken={identity}"),
    ] {
        api.expect(Method::GET, &page, None, None, 200).await;
    }
    let customer = api
        .expect(
            Method::POST,
            "/api/customers/login",
            None,
            Some(json!({ "identityToken": identity })),
            200,
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    api.expect(
        Method::POST,
        "/api/customers/login",
        None,
        Some(json!({ "customerId": "c1", "signature": signature })),
        200,
    )
    .await;
    // A token in a query string (where no client should put one), a WebSocket
    // authenticated with a real token, and (last: they spend this address's budget of
    // failed tokens) two guessed tokens.
    let path = format!("/api/officers/queue?access_token={officer}");
    api.expect(Method::GET, &path, Some(&officer), None, 200)
        .await;
    let ws_url = format!("{}/ws", api.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    let auth = json!({ "type": "auth", "token": customer }).to_string();
    ws.send(tokio_tungstenite::tungstenite::Message::text(auth))
        .await
        .unwrap();
    let ready = ws.next().await.unwrap().unwrap();
    assert!(ready.to_text().unwrap().contains("ready"), "{ready:?}");
    drop(ws);
    let guess = "f".repeat(64);
    for status in [401, 429] {
        api.expect(
            Method::GET,
            "/api/officers/queue",
            Some(&guess),
            None,
            status,
        )
        .await;
    }
    server.stop();

    let log = std::fs::read_to_string(&log).unwrap();
    for (what, secret) in [
        ("admin token", ADMIN_TOKEN),
        ("customer secret", CUSTOMER_SECRET),
        ("password", PASSWORD),
        ("wrong password", wrong),
        ("signature", &signature),
        ("identity token", &identity),
        ("officer token", &officer),
        ("customer token", &customer),
        ("guessed token", &guess),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log:\n{log}");
    }
    // The requests are logged, with the secrets' values replaced.
    assert!(log.contains("signature=<redacted>"), "{log}");
    assert!(log.contains("identityToken=<redacted>"), "{log}");
    assert!(log.contains("access_token=<redacted>"), "{log}");
    // Failed and refused logins name the client and the officer; guessed tokens the
    // client.
    let line = |what: &str, level: &str| {
        log.lines()
            .find(|l| l.contains(what) && l.contains(level))
            .unwrap_or_else(|| panic!("no {level} {what:?} in the log:\n{log}"))
            .to_string()
    };
    for login in [
        line("login failed", "INFO"),
        line("login refused: rate limited", "WARN"),
    ] {
        assert!(
            login.contains("client=127.0.0.1") && login.contains("subject=amy"),
            "{login}"
        );
    }
    for token in [
        line("bearer token refused", "INFO"),
        line("bearer token refused: rate limited", "WARN"),
    ] {
        assert!(token.contains("client=127.0.0.1"), "{token}");
    }
}
