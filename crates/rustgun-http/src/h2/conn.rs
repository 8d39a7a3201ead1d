//! One HTTP/2 connection, server side, **sans-I/O**: the client's bytes go in ([`Connection::receive`]),
//! [`Event`]s come out (a stream's request head, its body bytes, its trailers, a reset); responses go in
//! ([`Connection::respond`], [`Connection::send_data`], [`Connection::send_trailers`]) and frames come
//! out in [`Connection::output`], which the driver writes to the socket.
//!
//! Everything RFC 9113 asks of the connection lives here: the preface and SETTINGS exchange, stream
//! states (§5.1) and their ids, header blocks joined across CONTINUATION and bounded, flow control
//! both ways (§5.2, §6.9: the client's DATA against the windows we announced, credited back only as
//! the app consumes it; our DATA only as far as the client's windows allow), PING, RST_STREAM,
//! GOAWAY (graceful: streams already started finish), and the request's own rules (§8.3.1). A
//! connection error queues GOAWAY and is returned; a stream error queues RST_STREAM and goes on.
//!
//! Not here: sockets and clocks (the drivers), the frames' bytes ([`super::frame`]), HPACK
//! ([`super::hpack`]).

use super::ErrorCode;
use super::frame::{self, FrameError, HEAD_LEN, Head, PREFACE, flag, kind, setting};
use super::hpack::{self, Fields, HpackError};
use super::request::check_request;
use std::collections::{BTreeMap, VecDeque};

mod send;
mod upgrade;

/// What we announce, by gunicorn's settings (`--http2-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub max_concurrent_streams: u32,
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    pub max_header_list_size: u32,
}

impl Default for Config {
    /// gunicorn's defaults.
    fn default() -> Self {
        Config {
            max_concurrent_streams: 100,
            initial_window_size: 65_535,
            max_frame_size: frame::DEFAULT_MAX_FRAME,
            max_header_list_size: 65_536,
        }
    }
}

/// What the client did, for the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new request: its fields (pseudo-headers first, checked), and whether a body follows.
    Request { stream: u32, fields: Fields, end_stream: bool },
    /// Body bytes of a request (`end_stream`: the last).
    Data { stream: u32, data: Vec<u8>, end_stream: bool },
    /// The request's trailers, which end its body.
    Trailers { stream: u32, fields: Fields },
    /// The client reset the stream (or the connection did, for a malformed request): forget it.
    Reset { stream: u32, code: u32 },
    /// The client's windows opened: what was held back may be sent.
    Writable,
    /// The client is going away: streams above `last_stream` will not be processed by it.
    GoAway { last_stream: u32, code: u32 },
}

/// A connection error: GOAWAY with `code` is queued, and the driver closes once it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionError {
    pub code: ErrorCode,
    pub why: &'static str,
}

impl From<FrameError> for ConnectionError {
    fn from(e: FrameError) -> Self {
        ConnectionError { code: e.code, why: e.why }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// The client ended its side: only we still send.
    HalfClosedRemote,
    /// We ended ours: only the client still sends (its body, after an early response).
    HalfClosedLocal,
}

struct Stream {
    state: State,
    /// How much more the client may send us on this stream.
    recv_window: i64,
    /// How much more we may send.
    send_window: i64,
    /// Body bytes delivered and not yet consumed by the app: credited back by [`Connection::consumed`].
    unconsumed: u32,
    /// What the request's `content-length` says is still to come, if it said anything.
    remaining: Option<u64>,
}

/// A header block being joined across CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
    frames: u32,
    /// The HEADERS said the stream depends on itself: reset once the block is decoded.
    depends_on_itself: bool,
}

/// How many CONTINUATION frames one block may take (CVE-2024-27316: a flood of them is cut off).
const MAX_CONTINUATIONS: u32 = 64;
/// How many streams the client may reset before we finished them beyond those we did finish
/// (CVE-2023-44487, rapid reset: streams opened and cancelled at once cost the server work each).
const RESET_ALLOWANCE: u64 = 100;
/// How many bytes of frames may wait unwritten before a client's control frames stop being answered
/// (PING and SETTINGS floods from a client that does not read its answers).
pub const MAX_UNSENT: usize = 256 * 1024;
/// How many closed stream ids are remembered, to tell a frame on a closed stream (STREAM_CLOSED) from
/// one on a stream never opened (PROTOCOL_ERROR).
const CLOSED_KEPT: usize = 64;

