//! The one helper every integration test uses: [`Server`] starts the real `rustgun` binary with a real
//! app library on an ephemeral port, waits until its workers are ready (by reading its error log, never
//! by sleeping), and kills its whole process group when dropped, failing the test if its error log
//! holds an ERROR or WARNING line the test did not expect. Plus small real-socket clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long any wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The worker class the suite runs under (`sync` unless `RUSTGUN_TEST_WORKER_CLASS` says otherwise).
pub fn worker_class() -> String {
    std::env::var("RUSTGUN_TEST_WORKER_CLASS").unwrap_or_else(|_| "sync".to_string())
}

/// The directory holding the `rustgun` binary and the app libraries.
pub fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_rustgun")).parent().expect("binary dir").to_path_buf()
}

/// The path of an example app library, e.g. `app("hello")` → `.../libhello.so`.
pub fn app(name: &str) -> String {
    let path = artifacts().join(format!("lib{name}.so"));
    assert!(path.exists(), "{} is missing: run `make build` first", path.display());
    path.display().to_string()
}

/// The error log, shared with the thread that reads the server's stderr.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    /// Notified on every line and at the end of the log.
    grew: Condvar,
    /// Every process that held the server's stderr has closed it.
    ended: AtomicBool,
}

/// A running server. Dropping it kills the master and every worker, then fails the test if the
/// error log holds an ERROR or WARNING line that contains none of [`Server::expected`].
pub struct Server {
    child: Option<Child>,
    log: Arc<Log>,
    /// What the test expects among the log's ERROR and WARNING lines: what it waited for in the log,
    /// and what it allowed ([`Builder::allow_log`], [`Server::allow_log`]).
    expected: Mutex<Vec<String>>,
    pub addr: SocketAddr,
    pub pid: i32,
}

/// How to start a server.
pub struct Builder {
    app: String,
    args: Vec<String>,
    app_args: Vec<String>,
    env: Vec<(String, String)>,
    workers: u32,
    bind: Option<String>,
    own_listener: bool,
    allowed: Vec<String>,
}

impl Builder {
    /// Lets the error log hold ERROR and WARNING lines containing `needle`: the story provokes them.
    pub fn allow_log(mut self, needle: &str) -> Builder {
        self.allowed.push(needle.to_string());
        self
    }

    pub fn arg(mut self, a: &str) -> Builder {
        self.args.push(a.to_string());
        self
    }
    pub fn args(mut self, a: &[&str]) -> Builder {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }
    pub fn app_arg(mut self, a: &str) -> Builder {
        self.app_args.push(a.to_string());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Builder {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn workers(mut self, n: u32) -> Builder {
        self.workers = n;
        self
    }
    /// Listen somewhere other than an ephemeral loopback TCP port (e.g. `unix:/tmp/x.sock`).
    pub fn bind(mut self, b: &str) -> Builder {
        self.bind = Some(b.to_string());
        self
    }
    /// Listen where the test's own options say (`--host`/`--port`): no `--bind` is added, and the
    /// address is read from the log.
    pub fn listen_as_args_say(mut self) -> Builder {
        self.own_listener = true;
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
        cmd.arg(&self.app);
        if !self.own_listener {
            cmd.arg("--bind").arg(self.bind.as_deref().unwrap_or("127.0.0.1:0"));
        }
        cmd.arg("--workers").arg(self.workers.to_string()).args(&self.args);
        // Servers run side by side: none takes the shared default control socket unless asked to.
        if !self.args.iter().any(|a| a.starts_with("--control-socket") || a == "--no-control-socket") {
            cmd.arg("--no-control-socket");
        }
        // `RUSTGUN_TEST_WORKER_CLASS=threads|event` runs the whole suite under another worker class.
        if !self.args.iter().any(|a| a == "-k" || a == "--worker-class") {
            let class = worker_class();
            cmd.arg("--worker-class").arg(&class);
            if class == "threads" && !self.args.iter().any(|a| a == "--threads") {
                cmd.args(["--threads", "4"]);
            }
        }
        // Last: everything after `--` goes to the app's init.
        if !self.app_args.is_empty() {
            cmd.arg("--").args(&self.app_args);
        }
        cmd.env_remove("WEB_CONCURRENCY");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the server and waits until every worker reports ready.
    pub fn start(self) -> Server {
        let server = self.spawn();
        server.wait_for_log("Ready:");
        server
    }

    /// Starts the server without waiting for readiness (for boot-failure stories).
    pub fn spawn(self) -> Server {
        use std::os::unix::process::CommandExt;
        let mut cmd = self.command();
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().expect("spawn rustgun");
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lines.lock().unwrap().push(line);
                sink.grew.notify_all();
            }
            let _lines = sink.lines.lock().unwrap();
            sink.ended.store(true, Ordering::SeqCst);
            sink.grew.notify_all();
        });
        let pid = child.id() as i32;
        let expected = Mutex::new(self.allowed);
        let mut server =
            Server { child: Some(child), log, expected, addr: "127.0.0.1:0".parse().unwrap(), pid };
        if self.bind.is_none() {
            let line = server.wait_for_log("Listening at: ");
            if let Some(url) = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()) {
                server.addr = url.parse().expect("listening address");
            }
        }
        server
    }
}

