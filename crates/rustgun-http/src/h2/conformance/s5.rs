//! RFC 9113 §5: stream states (§5.1), stream ids (§5.1.1), concurrency (§5.1.2), dependencies
//! (§5.3.1), connection errors (§5.4.1) and extensions (§5.5): h2spec's `http2/5.*`.

use super::*;

/// Stream 1 closed the ordinary way: the client ended its side, we answered to the end.
fn closed_stream_1() -> Outcome {
    let mut out = run(Client::new().get(1));
    out.conn.respond(1, 204, &[], true);
    out.take_output();
    assert_eq!(out.conn.open_streams(), 0);
    out
}

#[test]
fn s5_1_idle_data_is_protocol_error() {
    // h2spec http2/5.1/1.
    assert_eq!(run(Client::new().data(1, b"test", true)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s5_1_idle_rst_stream_is_protocol_error() {
    // h2spec http2/5.1/2.
    assert_eq!(run(Client::new().rst(1, ErrorCode::Cancel as u32)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s5_1_idle_window_update_is_protocol_error() {
    // h2spec http2/5.1/3.
    assert_eq!(run(Client::new().window_update(1, 100)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s5_1_idle_continuation_is_protocol_error() {
    // h2spec http2/5.1/4.
    let mut client = Client::new();
    let block = client.block(&GET);
    assert_eq!(
        run(client.frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block)).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s5_1_half_closed_remote_data_is_stream_closed() {
    // h2spec http2/5.1/5: the request ended with its HEADERS; DATA after it.
    let out = run(Client::new().get(1).data(1, b"test", true));
    assert_eq!(out.rst(1), Some(ErrorCode::StreamClosed));
    assert_eq!(out.events[1], Event::Reset { stream: 1, code: ErrorCode::StreamClosed as u32 });
    // Its 4 bytes counted against the connection's window, and are credited back (§6.9).
    assert_eq!(out.window_updates(), [(0, 4)]);
}

#[test]
fn s5_1_half_closed_remote_headers_is_stream_closed() {
    // h2spec http2/5.1/6.
    assert_eq!(run(Client::new().get(1).get(1)).rst(1), Some(ErrorCode::StreamClosed));
}

#[test]
fn s5_1_half_closed_remote_continuation_is_protocol_error() {
    // h2spec http2/5.1/7 (STREAM_CLOSED or PROTOCOL_ERROR): no header block is open, so the
    // CONTINUATION is §6.10's connection error.
    let mut client = Client::new().get(1);
    let block = client.block(&[("x", "y")]);
    assert_eq!(
        run(client.frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block)).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s5_1_closed_data_after_rst_stream_is_stream_closed() {
    // h2spec http2/5.1/8: the client reset the stream, then sent DATA on it; its bytes still
    // count against the connection's window, and are credited back.
    let out = run(Client::new().post(1).rst(1, ErrorCode::Cancel as u32).data(1, b"test", true));
    assert_eq!(out.rst(1), Some(ErrorCode::StreamClosed));
    assert_eq!(out.window_updates(), [(0, 4)]);
}

#[test]
fn s5_1_closed_headers_after_rst_stream_is_stream_closed() {
    // h2spec http2/5.1/9 (a stream or a connection error).
    let out = run(Client::new().post(1).rst(1, ErrorCode::Cancel as u32).get(1));
    assert_eq!(out.goaway(), Some(ErrorCode::StreamClosed));
}

#[test]
fn s5_1_closed_continuation_after_rst_stream_is_protocol_error() {
    // h2spec http2/5.1/10 (STREAM_CLOSED or PROTOCOL_ERROR).
    let mut client = Client::new().post(1).rst(1, ErrorCode::Cancel as u32);
    let block = client.block(&[("x", "y")]);
    assert_eq!(
        run(client.frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block)).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s5_1_closed_data_is_stream_closed() {
    // h2spec http2/5.1/11.
    let mut out = closed_stream_1();
    out.send(|c| c.data(1, b"test", true));
    assert_eq!(out.rst(1), Some(ErrorCode::StreamClosed));
}

#[test]
fn s5_1_closed_headers_is_stream_closed_connection_error() {
    // h2spec http2/5.1/12.
    let mut out = closed_stream_1();
    out.send(|c| c.get(1));
    assert_eq!(out.goaway(), Some(ErrorCode::StreamClosed));
}

#[test]
fn s5_1_closed_continuation_is_protocol_error() {
    // h2spec http2/5.1/13 (STREAM_CLOSED or PROTOCOL_ERROR).
    let mut out = closed_stream_1();
    out.send(|c| c.frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x82]));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s5_1_trailers_on_a_stream_we_reset_are_ignored() {
    // §5.1 "closed": frames in flight when we sent RST_STREAM are ignored, not a connection
    // error (the app failed and the driver reset the stream; the client's trailers crossed it).
    let mut client = Client::new().post(1).data(1, b"x", false);
    let trailers = client.block(&[("grpc-status", "0")]);
    let mut out = run(client);
    out.conn.reset(1, ErrorCode::Internal);
    out.take_output();
    out.send(|c| {
        c.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &trailers).data(1, b"late", true)
    });
    assert!(out.accepted(), "{:?}", out.kinds());
    // The late DATA still counts against the connection's window, and is credited back.
    assert_eq!(out.window_updates(), [(0, 4)]);
    assert!(out.events.is_empty(), "{:?}", out.events);
}

#[test]
fn s5_1_1_even_stream_id_is_protocol_error() {
    // h2spec http2/5.1.1/1.
    assert_eq!(run(Client::new().get(2)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s5_1_1_stream_id_smaller_than_previous_is_protocol_error() {
    // h2spec http2/5.1.1/2.
    let out = run(Client::new().get(5).get(3));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
    assert_eq!(out.goaway_last_stream(), 5);
}

#[test]
fn s5_1_1_opening_a_stream_closes_the_idle_ones_below_it() {
    // Stream 3 was skipped: it is closed now, and DATA on it is not DATA on an idle stream.
    let out = run(Client::new().get(5).data(3, b"x", true));
    assert_eq!(out.rst(3), Some(ErrorCode::StreamClosed));
}

#[test]
fn s5_1_2_streams_over_max_concurrent_streams_are_refused() {
    // h2spec http2/5.1.2/1 (PROTOCOL_ERROR or REFUSED_STREAM): stream 3 is one too many.
    let config = Config { max_concurrent_streams: 1, ..Config::default() };
    let out = run_with(config, Client::new().post(1).get(3));
    assert_eq!(out.rst(3), Some(ErrorCode::RefusedStream));
    assert_eq!(out.requests(), [1]);
    assert_eq!(out.conn.open_streams(), 1);
}

#[test]
fn s5_1_2_a_closed_stream_frees_its_place() {
    let config = Config { max_concurrent_streams: 1, ..Config::default() };
    let mut out = run_with(config, Client::new().get(1));
    out.conn.respond(1, 204, &[], true);
    out.send(|c| c.get(3));
    assert_eq!(out.requests(), [3]);
}

#[test]
fn s5_3_1_headers_depending_on_itself_is_stream_protocol_error() {
    // h2spec http2/5.3.1/1.
    let mut client = Client::new();
    let mut payload = priority_block(1).to_vec();
    payload.extend(client.block(&GET));
    let both = flag::END_HEADERS | flag::END_STREAM | flag::PRIORITY;
    let out = run(client.frame(kind::HEADERS, both, 1, &payload).get(3));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
    assert_eq!(out.requests(), [3]);
}

#[test]
fn s5_3_1_headers_depending_on_itself_still_decodes_its_block() {
    // The reset stream's block is decoded, CONTINUATION and all: the dynamic table stays in step.
    let mut client = Client::new();
    let fields = [(":method", "GET"), (":scheme", "http"), (":path", "/"), ("x-new", "entry")];
    let block = client.block(&fields);
    let mut first = priority_block(1).to_vec();
    first.extend_from_slice(&block[..2]);
    let client = client
        .frame(kind::HEADERS, flag::END_STREAM | flag::PRIORITY, 1, &first)
        .frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block[2..])
        .headers(3, &fields, true);
    let out = run(client);
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
    let Some(Event::Request { stream: 3, fields: got, .. }) = out.events.first() else {
        panic!("{:?}", out.events)
    };
    assert_eq!(got[3], (b"x-new".to_vec(), b"entry".to_vec()));
}

#[test]
fn s5_3_1_priority_depending_on_itself_is_stream_protocol_error() {
    // h2spec http2/5.3.1/2.
    let out = run(Client::new().priority(1, 1));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
}

#[test]
fn s5_4_1_a_connection_error_sends_goaway_with_the_last_stream() {
    // h2spec http2/5.4.1/1 and /2: an invalid PING; GOAWAY names the last stream we processed.
    let out = run(Client::new().get(1).frame(kind::PING, 0, 0, &[0; 6]));
    assert_eq!(out.goaway(), Some(ErrorCode::FrameSize));
    assert_eq!(out.goaway_last_stream(), 1);
}

#[test]
fn s5_5_unknown_extension_frame_is_ignored() {
    // h2spec http2/5.5/1: an unknown frame (on a stream, too), then PING, which is answered.
    let out =
        run(Client::new().frame(0xff, 0, 0, b"\x00\x00\x00\x00").frame(0xff, 0, 1, b"?").ping(b"h2spec!!"));
    assert_eq!(out.kinds(), [(kind::PING, flag::ACK, 0)]);
}

#[test]
fn s5_5_unknown_extension_frame_inside_a_header_block_is_protocol_error() {
    // h2spec http2/5.5/2.
    let mut client = Client::new();
    let block = client.block(&GET);
    let out =
        run(client.frame(kind::HEADERS, flag::END_STREAM, 1, &block).frame(0xff, 0, 0, b"\x00\x00\x00\x00"));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}
