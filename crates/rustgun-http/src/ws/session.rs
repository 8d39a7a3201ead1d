//! The server's message-level state machine of one WebSocket connection: client frames in
//! (validated, unmasked, reassembled, inflated, UTF-8 checked), events out, and the frames the
//! server sends (messages, pings, pongs, closes) appended to a caller's buffer.
//!
//! Header layout and masking live in `frame.rs`, compression in `deflate.rs`. Sockets, timers,
//! keep-alive policy and handing messages to the application belong to the driver.

use std::fmt;

use super::deflate::{DeflateParams, Deflater, INFLATER_BYTES, InflateError, Inflater};
use super::frame::{self, BINARY, CLOSE, CONTINUATION, FIN, Header, PING, PONG, RSV1, RSV2, RSV3, TEXT};
use super::{close, sendable_code};

/// A message buffer with more capacity than this is released, not kept for the next message.
const KEEP_CAPACITY: usize = 64 * 1024;
/// Messages shorter than this are sent uncompressed (RFC 7692 allows it per message).
const COMPRESS_MIN: usize = 64;
/// Compressed payload is unmasked through a stack buffer of this size before inflating.
const UNMASK_CHUNK: usize = 4096;
/// The longest control-frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;
/// The longest close reason that fits in a control frame after the 2-byte code.
const MAX_REASON: usize = MAX_CONTROL - 2;

/// The type of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text (opcode 1).
    Text,
    /// Arbitrary bytes (opcode 2).
    Binary,
}

impl Kind {
    fn opcode(self) -> u8 {
        match self {
            Kind::Text => TEXT,
            Kind::Binary => BINARY,
        }
    }
}

/// Where the close handshake is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// The server sent a close frame and waits for the peer's.
    CloseSent,
    /// The handshake is over (or the connection failed): the driver flushes and closes TCP.
    Closed,
}

/// What `receive` reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole message arrived (reassembled, decompressed, UTF-8 checked for Text); its bytes are
    /// `Session::message()` until the next `receive`, or taken with `take_message`.
    Message(Kind),
    /// A ping arrived; the pong is already in `out`. (After the server's close, pings are neither
    /// answered nor reported.)
    Ping,
    /// A pong arrived (the driver's keep-alive uses this).
    Pong,
    /// The peer's close frame (code 1005 when it had none; reason in `Session::close_reason()`);
    /// the echo, if one was owed, is already in `out`. State is now Closed: the driver flushes
    /// `out` and closes the TCP connection.
    Close(u16),
}

/// A violation of RFC 6455/7692 by the peer: the close frame with `code` has been appended to
/// `out` (unless the server had already sent its close) and the session is Closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// The close code sent: 1002, 1007 or 1009.
    pub code: u16,
    /// What was wrong; also the close frame's reason.
    pub reason: &'static str,
}

impl ProtocolError {
    const fn protocol(reason: &'static str) -> ProtocolError {
        ProtocolError { code: close::PROTOCOL, reason }
    }

    const fn invalid_data(reason: &'static str) -> ProtocolError {
        ProtocolError { code: close::INVALID_DATA, reason }
    }

