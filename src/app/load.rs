//! Opening an app library, checking its descriptor, and the per-worker app instance (`init`,
//! `handle`, `shutdown`).

use super::host::HOST;
use rustgun_abi::{
    RG_ABI_MAJOR, RG_ABI_MINOR, RG_APP_ASYNC, RG_APP_FLAGS, RG_APP_THREAD_SAFE, RG_MAGIC, RG_OK, RgApp,
    RgCall, RgEvent, RgHost, RgInit, RgLoop, RgRequest, RgStr,
};
use std::ffi::c_void;
use std::fmt;
use std::path::PathBuf;

/// `path:symbol` from the command line; the symbol defaults to `app`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRef {
    pub path: PathBuf,
    pub symbol: String,
    /// The symbol was written out (`PATH:SYMBOL`), not defaulted.
    pub symbol_given: bool,
}

impl std::str::FromStr for AppRef {
    type Err = String;

    fn from_str(s: &str) -> Result<AppRef, String> {
        let (path, symbol, symbol_given) = match s.rsplit_once(':') {
            Some((path, symbol)) if !symbol.contains('/') => (path, symbol, true),
            _ => (s, "app", false),
        };
        if path.is_empty() {
            return Err(format!("app reference {s:?} has no library path"));
        }
        if symbol.is_empty() {
            return Err(format!("app reference {s:?} has an empty symbol"));
        }
        Ok(AppRef { path: PathBuf::from(path), symbol: symbol.to_string(), symbol_given })
    }
}

impl fmt::Display for AppRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.symbol)
    }
}

