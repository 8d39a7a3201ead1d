//! The HTTP/2 connection against RFC 9113, one row per rule: the client's frames in, the exact frame,
//! RST_STREAM code or GOAWAY code out (h2spec's case list was the checklist).

use super::ErrorCode;
use super::conn::{Config, Connection, ConnectionError, Event};
use super::frame::{self, HEAD_LEN, Head, PREFACE, flag, kind, setting};
use super::hpack;

/// A client: what it sends, built frame by frame.
struct Client {
    encoder: hpack::Encoder,
    bytes: Vec<u8>,
}

impl Client {
    /// The preface and an empty SETTINGS.
    fn new() -> Client {
        let mut bytes = PREFACE.to_vec();
        frame::write_settings(&mut bytes, &[]);
        Client { encoder: hpack::Encoder::default(), bytes }
    }

    fn frame(mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Client {
        frame::write(&mut self.bytes, kind, flags, stream, payload);
        self
    }

    fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        self.encoder.encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())), &mut block);
        block
    }

    /// HEADERS (END_HEADERS) with `fields`.
    fn headers(mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Client {
        let block = self.block(fields);
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        self.frame(kind::HEADERS, flags, stream, &block)
    }

    fn get(self, stream: u32) -> Client {
        self.headers(stream, &GET, true)
    }
}

const GET: [(&str, &str); 4] = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "t")];
const POST: [(&str, &str); 4] =
    [(":method", "POST"), (":scheme", "http"), (":path", "/up"), (":authority", "t")];

/// What the server did with the client's bytes: its events, its frames after its own SETTINGS and
/// the ACK of ours, and the connection error if there was one.
struct Outcome {
    events: Vec<Event>,
    frames: Vec<(Head, Vec<u8>)>,
    error: Option<ConnectionError>,
    conn: Connection,
}

fn run(client: Client) -> Outcome {
    run_with(Config::default(), client)
}

fn run_with(config: Config, client: Client) -> Outcome {
    let mut conn = Connection::new(config);
    let mut events = Vec::new();
    let result = conn.receive(&client.bytes, &mut events);
    let error = result.err();
    if let Ok(used) = result {
        assert_eq!(used, client.bytes.len(), "every whole frame is used");
    }
    let frames = frames(conn.output());
    let frames =
        frames.into_iter().skip(1).filter(|(h, _)| !(h.kind == kind::SETTINGS && h.has(flag::ACK))).collect();
    Outcome { events, frames, error, conn }
}

fn frames(out: &mut Vec<u8>) -> Vec<(Head, Vec<u8>)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(head) = Head::parse(&out[at..]) {
        let end = at + HEAD_LEN + head.len as usize;
        found.push((head, out[at + HEAD_LEN..end].to_vec()));
        at = end;
    }
    out.clear();
    found
}

impl Outcome {
    /// The GOAWAY code, which must be the connection error's too.
    fn goaway(&self) -> Option<ErrorCode> {
        let (_, payload) = self.frames.iter().find(|(h, _)| h.kind == kind::GOAWAY)?;
        let code = u32::from_be_bytes(payload[4..8].try_into().unwrap());
        let error = self.error.expect("GOAWAY for a connection error");
        assert_eq!(code, error.code as u32, "{}", error.why);
        Some(error.code)
    }

    fn rst(&self, stream: u32) -> Option<u32> {
        self.frames
            .iter()
            .find(|(h, _)| h.kind == kind::RST_STREAM && h.stream == stream)
            .map(|(_, p)| u32::from_be_bytes(p[..4].try_into().unwrap()))
    }
}

#[test]
fn the_preface_then_settings_are_required() {
    let mut conn = Connection::new(Config::default());
    let mut events = Vec::new();
    // A partial preface waits; a wrong one is a protocol error.
    assert_eq!(conn.receive(&PREFACE[..10], &mut events), Ok(0));
    let bad = Connection::new(Config::default()).receive(b"GET / HTTP/1.1\r\n\r\n", &mut events);
    assert_eq!(bad.unwrap_err().code, ErrorCode::Protocol);
    let mut bytes = PREFACE.to_vec();
    frame::write(&mut bytes, kind::PING, 0, 0, &[0; 8]);
    assert_eq!(
        Connection::new(Config::default()).receive(&bytes, &mut events).unwrap_err().code,
        ErrorCode::Protocol
    );
}

