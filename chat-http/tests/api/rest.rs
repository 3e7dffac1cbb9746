//! Each REST row of the contract, in open and in secured mode.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Options, PASSWORD, spawn_app};

#[tokio::test]
async fn health_and_index() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        assert_eq!(app.health().await.expect(200), json!({ "status": "ok" }));
        let index = app.request(Method::GET, "/", None, None).await.expect(200);
        assert_eq!(index["openMode"], !app.secured);
        assert_eq!(index["customerIdsOnTrust"], !app.secured);
        app.stop().await;
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = spawn_app(Options::open()).await;
    app.request(Method::GET, "/nope", None, None)
        .await
        .expect_error(404, "not_found");
    app.request(Method::DELETE, "/healthz", None, None)
        .await
        .expect_error(405, "method_not_allowed");
    // (GET /api/officers is a route since contract v2; PUT is not.)
    app.request(Method::PUT, "/api/officers", None, None)
        .await
        .expect_error(405, "method_not_allowed");
    app.stop().await;
}

#[tokio::test]
async fn creating_officers() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let officer = app
            .create_officer(
                app.admin(),
                json!({ "id": "alice", "password": PASSWORD, "displayName": "Alice", "extra": 1 }),
            )
            .await
            .expect(201);
        assert_eq!(officer["id"], "alice");
        assert_eq!(officer["displayName"], "Alice");
        assert!(officer["createdAt"].is_string());
        assert!(officer.get("password").is_none() && officer.get("passwordHash").is_none());

        app.create_officer(app.admin(), json!({ "id": "alice", "password": PASSWORD }))
            .await
            .expect_error(409, "officer_exists");
        for bad in ["", "has space", "x".repeat(65).as_str(), "é"] {
            app.create_officer(app.admin(), json!({ "id": bad }))
                .await
                .expect_error(422, "invalid_id");
        }
        app.create_officer(app.admin(), json!({ "password": PASSWORD }))
            .await
            .expect_error(400, "invalid_body");
        app.create_officer(app.admin(), json!({ "id": 7 }))
            .await
            .expect_error(400, "invalid_body");
        app.stop().await;
    }
}

#[tokio::test]
async fn officer_creation_is_admin_only_in_secured_mode() {
    let app = spawn_app(Options::secured()).await;
    let body = json!({ "id": "bob", "password": PASSWORD });
    app.create_officer(None, body.clone())
        .await
        .expect_error(401, "unauthorized");
    app.create_officer(Some("not-a-token"), body.clone())
        .await
        .expect_error(401, "unauthorized");
    let officer = app.new_officer("carol").await;
    app.create_officer(Some(&officer), body.clone())
        .await
        .expect_error(403, "forbidden");
    let (customer, _) = app.new_customer("cust").await;
    app.create_officer(Some(&customer), body.clone())
        .await
        .expect_error(403, "forbidden");
    app.create_officer(Some(ADMIN_TOKEN), body)
        .await
        .expect(201);
    app.stop().await;
}

#[tokio::test]
async fn officer_login() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        app.create_officer(app.admin(), json!({ "id": "alice", "password": PASSWORD }))
            .await
            .expect(201);
        let session = app
            .officer_login(json!({ "officerId": "alice", "password": PASSWORD }))
            .await
            .expect(200);
        assert_eq!(session["officer"]["id"], "alice");
        assert!(session["token"].as_str().unwrap().len() >= 32);
        assert!(session["expiresAt"].is_string());

        let wrong = app
            .officer_login(json!({ "officerId": "alice", "password": "wrong password" }))
            .await;
        wrong.expect_error(401, "invalid_credentials");
        let unknown = app
            .officer_login(json!({ "officerId": "nobody", "password": PASSWORD }))
            .await;
        unknown.expect_error(401, "invalid_credentials");
        assert_eq!(
            wrong.body, unknown.body,
            "unknown id and wrong password look alike"
        );
        app.officer_login(json!({ "password": PASSWORD }))
            .await
            .expect_error(400, "invalid_body");
        app.stop().await;
    }
}

