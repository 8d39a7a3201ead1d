//! `libasgi.so`: serves any ASGI 3 Python app (FastAPI, Starlette, Litestar, async Django) under
//! rustgun by embedding CPython.
//!
//! ```sh
//! rustgun target/release/libasgi.so:app -k event --workers 4 -- main:app
//! rustgun target/release/libasgi.so:app -k event -- --root-path /api --asgi-lifespan on 'main:create_app()'
//! ```
//!
//! The bridge is an async rustgun app (ABI 1.3) built on the public SDK, and its asyncio loop owns the
//! worker's thread (`App::run`, NGINX Unit's design): the loop watches the server's descriptor and
//! steps the server's loop when it is readable, so the server's `handle` and events run inside an
//! asyncio callback, on the thread the app's coroutines run on — no thread hop, no lock.
//! - `init` starts the interpreter, imports the app the way gunicorn does (`rustgun-python`), creates
//!   the loop (`--asgi-loop auto|asyncio|uvloop`: uvloop when installed) and runs lifespan startup (`--asgi-lifespan auto|on|off`); a
//!   failed startup refuses to boot with one line.
//! - `handle` builds the HTTP scope and leaves the call pending ([`rustgun_sdk::Later`]); a task runs
//!   the app with `receive` and `send` over it (`asgi.py`'s `Cycle`). Body bytes the server holds
//!   come at once, the rest after `Readable`; a write past the server's high-water mark waits for
//!   `Writable`; a client that leaves turns into `http.disconnect` (and `send` raises an `OSError`).
//! - `shutdown` runs lifespan shutdown, then the exit functions.
//!
//! - A WebSocket handshake gets the websocket scope (`asgi.py`'s `WebSocketCycle`): `websocket.accept`
//!   accepts it on the pending call (the server sends the 101 and does the protocol), messages and
//!   the close come as events, `websocket.close` before accepting (or returning) refuses it with 403,
//!   `websocket.http.response.*` answers it with a response of the app's.
//!
//! - `preload` (`--preload`) imports the app in the master; each worker then makes its own loop and
//!   runs its own lifespan.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyModule, PyTuple};
use rustgun_python::args::{self, Bridge as Kind};
use rustgun_python::{attach, describe, log_exception, start_interpreter};
use rustgun_sdk::log::{Level, log};
use rustgun_sdk::{
    App, Error, Header, HostError, HostLoop, InitContext, Later, LaterEvent, Request, ResponseWriter, Step,
    WebSocket, WsEvent,
};

const ASGI: Kind = Kind {
    library: "libasgi.so",
    kind: "ASGI",
    options: &["--root-path", "--asgi-lifespan", "--asgi-loop", "--asgi-disconnect-grace-period"],
};

/// The helper module compiled from `asgi.py`, once per process.
static HELPERS: OnceLock<Py<PyModule>> = OnceLock::new();

fn helpers(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    if HELPERS.get().is_none() {
        rustgun_python::embed(py)?;
        let code = CString::new(include_str!("asgi.py")).expect("no NUL in asgi.py");
        let module = PyModule::from_code(py, &code, c"rustgun_asgi.py", c"_rustgun_asgi")?;
        let _ = HELPERS.set(module.unbind());
    }
    Ok(HELPERS.get().expect("set above").bind(py))
}

thread_local! {
    /// The Cycle of every pending call of this worker's loop, for its events.
    static CYCLES: RefCell<HashMap<usize, Py<PyAny>>> = RefCell::new(HashMap::new());
}

/// A worker's ASGI app: the `Runner` of `asgi.py` (loop, app, lifespan state).
struct Bridge {
    runner: Py<PyAny>,
}

/// The server's log, for `asgi.py` (Python's logging levels: 40 error, 30 warning, 20 info).
#[pyfunction]
fn server_log(level: u32, message: &str) {
    let level = match level {
        40.. => Level::Error,
        30..40 => Level::Warn,
        20..30 => Level::Info,
        _ => Level::Debug,
    };
    log(level, message);
}

/// The app the master imported under `--preload`; every worker inherits it through fork.
static PRELOADED: OnceLock<Py<PyAny>> = OnceLock::new();