#[test]
fn our_settings_go_first_and_the_clients_are_acknowledged() {
    let mut conn = Connection::new(Config::default());
    let mut events = Vec::new();
    conn.receive(&Client::new().bytes, &mut events).unwrap();
    let written = frames(conn.output());
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!((written[0].0.kind, written[0].0.flags, written[0].0.stream), (kind::SETTINGS, 0, 0));
    let pairs = frame::settings(&written[0].0, &written[0].1).unwrap();
    for pair in [
        (setting::MAX_CONCURRENT_STREAMS, 100),
        (setting::INITIAL_WINDOW_SIZE, 65_535),
        (setting::ENABLE_PUSH, 0),
    ] {
        assert!(pairs.contains(&pair), "{pair:?} in {pairs:?}");
    }
    assert_eq!((written[1].0.kind, written[1].0.flags, written[1].1.len()), (kind::SETTINGS, flag::ACK, 0));
    assert!(events.is_empty());
}

#[test]
fn settings_out_of_range_are_connection_errors() {
    let settings = |pairs: &[(u16, u32)]| {
        let mut payload = Vec::new();
        frame::write_settings(&mut payload, pairs);
        Client::new().frame(kind::SETTINGS, 0, 0, &payload[HEAD_LEN..])
    };
    assert_eq!(run(settings(&[(setting::ENABLE_PUSH, 2)])).goaway(), Some(ErrorCode::Protocol));
    assert_eq!(
        run(settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 31)])).goaway(),
        Some(ErrorCode::FlowControl)
    );
    assert_eq!(run(settings(&[(setting::MAX_FRAME_SIZE, 16_383)])).goaway(), Some(ErrorCode::Protocol));
    assert_eq!(run(Client::new().frame(kind::SETTINGS, 0, 1, &[])).goaway(), Some(ErrorCode::Protocol));
    assert_eq!(run(Client::new().frame(kind::SETTINGS, 0, 0, &[0; 5])).goaway(), Some(ErrorCode::FrameSize));
    assert_eq!(
        run(Client::new().frame(kind::SETTINGS, flag::ACK, 0, &[0; 6])).goaway(),
        Some(ErrorCode::FrameSize)
    );
    // Unknown settings are ignored.
    assert_eq!(run(settings(&[(0x99, 7)])).error, None);
}

