//! Connections as the server accepts them: a cap on how many one address may hold, and
//! deadlines against clients that hold a connection without using it. Without them, a few
//! hundred sockets that trickle a request head a byte at a time (slowloris), or that stop
//! reading an answer, stay open forever.
//!
//! The deadlines follow the HTTP/1 exchange from the bytes that pass: a connection must send
//! a complete request head within the head timeout of its first byte (20 s by default), may
//! sit idle between requests for the idle timeout (60 s), and a write the client does not take
//! within the write timeout (60 s) ends it. Upgraded (websocket) and HTTP/2 connections keep only the write deadline; their
//! own protocols (and the firehose's send timeout) look after the rest.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ipnet::IpNet;
use poem::listener::{Acceptor, TcpAcceptor};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Limits for accepted connections.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Connections one address may hold at once (AURORA_MAX_CONNECTIONS_PER_IP).
    pub per_ip: usize,
    /// Peers not capped: the reverse proxy every client comes through.
    pub uncapped: Vec<IpNet>,
    pub head_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
}

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Accepts TCP connections with Nagle's algorithm off, capped per address, with deadlines.
pub struct Guarded {
    inner: TcpAcceptor,
    limits: Limits,
    counts: Counts,
}

impl Guarded {
    pub fn new(inner: TcpAcceptor, limits: Limits) -> Guarded {
        Guarded { inner, limits, counts: Counts::default() }
    }

    /// Takes a slot for `ip`, or `None` when it holds its share already.
    fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let capped = !self.limits.uncapped.iter().any(|range| range.contains(&ip));
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ip).or_default();
        if capped && *count >= self.limits.per_ip {
            return None;
        }
        *count += 1;
        Some(Slot { ip, counts: self.counts.clone() })
    }
}

/// One address's hold on a connection, given back when the connection closes.
struct Slot {
    ip: IpAddr,
    counts: Counts,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl Acceptor for Guarded {
    type Io = GuardedIo;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(GuardedIo, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        loop {
            let (io, local, remote, scheme) = self.inner.accept().await?;
            let ip = remote.as_socket_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let Some(slot) = self.admit(ip) else {
                tracing::debug!(%ip, "refused a connection: the address holds its share");
                drop(io);
                continue;
            };
            // A streamed answer ends with a small write that Nagle would hold back until the
            // client's delayed ACK (~40 ms); only a latency tweak, so a refusal is ignored.
            let _ = io.set_nodelay(true);
            return Ok((GuardedIo::new(io, slot, &self.limits), local, remote, scheme));
        }
    }
}

/// Finds the blank line that ends a request head, across reads: keeps the last three bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct HeadScan {
    tail: [u8; 3],
    len: u8,
}

impl HeadScan {
    /// Whether the head ends in `bytes` (with what came before). The read is searched where it
    /// lies: copied with the kept bytes into a new buffer and compared four bytes at a time, a
    /// signed-in client's request head cost some 2,800 instructions here.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        const END: &[u8] = b"\r\n\r\n";
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(END));
        // Across the seam: the kept bytes and the first of this read.
        let held = self.len as usize;
        let mut seam = [0u8; 6];
        seam[..held].copy_from_slice(&self.tail[..held]);
        let first = bytes.len().min(3);
        seam[held..held + first].copy_from_slice(&bytes[..first]);
        let seam = &seam[..held + first];
        if seam.windows(END.len()).any(|w| w == END) || FINDER.find(bytes).is_some() {
            return true;
        }
        let kept = match bytes.len() {
            3.. => &bytes[bytes.len() - 3..],
            // The seam holds the whole read then.
            _ => &seam[seam.len().saturating_sub(3)..],
        };
        self.tail = [0; 3];
        self.tail[..kept.len()].copy_from_slice(kept);
        self.len = kept.len() as u8;
        false
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between requests: nothing read yet.
    Idle,
    /// Reading a request head.
    Head(HeadScan),
    /// The head is in; the request is being served.
    Serving,
    /// A websocket or HTTP/2: only writes are timed.
    Unframed,
}

pub struct GuardedIo {
    io: TcpStream,
    _slot: Slot,
    phase: Phase,
    /// When the current read phase runs out.
    read_deadline: Option<Pin<Box<Sleep>>>,
    /// Set while a write waits for the client.
    write_deadline: Option<Pin<Box<Sleep>>>,
    head_timeout: Duration,
    idle_timeout: Duration,
    write_timeout: Duration,
    first: bool,
}

