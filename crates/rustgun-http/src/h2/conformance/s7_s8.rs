//! RFC 9113 §7 (error codes) and §8 (HTTP semantics: the message's frames, field names, pseudo-
//! headers, connection-specific fields, content-length): h2spec's `http2/7` and `http2/8.1*` (the
//! RFC 7540 numbering: 8.1.2.1 to 8.1.2.6 are RFC 9113's §8.2 and §8.3.1).

use super::*;

/// A request with `fields` is malformed: its stream is reset with PROTOCOL_ERROR, and the next
/// request on the connection is served as ever.
fn malformed(fields: &[(&str, &str)]) {
    let out = run(Client::new().headers(1, fields, true).get(3));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol), "{fields:?}");
    assert_eq!(out.requests(), [3], "{fields:?}");
}

/// A POST to `/` with `content-length: n`.
fn with_length(n: &str) -> [(&str, &str); 4] {
    [(":method", "POST"), (":scheme", "http"), (":path", "/"), ("content-length", n)]
}

#[test]
fn s7_goaway_with_an_unknown_error_code_triggers_nothing_special() {
    // h2spec http2/7/1: then a PING, answered as ever.
    let out = run(Client::new().frame(kind::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0xff]).ping(b"h2spec!!"));
    assert_eq!(out.events, [Event::GoAway { last_stream: 0, code: 0xff }]);
    assert_eq!(out.kinds(), [(kind::PING, flag::ACK, 0)]);
}

#[test]
fn s7_rst_stream_with_an_unknown_error_code_triggers_nothing_special() {
    // h2spec http2/7/2.
    let out = run(Client::new().post(1).rst(1, 0xff).ping(b"h2spec!!"));
    assert_eq!(out.events[1], Event::Reset { stream: 1, code: 0xff });
    assert_eq!(out.kinds(), [(kind::PING, flag::ACK, 0)]);
}

#[test]
fn s8_1_a_request_is_an_event_with_its_fields_in_order() {
    let out = run(Client::new().get(1));
    let Some(Event::Request { stream: 1, fields, end_stream: true }) = out.events.first() else {
        panic!("{:?}", out.events)
    };
    let want: Vec<_> = GET.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
    assert_eq!(fields, &want);
    assert_eq!(out.conn.open_streams(), 1);
}

#[test]
fn s8_1_second_headers_without_end_stream_is_protocol_error() {
    // h2spec http2/8.1/1: trailers must end the stream.
    let mut client = Client::new().post(1);
    let trailers = client.block(&[("grpc-status", "0")]);
    assert_eq!(
        run(client.frame(kind::HEADERS, flag::END_HEADERS, 1, &trailers)).rst(1),
        Some(ErrorCode::Protocol)
    );
}

#[test]
fn s8_1_trailers_end_the_body() {
    let mut client = Client::new().post(1).data(1, b"x", false);
    let trailers = client.block(&[("grpc-status", "0")]);
    let out = run(client.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &trailers));
    let fields = vec![(b"grpc-status".to_vec(), b"0".to_vec())];
    assert_eq!(out.events[2], Event::Trailers { stream: 1, fields });
}

#[test]
fn s8_2_uppercase_field_name_is_protocol_error() {
    // h2spec http2/8.1.2/1.
    malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("X-TEST", "ok")]);
}

#[test]
fn s8_2_1_field_value_with_cr_lf_or_nul_is_protocol_error() {
    for value in ["a\rb", "a\nb", "a\0b", " lead", "trail\t"] {
        malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("x", value)]);
    }
}

#[test]
fn s8_3_unknown_pseudo_header_is_protocol_error() {
    // h2spec http2/8.1.2.1/1.
    malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":test", "ok")]);
}

#[test]
fn s8_3_response_pseudo_header_in_a_request_is_protocol_error() {
    // h2spec http2/8.1.2.1/2.
    malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":status", "200")]);
}

#[test]
fn s8_3_pseudo_header_in_trailers_is_protocol_error() {
    // h2spec http2/8.1.2.1/3.
    let mut client = Client::new().post(1);
    let trailers = client.block(&[(":path", "/x")]);
    let out = run(client.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &trailers));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
}

#[test]
fn s8_3_pseudo_header_after_a_regular_field_is_protocol_error() {
    // h2spec http2/8.1.2.1/4.
    malformed(&[(":method", "GET"), (":scheme", "http"), ("x", "1"), (":path", "/")]);
}

#[test]
fn s8_2_2_connection_specific_field_is_protocol_error() {
    // h2spec http2/8.1.2.2/1, with each of them.
    for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
        malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), (name, "x")]);
    }
}

