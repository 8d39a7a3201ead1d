//! HTTP/2 served by the event class (`--http-protocols h1,h2`): h2c by prior knowledge for trusted
//! peers, h2 by ALPN under TLS beside HTTP/1.1 on the same port, to curl, nghttp, h2load, httpx and
//! Python's `h2` frame by frame (`tests/h2_cases/cases.py`). Native, WSGI and ASGI apps see each
//! stream as a request of `HTTP/2`; bodies stream both ways; a stream whose client keeps its window
//! shut holds up no other and is reset by the minimum rate; trailers reach the client; the defences
//! (rapid reset, CONTINUATION flood, HPACK bomb, PING flood, idle connections) hold; a stop sends
//! GOAWAY and lets the stream in flight finish. The sync class keeps HTTP/1.1 and says so.

use crate::asgi::asgi_on;
use crate::procs::TempDir;
use crate::support::{Builder, Server, pyenv, python, run};
use crate::wsgi::{rss, wsgi};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// HTTP/2 on, h2c both ways, under the event class.
const H2: &[&str] = &["-k", "event", "--http-protocols", "h1,h2", "--http2-cleartext", "both"];

/// Runs `case` of tests/h2_cases/cases.py against `server`; its last line.
fn case(server: &Server, name: &str) -> String {
    case_with(server, name, &[])
}

/// The same, with more arguments for the case.
fn case_with(server: &Server, name: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/h2_cases/cases.py");
    let port = server.addr.port().to_string();
    let (code, out, err) =
        run(Command::new(pyenv().join("bin/python")).arg(&script).args([name, &port]).args(args));
    assert_eq!(code, 0, "case {name} failed:\n{err}\n{out}\nserver log:\n{}", server.log().join("\n"));
    out.lines().last().unwrap_or_default().to_string()
}

/// curl with `args` against `server`: its stdout.
fn curl(server: &Server, args: &[&str]) -> String {
    let (code, out, err) = run(Command::new("curl").args(["-s", "-S", "--max-time", "20"]).args(args));
    assert_eq!(code, 0, "curl {args:?} failed:\n{err}\nserver log:\n{}", server.log().join("\n"));
    out
}

/// Makes the gRPC unary call `/rustgun.Echo/Shout` with grpcio to `target` (`HOST:PORT`): the reply
/// and the call's status, as `REPLY StatusCode.X`.
pub fn grpc_shout(target: &str) -> String {
    python(
        r#"
import sys, grpc
with grpc.insecure_channel(sys.argv[1], options=[("grpc.enable_http_proxy", 0)]) as channel:
    shout = channel.unary_unary("/rustgun.Echo/Shout")
    reply, call = shout.with_call(b"hello grpc", timeout=20)
    print(reply.decode(), call.code())
"#,
        &[target],
    )
    .trim()
    .to_string()
}

