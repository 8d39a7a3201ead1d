//! Responses, in both styles the ABI allows: an owned [`Response`] (status, headers, body) sent in one
//! go with a Content-Length, and the streaming [`ResponseWriter`] (`start`, then `write`s or a pull-mode
//! [`BodySource`]) that low-level handlers use.

use std::io::{self, Read};

use rustgun_abi::RG_RESPONSE_REPLACE;
use serde::Serialize;

use crate::error::HostError;
use crate::ffi::Call;
pub use crate::ffi::Header;
use crate::json;
use crate::log::{Level, log};

/// A whole response: built with [`Response::text`], [`Response::json`], [`Response::new`] and the
/// builder methods, sent by [`ResponseWriter::send`] with a `Content-Length` (unless one is set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (100..=999).
    pub status: u16,
    /// The header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Default for Response {
    fn default() -> Response {
        Response::new(200)
    }
}

impl Response {
    /// An empty response with `status` and no headers.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// 200 with `Content-Type: text/plain` and `body`.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200).header("Content-Type", "text/plain").body(body.into())
    }

    /// 200 with `Content-Type: text/html; charset=utf-8` and `body`.
    pub fn html(body: impl Into<String>) -> Response {
        Response::new(200).header("Content-Type", "text/html; charset=utf-8").body(body.into())
    }

    /// 200 with `Content-Type: application/json` and `value` serialized compactly
    /// (`{"a":1,"b":[2,3]}`). A value that cannot be serialized (a map with non-string keys) gives a
    /// 500, logged.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Response {
        Response::json_bytes(serde_json::to_vec(value))
    }

    /// Like [`json`](Response::json), serialized the way Python's `json.dumps` does by default
    /// (`{"a": 1, "b": [2, 3]}`, non-ASCII escaped); see [`json::to_vec_python`].
    pub fn json_python<T: Serialize + ?Sized>(value: &T) -> Response {
        Response::json_bytes(json::to_vec_python(value))
    }

    fn json_bytes(body: serde_json::Result<Vec<u8>>) -> Response {
        match body {
            Ok(body) => Response::new(200).header("Content-Type", "application/json").body(body),
            Err(e) => {
                log(Level::Error, &format!("cannot serialize a JSON response: {e}"));
                Response::text("Internal Server Error\n").status(500)
            }
        }
    }

    /// Sets the status.
    pub fn status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Appends a header (an existing one of the same name stays: use [`set_header`](Response::set_header)
    /// to replace).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces every header named `name` (case-insensitively) with one `name: value`.
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// The value of the first header named `name` (case-insensitively).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A pull-mode response body: the server calls [`next`](BodySource::next) whenever the socket can take
/// more, after `handle` returned, until it returns `Ok(0)` (the end) or an error (the connection is
/// aborted), then drops the source, however the response ended.
pub trait BodySource: Send + 'static {
    /// Fills `buf` with the next bytes (`buf` is never empty); `Ok(0)` at the end.
    fn next(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// A [`BodySource`] over an iterator of chunks.
pub struct IterBody<I> {
    chunks: I,
    current: Vec<u8>,
    offset: usize,
}

impl<I: Iterator<Item = Vec<u8>>> IterBody<I> {
    /// The chunks of `chunks`, in order (empty chunks are skipped).
    pub fn new(chunks: impl IntoIterator<IntoIter = I>) -> IterBody<I> {
        IterBody { chunks: chunks.into_iter(), current: Vec::new(), offset: 0 }
    }
}

impl<I: Iterator<Item = Vec<u8>> + Send + 'static> BodySource for IterBody<I> {
    fn next(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.offset == self.current.len() {
            match self.chunks.next() {
                Some(chunk) => {
                    self.current = chunk;
                    self.offset = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.offset);
        buf[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// A [`BodySource`] over a reader (a file, a `Cursor`, …).
pub struct ReadBody<R>(pub R);

impl<R: Read + Send + 'static> BodySource for ReadBody<R> {
    fn next(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

/// Up to this many headers go to the host from a stack array; more need a `Vec`.
const STACK_HEADERS: usize = 16;

/// The streaming side of a response, for one `handle` call: record the status and headers, then send
/// the body with [`write`](ResponseWriter::write) (also `std::io::Write`) or register a pull-mode body
/// with [`set_body`](ResponseWriter::set_body). Nothing goes out before the first body byte or the end
/// of `handle`, so [`restart`](ResponseWriter::restart) can replace the head until then (PEP 3333's
/// `exc_info`).
pub struct ResponseWriter<'a> {
    call: Call<'a>,
    started: bool,
    body_sent: bool,
    accepted: bool,
}

impl<'a> ResponseWriter<'a> {
    pub(crate) fn new(call: Call<'a>) -> ResponseWriter<'a> {
        ResponseWriter { call, started: false, body_sent: false, accepted: false }
    }

    /// Accepts the WebSocket the request asks for ([`Request::is_websocket`](crate::Request::is_websocket)),
    /// instead of a response (ABI 1.3; the app is exported with `websockets`). The server answers
    /// 101 with `subprotocol` (empty for none; it must be one the client offered) and `headers`; the
    /// app then hears [`WsEvent::Open`](crate::WsEvent::Open) in
    /// [`App::on_websocket`](crate::App::on_websocket) for the [`WebSocket`](crate::WebSocket)
    /// returned here (keep it to tell its events apart; it can send once open).
    /// [`HostError::State`] when the request is no WebSocket handshake or a response was started.
    pub fn accept_websocket(
        &mut self,
        subprotocol: &str,
        headers: &[Header<'_>],
    ) -> Result<crate::WebSocket, HostError> {
        self.call.accept_websocket(subprotocol.as_bytes(), headers)?;
        self.accepted = true;
        self.started = true;
        Ok(crate::WebSocket(self.call.socket()))
    }

    /// Keeps the call open after `handle` returns (ABI 1.3; the app is exported with `websockets` or
    /// `owns_loop`): the response goes on through the [`Later`](crate::later::Later), which names it in
    /// [`App::on_later`](crate::App::on_later). What was started or written here stays.
    pub fn later(&mut self) -> crate::later::Later {
        self.accepted = true;
        crate::later::Later::new(self.call.socket())
    }

    /// Whether the call goes on after `handle` (a WebSocket, [`later`](ResponseWriter::later)):
    /// `handle` then returns `RG_PENDING`.
    pub(crate) fn accepted(&self) -> bool {
        self.accepted
    }

    /// Records the status and headers, with the standard reason phrase. `RG_E_STATE` if already
    /// started, `RG_E_INVALID` for a status outside 100..=999 or bad header bytes. With `static`
    /// headers this allocates nothing:
    ///
    /// ```
    /// # use rustgun_sdk::{Error, Header, ResponseWriter};
    /// static HEADERS: [Header<'static>; 1] = [Header::new(b"Content-Type", b"text/plain")];
    /// fn reply(resp: &mut ResponseWriter) -> Result<(), Error> {
    ///     resp.start(200, &HEADERS)?;
    ///     resp.write(b"hi")?;
    ///     Ok(())
    /// }
    /// ```
    pub fn start(&mut self, status: u16, headers: &[Header<'_>]) -> Result<(), HostError> {
        self.start_raw(status, b"", headers, 0)
    }

    /// Like [`start`](ResponseWriter::start) with a reason phrase of the app's own.
    pub fn start_with_reason(
        &mut self,
        status: u16,
        reason: &str,
        headers: &[Header<'_>],
    ) -> Result<(), HostError> {
        self.start_raw(status, reason.as_bytes(), headers, 0)
    }

    /// Like [`start`](ResponseWriter::start) with headers given as `(name, value)` pairs of anything
    /// byte-like (`&str`, `String`, `&[u8]`, `Vec<u8>`).
    pub fn start_pairs<N, V>(&mut self, status: u16, headers: &[(N, V)]) -> Result<(), HostError>
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        with_headers(headers, |h| self.start_raw(status, b"", h, 0))
    }

    /// Replaces the head recorded earlier (`RG_RESPONSE_REPLACE`: PEP 3333's `exc_info`), e.g. to turn a
    /// 200 into a 500 after a failure. Allowed once, and only before the first body byte left
    /// (`RG_E_STATE` otherwise). Also works as a plain `start` when nothing was started.
    pub fn restart(&mut self, status: u16, headers: &[Header<'_>]) -> Result<(), HostError> {
        self.start_raw(status, b"", headers, RG_RESPONSE_REPLACE)
    }

    /// Like [`restart`](ResponseWriter::restart) with a reason phrase of the app's own.
    pub fn restart_with_reason(
        &mut self,
        status: u16,
        reason: &str,
        headers: &[Header<'_>],
    ) -> Result<(), HostError> {
        self.start_raw(status, reason.as_bytes(), headers, RG_RESPONSE_REPLACE)
    }

    /// [`restart`](ResponseWriter::restart) with `(name, value)` pairs.
    pub fn restart_pairs<N, V>(&mut self, status: u16, headers: &[(N, V)]) -> Result<(), HostError>
    where
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        with_headers(headers, |h| self.start_raw(status, b"", h, RG_RESPONSE_REPLACE))
    }

    fn start_raw(
        &mut self,
        status: u16,
        reason: &[u8],
        headers: &[Header<'_>],
        flags: u32,
    ) -> Result<(), HostError> {
        self.call.start_response(u32::from(status), reason, headers, flags)?;
        self.started = true;
        Ok(())
    }

    /// Sends body bytes (after `start`). `RG_E_CLOSED` when the client went away.
    pub fn write(&mut self, data: &[u8]) -> Result<(), HostError> {
        self.call.write(data)?;
        if !data.is_empty() {
            self.body_sent = true;
        }
        Ok(())
    }

    /// Adds trailer fields (after `start`, before the response ends; ABI 1.3), such as a checksum or
    /// gRPC's `grpc-status`. They follow the last chunk when the body is chunked (no Content-Length)
    /// and the request said `TE: trailers`, and are dropped otherwise. Fields that could change
    /// framing, routing or authentication (`Content-Length`, `Host`, `Authorization`, ...) are
    /// refused with [`HostError::Invalid`].
    pub fn trailers(&mut self, fields: &[Header<'_>]) -> Result<(), HostError> {
        self.call.trailers(fields)
    }

    /// Sends up to `len` bytes of the open file `fd` from `offset` as body bytes (after `start`),
    /// through the server's file-sending path (ABI 1.1, sendfile(2) where it can): the count the
    /// response accepted, less than `len` when the file ended or the framing takes no more (a HEAD
    /// request, a Content-Length met). The file's own offset does not move, and it stays open.
    pub fn send_file(
        &mut self,
        fd: std::os::fd::BorrowedFd<'_>,
        offset: u64,
        len: u64,
    ) -> Result<u64, HostError> {
        use std::os::fd::AsRawFd;
        let sent = self.call.send_file(fd.as_raw_fd(), offset, len)?;
        if sent > 0 {
            self.body_sent = true;
        }
        Ok(sent)
    }

    /// Registers a pull-mode body, read by the server after `handle` returns (after `start`; the server
    /// then frames it with chunked encoding unless the headers carry a Content-Length).
    pub fn set_body<S: BodySource>(&mut self, source: S) -> Result<(), HostError> {
        self.call.set_body(source)
    }

    /// [`set_body`](ResponseWriter::set_body) over an iterator of chunks.
    pub fn set_body_iter<I>(&mut self, chunks: I) -> Result<(), HostError>
    where
        I: IntoIterator<Item = Vec<u8>>,
        I::IntoIter: Send + 'static,
    {
        self.set_body(IterBody::new(chunks))
    }

    /// Sends a whole [`Response`]: its status and headers plus `Content-Length` (unless it has one),
    /// then its body in one write.
    pub fn send(&mut self, response: &Response) -> Result<(), HostError> {
        let has_length = response.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        let mut length_buf = [0u8; 20];
        let length = format_u64(response.body.len() as u64, &mut length_buf);
        let count = response.headers.len() + usize::from(!has_length);
        let header_at = |i: usize| match response.headers.get(i) {
            Some((n, v)) => Header::new(n.as_bytes(), v.as_bytes()),
            None => Header::new(b"Content-Length", length),
        };
        if count <= STACK_HEADERS {
            let mut stack = [Header::new(b"", b""); STACK_HEADERS];
            for (i, slot) in stack.iter_mut().take(count).enumerate() {
                *slot = header_at(i);
            }
            self.start(response.status, &stack[..count])?;
        } else {
            let all: Vec<Header<'_>> = (0..count).map(header_at).collect();
            self.start(response.status, &all)?;
        }
        if !response.body.is_empty() {
            self.write(&response.body)?;
        }
        Ok(())
    }

    /// Whether a head was recorded successfully through this writer.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Whether body bytes were written through this writer (a `restart` is then refused).
    pub fn is_body_sent(&self) -> bool {
        self.body_sent
    }
}

impl io::Write for ResponseWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        ResponseWriter::write(self, buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Ok(ResponseWriter::write(self, buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Calls `f` with `pairs` as a `Header` slice, from the stack when they fit.
fn with_headers<N, V, R>(pairs: &[(N, V)], f: impl FnOnce(&[Header<'_>]) -> R) -> R
where
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    fn header<N: AsRef<[u8]>, V: AsRef<[u8]>>((n, v): &(N, V)) -> Header<'_> {
        Header::new(n.as_ref(), v.as_ref())
    }
    if pairs.len() <= STACK_HEADERS {
        let mut stack = [Header::new(b"", b""); STACK_HEADERS];
        for (slot, pair) in stack.iter_mut().zip(pairs) {
            *slot = header(pair);
        }
        f(&stack[..pairs.len()])
    } else {
        let all: Vec<Header<'_>> = pairs.iter().map(header).collect();
        f(&all)
    }
}

/// Formats `n` in decimal into `buf`, returning the digits.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_formatting() {
        let mut buf = [0u8; 20];
        assert_eq!(format_u64(0, &mut buf), b"0");
        assert_eq!(format_u64(13, &mut buf), b"13");
        assert_eq!(format_u64(u64::MAX, &mut buf), b"18446744073709551615");
    }

    #[test]
    fn response_builders() {
        let r = Response::text("hi").status(201).header("X-A", "1");
        assert_eq!(r.status, 201);
        assert_eq!(r.get_header("content-type"), Some("text/plain"));
        assert_eq!(r.get_header("x-a"), Some("1"));
        assert_eq!(r.body, b"hi");
        let r = r.set_header("x-a", "2");
        assert_eq!(r.get_header("X-A"), Some("2"));
        assert_eq!(r.headers.len(), 2);

        let j = Response::json(&serde_json::json!({"b": 1, "a": [1, 2]}));
        assert_eq!(j.get_header("Content-Type"), Some("application/json"));
        assert_eq!(j.body, br#"{"b":1,"a":[1,2]}"#);
        let p = Response::json_python(&serde_json::json!({"b": 1, "a": [1, 2]}));
        assert_eq!(p.body, br#"{"b": 1, "a": [1, 2]}"#);
    }

    #[test]
    fn iter_body_splits_and_joins_chunks() {
        let mut body = IterBody::new(vec![b"hello".to_vec(), Vec::new(), b", world".to_vec()]);
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            let n = body.next(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"hello, world");
        assert_eq!(body.next(&mut buf).unwrap(), 0);
    }

    #[test]
    fn read_body_reads() {
        let mut body = ReadBody(io::Cursor::new(b"abc".to_vec()));
        let mut buf = [0u8; 8];
        assert_eq!(body.next(&mut buf).unwrap(), 3);
        assert_eq!(body.next(&mut buf).unwrap(), 0);
    }

    #[test]
    fn static_headers() {
        static HEADERS: [Header<'static>; 2] =
            [Header::new(b"Content-Type", b"text/plain"), Header::new(b"Content-Length", b"13")];
        assert_eq!(HEADERS[1].value(), b"13");
        let mut seen = Vec::new();
        with_headers(&[("a", "1"), ("b", "2")], |h| {
            for x in h {
                seen.push((x.name().to_vec(), x.value().to_vec()));
            }
        });
        assert_eq!(seen, vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    }
}
