//! The WSGI bridge (`libwsgi.so`) serving real Python apps: the classic environ dump, Flask, Django
//! and the PEP 3333 corners of `tests/wsgi_apps/probe.py`; streaming both ways with the worker's
//! memory flat; failures (an app that raises, one that cannot be imported). The differential test
//! against gunicorn lives in `wsgi/differential.rs`.
//!
//! Flask, Django and gunicorn come from the tests' virtual environment, `support::pyenv()`
//! (`target/pyenv`, which `make setup` creates); without it these tests fail and say how to make it.

mod differential;

use crate::procs::{Bare, TempDir, lib, poll_for};
use crate::support::{Builder, Response, Server, WAIT, pyenv, worker_class};
use std::io::{Read, Write};
use std::path::Path;

/// `tests/wsgi_apps`, where the test apps live.
pub fn apps_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wsgi_apps").display().to_string()
}

/// A server for the WSGI app `spec` from `tests/wsgi_apps`, inside the virtual environment.
pub fn wsgi(spec: &str) -> Builder {
    let venv = pyenv();
    Server::builder("wsgi")
        .env("VIRTUAL_ENV", &venv.display().to_string())
        .app_arg("--pythonpath")
        .app_arg(&apps_dir())
        .app_arg(spec)
}

/// A worker's resident set size in bytes, from `/proc/PID/status`.
pub fn rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("worker status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Sends `request` on a new connection and parses the response (`head` for a HEAD request).
pub fn exchange(server: &Server, request: &[u8], head: bool) -> Response {
    let raw = server.raw(request);
    Response::parse_one_for(&raw, head)
        .unwrap_or_else(|| panic!("no complete response in {:?}", String::from_utf8_lossy(&raw)))
        .0
}

fn post(server: &Server, path: &str, content_type: &str, body: &[u8]) -> Response {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    exchange(server, &req, false)
}

fn json(resp: &Response) -> serde_json::Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", resp.text(), resp.status))
}

const MIB: u64 = 1024 * 1024;