impl Server {
    pub fn builder(app_name: &str) -> Builder {
        Builder {
            app: app(app_name),
            args: Vec::new(),
            app_args: Vec::new(),
            env: Vec::new(),
            workers: 1,
            bind: None,
            own_listener: false,
            allowed: Vec::new(),
        }
    }

    /// A builder for an app library outside the build directory (e.g. one a test compiled).
    pub fn builder_for_path(path: &Path) -> Builder {
        Builder { app: path.display().to_string(), ..Server::builder("hello") }
    }

    /// `Server::builder(app).start()`.
    pub fn start(app_name: &str) -> Server {
        Server::builder(app_name).start()
    }

    /// Scrapes the master's `--metrics-bind` listener (named in its log); each sample's value, by its
    /// name and labels.
    /// `HOST:PORT` of the `--metrics-bind` listener, as the master logged it.
    pub fn metrics_addr(&self) -> String {
        let line = self.wait_for_log("Metrics at: ");
        let url = line.split("Metrics at: ").nth(1).unwrap().trim();
        url.trim_start_matches("http://").trim_end_matches("/metrics").to_string()
    }

    pub fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let mut s = TcpStream::connect(self.metrics_addr()).expect("connect to the metrics listener");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").expect("a response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("text/plain; version=0.0.4"), "{head}");
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_string(), v.parse().unwrap_or_else(|_| panic!("bad sample {l:?}")))
            })
            .collect()
    }

    /// Lets the error log hold ERROR and WARNING lines containing `needle` from here on.
    pub fn allow_log(&self, needle: &str) {
        self.expected.lock().unwrap().push(needle.to_string());
    }

    /// Every error-log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().clone()
    }

    /// Waits until a log line contains `needle`; returns that line. Fails the test after [`WAIT`].
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.try_wait_for_log(needle, WAIT).unwrap_or_else(|| {
            panic!("no log line with {needle:?} within {WAIT:?}; log:\n{}", self.log().join("\n"))
        })
    }

    /// Waits until a log line contains `needle`, at most `timeout`; the line, if one came. A line
    /// waited for is expected: it may be an ERROR or a WARNING.
    pub fn try_wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.allow_log(needle);
        self.wait_for_lines(timeout, |lines| lines.iter().find(|l| l.contains(needle)).cloned())
    }

    /// Waits until `count` log lines contain `needle`.
    pub fn wait_for_log_count(&self, needle: &str, count: usize) {
        self.allow_log(needle);
        let found = self.wait_for_lines(WAIT, |lines| {
            (lines.iter().filter(|l| l.contains(needle)).count() >= count).then_some(())
        });
        assert!(
            found.is_some(),
            "fewer than {count} log lines with {needle:?}; log:\n{}",
            self.log().join("\n")
        );
    }

    fn wait_for_lines<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&[String]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if let Some(found) = check(&lines) {
                return Some(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            lines = self.log.grew.wait_timeout(lines, left.min(Duration::from_millis(100))).unwrap().0;
        }
    }

    /// Waits for the master to exit; returns its exit code (None if killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let child = self.child.as_mut().expect("child");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // The log is whole once the last process of the server's group is gone (a master
                // that upgraded leaves its successor running, still writing to it).
                if !group_alive(self.pid) {
                    self.wait_for_log_end();
                }
                return status.code();
            }
            assert!(Instant::now() < deadline, "server did not exit within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the master.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid we spawned.
        unsafe { libc::kill(self.pid, sig) };
    }

    /// The pids of the master's children (its workers), from /proc.
    pub fn worker_pids(&self) -> Vec<i32> {
        children_of(self.pid)
    }

    /// Waits until the master has exactly `n` live, non-zombie workers; returns their pids.
    pub fn wait_for_workers(&self, n: usize) -> Vec<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            let pids: Vec<i32> = self.worker_pids().into_iter().filter(|p| !is_zombie(*p)).collect();
            if pids.len() == n {
                return pids;
            }
            assert!(Instant::now() < deadline, "expected {n} workers, have {pids:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Opens a connection to the server.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s
    }

    /// Sends `request` on a new connection and reads until the server closes it.
    pub fn raw(&self, request: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// `GET path` with `Connection: close`; returns the parsed response.
    pub fn get(&self, path: &str) -> Response {
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        Response::parse_one(&self.raw(req.as_bytes())).expect("a complete response").0
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Server {
    /// Waits until every process that held the server's stderr has closed it (bounded by [`WAIT`]):
    /// the log is then whole.
    fn wait_for_log_end(&self) {
        let ended = self.wait_for_lines(WAIT, |_| self.log.ended.load(Ordering::SeqCst).then_some(()));
        assert!(ended.is_some(), "the server's stderr is still open {WAIT:?} after it exited");
    }

    /// The log's ERROR and WARNING lines that contain nothing the test expects.
    fn unexpected_log_lines(&self) -> Vec<String> {
        let expected = self.expected.lock().unwrap();
        self.log()
            .into_iter()
            .filter(|l| l.contains("] [ERROR] ") || l.contains("] [WARNING] ") || l.contains("] [CRITICAL] "))
            .filter(|l| !expected.iter().any(|e| l.contains(e.as_str())))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the process group we created for this server.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            let _ = child.wait();
        }
        if std::thread::panicking() {
            return;
        }
        self.wait_for_log_end();
        let unexpected = self.unexpected_log_lines();
        assert!(unexpected.is_empty(), "unexpected lines in the error log:\n{}", unexpected.join("\n"));
    }
}

/// The children of `pid`, from `/proc/*/stat`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Some((_, ppid)) = stat(child)
            && ppid == pid
        {
            kids.push(child);
        }
    }
    kids.sort_unstable();
    kids
}

