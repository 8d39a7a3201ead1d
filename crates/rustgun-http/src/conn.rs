//! The life of one HTTP/1.1 connection, **sans-I/O** (h11's `Connection`, hyper's `proto/h1/conn`):
//! which request is being read, which response is being written, and what the connection does after
//! each exchange. Every protocol decision a worker makes about a connection is made here, once:
//! whether it persists ([`After`]), when `100 Continue` is owed, what an unread body may cost to skip,
//! what a 1xx from an app means, and what an expired deadline answers ([`Expiry`]).
//!
//! # Theory of operation
//! The driver (the blocking loop of sync/threads, the event loop, the replay harness) owns the socket,
//! the buffers and the clocks. It offers received bytes to [`Conn::receive_head`], then to
//! [`Conn::receive_body`], and learns how many bytes each used; it passes the app's response through
//! [`Conn::begin_response`], [`Conn::send_data`] and [`Conn::end_response`], which frame it into the
//! driver's output buffer; and when the exchange is over, [`Conn::after`] says whether to read the next
//! request, close, or linger first. When a deadline passes, [`Conn::expire`] says what the client gets.
//! A driver that waits asks [`Conn::waiting_for`] which deadline applies. Whether part of the next head
//! has arrived is the driver's to say (`buffered`): it holds those bytes until a whole head is there.
//!
//! ```text
//!   read:  Idle ──head──▶ Body ──end──▶ Done ─┐
//!            ▲               │               │ after() = KeepAlive
//!            └───────────────┴── (persist) ──┘
//!   write:   Waiting ──begin_response──▶ Body ──end_response──▶ Done
//! ```
//! A refusal, a body error or a stall moves the read side to `Closed`; the connection then ends with
//! [`After::Close`] or, when the client may still be sending, [`After::Linger`].
//!
//! An accepted upgrade ([`Conn::switch_protocols`]) ends the HTTP conversation: the connection then
//! belongs to the new protocol's own state machine ([`super::ws::Session`]).
//!
//! Not here: sockets, timers' values (`config`), the app boundary (`worker::connection`), parsing
//! (`parse`, `body`) and encoding (`response`), which this module sequences.

use super::body::{Decoder, Step};
use super::parse::{Limits, RequestHead, list_elements, parse_head};
use super::response::{self, CONTINUE_100, Encoder, Framing, ResponseHead};
use super::{Error, ErrorKind, Version};

/// Most unread request body a connection reads and discards to stay open; past it, it closes.
pub const MAX_DRAIN: u64 = 1024 * 1024;

/// How long an [`After::Linger`] connection reads and discards before it closes, and how much at most.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
pub const LINGER_BYTES: usize = 64 * 1024;

/// What the connection does once an exchange is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Read the next request.
    KeepAlive,
    /// Close now: the client has sent all it meant to.
    Close,
    /// Close our side, then read and discard for a while: the client may still be sending (a refused
    /// request, an unread body, pipelined requests), and closing with its bytes unread would reset
    /// the connection and destroy our response (RFC 9112 §9.6).
    Linger,
    /// Read and discard the rest of a body the app left unread, which has not all arrived yet (an
    /// event loop never waits for it inside an exchange): [`Conn::discard`], then the next request.
    Discard,
}

/// What the connection is waiting for, which says which deadline applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Between requests, nothing received: `--keep-alive` (the first request: `--header-timeout`).
    Idle,
    /// Part of a head: `--header-timeout`.
    Head,
    /// The request body, before the response began: the minimum rate.
    Body,
    /// The client taking the response: the minimum rate.
    Response,
    /// Nothing: the connection is over.
    Closed,
}

/// What a connection whose deadline passed gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Closed without an answer: it sent nothing of a request (a browser's preconnect, an idle
    /// keep-alive connection).
    Quiet,
    /// Answered with this error (408) and closed: it sent part of a request.
    Refuse(Error),
    /// Dropped: its response had begun, so no answer can be given.
    Drop,
}

/// The app gave a 1xx as its final status: it has been answered 500 instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterimAsFinal(pub u16);

#[derive(Debug)]
enum Read {
    Idle,
    Body(Decoder),
    Done,
    Closed,
}

#[derive(Debug)]
enum Write {
    Waiting,
    Body(Encoder),
    Done { sent: u64 },
}

/// Whether a `100 Continue` is owed to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Continue {
    NotExpected,
    Owed,
    Sent,
}

