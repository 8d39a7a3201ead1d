//! A bounded client load for the operations stories: a few threads, each on its own keep-alive
//! connection, sending `GET` in a loop until told to stop (or a request or time cap is reached), and
//! counting every outcome. A request counts as failed when the connection is refused, the response is
//! not a complete 200, or the connection ends before its complete response — also a *reused* keep-alive
//! connection that the server closed as the request reached it. HTTP clients resend such a request
//! (RFC 9112 §9.3.1), but rustgun never makes them: a stopping worker keeps its idle connections open
//! for a moment and answers what arrives with `Connection: close`. So nothing is resent here.

use crate::support::{Response, WAIT};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the load saw.
#[derive(Debug, Default)]
pub struct Report {
    pub ok: u64,
    pub failed: Vec<String>,
    /// How many responses carried each body.
    pub bodies: BTreeMap<String, u64>,
}

/// A running load; [`Load::stop`] ends it and returns the report.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Report>>,
}

impl Load {
    /// Starts `conns` client threads sending `GET path` to `addr`, each stopping by itself after
    /// `cap` requests or a minute.
    pub fn start(addr: SocketAddr, conns: usize, path: &str, cap: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = (0..conns)
            .map(|_| {
                let (stop, done, path) = (Arc::clone(&stop), Arc::clone(&done), path.to_string());
                std::thread::spawn(move || client(addr, &path, &stop, &done, cap))
            })
            .collect();
        Load { stop, done, threads }
    }

    /// Requests answered so far (all threads).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits (bounded by [`WAIT`]) until `more` further requests have been answered, proving the load
    /// still flows.
    pub fn wait_for_more(&self, more: u64) {
        let target = self.done() + more;
        let deadline = Instant::now() + WAIT;
        while self.done() < target {
            assert!(Instant::now() < deadline, "the load stalled at {} requests", self.done());
            assert!(self.threads.iter().any(|t| !t.is_finished()), "every client thread has ended");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the clients now; their report.
    pub fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        self.finish()
    }

    /// Lets every client reach its request cap; their report.
    pub fn finish(self) -> Report {
        let mut total = Report::default();
        for t in self.threads {
            let r = t.join().expect("a client thread panicked");
            total.ok += r.ok;
            total.failed.extend(r.failed);
            for (body, n) in r.bodies {
                *total.bodies.entry(body).or_default() += n;
            }
        }
        total
    }
}

fn client(addr: SocketAddr, path: &str, stop: &AtomicBool, done: &AtomicU64, cap: u64) -> Report {
    let mut report = Report::default();
    let mut conn: Option<TcpStream> = None;
    let started = Instant::now();
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) && sent < cap && started.elapsed() < Duration::from_secs(60) {
        sent += 1;
        match attempt(&mut conn, addr, path) {
            Ok(resp) => {
                report.ok += 1;
                *report.bodies.entry(resp.text()).or_default() += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(why) => {
                report.failed.push(why);
                conn = None;
            }
        }
    }
    report
}

/// One request on `conn` (connecting first when there is none); the connection is kept when the
/// response allows it.
fn attempt(conn: &mut Option<TcpStream>, addr: SocketAddr, path: &str) -> Result<Response, String> {
    let reused = conn.is_some();
    if conn.is_none() {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
        *conn = Some(s);
    }
    let Some(s) = conn.as_mut() else { unreachable!("connected above") };
    let req = format!("GET {path} HTTP/1.1\r\nHost: load\r\n\r\n");
    let which = if reused { "a kept-alive connection" } else { "a new connection" };
    if let Err(e) = s.write_all(req.as_bytes()) {
        return Err(format!("sending on {which}: {e}"));
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some((resp, rest)) = Response::parse_one(&buf)
            && (resp.header("content-length").is_some() || resp.header("transfer-encoding").is_some())
        {
            if !rest.is_empty() {
                return Err(format!("bytes after the response: {rest:?}"));
            }
            if resp.status != 200 {
                return Err(format!("status {}: {}", resp.status, resp.text()));
            }
            if resp.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                *conn = None;
            }
            return Ok(resp);
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                return Err(format!("{which} closed after {:?}", String::from_utf8_lossy(&buf)));
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("{which}: {e} after {:?}", String::from_utf8_lossy(&buf))),
        }
    }
}
