//! A reference connection driver without a socket: it feeds received bytes to [`parse_head`] and the
//! head's [`Decoder`] exactly as the worker classes do (parse the buffered bytes, consume the head,
//! decode the body through an app-sized buffer, go on with whatever follows) and records what a
//! server would have seen. The property test and the fuzz targets use it to check that how the bytes
//! were segmented never changes what was parsed.

use super::Version;
use super::body::Decoder;
use super::parse::{BodyFraming, Limits, RequestHead, parse_head};

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
    head: RequestHead,
    decoder: Option<Decoder>,
    body: Vec<u8>,
    persist: bool,
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
            head: RequestHead::default(),
            decoder: None,
            body: Vec::new(),
            persist: true,
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
        let pending = if self.closed {
            Pending::Closed
        } else if self.decoder.is_some() {
            Pending::Body
        } else if self.buf.is_empty() {
            Pending::Nothing
        } else {
            Pending::Head
        };
        (self.events, pending)
    }

    /// One step of progress; false when more input is needed.
    fn step(&mut self) -> bool {
        let Some(decoder) = &mut self.decoder else {
            return match parse_head(&self.buf, &self.limits, &mut self.head) {
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
                    self.persist = h.keep_alive;
                    match Decoder::new(h.framing, self.body_limit) {
                        Ok(d) => self.decoder = Some(d),
                        Err(e) => return self.refuse(e.status()),
                    }
                    true
                }
            };
        };
        let limit = self.buf.len().min(self.read_size);
        match decoder.decode(&self.buf[..limit]) {
            Err(e) => self.refuse(e.status()),
            Ok(step) => {
                self.body.extend_from_slice(&self.buf[step.data.clone()]);
                self.buf.drain(..step.consumed);
                if step.done {
                    self.decoder = None;
                    self.events.push(Event::Body(std::mem::take(&mut self.body)));
                    self.closed = !self.persist;
                    return true;
                }
                !step.data.is_empty() || step.consumed > 0
            }
        }
    }

    fn refuse(&mut self, status: u16) -> bool {
        self.events.push(Event::Refused(status));
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
