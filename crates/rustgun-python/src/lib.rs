//! What rustgun's Python bridges share (`libwsgi.so`, `libasgi.so`): starting the embedded
//! interpreter in a worker, attaching threads to it cheaply, setting up `sys.path` and a virtual
//! environment, importing the app the way gunicorn does (`embed.py`), and logging exceptions with
//! their tracebacks through the host's error log, and the GIL's hand-over across `--preload`'s
//! forks.
//!
//! Not here: WSGI or ASGI themselves (the bridges).

pub mod args;
pub mod hooks;

use std::cell::Cell;
use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyModule, PyTuple};
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

/// The master's thread that imported the app under `--preload` (pid, tid): its forks, and no one
/// else's, carry the interpreter over into a worker.
static FORKER: OnceLock<(u32, libc::pid_t)> = OnceLock::new();

thread_local! {
    /// Between the `prepare` and the `parent`/`child` handlers of one fork by the [`FORKER`]: how
    /// the GIL was taken for it. Per thread, so another thread's fork meanwhile is left alone.
    static FORKING: Cell<Option<pyo3::ffi::PyGILState_STATE>> = const { Cell::new(None) };
}

/// After `--preload` imported the app in the master: the master lets go of the GIL, so threads the
/// import started (an SDK's background sender, a metrics exporter) run on, and every fork the
/// master makes is then wrapped as Python's own `os.fork` wraps it: the GIL and the interpreter's
/// fork locks taken before (`PyOS_BeforeFork`), and each side's state fixed after
/// (`PyOS_AfterFork_Parent`, `PyOS_AfterFork_Child`), the GIL then let go on both. Forks by any
/// other thread or process (an app's own `os.fork` or `subprocess`, which do their own wrapping)
/// are left alone.
pub fn release_gil_for_forks() {
    // SAFETY: gettid(2) has no preconditions.
    let tid = unsafe { libc::gettid() };
    if FORKER.set((std::process::id(), tid)).is_err() {
        return;
    }
    // SAFETY: the three handlers are `extern "C"` functions that live as long as the process;
    // pthread_atfork only records them.
    let rc =
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork_parent), Some(after_fork_child)) };
    if rc != 0 {
        log(Level::Error, &format!("pthread_atfork failed ({rc}): workers forked after --preload may hang"));
    }
}

/// Whether this thread is the [`FORKER`], in the process it preloaded in.
fn is_forker() -> bool {
    // SAFETY: gettid(2) has no preconditions.
    let tid = unsafe { libc::gettid() };
    FORKER.get() == Some(&(std::process::id(), tid))
}

extern "C" fn before_fork() {
    if !is_forker() {
        return;
    }
    // SAFETY: the interpreter is initialised and this thread has its thread state (it ran the
    // preload); it takes the GIL, then the interpreter's fork locks, as `os.fork` does.
    let state = unsafe {
        let state = pyo3::ffi::PyGILState_Ensure();
        pyo3::ffi::PyOS_BeforeFork();
        state
    };
    FORKING.set(Some(state));
}

extern "C" fn after_fork_parent() {
    if let Some(state) = FORKING.take() {
        // SAFETY: `before_fork` took the GIL and the fork locks on this thread; this undoes both.
        unsafe {
            pyo3::ffi::PyOS_AfterFork_Parent();
            pyo3::ffi::PyGILState_Release(state);
        }
    }
}

extern "C" fn after_fork_child() {
    if let Some(state) = FORKING.take() {
        // SAFETY: the new process's only thread is the one that held the GIL and the fork locks
        // when it forked, which is what `PyOS_AfterFork_Child` requires; the GIL is then let go, so
        // the bridge attaches to it as in any worker.
        unsafe {
            pyo3::ffi::PyOS_AfterFork_Child();
            pyo3::ffi::PyGILState_Release(state);
        }
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

/// Sets up `sys.path` (the working directory, `--pythonpath`, `--venv` or else `VIRTUAL_ENV`) and imports the app
/// `opts` names. A failure is logged with its traceback and returned as the one-line boot error
/// (`cannot load KIND app SPEC: ExcType: message`).
pub fn load_app<'py>(py: Python<'py>, opts: &args::Options, kind: &str) -> Result<Bound<'py, PyAny>, String> {
    let fail = |e: PyErr| format!("cannot start the {kind} bridge: {}", describe(py, &e));
    let embed = embed(py).map_err(fail)?;
    let venv = opts.venv.clone().or_else(|| std::env::var("VIRTUAL_ENV").ok()).filter(|v| !v.is_empty());
    embed.call_method1("setup_path", (opts.pythonpath.clone(), venv)).map_err(fail)?;
    let paste_global: Vec<&str> =
        opts.values.iter().filter(|(name, _)| *name == "--paste-global").map(|(_, v)| v.as_str()).collect();
    embed.call_method1("load", (opts.spec.as_str(), opts.factory, paste_global)).map_err(|e| {
        // The traceback goes to the log; the one-line reason becomes the server's boot error.
        log_at(py, Level::Warn, &format!("cannot load {kind} app {}:", opts.spec), &e);
        format!("cannot load {kind} app {}: {}", opts.spec, describe(py, &e))
    })
}

/// `--reload`: this worker watches its imported modules' files and stops when one changes
/// (`embed.py`'s `watch_modules`); nothing without it. Called in the worker, never in the master.
pub fn watch_modules(py: Python<'_>, opts: &args::Options) {
    if !opts.reload {
        return;
    }
    let log_info = PyCFunction::new_closure(
        py,
        None,
        None,
        |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
            let (line,): (String,) = args.extract()?;
            log(Level::Info, &line);
            Ok(())
        },
    );
    if let Err(e) = log_info.and_then(|f| embed(py)?.call_method1("watch_modules", (f,))) {
        log_exception(py, "cannot watch the modules for --reload", &e);
    }
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
