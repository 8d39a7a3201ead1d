//! Syslog output (`--log-syslog`): every error log line also goes, as gunicorn sends it, to
//! `--log-syslog-to` (`udp://HOST:PORT`, gunicorn's default `udp://localhost:514`, or
//! `unix://PATH` for a datagram socket such as `/dev/log`), as gunicorn's formatter under Python's
//! SysLogHandler writes them: `<PRI>rustgun.PREFIX.error: [PID] [LEVEL] [ROLE] message`, PRI from
//! `--log-syslog-facility` and the line's level, PREFIX from `--log-syslog-prefix` (else `--name`);
//! access log lines too, as `rustgun.PREFIX.access`, unless `--disable-redirect-access-to-syslog`.
//! One socket, opened by the master at start and shared by its workers; a line that cannot leave is
//! dropped rather than waited for. Not here: the error log itself ([`super`]).

use super::datagram::Datagram;
use std::io::Write as _;
use std::sync::OnceLock;
use tracing::Level;

/// The process's syslog client.
pub struct Syslog {
    sink: Datagram,
    facility: u8,
    /// `rustgun.NAME`: `--log-syslog-prefix`, else `--name`, else `rustgun`.
    prefix: String,
    /// Access log lines go too (no `--disable-redirect-access-to-syslog`).
    access: bool,
}

static SYSLOG: OnceLock<Syslog> = OnceLock::new();

/// The facilities gunicorn takes by name (RFC 5424 §6.2.1).
const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Why syslog cannot be set up.
#[derive(Debug)]
pub enum SyslogError {
    Address(String),
    Facility(String),
    Io(std::io::Error),
}

impl std::fmt::Display for SyslogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyslogError::Address(a) => write!(f, "--log-syslog-to {a}: not udp://HOST:PORT or unix://PATH"),
            SyslogError::Facility(n) => write!(f, "--log-syslog-facility {n}: no such facility"),
            SyslogError::Io(e) => write!(f, "cannot open the syslog socket: {e}"),
        }
    }
}

impl std::error::Error for SyslogError {}

impl Syslog {
    /// Opens the socket `to` names, for lines of `facility` led by `rustgun.PREFIX` (`PREFIX` empty:
    /// `rustgun`); `access`: access log lines go too.
    pub fn open(to: &str, facility: &str, prefix: &str, access: bool) -> Result<Syslog, SyslogError> {
        let io = SyslogError::Io;
        let facility = FACILITIES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(facility))
            .map(|&(_, code)| code)
            .ok_or_else(|| SyslogError::Facility(facility.to_string()))?;
        let sink = if let Some(path) = to.strip_prefix("unix://") {
            // gunicorn's `#dgram` suffix: datagrams are all this sends.
            Datagram::unix(path.trim_end_matches("#dgram")).map_err(io)?
        } else if let Some(host) = to.strip_prefix("udp://") {
            Datagram::udp(host).map_err(|_| SyslogError::Address(to.to_string()))?
        } else {
            return Err(SyslogError::Address(to.to_string()));
        };
        let prefix = if prefix.is_empty() { "rustgun".to_string() } else { format!("rustgun.{prefix}") };
        Ok(Syslog { sink, facility, prefix, access })
    }

    /// Makes `syslog` the process's client, for [`get`]; the first one stays.
    pub fn install(syslog: Syslog) {
        let _ = SYSLOG.set(syslog);
    }

    /// Sends one error log line of `level` (as formatted, its date and newline taken off).
    pub fn error_line(&self, level: Level, line: &[u8]) {
        let severity = match level {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        // `[DATE] [PID] [LEVEL] …`: gunicorn's syslog lines start at the pid.
        let rest =
            line.iter().position(|&b| b == b']').map_or(line, |end| &line[(end + 2).min(line.len())..]);
        self.send(severity, "error", rest);
    }

    /// Sends one access log line (unless `--disable-redirect-access-to-syslog`), at `info`.
    pub fn access_line(&self, line: &[u8]) {
        if self.access {
            self.send(6, "access", line);
        }
    }

    /// `<PRI>PREFIX.LOG: TEXT`, as Python's SysLogHandler under gunicorn's formatter sends it.
    fn send(&self, severity: u16, log: &str, text: &[u8]) {
        thread_local! {
            /// The packet being built, kept: an access line goes out per request.
            static PACKET: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let pri = u16::from(self.facility) * 8 + severity;
        PACKET.with_borrow_mut(|packet| {
            packet.clear();
            let _ = write!(packet, "<{pri}>{}.{log}: ", self.prefix);
            packet.extend_from_slice(text);
            self.sink.send(packet);
        });
    }
}

/// The process's client, when `--log-syslog` is on.
pub fn get() -> Option<&'static Syslog> {
    SYSLOG.get()
}
