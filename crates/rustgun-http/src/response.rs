//! The response side: the head the app asked for (validated, hop-by-hop fields removed), the framing
//! the server chooses for it (RFC 9112 §6.3), and the encoder that frames body bytes.

use super::Version;
use super::body::is_token_byte;
use super::status;

/// The interim response sent when the app first reads a body the client is holding back.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Why the app's head was refused. Each becomes a 500 for the client and a log line for the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// A status outside 100..=999.
    Status(u32),
    /// A header name that is empty or not a token (index of the header).
    Name(usize),
    /// A header value with CR, LF, NUL or another control byte (index of the header).
    Value(usize),
    /// A Content-Length that is not a decimal number.
    ContentLength,
    /// The reason phrase has a CR, LF or control byte.
    Reason,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Status(s) => write!(f, "invalid status {s}"),
            HeadError::Name(i) => write!(f, "header #{i} has an invalid name"),
            HeadError::Value(i) => write!(f, "header #{i} value contains CR, LF, NUL or a control byte"),
            HeadError::ContentLength => write!(f, "invalid Content-Length"),
            HeadError::Reason => write!(f, "reason phrase contains a control byte"),
        }
    }
}

/// How the body of a response is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body may be sent (HEAD, 1xx, 204, 304).
    NoBody,
    /// Exactly this many bytes (the app's Content-Length).
    Length(u64),
    /// Chunked transfer coding (HTTP/1.1 without Content-Length).
    Chunked,
    /// Until the connection closes (HTTP/1.0 without Content-Length).
    Close,
}

/// The head recorded by `start_response`, kept until the first body byte leaves. Reused across requests.
#[derive(Debug, Default)]
pub struct ResponseHead {
    pub status: u16,
    reason: Vec<u8>,
    /// The app's headers minus hop-by-hop ones, already encoded as `Name: value\r\n` lines.
    lines: Vec<u8>,
    pub content_length: Option<u64>,
    /// The app sent `Connection: close`.
    pub close: bool,
    has_date: bool,
    has_server: bool,
    /// Trailer fields for the end of a chunked body, encoded as `Name: value\r\n` lines.
    trailers: Vec<u8>,
}

/// Hop-by-hop fields belong to the connection, which the server owns (RFC 9110 §7.6.1). `Trailer`
/// is not one: it announces the app's trailer fields end to end (§6.6.2).
const HOP_BY_HOP: &[&[u8]] =
    &[b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"upgrade"];