/// Why an app could not be loaded or started. Each displays as one line naming the file and symbol.
#[derive(Debug)]
pub enum LoadError {
    Open { app: AppRef, reason: String },
    Symbol { app: AppRef, reason: String },
    Magic { app: AppRef, found: u32 },
    Version { app: AppRef, major: u16, minor: u16 },
    Size { app: AppRef, size: u32 },
    NoHandle { app: AppRef },
    Flags { app: AppRef, unknown: u32 },
    NotThreadSafe { app: AppRef, worker_class: &'static str },
    NoEventHandler { app: AppRef },
    RunWithoutAsync { app: AppRef },
    AsyncNeedsLoop { app: AppRef, worker_class: &'static str },
    Init { app: AppRef, code: i32, message: String },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Open { app, reason } => write!(f, "cannot load app {app}: {reason}"),
            LoadError::Symbol { app, reason } => {
                write!(f, "cannot load app {app}: symbol `{}` not found: {reason}", app.symbol)
            }
            LoadError::Magic { app, found } => write!(
                f,
                "cannot load app {app}: `{}` is not a rustgun app descriptor (magic {found:#010x}, expected {RG_MAGIC:#010x})",
                app.symbol
            ),
            LoadError::Version { app, major, minor } => write!(
                f,
                "cannot load app {app}: it was built for rustgun ABI {major}.{minor}, this server provides ABI {RG_ABI_MAJOR}.{RG_ABI_MINOR}"
            ),
            LoadError::Size { app, size } => write!(
                f,
                "cannot load app {app}: descriptor size {size} is smaller than ABI {RG_ABI_MAJOR}.0 requires ({APP_SIZE_1_0})"
            ),
            LoadError::NoHandle { app } => {
                write!(f, "cannot load app {app}: the descriptor has no handle function")
            }
            LoadError::Flags { app, unknown } => write!(
                f,
                "cannot load app {app}: its descriptor sets flags {unknown:#x} that ABI {RG_ABI_MAJOR}.{RG_ABI_MINOR} does not define"
            ),
            LoadError::NotThreadSafe { app, worker_class } => write!(
                f,
                "cannot load app {app}: it does not declare RG_APP_THREAD_SAFE, which the {worker_class} worker class requires"
            ),
            LoadError::NoEventHandler { app } => write!(
                f,
                "cannot load app {app}: it declares RG_APP_ASYNC but its descriptor has no on_event function"
            ),
            LoadError::RunWithoutAsync { app } => write!(
                f,
                "cannot load app {app}: its descriptor has a run function but does not declare RG_APP_ASYNC"
            ),
            LoadError::AsyncNeedsLoop { app, worker_class } => write!(
                f,
                "cannot load app {app}: it declares RG_APP_ASYNC (its calls outlive handle and need an event loop), which the {worker_class} worker class cannot serve; use -k event (or -k threads)"
            ),
            LoadError::Init { app, code, message } => {
                write!(f, "app {app} failed to initialise (status {code}): {message}")
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// The size of a 1.0 descriptor: 1.1 appended `preload`, which an older app's descriptor lacks.
const APP_SIZE_1_0: usize = std::mem::offset_of!(RgApp, preload);
/// The size of a 1.1 descriptor (1.2 added no field); 1.3 appended `on_event`.
const APP_SIZE_1_1: usize = std::mem::offset_of!(RgApp, on_event);

/// An opened and checked app library. Never unloaded: Rust and C runtimes in it may have left
/// thread-local destructors or atexit handlers pointing into it.
#[derive(Clone, Copy)]
pub struct Library {
    pub app_ref: &'static AppRef,
    desc: &'static RgApp,
}

impl Library {
    /// Opens `app.path` with `RTLD_NOW | RTLD_LOCAL` (missing symbols fail here, not mid-request)
    /// and checks the descriptor: symbol, magic, major, minor, size, required entries, known flags.
    pub fn open(app: &AppRef) -> Result<Library, LoadError> {
        let app: &'static AppRef = Box::leak(Box::new(app.clone()));
        let addr: *const RgApp = open_symbol(app)?;
        if addr.is_null() {
            return Err(LoadError::Magic { app: app.clone(), found: 0 });
        }
        // SAFETY: the symbol names at least the frozen 12-byte head in every ABI version; the
        // fields are read one by one, unaligned-tolerant, before the full struct is trusted.
        let (magic, major, minor, size) = unsafe {
            let head = addr.cast::<u8>();
            (
                head.cast::<u32>().read_unaligned(),
                head.add(4).cast::<u16>().read_unaligned(),
                head.add(6).cast::<u16>().read_unaligned(),
                head.add(8).cast::<u32>().read_unaligned(),
            )
        };
        if magic != RG_MAGIC {
            return Err(LoadError::Magic { app: app.clone(), found: magic });
        }
        if major != RG_ABI_MAJOR || minor > RG_ABI_MINOR {
            return Err(LoadError::Version { app: app.clone(), major, minor });
        }
        if (size as usize) < APP_SIZE_1_0 {
            return Err(LoadError::Size { app: app.clone(), size });
        }
        // A descriptor built for an older minor ends early (before `preload` in 1.0, before `on_event`
        // up to 1.2): copy what it has, the rest stays None.
        let desc: &'static RgApp = if (size as usize) < std::mem::size_of::<RgApp>() {
            // SAFETY: `size` bytes (at least the 1.0 fields) are readable at `addr`; the prefix of an
            // `RgApp` with the same layout is copied over a descriptor whose later fields are None.
            // Only whole fields are copied: every minor's size ends on a field boundary.
            unsafe {
                let mut full = RgApp::new(0, None, placeholder_handle, None);
                let known = if size as usize >= APP_SIZE_1_1 { APP_SIZE_1_1 } else { APP_SIZE_1_0 };
                std::ptr::copy_nonoverlapping(addr.cast::<u8>(), (&raw mut full).cast::<u8>(), known);
                Box::leak(Box::new(full))
            }
        } else {
            // SAFETY: magic, version and size say a complete descriptor lives at `addr`, in a library
            // that is never unmapped.
            unsafe { &*addr }
        };
        if desc.handle.is_none() {
            return Err(LoadError::NoHandle { app: app.clone() });
        }
        if desc.flags & !RG_APP_FLAGS != 0 {
            return Err(LoadError::Flags { app: app.clone(), unknown: desc.flags & !RG_APP_FLAGS });
        }
        if desc.flags & RG_APP_ASYNC != 0 && desc.on_event.is_none() {
            return Err(LoadError::NoEventHandler { app: app.clone() });
        }
        if desc.run.is_some() && desc.flags & RG_APP_ASYNC == 0 {
            return Err(LoadError::RunWithoutAsync { app: app.clone() });
        }
        Ok(Library { app_ref: app, desc })
    }

    /// Runs the app's `preload` (ABI 1.1) in the master, before any fork (`--preload`); nothing when the
    /// app has none. A refusal is reported like a failed `init`.
    pub fn preload(&self, args: &[String], flags: u32) -> Result<(), LoadError> {
        let Some(preload) = self.desc.preload else { return Ok(()) };
        call_with_init(self.app_ref, 0, args, flags, |host, block| {
            // SAFETY: `preload` comes from a checked 1.1 descriptor; the block and the host table
            // outlive the call.
            unsafe { preload(host, block) }
        })
    }

    /// Whether `worker_class` can serve the app: calls on several threads at once need
    /// `RG_APP_THREAD_SAFE`, an `RG_APP_ASYNC` app a class that can give it an event loop (`looped`).
    pub fn check_class(
        &self,
        worker_class: &'static str,
        multithreaded: bool,
        looped: bool,
    ) -> Result<(), LoadError> {
        let app = self.app_ref.clone();
        if multithreaded && self.desc.flags & RG_APP_THREAD_SAFE == 0 {
            return Err(LoadError::NotThreadSafe { app, worker_class });
        }
        if self.is_async() && !looped {
            return Err(LoadError::AsyncNeedsLoop { app, worker_class });
        }
        Ok(())
    }

    /// The app's calls may outlive `handle` (`RG_APP_ASYNC`, ABI 1.3).
    pub fn is_async(&self) -> bool {
        self.desc.flags & RG_APP_ASYNC != 0
    }

    /// Runs the app's `init` for this worker (when it has one) and returns the live instance.
    pub fn start(self, worker_id: u32, args: &[String], flags: u32) -> Result<App, LoadError> {
        let mut state: *mut c_void = std::ptr::null_mut();
        if let Some(init) = self.desc.init {
            call_with_init(self.app_ref, worker_id, args, flags, |host, block| {
                // SAFETY: `init` comes from a checked descriptor; the block and the host table outlive
                // the call, and `state` is a valid out-pointer.
                unsafe { init(host, block, &mut state) }
            })?;
        }
        Ok(App { lib: self, state })
    }
}

/// Opens `app.path` with `RTLD_NOW | RTLD_LOCAL` (missing symbols fail here, not mid-request), never
/// to be unloaded, and returns the address of `app.symbol` in it (not yet checked in any way).
pub(super) fn open_symbol<T>(app: &AppRef) -> Result<*const T, LoadError> {
    use libloading::os::unix::{Library as Dl, RTLD_LOCAL, RTLD_NOW};
    // A bare file name would be searched on LD_LIBRARY_PATH; a user means the file here.
    let path = if app.path.components().count() == 1 {
        PathBuf::from(".").join(&app.path)
    } else {
        app.path.clone()
    };
    // SAFETY: loading a library runs its initialisers; that is the point of naming it on the
    // command line, and the operator vouches for it as they would for a gunicorn app module.
    let lib = unsafe { Dl::open(Some(&path), RTLD_NOW | RTLD_LOCAL) }
        .map_err(|e| LoadError::Open { app: app.clone(), reason: one_line(&e.to_string()) })?;
    // SAFETY: we only take the symbol's address here; nothing is read through it.
    let addr: *const T = unsafe { lib.get::<*const T>(app.symbol.as_bytes()) }
        .map(|sym| *sym)
        .map_err(|e| LoadError::Symbol { app: app.clone(), reason: one_line(&e.to_string()) })?;
    // Never unload (see `Library`): the mapping lives as long as the process.
    std::mem::forget(lib);
    Ok(addr)
}

/// Never called: stands in for the `handle` of a 1.0 descriptor until its own is copied over it.
unsafe extern "C" fn placeholder_handle(_state: *mut c_void, _request: *const RgRequest) -> i32 {
    rustgun_abi::RG_ERROR
}

/// Calls `entry` (`init` or `preload`) with an `RgInit` for `args` and turns a refusal into
/// [`LoadError::Init`] carrying the app's message.
pub(super) fn call_with_init(
    app: &AppRef,
    worker_id: u32,
    args: &[String],
    flags: u32,
    entry: impl FnOnce(&'static RgHost, &mut RgInit) -> i32,
) -> Result<(), LoadError> {
    let arg_strs: Vec<RgStr> = args.iter().map(|a| RgStr::from_bytes(a.as_bytes())).collect();
    let mut error = [0u8; 1024];
    let mut block = RgInit {
        size: std::mem::size_of::<RgInit>() as u32,
        worker_id,
        args: arg_strs.as_ptr(),
        args_len: arg_strs.len(),
        flags,
        error_len: 0,
        error_buf: error.as_mut_ptr(),
        error_cap: error.len(),
    };
    let code = entry(&HOST, &mut block);
    if code == RG_OK {
        return Ok(());
    }
    let len = (block.error_len as usize).min(error.len());
    let message = match String::from_utf8_lossy(&error[..len]).trim() {
        "" => "no reason given".to_string(),
        text => one_line(text),
    };
    Err(LoadError::Init { app: app.clone(), code, message })
}

/// An app started in this worker: its library and the state its `init` returned.
pub struct App {
    pub lib: Library,
    state: *mut c_void,
}

// SAFETY: the state pointer is only handed back to the app, which declared with RG_APP_THREAD_SAFE
// (checked before a threaded worker shares it) that concurrent `handle` calls are fine.
unsafe impl Sync for App {}
// SAFETY: as above; the app instance is created and shut down on the worker's main thread.
unsafe impl Send for App {}

impl App {
    /// Calls the app's `handle` for one request.
    pub fn handle(&self, request: &RgRequest) -> i32 {
        let handle = self.lib.desc.handle.expect("checked at load");
        // SAFETY: the descriptor was checked at load; `request` and everything it points to is
        // valid for the duration of the call, and its `call` handle refers to a live exchange.
        unsafe { handle(self.state, request) }
    }

    /// Calls the app's `on_event` (ABI 1.3) for a call that outlived `handle`.
    pub fn on_event(&self, call: *mut RgCall, kind: u32, code: u32, data: &[u8]) {
        let Some(on_event) = self.lib.desc.on_event else { return };
        let event = RgEvent {
            size: std::mem::size_of::<RgEvent>() as u32,
            kind,
            call,
            code,
            data: RgStr::from_bytes(data),
        };
        // SAFETY: the descriptor was checked at load (an async app has `on_event`); `event` and `data`
        // outlive the call, and `call` names a live call on this thread.
        unsafe { on_event(self.state, &event) }
    }

    /// Whether the app's own event loop drives the worker's (`run`, ABI 1.3).
    pub fn has_run(&self) -> bool {
        self.lib.desc.run.is_some()
    }

    /// Calls the app's `run` (ABI 1.3), which returns once the worker is done; `RG_OK` when it has none.
    pub fn run(&self, host_loop: &RgLoop) -> i32 {
        let Some(run) = self.lib.desc.run else { return RG_OK };
        // SAFETY: the descriptor was checked at load; `host_loop` outlives the call, and its `step`
        // is valid for as long as `run` runs.
        unsafe { run(self.state, host_loop) }
    }

    /// Calls the app's `shutdown`, once, before the worker exits gracefully.
    pub fn shutdown(self) {
        if let Some(shutdown) = self.lib.desc.shutdown {
            // SAFETY: `state` came from this app's `init`, and `self` is consumed, so no `handle` runs
            // after this.
            unsafe { shutdown(self.state) }
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_app_references() {
        let r: AppRef = "./libhello.so:app".parse().unwrap();
        assert_eq!((r.path.to_str().unwrap(), r.symbol.as_str()), ("./libhello.so", "app"));
        let r: AppRef = "target/release/libx.so".parse().unwrap();
        assert_eq!(r.symbol, "app");
        let r: AppRef = "/a:b/lib.so:my_app".parse().unwrap();
        assert_eq!((r.path.to_str().unwrap(), r.symbol.as_str()), ("/a:b/lib.so", "my_app"));
        assert!(":app".parse::<AppRef>().is_err());
        assert!("lib.so:".parse::<AppRef>().is_err());
    }
}
