//! TLS: `--certfile`/`--keyfile` serve HTTPS to curl and Python's `ssl` with a CA and certificates the
//! test generates (rcgen); the app sees `wsgi.url_scheme: https`; keep-alive, uploads and large and
//! close-delimited responses work over TLS; `--cert-reqs`/`--ca-certs` demand client certificates; a
//! bad certificate file stops the master naming the file; plain HTTP and stalled handshakes on the TLS
//! port are closed without blocking other clients.

use crate::procs::{Bare, TempDir, error_lines, lib};
use crate::support::{Server, python, run};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

/// A CA, a server certificate for `localhost` and 127.0.0.1 signed by it, a client certificate signed
/// by it, and a client certificate from a stranger CA, as PEM files in a temp dir.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params("rustgun test CA").self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();

        let mut server =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        server.distinguished_name.push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
        // Certificate and key in one file, as --certfile alone accepts.
        std::fs::write(dir.join("combined.pem"), server_cert.pem() + &server_key.serialize_pem()).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let client_cert = client_params("test client").signed_by(&client_key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join("client.pem"), client_cert.pem()).unwrap();
        std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();

        let stranger_key = KeyPair::generate().unwrap();
        let stranger_ca = ca_params("stranger CA").self_signed(&stranger_key).unwrap();
        let rogue_key = KeyPair::generate().unwrap();
        let rogue = client_params("rogue client").signed_by(&rogue_key, &stranger_ca, &stranger_key).unwrap();
        std::fs::write(dir.join("rogue.pem"), rogue.pem()).unwrap();
        std::fs::write(dir.join("rogue.key"), rogue_key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn arg(&self, name: &str) -> String {
        self.dir.arg(name)
    }

    /// A TLS server of `app` with this PKI's server certificate and `extra` options.
    fn server(&self, app: &str, extra: &[&str]) -> Server {
        let (cert, key) = (self.arg("server.pem"), self.arg("server.key"));
        Server::builder(app).args(&["--certfile", &cert, "--keyfile", &key]).args(extra).start()
    }

    /// Runs curl against `https://localhost:PORT{path}` (resolved to the server), trusting the CA;
    /// returns (exit code, stdout, stderr).
    fn curl(&self, server: &Server, extra: &[&str], paths: &[&str]) -> (i32, String, String) {
        let port = server.addr.port();
        let resolve = format!("localhost:{port}:127.0.0.1");
        let urls: Vec<String> = paths.iter().map(|p| format!("https://localhost:{port}{p}")).collect();
        let ca = self.arg("ca.pem");
        run(Command::new("curl")
            .args(["-s", "-S", "--max-time", "10", "--cacert", &ca, "--resolve", &resolve])
            .args(extra)
            .args(&urls))
    }

    /// Like [`curl`](Pki::curl) but the transfer must succeed; returns (stdout, stderr).
    fn curl_ok(&self, server: &Server, extra: &[&str], paths: &[&str]) -> (String, String) {
        let (code, out, err) = self.curl(server, extra, paths);
        assert_eq!(
            code,
            0,
            "curl {extra:?} {paths:?} failed:\n{err}\nserver log:\n{}",
            server.log().join("\n")
        );
        (out, err)
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn client_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

#[test]
fn curl_gets_hello_world_over_https() {
    let pki = Pki::new("tls-hello");
    let server = pki.server("hello", &[]);
    let (out, err) = pki.curl_ok(&server, &["-v"], &["/"]);
    assert_eq!(out, "Hello, World!");
    assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    assert!(err.contains("SSL certificate verify ok"), "{err}");
}

#[test]
fn certfile_alone_may_hold_the_key_too() {
    let pki = Pki::new("tls-combined");
    let combined = pki.arg("combined.pem");
    let server = Server::builder("hello").args(&["--certfile", &combined]).start();
    assert_eq!(pki.curl_ok(&server, &[], &["/"]).0, "Hello, World!");
}

#[test]
fn the_app_sees_the_https_scheme() {
    let pki = Pki::new("tls-environ");
    let server = pki.server("environ", &[]);
    let (out, _) = pki.curl_ok(&server, &[], &["/where?x=1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"wsgi.url_scheme: https"), "{out}");
    assert!(lines.contains(&"PATH_INFO: /where"), "{out}");
    assert!(lines.contains(&format!("SERVER_PORT: {}", server.addr.port()).as_str()), "{out}");
    assert!(lines.contains(&"SERVER_NAME: localhost"), "{out}");

    // Without TLS the same app still says http.
    let plain = Server::start("environ");
    assert!(plain.get("/").text().lines().any(|l| l == "wsgi.url_scheme: http"));
}

#[test]
fn curl_keeps_one_tls_connection_alive_for_two_urls() {
    let pki = Pki::new("tls-keepalive");
    let server = pki.server("chaos", &[]);
    let path = "/environ?key=REMOTE_PORT";
    let (out, err) = pki.curl_ok(&server, &["-v", "-w", "\\n"], &[path, path]);
    assert!(err.contains("Re-using existing connection"), "{err}");
    let ports: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(ports.len(), 2, "{out:?}");
    assert_eq!(ports[0], ports[1], "both requests came over the same connection");
}

#[test]
fn a_post_body_goes_through_the_echo_app_over_tls() {
    let pki = Pki::new("tls-post");
    let server = pki.server("echo", &[]);
    let (out, _) = pki.curl_ok(&server, &["-d", "a=1&b=2"], &["/form"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["method"].as_str(), v["body"].as_str()), (Some("POST"), Some("a=1&b=2")));

    // Chunked upload, too.
    let (out, _) = pki.curl_ok(&server, &["-H", "Transfer-Encoding: chunked", "-d", "in chunks"], &["/up"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["body"], "in chunks");
}

#[test]
fn megabytes_flow_both_ways_over_tls() {
    let pki = Pki::new("tls-big");
    let server = pki.server("chaos", &[]);
    // Many TLS records each way: a 3 MB upload echoed back, and a 5 MB download.
    let upload = pki.dir.join("upload.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&upload, &data).unwrap();
    let echoed = pki.dir.join("echoed.bin");
    let (up, down) = (format!("@{}", upload.display()), echoed.display().to_string());
    pki.curl_ok(&server, &["--data-binary", &up, "-o", &down], &["/echo"]);
    assert!(std::fs::read(&echoed).unwrap() == data, "the echoed body differs from the upload");

    let (out, _) =
        pki.curl_ok(&server, &["-o", "/dev/null", "-w", "%{size_download}"], &["/big?bytes=5000000"]);
    assert_eq!(out, "5000000");
}

#[test]
fn a_close_delimited_response_ends_with_close_notify() {
    let pki = Pki::new("tls-close");
    let server = pki.server("chaos", &[]);
    // HTTP/1.0 and no Content-Length: the end of the body is the end of the connection. curl offers
    // ALPN http/1.0 alone here.
    let (out, err) = pki.curl_ok(&server, &["--http1.0", "-v"], &["/stream?chunks=3"]);
    assert_eq!(out, "chunk 0\nchunk 1\nchunk 2\n");
    assert!(!err.contains("Content-Length"), "the response must be close-delimited: {err}");
    // Such a body is only known complete after the server's close_notify: a TLS EOF without it is a
    // truncation to a strict client (Python's ssl with suppress_ragged_eofs=False raises on it).
    let out = python(
        r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
s.sendall(b"GET /stream?chunks=3 HTTP/1.0\r\nHost: localhost\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n\r\n", 1)[1].decode(), end="")
"#,
        &[&server.addr.port().to_string(), &pki.arg("ca.pem")],
    );
    assert_eq!(out, "chunk 0\nchunk 1\nchunk 2\n");
}

#[test]
fn required_client_certificates_are_checked_against_ca_certs() {
    let pki = Pki::new("tls-mtls");
    let ca = pki.arg("ca.pem");
    let server = pki.server("environ", &["--cert-reqs", "required", "--ca-certs", &ca]);

    let (code, out, err) = pki.curl(&server, &[], &["/"]);
    assert_ne!(code, 0, "no client certificate must fail; got {out}");
    assert!(out.is_empty(), "{out}");
    assert!(!err.is_empty());

    let (cert, key) = (pki.arg("rogue.pem"), pki.arg("rogue.key"));
    let (code, out, _) = pki.curl(&server, &["--cert", &cert, "--key", &key], &["/"]);
    assert_ne!(code, 0, "a certificate from another CA must fail; got {out}");

    let (cert, key) = (pki.arg("client.pem"), pki.arg("client.key"));
    let (out, _) = pki.curl_ok(&server, &["--cert", &cert, "--key", &key], &["/"]);
    assert!(out.lines().any(|l| l == "wsgi.url_scheme: https"), "{out}");
}

#[test]
fn optional_client_certificates_may_be_left_out_but_not_forged() {
    let pki = Pki::new("tls-optional");
    let ca = pki.arg("ca.pem");
    // gunicorn's number for CERT_OPTIONAL.
    let server = pki.server("hello", &["--cert-reqs", "1", "--ca-certs", &ca]);
    assert_eq!(pki.curl_ok(&server, &[], &["/"]).0, "Hello, World!");
    let (cert, key) = (pki.arg("client.pem"), pki.arg("client.key"));
    assert_eq!(pki.curl_ok(&server, &["--cert", &cert, "--key", &key], &["/"]).0, "Hello, World!");
    let (cert, key) = (pki.arg("rogue.pem"), pki.arg("rogue.key"));
    let (code, _, _) = pki.curl(&server, &["--cert", &cert, "--key", &key], &["/"]);
    assert_ne!(code, 0, "a certificate from another CA must fail even when optional");
}

/// Runs a server that must refuse to start; returns its one ERROR line.
fn refused(extra: &[&str]) -> String {
    let hello = lib("hello");
    let mut args = vec![hello.as_str(), "--bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (code, log) = Bare::run(&args);
    let all = log.join("\n");
    assert_eq!(code, 1, "exit code; log:\n{all}");
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "exactly one ERROR line; log:\n{all}");
    assert!(!log.iter().any(|l| l.contains("Booting worker")), "no worker may start:\n{all}");
    errors[0].clone()
}

#[test]
fn bad_tls_files_stop_the_master_naming_the_file() {
    let pki = Pki::new("tls-bad");
    let (cert, key) = (pki.arg("server.pem"), pki.arg("server.key"));

    let line = refused(&["--certfile", "/nonexistent/cert.pem", "--keyfile", &key]);
    assert!(line.contains("/nonexistent/cert.pem") && line.contains("No such file"), "{line}");

    let line = refused(&["--certfile", &cert, "--keyfile", "/nonexistent/key.pem"]);
    assert!(line.contains("/nonexistent/key.pem"), "{line}");

    let garbage = pki.arg("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let line = refused(&["--certfile", &garbage, "--keyfile", &key]);
    assert!(line.contains(&garbage) && line.contains("no PEM certificate"), "{line}");
    let line = refused(&["--certfile", &cert, "--keyfile", &garbage]);
    assert!(line.contains(&garbage) && line.contains("private key"), "{line}");

    // A key that is not the certificate's.
    let other_key = pki.arg("client.key");
    let line = refused(&["--certfile", &cert, "--keyfile", &other_key]);
    assert!(line.contains(&cert) && line.contains(&other_key), "{line}");

    let line = refused(&["--certfile", &cert, "--keyfile", &key, "--cert-reqs", "required"]);
    assert!(line.contains("--ca-certs"), "{line}");
    let line = refused(&[
        "--certfile",
        &cert,
        "--keyfile",
        &key,
        "--cert-reqs",
        "2",
        "--ca-certs",
        "/nonexistent/ca.pem",
    ]);
    assert!(line.contains("/nonexistent/ca.pem"), "{line}");
    let line = refused(&["--keyfile", &key]);
    assert!(line.contains("--certfile"), "{line}");

    // An unknown --cert-reqs is a usage error from the command line parser.
    let (code, _, err) =
        run(Command::new(env!("CARGO_BIN_EXE_rustgun")).args([&lib("hello"), "--cert-reqs", "3"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--cert-reqs"), "{err}");
}

#[test]
fn plain_http_on_the_tls_port_gets_no_http_response() {
    let pki = Pki::new("tls-plain");
    let server = pki.server("hello", &["--metrics-bind", "127.0.0.1:0"]);
    for _ in 0..3 {
        let reply = server.raw(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        assert!(
            !reply.starts_with(b"HTTP/"),
            "plain HTTP was answered: {:?}",
            String::from_utf8_lossy(&reply)
        );
        // The only thing sent, if anything, is a TLS alert record (content type 21).
        assert!(reply.is_empty() || reply[0] == 21, "{reply:?}");
    }
    assert_eq!(pki.curl_ok(&server, &[], &["/"]).0, "Hello, World!");
    assert_eq!(server.worker_pids().len(), 1, "the worker survived");
    // Each failed handshake counts as a refused connection; curl's good one does not.
    let m = server.metrics();
    assert_eq!(m["rustgun_connections_refused_total{reason=\"tls\"}"], 3.0, "{m:?}");
    assert_eq!(m["rustgun_connections_accepted_total"], 4.0, "{m:?}");
}

#[test]
fn a_stalled_handshake_does_not_pin_the_worker_past_the_header_timeout() {
    let pki = Pki::new("tls-stall");
    // One sync worker: while it waits on a silent client, nobody else is served.
    let server = pki.server("hello", &["--header-timeout", "1"]);
    let mut silent = server.connect();
    let mut half = server.connect();
    // The first bytes of a ClientHello record, and then nothing. Nothing to wait for before curl:
    // both connections are queued ahead of its own, and the worker takes up `half` only once it has
    // given up on `silent`, long after these bytes are in (under `threads` and `event` other threads or
    // the loop serve curl whatever the order).
    half.write_all(&[22, 3, 1, 0, 200, 1, 0]).unwrap();
    let started = Instant::now();
    assert_eq!(pki.curl_ok(&server, &[], &["/"]).0, "Hello, World!");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "a TLS client waited {took:?} behind two stalled handshakes");
    // The stalled connections were closed by the server (its header timeout, not our read timeout),
    // without an HTTP answer (a 408 cannot be sent before the handshake).
    for stream in [&mut silent, &mut half] {
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("a stalled handshake was not closed: {e}"),
        }
        assert!(!rest.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&rest));
    }
}

#[test]
fn python_ssl_and_http_client_talk_to_the_tls_server() {
    let pki = Pki::new("tls-python");
    let ca = pki.arg("ca.pem");
    let server = pki.server("chaos", &["--cert-reqs", "optional", "--ca-certs", &ca]);
    let out = python(
        r#"
import http.client, ssl, sys
port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
for with_cert in (False, True):
    ctx = ssl.create_default_context(cafile=ca)
    if with_cert:
        ctx.load_cert_chain(cert, key)
    # The certificate names 127.0.0.1 as well as localhost.
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    for method, path, body in [("GET", "/environ?key=wsgi.url_scheme", None),
                               ("POST", "/echo", b"y" * 200000),
                               ("GET", "/environ?key=REMOTE_PORT", None),
                               ("GET", "/environ?key=REMOTE_PORT", None)]:
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        print(r.status, len(data), data[:8].decode(), c.sock.version())
    c.close()
"#,
        &[&server.addr.port().to_string(), &ca, &pki.arg("client.pem"), &pki.arg("client.key")],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    for run in lines.chunks(4) {
        assert_eq!(run[0], "200 5 https TLSv1.3", "{out}");
        assert_eq!(run[1], "200 200000 yyyyyyyy TLSv1.3", "{out}");
        assert_eq!(run[2], run[3], "one connection for all requests: {out}");
    }
}

#[test]
fn websockets_over_tls_echo_compressed_messages_for_native_and_asgi_apps() {
    let pki = Pki::new("tls-wss");
    let (cert, key) = (pki.arg("server.pem"), pki.arg("server.key"));
    let native = pki.server("ws_echo", &["-k", "event"]);
    let asgi_apps = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asgi_apps");
    let asgi = Server::builder("asgi")
        .args(&["-k", "event", "--certfile", &cert, "--keyfile", &key])
        .env("VIRTUAL_ENV", &crate::support::pyenv().display().to_string())
        .app_arg("--pythonpath")
        .app_arg(&asgi_apps.display().to_string())
        .app_arg("fastapi_app:app")
        .start();
    let out = python(
        r#"
import asyncio, ssl, sys, websockets
ctx = ssl.create_default_context(cafile=sys.argv[1])
async def session(url):
    async with websockets.connect(url, ssl=ctx, subprotocols=["echo"]) as ws:
        await ws.send("over tls")
        text = await ws.recv()
        big = bytes(range(256)) * 1200
        await ws.send(big)
        back = await ws.recv()
        return [text, back == big, ws.protocol.extensions[0].name if ws.protocol.extensions else None]
async def main():
    print(await session("wss://localhost:%s/echo" % sys.argv[2]))
    print(await session("wss://localhost:%s/ws" % sys.argv[3]))
asyncio.run(main())
"#,
        &[&pki.arg("ca.pem"), &native.addr.port().to_string(), &asgi.addr.port().to_string()],
    );
    assert_eq!(
        out.trim(),
        "['over tls', True, 'permessage-deflate']\n['echo: over tls', True, 'permessage-deflate']"
    );
}
