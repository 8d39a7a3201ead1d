//! The master process: binds the listeners (or adopts them from the master it upgrades), forks the
//! workers, and then runs one small loop — reap dead children, read worker reports, handle queued
//! signals one by one (each with its own named handler), keep the worker count, finish a reload, abort
//! workers silent past `--timeout`, watch the app library under `--reload`, sleep on the signal pipe —
//! until it is told to stop.
//!
//! Workers belong to a *generation*: a reload (HUP) starts a full new one and stops the older ones
//! gracefully once every new worker is ready, so a request is always served by a worker of one or the
//! other. Only the current generation is kept at the target count. A reload whose `--bind` changed
//! keeps the listeners of the addresses it still names, binds the new ones for the new generation, and
//! closes the dropped ones when the reload finishes.
//!
//! What does not live here: serving requests (`worker`), parsing the command line (`config`), the
//! shared memory workers report through (`sys::scoreboard`).

mod metrics;

use crate::app::Library;
use crate::config::Config;
use crate::net::listener::Endpoint;
use crate::net::{BindAddr, Listener};
use crate::sys::privileges::Umask;
use crate::sys::process::{self, Exit, PidFile};
use crate::sys::scoreboard::{self, Counters, Retired, Scoreboard, SlotId};
use crate::sys::signals::{self, SignalQueue};
use crate::sys::systemd;
use crate::worker::{self, EXIT_APP_LOAD, EXIT_BOOT};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use signal_hook::consts::*;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The signals the master handles.
const SIGNALS: &[libc::c_int] =
    &[SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH];
/// How long the master sleeps when nothing happens.
const TICK: Duration = Duration::from_millis(1000);
/// How long a quick stop (INT/QUIT) waits before killing.
const QUICK_STOP: Duration = Duration::from_secs(2);
/// How often worker silence (`--timeout`) and the app library (`--reload`) are checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The listening descriptors a binary upgrade (USR2) hands to the new master: `RUSTGUN_FD=3,4`.
pub const ENV_FDS: &str = "RUSTGUN_FD";
/// The pid of the master that started this one by a binary upgrade.
pub const ENV_PID: &str = "RUSTGUN_PID";
/// The `--metrics-bind` listener a binary upgrade hands down.
pub const ENV_METRICS_FD: &str = "RUSTGUN_METRICS_FD";
/// Set beside `RUSTGUN_FD` when the sockets handed down came from systemd socket activation: the new
/// master then ignores `--bind` on HUP, as the old one did.
pub const ENV_ACTIVATED: &str = "RUSTGUN_ACTIVATED";

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
    Signals(std::io::Error),
    Pidfile(std::io::Error),
    Preload(crate::app::LoadError),
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
            StartError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
            StartError::Pidfile(e) => write!(f, "{e}"),
            StartError::Preload(e) => write!(f, "{e}"),
        }
    }
}

/// What the master is doing.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// Waiting for workers to exit; the ones left at the deadline are killed.
    Stopping {
        deadline: Instant,
        killed: bool,
    },
}

struct WorkerSlot {
    id: u32,
    booted: bool,
    generation: u32,
    slot: SlotId,
    /// Told to stop gracefully (TTOU, WINCH, replaced by a reload): killed past this deadline.
    stop_deadline: Option<Instant>,
    /// Aborted for silence (`--timeout`) at this instant; killed at the next check if still there.
    aborted: Option<Instant>,
    killed: bool,
}

/// A reload under way: the new generation is booting, the previous one still serves. If the new
/// workers cannot boot, the master goes back to what it had.
struct Reload {
    previous: Config,
    previous_target: u32,
    previous_generation: u32,
    /// The listeners serving before the reload, in order, by descriptor.
    previous_listeners: Vec<RawFd>,
    /// The listeners a changed `--bind` dropped: open until the reload finishes (the previous
    /// generation accepts on them; an abandoned reload takes them back), never in a new worker.
    retired: Vec<Listener>,
}

/// The app library's identity as `--reload` last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl FileStamp {
    fn of(path: &std::path::Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp { dev: m.dev(), ino: m.ino(), len: m.len(), mtime: (m.mtime(), m.mtime_nsec()) })
    }
}

