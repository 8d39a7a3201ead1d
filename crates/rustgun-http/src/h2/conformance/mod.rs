//! The HTTP/2 connection ([`super::conn::Connection`]) against RFC 9113 and RFC 7541, as a table:
//! one row per MUST a server can be checked for, each a short story — the client's frames in, the
//! exact frame (RST_STREAM or GOAWAY with its code, an ACK, a WINDOW_UPDATE) or event out. h2spec's
//! case list is the checklist, and each row is named after its RFC section and h2spec case
//! (`docs/http2-conformance.md` is the same table in prose, with the cases that do not apply).
//!
//! One file per group of sections: [`s3_s4`] (the preface, frame format and size, header blocks),
//! [`s5`] (stream states, ids, concurrency, dependencies, errors, extensions), [`s6_1_s6_4`] (DATA,
//! HEADERS, PRIORITY, RST_STREAM), [`s6_5_s6_8`] (SETTINGS, PUSH_PROMISE, PING, GOAWAY),
//! [`s6_9_s6_10`] (flow control, CONTINUATION), [`s7_s8`] (error codes, the request's own rules),
//! [`hpack`] (RFC 7541), [`generic`] (h2spec's `generic` group: what must simply be accepted) and
//! [`s10_5`] (denial of service: the bounds beyond the RFC's MUSTs). Here: the client that builds
//! the frames, and what the server did with them.

mod generic;
mod hpack;
mod s10_5;
mod s3_s4;
mod s5;
mod s6_1_s6_4;
mod s6_5_s6_8;
mod s6_9_s6_10;
mod s7_s8;

use super::ErrorCode;
use super::conn::{Config, Connection, ConnectionError, Event};
use super::frame::{self, HEAD_LEN, Head, PREFACE, flag, kind};
use super::hpack as codec;

/// A client: what it sends, built frame by frame, with its own HPACK encoder (a plain one, not the
/// server's: a client may send what the server's encoder never would, uppercase names among it).
struct Client {
    encoder: loona_hpack::Encoder<'static>,
    bytes: Vec<u8>,
}

impl Client {
    /// The preface and an empty SETTINGS.
    fn new() -> Client {
        Client::bare().raw(PREFACE).settings(&[])
    }

    /// Nothing sent yet, not even the preface.
    fn bare() -> Client {
        Client { encoder: loona_hpack::Encoder::new(), bytes: Vec::new() }
    }

    fn raw(mut self, bytes: &[u8]) -> Client {
        self.bytes.extend_from_slice(bytes);
        self
    }