    const TOO_BIG: ProtocolError = ProtocolError { code: close::TOO_BIG, reason: "message too big" };
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "websocket protocol error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ProtocolError {}

/// The frame whose payload is being received.
#[derive(Clone, Copy)]
struct Frame {
    opcode: u8,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes received so far (the masking key's phase).
    offset: usize,
    remaining: usize,
}

/// The data message being received.
struct Assembly {
    kind: Kind,
    compressed: bool,
    /// Payload bytes of its frames so far (compressed or not), against `max_message`.
    wire_len: usize,
    /// How much of the message buffer is known to be whole UTF-8 characters (Text only).
    utf8_checked: usize,
}

impl Assembly {
    /// Fails as soon as `message` (the text so far) cannot be the start of valid UTF-8; a
    /// character cut at the end is fine until the message ends.
    fn check_utf8(&mut self, message: &[u8]) -> Result<(), ProtocolError> {
        if self.kind == Kind::Text {
            match std::str::from_utf8(&message[self.utf8_checked..]) {
                Ok(_) => self.utf8_checked = message.len(),
                Err(e) if e.error_len().is_none() => self.utf8_checked += e.valid_up_to(),
                Err(_) => return Err(ProtocolError::invalid_data("text is not UTF-8")),
            }
        }
        Ok(())
    }
}

/// Clears a message buffer, releasing it when it is large.
fn recycled(mut buf: Vec<u8>) -> Vec<u8> {
    if buf.capacity() > KEEP_CAPACITY {
        return Vec::new();
    }
    buf.clear();
    buf
}

/// Maps an inflate failure to the close it causes.
fn inflate_error(error: InflateError) -> ProtocolError {
    match error {
        InflateError::TooBig => ProtocolError::TOO_BIG,
        InflateError::Corrupt => ProtocolError::invalid_data("invalid compressed data"),
    }
}

/// One WebSocket connection's protocol state (server side).
pub struct Session {
    max_message: usize,
    deflate: Option<DeflateParams>,
    /// Made on the first compressed message; dropped after each one with client_no_context_takeover.
    /// Boxed: zlib's stream struct is large, and most sessions hold none.
    inflater: Option<Box<Inflater>>,
    state: State,
    frame: Option<Frame>,
    assembly: Option<Assembly>,
    /// The message being received, or the last one delivered.
    message: Vec<u8>,
    /// Whether `message` holds a delivered message (cleared by the next `receive`).
    delivered: bool,
    /// The payload of the control frame being received (or of the peer's close, once Closed).
    control: [u8; MAX_CONTROL],
    control_len: usize,
}

impl Session {
    /// A session for a connection whose handshake is done: messages (and frames) longer than
    /// `max_message` bytes, after decompression too, fail with 1009; `deflate` is what
    /// `negotiate_deflate` returned.
    pub fn new(max_message: usize, deflate: Option<DeflateParams>) -> Session {
        Session {
            max_message,
            deflate,
            inflater: None,
            state: State::Open,
            frame: None,
            assembly: None,
            message: Vec::new(),
            delivered: false,
            control: [0; MAX_CONTROL],
            control_len: 0,
        }
    }

    /// Decodes client frames from the start of `input`: returns how many bytes of `input` were
    /// used (the caller drops them) and at most one event. It consumes as much as it can: partial
    /// frame payloads are consumed and accumulated into the message buffer (unmasking on the fly),
    /// so the caller's input buffer never has to hold more than one frame header (at most 14
    /// bytes) unconsumed. `Ok((n, None))` means more input is needed. After Closed it consumes
    /// and ignores everything.
    pub fn receive(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<Event>), ProtocolError> {
        if self.state == State::Closed {
            return Ok((input.len(), None));
        }
        if self.delivered {
            self.delivered = false;
            self.message = recycled(std::mem::take(&mut self.message));
        }
        self.decode(input, out).inspect_err(|error| {
            self.close(error.code, error.reason, out);
            self.state = State::Closed;
            self.control_len = 0;
            self.frame = None;
            self.assembly = None;
            self.inflater = None;
        })
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, Option<Event>), ProtocolError> {
        let mut used = 0;
        loop {
            let mut frame = match self.frame.take() {
                Some(frame) => frame,
                None => {
                    let Some((header, len)) = frame::decode(&input[used..]) else {
                        return Ok((used, None));
                    };
                    used += len;
                    self.begin(header)?
                }
            };
            let take = frame.remaining.min(input.len() - used);
            if take > 0 {
                self.payload(&frame, &input[used..used + take])?;
                used += take;
                frame.offset += take;
                frame.remaining -= take;
            }
            if frame.remaining > 0 {
                self.frame = Some(frame);
                return Ok((used, None));
            }
            if let Some(event) = self.end(&frame, out)? {
                return Ok((used, Some(event)));
            }
        }
    }