/// Why workers have exited, for the metrics: `(reason, detail)` → count.
type ExitCounts = BTreeMap<(&'static str, String), u64>;

pub struct Arbiter {
    config: Config,
    /// The command line this master was started with: re-read on HUP, exec'd on USR2.
    argv: Vec<OsString>,
    /// The binary, as it was named at start (a binary replaced on disk is the one USR2 runs).
    exe: PathBuf,
    cwd: PathBuf,
    listeners: Vec<Listener>,
    /// The listeners came from systemd socket activation: `--bind` is ignored, on HUP too.
    activated: bool,
    preloaded: Option<Library>,
    signals: SignalQueue,
    pending: Vec<libc::c_int>,
    report_rd: std::fs::File,
    report_wr: OwnedFd,
    report_buf: Vec<u8>,
    workers: BTreeMap<Pid, WorkerSlot>,
    target: u32,
    generation: u32,
    reload: Option<Reload>,
    scoreboard: Scoreboard,
    /// The counters of workers that have exited (the live ones' are on the scoreboard).
    retired: Counters,
    exits: ExitCounts,
    /// The master a USR2 started, while it runs.
    new_master: Option<Pid>,
    /// The master that started this one by USR2, while it is our parent.
    old_master: Option<Pid>,
    watched: Option<FileStamp>,
    next_check: Instant,
    /// `--metrics-bind`.
    metrics: Option<metrics::Exporter>,
    phase: Phase,
    /// A worker failed to boot: the master stops everything and exits with this code and message.
    halt: Option<(i32, String)>,
    /// The last failure message each worker reported before exiting.
    failures: BTreeMap<Pid, String>,
    ready_announced: bool,
    /// The worker count last sent to systemd as `STATUS=`.
    status_sent: Option<usize>,
    pidfile: Option<PidFile>,
    pid: Pid,
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
        let (listeners, activated) = match take_env(ENV_FDS) {
            Some(fds) => {
                (adopt_all(&fds).map_err(|error| StartError::Inherit { fds, error })?, handed_down_by_systemd)
            }
            None => open_listeners(&config)?,
        };
        let preloaded = if config.preload {
            let lib = Library::open(&config.app).map_err(StartError::Preload)?;
            // The app's own `preload` (ABI 1.1), e.g. the WSGI bridge importing the Python app.
            let flags = rustgun_abi::RG_REQ_MULTIPROCESS
                | if config.multithreaded() { rustgun_abi::RG_REQ_MULTITHREAD } else { 0 };
            lib.preload(&config.app_args, flags).map_err(StartError::Preload)?;
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
        let target = config.workers;
        let mut scoreboard = Scoreboard::default();
        // Map the first board now, so that a failure shows at start rather than at the first fork.
        let first = scoreboard
            .take(worker::lanes(&config), 2 * target as usize + 2)
            .map_err(StartError::Scoreboard)?;
        scoreboard.free(first);
        let watched = config.reload.then(|| FileStamp::of(&config.app.path)).flatten();
        let metrics = match (take_env(ENV_METRICS_FD), &config.metrics_bind) {
            (Some(fd), _) => {
                Some(fd.parse().map_err(std::io::Error::other).and_then(metrics::Exporter::adopt))
            }
            (None, Some(addr)) => Some(metrics::Exporter::bind(addr)),
            (None, None) => None,
        };
        let metrics = metrics.transpose().map_err(|error| StartError::Metrics {
            addr: config.metrics_bind.clone().unwrap_or_default(),
            error,
        })?;
        if let Some(m) = &metrics {
            tracing::info!("Metrics at: {}", m.url());
        }
        set_title("master", &config);
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
            phase: Phase::Running,
            halt: None,
            failures: BTreeMap::new(),
            ready_announced: false,
            status_sent: None,
            pidfile,
            pid,
        })
    }

    /// The master loop; returns the process exit code.
    pub fn run(mut self) -> i32 {
        loop {
            self.read_reports();
            self.reap();
            self.signals.drain(&mut self.pending);
            let queued = std::mem::take(&mut self.pending);
            for sig in queued {
                self.dispatch(sig);
            }
            match self.phase {
                Phase::Running => {
                    if self.halt.is_some() {
                        self.begin_stop(Signal::SIGTERM, Duration::from_secs(self.config.graceful_timeout));
                        continue;
                    }
                    self.spawn_missing();
                    self.finish_reload();
                    self.kill_overdue();
                    if Instant::now() >= self.next_check {
                        self.next_check = Instant::now() + CHECK_EVERY;
                        self.check_timeouts();
                        self.watch_app();
                        self.check_old_master();
                    }
                }
                Phase::Stopping { deadline, killed } => {
                    if self.workers.is_empty() {
                        break;
                    }
                    if !killed && Instant::now() >= deadline {
                        for (pid, w) in &self.workers {
                            tracing::warn!("Worker {} (pid: {pid}) did not stop in time; killing it", w.id);
                            process::signal(*pid, Signal::SIGKILL);
                        }
                        self.phase = Phase::Stopping { deadline, killed: true };
                    }
                }
            }
            self.notify_count();
            self.sleep();
        }
        self.exit()
    }

    /// One named handler per signal.
    fn dispatch(&mut self, sig: libc::c_int) {
        match sig {
            SIGCHLD => self.reap(),
            SIGTERM => self.handle_term(),
            SIGINT | SIGQUIT => self.handle_quit(sig),
            SIGTTIN => self.handle_ttin(),
            SIGTTOU => self.handle_ttou(),
            SIGHUP => self.handle_hup(),
            SIGUSR1 => self.handle_usr1(),
            SIGUSR2 => self.handle_usr2(),
            SIGWINCH => self.handle_winch(),
            _ => tracing::info!("Ignoring {}", signals::name(sig)),
        }
    }

    /// HUP: reload. Re-read the configuration, start a full new generation of workers (each opens the
    /// app library anew, so a rebuilt library is served), and once all of them are ready stop the
    /// previous generation gracefully. The listeners of the addresses `--bind` still names stay open
    /// throughout: no request is refused there. New addresses are bound before the new workers start;
    /// dropped ones close when the reload finishes ([`Arbiter::rebind`]).
    fn handle_hup(&mut self) {
        tracing::info!("Handling signal: SIGHUP; reloading");
        systemd::notify("RELOADING=1");
        self.begin_reload();
    }

    /// USR1: reopen the log files (after logrotate moved them), here and in every worker.
    fn handle_usr1(&mut self) {
        // Reopened first, so that the line saying why starts the new file.
        let reopened = crate::logging::reopen_error_log(&self.config.error_logfile);
        tracing::info!("Handling signal: SIGUSR1; reopened the log files");
        if let Err(e) = reopened {
            tracing::error!("cannot reopen the error log {}: {e}", self.config.error_logfile);
        }
        for pid in self.workers.keys() {
            process::signal(*pid, Signal::SIGUSR1);
        }
    }

    /// USR2: binary upgrade. Start a new master from the binary on disk with the same command line,
    /// handing it the listening sockets; rename the pidfile to `PIDFILE.oldbin` and keep serving. The
    /// operator then sends WINCH and QUIT (or TERM) here — or, to roll back, HUP here and TERM there.
    fn handle_usr2(&mut self) {
        if let Some(pid) = self.new_master {
            tracing::warn!("Ignoring SIGUSR2: the new master (pid {pid}) is still running");
            return;
        }
        if let Some(old) = self.old_master {
            tracing::warn!("Ignoring SIGUSR2: this master is an upgrade and the old master {old} still runs");
            return;
        }
        if self.phase != Phase::Running {
            return;
        }
        tracing::info!("Handling signal: SIGUSR2; starting a new master");
        if let Some(p) = &mut self.pidfile
            && let Err(e) = p.rename_to_oldbin()
        {
            tracing::error!("Upgrade cancelled: {e}");
            return;
        }
        let metrics = self.metrics.as_ref().map(|m| m.as_fd().as_raw_fd());
        let handed = Handed { listeners: &self.listeners, activated: self.activated, metrics };
        match spawn_master(&self.exe, &self.argv, &self.cwd, &handed, self.pid) {
            Ok(pid) => {
                tracing::info!("Started the new master (pid {pid})");
                self.new_master = Some(pid);
            }
            Err(e) => {
                tracing::error!("Upgrade failed: cannot start {}: {e}", self.exe.display());
                self.restore_pidfile();
            }
        }
    }

    /// WINCH: stop every worker gracefully and keep the master and its sockets (the worker count stays
    /// 0 until HUP or TTIN). The step between USR2 and stopping the old master.
    fn handle_winch(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        tracing::info!("Handling signal: SIGWINCH; stopping all workers gracefully");
        self.target = 0;
        self.commit_reload();
        let all: Vec<Pid> = self.workers.keys().copied().collect();
        for pid in all {
            self.stop_worker(pid);
        }
    }

    /// TERM: graceful stop. Workers finish their in-flight requests; stragglers are killed after
    /// `--graceful-timeout`.
    fn handle_term(&mut self) {
        tracing::info!("Handling signal: SIGTERM; stopping gracefully");
        self.begin_stop(Signal::SIGTERM, Duration::from_secs(self.config.graceful_timeout));
    }

    /// INT / QUIT: quick stop. Workers exit at once; a graceful stop already under way is hurried.
    fn handle_quit(&mut self, sig: libc::c_int) {
        tracing::info!("Handling signal: {}; stopping now", signals::name(sig));
        self.begin_stop(Signal::SIGQUIT, QUICK_STOP);
    }

    /// Re-reads the configuration and starts the next generation ([`Arbiter::handle_hup`], `--reload`).
    /// A configuration that cannot be read, or whose new addresses cannot be bound, is not applied at
    /// all: the next generation starts with the current one (and the current listeners).
    fn begin_reload(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let previous_listeners = self.listeners.iter().map(|l| l.as_fd().as_raw_fd()).collect();
        let (config, retired) = self.next_config().unwrap_or_else(|e| {
            tracing::error!("Reload: keeping the current configuration: {e}");
            (self.config.clone(), Vec::new())
        });
        if let Err(e) = crate::logging::reopen_error_log(&config.error_logfile) {
            tracing::error!("cannot reopen the error log {}: {e}", config.error_logfile);
        }
        if self.preloaded.is_some() {
            tracing::warn!("Reload: with --preload the app library loaded at start keeps serving");
        }
        // `-e` as the configuration now says, for the new workers.
        config.export_env();
        set_title("master", &config);
        let previous = std::mem::replace(&mut self.config, config);
        // A reload that is still booting is superseded; the workers (and listeners) serving before it
        // stay the ones to go back to.
        match &mut self.reload {
            Some(reload) => reload.retired.extend(retired),
            None => {
                self.reload = Some(Reload {
                    previous,
                    previous_target: self.target,
                    previous_generation: self.generation,
                    previous_listeners,
                    retired,
                })
            }
        }
        self.generation += 1;
        self.target = self.config.workers;
        self.watched = self.config.reload.then(|| FileStamp::of(&self.config.app.path)).flatten();
        tracing::info!("Reloading: starting {} new workers (generation {})", self.target, self.generation);
    }

    /// The configuration a reload applies, its `--bind` bound ([`Arbiter::rebind`]), and the listeners
    /// it drops.
    fn next_config(&mut self) -> Result<(Config, Vec<Listener>), String> {
        let mut config = self.reread_config()?;
        if config.reuse_port != self.config.reuse_port {
            // The kept listeners were made for one mode: a placeholder or a shared listening socket.
            let mode = if self.config.reuse_port { "on" } else { "off" };
            tracing::warn!("Reload: --reuse-port changes only on restart; it stays {mode}");
            config.reuse_port = self.config.reuse_port;
        }
        let retired = self.rebind(&config).map_err(|e| e.to_string())?;
        Ok((config, retired))
    }

    /// The configuration as the command line (and whatever it names) says now.
    fn reread_config(&self) -> Result<Config, String> {
        let mut config = crate::config::load(self.argv.iter().cloned()).map_err(|e| e.to_string())?;
        config.load_tls()?;
        Ok(config)
    }

    /// Makes the listeners what `config.bind` asks for (gunicorn rebinds on HUP too). A listener that
    /// already serves an address is kept as it is — never closed and bound again, so no connection
    /// is refused there; the addresses nobody serves are bound (and logged `Listening at:`); the
    /// listeners left over are returned, still open, for the reload to close once it finishes. If an
    /// address does not resolve or cannot be bound, nothing changes and the error names it.
    ///
    /// Sockets systemd passed are kept whatever `--bind` says, and `fd://N` is adopted only at start
    /// (a descriptor number names anything later).
    fn rebind(&mut self, config: &Config) -> Result<Vec<Listener>, StartError> {
        if self.activated {
            if config.bind != self.config.bind {
                tracing::warn!("Reload: --bind is ignored: the listening sockets came from systemd");
            }
            return Ok(Vec::new());
        }
        let wanted = config
            .bind
            .iter()
            .map(|addr| addr.endpoint().map_err(|error| bind_error(addr, error)))
            .collect::<Result<Vec<_>, _>>()?;
        // Indexes into the current listeners, then the ones a reload under way retired.
        let matched = {
            let have: Vec<&Listener> = self.listeners.iter().chain(self.retired()).collect();
            match_listeners(&have, &wanted)
        };
        if matched.iter().copied().eq((0..self.listeners.len()).map(Some)) {
            return Ok(Vec::new());
        }
        let missing: Vec<&BindAddr> =
            config.bind.iter().zip(&matched).filter(|(_, m)| m.is_none()).map(|(addr, _)| addr).collect();
        if let Some(addr) = missing.iter().find(|addr| matches!(addr, BindAddr::Fd(_))) {
            let why = "an inherited descriptor is adopted at start only";
            return Err(bind_error(addr, std::io::Error::new(std::io::ErrorKind::Unsupported, why)));
        }
        let fresh = bind_all(missing, config)?;
        for l in &fresh {
            tracing::info!("Listening at: {} ({})", l.url(), self.pid);
        }
        let mut fresh = fresh.into_iter();
        let mut pool: Vec<Option<Listener>> = std::mem::take(&mut self.listeners)
            .into_iter()
            .chain(self.reload.iter_mut().flat_map(|r| std::mem::take(&mut r.retired)))
            .map(Some)
            .collect();
        self.listeners = matched
            .iter()
            .filter_map(|m| match m {
                Some(i) => pool[*i].take(),
                None => fresh.next(),
            })
            .collect();
        Ok(pool.into_iter().flatten().collect())
    }

    /// The listeners a reload under way retired.
    fn retired(&self) -> impl Iterator<Item = &Listener> {
        self.reload.iter().flat_map(|r| &r.retired)
    }

    /// Once every worker of the new generation is ready, the older ones stop gracefully and the
    /// listeners the reload dropped close.
    fn finish_reload(&mut self) {
        if self.reload.is_none() || self.current().filter(|(_, w)| w.booted).count() < self.target as usize {
            return;
        }
        let old: Vec<Pid> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation != self.generation && w.stop_deadline.is_none())
            .map(|(p, _)| *p)
            .collect();
        tracing::info!(
            "Reloaded: {} workers of generation {} serving; stopping {} previous workers",
            self.target,
            self.generation,
            old.len()
        );
        for pid in old {
            self.stop_worker(pid);
        }
        self.commit_reload();
        systemd::notify("READY=1");
    }

    /// The reload under way is over and its configuration stays: the listeners it dropped close.
    fn commit_reload(&mut self) {
        if let Some(reload) = self.reload.take() {
            self.close_listeners(reload.retired);
        }
    }

    /// A worker of the new generation failed to boot: stop the new generation and go back to the
    /// configuration, listeners and workers that were serving before the reload.
    fn abandon_reload(&mut self, message: &str) {
        let Some(reload) = self.reload.take() else { return };
        tracing::error!("Reload failed: {message}; the previous workers keep serving");
        let mut pool = std::mem::take(&mut self.listeners);
        pool.extend(reload.retired);
        self.listeners = reload
            .previous_listeners
            .iter()
            .filter_map(|fd| Some(pool.remove(pool.iter().position(|l| l.as_fd().as_raw_fd() == *fd)?)))
            .collect();
        // Those the reload added.
        self.close_listeners(pool);
        self.config = reload.previous;
        self.target = reload.previous_target;
        let abandoned = self.generation;
        self.generation = reload.previous_generation;
        let new: Vec<Pid> =
            self.workers.iter().filter(|(_, w)| w.generation == abandoned).map(|(p, _)| *p).collect();
        for pid in new {
            self.stop_worker(pid);
        }
        systemd::notify("READY=1");
    }

    /// The workers of the current generation that have not been told to stop.
    fn current(&self) -> impl Iterator<Item = (&Pid, &WorkerSlot)> {
        self.workers.iter().filter(|(_, w)| w.generation == self.generation && w.stop_deadline.is_none())
    }

    /// Asks one worker to stop gracefully; it is killed if still there after `--graceful-timeout`.
    fn stop_worker(&mut self, pid: Pid) {
        let grace = Duration::from_secs(self.config.graceful_timeout);
        if let Some(w) = self.workers.get_mut(&pid)
            && w.stop_deadline.is_none()
        {
            w.stop_deadline = Some(Instant::now() + grace);
            process::signal(pid, Signal::SIGTERM);
        }
    }

    /// Kills the workers that did not stop within their grace period.
    fn kill_overdue(&mut self) {
        let now = Instant::now();
        for (pid, w) in &mut self.workers {
            if !w.killed && w.stop_deadline.is_some_and(|d| now >= d) {
                tracing::warn!("Worker {} (pid: {pid}) did not stop in time; killing it", w.id);
                process::signal(*pid, Signal::SIGKILL);
                w.killed = true;
            }
        }
    }

    /// `--timeout`: a worker with a thread that has not come back from its work for longer than the
    /// timeout (an app call that does not return) gets SIGABRT, and SIGKILL at the next check if it is
    /// still there. Waiting threads — idle keep-alive connections, an empty listen queue — never count.
    fn check_timeouts(&mut self) {
        if self.config.timeout == 0 {
            return;
        }
        let limit = self.config.timeout.saturating_mul(1000);
        let now = scoreboard::now_ms();
        for (pid, w) in &mut self.workers {
            if w.killed {
                continue;
            }
            if let Some(at) = w.aborted {
                if at.elapsed() >= CHECK_EVERY {
                    tracing::error!("Worker {} (pid: {pid}) survived SIGABRT; killing it", w.id);
                    process::signal(*pid, Signal::SIGKILL);
                    w.killed = true;
                }
                continue;
            }
            let Some(slot) = self.scoreboard.get(w.slot) else { continue };
            let Some(stuck) = slot.lanes().find(|l| l.silent_for(now).is_some_and(|ms| ms > limit)) else {
                continue;
            };
            match stuck.line() {
                Some(line) => tracing::error!("WORKER TIMEOUT (pid:{pid}) serving {line:?}"),
                None => tracing::error!("WORKER TIMEOUT (pid:{pid})"),
            }
            process::signal(*pid, Signal::SIGABRT);
            w.aborted = Some(Instant::now());
        }
    }

    /// `--reload`: a changed app library (new inode, size or mtime) starts a reload.
    fn watch_app(&mut self) {
        if !self.config.reload {
            return;
        }
        let now = FileStamp::of(&self.config.app.path);
        if now.is_some() && now != self.watched {
            tracing::info!("App library {} changed; reloading", self.config.app.path.display());
            self.begin_reload();
            self.watched = now;
        }
    }

    /// A master started by USR2 becomes the only one when the old master is gone (its parent changes).
    fn check_old_master(&mut self) {
        if let Some(old) = self.old_master
            && nix::unistd::getppid() != old
        {
            tracing::info!("The old master (pid {old}) is gone; this is now the only master");
            self.old_master = None;
        }
    }

    /// Gives the pidfile its name back after an upgrade failed or was rolled back.
    fn restore_pidfile(&mut self) {
        if let Some(p) = &mut self.pidfile
            && let Err(e) = p.restore()
        {
            tracing::error!("{e}");
        }
    }

    /// TTIN: one worker more.
    fn handle_ttin(&mut self) {
        if self.phase == Phase::Running {
            self.target += 1;
            tracing::info!("Handling signal: SIGTTIN; workers: {}", self.target);
        }
    }

    /// TTOU: one worker fewer, never below one; the oldest surplus worker stops gracefully.
    fn handle_ttou(&mut self) {
        if self.phase == Phase::Running && self.target > 1 {
            self.target -= 1;
            tracing::info!("Handling signal: SIGTTOU; workers: {}", self.target);
            self.stop_surplus();
        }
    }

    fn stop_surplus(&mut self) {
        let mut by_id: Vec<(u32, Pid)> = self.current().map(|(p, w)| (w.id, *p)).collect();
        let surplus = by_id.len().saturating_sub(self.target as usize);
        // The lowest ids are kept, so stop the highest ids.
        by_id.sort_unstable();
        for (_, pid) in by_id.into_iter().rev().take(surplus) {
            self.stop_worker(pid);
        }
    }

    fn begin_stop(&mut self, sig: Signal, grace: Duration) {
        if self.phase == Phase::Running {
            systemd::notify("STOPPING=1");
        }
        let deadline = Instant::now() + grace;
        let deadline = match self.phase {
            Phase::Stopping { deadline: earlier, .. } => earlier.min(deadline),
            Phase::Running => deadline,
        };
        // Stop accepting: close our copies of the listeners (workers close theirs as they exit).
        let mut all = std::mem::take(&mut self.listeners);
        if let Some(reload) = &mut self.reload {
            all.append(&mut reload.retired);
        }
        self.close_listeners(all);
        for pid in self.workers.keys() {
            process::signal(*pid, sig);
        }
        self.phase = Phase::Stopping { deadline, killed: false };
    }

    /// Closes the master's copies of `listeners` (workers close theirs as they exit) and removes the
    /// socket files this master bound — unless a new master started by USR2 serves on the same sockets.
    fn close_listeners(&self, listeners: Vec<Listener>) {
        for l in listeners {
            if self.new_master.is_none() {
                l.remove_file();
            }
            tracing::info!("Stopped listening at: {}", l.url());
        }
    }

    /// Reaps every exited child, logs how it ended, and notes boot failures.
    fn reap(&mut self) {
        let mut exits = Vec::new();
        process::reap_all(|pid, exit| exits.push((pid, exit)));
        if exits.is_empty() {
            return;
        }
        // A worker that failed to boot wrote its reason just before exiting.
        self.read_reports();
        for (pid, exit) in exits {
            if Some(pid) == self.new_master {
                self.new_master_exited(pid, exit);
                continue;
            }
            let Some(slot) = self.workers.remove(&pid) else { continue };
            self.count_exit(&slot, exit);
            let failure = self.failures.remove(&pid);
            match exit {
                Exit::Code(0) => tracing::info!("Worker {} (pid: {pid}) exited", slot.id),
                Exit::Code(code @ (EXIT_APP_LOAD | EXIT_BOOT)) if !slot.booted => {
                    let message = failure.unwrap_or_else(|| format!("worker {} failed to boot", slot.id));
                    if slot.generation != self.generation {
                        tracing::error!("{message}");
                    } else if self.reload.is_some() {
                        self.abandon_reload(&message);
                    } else if self.halt.is_none() {
                        self.halt = Some((code, message));
                    }
                }
                Exit::Code(code) => {
                    tracing::error!("Worker {} (pid: {pid}) exited with code {code}", slot.id)
                }
                Exit::Signal(Signal::SIGKILL) => {
                    tracing::error!(
                        "Worker {} (pid: {pid}) was sent SIGKILL! Perhaps out of memory?",
                        slot.id
                    )
                }
                Exit::Signal(sig) => {
                    tracing::warn!("Worker {} (pid: {pid}) was sent {}!", slot.id, sig.as_str())
                }
            }
        }
    }

    /// Folds an exited worker's counters into the totals, notes why it exited, frees its slot.
    fn count_exit(&mut self, w: &WorkerSlot, exit: Exit) {
        if let Some(slot) = self.scoreboard.get(w.slot) {
            self.retired.add(&slot.counters());
            let reason = match (w.aborted, slot.retired(), exit) {
                (Some(_), _, _) => ("timeout", String::new()),
                (None, Retired::MaxRequests, Exit::Code(0)) => ("max_requests", String::new()),
                (None, _, Exit::Code(code)) => ("exit", code.to_string()),
                (None, _, Exit::Signal(sig)) => ("signal", sig.as_str().to_string()),
            };
            *self.exits.entry(reason).or_default() += 1;
        }
        self.scoreboard.free(w.slot);
    }

    /// The master a USR2 started has exited: the upgrade failed or was rolled back (TERM to it), so
    /// this master is the one again and takes its pidfile back.
    fn new_master_exited(&mut self, pid: Pid, exit: Exit) {
        match exit {
            Exit::Code(code) => tracing::warn!("The new master (pid {pid}) exited with code {code}"),
            Exit::Signal(sig) => tracing::warn!("The new master (pid {pid}) was sent {}", sig.as_str()),
        }
        self.new_master = None;
        self.restore_pidfile();
    }

    /// Reads the one-line reports workers send: `R <pid>` once booted, `F <pid> <reason>` on failure.
    fn read_reports(&mut self) {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.report_rd.read(&mut chunk) {
            if n == 0 {
                break;
            }
            self.report_buf.extend_from_slice(&chunk[..n]);
        }
        while let Some(end) = self.report_buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.report_buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let mut parts = line.splitn(3, ' ');
            let (kind, pid) = (parts.next(), parts.next().and_then(|p| p.parse::<i32>().ok()));
            let Some(pid) = pid.map(Pid::from_raw) else { continue };
            match kind {
                Some("R") => {
                    if let Some(w) = self.workers.get_mut(&pid) {
                        w.booted = true;
                    }
                }
                Some("F") => {
                    self.failures.insert(pid, parts.next().unwrap_or("").to_string());
                }
                _ => {}
            }
        }
        if !self.ready_announced && self.current().filter(|(_, w)| w.booted).count() == self.target as usize {
            self.ready_announced = true;
            tracing::info!("Ready: {} workers serving", self.target);
            if self.old_master.is_some() {
                // The service manager's main process is this master from now on (NotifyAccess=all).
                systemd::notify(&format!("MAINPID={}", self.pid));
            }
            systemd::notify("READY=1");
        }
    }

    /// Forks workers until the current generation has `target` of them.
    fn spawn_missing(&mut self) {
        while self.current().count() < self.target as usize {
            let id = (1..).find(|id| !self.workers.values().any(|w| w.id == *id)).unwrap_or(1);
            if let Err(e) = self.spawn(id) {
                tracing::error!("Cannot fork worker {id}: {e}");
                return;
            }
        }
    }

    fn spawn(&mut self, id: u32) -> std::io::Result<()> {
        let report = self.report_wr.try_clone()?;
        // Room for the whole generation, one more, and a reload's worth beside it.
        let capacity = 2 * self.target as usize + 2;
        let slot_id = self.scoreboard.take(worker::lanes(&self.config), capacity)?;
        let Some(slot) = self.scoreboard.get(slot_id) else {
            return Err(std::io::Error::other("the scoreboard lost a slot"));
        };
        let title = title("worker", &self.config);
        let title = title.as_str();
        let master = self.pid;
        let config = &self.config;
        let listeners = &self.listeners;
        let preloaded = self.preloaded;
        let signals = &self.signals;
        let report_rd = std::os::fd::AsRawFd::as_raw_fd(&self.report_rd);
        let retired: Vec<RawFd> = self.retired().map(|l| l.as_fd().as_raw_fd()).collect();
        // Signals stay blocked in the child until the worker's own handlers replace the master's.
        let blocked = signals::Blocked::all()?;
        let sigmask = blocked.previous();
        let pid = process::fork_child(|| {
            // The child must not run the master's handlers nor hold the master's pipes: they would
            // let the worker (or its app) queue signals into the master or read other workers' reports.
            signals.leave_in_child();
            let _ = nix::unistd::close(report_rd);
            // Nor the listeners a reload dropped: those must close once the previous generation is gone.
            for &fd in &retired {
                let _ = nix::unistd::close(fd);
            }
            let boot =
                worker::Boot { id, config, listeners, preloaded, report, slot, title, master, sigmask };
            worker::run(boot)
        });
        drop(blocked);
        let pid = match pid {
            Ok(pid) => pid,
            Err(e) => {
                self.scoreboard.free(slot_id);
                return Err(e);
            }
        };
        let generation = self.generation;
        let w = WorkerSlot {
            id,
            booted: false,
            generation,
            slot: slot_id,
            stop_deadline: None,
            aborted: None,
            killed: false,
        };
        self.workers.insert(pid, w);
        Ok(())
    }

    /// Tells systemd the worker count (`STATUS=4 workers`) when it changed since last told.
    fn notify_count(&mut self) {
        if self.status_sent != Some(self.workers.len()) {
            self.status_sent = Some(self.workers.len());
            systemd::notify(&format!("STATUS={} workers", self.workers.len()));
        }
    }

    fn sleep(&mut self) {
        let timeout = match self.phase {
            Phase::Running => TICK,
            Phase::Stopping { .. } => Duration::from_millis(100),
        };
        let mut fds = vec![
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.report_rd.as_fd(), PollFlags::POLLIN),
        ];
        fds.extend(self.metrics.as_ref().map(|m| PollFd::new(m.as_fd(), PollFlags::POLLIN)));
        let ms = PollTimeout::try_from(timeout.as_millis() as i32).unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, ms);
        let scraped = fds.get(2).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        drop(fds);
        if scraped && let Some(m) = &self.metrics {
            m.serve_pending(|| self.render_metrics());
        }
    }

    /// The metrics as the scoreboard and the master's own records have them now.
    fn render_metrics(&self) -> String {
        let mut counters = self.retired.clone();
        let (mut in_flight, mut busy, mut idle) = (0, 0, 0);
        let now = scoreboard::now_ms();
        let mut lags = Vec::with_capacity(self.workers.len());
        for w in self.workers.values() {
            let Some(slot) = self.scoreboard.get(w.slot) else { continue };
            counters.add(&slot.counters());
            let lag_ms = slot.lanes().filter_map(|l| l.silent_for(now)).max().unwrap_or(0);
            lags.push((w.id, lag_ms));
            let serving = slot.lanes().filter(|l| l.serving()).count() as u64;
            in_flight += serving;
            if serving > 0 {
                busy += 1;
            } else {
                idle += 1;
            }
        }
        let queues =
            self.listeners.iter().filter_map(|l| Some((l.url(), metrics::listen_queue(l)?))).collect();
        let listen_drops = metrics::listen_drops();
        let exits = &self.exits;
        lags.sort_unstable();
        metrics::render(&metrics::Snapshot {
            counters,
            in_flight,
            busy,
            idle,
            lags,
            exits,
            queues,
            listen_drops,
        })
    }

    fn exit(self) -> i32 {
        if self.new_master.is_none() {
            for l in &self.listeners {
                l.remove_file();
            }
        }
        if let Some(p) = &self.pidfile {
            p.remove();
        }
        match self.halt {
            Some((code, message)) => {
                tracing::error!("{message}");
                code
            }
            None => {
                tracing::info!("Shutting down: Master");
                0
            }
        }
    }
}

