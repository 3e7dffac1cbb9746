//! `attack`: connection-level attacks from a security review, run against a server to
//! see what it holds and whom it still serves: `slowloris` (half-open connections) and
//! `read-flood` (large answers never read). The attackers speak raw HTTP/1.1 over TCP
//! sockets of their own (bound to a chosen source address), since no HTTP client
//! misbehaves on purpose; the ordinary clients and the setup use the contract's API.
//! Like every scenario, a failed check (a wrong answer, a client not served) fails the
//! run; a slow number does not.

mod read_flood;
mod slowloris;

use std::io;
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

use crate::cli::Attack;
use crate::report::Scenario;
use crate::target::Target;

pub(crate) async fn run(target: &Target, attack: &Attack) -> Scenario {
    match attack {
        Attack::Slowloris(args) => slowloris::run(target, args).await,
        Attack::ReadFlood(args) => read_flood::run(target, args).await,
    }
}

/// The server's socket address, from its base URL (`http://host:port`).
async fn server_addr(base: &str) -> anyhow::Result<SocketAddr> {
    let authority = base
        .strip_prefix("http://")
        .with_context(|| format!("{base}: the attacks speak plain http:// only"))?
        .trim_end_matches('/');
    tokio::net::lookup_host(authority)
        .await
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))
}

/// A TCP connection to `server`, from `local` when given; `recv_buffer` sets the
/// socket's receive buffer (the kernel doubles it).
async fn connect(
    local: Option<IpAddr>,
    server: SocketAddr,
    recv_buffer: Option<u32>,
) -> io::Result<TcpStream> {
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(local) = local {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.connect(server).await
}

/// What came back for one HTTP/1.1 request on a raw connection.
#[derive(Debug, Clone, Default)]
struct Answer {
    status: u16,
    /// The `Content-Length` the head announced.
    length: usize,
    /// Body bytes received.
    received: usize,
    /// The body, when asked to keep it.
    body: Vec<u8>,
}

impl Answer {
    fn complete(&self) -> bool {
        self.status != 0 && self.received >= self.length
    }
}

/// Reads one answer (head, then a `Content-Length` body): as much as arrives before the
/// connection ends. `status` is 0 when not even the head came.
async fn read_answer(stream: &mut TcpStream, keep_body: bool) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Answer::default(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let mut answer = Answer {
        status: head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0),
        length: head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        received: buf.len() - head_end,
        body: Vec::new(),
    };
    if keep_body {
        answer.body.extend_from_slice(&buf[head_end..]);
    }
    while answer.received < answer.length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                answer.received += n;
                if keep_body {
                    answer.body.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
    answer
}

/// Waits until the peer closes the connection (end of stream or an error); whether any
/// byte came before.
async fn until_closed(stream: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 4096];
    let mut got = false;
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return got,
            Ok(_) => got = true,
        }
    }
}

/// The default source address on loopback: a loopback address of its own, so that the
/// server tells the parties apart.
fn default_local(server: SocketAddr, given: Option<IpAddr>, last_octet: u8) -> Option<IpAddr> {
    given.or_else(|| {
        server
            .ip()
            .is_loopback()
            .then(|| IpAddr::from([127, 0, 0, last_octet]))
            .filter(|_| server.is_ipv4())
    })
}