    fn frame(mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Client {
        frame::write(&mut self.bytes, kind, flags, stream, payload);
        self
    }

    fn settings(mut self, pairs: &[(u16, u32)]) -> Client {
        frame::write_settings(&mut self.bytes, pairs);
        self
    }

    fn ping(self, data: &[u8; 8]) -> Client {
        self.frame(kind::PING, 0, 0, data)
    }

    fn rst(self, stream: u32, code: u32) -> Client {
        self.frame(kind::RST_STREAM, 0, stream, &code.to_be_bytes())
    }

    fn window_update(self, stream: u32, increment: u32) -> Client {
        self.frame(kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
    }

    fn data(self, stream: u32, data: &[u8], end_stream: bool) -> Client {
        self.frame(kind::DATA, if end_stream { flag::END_STREAM } else { 0 }, stream, data)
    }

    /// PRIORITY: `stream` depends on `depends`.
    fn priority(self, stream: u32, depends: u32) -> Client {
        self.frame(kind::PRIORITY, 0, stream, &priority_block(depends))
    }

    /// The header block `fields` make, with this client's encoder.
    fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        // Writing into a Vec cannot fail.
        let _ =
            self.encoder.encode_into(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())), &mut block);
        block
    }

    /// HEADERS (END_HEADERS) with `fields`.
    fn headers(mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Client {
        let block = self.block(fields);
        self.frame(kind::HEADERS, flag::END_HEADERS | end(end_stream), stream, &block)
    }

    /// HEADERS with `fields` split in two: HEADERS without END_HEADERS, then CONTINUATION with it.
    fn split_headers(mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Client {
        let block = self.block(fields);
        let (first, rest) = block.split_at(block.len() / 2);
        self.frame(kind::HEADERS, end(end_stream), stream, first).frame(
            kind::CONTINUATION,
            flag::END_HEADERS,
            stream,
            rest,
        )
    }

    fn get(self, stream: u32) -> Client {
        self.headers(stream, &GET, true)
    }

    /// A request whose body is still to come.
    fn post(self, stream: u32) -> Client {
        self.headers(stream, &POST, false)
    }
}

fn end(end_stream: bool) -> u8 {
    if end_stream { flag::END_STREAM } else { 0 }
}

/// A priority block (PRIORITY's payload, HEADERS' with PRIORITY): the dependency, weight 16.
fn priority_block(depends: u32) -> [u8; 5] {
    let d = depends.to_be_bytes();
    [d[0], d[1], d[2], d[3], 15]
}

/// A padded payload: the pad length byte, `body`, then `pad` zeros.
fn padded(body: &[u8], pad: u8) -> Vec<u8> {
    let mut payload = vec![pad];
    payload.extend_from_slice(body);
    payload.extend(std::iter::repeat_n(0, pad as usize));
    payload
}

const GET: [(&str, &str); 4] = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "t")];
const POST: [(&str, &str); 4] =
    [(":method", "POST"), (":scheme", "http"), (":path", "/up"), (":authority", "t")];

/// What the server did with the client's last bytes: its events, its frames (after its own
/// SETTINGS, and without the ACKs of the client's SETTINGS), and the connection error if there was
/// one. [`Outcome::send`] goes on with the same connection and client.
struct Outcome {
    events: Vec<Event>,
    frames: Vec<(Head, Vec<u8>)>,
    error: Option<ConnectionError>,
    conn: Connection,
    encoder: loona_hpack::Encoder<'static>,
    /// The SETTINGS ACKs the server wrote, which `frames` leaves out.
    settings_acks: usize,
}

fn run(client: Client) -> Outcome {
    run_with(Config::default(), client)
}

fn run_with(config: Config, client: Client) -> Outcome {
    let mut out = Outcome {
        events: Vec::new(),
        frames: Vec::new(),
        error: None,
        conn: Connection::new(config),
        encoder: client.encoder,
        settings_acks: 0,
    };
    let ours = frames(out.conn.output());
    assert_eq!(ours.first().map(|(h, _)| (h.kind, h.flags, h.stream)), Some((kind::SETTINGS, 0, 0)));
    out.receive(&client.bytes);
    out
}

/// The frames in `out`, which is drained.
fn frames(out: &mut Vec<u8>) -> Vec<(Head, Vec<u8>)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(head) = Head::parse(&out[at..]) {
        let end = at + HEAD_LEN + head.len as usize;
        found.push((head, out[at + HEAD_LEN..end].to_vec()));
        at = end;
    }
    assert_eq!(at, out.len(), "the output is whole frames");
    out.clear();
    found
}

impl Outcome {
    fn receive(&mut self, bytes: &[u8]) {
        self.events.clear();
        let result = self.conn.receive(bytes, &mut self.events);
        self.error = result.err();
        if let Ok(used) = result {
            assert_eq!(used, bytes.len(), "every whole frame is used");
        }
        self.take_output();
    }

    /// What the server wrote since, in `frames`.
    fn take_output(&mut self) {
        let (acks, rest) = frames(self.conn.output())
            .into_iter()
            .partition::<Vec<_>, _>(|(h, _)| h.kind == kind::SETTINGS && h.has(flag::ACK));
        self.settings_acks = acks.len();
        self.frames = rest;
    }

