//! The `--metrics-bind` listener's HTTP: `/metrics` (Prometheus), `/status` (a self-contained HTML
//! page, `status.html`) and `/status.json` (the data that page polls), each answered by the master
//! through [`Conversations`], so that no scraper can make it wait.
//!
//! Not here: how conversations move without blocking (`conversations`), what a scrape reports
//! (`metrics`, `status`).

use super::conversations::Conversations;
use crate::http::parse::{HeaderMap, Limits, RequestHead, parse_head};
use std::io;
use std::net::{TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};

/// A scraper's request head may be this big, no bigger.
fn limits() -> Limits {
    Limits {
        request_line: 1024,
        fields: 64,
        field_size: 1024,
        head: 8192,
        header_map: HeaderMap::Drop,
        forwarder: Vec::new(),
    }
}

/// What a request asks the master to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/metrics`: the Prometheus text.
    Metrics,
    /// `/status.json`: the workers' table, as the control socket's `status json` gives it.
    StatusJson,
}

/// The `/status` page: self-contained (inline CSS and script, no external asset), it polls
/// `/status.json`.
const STATUS_HTML: &str = include_str!("status.html");

/// The metrics listener and its scrapes.
pub struct Exporter {
    served: Conversations<TcpListener>,
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
        Ok(Exporter { served: Conversations::new(listener), parsed: RequestHead::default() })
    }

    pub fn url(&self) -> String {
        let addr = self.served.listener().local_addr();
        addr.map_or_else(|e| format!("?({e})"), |a| format!("http://{a}/metrics"))
    }

    /// The scrapes in progress, for the master's `poll` and its forks.
    pub fn conversations(&self) -> &Conversations<TcpListener> {
        &self.served
    }

    /// Moves every scrape as far as it goes without waiting, answering complete ones with
    /// `render(page)`'s text.
    pub fn step(&mut self, mut render: impl FnMut(Page) -> String) {
        let parsed = &mut self.parsed;
        self.served.step(|request| match parse_head(request, &limits(), parsed) {
            Ok(None) => None,
            Ok(Some(_)) => Some(answer(parsed, &mut render)),
            Err(e) => Some(reply(e.status(), TEXT, "", true)),
        });
    }
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The answer to a complete scrape request.
fn answer(head: &RequestHead, render: &mut impl FnMut(Page) -> String) -> Vec<u8> {
    let with_body = !head.is_head();
    match (head.method(), head.path()) {
        (b"GET" | b"HEAD", b"/metrics" | b"/") => reply(200, TEXT, &render(Page::Metrics), with_body),
        (b"GET" | b"HEAD", b"/status") => reply(200, "text/html; charset=utf-8", STATUS_HTML, with_body),
        (b"GET" | b"HEAD", b"/status.json") => {
            reply(200, "application/json", &render(Page::StatusJson), with_body)
        }
        (b"GET" | b"HEAD", _) => reply(404, TEXT, "not found; try /metrics or /status\n", with_body),
        _ => reply(405, TEXT, "GET /metrics or /status\n", true),
    }
}

fn reply(status: u16, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let reason = crate::http::status::reason(status);
    // The page and its data are never cached: each load shows the server as it is now.
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nCache-Control: no-store\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

impl std::os::fd::AsFd for Exporter {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.served.listener().as_fd()
    }
}
