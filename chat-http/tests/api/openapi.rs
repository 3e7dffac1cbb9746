//! `GET /api/openapi.json`: an OpenAPI 3.1 document that lists every route the server
//! serves and only those, with the contract's parameter names, and whose every example
//! validates against its schema (the `jsonschema` crate).
//!
//! Routes and description come from the same registrations (`utoipa_axum`), so they
//! cannot drift apart by construction; these tests make sure of it from four sides: the
//! served document is the code's; every path and method it lists is served (a request
//! never meets the router's 404 or 405); every `.route(` call left in chat-http's source
//! (not described by a `#[utoipa::path]`) names a path the document has; and every
//! method and path in docs/API.md's tables is in it.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::server::Server;

async fn served(dir: &Path) -> (Server, Value) {
    let server = Server::start(&dir.join("openapi.db"), &dir.join("server.log"));
    let doc = server
        .api
        .expect(Method::GET, "/api/openapi.json", None, None, 200)
        .await;
    (server, doc)
}

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

fn has(doc: &Value, method: &str, path: &str) -> bool {
    doc["paths"][path]
        .get(method.to_lowercase())
        .is_some_and(Value::is_object)
}

#[tokio::test]
async fn the_document_is_openapi_3_1_from_the_code_with_the_contracts_names() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, doc) = served(dir.path()).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "chat-http");
    let from_code = serde_json::to_value(chat_http::openapi::document()).unwrap();
    assert_eq!(doc, from_code, "the served document is not the code's");
    for (method, path) in [
        ("POST", "/api/chats/{chatId}/resolve"),
        ("POST", "/api/officers/{officerId}/claim/{chatId}"),
        ("GET", "/api/customers/{customerId}/chats"),
        ("GET", "/api/attachments/{attachmentId}"),
        ("GET", "/api/reports/desk"),
        ("GET", "/metrics"),
        ("GET", "/api/openapi.json"),
        ("GET", "/ws"),
    ] {
        assert!(has(&doc, method, path), "{method} {path} missing");
    }
    // Path parameters are camelCase, as the contract names them, and each is declared.
    for (method, path) in operations(&doc) {
        let declared: Vec<&str> = doc["paths"][&path][method.to_lowercase()]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in path
            .split('{')
            .skip(1)
            .map(|rest| rest.split('}').next().unwrap())
        {
            assert!(
                !name.contains('_') && !name.starts_with('*'),
                "{path}: {name}"
            );
            assert!(
                declared.contains(&name),
                "{method} {path}: {name} undeclared"
            );
        }
    }
}

/// Every operation the document lists is served: a request reaches a handler (whatever
/// it answers without a token or a body), never the router's own 404 or 405.
#[tokio::test]
async fn every_route_in_the_document_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (server, doc) = served(dir.path()).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 35, "{ops:?}");
    let sample = |name: &str| match name {
        "chatId" | "attachmentId" | "webhookId" => "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "officerId" => "alice",
        "customerId" => "cust-1",
        "path" => "api.js",
        other => panic!("no sample for {other}"),
    };
    for (method, path) in ops {
        let mut url = String::new();
        for (i, part) in path.split('{').enumerate() {
            if i == 0 {
                url.push_str(part);
            } else {
                let (name, rest) = part.split_once('}').unwrap();
                url.push_str(sample(name));
                url.push_str(rest);
            }
        }
        let resp = server
            .api
            .client()
            .request(method.parse().unwrap(), format!("{}{url}", server.api.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !(status == 404 && body["error"]["message"] == "no such endpoint"),
            "{method} {path} is not served"
        );
    }
}

/// Every `.route(` call in chat-http's source (the few registrations that no
/// `#[utoipa::path]` describes as axum spells them) names a path of the document.
#[tokio::test]
async fn routes_registered_outside_the_annotations_are_in_the_document() {
    let doc = serde_json::to_value(chat_http::openapi::document()).unwrap();
    let mut files = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for call in text.split(".route(").skip(1) {
            let arg = call.trim_start();
            let literal = arg
                .strip_prefix('"')
                .and_then(|rest| rest.split_once('"'))
                .map(|(lit, _)| lit)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a .route( whose path is not a literal: {}",
                        path.display(),
                        &arg[..arg.len().min(60)]
                    )
                });
            let spelled = literal.replace("{*", "{");
            assert!(
                doc["paths"].get(&spelled).is_some(),
                "{}: {literal} is not in the document",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "found {checked} .route( calls");
}

