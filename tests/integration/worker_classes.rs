//! Stories particular to the worker classes: threads serve several connections of one worker at once,
//! the event loop holds many idle connections and hands slow app calls to its pool, and an app that
//! does not declare itself thread-safe refuses to boot where threads would share it.

use crate::procs::{Bare, TempDir, poll_for};
use crate::support::{Response, Server, WAIT};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn get_on(stream: &mut TcpStream, path: &str) -> Response {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((resp, _)) = Response::parse_one(&buf) {
            return resp;
        }
        let n = stream.read(&mut chunk).expect("read a response");
        assert!(n > 0, "connection closed before a response; got {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn threads_serve_several_slow_requests_of_one_worker_at_once() {
    // Four threads each hold a request in the app; the fifth answers the release.
    let server = Server::builder("chaos").args(&["-k", "threads", "--threads", "5"]).start();
    std::thread::scope(|s| {
        let held: Vec<_> = (0..4).map(|_| s.spawn(|| server.get("/hold?name=four"))).collect();
        // All four are in the app together before any is released: a server that serves one request
        // at a time never logs the second line.
        server.wait_for_log_count("hold four entered", 4);
        assert_eq!(server.get("/release?name=four").text(), "released four: 4 held");
        for h in held {
            assert_eq!(h.join().unwrap().text(), "hold four released");
        }
    });
    assert_eq!(server.get("/environ?key=wsgi.multithread").text(), "true");
}

#[test]
fn the_sync_class_says_single_threaded() {
    let server = Server::builder("chaos").args(&["-k", "sync"]).start();
    assert_eq!(server.get("/environ?key=wsgi.multithread").text(), "false");
    assert_eq!(server.get("/environ?key=wsgi.multiprocess").text(), "true");
}

#[test]
fn the_event_pool_serves_others_while_an_app_call_is_slow() {
    let server = Server::builder("chaos").args(&["-k", "event", "--threads", "2"]).start();
    std::thread::scope(|s| {
        let held = s.spawn(|| server.get("/hold?name=slow"));
        server.wait_for_log("hold slow entered");
        // The loop answers others while the held call keeps a pool thread: first a request, then the
        // release the held call waits for.
        assert_eq!(server.get("/ok").text(), "ok");
        assert_eq!(server.get("/release?name=slow").text(), "released slow: 1 held");
        assert_eq!(held.join().unwrap().text(), "hold slow released");
    });
}

#[test]
fn the_event_loop_holds_many_idle_connections_and_serves_each() {
    let server = Server::builder("hello").args(&["-k", "event"]).start();
    let mut idle: Vec<TcpStream> = (0..400).map(|_| server.connect()).collect();
    // A newcomer is served while 400 connections sit idle on the same single worker.
    assert_eq!(server.get("/").text(), "Hello, World!");
    for (i, conn) in idle.iter_mut().enumerate().step_by(40) {
        assert_eq!(get_on(conn, &format!("/{i}")).text(), "Hello, World!");
    }
}

#[test]
fn the_event_worker_stops_accepting_at_worker_connections() {
    let server = Server::builder("hello")
        .args(&["-k", "event", "--worker-connections", "2", "--keep-alive", "30"])
        .start();
    let mut first = server.connect();
    let mut second = server.connect();
    assert_eq!(get_on(&mut first, "/").status, 200);
    assert_eq!(get_on(&mut second, "/").status, 200);
    // The third connection completes in the kernel's backlog but is not served while two are open.
    let mut third = server.connect();
    third.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    third.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let mut byte = [0u8; 1];
    assert!(third.read(&mut byte).is_err(), "served beyond --worker-connections");
    drop(first);
    third.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let mut chunk = [0u8; 1024];
    while Response::parse_one(&rest).is_none() {
        let n = third.read(&mut chunk).unwrap();
        assert!(n > 0);
        rest.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(Response::parse_one(&rest).unwrap().0.text(), "Hello, World!");
}

#[test]
fn an_app_not_declared_thread_safe_refuses_to_boot_where_threads_share_it() {
    let dir = TempDir::new("threadsafe");
    let lib = crate::boot::c_descriptors(&dir);
    for class in [["-k", "threads", "--threads", "2"], ["-k", "event", "--threads", "2"]] {
        let app = format!("{}:app_ok", lib.display());
        let (code, lines) =
            Bare::run(&[&app, "--bind", "127.0.0.1:0", class[0], class[1], class[2], class[3]]);
        assert_eq!(code, 4, "{lines:?}");
        let error = lines.iter().find(|l| l.contains("[ERROR]")).expect("an error line");
        assert!(error.contains("RG_APP_THREAD_SAFE") && error.contains(class[1]), "{error}");
    }
    // The same app boots under the classes that never share it between threads.
    let app = format!("{}:app_ok", lib.display());
    for class in ["sync", "event"] {
        let bare = Bare::spawn(&[&app, "--bind", "127.0.0.1:0", "-k", class], &[]);
        bare.wait_for_log("Ready:");
    }
}

#[test]
fn reuse_port_gives_each_worker_its_own_socket_and_spreads_connections() {
    let server =
        Server::builder("chaos").workers(2).args(&["--reuse-port"]).allow_log("was sent SIGKILL!").start();
    // Each new connection is hashed by the kernel to one of the workers' sockets; thirty of them
    // reach both workers (the odds of all landing on one are 2^-29).
    let pids: std::collections::BTreeSet<String> = (0..30)
        .map(|_| server.get("/worker").text().split(" pid ").nth(1).unwrap_or("").to_string())
        .collect();
    assert_eq!(pids.len(), 2, "connections reached {pids:?}");
    // Workers still replace each other: a killed worker's replacement listens on a socket of its own.
    let victim: i32 = pids.iter().next().unwrap().parse().unwrap();
    // SAFETY: kill(2) on a worker of the server this test started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let pids = poll_for(WAIT, || {
        let now = server.wait_for_workers(2);
        (!now.contains(&victim)).then_some(now)
    });
    assert!(pids.is_some());
    // The replacement takes connections once it has bound its socket, which its process existing does
    // not yet say: connect until both workers have answered (bounded by WAIT).
    let mut served = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + WAIT;
    while served.len() < 2 && std::time::Instant::now() < deadline {
        served.insert(server.get("/worker").text().split(" pid ").nth(1).unwrap_or("").to_string());
    }
    assert_eq!(served.len(), 2, "after the replacement, connections reached {served:?}");
    assert!(!served.contains(&victim.to_string()), "the killed worker answered: {served:?}");
}
