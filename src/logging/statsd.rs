//! StatsD output (`--statsd-host`), gunicorn's metrics under gunicorn's names and format: per request
//! `gunicorn.request.duration` (ms), `gunicorn.requests` and `gunicorn.request.status.CODE`
//! (counters), the master's `gunicorn.workers` (a gauge, when the count changes), and
//! `gunicorn.log.error` / `gunicorn.log.warning` for each such log line. A name is led by
//! `--statsd-prefix` (with its dot) and a packet followed by `|#TAGS` (`--dogstatsd-tags`).
//!
//! One datagram socket, UDP or unix ([`super::datagram`]), opened by the master at start and shared
//! by the workers it forks (as gunicorn's logger is); a packet is formatted on the stack and sent
//! without waiting: metrics never hold up a request.

use super::datagram::Datagram;
use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

/// The process's StatsD client.
pub struct Statsd {
    sink: Datagram,
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
            Some(path) => Datagram::unix(path)?,
            None => Datagram::udp(host)?,
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
        self.sink.send(&packet[..len]);
    }
}

/// The process's client, when `--statsd-host` is set.
pub fn get() -> Option<&'static Statsd> {
    STATSD.get()
}
