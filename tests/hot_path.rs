//! The hot path allocates nothing per request in steady state: a counting global allocator watches the
//! serving thread while a real client sends keep-alive (and pipelined) requests to the hello app, under
//! the blocking connection loop and under the event loop.
//!
//! This is its own test binary because a global allocator applies to the whole binary. Only the
//! server's allocations are counted: the app library has its own copy of std and allocator.

use rustgun::app::{AppRef, Library};
use rustgun::config::Config;
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
/// The two tests share the counter: they take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKED.with(Cell::get) {
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
        if TRACKED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUEST: &[u8] =
    b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n";

/// Sends `rounds` batches of `pipeline` requests on one connection, reading every response.
fn drive(conn: &mut TcpStream, rounds: usize, pipeline: usize) {
    let batch: Vec<u8> = REQUEST.repeat(pipeline);
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..rounds {
        conn.write_all(&batch).unwrap();
        let mut seen = 0;
        let mut pending = Vec::new();
        while seen < pipeline {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "server closed the connection");
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = find_response_end(&pending) {
                pending.drain(..end);
                seen += 1;
            }
        }
    }
}

/// The end of the first complete `Content-Length: 13` response in `buf`.
fn find_response_end(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", String::from_utf8_lossy(buf));
    (buf.len() >= head_end + 13).then_some(head_end + 13)
}

fn hello() -> (Config, Library) {
    let lib = std::path::Path::new(env!("CARGO_BIN_EXE_rustgun")).with_file_name("libhello.so");
    let app: AppRef = format!("{}:app", lib.display()).parse().unwrap();
    let config = <Config as clap::Parser>::parse_from(["rustgun", &app.to_string()]);
    (config, Library::open(&app).expect("load libhello.so"))
}

/// Warms the connection up, then counts the tracked allocations over 2000 single and 200 pipelined
/// batches of 16 requests.
fn steady_state_allocations(conn: &mut TcpStream) -> u64 {
    drive(conn, 200, 1);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    drive(conn, 2000, 1);
    drive(conn, 200, 16);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// Serves the hello app on a loopback listener with `serve_loop` on a tracked thread, drives one
/// keep-alive connection through it, stops the loop, and returns the steady-state allocation count.
fn allocations_under(serve_loop: impl FnOnce(&Listener, &Context<'_>, &Config) + Send) -> u64 {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (config, lib) = hello();
    let settings = config.settings();
    let listener = Listener::bind(&"127.0.0.1:0".parse::<BindAddr>().unwrap(), 16, false).unwrap();
    let Listener::Tcp(tcp) = &listener else { unreachable!("bound a TCP address") };
    let addr = tcp.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    let (stop_rd, stop_wr) = nix::unistd::pipe().unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let app = lib.start(1, &[], 0).unwrap();
            let ctx = Context::new(&app, &settings, stop_rd.as_fd(), &stop);
            TRACKED.with(|t| t.set(true));
            serve_loop(&listener, &ctx, &config);
            TRACKED.with(|t| t.set(false));
        });
        let mut conn = TcpStream::connect(addr).unwrap();
        let count = steady_state_allocations(&mut conn);
        stop.store(true, Ordering::SeqCst);
        nix::unistd::write(&stop_wr, b"!").unwrap();
        drop(conn);
        count
    })
}

#[test]
fn the_blocking_loop_allocates_nothing_per_request() {
    let count = allocations_under(|listener, ctx, _| {
        let mut bufs = Buffers::default();
        let stream = loop {
            if let Some((stream, _)) = listener.accept().unwrap() {
                break stream;
            }
            std::thread::yield_now();
        };
        serve(stream, &mut bufs, ctx);
    });
    assert_eq!(count, 0, "the blocking loop allocated {count} times over 5200 requests");
}

#[test]
fn the_event_loop_allocates_nothing_per_request() {
    let count = allocations_under(|listener, ctx, config| event::run(1, &[listener], ctx, 0, config));
    assert_eq!(count, 0, "the event loop allocated {count} times over 5200 requests");
}