pub struct Connection {
    config: Config,
    out: Vec<u8>,
    preface_seen: bool,
    settings_seen: bool,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    streams: BTreeMap<u32, Stream>,
    /// The highest stream id the client has opened.
    last_stream: u32,
    block: Option<Block>,
    recv_window: i64,
    send_window: i64,
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE and SETTINGS_MAX_FRAME_SIZE.
    peer_initial_window: i64,
    peer_max_frame: usize,
    /// GOAWAY sent: streams above this id are not started.
    going_away: Option<u32>,
    fields: Fields,
    /// The streams closed most recently.
    closed: VecDeque<u32>,
    /// The streams we sent RST_STREAM on most recently: what the client sent before it saw the
    /// reset is ignored (RFC 9113 §5.1, "closed").
    reset_sent: VecDeque<u32>,
    /// Streams we answered to the end, and streams the client reset before that.
    answered: u64,
    cancelled: u64,
}

impl Connection {
    /// A connection whose SETTINGS (from `config`) are queued.
    pub fn new(config: Config) -> Connection {
        let mut out = Vec::with_capacity(1024);
        frame::write_settings(
            &mut out,
            &[
                (setting::MAX_CONCURRENT_STREAMS, config.max_concurrent_streams),
                (setting::INITIAL_WINDOW_SIZE, config.initial_window_size),
                (setting::MAX_FRAME_SIZE, config.max_frame_size),
                (setting::MAX_HEADER_LIST_SIZE, config.max_header_list_size),
                (setting::ENABLE_PUSH, 0),
            ],
        );
        Connection {
            config,
            out,
            preface_seen: false,
            settings_seen: false,
            decoder: hpack::Decoder::new(4096, config.max_header_list_size as usize),
            encoder: hpack::Encoder::default(),
            streams: BTreeMap::new(),
            last_stream: 0,
            block: None,
            recv_window: 65_535,
            send_window: 65_535,
            peer_initial_window: 65_535,
            peer_max_frame: frame::DEFAULT_MAX_FRAME as usize,
            going_away: None,
            fields: Fields::new(),
            closed: VecDeque::with_capacity(CLOSED_KEPT),
            reset_sent: VecDeque::with_capacity(CLOSED_KEPT),
            answered: 0,
            cancelled: 0,
        }
    }

    /// The frames to write, in order; the driver drains what it wrote.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Streams started and not yet closed.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Reads every whole frame at the start of `buf`, pushing what they mean to `events`; returns how
    /// many bytes were used (the rest is an unfinished frame). On a connection error GOAWAY is queued.
    pub fn receive(&mut self, buf: &[u8], events: &mut Vec<Event>) -> Result<usize, ConnectionError> {
        let mut used = 0;
        if !self.preface_seen {
            let n = buf.len().min(PREFACE.len());
            if buf[..n] != PREFACE[..n] {
                return Err(self.fail(ErrorCode::Protocol, "not the HTTP/2 connection preface"));
            }
            if n < PREFACE.len() {
                return Ok(0);
            }
            self.preface_seen = true;
            used = PREFACE.len();
        }
        while let Some(head) = Head::parse(&buf[used..]) {
            if head.len > self.config.max_frame_size {
                return Err(self.fail(ErrorCode::FrameSize, "a frame larger than SETTINGS_MAX_FRAME_SIZE"));
            }
            let end = used + HEAD_LEN + head.len as usize;
            if buf.len() < end {
                break;
            }
            let payload = &buf[used + HEAD_LEN..end];
            used = end;
            if let Err(e) = self.frame(head, payload, events) {
                return Err(self.fail(e.code, e.why));
            }
        }
        Ok(used)
    }

    /// Refuses to queue another answer to a control frame while [`MAX_UNSENT`] bytes wait unread.
    fn unread_answers(&self) -> Result<(), ConnectionError> {
        if self.out.len() > MAX_UNSENT {
            return Err(calm("control frames faster than their answers are read"));
        }
        Ok(())
    }