#[test]
fn the_classic_environ_app_sees_every_required_key() {
    let server = wsgi("environ_app").start();
    let req = b"GET /a%20b/c?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-Dup: 1\r\nX-Dup: 2\r\nConnection: close\r\n\r\n";
    let resp = exchange(&server, req, false);
    assert_eq!(resp.status, 200);
    let text = resp.text();
    let multithread = if worker_class() == "threads" { "True" } else { "False" };
    for line in [
        "REQUEST_METHOD: 'GET'",
        "SCRIPT_NAME: ''",
        "PATH_INFO: '/a b/c'",
        "QUERY_STRING: 'q=1'",
        "RAW_URI: '/a%20b/c?q=1'",
        "SERVER_NAME: 'example.com'",
        "SERVER_PORT: '8080'",
        "SERVER_PROTOCOL: 'HTTP/1.1'",
        "REMOTE_ADDR: '127.0.0.1'",
        "HTTP_HOST: 'example.com:8080'",
        "HTTP_X_DUP: '1,2'",
        "wsgi.version: (1, 0)",
        "wsgi.url_scheme: 'http'",
        "wsgi.multiprocess: True",
        "wsgi.run_once: False",
        "wsgi.input_terminated: True",
        &format!("wsgi.multithread: {multithread}"),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    for key in [
        "wsgi.input: <",
        "wsgi.errors: <",
        "wsgi.file_wrapper: <",
        "SERVER_SOFTWARE: 'rustgun/",
        "REMOTE_PORT: '",
    ] {
        assert!(text.lines().any(|l| l.starts_with(key)), "missing {key:?} in\n{text}");
    }
    // gunicorn leaves CONTENT_TYPE / CONTENT_LENGTH out when the request has no such header.
    assert!(!text.contains("CONTENT_LENGTH"), "{text}");
}

#[test]
fn flask_routes_answer_like_the_framework_app() {
    let server = wsgi("flask_app:app").start();
    let resp = post(&server, "/a?x=1", "application/json", br#"{"0": 0}"#);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.text(), r#"{"result": "hello", "params": "x=1", "body": "{\"0\": 0}"}"#);
    let user = server.get("/users/42");
    assert_eq!((user.status, user.text().as_str()), (200, r#"{"id": "42"}"#));
    assert_eq!(server.get("/nowhere").status, 404);
    let wrong = exchange(&server, b"DELETE /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", false);
    assert_eq!(wrong.status, 405);
}

#[test]
fn reload_replaces_a_worker_when_a_module_it_imported_changes() {
    // gunicorn's --reload: every imported module's file is watched, not just the app library.
    let dir = TempDir::new("reload-module");
    let module = dir.join("reloadme.py");
    let app = |version: &str| {
        format!(
            "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'{version}']\n"
        )
    };
    std::fs::write(&module, app("v1")).unwrap();
    let server = Server::builder("wsgi")
        .env("VIRTUAL_ENV", &pyenv().display().to_string())
        .args(&["--reload"])
        .app_arg("--pythonpath")
        .app_arg(&dir.join("").display().to_string())
        .app_arg("reloadme:application")
        .start();
    assert_eq!(server.get("/").text(), "v1");
    // The new code, with a later modification time (no need to wait for the clock to move).
    std::fs::write(&module, app("v2")).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&module).unwrap().set_modified(later).unwrap();
    server.wait_for_log("Worker reloading: ");
    server.wait_for_log_count("Booting worker", 2);
    server.wait_for_log_count("Worker exiting", 1);
    assert_eq!(server.get("/").text(), "v2");
}

#[test]
fn a_django_project_serves_a_view_and_a_form_post() {
    let server = wsgi("djproj.wsgi").start();
    let hello = server.get("/");
    assert_eq!((hello.status, hello.text().as_str()), (200, "Hello from Django on GET /"));
    let form = server.get("/form/");
    assert_eq!(form.status, 200);
    assert!(form.text().contains(r#"name="age""#), "{}", form.text());
    let ok = post(&server, "/form/", "application/x-www-form-urlencoded", b"name=Ann+Lee&age=42");
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(json(&ok), serde_json::json!({"ok": true, "name": "Ann Lee", "age": 42}));
    let bad = post(&server, "/form/", "application/x-www-form-urlencoded", b"name=Ann&age=old");
    assert_eq!(bad.status, 400);
    assert_eq!(json(&bad), serde_json::json!({"ok": false, "errors": ["age"]}));
}

#[test]
fn gunicorns_app_forms_module_factory_and_factory_with_arguments() {
    let module_only = wsgi("environ_app").start();
    assert_eq!(module_only.get("/").status, 200);
    let factory = wsgi("probe:create_app()").start();
    assert_eq!(factory.get("/").text(), "hello from the factory");
    let with_args = wsgi("probe:create_app('made with arguments')").start();
    assert_eq!(with_args.get("/").text(), "made with arguments");
}

/// The server's working directory (where `--chdir` puts it) is on `sys.path`, as in gunicorn: the
/// app is found there without `--pythonpath`.
#[test]
fn the_working_directory_is_on_sys_path() {
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("wsgi-cwd");
    let log = dir.join("stderr.log");
    let class = worker_class();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rustgun"))
        .args([lib("wsgi").as_str(), "--bind", "127.0.0.1:0", "--worker-class", &class])
        .args(["--", "probe:create_app('found in the working directory')"])
        .current_dir(apps_dir())
        .env("VIRTUAL_ENV", pyenv())
        .env_remove("WEB_CONCURRENCY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .expect("spawn rustgun");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let ready = poll_for(WAIT, || read_log().contains("Ready:").then_some(()));
    let text = read_log();
    // SAFETY: kill(2) on the process group we created, whatever happens below.
    let kill = || unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    if ready.is_none() {
        kill();
        let _ = child.wait();
        panic!("not ready:\n{text}");
    }
    let addr = text.split("Listening at: http://").nth(1).and_then(|s| s.split_whitespace().next()).unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    kill();
    let _ = child.wait();
    assert_eq!(Response::parse_one(&out).expect("a response").0.text(), "found in the working directory");
}

#[test]
fn a_100_mb_generator_response_streams_with_flat_memory() {
    let server = wsgi("flask_app:app").start();
    let worker = server.wait_for_workers(1)[0];
    // Warm up: the first request imports what Flask imports lazily.
    let warm = server.get("/download?mb=1");
    assert_eq!(warm.body.len() as u64, MIB);
    let before = rss(worker);
    let mut s = server.connect();
    s.write_all(b"GET /download?mb=100 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut total, mut peak, mut tail) = (0u64, before, Vec::new());
    loop {
        let n = s.read(&mut buf).expect("read the download");
        if n == 0 {
            break;
        }
        total += n as u64;
        tail.extend_from_slice(&buf[..n]);
        let keep = tail.len().saturating_sub(16);
        tail.drain(..keep);
        if total % (8 * MIB) < n as u64 {
            peak = peak.max(rss(worker));
        }
    }
    peak = peak.max(rss(worker));
    // The chunked framing adds a little to the 100 MiB of body; the last chunk ends it.
    assert!(total > 100 * MIB, "only {total} bytes arrived");
    assert!(tail.ends_with(b"0\r\n\r\n"), "the response did not end: {:?}", String::from_utf8_lossy(&tail));
    assert!(peak - before < 64 * MIB, "the worker grew from {before} to {peak} bytes");
}

#[test]
fn a_100_mb_upload_is_read_in_64_kib_pieces_with_flat_memory() {
    let server = wsgi("flask_app:app").start();
    let worker = server.wait_for_workers(1)[0];
    let warm = post(&server, "/upload", "application/octet-stream", &[7u8; 100_000]);
    assert_eq!(json(&warm)["bytes"], 100_000);
    let before = rss(worker);
    let size = 100 * MIB;
    let mut s = server.connect();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let piece = vec![b'u'; MIB as usize];
    let mut peak = before;
    for i in 0..100 {
        s.write_all(&piece).expect("send the upload");
        if i % 8 == 0 {
            peak = peak.max(rss(worker));
        }
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    peak = peak.max(rss(worker));
    let resp = Response::parse_one(&out).expect("a response").0;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = json(&resp);
    assert_eq!(v["bytes"], size);
    assert!(v["pieces"].as_u64().unwrap() >= 1600, "{v}");
    assert!(peak - before < 64 * MIB, "the worker grew from {before} to {peak} bytes");
}

#[test]
fn an_app_that_raises_gets_a_500_and_the_worker_lives() {
    let server = wsgi("probe").start();
    server.allow_log("Error handling request GET /raise");
    let worker = server.wait_for_workers(1)[0];
    let resp = server.get("/raise");
    assert_eq!(resp.status, 500);
    assert_eq!(resp.header("content-type"), Some("text/html"));
    assert!(resp.text().contains("<h1><p>Internal Server Error</p></h1>"), "{}", resp.text());
    let logged = server.wait_for_log("ValueError: the probe raised on purpose");
    assert!(logged.starts_with("ValueError"), "the traceback's last line: {logged}");
    let log = server.log().join("\n");
    assert!(log.contains("Error handling request GET /raise"), "{log}");
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(log.contains("probe.py"), "{log}");
    // The same worker answers the next request.
    assert_eq!(server.get("/stream?n=2").text(), "line 0\nline 1\n");
    assert_eq!(server.wait_for_workers(1), [worker]);
}

#[test]
fn an_app_that_cannot_be_imported_halts_the_server_with_one_error_line() {
    for (spec, names) in [
        (
            "broken_import:application",
            &["broken_import", "ModuleNotFoundError", "this_module_does_not_exist"][..],
        ),
        ("no_such_module:app", &["no_such_module", "ModuleNotFoundError"][..]),
        ("probe:no_such_callable", &["probe:no_such_callable", "AppImportError", "no_such_callable"][..]),
    ] {
        let (log, error) = boot_failure(&[], spec);
        let all = log.join("\n");
        for name in names {
            assert!(error.contains(name), "{name:?} missing from {error}");
        }
        assert!(error.contains("[master]"), "{error}");
        let booted = log.iter().filter(|l| l.contains("Booting worker")).count();
        assert!(booted <= 4, "{booted} workers booted for 2: a respawn storm\n{all}");
        if spec.starts_with("broken_import") {
            assert!(all.contains("Traceback (most recent call last):"), "the traceback is logged:\n{all}");
        }
    }
}

#[test]
fn wsgi_input_reads_lines_chunked_bodies_and_large_bodies() {
    let server = wsgi("probe").start();
    let lines = post(&server, "/lines", "text/plain", b"first\nsecond\nthird\nfourth");
    assert_eq!(
        json(&lines),
        serde_json::json!({"first": "first\n", "limited": "sec", "rest": ["ond\n", "third\n", "fourth"]})
    );
    let chunked = exchange(
        &server,
        b"POST /readlines HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\na\nb\n\r\n3\r\nc\nd\r\n0\r\n\r\n",
        false,
    );
    assert_eq!(json(&chunked), serde_json::json!({"lines": ["a\n", "b\n", "c\n", "d"]}));
    let big: Vec<u8> = (0..3 * MIB as usize).map(|i| (i % 251) as u8).collect();
    let resp = post(&server, "/echo", "application/octet-stream", &big);
    let digest = crate::support::python(
        "import hashlib,sys; print(hashlib.sha256(bytes(i % 251 for i in range(int(sys.argv[1])))).hexdigest())",
        &[&big.len().to_string()],
    );
    assert_eq!(json(&resp), serde_json::json!({"bytes": big.len(), "sha256": digest.trim()}));
}

#[test]
fn start_response_rules_write_exc_info_and_file_wrapper() {
    let server = wsgi("probe").start();
    for path in ["/lazy", "/lazy-empty-first"] {
        let lazy = server.get(path);
        assert_eq!(
            (lazy.status, lazy.header("x-lazy"), lazy.text().as_str()),
            (201, Some("yes"), "lazy body")
        );
    }
    let write = server.get("/write");
    assert_eq!(write.text(), "written, then returned");
    let replaced = server.get("/excinfo");
    assert_eq!(
        (replaced.status, replaced.header("x-first"), replaced.text().as_str()),
        (503, None, "replaced")
    );
    let file = server.get("/file");
    assert_eq!(file.body, b"0123456789".repeat(10_000));
    let not_a_file = server.get("/file-bytesio");
    assert_eq!(not_a_file.body, b"abcdefghij".repeat(5_000));
    let empty = server.get("/empty-gen");
    assert_eq!(empty.status, 204);
    let dup = server.get("/dup");
    let cookies: Vec<&str> = dup
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    let head = exchange(&server, b"HEAD /head HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", true);
    assert_eq!((head.status, head.header("content-length")), (200, Some("11")));
    server.get("/errors");
    server.wait_for_log("probe: a line for the error log");
}

#[test]
fn close_is_called_exactly_once_also_when_the_client_goes_away() {
    let closed = TempDir::new("wsgi-close");
    let server = wsgi("probe").env("PROBE_CLOSED_DIR", &closed.arg("")).start();
    let count = |name: &str| std::fs::read_to_string(closed.join(name)).ok();
    // A complete response.
    assert_eq!(server.get("/tracked-short").text(), "one two");
    assert_eq!(poll_for(WAIT, || count("tracked-short")).as_deref(), Some("1"));
    // A client that reads a little of a slow 4 MiB stream and hangs up.
    {
        let mut s = server.connect();
        s.write_all(b"GET /tracked HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
    }
    assert_eq!(poll_for(WAIT, || count("tracked")).as_deref(), Some("1"));
    // Still once, and the worker keeps serving.
    assert_eq!(server.get("/stream?n=1").text(), "line 0\n");
    assert_eq!(count("tracked").as_deref(), Some("1"));
}

#[test]
fn the_threads_worker_class_runs_python_requests_concurrently() {
    let server = wsgi("probe").args(&["-k", "threads", "--threads", "4"]).start();
    // Each of the four waits in the app until all four are there.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(WAIT)).unwrap();
                s.write_all(b"GET /meet HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
                let mut out = Vec::new();
                s.read_to_end(&mut out).unwrap();
                Response::parse_one(&out).unwrap().0
            })
        })
        .collect();
    let answers: Vec<Response> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answers.iter().all(|r| r.status == 200 && json(r)["met"] == true), "the four never ran at once");
    let ids: std::collections::BTreeSet<String> =
        answers.iter().map(|r| json(r)["thread"].to_string()).collect();
    assert_eq!(ids.len(), 4, "four Python threads: {ids:?}");
}

#[test]
fn preload_imports_the_app_once_in_the_master() {
    let server = wsgi("probe").arg("--preload").workers(2).start();
    let workers = server.wait_for_workers(2);
    let mut serving = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let v = json(&server.get("/pids"));
        assert_eq!(v["imported_in"], server.pid, "the app was not imported in the master: {v}");
        serving.insert(v["serving"].as_i64().unwrap() as i32);
    }
    assert!(serving.iter().all(|p| workers.contains(p)), "{serving:?} not among {workers:?}");
    // Requests still stream both ways in a worker forked from an interpreter.
    assert_eq!(server.get("/stream?n=3").text(), "line 0\nline 1\nline 2\n");
    let echoed = post(&server, "/echo", "application/octet-stream", &[1u8; 200_000]);
    assert_eq!(json(&echoed)["bytes"], 200_000);
    // Without --preload each worker imports it itself.
    let plain = wsgi("probe").start();
    let v = json(&plain.get("/pids"));
    assert_eq!(v["imported_in"], v["serving"]);
}

#[test]
fn preload_of_an_app_that_cannot_be_imported_halts_before_any_worker() {
    let (log, error) = boot_failure(&["--preload"], "broken_import:application");
    assert!(error.contains("broken_import") && error.contains("ModuleNotFoundError"), "{error}");
    let all = log.join("\n");
    assert!(!all.contains("Booting worker"), "no worker may start:\n{all}");
}

/// Starts the bridge with 2 workers, `extra` server options and the app `spec`, which must fail to
/// boot: exit 4 with exactly one ERROR line. Returns the whole log and that line.
fn boot_failure(extra: &[&str], spec: &str) -> (Vec<String>, String) {
    let (venv, apps, wsgi_lib) = (pyenv().display().to_string(), apps_dir(), lib("wsgi"));
    let mut args = vec![wsgi_lib.as_str()];
    args.extend_from_slice(extra);
    args.extend(["--bind", "127.0.0.1:0", "--workers", "2", "--", "--pythonpath", &apps, spec]);
    crate::procs::app_boot_failure(&args, &[("VIRTUAL_ENV", &venv)])
}

/// ABI 1.1 appended `preload` to the descriptor: a library built against the 1.0 header (a 40-byte
/// descriptor) still loads and serves.
#[test]
fn a_descriptor_built_for_abi_1_0_still_loads() {
    let dir = TempDir::new("abi-1-0");
    let src = dir.join("old.c");
    let out = dir.join("libold.so");
    std::fs::write(
        &src,
        r#"#include <stdint.h>
#include <stddef.h>
typedef struct { const uint8_t *ptr; size_t len; } str_;
typedef struct { str_ name, value; } header_;
typedef struct host_ host_;
typedef struct { uint32_t size, flags; const host_ *host; void *call; } request_head_;
struct host_ {
    uint32_t size; uint16_t major, minor;
    int64_t (*read_body)(void *, uint8_t *, size_t);
    int32_t (*start_response)(void *, uint32_t, str_, const header_ *, size_t, uint32_t);
    int32_t (*write)(void *, const uint8_t *, size_t);
};
/* The 1.0 descriptor: magic, major 1, minor 0, size 40, flags, init, handle, shutdown. */
typedef struct { uint32_t magic; uint16_t major, minor; uint32_t size, flags; void *init, *handle, *shutdown; } app10;
static int32_t handle(void *state, const request_head_ *req) {
    static const header_ h[] = {{{(const uint8_t *)"Content-Length", 14}, {(const uint8_t *)"6", 1}}};
    str_ reason = {(const uint8_t *)"", 0};
    int32_t rc = req->host->start_response(req->call, 200, reason, h, 1, 0);
    (void)state;
    return rc != 0 ? rc : req->host->write(req->call, (const uint8_t *)"abi1.0", 6);
}
__attribute__((visibility("default"))) const app10 app = {0x4E554752u, 1, 0, 40, 1, NULL, (void *)handle, NULL};
"#,
    )
    .unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let built = std::process::Command::new(&cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    assert!(
        std::mem::size_of::<rustgun_abi::RgApp>() > 40,
        "this test is about a descriptor shorter than today's"
    );
    let app = format!("{}:app", out.display());
    let bare = Bare::spawn(&[app.as_str(), "--bind", "127.0.0.1:0", "--preload"], &[]);
    let line = bare.wait_for_log("Listening at: http://");
    bare.wait_for_log("Ready:");
    let addr = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).unwrap().to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert_eq!(Response::parse_one(&out).expect("a response").0.text(), "abi1.0");
}

/// The GIL is released while the bridge waits on the server: a request whose client is slow to send
/// its body does not hold up another thread's request. Only a server that lets the quick request
/// run while the slow one waits in `wsgi.input.read()` finishes this conversation: the rest of the
/// slow body is sent only after the quick answer came.
#[test]
fn a_slow_upload_does_not_hold_the_gil() {
    let server = wsgi("probe").args(&["-k", "threads", "--threads", "4"]).start();
    server.allow_log("probe: /echo reads after");
    let mut slow = server.connect();
    slow.write_all(
        b"POST /echo?say HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345",
    )
    .unwrap();
    // The app calls read(), which waits for the rest of this client's body.
    server.wait_for_log("probe: /echo reads after 0 bytes");
    assert_eq!(server.get("/stream?n=1").text(), "line 0\n");
    slow.write_all(b"67890").unwrap();
    let mut out = Vec::new();
    slow.read_to_end(&mut out).unwrap();
    let echoed = Response::parse_one(&out).expect("a response").0;
    assert_eq!(json(&echoed)["bytes"], 10);
}

/// gunicorn's `--chdir`: rustgun changes directory before loading the app, and the bridge puts the
/// working directory on `sys.path`.
#[test]
fn the_servers_chdir_is_on_sys_path() {
    let venv = pyenv().display().to_string();
    let server = Server::builder("wsgi")
        .args(&["--chdir", &apps_dir()])
        .env("VIRTUAL_ENV", &venv)
        .app_arg("probe:create_app('found through --chdir')")
        .start();
    assert_eq!(server.get("/").text(), "found through --chdir");
}