    /// Validates a frame header against the session's state (RFC 6455 §5.2-5.5, RFC 7692 §6).
    fn begin(&mut self, header: Header) -> Result<Frame, ProtocolError> {
        let Some(mask) = header.mask else {
            return Err(ProtocolError::protocol("client frame not masked"));
        };
        if header.has(RSV2 | RSV3) {
            return Err(ProtocolError::protocol("reserved bit set"));
        }
        if header.len >> 63 != 0 {
            return Err(ProtocolError::protocol("frame length has its top bit set"));
        }
        let len = usize::try_from(header.len).map_err(|_| ProtocolError::TOO_BIG)?;
        let (opcode, fin, rsv1) = (header.opcode(), header.has(FIN), header.has(RSV1));
        match opcode {
            CLOSE | PING | PONG => {
                if rsv1 {
                    return Err(ProtocolError::protocol("RSV1 set on a control frame"));
                }
                if !fin {
                    return Err(ProtocolError::protocol("fragmented control frame"));
                }
                if len > MAX_CONTROL {
                    return Err(ProtocolError::protocol("control frame longer than 125 bytes"));
                }
                self.control_len = 0;
            }
            CONTINUATION | TEXT | BINARY => {
                if opcode == CONTINUATION {
                    if self.assembly.is_none() {
                        return Err(ProtocolError::protocol("continuation frame without a message"));
                    }
                    if rsv1 {
                        return Err(ProtocolError::protocol("RSV1 set on a continuation frame"));
                    }
                } else {
                    if self.assembly.is_some() {
                        return Err(ProtocolError::protocol("new message inside a fragmented one"));
                    }
                    if rsv1 && self.deflate.is_none() {
                        return Err(ProtocolError::protocol("RSV1 set without permessage-deflate"));
                    }
                    self.message.clear();
                    let kind = if opcode == TEXT { Kind::Text } else { Kind::Binary };
                    self.assembly = Some(Assembly { kind, compressed: rsv1, wire_len: 0, utf8_checked: 0 });
                }
                if let Some(assembly) = &mut self.assembly {
                    if len > self.max_message - assembly.wire_len {
                        return Err(ProtocolError::TOO_BIG);
                    }
                    assembly.wire_len += len;
                }
            }
            _ => return Err(ProtocolError::protocol("reserved opcode")),
        }
        Ok(Frame { opcode, fin, mask, offset: 0, remaining: len })
    }

    /// Takes in a piece of the current frame's payload.
    fn payload(&mut self, frame: &Frame, masked: &[u8]) -> Result<(), ProtocolError> {
        // Data frames always have an assembly; control frames (even inside one) use `control`.
        let Some(assembly) = self.assembly.as_mut().filter(|_| frame.opcode < CLOSE) else {
            let piece = &mut self.control[self.control_len..self.control_len + masked.len()];
            piece.copy_from_slice(masked);
            frame::apply_mask(piece, frame.mask, frame.offset);
            self.control_len += masked.len();
            return Ok(());
        };
        if assembly.compressed {
            let inflater = self.inflater.get_or_insert_with(|| Box::new(Inflater::new()));
            let mut buf = [0u8; UNMASK_CHUNK];
            for (i, piece) in masked.chunks(UNMASK_CHUNK).enumerate() {
                let buf = &mut buf[..piece.len()];
                buf.copy_from_slice(piece);
                frame::apply_mask(buf, frame.mask, frame.offset + i * UNMASK_CHUNK);
                inflater.inflate(buf, &mut self.message, self.max_message).map_err(inflate_error)?;
                assembly.check_utf8(&self.message)?;
            }
        } else {
            let start = self.message.len();
            self.message.extend_from_slice(masked);
            frame::apply_mask(&mut self.message[start..], frame.mask, frame.offset);
            assembly.check_utf8(&self.message)?;
        }
        Ok(())
    }