#[test]
fn ping_is_answered_with_its_payload_and_an_ack_is_not() {
    let out =
        run(Client::new().frame(kind::PING, 0, 0, b"12345678").frame(kind::PING, flag::ACK, 0, b"abcdefgh"));
    assert_eq!(out.frames.len(), 1);
    assert_eq!((out.frames[0].0.kind, out.frames[0].0.flags), (kind::PING, flag::ACK));
    assert_eq!(out.frames[0].1, b"12345678");
    assert_eq!(run(Client::new().frame(kind::PING, 0, 0, &[0; 9])).goaway(), Some(ErrorCode::FrameSize));
    assert_eq!(run(Client::new().frame(kind::PING, 0, 3, &[0; 8])).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn a_frame_over_the_maximum_size_is_a_frame_size_error() {
    let out = run(Client::new().frame(kind::DATA, 0, 1, &[0; 16_385]));
    assert_eq!(out.goaway(), Some(ErrorCode::FrameSize));
}

#[test]
fn a_request_is_an_event_with_its_fields() {
    let out = run(Client::new().get(1));
    assert_eq!(out.error, None);
    let Event::Request { stream, fields, end_stream } = &out.events[0] else { panic!("{:?}", out.events) };
    assert_eq!((*stream, *end_stream), (1, true));
    assert_eq!(fields[0], (b":method".to_vec(), b"GET".to_vec()));
    assert_eq!(out.conn.open_streams(), 1);
}

#[test]
fn stream_ids_are_odd_and_increasing() {
    assert_eq!(run(Client::new().get(2)).goaway(), Some(ErrorCode::Protocol));
    assert_eq!(run(Client::new().get(5).get(3)).goaway(), Some(ErrorCode::Protocol));
    // Again on a stream that ended: STREAM_CLOSED.
    let mut out = run(Client::new().get(1));
    out.conn.respond(1, 204, &[], true);
    let mut events = Vec::new();
    let again = Client { encoder: hpack::Encoder::default(), bytes: Vec::new() }.get(1);
    assert_eq!(out.conn.receive(&again.bytes, &mut events).unwrap_err().code, ErrorCode::StreamClosed);
}

#[test]
fn a_header_block_admits_only_its_continuations_and_is_bounded() {
    let mut client = Client::new();
    let block = client.block(&GET);
    let (first, rest) = block.split_at(3);
    let joined = client.frame(kind::HEADERS, flag::END_STREAM, 1, first).frame(
        kind::CONTINUATION,
        flag::END_HEADERS,
        1,
        rest,
    );
    let out = run(joined);
    assert!(matches!(out.events[..], [Event::Request { stream: 1, .. }]), "{:?}", out.events);

    let mut client = Client::new();
    let block = client.block(&GET);
    let interleaved = client.frame(kind::HEADERS, 0, 1, &block[..3]).frame(kind::PING, 0, 0, &[0; 8]);
    assert_eq!(run(interleaved).goaway(), Some(ErrorCode::Protocol));
    let other_stream =
        Client::new().frame(kind::HEADERS, 0, 1, &[0x82]).frame(kind::CONTINUATION, 0, 3, &[0x84]);
    assert_eq!(run(other_stream).goaway(), Some(ErrorCode::Protocol));
    assert_eq!(
        run(Client::new().frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[])).goaway(),
        Some(ErrorCode::Protocol)
    );

    // CVE-2024-27316: endless CONTINUATION frames are cut off.
    let mut flood = Client::new().frame(kind::HEADERS, 0, 1, &[0x82]);
    for _ in 0..100 {
        flood = flood.frame(kind::CONTINUATION, 0, 1, &[0x40, 0x01, b'a', 0x01, b'b']);
    }
    assert_eq!(run(flood).goaway(), Some(ErrorCode::EnhanceYourCalm));
}

#[test]
fn a_malformed_request_resets_its_stream_only() {
    for fields in [
        &[(":method", "GET"), (":scheme", "http"), (":authority", "t")][..],
        &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":path", "/")],
        &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("Upper", "x")],
        &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("connection", "close")],
        &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("te", "gzip")],
        &[(":method", "GET"), ("x", "1"), (":scheme", "http"), (":path", "/")],
        &[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":status", "200")],
    ] {
        let out = run(Client::new().headers(1, fields, true).get(3));
        assert_eq!(out.rst(1), Some(ErrorCode::Protocol as u32), "{fields:?}");
        assert!(matches!(out.events[..], [Event::Request { stream: 3, .. }]), "{fields:?}: {:?}", out.events);
    }
    let te = [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("te", "trailers")];
    assert_eq!(run(Client::new().headers(1, &te, true)).rst(1), None);
}

#[test]
fn streams_past_the_concurrency_limit_are_refused() {
    let config = Config { max_concurrent_streams: 1, ..Config::default() };
    let out = run_with(config, Client::new().headers(1, &POST, false).get(3));
    assert_eq!(out.rst(3), Some(ErrorCode::RefusedStream as u32));
    assert_eq!(out.events.len(), 1);
}

#[test]
fn data_follows_the_stream_states_and_the_windows() {
    let out = run(Client::new().headers(1, &POST, false).frame(kind::DATA, flag::END_STREAM, 1, b"body"));
    assert_eq!(out.events[1], Event::Data { stream: 1, data: b"body".to_vec(), end_stream: true });
    assert_eq!(run(Client::new().frame(kind::DATA, 0, 1, b"x")).goaway(), Some(ErrorCode::Protocol));
    assert_eq!(run(Client::new().frame(kind::DATA, 0, 0, b"x")).goaway(), Some(ErrorCode::Protocol));
    let after_end = run(Client::new().get(1).frame(kind::DATA, 0, 1, b"x"));
    assert_eq!(after_end.rst(1), Some(ErrorCode::StreamClosed as u32));
    // More than the 65,535 bytes the stream's window allows.
    let mut over = Client::new().headers(1, &POST, false);
    for _ in 0..5 {
        over = over.frame(kind::DATA, 0, 1, &[0; 16_000]);
    }
    assert_eq!(run(over).goaway(), Some(ErrorCode::FlowControl));
}

