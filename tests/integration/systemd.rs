//! systemd: socket activation through Debian's `systemd-socket-activate` (the master adopts the socket
//! it is passed instead of binding `--bind`, and its workers never see `LISTEN_FDS`), and the sd_notify
//! messages — `STATUS=`, `READY=1`, `STOPPING=1` — read from a `NOTIFY_SOCKET` the test binds.

use crate::process_setup::{class_args, getenv_app};
use crate::procs::{Bare, TempDir, lib, poll_for};
use crate::support::{Response, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process started in its own process group with stderr to a file; dropping it kills the group.
struct Launched {
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

impl Launched {
    fn spawn(mut cmd: Command) -> Launched {
        use std::os::unix::process::CommandExt;
        let dir = TempDir::new("launched");
        let log = dir.join("stderr.log");
        let stderr = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Launched { child, log, _dir: dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&self, needle: &str) {
        let found = poll_for(WAIT, || self.log().contains(needle).then_some(()));
        assert!(found.is_some(), "no log line with {needle:?}; log:\n{}", self.log());
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group created for this child.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET target` on a new connection to the loopback `port`.
fn get(port: u16, target: &str) -> Response {
    let mut s = poll_for(WAIT, || TcpStream::connect(("127.0.0.1", port)).ok()).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Response::parse_one(&out).expect("a complete response").0
}

#[test]
fn socket_activation_adopts_the_passed_socket_instead_of_binding() {
    let dir = TempDir::new("activation");
    let app = getenv_app(&dir).display().to_string();
    let port = free_port();
    let mut cmd = Command::new("systemd-socket-activate");
    // `--bind` names a directory that does not exist: binding it would fail, adopting ignores it.
    cmd.args(["-l", &format!("127.0.0.1:{port}"), "--fdname=web", "-E", "GREETING=hi"])
        .arg(env!("CARGO_BIN_EXE_rustgun"))
        .args([&app, "--bind", "unix:/nonexistent/dir/x.sock", "--workers", "2"])
        .args(class_args());
    let activated = Launched::spawn(cmd);
    // systemd-socket-activate listens first and execs rustgun (same pid) on the first connection.
    let resp = get(port, "/GREETING");
    assert_eq!((resp.status, resp.text().as_str()), (200, "hi"), "log:\n{}", activated.log());
    activated.wait_for_log("Adopted fd 3 (web) from systemd socket activation");
    activated.wait_for_log("Ready: 2 workers serving");
    for _ in 0..5 {
        assert_eq!(get(port, "/GREETING").status, 200);
    }
    let log = activated.log();
    assert!(!log.contains("Listening at: unix:"), "--bind was bound after all:\n{log}");
    assert!(!log.contains("[ERROR]"), "{log}");

    // The app (in a worker) does not see systemd's variables: they were meant for the master.
    for var in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        assert_eq!(get(port, &format!("/{var}")).status, 404, "{var} reached the app");
    }
}

/// Reads notifications until one equals `wanted` (every one read is appended to `seen`).
fn read_until(socket: &UnixDatagram, wanted: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m == wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {wanted:?} within {WAIT:?}; got {seen:?}");
        socket.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => seen.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) => panic!("no {wanted:?}: {e}; got {seen:?}"),
        }
    }
}

#[test]
fn sd_notify_reports_status_ready_and_stopping() {
    let dir = TempDir::new("notify");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let notify = path.display().to_string();
    let class = class_args();
    let mut args = vec![lib("chaos"), "--bind".into(), "127.0.0.1:0".into(), "--workers".into(), "2".into()];
    args.extend(class);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Bare::spawn(&args, &[("NOTIFY_SOCKET", &notify)]);

    let mut seen = Vec::new();
    read_until(&socket, "READY=1", &mut seen);
    // READY=1 comes once both workers have booted: a request is served at once.
    let line = server.wait_for_log("Listening at: http://");
    let port: u16 =
        line.rsplit(':').next().and_then(|p| p.split_whitespace().next()).unwrap().parse().unwrap();
    assert_eq!(get(port, "/ok").status, 200);
    assert!(seen.iter().any(|m| m == "STATUS=2 workers"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("READY=1"), "{seen:?}");

    // SAFETY: kill(2) on the server this test started.
    unsafe { libc::kill(server.pid, libc::SIGTTIN) };
    read_until(&socket, "STATUS=3 workers", &mut seen);

    // SAFETY: as above.
    unsafe { libc::kill(server.pid, libc::SIGTERM) };
    read_until(&socket, "STOPPING=1", &mut seen);
    assert_eq!(server.wait_exit(), Some(0));
    assert_eq!(seen.iter().filter(|m| *m == "READY=1").count(), 1, "{seen:?}");
    assert_eq!(seen.iter().filter(|m| *m == "STOPPING=1").count(), 1, "{seen:?}");
}