/// `preload` (`rustgun --preload`): the master starts the interpreter and imports the app once,
/// before any fork, so the workers share the imported modules copy-on-write. Each worker still makes
/// its own event loop and runs its own lifespan (as uvicorn's workers do). Import failures stop the
/// server here, with the same line as in a worker.
fn preload(ctx: &InitContext) -> Result<(), String> {
    let opts = args::parse(ctx.args(), ASGI)?;
    start_interpreter();
    let imported = Python::attach(|py| rustgun_python::load_app(py, &opts, "ASGI").map(Bound::unbind))?;
    let _ = PRELOADED.set(imported);
    rustgun_python::release_gil_for_forks();
    Ok(())
}

impl Bridge {
    fn new(ctx: &InitContext) -> Result<Bridge, String> {
        let opts = args::parse(ctx.args(), ASGI)?;
        if PRELOADED.get().is_some() {
        } else {
            start_interpreter();
        }
        Python::attach(|py| {
            let fail = |e: PyErr| format!("cannot start the ASGI bridge: {}", describe(py, &e));
            let asgi_app = match PRELOADED.get() {
                Some(imported) => imported.bind(py).clone(),
                None => rustgun_python::load_app(py, &opts, "ASGI")?,
            };
            if PRELOADED.get().is_none() {
                rustgun_python::watch_modules(py, &opts);
            }
            let helpers = helpers(py).map_err(fail)?;
            let logger = wrap_pyfunction!(server_log, helpers).map_err(fail)?;
            let runner = helpers
                .getattr("Runner")
                .and_then(|r| {
                    r.call1((
                        asgi_app,
                        logger,
                        opts.value("--asgi-lifespan").unwrap_or("auto"),
                        opts.value("--root-path").unwrap_or(""),
                        opts.value("--asgi-loop").unwrap_or("auto"),
                        opts.value("--asgi-disconnect-grace-period").unwrap_or("3"),
                    ))
                })
                .map_err(fail)?;
            if let Err(e) = runner.call_method0("startup") {
                rustgun_python::log_at(py, Level::Warn, "Application startup failed. Exiting.", &e);
                return Err(format!(
                    "ASGI app {} failed its lifespan startup: {}",
                    opts.spec,
                    describe(py, &e)
                ));
            }
            Ok(Bridge { runner: runner.unbind() })
        })
    }

    /// The HTTP connection scope of `req` (ASGI 3.0, spec 2.4), without `root_path` and `state`
    /// (the runner's).
    fn scope<'py>(&self, py: Python<'py>, req: &Request<'_>) -> PyResult<Bound<'py, PyDict>> {
        let scope = PyDict::new(py);
        scope.set_item(pyo3::intern!(py, "type"), pyo3::intern!(py, "http"))?;
        let asgi = PyDict::new(py);
        asgi.set_item("version", "3.0")?;
        asgi.set_item("spec_version", "2.4")?;
        scope.set_item(pyo3::intern!(py, "asgi"), asgi)?;
        let version = req.version().strip_prefix("HTTP/").unwrap_or("1.1");
        scope.set_item(pyo3::intern!(py, "http_version"), version)?;
        scope.set_item(pyo3::intern!(py, "method"), req.method())?;
        scope.set_item(pyo3::intern!(py, "scheme"), req.url_scheme())?;
        scope.set_item(pyo3::intern!(py, "path"), req.path_str())?;
        scope.set_item(pyo3::intern!(py, "raw_path"), PyBytes::new(py, req.path_raw()))?;
        scope.set_item(pyo3::intern!(py, "query_string"), PyBytes::new(py, req.query()))?;
        let headers = PyList::empty(py);
        for (name, value) in req.headers() {
            let name = PyBytes::new_with(py, name.len(), |buf| {
                for (b, n) in buf.iter_mut().zip(name) {
                    *b = n.to_ascii_lowercase();
                }
                Ok(())
            })?;
            headers.append(PyTuple::new(py, [name, PyBytes::new(py, value)])?)?;
        }
        scope.set_item(pyo3::intern!(py, "headers"), headers)?;
        let peer = String::from_utf8_lossy(req.peer_addr());
        if peer.is_empty() {
            scope.set_item(pyo3::intern!(py, "client"), py.None())?;
        } else {
            scope.set_item(pyo3::intern!(py, "client"), (peer, req.peer_port()))?;
        }
        let server = String::from_utf8_lossy(req.server_addr());
        scope.set_item(pyo3::intern!(py, "server"), (server, req.server_port()))?;
        let extensions = PyDict::new(py);
        if req.is_websocket() {
            extensions.set_item("websocket.http.response", PyDict::new(py))?;
        }
        extensions.set_item("http.response.pathsend", PyDict::new(py))?;
        extensions.set_item("http.response.trailers", PyDict::new(py))?;
        scope.set_item(pyo3::intern!(py, "extensions"), extensions)?;
        Ok(scope)
    }
}

