//! A TLS-terminating front for a test server, as a deployment puts one before chat-http:
//! it accepts TLS with a test CA's certificate and forwards each connection, bytes as
//! they are, to the server's plain port. It runs on a thread and runtime of its own, so
//! tests with or without a runtime can use it (chat-client's tests, and chat-cli's by
//! `#[path]`). It counts the connections it forwarded: a refused handshake forwards
//! nothing. Nothing here is a mock: the server behind it is the real one.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// The front; stopped when dropped.
pub struct TlsFront {
    port: u16,
    forwarded: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Listens on 127.0.0.1 (an ephemeral port) with `acceptor`'s certificate, in front
    /// of the server at `upstream`.
    pub fn start(acceptor: TlsAcceptor, upstream: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = oneshot::channel();
        let counts = (forwarded.clone(), refused.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                tokio::select! {
                    _ = stopped => {}
                    _ = accept(listener, acceptor, upstream, counts) => {}
                }
            });
        });
        Self {
            port,
            forwarded,
            refused,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `https://localhost:PORT`: the name the test certificate carries.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Connections that completed the handshake and were forwarded to the server.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// Connections whose handshake failed (nothing of them reached the server).
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    upstream: SocketAddr,
    (forwarded, refused): (Arc<AtomicUsize>, Arc<AtomicUsize>),
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (acceptor, forwarded, refused) = (acceptor.clone(), forwarded.clone(), refused.clone());
        tokio::spawn(async move {
            let mut tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(_) => {
                    refused.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            };
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            forwarded.fetch_add(1, Ordering::SeqCst);
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
        });
    }
}
