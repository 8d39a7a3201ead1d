//! The ASGI bridge (`libasgi.so`) serving real ASGI apps under the event class (and threads), asyncio owning the
//! worker thread: FastAPI as its users write it (lifespan state, path parameters, a sync route on the
//! thread pool, bodies, streaming, an exception), the scope a raw app sees, `http.disconnect` both
//! when the client leaves and after the response, a large streamed body with back-pressure, and a
//! failed lifespan startup refusing to boot with one line. Every wait is on bytes or a log line.

use crate::procs::{app_boot_failure, lib};
use crate::support::{Builder, Server, pyenv, python, worker_class};
use std::io::Read;
use std::path::Path;

mod differential;
mod frameworks;
mod streaming;
mod uvicorn;

/// `tests/asgi_apps`, where the test apps live.
fn apps_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asgi_apps").display().to_string()
}

/// A server for the ASGI app `spec` from `tests/asgi_apps`, inside the virtual environment.
fn asgi(spec: &str) -> Builder {
    asgi_with(&[], spec)
}

/// The same, with options of the bridge's before the app. Under the threads suite the threads class
/// serves it (on an event loop of its own); otherwise the event class does (sync refuses ASGI).
fn asgi_with(options: &[&str], spec: &str) -> Builder {
    asgi_on(if worker_class() == "threads" { "threads" } else { "event" }, options, spec)
}

/// The same under the worker class `class`.
pub fn asgi_on(class: &str, options: &[&str], spec: &str) -> Builder {
    let builder =
        Server::builder("asgi").args(&["-k", class]).env("VIRTUAL_ENV", &pyenv().display().to_string());
    options
        .iter()
        .fold(builder, |b, o| b.app_arg(o))
        .app_arg("--pythonpath")
        .app_arg(&apps_dir())
        .app_arg(spec)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

#[test]
fn fastapi_serves_its_routes_to_httpx_with_lifespan_state_sync_routes_bodies_and_streams() {
    // asyncio's own loop here; uvloop (installed in the tests' environment) serves the other tests.
    let server = asgi_with(&["--asgi-loop=asyncio"], "fastapi_app:app").start();
    let out = python(
        r#"
import httpx, json, sys
with httpx.Client(base_url=sys.argv[1]) as c:
    user = c.get("/users/42").json()
    sync = c.get("/sync").json()
    body = bytes(i % 256 for i in range(200_000))
    length = c.post("/length", content=body).json()
    stream = c.get("/stream")
    print(json.dumps([user, sync, length, stream.text, stream.headers.get("transfer-encoding")]))
"#,
        &[&server.url("")],
    );
    let seen = json(out.trim().as_bytes());
    assert_eq!(seen[0], serde_json::json!({"id": 42, "greeting": "hello from lifespan", "started": true}));
    assert_eq!(seen[1], serde_json::json!({"sync": true}));
    let sum = (0..200_000u64).map(|i| i % 256).sum::<u64>() % 65536;
    assert_eq!(seen[2], serde_json::json!({"length": 200_000, "sum": sum}));
    assert_eq!(seen[3], "part 0\npart 1\npart 2\n");
    assert_eq!(seen[4], "chunked", "a streamed response without a length is chunked");
}

#[test]
fn fastapi_websockets_echo_with_a_subprotocol_close_with_the_apps_code_and_can_be_refused() {
    let server = asgi("fastapi_app:app").start();
    let out = python(
        r#"
import asyncio, sys, websockets
async def main(url):
    seen = []
    async with websockets.connect(url + "/ws", subprotocols=["echo"]) as ws:
        seen.append(ws.subprotocol)
        await ws.send("hi")
        seen.append(await ws.recv())
        await ws.send(bytes(range(256)) * 1000)
        seen.append(len(await ws.recv()))
        await ws.send("bye")
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            seen.append([e.rcvd.code, e.rcvd.reason])
    async with websockets.connect(url + "/ws") as ws:
        await ws.send("once")
        seen.append(await ws.recv())
    try:
        async with websockets.connect(url + "/ws/deny"):
            seen.append("accepted")
    except websockets.InvalidStatus as e:
        seen.append(e.response.status_code)
    print(seen)
asyncio.run(main(sys.argv[1]))
"#,
        &[&server.url("").replace("http://", "ws://")],
    );
    assert_eq!(out.trim(), "['echo', 'echo: hi', 256000, [4000, 'asked to'], 'echo: once', 403]");
    // The client's own close reaches the app as websocket.disconnect with its code.
    server.wait_for_log("fastapi: ws closed with 1000");
}

#[test]
fn an_exception_in_a_route_is_a_500_with_its_traceback_logged_and_the_worker_serves_on() {
    let server = asgi("fastapi_app:app").start();
    server.allow_log("Exception in ASGI application");
    let pids = server.wait_for_workers(1);
    let resp = server.get("/boom");
    assert_eq!(resp.status, 500);
    server.wait_for_log("kaboom from the route");
    let raw = asgi("raw:app").start();
    let silent = raw.get("/silent");
    assert_eq!(silent.status, 500, "an app that returns without answering gets 500");
    raw.wait_for_log("ASGI callable returned without starting response");
    assert_eq!(server.get("/users/1").status, 200);
    assert_eq!(server.worker_pids(), pids, "the worker lives");
}

#[test]
fn the_scope_carries_the_request_as_asgi_3_says() {
    let server = asgi_with(&["--root-path", "/mounted"], "raw:app").start();
    let mut conn = server.conn();
    conn.send(
        b"POST /scope/%C3%A9t%C3%A9?q=1&r=%20 HTTP/1.1\r\nHost: example.test\r\nX-One: 1\r\nX-Two: 2\r\n\
          Content-Length: 4\r\n\r\nbody",
    );
    let resp = conn.response();
    assert_eq!(resp.status, 200);
    let scope = json(&resp.body);
    assert_eq!(scope["type"], "http");
    assert_eq!(scope["asgi"], serde_json::json!({"version": "3.0", "spec_version": "2.4"}));
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["method"], "POST");
    assert_eq!(scope["scheme"], "http");
    assert_eq!(scope["path"], "/scope/été");
    assert_eq!(scope["raw_path"], "/scope/%C3%A9t%C3%A9");
    assert_eq!(scope["query_string"], "q=1&r=%20");
    assert_eq!(scope["root_path"], "/mounted");
    assert_eq!(scope["body"], "body");
    let headers = scope["headers"].as_array().unwrap();
    let names: Vec<&str> = headers.iter().map(|h| h[0].as_str().unwrap()).collect();
    assert_eq!(names, ["host", "x-one", "x-two", "content-length"], "lower-cased, in order");
    assert!(scope["client"][1].is_u64() && scope["server"][1].is_u64(), "ports are integers: {scope}");
    assert_eq!(scope["client"][0], "127.0.0.1");
}

