//! Rows for a client that stops sending: a request cut off by the end of the connection (RFC
//! 9112 §8), and a half-closed client that still gets every response it asked for (RFC 9112 §9.6).

use super::Expect::{Closed, Echo, Served};
use super::{Client, ROW, Row, Setup};

pub(super) fn rows() -> Vec<Row> {
    vec![
        // Incomplete requests and half-closed clients (RFC 9112 §8, §9.6).
        Row {
            rule: "incomplete request line at EOF",
            rfc: "9112 §8",
            client: Client::HalfClose,
            request: b"GET /e HTT",
            expect: Closed,
            ..ROW
        },
        Row {
            rule: "incomplete head at EOF",
            rfc: "9112 §8",
            client: Client::HalfClose,
            request: b"GET /e HTTP/1.1\r\nHost: t\r\n",
            expect: Closed,
            ..ROW
        },
        Row {
            rule: "incomplete Content-Length body at EOF",
            rfc: "9112 §8",
            client: Client::HalfClose,
            request: b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
            expect: Closed,
            ..ROW
        },
        Row {
            rule: "incomplete chunked body at EOF",
            rfc: "9112 §8",
            client: Client::HalfClose,
            request: b"POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            expect: Closed,
            ..ROW
        },
        Row {
            rule: "half-closed client gets its complete response",
            rfc: "9112 §9.6",
            client: Client::HalfClose,
            request: b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
            expect: Echo("hello"),
            ..ROW
        },
        Row {
            rule: "half-closed client gets every pipelined response",
            rfc: "9112 §9.3.2, §9.6",
            setup: Setup::Chaos,
            client: Client::HalfClose,
            request: b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
            expect: Served(&["ok", "abc"]),
        },
    ]
}
