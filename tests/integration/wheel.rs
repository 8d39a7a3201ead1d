//! `pip install rustgun` as a Python user does it: the wheel `make wheel` builds (pyproject.toml,
//! scripts/wheel) goes into a fresh virtual environment with nothing but Flask, Django and FastAPI beside it
//! (from target/wheelhouse, offline), and that environment's `rustgun` serves both by module name,
//! the bridge bundled in the wheel, the interface told from the callable.

use crate::procs::{Bare, TempDir, tcp_get};
use crate::support::{Response, pyenv, run};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The wheel in target/wheels.
fn wheel() -> PathBuf {
    let dir = root().join("target/wheels");
    let found = std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path());
    found
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("rustgun-")))
        .unwrap_or_else(|| panic!("no rustgun wheel in {}: run `make wheel` first", dir.display()))
}

/// A new virtual environment at `venv` with the wheel, Flask, Django and FastAPI installed, offline.
fn fresh_venv(venv: PathBuf) -> PathBuf {
    let (code, _, err) = run(Command::new(pyenv().join("bin/python")).args(["-m", "venv"]).arg(&venv));
    assert_eq!(code, 0, "python -m venv: {err}");
    let wheelhouse = root().join("target/wheelhouse");
    let (code, _, err) = run(Command::new(venv.join("bin/python"))
        .args(["-m", "pip", "install", "--quiet", "--no-index", "--find-links"])
        .arg(&wheelhouse)
        .arg(wheel())
        .args(["flask", "django", "fastapi", "python-multipart"])
        .env("PIP_REQUIRE_VIRTUALENV", "1"));
    assert_eq!(code, 0, "pip install into the fresh environment: {err}");
    venv
}

/// The installed `rustgun` serving `spec` from `apps` (the working directory) with `args`; its address.
/// `GET target` on `addr`, with `Connection: close`.
fn get(addr: SocketAddr, target: &str) -> Response {
    tcp_get(addr, target).expect("a response from the installed rustgun")
}

fn serve(venv: &Path, apps: &str, spec: &str, args: &[&str]) -> (Bare, SocketAddr) {
    let mut cmd = Command::new(venv.join("bin/rustgun"));
    cmd.current_dir(root().join(apps));
    let argv: Vec<&str> =
        ["-b", "127.0.0.1:0"].into_iter().chain(args.iter().copied()).chain([spec]).collect();
    let server = Bare::spawn_in(cmd, &argv, &[]);
    let addr = server.wait_ready();
    (server, addr)
}

/// The bridge libraries the server's worker has mapped, from `/proc/PID/maps`.
fn bridges_of(server: &Bare) -> Vec<PathBuf> {
    let worker = crate::procs::live_children(server.pid)[0];
    let maps = std::fs::read_to_string(format!("/proc/{worker}/maps")).expect("the worker's maps");
    let mut found: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.ends_with("/libwsgi.so") || p.ends_with("/libasgi.so"))
        .map(PathBuf::from)
        .collect();
    found.dedup();
    found
}

#[test]
fn a_fresh_venv_with_only_the_wheel_serves_flask_django_and_fastapi_by_module_name() {
    let dir = TempDir::new("wheel");
    let venv = fresh_venv(dir.join("venv"));
    // The binary is on the environment's PATH, the bridges in its lib/rustgun.
    for lib in ["libwsgi.so", "libasgi.so"] {
        assert!(venv.join("lib/rustgun").join(lib).is_file(), "{lib} in the environment");
    }

    // Flask: a WSGI callable, served through the bundled libwsgi.so.
    let (flask, addr) = serve(&venv, "tests/wsgi_apps", "flask_app:app", &[]);
    let resp = get(addr, "/users/42");
    assert_eq!((resp.status, resp.text().as_str()), (200, r#"{"id": "42"}"#));
    assert_eq!(bridges_of(&flask), [venv.join("lib/rustgun/libwsgi.so")]);
    drop(flask);

    // Django: the project's wsgi module (its `application`), through the same bridge.
    let (django, addr) = serve(&venv, "tests/wsgi_apps", "djproj.wsgi", &[]);
    let resp = get(addr, "/");
    assert_eq!((resp.status, resp.text().as_str()), (200, "Hello from Django on GET /"));
    assert_eq!(bridges_of(&django), [venv.join("lib/rustgun/libwsgi.so")]);
    drop(django);

    // FastAPI: an ASGI app (its __call__ is a coroutine function), through libasgi.so on the event
    // loop, the class an ASGI app gets when none is asked for.
    let (fastapi, addr) = serve(&venv, "tests/asgi_apps", "fastapi_app:app", &[]);
    fastapi.wait_for_log("Using worker: event");
    let resp = get(addr, "/users/7");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().contains(r#""greeting":"hello from lifespan""#), "{}", resp.text());
    assert_eq!(bridges_of(&fastapi), [venv.join("lib/rustgun/libasgi.so")]);
}

#[test]
fn a_python_app_that_does_not_import_is_one_line_and_status_4() {
    // Through the build's own binary and bridges: the interface test imports the app first.
    let (code, log) = Bare::run(&["no_such_module:app"]);
    assert_eq!(code, 4, "{log:?}");
    assert_eq!(
        log,
        [
            "rustgun: cannot load Python app no_such_module:app: ModuleNotFoundError: No module named 'no_such_module'"
        ]
    );
    // --interface skips that test: the bridge it names is loaded and its worker says why it cannot boot.
    let (code, log) = Bare::run(&["--interface", "wsgi", "-b", "127.0.0.1:0", "no_such_module:app"]);
    assert_eq!(code, 4, "{log:?}");
    let boot = "libwsgi.so:app failed to initialise (status -1): cannot load WSGI app no_such_module:app";
    assert!(log.iter().any(|l| l.contains(boot)), "{}", log.join("\n"));
}