/// Each method and path that docs/API.md's tables name is in the document.
#[tokio::test]
async fn every_route_in_the_api_docs_tables_is_in_the_document() {
    let doc = serde_json::to_value(chat_http::openapi::document()).unwrap();
    let api =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md")).unwrap();
    let mut seen = 0;
    for line in api.lines().filter(|l| l.starts_with('|')) {
        for quoted in line.split('`').skip(1).step_by(2) {
            let Some((method, path)) = quoted.split_once(' ') else {
                continue;
            };
            if !["GET", "POST", "PUT", "DELETE", "PATCH"].contains(&method)
                || !path.starts_with('/')
            {
                continue;
            }
            let path = path.split('?').next().unwrap();
            assert!(
                has(&doc, method, path),
                "docs/API.md: {method} {path} not in the document"
            );
            seen += 1;
        }
    }
    assert!(
        seen >= 30,
        "only {seen} routes found in docs/API.md's tables"
    );
}

/// The schema at `schema`, resolvable against the document's components.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut rooted = schema.clone();
    if let Some(map) = rooted.as_object_mut() {
        map.insert("components".into(), doc["components"].clone());
    } else {
        rooted = json!({ "allOf": [schema], "components": doc["components"] });
    }
    jsonschema::validator_for(&rooted)
        .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

fn check(doc: &Value, at: &str, schema: &Value, example: &Value, count: &mut usize) {
    let v = validator(doc, schema);
    let errors: Vec<String> = v.iter_errors(example).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{at}: example {example} is invalid: {errors:?}"
    );
    *count += 1;
}

/// Every example in the document (of a schema, a request body or an answer) is valid
/// against its schema; and a real answer of each main object is too.
#[tokio::test]
async fn every_example_validates_against_its_schema() {
    let doc = serde_json::to_value(chat_http::openapi::document()).unwrap();
    let mut count = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut examples: Vec<Value> = schema["examples"].as_array().cloned().unwrap_or_default();
        examples.extend(schema.get("example").cloned());
        for example in examples {
            check(&doc, name, schema, &example, &mut count);
        }
    }
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let mut bodies = vec![(format!("{method} {path} request"), &op["requestBody"])];
        for (status, answer) in op["responses"].as_object().unwrap() {
            bodies.push((format!("{method} {path} {status}"), answer));
        }
        for (at, body) in bodies {
            for media in body["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(_, m)| m)
            {
                let schema = &media["schema"];
                let mut examples: Vec<Value> = media["examples"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(_, e)| e["value"].clone())
                    .collect();
                examples.extend(media.get("example").cloned());
                for example in examples {
                    if schema.is_object() {
                        check(&doc, &at, schema, &example, &mut count);
                    }
                }
                // A referenced schema's own example stands for this body's.
                if let Some(reference) = schema["$ref"].as_str() {
                    let name = reference.rsplit('/').next().unwrap();
                    let target = &doc["components"]["schemas"][name];
                    assert!(
                        target.get("example").is_some() || target.get("examples").is_some(),
                        "{at}: {name} has no example"
                    );
                }
            }
        }
    }
    assert!(count >= 20, "only {count} examples checked");

    // The server's real answers validate too: what the schemas say is what is sent.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("real.db"), &dir.path().join("server.log"));
    let api = &server.api;
    let officer = api.officer("alice").await;
    let (customer, chat) = api.customer("cust-1").await;
    let sent = api.send(&customer, &chat, "hello").await.unwrap().1;
    let answers = [
        ("Message", sent),
        (
            "Chat",
            api.expect(
                Method::GET,
                &format!("/api/chats/{chat}"),
                Some(&officer),
                None,
                200,
            )
            .await,
        ),
        (
            "Me",
            api.expect(Method::GET, "/api/me", Some(&officer), None, 200)
                .await,
        ),
        (
            "ErrorBody",
            api.expect(Method::GET, "/api/me", None, None, 401).await,
        ),
    ];
    for (name, answer) in answers {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        check(&doc, name, &schema, &answer, &mut count);
    }
    let queue = api
        .expect(
            Method::GET,
            "/api/officers/queue",
            Some(&officer),
            None,
            200,
        )
        .await;
    let schema = json!({ "type": "array", "items": { "$ref": "#/components/schemas/Chat" } });
    check(&doc, "queue", &schema, &queue, &mut count);
}