impl Bridge {
    /// The websocket scope: the HTTP scope's fields without `method`, with `ws`/`wss` and the
    /// subprotocols the client offered.
    fn websocket_scope<'py>(
        &self,
        py: Python<'py>,
        req: &Request<'_>,
        scope: Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyDict>> {
        scope.set_item(pyo3::intern!(py, "type"), pyo3::intern!(py, "websocket"))?;
        scope.del_item(pyo3::intern!(py, "method"))?;
        let scheme = if req.url_scheme() == "https" { "wss" } else { "ws" };
        scope.set_item(pyo3::intern!(py, "scheme"), scheme)?;
        let offered: Vec<String> = req
            .headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"sec-websocket-protocol"))
            .flat_map(|(_, value)| value.split(|&b| b == b','))
            .map(|p| String::from_utf8_lossy(p.trim_ascii()).into_owned())
            .filter(|p| !p.is_empty())
            .collect();
        scope.set_item(pyo3::intern!(py, "subprotocols"), offered)?;
        Ok(scope)
    }
}

/// The server's pending call, as `asgi.py`'s Cycle uses it.
#[pyclass(unsendable)]
struct Call {
    later: Later,
    /// The WebSocket, once accepted.
    ws: std::cell::Cell<Option<WebSocket>>,
}

fn state_error(e: HostError) -> PyErr {
    pyo3::exceptions::PyOSError::new_err(e.to_string())
}

#[pymethods]
impl Call {
    /// Up to `n` body bytes and whether the body ended with them; `None` when none are ready yet.
    fn read<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Option<(Bound<'py, PyBytes>, bool)>> {
        let mut buf = vec![0u8; n];
        let mut filled = 0;
        let ended = loop {
            if filled == n {
                break false;
            }
            match self.later.read_body(&mut buf[filled..]) {
                Ok(0) => break true,
                Ok(got) => filled += got,
                Err(HostError::Again) if filled == 0 => return Ok(None),
                Err(HostError::Again) => break false,
                Err(e) => return Err(pyo3::exceptions::PyOSError::new_err(e.to_string())),
            }
        };
        Ok(Some((PyBytes::new(py, &buf[..filled]), ended)))
    }

    /// Records the status and headers (`(name, value)` byte pairs).
    fn start(&self, status: u16, headers: Vec<(Vec<u8>, Vec<u8>)>) -> PyResult<()> {
        let fields: Vec<Header<'_>> = headers.iter().map(|(n, v)| Header::new(n, v)).collect();
        self.later.start(status, &fields).map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("the response head was refused: {e}"))
        })
    }

    /// Sends body bytes: `False` when the server's queue is full (nothing taken; wait for Writable).
    fn write(&self, data: &[u8]) -> PyResult<bool> {
        match self.later.write(data) {
            Ok(()) => Ok(true),
            Err(HostError::Again) => Ok(false),
            Err(e) => Err(pyo3::exceptions::PyOSError::new_err(e.to_string())),
        }
    }

    /// Adds trailer fields (`(name, value)` byte pairs), sent if the client takes them.
    fn trailers(&self, headers: Vec<(Vec<u8>, Vec<u8>)>) -> PyResult<()> {
        let fields: Vec<Header<'_>> = headers.iter().map(|(n, v)| Header::new(n, v)).collect();
        self.later
            .trailers(&fields)
            .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("the trailers were refused: {e}")))
    }

    /// Ends the response (`ok`: complete; else the connection is cut).
    fn complete(&self, ok: bool) {
        CYCLES.with_borrow_mut(|cycles| cycles.remove(&self.later.id()));
        let _ = self.later.complete(ok);
    }

    /// Accepts the WebSocket with `subprotocol` (empty for none) and extra headers.
    fn accept(&self, subprotocol: &str, headers: Vec<(Vec<u8>, Vec<u8>)>) -> PyResult<()> {
        let fields: Vec<Header<'_>> = headers.iter().map(|(n, v)| Header::new(n, v)).collect();
        let ws = self.later.accept_websocket(subprotocol, &fields).map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("the WebSocket could not be accepted: {e}"))
        })?;
        self.ws.set(Some(ws));
        Ok(())
    }

    /// Sends a message: `False` when the server's queue is full (nothing taken; wait for Writable).
    fn ws_send(&self, text: bool, data: &[u8]) -> PyResult<bool> {
        let ws = self.ws.get().ok_or_else(|| state_error(HostError::State))?;
        let sent = if text {
            let text = std::str::from_utf8(data)
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
            ws.send_text(text)
        } else {
            ws.send_binary(data)
        };
        match sent {
            Ok(()) => Ok(true),
            Err(HostError::Again) => Ok(false),
            Err(e) => Err(state_error(e)),
        }
    }

    /// Starts the closing handshake.
    fn ws_close(&self, code: u16, reason: &str) -> PyResult<()> {
        let ws = self.ws.get().ok_or_else(|| state_error(HostError::State))?;
        ws.close(code, reason).map_err(state_error)
    }
}

