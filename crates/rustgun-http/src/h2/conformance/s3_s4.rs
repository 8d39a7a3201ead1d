//! RFC 9113 §3.4 (the connection preface), §4.1 (frame format), §4.2 (frame size) and §4.3 (field
//! blocks): h2spec's `http2/3.5`, `http2/4.1`, `http2/4.2`, `http2/4.3`.

use super::*;
use crate::h2::frame::setting;

#[test]
fn s3_4_client_preface_then_server_settings_first_and_the_clients_acknowledged() {
    // h2spec http2/3.5/1: our SETTINGS is the first frame we send, then the ACK of the client's.
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
        (setting::MAX_FRAME_SIZE, 16_384),
        (setting::MAX_HEADER_LIST_SIZE, 65_536),
        (setting::ENABLE_PUSH, 0),
    ] {
        assert!(pairs.contains(&pair), "{pair:?} in {pairs:?}");
    }
    assert_eq!((written[1].0.kind, written[1].0.flags, written[1].1.len()), (kind::SETTINGS, flag::ACK, 0));
    assert!(events.is_empty());
}

#[test]
fn s3_4_a_partial_preface_waits_for_the_rest() {
    let mut conn = Connection::new(Config::default());
    let mut events = Vec::new();
    assert_eq!(conn.receive(&PREFACE[..10], &mut events), Ok(0));
    assert_eq!(conn.receive(PREFACE, &mut events), Ok(PREFACE.len()));
}

#[test]
fn s3_4_invalid_preface_is_protocol_error_and_closes() {
    // h2spec http2/3.5/2.
    let out = run(Client::bare().raw(b"INVALID CONNECTION PREFACE\r\n\r\n"));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
    let http1 = run(Client::bare().raw(b"GET / HTTP/1.1\r\n\r\n"));
    assert_eq!(http1.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s3_4_first_frame_not_settings_is_protocol_error() {
    let out = run(Client::bare().raw(PREFACE).ping(b"12345678"));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s4_1_frame_of_unknown_type_is_ignored() {
    // h2spec http2/4.1/1: an unknown frame, then PING, which is answered.
    let out = run(Client::new().frame(0x16, 0, 0, b"\x00\x00\x00\x00").ping(b"h2spec!!"));
    assert_eq!(out.kinds(), [(kind::PING, flag::ACK, 0)]);
    assert_eq!(out.frames[0].1, b"h2spec!!");
}

#[test]
fn s4_1_undefined_flags_are_ignored() {
    // h2spec http2/4.1/2: PING with 0x16 set (ACK, 0x1, clear) is still a PING to answer.
    let out = run(Client::new().frame(kind::PING, 0x16, 0, b"h2spec!!"));
    assert_eq!(out.kinds(), [(kind::PING, flag::ACK, 0)]);
    assert_eq!(out.frames[0].1, b"h2spec!!");
}

#[test]
fn s4_1_the_reserved_bit_of_the_stream_id_is_ignored() {
    // h2spec http2/4.1/3: PING on "stream 0" with the reserved bit set is a PING on stream 0.
    let mut client = Client::new();
    frame::write_head(&mut client.bytes, 8, kind::PING, 0, 0x8000_0000);
    client.bytes.extend_from_slice(b"h2spec!!");
    let out = run(client);
    assert_eq!(out.kinds(), [(kind::PING, flag::ACK, 0)]);
    // And a request on a stream id with the bit set is that stream's.
    let mut client = Client::new();
    let block = client.block(&GET);
    frame::write_head(
        &mut client.bytes,
        block.len(),
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1 << 31 | 1,
    );
    client.bytes.extend_from_slice(&block);
    assert_eq!(run(client).requests(), [1]);
}

#[test]
fn s4_2_data_of_2_to_the_14_octets_is_accepted() {
    // h2spec http2/4.2/1.
    let out = run(Client::new().post(1).data(1, &[b'x'; 16_384], true));
    assert!(out.accepted(), "{:?}", out.kinds());
    assert_eq!(out.events[1], Event::Data { stream: 1, data: vec![b'x'; 16_384], end_stream: true });
}

#[test]
fn s4_2_data_over_max_frame_size_is_frame_size_error() {
    // h2spec http2/4.2/2.
    let out = run(Client::new().post(1).data(1, &[0; 16_385], true));
    assert_eq!(out.goaway(), Some(ErrorCode::FrameSize));
}

#[test]
fn s4_2_headers_over_max_frame_size_is_frame_size_connection_error() {
    // h2spec http2/4.2/3: a frame that carries a field block can only be a connection error.
    let mut client = Client::new();
    let mut block = client.block(&GET);
    block.extend(std::iter::repeat_n(0x82, 16_385 - block.len()));
    let out = run(client.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block));
    assert_eq!(out.goaway(), Some(ErrorCode::FrameSize));
}

#[test]
fn s4_2_the_frame_size_limit_is_what_we_announced() {
    let config = Config { max_frame_size: 32_768, ..Config::default() };
    let big = run_with(config, Client::new().post(1).data(1, &[0; 32_768], true));
    assert!(big.accepted());
    let over = run_with(config, Client::new().post(1).data(1, &[0; 32_769], true));
    assert_eq!(over.goaway(), Some(ErrorCode::FrameSize));
}

#[test]
fn s4_3_invalid_header_block_fragment_is_compression_error() {
    // h2spec http2/4.3/1: a literal whose name's length runs past the block.
    let out =
        run(Client::new().frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, b"\x00\x05abc"));
    assert_eq!(out.goaway(), Some(ErrorCode::Compression));
}

#[test]
fn s4_3_priority_inside_a_header_block_is_protocol_error() {
    // h2spec http2/4.3/2.
    let mut client = Client::new();
    let block = client.block(&GET);
    let out = run(client.frame(kind::HEADERS, flag::END_STREAM, 1, &block).priority(1, 0));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s4_3_headers_for_another_stream_inside_a_header_block_is_protocol_error() {
    // h2spec http2/4.3/3.
    let mut client = Client::new();
    let block = client.block(&GET);
    let out = run(client.frame(kind::HEADERS, flag::END_STREAM, 1, &block).get(3));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s4_3_a_block_is_decoded_even_when_its_stream_is_refused() {
    // The dynamic table stays in step: stream 3 (refused) adds an entry that stream 5 uses.
    let config = Config { max_concurrent_streams: 1, ..Config::default() };
    let fields = [(":method", "POST"), (":scheme", "http"), (":path", "/up"), ("x-new", "entry")];
    let mut out = run_with(config, Client::new().post(1).headers(3, &fields, false));
    assert_eq!(out.rst(3), Some(ErrorCode::RefusedStream));
    out.send(|c| c.data(1, b"", true));
    out.conn.respond(1, 204, &[], true);
    out.send(|c| c.headers(5, &fields, true));
    let Some(Event::Request { stream: 5, fields: got, .. }) = out.events.first() else {
        panic!("{:?}", out.events)
    };
    assert_eq!(got[3], (b"x-new".to_vec(), b"entry".to_vec()));
}
