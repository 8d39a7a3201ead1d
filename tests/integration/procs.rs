//! Small helpers for the process-level stories (`workers`, `shutdown`, `boot`, `logs`): a temp dir, a
//! bare launcher for command lines [`crate::support::Builder`] cannot express (no `--workers`, an app
//! path that does not exist), `/proc` probes, a unix-socket client and a bounded polling loop.

use crate::support::{Response, WAIT, artifacts};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A fresh directory under the system temp dir, removed on drop unless the test failed.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rg-{tag}-{}-{seq}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `path` as a `&str` argument.
    pub fn arg(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `bound`; `None` if it never did. For what no
/// event announces (a file's contents, `/proc`, the kernel's counters): it asks again after 10 µs,
/// then less often, up to every 10 ms, so a quick answer is seen at once and a slow one does not
/// starve the process it waits on of the CPU.
pub fn poll_for<T>(bound: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + bound;
    let mut pause = Duration::from_micros(10);
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// `rustgun` started from an explicit command line, its error log going to a file. Dropping it kills
/// its whole process group.
pub struct Bare {
    child: Child,
    pub pid: i32,
    log: PathBuf,
    _dir: TempDir,
}

impl Bare {
    /// Starts `rustgun ARGS…` with `WEB_CONCURRENCY` removed, then `env` applied.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Bare {
        Bare::spawn_in(Command::new(env!("CARGO_BIN_EXE_rustgun")), args, env)
    }

    /// [`Bare::spawn`] with another program (an installed `rustgun`) or working directory, as `cmd`
    /// says; `VIRTUAL_ENV` is removed too, so the program finds its environment by itself.
    pub fn spawn_in(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Bare {
        use std::os::unix::process::CommandExt;
        let dir = TempDir::new("bare");
        let log = dir.join("stderr.log");
        cmd.args(args).env_remove("WEB_CONCURRENCY").env_remove("VIRTUAL_ENV");
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Its stdout goes to the same file (one open file, one offset): an access log on `-` is read
        // with the error log.
        let stderr = std::fs::File::create(&log).expect("create the stderr file");
        let stdout = stderr.try_clone().expect("share the stderr file");
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr).process_group(0);
        let child = cmd.spawn().expect("spawn rustgun");
        let pid = child.id() as i32;
        Bare { child, pid, log, _dir: dir }
    }

    /// Runs `rustgun ARGS…` to its end (bounded by [`WAIT`]); returns the exit code and its stderr.
    pub fn run(args: &[&str]) -> (i32, Vec<String>) {
        let mut bare = Bare::spawn(args, &[]);
        let code = bare.wait_exit();
        (code.expect("rustgun was killed by a signal"), bare.log())
    }

    /// Every line written to stderr so far.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Waits (bounded by [`WAIT`]) for a stderr line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        poll_for(WAIT, || self.log().into_iter().find(|l| l.contains(needle))).unwrap_or_else(|| {
            panic!("no log line with {needle:?} within {WAIT:?}; log:\n{}", self.log().join("\n"))
        })
    }

    /// Waits (bounded by [`WAIT`]) until the server is listening on TCP and ready; its address.
    pub fn wait_ready(&self) -> std::net::SocketAddr {
        let line = self.wait_for_log("Listening at: http://");
        let addr = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_default();
        let addr = addr.parse().unwrap_or_else(|_| panic!("no address in {line:?}"));
        self.wait_for_log("Ready:");
        addr
    }

    /// Waits (bounded by [`WAIT`]) for the process to exit; its exit code, None if signalled.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let status = poll_for(WAIT, || self.child.try_wait().unwrap()).unwrap_or_else(|| {
            panic!("rustgun did not exit within {WAIT:?}; log:\n{}", self.log().join("\n"))
        });
        status.code()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group we created for this server.
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The path of the `rustgun` binary's sibling `name` (an app library), as an argument.
pub fn lib(name: &str) -> String {
    artifacts().join(format!("lib{name}.so")).display().to_string()
}

/// Live (non-zombie) children of `pid`.
pub fn live_children(pid: i32) -> Vec<i32> {
    crate::support::children_of(pid).into_iter().filter(|p| !crate::support::is_zombie(*p)).collect()
}

