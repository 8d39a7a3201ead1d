//! Stopping the server: TERM lets in-flight requests finish (up to `--graceful-timeout`), INT and QUIT
//! stop at once; either way the master exits 0, cleans up its pidfile and socket file, and leaves no
//! process behind.

use crate::procs::{TempDir, group_members, live_children, pgrp_of, unix_get, wait_for_accepted};
use crate::support::{Response, Server};
use std::io::{Read, Write};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sends `GET target` on a new connection from a thread; joins to everything the server sent.
fn request_in_background(server: &Server, target: &str) -> JoinHandle<Vec<u8>> {
    let mut s = server.connect();
    let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    })
}

/// Asserts that nothing of the stopped server is left: its workers gone, its process group empty.
fn assert_nothing_left(master: i32, workers: &[i32]) {
    for w in workers {
        // Gone, or the pid was recycled by a process outside the server's group.
        assert_ne!(pgrp_of(*w), Some(master), "worker {w} outlived the master");
    }
    assert_eq!(group_members(master), Vec::<i32>::new(), "processes left in the server's group");
}

#[test]
fn term_lets_the_slow_request_finish_then_exits_cleanly() {
    let dir = TempDir::new("term");
    let pidfile = dir.arg("rustgun.pid");
    let mut server = Server::builder("chaos").workers(2).args(&["-p", &pidfile]).start();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), server.pid.to_string());
    let workers = server.wait_for_workers(2);

    let slow = request_in_background(&server, "/sleep?ms=1500");
    wait_for_accepted(&workers, 1);
    server.signal(libc::SIGTERM);

    let resp = Response::parse_one(&slow.join().unwrap()).map(|r| r.0);
    let resp = resp.expect("the in-flight request got a complete response");
    assert_eq!((resp.status, resp.text().as_str()), (200, "slept 1500"));
    assert_eq!(server.wait_exit(), Some(0), "log:\n{}", server.log().join("\n"));
    assert_nothing_left(server.pid, &workers);
    assert!(!std::path::Path::new(&pidfile).exists(), "the pidfile was not removed");
    server.wait_for_log("Shutting down: Master");
}

#[test]
fn a_request_sent_on_an_idle_connection_just_after_term_is_answered_not_reset() {
    // One serving thread: under `threads` the thread that holds the idle connection is then the one
    // that acts on the stop and logs it (with more, another thread's accept loop may log it first).
    let mut server = Server::builder("hello").workers(1).args(&["--threads", "1"]).start();
    let worker = server.wait_for_workers(1)[0];
    let mut conn = server.conn();
    conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response().header("connection"), None, "the first response keeps the connection");

    // The worker is told to stop while this connection is idle; its client cannot know that yet. The
    // worker's line says it has woken on the stop with the connection idle and given it its grace: a
    // worker that closed idle connections at once would reset the request sent now.
    server.signal(libc::SIGTERM);
    server.wait_for_log(&format!("Worker stopping (pid: {worker})"));
    conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.response();
    assert_eq!((resp.status, resp.text().as_str()), (200, "Hello, World!"));
    assert_eq!(resp.header("connection"), Some("close"));
    conn.assert_closed();
    assert_eq!(server.wait_exit(), Some(0));
}

/// The CPU time `pid` has used so far (all its threads, user and system), from `/proc/PID/stat`.
fn cpu_time(pid: i32) -> Duration {
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    let fields: Vec<u64> = crate::support::stat_fields(pid)
        .expect("the process is alive")
        .iter()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf(3) reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis((fields[11] + fields[12]) * 1000 / hz)
}

#[test]
fn a_stopping_event_worker_waits_for_its_pool_without_spinning() {
    let server = Server::builder("chaos").args(&["-k", "event", "--threads", "2"]).start();
    let worker = server.wait_for_workers(1)[0];
    // Two calls on the pool: one that ends by itself 1.5 s after it began, and one that outlasts it and
    // keeps the worker alive to be measured (the server is killed with it still held).
    let short = request_in_background(&server, "/hold?name=short&ms=1500");
    let _long = request_in_background(&server, "/hold?name=long");
    server.wait_for_log("hold short entered");
    server.wait_for_log("hold long entered");
    server.signal(libc::SIGTERM);
    server.wait_for_log(&format!("Worker stopping (pid: {worker})"));
    let (used, since) = (cpu_time(worker), Instant::now());
    let resp = Response::parse_one(&short.join().unwrap()).map(|r| r.0).expect("the short hold's answer");
    assert_eq!(resp.text(), "hold short timed out");
    let (used, waited) = (cpu_time(worker) - used, since.elapsed());
    // The loop waits for its pool asleep: a wait that returned at once (the stop pipe stays readable)
    // would spin it for as long as the stop takes.
    assert!(used * 20 < waited, "the stopping worker used {used:?} of CPU in {waited:?}");
}