#[tokio::test]
async fn passwordless_officers_log_in_only_in_open_mode() {
    let open = spawn_app(Options::open()).await;
    open.create_officer(None, json!({ "id": "pat" }))
        .await
        .expect(201);
    let session = open
        .officer_login(json!({ "officerId": "pat" }))
        .await
        .expect(200);
    assert!(session["token"].is_string());
    open.stop().await;

    let secured = spawn_app(Options::secured()).await;
    secured
        .create_officer(Some(ADMIN_TOKEN), json!({ "id": "pat" }))
        .await
        .expect(201);
    secured
        .officer_login(json!({ "officerId": "pat" }))
        .await
        .expect_error(401, "invalid_credentials");
    secured.stop().await;
}

#[tokio::test]
async fn customer_login() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let sig = app.signature("cust-1");
        let first = app
            .customer_login(json!({ "customerId": "cust-1", "signature": sig }))
            .await
            .expect(200);
        assert_eq!(first["created"], true);
        assert_eq!(first["chat"]["status"], "pending");
        assert!(first["chat"]["assignedOfficerId"].is_null());
        assert!(first["chat"]["customerName"].is_null());
        assert!(first["expiresAt"].is_string());
        let again = app
            .customer_login(json!({ "customerId": "cust-1", "signature": sig }))
            .await
            .expect(200);
        assert_eq!(again["created"], false);
        assert_eq!(again["chat"]["id"], first["chat"]["id"]);
        assert_ne!(again["token"], first["token"]);

        // Naming an officer: an unknown one leaves the chat in the queue; a known one
        // gets a new chat in open mode, and is ignored on a secured server (only an
        // identity token names one there); an existing chat is unchanged.
        let ghost = app
            .customer_login(json!({ "customerId": "cust-3", "officerId": "ghost", "signature": app.signature("cust-3") }))
            .await
            .expect(200);
        assert_eq!(ghost["chat"]["status"], "pending");
        app.new_officer("olga").await;
        let named = app
            .customer_login(json!({ "customerId": "cust-2", "officerId": "olga", "signature": app.signature("cust-2") }))
            .await
            .expect(200);
        if app.secured {
            assert_eq!(named["chat"]["status"], "pending");
            assert!(named["chat"]["assignedOfficerId"].is_null());
        } else {
            assert_eq!(named["chat"]["status"], "assigned");
            assert_eq!(named["chat"]["assignedOfficerId"], "olga");
        }
        let unchanged = app
            .customer_login(
                json!({ "customerId": "cust-1", "officerId": "olga", "signature": sig }),
            )
            .await
            .expect(200);
        assert_eq!(unchanged["chat"], first["chat"]);

        app.customer_login(json!({ "customerId": "bad id", "signature": "00" }))
            .await
            .expect_error(422, "invalid_id");
        app.customer_login(json!({}))
            .await
            .expect_error(400, "invalid_body");
        app.stop().await;
    }
}

#[tokio::test]
async fn customer_signature_in_secured_mode() {
    let app = spawn_app(Options::secured()).await;
    app.customer_login(json!({ "customerId": "c1" }))
        .await
        .expect_error(401, "invalid_signature");
    let wrong = chatcore::customer_signature(b"another secret", "c1");
    app.customer_login(json!({ "customerId": "c1", "signature": wrong }))
        .await
        .expect_error(401, "invalid_signature");
    let other_customer = app.signature("c2");
    app.customer_login(json!({ "customerId": "c1", "signature": other_customer }))
        .await
        .expect_error(401, "invalid_signature");
    app.customer_login(json!({ "customerId": "c1", "signature": app.signature("c1") }))
        .await
        .expect(200);
    app.stop().await;

    // Without a secret the signature is ignored.
    let open = spawn_app(Options::open()).await;
    open.customer_login(json!({ "customerId": "c1", "signature": "garbage" }))
        .await
        .expect(200);
    open.stop().await;
}