/// `rustgun: master [NAME]` / `rustgun: worker [NAME]`; NAME is `--name`, or the app reference.
fn title(role: &str, config: &Config) -> String {
    match &config.name {
        Some(name) => format!("rustgun: {role} [{name}]"),
        None => format!("rustgun: {role} [{}]", config.app),
    }
}

fn set_title(role: &str, config: &Config) {
    if let Err(e) = crate::sys::title::set(&title(role, config), &format!("rustgun {role}")) {
        tracing::debug!("cannot set the process title: {e}");
    }
}

/// The listening sockets of a fresh start, and whether systemd passed them: the ones systemd passed
/// when it socket-activated us (`--bind` is then ignored), else `--bind`'s ([`bind_all`]).
fn open_listeners(config: &Config) -> Result<(Vec<Listener>, bool), StartError> {
    let activated =
        systemd::take_listen_fds().map_err(|error| StartError::Bind { addr: "LISTEN_FDS".into(), error })?;
    if !activated.is_empty() {
        let listeners = activated
            .iter()
            .map(|passed| {
                let addr = format!("fd://{} from systemd", passed.fd);
                let listener =
                    Listener::adopt(passed.fd).map_err(|error| StartError::Bind { addr, error })?;
                let name = passed.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                tracing::info!("Adopted fd {}{name} from systemd socket activation", passed.fd);
                Ok(listener)
            })
            .collect::<Result<_, _>>()?;
        return Ok((listeners, true));
    }
    Ok((bind_all(&config.bind, config)?, false))
}

