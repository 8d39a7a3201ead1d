//! `libchaos.so`: the fault-injection and edge-case app the test suites drive.
//!
//! Faults: `/ok`; `/panic` (the handler panics); `/abort` (the process aborts, as a segfaulting C app
//! would); `/sleep?ms=N`; `/loop` (never returns); `/big?bytes=N` (pull-mode body of N bytes with a
//! Content-Length); `/stream?chunks=N&ms=M[&stamp=1]` (slow chunked stream, each chunk
//! stamped with when it was written); `/leak?kb=N` (grows memory);
//! `/echo` (streams the request body back).
//!
//! Edge cases of the ABI: `/status?code=N` (any status, with a body the server must drop for
//! 1xx/204/304), `/short` and `/long` (a body shorter / longer than its Content-Length), `/badheader`
//! (a header value with CR LF), `/replace` (exc_info: the head is replaced before the body), `/error`
//! (the handler fails before responding), `/nostart` (returns without a response), `/pull?chunks=N`
//! (pull-mode body without a length, so chunked), `/noread` (answers without reading the body),
//! `/close` (asks for `Connection: close`), `/hop` (sets hop-by-hop headers the server must drop),
//! `/worker` (which worker and pid served), `/environ?key=K` (one environ value), `/early` (streams
//! `early:` before it reads the body, then echoes it), `/relay?chunks=N&dir=D` and
//! `/relay-pull?chunks=N&dir=D` (pushed / pulled blocks `block I`, each written only once the client
//! has acknowledged the one before by writing a byte into the named pipe `D/acks`: a conversation
//! that a server which delays blocks cannot finish), `/hold?name=X[&ms=M]` (logs `hold X entered`,
//! then blocks until `/release?name=X`, at most M ms, 30 s by default; answers `hold X released` or
//! `hold X timed out`) and `/release?name=X` (releases every hold of X, present and future; answers
//! `released X: N held` with how many were waiting): a conversation that only a server serving the
//! holds and the release at once can finish.
//!
//! Init fails when `fail-init` is among the app arguments (`rustgun libchaos.so -- fail-init`).

use rustgun_sdk::{App, BodySource, Error, Header, InitContext, Request, ResponseWriter};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

struct Chaos {
    worker_id: u32,
}

static TEXT: [Header<'static>; 1] = [Header::new(b"Content-Type", b"text/plain")];

/// N bytes of `x`, produced on demand.
struct Zeros {
    left: u64,
}

impl BodySource for Zeros {
    fn next(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.left.min(buf.len() as u64)) as usize;
        buf[..n].fill(b'x');
        self.left -= n as u64;
        Ok(n)
    }
}

/// The client's acknowledgements of a relay's blocks: one byte each, read from the named pipe
/// `dir/acks`. Opened read-write, so the open never waits for the client and no writer is no end.
struct Acks(std::fs::File);

impl Acks {
    fn open(dir: &str) -> std::io::Result<Acks> {
        let path = std::path::Path::new(dir).join("acks");
        Ok(Acks(std::fs::OpenOptions::new().read(true).write(true).open(path)?))
    }

    /// Waits until the client has acknowledged block `i`.
    fn wait(&mut self, i: u64) -> std::io::Result<()> {
        let mut byte = [0u8; 1];
        match self.0.read(&mut byte)? {
            1 => Ok(()),
            _ => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("no ack for block {i}"))),
        }
    }
}

/// The blocks of `/relay-pull`: block `i` (and the end) is produced once block `i - 1` is acknowledged.
struct Relay {
    acks: Acks,
    next: u64,
    chunks: u64,
}

impl BodySource for Relay {
    fn next(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Every block is acknowledged before the next one, or the end, is given.
        if self.next > 0 {
            self.acks.wait(self.next - 1)?;
        }
        if self.next == self.chunks {
            return Ok(0);
        }
        let block = format!("block {}\n", self.next);
        buf[..block.len()].copy_from_slice(block.as_bytes());
        self.next += 1;
        Ok(block.len())
    }
}

