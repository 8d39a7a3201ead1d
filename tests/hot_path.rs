//! The hot path allocates nothing per request in steady state. A counting global allocator watches
//! the server while a real client sends keep-alive (and pipelined) requests, for a matrix of cases:
//! the hello app; the environ built (WSGI-style); the access log on; a POST body read by the app; a
//! chunked response; a request of more than 64 header fields — each under the blocking connection
//! loop and under the event loop — and the event loop handing app calls to its pool (`--threads`).
//!
//! This is its own test binary because a global allocator applies to the whole binary. Only the
//! server's allocations are counted: an app library has its own copy of std and allocator.

use rustgun::app::{AppRef, Library};
use rustgun::config::Config;
use rustgun::logging::access::AccessLog;
use rustgun::net::{BindAddr, Listener};
use rustgun::worker::connection::{Buffers, serve};
use rustgun::worker::{Context, event};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Counting is on: every thread but the client's counts (the server's loop and its pool threads).
static COUNTING: AtomicBool = AtomicBool::new(false);
/// The cases share the counter: they take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// This thread is the test's client: its allocations are not the server's.
    static CLIENT: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTING.load(Ordering::Relaxed) && !CLIENT.with(Cell::get)
}

// SAFETY: forwards to the system allocator; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One row of the matrix: an app, the server's options, and the request sent over and over.
struct Case {
    app: &'static str,
    args: &'static [&'static str],
    access_log: bool,
    request: Vec<u8>,
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n").into_bytes()
}

fn hello() -> Case {
    Case { app: "hello", args: &[], access_log: false, request: get("/plaintext") }
}

fn environ() -> Case {
    let request = b"GET /env?a=1&b=two HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\nAccept: */*\r\n\
        X-Request-Id: 42\r\nCookie: session=abc\r\n\r\n"
        .to_vec();
    Case { app: "environ", args: &[], access_log: false, request }
}

fn access_logged() -> Case {
    Case { access_log: true, ..hello() }
}

fn post_body() -> Case {
    let body = "x".repeat(4096);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    Case { app: "chaos", args: &[], access_log: false, request: request.into_bytes() }
}

fn chunked_response() -> Case {
    Case { app: "chaos", args: &[], access_log: false, request: get("/stream?chunks=4") }
}

fn many_fields() -> Case {
    let mut request = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    // 99 fields with Host: gunicorn's default --limit-request-fields is 100.
    for i in 0..98 {
        request.extend_from_slice(format!("X-Field-{i}: value number {i}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    Case { request, ..hello() }
}

fn pooled() -> Case {
    Case { args: &["--threads", "2"], ..hello() }
}

/// Sends `rounds` batches of `pipeline` requests on one connection, reading every response.
fn drive(conn: &mut TcpStream, request: &[u8], rounds: usize, pipeline: usize) {
    let batch: Vec<u8> = request.repeat(pipeline);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::new();
    for _ in 0..rounds {
        conn.write_all(&batch).unwrap();
        let mut seen = 0;
        while seen < pipeline {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "server closed the connection");
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = response_end(&pending) {
                pending.drain(..end);
                seen += 1;
            }
        }
    }
}

/// The end of the first complete 200 response in `buf` (Content-Length or chunked).
fn response_end(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", String::from_utf8_lossy(buf));
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if let Some(len) = head.split("\r\ncontent-length: ").nth(1) {
        let len: usize = len.split("\r\n").next()?.parse().ok()?;
        return (buf.len() >= head_end + len).then_some(head_end + len);
    }
    assert!(head.contains("\r\ntransfer-encoding: chunked\r\n"), "{head}");
    let mut at = head_end;
    loop {
        let line = buf[at..].windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&buf[at..at + line]).ok()?, 16).ok()?;
        at += line + 2 + size + 2;
        if buf.len() < at {
            return None;
        }
        if size == 0 {
            return Some(at);
        }
    }
}

