//! Rows for the request line and its target: the method, the request line's shape, the four
//! request-target forms and the version (RFC 9112 §2.3, §3; RFC 9110 §9.1), and Host, the target's
//! authority (RFC 9112 §3.2, RFC 9110 §7.2).

use super::Expect::{Echo, Refused};
use super::{ROW, Row};

pub(super) fn rows() -> Vec<Row> {
    vec![
        // Request line (RFC 9112 §3, §2.3; RFC 9110 §9.1).
        Row {
            rule: "method: any token, case-sensitive",
            rfc: "9112 §3.1, 9110 §9.1",
            request: b"get /m HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "method: an extension method",
            rfc: "9110 §9.1",
            request: b"PROPFIND /m HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",
            expect: Echo("{}"),
            ..ROW
        },
        Row {
            rule: "method: not a token",
            rfc: "9112 §3.1",
            request: b"G(T /m HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "method: empty",
            rfc: "9112 §3",
            request: b" /m HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "request line: two spaces",
            rfc: "9112 §3",
            request: b"GET  /m HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "request line: no version",
            rfc: "9112 §3",
            request: b"GET /m\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "empty lines before the request line ignored",
            rfc: "9112 §2.2",
            request: b"\r\n\r\nGET /m HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "target: origin-form",
            rfc: "9112 §3.2.1",
            request: b"GET /a/b%20c?x=1&y=%2F HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "target: absolute-form with GET",
            rfc: "9112 §3.2.2",
            request: b"GET http://example.com:8080/a?b HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "target: absolute-form with any method",
            rfc: "9112 §3.2.2",
            request: b"POST https://example.com HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nhi",
            expect: Echo("hi"),
            ..ROW
        },
        Row {
            rule: "target: authority-form with CONNECT",
            rfc: "9112 §3.2.3",
            request: b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "target: authority-form with another method",
            rfc: "9112 §3.2.3",
            request: b"GET example.com:443 HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "target: CONNECT with origin-form",
            rfc: "9112 §3.2.3",
            request: b"CONNECT /m HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "target: asterisk-form with OPTIONS",
            rfc: "9112 §3.2.4",
            request: b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "target: asterisk-form with another method",
            rfc: "9112 §3.2.4",
            request: b"GET * HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "target: none of the four forms",
            rfc: "9112 §3.2",
            request: b"GET relative/path HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "target: a fragment",
            rfc: "9112 §3.2 (RFC 3986 §3.5)",
            request: b"GET /m#frag HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "target: raw non-ASCII",
            rfc: "9112 §3.2",
            request: b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "version: HTTP/1.0",
            rfc: "9112 §2.3",
            request: b"GET /v HTTP/1.0\r\nHost: t\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "version: a well-formed higher major version",
            rfc: "9112 §2.3, 9110 §15.6.6",
            request: b"GET /v HTTP/2.0\r\nHost: t\r\n\r\n",
            expect: Refused(505),
            ..ROW
        },
        Row {
            rule: "version: HTTP/3.0",
            rfc: "9110 §15.6.6",
            request: b"GET /v HTTP/3.0\r\nHost: t\r\n\r\n",
            expect: Refused(505),
            ..ROW
        },
        Row {
            rule: "version: a well-formed higher minor version of 1",
            rfc: "9110 §15.6.6, §2.5",
            request: b"GET /v HTTP/1.2\r\nHost: t\r\n\r\n",
            expect: Refused(505),
            ..ROW
        },
        Row {
            rule: "version: malformed (lower case)",
            rfc: "9112 §2.3",
            request: b"GET /v http/1.1\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "version: malformed (no minor)",
            rfc: "9112 §2.3",
            request: b"GET /v HTTP/2\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "version: malformed (two digits)",
            rfc: "9112 §2.3",
            request: b"GET /v HTTP/11.0\r\nHost: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        // Host (RFC 9112 §3.2, RFC 9110 §7.2).
        Row {
            rule: "Host present on HTTP/1.1",
            rfc: "9112 §3.2",
            request: b"GET /h HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "Host missing on HTTP/1.1",
            rfc: "9112 §3.2",
            request: b"GET /h HTTP/1.1\r\nX: y\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Host not required on HTTP/1.0",
            rfc: "9112 §3.2",
            request: b"GET /h HTTP/1.0\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "Host duplicated",
            rfc: "9112 §3.2",
            request: b"GET /h HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Host duplicated with the same value",
            rfc: "9112 §3.2",
            request: b"GET /h HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Host malformed: a space",
            rfc: "9112 §3.2, 9110 §7.2",
            request: b"GET /h HTTP/1.1\r\nHost: a b\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Host malformed: port not digits",
            rfc: "9110 §7.2",
            request: b"GET /h HTTP/1.1\r\nHost: a:8x\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Host malformed: brackets around a reg-name",
            rfc: "9110 §7.2 (RFC 3986 §3.2.2)",
            request: b"GET /h HTTP/1.1\r\nHost: a[b]\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Host as an IP-literal with a port",
            rfc: "9110 §7.2",
            request: b"GET /h HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "Host empty (no authority)",
            rfc: "9112 §3.2",
            request: b"GET /h HTTP/1.1\r\nHost:\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
    ]
}
