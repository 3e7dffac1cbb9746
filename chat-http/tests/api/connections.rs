//! Connection-level attacks against the real binary (security finding 3, and the slow
//! reader of finding 2), each with short timeouts or small caps set by flag: a request
//! head sent slowly or too long, a request body sent slowly, a connection left idle, a
//! client that never reads a large answer, one address opening more connections than its
//! cap, more connections than the server's cap, and running out of file descriptors.
//! Each test checks that the attacker's connections end (the server closes them) and that
//! other clients are served meanwhile. Other client addresses are real: 127.0.0.2, .3 and
//! .4 are loopback addresses too, and `--limit-loopback` makes the server count them like
//! remote clients. Timing margins are generous: a check is of what happened, never of how
//! fast.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;

use crate::helpers::WsClient;
use crate::server::Server;

/// How long a test waits for the server to close a connection it should close.
const CLOSE_WITHIN: Duration = Duration::from_secs(15);

/// A server with these flags, its database and log in a directory of its own.
fn start(flags: &[&str]) -> (Server, tempfile::TempDir) {
    start_limited(flags, None)
}

fn start_limited(flags: &[&str], open_files: Option<u32>) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_limited(
        &dir.path().join("chat.db"),
        &dir.path().join("server.log"),
        flags,
        open_files,
    );
    (server, dir)
}

fn log_of(dir: &tempfile::TempDir) -> String {
    let path: PathBuf = dir.path().join("server.log");
    std::fs::read_to_string(path).unwrap_or_default()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A TCP connection to the server from this local address.
async fn connect_from(local: &str, server: SocketAddr) -> TcpStream {
    socket_from(local)
        .connect(server)
        .await
        .expect("TCP connect")
}

fn socket_from(local: &str) -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(ip(local), 0))
        .unwrap_or_else(|e| panic!("bind {local}: {e}"));
    socket
}

/// Sends `GET path` on an open connection and reads the answer; its status, or `None`
/// when the connection ended first (refused, or closed by the server).
async fn get(stream: &mut TcpStream, path: &str, token: Option<&str>) -> Option<u16> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{auth}\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return None;
    }
    let answer = tokio::time::timeout(Duration::from_secs(10), read_answer(stream))
        .await
        .expect("no answer and no close within 10 s");
    answer.map(|(status, _)| status)
}

/// One HTTP/1.1 answer with a Content-Length: status and body length, or `None` if the
/// connection ended before it was complete.
async fn read_answer(stream: &mut (impl AsyncRead + Unpin)) -> Option<(u16, usize)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok())?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => have += n,
        }
    }
    Some((status, length))
}

/// Reads until the server closes the connection; the bytes it sent and how long it took.
/// Panics if it stays open for [`CLOSE_WITHIN`].
async fn until_closed(stream: &mut TcpStream) -> (usize, Duration) {
    let started = Instant::now();
    let mut bytes = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at((started + CLOSE_WITHIN).into(), stream.read(&mut chunk))
            .await
        {
            Err(_) => panic!("the server kept the connection open for {CLOSE_WITHIN:?}"),
            Ok(Ok(0) | Err(_)) => return (bytes, started.elapsed()),
            Ok(Ok(n)) => bytes += n,
        }
    }
}

/// A connection the server closed at once, without an answer: a request on it gets none.
async fn expect_refused(stream: &mut TcpStream) {
    let started = Instant::now();
    assert_eq!(get(stream, "/healthz", None).await, None, "answered");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?} to close",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_slow_request_head_is_cut_off_after_the_header_timeout() {
    let (server, _dir) = start(&["--header-read-timeout", "1s", "--keep-alive-timeout", "1m"]);
    let addr = server.addr();

    // One partial header line, then a byte every 200 ms: trickling does not extend the
    // deadline, which runs from the accept.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .await
        .unwrap();
    let mut trickle = tokio::time::interval(Duration::from_millis(200));
    let mut chunk = [0u8; 1024];
    let answered = loop {
        tokio::select! {
            read = slow.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break 0,
                Ok(n) => break n,
            },
            _ = trickle.tick() => {
                if slow.write_all(b"a").await.is_err() {
                    break 0;
                }
            }
        }
        assert!(
            started.elapsed() < CLOSE_WITHIN,
            "a trickled head kept the connection open"
        );
    };
    let elapsed = started.elapsed();
    assert_eq!(answered, 0, "the server answered a head it never completed");
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}"
    );

    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let (bytes, elapsed) = until_closed(&mut silent).await;
    assert_eq!(bytes, 0);
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}"
    );

    // So is one stuck in the middle of HTTP/2's preface, before hyper sees a request.
    let mut preface = TcpStream::connect(addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let (bytes, _) = until_closed(&mut preface).await;
    assert_eq!(bytes, 0);

    // A client that sends its head in time is served.
    let mut prompt = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get(&mut prompt, "/healthz", None).await, Some(200));
}

