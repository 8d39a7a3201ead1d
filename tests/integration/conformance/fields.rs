//! Rows for header fields: the syntax of a field line, name and value (RFC 9112 §5, RFC 9110 §5),
//! bare CR and LF (RFC 9112 §2.2), Expect (RFC 9110 §10.1.1), and names with `_`, which gunicorn's
//! `--header-map` decides on.

use super::Expect::{Echo, Environ, Refused};
use super::{ROW, Row, Setup};

pub(super) fn rows() -> Vec<Row> {
    vec![
        // Field syntax (RFC 9112 §5, RFC 9110 §5.5).
        Row {
            rule: "field value: optional whitespace around it is not part of it",
            rfc: "9112 §5.1",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A:  \tvalue with  spaces\t \r\nX-B:\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "field value: obs-text",
            rfc: "9110 §5.5",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A: caf\xc3\xa9\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "whitespace between field name and colon",
            rfc: "9112 §5.1",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A : v\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "whitespace (HTAB) between field name and colon",
            rfc: "9112 §5.1",
            request: b"GET /f HTTP/1.1\r\nHost\t: t\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "obs-fold",
            rfc: "9112 §5.2",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field value: NUL",
            rfc: "9110 §5.5",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field value: a control byte",
            rfc: "9110 §5.5",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field value: DEL",
            rfc: "9110 §5.5",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A: a\x7fb\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field value: a bare CR",
            rfc: "9112 §2.2, 9110 §5.5",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field value: a bare LF",
            rfc: "9112 §2.2",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX-A: a\nX-B: b\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field name: NUL",
            rfc: "9110 §5.1",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX\x00A: v\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field name: a control byte",
            rfc: "9110 §5.1",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX\x01A: v\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field name: a bare CR",
            rfc: "9110 §5.1, 9112 §2.2",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX\rA: v\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field name: a bare LF",
            rfc: "9110 §5.1, 9112 §2.2",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX\nA: v\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field name: not a token",
            rfc: "9110 §5.1",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\nX(A): v\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "field name: empty",
            rfc: "9110 §5.1",
            request: b"GET /f HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "lines ending in a bare LF",
            rfc: "9112 §2.2",
            request: b"GET /f HTTP/1.1\nHost: t\n\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "two Content-Type fields",
            rfc: "9110 §5.3, §8.3; gunicorn",
            request: b"POST /f HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 1\r\n\r\nx",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "Expect other than 100-continue",
            rfc: "9110 §10.1.1",
            request: b"POST /f HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx",
            expect: Refused(417),
            ..ROW
        },
        // Header names with `_` (gunicorn's --header-map): `X_Y` and `X-Y` are both HTTP_X_Y.
        Row {
            rule: "underscore name dropped from the raw header list too (default)",
            rfc: "--header-map drop",
            request: b"GET /u HTTP/1.1\r\nHost: t\r\nX_Y: v\r\n\r\n",
            expect: Echo(""),
            ..ROW
        },
        Row {
            rule: "underscore name dropped from the environ (default)",
            rfc: "--header-map drop",
            setup: Setup::Chaos,
            request: b"GET /environ?key=HTTP_X_Y HTTP/1.1\r\nHost: t\r\nX_Y: v\r\n\r\n",
            expect: Environ(None),
            ..ROW
        },
        Row {
            rule: "hyphen name in the environ (default)",
            rfc: "--header-map drop",
            setup: Setup::Chaos,
            request: b"GET /environ?key=HTTP_X_Y HTTP/1.1\r\nHost: t\r\nX-Y: v\r\n\r\n",
            expect: Environ(Some("v")),
            ..ROW
        },
        Row {
            rule: "underscore name cannot pose as the hyphen one (default)",
            rfc: "--header-map drop",
            setup: Setup::Chaos,
            request: b"GET /environ?key=HTTP_X_Y HTTP/1.1\r\nHost: t\r\nX_Y: forged\r\nX-Y: real\r\n\r\n",
            expect: Environ(Some("real")),
            ..ROW
        },
        Row {
            rule: "underscore name refused",
            rfc: "--header-map refuse",
            setup: Setup::Refuse,
            request: b"GET /environ?key=HTTP_X_Y HTTP/1.1\r\nHost: t\r\nX_Y: v\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
        Row {
            rule: "hyphen name served under refuse",
            rfc: "--header-map refuse",
            setup: Setup::Refuse,
            request: b"GET /environ?key=HTTP_X_Y HTTP/1.1\r\nHost: t\r\nX-Y: v\r\n\r\n",
            expect: Environ(Some("v")),
            ..ROW
        },
        Row {
            rule: "underscore name in the environ",
            rfc: "--header-map dangerous",
            setup: Setup::Dangerous,
            request: b"GET /environ?key=HTTP_X_Y HTTP/1.1\r\nHost: t\r\nX_Y: v\r\n\r\n",
            expect: Environ(Some("v")),
            ..ROW
        },
    ]
}
