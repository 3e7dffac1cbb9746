//! https webhooks against the real binary: a receiver over TLS whose certificate a test
//! CA signed (`support/tls.rs`), trusted through `--webhook-ca`, gets every event signed
//! as the contract says (`support/receiver.rs` checks the signatures); a receiver whose
//! CA the server was not given gets nothing and the delivery says why, without the URL;
//! a `--webhook-ca` file that holds no certificate stops the start with a sentence.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::receiver::Receiver;
use crate::server::Server;
use crate::tls::TestCa;

const SECRET: &str = "whsec-test-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_https_receiver_signed_by_the_webhook_ca_gets_every_event_signed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("bank internal CA");
    let ca_file = ca.pem_file(dir.path());
    let receiver = Receiver::start_tls(SECRET, ca.acceptor(&["localhost"])).await;
    assert!(receiver.url.starts_with("https://localhost:"));
    let server = Server::start_with(
        &dir.path().join("chat.db"),
        &dir.path().join("server.log"),
        &[
            "--sync-normal",
            "--webhook-url",
            &receiver.url,
            "--webhook-secret",
            SECRET,
            "--webhook-ca",
            ca_file.to_str().unwrap(),
        ],
    );
    let api = &server.api;
    let officer = api.officer("amy").await;
    let (customer, chat) = api.customer("cust-tls").await;
    let (_, sent) = api.send(&customer, &chat, "hello over TLS").await.unwrap();
    for n in 0..5 {
        api.send(&customer, &chat, &format!("more {n}"))
            .await
            .unwrap();
    }
    api.claim(&officer, "amy", &chat).await.unwrap();
    // Created, six messages, the claim's system entry and the claim.
    let expected = 9;
    receiver.wait_for(expected, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.assert_clean();
    receiver.log(|l| {
        assert_eq!(l.taken.len(), expected);
        assert_eq!(l.duplicates(), 0);
        let kinds: Vec<&str> = l
            .first
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds[0], "chat_updated");
        assert_eq!(kinds[expected - 1], "chat_updated");
        let first = l
            .first
            .iter()
            .find(|b| b["data"]["message"]["id"] == sent["id"])
            .expect("the customer's first message");
        assert_eq!(first["data"]["message"], sent);
        // One chat's events go one at a time: kept connections, not one per event.
        assert!(
            (1..expected).contains(&l.tls_connections),
            "{} TLS connections for {expected} events",
            l.tls_connections
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_https_receiver_whose_ca_is_not_trusted_gets_nothing_and_the_delivery_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    // The server is given one CA; the receiver's certificate is signed by another.
    let ca_file = TestCa::new("bank internal CA").pem_file(dir.path());
    let receiver =
        Receiver::start_tls(SECRET, TestCa::new("unknown CA").acceptor(&["localhost"])).await;
    let server = Server::start_with(
        &dir.path().join("chat.db"),
        &log,
        &[
            "--admin-token",
            ADMIN,
            "--webhook-ca",
            ca_file.to_str().unwrap(),
            "--log",
            "info",
        ],
    );
    let api = &server.api;
    // An https URL is accepted over REST (the admin's webhooks), an ftp one still not.
    let url = format!("{}?token=receiver-token-in-the-query", receiver.url);
    api.expect(
        Method::POST,
        "/api/webhooks",
        Some(ADMIN),
        Some(json!({ "url": url, "secret": SECRET })),
        201,
    )
    .await;
    let refused = api
        .expect(
            Method::POST,
            "/api/webhooks",
            Some(ADMIN),
            Some(json!({ "url": "ftp://crm.bank.example/hooks" })),
            422,
        )
        .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("http or https"),
        "{refused}"
    );
    let (customer, chat) = api.customer("cust-untrusted").await;
    api.send(&customer, &chat, "hello").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let failed: Value = loop {
        let pending = api
            .expect(
                Method::GET,
                "/api/webhooks/deliveries?state=pending",
                Some(ADMIN),
                None,
                200,
            )
            .await;
        if let Some(d) = pending
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["lastError"].is_string())
        {
            break d.clone();
        }
        assert!(Instant::now() < deadline, "no failed attempt: {pending}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        failed["lastError"],
        "TLS handshake failed: invalid peer certificate: UnknownIssuer (not signed by a \
         trusted CA: the system's, or --webhook-ca)"
    );
    assert_eq!(receiver.log(|l| (l.requests, l.tls_connections)), (0, 0));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains("receiver-token-in-the-query"),
        "the URL's token is in the log"
    );
}

#[test]
fn a_webhook_ca_file_without_a_certificate_stops_the_server_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not-a-ca.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, says) in [
        (&not_pem, "holds no PEM certificate"),
        (&missing, "No such file"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-http"))
            .args(["--bind", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("chat.db"))
            .arg("--webhook-ca")
            .arg(file)
            .env_remove("CHAT_WEBHOOK_CA")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("chat-http: --webhook-ca {}: ", file.display());
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
