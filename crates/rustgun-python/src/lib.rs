//! What rustgun's Python bridges share (`libwsgi.so`, `libasgi.so`): starting the embedded
//! interpreter in a worker, attaching threads to it cheaply, setting up `sys.path` and a virtual
//! environment, importing the app the way gunicorn does (`embed.py`), and logging exceptions with
//! their tracebacks through the host's error log, and the GIL's hand-over across `--preload`'s
//! forks.
//!
//! Not here: WSGI or ASGI themselves (the bridges).

pub mod args;

use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyModule;
use rustgun_sdk::log::{Level, log};

/// The helper module compiled from `embed.py`, once per process.
static EMBED: OnceLock<Py<PyModule>> = OnceLock::new();

/// The shared helper module (`_rustgun_embed`).
pub fn embed(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    if EMBED.get().is_none() {
        let code = CString::new(include_str!("embed.py")).expect("no NUL in embed.py");
        let module = PyModule::from_code(py, &code, c"rustgun_embed.py", c"_rustgun_embed")?;
        let _ = EMBED.set(module.unbind());
    }
    Ok(EMBED.get().expect("set above").bind(py))
}

/// After `--preload` imported the app in the master: from here on the master holds the GIL for good
/// (it runs no more Python), so each fork happens with the GIL held by the forking thread, the state
/// `PyOS_AfterFork_Child` expects in the child.
pub fn hold_gil_for_forks() {
    // SAFETY: the interpreter is initialised and this thread has its thread state (it just ran the
    // preload under `Python::attach`).
    unsafe { pyo3::ffi::PyGILState_Ensure() };
}

/// In a worker forked from a master that preloaded the app ([`hold_gil_for_forks`]): resets the
/// interpreter's thread and GIL state for this process, then lets go of the GIL, so that the bridge
/// attaches to it as in any worker.
pub fn after_fork_in_worker() {
    // SAFETY: a freshly forked worker whose only thread is the one that held the GIL in the master
    // when it forked, which is what `PyOS_AfterFork_Child` requires; `PyEval_SaveThread` then releases
    // the GIL that thread holds.
    unsafe {
        pyo3::ffi::PyOS_AfterFork_Child();
        pyo3::ffi::PyEval_SaveThread();
    }
}

/// Logs `what` and the exception's traceback as one record of the error log at `level`.
pub fn log_at(py: Python<'_>, level: Level, what: &str, e: &PyErr) {
    let traceback = embed(py)
        .and_then(|h| h.call_method1("format_exception", (e.value(py), e.traceback(py))))
        .and_then(|s| s.extract::<String>())
        .unwrap_or_else(|_| e.to_string());
    log(level, &format!("{what}\n{traceback}"));
}

/// Logs `what` and the exception's traceback at error level.
pub fn log_exception(py: Python<'_>, what: &str, e: &PyErr) {
    log_at(py, Level::Error, what, e);
}

/// `ExcType: message`, on one line.
pub fn describe(py: Python<'_>, e: &PyErr) -> String {
    embed(py)
        .and_then(|h| h.call_method1("describe", (e.value(py),)))
        .and_then(|s| s.extract::<String>())
        .unwrap_or_else(|_| e.to_string().replace('\n', " "))
}

/// Sets up `sys.path` (the working directory, `--pythonpath`, `VIRTUAL_ENV`) and imports the app
/// `opts` names. A failure is logged with its traceback and returned as the one-line boot error
/// (`cannot load KIND app SPEC: ExcType: message`).
pub fn load_app<'py>(py: Python<'py>, opts: &args::Options, kind: &str) -> Result<Bound<'py, PyAny>, String> {
    let fail = |e: PyErr| format!("cannot start the {kind} bridge: {}", describe(py, &e));
    let embed = embed(py).map_err(fail)?;
    let venv = std::env::var("VIRTUAL_ENV").ok().filter(|v| !v.is_empty());
    embed.call_method1("setup_path", (opts.pythonpath.clone(), venv)).map_err(fail)?;
    embed.call_method1("load", (opts.spec.as_str(), opts.factory)).map_err(|e| {
        // The traceback goes to the log; the one-line reason becomes the server's boot error.
        log_at(py, Level::Warn, &format!("cannot load {kind} app {}:", opts.spec), &e);
        format!("cannot load {kind} app {}: {}", opts.spec, describe(py, &e))
    })
}

/// What a gunicorn worker's interpreter does on the way out: atexit handlers, flushed streams.
pub fn run_exit_functions(py: Python<'_>) {
    if let Err(e) = embed(py).and_then(|h| h.call_method0("run_exit_functions")) {
        log_exception(py, "Error running the Python exit functions", &e);
    }
}

/// `Python::attach` for a thread the server called the bridge on. The first time on a thread it gives
/// the thread a Python thread state for good: otherwise every attach on a thread Python did not
/// create (the `threads` class, the event pool) makes a fresh thread state and destroys it on
/// release — a large part of a small request's cost.
pub fn attach<F, R>(f: F) -> R
where
    F: for<'py> FnOnce(Python<'py>) -> R,
{
    thread_local! {
        static KEPT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    KEPT.with(|kept| {
        // SAFETY: the interpreter was started before any request (`start_interpreter`). Only when this
        // thread does not hold the GIL: Ensure gives it a thread state (count 1) and the GIL, and
        // SaveThread hands the GIL back while the state stays, so later Ensure/Release pairs (inside
        // `Python::attach`) only take and release the GIL. The state lives as long as the thread.
        // SAFETY: as above; asking whether this thread holds the GIL is always allowed.
        if !kept.get() && unsafe { pyo3::ffi::PyGILState_Check() } == 0 {
            // SAFETY: as above: the interpreter runs and this thread holds no GIL.
            unsafe {
                pyo3::ffi::PyGILState_Ensure();
                pyo3::ffi::PyEval_SaveThread();
            }
            kept.set(true);
        }
    });
    Python::attach(f)
}

/// Makes libpython's symbols global and starts the interpreter (once per process).
pub fn start_interpreter() {
    // The library is loaded RTLD_LOCAL, and CPython's extension modules (`_json`, `_ssl`, …) of a
    // shared-libpython build do not link libpython themselves: they expect its symbols to be global.
    // SAFETY: dladdr on a function of libpython, then a NOLOAD dlopen of the file it names; the
    // handle is kept for the life of the process.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let addr = pyo3::ffi::Py_IsInitialized as *const libc::c_void;
        if libc::dladdr(addr, &mut info) != 0 && !info.dli_fname.is_null() {
            libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD);
        }
    }
    Python::initialize();
}
