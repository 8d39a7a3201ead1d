//! Starting the master: bind the listeners (or adopt them from systemd or an upgrading master), load
//! the app under `--preload`, write the pidfile, install the signal handlers, map the scoreboard,
//! open `--metrics-bind` and the control socket. Nothing is forked here.

use super::listeners::{adopt_all, open_listeners};
use super::{
    Arbiter, CHECK_EVERY, ENV_ACTIVATED, ENV_FDS, ENV_METRICS_FD, ENV_PID, ExitCounts, Phase, SIGNALS,
};
use super::{control, exporter, set_title};
use crate::app::Library;
use crate::app::hooks::{self, Hook};
use crate::config::Config;
use crate::sys::process::{PidFile, take_env};
use crate::sys::scoreboard::{Counters, Scoreboard};
use crate::sys::signals::SignalQueue;
use crate::sys::systemd;
use crate::worker;
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

/// Why the master could not start.
#[derive(Debug)]
pub enum StartError {
    Bind {
        addr: String,
        error: std::io::Error,
    },
    /// `RUSTGUN_FD` names a descriptor that is not a listening socket we can adopt.
    Inherit {
        fds: String,
        error: std::io::Error,
    },
    Scoreboard(std::io::Error),
    Metrics {
        addr: String,
        error: std::io::Error,
    },
    Control(super::control::ControlError),
    Signals(std::io::Error),
    Pidfile(std::io::Error),
    Preload(crate::app::LoadError),
    /// gunicorn.conf.py's hooks cannot be run.
    Hooks(crate::app::hooks::HooksError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            StartError::Inherit { fds, error } => {
                write!(f, "cannot adopt the inherited sockets {ENV_FDS}={fds}: {error}")
            }
            StartError::Scoreboard(e) => write!(f, "cannot map the scoreboard: {e}"),
            StartError::Metrics { addr, error } => write!(f, "cannot serve metrics on {addr}: {error}"),
            StartError::Control(e) => write!(f, "{e}"),
            StartError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            StartError::Pidfile(e) => write!(f, "{e}"),
            StartError::Preload(e) => write!(f, "{e}"),
            StartError::Hooks(e) => write!(f, "{e}"),
        }
    }
}