/// Steps the server's loop for the asyncio loop: the milliseconds until the next step, or -1 once
/// the worker is done.
#[pyclass(unsendable)]
struct Stepper {
    host_loop: HostLoop,
}

#[pymethods]
impl Stepper {
    fn __call__(&self) -> i64 {
        match self.host_loop.step() {
            Ok(Step::Within(wait)) => wait.as_millis() as i64,
            Ok(Step::Done) | Err(_) => -1,
        }
    }
}

/// Hands a server event to the Cycle of call `id` (`last`: the call is over).
fn deliver(id: usize, kind: u32, code: u16, data: &[u8], last: bool) {
    let cycle = if last {
        CYCLES.with_borrow_mut(|cycles| cycles.remove(&id))
    } else {
        CYCLES.with_borrow(|cycles| cycles.get(&id).map(|c| attach(|py| c.clone_ref(py))))
    };
    let Some(cycle) = cycle else { return };
    attach(|py| {
        if let Err(e) = cycle.call_method1(py, "event", (kind, code, PyBytes::new(py, data))) {
            log_exception(py, "error delivering an event to an ASGI request", &e);
        }
    });
}

impl App for Bridge {
    fn handle(&self, req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
        attach(|py| -> Result<(), Error> {
            let scope = self.scope(py, req)?;
            let scope = if req.is_websocket() { self.websocket_scope(py, req, scope)? } else { scope };
            let later = resp.later();
            let call = Py::new(py, Call { later, ws: std::cell::Cell::new(None) })?;
            match self.runner.call_method1(py, "request", (scope, call)) {
                Ok(cycle) => {
                    CYCLES.with_borrow_mut(|cycles| cycles.insert(later.id(), cycle));
                    Ok(())
                }
                Err(e) => {
                    log_exception(py, "cannot start the ASGI request", &e);
                    let _ = later.complete(false);
                    Ok(())
                }
            }
        })
    }

    fn on_later(&self, later: Later, event: LaterEvent) {
        let (kind, last) = match event {
            LaterEvent::Readable => (1, false),
            LaterEvent::Writable => (2, false),
            LaterEvent::Disconnected => (3, true),
        };
        deliver(later.id(), kind, 0, &[], last);
    }

    fn on_websocket(&self, ws: WebSocket, event: WsEvent<'_>) {
        match event {
            WsEvent::Open => {}
            WsEvent::Text(text) => deliver(ws.id(), 11, 0, text.as_bytes(), false),
            WsEvent::Binary(data) => deliver(ws.id(), 12, 0, data, false),
            WsEvent::Writable => deliver(ws.id(), 2, 0, &[], false),
            WsEvent::Closed { code, reason } => deliver(ws.id(), 13, code, reason.as_bytes(), true),
        }
    }

    fn run(&self, host_loop: &HostLoop) -> Result<(), Error> {
        attach(|py| {
            let stepper = Py::new(py, Stepper { host_loop: host_loop.clone() })?;
            let served = self.runner.call_method1(py, "serve", (host_loop.fd(), stepper));
            if let Err(e) = served {
                log_exception(py, "the asyncio loop failed", &e);
                return Err(Error::msg("the asyncio loop failed"));
            }
            Ok(())
        })
    }

    fn shutdown(&mut self) {
        attach(|py| {
            if let Err(e) = self.runner.call_method0(py, "shutdown") {
                log_exception(py, "Application shutdown failed", &e);
            }
            CYCLES.with_borrow_mut(HashMap::clear);
            rustgun_python::run_exit_functions(py);
        });
    }
}

rustgun_sdk::export_app!(app, Bridge::new, owns_loop, preload = preload);
// gunicorn.conf.py's server hooks, when the configuration file defines any.
rustgun_sdk::export_hooks!(
    rustgun_python::hooks::load,
    rustgun_python::hooks::defined,
    rustgun_python::hooks::call
);