fn server_for(case: &Case) -> (Config, Library) {
    let lib =
        std::path::Path::new(env!("CARGO_BIN_EXE_rustgun")).with_file_name(format!("lib{}.so", case.app));
    let app: AppRef = format!("{}:app", lib.display()).parse().unwrap();
    let argv =
        ["rustgun".to_string(), app.to_string()].into_iter().chain(case.args.iter().map(|a| a.to_string()));
    let config = <Config as clap::Parser>::parse_from(argv);
    let lib = Library::open(&app).unwrap_or_else(|e| panic!("load {app}: {e}"));
    (config, lib)
}

/// Warms the connection up, then counts the server's allocations over 2000 single and 200 pipelined
/// batches of 16 requests.
fn steady_state_allocations(conn: &mut TcpStream, request: &[u8]) -> u64 {
    drive(conn, request, 200, 1);
    drive(conn, request, 20, 16);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    drive(conn, request, 2000, 1);
    drive(conn, request, 200, 16);
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// Which loop serves the case.
#[derive(Clone, Copy, Debug)]
enum Loop {
    Blocking,
    Event,
}

/// Serves `case` on a loopback listener with the loop given, drives one keep-alive connection
/// through it, stops the loop, and returns the steady-state allocation count.
fn allocations(case: Case, serving: Loop) -> u64 {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (config, lib) = server_for(&case);
    let settings = config.settings();
    let access_log =
        case.access_log.then(|| AccessLog::open("/dev/null", &config.access_log_format).unwrap());
    let listener = Listener::bind(&"127.0.0.1:0".parse::<BindAddr>().unwrap(), 16, false).unwrap();
    let Listener::Tcp(tcp) = &listener else { unreachable!("bound a TCP address") };
    let addr = tcp.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    let (stop_rd, stop_wr) = nix::unistd::pipe().unwrap();
    CLIENT.with(|c| c.set(true));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let app = lib.start(1, &[], 0).unwrap();
            let mut ctx = Context::new(&app, &settings, stop_rd.as_fd(), &stop);
            ctx.access_log = access_log.as_ref();
            match serving {
                Loop::Blocking => {
                    let mut bufs = Buffers::default();
                    let stream = loop {
                        if let Some((stream, _)) = listener.accept().unwrap() {
                            break stream;
                        }
                        std::thread::yield_now();
                    };
                    serve(stream, &mut bufs, &ctx);
                }
                Loop::Event => event::run(1, &[&listener], &ctx, 0, &config),
            }
        });
        let mut conn = TcpStream::connect(addr).unwrap();
        let count = steady_state_allocations(&mut conn, &case.request);
        stop.store(true, Ordering::SeqCst);
        nix::unistd::write(&stop_wr, b"!").unwrap();
        drop(conn);
        count
    })
}

/// Asserts that `case` allocates nothing per request under each loop of `loops`.
fn check(name: &str, case: fn() -> Case, loops: &[Loop]) {
    for &serving in loops {
        let count = allocations(case(), serving);
        assert_eq!(count, 0, "{name} under the {serving:?} loop allocated {count} times over 5200 requests");
    }
}

const BOTH: &[Loop] = &[Loop::Blocking, Loop::Event];

#[test]
fn hello_allocates_nothing_per_request() {
    check("hello", hello, BOTH);
}

#[test]
fn building_the_environ_allocates_nothing_per_request() {
    check("the environ", environ, BOTH);
}

#[test]
fn the_access_log_allocates_nothing_per_request() {
    check("the access log", access_logged, BOTH);
}

#[test]
fn a_post_body_allocates_nothing_per_request() {
    check("a POST body", post_body, BOTH);
}

#[test]
fn a_chunked_response_allocates_nothing_per_request() {
    check("a chunked response", chunked_response, BOTH);
}

#[test]
fn more_than_64_header_fields_allocate_nothing_per_request() {
    check("99 header fields", many_fields, BOTH);
}

#[test]
fn the_event_pool_allocates_nothing_per_request() {
    check("the event pool", pooled, &[Loop::Event]);
}
