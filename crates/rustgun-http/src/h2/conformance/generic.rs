//! h2spec's `generic` group: what a server must simply accept — each frame type in its ordinary
//! use, on streams in each state, and the four ordinary exchanges. Every row: no RST_STREAM, no
//! GOAWAY, and the event or answer the frame calls for.

use super::*;

/// Stream 1's request ended with its HEADERS: half-closed (remote).
fn half_closed() -> Client {
    Client::new().get(1)
}

#[test]
fn generic_1_client_preface_is_accepted_and_acknowledged() {
    // h2spec generic/1/1.
    let out = run(Client::new());
    assert!(out.accepted() && out.frames.is_empty() && out.settings_acks == 1);
}

#[test]
fn generic_2_priority_on_an_idle_stream_is_accepted() {
    // h2spec generic/2/1.
    let out = run(Client::new().priority(1, 0).get(1));
    assert!(out.accepted());
    assert_eq!(out.requests(), [1]);
}

#[test]
fn generic_2_window_update_on_a_half_closed_remote_stream_is_accepted() {
    // h2spec generic/2/2.
    let out = run(half_closed().window_update(1, 100));
    assert!(out.accepted());
    assert_eq!(out.events[1], Event::Writable);
}

#[test]
fn generic_2_priority_on_a_half_closed_remote_stream_is_accepted() {
    // h2spec generic/2/3.
    let out = run(half_closed().priority(1, 0));
    assert!(out.accepted());
    assert_eq!(out.conn.open_streams(), 1);
}

#[test]
fn generic_2_rst_stream_on_a_half_closed_remote_stream_is_accepted() {
    // h2spec generic/2/4.
    let out = run(half_closed().rst(1, ErrorCode::Cancel as u32));
    assert!(out.accepted());
    assert_eq!(out.events[1], Event::Reset { stream: 1, code: ErrorCode::Cancel as u32 });
}

#[test]
fn generic_2_priority_on_a_closed_stream_is_accepted() {
    // h2spec generic/2/5.
    let mut out = run(half_closed());
    out.conn.respond(1, 204, &[], true);
    out.send(|c| c.priority(1, 0));
    assert!(out.accepted());
}

#[test]
fn generic_3_1_data_is_accepted() {
    // h2spec generic/3.1/1.
    let out = run(Client::new().post(1).data(1, b"test", true));
    assert!(out.accepted());
    assert_eq!(out.events[1], Event::Data { stream: 1, data: b"test".to_vec(), end_stream: true });
}

#[test]
fn generic_3_1_multiple_data_are_accepted() {
    // h2spec generic/3.1/2.
    let out = run(Client::new().post(1).data(1, b"te", false).data(1, b"st", true));
    assert!(out.accepted());
    assert_eq!(
        out.events[1..],
        [
            Event::Data { stream: 1, data: b"te".to_vec(), end_stream: false },
            Event::Data { stream: 1, data: b"st".to_vec(), end_stream: true },
        ]
    );
}

#[test]
fn generic_3_1_data_with_padding_is_accepted() {
    // h2spec generic/3.1/3.
    let out =
        run(Client::new().post(1).frame(kind::DATA, flag::PADDED | flag::END_STREAM, 1, &padded(b"test", 8)));
    assert!(out.accepted());
    assert_eq!(out.events[1], Event::Data { stream: 1, data: b"test".to_vec(), end_stream: true });
}

#[test]
fn generic_3_2_headers_is_accepted() {
    // h2spec generic/3.2/1.
    let mut out = run(Client::new().get(1));
    assert_eq!(out.requests(), [1]);
    assert_eq!(out.answer(1, b""), Vec::<usize>::new());
}

#[test]
fn generic_3_2_headers_with_padding_is_accepted() {
    // h2spec generic/3.2/2.
    let mut client = Client::new();
    let block = client.block(&GET);
    let out = run(client.frame(
        kind::HEADERS,
        flag::PADDED | flag::END_HEADERS | flag::END_STREAM,
        1,
        &padded(&block, 8),
    ));
    assert!(out.accepted());
    assert_eq!(out.requests(), [1]);
}

#[test]
fn generic_3_2_headers_with_priority_is_accepted() {
    // h2spec generic/3.2/3.
    let mut client = Client::new();
    let mut payload = priority_block(0).to_vec();
    payload.extend(client.block(&GET));
    let out =
        run(client.frame(kind::HEADERS, flag::PRIORITY | flag::END_HEADERS | flag::END_STREAM, 1, &payload));
    assert!(out.accepted());
    assert_eq!(out.requests(), [1]);
}

#[test]
fn generic_3_3_priority_with_weight_1_is_accepted() {
    // h2spec generic/3.3/1.
    let out = run(Client::new().frame(kind::PRIORITY, 0, 3, &[0, 0, 0, 0, 0]).get(5));
    assert!(out.accepted());
    assert_eq!(out.requests(), [5]);
}

#[test]
fn generic_3_3_priority_with_weight_256_is_accepted() {
    // h2spec generic/3.3/2.
    let out = run(Client::new().frame(kind::PRIORITY, 0, 3, &[0, 0, 0, 0, 255]).get(5));
    assert!(out.accepted());
    assert_eq!(out.requests(), [5]);
}

#[test]
fn generic_3_3_priority_with_a_dependency_is_accepted() {
    // h2spec generic/3.3/3.
    let out = run(Client::new().frame(kind::PRIORITY, 0, 3, &[0, 0, 0, 1, 15]).get(5));
    assert!(out.accepted());
    assert_eq!(out.requests(), [5]);
}

