//! StatsD output (`--statsd-host`), gunicorn's metrics under gunicorn's names and format: per request
//! `gunicorn.request.duration` (ms), `gunicorn.requests` and `gunicorn.request.status.CODE`
//! (counters), the master's `gunicorn.workers` (a gauge, when the count changes), and
//! `gunicorn.log.error` / `gunicorn.log.warning` for each such log line. A name is led by
//! `--statsd-prefix` (with its dot) and a packet followed by `|#TAGS` (`--dogstatsd-tags`).
//!
//! One datagram socket, UDP or unix, opened by the master at start and shared by the workers it
//! forks (as gunicorn's logger is); a packet is formatted on the stack and sent without waiting, and
//! one that cannot leave (no listener, a full buffer) is dropped: metrics never hold up a request.

use std::io::Write;
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;
use std::time::Duration;

/// Where the packets go.
enum Sink {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

/// The process's StatsD client.
pub struct Statsd {
    sink: Sink,
    /// `--statsd-prefix` with one trailing dot, or empty.
    prefix: String,
    /// `|#` and `--dogstatsd-tags`, or empty.
    tags: String,
}

static STATSD: OnceLock<Statsd> = OnceLock::new();

/// Most bytes of one packet: a prefix and tags of a few hundred bytes, a name, a number.
const PACKET: usize = 1024;

impl Statsd {
    /// Opens the socket to `host` (`HOST:PORT`, or `unix:PATH` for a unix datagram socket).
    pub fn open(host: &str, prefix: &str, tags: &str) -> std::io::Result<Statsd> {
        let sink = match host.strip_prefix("unix:") {
            Some(path) => {
                let sock = UnixDatagram::unbound()?;
                sock.connect(path)?;
                sock.set_nonblocking(true)?;
                Sink::Unix(sock)
            }
            None => {
                let addr = host.to_socket_addrs()?.next().ok_or(std::io::ErrorKind::NotFound)?;
                let sock = UdpSocket::bind(if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" })?;
                sock.connect(addr)?;
                sock.set_nonblocking(true)?;
                Sink::Udp(sock)
            }
        };
        let prefix = match prefix.trim_end_matches('.') {
            "" => String::new(),
            p => format!("{p}."),
        };
        let tags = if tags.is_empty() { String::new() } else { format!("|#{tags}") };
        Ok(Statsd { sink, prefix, tags })
    }

    /// Makes `statsd` the process's client, for [`get`]; the first one stays.
    pub fn install(statsd: Statsd) {
        let _ = STATSD.set(statsd);
    }

    /// One served request: its duration, the request count and its status's count.
    pub fn request(&self, status: u16, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        self.send(format_args!("gunicorn.request.duration:{ms}|ms"));
        self.send(format_args!("gunicorn.requests:1|c|@1.0"));
        self.send(format_args!("gunicorn.request.status.{status}:1|c|@1.0"));
    }

    /// The master's worker count.
    pub fn workers(&self, count: usize) {
        self.send(format_args!("gunicorn.workers:{count}|g"));
    }

    /// A log line at `level` (`error`, `warning`).
    pub fn log(&self, level: &str) {
        self.send(format_args!("gunicorn.log.{level}:1|c|@1.0"));
    }

    fn send(&self, metric: std::fmt::Arguments<'_>) {
        let mut packet = [0u8; PACKET];
        let mut at = &mut packet[..];
        if write!(at, "{}{metric}{}", self.prefix, self.tags).is_err() {
            return;
        }
        let len = PACKET - at.len();
        let _ = match &self.sink {
            Sink::Udp(sock) => sock.send(&packet[..len]),
            Sink::Unix(sock) => sock.send(&packet[..len]),
        };
    }
}

/// The process's client, when `--statsd-host` is set.
pub fn get() -> Option<&'static Statsd> {
    STATSD.get()
}
