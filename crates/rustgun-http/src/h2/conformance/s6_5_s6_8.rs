//! RFC 9113 §6.5 SETTINGS (§6.5.2 the parameters, §6.5.3 synchronization), §6.6 PUSH_PROMISE,
//! §6.7 PING, §6.8 GOAWAY: h2spec's `http2/6.5*`, `http2/6.7`, `http2/6.8` and `http2/8.2`.

use super::*;
use crate::h2::frame::setting;

#[test]
fn s6_5_settings_ack_with_payload_is_frame_size_error() {
    // h2spec http2/6.5/1.
    let out = run(Client::new().frame(kind::SETTINGS, flag::ACK, 0, &[0, 3, 0, 0, 0, 100]));
    assert_eq!(out.goaway(), Some(ErrorCode::FrameSize));
}

#[test]
fn s6_5_settings_on_a_stream_is_protocol_error() {
    // h2spec http2/6.5/2.
    assert_eq!(
        run(Client::new().frame(kind::SETTINGS, 0, 1, &[0, 3, 0, 0, 0, 100])).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s6_5_settings_not_a_multiple_of_6_octets_is_frame_size_error() {
    // h2spec http2/6.5/3.
    assert_eq!(
        run(Client::new().frame(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 0])).goaway(),
        Some(ErrorCode::FrameSize)
    );
}

#[test]
fn s6_5_settings_ack_is_not_acknowledged() {
    let out = run(Client::new().frame(kind::SETTINGS, flag::ACK, 0, &[]));
    assert!(out.frames.is_empty() && out.settings_acks == 1, "only the ACK of the client's first SETTINGS");
}

#[test]
fn s6_5_2_enable_push_other_than_0_or_1_is_protocol_error() {
    // h2spec http2/6.5.2/1.
    assert_eq!(run(Client::new().settings(&[(setting::ENABLE_PUSH, 2)])).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_5_2_initial_window_size_above_2_31_minus_1_is_flow_control_error() {
    // h2spec http2/6.5.2/2.
    let out = run(Client::new().settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 31)]));
    assert_eq!(out.goaway(), Some(ErrorCode::FlowControl));
}

