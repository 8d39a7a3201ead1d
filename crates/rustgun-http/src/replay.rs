//! A connection driver without a socket: it feeds received bytes to the same [`Conn`] the worker
//! classes drive (head, then the body through an app-sized buffer, then an empty response, then
//! whatever follows) and records what a server would have seen. The property test and the fuzz
//! targets use it to check that how the bytes were segmented never changes what was parsed, nor what
//! the connection decided.

use super::Version;
use super::conn::{After, Conn, Wait};
use super::parse::{BodyFraming, Limits, RequestHead};
use super::response::ResponseHead;

/// What the driver saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete request head.
    Head {
        method: Vec<u8>,
        target: Vec<u8>,
        version: Version,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        framing: BodyFraming,
        keep_alive: bool,
    },
    /// The complete decoded body of the request whose head came last.
    Body(Vec<u8>),
    /// The request was refused with this status; the connection ends here.
    Refused(u16),
}

/// Where the driver stands when the input ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Between requests, nothing buffered.
    Nothing,
    /// Part of a head is buffered.
    Head,
    /// Inside a body.
    Body,
    /// The connection is over: refused, or a request that does not persist was complete.
    Closed,
}

/// Feeds bytes through the protocol core the way a connection does.
pub struct Replay {
    limits: Limits,
    body_limit: u64,
    /// The app's read size: decoded data is taken at most this many input bytes at a time.
    read_size: usize,
    buf: Vec<u8>,
    conn: Conn,
    head: RequestHead,
    resp: ResponseHead,
    out: Vec<u8>,
    /// A head was received and its exchange is not over.
    in_exchange: bool,
    body: Vec<u8>,
    closed: bool,
    events: Vec<Event>,
}

impl Replay {
    /// A driver with these head limits, `--limit-request-body` (0 = none) and app read size (≥ 1).
    pub fn new(limits: Limits, body_limit: u64, read_size: usize) -> Replay {
        Replay {
            limits,
            body_limit,
            read_size: read_size.max(1),
            buf: Vec::new(),
            conn: Conn::default(),
            head: RequestHead::default(),
            resp: ResponseHead::default(),
            out: Vec::new(),
            in_exchange: false,
            body: Vec::new(),
            closed: false,
            events: Vec::new(),
        }
    }

    /// Takes `bytes` as the next read from the socket and processes as much as they allow.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.buf.extend_from_slice(bytes);
        while !self.closed && self.step() {}
    }

    /// What was seen, and where the input ended.
    pub fn finish(self) -> (Vec<Event>, Pending) {
        let pending = match self.conn.waiting_for(!self.buf.is_empty()) {
            _ if self.closed => Pending::Closed,
            Wait::Closed => Pending::Closed,
            Wait::Body => Pending::Body,
            Wait::Idle => Pending::Nothing,
            Wait::Head | Wait::Response => Pending::Head,
        };
        (self.events, pending)
    }

    /// One step of progress; false when more input is needed.
    fn step(&mut self) -> bool {
        if !self.in_exchange {
            return match self.conn.receive_head(&self.buf, &self.limits, self.body_limit, &mut self.head) {
                Ok(None) => false,
                Err(e) => self.refuse(e.status()),
                Ok(Some(n)) => {
                    self.buf.drain(..n);
                    let h = &self.head;
                    self.events.push(Event::Head {
                        method: h.method().to_vec(),
                        target: h.target().to_vec(),
                        version: h.version,
                        fields: h.fields().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
                        framing: h.framing,
                        keep_alive: h.keep_alive,
                    });
                    self.in_exchange = true;
                    true
                }
            };
        }
        if self.conn.body_done() {
            return self.respond();
        }
        let limit = self.buf.len().min(self.read_size);
        match self.conn.receive_body(&self.buf[..limit]) {
            Err(e) => self.refuse(e.status()),
            Ok(step) => {
                self.body.extend_from_slice(&self.buf[step.data.clone()]);
                self.buf.drain(..step.consumed);
                !step.data.is_empty() || step.consumed > 0 || step.done
            }
        }
    }

    /// The body is complete: answer with an empty response and go on as the connection decides.
    fn respond(&mut self) -> bool {
        self.events.push(Event::Body(std::mem::take(&mut self.body)));
        self.in_exchange = false;
        self.out.clear();
        // A plain 200 with an empty body is always a valid final head, and persists in any version.
        let recorded = self.resp.set(200, b"", std::iter::once((&b"Content-Length"[..], &b"0"[..])));
        let begun = self.conn.begin_response(&mut self.resp, false, b"-", &mut self.out);
        debug_assert!(recorded.is_ok() && begun.is_ok());
        self.conn.end_response(&mut self.out);
        match self.conn.after(!self.buf.is_empty()) {
            After::KeepAlive => true,
            // The body is read before the answer here, so nothing is left to discard.
            After::Close | After::Linger | After::Discard => {
                self.closed = true;
                false
            }
        }
    }

    fn refuse(&mut self, status: u16) -> bool {
        self.events.push(Event::Refused(status));
        self.out.clear();
        self.conn.refuse(status, b"-", &mut self.out);
        self.closed = true;
        false
    }
}

/// Feeds `input` in pieces ending at each of `cuts` (ascending offsets) and then the rest, to a
/// [`Replay`] with these limits and read size.
pub fn replay_split(
    input: &[u8],
    cuts: &[usize],
    limits: &Limits,
    body_limit: u64,
    read_size: usize,
) -> (Vec<Event>, Pending) {
    let mut replay = Replay::new(limits.clone(), body_limit, read_size);
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(from, input.len());
        replay.feed(&input[from..cut]);
        from = cut;
    }
    replay.finish()
}