/// Binds `addrs` under `--umask`, their socket files given to the workers' `--user`. If one fails,
/// the sockets bound before it are closed and their files removed.
fn bind_all<'a>(
    addrs: impl IntoIterator<Item = &'a BindAddr>,
    config: &Config,
) -> Result<Vec<Listener>, StartError> {
    let _umask = Umask::set(config.umask);
    let mut listeners = Vec::new();
    for addr in addrs {
        match bind_one(addr, config) {
            Ok(listener) => listeners.push(listener),
            Err(error) => {
                for l in &listeners {
                    l.remove_file();
                }
                return Err(bind_error(addr, error));
            }
        }
    }
    Ok(listeners)
}

fn bind_one(addr: &BindAddr, config: &Config) -> std::io::Result<Listener> {
    let listener = Listener::bind(addr, config.backlog, config.reuse_port)?;
    if let (Some(identity), Some(path)) = (config.identity, listener.socket_file())
        && let Err(e) = identity.chown(path)
    {
        listener.remove_file();
        return Err(e);
    }
    Ok(listener)
}

/// `cannot listen on ADDR: …`
fn bind_error(addr: &BindAddr, error: std::io::Error) -> StartError {
    StartError::Bind { addr: addr.to_string(), error }
}

/// For each wanted endpoint, the index in `have` of a listener that already serves it (each serves one
/// at most), or `None`: to be bound. Exact addresses choose first, so that `HOST:0` (any port) takes a
/// listener no exact address wants.
fn match_listeners(have: &[&Listener], wanted: &[Endpoint]) -> Vec<Option<usize>> {
    let mut taken = vec![false; have.len()];
    let mut matched = vec![None; wanted.len()];
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by_key(|&i| wanted[i].any_port());
    for i in order {
        matched[i] = (0..have.len()).find(|&j| !taken[j] && have[j].serves(&wanted[i]));
        if let Some(j) = matched[i] {
            taken[j] = true;
        }
    }
    matched
}

