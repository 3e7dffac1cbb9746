//! The webhooks' HTTP requests: [`HttpSender`], chatcore's `WebhookSender` on hyper's
//! HTTP/1.1 client connections, kept open per receiver between requests, over TLS for
//! `https` receivers (`webhooks_tls.rs`: the trusted roots, the handshake). It only
//! carries: what to send, when, signed how and retried how is the engine's
//! (`chatcore::service` webhooks). It never follows a redirect, goes through no proxy,
//! gives up at the request's timeout, reads at most [`MAX_RESPONSE_BYTES`] of an answer
//! (to keep the connection for the next request) and logs nothing: the engine logs the
//! outcome without the URL's query or the secret.
//!
//! Not reqwest's client: a webhook is one small POST after another to a handful of
//! receivers, and a connection taken from a small pool and written to directly costs a
//! fraction of what a general client's layers do per request (docs/BENCHMARKS.md,
//! "Webhooks").

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::header::{CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use axum::http::{Method, Request, Uri};
use bytes::Bytes;
use chatcore::webhooks::SIGNATURE_HEADER;
use chatcore::{WebhookRequest, WebhookResponse, WebhookSender};
use http_body::Body as _;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::either::Either;

use crate::webhooks_tls::{Stream, TlsClient};

/// The URL schemes this build sends to: `https` with the certificate verified against
/// the system's roots and `--webhook-ca` (docs/DEPLOY.md, "Webhooks").
pub const SCHEMES: &[&str] = &["http", "https"];

/// Most bytes of a receiver's answer read (the rest is dropped with the connection).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The longest a new connection may take to open (within the request's own timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection is kept for the next request to its receiver.
const IDLE_FOR: Duration = Duration::from_secs(30);
/// Most idle connections kept per receiver (the worker's concurrency is 16 by default).
const IDLE_PER_RECEIVER: usize = 32;
/// The longest spent reading what a receiver answers after its status.
const DRAIN_FOR: Duration = Duration::from_secs(1);

const USER_AGENT_VALUE: &str = concat!("chat-http-webhooks/", env!("CARGO_PKG_VERSION"));

/// Sends webhook requests over connections kept per receiver.
#[derive(Debug, Clone)]
pub struct HttpSender {
    idle: Arc<Mutex<HashMap<String, Vec<Idle>>>>,
    /// The TLS client of every `https` request, made once with the sender.
    tls: TlsClient,
}

#[derive(Debug)]
struct Idle {
    connection: http1::SendRequest<Full<Bytes>>,
    since: Instant,
}

/// Where a request goes: `scheme://host:port` (the pool's key: a plain and a TLS
/// receiver on one host and port share no connection), the host and port to connect to,
/// the TLS client for `https`, the `Host` header and the request target.
struct Target {
    key: String,
    host: String,
    port: u16,
    tls: Option<TlsClient>,
    host_header: HeaderValue,
    path: Uri,
}

impl Target {
    /// `url`'s target, `https` ones with `tls`; `None` for a URL this sender does not
    /// send to.
    fn parse(url: &str, tls: &TlsClient) -> Option<Self> {
        // The fragment is the client's, never sent.
        let url = url.split('#').next().unwrap_or_default();
        let uri: Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let (tls, default_port) = match scheme.as_str() {
            "http" => (None, 80),
            "https" => (Some(tls.clone()), 443),
            _ => return None,
        };
        let authority = uri.authority()?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(default_port);
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .ok()?;
        Some(Self {
            key: format!("{scheme}://{host}:{port}").to_ascii_lowercase(),
            host_header: HeaderValue::from_str(authority.as_str()).ok()?,
            host,
            port,
            tls,
            path,
        })
    }
}

/// Why a request failed, in words for the operator (never the URL: it may carry a token
/// in its query).
enum Failure {
    Connect,
    Sending,
    /// The TLS handshake failed or could not start (`webhooks_tls`' words).
    Tls(String),
    Other(&'static str),
}

impl Failure {
    fn describe(self) -> String {
        match self {
            Self::Connect => "could not connect".into(),
            Self::Sending => "the connection failed while sending".into(),
            Self::Tls(why) => why,
            Self::Other(why) => why.into(),
        }
    }
}

impl Default for HttpSender {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpSender {
    /// A sender with no connection open yet, trusting the system's CA roots for `https`
    /// receivers (none readable: `https` requests fail, saying so, and a warning is
    /// logged at the first).
    pub fn new() -> Self {
        Self::with_tls(TlsClient::system())
    }

    /// [`HttpSender::new`], trusting also the CA certificates in `ca_pem` (PEM, one or
    /// more: `--webhook-ca`, a bank's internal CA). Errs, in words for the operator
    /// (without the file's name), when it holds no certificate or one that cannot be a
    /// CA root.
    pub fn with_ca(ca_pem: &[u8]) -> Result<Self, String> {
        Ok(Self::with_tls(TlsClient::system_and(ca_pem)?))
    }

    pub(crate) fn with_tls(tls: TlsClient) -> Self {
        Self {
            idle: Arc::default(),
            tls,
        }
    }

    /// An idle connection to `key` that is still open, if one is kept.
    fn take(&self, key: &str) -> Option<http1::SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = idle.get_mut(key)?;
        while let Some(conn) = kept.pop() {
            if !conn.connection.is_closed() && conn.since.elapsed() < IDLE_FOR {
                return Some(conn.connection);
            }
        }
        None
    }

    /// Keeps a connection whose last answer was read to its end, for the next request.
    fn keep(&self, key: String, connection: http1::SendRequest<Full<Bytes>>) {
        if connection.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Connections idle too long, or closed by their receiver, go first.
        idle.retain(|_, kept| {
            kept.retain(|c| !c.connection.is_closed() && c.since.elapsed() < IDLE_FOR);
            !kept.is_empty()
        });
        let kept = idle.entry(key).or_default();
        if kept.len() < IDLE_PER_RECEIVER {
            kept.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// A connection to `target`, its TLS handshake (`https`) included in
    /// [`CONNECT_TIMEOUT`].
    async fn connect(target: &Target) -> Result<http1::SendRequest<Full<Bytes>>, Failure> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, Self::open(target))
            .await
            .map_err(|_| Failure::Other("timed out while connecting"))??;
        let (connection, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        // The connection's reads and writes; it ends when the receiver closes it or
        // when its `SendRequest` is dropped.
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok(connection)
    }

    /// The TCP connection, then for `https` the TLS handshake on it.
    async fn open(target: &Target) -> Result<Stream, Failure> {
        if let Some(tls) = &target.tls {
            // With no root to verify against, fails at once, without connecting.
            tls.ready().map_err(Failure::Tls)?;
        }
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|_| Failure::Connect)?;
        let _ = tcp.set_nodelay(true);
        match &target.tls {
            None => Ok(Either::Left(tcp)),
            Some(tls) => Ok(Either::Right(
                tls.connect(&target.host, tcp).await.map_err(Failure::Tls)?,
            )),
        }
    }

    fn request(target: &Target, request: &WebhookRequest) -> Option<Request<Full<Bytes>>> {
        Request::builder()
            .method(Method::POST)
            .uri(target.path.clone())
            .header(HOST, target.host_header.clone())
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(SIGNATURE_HEADER, &request.signature)
            .header("chat-event-id", &request.event_id)
            .header("chat-event-type", &request.kind)
            .body(Full::new(request.body.clone()))
            .ok()
    }

    /// Sends on a new connection.
    async fn fresh(
        target: &Target,
        message: Request<Full<Bytes>>,
    ) -> Result<
        (
            http1::SendRequest<Full<Bytes>>,
            hyper::Response<hyper::body::Incoming>,
        ),
        Failure,
    > {
        let mut connection = Self::connect(target).await?;
        let answer = connection
            .send_request(message)
            .await
            .map_err(|_| Failure::Sending)?;
        Ok((connection, answer))
    }

    async fn attempt(&self, target: &Target, request: &WebhookRequest) -> Result<u16, Failure> {
        let message =
            Self::request(target, request).ok_or(Failure::Other("not a valid request"))?;
        let kept = match self.take(&target.key) {
            Some(mut kept) => kept.ready().await.is_ok().then_some(kept),
            None => None,
        };
        let (mut connection, answer) = match kept {
            Some(mut kept) => match kept.try_send_request(message).await {
                Ok(answer) => (kept, answer),
                // The receiver closed the kept connection meanwhile: the request comes
                // back unsent and goes on a new connection.
                Err(mut e) => {
                    Self::fresh(target, e.take_message().ok_or(Failure::Sending)?).await?
                }
            },
            None => Self::fresh(target, message).await?,
        };
        let status = answer.status().as_u16();
        // The status is the answer; a little of the body is read so that the connection
        // can serve the next request, and no more than a second is spent.
        let mut body = answer.into_body();
        let drain = async {
            let mut read = 0;
            while read <= MAX_RESPONSE_BYTES {
                match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                    Some(Err(_)) => return false,
                    None => return connection.ready().await.is_ok(),
                }
            }
            false
        };
        if tokio::time::timeout(DRAIN_FOR, drain).await == Ok(true) {
            self.keep(target.key.clone(), connection);
        }
        Ok(status)
    }
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn send(&self, request: WebhookRequest) -> WebhookResponse {
        let Some(target) = Target::parse(&request.url, &self.tls) else {
            return WebhookResponse::Failed("not a URL this server sends to".into());
        };
        match tokio::time::timeout(request.timeout, self.attempt(&target, &request)).await {
            Ok(Ok(status)) => WebhookResponse::Status(status),
            Ok(Err(failure)) => WebhookResponse::Failed(failure.describe()),
            Err(_) => WebhookResponse::Failed(format!("timed out after {:?}", request.timeout)),
        }
    }
}

/// This node's webhook delivery worker (the engine's), running where [`start_worker`]
/// put it; [`Worker::stop`] ends it.
pub(crate) enum Worker {
    /// On the server's runtime.
    Here(chatcore::WebhookWorker),
    /// On a thread of its own: stopping it is asked of the thread, which answers once
    /// the worker has ended.
    Thread {
        stop: tokio::sync::oneshot::Sender<()>,
        stopped: tokio::sync::oneshot::Receiver<()>,
    },
}

/// The thread's name (and its runtime's blocking threads': the store's reads and DNS).
const WORKER_THREAD: &str = "chat-webhooks";

impl Worker {
    /// Stops the worker (see `chatcore::WebhookWorker::stop`) and its thread.
    pub(crate) async fn stop(self) {
        match self {
            Self::Here(worker) => worker.stop().await,
            Self::Thread { stop, stopped } => {
                let _ = stop.send(());
                let _ = stopped.await;
            }
        }
    }
}

/// Starts the engine's delivery worker with `sender`: with `nice`, on a thread of its
/// own whose CPU priority is `nice` (Linux; 0 to 19, as `nice(1)`), else on the
/// calling runtime.
///
/// On its own thread (a current-thread runtime), every part of a delivery runs there:
/// the lanes, the requests with their connections' reads and writes (the kernel's TCP
/// work included) and TLS, and the store's reads (its blocking threads, also lowered).
/// When the node is short of CPU, chat requests go first and deliveries fall behind,
/// kept in the outbox, until there is CPU again; with CPU to spare the priority changes
/// nothing. The store's writes still go through its own writer, and a PostgreSQL
/// store's connections are driven by the runtime that opened the store, never by this
/// thread (chat-postgres, `PgStore`), so no chat request waits on a thread that yields.
pub(crate) fn start_worker(
    service: chatcore::ChatService,
    sender: HttpSender,
    nice: Option<u8>,
) -> std::io::Result<Worker> {
    let Some(nice) = nice else {
        return Ok(Worker::Here(service.start_webhooks(Arc::new(sender))));
    };
    let (stop, stop_asked) = tokio::sync::oneshot::channel::<()>();
    let (stopped_tx, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name(WORKER_THREAD.into())
        .spawn(move || {
            lower_priority(nice);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(WORKER_THREAD)
                .on_thread_start(move || lower_priority(nice))
                .build();
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let worker = service.start_webhooks(Arc::new(sender));
                let _ = ready_tx.send(Ok(()));
                // Asked, or the server went away without asking.
                let _ = stop_asked.await;
                worker.stop().await;
            });
            drop(runtime);
            let _ = stopped_tx.send(());
        })?;
    ready
        .recv()
        .map_err(|_| std::io::Error::other("the webhook thread ended at its start"))??;
    Ok(Worker::Thread { stop, stopped })
}