/// One connection's protocol state (a few dozen bytes; the head itself lives in the caller's
/// [`RequestHead`]).
#[derive(Debug)]
pub struct Conn {
    read: Read,
    write: Write,
    expect: Continue,
    /// Whether the connection may persist after this exchange, as far as known so far.
    persist: bool,
    version: Version,
    is_head: bool,
    /// The request said `TE: trailers`: the client takes trailer fields after a chunked body.
    te_trailers: bool,
    /// The request was refused before the app saw it.
    refused: bool,
    /// Body bytes discarded for this exchange.
    drained: u64,
    body_error: Option<ErrorKind>,
}

impl Default for Conn {
    fn default() -> Self {
        Conn {
            read: Read::Idle,
            write: Write::Waiting,
            expect: Continue::NotExpected,
            persist: true,
            version: Version::Http11,
            is_head: false,
            te_trailers: false,
            refused: false,
            drained: 0,
            body_error: None,
        }
    }
}

impl Conn {
    /// Offers the bytes received after the previous request. `Ok(Some(n))`: a head of `n` bytes was
    /// parsed into `head` and its body (framed by it, refused over `body_limit`, 0 = none) comes
    /// next; `Ok(None)`: more bytes are needed; `Err`: the request is refused with the error's status
    /// ([`Conn::refuse`] answers it).
    pub fn receive_head(
        &mut self,
        input: &[u8],
        limits: &Limits,
        body_limit: u64,
        head: &mut RequestHead,
    ) -> Result<Option<usize>, Error> {
        debug_assert!(matches!(self.read, Read::Idle), "a head while {:?}", self.read);
        match parse_head(input, limits, head) {
            Ok(None) => Ok(None),
            Ok(Some(n)) => self.receive_parsed_head(head, body_limit).map(|()| Some(n)),
            Err(e) => Err(self.refuse_head(e)),
        }
    }