/// (state, ppid) of a process, from `/proc/PID/stat`.
pub fn stat(pid: i32) -> Option<(char, i32)> {
    let fields = stat_fields(pid)?;
    Some((fields.first()?.chars().next()?, fields.get(1)?.parse().ok()?))
}

/// The fields of `/proc/PID/stat` after the command (state, ppid, pgrp, …: field 3 of proc(5) on).
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(text[text.rfind(')')? + 2..].split_whitespace().map(str::to_string).collect())
}

/// Whether a process of process group `pgid` is alive (not a zombie), from `/proc/*/stat`.
fn group_alive(pgid: i32) -> bool {
    let entries = std::fs::read_dir("/proc").unwrap().flatten();
    entries
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .any(|pid| stat_fields(pid).is_some_and(|f| f.len() > 2 && f[0] != "Z" && f[2].parse() == Ok(pgid)))
}

pub fn is_zombie(pid: i32) -> bool {
    stat(pid).is_some_and(|(state, _)| state == 'Z')
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the first response in `bytes` (Content-Length, chunked, or to the end); returns it and
    /// the bytes after it. `head_request` says the response has no body.
    pub fn parse_one(bytes: &[u8]) -> Option<(Response, &[u8])> {
        Response::parse_one_for(bytes, false)
    }

    pub fn parse_one_for(bytes: &[u8], head_request: bool) -> Option<(Response, &[u8])> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&bytes[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':').map(|(n, v)| (n.to_string(), v.trim().to_string())))
            .collect();
        let mut resp = Response { status, headers, body: Vec::new() };
        let rest = &bytes[end + 4..];
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            return Some((resp, rest));
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().ok()?;
            if rest.len() < len {
                return None;
            }
            resp.body = rest[..len].to_vec();
            return Some((resp, &rest[len..]));
        }
        if resp.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            let mut rest = rest;
            loop {
                let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
                let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?, 16).ok()?;
                rest = &rest[line_end + 2..];
                if size == 0 {
                    let end = rest.windows(2).position(|w| w == b"\r\n")?;
                    return Some((resp, &rest[end + 2..]));
                }
                if rest.len() < size + 2 {
                    return None;
                }
                resp.body.extend_from_slice(&rest[..size]);
                rest = &rest[size + 2..];
            }
        }
        resp.body = rest.to_vec();
        Some((resp, &[]))
    }

    /// Parses every response in `bytes`, in order.
    pub fn parse_all(mut bytes: &[u8]) -> Vec<Response> {
        let mut all = Vec::new();
        while let Some((resp, rest)) = Response::parse_one(bytes) {
            all.push(resp);
            bytes = rest;
        }
        all
    }
}