/// Lowers the calling thread's CPU priority to `nice` (on Linux each thread has its own
/// nice value, and raising it needs no privilege). Elsewhere the thread keeps the
/// process's priority.
fn lower_priority(nice: u8) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        let me = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(me), i32::from(nice)) {
            tracing::warn!(error = %e, "cannot lower the webhook thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// How a raw receiver answers each request on a connection.
    #[derive(Clone, Copy)]
    enum Answer {
        /// 200, the connection kept open.
        KeepAlive,
        /// 200, then the connection closed 10 ms later, with no `Connection: close` said.
        ThenClose,
        /// 201 with a body over [`MAX_RESPONSE_BYTES`].
        Large,
        /// Nothing, ever.
        Silent,
    }

    /// A receiver on a real socket speaking HTTP/1.1 by hand (so that it can misbehave);
    /// answers the connections it accepted, counted.
    async fn receiver(answer: Answer) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?token=t", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        // One request: its head, then its content-length's bytes.
                        let (head, length) = loop {
                            if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&seen[..end]).to_lowercase();
                                let length = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                                    .unwrap_or(0);
                                break (end + 4, length);
                            }
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        };
                        while seen.len() < head + length {
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        let request = String::from_utf8_lossy(&seen[..head]).to_string();
                        assert!(
                            request.starts_with("POST /hook?token=t HTTP/1.1\r\n"),
                            "{request}"
                        );
                        assert!(
                            request.to_lowercase().contains("\r\nhost: 127.0.0.1:"),
                            "{request}"
                        );
                        assert!(request.contains("\r\nchat-event-id: e\r\n"), "{request}");
                        seen.drain(..head + length);
                        let reply = match answer {
                            Answer::KeepAlive | Answer::ThenClose => {
                                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string()
                            }
                            Answer::Large => {
                                let body = "x".repeat(MAX_RESPONSE_BYTES * 2);
                                format!(
                                    "HTTP/1.1 201 Created\r\ncontent-length: {}\r\n\r\n{body}",
                                    body.len()
                                )
                            }
                            Answer::Silent => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                return;
                            }
                        };
                        if socket.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                        if matches!(answer, Answer::ThenClose) {
                            // Closed once idle, as receivers end keep-alive connections.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    /// A small signed-looking request to `url` (the receivers here check no signature).
    pub(crate) fn request(url: &str, timeout: Duration) -> WebhookRequest {
        WebhookRequest {
            url: url.to_string(),
            event_id: "e".into(),
            kind: "new_message".into(),
            body: Bytes::from_static(b"{}"),
            signature: "t=1,v1=00".into(),
            timeout,
        }
    }

    #[tokio::test]
    async fn one_connection_serves_request_after_request() {
        let (url, accepted) = receiver(Answer::KeepAlive).await;
        let sender = HttpSender::new();
        for _ in 0..20 {
            let answer = sender.send(request(&url, Duration::from_secs(5))).await;
            assert_eq!(answer, WebhookResponse::Status(200));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "kept between requests");
    }

    #[tokio::test]
    async fn a_receiver_that_closes_each_connection_still_gets_every_request() {
        let (url, accepted) = receiver(Answer::ThenClose).await;
        let sender = HttpSender::new();
        for i in 0..10 {
            let answer = sender.send(request(&url, Duration::from_secs(5))).await;
            assert_eq!(answer, WebhookResponse::Status(200), "request {i}");
            // The connection was kept; the receiver closes it before the next request.
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn an_answer_too_long_to_read_gives_its_status_and_its_connection_up() {
        let (url, accepted) = receiver(Answer::Large).await;
        let sender = HttpSender::new();
        for _ in 0..3 {
            let answer = sender.send(request(&url, Duration::from_secs(5))).await;
            assert_eq!(answer, WebhookResponse::Status(201));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "none kept");
    }

    #[tokio::test]
    async fn a_silent_receiver_times_out_and_a_closed_port_cannot_connect() {
        let (url, _) = receiver(Answer::Silent).await;
        let sender = HttpSender::new();
        let started = Instant::now();
        let answer = sender.send(request(&url, Duration::from_millis(300))).await;
        assert_eq!(
            answer,
            WebhookResponse::Failed("timed out after 300ms".into())
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let answer = sender
            .send(request(
                &format!("http://127.0.0.1:{port}/"),
                Duration::from_secs(5),
            ))
            .await;
        assert_eq!(answer, WebhookResponse::Failed("could not connect".into()));
    }

    #[test]
    fn targets_are_scheme_host_port_host_header_and_path() {
        let tls = TlsClient::with_roots(rustls::RootCertStore::empty());
        let parse = |url: &str| Target::parse(url, &tls);
        let t = parse("http://CRM.internal:8080/hooks/chat?token=x#frag").unwrap();
        assert_eq!(t.key, "http://crm.internal:8080");
        assert_eq!((t.host.as_str(), t.port), ("CRM.internal", 8080));
        assert!(t.tls.is_none());
        assert_eq!(t.host_header, "CRM.internal:8080");
        assert_eq!(t.path, "/hooks/chat?token=x");
        let t = parse("http://crm.internal").unwrap();
        assert_eq!((t.port, t.path.to_string().as_str()), (80, "/"));
        assert_eq!(t.host_header, "crm.internal");
        let t = parse("http://[::1]:9000/h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        assert_eq!(t.host_header, "[::1]:9000");
        // https: port 443 by default, over TLS, never in the same pool as http.
        let t = parse("HTTPS://crm.internal/hooks").unwrap();
        assert_eq!((t.key.as_str(), t.port), ("https://crm.internal:443", 443));
        assert!(t.tls.is_some());
        assert_eq!(t.host_header, "crm.internal");
        let t = parse("https://[::1]:8443/h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8443));
        assert_eq!(t.key, "https://::1:8443");
        assert_ne!(
            parse("http://crm.internal:8080/").unwrap().key,
            parse("https://crm.internal:8080/").unwrap().key
        );
        for bad in [
            "ftp://crm.internal/",
            "crm.internal/hooks",
            "http://",
            "http:///x",
            "https://",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