#[test]
fn s8_2_2_te_other_than_trailers_is_protocol_error() {
    // h2spec http2/8.1.2.2/2.
    malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("te", "trailers, deflate")]);
}

#[test]
fn s8_2_2_te_trailers_is_allowed() {
    let out = run(Client::new().headers(
        1,
        &[(":method", "GET"), (":scheme", "http"), (":path", "/"), ("te", "trailers")],
        true,
    ));
    assert!(out.accepted());
    assert_eq!(out.requests(), [1]);
}

#[test]
fn s8_3_1_empty_path_is_protocol_error() {
    // h2spec http2/8.1.2.3/1.
    malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "")]);
}

#[test]
fn s8_3_1_missing_method_is_protocol_error() {
    // h2spec http2/8.1.2.3/2.
    malformed(&[(":scheme", "http"), (":path", "/")]);
}

#[test]
fn s8_3_1_missing_scheme_is_protocol_error() {
    // h2spec http2/8.1.2.3/3.
    malformed(&[(":method", "GET"), (":path", "/")]);
}

#[test]
fn s8_3_1_missing_path_is_protocol_error() {
    // h2spec http2/8.1.2.3/4.
    malformed(&[(":method", "GET"), (":scheme", "http"), (":authority", "t")]);
}

#[test]
fn s8_3_1_duplicated_method_is_protocol_error() {
    // h2spec http2/8.1.2.3/5.
    malformed(&[(":method", "GET"), (":method", "POST"), (":scheme", "http"), (":path", "/")]);
}

#[test]
fn s8_3_1_duplicated_scheme_is_protocol_error() {
    // h2spec http2/8.1.2.3/6.
    malformed(&[(":method", "GET"), (":scheme", "http"), (":scheme", "https"), (":path", "/")]);
}

#[test]
fn s8_3_1_duplicated_path_is_protocol_error() {
    // h2spec http2/8.1.2.3/7.
    malformed(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":path", "/")]);
}

#[test]
fn s8_5_connect_has_method_and_authority_only() {
    let connect = [(":method", "CONNECT"), (":authority", "example.com:443")];
    let out = run(Client::new().headers(1, &connect, false));
    assert_eq!(out.requests(), [1]);
    malformed(&[(":method", "CONNECT"), (":authority", "example.com:443"), (":path", "/")]);
}

#[test]
fn s8_1_1_content_length_unlike_the_data_is_protocol_error() {
    // h2spec http2/8.1.2.6/1: 1 declared, 4 sent.
    let out = run(Client::new().headers(1, &with_length("1"), false).data(1, b"test", true));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
}

#[test]
fn s8_1_1_content_length_unlike_the_sum_of_the_data_is_protocol_error() {
    // h2spec http2/8.1.2.6/2: 8 declared, 4 + 4 + 4 sent.
    let client =
        Client::new().headers(1, &with_length("8"), false).data(1, b"test", false).data(1, b"test", false);
    let out = run(client.data(1, b"test", true));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
    assert_eq!(out.events.iter().filter(|e| matches!(e, Event::Data { .. })).count(), 2);
}

#[test]
fn s8_1_1_content_length_exactly_met_is_a_body() {
    let out = run(Client::new().headers(1, &with_length("4"), false).data(1, b"body", true));
    assert!(out.accepted());
    assert_eq!(out.events[1], Event::Data { stream: 1, data: b"body".to_vec(), end_stream: true });
}

#[test]
fn s8_1_1_a_body_shorter_than_its_content_length_is_protocol_error() {
    let out = run(Client::new().headers(1, &with_length("5"), false).data(1, b"body", true));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
}

#[test]
fn s8_1_1_trailers_before_the_content_length_is_met_is_protocol_error() {
    let mut client = Client::new().headers(1, &with_length("5"), false).data(1, b"body", false);
    let trailers = client.block(&[("x", "y")]);
    let out = run(client.frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &trailers));
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
}

#[test]
fn s8_1_1_content_length_on_a_request_already_ended_is_protocol_error() {
    assert_eq!(run(Client::new().headers(1, &with_length("4"), true)).rst(1), Some(ErrorCode::Protocol));
}

#[test]
fn s8_1_1_content_length_that_is_no_number_is_protocol_error() {
    for n in ["4x", "", "-1", "1, 2"] {
        assert_eq!(
            run(Client::new().headers(1, &with_length(n), false)).rst(1),
            Some(ErrorCode::Protocol),
            "{n:?}"
        );
    }
}