#[test]
fn term_removes_the_unix_socket_file() {
    let dir = TempDir::new("term-unix");
    let sock = dir.join("s.sock");
    let mut server = Server::builder("hello").bind(&format!("unix:{}", sock.display())).workers(2).start();
    let workers = server.wait_for_workers(2);
    assert_eq!(unix_get(&sock, "/").map(|r| r.status), Some(200));

    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(), Some(0));
    assert!(!sock.exists(), "the socket file was left behind");
    assert_nothing_left(server.pid, &workers);
}

#[test]
fn term_kills_workers_still_busy_after_the_graceful_timeout() {
    let mut server = Server::builder("chaos").workers(1).args(&["--graceful-timeout", "1"]).start();
    server.allow_log("was sent SIGKILL!");
    let workers = server.wait_for_workers(1);
    let slow = request_in_background(&server, "/sleep?ms=10000");
    wait_for_accepted(&workers, 1);

    let sent = Instant::now();
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(), Some(0));
    assert!(sent.elapsed() < Duration::from_secs(6), "exit took {:?} with a 1 s grace", sent.elapsed());
    server.wait_for_log(&format!("(pid: {}) did not stop in time; killing it", workers[0]));
    let got = slow.join().unwrap();
    assert!(Response::parse_one(&got).is_none(), "the killed request was answered");
    assert_nothing_left(server.pid, &workers);
}

fn quick_stop(sig: i32, name: &str) {
    let mut server = Server::builder("chaos").workers(2).start();
    let workers = server.wait_for_workers(2);
    let slow = request_in_background(&server, "/sleep?ms=10000");
    wait_for_accepted(&workers, 1);

    let sent = Instant::now();
    server.signal(sig);
    assert_eq!(server.wait_exit(), Some(0));
    assert!(sent.elapsed() < Duration::from_secs(5), "{name} waited {:?}", sent.elapsed());
    server.wait_for_log(&format!("Handling signal: {name}; stopping now"));
    assert!(Response::parse_one(&slow.join().unwrap()).is_none(), "{name} waited for the request");
    assert_nothing_left(server.pid, &workers);
}

#[test]
fn int_stops_at_once_without_waiting_for_requests() {
    quick_stop(libc::SIGINT, "SIGINT");
}

#[test]
fn quit_stops_at_once_without_waiting_for_requests() {
    quick_stop(libc::SIGQUIT, "SIGQUIT");
}

#[test]
fn live_children_are_gone_once_the_master_exits() {
    let mut server = Server::builder("hello").workers(3).start();
    let workers = live_children(server.pid);
    assert_eq!(workers.len(), 3);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(), Some(0));
    assert_nothing_left(server.pid, &workers);
    for w in &workers {
        server.wait_for_log(&format!("(pid: {w}) exited"));
    }
}

#[test]
fn workers_do_not_outlive_a_master_killed_outright() {
    let mut server = Server::builder("chaos").workers(2).start();
    let workers = server.wait_for_workers(2);
    // SAFETY: kill(2) on the master this test started.
    unsafe { libc::kill(server.pid, libc::SIGKILL) };
    assert_eq!(server.wait_exit(), None, "the master was killed by the signal");
    // Each worker is told by its parent-death signal and stops on its own; zombies left for an
    // adoptive parent to reap have already exited.
    let left = crate::procs::poll_for(crate::support::WAIT, || {
        let live: Vec<i32> = workers.iter().copied().filter(|w| is_live_in_group(*w, server.pid)).collect();
        live.is_empty().then_some(())
    });
    assert!(left.is_some(), "workers outlived the master: {workers:?}");
}

/// `pid` is a running (not exited) process in the process group `pgid`.
fn is_live_in_group(pid: i32, pgid: i32) -> bool {
    pgrp_of(pid) == Some(pgid) && !crate::support::is_zombie(pid)
}