#[test]
fn what_the_app_consumes_is_credited_back_and_padding_at_once() {
    let mut padded = vec![3u8];
    padded.extend_from_slice(b"abc");
    padded.extend_from_slice(&[0; 3]);
    let mut out = run(Client::new().headers(1, &POST, false).frame(kind::DATA, flag::PADDED, 1, &padded));
    let credits: Vec<(u32, u32)> = out
        .frames
        .iter()
        .filter(|(h, _)| h.kind == kind::WINDOW_UPDATE)
        .map(|(h, p)| (h.stream, frame::window_update(p).unwrap()))
        .collect();
    assert_eq!(credits, [(0, 4), (1, 4)], "the pad length byte and the padding");
    out.conn.consumed(1, 3);
    let updates: Vec<(u32, u32)> =
        frames(out.conn.output()).iter().map(|(h, p)| (h.stream, frame::window_update(p).unwrap())).collect();
    assert_eq!(updates, [(0, 3), (1, 3)]);
}

#[test]
fn window_updates_of_zero_or_past_the_maximum_are_refused() {
    assert_eq!(
        run(Client::new().frame(kind::WINDOW_UPDATE, 0, 0, &0u32.to_be_bytes())).goaway(),
        Some(ErrorCode::Protocol)
    );
    let max = (1u32 << 31) - 1;
    assert_eq!(
        run(Client::new().frame(kind::WINDOW_UPDATE, 0, 0, &max.to_be_bytes())).goaway(),
        Some(ErrorCode::FlowControl)
    );
    let zero =
        run(Client::new().headers(1, &POST, false).frame(kind::WINDOW_UPDATE, 0, 1, &0u32.to_be_bytes()));
    assert_eq!(zero.rst(1), Some(ErrorCode::Protocol as u32));
    let past =
        run(Client::new().headers(1, &POST, false).frame(kind::WINDOW_UPDATE, 0, 1, &max.to_be_bytes()));
    assert_eq!(past.rst(1), Some(ErrorCode::FlowControl as u32));
    assert_eq!(
        run(Client::new().frame(kind::WINDOW_UPDATE, 0, 9, &1u32.to_be_bytes())).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn resets_and_pushes_and_priorities() {
    assert_eq!(run(Client::new().frame(kind::RST_STREAM, 0, 1, &[0; 4])).goaway(), Some(ErrorCode::Protocol));
    let reset =
        run(Client::new().headers(1, &POST, false).frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    assert_eq!(reset.events[1], Event::Reset { stream: 1, code: 8 });
    assert_eq!(reset.conn.open_streams(), 0);
    assert_eq!(
        run(Client::new().frame(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &[0; 4])).goaway(),
        Some(ErrorCode::Protocol)
    );
    assert_eq!(
        run(Client::new().frame(kind::PRIORITY, 0, 1, &[0; 4])).rst(1),
        Some(ErrorCode::FrameSize as u32)
    );
    assert_eq!(run(Client::new().frame(kind::PRIORITY, 0, 1, &[0, 0, 0, 3, 16])).error, None);
    // An unknown frame type is ignored.
    assert_eq!(run(Client::new().frame(0x42, 0, 0, b"?")).error, None);
}

#[test]
fn trailers_end_the_body_and_must_end_the_stream() {
    let mut client = Client::new().headers(1, &POST, false).frame(kind::DATA, 0, 1, b"x");
    let trailer = client.block(&[("grpc-status", "0")]);
    let out = run(client.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &trailer));
    assert!(matches!(&out.events[2], Event::Trailers { stream: 1, fields } if fields[0].0 == b"grpc-status"));
    let mut client = Client::new().headers(1, &POST, false);
    let trailer = client.block(&[("grpc-status", "0")]);
    assert_eq!(
        run(client.frame(kind::HEADERS, flag::END_HEADERS, 1, &trailer)).rst(1),
        Some(ErrorCode::Protocol as u32)
    );
}

#[test]
fn a_response_is_held_to_the_clients_windows() {
    let mut out = run(Client::new().get(1));
    out.conn.respond(1, 200, &[(b"content-type", b"text/plain")], false);
    let body = vec![b'z'; 70_000];
    let sent = out.conn.send_data(1, &body, true);
    assert_eq!(sent, 65_535, "the default windows");
    let written = frames(out.conn.output());
    assert_eq!(written[0].0.kind, kind::HEADERS);
    assert!(
        written[1..]
            .iter()
            .all(|(h, p)| h.kind == kind::DATA && p.len() <= 16_384 && !h.has(flag::END_STREAM))
    );
    // The client opens both windows: the rest goes, and ends the stream.
    let mut events = Vec::new();
    let mut more = Vec::new();
    frame::write_window_update(&mut more, 0, 10_000);
    frame::write_window_update(&mut more, 1, 10_000);
    out.conn.receive(&more, &mut events).unwrap();
    assert_eq!(events, [Event::Writable, Event::Writable]);
    assert_eq!(out.conn.send_data(1, &body[sent..], true), 70_000 - 65_535);
    let last = frames(out.conn.output()).pop().unwrap();
    assert!(last.0.has(flag::END_STREAM));
    assert_eq!(out.conn.open_streams(), 0);
}

#[test]
fn goaway_lets_started_streams_finish_and_starts_no_new_one() {
    let mut out = run(Client::new().headers(1, &POST, false));
    out.conn.go_away();
    let goaway = frames(out.conn.output()).pop().unwrap();
    assert_eq!((goaway.0.kind, &goaway.1[..4]), (kind::GOAWAY, &1u32.to_be_bytes()[..]));
    let mut events = Vec::new();
    let mut later = Client { encoder: hpack::Encoder::default(), bytes: Vec::new() }.get(3);
    frame::write(&mut later.bytes, kind::DATA, flag::END_STREAM, 1, b"end");
    out.conn.receive(&later.bytes, &mut events).unwrap();
    assert_eq!(events, [Event::Data { stream: 1, data: b"end".to_vec(), end_stream: true }]);
    assert!(!out.conn.is_done());
    out.conn.respond(1, 200, &[], true);
    assert!(out.conn.is_done());
}

#[test]
fn an_hpack_bomb_resets_the_stream_and_the_connection_goes_on() {
    // One 1000-byte entry, then 100 references to it: a 100 KB list from a 1 KB block.
    // (Static-table fields only, so no encoder's table needs to follow.)
    let mut bomb = vec![0x82, 0x86, 0x84, 0x40, 0x01, b'x', 0x7f, 0xe9, 0x06];
    bomb.extend(std::iter::repeat_n(b'v', 1000));
    bomb.extend(std::iter::repeat_n(0xbe, 100));
    let both = flag::END_HEADERS | flag::END_STREAM;
    let client =
        Client::new().frame(kind::HEADERS, both, 1, &bomb).frame(kind::HEADERS, both, 3, &[0x82, 0x86, 0x84]);
    let out = run(client);
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol as u32));
    assert!(matches!(out.events[..], [Event::Request { stream: 3, .. }]), "{:?}", out.events);
}