    /// Acts on a frame whose payload is complete.
    fn end(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<Option<Event>, ProtocolError> {
        match frame.opcode {
            PING if self.state == State::Open => {
                frame::write(out, FIN | PONG, &self.control[..self.control_len]);
                Ok(Some(Event::Ping))
            }
            PING => Ok(None),
            PONG => Ok(Some(Event::Pong)),
            CLOSE => self.peer_close(out).map(Some),
            _ if frame.fin => self.finish_message(),
            _ => Ok(None),
        }
    }

    /// Validates the peer's close frame (RFC 6455 §5.5.1, §7.4), echoes it if owed, and closes.
    fn peer_close(&mut self, out: &mut Vec<u8>) -> Result<Event, ProtocolError> {
        let code = match &self.control[..self.control_len] {
            [] => close::NO_STATUS,
            [_] => return Err(ProtocolError::protocol("close payload of one byte")),
            [high, low, reason @ ..] => {
                let code = u16::from_be_bytes([*high, *low]);
                if !sendable_code(code) {
                    return Err(ProtocolError::protocol("invalid close code"));
                }
                if std::str::from_utf8(reason).is_err() {
                    return Err(ProtocolError::invalid_data("close reason is not UTF-8"));
                }
                code
            }
        };
        if self.state == State::Open {
            // Echo the peer's code and reason, as the websockets library does; an empty close is
            // echoed empty.
            frame::write(out, FIN | CLOSE, &self.control[..self.control_len]);
        }
        self.state = State::Closed;
        self.assembly = None;
        self.inflater = None;
        Ok(Event::Close(code))
    }

    /// Completes the data message whose last frame just ended.
    fn finish_message(&mut self) -> Result<Option<Event>, ProtocolError> {
        let Some(mut assembly) = self.assembly.take() else {
            return Ok(None);
        };
        if assembly.compressed {
            let inflater = self.inflater.get_or_insert_with(|| Box::new(Inflater::new()));
            inflater.finish(&mut self.message, self.max_message).map_err(inflate_error)?;
            assembly.check_utf8(&self.message)?;
            if self.deflate.is_some_and(|params| params.client_no_context_takeover) {
                self.inflater = None;
            }
        }
        if assembly.kind == Kind::Text && assembly.utf8_checked != self.message.len() {
            return Err(ProtocolError::invalid_data("text ends inside a character"));
        }
        if self.state != State::Open {
            self.message.clear();
            return Ok(None);
        }
        self.delivered = true;
        Ok(Some(Event::Message(assembly.kind)))
    }

    /// The last message's bytes (valid until the next receive; empty while none was delivered).
    pub fn message(&self) -> &[u8] {
        if self.delivered { &self.message } else { &[] }
    }

    /// Takes the message buffer (for the driver to hand to the app without copying); empty while
    /// no message was delivered.
    pub fn take_message(&mut self) -> Vec<u8> {
        if self.delivered { std::mem::take(&mut self.message) } else { Vec::new() }
    }

    /// ... and gives it back afterwards, so its capacity is reused (cleared here). Capacity above
    /// 64 KiB is released (so an idle connection after one large message holds no large buffer).
    /// Dropped if the session has started filling another buffer meanwhile.
    pub fn restore_message(&mut self, buf: Vec<u8>) {
        if self.message.is_empty() && self.assembly.is_none() {
            self.message = recycled(buf);
        }
    }

    /// The reason of the peer's close frame (empty if none).
    pub fn close_reason(&self) -> &str {
        match (self.state, self.control.get(2..self.control_len)) {
            (State::Closed, Some(reason)) => std::str::from_utf8(reason).unwrap_or_default(),
            _ => "",
        }
    }

    /// Appends one unmasked frame carrying a whole message (compressed with RSV1 when deflate was
    /// negotiated, the message is at least 64 bytes and compressing makes it shorter; other
    /// messages go uncompressed, which RFC 7692 allows per message). Err(State) if a close was
    /// already sent.
    pub fn send(
        &mut self,
        kind: Kind,
        data: &[u8],
        deflater: &mut Deflater,
        out: &mut Vec<u8>,
    ) -> Result<(), State> {
        if self.state != State::Open {
            return Err(self.state);
        }
        let first = FIN | kind.opcode();
        if let Some(params) = self.deflate.filter(|_| data.len() >= COMPRESS_MIN) {
            // Compress after room for the longest header, then close the gap the real one leaves.
            let start = out.len();
            let body = start + frame::MAX_SERVER_HEADER;
            out.resize(body, 0);
            if deflater.compress(params.server_window_bits, data, out).is_ok()
                && out.len() - body < data.len()
            {
                let (header, used) = frame::encode(first | RSV1, out.len() - body, None);
                out[body - used..body].copy_from_slice(&header[..used]);
                out.drain(start..body - used);
                return Ok(());
            }
            out.truncate(start);
        }
        frame::write(out, first, data);
        Ok(())
    }

    /// Appends a ping (payload at most 125 bytes; longer is cut). No-op unless Open.
    pub fn ping(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        if self.state == State::Open {
            frame::write(out, FIN | PING, &payload[..payload.len().min(MAX_CONTROL)]);
        }
    }

    /// Starts the close handshake: appends a close frame with `code` and `reason` (reason cut at
    /// 123 bytes on a char boundary; a code that may not be sent, such as 1005 or 1006, gives an
    /// empty close frame); State -> CloseSent. No-op unless Open.
    pub fn close(&mut self, code: u16, reason: &str, out: &mut Vec<u8>) {
        if self.state != State::Open {
            return;
        }
        let mut payload = [0u8; MAX_CONTROL];
        let mut len = 0;
        if sendable_code(code) {
            let mut end = reason.len().min(MAX_REASON);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            payload[..2].copy_from_slice(&code.to_be_bytes());
            payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
            len = 2 + end;
        }
        frame::write(out, FIN | CLOSE, &payload[..len]);
        self.state = State::CloseSent;
    }

    /// Where the close handshake is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Bytes held by the session now (message buffer capacity + inflater), for memory
    /// accounting in tests.
    pub fn held(&self) -> usize {
        self.message.capacity() + if self.inflater.is_some() { INFLATER_BYTES } else { 0 }
    }
}
