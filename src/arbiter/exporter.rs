//! The `--metrics-bind` listener and the scrapes in progress on it, served by the master without ever
//! waiting on a scraper: every socket is non-blocking, each scrape is a small state machine (read the
//! head, write the answer) moved forward whenever the master's loop wakes, and one that has not
//! finished within [`SCRAPE_TIMEOUT`] is dropped. A slow or hostile scraper therefore costs the master
//! a descriptor and a few KiB, never time: signals, reaping and the heartbeat go on meanwhile.
//!
//! Not here: what a scrape reports (`metrics`).

use crate::http::parse::{HeaderMap, Limits, RequestHead, parse_head};
use nix::poll::PollFlags;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

/// How long a scrape may take to send its request and read the answer (Prometheus' own default
/// scrape timeout is 10 s).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes in progress at once; a new one past this drops the oldest, so scrapers that never finish
/// cannot keep a real one out.
const MAX_SCRAPES: usize = 64;

/// A scraper's request head may be this big, no bigger.
fn limits() -> Limits {
    let forwarder = Vec::new();
    Limits {
        request_line: 1024,
        fields: 64,
        field_size: 1024,
        head: 8192,
        header_map: HeaderMap::Drop,
        forwarder,
    }
}

/// One scrape: its request head arriving, then its answer leaving.
struct Scrape {
    stream: TcpStream,
    deadline: Instant,
    head: Vec<u8>,
    /// The answer, once the head is complete, and how much of it has left.
    out: Option<(Vec<u8>, usize)>,
}

/// The metrics listener and its scrapes.
pub struct Exporter {
    listener: TcpListener,
    scrapes: Vec<Scrape>,
    parsed: RequestHead,
}

impl Exporter {
    /// Listens on `addr` (HOST:PORT).
    pub fn bind(addr: &str) -> io::Result<Exporter> {
        let resolved = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "address did not resolve"))?;
        Exporter::new(TcpListener::bind(resolved)?)
    }

    /// Takes over the metrics listener a binary upgrade passed down.
    pub fn adopt(fd: RawFd) -> io::Result<Exporter> {
        // Passed to this process alone by the master that started it (`RUSTGUN_METRICS_FD`).
        let owned = crate::sys::process::adopt_fd(fd)?;
        nix::fcntl::fcntl(owned.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
        Exporter::new(TcpListener::from(owned))
    }

    fn new(listener: TcpListener) -> io::Result<Exporter> {
        listener.set_nonblocking(true)?;
        Ok(Exporter { listener, scrapes: Vec::new(), parsed: RequestHead::default() })
    }

    pub fn url(&self) -> String {
        self.listener.local_addr().map_or_else(|e| format!("?({e})"), |a| format!("http://{a}/metrics"))
    }

    /// What the master's `poll` should wait for on the exporter's behalf: new scrapes, and each
    /// scrape's next read or write.
    pub fn interest(&self) -> impl Iterator<Item = (BorrowedFd<'_>, PollFlags)> {
        let scrapes = self.scrapes.iter().map(|s| {
            let wants = if s.out.is_some() { PollFlags::POLLOUT } else { PollFlags::POLLIN };
            (s.stream.as_fd(), wants)
        });
        std::iter::once((self.listener.as_fd(), PollFlags::POLLIN)).chain(scrapes)
    }

    /// The listener's descriptor and every scrape's: what a forked worker must close.
    pub fn descriptors(&self) -> impl Iterator<Item = RawFd> + '_ {
        std::iter::once(self.listener.as_raw_fd()).chain(self.scrapes.iter().map(|s| s.stream.as_raw_fd()))
    }

    /// When the oldest scrape runs out of time: the master wakes by then to drop it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.scrapes.iter().map(|s| s.deadline).min()
    }

    /// Moves every scrape as far as it goes without waiting: takes new ones, reads heads, answers
    /// complete ones with `render()`'s text, and drops the finished, the failed and the late.
    pub fn step(&mut self, render: impl Fn() -> String) {
        while let Ok((stream, _)) = self.listener.accept() {
            if self.scrapes.len() >= MAX_SCRAPES {
                // The oldest is the likeliest to be a scraper that never finishes.
                self.scrapes.remove(0);
            }
            if stream.set_nonblocking(true).is_ok() {
                let deadline = Instant::now() + SCRAPE_TIMEOUT;
                self.scrapes.push(Scrape { stream, deadline, head: Vec::with_capacity(512), out: None });
            }
        }
        let now = Instant::now();
        let parsed = &mut self.parsed;
        self.scrapes.retain_mut(|scrape| now < scrape.deadline && scrape.advance(parsed, &render));
    }
}

impl Scrape {
    /// Reads what has arrived, answers once the head is complete, writes what the socket takes;
    /// `false` once the scrape is over (answered, gone, or failed).
    fn advance(&mut self, parsed: &mut RequestHead, render: &impl Fn() -> String) -> bool {
        if self.out.is_none() {
            let mut chunk = [0u8; 1024];
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => self.head.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            match parse_head(&self.head, &limits(), parsed) {
                Ok(None) => return true,
                Ok(Some(_)) => self.out = Some((answer(parsed, render), 0)),
                Err(e) => self.out = Some((reply(e.status(), "", true), 0)),
            }
        }
        let Some((out, sent)) = &mut self.out else { return true };
        while *sent < out.len() {
            match self.stream.write(&out[*sent..]) {
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        false
    }
}

/// The answer to a complete scrape request.
fn answer(head: &RequestHead, render: &impl Fn() -> String) -> Vec<u8> {
    let with_body = !head.is_head();
    match (head.method(), head.path()) {
        (b"GET" | b"HEAD", b"/metrics" | b"/") => reply(200, &render(), with_body),
        (b"GET" | b"HEAD", _) => reply(404, "not found; try /metrics\n", with_body),
        _ => reply(405, "GET /metrics\n", true),
    }
}

fn reply(status: u16, body: &str, with_body: bool) -> Vec<u8> {
    let reason = crate::http::status::reason(status);
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

impl AsFd for Exporter {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}