#[test]
fn rapid_reset_is_cut_off_and_answered_streams_earn_their_cancellations() {
    // CVE-2023-44487: open a stream, reset it, again and again.
    let mut flood = Client::new();
    for i in 0..300u32 {
        flood =
            flood.headers(2 * i + 1, &POST, false).frame(kind::RST_STREAM, 0, 2 * i + 1, &8u32.to_be_bytes());
    }
    let out = run(flood);
    assert_eq!(out.goaway(), Some(ErrorCode::EnhanceYourCalm));
    let resets = out.events.iter().filter(|e| matches!(e, Event::Reset { .. })).count();
    assert_eq!(resets, 101, "the allowance, then the cut");

    // A client whose streams are answered may cancel as many as it was answered, and more.
    let mut conn = Connection::new(Config { max_concurrent_streams: 1000, ..Config::default() });
    let mut events = Vec::new();
    let mut client = Client::new();
    for i in 0..200u32 {
        client = client.get(2 * i + 1);
    }
    conn.receive(&client.bytes, &mut events).unwrap();
    for i in 0..200u32 {
        conn.respond(2 * i + 1, 204, &[], true);
    }
    let mut cancels = Client { encoder: client.encoder, bytes: Vec::new() };
    for i in 200..450u32 {
        cancels = cancels.headers(2 * i + 1, &POST, false).frame(
            kind::RST_STREAM,
            0,
            2 * i + 1,
            &8u32.to_be_bytes(),
        );
    }
    assert_eq!(conn.receive(&cancels.bytes, &mut events).map(|_| ()), Ok(()), "250 < 100 + 200");
}

