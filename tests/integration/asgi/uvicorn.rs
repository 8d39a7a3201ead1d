//! uvicorn's command line carried over: an ASGI app named by its module, served with the flags a
//! uvicorn deployment uses — `--host`/`--port`, `--uds`, `--root-path`, `--no-proxy-headers`,
//! `--lifespan`, `--factory`, `--access-log` — and the spellings that are aliases of rustgun's
//! (`--timeout-keep-alive`, `--limit-max-requests`, `--limit-concurrency`, `--ws-max-size`,
//! `--ssl-*`, `--log-level trace`), which `--print-config` shows under rustgun's names.

use super::{apps_dir, json};
use crate::procs::{Bare, TempDir, app_boot_failure};
use crate::support::{Builder, Response, Server, pyenv, run, worker_class};
use std::path::Path;
use std::process::Command;

/// `rustgun MODULE:APP` from `tests/asgi_apps` (`--chdir`), inside the test environment, under the
/// class the suite runs ASGI with.
fn module(spec: &str) -> Builder {
    let class = if worker_class() == "threads" { "threads" } else { "event" };
    Server::builder_for_path(Path::new(spec)).env("VIRTUAL_ENV", &pyenv().display().to_string()).args(&[
        "-k",
        class,
        "--chdir",
        &apps_dir(),
    ])
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn host_port_root_path_and_no_proxy_headers_reach_the_scope() {
    let port = free_port().to_string();
    let args = ["--host", "127.0.0.1", "--port", &port, "--root-path", "/api", "--no-proxy-headers"];
    let server = module("raw:app").args(&args).listen_as_args_say().start();
    assert_eq!(server.addr.port().to_string(), port, "--host and --port are the listener");
    // A peer whose X-Forwarded-For would be believed by default (127.0.0.1) is not, and the mount
    // point is the scope's root_path, the path left whole (uvicorn's way).
    let req = b"GET /scope HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n";
    let resp = Response::parse_one(&server.raw(req)).expect("a response").0;
    let scope = json(&resp.body);
    assert_eq!(scope["root_path"], "/api", "{scope}");
    assert_eq!(scope["path"], "/scope", "{scope}");
    assert_eq!(scope["client"][0], "127.0.0.1", "{scope}");
}

#[test]
fn uds_listens_on_a_unix_socket() {
    let dir = TempDir::new("uvicorn-uds");
    let sock = dir.join("app.sock");
    let server = module("raw:app").args(&["--uds", &sock.display().to_string()]).listen_as_args_say().start();
    let mut stream = std::os::unix::net::UnixStream::connect(&sock).expect("connect to --uds");
    std::io::Write::write_all(&mut stream, b"GET /scope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut bytes).unwrap();
    assert_eq!(Response::parse_one(&bytes).expect("a response").0.status, 200);
    drop(server);
}

#[test]
fn lifespan_off_skips_a_startup_that_would_fail() {
    // With the lifespan on (auto finds it), the failing startup stops the server.
    let venv = pyenv().display().to_string();
    let apps = apps_dir();
    let base = ["-k", "event", "--bind", "127.0.0.1:0", "--chdir", apps.as_str()];
    let on: Vec<&str> = base.iter().copied().chain(["--lifespan", "on", "failing_lifespan:app"]).collect();
    let (_, error) = app_boot_failure(&on, &[("VIRTUAL_ENV", &venv)]);
    assert!(error.contains("the database is not there"), "{error}");
    // Off: uvicorn's --lifespan off reaches the bridge, which never starts it, and the server boots.
    let server = module("failing_lifespan:app").args(&["--lifespan", "off"]).start();
    drop(server);
}

#[test]
fn factory_calls_the_callable_named_for_the_app() {
    let server = module("hello:create_app").arg("--factory").start();
    assert_eq!(server.get("/").text(), "Hello from a factory");
}

/// `rustgun ARGS raw:app` from `tests/asgi_apps`, its stdout read with its error log; its address.
fn bare(args: &[&str]) -> (Bare, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
    cmd.current_dir(apps_dir());
    let venv = pyenv().display().to_string();
    let args: Vec<&str> =
        ["-k", "event", "-b", "127.0.0.1:0"].iter().chain(args).chain(&["raw:app"]).copied().collect();
    let server = Bare::spawn_in(cmd, &args, &[("VIRTUAL_ENV", &venv)]);
    let addr = server.wait_ready().to_string();
    (server, addr)
}

fn get_scope(addr: &str) {
    let (code, out, _) = run(Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{addr}/scope")));
    assert_eq!((code, out.as_str()), (0, "200"));
}

#[test]
fn access_log_writes_to_stdout_and_no_access_log_silences_it() {
    // uvicorn's --access-log: the access log on stdout.
    let (server, addr) = bare(&["--access-log"]);
    get_scope(&addr);
    server.wait_for_log("\"GET /scope HTTP/1.1\" 200");
    drop(server);
    // --no-access-log wins over a file named for it: nothing is written there, even once the
    // server has stopped (and flushed whatever it had).
    let dir = TempDir::new("uvicorn-no-access-log");
    let file = dir.join("access.log");
    let (mut server, addr) = bare(&["--no-access-log", "--access-logfile", &file.display().to_string()]);
    get_scope(&addr);
    // SAFETY: kill(2) on the server this test started.
    unsafe { libc::kill(server.pid, libc::SIGTERM) };
    assert_eq!(server.wait_exit(), Some(0));
    assert_eq!(std::fs::read_to_string(&file).unwrap_or_default(), "", "the access log file");
}

#[test]
fn uvicorns_spellings_are_rustguns_options() {
    let apps = apps_dir();
    let (code, out, err) = run(Command::new(env!("CARGO_BIN_EXE_rustgun")).current_dir(&apps).args([
        "--interface",
        "asgi",
        "--timeout-keep-alive",
        "7",
        "--limit-max-requests",
        "900",
        "--limit-concurrency",
        "33",
        "--ws-max-size",
        "4096",
        "--ssl-certfile",
        "/etc/x.pem",
        "--ssl-keyfile",
        "/etc/x.key",
        "--log-level",
        "trace",
        "--print-config",
        "raw:app",
    ]));
    assert_eq!(code, 0, "{err}");
    let config: toml::Table = out.parse().expect("--print-config is TOML");
    for (key, want) in [
        ("keep-alive", toml::Value::Integer(7)),
        ("max-requests", toml::Value::Integer(900)),
        ("worker-connections", toml::Value::Integer(33)),
        ("websocket-max-message-size", toml::Value::Integer(4096)),
        ("certfile", toml::Value::String("/etc/x.pem".into())),
        ("keyfile", toml::Value::String("/etc/x.key".into())),
        // uvicorn's most verbose level, which rustgun reads as debug.
        ("log-level", toml::Value::String("trace".into())),
    ] {
        assert_eq!(config.get(key), Some(&want), "{key} in:\n{out}");
    }
}

#[test]
fn a_request_that_outlives_its_client_is_cancelled_after_the_disconnect_grace_period() {
    // gunicorn's --asgi-disconnect-grace-period: 0 cancels the request's task as soon as its client
    // has left, before its receive() returns http.disconnect (a grace period would let it hear of it
    // first); the app's own `except CancelledError` says so.
    let server = module("raw:app").args(&["--asgi-disconnect-grace-period", "0"]).start();
    {
        let mut conn = server.conn();
        conn.send(b"GET /linger HTTP/1.1\r\nHost: t\r\n\r\n");
        server.wait_for_log("raw: lingering");
    }
    server.wait_for_log("raw: cancelled after the client left");
    assert!(!server.log().iter().any(|l| l.contains("lingered past")), "cancelled at once");
    // The worker serves on.
    assert_eq!(server.get("/scope").status, 200);
}
