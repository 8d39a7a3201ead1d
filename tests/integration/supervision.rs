//! The master watches its workers: one silent past `--timeout` (an app in an endless loop) is aborted,
//! logged with the request it was serving, and replaced while the others serve; an idle keep-alive
//! connection is not silence; `--max-requests` retires workers without failing a request; process
//! titles name the master and the workers.

use crate::load::Load;
use crate::procs::{live_children, poll_for};
use crate::support::{Server, WAIT};
use std::io::Write;
use std::time::{Duration, Instant};

#[test]
fn a_worker_stuck_in_a_loop_is_aborted_after_the_timeout_and_replaced() {
    let server = Server::builder("chaos").workers(2).args(&["--timeout", "2"]).start();
    let before = server.wait_for_workers(2);
    let mut stuck = server.connect();
    // Taken before the request leaves: a test thread descheduled after the write would otherwise
    // start the clock late and see a punctual abort as an early one.
    let sent = Instant::now();
    stuck.write_all(b"GET /loop HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    // Other clients are served while the worker spins.
    let mut served = 0;
    while server.try_wait_for_log("WORKER TIMEOUT", Duration::from_millis(100)).is_none() {
        assert_eq!(server.get("/ok").text(), "ok");
        served += 1;
        assert!(sent.elapsed() < WAIT, "no WORKER TIMEOUT within {WAIT:?}");
    }
    assert!(served > 0);
    let line = server.wait_for_log("WORKER TIMEOUT");
    assert!(sent.elapsed() >= Duration::from_secs(2), "aborted before the timeout: {line}");
    let pid: i32 = line.split("(pid:").nth(1).and_then(|s| s.split(')').next()).unwrap().parse().unwrap();
    assert!(before.contains(&pid));
    assert!(line.contains(r#"serving "GET /loop HTTP/1.1""#), "{line}");
    server.wait_for_log(&format!("(pid: {pid}) was sent SIG"));
    let after = poll_for(WAIT, || {
        let live = live_children(server.pid);
        (live.len() == 2 && !live.contains(&pid)).then_some(live)
    });
    assert!(after.is_some(), "the stuck worker is replaced: {:?}", live_children(server.pid));
    assert_eq!(server.get("/ok").text(), "ok");
}

#[test]
fn an_idle_keep_alive_connection_is_not_silence() {
    let server = Server::builder("chaos").workers(1).args(&["--timeout", "1", "--keep-alive", "10"]).start();
    let worker = server.wait_for_workers(1)[0];
    let mut conn = server.conn();
    conn.send(b"GET /worker HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(conn.response().text().ends_with(&format!("pid {worker}")));
    // Idle on the kept-alive connection for three timeouts (the scenario itself, not a sync wait).
    std::thread::sleep(Duration::from_secs(3));
    conn.send(b"GET /worker HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(conn.response().text().ends_with(&format!("pid {worker}")), "same worker, same connection");
    assert!(!server.log().iter().any(|l| l.contains("WORKER TIMEOUT")), "{}", server.log().join("\n"));
}

#[test]
fn max_requests_retires_workers_under_load_without_failing_a_request() {
    let server = Server::builder("hello").workers(2).args(&["--max-requests", "50"]).start();
    let first = server.wait_for_workers(2);
    let report = Load::start(server.addr, 4, "/", 150).finish();
    eprintln!("--max-requests 50 under load: {report:?}");
    assert!(report.failed.is_empty(), "failed requests: {:?}", report.failed);
    assert_eq!(report.ok, 600);
    // 600 requests over workers that each serve 50: at least ten retired.
    server.wait_for_log_count("Autorestarting worker after current request", 10);
    let now = server.wait_for_workers(2);
    assert!(now.iter().all(|p| !first.contains(p)), "every first worker retired: {first:?} → {now:?}");
    assert!(!server.log().iter().any(|l| l.contains("was sent")), "a worker was killed");
}

#[test]
fn max_requests_jitter_spreads_the_limit() {
    let server = Server::builder("hello")
        .workers(1)
        .args(&["--max-requests", "5", "--max-requests-jitter", "3"])
        .start();
    let report = Load::start(server.addr, 1, "/", 40).finish();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // Each worker serves 5..=8 requests: 40 need at least five of them.
    server.wait_for_log_count("Autorestarting worker", 4);
    let retired = server.log().iter().filter(|l| l.contains("Autorestarting worker")).count();
    assert!((4..=8).contains(&retired), "{retired} retirements for 40 requests");
}

/// `/proc/PID/cmdline` as ps shows it (NULs as spaces, trailing ones dropped).
fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    String::from_utf8_lossy(&raw).replace('\0', " ").trim_end().to_string()
}

#[test]
fn process_titles_name_the_master_and_the_workers() {
    let server = Server::builder("hello").workers(2).args(&["-n", "shop"]).start();
    assert_eq!(cmdline(server.pid), "rustgun: master [shop]");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/comm", server.pid)).unwrap().trim(),
        "rustgun master"
    );
    for w in server.wait_for_workers(2) {
        assert_eq!(cmdline(w), "rustgun: worker [shop]");
    }
    let plain = Server::builder("hello").start();
    let app = crate::support::app("hello");
    assert_eq!(cmdline(plain.pid), format!("rustgun: master [{app}:app]"));
}

#[test]
fn metrics_are_scraped_from_the_master_while_requests_run() {
    let server = Server::builder("chaos").workers(2).args(&["--metrics-bind", "127.0.0.1:0"]).start();
    for _ in 0..10 {
        assert_eq!(server.get("/ok").status, 200);
    }
    assert_eq!(server.get("/status?code=404").status, 404);
    // A slow request in flight while a load runs and the scrape happens.
    let mut slow = server.connect();
    slow.write_all(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let load = Load::start(server.addr, 2, "/ok", 100_000);
    load.wait_for_more(20);
    let m = poll_for(WAIT, || {
        let m = server.metrics();
        (m.get("rustgun_requests_in_flight").copied().unwrap_or(0.0) >= 1.0).then_some(m)
    })
    .expect("the slow request shows as in flight");
    assert!(m["rustgun_workers{state=\"busy\"}"] >= 1.0, "{m:?}");
    assert_eq!(m["rustgun_workers{state=\"busy\"}"] + m["rustgun_workers{state=\"idle\"}"], 2.0);
    assert!(m["rustgun_requests_total{status=\"2xx\"}"] >= 10.0, "{m:?}");
    assert_eq!(m["rustgun_requests_total{status=\"4xx\"}"], 1.0);
    let statuses: f64 = (1..=5).map(|c| m[&format!("rustgun_requests_total{{status=\"{c}xx\"}}")]).sum();
    assert_eq!(
        m["rustgun_request_duration_seconds_count"],
        m["rustgun_request_duration_seconds_bucket{le=\"+Inf\"}"]
    );
    assert!(m["rustgun_request_duration_seconds_count"] <= statuses);
    assert!(m["rustgun_connections_accepted_total"] >= 11.0, "{m:?}");
    let queue = format!("rustgun_listen_queue_depth{{listener=\"http://{}\"}}", server.addr);
    assert!(m.contains_key(&queue), "no {queue} in {m:?}");
    assert!(m.contains_key("rustgun_listen_drops_total"), "{m:?}");
    for reason in ["proxy", "tls"] {
        let refused = format!("rustgun_connections_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(m.get(&refused), Some(&0.0), "{m:?}");
    }
    let report = load.stop();
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    // A worker killed outright is counted by reason.
    let victim = server.wait_for_workers(2)[0];
    // SAFETY: kill(2) on a worker of the server this test started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    server.wait_for_log(&format!("(pid: {victim}) was sent SIGKILL"));
    let m = server.metrics();
    assert_eq!(
        m.get("rustgun_worker_exits_total{reason=\"signal\",signal=\"SIGKILL\"}"),
        Some(&1.0),
        "{m:?}"
    );
    let after: f64 = (1..=5).map(|c| m[&format!("rustgun_requests_total{{status=\"{c}xx\"}}")]).sum();
    assert!(after >= statuses, "counters never go back when a worker exits: {statuses} → {after}");
}

#[test]
fn the_metrics_show_how_long_an_event_loop_has_been_away_from_epoll_wait() {
    let server = Server::builder("chaos").args(&["-k", "event", "--metrics-bind", "127.0.0.1:0"]).start();
    let worker = server.get("/worker").text();
    let id = worker.split_whitespace().nth(1).expect("worker ID pid P").to_string();
    let lag = |server: &Server| server.metrics()[&format!("rustgun_worker_lag_seconds{{worker=\"{id}\"}}")];
    assert_eq!(lag(&server), 0.0, "an idle loop waits in epoll_wait");
    let url = server.url("/sleep?ms=2500");
    let slow = std::thread::spawn(move || {
        std::process::Command::new("curl").args(["-s", "-m", "20", &url]).output().unwrap().stdout
    });
    // While the app call holds the loop, its lag grows past a second.
    assert!(poll_for(WAIT, || (lag(&server) >= 1.0).then_some(())).is_some(), "the lag never showed");
    assert_eq!(String::from_utf8_lossy(&slow.join().unwrap()), "slept 2500");
    assert!(poll_for(WAIT, || (lag(&server) == 0.0).then_some(())).is_some(), "the loop never came back");
}

/// The master never waits on a scraper. With scrapers connected that send nothing, a TTIN is handled
/// and a real scrape answered while every silent one is still open: a master that served scrapes one
/// at a time, blocking on each, would first have had to time every silent one out.
#[test]
fn silent_scrapers_never_hold_up_the_master() {
    let server = Server::builder("chaos").workers(1).args(&["--metrics-bind", "127.0.0.1:0"]).start();
    let addr = server.metrics_addr();
    let silent: Vec<std::net::TcpStream> =
        (0..8).map(|_| std::net::TcpStream::connect(&addr).expect("connect to the metrics port")).collect();
    // SAFETY: kill(2) on the master this test started.
    unsafe { libc::kill(server.pid, libc::SIGTTIN) };
    assert_eq!(server.wait_for_workers(2).len(), 2, "TTIN handled");
    let m = server.metrics();
    assert_eq!(m["rustgun_workers{state=\"busy\"}"] + m["rustgun_workers{state=\"idle\"}"], 2.0, "{m:?}");
    for mut s in silent {
        s.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        match std::io::Read::read(&mut s, &mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a silent scraper was already dropped or answered: {other:?}"),
        }
    }
}

/// The socket inodes of `pid`'s descriptors.
pub(crate) fn socket_inodes(pid: i32) -> Vec<String> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the process's descriptors");
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|t| t.to_string_lossy().strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .collect()
}

/// The inodes of the loopback TCP sockets bound to `port`, in the `state` given (0A listening, 01
/// established), from `/proc/net/tcp`.
pub(crate) fn tcp_inodes(port: u16, state: &str) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            let local_port = u16::from_str_radix(cols.get(1)?.rsplit(':').next()?, 16).ok()?;
            (local_port == port && cols.get(3) == Some(&state)).then(|| cols.get(9).map(|s| s.to_string()))?
        })
        .collect()
}

/// A worker forked while the master holds the metrics listener and a scrape in progress holds
/// neither: app code in a worker cannot accept or answer the master's scrapes.
#[test]
fn a_worker_holds_none_of_the_masters_metrics_sockets() {
    let server = Server::builder("chaos").workers(1).args(&["--metrics-bind", "127.0.0.1:0"]).start();
    let addr = server.metrics_addr();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let first = server.wait_for_workers(1)[0];
    // A scrape in progress (it sends nothing), then a new worker forked beside it.
    let _silent = std::net::TcpStream::connect(&addr).expect("connect to the metrics port");
    let scrape = poll_for(WAIT, || {
        let held = socket_inodes(server.pid);
        tcp_inodes(port, "01").into_iter().find(|i| held.contains(i))
    })
    .expect("the master took the scrape");
    // SAFETY: kill(2) on the master this test started.
    unsafe { libc::kill(server.pid, libc::SIGTTIN) };
    let workers = server.wait_for_workers(2);
    let listener = tcp_inodes(port, "0A");
    assert_eq!(listener.len(), 1, "one metrics listener");
    assert!(socket_inodes(server.pid).contains(&listener[0]), "the master holds the metrics listener");
    for worker in workers {
        let held = socket_inodes(worker);
        assert!(!held.contains(&listener[0]), "worker {worker} (first: {first}) holds the metrics listener");
        assert!(!held.contains(&scrape), "worker {worker} holds the master's scrape");
    }
}
