//! RFC 9113 §6.9 WINDOW_UPDATE and flow control (§6.9.1 the window, §6.9.2 the initial window
//! size) and §6.10 CONTINUATION: h2spec's `http2/6.9*` and `http2/6.10`.

use super::*;
use crate::h2::frame::setting;

const MAX: u32 = (1 << 31) - 1;

#[test]
fn s6_9_window_update_of_0_on_the_connection_is_protocol_error() {
    // h2spec http2/6.9/1.
    assert_eq!(run(Client::new().window_update(0, 0)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_9_window_update_of_0_on_a_stream_is_stream_protocol_error() {
    // h2spec http2/6.9/2 (a stream error in RFC 9113; h2spec takes either).
    let out = run(Client::new().post(1).window_update(1, 0));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
}

#[test]
fn s6_9_window_update_of_a_length_other_than_4_is_frame_size_error() {
    // h2spec http2/6.9/3.
    let out = run(Client::new().frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 1, 0]));
    assert_eq!(out.goaway(), Some(ErrorCode::FrameSize));
}

#[test]
fn s6_9_window_update_on_a_closed_stream_is_ignored() {
    let mut out = run(Client::new().get(1));
    out.conn.respond(1, 204, &[], true);
    out.send(|c| c.window_update(1, 100));
    assert!(out.accepted() && out.events.is_empty(), "{:?}", out.events);
}

#[test]
fn s6_9_1_a_response_waits_for_a_window_of_1() {
    // h2spec http2/6.9.1/1: INITIAL_WINDOW_SIZE 1: one byte of DATA, then nothing until the
    // client opens the window again.
    let mut out = run(Client::new().settings(&[(setting::INITIAL_WINDOW_SIZE, 1)]).get(1));
    assert_eq!(out.answer(1, b"hello"), [1]);
    assert_eq!(out.conn.send_capacity(1), 0);
    out.send(|c| c.window_update(1, 4));
    assert_eq!(out.events, [Event::Writable]);
    assert_eq!(out.conn.send_capacity(1), 4);
}

#[test]
fn s6_9_1_connection_window_above_2_31_minus_1_is_flow_control_error() {
    // h2spec http2/6.9.1/2: 65,535 + 2^31-1 - 65,535 is fine; one more is not.
    let fine = run(Client::new().window_update(0, MAX - 65_535));
    assert!(fine.accepted());
    let out = run(Client::new().window_update(0, MAX - 65_535).window_update(0, 1));
    assert_eq!(out.goaway(), Some(ErrorCode::FlowControl));
}

#[test]
fn s6_9_1_stream_window_above_2_31_minus_1_is_stream_flow_control_error() {
    // h2spec http2/6.9.1/3.
    let out = run(Client::new().post(1).window_update(1, MAX - 65_535).window_update(1, 1));
    assert_eq!(out.rst(1), Some(ErrorCode::FlowControl));
    assert_eq!(out.events.last(), Some(&Event::Reset { stream: 1, code: ErrorCode::FlowControl as u32 }));
}

#[test]
fn s6_9_1_data_beyond_the_stream_window_is_flow_control_error() {
    // 5 × 16,000 bytes against the 65,535 we announced (the connection's window goes first).
    let mut over = Client::new().post(1);
    for _ in 0..5 {
        over = over.data(1, &[0; 16_000], false);
    }
    assert_eq!(run(over).goaway(), Some(ErrorCode::FlowControl));
}

#[test]
fn s6_9_1_data_beyond_a_stream_window_only_resets_that_stream() {
    // A stream's window of 1,000 within a connection window of 65,535.
    let config = Config { initial_window_size: 1_000, ..Config::default() };
    let out = run_with(config, Client::new().post(1).data(1, &[0; 1_001], false).post(3));
    assert_eq!(out.rst(1), Some(ErrorCode::FlowControl));
    assert_eq!(out.requests(), [1, 3]);
    // The connection's window does not shrink with the reset stream.
    assert_eq!(out.window_updates(), [(0, 1_001)]);
}

#[test]
fn s6_9_1_a_response_is_held_to_both_windows_and_the_largest_frame() {
    let mut out = run(Client::new().get(1));
    let sent = out.answer(1, &[b'z'; 70_000]);
    assert_eq!(sent.iter().sum::<usize>(), 65_535, "the default windows");
    assert!(sent.iter().all(|n| *n <= 16_384));
    assert!(out.frames.iter().all(|(h, _)| !h.has(flag::END_STREAM)));
    // Only the stream's window opens: still nothing, the connection's is spent.
    out.send(|c| c.window_update(1, 10_000));
    assert_eq!(out.conn.send_capacity(1), 0);
    out.send(|c| c.window_update(0, 10_000));
    assert_eq!(out.events, [Event::Writable]);
    assert_eq!(out.conn.send_data(1, &[b'z'; 70_000 - 65_535], true), 70_000 - 65_535);
    out.take_output();
    assert!(out.frames.last().unwrap().0.has(flag::END_STREAM));
    assert_eq!(out.conn.open_streams(), 0);
}

#[test]
fn s6_9_2_a_new_initial_window_size_applies_to_open_streams() {
    // h2spec http2/6.9.2/1: INITIAL_WINDOW_SIZE 0, the request, then 1: one byte may go.
    let mut out = run(Client::new().settings(&[(setting::INITIAL_WINDOW_SIZE, 0)]).get(1));
    assert_eq!(out.answer(1, b"hello"), Vec::<usize>::new());
    out.send(|c| c.settings(&[(setting::INITIAL_WINDOW_SIZE, 1)]));
    assert_eq!(out.events, [Event::Writable]);
    assert_eq!(out.conn.send_data(1, b"hello", false), 1);
}

#[test]
fn s6_9_2_a_stream_window_may_go_negative_and_is_tracked() {
    // h2spec http2/6.9.2/2: 3 bytes sent against a window of 3; the window becomes 2 (so -1),
    // then a WINDOW_UPDATE of 2 leaves room for exactly 1.
    let mut out = run(Client::new().settings(&[(setting::INITIAL_WINDOW_SIZE, 3)]).get(1));
    assert_eq!(out.answer(1, b"hello"), [3]);
    out.send(|c| c.settings(&[(setting::INITIAL_WINDOW_SIZE, 2)]));
    assert_eq!(out.conn.send_capacity(1), 0);
    out.send(|c| c.window_update(1, 2));
    assert_eq!(out.conn.send_capacity(1), 1);
    assert_eq!(out.conn.send_data(1, b"lo", false), 1);
}

#[test]
fn s6_9_2_initial_window_size_above_the_maximum_is_flow_control_error() {
    // h2spec http2/6.9.2/3.
    let out = run(Client::new().settings(&[(setting::INITIAL_WINDOW_SIZE, MAX + 1)]));
    assert_eq!(out.goaway(), Some(ErrorCode::FlowControl));
}

#[test]
fn s6_9_2_initial_window_size_that_overflows_an_open_stream_is_flow_control_error() {
    // The stream's window was opened by WINDOW_UPDATE; the new initial size pushes it past 2^31-1.
    let client = Client::new().post(1).window_update(1, MAX - 65_535);
    let out = run(client.settings(&[(setting::INITIAL_WINDOW_SIZE, 65_536)]));
    assert_eq!(out.goaway(), Some(ErrorCode::FlowControl));
}

#[test]
fn s6_10_multiple_continuations_make_one_block() {
    // h2spec http2/6.10/1.
    let mut client = Client::new();
    let block = client.block(&GET);
    let out = run(client
        .frame(kind::HEADERS, flag::END_STREAM, 1, &block[..1])
        .frame(kind::CONTINUATION, 0, 1, &block[1..2])
        .frame(kind::CONTINUATION, 0, 1, &block[2..3])
        .frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block[3..]));
    assert!(out.accepted());
    let Some(Event::Request { stream: 1, fields, end_stream: true }) = out.events.first() else {
        panic!("{:?}", out.events)
    };
    assert_eq!(fields.len(), 4);
}

