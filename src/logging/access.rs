//! The access log: gunicorn's format atoms (`%(h)s`, `%({header}i)s`, …) compiled once, one line
//! written per request with a single `write`.

use crate::app::ConnInfo;
use crate::http::parse::RequestHead;
use crate::http::response::ResponseHead;
use base64::Engine as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One piece of a compiled format.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Atom {
    Literal(String),
    /// `h`: remote address.
    RemoteAddr,
    /// `l`: always `-`.
    Dash,
    /// `u`: the Basic-auth user name.
    User,
    /// `t`: `[29/Nov/2026:17:52:02 +0000]`.
    Time,
    /// `r`: `METHOD TARGET VERSION`.
    RequestLine,
    /// `m`, `U`, `q`, `H`: method, path, query, protocol.
    Method,
    Path,
    Query,
    Protocol,
    /// `s`: status.
    Status,
    /// `B`: body bytes; `b`: the same, or `-` when unknown.
    Bytes,
    BytesOrDash,
    /// `f`, `a`: Referer, User-Agent.
    Referer,
    UserAgent,
    /// `T`, `M`, `D`, `L`: duration in s, ms, µs, and `S.uuuuuu`.
    Seconds,
    Millis,
    Micros,
    Decimal,
    /// `p`: `<pid>`.
    Pid,
    /// `{name}i`, `{name}o`: a request or response header.
    RequestHeader(String),
    ResponseHeader(String),
    /// Anything else prints `-`.
    Unknown,
}

/// What the access log knows about one exchange.
pub struct Record<'a> {
    pub head: &'a RequestHead,
    pub info: &'a ConnInfo,
    pub resp: &'a ResponseHead,
    pub status: u16,
    pub sent: u64,
    pub started: Instant,
}

/// An open access log and its compiled format.
pub struct AccessLog {
    file: Option<File>,
    atoms: Vec<Atom>,
}

impl AccessLog {
    /// Opens `target` (`-` = stdout) for appending, with `format` in gunicorn's syntax.
    pub fn open(target: &str, format: &str) -> std::io::Result<AccessLog> {
        let file = if target == "-" {
            None
        } else {
            Some(OpenOptions::new().create(true).append(true).open(target)?)
        };
        Ok(AccessLog { file, atoms: compile(format) })
    }

    /// The log file's descriptor (`None` for stdout): USR1 reopens the file onto it.
    pub fn fd(&self) -> Option<std::os::fd::RawFd> {
        self.file.as_ref().map(std::os::fd::AsRawFd::as_raw_fd)
    }

    pub fn write(&self, r: &Record<'_>) {
        self.line(|line, scratch| {
            for atom in &self.atoms {
                render(atom, Some(r), r.info, r.status, r.started, line, scratch);
            }
        });
    }

    /// Logs a request refused before it was parsed (its request line may be garbage).
    pub fn write_refused(&self, info: &ConnInfo, status: u16, started: Instant) {
        self.line(|line, scratch| {
            for atom in &self.atoms {
                render(atom, None, info, status, started, line, scratch);
            }
        });
    }

    /// Renders one line with `fill` into this thread's reused buffers and writes it with one `write`.
    fn line(&self, fill: impl FnOnce(&mut Vec<u8>, &mut Scratch)) {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut line = std::mem::take(&mut scratch.line);
            line.clear();
            fill(&mut line, scratch);
            line.push(b'\n');
            let _ = match &self.file {
                Some(f) => (&*f).write_all(&line),
                None => std::io::stdout().lock().write_all(&line),
            };
            if let Some(syslog) = super::syslog::get() {
                syslog.access_line(&line);
            }
            scratch.line = line;
        });
    }
}

/// What rendering a line reuses, per serving thread: the line itself, room for a decoded path or user
/// name, and the `%(t)s` timestamp of the current second. Nothing is allocated per request once they
/// have grown (`tests/hot_path.rs`).
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    decoded: Vec<u8>,
    /// The second `stamp` was rendered for.
    second: u64,
    stamp: Vec<u8>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