/// Runs a command, returning (status code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The virtual environment every Python client and app of the tests runs from: `target/pyenv` (or
/// `RUSTGUN_TEST_PYENV`), which `make setup` (run by `make test`) fills with `tests/requirements.txt`.
/// Fails the test with the fix when it is missing or holds other versions.
pub fn pyenv() -> PathBuf {
    const CHECK: &str = r##"
import importlib.metadata as m, sys
wrong = []
for line in open(sys.argv[1]):
    req = line.split("#")[0].strip()
    if req:
        name, _, want = (s.strip() for s in req.partition("=="))
        try:
            have = m.version(name)
        except m.PackageNotFoundError:
            have = "missing"
        if want and have != want:
            wrong.append(f"{name} {have} (wants {want})")
sys.exit(", ".join(wrong) or None)
"##;
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("RUSTGUN_TEST_PYENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/pyenv"));
        let requirements = root.join("tests/requirements.txt");
        match Command::new(dir.join("bin/python")).arg("-c").arg(CHECK).arg(&requirements).output() {
            Ok(out) if out.status.success() => Ok(dir),
            found => Err(format!(
                "the tests need the virtual environment {} with {}: run `make setup` (bash scripts/setup){}",
                dir.display(),
                requirements.display(),
                match found {
                    Ok(out) => format!("; it has {}", String::from_utf8_lossy(&out.stderr).trim()),
                    Err(e) => format!("; {}: {e}", dir.join("bin/python").display()),
                }
            )),
        }
    });
    match checked {
        Ok(dir) => dir.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// Runs a Python snippet with [`pyenv`]'s `python -c`, passing `args`; returns its stdout (asserting
/// success).
pub fn python(code: &str, args: &[&str]) -> String {
    let (status, out, err) = run(Command::new(pyenv().join("bin/python")).arg("-c").arg(code).args(args));
    assert_eq!(status, 0, "python failed:\n{err}");
    out
}

/// A client connection that reads responses one at a time, keeping whatever arrived after them.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Server {
    /// Opens a [`Conn`] to the server.
    pub fn conn(&self) -> Conn {
        Conn { stream: self.connect(), buf: Vec::new(), eof: false }
    }
}

impl Conn {
    /// Writes `bytes` in one write.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one complete response to a request that was not HEAD.
    pub fn response(&mut self) -> Response {
        self.response_for(false)
    }

    /// Reads one complete response: delimited by its framing, or by the end of the connection when it
    /// has none. Fails the test if the connection ends first or nothing arrives within [`WAIT`].
    pub fn response_for(&mut self, head_request: bool) -> Response {
        loop {
            if let Some((resp, rest)) = Response::parse_one_for(&self.buf, head_request) {
                let framed = head_request
                    || resp.status == 204
                    || resp.status == 304
                    || (100..200).contains(&resp.status)
                    || resp.header("content-length").is_some()
                    || resp.header("transfer-encoding").is_some();
                if framed || self.eof {
                    let used = self.buf.len() - rest.len();
                    self.buf.drain(..used);
                    return resp;
                }
            }
            assert!(
                !self.eof,
                "the connection ended before a complete response; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.fill();
        }
    }

    /// Reads until exactly `n` bytes are buffered (or more arrive), then takes the first `n`.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(!self.eof, "the connection ended after {:?}", String::from_utf8_lossy(&self.buf));
            self.fill();
        }
        self.buf.drain(..n).collect()
    }

    /// Reads until the server closes the connection; returns every byte not yet taken. Fails the test
    /// if the connection is still open after [`WAIT`].
    pub fn rest(&mut self) -> Vec<u8> {
        while !self.eof {
            self.fill();
        }
        std::mem::take(&mut self.buf)
    }

    /// Asserts that the server closes the connection without sending anything more.
    pub fn assert_closed(&mut self) {
        let rest = self.rest();
        assert!(rest.is_empty(), "unexpected bytes before the close: {:?}", String::from_utf8_lossy(&rest));
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.eof = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            // A reset after the server closed: the end of the connection all the same.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => self.eof = true,
            Err(e) => panic!(
                "no data and no close within {WAIT:?} ({e}); so far {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }
}

impl Response {
    /// Parses every response in `bytes`, failing the test if any byte is left over.
    pub fn parse_exact(bytes: &[u8]) -> Vec<Response> {
        let mut rest = bytes;
        let mut all = Vec::new();
        while !rest.is_empty() {
            let Some((resp, after)) = Response::parse_one(rest) else {
                panic!("bytes after {} responses: {:?}", all.len(), String::from_utf8_lossy(rest));
            };
            all.push(resp);
            rest = after;
        }
        all
    }
}
