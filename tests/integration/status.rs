//! The control socket and the status views: `rustgun status` shows a live server's workers (their
//! real pids) and a request in flight; `rustgun ctl ttin|ttou|reload|stop` act as the signals do; a
//! live server's socket is never taken while a dead one's is replaced, with the default path the
//! second server runs without one, a binary upgrade hands it over; the `/status` page, rendered
//! by headless Chromium, lists the live workers and, while it stays open, follows a TTIN to the new
//! one.

use crate::procs::{TempDir, poll_for};
use crate::support::{Server, WAIT, run};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `rustgun ARGS… --control-socket PATH`: (exit status, stdout, stderr).
fn client(path: &Path, args: &[&str]) -> (i32, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_rustgun")).args(args).arg("--control-socket").arg(path))
}

/// `rustgun status`'s rows: pid → the row's cells (pid, worker, state, requests, in flight, rss,
/// uptime, lag, request…).
fn status(path: &Path) -> Vec<(i32, Vec<String>)> {
    status_of(client(path, &["status"]))
}

/// The rows of `rustgun status`'s (exit status, stdout, stderr).
fn status_of((code, out, err): (i32, String, String)) -> Vec<(i32, Vec<String>)> {
    assert_eq!(code, 0, "rustgun status failed: {err}");
    let mut lines = out.lines();
    assert!(lines.next().is_some_and(|l| l.starts_with("master ")), "{out}");
    assert!(lines.next().is_some_and(|l| l.starts_with("PID ")), "{out}");
    lines
        .map(|l| {
            let cells: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            (cells[0].parse().unwrap_or_else(|_| panic!("a row: {l:?}")), cells)
        })
        .collect()
}

fn pids(rows: &[(i32, Vec<String>)]) -> Vec<i32> {
    let mut pids: Vec<i32> = rows.iter().map(|(p, _)| *p).collect();
    pids.sort_unstable();
    pids
}