impl Arbiter {
    /// Binds every listener (or adopts those a binary upgrade passed in `RUSTGUN_FD`), writes the
    /// pidfile, installs the signal handlers and (with `--preload`) loads the app. Nothing is forked
    /// yet.
    pub fn start(config: Config) -> Result<Arbiter, StartError> {
        // Taken before the first process title overwrites the arguments' memory.
        let argv: Vec<OsString> = std::env::args_os().collect();
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        // Where rustgun started, before --chdir: the new master re-reads relative paths from there.
        let cwd = crate::config::start_dir().to_path_buf();
        let old_master = take_env(ENV_PID).and_then(|p| p.parse().ok()).map(Pid::from_raw);
        let handed_down_by_systemd = take_env(ENV_ACTIVATED).is_some();
        // (Reads systemd's LISTEN_FDS too.)
        let (listeners, activated) = match take_env(ENV_FDS) {
            Some(fds) => {
                (adopt_all(&fds).map_err(|error| StartError::Inherit { fds, error })?, handed_down_by_systemd)
            }
            None => open_listeners(&config)?,
        };
        // Every variable the master reads is read before app code runs in it (gunicorn.conf.py's
        // hooks, `--preload`), which may start threads (the environment is not safe to read while
        // another thread may change it).
        systemd::read_notify_socket();
        let adopted_metrics = take_env(ENV_METRICS_FD);
        let control = control::Placement::of(&config);
        // gunicorn.conf.py's hooks run in the master's embedded interpreter (only when the file
        // defines any). on_starting comes once the listeners are open: they are opened before any
        // app code runs, for the reason above.
        hooks::load(config.hooks.as_ref()).map_err(StartError::Hooks)?;
        hooks::run(Hook::OnStarting, hooks::master(config.workers));
        let preloaded = if config.preload {
            let lib = Library::open(&config.app).map_err(StartError::Preload)?;
            // The app's own `preload` (ABI 1.1), e.g. the WSGI bridge importing the Python app.
            let flags = rustgun_abi::RG_REQ_MULTIPROCESS
                | if config.multithreaded() { rustgun_abi::RG_REQ_MULTITHREAD } else { 0 };
            lib.preload(&config.app_args, flags).map_err(StartError::Preload)?;
            warn_if_threaded();
            Some(lib)
        } else {
            None
        };
        let pidfile = match &config.pidfile {
            Some(path) => Some(PidFile::create(path).map_err(StartError::Pidfile)?),
            None => None,
        };
        let signals = SignalQueue::install(SIGNALS).map_err(StartError::Signals)?;
        let (report_rd, report_wr) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| StartError::Signals(e.into()))?;
        let pid = nix::unistd::getpid();
        tracing::info!("Starting rustgun {}", env!("CARGO_PKG_VERSION"));
        if let Some(old) = old_master {
            tracing::info!("Upgrading: the old master is pid {old}; adopted {} sockets", listeners.len());
        }
        for l in &listeners {
            tracing::info!("Listening at: {} ({pid})", l.url());
        }
        tracing::info!("Using worker: {}", config.effective_class().name());
        if config.gunicorn.h2_preferred().is_some() && config.http2_served().is_none() {
            tracing::warn!(
                "--http-protocols asks for h2, but the {} worker class serves HTTP/1.1 only: HTTP/2 is \
                 served by the event class (-k event)",
                config.effective_class().name()
            );
        }
        let target = config.workers;
        let mut scoreboard = Scoreboard::default();
        // Map the first board now, so that a failure shows at start rather than at the first fork.
        let first = scoreboard
            .take(worker::lanes(&config), 2 * target as usize + 2)
            .map_err(StartError::Scoreboard)?;
        scoreboard.free(first);
        let watched = super::reload::watched_files(&config);
        let metrics = match (adopted_metrics, &config.metrics_bind) {
            (Some(fd), _) => {
                Some(fd.parse().map_err(std::io::Error::other).and_then(exporter::Exporter::adopt))
            }
            (None, Some(addr)) => Some(exporter::Exporter::bind(addr)),
            (None, None) => None,
        };
        let metrics = metrics.transpose().map_err(|error| StartError::Metrics {
            addr: config.metrics_bind.clone().unwrap_or_default(),
            error,
        })?;
        if let Some(m) = &metrics {
            tracing::info!("Metrics at: {}", m.url());
        }
        let mode = config.gunicorn.control_socket_mode;
        let upgrading = old_master.is_some();
        let control =
            control.map(|c| c.open(mode, upgrading)).transpose().map_err(StartError::Control)?.flatten();
        if let Some(c) = &control {
            tracing::info!("Control socket at: {}", c.path().display());
        }
        set_title("master", &config);
        hooks::run(Hook::WhenReady, hooks::master(config.workers));
        Ok(Arbiter {
            config,
            argv,
            exe,
            cwd,
            listeners,
            activated,
            preloaded,
            signals,
            pending: Vec::new(),
            report_rd: std::fs::File::from(report_rd),
            report_wr,
            report_buf: Vec::new(),
            workers: BTreeMap::new(),
            target,
            generation: 0,
            reload: None,
            scoreboard,
            retired: Counters::default(),
            exits: ExitCounts::new(),
            new_master: None,
            old_master,
            watched,
            next_check: Instant::now() + CHECK_EVERY,
            metrics,
            control,
            phase: Phase::Running,
            halt: None,
            failures: BTreeMap::new(),
            ready_announced: false,
            status_sent: None,
            pidfile,
            pid,
            spawned: 0,
        })
    }
}

/// Warns when the app's `preload` left the master with more threads than its own: each fork copies
/// only the forking thread, so a lock another thread holds at that moment (the allocator's, a logging
/// handler's) stays locked for ever in the worker.
fn warn_if_threaded() {
    let threads = crate::sys::process::thread_count().unwrap_or(1);
    if threads > 1 {
        tracing::warn!(
            "--preload: the app left the master with {threads} threads; workers are forked from a \
             multi-threaded process, so a lock held by another thread at that moment stays held in \
             the worker (start threads in post-fork code instead)"
        );
    }
}