#[test]
fn generic_3_3_priority_exclusive_is_accepted() {
    // h2spec generic/3.3/4.
    let out = run(Client::new().frame(kind::PRIORITY, 0, 3, &[0x80, 0, 0, 1, 15]).get(5));
    assert!(out.accepted());
    assert_eq!(out.requests(), [5]);
}

#[test]
fn generic_3_3_priority_on_an_idle_stream_then_headers_on_a_lower_one_is_served() {
    // h2spec generic/3.3/5: PRIORITY does not open stream 3, so stream 1 may still start.
    let out = run(Client::new().priority(3, 0).get(1));
    assert!(out.accepted());
    assert_eq!(out.requests(), [1]);
}

#[test]
fn generic_3_4_rst_stream_is_accepted() {
    // h2spec generic/3.4/1.
    let out = run(Client::new().post(1).rst(1, ErrorCode::Cancel as u32));
    assert!(out.accepted());
}

#[test]
fn generic_3_5_settings_is_accepted() {
    // h2spec generic/3.5/1.
    let out = run(Client::new().settings(&[(crate::h2::frame::setting::MAX_CONCURRENT_STREAMS, 100)]));
    assert!(out.accepted());
    assert_eq!(out.settings_acks, 2);
}

#[test]
fn generic_3_7_ping_is_accepted() {
    // h2spec generic/3.7/1.
    assert_eq!(run(Client::new().ping(b"h2spec!!")).kinds(), [(kind::PING, flag::ACK, 0)]);
}

#[test]
fn generic_3_8_goaway_is_accepted() {
    // h2spec generic/3.8/1.
    let out = run(Client::new().frame(kind::GOAWAY, 0, 0, &[0; 8]));
    assert!(out.accepted());
    assert_eq!(out.events, [Event::GoAway { last_stream: 0, code: 0 }]);
}

#[test]
fn generic_3_9_window_update_on_the_connection_is_accepted() {
    // h2spec generic/3.9/1.
    let out = run(Client::new().window_update(0, 1));
    assert!(out.accepted());
    assert_eq!(out.events, [Event::Writable]);
}

#[test]
fn generic_3_9_window_update_on_a_stream_is_accepted() {
    // h2spec generic/3.9/2.
    let mut out = run(Client::new().post(1).window_update(1, 1));
    assert!(out.accepted());
    assert_eq!(out.events[1], Event::Writable);
    assert_eq!(out.answer(1, &[b'z'; 65_536]).iter().sum::<usize>(), 65_535, "the connection's window");
}

#[test]
fn generic_3_10_continuation_is_accepted() {
    // h2spec generic/3.10/1.
    let out = run(Client::new().split_headers(1, &GET, true));
    assert!(out.accepted());
    assert_eq!(out.requests(), [1]);
}

#[test]
fn generic_3_10_multiple_continuations_are_accepted() {
    // h2spec generic/3.10/2: one byte per frame.
    let mut client = Client::new();
    let block = client.block(&GET);
    client = client.frame(kind::HEADERS, flag::END_STREAM, 1, &block[..1]);
    for (i, byte) in block.iter().enumerate().skip(1) {
        let last = if i + 1 == block.len() { flag::END_HEADERS } else { 0 };
        client = client.frame(kind::CONTINUATION, last, 1, &[*byte]);
    }
    let out = run(client);
    assert!(out.accepted());
    assert_eq!(out.requests(), [1]);
}

/// A request with `method` and, when `body` is given, that body and `trailers` after it: the
/// events, and the head of the answer.
fn exchange(method: &str, body: Option<&[u8]>, trailers: bool) -> Vec<Event> {
    let fields = [(":method", method), (":scheme", "http"), (":path", "/"), (":authority", "t")];
    let mut client = Client::new().headers(1, &fields, body.is_none());
    if let Some(body) = body {
        client = client.data(1, body, !trailers);
    }
    if trailers {
        let block = client.block(&[("x-trailer", "1")]);
        client = client.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &block);
    }
    let mut out = run(client);
    assert!(out.accepted());
    out.conn.respond(1, 200, &[(b"content-length", b"0")], true);
    out.take_output();
    // The body the app never consumed is credited back to the connection as the stream closes.
    let credit = body.map_or(vec![], |b| vec![(0, b.len() as u32)]);
    assert_eq!(out.window_updates(), credit);
    out.frames.retain(|(h, _)| h.kind != kind::WINDOW_UPDATE);
    assert_eq!(out.kinds(), [(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1)]);
    assert_eq!(out.conn.open_streams(), 0);
    out.events
}

#[test]
fn generic_4_get_is_answered() {
    // h2spec generic/4/1.
    assert!(matches!(exchange("GET", None, false)[..], [Event::Request { stream: 1, end_stream: true, .. }]));
}

#[test]
fn generic_4_head_is_answered() {
    // h2spec generic/4/2.
    assert!(matches!(
        exchange("HEAD", None, false)[..],
        [Event::Request { stream: 1, end_stream: true, .. }]
    ));
}

#[test]
fn generic_4_post_is_answered() {
    // h2spec generic/4/3.
    let events = exchange("POST", Some(b"test"), false);
    assert_eq!(events[1], Event::Data { stream: 1, data: b"test".to_vec(), end_stream: true });
}

#[test]
fn generic_4_post_with_trailers_is_answered() {
    // h2spec generic/4/4.
    let events = exchange("POST", Some(b"test"), true);
    assert_eq!(
        events[2],
        Event::Trailers { stream: 1, fields: vec![(b"x-trailer".to_vec(), b"1".to_vec())] }
    );
}
