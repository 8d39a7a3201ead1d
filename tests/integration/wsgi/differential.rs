//! The differential test: the same apps under gunicorn (from the test virtual environment) and under
//! rustgun + libwsgi.so, the same requests, and the same answers: status, the app's headers, body and
//! the environ the app saw. What is ignored is named in [`IGNORED_ENVIRON`] and [`IGNORED_HEADERS`];
//! docs/wsgi.md lists every difference and why.

use super::{apps_dir, pyenv, wsgi};
use crate::support::{Response, WAIT, worker_class};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Environ keys that differ by nature: the client's address and port, the server's name, address and
/// port (gunicorn 27 names its listening socket, rustgun the Host the client asked for), and the
/// object gunicorn adds for itself.
const IGNORED_ENVIRON: &[&str] =
    &["REMOTE_ADDR", "REMOTE_PORT", "SERVER_SOFTWARE", "SERVER_NAME", "SERVER_PORT", "gunicorn.socket"];
/// Response headers the server (not the app) writes: when, who, and how the body is framed.
const IGNORED_HEADERS: &[&str] = &["date", "server", "connection", "transfer-encoding", "keep-alive"];

/// gunicorn on an ephemeral port, killed (with its workers) when dropped.
struct Gunicorn {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gunicorn {
    /// gunicorn serving `spec` with `env` in its environment.
    fn start(spec: &str, env: &[(&str, &str)]) -> Gunicorn {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(pyenv().join("bin/gunicorn"));
        // Two workers on each side, so that wsgi.multiprocess agrees (gunicorn sets it for more than one).
        cmd.args([
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--pythonpath",
            &apps_dir(),
            "--log-level",
            "info",
        ]);
        // The worker class with the same wsgi.multithread as rustgun's under this suite's class.
        if worker_class() == "threads" {
            cmd.args(["-k", "gthread", "--threads", "4"]);
        }
        // A fixed hash seed: Flask builds `Allow` from a set.
        cmd.arg(spec).env("VIRTUAL_ENV", pyenv()).env("PYTHONHASHSEED", "0").env_remove("WEB_CONCURRENCY");
        cmd.envs(env.iter().copied());
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().expect("spawn gunicorn");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let addr = loop {
            let found = log.lock().unwrap().iter().find_map(|l| {
                let url = l.split("Listening at: http://").nth(1)?;
                url.split_whitespace().next()?.parse::<SocketAddr>().ok()
            });
            if let Some(addr) = found
                && log.lock().unwrap().iter().any(|l| l.contains("Booting worker"))
            {
                break addr;
            }
            assert!(Instant::now() < deadline, "gunicorn did not start:\n{}", log.lock().unwrap().join("\n"));
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Gunicorn { child, addr, log }
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group we created for gunicorn.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Sends one request on a fresh connection; the raw answer, up to the close.
fn send(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// What must agree: the status, the app's headers (sorted, names lower-cased), and the body, with
/// the environ in a JSON body cut down to what both servers can agree on.
fn normalize(raw: &[u8], head: bool, compare: Compare) -> (u16, Vec<(String, String)>, String) {
    let Some((resp, _)) = Response::parse_one_for(raw, head) else {
        return (0, Vec::new(), format!("incomplete response: {:?}", String::from_utf8_lossy(raw)));
    };
    let mut headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| !IGNORED_HEADERS.contains(&n.as_str()))
        .filter(|(n, _)| !matches!(compare, Compare::IgnoreHeader(h) if h == n))
        .collect();
    headers.sort();
    if compare == Compare::Status {
        return (resp.status, Vec::new(), String::new());
    }
    let body = match serde_json::from_slice::<serde_json::Value>(&resp.body) {
        Ok(mut v) => {
            if let Some(environ) = v.get_mut("environ").and_then(|e| e.as_object_mut()) {
                for key in IGNORED_ENVIRON {
                    environ.remove(*key);
                }
                // The ignored entries change the body's length.
                headers.retain(|(n, _)| n != "content-length");
            }
            canonical(&v)
        }
        Err(_) => String::from_utf8_lossy(&resp.body).into_owned(),
    };
    (resp.status, headers, body)
}

/// `v` as JSON text with every object's keys sorted (serde_json may keep insertion order, and removing
/// keys may reorder the rest).
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            let fields: Vec<String> =
                sorted.iter().map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str()))).collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// A request with a fixed Host (so SERVER_NAME/SERVER_PORT agree) and `Connection: close`.
fn request(method: &str, target: &str, extra: &[&str], body: Option<&[u8]>) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n");
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if let Some(body) = body
        && !extra.iter().any(|h| h.to_ascii_lowercase().starts_with("transfer-encoding"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.unwrap_or_default());
    out
}

/// `body` as a chunked message body, in pieces of `size`.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// How much of an answer must agree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Compare {
    /// Status, the app's headers and the body.
    All,
    /// The status only: a request the server refuses before any app runs gets each server's own
    /// error page (docs/wsgi.md).
    Status,
    /// All but this (lower-case) header, for a gunicorn bug docs/wsgi.md names.
    IgnoreHeader(&'static str),
}

type Case = (&'static str, Vec<u8>, bool, Compare);

/// Runs every `(name, request, is_head, compare)` against both servers; returns the differences.
fn compare(spec: &str, requests: &[Case]) -> Vec<String> {
    compare_in(spec, &[], requests)
}

/// [`compare`] with both servers started with `env` in their environment.
fn compare_in(spec: &str, env: &[(&str, &str)], requests: &[Case]) -> Vec<String> {
    let gunicorn = Gunicorn::start(spec, env);
    // The probe's malformed requests are refused with a warning; its /raise is logged as an error.
    let rustgun = env
        .iter()
        .fold(wsgi(spec), |b, (k, v)| b.env(k, v))
        .workers(2)
        .env("PYTHONHASHSEED", "0")
        .allow_log("Invalid request from")
        .allow_log("Error handling request GET /raise")
        .start();
    let mut differences = Vec::new();
    for (name, req, head, how) in requests {
        let theirs = normalize(&send(gunicorn.addr, req), *head, *how);
        let ours = normalize(&send(rustgun.addr, req), *head, *how);
        if theirs != ours {
            differences.push(format!("{spec} {name}:\n  gunicorn: {theirs:?}\n  rustgun:  {ours:?}"));
        }
    }
    if !differences.is_empty() {
        differences.push(format!("gunicorn log:\n{}", gunicorn.log.lock().unwrap().join("\n")));
    }
    differences
}

#[test]
fn gunicorn_and_rustgun_answer_the_probe_alike() {
    let large: Vec<u8> = (0..2_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let requests: Vec<Case> = vec![
        ("GET environ", request("GET", "/environ?a=1&b=%20x&c", &[], None), false, Compare::All),
        (
            "POST with Content-Length",
            request(
                "POST",
                "/environ",
                &["Content-Type: application/x-www-form-urlencoded"],
                Some(b"hello=world"),
            ),
            false,
            Compare::All,
        ),
        (
            "POST chunked",
            request(
                "POST",
                "/environ",
                &["Transfer-Encoding: chunked"],
                Some(&chunked(b"hello chunked world", 5)),
            ),
            false,
            Compare::All,
        ),
        ("large body with Content-Length", request("POST", "/echo", &[], Some(&large)), false, Compare::All),
        (
            "large chunked body",
            request("POST", "/echo", &["Transfer-Encoding: chunked"], Some(&chunked(&large, 65_000))),
            false,
            Compare::All,
        ),
        (
            "unicode path",
            request("GET", "/unicode/caf%C3%A9/%E2%9C%93?q=%C3%A9", &[], None),
            false,
            Compare::All,
        ),
        ("raw unicode path", request("GET", "/unicode/caf\u{e9}", &[], None), false, Compare::Status),
        (
            "duplicate headers",
            request(
                "GET",
                "/environ",
                &["X-Dup: one", "X-Dup: two", "Accept: a", "accept: b", "X_Under: dropped"],
                None,
            ),
            false,
            Compare::All,
        ),
        ("HEAD", request("HEAD", "/head", &[], None), true, Compare::All),
        ("404", request("GET", "/missing", &[], None), false, Compare::All),
        ("streaming response", request("GET", "/stream?n=200", &[], None), false, Compare::All),
        ("lazy start_response", request("GET", "/lazy", &[], None), false, Compare::All),
        ("write()", request("GET", "/write", &[], None), false, Compare::All),
        ("exc_info", request("GET", "/excinfo", &[], None), false, Compare::IgnoreHeader("x-first")),
        ("file_wrapper", request("GET", "/file", &[], None), false, Compare::All),
        ("file_wrapper over BytesIO", request("GET", "/file-bytesio", &[], None), false, Compare::All),
        ("duplicate response headers", request("GET", "/dup", &[], None), false, Compare::All),
        ("readline", request("POST", "/lines", &[], Some(b"a\nbcdef\ng")), false, Compare::All),
        (
            "readlines chunked",
            request("POST", "/readlines", &["Transfer-Encoding: chunked"], Some(&chunked(b"x\ny\nz", 2))),
            false,
            Compare::All,
        ),
        ("an app that raises", request("GET", "/raise", &[], None), false, Compare::All),
        ("HTTP/1.0", b"GET /environ HTTP/1.0\r\nHost: example.test\r\n\r\n".to_vec(), false, Compare::All),
        // The asterisk-form target: PATH_INFO `*`.
        ("OPTIONS *", request("OPTIONS", "*", &[], None), false, Compare::All),
    ];
    let differences = compare("probe", &requests);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn gunicorn_and_rustgun_mount_the_app_at_script_name_alike() {
    // SCRIPT_NAME in the server's environment is where the app is mounted: it leaves PATH_INFO, and
    // a path outside it is the deployment's mistake (500).
    let requests: Vec<Case> = vec![
        ("under the mount", request("GET", "/mnt/environ?a=1", &[], None), false, Compare::All),
        ("encoded under the mount", request("GET", "/mnt/environ%2Fx", &[], None), false, Compare::All),
        ("the mount itself", request("GET", "/mnt", &[], None), false, Compare::All),
        ("outside the mount", request("GET", "/elsewhere", &[], None), false, Compare::Status),
    ];
    let differences = compare_in("probe", &[("SCRIPT_NAME", "/mnt")], &requests);
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn gunicorn_and_rustgun_serve_flask_and_django_alike() {
    let flask: Vec<Case> = vec![
        (
            "POST /a",
            request("POST", "/a?x=1", &["Content-Type: application/json"], Some(br#"{"0": 0}"#)),
            false,
            Compare::All,
        ),
        ("GET /users/<id>", request("GET", "/users/42", &[], None), false, Compare::All),
        ("404", request("GET", "/nowhere", &[], None), false, Compare::All),
        ("405", request("DELETE", "/a", &[], None), false, Compare::All),
        ("generator", request("GET", "/download?mb=2", &[], None), false, Compare::All),
        ("upload", request("POST", "/upload", &[], Some(&vec![b'u'; 300_000])), false, Compare::All),
    ];
    let mut differences = compare("flask_app:app", &flask);
    let django: Vec<Case> = vec![
        ("view", request("GET", "/", &[], None), false, Compare::All),
        (
            "form POST",
            request(
                "POST",
                "/form/",
                &["Content-Type: application/x-www-form-urlencoded"],
                Some(b"name=Ann&age=3"),
            ),
            false,
            Compare::All,
        ),
        (
            "invalid form POST",
            request(
                "POST",
                "/form/",
                &["Content-Type: application/x-www-form-urlencoded"],
                Some(b"name=Ann"),
            ),
            false,
            Compare::All,
        ),
        ("404", request("GET", "/nowhere/", &[], None), false, Compare::All),
    ];
    differences.extend(compare("djproj.wsgi", &django));
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
