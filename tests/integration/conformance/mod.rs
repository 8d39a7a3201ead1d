//! The conformance table: one row per parsing, framing and slow-client rule of RFC 9110/9112 that
//! rustgun claims (docs/http.md), written from the RFC text. Each row is raw request bytes sent over a
//! real socket and what must come back: the echo of what was sent, or the exact status with
//! `Connection: close` and a closed connection, or no response at all. After every row that ends a
//! connection, a good request on a new connection must be served.
//!
//! This file is the runner: the row type, how a row is sent and judged, and the tests. The rows
//! live by theme in the files beside it. Every row whose verdict does not depend on the clock is
//! run again cut at pseudo-random points and again byte by byte, each piece written once the server
//! has read the ones before: where the server's reads end must not change what comes back. The timed rows keep their own
//! client, and their answer must come once the server's timeout has passed and within a bound of it.
//!
//! gunicorn's configurable head limits (414/431) are in `http_errors`.

mod chunked;
mod cut;
mod fields;
mod framing;
mod half_close;
mod peer;
mod request_line;
mod timeouts;

use crate::support::{Response, Server, WAIT};
use cut::Cut;
use peer::PeerQueue;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The timeout of the setups that set one (`--header-timeout`, `--min-rate-period`).
const TIMEOUT: Duration = Duration::from_secs(1);

/// How late after [`TIMEOUT`] a timed row's answer may still come: the server's clock tick (250 ms
/// for the event loop) and a loaded machine, with room to spare. Later is a server that forgot it.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(2);

/// The pause between two bytes of the [`Client::Trickle`] client.
const TRICKLE: Duration = Duration::from_millis(200);

/// How many random cuts each untimed row is replayed with.
const ROUNDS: u64 = 3;

/// The longest request replayed byte by byte. A byte per write costs a server read, a parse and a
/// wait for both: the 2 MiB unread-body row would take minutes, so rows over this are only cut at
/// random points (a few more writes, which cost it nothing).
const BYTE_BY_BYTE_MAX: usize = 4 * 1024;

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
    /// Chaos with `--header-timeout` [`TIMEOUT`].
    HeaderTimeout,
    /// Echo with `--min-rate-period` [`TIMEOUT`]: a body that stops arriving is dropped after it.
    BodyTimeout,
}

impl Setup {
    fn start(self) -> Server {
        let timeout = TIMEOUT.as_secs().to_string();
        let (app, args): (&str, Vec<&str>) = match self {
            Setup::Echo => ("echo", vec![]),
            Setup::Chaos => ("chaos", vec![]),
            Setup::Refuse => ("chaos", vec!["--header-map", "refuse"]),
            Setup::Dangerous => ("chaos", vec!["--header-map", "dangerous"]),
            Setup::BodyLimit => ("echo", vec!["--limit-request-body", "10"]),
            Setup::HeaderTimeout => ("chaos", vec!["--header-timeout", &timeout]),
            Setup::BodyTimeout => ("echo", vec!["--min-rate-period", &timeout]),
        };
        // Refusals are logged as warnings; a body that turns out malformed fails the app reading it.
        let expected = ["Invalid request from", "reading the request body failed", "app failed with status"];
        expected.iter().fold(Server::builder(app).args(&args), |b, line| b.allow_log(line)).start()
    }
}

/// How the client sends the row's bytes: in one write unless the run cuts them (a replay does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    /// All of them; the connection stays open.
    Whole,
    /// All of them, then `shutdown(SHUT_WR)`: the client sends nothing more but still reads.
    HalfClose,
    /// All of them, then nothing for longer than the server's timeout (the answer must wait for it).
    Stall,
    /// One byte every [`TRICKLE`], slowloris style (the answer must still come after the timeout).
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

impl Row {
    /// Whether the verdict depends on the clock: the client outwaits the server's timeout.
    fn timed(&self) -> bool {
        matches!(self.client, Client::Stall | Client::Trickle)
    }

    /// How the row's own client cuts its bytes: the trickle one by one, the others not at all.
    fn own_cut(&self) -> Cut {
        if self.client == Client::Trickle { Cut::EveryByte } else { Cut::Whole }
    }
}

/// Every row, theme by theme.
fn rows() -> Vec<Row> {
    [
        request_line::rows(),
        fields::rows(),
        framing::rows(),
        chunked::rows(),
        half_close::rows(),
        timeouts::rows(),
    ]
    .into_iter()
    .flatten()
    .collect()
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
    // The echo rows run under `--header-map drop`: a name with `_` never reaches the app.
    let fields = lines
        .map(|l| {
            let (name, value) = l.split_once(':').expect("a field line");
            (name.to_string(), value.trim_matches([' ', '\t']).to_string())
        })
        .filter(|(name, _)| !name.contains('_'))
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

/// Starts writing the row's request on `stream` the row's client's way, cut as `cut` says; the
/// connection is read meanwhile.
fn send(stream: &TcpStream, row: &Row, cut: &Cut) -> JoinHandle<()> {
    let mut writer = stream.try_clone().expect("clone the stream");
    writer.set_nodelay(true).expect("TCP_NODELAY");
    let server = PeerQueue::of(stream);
    let (pieces, client) = (cut.pieces(row.request), row.client);
    std::thread::spawn(move || {
        // Errors are expected once the server has answered and closed: the reader judges.
        for (i, piece) in pieces.into_iter().enumerate() {
            if i > 0 {
                // What went before has been read: this piece comes to the server in reads of its own.
                server.wait_until_read();
                if client == Client::Trickle {
                    std::thread::sleep(TRICKLE);
                }
            }
            if writer.write_all(piece).is_err() {
                return;
            }
        }
        if client == Client::HalfClose {
            let _ = writer.shutdown(std::net::Shutdown::Write);
        }
    })
}

/// Names the row and its cut when a test fails inside a helper that cannot (a read that timed out).
struct Running<'a>(&'a str);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("while running: {}", self.0);
        }
    }
}

