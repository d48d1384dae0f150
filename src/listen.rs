//! What every listener applies to the connections it accepts, whatever the protocol: a limit of
//! open connections per client address, and an idle timeout that closes a connection on which
//! nothing has been read or written for a while. Both are enforced here, at the socket, so a client
//! that says nothing, or a byte now and then, cannot hold a connection (and its memory) for good.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Open connections per client address on one listener.
#[derive(Clone)]
pub struct PerIpLimit {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
}

/// One admitted connection; dropping it frees its place.
pub struct Slot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerIpLimit {
    /// A limit of `max` open connections per address; 0 means none.
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::default(),
            max,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A place for one more connection from `ip`, or `None` when it holds `max` already.
    pub fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let mut t = self.table();
        let n = t.entry(ip).or_insert(0);
        if self.max != 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            open: self.open.clone(),
            ip,
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.table().get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = t.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// A connection that fails with `TimedOut` once nothing has moved in either direction for `idle`.
/// The timer is re-armed lazily (only when it fires early), so traffic costs a clock read, not a
/// timer update, per read or write.
pub struct IdleTimeout<T> {
    io: T,
    idle: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
    _slot: Option<Slot>,
}

impl<T> IdleTimeout<T> {
    /// Wraps `io`; `slot` (the connection's place under a [`PerIpLimit`]) is held as long as it is.
    pub fn new(io: T, idle: Duration, slot: Option<Slot>) -> Self {
        let now = Instant::now();
        Self {
            io,
            idle,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            _slot: slot,
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// True once the connection has been idle too long; otherwise the timer is armed for the next
    /// moment it could be.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            let due = self.last + self.idle;
            if Instant::now() >= due {
                return true;
            }
            self.timer.as_mut().reset(due);
        }
        false
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.last = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.last = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Allows a few log lines per window and counts the rest, so one client sending garbage cannot
/// fill the disk with warnings. One per connection (or per listener for accept-time events).
#[derive(Debug)]
pub struct LogBudget {
    per_window: u32,
    window: Duration,
    start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    /// `per_window` lines every `window`.
    pub const fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            start: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether to log this line; `Some(k)` when it may be logged, `k` being the lines suppressed
    /// since the last one that was (to say so in it).
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .start
            .is_none_or(|s| now.duration_since(s) >= self.window)
        {
            self.start = Some(now);
            self.used = 0;
        }
        if self.used < self.per_window {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn per_ip_limit_counts_and_frees() {
        let l = PerIpLimit::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let a = l.admit(ip).unwrap();
        let _b = l.admit(ip).unwrap();
        assert!(l.admit(ip).is_none());
        assert!(l.admit(other).is_some());
        drop(a);
        assert_eq!(l.open_from(ip), 1);
        assert!(l.admit(ip).is_some());
        assert!(PerIpLimit::new(0).admit(ip).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connection_times_out_and_traffic_keeps_it() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut a = IdleTimeout::new(a, Duration::from_secs(10), None);
        let mut buf = [0u8; 4];
        // Traffic every 6 s keeps it open past 10 s.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            b.write_all(b"x").await.unwrap();
            assert_eq!(a.read(&mut buf).await.unwrap(), 1);
        }
        // Then silence: the read fails after 10 s.
        let start = Instant::now();
        let e = a.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn log_budget_suppresses_and_reports() {
        let mut b = LogBudget::new(2, Duration::from_secs(10));
        assert_eq!(b.allow(), Some(0));
        assert_eq!(b.allow(), Some(0));
        assert_eq!(b.allow(), None);
        assert_eq!(b.allow(), None);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(b.allow(), Some(2));
    }
}