fn render(
    atom: &Atom,
    r: Option<&Record<'_>>,
    info: &ConnInfo,
    status: u16,
    started: Instant,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    let head = r.map(|r| r.head);
    let elapsed = started.elapsed();
    let text = |out: &mut Vec<u8>, v: Option<&[u8]>| match v {
        Some(v) if !v.is_empty() => escape(v, out),
        _ => out.push(b'-'),
    };
    // Formatting into a Vec<u8> writes in place; it cannot fail.
    match atom {
        Atom::Literal(s) => out.extend_from_slice(s.as_bytes()),
        Atom::RemoteAddr => out.extend_from_slice(info.peer_or_unix().as_bytes()),
        Atom::Dash | Atom::Unknown => out.push(b'-'),
        Atom::User => {
            let user = head.and_then(|h| basic_auth_user(h, &mut scratch.decoded));
            text(out, user);
        }
        Atom::Time => out.extend_from_slice(timestamp(scratch)),
        Atom::RequestLine => match head {
            Some(h) => {
                escape(h.method(), out);
                out.push(b' ');
                escape(h.target(), out);
                out.push(b' ');
                out.extend_from_slice(h.version.as_bytes());
            }
            None => out.push(b'-'),
        },
        Atom::Method => text(out, head.map(|h| h.method())),
        // As gunicorn: U is PATH_INFO (percent-decoded), q the query string as is (empty when none).
        Atom::Path => match head {
            Some(h) => {
                scratch.decoded.clear();
                crate::http::target::percent_decode_into(h.path(), &mut scratch.decoded);
                escape(&scratch.decoded, out);
            }
            None => out.push(b'-'),
        },
        Atom::Query => match head {
            Some(h) => escape(h.query(), out),
            None => out.push(b'-'),
        },
        Atom::Protocol => text(out, head.map(|h| h.version.as_bytes())),
        Atom::Status => drop(write!(out, "{status}")),
        Atom::Bytes => drop(write!(out, "{}", r.map_or(0, |r| r.sent))),
        // `b` is `-` only when nothing is known of the response (gunicorn prints 0 for an empty body).
        Atom::BytesOrDash => match r {
            Some(r) => drop(write!(out, "{}", r.sent)),
            None => out.push(b'-'),
        },
        Atom::Referer => text(out, head.and_then(|h| h.header(b"referer"))),
        Atom::UserAgent => text(out, head.and_then(|h| h.header(b"user-agent"))),
        Atom::Seconds => drop(write!(out, "{}", elapsed.as_secs())),
        Atom::Millis => drop(write!(out, "{}", elapsed.as_millis())),
        Atom::Micros => drop(write!(out, "{}", elapsed.as_micros())),
        Atom::Decimal => drop(write!(out, "{:.6}", elapsed.as_secs_f64())),
        Atom::Pid => drop(write!(out, "<{}>", std::process::id())),
        Atom::RequestHeader(name) => text(out, head.and_then(|h| h.header(name.as_bytes()))),
        Atom::ResponseHeader(name) => text(out, r.and_then(|r| r.resp.header(name.as_bytes()))),
    }
}

