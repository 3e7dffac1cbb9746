//! chat-client over TLS: the real server (`chat_http::testing::TestServer`) behind a
//! TLS-terminating front whose certificate a test CA signed, as a deployment puts it
//! behind a proxy. REST, uploads and downloads over `https`, the WebSocket over `wss`,
//! and a client that does not trust the CA refused in the handshake, before anything
//! reaches the server.

#[path = "../../chat-http/tests/support/tls.rs"]
mod test_ca;
#[path = "support/tls_front.rs"]
mod tls_front;

use std::time::Duration;

use chat_client::{Client, Error, Event, Page, ServerFrame};
use chat_http::testing::TestServer;
use test_ca::TestCa;
use tls_front::TlsFront;

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn a_client_trusting_the_servers_ca_speaks_https_and_wss() {
    let server = TestServer::open();
    let ca = TestCa::new("chat test CA");
    let front = TlsFront::start(ca.acceptor(&["localhost", "127.0.0.1"]), server.addr());
    let client = Client::builder(&front.url())
        .ca_pem(ca.pem())
        .build()
        .unwrap();
    assert!(client.base().starts_with("https://localhost:"));

    client.health().await.unwrap();
    let customer = client.customer_login("cust-1", None, None).await.unwrap();
    let chat = customer.chat.id.to_string();
    let me = client.with_token(customer.token);
    let first = me.send(&chat, "hello over TLS", Some("m-1")).await.unwrap();
    assert!(first.created);
    assert_eq!(first.message.seq, 1);
    me.send(&chat, "second", None).await.unwrap();
    let page = Page {
        before: Some(3),
        limit: Some(1),
        ..Page::default()
    };
    let newest = me.messages(&chat, page).await.unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!((newest[0].seq, newest[0].content.as_str()), (2, "second"));

    // A file up and down again, streamed through the same TLS connections.
    let bytes = b"notes sent over TLS\n".to_vec();
    let sent = me
        .upload(&chat, "notes.txt", Some("text/plain"), bytes.clone(), None)
        .await
        .unwrap();
    let attachment = sent.message.attachment.expect("an attachment");
    let download = me.download(&attachment.id.to_string(), None).await.unwrap();
    assert_eq!(download.status, 200);
    assert_eq!(download.response.bytes().await.unwrap(), bytes);

    // The WebSocket over wss: authenticated, joined, and a new message arrives live.
    let mut socket = me.connect().await.unwrap();
    assert_eq!(socket.identity().role, "customer");
    socket.join_chat(&chat, None).await.unwrap();
    let live = me.send(&chat, "live over wss", None).await.unwrap();
    let message = tokio::time::timeout(PATIENCE, async {
        loop {
            if let ServerFrame::Event(Event::NewMessage { message }) =
                socket.next().await.unwrap().frame
            {
                return message;
            }
        }
    })
    .await
    .expect("the message in time");
    assert_eq!(message, live.message);
    socket.close().await;
    assert!(
        front.forwarded() >= 2,
        "REST and the WebSocket went through"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_not_trusting_the_servers_ca_is_refused_before_anything_reaches_it() {
    let server = TestServer::open();
    let front = TlsFront::start(
        TestCa::new("someone else's CA").acceptor(&["localhost"]),
        server.addr(),
    );
    // Another CA given, and the system's roots (none of which signed the test CA).
    let client = Client::builder(&front.url())
        .ca_pem(TestCa::new("chat test CA").pem())
        .build()
        .unwrap();

    let refused = client
        .customer_login("cust-1", None, None)
        .await
        .unwrap_err();
    let Error::Tls { url, reason } = &refused else {
        panic!("expected a TLS error, got {refused:?}");
    };
    assert_eq!(url, &format!("{}/api/customers/login", front.url()));
    assert_eq!(
        reason,
        "the server's certificate is not trusted: it is not signed by a CA this client \
         trusts (the system's, or one added as a CA certificate) (UnknownIssuer)"
    );
    assert_eq!(refused.code(), "tls");
    assert!(!refused.is_transient(), "retrying cannot help");

    let socket = client.with_token("any").connect().await.unwrap_err();
    assert!(
        matches!(&socket, Error::Tls { url, reason }
            if url.starts_with("wss://localhost:") && reason.contains("(UnknownIssuer)")),
        "{socket:?}"
    );

    // Both handshakes failed at the front; not a byte went on to the server.
    tokio::time::timeout(PATIENCE, async {
        while front.refused() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the front saw both handshakes fail");
    assert_eq!(front.forwarded(), 0);
}

#[test]
fn a_ca_that_is_not_pem_is_refused_when_the_client_is_built() {
    let refused = Client::builder("https://localhost:1")
        .ca_pem("not a certificate\n")
        .build()
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "TLS with https://localhost:1: the CA certificates given: holds no PEM certificate \
         (-----BEGIN CERTIFICATE-----)"
    );
}