impl ResponseHead {
    /// Records status, reason and headers, replacing whatever was recorded before. Nothing is kept
    /// when the head is refused.
    pub fn set<'a>(
        &mut self,
        status: u32,
        reason: &[u8],
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), HeadError> {
        if !(100..=999).contains(&status) {
            return Err(HeadError::Status(status));
        }
        if reason.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
            return Err(HeadError::Reason);
        }
        self.status = status as u16;
        self.reason.clear();
        self.reason.extend_from_slice(reason);
        self.lines.clear();
        self.content_length = None;
        self.close = false;
        self.has_date = false;
        self.has_server = false;
        self.trailers.clear();
        let result = self.add_headers(headers);
        if result.is_err() {
            self.lines.clear();
        }
        result
    }

    fn add_headers<'a>(
        &mut self,
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), HeadError> {
        for (i, (name, value)) in headers.enumerate() {
            if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
                return Err(HeadError::Name(i));
            }
            if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
                return Err(HeadError::Value(i));
            }
            let value = value.trim_ascii();
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(HeadError::ContentLength)?;
                if self.content_length.is_some_and(|prev| prev != n) {
                    return Err(HeadError::ContentLength);
                }
                self.content_length = Some(n);
                continue;
            }
            if name.eq_ignore_ascii_case(b"connection") {
                self.close |= super::parse::list_elements(value).any(|t| t.eq_ignore_ascii_case(b"close"));
            }
            if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
                continue;
            }
            self.has_date |= name.eq_ignore_ascii_case(b"date");
            self.has_server |= name.eq_ignore_ascii_case(b"server");
            self.lines.extend_from_slice(name);
            self.lines.extend_from_slice(b": ");
            self.lines.extend_from_slice(value);
            self.lines.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    /// Records trailer fields, sent after the last chunk of a chunked body when the request allows
    /// them ([`super::conn::Conn::end_response_with`]); each call adds to those before. A field that
    /// could change framing, routing or authentication (the ones a request's trailers may not carry
    /// either) is refused, and nothing of the call is kept.
    pub fn add_trailers<'a>(
        &mut self,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<(), HeadError> {
        let before = self.trailers.len();
        for (i, (name, value)) in fields.enumerate() {
            let refused = name.is_empty()
                || !name.iter().all(|&b| is_token_byte(b))
                || super::body::FORBIDDEN_TRAILERS.iter().any(|f| name.eq_ignore_ascii_case(f));
            if refused || value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
                self.trailers.truncate(before);
                return Err(if refused { HeadError::Name(i) } else { HeadError::Value(i) });
            }
            for part in [name, b": ", value.trim_ascii(), b"\r\n"] {
                self.trailers.extend_from_slice(part);
            }
        }
        Ok(())
    }

    /// The trailer fields recorded, as `Name: value\r\n` lines.
    pub fn trailers(&self) -> &[u8] {
        &self.trailers
    }

    /// The first value of the app's header `name` (case-insensitive), as recorded.
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The app's fields as recorded (hop-by-hop ones and `Content-Length` left out), in order.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        field_lines(&self.lines)
    }

    /// The trailer fields recorded, in order.
    pub fn trailer_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        field_lines(&self.trailers)
    }

    /// Whether the app gave its own `Server` and its own `Date` field.
    pub fn names_server_and_date(&self) -> (bool, bool) {
        (self.has_server, self.has_date)
    }

    /// The framing for this head: `is_head` for a HEAD request, `version` of the request.
    pub fn framing(&self, version: Version, is_head: bool) -> Framing {
        if is_head || status::forbids_body(self.status) {
            Framing::NoBody
        } else if let Some(n) = self.content_length {
            Framing::Length(n)
        } else if version == Version::Http11 {
            Framing::Chunked
        } else {
            Framing::Close
        }
    }

    /// Appends the encoded head to `out`. `keep_alive` is the server's final decision for the
    /// connection; a close-delimited body always closes.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        framing: Framing,
        version: Version,
        keep_alive: bool,
        date: &[u8],
    ) {
        self.write_start(out, date);
        match framing {
            Framing::Length(n) => push_content_length(out, n),
            Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            // HEAD and 304 keep the length the app announced (RFC 9110 §8.6); 1xx and 204 must not.
            Framing::NoBody => {
                if let Some(n) = self.content_length.filter(|_| self.status >= 200 && self.status != 204) {
                    push_content_length(out, n);
                }
            }
            Framing::Close => {}
        }
        if !keep_alive || framing == Framing::Close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if version == Version::Http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Appends the 101 head that switches the connection to `protocol` (RFC 9110 §15.2.2): the
    /// recorded fields, then `Upgrade` and `Connection: Upgrade`.
    pub fn write_switch(&self, out: &mut Vec<u8>, protocol: &[u8], date: &[u8]) {
        self.write_start(out, date);
        out.extend_from_slice(b"Upgrade: ");
        out.extend_from_slice(protocol);
        out.extend_from_slice(b"\r\nConnection: Upgrade\r\n\r\n");
    }

    /// The status line, `Server` and `Date` unless the app gave them, and the recorded fields.
    fn write_start(&self, out: &mut Vec<u8>, date: &[u8]) {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(out, u64::from(self.status));
        out.push(b' ');
        if self.reason.is_empty() {
            out.extend_from_slice(status::reason(self.status).as_bytes());
        } else {
            out.extend_from_slice(&self.reason);
        }
        out.extend_from_slice(b"\r\n");
        if !self.has_server {
            out.extend_from_slice(b"Server: rustgun\r\n");
        }
        if !self.has_date {
            out.extend_from_slice(b"Date: ");
            out.extend_from_slice(date);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&self.lines);
    }
}