fn flask() -> Builder {
    wsgi("flask_app:app").args(H2)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

#[test]
fn curl_speaks_h2c_by_prior_knowledge_and_the_app_sees_each_stream_as_an_http2_request() {
    let server = Server::builder("echo").args(H2).start();
    let version = ["--http2-prior-knowledge", "-w", "\n%{http_version}"];
    // (One URL per curl: curl 7.88 cannot reuse a prior-knowledge connection, whatever the server.)
    let out = curl(&server, &[&version[..], &[&server.url("/a?x=1")]].concat());
    let (first, v1) = out.rsplit_once('\n').unwrap();
    let out = curl(&server, &[&version[..], &["-d", "hello", &server.url("/b")]].concat());
    let (second, v2) = out.rsplit_once('\n').unwrap();
    let (first, second) = (json(first), json(second));
    assert_eq!((v1, v2), ("2", "2"));
    assert_eq!(first["version"], "HTTP/2", "{first}");
    assert_eq!(first["query"], "x=1", "{first}");
    assert_eq!(second["method"], "POST", "{second}");
    assert_eq!(second["body"], "hello", "{second}");
    // The authority became the Host field the app reads.
    let host = format!("127.0.0.1:{}", server.addr.port());
    assert!(
        first["headers"].as_array().unwrap().iter().any(|h| h[0] == "host" && h[1] == host.as_str()),
        "{first}"
    );
}

#[test]
fn a_prior_knowledge_port_refuses_http1_from_a_trusted_peer_and_serves_everyone_else_as_before() {
    let only = ["-k", "event", "--http-protocols", "h1,h2", "--http2-cleartext", "prior-knowledge"];
    let server = Server::builder("hello").args(&only).start();
    server.allow_log("not the HTTP/2 preface");
    assert_eq!(server.get("/").status, 400);
    let out = curl(&server, &["--http2-prior-knowledge", "-w", "%{http_version}", &server.url("/")]);
    assert!(out.ends_with('2'), "{out}");
    // A peer outside --forwarded-allow-ips is served HTTP/1.x as if HTTP/2 were off: its preface is
    // an HTTP/1.1 request line of a version we do not serve.
    let untrusted = Server::builder("hello").args(&only).args(&["--forwarded-allow-ips", "10.9.9.9"]).start();
    untrusted.allow_log("Invalid request");
    assert_eq!(untrusted.get("/").status, 200);
    let answer = untrusted.raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(answer.starts_with(b"HTTP/1.1 505"), "{}", String::from_utf8_lossy(&answer));
}

#[test]
fn upgrade_h2c_turns_a_bodiless_request_into_stream_1_and_a_request_with_a_body_stays_http11() {
    let server = Server::builder("echo").args(H2).start();
    let version = ["--http2", "-w", "\n%{http_version}"];
    // curl's `--http2` on an http:// URL asks with `Upgrade: h2c` and `HTTP2-Settings`.
    let out = curl(&server, &[&version[..], &["-v", &server.url("/up")]].concat());
    let (body, v) = out.rsplit_once('\n').unwrap();
    assert_eq!((json(body)["version"].as_str(), v), (Some("HTTP/2"), "2"), "{out}");
    let out = curl(&server, &[&version[..], &["-d", "abc", &server.url("/post")]].concat());
    let (body, v) = out.rsplit_once('\n').unwrap();
    assert_eq!((json(body)["body"].as_str(), v), (Some("abc"), "1.1"), "{out}");
    // A peer outside --forwarded-allow-ips is not upgraded.
    let untrusted = Server::builder("echo").args(H2).args(&["--forwarded-allow-ips", "10.9.9.9"]).start();
    let out = curl(&untrusted, &[&version[..], &[&untrusted.url("/up")]].concat());
    assert!(out.ends_with("\n1.1"), "{out}");
    // A malformed HTTP2-Settings is a 400.
    server.allow_log("HTTP2-Settings");
    let answer = server.raw(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: !!\r\n\r\n",
    );
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&answer));
}