#[tokio::test]
async fn queue_officer_chats_and_claim() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let alice = app.new_officer("alice").await;
        let bob = app.new_officer("bob").await;
        let (_, first) = app.new_customer("c1").await;
        let (_, second) = app.new_customer("c2").await;

        let queue = app.queue(Some(&alice)).await.expect(200);
        let ids: Vec<_> = queue
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].clone())
            .collect();
        assert_eq!(ids, [json!(first), json!(second)], "oldest first");

        let chat = app.claim(Some(&alice), "alice", &first).await.expect(200);
        assert_eq!(chat["assignedOfficerId"], "alice");
        assert_eq!(chat["status"], "assigned");
        // The owner claiming again is a success; anyone else is refused.
        app.claim(Some(&alice), "alice", &first).await.expect(200);
        app.claim(Some(&bob), "bob", &first)
            .await
            .expect_error(409, "already_assigned");
        app.claim(Some(&bob), "bob", &uuid::Uuid::now_v7().to_string())
            .await
            .expect_error(404, "chat_not_found");

        let queue = app.queue(Some(&bob)).await.expect(200);
        assert_eq!(queue.as_array().unwrap().len(), 1);
        assert_eq!(queue[0]["id"], second);

        let mine = app.officer_chats(Some(&alice), "alice").await.expect(200);
        assert_eq!(mine.as_array().unwrap().len(), 1);
        assert_eq!(mine[0]["id"], first);
        let bobs = app.officer_chats(Some(&bob), "bob").await.expect(200);
        assert_eq!(bobs, json!([]));
        if app.secured {
            // The admin may read every officer's chats and the queue.
            app.officer_chats(Some(ADMIN_TOKEN), "alice")
                .await
                .expect(200);
            app.queue(Some(ADMIN_TOKEN)).await.expect(200);
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn sending_and_reading_messages() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let alice = app.new_officer("alice").await;
        let (customer, chat) = app.new_customer("c1").await;

        let m1 = app
            .send_message(Some(&customer), &chat, json!({ "content": "Hello?" }))
            .await
            .expect(201);
        assert_eq!(m1["seq"], 1);
        assert_eq!(m1["senderType"], "customer");
        assert_eq!(m1["senderId"], "c1");
        assert_eq!(m1["chatId"], chat);
        assert!(m1["id"].is_string() && m1["createdAt"].is_string());

        app.claim(Some(&alice), "alice", &chat).await.expect(200);
        let m2 = app
            .send_message(
                Some(&alice),
                &chat,
                json!({ "content": "Hi", "senderType": "officer", "senderId": "alice" }),
            )
            .await
            .expect(201);
        assert_eq!(
            (m2["seq"].clone(), m2["senderType"].clone()),
            (json!(3), json!("officer")),
            "after the claim's entry"
        );

        let history = app.messages(Some(&customer), &chat, "").await.expect(200);
        let took = &history[1];
        assert_eq!(
            (&took["seq"], &took["senderType"], &took["senderId"]),
            (&json!(2), &json!("system"), &json!("alice"))
        );
        assert_eq!(history, json!([m1, took, m2]));
        let chat_obj = app.chat(Some(&customer), &chat).await.expect(200);
        assert_eq!(chat_obj["assignedOfficerId"], "alice");
        app.stop().await;
    }
}

#[tokio::test]
async fn content_validation() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let (customer, chat) = app.new_customer("c1").await;
        for blank in ["", "   ", "\n\t "] {
            app.send_message(Some(&customer), &chat, json!({ "content": blank }))
                .await
                .expect_error(422, "empty_content");
        }
        let longest = "é".repeat(4000);
        app.send_message(Some(&customer), &chat, json!({ "content": longest }))
            .await
            .expect(201);
        app.send_message(
            Some(&customer),
            &chat,
            json!({ "content": "x".repeat(4001) }),
        )
        .await
        .expect_error(413, "message_too_large");
        app.send_message(
            Some(&customer),
            &chat,
            json!({ "text": "no content field" }),
        )
        .await
        .expect_error(400, "invalid_body");
        app.send_message(
            Some(&customer),
            &chat,
            json!({ "content": "x", "clientMessageId": "k".repeat(129) }),
        )
        .await
        .expect_error(422, "invalid_field");
        app.stop().await;
    }
}

