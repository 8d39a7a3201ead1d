//! Rows for a request's message body and framing: Content-Length and Transfer-Encoding and how
//! they combine (RFC 9110 §8.6, RFC 9112 §6), `--limit-request-body` (RFC 9110 §15.5.14), and a
//! body the app left unread, discarded or ending the connection (RFC 9112 §9.3).
//! The chunked coding itself is in `chunked`.

use super::Expect::{Echo, Refused, Served};
use super::{ROW, Row, Setup};
use std::sync::LazyLock;

/// POST /noread with an unread Content-Length body of `len` bytes, then a pipelined GET /ok.
fn unread_then_ok(len: usize) -> Vec<u8> {
    let mut req = format!("POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    req.resize(req.len() + len, b'x');
    req.extend_from_slice(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    req
}
static UNREAD_1000: LazyLock<Vec<u8>> = LazyLock::new(|| unread_then_ok(1000));
static UNREAD_2_MIB: LazyLock<Vec<u8>> = LazyLock::new(|| unread_then_ok(2 * 1024 * 1024));

pub(super) fn rows() -> Vec<Row> {
    vec![
        // Content-Length (RFC 9110 §8.6, RFC 9112 §6.3).
        Row {
            rule: "Content-Length: digits",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
            expect: Echo("hello"),
            ..ROW
        },
        Row {
            rule: "Content-Length: equal values on several lines collapse",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello",
            expect: Echo("hello"),
            ..ROW
        },
        Row {
            rule: "Content-Length: differing values",
            rfc: "9112 §6.3 (5)",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Content-Length: +1",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: +1\r\n\r\nx",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Content-Length: -1",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Content-Length: 1_0",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 1_0\r\n\r\n0123456789",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Content-Length: 1, 2",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 1, 2\r\n\r\nxy",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Content-Length: a list, even of equal values (the MAY reject)",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 2, 2\r\n\r\nxy",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Content-Length: overflow",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: 18446744073709551617\r\n\r\nx",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Content-Length: empty",
            rfc: "9110 §8.6",
            request: b"POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length:\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        // Transfer-Encoding (RFC 9112 §6.1, §6.3, §7).
        Row {
            rule: "Transfer-Encoding: chunked (any case)",
            rfc: "9112 §6.1, §7",
            request: b"POST /te HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            expect: Echo("hello"),
            ..ROW
        },
        Row {
            rule: "Transfer-Encoding with Content-Length: 400 and close",
            rfc: "9112 §6.1, §6.3 (3)",
            request: b"POST /te HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Transfer-Encoding: chunked twice in a list",
            rfc: "9112 §6.1",
            request: b"POST /te HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Transfer-Encoding: chunked on two lines",
            rfc: "9112 §6.1",
            request: b"POST /te HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Transfer-Encoding: chunked not last",
            rfc: "9112 §6.3 (4)",
            request: b"POST /te HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Transfer-Encoding: a coding rustgun does not implement",
            rfc: "9112 §6.1",
            request: b"POST /te HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
            expect: Refused(501),
            ..ROW
        },
        Row {
            rule: "Transfer-Encoding: an unimplemented coding before chunked",
            rfc: "9112 §6.1",
            request: b"POST /te HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            expect: Refused(501),
            ..ROW
        },
        Row {
            rule: "Transfer-Encoding on HTTP/1.0",
            rfc: "9112 §6.1",
            request: b"POST /te HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Transfer-Encoding on HTTP/1.0, whatever the coding",
            rfc: "9112 §6.1",
            request: b"POST /te HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        // --limit-request-body (gunicorn has none; RFC 9110 §15.5.14).
        Row {
            rule: "body limit: Content-Length at the limit",
            rfc: "9110 §15.5.14",
            setup: Setup::BodyLimit,
            request: b"POST /l HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789",
            expect: Echo("0123456789"),
            ..ROW
        },
        Row {
            // No body follows the head: the echo app would wait for it if it ran.
            rule: "body limit: Content-Length over it, refused before the app runs",
            rfc: "9110 §15.5.14",
            setup: Setup::BodyLimit,
            request: b"POST /l HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n",
            expect: Refused(413),
            ..ROW
        },
        Row {
            rule: "body limit: chunked at the limit",
            rfc: "9110 §15.5.14",
            setup: Setup::BodyLimit,
            request: b"POST /l HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n",
            expect: Echo("abcdefghij"),
            ..ROW
        },
        Row {
            // The chunk that passes the limit is announced but never sent: the size line is enough.
            rule: "body limit: chunked, refused when it grows past it",
            rfc: "9110 §15.5.14",
            setup: Setup::BodyLimit,
            request: b"POST /l HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n",
            expect: Refused(413),
            ..ROW
        },
        // Unread bodies: discarded up to 1 MiB to keep the connection, else the connection closes.
        Row {
            rule: "unread Content-Length body discarded, the next request served",
            rfc: "9112 §9.3",
            setup: Setup::Chaos,
            request: UNREAD_1000.as_slice(),
            expect: Served(&["did not read the body", "ok"]),
            ..ROW
        },
        Row {
            rule: "unread chunked body discarded, the next request served",
            rfc: "9112 §9.3",
            setup: Setup::Chaos,
            request: b"POST /noread HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nGET /\r\n0\r\nX-T: 1\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            expect: Served(&["did not read the body", "ok"]),
            ..ROW
        },
        Row {
            rule: "unread body past the 1 MiB bound: response, then close",
            rfc: "9112 §9.3, §9.6",
            setup: Setup::Chaos,
            request: UNREAD_2_MIB.as_slice(),
            expect: Served(&["did not read the body"]),
            ..ROW
        },
    ]
}