#[test]
fn http_disconnect_comes_when_the_client_leaves_and_after_the_response() {
    let server = asgi("raw:app").start();
    {
        let mut conn = server.conn();
        conn.send(b"GET /disconnect HTTP/1.1\r\nHost: t\r\n\r\n");
        server.wait_for_log("raw: waiting for the client to leave");
    }
    server.wait_for_log("raw: then came http.disconnect");
    let resp = server.get("/after");
    assert_eq!((resp.status, resp.text().as_str()), (200, "done"));
    server.wait_for_log("raw: after the response came http.disconnect");
}

#[test]
fn a_large_streamed_body_arrives_whole_through_the_servers_back_pressure() {
    let server = asgi("raw:app").start();
    let size = 8 * 1024 * 1024;
    let mut conn = server.conn();
    conn.send(format!("GET /big?{size} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let resp = conn.response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), size);
    assert!(resp.body.iter().enumerate().all(|(i, &b)| b == (i % 256) as u8), "the body is intact");
}

#[test]
fn a_failed_lifespan_startup_halts_the_server_with_one_error_line() {
    let (venv, apps, asgi_lib) = (pyenv().display().to_string(), apps_dir(), lib("asgi"));
    let args = [
        asgi_lib.as_str(),
        "-k",
        "event",
        "--bind",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--",
        "--pythonpath",
        &apps,
        "failing_lifespan:app",
    ];
    let (_, error) = app_boot_failure(&args, &[("VIRTUAL_ENV", &venv)]);
    assert!(error.contains("the database is not there") && error.contains("failing_lifespan"), "{error}");
}

#[test]
fn lifespan_shutdown_runs_when_the_worker_stops() {
    let mut server = asgi("raw:app").start();
    assert_eq!(server.get("/nothing").status, 404);
    server.signal(libc::SIGTERM);
    server.wait_for_log("raw: lifespan shutdown");
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn the_sync_class_refuses_an_asgi_app_with_one_line_saying_why() {
    let (venv, apps, asgi_lib) = (pyenv().display().to_string(), apps_dir(), lib("asgi"));
    let args =
        [asgi_lib.as_str(), "-k", "sync", "--bind", "127.0.0.1:0", "--", "--pythonpath", &apps, "hello:app"];
    let (_, error) = app_boot_failure(&args, &[("VIRTUAL_ENV", &venv)]);
    assert!(error.contains("the sync worker class cannot serve") && error.contains("-k event"), "{error}");
}

#[test]
fn preload_imports_the_app_in_the_master_and_each_worker_runs_its_own_lifespan() {
    let mut server = asgi("raw:app").arg("--preload").workers(2).start();
    let workers = server.wait_for_workers(2);
    let mut serving = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let pids = json(&server.get("/pids").body);
        assert_eq!(pids["imported_in"], server.pid, "imported in the master: {pids}");
        serving.insert(pids["serving"].as_i64().unwrap() as i32);
    }
    assert!(serving.iter().all(|p| workers.contains(p)), "{serving:?} not among {workers:?}");
    assert_eq!(server.get("/big?300000").body.len(), 300_000, "a forked interpreter streams too");
    server.signal(libc::SIGTERM);
    server.wait_for_log_count("raw: lifespan shutdown", 2);
    assert_eq!(server.wait_exit(), Some(0));
    // Without --preload each worker imports it itself.
    let plain = asgi("raw:app").start();
    let pids = json(&plain.get("/pids").body);
    assert_eq!(pids["imported_in"], pids["serving"]);
}

#[test]
fn factory_calls_the_named_callable_for_the_app_as_uvicorn_does() {
    let server = asgi_with(&["--factory"], "hello:create_app").start();
    assert_eq!(server.get("/").text(), "Hello from a factory");
    let called = asgi("hello:create_app()").start();
    assert_eq!(called.get("/").text(), "Hello from a factory", "gunicorn's spelling");
}

#[test]
fn http_response_trailers_reach_a_client_that_asked_for_them() {
    let server = asgi("raw:app").start();
    let asked = server.raw(b"GET /trailers HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&asked);
    assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
    assert!(text.contains("part one, ") && text.contains("part two"), "{text}");
    assert!(text.contains("trailer: x-digest, grpc-status\r\n"), "the app's Trailer field stays: {text}");
    assert!(text.ends_with("\r\n0\r\nx-digest: abc\r\ngrpc-status: 0\r\n\r\n"), "{text}");
    let not_asked = server.raw(b"GET /trailers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(String::from_utf8_lossy(&not_asked).ends_with("part two\r\n0\r\n\r\n"));
}

#[test]
fn the_100_continue_goes_out_when_the_app_first_receives_and_the_body_is_read_as_it_comes() {
    let server = asgi("raw:app").start();
    let mut held = server.conn();
    held.send(b"POST /hold HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 200000\r\n\r\n");
    // The app runs before the body is there, and until it receives, the client is told nothing: had
    // the server answered the Expect on its own, the 100 would have reached the client before the
    // app could log this line.
    server.wait_for_log("raw: holding the body back");
    held.stream.set_nonblocking(true).unwrap();
    let early = held.stream.read(&mut [0u8; 1]);
    assert!(matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "{early:?}");
    held.stream.set_nonblocking(false).unwrap();
    assert_eq!(server.get("/release").text(), "released");
    assert_eq!(held.take(25), b"HTTP/1.1 100 Continue\r\n\r\n", "then the 100 comes");
    held.send(&vec![b'b'; 200_000]);
    let resp = held.response();
    assert_eq!(json(&resp.body)["bytes"], 200_000);
}

#[test]
fn a_client_that_stalls_its_upload_or_leaves_its_download_unread_is_dropped_by_the_minimum_rate() {
    let server = asgi("raw:app").args(&["--min-rate-period", "1"]).start();
    let mut uploader = server.conn();
    uploader.send(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n0123456789");
    let mut reader = server.conn();
    reader.send(b"GET /big?1073741824 HTTP/1.1\r\nHost: t\r\n\r\n");
    // Neither holds anyone else up meanwhile.
    assert_eq!(server.get("/pids").status, 200);
    // The app waits for body bytes only the client can bring: a period without them ends it, and the
    // app's receive hears that the client is gone.
    server.wait_for_log("Dropped a client sending its body slower than --min-rate");
    server.wait_for_log("raw: the client left mid-body after 10 bytes");
    assert!(uploader.rest().is_empty(), "nothing is answered to a dropped upload");
    // The download the client never reads fills the socket's buffers, then nothing moves.
    server.wait_for_log("Dropped a client taking its response slower than --min-rate");
    let got = reader.rest();
    assert!(got.len() < 1 << 30, "the response was cut short: {} bytes", got.len());
}