#[test]
fn s6_5_2_max_frame_size_below_the_initial_value_is_protocol_error() {
    // h2spec http2/6.5.2/3.
    assert_eq!(
        run(Client::new().settings(&[(setting::MAX_FRAME_SIZE, 16_383)])).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s6_5_2_max_frame_size_above_2_24_minus_1_is_protocol_error() {
    // h2spec http2/6.5.2/4.
    assert_eq!(
        run(Client::new().settings(&[(setting::MAX_FRAME_SIZE, 1 << 24)])).goaway(),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s6_5_2_unknown_setting_is_ignored() {
    // h2spec http2/6.5.2/5: ignored, and the SETTINGS acknowledged.
    let out = run(Client::new().settings(&[(0xff, 1)]));
    assert!(out.accepted() && out.frames.is_empty());
    assert_eq!(out.settings_acks, 2);
}

#[test]
fn s6_5_2_the_clients_max_frame_size_bounds_our_frames() {
    let mut out = run(Client::new().settings(&[(setting::MAX_FRAME_SIZE, 20_000)]).get(1));
    assert_eq!(out.answer(1, &[b'z'; 50_000]), [20_000, 20_000, 10_000]);
}

#[test]
fn s6_5_2_header_table_size_shrinks_our_encoder_with_a_size_update() {
    // RFC 7541 §4.2: a client that allows us no dynamic table gets a size update of 0 first, and
    // then no field that needs one; each response head decodes with a 0-byte table.
    let mut out = run(Client::new().settings(&[(setting::HEADER_TABLE_SIZE, 0)]).get(1).get(3));
    let mut decoder = codec::Decoder::new(0, 65_536);
    for stream in [1, 3] {
        out.conn.respond(stream, 200, &[(b"x-custom", b"value")], true);
        out.take_output();
        let block = &out.frames[0].1;
        assert_eq!(
            block[0] & 0xe0 == 0x20,
            stream == 1,
            "a size update on the first block only: {block:02x?}"
        );
        let mut fields = Vec::new();
        decoder.decode(block, &mut fields).unwrap();
        assert_eq!(fields[1], (b"x-custom".to_vec(), b"value".to_vec()));
    }
}

#[test]
fn s6_5_3_initial_window_size_values_apply_in_order() {
    // h2spec http2/6.5.3/1: 100 then 1 in one SETTINGS: the stream may send 1 byte.
    let client =
        Client::new().settings(&[(setting::INITIAL_WINDOW_SIZE, 100), (setting::INITIAL_WINDOW_SIZE, 1)]);
    let mut out = run(client.get(1));
    assert_eq!(out.answer(1, b"hello"), [1]);
}

#[test]
fn s6_5_3_settings_is_acknowledged_at_once() {
    // h2spec http2/6.5.3/2: the ACK is empty, on stream 0, and follows at once.
    let mut conn = Connection::new(Config::default());
    frames(conn.output());
    let mut events = Vec::new();
    conn.receive(&Client::new().settings(&[(setting::MAX_CONCURRENT_STREAMS, 10)]).bytes, &mut events)
        .unwrap();
    let acks: Vec<_> =
        frames(conn.output()).iter().map(|(h, p)| (h.kind, h.flags, h.stream, p.len())).collect();
    assert_eq!(acks, [(kind::SETTINGS, flag::ACK, 0, 0), (kind::SETTINGS, flag::ACK, 0, 0)]);
}

#[test]
fn s6_6_push_promise_from_a_client_is_protocol_error() {
    // h2spec http2/8.2/1: we announced ENABLE_PUSH 0, and a client may not push anyway.
    let out = run(Client::new().post(1).frame(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &[0, 0, 0, 2, 0x82]));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_7_ping_is_answered_with_ack_and_the_same_payload() {
    // h2spec http2/6.7/1.
    let out = run(Client::new().ping(b"h2spec!!"));
    assert_eq!(out.kinds(), [(kind::PING, flag::ACK, 0)]);
    assert_eq!(out.frames[0].1, b"h2spec!!");
}

#[test]
fn s6_7_ping_ack_is_not_answered() {
    // h2spec http2/6.7/2: an ACK, then a PING: only the PING is answered.
    let out = run(Client::new().frame(kind::PING, flag::ACK, 0, b"invalid!").ping(b"h2spec!!"));
    assert_eq!(out.kinds(), [(kind::PING, flag::ACK, 0)]);
    assert_eq!(out.frames[0].1, b"h2spec!!");
}

#[test]
fn s6_7_ping_on_a_stream_is_protocol_error() {
    // h2spec http2/6.7/3.
    assert_eq!(run(Client::new().frame(kind::PING, 0, 1, b"h2spec!!")).goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_7_ping_of_a_length_other_than_8_is_frame_size_error() {
    // h2spec http2/6.7/4.
    assert_eq!(run(Client::new().frame(kind::PING, 0, 0, b"h2spec")).goaway(), Some(ErrorCode::FrameSize));
    assert_eq!(run(Client::new().frame(kind::PING, 0, 0, &[0; 9])).goaway(), Some(ErrorCode::FrameSize));
}

#[test]
fn s6_8_goaway_on_a_stream_is_protocol_error() {
    // h2spec http2/6.8/1.
    let out = run(Client::new().frame(kind::GOAWAY, 0, 1, &[0; 8]));
    assert_eq!(out.goaway(), Some(ErrorCode::Protocol));
}

#[test]
fn s6_8_the_clients_goaway_is_an_event() {
    let out =
        run(Client::new().get(1).frame(kind::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0, b'b', b'y', b'e']));
    assert_eq!(out.events[1], Event::GoAway { last_stream: 0, code: 0 });
    assert!(out.accepted());
}

#[test]
fn s6_8_our_goaway_lets_started_streams_finish_and_starts_no_new_one() {
    let mut out = run(Client::new().post(1));
    out.conn.go_away();
    out.take_output();
    assert_eq!(out.kinds(), [(kind::GOAWAY, 0, 0)]);
    assert_eq!(out.frames[0].1, [0, 0, 0, 1, 0, 0, 0, 0], "last stream 1, NO_ERROR");
    out.send(|c| c.get(3).data(1, b"end", true));
    assert_eq!(out.events, [Event::Data { stream: 1, data: b"end".to_vec(), end_stream: true }]);
    assert!(!out.conn.is_done());
    out.conn.respond(1, 200, &[], true);
    assert!(out.conn.is_done());
}
