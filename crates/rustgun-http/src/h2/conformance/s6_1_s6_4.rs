//! RFC 9113 §6.1 DATA, §6.2 HEADERS, §6.3 PRIORITY, §6.4 RST_STREAM: h2spec's `http2/6.1` to
//! `http2/6.4`.

use super::*;

#[test]
fn s6_1_data_is_delivered_as_an_event() {
    let out = run(Client::new().post(1).data(1, b"body", true));
    assert_eq!(out.events[1], Event::Data { stream: 1, data: b"body".to_vec(), end_stream: true });
}

#[test]
fn s6_1_data_on_stream_0_is_protocol_error() {
    // h2spec http2/6.1/1.
    assert_eq!(run(Client::new().data(0, b"test", true)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_1_data_on_a_stream_not_open_is_stream_closed() {
    // h2spec http2/6.1/2: the request ended with its HEADERS.
    let out = run(Client::new().get(1).data(1, b"test", true));
    assert_eq!(out.rst(1), Some(ErrorCode::StreamClosed));
}

#[test]
fn s6_1_data_with_invalid_pad_length_is_protocol_error() {
    // h2spec http2/6.1/3: a pad length as long as the rest of the payload.
    let out = run(Client::new().post(1).frame(kind::DATA, flag::PADDED | flag::END_STREAM, 1, b"\x06test"));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_1_padding_counts_against_the_windows_and_is_credited_at_once() {
    // The whole frame counts (§6.9.1); what is not the app's (the pad length byte and the padding)
    // comes back at once, what is comes back as the app consumes it.
    let mut out = run(Client::new().post(1).frame(kind::DATA, flag::PADDED, 1, &padded(b"abc", 3)));
    assert_eq!(out.events[1], Event::Data { stream: 1, data: b"abc".to_vec(), end_stream: false });
    assert_eq!(out.window_updates(), [(0, 4), (1, 4)]);
    out.conn.consumed(1, 3);
    out.take_output();
    assert_eq!(out.window_updates(), [(0, 3), (1, 3)]);
}

#[test]
fn s6_2_headers_then_priority_inside_the_block_is_protocol_error() {
    // h2spec http2/6.2/1.
    let mut client = Client::new();
    let block = client.block(&GET);
    let out = run(client.frame(kind::HEADERS, flag::END_STREAM, 1, &block).priority(1, 0));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_2_headers_to_another_stream_inside_the_block_is_protocol_error() {
    // h2spec http2/6.2/2.
    let mut client = Client::new();
    let block = client.block(&GET);
    let out = run(client.frame(kind::HEADERS, flag::END_STREAM, 1, &block).get(3));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_2_headers_on_stream_0_is_protocol_error() {
    // h2spec http2/6.2/3.
    assert_eq!(run(Client::new().get(0)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_2_headers_with_invalid_pad_length_is_protocol_error() {
    // h2spec http2/6.2/4: a pad length longer than what is left for the block.
    let mut client = Client::new();
    let block = client.block(&GET);
    let mut payload = vec![block.len() as u8 + 1];
    payload.extend_from_slice(&block);
    let flags = flag::PADDED | flag::END_HEADERS | flag::END_STREAM;
    assert_eq!(run(client.frame(kind::HEADERS, flags, 1, &payload)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_2_headers_with_padding_and_priority_is_a_request() {
    let mut client = Client::new();
    let mut payload = vec![4];
    payload.extend_from_slice(&priority_block(0));
    payload.extend(client.block(&GET));
    payload.extend_from_slice(&[0; 4]);
    let flags = flag::PADDED | flag::PRIORITY | flag::END_HEADERS | flag::END_STREAM;
    let out = run(client.frame(kind::HEADERS, flags, 1, &payload));
    assert!(out.accepted());
    assert_eq!(out.requests(), [1]);
}

#[test]
fn s6_3_priority_on_stream_0_is_protocol_error() {
    // h2spec http2/6.3/1.
    assert_eq!(run(Client::new().priority(0, 1)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_3_priority_of_a_length_other_than_5_is_stream_frame_size_error() {
    // h2spec http2/6.3/2: a stream error, the connection goes on.
    let out = run(Client::new().post(1).frame(kind::PRIORITY, 0, 1, &[0x80, 0, 0, 1]));
    assert_eq!(out.rst(1), Some(ErrorCode::FrameSize));
    assert_eq!(out.events[1], Event::Reset { stream: 1, code: ErrorCode::FrameSize as u32 });
}

#[test]
fn s6_3_priority_is_accepted_on_any_stream_and_changes_nothing() {
    let out = run(Client::new().priority(1, 3).priority(9, 0).post(11).priority(11, 0));
    assert!(out.accepted());
    assert_eq!(out.requests(), [11]);
}

#[test]
fn s6_4_rst_stream_on_stream_0_is_protocol_error() {
    // h2spec http2/6.4/1.
    assert_eq!(run(Client::new().rst(0, ErrorCode::Cancel as u32)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_4_rst_stream_on_an_idle_stream_is_protocol_error() {
    // h2spec http2/6.4/2.
    assert_eq!(run(Client::new().rst(1, ErrorCode::Cancel as u32)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_4_rst_stream_of_a_length_other_than_4_is_frame_size_error() {
    // h2spec http2/6.4/3.
    let out = run(Client::new().post(1).frame(kind::RST_STREAM, 0, 1, &[0, 0, 0, 8, 0]));
    assert_eq!(out.goaway(), Some(ErrorCode::FrameSize));
}

#[test]
fn s6_4_rst_stream_closes_the_stream_and_tells_the_driver() {
    let out = run(Client::new().post(1).rst(1, ErrorCode::Cancel as u32));
    assert_eq!(out.events[1], Event::Reset { stream: 1, code: 8 });
    assert_eq!(out.conn.open_streams(), 0);
    assert!(out.frames.is_empty(), "no answer to a RST_STREAM: {:?}", out.kinds());
}