#[test]
fn a_ping_flood_that_never_reads_its_answers_is_cut_off_with_the_output_bounded() {
    let mut flood = Client::new();
    for i in 0..20_000u64 {
        flood = flood.frame(kind::PING, 0, 0, &i.to_be_bytes());
    }
    let mut conn = Connection::new(Config::default());
    let mut events = Vec::new();
    let err = conn.receive(&flood.bytes, &mut events).unwrap_err();
    assert_eq!(err.code, ErrorCode::EnhanceYourCalm);
    assert!(conn.output().len() <= super::conn::MAX_UNSENT + 64, "{}", conn.output().len());
    // A client that reads its answers may ping as often as it likes.
    let mut reader = Connection::new(Config::default());
    let mut pings = Client::new();
    for i in 0..20_000u64 {
        pings = pings.frame(kind::PING, 0, 0, &i.to_be_bytes());
    }
    let mut pending = Vec::new();
    for chunk in pings.bytes.chunks(17 * 1000) {
        pending.extend_from_slice(chunk);
        let used = reader.receive(&pending, &mut events).unwrap();
        pending.drain(..used);
        reader.output().clear();
    }
    assert!(pending.is_empty());
}

#[test]
fn a_new_initial_window_applies_to_open_streams_and_may_go_negative() {
    let mut out = run(Client::new().get(1));
    out.conn.respond(1, 200, &[], false);
    assert_eq!(out.conn.send_data(1, &[b'z'; 70_000], false), 65_535);
    frames(out.conn.output());
    let mut events = Vec::new();
    // Smaller: the stream's window goes below zero, and nothing more may be sent.
    let mut settings = Vec::new();
    frame::write_settings(&mut settings, &[(setting::INITIAL_WINDOW_SIZE, 1_000)]);
    frame::write_window_update(&mut settings, 0, 100_000);
    out.conn.receive(&settings, &mut events).unwrap();
    assert_eq!(out.conn.send_capacity(1), 0);
    // Larger again: the stream may send the difference, and is told so.
    events.clear();
    let mut settings = Vec::new();
    frame::write_settings(&mut settings, &[(setting::INITIAL_WINDOW_SIZE, 70_000)]);
    out.conn.receive(&settings, &mut events).unwrap();
    assert_eq!(events, [Event::Writable]);
    assert_eq!(out.conn.send_capacity(1), 70_000 - 65_535);
}

#[test]
fn headers_on_a_half_closed_stream_or_depending_on_themselves_reset_it() {
    // The client ended stream 1; more HEADERS on it (not trailers of an open stream) is STREAM_CLOSED.
    let again = run(Client::new().get(1).get(1));
    assert_eq!(again.rst(1), Some(ErrorCode::StreamClosed as u32));
    // A stream that depends on itself (RFC 9113 §5.3.1).
    let mut client = Client::new();
    let mut payload = 1u32.to_be_bytes().to_vec();
    payload.push(16);
    payload.extend(client.block(&GET));
    let out =
        run(client.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM | flag::PRIORITY, 1, &payload));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol as u32));
    // Trailers carrying a pseudo-header.
    let mut client = Client::new().headers(1, &POST, false);
    let trailer = client.block(&[(":path", "/x")]);
    let out = run(client.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &trailer));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol as u32));
}

#[test]
fn a_body_must_be_as_long_as_its_content_length_says() {
    fn with_length(n: &str) -> [(&str, &str); 4] {
        [(":method", "POST"), (":scheme", "http"), (":path", "/"), ("content-length", n)]
    }
    let exact = run(Client::new().headers(1, &with_length("4"), false).frame(
        kind::DATA,
        flag::END_STREAM,
        1,
        b"body",
    ));
    assert_eq!(exact.rst(1), None);
    let short = run(Client::new().headers(1, &with_length("5"), false).frame(
        kind::DATA,
        flag::END_STREAM,
        1,
        b"body",
    ));
    assert_eq!(short.rst(1), Some(ErrorCode::Protocol as u32));
    let long = run(Client::new().headers(1, &with_length("3"), false).frame(kind::DATA, 0, 1, b"body"));
    assert_eq!(long.rst(1), Some(ErrorCode::Protocol as u32));
    // A length on a request that has no body to come, or one that is no number.
    assert_eq!(
        run(Client::new().headers(1, &with_length("4"), true)).rst(1),
        Some(ErrorCode::Protocol as u32)
    );
    assert_eq!(
        run(Client::new().headers(1, &with_length("4x"), false)).rst(1),
        Some(ErrorCode::Protocol as u32)
    );
    // PRIORITY on stream 0 is the connection's error.
    assert_eq!(
        run(Client::new().frame(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 16])).goaway(),
        Some(ErrorCode::Protocol)
    );
}
