//! Rows for the chunked transfer coding (RFC 9112 §7.1): chunk sizes, chunk extensions, the last
//! chunk and the trailer section: the fields a trailer must not carry (RFC 9110 §6.5.1) refused if they
//! would change framing or routing, else dropped.

use super::Expect::{Echo, Refused};
use super::{ROW, Row};

pub(super) fn rows() -> Vec<Row> {
    vec![
        // Chunked transfer coding (RFC 9112 §7.1).
        Row {
            rule: "chunk size: hex digits, either case, leading zeros",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n00B\r\nabcdefghijk\r\n0\r\n\r\n",
            expect: Echo("0123456789abcdefghijk"),
            ..ROW
        },
        Row {
            rule: "chunk size: a sign (+)",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk size: a sign (-)",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk size: 0x prefix",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk size: a space before it",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk size: a space after it without an extension",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk size: not hex",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk size: overflow (2^64)",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk extensions parsed and ignored",
            rfc: "9112 §7.1.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b ; c=\"d;e\\\"f\";g\r\nhello\r\n0;last\r\n\r\n",
            expect: Echo("hello"),
            ..ROW
        },
        Row {
            rule: "chunk extension: no name",
            rfc: "9112 §7.1.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\nhi\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk extension: a value without a name",
            rfc: "9112 §7.1.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;=x\r\nhi\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk extension: a space inside the name",
            rfc: "9112 §7.1.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a b\r\nhi\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk extension: an unbalanced quote",
            rfc: "9112 §7.1.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\"b\r\nhi\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk extension: a bare LF",
            rfc: "9112 §7.1.1, §2.2",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk extension: a bare CR",
            rfc: "9112 §7.1.1, §2.2",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "chunk data longer than its size",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "last chunk: the final line ends with a bare LF",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "last chunk: the final line is CR then not LF",
            rfc: "9112 §7.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\rX",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "trailer fields parsed (and the body served)",
            rfc: "9112 §7.1.2",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:\t1 \r\n\r\n",
            expect: Echo("hello"),
            ..ROW
        },
        Row {
            rule: "trailer: Content-Length",
            rfc: "9110 §6.5.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "trailer: Transfer-Encoding",
            rfc: "9110 §6.5.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\ntransfer-encoding: chunked\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "trailer: Host",
            rfc: "9110 §6.5.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nHost: evil\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "trailer fields that cannot change framing or routing are dropped (Vary, Content-Type, Authorization)",
            rfc: "9110 §6.5.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\nAuthorization: x\r\n\r\n",
            expect: Echo("hello"),
            ..ROW
        },
    ]
}