#[tokio::test]
async fn client_message_id_is_idempotent() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let (customer, chat) = app.new_customer("c1").await;
        let body = json!({ "content": "once", "clientMessageId": "k-1" });
        let first = app
            .send_message(Some(&customer), &chat, body.clone())
            .await
            .expect(201);
        assert_eq!(first["clientMessageId"], "k-1");
        let again = app
            .send_message(Some(&customer), &chat, body)
            .await
            .expect(200);
        assert_eq!(again, first);
        let other = app
            .send_message(
                Some(&customer),
                &chat,
                json!({ "content": "twice", "clientMessageId": "k-2" }),
            )
            .await
            .expect(201);
        assert_eq!(other["seq"], 2);
        let all = app.messages(Some(&customer), &chat, "").await.expect(200);
        assert_eq!(all.as_array().unwrap().len(), 2, "nothing stored twice");
        app.stop().await;
    }
}

#[tokio::test]
async fn paging() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let (customer, chat) = app.new_customer("c1").await;
        for i in 1..=10 {
            app.say(&customer, &chat, &format!("m{i}")).await;
        }
        let seqs = |v: serde_json::Value| -> Vec<u64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_u64().unwrap())
                .collect()
        };
        let page = |q: &'static str| app.messages(Some(&customer), &chat, q);
        assert_eq!(
            seqs(page("").await.expect(200)),
            (1..=10).collect::<Vec<_>>()
        );
        assert_eq!(seqs(page("after=3&limit=2").await.expect(200)), [4, 5]);
        assert_eq!(seqs(page("before=5&limit=2").await.expect(200)), [3, 4]);
        assert_eq!(seqs(page("after=2&before=6").await.expect(200)), [3, 4, 5]);
        assert_eq!(seqs(page("after=10").await.expect(200)), Vec::<u64>::new());
        assert_eq!(seqs(page("limit=1000").await.expect(200)).len(), 10);
        // Bounds at the edge of the integer range are ordinary bounds.
        assert_eq!(
            seqs(page("after=18446744073709551615").await.expect(200)),
            Vec::<u64>::new()
        );
        assert_eq!(
            seqs(
                page("before=18446744073709551615&limit=3")
                    .await
                    .expect(200)
            ),
            [8, 9, 10]
        );
        assert_eq!(
            seqs(page("before=9007199254740991&limit=1").await.expect(200)),
            [10]
        );
        for bad in [
            "limit=0",
            "limit=1001",
            "after=-1",
            "before=-3",
            "limit=abc",
            "after=1.5",
            "limit=99999999999",
        ] {
            page(bad).await.expect_error(400, "invalid_parameter");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn not_found_and_malformed_ids() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let alice = app.new_officer("alice").await;
        let missing = uuid::Uuid::now_v7().to_string();
        app.chat(Some(&alice), &missing)
            .await
            .expect_error(404, "chat_not_found");
        app.messages(Some(&alice), &missing, "")
            .await
            .expect_error(404, "chat_not_found");
        app.chat(Some(&alice), "not-a-uuid")
            .await
            .expect_error(400, "invalid_parameter");
        app.messages(Some(&alice), "123", "")
            .await
            .expect_error(400, "invalid_parameter");
        // The contract's words for each path parameter, never the framework's.
        let bad_chat = app.claim(Some(&alice), "alice", "nope").await;
        bad_chat.expect_error(400, "invalid_parameter");
        assert_eq!(
            bad_chat.body["error"]["message"],
            "chatId in the path must be a UUID, not `nope`"
        );
        let bad_officer = app.claim(Some(&alice), "bad%20id", &missing).await;
        bad_officer.expect_error(400, "invalid_parameter");
        let message = bad_officer.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with("officerId "), "{message}");
        app.officer_chats(Some(&alice), "%C3%A9")
            .await
            .expect_error(400, "invalid_parameter");
        app.stop().await;
    }
}