/// The (name, value) pairs of encoded `Name: value\r\n` lines.
fn field_lines(lines: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    lines.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|&b| b == b':')?;
        Some((&line[..colon], &line[colon + 2..]))
    })
}

fn push_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal without allocating.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn push_hex(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Frames body bytes for one response.
#[derive(Debug)]
pub struct Encoder {
    framing: Framing,
    /// Bytes still owed under Content-Length.
    remaining: u64,
    /// Body bytes accepted so far (for the access log).
    pub sent: u64,
}

impl Encoder {
    pub fn new(framing: Framing) -> Encoder {
        let remaining = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Encoder { framing, remaining, sent: 0 }
    }

    /// Frames the start of a chunk of `len` body bytes into `out` and returns how many of them may
    /// be sent: all of them, fewer when they overflow the Content-Length, none when no body is allowed.
    /// The caller sends that many bytes, then calls [`Encoder::end_chunk`].
    pub fn begin_chunk(&mut self, len: usize, out: &mut Vec<u8>) -> usize {
        let take = match self.framing {
            Framing::NoBody => 0,
            Framing::Length(_) => (self.remaining.min(len as u64)) as usize,
            Framing::Chunked | Framing::Close => len,
        };
        if self.framing == Framing::Chunked && take > 0 {
            push_hex(out, take as u64);
            out.extend_from_slice(b"\r\n");
        }
        self.remaining -= (take as u64).min(self.remaining);
        self.sent += take as u64;
        take
    }

    /// Frames the end of a chunk begun with `begin_chunk(len)` that accepted `taken` bytes.
    pub fn end_chunk(&mut self, taken: usize, out: &mut Vec<u8>) {
        if self.framing == Framing::Chunked && taken > 0 {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Frames a whole chunk held in memory.
    pub fn encode(&mut self, data: &[u8], out: &mut Vec<u8>) -> usize {
        let taken = self.begin_chunk(data.len(), out);
        out.extend_from_slice(&data[..taken]);
        self.end_chunk(taken, out);
        taken
    }

    /// Ends the body, with `trailers` (`Name: value\r\n` lines) after the last chunk when chunked.
    /// Returns how many bytes the Content-Length still owed (0 when complete): a short body leaves
    /// the connection unusable, and the caller must close it.
    pub fn finish(&mut self, trailers: &[u8], out: &mut Vec<u8>) -> u64 {
        if self.framing == Framing::Chunked {
            out.extend_from_slice(b"0\r\n");
            out.extend_from_slice(trailers);
            out.extend_from_slice(b"\r\n");
        }
        match self.framing {
            Framing::Length(_) => self.remaining,
            _ => 0,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// How many more body bytes the framing takes: none without a body, what a Content-Length still
    /// owes, else no limit.
    pub fn room(&self) -> u64 {
        match self.framing {
            Framing::NoBody => 0,
            Framing::Length(_) => self.remaining,
            Framing::Chunked | Framing::Close => u64::MAX,
        }
    }
}

/// Appends a complete error response (always `Connection: close`).
pub fn write_error(out: &mut Vec<u8>, code: u16, date: &[u8], with_body: bool) {
    let reason = status::reason(code).as_bytes();
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(code));
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\nServer: rustgun\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n");
    // Body: "<code> <reason>\n".
    push_content_length(out, 3 + 1 + reason.len() as u64 + 1);
    out.extend_from_slice(b"\r\n");
    if with_body {
        push_decimal(out, u64::from(code));
        out.push(b' ');
        out.extend_from_slice(reason);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn head(status: u32, headers: &[(&str, &str)]) -> Result<ResponseHead, HeadError> {
        let mut h = ResponseHead::default();
        h.set(status, b"", headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))?;
        Ok(h)
    }

    fn encode(h: &ResponseHead, version: Version, is_head: bool, body: &[&str]) -> String {
        let framing = h.framing(version, is_head);
        let mut out = Vec::new();
        h.write(&mut out, framing, version, true, DATE);
        let mut enc = Encoder::new(framing);
        for chunk in body {
            enc.encode(chunk.as_bytes(), &mut out);
        }
        enc.finish(&[], &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn content_length_response() {
        let h = head(200, &[("Content-Type", "text/plain"), ("Content-Length", "5")]).unwrap();
        assert_eq!(
            encode(&h, Version::Http11, false, &["hel", "lo"]),
            "HTTP/1.1 200 OK\r\nServer: rustgun\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
        );
    }

    #[test]
    fn chunked_when_no_length_on_11_and_close_on_10() {
        let h = head(200, &[("Transfer-Encoding", "gzip"), ("Connection", "keep-alive")]).unwrap();
        let s = encode(&h, Version::Http11, false, &["ab", "", "c"]);
        assert!(s.ends_with("Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"), "{s}");
        assert!(!s.contains("gzip"));
        let s = encode(&h, Version::Http10, false, &["ab"]);
        assert!(s.ends_with("Connection: close\r\n\r\nab"), "{s}");
    }

    #[test]
    fn head_and_204_have_no_body() {
        let h = head(200, &[("Content-Length", "5")]).unwrap();
        let s = encode(&h, Version::Http11, true, &["hello"]);
        assert!(s.ends_with("Content-Length: 5\r\n\r\n"), "{s}");
        assert_eq!(Encoder::new(h.framing(Version::Http11, true)).room(), 0);
        assert_eq!(Encoder::new(h.framing(Version::Http11, false)).room(), 5);
        let h = head(204, &[("Content-Length", "5")]).unwrap();
        let s = encode(&h, Version::Http11, false, &["hello"]);
        assert!(s.ends_with("GMT\r\n\r\n"), "{s}");
    }

    #[test]
    fn overflow_is_cut_and_short_is_reported() {
        let h = head(200, &[("Content-Length", "3")]).unwrap();
        let mut enc = Encoder::new(h.framing(Version::Http11, false));
        let mut out = Vec::new();
        assert_eq!(enc.encode(b"ab", &mut out), 2);
        assert_eq!(enc.room(), 1);
        assert_eq!(enc.finish(&[], &mut out), 1);
        assert_eq!(enc.encode(b"cdef", &mut out), 1);
        assert_eq!(enc.finish(&[], &mut out), 0);
        assert_eq!(out, b"abc");
    }

    #[test]
    fn refused_heads() {
        assert_eq!(head(200, &[("X", "a\r\nInjected: 1")]).unwrap_err(), HeadError::Value(0));
        assert_eq!(head(200, &[("Y", "ok"), ("X", "a\0")]).unwrap_err(), HeadError::Value(1));
        assert_eq!(head(200, &[("Bad Name", "v")]).unwrap_err(), HeadError::Name(0));
        assert_eq!(head(200, &[("", "v")]).unwrap_err(), HeadError::Name(0));
        assert_eq!(head(99, &[]).unwrap_err(), HeadError::Status(99));
        assert_eq!(head(200, &[("Content-Length", "1x")]).unwrap_err(), HeadError::ContentLength);
    }

    #[test]
    fn error_response_is_complete() {
        let mut out = Vec::new();
        write_error(&mut out, 400, DATE, true);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(s.contains("Connection: close\r\n"));
        assert!(s.ends_with("Content-Length: 16\r\n\r\n400 Bad Request\n"), "{s}");
    }
}
