//! Requests the server refuses (RFC 9110/9112 and gunicorn's limits): each gets its exact status with
//! `Connection: close`, the connection is closed, and the worker goes on serving.

use crate::support::{Response, Server};

/// Sends `request` on a new connection; asserts the answer is exactly one `status` error response with
/// `Connection: close` followed by the server closing the connection.
fn assert_refused(server: &Server, what: &str, request: &[u8], status: u16) {
    let mut conn = server.conn();
    conn.send(request);
    let bytes = conn.rest();
    let all = Response::parse_exact(&bytes);
    assert_eq!(all.len(), 1, "{what}: {:?}", String::from_utf8_lossy(&bytes));
    let resp = &all[0];
    assert_eq!(resp.status, status, "{what}: {:?}", String::from_utf8_lossy(&bytes));
    assert_eq!(resp.header("connection"), Some("close"), "{what}");
    assert!(resp.text().starts_with(&format!("{status} ")), "{what}: {:?}", resp.text());
}

/// Asserts the server answers a good request on a new connection.
fn assert_serves(server: &Server, what: &str, request: &[u8]) {
    let resp = Response::parse_one(&server.raw(request)).map(|r| r.0);
    assert_eq!(resp.map(|r| r.status), Some(200), "{what}: the server no longer serves");
}

const GOOD: &[u8] = b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn get_with_line(target_len: usize) -> String {
    // "GET " + target + " HTTP/1.1" is the request line.
    let target = format!("/ok?{}", "a".repeat(target_len - 4));
    format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
}

fn get_with_fields(count: usize) -> String {
    // Host and Connection are two of the fields.
    let extra: String = (2..count).map(|i| format!("X-{i}: v\r\n")).collect();
    format!("GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n")
}

fn get_with_field_line(len: usize) -> String {
    // "X: " + value is the field line, without CRLF.
    format!("GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX: {}\r\n\r\n", "v".repeat(len - 3))
}

#[test]
fn bad_requests_get_their_exact_status_and_a_closed_connection() {
    let server = Server::start("chaos");
    let line_4094 = 4094 - "GET  HTTP/1.1".len();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed request line", b"GET /ok\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("two spaces in the request line", b"GET  /ok HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("method not a token", b"G(T /ok HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("missing Host on 1.1", b"GET /ok HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("duplicate Host", b"GET /ok HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        ("bare LF line ends", b"GET /ok HTTP/1.1\nHost: t\n\n".to_vec(), 400),
        ("bare LF after one header", b"GET /ok HTTP/1.1\r\nHost: t\nX: y\r\n\r\n".to_vec(), 400),
        ("obs-fold", b"GET /ok HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n".to_vec(), 400),
        ("space before colon", b"GET /ok HTTP/1.1\r\nHost : t\r\n\r\n".to_vec(), 400),
        ("request line over 4094", get_with_line(line_4094 + 1).into_bytes(), 414),
        ("101 header fields", get_with_fields(101).into_bytes(), 431),
        ("header line over 8190", get_with_field_line(8191).into_bytes(), 431),
        ("Transfer-Encoding gzip", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 501),
        (
            "Content-Length and Transfer-Encoding",
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                .to_vec(),
            400,
        ),
        (
            "differing Content-Lengths",
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
            400,
        ),
        ("Content-Length with a sign", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc".to_vec(), 400),
        ("HTTP/2.0", b"GET /ok HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(), 505),
        ("HTTP/1.2", b"GET /ok HTTP/1.2\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("garbage version", b"GET /ok HTTX/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("fragment in the target", b"GET /ok#frag HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(), 400),
        ("unknown expectation", b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx".to_vec(), 417),
        (
            "chunk size not hex",
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for (what, request, status) in &cases {
        assert_refused(&server, what, request, *status);
        assert_serves(&server, what, GOOD);
    }
    // Each limit's boundary is still accepted.
    assert_serves(&server, "request line of 4094", get_with_line(line_4094).as_bytes());
    assert_serves(&server, "100 header fields", get_with_fields(100).as_bytes());
    assert_serves(&server, "header line of 8190", get_with_field_line(8190).as_bytes());
}

#[test]
fn head_limits_follow_the_command_line() {
    let server = Server::builder("chaos")
        .args(&[
            "--limit-request-line",
            "30",
            "--limit-request-fields",
            "4",
            "--limit-request-field-size",
            "40",
        ])
        .start();
    let line_30 = 30 - "GET  HTTP/1.1".len();
    assert_serves(&server, "request line of 30", get_with_line(line_30).as_bytes());
    assert_refused(&server, "request line of 31", get_with_line(line_30 + 1).as_bytes(), 414);
    assert_serves(&server, "4 fields", get_with_fields(4).as_bytes());
    assert_refused(&server, "5 fields", get_with_fields(5).as_bytes(), 431);
    assert_serves(&server, "field line of 40", get_with_field_line(40).as_bytes());
    assert_refused(&server, "field line of 41", get_with_field_line(41).as_bytes(), 431);
}

#[test]
fn bodies_over_the_limit_or_malformed_midway_are_refused() {
    // The echo app reads the whole body before it answers, so a chunked body found too large or
    // malformed midway still gets its status (an app that already streamed its answer cannot).
    let server = Server::builder("echo").args(&["--limit-request-body", "10"]).start();
    let post = |framing: &str, body: &str| format!("POST / HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n{body}");
    assert_refused(&server, "Content-Length 11", post("Content-Length: 11", "hello world").as_bytes(), 413);
    assert_serves(
        &server,
        "Content-Length 10",
        post("Content-Length: 10\r\nConnection: close", "helloworld").as_bytes(),
    );
    let chunked = "Transfer-Encoding: chunked";
    assert_refused(
        &server,
        "chunked 6 + 6",
        post(chunked, "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n").as_bytes(),
        413,
    );
    let longer = "2\r\nabc\r\n0\r\n\r\n";
    assert_refused(&server, "chunk data longer than its size", post(chunked, longer).as_bytes(), 400);
    assert_serves(
        &server,
        "chunked 6 + 4",
        post("Transfer-Encoding: chunked\r\nConnection: close", "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n")
            .as_bytes(),
    );
}

#[test]
fn an_incomplete_request_at_eof_gets_no_response() {
    let server = Server::start("chaos");
    for partial in [&b"GET /ok HTTP/1.1\r\nHo"[..], b"GET /ok HTTP/1.1\r\nHost: t\r\n"] {
        let mut conn = server.conn();
        conn.send(partial);
        conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
        conn.assert_closed();
        assert_serves(&server, "after an incomplete request", GOOD);
    }
}

#[test]
fn a_head_not_finished_in_time_gets_408() {
    let server = Server::builder("chaos").args(&["--header-timeout", "1"]).start();
    // The client sends half a head and then waits; the server answers within a bounded wait.
    assert_refused(&server, "half a head", b"GET /ok HTTP/1.1\r\nHost: t\r\n", 408);
    assert_serves(&server, "after a 408", GOOD);
}