    /// Takes a head already parsed from the input (by [`parse_head`], where the bytes were: the event
    /// loop parses before it hands a connection to its pool), as [`Conn::receive_head`] would have.
    pub fn receive_parsed_head(&mut self, head: &RequestHead, body_limit: u64) -> Result<(), Error> {
        debug_assert!(matches!(self.read, Read::Idle), "a head while {:?}", self.read);
        let decoder = Decoder::new(head.framing, body_limit).map_err(|e| self.refuse_head(e))?;
        self.version = head.version;
        self.is_head = head.is_head();
        self.te_trailers = head
            .fields()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"te"))
            .any(|(_, value)| list_elements(value).any(|t| t.eq_ignore_ascii_case(b"trailers")));
        self.persist = head.keep_alive;
        self.expect = if head.expect_continue { Continue::Owed } else { Continue::NotExpected };
        self.read = if decoder.is_done() { Read::Done } else { Read::Body(decoder) };
        Ok(())
    }

    /// A head refused: nothing more is read and the connection closes after the answer.
    fn refuse_head(&mut self, e: Error) -> Error {
        self.persist = false;
        self.refused = true;
        self.read = Read::Closed;
        e
    }

    /// Offers body bytes: the decoded data is a range of `input`, and `done` says the body ended.
    /// A malformed or oversized body is an error whose status the exchange answers with, if it still
    /// can ([`Conn::body_error`]); the connection then closes.
    pub fn receive_body(&mut self, input: &[u8]) -> Result<Step, Error> {
        let Read::Body(decoder) = &mut self.read else {
            return Ok(Step { consumed: 0, data: 0..0, done: true });
        };
        match decoder.decode(input) {
            Ok(step) => {
                if step.done {
                    self.read = Read::Done;
                }
                Ok(step)
            }
            Err(e) => {
                self.body_failed(e.kind);
                Err(e)
            }
        }
    }

    /// The body stopped arriving (slower than the minimum rate over a period of waiting): the exchange
    /// answers 408 if its response has not begun, and the connection closes.
    pub fn body_stalled(&mut self) {
        self.body_failed(ErrorKind::BodyTimeout);
    }

    fn body_failed(&mut self, kind: ErrorKind) {
        self.body_error = Some(kind);
        self.persist = false;
        self.read = Read::Closed;
    }

    /// Whether the request body has been read to its end (or there was none).
    pub fn body_done(&self) -> bool {
        matches!(self.read, Read::Done)
    }

    /// Body bytes still to come, when the framing says (Content-Length).
    pub fn body_remaining(&self) -> Option<u64> {
        match &self.read {
            Read::Body(decoder) => decoder.remaining_hint(),
            _ => Some(0),
        }
    }

    /// The status a body error (or stall) calls for, if one happened.
    pub fn body_error(&self) -> Option<u16> {
        self.body_error.map(ErrorKind::status)
    }

    /// Writes `100 Continue` if the client asked for it and is owed it: the body is about to be read
    /// and the final response has not begun (a 100 would land inside it). `true` when written.
    pub fn send_continue(&mut self, out: &mut Vec<u8>) -> bool {
        if self.expect != Continue::Owed || !matches!(self.write, Write::Waiting) {
            return false;
        }
        self.expect = Continue::Sent;
        out.extend_from_slice(CONTINUE_100);
        true
    }

    /// Writes the response head the app recorded, deciding the framing and whether the connection
    /// persists: not when the request, the app (`Connection: close`) or a close-delimited body says
    /// so, not while the client still holds back a body it was never told to send, and not when the
    /// driver is `closing` (the worker stops, or this was its last request). A 1xx as the final
    /// status is answered 500 instead.
    pub fn begin_response(
        &mut self,
        resp: &mut ResponseHead,
        closing: bool,
        date: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), InterimAsFinal> {
        debug_assert!(matches!(self.write, Write::Waiting), "a second response head");
        if resp.status < 200 {
            let given = resp.status;
            self.fail(500, resp, date, out);
            return Err(InterimAsFinal(given));
        }
        let framing = resp.framing(self.version, self.is_head);
        self.persist = self.persist
            && !resp.close
            && framing != Framing::Close
            && self.expect != Continue::Owed
            && !closing;
        resp.write(out, framing, self.version, self.persist, date);
        self.write = Write::Body(Encoder::new(framing));
        Ok(())
    }

    /// Accepts an upgrade: writes the app's 101 head switching to `protocol`. The HTTP conversation on
    /// this connection is over: what follows on it, both ways, belongs to the new protocol (the
    /// request has no body: an opening handshake has none, [`super::upgrade::Opening::read`]).
    pub fn switch_protocols(
        &mut self,
        resp: &mut ResponseHead,
        protocol: &[u8],
        date: &[u8],
        out: &mut Vec<u8>,
    ) {
        debug_assert!(matches!(self.write, Write::Waiting) && self.body_done(), "an upgrade mid-exchange");
        resp.status = 101;
        resp.write_switch(out, protocol, date);
        self.persist = false;
        self.read = Read::Closed;
        self.write = Write::Done { sent: 0 };
    }

    /// Whether the response head has been written.
    pub fn response_started(&self) -> bool {
        !matches!(self.write, Write::Waiting)
    }

    /// Frames body bytes into `out`: how many of them the framing took (fewer past a Content-Length,
    /// none without a body), or `None` before the head or after the end.
    pub fn send_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let Write::Body(encoder) = &mut self.write else { return None };
        Some(encoder.encode(data, out))
    }

    /// The response body's framing and how many more bytes it takes; `None` unless a body is open.
    pub fn body_room(&self) -> Option<(Framing, u64)> {
        let Write::Body(encoder) = &self.write else { return None };
        Some((encoder.framing(), encoder.room()))
    }

    /// Counts `n` body bytes the driver sent straight from a file (sendfile(2)); only for framings that
    /// add no bytes of their own (not chunked).
    pub fn sent_directly(&mut self, n: u64) {
        if let Write::Body(encoder) = &mut self.write {
            debug_assert!(encoder.framing() != Framing::Chunked);
            encoder.begin_chunk(n as usize, &mut Vec::new());
        }
    }

    /// Ends the response body (the chunked terminator). Returns how many bytes the Content-Length
    /// still owed: a short body leaves the connection unusable, so it closes.
    pub fn end_response(&mut self, out: &mut Vec<u8>) -> u64 {
        self.end_response_with(&[], out)
    }

    /// Ends the response body with trailer fields (`Name: value\r\n` lines), which go out after the
    /// last chunk when the body is chunked and the request said `TE: trailers` (RFC 9110 §6.5.1: a
    /// client that did not may drop them, or worse, so they are dropped here).
    pub fn end_response_with(&mut self, trailers: &[u8], out: &mut Vec<u8>) -> u64 {
        let Write::Body(encoder) = &mut self.write else { return 0 };
        let trailers = if self.te_trailers { trailers } else { &[] };
        let missing = encoder.finish(trailers, out);
        if missing > 0 {
            self.persist = false;
        }
        self.write = Write::Done { sent: encoder.sent };
        missing
    }

    /// Replaces the app's response (none has begun) with a complete error response, and closes
    /// afterwards. Whatever the app sends after it is swallowed.
    pub fn fail(&mut self, status: u16, resp: &mut ResponseHead, date: &[u8], out: &mut Vec<u8>) {
        self.persist = false;
        response::write_error(out, status, date, !self.is_head);
        resp.status = status;
        self.write = Write::Body(Encoder::new(Framing::NoBody));
    }

    /// Answers a request the protocol refused (or the driver did, for it) with `status` and
    /// `Connection: close`; the client may still be sending, so the connection lingers.
    pub fn refuse(&mut self, status: u16, date: &[u8], out: &mut Vec<u8>) {
        response::write_error(out, status, date, true);
        self.persist = false;
        self.refused = true;
        self.read = Read::Closed;
        self.write = Write::Done { sent: 0 };
    }

    /// The response cannot be completed (the client is gone, the app failed mid-body): nothing more
    /// is sent and the connection ends.
    pub fn abort(&mut self) {
        self.persist = false;
        self.write = Write::Done { sent: self.sent() };
    }

    /// The connection will not persist after this exchange, whatever else happens (a spool or a read
    /// failed, a file could not be read).
    pub fn must_close(&mut self) {
        self.persist = false;
    }

    /// Whether the body the app left unread should be read and discarded so the connection can
    /// persist. Not when it is complete, the connection closes anyway, or the client holds it back
    /// waiting for a `100 Continue` it was never sent (then it closes instead).
    pub fn should_drain(&mut self) -> bool {
        if self.body_done() || !self.persist {
            return false;
        }
        if self.expect == Continue::Owed {
            self.persist = false;
            return false;
        }
        true
    }

    /// Decodes and discards the rest of a body after [`After::Discard`]: how much of `input` it took,
    /// and whether the body is over (the state is then ready for the next request). `Err` when the
    /// body is malformed or passes [`MAX_DRAIN`]: the connection closes.
    pub fn discard(&mut self, input: &[u8]) -> Result<(usize, bool), Error> {
        let mut taken = 0;
        while !self.body_done() {
            let step = self.receive_body(&input[taken..])?;
            taken += step.consumed;
            if !self.drained(step.data.len()) {
                return Err(Error::new(ErrorKind::BodyTooLarge, "unread request body past the drain bound"));
            }
            if step.consumed == 0 && !step.done {
                return Ok((taken, false));
            }
        }
        *self = Conn::default();
        Ok((taken, true))
    }

    /// Counts `n` discarded body bytes: `false` (and the connection closes) past [`MAX_DRAIN`].
    pub fn drained(&mut self, n: usize) -> bool {
        self.drained += n as u64;
        if self.drained > MAX_DRAIN {
            self.persist = false;
        }
        self.persist
    }

    /// Response body bytes the framing took so far (for the access log).
    pub fn sent(&self) -> u64 {
        match &self.write {
            Write::Waiting => 0,
            Write::Body(encoder) => encoder.sent,
            Write::Done { sent } => *sent,
        }
    }

    /// Ends the exchange: what the connection does next. It persists when the request and the
    /// response allowed it and both are complete; the state is then ready for the next request.
    /// Otherwise it lingers when the client may still be sending (a refused request, a body left
    /// unread, or `unread_input`: bytes received after this request), else it closes.
    pub fn after(&mut self, unread_input: bool) -> After {
        let body_done = self.body_done();
        if self.persist && matches!(self.write, Write::Done { .. }) {
            if body_done {
                *self = Conn::default();
                return After::KeepAlive;
            }
            // A drain that stopped for want of bytes, within its bound: the rest is discarded as it
            // comes.
            if matches!(self.read, Read::Body(_)) {
                return After::Discard;
            }
        }
        let linger = self.refused || !body_done || unread_input;
        self.persist = false;
        self.read = Read::Closed;
        if linger { After::Linger } else { After::Close }
    }

    /// What the connection waits for now; `buffered` says part of the next head has arrived.
    pub fn waiting_for(&self, buffered: bool) -> Wait {
        match (&self.read, &self.write) {
            (Read::Closed, _) => Wait::Closed,
            (Read::Idle, _) if buffered => Wait::Head,
            (Read::Idle, _) => Wait::Idle,
            (Read::Body(_), Write::Waiting) => Wait::Body,
            (_, _) => Wait::Response,
        }
    }

    /// The deadline of [`Conn::waiting_for`] passed: what the client gets. A client that sent nothing
    /// is closed quietly, one with part of a request gets 408 (refuse it with [`Conn::refuse`]), one
    /// whose response had begun is dropped.
    pub fn expire(&mut self, buffered: bool) -> Expiry {
        let expiry = match self.waiting_for(buffered) {
            Wait::Idle | Wait::Closed => Expiry::Quiet,
            Wait::Head => {
                Expiry::Refuse(Error::new(ErrorKind::HeadTimeout, "request head not received in time"))
            }
            Wait::Body => {
                Expiry::Refuse(Error::new(ErrorKind::BodyTimeout, "request body sent slower than --min-rate"))
            }
            Wait::Response => Expiry::Drop,
        };
        self.persist = false;
        if expiry == Expiry::Drop {
            self.abort();
        }
        self.read = Read::Closed;
        expiry
    }

    /// The version of the request being served.
    pub fn version(&self) -> Version {
        self.version
    }
}

#[cfg(test)]
mod tests;
