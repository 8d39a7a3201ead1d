//! Behind proxies, over raw sockets: proxy headers (X-Forwarded-*, RFC 7239 Forwarded) count only
//! from peers in `--forwarded-allow-ips` (and from unix-socket peers), contradictory scheme headers
//! get 400, and `--proxy-protocol` takes the client from a PROXY v1/v2 header (malformed → 400,
//! sender not in `--proxy-allow-ips` → 403). What the app sees is read back from the environ app.

use crate::procs::{Bare, TempDir, lib};
use crate::support::{Response, Server, WAIT};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// The environ the environ app reports for `request`, sent on a new connection after `prefix` (a
/// PROXY header or nothing).
fn environ_after(server: &Server, prefix: &[u8], request: &str) -> HashMap<String, String> {
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(request.as_bytes());
    let resp = Response::parse_one(&server.raw(&bytes)).expect("a response").0;
    assert_eq!(resp.status, 200, "{:?}", resp.text());
    parse_environ(&resp.text())
}

fn parse_environ(text: &str) -> HashMap<String, String> {
    text.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `GET /` with `Connection: close` and the given extra header lines.
fn get(headers: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: internal:8000\r\n{headers}Connection: close\r\n\r\n")
}

/// Asserts the environ `env` has each `(key, value)`.
#[track_caller]
fn assert_environ(env: &HashMap<String, String>, want: &[(&str, &str)]) {
    for (key, value) in want {
        assert_eq!(env.get(*key).map(String::as_str), Some(*value), "{key} in {env:#?}");
    }
}

/// Sends `bytes` on a new connection; asserts the one answer is `status` with `Connection: close`,
/// then the close.
#[track_caller]
fn assert_refused(server: &Server, what: &str, bytes: &[u8], status: u16) {
    let mut conn = server.conn();
    conn.send(bytes);
    let all = Response::parse_exact(&conn.rest());
    assert_eq!(all.len(), 1, "{what}: {all:?}");
    assert_eq!(all[0].status, status, "{what}: {:?}", all[0].text());
    assert_eq!(all[0].header("connection"), Some("close"), "{what}");
}

const FORWARDED_HEADERS: &str = "X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n\
    X-Forwarded-Proto: https\r\nX-Forwarded-Host: app.example.com\r\n";

#[test]
fn a_trusted_proxys_headers_set_remote_addr_scheme_and_host() {
    // 127.0.0.1 is in the default --forwarded-allow-ips.
    let server = Server::start("environ");
    let env = environ_after(&server, b"", &get(FORWARDED_HEADERS));
    assert_environ(
        &env,
        &[
            // The rightmost untrusted entry: the leftmost was written by the client itself.
            ("REMOTE_ADDR", "203.0.113.7"),
            ("REMOTE_PORT", "0"),
            ("wsgi.url_scheme", "https"),
            ("SERVER_NAME", "app.example.com"),
            ("SERVER_PORT", "443"),
            // The headers themselves reach the app as received.
            ("HTTP_HOST", "internal:8000"),
            ("HTTP_X_FORWARDED_FOR", "198.51.100.1, 203.0.113.7"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
        ],
    );
    // The chaos app's one-key lookup sees the same.
    let chaos = Server::start("chaos");
    let req = "GET /environ?key=REMOTE_ADDR HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 192.0.2.55\r\nConnection: close\r\n\r\n";
    let resp = Response::parse_one(&chaos.raw(req.as_bytes())).unwrap().0;
    assert_eq!((resp.status, resp.text().as_str()), (200, "192.0.2.55"));
}

#[test]
fn an_untrusted_peers_headers_pass_through_and_change_nothing() {
    let server = Server::builder("environ").args(&["--forwarded-allow-ips", "10.0.0.1"]).start();
    let env = environ_after(&server, b"", &get(FORWARDED_HEADERS));
    assert_environ(
        &env,
        &[
            ("REMOTE_ADDR", "127.0.0.1"),
            ("wsgi.url_scheme", "http"),
            ("SERVER_NAME", "internal"),
            ("SERVER_PORT", "8000"),
            ("HTTP_X_FORWARDED_FOR", "198.51.100.1, 203.0.113.7"),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("HTTP_X_FORWARDED_HOST", "app.example.com"),
        ],
    );
    assert_ne!(env["REMOTE_PORT"], "0", "the connection's own port");
    // Even contradictory or malformed ones: they are not interpreted at all.
    let env = environ_after(
        &server,
        b"",
        &get("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\nForwarded: for\r\n"),
    );
    assert_environ(&env, &[("wsgi.url_scheme", "http"), ("HTTP_X_FORWARDED_SSL", "off")]);
}

#[test]
fn the_trust_list_comes_from_the_environment_and_star_trusts_all() {
    let server = Server::builder("environ").env("FORWARDED_ALLOW_IPS", "10.0.0.0/8").start();
    let env = environ_after(&server, b"", &get("X-Forwarded-For: 203.0.113.7\r\n"));
    assert_environ(&env, &[("REMOTE_ADDR", "127.0.0.1")]);
    // The command line wins over the environment.
    let server = Server::builder("environ")
        .env("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
        .args(&["--forwarded-allow-ips", "127.0.0.0/8"])
        .start();
    let env = environ_after(&server, b"", &get("X-Forwarded-For: 203.0.113.7\r\n"));
    assert_environ(&env, &[("REMOTE_ADDR", "203.0.113.7")]);
    // `*`: every entry is trusted, so the client is the leftmost.
    let server = Server::builder("environ").args(&["--forwarded-allow-ips", "*"]).start();
    let env = environ_after(&server, b"", &get("X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n"));
    assert_environ(&env, &[("REMOTE_ADDR", "198.51.100.1")]);
}

#[test]
fn a_bad_trust_list_stops_the_server_naming_the_entry() {
    for (option, value, says) in [
        ("--forwarded-allow-ips", "127.0.0.1,localhost", "\"localhost\" is not an IP address"),
        ("--proxy-allow-ips", "10.0.0.0/33", "\"10.0.0.0/33\" has a prefix length"),
    ] {
        let (code, log) = Bare::run(&[&lib("environ"), option, value]);
        assert_eq!(code, 2, "{log:?}");
        assert!(log.iter().any(|l| l.contains(says) && l.contains(option)), "{log:#?}");
    }
}

#[test]
fn the_proxy_protocol_with_tls_is_refused_at_start() {
    // The PROXY header precedes the TLS handshake, which rustgun starts as it accepts.
    let (code, log) = Bare::run(&[&lib("environ"), "--proxy-protocol", "--certfile", "/nonexistent.pem"]);
    assert_eq!(code, 2, "{log:?}");
    let refused =
        |l: &String| l.contains("'--proxy-protocol") && l.contains("cannot be used with '--certfile");
    assert!(log.iter().any(refused), "{log:#?}");
}

#[test]
fn rfc_7239_forwarded_names_client_scheme_and_host() {
    let server = Server::start("environ");
    let env = environ_after(
        &server,
        b"",
        &get(
            "Forwarded: for=198.51.100.1, for=\"[2001:db8::7]:4711\";proto=https;host=\"example.org:8443\"\r\n",
        ),
    );
    assert_environ(
        &env,
        &[
            ("REMOTE_ADDR", "2001:db8::7"),
            ("REMOTE_PORT", "4711"),
            ("wsgi.url_scheme", "https"),
            ("SERVER_NAME", "example.org"),
            ("SERVER_PORT", "8443"),
            ("HTTP_HOST", "internal:8000"),
        ],
    );
    // X-Forwarded-Ssl and X-Forwarded-Protocol are scheme headers too (gunicorn's defaults).
    let env = environ_after(&server, b"", &get("X-Forwarded-Ssl: on\r\n"));
    assert_environ(&env, &[("wsgi.url_scheme", "https"), ("SERVER_NAME", "internal")]);
    let env = environ_after(&server, b"", &get("X-Forwarded-Protocol: ssl\r\nX-Forwarded-Proto: https\r\n"));
    assert_environ(&env, &[("wsgi.url_scheme", "https")]);
}

#[test]
fn contradictory_or_malformed_proxy_headers_from_a_trusted_peer_get_400() {
    let server = Server::start("environ");
    server.allow_log("Invalid request from");
    for (what, headers) in [
        ("Proto https, Ssl off", "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n"),
        ("Proto http, Ssl on", "X-Forwarded-Proto: http\r\nX-Forwarded-Ssl: on\r\n"),
        ("Forwarded proto http, Proto https", "Forwarded: proto=http\r\nX-Forwarded-Proto: https\r\n"),
        ("Protocol ssl, Proto http", "X-Forwarded-Protocol: ssl\r\nX-Forwarded-Proto: http\r\n"),
        ("Forwarded with proto twice", "Forwarded: proto=https;proto=http\r\n"),
        ("Forwarded without =", "Forwarded: for\r\n"),
        ("Forwarded unterminated quote", "Forwarded: for=\"1.2.3.4\r\n"),
        ("X-Forwarded-Host not a host", "X-Forwarded-Host: a b\r\n"),
        // Held to the Host field's rule (one validator): `Host: []` is refused too.
        ("X-Forwarded-Host an empty IP-literal", "X-Forwarded-Host: []\r\n"),
        ("Forwarded host an empty IP-literal", "Forwarded: host=\"[]:80\"\r\n"),
    ] {
        assert_refused(&server, what, get(headers).as_bytes(), 400);
        // The worker goes on serving.
        let env = environ_after(&server, b"", &get(""));
        assert_environ(&env, &[("REMOTE_ADDR", "127.0.0.1")]);
    }
    // Agreeing ones are fine.
    let env = environ_after(&server, b"", &get("X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\n"));
    assert_environ(&env, &[("wsgi.url_scheme", "https")]);
}

#[test]
fn unix_socket_peers_are_always_trusted() {
    let dir = TempDir::new("proxies-unix");
    let sock = dir.join("s.sock");
    let _server = Server::builder("environ")
        .bind(&format!("unix:{}", sock.display()))
        .args(&["--forwarded-allow-ips", "10.0.0.1"])
        .start();
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(get("X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let resp = Response::parse_one(&out).expect("a response").0;
    let env = parse_environ(&resp.text());
    assert_environ(&env, &[("REMOTE_ADDR", "203.0.113.7"), ("wsgi.url_scheme", "https")]);
}

// --- PROXY protocol ---------------------------------------------------------------------------------

const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A PROXY v2 header: command byte, family byte, address block, TLVs.
fn v2(ver_cmd: u8, fam: u8, addresses: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[ver_cmd, fam]);
    h.extend_from_slice(&((addresses.len() + tlvs.len()) as u16).to_be_bytes());
    h.extend_from_slice(addresses);
    h.extend_from_slice(tlvs);
    h
}

/// The INET address block for 192.0.2.7:51234 → 10.0.0.1:8000.
fn inet4() -> Vec<u8> {
    let mut a = vec![192, 0, 2, 7, 10, 0, 0, 1];
    a.extend_from_slice(&51234u16.to_be_bytes());
    a.extend_from_slice(&8000u16.to_be_bytes());
    a
}

#[test]
fn proxy_protocol_v1_and_v2_name_the_client() {
    let server = Server::builder("environ").arg("--proxy-protocol").start();
    let client = |prefix: &[u8]| {
        let env = environ_after(&server, prefix, &get(""));
        (env["REMOTE_ADDR"].clone(), env["REMOTE_PORT"].clone())
    };
    let own = |(addr, port): (String, String)| addr == "127.0.0.1" && port != "0";
    assert_eq!(client(b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000\r\n"), ("192.0.2.7".into(), "51234".into()));
    assert_eq!(client(b"PROXY TCP6 2001:db8::7 ::1 443 8000\r\n"), ("2001:db8::7".into(), "443".into()));
    assert!(own(client(b"PROXY UNKNOWN\r\n")), "UNKNOWN keeps the connection's peer");
    assert_eq!(client(&v2(0x21, 0x11, &inet4(), &[])), ("192.0.2.7".into(), "51234".into()));
    let tlvs = [0x01, 0x00, 0x02, b'h', b'2', 0x05, 0x00, 0x03, b'a', b'b', b'c'];
    assert_eq!(client(&v2(0x21, 0x11, &inet4(), &tlvs)), ("192.0.2.7".into(), "51234".into()));
    let mut six = vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07];
    six.extend_from_slice(&[0; 15]);
    six.push(1);
    six.extend_from_slice(&[0x01, 0xbb, 0x1f, 0x40]);
    assert_eq!(client(&v2(0x21, 0x21, &six, &[])), ("2001:db8::7".into(), "443".into()));
    assert!(own(client(&v2(0x20, 0x00, &[], &[]))), "LOCAL keeps the connection's peer");
    assert!(own(client(&v2(0x21, 0x31, &[0; 216], &[]))), "a unix client keeps the connection's peer");
}

#[test]
fn a_proxy_header_holds_for_every_request_on_the_connection_even_when_split() {
    let server = Server::builder("environ").arg("--proxy-protocol").start();
    server.allow_log("Invalid request from");
    let header = v2(0x21, 0x11, &inet4(), &[0xEE, 0x00, 0x01, 0x00]);
    let mut conn = server.conn();
    conn.stream.set_nodelay(true).unwrap();
    // The header arrives in pieces, the last one together with the first request.
    conn.send(&header[..5]);
    conn.send(&header[5..14]);
    let mut rest = header[14..].to_vec();
    rest.extend_from_slice(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n");
    conn.send(&rest);
    let first = parse_environ(&conn.response().text());
    assert_environ(&first, &[("REMOTE_ADDR", "192.0.2.7"), ("PATH_INFO", "/1")]);
    // The next request on the same connection needs (and may have) no header of its own.
    conn.send(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let second = parse_environ(&conn.response().text());
    assert_environ(&second, &[("REMOTE_ADDR", "192.0.2.7"), ("PATH_INFO", "/2")]);
    conn.send(b"PROXY TCP4 192.0.2.8 10.0.0.1 1 2\r\nGET /3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response().status, 400, "a second PROXY header is not HTTP");
}

#[test]
fn malformed_proxy_headers_get_400_and_a_close() {
    let server =
        Server::builder("environ").args(&["--proxy-protocol", "--metrics-bind", "127.0.0.1:0"]).start();
    server.allow_log("Invalid request from");
    let request = get("");
    for (what, header) in [
        ("no header", Vec::new()),
        ("v1 without ports", b"PROXY TCP4 192.0.2.7 10.0.0.1\r\n".to_vec()),
        ("v1 IPv6 under TCP4", b"PROXY TCP4 ::1 ::1 1 2\r\n".to_vec()),
        ("v1 port out of range", b"PROXY TCP4 192.0.2.7 10.0.0.1 70000 2\r\n".to_vec()),
        ("v1 bare LF", b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\n".to_vec()),
        ("v1 over 107 bytes", format!("PROXY UNKNOWN {}\r\n", "x".repeat(120)).into_bytes()),
        ("v2 version 1", v2(0x11, 0x11, &inet4(), &[])),
        ("v2 command 2", v2(0x22, 0x11, &inet4(), &[])),
        ("v2 family 4", v2(0x21, 0x41, &inet4(), &[])),
        ("v2 INET too short", v2(0x21, 0x11, &inet4()[..8], &[])),
    ] {
        let mut bytes = header;
        bytes.extend_from_slice(request.as_bytes());
        assert_refused(&server, what, &bytes, 400);
    }
    // A connection that leaves before its header is complete gets nothing.
    let mut conn = server.conn();
    conn.send(b"PROXY TCP4 192.0.2.7");
    conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
    conn.assert_closed();
    server.wait_for_log("Invalid request from ip=127.0.0.1: malformed PROXY v1 line");
    // The ten refused are counted; the one that left is not.
    let m = server.metrics();
    assert_eq!(m["rustgun_connections_refused_total{reason=\"proxy\"}"], 10.0, "{m:?}");
    assert_eq!(m["rustgun_connections_refused_total{reason=\"tls\"}"], 0.0, "{m:?}");
}

#[test]
fn a_proxy_header_from_a_peer_not_allowed_gets_403() {
    let server =
        Server::builder("environ").args(&["--proxy-protocol", "--proxy-allow-ips", "10.0.0.0/8"]).start();
    let header = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000\r\n";
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(get("").as_bytes());
    assert_refused(&server, "untrusted sender", &bytes, 403);
    server.wait_for_log("not in --proxy-allow-ips (403)");
    // gunicorn's spelling of the option works too.
    let server = Server::builder("environ").args(&["--proxy-protocol", "--proxy-allow-from", "*"]).start();
    assert_eq!(environ_after(&server, header, &get(""))["REMOTE_ADDR"], "192.0.2.7");
}

#[test]
fn proxy_headers_are_judged_by_the_client_the_proxy_protocol_names() {
    // The PROXY header makes 192.0.2.7 the peer: its X-Forwarded-For counts only if it is trusted.
    let header = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000\r\n";
    let xff = get("X-Forwarded-For: 203.0.113.7\r\n");
    let server = Server::builder("environ").arg("--proxy-protocol").start();
    assert_eq!(environ_after(&server, header, &xff)["REMOTE_ADDR"], "192.0.2.7");
    let server = Server::builder("environ")
        .args(&["--proxy-protocol", "--forwarded-allow-ips", "192.0.2.0/24"])
        .start();
    assert_eq!(environ_after(&server, header, &xff)["REMOTE_ADDR"], "203.0.113.7");
}

#[test]
fn proxy_protocol_over_a_unix_socket_is_always_allowed() {
    let dir = TempDir::new("proxies-pp-unix");
    let sock = dir.join("s.sock");
    let _server = Server::builder("environ")
        .bind(&format!("unix:{}", sock.display()))
        .args(&["--proxy-protocol", "--proxy-allow-ips", "10.0.0.1"])
        .start();
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000\r\n").unwrap();
    s.write_all(get("").as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let env = parse_environ(&Response::parse_one(&out).expect("a response").0.text());
    assert_environ(&env, &[("REMOTE_ADDR", "192.0.2.7"), ("REMOTE_PORT", "51234")]);
}