/// Compiles `%(x)s` atoms; `%%` is a literal `%`.
fn compile(format: &str) -> Vec<Atom> {
    let mut atoms = Vec::new();
    let mut literal = String::new();
    let mut rest = format;
    while let Some(pos) = rest.find('%') {
        literal.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if let Some(after) = rest.strip_prefix("%%") {
            literal.push('%');
            rest = after;
            continue;
        }
        let Some(end) = rest.find(")s").filter(|_| rest.starts_with("%(")) else {
            literal.push('%');
            rest = &rest[1..];
            continue;
        };
        if !literal.is_empty() {
            atoms.push(Atom::Literal(std::mem::take(&mut literal)));
        }
        atoms.push(atom(&rest[2..end]));
        rest = &rest[end + 2..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        atoms.push(Atom::Literal(literal));
    }
    atoms
}

fn atom(name: &str) -> Atom {
    if let Some(inner) = name.strip_prefix('{') {
        if let Some(header) = inner.strip_suffix("}i") {
            return Atom::RequestHeader(header.to_string());
        }
        if let Some(header) = inner.strip_suffix("}o") {
            return Atom::ResponseHeader(header.to_string());
        }
        return Atom::Unknown;
    }
    match name {
        "h" => Atom::RemoteAddr,
        "l" => Atom::Dash,
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        "s" => Atom::Status,
        "B" => Atom::Bytes,
        "b" => Atom::BytesOrDash,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Seconds,
        "M" => Atom::Millis,
        "D" => Atom::Micros,
        "L" => Atom::Decimal,
        "p" => Atom::Pid,
        _ => Atom::Unknown,
    }
}

/// Copies `v`, escaping `"`, `\` and non-printable bytes so a line cannot be forged.
fn escape(v: &[u8], out: &mut Vec<u8>) {
    for &b in v {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            _ => drop(write!(out, "\\x{b:02x}")),
        }
    }
}

/// `%(t)s`, `[29/Nov/2026:17:52:02 +0000]`: rendered once per second per thread.
fn timestamp(scratch: &mut Scratch) -> &[u8] {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if scratch.stamp.is_empty() || scratch.second != now {
        let (y, m, d) = crate::http::date::civil_from_days((now / 86_400) as i64);
        let s = now % 86_400;
        let month = std::str::from_utf8(crate::http::date::MONTHS[m as usize - 1]).unwrap_or("-");
        scratch.stamp.clear();
        let _ = write!(
            scratch.stamp,
            "[{d:02}/{month}/{y:04}:{:02}:{:02}:{:02} +0000]",
            s / 3600,
            s / 60 % 60,
            s % 60
        );
        scratch.second = now;
    }
    &scratch.stamp
}

/// The user name of `Authorization: Basic …`, if any, decoded into `room`.
fn basic_auth_user<'a>(head: &RequestHead, room: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    let value = head.header(b"authorization")?;
    let encoded = value.strip_prefix(b"Basic ").or_else(|| value.strip_prefix(b"basic "))?;
    room.clear();
    base64::engine::general_purpose::STANDARD.decode_vec(encoded.trim_ascii(), room).ok()?;
    room.split(|&b| b == b':').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_default_format() {
        let atoms = compile(r#"%(h)s %(l)s "%(r)s" %({x-id}i)s %({Content-Type}o)s %(zz)s 100%%"#);
        assert_eq!(atoms[0], Atom::RemoteAddr);
        assert_eq!(atoms[2], Atom::Dash);
        assert_eq!(atoms[4], Atom::RequestLine);
        assert_eq!(atoms[6], Atom::RequestHeader("x-id".into()));
        assert_eq!(atoms[8], Atom::ResponseHeader("Content-Type".into()));
        assert_eq!(atoms[10], Atom::Unknown);
        assert_eq!(atoms[11], Atom::Literal(" 100%".into()));
    }

    #[test]
    fn the_user_of_basic_credentials() {
        let user = |authorization: &str| {
            let mut head = RequestHead::default();
            let wire = format!("GET / HTTP/1.1\r\nHost: t\r\nAuthorization: {authorization}\r\n\r\n");
            crate::http::parse::parse_head(wire.as_bytes(), &Default::default(), &mut head).unwrap();
            basic_auth_user(&head, &mut Vec::new()).map(<[u8]>::to_vec)
        };
        assert_eq!(user("Basic dXNlcjpwYXNz").as_deref(), Some(&b"user"[..]));
        assert_eq!(user("Basic !!!"), None, "not base64");
        assert_eq!(user("Bearer dXNlcjpwYXNz"), None, "another scheme");
    }
}