#[test]
fn s6_10_continuation_followed_by_another_frame_is_protocol_error() {
    // h2spec http2/6.10/2.
    let mut client = Client::new();
    let block = client.block(&GET);
    let client = client.frame(kind::HEADERS, flag::END_STREAM, 1, &block[..1]).frame(
        kind::CONTINUATION,
        0,
        1,
        &block[1..],
    );
    assert_eq!(run(client.data(1, b"test", true)).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_10_continuation_on_stream_0_is_protocol_error() {
    // h2spec http2/6.10/3.
    let mut client = Client::new();
    let block = client.block(&GET);
    let client = client.frame(kind::HEADERS, flag::END_STREAM, 1, &block[..1]);
    assert_eq!(
        run(client.frame(kind::CONTINUATION, flag::END_HEADERS, 0, &block[1..])).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s6_10_continuation_after_headers_with_end_headers_is_protocol_error() {
    // h2spec http2/6.10/4.
    let mut client = Client::new().get(1);
    let block = client.block(&[("x", "y")]);
    assert_eq!(
        run(client.frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block)).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s6_10_continuation_after_continuation_with_end_headers_is_protocol_error() {
    // h2spec http2/6.10/5.
    let mut client = Client::new().split_headers(1, &GET, true);
    let block = client.block(&[("x", "y")]);
    assert_eq!(
        run(client.frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block)).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s6_10_continuation_after_data_is_protocol_error() {
    // h2spec http2/6.10/6.
    let mut client = Client::new().post(1).data(1, b"test", true);
    let block = client.block(&[("x", "y")]);
    assert_eq!(
        run(client.frame(kind::CONTINUATION, flag::END_HEADERS, 1, &block)).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s6_10_continuation_for_another_stream_is_protocol_error() {
    let client = Client::new().frame(kind::HEADERS, 0, 1, &[0x82]).frame(
        kind::CONTINUATION,
        flag::END_HEADERS,
        3,
        &[0x84],
    );
    assert_eq!(run(client).goaway(), Some(ErrorCode::Protocol));
}