    /// More from the same client on the same connection.
    fn send(&mut self, build: impl FnOnce(Client) -> Client) {
        let encoder = std::mem::take(&mut self.encoder);
        let client = build(Client { encoder, bytes: Vec::new() });
        self.encoder = client.encoder;
        self.receive(&client.bytes);
    }

    /// The GOAWAY's code, which must be the connection error's too, and GOAWAY the last frame.
    fn goaway(&self) -> Option<ErrorCode> {
        let (head, payload) = self.frames.last().filter(|(h, _)| h.kind == kind::GOAWAY)?;
        assert_eq!(head.stream, 0);
        let code = u32::from_be_bytes(payload[4..8].try_into().unwrap());
        let error = self.error.expect("GOAWAY for a connection error");
        assert_eq!(code, error.code as u32, "{}", error.why);
        Some(error.code)
    }

    /// The GOAWAY's last stream id.
    fn goaway_last_stream(&self) -> u32 {
        let (_, payload) = self.frames.iter().find(|(h, _)| h.kind == kind::GOAWAY).expect("a GOAWAY");
        u32::from_be_bytes(payload[..4].try_into().unwrap())
    }

    /// The code of the RST_STREAM on `stream`; the connection must have gone on.
    fn rst(&self, stream: u32) -> Option<ErrorCode> {
        assert_eq!(self.error, None, "a stream error only");
        let (_, payload) =
            self.frames.iter().find(|(h, _)| h.kind == kind::RST_STREAM && h.stream == stream)?;
        let code = u32::from_be_bytes(payload[..4].try_into().unwrap());
        Some(ALL_CODES.into_iter().find(|c| *c as u32 == code).expect("a known code"))
    }

    /// Neither a connection error nor a reset: the frames were accepted.
    fn accepted(&self) -> bool {
        self.error.is_none()
            && !self.frames.iter().any(|(h, _)| matches!(h.kind, kind::RST_STREAM | kind::GOAWAY))
    }

    /// The (kind, flags, stream) of every frame written.
    fn kinds(&self) -> Vec<(u8, u8, u32)> {
        self.frames.iter().map(|(h, _)| (h.kind, h.flags, h.stream)).collect()
    }

    /// The (stream, increment) of every WINDOW_UPDATE written.
    fn window_updates(&self) -> Vec<(u32, u32)> {
        self.frames
            .iter()
            .filter(|(h, _)| h.kind == kind::WINDOW_UPDATE)
            .map(|(h, p)| (h.stream, frame::window_update(p).unwrap()))
            .collect()
    }

    /// The requests' streams, in order.
    fn requests(&self) -> Vec<u32> {
        self.events
            .iter()
            .filter_map(|e| if let Event::Request { stream, .. } = e { Some(*stream) } else { None })
            .collect()
    }

    /// Answers `stream` with a 200 head and tries to send `body`: the lengths of the DATA frames
    /// that went out (flow control permitting), the head excluded.
    fn answer(&mut self, stream: u32, body: &[u8]) -> Vec<usize> {
        self.conn.respond(stream, 200, &[], false);
        self.conn.send_data(stream, body, false);
        self.take_output();
        assert_eq!(self.frames.first().map(|(h, _)| (h.kind, h.stream)), Some((kind::HEADERS, stream)));
        self.frames.iter().filter(|(h, _)| h.kind == kind::DATA).map(|(_, p)| p.len()).collect()
    }
}

const ALL_CODES: [ErrorCode; 14] = [
    ErrorCode::NoError,
    ErrorCode::Protocol,
    ErrorCode::Internal,
    ErrorCode::FlowControl,
    ErrorCode::SettingsTimeout,
    ErrorCode::StreamClosed,
    ErrorCode::FrameSize,
    ErrorCode::RefusedStream,
    ErrorCode::Cancel,
    ErrorCode::Compression,
    ErrorCode::Connect,
    ErrorCode::EnhanceYourCalm,
    ErrorCode::InadequateSecurity,
    ErrorCode::Http11Required,
];
