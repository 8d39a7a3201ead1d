//! The conformance table: one row per parsing, framing and slow-client rule of RFC 9110/9112 that
//! rustgun claims (docs/http.md), written from the RFC text. Each row is raw request bytes sent over a
//! real socket and what must come back: the echo of what was sent, or the exact status with
//! `Connection: close` and a closed connection, or no response at all. After every row that ends a
//! connection, a good request on a new connection must be served.
//!
//! gunicorn's configurable head limits (414/431) are in `http_errors`.

use crate::support::{Response, Server};
use std::io::Write;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The server (app and flags) a row runs against; rows with the same setup share one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    /// The echo app: its JSON shows the method, target, header fields and body exactly as received.
    Echo,
    /// The chaos app (`/environ?key=`, `/noread`, `/ok`).
    Chaos,
    /// Chaos with `--header-map refuse`.
    Refuse,
    /// Chaos with `--header-map dangerous`.
    Dangerous,
    /// Echo with `--limit-request-body 10`.
    BodyLimit,
    /// Chaos with `--header-timeout 1`.
    HeaderTimeout,
    /// Echo with `--min-rate-period 1`: a body that stops arriving is dropped after a second.
    BodyTimeout,
}

impl Setup {
    fn start(self) -> Server {
        let (app, args): (&str, &[&str]) = match self {
            Setup::Echo => ("echo", &[]),
            Setup::Chaos => ("chaos", &[]),
            Setup::Refuse => ("chaos", &["--header-map", "refuse"]),
            Setup::Dangerous => ("chaos", &["--header-map", "dangerous"]),
            Setup::BodyLimit => ("echo", &["--limit-request-body", "10"]),
            Setup::HeaderTimeout => ("chaos", &["--header-timeout", "1"]),
            Setup::BodyTimeout => ("echo", &["--min-rate-period", "1"]),
        };
        Server::builder(app).args(args).start()
    }
}

/// How the client sends the row's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    /// In one write; the connection stays open.
    Whole,
    /// In one write, then `shutdown(SHUT_WR)`: the client sends nothing more but still reads.
    HalfClose,
    /// In one write, then nothing for longer than the server's timeout (the answer must wait for it).
    Stall,
    /// One byte every 200 ms, slowloris style (the answer must still come after the timeout).
    Trickle,
}

/// What must come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 200 from the echo app, showing the method, target, version and header fields exactly as in the
    /// request bytes, and this decoded body.
    Echo(&'static str),
    /// 200 with this value from the chaos app's `/environ?key=…`, or 404 when the key is absent.
    Environ(Option<&'static str>),
    /// These 200 response bodies, in order, then the server closes the connection.
    Served(&'static [&'static str]),
    /// Exactly one response with this status, `Connection: close` and a one-line body; then the
    /// server closes the connection.
    Refused(u16),
    /// Not a byte back; the server closes the connection.
    Closed,
}

struct Row {
    rule: &'static str,
    /// The RFC section the rule comes from (RFC 9110 or 9112), or the gunicorn option it mirrors.
    rfc: &'static str,
    setup: Setup,
    client: Client,
    request: &'static [u8],
    expect: Expect,
}

/// The defaults rows start from (`..ROW`).
const ROW: Row = Row {
    rule: "",
    rfc: "",
    setup: Setup::Echo,
    client: Client::Whole,
    request: b"",
    expect: Expect::Closed,
};

use Expect::{Closed, Echo, Environ, Refused, Served};

