//! No delay: every block an app writes reaches the client before the app is asked for the next one
//! (PEP 3333: "the server must not delay the transmission of any block"). Each story is a relay: the
//! app produces block N+1 only after the client has received block N and said so (a byte into a
//! named pipe the app reads), so a server that holds blocks back cannot finish the conversation.
//! Pushed (`write`), pulled (`set_body`), a WSGI generator (server-sent events) and WSGI's `write()`,
//! under the suite's worker class, and under the event class's pool.

use crate::procs::TempDir;
use crate::support::{Response, Server, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;

/// Reads from `stream` into `seen` until `needle` has arrived; fails the test after [`WAIT`].
fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &[u8]) {
    let mut chunk = [0u8; 4096];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        match stream.read(&mut chunk) {
            Ok(0) => panic!("closed before {:?}; got {:?}", String::from_utf8_lossy(needle), text(seen)),
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "{:?} did not arrive within {WAIT:?} ({e}): the server held it back; got {:?}",
                String::from_utf8_lossy(needle),
                text(seen)
            ),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the relay at `path` for `blocks` (each the bytes the app writes for block I) on one
/// keep-alive connection and returns the whole response; then checks the connection serves again.
fn relay(server: &Server, path: &str, blocks: &[String], again: &str) -> Response {
    let dir = TempDir::new("relay");
    let fifo = std::ffi::CString::new(dir.arg("acks")).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path this test owns.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
    let mut acks: Option<std::fs::File> = None;
    let mut stream = server.connect();
    let sep = if path.contains('?') { '&' } else { '?' };
    let target = format!("{path}{sep}chunks={}&dir={}", blocks.len(), dir.arg(""));
    stream.write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
    let mut seen = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        read_until(&mut stream, &mut seen, block.as_bytes());
        // The app holds the pipe open for reading by now: this open does not wait.
        let pipe = acks
            .get_or_insert_with(|| std::fs::OpenOptions::new().write(true).open(dir.join("acks")).unwrap());
        pipe.write_all(b"!").unwrap_or_else(|e| panic!("ack {i}: {e}"));
    }
    read_until(&mut stream, &mut seen, b"0\r\n\r\n");
    let (resp, rest) = Response::parse_one(&seen).expect("a complete chunked response");
    assert!(rest.is_empty(), "bytes after the response: {:?}", text(rest));
    assert_eq!(resp.text(), blocks.concat());
    // The stream ended cleanly: the same connection serves the next request.
    stream
        .write_all(format!("GET {again} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut next = Vec::new();
    stream.read_to_end(&mut next).unwrap();
    assert_eq!(Response::parse_one(&next).expect("a second response").0.status, 200, "{}", text(&next));
    resp
}

fn blocks(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("block {i}\n")).collect()
}

#[test]
fn a_pushed_block_reaches_the_client_before_the_app_writes_the_next() {
    let server = Server::start("chaos");
    relay(&server, "/relay", &blocks(4), "/ok");
}

#[test]
fn a_pulled_block_reaches_the_client_before_the_next_is_produced() {
    let server = Server::start("chaos");
    relay(&server, "/relay-pull", &blocks(4), "/ok");
}

#[test]
fn the_event_pool_streams_every_block_at_once() {
    let server = Server::builder("chaos").args(&["-k", "event", "--threads", "2"]).start();
    relay(&server, "/relay", &blocks(3), "/ok");
    relay(&server, "/relay-pull", &blocks(3), "/ok");
}

#[test]
fn a_wsgi_generator_streams_server_sent_events_one_at_a_time() {
    let server = crate::wsgi::wsgi("relay").start();
    let events: Vec<String> = (0..4).map(|i| format!("data: {i}\n\n")).collect();
    let resp = relay(&server, "/generator", &events, "/generator?chunks=0&dir=none");
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
}

#[test]
fn wsgi_write_sends_each_block_at_once() {
    let server = crate::wsgi::wsgi("relay").start();
    relay(&server, "/write", &blocks(3), "/write?chunks=0&dir=none");
}
