//! The configuration file's server hooks (gunicorn.conf.py's `post_fork`, `when_ready`, …): the
//! bridge that runs them (`rustgun_hooks`, a `rustgun_abi::RgHooks`), loaded into the master only when
//! the file defines a hook, and [`run`], which the master and the workers call at gunicorn's moments.
//! A worker inherits the loaded table through fork, so its hooks run in its own process.
//!
//! When no hook is defined, [`run`] is one relaxed load and a branch: no library, no interpreter.
//!
//! Not here: reading the file (`config::pyfile`), running Python (`rustgun-python`'s `hooks`).

use super::AppRef;
use super::load::{LoadError, call_with_init, open_symbol};
use rustgun_abi::{RG_HOOKS_VERSION, RG_MAGIC, RgHookCtx, RgHooks};
use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What the master needs to run a file's hooks: the bridge, and its arguments (the file last).
#[derive(Clone, Debug)]
pub struct Spec {
    pub bridge: PathBuf,
    pub args: Vec<String>,
    /// The hooks the file defines, by name (as its settings were read).
    pub names: Vec<String>,
}

/// gunicorn's server hooks, numbered as `RG_HOOK_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    OnStarting = rustgun_abi::RG_HOOK_ON_STARTING as isize,
    OnReload = rustgun_abi::RG_HOOK_ON_RELOAD as isize,
    WhenReady = rustgun_abi::RG_HOOK_WHEN_READY as isize,
    PreFork = rustgun_abi::RG_HOOK_PRE_FORK as isize,
    PostFork = rustgun_abi::RG_HOOK_POST_FORK as isize,
    PostWorkerInit = rustgun_abi::RG_HOOK_POST_WORKER_INIT as isize,
    WorkerInt = rustgun_abi::RG_HOOK_WORKER_INT as isize,
    WorkerAbort = rustgun_abi::RG_HOOK_WORKER_ABORT as isize,
    PreExec = rustgun_abi::RG_HOOK_PRE_EXEC as isize,
    ChildExit = rustgun_abi::RG_HOOK_CHILD_EXIT as isize,
    WorkerExit = rustgun_abi::RG_HOOK_WORKER_EXIT as isize,
    NworkersChanged = rustgun_abi::RG_HOOK_NWORKERS_CHANGED as isize,
    OnExit = rustgun_abi::RG_HOOK_ON_EXIT as isize,
}

/// Who a hook is about: the master, and the worker when there is one (the ABI's context, its `size`
/// and `hook` filled in by [`run`]).
pub type About = RgHookCtx;

/// A master hook's: this process is the master, keeping `workers`.
pub fn master(workers: u32) -> About {
    worker(std::process::id() as i32, 0, 0, 0, workers)
}

/// A hook about worker `worker_id` (`worker_pid` 0 before its fork).
pub fn worker(master_pid: i32, worker_pid: i32, worker_id: u32, worker_age: u32, workers: u32) -> About {
    let size = size_of::<RgHookCtx>() as u32;
    RgHookCtx { size, hook: 0, master_pid, worker_pid, worker_id, worker_age, workers, old_workers: workers }
}

/// Why the hooks could not be loaded; each displays as one line naming the bridge or the file.
#[derive(Debug)]
pub enum HooksError {
    /// The bridge library cannot be opened, or does not export `rustgun_hooks`.
    Bridge(LoadError),
    /// `rustgun_hooks` is not a hooks table this server reads.
    Version { bridge: PathBuf, magic: u32, version: u32 },
    /// The file raised, or the bridge refused it.
    Load { file: String, message: String },
}

impl fmt::Display for HooksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HooksError::Bridge(e) => write!(f, "cannot run the config file's hooks: {e}"),
            HooksError::Version { bridge, magic, version } => write!(
                f,
                "cannot run the config file's hooks: {}'s rustgun_hooks is not a version {RG_HOOKS_VERSION} table (magic {magic:#010x}, version {version})",
                bridge.display()
            ),
            HooksError::Load { file, message } => write!(f, "config file {file}: {message}"),
        }
    }
}

impl std::error::Error for HooksError {}

/// The bridge's table, once loaded: it stays for the life of the process (and its forks).
static TABLE: OnceLock<&'static RgHooks> = OnceLock::new();
/// The hooks the loaded file defines, a bit each; 0 until a file with hooks is loaded.
static DEFINED: AtomicU64 = AtomicU64::new(0);

/// Runs `spec`'s file in the master (again on a reload, replacing its hooks); `None` forgets the
/// hooks of a file that no longer defines any.
pub fn load(spec: Option<&Spec>) -> Result<(), HooksError> {
    let Some(spec) = spec else {
        DEFINED.store(0, Relaxed);
        return Ok(());
    };
    let app = AppRef { path: spec.bridge.clone(), symbol: "rustgun_hooks".into(), symbol_given: true };
    let table = match TABLE.get() {
        Some(table) => *table,
        None => {
            let addr: *const RgHooks = open_symbol(&app).map_err(HooksError::Bridge)?;
            // SAFETY: the symbol's first three u32 (magic, version, size) are read unaligned-tolerant
            // before the table is trusted, as for an app descriptor.
            let (magic, version, size) = unsafe {
                let head = addr.cast::<u32>();
                (head.read_unaligned(), head.add(1).read_unaligned(), head.add(2).read_unaligned())
            };
            if magic != RG_MAGIC || version != RG_HOOKS_VERSION || (size as usize) < size_of::<RgHooks>() {
                return Err(HooksError::Version { bridge: spec.bridge.clone(), magic, version });
            }
            // SAFETY: checked above to be a whole version-1 table, in a library never unloaded.
            let table: &'static RgHooks = unsafe { &*addr };
            *TABLE.get_or_init(|| table)
        }
    };
    let file = spec.args.last().cloned().unwrap_or_default();
    call_with_init(&app, 0, &spec.args, 0, |host, block| {
        // SAFETY: `load` comes from the checked table; the block and the host table outlive the call.
        unsafe { (table.load)(host, block) }
    })
    .map_err(|e| match e {
        LoadError::Init { message, .. } => HooksError::Load { file, message },
        other => HooksError::Bridge(other),
    })?;
    // SAFETY: `defined` comes from the checked table and takes nothing.
    DEFINED.store(unsafe { (table.defined)() }, Relaxed);
    Ok(())
}

/// Whether the loaded file defines `hook`.
pub fn defined(hook: Hook) -> bool {
    DEFINED.load(Relaxed) & (1 << hook as u32) != 0
}

/// Runs `hook` here, if the file defines it. One that raises was logged by the bridge with its
/// traceback, and the server goes on, as gunicorn's does.
pub fn run(hook: Hook, about: About) {
    if !defined(hook) {
        return;
    }
    let Some(table) = TABLE.get() else { return };
    let ctx = RgHookCtx { hook: hook as u32, ..about };
    // SAFETY: `call` comes from the checked table; the context outlives the call.
    let _ = unsafe { (table.call)(&ctx) };
}
