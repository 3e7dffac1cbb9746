//! TLS for the webhooks' requests to `https` receivers: the CA roots trusted (the
//! system's, read from `/etc/ssl/certs`, plus the operator's `--webhook-ca`), the one
//! rustls client configuration made from them when the sender is made, and the
//! handshake that turns a TCP connection into the [`Stream`] `webhooks.rs` speaks
//! HTTP/1.1 on. A receiver's certificate is always verified, against those roots and the
//! URL's host: nothing here can turn that off. It knows nothing of HTTP, and offers no
//! client certificate (no mTLS: docs/DEPLOY.md, "Webhooks").
//!
//! rustls on its `ring` provider (not aws-lc-rs, whose build needs cmake), given to each
//! configuration explicitly: no process-wide default provider is installed or relied on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

/// A connection to a receiver: plain TCP (`http`) or TLS over TCP (`https`).
pub(crate) type Stream = Either<TcpStream, TlsStream<TcpStream>>;

/// What an `https` request fails with when no CA certificate at all is trusted.
const NO_ROOTS: &str = "TLS: no CA certificate is trusted (install the system's \
                        ca-certificates, or give --webhook-ca)";

/// The TLS client every `https` request of a sender shares, made once with its roots.
/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct TlsClient {
    /// `None` when no root is trusted: every `https` request then fails at once, saying
    /// so, rather than at each receiver's certificate.
    connector: Option<TlsConnector>,
    /// Whether the lack of roots was logged (once per sender, at its first `https`
    /// request: a server that sends no `https` webhook has nothing to be warned of).
    warned: Arc<AtomicBool>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("has_roots", &self.connector.is_some())
            .finish()
    }
}

impl TlsClient {
    /// A client trusting the system's CA roots (those that cannot be read are logged
    /// and skipped).
    pub(crate) fn system() -> Self {
        Self::with_roots(system_roots())
    }

    /// A client trusting the system's CA roots and the CA certificates in `ca_pem` (PEM,
    /// one or more). Errs, in words for the operator, when `ca_pem` holds no certificate
    /// or one that cannot be a root.
    pub(crate) fn system_and(ca_pem: &[u8]) -> Result<Self, String> {
        let mut roots = system_roots();
        for cert in parse_pem(ca_pem)? {
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
        Ok(Self::with_roots(roots))
    }

    /// A client trusting exactly `roots`.
    pub(crate) fn with_roots(roots: RootCertStore) -> Self {
        let connector = (!roots.is_empty()).then(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring's provider supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            TlsConnector::from(Arc::new(config))
        });
        Self {
            connector,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The TLS handshake on `tcp` with the receiver named `host` (a DNS name, or an IP
    /// address without brackets): the name sent as SNI (not for an address) and checked
    /// against the certificate, which must chain to a trusted root. The error is the
    /// failure's reason, without the URL.
    pub(crate) async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, String> {
        let connector = self.connector.as_ref().ok_or_else(|| self.no_roots())?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| "TLS: the URL's host is not a name a certificate can carry")?;
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {}", describe(&e)))
    }

    /// `Ok` when some root is trusted (an `https` request can succeed at all); else the
    /// reason every one fails, logged once.
    pub(crate) fn ready(&self) -> Result<(), String> {
        match self.connector {
            Some(_) => Ok(()),
            None => Err(self.no_roots()),
        }
    }

    fn no_roots(&self) -> String {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("{NO_ROOTS}: every https webhook request fails");
        }
        NO_ROOTS.into()
    }
}

/// The system's CA roots (`/etc/ssl/certs`, or `SSL_CERT_FILE`, `SSL_CERT_DIR`), as
/// rustls-native-certs finds them; none when there are none.
fn system_roots() -> RootCertStore {
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "some of the system's CA certificates could not be read");
    }
    let mut roots = RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(native.certs);
    if unusable > 0 {
        tracing::debug!(unusable, "system CA certificates skipped");
    }
    roots
}

/// The certificates in a PEM file, at least one.
fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