impl GuardedIo {
    fn new(io: TcpStream, slot: Slot, limits: &Limits) -> GuardedIo {
        let mut guarded = GuardedIo {
            io,
            _slot: slot,
            phase: Phase::Idle,
            read_deadline: None,
            write_deadline: None,
            head_timeout: limits.head_timeout,
            idle_timeout: limits.idle_timeout,
            write_timeout: limits.write_timeout,
            first: true,
        };
        // A connection that never sends a byte is held no longer than the head timeout.
        guarded.arm_read(limits.head_timeout);
        guarded
    }

    fn arm_read(&mut self, after: Duration) {
        let at = Instant::now() + after;
        match &mut self.read_deadline {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.read_deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Follows the request bytes just read.
    fn saw_read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.first {
            self.first = false;
            if bytes.starts_with(b"PRI * HTTP/2") {
                self.phase = Phase::Unframed;
                self.read_deadline = None;
                return;
            }
        }
        let done = match &mut self.phase {
            Phase::Idle => {
                self.arm_read(self.head_timeout);
                let mut scan = HeadScan::default();
                let done = scan.feed(bytes);
                self.phase = Phase::Head(scan);
                done
            }
            Phase::Head(scan) => scan.feed(bytes),
            Phase::Serving | Phase::Unframed => false,
        };
        if done {
            self.phase = Phase::Serving;
            self.read_deadline = None;
        }
    }

    /// Follows the answer bytes just written.
    fn saw_write(&mut self, bytes: &[u8]) {
        match self.phase {
            Phase::Unframed => {}
            // An interim answer (100 Continue): the request's body is still to come.
            _ if bytes.starts_with(b"HTTP/1.1 100 ") => {}
            _ if bytes.starts_with(b"HTTP/1.1 101") => {
                self.phase = Phase::Unframed;
                self.read_deadline = None;
            }
            Phase::Serving | Phase::Idle => {
                // Once the server answers, the next bytes are the next request.
                self.phase = Phase::Idle;
                self.arm_read(self.idle_timeout);
            }
            // An early answer (a refusal) while the head is still arriving.
            Phase::Head(_) => {}
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

impl AsyncRead for GuardedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled()[before..].to_vec();
                this.saw_read(&filled);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some(deadline) = &mut this.read_deadline {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(timed_out("the client took too long to send its request")));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.write_deadline = None;
                this.saw_write(&buf[..n]);
                this.register_read_deadline(cx);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.wait_for_writable(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.write_deadline = None;
                let first = bufs.iter().find(|b| !b.is_empty()).map(|b| &b[..b.len().min(n)]).unwrap_or(&[]);
                this.saw_write(first);
                this.register_read_deadline(cx);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.wait_for_writable(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl GuardedIo {
    /// A read deadline armed by a write must wake the connection's task when it passes: the
    /// task may be parked on a read that was polled before the deadline existed. (The same
    /// task reads and writes, so the writer's waker is the reader's.)
    fn register_read_deadline(&mut self, cx: &mut Context<'_>) {
        if let Some(deadline) = &mut self.read_deadline {
            let _ = deadline.as_mut().poll(cx);
        }
    }

    fn wait_for_writable<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.write_timeout;
        let deadline = self.write_deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(timed_out("the client stopped reading")));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_a_blank_line_split_across_reads() {
        let mut scan = HeadScan::default();
        assert!(!scan.feed(b"GET / HTTP/1.1\r\nHost: x\r"));
        assert!(!scan.feed(b"\n"));
        assert!(!scan.feed(b"\r"));
        assert!(scan.feed(b"\n"));
        let mut trickled = HeadScan::default();
        let head = b"POST /xrpc/a.b.c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
        let ends: Vec<bool> = head.iter().map(|b| trickled.feed(&[*b])).collect();
        assert_eq!(ends.iter().position(|e| *e), Some(head.len() - 1), "one byte at a time too");
        // Split at every point, and in two-byte reads.
        for split in 0..=head.len() {
            let mut scan = HeadScan::default();
            let (a, b) = head.split_at(split);
            let ended = scan.feed(a) | scan.feed(b);
            assert!(ended, "split at {split}");
            let mut unfinished = HeadScan::default();
            let (a, b) = head[..head.len() - 1].split_at(split.min(head.len() - 1));
            assert!(!(unfinished.feed(a) | unfinished.feed(b)), "no blank line yet, split at {split}");
        }
        let mut pairs = HeadScan::default();
        let ends: Vec<bool> = head.chunks(2).map(|pair| pairs.feed(pair)).collect();
        assert_eq!(ends.iter().position(|e| *e), Some(ends.len() - 1), "two bytes at a time");
        assert!(HeadScan::default().feed(b"GET / HTTP/1.1\r\n\r\n{\"body\": 1}"), "a body after the head");
    }
}