#[tokio::test]
async fn malformed_bodies_and_content_types() {
    let app = spawn_app(Options::open()).await;
    let (customer, chat) = app.new_customer("c1").await;
    let path = format!("/api/chats/{chat}/messages");
    let cases: [(Option<&str>, &[u8]); 6] = [
        (Some("application/json"), b"{not json"),
        (Some("application/json"), b""),
        (Some("application/json"), b"[1,2,3]"),
        (Some("text/plain"), br#"{"content":"hi"}"#),
        (None, br#"{"content":"hi"}"#),
        (Some("application/json"), b"\xff\xfe"),
    ];
    for (ct, body) in cases {
        app.raw(Method::POST, &path, Some(&customer), ct, body.to_vec())
            .await
            .expect_error(400, "invalid_body");
    }
    // Over the body limit (64 KiB here).
    let huge = format!(r#"{{"content":"{}"}}"#, "x".repeat(70_000));
    app.raw(
        Method::POST,
        &path,
        Some(&customer),
        Some("application/json"),
        huge.into_bytes(),
    )
    .await
    .expect_error(413, "body_too_large");
    app.raw(
        Method::POST,
        "/api/officers",
        None,
        Some("application/json"),
        vec![b' '; 200_000],
    )
    .await
    .expect_error(413, "body_too_large");
    // Authorization headers that are not `Bearer <token>`.
    for header in ["Basic abc", "Bearer", "Bearer ", "token"] {
        let resp = app
            .client
            .get(app.url("/api/officers/queue"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{header}");
    }
    app.stop().await;
}

#[tokio::test]
async fn cors_headers_only_for_configured_origins() {
    let plain = spawn_app(Options::open()).await;
    let resp = plain
        .client
        .get(plain.url("/healthz"))
        .header("origin", "http://shop.example")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    plain.stop().await;

    let app = spawn_app(Options {
        cors_origins: vec!["http://shop.example".to_string()],
        ..Options::open()
    })
    .await;
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "http://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://shop.example"
    );
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/chats/x/messages"))
        .header("origin", "http://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    let other = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test]
async fn logout_revokes_only_the_callers_token() {
    for options in Options::both() {
        let app = spawn_app(options).await;
        let officer = app.new_officer("amy").await;
        let other = app.login_officer("amy").await;
        let (customer, _) = app.new_customer("c1").await;
        for token in [&officer, &customer] {
            let out = app
                .request(Method::POST, "/api/logout", Some(token), None)
                .await;
            assert_eq!(out.status, 204);
            app.queue(Some(token))
                .await
                .expect_error(401, "unauthorized");
            // A revoked token cannot log out again either.
            app.request(Method::POST, "/api/logout", Some(token), None)
                .await
                .expect_error(401, "unauthorized");
        }
        // The officer's other session is untouched.
        app.queue(Some(&other)).await.expect(200);
        app.request(Method::POST, "/api/logout", None, None)
            .await
            .expect_error(401, "unauthorized");
        if let Some(admin) = app.admin() {
            let out = app
                .request(Method::POST, "/api/logout", Some(admin), None)
                .await;
            assert_eq!(out.status, 204);
            app.queue(Some(admin)).await.expect(200);
        }
    }
}

#[tokio::test]
async fn me_says_who_a_token_is_and_officers_are_listed_to_officers() {
    let app = spawn_app(Options::secured()).await;
    let alice = app.new_officer("alice").await;
    let (customer, _) = app.new_customer("cust-1").await;
    let get = |path: &'static str, token: Option<String>| {
        let app = &app;
        async move { app.request(Method::GET, path, token.as_deref(), None).await }
    };

    let me = get("/api/me", Some(alice.clone())).await.expect(200);
    assert_eq!(
        (&me["role"], &me["subject"]),
        (&json!("officer"), &json!("alice"))
    );
    assert_eq!(me["officer"]["displayName"], "Officer alice");
    let me = get("/api/me", Some(customer.clone())).await.expect(200);
    assert_eq!(
        (&me["role"], &me["subject"]),
        (&json!("customer"), &json!("cust-1"))
    );
    assert!(me.get("officer").is_none());
    let me = get("/api/me", Some(ADMIN_TOKEN.to_string()))
        .await
        .expect(200);
    assert_eq!(me["role"], "admin");
    get("/api/me", None).await.expect_error(401, "unauthorized");
    get("/api/me", Some("nope".into()))
        .await
        .expect_error(401, "unauthorized");

    app.new_officer("bob").await;
    let listed = get("/api/officers", Some(alice)).await.expect(200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    assert!(listed[0].get("passwordHash").is_none());
    get("/api/officers", Some(customer))
        .await
        .expect_error(403, "forbidden");
    get("/api/officers", None)
        .await
        .expect_error(401, "unauthorized");
}
