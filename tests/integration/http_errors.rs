//! gunicorn's head limits (`--limit-request-line`, `--limit-request-fields`,
//! `--limit-request-field-size`) and rustgun's total, `--limit-request-head`: each exceeded limit gets its exact status with `Connection: close`,
//! the connection is closed, the worker goes on serving, and each boundary is still accepted. The RFC
//! 9110/9112 rules are the rows of the conformance table (`conformance`).

use crate::conformance::{assert_refused, assert_serves};
use crate::support::Server;

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

/// A head of exactly `total` bytes (final CRLF included) made of header lines of at most 8000 bytes.
fn get_with_head(total: usize) -> String {
    let start = "GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n";
    let mut head = start.to_string();
    let mut i = 0;
    while head.len() + 2 < total {
        // "X-NNNN: " + value + CRLF, the last one cut to land on `total`.
        let room = total - 2 - head.len();
        let value = room.min(8000).saturating_sub(10).max(1);
        head.push_str(&format!("X-{i:04}: {}\r\n", "v".repeat(value)));
        i += 1;
    }
    head.push_str("\r\n");
    assert_eq!(head.len(), total, "the helper missed its length");
    head
}

#[test]
fn the_whole_head_is_limited_even_when_each_field_is_within_its_own_limits() {
    let server = Server::start("chaos");
    server.allow_log("Invalid request from");
    assert_serves(&server, "a head of 65536 bytes", get_with_head(65536).as_bytes());
    assert_refused(&server, "a head of 65537 bytes", get_with_head(65537).as_bytes(), 431);
    // An unfinished head is answered as soon as it passes the limit: the worker does not hold it.
    let unfinished = get_with_head(80_000);
    assert_refused(&server, "70 KiB of a head", &unfinished.as_bytes()[..70_000], 431);
    assert_serves(&server, "after the refusals", GOOD);
    let roomy = Server::builder("chaos")
        .args(&["--limit-request-head", "131072"])
        .allow_log("Invalid request from")
        .start();
    assert_serves(&roomy, "a head of 100000 bytes", get_with_head(100_000).as_bytes());
    assert_refused(&roomy, "a head of 131073 bytes", get_with_head(131_073).as_bytes(), 431);
}

#[test]
fn default_head_limits_get_their_exact_status_and_a_closed_connection() {
    let server = Server::start("chaos");
    server.allow_log("Invalid request from");
    let line_4094 = 4094 - "GET  HTTP/1.1".len();
    let cases: Vec<(&str, String, u16)> = vec![
        ("request line over 4094", get_with_line(line_4094 + 1), 414),
        ("101 header fields", get_with_fields(101), 431),
        // gunicorn counts the line's CRLF: 8189 bytes and CRLF are 8191, over 8190.
        ("header line of 8189 and its CRLF", get_with_field_line(8189), 431),
    ];
    for (what, request, status) in &cases {
        assert_refused(&server, what, request.as_bytes(), *status);
        assert_serves(&server, what, GOOD);
    }
    // Each limit's boundary is still accepted.
    assert_serves(&server, "request line of 4094", get_with_line(line_4094).as_bytes());
    assert_serves(&server, "100 header fields", get_with_fields(100).as_bytes());
    assert_serves(&server, "header line of 8188 and its CRLF", get_with_field_line(8188).as_bytes());
}

#[test]
fn head_limits_follow_the_command_line() {
    // gunicorn's spelling and rustgun's are the same option.
    for field_size in ["--limit-request-field_size", "--limit-request-field-size"] {
        let server = Server::builder("chaos")
            .args(&["--limit-request-line", "30", "--limit-request-fields", "4", field_size, "40"])
            .allow_log("Invalid request from")
            .start();
        let line_30 = 30 - "GET  HTTP/1.1".len();
        assert_serves(&server, "request line of 30", get_with_line(line_30).as_bytes());
        assert_refused(&server, "request line of 31", get_with_line(line_30 + 1).as_bytes(), 414);
        assert_serves(&server, "4 fields", get_with_fields(4).as_bytes());
        assert_refused(&server, "5 fields", get_with_fields(5).as_bytes(), 431);
        assert_serves(&server, "field line of 38 and its CRLF", get_with_field_line(38).as_bytes());
        assert_refused(&server, "field line of 39 and its CRLF", get_with_field_line(39).as_bytes(), 431);
    }
}