/// POST /noread with an unread Content-Length body of `len` bytes, then a pipelined GET /ok.
fn unread_then_ok(len: usize) -> Vec<u8> {
    let mut req = format!("POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    req.resize(req.len() + len, b'x');
    req.extend_from_slice(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    req
}
static UNREAD_1000: LazyLock<Vec<u8>> = LazyLock::new(|| unread_then_ok(1000));
static UNREAD_2_MIB: LazyLock<Vec<u8>> = LazyLock::new(|| unread_then_ok(2 * 1024 * 1024));

fn rows() -> Vec<Row> {
    vec![
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
            rule: "trailer: Authorization",
            rfc: "9110 §6.5.1",
            request: b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nAuthorization: x\r\n\r\n",
            expect: Refused(400),
            ..ROW
        },
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
            rule: "Expect other than 100-continue",
            rfc: "9110 §10.1.1",
            request: b"POST /f HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx",
            expect: Refused(417),
            ..ROW
        },
        // Header names with `_` (gunicorn's --header-map): `X_Y` and `X-Y` are both HTTP_X_Y.
        Row {
            rule: "underscore name kept in the raw header list",
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
        // Slow clients.
        Row {
            rule: "head not complete within --header-timeout",
            rfc: "9110 §15.5.9",
            setup: Setup::HeaderTimeout,
            client: Client::Stall,
            request: b"GET /ok HTTP/1.1\r\nHost: t\r\n",
            expect: Refused(408),
        },
        Row {
            rule: "slowloris: a head trickled byte by byte still ends at --header-timeout",
            rfc: "9110 §15.5.9",
            setup: Setup::HeaderTimeout,
            client: Client::Trickle,
            request: b"GET /ok HTTP/1.1\r\nHost: t\r\nX-Slow: 0123456789\r\n\r\n",
            expect: Refused(408),
        },
        Row {
            rule: "Content-Length body stalled for a --min-rate-period",
            rfc: "9110 §15.5.9",
            setup: Setup::BodyTimeout,
            client: Client::Stall,
            request: b"POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
            expect: Refused(408),
        },
        Row {
            rule: "chunked body stalled for a --min-rate-period",
            rfc: "9110 §15.5.9",
            setup: Setup::BodyTimeout,
            client: Client::Stall,
            request: b"POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            expect: Refused(408),
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

/// A request every app answers 200, on a new connection: the server lives on after a row.
const GOOD: &[u8] = b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// Sends `request` on a new connection; asserts the answer is exactly one `status` error response
/// with `Connection: close`, followed by the server closing the connection.
pub(crate) fn assert_refused(server: &Server, what: &str, request: &[u8], status: u16) {
    let mut conn = server.conn();
    conn.send(request);
    check_refused(what, &conn.rest(), status);
}

fn check_refused(what: &str, bytes: &[u8], status: u16) {
    let all = Response::parse_exact(bytes);
    assert_eq!(all.len(), 1, "{what}: {:?}", String::from_utf8_lossy(bytes));
    let resp = &all[0];
    assert_eq!(resp.status, status, "{what}: {:?}", String::from_utf8_lossy(bytes));
    assert_eq!(resp.header("connection"), Some("close"), "{what}");
    assert!(resp.text().starts_with(&format!("{status} ")), "{what}: {:?}", resp.text());
}

/// Asserts the server answers `request` on a new connection with a 200.
pub(crate) fn assert_serves(server: &Server, what: &str, request: &[u8]) {
    let resp = Response::parse_one(&server.raw(request)).map(|r| r.0);
    assert_eq!(resp.map(|r| r.status), Some(200), "{what}: the server no longer serves");
}

/// Method, target, version and header fields as a recipient must read them from a well-formed head:
/// leading empty lines skipped, each field split at its first colon, optional whitespace trimmed.
fn as_sent(request: &[u8]) -> (String, String, String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(request);
    let text = text.trim_start_matches("\r\n");
    let head = &text[..text.find("\r\n\r\n").expect("an accepted row has a complete head")];
    let mut lines = head.split("\r\n");
    let line: Vec<&str> = lines.next().unwrap().split(' ').collect();
    let fields = lines
        .map(|l| {
            let (name, value) = l.split_once(':').expect("a field line");
            (name.to_string(), value.trim_matches([' ', '\t']).to_string())
        })
        .collect();
    (line[0].to_string(), line[1].to_string(), line[2].to_string(), fields)
}

fn check_echo(what: &str, request: &[u8], body: &str, resp: &Response) {
    assert_eq!(resp.status, 200, "{what}: {}", resp.text());
    let json: serde_json::Value = serde_json::from_slice(&resp.body).expect("the echo app's JSON");
    let (method, target, version, fields) = as_sent(request);
    assert_eq!(json["method"], method, "{what}");
    assert_eq!(json["target"], target, "{what}");
    assert_eq!(json["version"], version, "{what}");
    let got: Vec<(String, String)> = json["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|pair| (pair[0].as_str().unwrap().to_string(), pair[1].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, fields, "{what}: the header fields as sent");
    assert_eq!(json["body"], body, "{what}");
}

/// Starts writing the row's request the row's way; the connection is read meanwhile.
fn send(stream: &std::net::TcpStream, row: &Row) -> std::thread::JoinHandle<()> {
    let mut writer = stream.try_clone().expect("clone the stream");
    let (request, client) = (row.request, row.client);
    std::thread::spawn(move || {
        // Errors are expected once the server has answered and closed: the reader judges.
        match client {
            Client::Trickle => {
                for byte in request {
                    if writer.write_all(std::slice::from_ref(byte)).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            _ => {
                let _ = writer.write_all(request);
            }
        }
        if client == Client::HalfClose {
            let _ = writer.shutdown(std::net::Shutdown::Write);
        }
    })
}

fn run(server: &Server, row: &Row) {
    let what = format!("{} ({})", row.rule, row.rfc);
    let mut conn = server.conn();
    let started = Instant::now();
    let writer = send(&conn.stream, row);
    match row.expect {
        Echo(body) => check_echo(&what, row.request, body, &conn.response()),
        Environ(value) => {
            let resp = conn.response();
            let seen = (resp.status, resp.text());
            match value {
                Some(v) => assert_eq!(seen, (200, v.to_string()), "{what}"),
                None => assert_eq!(seen, (404, "no such key".to_string()), "{what}"),
            }
        }
        Served(bodies) => {
            let bytes = conn.rest();
            let all = Response::parse_exact(&bytes);
            let seen: Vec<(u16, String)> = all.iter().map(|r| (r.status, r.text())).collect();
            let want: Vec<(u16, String)> = bodies.iter().map(|b| (200, b.to_string())).collect();
            assert_eq!(seen, want, "{what}");
        }
        Refused(status) => check_refused(&what, &conn.rest(), status),
        Closed => conn.assert_closed(),
    }
    if matches!(row.client, Client::Stall | Client::Trickle) {
        // The answer waited for the one-second timeout (give or take the server's clock tick).
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(900), "{what}: answered after {waited:?}");
    }
    writer.join().expect("the writer thread");
    // Closing our end spares a sync worker its linger on this connection.
    drop(conn);
    if matches!(row.expect, Refused(_) | Closed) {
        assert_serves(server, &what, GOOD);
    }
}

fn run_setup(setup: Setup) {
    let rows: Vec<Row> = rows().into_iter().filter(|r| r.setup == setup).collect();
    assert!(!rows.is_empty(), "no rows for {setup:?}");
    let server = setup.start();
    for row in &rows {
        run(&server, row);
    }
}

#[test]
fn conformance_echo() {
    run_setup(Setup::Echo);
}

#[test]
fn conformance_chaos() {
    run_setup(Setup::Chaos);
}

#[test]
fn conformance_header_map_refuse() {
    run_setup(Setup::Refuse);
}

#[test]
fn conformance_header_map_dangerous() {
    run_setup(Setup::Dangerous);
}

#[test]
fn conformance_body_limit() {
    run_setup(Setup::BodyLimit);
}

#[test]
fn conformance_header_timeout() {
    run_setup(Setup::HeaderTimeout);
}

#[test]
fn conformance_body_timeout() {
    run_setup(Setup::BodyTimeout);
}

/// Every row names its rule and its RFC section, and says it once.
#[test]
fn conformance_table_is_well_formed() {
    let rows = rows();
    let mut rules = std::collections::BTreeSet::new();
    for row in &rows {
        assert!(!row.rule.is_empty() && !row.rfc.is_empty(), "a row without its rule or RFC section");
        assert!(rules.insert(row.rule), "two rows for {:?}", row.rule);
        if matches!(row.expect, Echo(_)) {
            assert!(
                matches!(row.setup, Setup::Echo | Setup::BodyLimit),
                "{}: echo rows need the echo app",
                row.rule
            );
        }
    }
    assert!(rows.len() >= 100, "{} rows", rows.len());
}