#[test]
fn tls_negotiates_h2_by_alpn_and_keeps_http11_for_a_client_that_asks_for_it() {
    let dir = TempDir::new("h2-tls");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let (certfile, keyfile) = (dir.arg("cert.pem"), dir.arg("key.pem"));
    let tls = ["-k", "event", "--http-protocols", "h2,h1", "--certfile", &certfile, "--keyfile", &keyfile];
    let server = Server::builder("echo").args(&tls).start();
    let url = format!("https://127.0.0.1:{}/t", server.addr.port());
    let h2 = curl(&server, &["-k", "--http2", "-w", "\n%{http_version}", &url]);
    let (body, version) = h2.rsplit_once('\n').unwrap();
    assert_eq!((json(body)["version"].as_str(), version), (Some("HTTP/2"), "2"), "{h2}");
    let h1 = curl(&server, &["-k", "--http1.1", "-w", "\n%{http_version}", &url]);
    let (body, version) = h1.rsplit_once('\n').unwrap();
    assert_eq!((json(body)["version"].as_str(), version), (Some("HTTP/1.1"), "1.1"), "{h1}");
    let (code, out, err) = run(Command::new("h2load").args(["-n", "400", "-c", "2", "-m", "16", &url]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Application protocol: h2"), "{out}");
    assert!(out.contains("400 succeeded, 0 failed"), "{out}");
}

#[test]
fn the_sync_class_keeps_http11_and_says_so_at_boot() {
    let server = Server::builder("hello").args(&["-k", "sync", "--http-protocols", "h1,h2"]).spawn();
    server.allow_log("serves HTTP/1.1 only");
    server.wait_for_log("--http-protocols asks for h2, but the sync worker class serves HTTP/1.1 only");
    server.wait_for_log("Ready:");
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn h2load_and_nghttp_complete_every_request_on_a_few_connections() {
    let server = Server::builder("hello").args(H2).start();
    let url = server.url("/");
    for (clients, streams) in [("1", "1"), ("4", "32"), ("2", "256")] {
        let (code, out, err) =
            run(Command::new("h2load").args(["-n", "3000", "-c", clients, "-m", streams, &url]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("3000 succeeded, 0 failed"), "-c {clients} -m {streams}: {out}");
        assert!(out.contains("3000 2xx"), "{out}");
    }
    let (code, out, err) = run(Command::new("nghttp").args(["-n", "-s", &url, &url, &url]));
    assert_eq!(code, 0, "{err}{out}");
}

#[test]
fn flask_streams_large_bodies_both_ways_and_its_environ_says_http2() {
    let server = flask().start();
    let download = curl(
        &server,
        &[
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &server.url("/download?mb=8"),
        ],
    );
    assert_eq!(download, (8 * 1024 * 1024).to_string());
    let dir = TempDir::new("h2-upload");
    std::fs::write(dir.join("up.bin"), vec![7u8; 3_000_000]).unwrap();
    let upload = format!("@{}", dir.arg("up.bin"));
    let out = curl(&server, &["--http2-prior-knowledge", "--data-binary", &upload, &server.url("/upload")]);
    assert_eq!(json(&out)["bytes"], 3_000_000, "{out}");
    let environ = Server::builder("environ").args(H2).start();
    let out = curl(&environ, &["--http2-prior-knowledge", &environ.url("/e")]);
    assert!(out.contains("SERVER_PROTOCOL: HTTP/2\n"), "{out}");
}

#[test]
fn asgi_apps_see_http_version_2_and_httpx_speaks_to_fastapi_over_h2c() {
    let raw = asgi_on("event", &[], "raw:app").args(&H2[2..]).start();
    let scope = json(&curl(&raw, &["--http2-prior-knowledge", &raw.url("/scope")]));
    assert_eq!(scope["http_version"], "2", "{scope}");
    assert_eq!(case(&raw, "trailers"), "ok trailers {'x-digest': 'abc', 'grpc-status': '0'}");
    // A gRPC client's unary call: its status arrives in the trailers.
    assert_eq!(grpc_shout(&raw.addr.to_string()), "HELLO GRPC StatusCode.OK");
    let fastapi = asgi_on("event", &[], "fastapi_app:app").args(&H2[2..]).start();
    let out = python(
        r#"
import sys, httpx
with httpx.Client(http1=False, http2=True, base_url=sys.argv[1]) as client:
    user = client.get("/users/7")
    item = client.post("/items", json={"name": "pen", "price": 1.5})
    print(user.http_version, user.status_code, user.json()["id"], item.status_code, item.json()["name"])
"#,
        &[&fastapi.url("")],
    );
    assert_eq!(out.trim(), "HTTP/2 200 7 200 pen");
    // An upload many windows long: an async app's stream is credited only as the app reads it.
    let dir = TempDir::new("h2-asgi-upload");
    std::fs::write(dir.join("up.bin"), vec![1u8; 1_000_000]).unwrap();
    let upload = format!("@{}", dir.arg("up.bin"));
    let out = curl(&fastapi, &["--http2-prior-knowledge", "--data-binary", &upload, &fastapi.url("/length")]);
    assert_eq!(json(&out)["length"], 1_000_000, "{out}");
}

#[test]
fn every_block_reaches_the_client_before_the_app_makes_the_next_one() {
    let relay = |server: &Server, path: &str| {
        let dir = TempDir::new("h2-relay");
        let fifo = std::ffi::CString::new(dir.arg("acks")).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path this test owns.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        assert_eq!(
            case_with(server, "relay", &[path, &dir.arg(""), "4"]),
            "ok 4 blocks, each before the next was made"
        );
    };
    // Pushed and pulled by a native app, and pushed by WSGI's write().
    let native = Server::builder("chaos").args(H2).start();
    relay(&native, "/relay");
    relay(&native, "/relay-pull");
    let wsgi_relay = wsgi("relay").args(H2).start();
    relay(&wsgi_relay, "/write");
}

#[test]
fn a_stream_whose_client_keeps_its_window_shut_holds_up_no_other_stream() {
    // A pull-mode body (a Flask generator), and a body pushed by WSGI's write() (spilled to a file
    // past 128 KiB: the app never waits on the client).
    let server = flask().start();
    assert!(case(&server, "stalled").starts_with("ok stream 3 answered while stream 1 held"));
    let pushed = wsgi("pushed").args(H2).start();
    assert!(
        case_with(&pushed, "stalled", &["/pushed?mb=2"])
            .starts_with("ok stream 3 answered while stream 1 held")
    );
    // One write larger than the window and the memory part together, with no length: all of it
    // comes back from the spill file, then the end.
    let url = pushed.url("/pushed-whole?mb=3");
    let whole =
        curl(&pushed, &["--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{size_download}", &url]);
    assert_eq!(whole, (3 << 20).to_string());
}

#[test]
fn a_stream_whose_window_never_opens_is_reset_by_the_minimum_rate_and_the_connection_goes_on() {
    let server = flask().args(&["--min-rate-period", "1"]).start();
    server.allow_log("Dropped a client");
    assert_eq!(case(&server, "zero-window"), "ok reset CANCEL, then stream 3 answered");
    server.wait_for_log("Dropped a client taking an HTTP/2 stream's response slower than --min-rate");
}

#[test]
fn a_client_that_opens_huge_windows_and_reads_nothing_holds_a_bounded_part_of_the_worker() {
    let dir = TempDir::new("h2-stall");
    std::fs::File::create(dir.join("big.bin")).unwrap().set_len(1 << 30).unwrap();
    let server = wsgi("files").args(H2).args(&["--min-rate-period", "2"]).start();
    let worker = server.wait_for_workers(1)[0];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/h2_cases/cases.py");
    let path = format!("/?path={}", dir.arg("big.bin"));
    let mut client = Command::new(pyenv().join("bin/python"))
        .arg(&script)
        .args(["huge-window", &server.addr.port().to_string(), &path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("stalled"));
    // The 1 GiB file is read only as far as the frames queued for the client stay bounded, and the
    // loop serves everyone else meanwhile.
    for i in 0..50 {
        let head = format!("HEAD {path}&n={i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert!(server.raw(head.as_bytes()).starts_with(b"HTTP/1.1 200"), "request {i}");
    }
    assert!(rss(worker) < 64 << 20, "the worker holds {} MiB", rss(worker) >> 20);
    // Taking nothing is slower than any minimum rate.
    server.wait_for_log("Dropped a client taking");
    drop(client.stdin.take());
    assert!(client.wait().unwrap().success());
}

#[test]
fn abusive_clients_are_cut_off_and_counted() {
    let server = flask().args(&["--metrics-bind", "127.0.0.1:0"]).start();
    server.allow_log("HTTP/2 client cut off");
    let rapid = case(&server, "rapid-reset");
    assert!(rapid.starts_with("terminated"), "{rapid}");
    server.wait_for_log("HTTP/2 client cut off: rapid reset");
    let flood = case(&server, "continuation-flood");
    assert!(flood.is_empty() || flood == "GOAWAY:11", "{flood}");
    server.wait_for_log("HTTP/2 client cut off: a header block too long");
    let pings = case(&server, "ping-flood");
    assert!(pings.starts_with("sent "), "{pings}");
    server.wait_for_log("HTTP/2 client cut off: control frames faster than their answers are read");
    let m = server.metrics();
    assert_eq!(m["rustgun_connections_refused_total{reason=\"http2_abuse\"}"], 3.0, "{m:?}");
    // An HPACK bomb costs its stream only: the next request on the connection is answered.
    let bomb = case(&server, "hpack-bomb");
    assert!(bomb.starts_with("RST:1:") && bomb.contains("HEADERS:101"), "{bomb}");
}

#[test]
fn an_idle_connection_gets_goaway_after_the_keep_alive() {
    let server = Server::builder("hello").args(H2).args(&["--keep-alive", "1"]).start();
    assert_eq!(case(&server, "idle"), "GOAWAY:0");
}

#[test]
fn a_stop_sends_goaway_and_the_stream_in_flight_finishes() {
    let mut server = flask().start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/h2_cases/cases.py");
    let mut client = Command::new(pyenv().join("bin/python"))
        .arg(&script)
        .args(["graceful", &server.addr.port().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("streaming"));
    server.signal(libc::SIGTERM);
    let last = lines.map_while(Result::ok).last();
    assert!(client.wait().unwrap().success(), "{last:?}");
    assert_eq!(last.as_deref(), Some("ok GOAWAY last_stream 1, stream 1 finished"));
    assert_eq!(server.wait_exit(), Some(0));
}