/// Reads and removes an environment variable meant for this process only.
fn take_env(key: &str) -> Option<String> {
    let value = std::env::var(key).ok();
    // SAFETY: called from `Arbiter::start`, while the master is single-threaded (it never starts
    // threads), so nothing reads the environment concurrently.
    unsafe { std::env::remove_var(key) };
    value
}

/// Adopts every listening socket named in `RUSTGUN_FD` (`3,4`).
fn adopt_all(fds: &str) -> std::io::Result<Vec<Listener>> {
    fds.split(',')
        .map(|fd| {
            let fd: RawFd = fd.trim().parse().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{fd:?} is not a descriptor"))
            })?;
            Listener::adopt(fd)
        })
        .collect()
}

/// The sockets a binary upgrade hands to the new master.
struct Handed<'a> {
    /// The listeners as they are now (after any reload that changed `--bind`).
    listeners: &'a [Listener],
    /// They came from systemd socket activation ([`ENV_ACTIVATED`]).
    activated: bool,
    metrics: Option<RawFd>,
}

/// Starts a new master (USR2): the binary `exe` with the original arguments, from the original
/// directory, inheriting the listening sockets (`RUSTGUN_FD`) and told who its old master is
/// (`RUSTGUN_PID`). The child starts with an empty signal mask and default handlers (exec resets
/// them; the standard library clears the mask), in this master's process group and session, and with
/// no parent-death signal (that is never inherited): it outlives this master.
fn spawn_master(
    exe: &std::path::Path,
    argv: &[OsString],
    cwd: &std::path::Path,
    handed: &Handed<'_>,
    old: Pid,
) -> std::io::Result<Pid> {
    use std::os::unix::process::CommandExt;
    let mut fds: Vec<RawFd> = handed.listeners.iter().map(|l| l.as_fd().as_raw_fd()).collect();
    let list = fds.iter().map(RawFd::to_string).collect::<Vec<_>>().join(",");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(argv.iter().skip(1)).current_dir(cwd).env(ENV_FDS, list).env(ENV_PID, old.to_string());
    if handed.activated {
        cmd.env(ENV_ACTIVATED, "1");
    }
    if let Some(fd) = handed.metrics {
        cmd.env(ENV_METRICS_FD, fd.to_string());
        fds.push(fd);
    }
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl(2), which is
    // async-signal-safe; it allocates nothing (the descriptor list was built before the fork).
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    let child = cmd.spawn()?;
    Ok(Pid::from_raw(child.id() as i32))
}