    /// Queues GOAWAY for a connection error.
    fn fail(&mut self, code: ErrorCode, why: &'static str) -> ConnectionError {
        frame::write_goaway(&mut self.out, self.last_stream, code);
        self.going_away = Some(self.last_stream);
        ConnectionError { code, why }
    }

    fn frame(&mut self, head: Head, payload: &[u8], events: &mut Vec<Event>) -> Result<(), ConnectionError> {
        if !self.settings_seen && head.kind != kind::SETTINGS {
            return Err(protocol("the first frame is not SETTINGS"));
        }
        // A header block in progress admits only its own CONTINUATION frames (RFC 9113 §6.10).
        if let Some(block) = &self.block
            && (head.kind != kind::CONTINUATION || head.stream != block.stream)
        {
            return Err(protocol("a frame inside a header block"));
        }
        match head.kind {
            kind::SETTINGS => self.settings(&head, payload, events),
            kind::PING => {
                let data = frame::ping(&head, payload)?;
                if !head.has(flag::ACK) {
                    self.unread_answers()?;
                    frame::write(&mut self.out, kind::PING, flag::ACK, 0, &data);
                }
                Ok(())
            }
            kind::HEADERS => {
                let (range, depends) = frame::headers(&head, payload)?;
                // A stream depending on itself is reset (RFC 9113 §5.3.1), but only once its block
                // is decoded, CONTINUATION frames and all: the dynamic table must stay in step (§4.3).
                self.begin_block(&head, &payload[range], depends == Some(head.stream), events)
            }
            kind::CONTINUATION => {
                let Some(block) = &mut self.block else {
                    return Err(protocol("CONTINUATION without a header block"));
                };
                block.frames += 1;
                block.bytes.extend_from_slice(payload);
                if block.frames > MAX_CONTINUATIONS
                    || block.bytes.len() > self.config.max_header_list_size as usize
                {
                    return Err(ConnectionError {
                        code: ErrorCode::EnhanceYourCalm,
                        why: "a header block too long",
                    });
                }
                if head.has(flag::END_HEADERS) {
                    let block = self.block.take().expect("matched above");
                    self.end_block(block, events)?;
                }
                Ok(())
            }
            kind::DATA => self.data(&head, payload, events),
            kind::WINDOW_UPDATE => self.window_update(&head, payload, events),
            kind::RST_STREAM => {
                let code = frame::rst_stream(&head, payload)?;
                if head.stream > self.last_stream {
                    return Err(protocol("RST_STREAM on an idle stream"));
                }
                if self.forget(head.stream) {
                    events.push(Event::Reset { stream: head.stream, code });
                    self.cancelled += 1;
                    if self.cancelled > RESET_ALLOWANCE + self.answered {
                        return Err(calm("rapid reset: streams reset faster than they are answered"));
                    }
                }
                Ok(())
            }
            kind::PRIORITY => match frame::priority(&head, payload) {
                // A wrong length is the stream's error (RFC 9113 §6.3); stream 0 the connection's.
                Err(e) if e.code == ErrorCode::FrameSize => {
                    self.reset_stream(head.stream, ErrorCode::FrameSize, events);
                    Ok(())
                }
                Err(e) => Err(e.into()),
                // A stream cannot depend on itself: a stream error (RFC 9113 §5.3.1).
                Ok(depends) if depends == head.stream => {
                    self.reset_stream(head.stream, ErrorCode::Protocol, events);
                    Ok(())
                }
                Ok(_) => Ok(()),
            },
            kind::GOAWAY => {
                let (last_stream, code) = frame::goaway(&head, payload)?;
                events.push(Event::GoAway { last_stream, code });
                Ok(())
            }
            kind::PUSH_PROMISE => Err(protocol("a client may not push")),
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    fn settings(
        &mut self,
        head: &Head,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        let pairs = frame::settings(head, payload)?;
        if head.has(flag::ACK) {
            return Ok(());
        }
        self.settings_seen = true;
        self.apply_settings(pairs, events)?;
        self.unread_answers()?;
        frame::write(&mut self.out, kind::SETTINGS, flag::ACK, 0, &[]);
        Ok(())
    }

    /// The client's SETTINGS values take effect.
    fn apply_settings(
        &mut self,
        pairs: Vec<(u16, u32)>,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        for (id, value) in pairs {
            match id {
                setting::ENABLE_PUSH if value > 1 => return Err(protocol("ENABLE_PUSH is 0 or 1")),
                setting::INITIAL_WINDOW_SIZE => {
                    if i64::from(value) > frame::MAX_WINDOW {
                        return Err(flow("INITIAL_WINDOW_SIZE above 2^31-1"));
                    }
                    // The change applies to every stream's window, open ones included (§6.9.2).
                    let delta = i64::from(value) - self.peer_initial_window;
                    self.peer_initial_window = i64::from(value);
                    for stream in self.streams.values_mut() {
                        stream.send_window += delta;
                        if stream.send_window > frame::MAX_WINDOW {
                            return Err(flow("a stream window above 2^31-1"));
                        }
                    }
                    if delta > 0 && !self.streams.is_empty() {
                        events.push(Event::Writable);
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME..=frame::MAX_MAX_FRAME).contains(&value) {
                        return Err(protocol("MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = value as usize;
                }
                // The table our encoder may use (RFC 7541 §4.2): a smaller one is signalled at the
                // start of our next header block.
                setting::HEADER_TABLE_SIZE => self.encoder.set_max_table_size(value as usize),
                _ => {}
            }
        }
        Ok(())
    }

    fn begin_block(
        &mut self,
        head: &Head,
        fragment: &[u8],
        depends_on_itself: bool,
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        let block = Block {
            stream: head.stream,
            end_stream: head.has(flag::END_STREAM),
            bytes: fragment.to_vec(),
            frames: 0,
            depends_on_itself,
        };
        if block.bytes.len() > self.config.max_header_list_size as usize {
            return Err(calm("a header block too long"));
        }
        if head.has(flag::END_HEADERS) {
            self.end_block(block, events)
        } else {
            self.block = Some(block);
            Ok(())
        }
    }

    /// A whole header block: a new request, or a request's trailers.
    fn end_block(&mut self, block: Block, events: &mut Vec<Event>) -> Result<(), ConnectionError> {
        let id = block.stream;
        let mut fields = std::mem::take(&mut self.fields);
        let decoded = self.decoder.decode(&block.bytes, &mut fields);
        if decoded == Err(HpackError::Compression) {
            return Err(ConnectionError {
                code: ErrorCode::Compression,
                why: "a header block that does not decode",
            });
        }
        if block.depends_on_itself {
            self.fields = fields;
            self.reset_stream(id, ErrorCode::Protocol, events);
            return Ok(());
        }
        if let Some(stream) = self.streams.get_mut(&id) {
            // Trailers: they must end the stream, and the client's side must still be open.
            if stream.state != State::Open && stream.state != State::HalfClosedLocal {
                self.fields = fields;
                self.reset_stream(id, ErrorCode::StreamClosed, events);
                return Ok(());
            }
            let short = stream.remaining.is_some_and(|left| left > 0);
            if !block.end_stream
                || short
                || decoded.is_err()
                || fields.iter().any(|(n, _)| n.starts_with(b":"))
            {
                self.fields = fields;
                self.reset_stream(id, ErrorCode::Protocol, events);
                return Ok(());
            }
            if stream.state == State::HalfClosedLocal {
                self.forget(id);
            } else {
                stream.state = State::HalfClosedRemote;
            }
            events.push(Event::Trailers { stream: id, fields });
            return Ok(());
        }
        if id % 2 == 0 {
            return Err(protocol("a client stream id is odd"));
        }
        if id <= self.last_stream && self.reset_sent.contains(&id) {
            // Trailers that crossed our RST_STREAM: ignored, the block decoded (RFC 9113 §5.1).
            self.fields = fields;
            return Ok(());
        }
        if id <= self.last_stream {
            return Err(if self.closed.contains(&id) {
                ConnectionError { code: ErrorCode::StreamClosed, why: "HEADERS on a closed stream" }
            } else {
                protocol("a stream id below one already used")
            });
        }
        self.last_stream = id;
        if self.going_away.is_some_and(|last| id > last) {
            // After our GOAWAY, new streams are ignored (RFC 9113 §6.8).
            self.fields = fields;
            return Ok(());
        }
        if self.streams.len() >= self.config.max_concurrent_streams as usize {
            self.fields = fields;
            self.write_reset(id, ErrorCode::RefusedStream);
            return Ok(());
        }
        // A declared length on a request that has ended already must be 0 (RFC 9113 §8.1.1).
        let remaining = match (decoded, check_request(&fields)) {
            (Ok(()), Ok(length)) if !(block.end_stream && length.is_some_and(|n| n > 0)) => length,
            _ => {
                self.fields = fields;
                self.write_reset(id, ErrorCode::Protocol);
                return Ok(());
            }
        };
        let state = if block.end_stream { State::HalfClosedRemote } else { State::Open };
        let window = i64::from(self.config.initial_window_size);
        self.streams.insert(
            id,
            Stream {
                state,
                recv_window: window,
                send_window: self.peer_initial_window,
                unconsumed: 0,
                remaining,
            },
        );
        events.push(Event::Request { stream: id, fields, end_stream: block.end_stream });
        Ok(())
    }

    fn data(&mut self, head: &Head, payload: &[u8], events: &mut Vec<Event>) -> Result<(), ConnectionError> {
        let range = frame::data(head, payload)?;
        // The whole frame, padding included, counts against both windows (RFC 9113 §6.9.1).
        let size = i64::from(head.len);
        self.recv_window -= size;
        if self.recv_window < 0 {
            return Err(flow("DATA beyond the connection's window"));
        }
        let padding = head.len - range.len() as u32;
        let Some(stream) = self.streams.get_mut(&head.stream) else {
            if head.stream > self.last_stream {
                return Err(protocol("DATA on an idle stream"));
            }
            // A stream already closed: its bytes still count, and are credited back at once.
            if head.len > 0 {
                frame::write_window_update(&mut self.out, 0, head.len);
                self.recv_window += size;
            }
            // DATA that crossed our RST_STREAM is ignored (RFC 9113 §5.1, "closed").
            if !self.reset_sent.contains(&head.stream) {
                frame::write_rst(&mut self.out, head.stream, ErrorCode::StreamClosed);
            }
            return Ok(());
        };
        if stream.state != State::Open && stream.state != State::HalfClosedLocal {
            let id = head.stream;
            self.reset_stream(id, ErrorCode::StreamClosed, events);
            // The frame counted against the connection's window (RFC 9113 §6.9): credit it back,
            // or every stream error would shrink the window the other streams share.
            self.credit(id, head.len);
            return Ok(());
        }
        stream.recv_window -= size;
        if stream.recv_window < 0 {
            let id = head.stream;
            self.reset_stream(id, ErrorCode::FlowControl, events);
            self.credit(id, head.len);
            return Ok(());
        }
        let end_stream = head.has(flag::END_STREAM);
        // The body must be exactly as long as its content-length said (RFC 9113 §8.1.1).
        if let Some(left) = stream.remaining {
            let got = range.len() as u64;
            if got > left || (end_stream && got != left) {
                let id = head.stream;
                self.reset_stream(id, ErrorCode::Protocol, events);
                self.credit(id, head.len);
                return Ok(());
            }
            stream.remaining = Some(left - got);
        }
        stream.unconsumed += range.len() as u32;
        if padding > 0 {
            // Padding is never the app's to consume: credit it back now.
            self.credit(head.stream, padding);
        }
        if end_stream {
            match self.streams.get_mut(&head.stream) {
                Some(s) if s.state == State::HalfClosedLocal => {
                    self.forget(head.stream);
                }
                Some(s) => s.state = State::HalfClosedRemote,
                None => {}
            }
        }
        events.push(Event::Data { stream: head.stream, data: payload[range].to_vec(), end_stream });
        Ok(())
    }

    fn window_update(
        &mut self,
        head: &Head,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), ConnectionError> {
        let increment = i64::from(frame::window_update(payload)?);
        if head.stream == 0 {
            if increment == 0 {
                return Err(protocol("a WINDOW_UPDATE of 0"));
            }
            self.send_window += increment;
            if self.send_window > frame::MAX_WINDOW {
                return Err(flow("the connection's window above 2^31-1"));
            }
            events.push(Event::Writable);
            return Ok(());
        }
        if head.stream > self.last_stream {
            return Err(protocol("WINDOW_UPDATE on an idle stream"));
        }
        let Some(stream) = self.streams.get_mut(&head.stream) else { return Ok(()) };
        if increment == 0 {
            let id = head.stream;
            self.reset_stream(id, ErrorCode::Protocol, events);
            return Ok(());
        }
        stream.send_window += increment;
        if stream.send_window > frame::MAX_WINDOW {
            let id = head.stream;
            self.reset_stream(id, ErrorCode::FlowControl, events);
            return Ok(());
        }
        events.push(Event::Writable);
        Ok(())
    }

    /// A stream error: RST_STREAM queued, the stream forgotten, the driver told.
    fn reset_stream(&mut self, stream: u32, code: ErrorCode, events: &mut Vec<Event>) {
        self.write_reset(stream, code);
        if self.forget(stream) {
            events.push(Event::Reset { stream, code: code as u32 });
        }
    }

    /// Queues RST_STREAM, remembering that we sent it.
    fn write_reset(&mut self, stream: u32, code: ErrorCode) {
        frame::write_rst(&mut self.out, stream, code);
        if self.reset_sent.len() == CLOSED_KEPT {
            self.reset_sent.pop_front();
        }
        self.reset_sent.push_back(stream);
    }

    /// Closes `stream` for good (remembered as closed); whether it was open. What the app had not
    /// consumed of its body is credited back to the connection: no stream's end shrinks the window
    /// the others share.
    fn forget(&mut self, stream: u32) -> bool {
        if self.closed.len() == CLOSED_KEPT {
            self.closed.pop_front();
        }
        self.closed.push_back(stream);
        let Some(gone) = self.streams.remove(&stream) else { return false };
        if gone.unconsumed > 0 {
            self.recv_window += i64::from(gone.unconsumed);
            frame::write_window_update(&mut self.out, 0, gone.unconsumed);
        }
        true
    }

    /// Credits `n` received bytes back to the client, on the stream and the connection.
    fn credit(&mut self, stream: u32, n: u32) {
        if n == 0 {
            return;
        }
        self.recv_window += i64::from(n);
        frame::write_window_update(&mut self.out, 0, n);
        if let Some(s) = self.streams.get_mut(&stream)
            && s.state == State::Open
        {
            s.recv_window += i64::from(n);
            frame::write_window_update(&mut self.out, stream, n);
        }
    }

    /// What this connection announces.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Whether `stream` is open (not closed, reset or never started): what the driver still sends on.
    pub fn is_open(&self, stream: u32) -> bool {
        self.streams.contains_key(&stream)
    }

    /// Widens the connection's receive window by `n` (WINDOW_UPDATE on stream 0), so that streams the
    /// app is slow to read do not hold up the others: each stream stays bounded by its own window.
    pub fn widen_window(&mut self, n: u32) {
        let n = n.min((frame::MAX_WINDOW - self.recv_window).max(0) as u32);
        if n > 0 {
            self.recv_window += i64::from(n);
            frame::write_window_update(&mut self.out, 0, n);
        }
    }

    /// The app consumed `n` body bytes of `stream`: the client may send that much more.
    pub fn consumed(&mut self, stream: u32, n: u32) {
        if let Some(s) = self.streams.get_mut(&stream) {
            let n = n.min(s.unconsumed);
            s.unconsumed -= n;
            self.credit(stream, n);
        }
    }
}

fn protocol(why: &'static str) -> ConnectionError {
    ConnectionError { code: ErrorCode::Protocol, why }
}

fn calm(why: &'static str) -> ConnectionError {
    ConnectionError { code: ErrorCode::EnhanceYourCalm, why }
}

fn flow(why: &'static str) -> ConnectionError {
    ConnectionError { code: ErrorCode::FlowControl, why }
}
