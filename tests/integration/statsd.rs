//! StatsD (`--statsd-host`), as gunicorn sends it: a test-owned UDP listener (and a unix datagram
//! socket) receives the master's `gunicorn.workers` gauge and, for each request, the worker's
//! duration, request and status metrics, then a count for an error logged, every packet led by
//! `--statsd-prefix` and followed by `--dogstatsd-tags`.

use crate::procs::{TempDir, datagrams_until};
use crate::support::{Server, WAIT};
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;

/// The story both transports tell: two workers, a request, an error.
fn story(host: &str, recv: &dyn Fn(&mut [u8]) -> std::io::Result<usize>) {
    let tags = "|#env:test,team:web";
    let server = Server::builder("chaos")
        .workers(2)
        .args(&["--statsd-host", host, "--statsd-prefix", "app", "--dogstatsd-tags", "env:test,team:web"])
        .allow_log("chaos: /panic asked for it")
        .allow_log("app failed with status")
        .start();
    let gauge = format!("app.gunicorn.workers:2|g{tags}");
    datagrams_until(recv, |p| p == gauge);

    assert_eq!(server.get("/ok").text(), "ok");
    let seen = datagrams_until(recv, |p| p.starts_with("app.gunicorn.request.status."));
    let [duration, requests, status] = &seen[seen.len() - 3..] else { unreachable!() };
    let ms = duration
        .strip_prefix("app.gunicorn.request.duration:")
        .and_then(|d| d.strip_suffix(&format!("|ms{tags}")));
    assert!(ms.and_then(|ms| ms.parse::<f64>().ok()).is_some_and(|ms| ms >= 0.0), "{duration}");
    assert_eq!(requests, &format!("app.gunicorn.requests:1|c|@1.0{tags}"));
    assert_eq!(status, &format!("app.gunicorn.request.status.200:1|c|@1.0{tags}"));

    // A panicking handler: its client gets 500, its error line is counted.
    assert_eq!(server.get("/panic").status, 500);
    let seen = datagrams_until(recv, |p| p.starts_with("app.gunicorn.request.status.500"));
    assert!(seen.contains(&format!("app.gunicorn.log.error:1|c|@1.0{tags}")), "{seen:?}");
}

#[test]
fn a_udp_listener_gets_gunicorns_metrics() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener.set_read_timeout(Some(WAIT)).unwrap();
    let host = listener.local_addr().unwrap().to_string();
    story(&host, &|buf| listener.recv(buf));
}

#[test]
fn a_unix_datagram_socket_gets_the_same() {
    let dir = TempDir::new("statsd-unix");
    let path = dir.join("statsd.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener.set_read_timeout(Some(WAIT)).unwrap();
    story(&format!("unix:{}", path.display()), &|buf| listener.recv(buf));
}