/// Zombie children of `pid`: exited but not reaped.
pub fn zombie_children(pid: i32) -> Vec<i32> {
    crate::support::children_of(pid).into_iter().filter(|p| crate::support::is_zombie(*p)).collect()
}

/// Whether `pid` still exists as a child of `parent` (a recycled pid elsewhere does not count).
pub fn is_child_of(pid: i32, parent: i32) -> bool {
    crate::support::stat(pid).is_some_and(|(_, ppid)| ppid == parent)
}

/// The process group of `pid`, from `/proc/PID/stat`; None once it is gone.
pub fn pgrp_of(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command: state, ppid, pgrp, …
    text[text.rfind(')')? + 2..].split_whitespace().nth(2)?.parse().ok()
}

/// Every process whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&pid| pgrp_of(pid) == Some(pgid))
        .collect()
}

/// How many distinct sockets `pid` holds open (a worker holds one per listener, plus one per
/// connection); two descriptors of one socket count once.
pub fn sockets_of(pid: i32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    let sockets: std::collections::HashSet<String> = dir
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .filter(|t| t.starts_with("socket:"))
        .collect();
    sockets.len()
}

/// Waits (bounded by [`WAIT`]) until one of `workers` holds more sockets than its listeners, i.e.
/// has accepted a connection; returns that worker's pid.
pub fn wait_for_accepted(workers: &[i32], listeners: usize) -> i32 {
    poll_for(WAIT, || workers.iter().copied().find(|&w| sockets_of(w) > listeners))
        .unwrap_or_else(|| panic!("no worker of {workers:?} accepted the connection within {WAIT:?}"))
}

/// `GET target` with `Connection: close` over the unix socket at `path`; None if it cannot connect
/// or gets no complete response.
pub fn unix_get(path: &Path, target: &str) -> Option<Response> {
    let s = UnixStream::connect(path).ok()?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    get_and_close(s, target)
}

/// `GET target` with `Connection: close` over TCP to `addr`; None if the connection is refused or no
/// complete response comes.
pub fn tcp_get(addr: std::net::SocketAddr, target: &str) -> Option<Response> {
    let s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    get_and_close(s, target)
}

fn get_and_close(mut s: impl Read + Write, target: &str) -> Option<Response> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Response::parse_one(&out).map(|(r, _)| r)
}

/// Lines of `lines` whose level tag is `[ERROR]`.
pub fn error_lines(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.contains("] [ERROR] [")).collect()
}

/// Compiles the C app `source` against `include/rustgun.h` into `dir/lib{name}.so` (warnings are
/// errors), with `$CC` or `cc`.
pub fn build_c_app(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let src = dir.join(&format!("{name}.c"));
    let out = dir.join(&format!("lib{name}.so"));
    std::fs::write(&src, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let built = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cc}`: {e}"));
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    out
}

/// Runs the server with `args` and `env`, which must halt it at boot the way an app that cannot start
/// does: exit code 4 and exactly one ERROR line. The log and that line.
pub fn app_boot_failure(args: &[&str], env: &[(&str, &str)]) -> (Vec<String>, String) {
    let mut bare = Bare::spawn(args, env);
    let code = bare.wait_exit();
    let log = bare.log();
    let all = log.join("\n");
    assert_eq!(code, Some(4), "exit code; log:\n{all}");
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "exactly one ERROR line; log:\n{all}");
    let error = errors[0].clone();
    (log, error)
}

/// Datagrams a test's socket receives (`recv`, with a read timeout), as text, until one satisfies
/// `done`; they all, that one last. Fails the test when the timeout passes first.
pub fn datagrams_until(
    recv: &dyn Fn(&mut [u8]) -> std::io::Result<usize>,
    done: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = recv(&mut buf).unwrap_or_else(|e| panic!("no more datagrams ({e}) after {seen:#?}"));
        let packet = String::from_utf8_lossy(&buf[..n]).into_owned();
        let last = done(&packet);
        seen.push(packet);
        if last {
            return seen;
        }
    }
}
