//! gunicorn.conf.py's server hooks (`hooks.py`), behind the table each Python bridge exports
//! (`rustgun_hooks`, see `rustgun_abi::RgHooks`): [`load`] runs the file in the master's interpreter,
//! [`call`] runs one hook at the moment the server says, in the process it says; [`pre_request`] and
//! [`post_request`] are the two a bridge runs itself, around each WSGI call.
//!
//! Nothing here runs unless the configuration file defines a hook: the server loads this table only
//! then, and [`per_request`] is one relaxed load on the request path.
//!
//! Not here: reading the file's settings (the server does that in a throwaway `python` before it
//! starts, `rustgun::config`), nor when each hook is due (`rustgun::app::hooks`).

use std::ffi::CString;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyModule, PyTuple};
use rustgun_sdk::InitContext;
use rustgun_sdk::abi::RgHookCtx;
use rustgun_sdk::abi::{RG_HOOK_POST_REQUEST, RG_HOOK_PRE_REQUEST};
use rustgun_sdk::log::{Level, log};

use crate::args::{self, Bridge};
use crate::{describe, log_exception, start_interpreter};

/// The module compiled from `hooks.py`, once per process.
static MODULE: OnceLock<Py<PyModule>> = OnceLock::new();
/// The `RG_HOOK_*` bits of the hooks the loaded file defines.
static DEFINED: AtomicU64 = AtomicU64::new(0);

fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    if MODULE.get().is_none() {
        let code = CString::new(include_str!("hooks.py")).expect("no NUL in hooks.py");
        let module = PyModule::from_code(py, &code, c"rustgun_hooks.py", c"_rustgun_hooks")?;
        let _ = MODULE.set(module.unbind());
    }
    Ok(MODULE.get().expect("set above").bind(py))
}

/// The arguments `load` takes: the bridge's path options, then the file where an app would be.
const HOOKS: Bridge = Bridge { library: "the hooks table", kind: "hooks", options: &[] };

/// `RgHooks::load`: starts the interpreter (in the master), sets up `sys.path` as for the app, and
/// runs the configuration file, keeping its hooks. A file that raises is a boot error naming it.
pub fn load(ctx: &InitContext) -> Result<(), String> {
    let opts = args::parse(ctx.args(), HOOKS)?;
    start_interpreter();
    let first = MODULE.get().is_none();
    let loaded = Python::attach(|py| -> Result<u64, String> {
        let fail = |e: PyErr| format!("cannot load the config file {}: {}", opts.spec, describe(py, &e));
        let embed = crate::embed(py).map_err(fail)?;
        let venv = opts.venv.clone().or_else(|| std::env::var("VIRTUAL_ENV").ok()).filter(|v| !v.is_empty());
        embed.call_method1("setup_path", (opts.pythonpath.clone(), venv)).map_err(fail)?;
        let emit = PyCFunction::new_closure(
            py,
            None,
            None,
            |args: &Bound<'_, PyTuple>, _kw: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                let (level, text): (i32, String) = args.extract()?;
                let level = match level {
                    1 => Level::Error,
                    2 => Level::Warn,
                    3 => Level::Info,
                    _ => Level::Debug,
                };
                log(level, &text);
                Ok(())
            },
        )
        .map_err(fail)?;
        module(py)
            .and_then(|m| m.call_method1("load", (opts.spec.as_str(), emit)))
            .and_then(|bits| bits.extract())
            .map_err(|e| {
                crate::log_at(py, Level::Warn, &format!("cannot load the config file {}:", opts.spec), &e);
                fail(e)
            })
    })?;
    DEFINED.store(loaded, Relaxed);
    if first {
        // The master goes on without the GIL, and its forks carry the interpreter over as --preload's do.
        crate::release_gil_for_forks();
    }
    Ok(())
}

/// `RgHooks::defined`.
pub fn defined() -> u64 {
    DEFINED.load(Relaxed)
}

/// `RgHooks::call`: runs the hook; one that raises is logged with its traceback (`false`), and the
/// server goes on as gunicorn does.
pub fn call(ctx: &RgHookCtx) -> bool {
    if ctx.hook >= 64 || DEFINED.load(Relaxed) & (1 << ctx.hook) == 0 {
        return true;
    }
    crate::attach(|py| {
        let args = (
            ctx.hook,
            ctx.master_pid,
            ctx.worker_pid,
            ctx.worker_id,
            ctx.worker_age,
            ctx.workers,
            ctx.old_workers,
        );
        match module(py).and_then(|m| m.call_method1("call", args)) {
            Ok(_) => true,
            Err(e) => {
                let name = module(py)
                    .and_then(|m| m.getattr("NAMES")?.get_item(ctx.hook)?.extract::<String>())
                    .unwrap_or_default();
                log_exception(py, &format!("Exception in the {name} hook:"), &e);
                false
            }
        }
    })
}

/// Whether the file defines `pre_request` or `post_request`: the WSGI bridge asks on every request.
pub fn per_request() -> bool {
    DEFINED.load(Relaxed) & (1 << RG_HOOK_PRE_REQUEST | 1 << RG_HOOK_POST_REQUEST) != 0
}

/// Runs `pre_request(worker, req)`; one that raises is logged and the request goes on.
pub fn pre_request(py: Python<'_>, environ: &Bound<'_, PyDict>) {
    if let Err(e) = module(py).and_then(|m| m.call_method1("pre_request", (environ,))) {
        log_exception(py, "Exception in the pre_request hook:", &e);
    }
}

/// Runs `post_request(worker, req, environ, resp)`; one that raises is logged.
pub fn post_request(
    py: Python<'_>,
    environ: &Bound<'_, PyDict>,
    status: Option<&Bound<'_, PyAny>>,
    headers: Option<&Bound<'_, PyAny>>,
) {
    if let Err(e) = module(py).and_then(|m| m.call_method1("post_request", (environ, status, headers))) {
        log_exception(py, "Exception in the post_request hook:", &e);
    }
}