/// The master's pid, as the first line of `rustgun status` names it.
fn master(path: &Path) -> i32 {
    let (code, out, err) = client(path, &["status"]);
    assert_eq!(code, 0, "{err}");
    out.strip_prefix("master ")
        .and_then(|s| s.split(',').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{out}"))
}

/// Waits until `rustgun status` shows `n` workers, every one idle; their pids.
fn wait_for_idle(path: &Path, n: usize) -> Vec<i32> {
    let found = poll_for(WAIT, || {
        let rows = status(path);
        (rows.len() == n && rows.iter().all(|(_, c)| c[2] == "idle")).then(|| pids(&rows))
    });
    found.unwrap_or_else(|| panic!("not {n} idle workers within {WAIT:?}: {:?}", status(path)))
}

#[test]
fn status_shows_the_real_workers_and_the_request_in_flight() {
    let dir = TempDir::new("inflight");
    let path = dir.join("rustgun.ctl");
    let server =
        Server::builder("chaos").workers(2).args(&["--control-socket", path.to_str().unwrap()]).start();
    server.wait_for_log("Control socket at: ");
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "--control-socket-mode's default");
    let workers = server.wait_for_workers(2);
    assert_eq!(wait_for_idle(&path, 2), workers, "the rows are the master's live children");

    let mut held = server.connect();
    held.write_all(b"GET /hold?name=status HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let entered = server.wait_for_log("hold status entered");
    let rows = status(&path);
    let (pid, busy) = rows.iter().find(|(_, c)| c[2] == "busy").expect("a busy worker");
    assert!(entered.contains(&format!("[{pid}]")), "the busy row is the worker holding: {entered}");
    assert_eq!(busy[4], "1", "one request in flight: {busy:?}");
    assert_eq!(&busy[8..10], ["GET", "/hold?name=status"], "its request line: {busy:?}");
    assert!(busy.last().unwrap().ends_with("s)"), "and its age: {busy:?}");
    assert!(busy[5].ends_with('M') || busy[5].ends_with('K'), "an RSS: {busy:?}");

    let (code, json, _) = client(&path, &["status", "--json"]);
    assert_eq!(code, 0);
    assert!(json.contains(r#""line":"GET /hold?name=status HTTP/1.1""#), "{json}");
    assert!(json.contains(&format!(r#""pid":{pid},"#)), "{json}");
}

#[test]
fn ctl_ttin_ttou_reload_and_stop_do_what_their_signals_do() {
    let dir = TempDir::new("ctl");
    let path = dir.join("rustgun.ctl");
    let mut server =
        Server::builder("hello").workers(1).args(&["--control-socket", path.to_str().unwrap()]).start();
    let first = wait_for_idle(&path, 1);

    let (code, out, err) = client(&path, &["ctl", "ttin"]);
    assert_eq!((code, out.as_str()), (0, "ttin: workers: 2\n"), "{err}");
    server.wait_for_log("Handling signal: SIGTTIN; workers: 2");
    let two = wait_for_idle(&path, 2);
    assert!(two.contains(&first[0]), "{two:?}");
    assert_eq!(two, server.wait_for_workers(2));

    assert_eq!(client(&path, &["ctl", "ttou"]).0, 0);
    server.wait_for_log("Handling signal: SIGTTOU; workers: 1");
    let gone = two.iter().find(|p| **p != first[0]).unwrap();
    server.wait_for_log(&format!("(pid: {gone}) exited"));
    assert_eq!(wait_for_idle(&path, 1), first, "the oldest worker is kept");

    assert_eq!(client(&path, &["ctl", "reload"]).0, 0);
    server.wait_for_log("Reloaded: 1 workers of generation 1 serving");
    server.wait_for_log(&format!("(pid: {}) exited", first[0]));
    let reloaded = wait_for_idle(&path, 1);
    assert_ne!(reloaded, first, "a reload replaces the workers");
    assert_eq!(server.get("/").status, 200);

    let (code, out, _) = client(&path, &["ctl", "stop"]);
    assert_eq!((code, out.as_str()), (0, "stop: workers: 1\n"));
    assert_eq!(server.wait_exit(), Some(0), "a graceful stop");
    assert!(!path.exists(), "the socket file goes with the server");
}

#[test]
fn a_live_servers_socket_is_refused_a_dead_ones_replaced_and_bad_or_silent_clients_answered() {
    let dir = TempDir::new("taken");
    let path = dir.join("rustgun.ctl");
    let socket = ["--control-socket", path.to_str().unwrap()];
    let first = Server::builder("hello").args(&socket).start();

    let mut second = Server::builder("hello").args(&socket).spawn();
    second.wait_for_log("another running server answers on it");
    assert_eq!(second.wait_exit(), Some(1), "a named socket in use is refused at start");
    assert_eq!(status(&path).len(), 1, "and the first server still answers on it");

    // Clients that connect and say nothing, more than the master keeps at once: it answers regardless.
    let silent: Vec<UnixStream> = (0..70).map(|_| UnixStream::connect(&path).unwrap()).collect();
    assert_eq!(status(&path).len(), 1, "answered past {} silent clients", silent.len());
    let mut raw = UnixStream::connect(&path).unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    raw.write_all(b"dance\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("error: unknown command \"dance\"; the commands are status,"), "{answer}");

    // Killed: its socket file stays behind, and the next server replaces it.
    drop(first);
    assert!(path.exists());
    let (code, _, err) = client(&path, &["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot ask the server at"), "{err}");
    let third = Server::builder("hello").args(&socket).start();
    let rows = status(&path);
    assert_eq!(pids(&rows), third.wait_for_workers(1));
}

#[test]
fn with_the_default_path_the_first_server_keeps_the_socket_and_the_second_runs_without() {
    let dir = TempDir::new("default");
    let runtime = dir.join("run");
    std::fs::create_dir(&runtime).unwrap();
    let runtime = runtime.to_str().unwrap();
    // The default path (no --control-socket), with a mode of its own.
    let default = |b: crate::support::Builder| {
        b.env("XDG_RUNTIME_DIR", runtime).args(&["--control-socket-mode", "0660"])
    };
    let first = default(Server::builder("hello")).start();
    let path = dir.join("run/rustgun.ctl");
    first.wait_for_log(&format!("Control socket at: {}", path.display()));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
    let second = default(Server::builder("hello")).start();
    second.wait_for_log("another running server answers on it; this server has none");
    assert_eq!(second.get("/").status, 200, "the second server serves all the same");
    // The client's default path is the server's.
    let rows = status_of(run(Command::new(env!("CARGO_BIN_EXE_rustgun"))
        .arg("status")
        .env("XDG_RUNTIME_DIR", runtime)));
    assert_eq!(pids(&rows), first.wait_for_workers(1), "the first server answers");
}

#[test]
fn a_binary_upgrade_hands_the_socket_to_the_new_master() {
    let dir = TempDir::new("upgrade");
    let path = dir.join("rustgun.ctl");
    let mut server = Server::builder("hello").args(&["--control-socket", path.to_str().unwrap()]).start();
    assert_eq!(master(&path), server.pid);
    server.signal(libc::SIGUSR2);
    server.wait_for_log_count("Control socket at: ", 2);
    server.wait_for_log_count("Ready: 1 workers", 2);
    let new = master(&path);
    assert_ne!(new, server.pid, "the new master answers on the path");
    // The old master leaves; the socket file is the new master's, so it stays.
    server.signal(libc::SIGQUIT);
    assert_eq!(server.wait_exit(), Some(0));
    assert_eq!(master(&path), new);
    assert_eq!(client(&path, &["ctl", "stop"]).0, 0);
    poll_for(WAIT, || (!path.exists()).then_some(()))
        .expect("the new master removes its socket file at exit");
}

/// Chromium's DOM of `url` after its scripts ran for a few seconds of virtual time.
fn rendered(url: &str) -> String {
    let installed = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "headless Chromium is not installed: run scripts/setup (it installs Debian's chromium)"
    );
    let profile = std::env::temp_dir().join(format!("rustgun-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let (code, dom, err) = run(Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        // The page polls every second: three polls at least.
        .args(["--virtual-time-budget=3500", "--timeout=15000", "--dump-dom", url]));
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(code, 0, "chromium failed: {err}");
    dom
}

/// The pids of the rows the page drew, and how many times it polled.
fn page_workers(dom: &str) -> (Vec<i32>, u32) {
    let mut pids: Vec<i32> = dom
        .split("<tr class=")
        .skip(1)
        .filter_map(|row| row.split("data-pid=\"").nth(1)?.split('"').next()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let polls = dom.split("data-polls=\"").nth(1).and_then(|s| s.split('"').next()?.parse().ok());
    (pids, polls.unwrap_or(0))
}

/// An HTTP proxy in front of `upstream` for the page's whole life, one request per connection, each
/// connection on a thread of its own: it forwards each request, keeps every `/status.json` answer,
/// and runs `before(n)` ahead of forwarding the `n`th (from 1) — Chromium's virtual time stands still
/// meanwhile, the fetch being pending. It ends at the first connection once `done` is set.
fn proxy(
    listener: &TcpListener,
    upstream: &str,
    done: &AtomicBool,
    before: impl Fn(usize) + Sync,
) -> Vec<String> {
    let answers = Mutex::new(Vec::new());
    let asked = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for client in listener.incoming() {
            let mut client = client.unwrap();
            client.set_read_timeout(Some(WAIT)).unwrap();
            if done.load(Ordering::SeqCst) {
                break;
            }
            let (mut request, mut chunk) = (Vec::new(), [0u8; 4096]);
            let (answers, asked, before) = (&answers, &asked, &before);
            s.spawn(move || {
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match client.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let json = request.starts_with(b"GET /status.json ");
                if json {
                    before(asked.fetch_add(1, Ordering::SeqCst) + 1);
                }
                let mut up = TcpStream::connect(upstream).unwrap();
                up.set_read_timeout(Some(WAIT)).unwrap();
                up.write_all(&request).unwrap();
                let mut answer = Vec::new();
                up.read_to_end(&mut answer).unwrap();
                if json {
                    answers.lock().unwrap().push(String::from_utf8_lossy(&answer).into_owned());
                }
                let _ = client.write_all(&answer);
            });
        }
    });
    answers.into_inner().unwrap()
}

#[test]
fn the_status_page_renders_the_live_workers_and_follows_a_ttin() {
    let server = Server::builder("hello").workers(2).args(&["--metrics-bind", "127.0.0.1:0"]).start();
    let upstream = server.metrics_addr();
    let before = server.wait_for_workers(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/status", listener.local_addr().unwrap());
    let (after, done) = (Mutex::new(Vec::new()), AtomicBool::new(false));
    let (answers, dom) = std::thread::scope(|s| {
        let proxied = s.spawn(|| {
            proxy(&listener, &upstream, &done, |n| {
                // The page has drawn two polls' workers: one more now, before its third poll.
                if n == 3 {
                    server.signal(libc::SIGTTIN);
                    server.wait_for_log("Handling signal: SIGTTIN; workers: 3");
                    *after.lock().unwrap() = server.wait_for_workers(3);
                }
            })
        });
        let dom = rendered(&url);
        done.store(true, Ordering::SeqCst);
        drop(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
        (proxied.join().unwrap(), dom)
    });
    let after = after.into_inner().unwrap();
    assert!(answers.len() >= 3, "the page refreshes itself: {} polls", answers.len());
    for pid in &before {
        assert!(answers[0].contains(&format!(r#""pid":{pid},"#)), "{}", answers[0]);
    }
    assert!(answers[0].contains(r#""target":2,"#), "{}", answers[0]);
    let (pids, polls) = page_workers(&dom);
    assert!(polls >= 3 && polls as usize <= answers.len(), "{polls} polls drawn of {}", answers.len());
    assert_eq!(pids, after, "the open page follows the TTIN to the new worker:\n{dom}");
    assert!(dom.contains("3 workers (target 3)"), "{dom}");
    assert!(dom.contains("<canvas id=\"rps\""), "{dom}");
}
