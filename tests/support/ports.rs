//! Loopback ports for the tests' servers, one source for every support
//! module of a test binary.
//!
//! A port the kernel hands out for `bind(:0)` lies in the ephemeral range
//! (32768-60999 here), where the kernel also picks the local port of every
//! outgoing connection: with many tests at once, a port freed by the probe
//! was sometimes taken by a connection (or another test) before the server
//! bound it ("Address already in use"). These ports come from below that
//! range, from a counter that never hands one out twice in a process, and
//! are checked free before they are given.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// The range: above the well-known and registered ports most services use,
/// below Linux's ephemeral range.
const FIRST: u32 = 20_000;
const LAST: u32 = 32_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A loopback port nothing listens on now, never given before in this
/// process.
pub fn free_port() -> u16 {
    let span = LAST - FIRST;
    // Test binaries of one run start at different places.
    let start = (std::process::id() % 97) * 120;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (start + n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}-{LAST}");
}