/// Sends the row, cut as `cut` says, on a new connection and asserts what comes back.
fn run(server: &Server, row: &Row, cut: &Cut) {
    let what = format!("{} ({}), {cut}", row.rule, row.rfc);
    let _running = Running(&what);
    let mut conn = server.conn();
    let started = Instant::now();
    let writer = send(&conn.stream, row, cut);
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
        Closed => {
            let bytes = conn.rest();
            assert!(
                bytes.is_empty(),
                "{what}: bytes before the close: {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
    if row.timed() {
        // The answer waited for the timeout (give or take the server's clock tick), and no longer
        // than a margin past it.
        let waited = started.elapsed();
        let within = TIMEOUT - Duration::from_millis(100)..TIMEOUT + TIMEOUT_MARGIN;
        assert!(within.contains(&waited), "{what}: answered after {waited:?}, not within {within:?}");
    }
    writer.join().expect("the writer thread");
    // Closing our end spares a sync worker its linger on this connection.
    drop(conn);
    if matches!(row.expect, Refused(_) | Closed) {
        assert_serves(server, &what, GOOD);
    }
}

/// Runs each row of `setup` its own way against one server.
fn run_setup(setup: Setup) {
    let rows: Vec<Row> = rows().into_iter().filter(|r| r.setup == setup).collect();
    assert!(!rows.is_empty(), "no rows for {setup:?}");
    let server = setup.start();
    for row in &rows {
        run(&server, row, &row.own_cut());
    }
}

/// Runs every untimed row again, once per cut that `cuts` gives it, against its setup's server.
/// Returns how many runs that made.
fn replay(cuts: impl Fn(&Row) -> Vec<Cut>) -> usize {
    let rows: Vec<Row> = rows().into_iter().filter(|row| !row.timed()).collect();
    let runs: Vec<(&Row, Cut)> =
        rows.iter().flat_map(|row| cuts(row).into_iter().map(move |cut| (row, cut))).collect();
    let mut setups: Vec<Setup> = Vec::new();
    for (row, _) in &runs {
        if !setups.contains(&row.setup) {
            setups.push(row.setup);
        }
    }
    for setup in setups {
        let server = setup.start();
        for (row, cut) in runs.iter().filter(|(row, _)| row.setup == setup) {
            run(&server, row, cut);
        }
    }
    runs.len()
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

/// Every untimed row, its bytes cut at [`cut::CUTS`] pseudo-random points into separate writes,
/// in [`ROUNDS`] different ways: each time, exactly the row's answer.
#[test]
fn conformance_rows_cut_at_random_points() {
    let runs = replay(|row| (0..ROUNDS).map(|round| Cut::random(row, round)).collect());
    assert!(runs >= 100 * ROUNDS as usize, "only {runs} runs");
}

/// Every untimed row up to [`BYTE_BY_BYTE_MAX`], one write per byte: exactly the row's answer.
#[test]
fn conformance_rows_sent_byte_by_byte() {
    let small = |row: &Row| row.request.len() <= BYTE_BY_BYTE_MAX;
    let runs = replay(|row| if small(row) { vec![Cut::EveryByte] } else { vec![] });
    assert!(runs >= 100, "only {runs} runs");
}

/// The writer's wait sees the bytes its peer has not read, and sees them go once it has: else the
/// pieces of a cut row could reach the server in one read, and a replay would prove nothing.
#[test]
fn conformance_writes_wait_on_what_the_peer_has_not_read() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (mut peer, _) = listener.accept().expect("accept");
    let queue = PeerQueue::of(&client);
    assert_eq!(queue.unread(), Some(0));
    client.write_all(b"hello").unwrap();
    let deadline = Instant::now() + WAIT;
    while queue.unread() != Some(5) && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(queue.unread(), Some(5), "the five bytes the peer has not read");
    peer.read_exact(&mut [0; 5]).unwrap();
    assert_eq!(queue.unread(), Some(0), "once the peer has read them");
}

/// Every row names its rule and its RFC section, and says it once; a row's setup serves what it
/// expects.
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
        if row.timed() {
            assert!(
                matches!(row.setup, Setup::HeaderTimeout | Setup::BodyTimeout),
                "{}: timed rows need a server with a timeout",
                row.rule
            );
        }
    }
    assert!(rows.len() >= 100, "{} rows", rows.len());
}