/// A name's holds: how many `/hold` requests wait on it, and whether `/release` came.
#[derive(Default)]
struct Hold {
    waiting: u64,
    released: bool,
}

/// Every name `/hold` or `/release` has seen, in this worker process.
static HOLDS: Mutex<BTreeMap<String, Hold>> = Mutex::new(BTreeMap::new());
/// Signalled by every `/release`.
static RELEASED: Condvar = Condvar::new();

/// Waits until `name` is released, at most `max`; whether it was.
fn hold(name: &str, max: Duration) -> bool {
    let mut holds = HOLDS.lock().unwrap_or_else(PoisonError::into_inner);
    holds.entry(name.to_string()).or_default().waiting += 1;
    // Under the lock: a release that follows this line counts this hold as waiting.
    rustgun_sdk::info!("hold {name} entered");
    let (mut holds, waited) = RELEASED
        .wait_timeout_while(holds, max, |holds| !holds[name].released)
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(hold) = holds.get_mut(name) {
        hold.waiting -= 1;
    }
    !waited.timed_out()
}

/// Releases `name` for good; how many holds were waiting on it.
fn release(name: &str) -> u64 {
    let mut holds = HOLDS.lock().unwrap_or_else(PoisonError::into_inner);
    let hold = holds.entry(name.to_string()).or_default();
    hold.released = true;
    RELEASED.notify_all();
    hold.waiting
}