#[tokio::test]
async fn a_request_head_over_64_kib_is_answered_431() {
    let (server, _dir) = start(&[]);
    let mut big = TcpStream::connect(server.addr()).await.unwrap();
    let padding = "a".repeat(70 * 1024);
    let head = format!("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: {padding}\r\n\r\n");
    // The server may stop reading before the whole head is written.
    let _ = big.write_all(head.as_bytes()).await;
    let answer = tokio::time::timeout(CLOSE_WITHIN, read_answer(&mut big))
        .await
        .expect("no answer to an oversized head");
    assert_eq!(answer.map(|(status, _)| status), Some(431));
    // Under the cap, a long header is fine.
    let mut long = TcpStream::connect(server.addr()).await.unwrap();
    let padding = "a".repeat(30 * 1024);
    let head = format!("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Long: {padding}\r\n\r\n");
    long.write_all(head.as_bytes()).await.unwrap();
    assert_eq!(read_answer(&mut long).await.map(|(s, _)| s), Some(200));
}

#[tokio::test]
async fn a_slow_request_body_is_refused_after_the_body_timeout() {
    let (server, _dir) = start(&["--body-read-timeout", "1s", "--header-read-timeout", "1m"]);
    let (token, chat) = server.api.customer("slow-poster").await;
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /api/chats/{chat}/messages HTTP/1.1\r\nHost: test\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"content\": \""
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A byte of the body every 200 ms: it would take 18 s to arrive whole.
    let trickle = tokio::spawn(async move {
        for _ in 0..90 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let answer = tokio::time::timeout(CLOSE_WITHIN, read_answer(&mut reader))
        .await
        .expect("no answer to a trickled body");
    let elapsed = started.elapsed();
    assert_eq!(answer.map(|(status, _)| status), Some(400));
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(10),
        "answered after {elapsed:?}"
    );
    // The connection is closed, and nothing was stored.
    let mut rest = [0u8; 64];
    let closed = tokio::time::timeout(CLOSE_WITHIN, async {
        loop {
            match reader.read(&mut rest).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection stayed open after the 400");
    trickle.abort();
    assert!(server.api.all_messages(&token, &chat).await.is_empty());
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    // The header timeout is shorter, to show that an idle connection gets the keep-alive
    // timeout, not the header timeout (hyper's own header timeout would close it at 1 s).
    let (server, _dir) = start(&["--header-read-timeout", "1s", "--keep-alive-timeout", "3s"]);
    let mut conn = TcpStream::connect(server.addr()).await.unwrap();
    assert_eq!(get(&mut conn, "/healthz", None).await, Some(200));
    // Reused within the timeout, it serves the next request.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get(&mut conn, "/healthz", None).await, Some(200));
    let (bytes, idle) = until_closed(&mut conn).await;
    assert_eq!(bytes, 0);
    assert!(
        idle >= Duration::from_millis(2500),
        "closed after {idle:?} idle"
    );

    // A next request that is only begun gets the header timeout from its first byte.
    let mut conn = TcpStream::connect(server.addr()).await.unwrap();
    assert_eq!(get(&mut conn, "/healthz", None).await, Some(200));
    conn.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let (bytes, elapsed) = until_closed(&mut conn).await;
    assert_eq!(bytes, 0);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
        "a begun head was closed after {elapsed:?}, not by its header timeout"
    );
}

#[tokio::test]
async fn a_client_that_never_reads_a_large_answer_is_dropped_after_the_write_timeout() {
    // The page byte cap (tests/api/reads.rs) is lifted, so that one answer is large.
    let (server, dir) = start(&[
        "--write-timeout",
        "1s",
        "--max-message-chars",
        "100000",
        "--max-page-bytes",
        "67108864",
    ]);
    let (token, chat) = server.api.customer("reader").await;
    // 20 messages of 100,000 control characters: each is escaped to 6 bytes in JSON, so
    // the page is about 12 MB, far more than the sockets' buffers hold.
    let content = format!("x{}", "\u{1}".repeat(99_999));
    for _ in 0..20 {
        let (status, _) = server.api.send(&token, &chat, &content).await.unwrap();
        assert_eq!(status, 201);
    }
    let page = format!("/api/chats/{chat}/messages?limit=1000");

    // The client asks for the page and does not read for longer than the write timeout.
    let socket = socket_from("127.0.0.1");
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr()).await.unwrap();
    let request =
        format!("GET {page} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\r\n");
    stalled.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // What the kernel had buffered arrives, then the end: the rest was never sent.
    let (received, _) = until_closed(&mut stalled).await;
    assert!(
        received < 11_000_000,
        "received {received} bytes: the answer was not cut off"
    );

    // A client that reads gets the whole page, and the server goes on serving.
    let body = server
        .api
        .expect(Method::GET, &page, Some(&token), None, 200)
        .await;
    assert_eq!(body.as_array().unwrap().len(), 20);
    let log = log_of(&dir);
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn an_idle_websocket_outlives_the_write_timeout() {
    let (server, _dir) = start(&["--write-timeout", "1s"]);
    let (token, chat) = server.api.customer("quiet").await;
    let url = format!("ws://{}/ws", server.addr());
    let (stream, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut ws = WsClient { stream };
    ws.send_json(json!({ "type": "auth", "token": token }))
        .await;
    assert_eq!(ws.next_json().await["type"], "ready");
    ws.send_json(json!({ "type": "join_chat", "chatId": chat }))
        .await;
    assert_eq!(ws.next_json().await["type"], "joined");
    // Three write timeouts with nothing to write: still open, and still delivered to.
    assert_eq!(ws.next_json_within(Duration::from_secs(3)).await, None);
    let (status, _) = server
        .api
        .send(&token, &chat, "still there?")
        .await
        .unwrap();
    assert_eq!(status, 201);
    let frame = ws.next_json().await;
    assert_eq!(frame["type"], "new_message", "{frame}");
    assert_eq!(frame["message"]["content"], "still there?");
}

#[tokio::test]
async fn an_address_over_its_connection_cap_is_refused_while_another_is_served() {
    let (server, _dir) = start(&[
        "--limit-loopback",
        "--max-connections-per-address",
        "4",
        "--header-read-timeout",
        "1m",
        "--keep-alive-timeout",
        "1m",
    ]);
    let addr = server.addr();
    let (token, _) = server.api.customer("counted").await;
    // Three kept-alive connections and one WebSocket from 127.0.0.2: its cap.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = connect_from("127.0.0.2", addr).await;
        assert_eq!(get(&mut conn, "/healthz", None).await, Some(200));
        held.push(conn);
    }
    let tcp = connect_from("127.0.0.2", addr).await;
    let url = format!("ws://{addr}/ws");
    let (stream, _) = tokio_tungstenite::client_async(url.clone(), MaybeTlsStream::Plain(tcp))
        .await
        .expect("the fourth connection is within the cap");
    let mut ws = WsClient { stream };
    ws.send_json(json!({ "type": "auth", "token": token }))
        .await;
    assert_eq!(ws.next_json().await["type"], "ready");

    // A fifth from the same address is closed at once, again and again.
    for _ in 0..3 {
        let mut extra = connect_from("127.0.0.2", addr).await;
        expect_refused(&mut extra).await;
    }
    // Another address is served meanwhile.
    let mut other = connect_from("127.0.0.3", addr).await;
    assert_eq!(get(&mut other, "/healthz", None).await, Some(200));

    // The WebSocket held a slot: once it is closed, the address may connect again.
    drop(ws);
    let deadline = Instant::now() + CLOSE_WITHIN;
    loop {
        let mut again = connect_from("127.0.0.2", addr).await;
        if get(&mut again, "/healthz", None).await == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed WebSocket's slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
}

#[tokio::test]
async fn the_server_cap_refuses_the_excess_but_leaves_room_for_a_local_health_check() {
    let (server, _dir) = start(&[
        "--limit-loopback",
        "--max-connections",
        "6",
        "--max-connections-per-address",
        "off",
        "--header-read-timeout",
        "1m",
        "--keep-alive-timeout",
        "1m",
    ]);
    assert!(
        server.banner.contains("at most 6 (+32 from 127.0.0.1/::1)"),
        "{}",
        server.banner
    );
    let addr = server.addr();
    let mut held = Vec::new();
    for from in ["127.0.0.2", "127.0.0.3"] {
        for _ in 0..3 {
            let mut conn = connect_from(from, addr).await;
            assert_eq!(get(&mut conn, "/healthz", None).await, Some(200));
            held.push(conn);
        }
    }
    // Full: any other address is refused, and so is a held one's.
    for from in ["127.0.0.4", "127.0.0.2"] {
        let mut extra = connect_from(from, addr).await;
        expect_refused(&mut extra).await;
    }
    // 127.0.0.1 (a health check or an operator on this machine) still gets in.
    let mut probe = connect_from("127.0.0.1", addr).await;
    assert_eq!(get(&mut probe, "/healthz", None).await, Some(200));
    drop(held);
}

#[tokio::test]
async fn the_automatic_cap_stays_below_the_open_file_limit() {
    // 300 descriptors: `auto` leaves 128 for the process and 32 for local connections.
    let (server, dir) = start_limited(
        &["--limit-loopback", "--max-connections-per-address", "off"],
        Some(300),
    );
    assert!(
        server.banner.contains("at most 140 (+32"),
        "{}",
        server.banner
    );
    let addr = server.addr();
    let mut held = Vec::new();
    for i in 0..140 {
        let mut conn = connect_from(if i % 2 == 0 { "127.0.0.2" } else { "127.0.0.3" }, addr).await;
        assert_eq!(
            get(&mut conn, "/healthz", None).await,
            Some(200),
            "connection {i}"
        );
        held.push(conn);
    }
    let mut extra = connect_from("127.0.0.4", addr).await;
    expect_refused(&mut extra).await;
    // The local reserve is there, and the process never ran out of descriptors.
    let mut local = Vec::new();
    for _ in 0..32 {
        let mut probe = connect_from("127.0.0.1", addr).await;
        assert_eq!(get(&mut probe, "/healthz", None).await, Some(200));
        local.push(probe);
    }
    let log = log_of(&dir);
    assert!(!log.contains("accept failed"), "{log}");
    drop((held, local));
}

#[tokio::test]
async fn running_out_of_file_descriptors_pauses_accepting_then_recovers() {
    // No cap, 64 descriptors: the clients below exhaust them.
    let (server, dir) = start_limited(
        &[
            "--max-connections",
            "off",
            "--max-connections-per-address",
            "off",
        ],
        Some(64),
    );
    let addr = server.addr();
    let mut held = Vec::new();
    for _ in 0..80 {
        // The kernel completes connections the server cannot accept; they wait.
        held.push(connect_from("127.0.0.2", addr).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = log_of(&dir);
    let failures = log.matches("accept failed").count();
    assert!(
        failures > 0,
        "the server never ran out of descriptors:\n{log}"
    );
    // Each failure pauses the loop (up to 0.5 s): a few dozen lines, never a spin.
    assert!(
        failures < 100,
        "{failures} failed accepts in 2 s: the loop spins"
    );
    // Once descriptors are free again, new clients are served.
    drop(held);
    let deadline = Instant::now() + CLOSE_WITHIN;
    loop {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        if get(&mut conn, "/healthz", None).await == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served after descriptors were freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
