//! The WebSocket library keeps no write buffer between writes (chat-http sets
//! `write_buffer_size` 0, and `patches/tungstenite` releases the buffer once written):
//! a socket that has sent a large frame must not stay large while it idles. Upstream
//! tungstenite kept the largest frame ever sent for the connection's life.
//!
//! Counts live heap bytes with a global allocator, so it is a test binary of its own.

use std::alloc::System;
use std::io::{self, Read, Write};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes, WebSocket};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A peer that takes every byte at once (and counts them) and has nothing to read.
#[derive(Default)]
struct Peer {
    received: usize,
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.received += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Peer {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

#[test]
fn a_socket_keeps_no_write_buffer_after_sending_a_large_frame() {
    // The settings chat-http uses (`WsSettings::default()`).
    let config = WebSocketConfig::default()
        .read_buffer_size(256)
        .write_buffer_size(0);
    let mut socket = WebSocket::from_raw_socket(Peer::default(), Role::Server, Some(config));
    // A frame as large as a 4,000-character message's event; the payload stays alive
    // here (sends share it), so only what the socket keeps shows in the count.
    let payload = Utf8Bytes::from("x".repeat(16_000));
    socket.send(Message::text("warm-up")).unwrap();

    let region = Region::new(GLOBAL);
    for _ in 0..3 {
        socket.send(Message::Text(payload.clone())).unwrap();
    }
    let change = region.change();
    let kept = change.bytes_allocated as isize - change.bytes_deallocated as isize
        + change.bytes_reallocated;

    assert!(
        socket.get_ref().received > 3 * 16_000,
        "the frames were written"
    );
    assert!(
        kept < 1024,
        "the socket kept {kept} bytes after sending 16 KB frames: the write buffer is \
         held (is patches/tungstenite still in use?)"
    );
}