fn param(req: &Request<'_>, name: &str, default: u64) -> u64 {
    req.query_param(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn text(resp: &mut ResponseWriter<'_>, status: u16, body: &str) -> Result<(), Error> {
    let len = body.len().to_string();
    resp.start_pairs(status, &[("Content-Type", "text/plain"), ("Content-Length", len.as_str())])?;
    resp.write(body.as_bytes())?;
    Ok(())
}

impl App for Chaos {
    fn handle(&self, req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
        match req.path() {
            b"/ok" => text(resp, 200, "ok"),
            b"/panic" => panic!("chaos: /panic asked for it"),
            b"/abort" => std::process::abort(),
            b"/sleep" => {
                let ms = param(req, "ms", 100);
                std::thread::sleep(Duration::from_millis(ms));
                text(resp, 200, &format!("slept {ms}"))
            }
            b"/hold" => {
                let name = req.query_param("name").unwrap_or_default();
                let max = Duration::from_millis(param(req, "ms", 30_000));
                let outcome = if hold(&name, max) { "released" } else { "timed out" };
                text(resp, 200, &format!("hold {name} {outcome}"))
            }
            b"/release" => {
                let name = req.query_param("name").unwrap_or_default();
                let waiting = release(&name);
                text(resp, 200, &format!("released {name}: {waiting} held"))
            }
            b"/loop" => loop {
                std::hint::spin_loop();
            },
            b"/big" => {
                let bytes = param(req, "bytes", 1024);
                resp.start_pairs(
                    200,
                    &[("Content-Type", "application/octet-stream"), ("Content-Length", &bytes.to_string())],
                )?;
                resp.set_body(Zeros { left: bytes })?;
                Ok(())
            }
            b"/stream" => {
                let (chunks, ms) = (param(req, "chunks", 3), param(req, "ms", 0));
                // `stamp=1`: each chunk carries the wall-clock time it was written (µs since the epoch),
                // so a client on the same machine can tell how long each block took to reach it.
                let stamp = param(req, "stamp", 0) == 1;
                resp.start(200, &TEXT)?;
                for i in 0..chunks {
                    if i > 0 && ms > 0 {
                        std::thread::sleep(Duration::from_millis(ms));
                    }
                    let line = if stamp {
                        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                        format!("chunk {i} {}\n", now.map_or(0, |d| d.as_micros()))
                    } else {
                        format!("chunk {i}\n")
                    };
                    resp.write(line.as_bytes())?;
                }
                Ok(())
            }
            b"/relay" => {
                let (chunks, dir) = (param(req, "chunks", 3), req.query_param("dir").unwrap_or_default());
                let mut acks = Acks::open(&dir)?;
                resp.start(200, &TEXT)?;
                for i in 0..chunks {
                    resp.write(format!("block {i}\n").as_bytes())?;
                    acks.wait(i)?;
                }
                Ok(())
            }
            b"/relay-pull" => {
                let (chunks, dir) = (param(req, "chunks", 3), req.query_param("dir").unwrap_or_default());
                let acks = Acks::open(&dir)?;
                resp.start(200, &TEXT)?;
                resp.set_body(Relay { acks, next: 0, chunks })?;
                Ok(())
            }
            b"/leak" => {
                let kb = param(req, "kb", 1024) as usize;
                let leaked: &'static mut [u8] = Box::leak(vec![1u8; kb * 1024].into_boxed_slice());
                text(resp, 200, &format!("leaked {} KiB", leaked.len() / 1024))
            }
            b"/echo" => {
                match req.content_length() {
                    Some(n) if !req.is_chunked() => resp.start_pairs(
                        200,
                        &[("Content-Type", "application/octet-stream"), ("Content-Length", &n.to_string())],
                    )?,
                    _ => resp.start_pairs(200, &[("Content-Type", "application/octet-stream")])?,
                }
                let mut body = req.body();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = body.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    resp.write(&buf[..n])?;
                }
            }
            b"/early" => {
                resp.start(200, &TEXT)?;
                resp.write(b"early:")?;
                let body = req.read_body_to_vec()?;
                resp.write(&body)?;
                Ok(())
            }
            b"/status" => {
                let code = param(req, "code", 200) as u16;
                text(resp, code, &format!("status {code}"))
            }
            b"/short" => {
                resp.start_pairs(200, &[("Content-Length", "10")])?;
                resp.write(b"12345")?;
                Ok(())
            }
            b"/long" => {
                resp.start_pairs(200, &[("Content-Length", "5")])?;
                resp.write(b"1234567890")?;
                Ok(())
            }
            b"/badheader" => {
                resp.start_pairs(200, &[("X-Injected", "a\r\nSet-Cookie: evil=1")])?;
                resp.write(b"must not be seen")?;
                Ok(())
            }
            b"/replace" => {
                resp.start_pairs(200, &[("X-First", "1")])?;
                resp.restart_pairs(503, &[("X-Second", "1"), ("Content-Length", "8")])?;
                resp.write(b"replaced")?;
                Ok(())
            }
            b"/error" => Err(Error::msg("chaos: /error asked for it")),
            b"/nostart" => Ok(()),
            b"/pull" => {
                let chunks = param(req, "chunks", 3);
                resp.start(200, &TEXT)?;
                resp.set_body_iter((0..chunks).map(|i| format!("pull {i}\n").into_bytes()))?;
                Ok(())
            }
            b"/noread" => text(resp, 200, "did not read the body"),
            b"/close" => {
                resp.start_pairs(200, &[("Connection", "close"), ("Content-Length", "5")])?;
                resp.write(b"bye\r\n")?;
                Ok(())
            }
            b"/hop" => {
                resp.start_pairs(
                    200,
                    &[
                        ("Transfer-Encoding", "gzip"),
                        ("Keep-Alive", "timeout=99"),
                        ("Upgrade", "h2c"),
                        ("Server", "chaos"),
                        ("Content-Length", "3"),
                    ],
                )?;
                resp.write(b"hop")?;
                Ok(())
            }
            b"/worker" => text(resp, 200, &format!("worker {} pid {}", self.worker_id, std::process::id())),
            b"/environ" => {
                let key = req.query_param("key").unwrap_or_default();
                let environ = req.environ()?;
                match environ.get(&key) {
                    Some(v) => text(resp, 200, &String::from_utf8_lossy(v)),
                    None => text(resp, 404, "no such key"),
                }
            }
            _ => text(resp, 404, "not found"),
        }
    }
}

fn build(ctx: &InitContext) -> Result<Chaos, String> {
    if ctx.args().iter().any(|a| a == "fail-init") {
        return Err("init refused: fail-init given".to_string());
    }
    Ok(Chaos { worker_id: ctx.worker_id() })
}

rustgun_sdk::export_app!(app, build);
