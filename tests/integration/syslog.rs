//! Syslog (`--log-syslog`), as gunicorn sends it: a test-owned UDP listener (and a unix datagram
//! socket, as `/dev/log` is) receives every error log line, its priority from the facility and the
//! line's level, led by `rustgun.PREFIX.error`; and the access log's lines as `rustgun.PREFIX.access`
//! unless `--disable-redirect-access-to-syslog`.

use crate::procs::{TempDir, datagrams_until};
use crate::support::{Server, WAIT};
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;

fn server(to: &str, extra: &[&str]) -> Server {
    let args = [
        "--log-syslog",
        "--log-syslog-to",
        to,
        "--log-syslog-prefix",
        "app",
        "--log-syslog-facility",
        "local0",
    ];
    Server::builder("hello").args(&args).args(&["--access-logfile", "/dev/null"]).args(extra).start()
}

#[test]
fn a_udp_listener_gets_the_error_log_and_the_access_log() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener.set_read_timeout(Some(WAIT)).unwrap();
    let to = format!("udp://{}", listener.local_addr().unwrap());
    let recv = |buf: &mut [u8]| listener.recv(buf);
    let server = server(&to, &[]);
    // local0 (16) and info (6): priority 134; the line as the error log has it, from the pid on.
    let start = datagrams_until(&recv, |p| p.contains("Starting rustgun"));
    let line = start.last().unwrap();
    assert!(
        line.starts_with(&format!(
            "<134>rustgun.app.error: [{}] [INFO] [master] Starting rustgun",
            server.pid
        )),
        "{line}"
    );
    datagrams_until(&recv, |p| p.contains("Ready:"));
    assert_eq!(server.get("/").text(), "Hello, World!");
    let access = datagrams_until(&recv, |p| p.starts_with("<134>rustgun.app.access: "));
    assert!(access.last().unwrap().contains("\"GET / HTTP/1.1\" 200"), "{access:?}");
}

#[test]
fn a_unix_datagram_socket_gets_the_error_log_but_not_the_access_log_when_told() {
    let dir = TempDir::new("syslog-unix");
    let path = dir.join("log.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener.set_read_timeout(Some(WAIT)).unwrap();
    let recv = |buf: &mut [u8]| listener.recv(buf);
    let mut server = server(&format!("unix://{}", path.display()), &["--disable-redirect-access-to-syslog"]);
    datagrams_until(&recv, |p| p.contains("Ready:"));
    assert_eq!(server.get("/").text(), "Hello, World!");
    // The stop's lines come after the request's: no access line may come before them.
    server.signal(libc::SIGTERM);
    let seen = datagrams_until(&recv, |p| p.contains("Handling signal: SIGTERM"));
    assert!(!seen.iter().any(|p| p.contains(".access: ")), "{seen:#?}");
    assert_eq!(server.wait_exit(), Some(0));
}