/// A failed handshake in rustls' words, with the two common certificate failures
/// explained; never the host (rustls' own words for a name mismatch carry it).
fn describe(e: &std::io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        // The connection failed or closed mid-handshake (not a TLS receiver?).
        return e.kind().to_string();
    };
    match tls {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "invalid peer certificate: NotValidForName (the certificate does not name the \
              URL's host)"
            .into(),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "invalid peer certificate: UnknownIssuer (not signed by a trusted CA: the \
             system's, or --webhook-ca)"
                .into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
#[path = "../tests/support/tls.rs"]
mod test_ca;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use chatcore::{WebhookRequest, WebhookResponse, WebhookSender};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::test_ca::TestCa;
    use super::*;
    use crate::webhooks::HttpSender;

    /// What a receiver saw: connections accepted, and per request its head and the
    /// connection's SNI and ALPN protocol.
    #[derive(Default)]
    struct Seen {
        accepted: AtomicUsize,
        requests: Mutex<Vec<Request>>,
    }

    struct Request {
        head: String,
        sni: Option<String>,
        alpn: Option<Vec<u8>>,
    }

    /// A receiver on 127.0.0.1 speaking HTTP/1.1 by hand, over TLS with `acceptor`'s
    /// certificate or over plain TCP; answers each request 200 and keeps the connection.
    /// Returns its port.
    async fn receiver(acceptor: Option<TlsAcceptor>) -> (u16, Arc<Seen>) {
        receiver_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), acceptor)
    }

    /// [`receiver`] on `listener`.
    fn receiver_on(listener: TcpListener, acceptor: Option<TlsAcceptor>) -> (u16, Arc<Seen>) {
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let (seen, acceptor) = (shared.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        None => serve(tcp, None, None, &seen).await,
                        Some(acceptor) => {
                            // A failed handshake is the client's refusal: nothing served.
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let (_, connection) = tls.get_ref();
                            let sni = connection.server_name().map(str::to_string);
                            let alpn = connection.alpn_protocol().map(<[u8]>::to_vec);
                            serve(tls, sni, alpn, &seen).await;
                        }
                    }
                });
            }
        });
        (port, seen)
    }

    /// Requests one after another on one connection: each head, then its
    /// content-length's bytes, answered 200. Anything that does not start like a POST
    /// (a TLS handshake sent to a plain receiver) closes the connection.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        mut socket: S,
        sni: Option<String>,
        alpn: Option<Vec<u8>>,
        seen: &Seen,
    ) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let (head, length) = loop {
                if buffer.len() >= 4 && !buffer.starts_with(b"POST") {
                    return;
                }
                if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                    let length = head
                        .to_lowercase()
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (head, end + 4 + length);
                }
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            };
            while buffer.len() < length {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            buffer.drain(..length);
            seen.requests.lock().unwrap().push(Request {
                head,
                sni: sni.clone(),
                alpn: alpn.clone(),
            });
            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if socket.write_all(reply).await.is_err() || socket.flush().await.is_err() {
                return;
            }
        }
    }

    fn request(url: &str) -> WebhookRequest {
        crate::webhooks::tests::request(url, Duration::from_secs(5))
    }

    fn failed(answer: WebhookResponse) -> String {
        match answer {
            WebhookResponse::Failed(why) => why,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_receiver_signed_by_the_given_ca_gets_every_request_on_one_connection() {
        let ca = TestCa::new("bank internal CA");
        let (port, seen) = receiver(Some(ca.acceptor(&["localhost", "127.0.0.1"]))).await;
        let sender = HttpSender::with_ca(ca.pem().as_bytes()).unwrap();
        let url = format!("https://localhost:{port}/hook?token=t");
        for _ in 0..10 {
            let answer = sender.send(request(&url)).await;
            assert_eq!(answer, WebhookResponse::Status(200));
        }
        assert_eq!(
            seen.accepted.load(Ordering::SeqCst),
            1,
            "kept between requests"
        );
        {
            let requests = seen.requests.lock().unwrap();
            assert_eq!(requests.len(), 10);
            let first = &requests[0];
            assert!(
                first.head.starts_with("POST /hook?token=t HTTP/1.1\r\n"),
                "{}",
                first.head
            );
            assert!(
                first
                    .head
                    .to_lowercase()
                    .contains(&format!("\r\nhost: localhost:{port}")),
                "{}",
                first.head
            );
            assert_eq!(
                first.sni.as_deref(),
                Some("localhost"),
                "SNI is the URL's host"
            );
            assert_eq!(first.alpn.as_deref(), Some(&b"http/1.1"[..]));
        }
        // The same receiver by address: its certificate names 127.0.0.1 too (no SNI for
        // an address), on a connection of its own (another pool key).
        let answer = sender
            .send(request(&format!("https://127.0.0.1:{port}/hook?token=t")))
            .await;
        assert_eq!(answer, WebhookResponse::Status(200));
        assert_eq!(seen.accepted.load(Ordering::SeqCst), 2);
        assert_eq!(seen.requests.lock().unwrap()[10].sni, None);
    }

    #[tokio::test]
    async fn an_ipv6_literal_in_brackets_is_the_address_the_certificate_must_name() {
        let listener = match TcpListener::bind("[::1]:0").await {
            Ok(listener) => listener,
            Err(e) => {
                // CI must run it (.ci/run turns the IPv6 loopback on where it is off).
                let why = format!("no IPv6 loopback here ({e}): skipped");
                assert!(std::env::var_os("CI").is_none(), "{why}");
                eprintln!("{why}");
                return;
            }
        };
        let ca = TestCa::new("bank internal CA");
        let (port, seen) = receiver_on(listener, Some(ca.acceptor(&["::1"])));
        let sender = HttpSender::with_ca(ca.pem().as_bytes()).unwrap();
        let answer = sender
            .send(request(&format!("https://[::1]:{port}/hook?token=t")))
            .await;
        assert_eq!(answer, WebhookResponse::Status(200));
        let requests = seen.requests.lock().unwrap();
        assert_eq!(requests[0].sni, None, "no SNI for an address");
        assert!(
            requests[0]
                .head
                .to_lowercase()
                .contains(&format!("\r\nhost: [::1]:{port}\r\n")),
            "{}",
            requests[0].head
        );
    }

    #[tokio::test]
    async fn a_receiver_whose_ca_is_not_trusted_fails_the_handshake_and_gets_nothing() {
        let ca = TestCa::new("someone else's CA");
        let (port, seen) = receiver(Some(ca.acceptor(&["localhost"]))).await;
        // Another CA given (and the system's roots, if any: none signed the test CA).
        let sender = HttpSender::with_ca(TestCa::new("bank internal CA").pem().as_bytes()).unwrap();
        let url = format!("https://localhost:{port}/hook?token=secret-token");
        let why = failed(sender.send(request(&url)).await);
        assert_eq!(
            why,
            "TLS handshake failed: invalid peer certificate: UnknownIssuer (not signed by a \
             trusted CA: the system's, or --webhook-ca)"
        );
        assert!(
            seen.requests.lock().unwrap().is_empty(),
            "a request arrived"
        );
    }

    #[tokio::test]
    async fn a_certificate_for_another_host_fails_the_handshake_and_gets_nothing() {
        let ca = TestCa::new("bank internal CA");
        let (port, seen) = receiver(Some(ca.acceptor(&["crm.bank.example"]))).await;
        let sender = HttpSender::with_ca(ca.pem().as_bytes()).unwrap();
        for host in ["localhost", "127.0.0.1"] {
            let url = format!("https://{host}:{port}/hook?token=secret-token");
            let why = failed(sender.send(request(&url)).await);
            assert_eq!(
                why,
                "TLS handshake failed: invalid peer certificate: NotValidForName (the \
                 certificate does not name the URL's host)",
                "{host}"
            );
        }
        assert!(
            seen.requests.lock().unwrap().is_empty(),
            "a request arrived"
        );
    }

    #[tokio::test]
    async fn https_never_reuses_a_plain_connection_to_the_same_host_and_port() {
        let (port, seen) = receiver(None).await;
        // A root trusted, whatever the system has, so that https gets to its handshake.
        let sender = HttpSender::with_ca(TestCa::new("bank internal CA").pem().as_bytes()).unwrap();
        let plain = format!("http://127.0.0.1:{port}/hook");
        assert_eq!(
            sender.send(request(&plain)).await,
            WebhookResponse::Status(200)
        );
        // A kept plain connection to 127.0.0.1:port is idle now; https must not take it.
        let why = failed(
            sender
                .send(request(&format!("https://127.0.0.1:{port}/hook")))
                .await,
        );
        assert!(why.starts_with("TLS handshake failed: "), "{why}");
        assert_eq!(seen.requests.lock().unwrap().len(), 1);
        assert_eq!(seen.accepted.load(Ordering::SeqCst), 2);
        // And the plain one is still kept for plain requests.
        assert_eq!(
            sender.send(request(&plain)).await,
            WebhookResponse::Status(200)
        );
        assert_eq!(seen.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_receiver_silent_in_the_handshake_times_out_with_the_request() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts, then never answers the ClientHello.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let sender = HttpSender::with_ca(TestCa::new("bank internal CA").pem().as_bytes()).unwrap();
        let mut silent = request(&format!("https://localhost:{port}/hook"));
        silent.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        assert_eq!(failed(sender.send(silent).await), "timed out after 300ms");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn with_no_root_at_all_https_fails_saying_so_and_http_still_works() {
        let sender = HttpSender::with_tls(TlsClient::with_roots(RootCertStore::empty()));
        let ca = TestCa::new("bank internal CA");
        let (port, seen) = receiver(Some(ca.acceptor(&["localhost"]))).await;
        for _ in 0..2 {
            let why = failed(
                sender
                    .send(request(&format!("https://localhost:{port}/hook")))
                    .await,
            );
            assert_eq!(why, NO_ROOTS);
        }
        assert_eq!(
            seen.accepted.load(Ordering::SeqCst),
            0,
            "not even connected"
        );
        let (port, _) = receiver(None).await;
        assert_eq!(
            sender
                .send(request(&format!("http://127.0.0.1:{port}/hook")))
                .await,
            WebhookResponse::Status(200)
        );
    }

    #[test]
    fn a_ca_file_must_hold_pem_certificates() {
        let ca = TestCa::new("bank internal CA");
        let two = format!("{}{}", ca.pem(), TestCa::new("second CA").pem());
        assert!(
            TlsClient::system_and(two.as_bytes())
                .unwrap()
                .ready()
                .is_ok()
        );
        let refused = |pem: &str| TlsClient::system_and(pem.as_bytes()).unwrap_err();
        assert_eq!(
            refused(""),
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        assert_eq!(
            refused("not a certificate\n"),
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        );
        assert!(
            refused("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
                .starts_with("not PEM: "),
        );
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(
            refused(garbage).starts_with("not a usable CA certificate: "),
            "{}",
            refused(garbage)
        );
    }
}
