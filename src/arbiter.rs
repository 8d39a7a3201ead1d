//! The master process: binds the listeners, forks the workers, and then runs one small loop —
//! reap dead children, read worker reports, handle queued signals one by one (each with its own named
//! handler), keep the worker count, sleep on the signal pipe — until it is told to stop.
//!
//! What does not live here: serving requests (`worker`), parsing the command line (`config`).

use crate::app::Library;
use crate::config::Config;
use crate::net::Listener;
use crate::sys::process::{self, Exit, PidFile};
use crate::sys::signals::{self, SignalQueue};
use crate::worker::{self, EXIT_APP_LOAD, EXIT_BOOT};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use signal_hook::consts::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// The signals the master handles.
const SIGNALS: &[libc::c_int] =
    &[SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH];
/// How long the master sleeps when nothing happens.
const TICK: Duration = Duration::from_millis(1000);
/// How long a quick stop (INT/QUIT) waits before killing.
const QUICK_STOP: Duration = Duration::from_secs(2);

/// Why the master could not start.
#[derive(Debug)]
pub enum StartError {
    Bind { addr: String, error: std::io::Error },
    Signals(std::io::Error),
    Pidfile(std::io::Error),
    Preload(crate::app::LoadError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
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
}

pub struct Arbiter {
    config: Config,
    listeners: Vec<Listener>,
    preloaded: Option<Library>,
    signals: SignalQueue,
    pending: Vec<libc::c_int>,
    report_rd: std::fs::File,
    report_wr: OwnedFd,
    report_buf: Vec<u8>,
    workers: BTreeMap<Pid, WorkerSlot>,
    target: u32,
    phase: Phase,
    /// A worker failed to boot: the master stops everything and exits with this code and message.
    halt: Option<(i32, String)>,
    /// The last failure message each worker reported before exiting.
    failures: BTreeMap<Pid, String>,
    ready_announced: bool,
    pidfile: Option<PidFile>,
    pid: Pid,
}

impl Arbiter {
    /// Binds every listener, writes the pidfile, installs the signal handlers and (with `--preload`)
    /// loads the app. Nothing is forked yet.
    pub fn start(config: Config) -> Result<Arbiter, StartError> {
        let mut listeners = Vec::with_capacity(config.bind.len());
        for addr in &config.bind {
            let listener = Listener::bind(addr, config.backlog, config.reuse_port)
                .map_err(|error| StartError::Bind { addr: addr.to_string(), error })?;
            listeners.push(listener);
        }
        let preloaded = if config.preload {
            Some(Library::open(&config.app).map_err(StartError::Preload)?)
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
        for l in &listeners {
            tracing::info!("Listening at: {} ({pid})", l.url());
        }
        tracing::info!("Using worker: {}", config.effective_class().name());
        let target = config.workers;
        Ok(Arbiter {
            config,
            listeners,
            preloaded,
            signals,
            pending: Vec::new(),
            report_rd: std::fs::File::from(report_rd),
            report_wr,
            report_buf: Vec::new(),
            workers: BTreeMap::new(),
            target,
            phase: Phase::Running,
            halt: None,
            failures: BTreeMap::new(),
            ready_announced: false,
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
            _ => tracing::info!("Ignoring {}: not supported yet", signals::name(sig)),
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
        let surplus = self.workers.len().saturating_sub(self.target as usize);
        // Pids grow with age in practice; the lowest ids' slots are kept, so stop the highest ids.
        let mut by_id: Vec<(u32, Pid)> = self.workers.iter().map(|(p, w)| (w.id, *p)).collect();
        by_id.sort_unstable();
        for (_, pid) in by_id.into_iter().rev().take(surplus) {
            process::signal(pid, Signal::SIGTERM);
        }
    }

    fn begin_stop(&mut self, sig: Signal, grace: Duration) {
        let deadline = Instant::now() + grace;
        let deadline = match self.phase {
            Phase::Stopping { deadline: earlier, .. } => earlier.min(deadline),
            Phase::Running => deadline,
        };
        // Stop accepting: close our copies of the listeners (workers close theirs as they exit).
        for l in &self.listeners {
            l.remove_file();
        }
        self.listeners.clear();
        for pid in self.workers.keys() {
            process::signal(*pid, sig);
        }
        self.phase = Phase::Stopping { deadline, killed: false };
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
            let Some(slot) = self.workers.remove(&pid) else { continue };
            let failure = self.failures.remove(&pid);
            match exit {
                Exit::Code(0) => tracing::info!("Worker {} (pid: {pid}) exited", slot.id),
                Exit::Code(code @ (EXIT_APP_LOAD | EXIT_BOOT)) if !slot.booted => {
                    let message = failure.unwrap_or_else(|| format!("worker {} failed to boot", slot.id));
                    if self.halt.is_none() {
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
        if !self.ready_announced
            && self.workers.len() == self.target as usize
            && self.workers.values().all(|w| w.booted)
        {
            self.ready_announced = true;
            tracing::info!("Ready: {} workers serving", self.target);
        }
    }

    /// Forks workers until there are `target` of them.
    fn spawn_missing(&mut self) {
        while self.workers.len() < self.target as usize {
            let id = (1..).find(|id| !self.workers.values().any(|w| w.id == *id)).unwrap_or(1);
            if let Err(e) = self.spawn(id) {
                tracing::error!("Cannot fork worker {id}: {e}");
                return;
            }
        }
    }

    fn spawn(&mut self, id: u32) -> std::io::Result<()> {
        let report = self.report_wr.try_clone()?;
        let master = self.pid;
        let config = &self.config;
        let listeners = &self.listeners;
        let preloaded = self.preloaded;
        let signals = &self.signals;
        // Signals stay blocked in the child until the worker's own handlers replace the master's.
        let blocked = signals::Blocked::all()?;
        let sigmask = blocked.previous();
        let pid = process::fork_child(|| {
            // The child must not run the master's handlers: they would queue into the master's pipe.
            signals.unregister();
            worker::run(worker::Boot { id, config, listeners, preloaded, report, master, sigmask })
        })?;
        drop(blocked);
        self.workers.insert(pid, WorkerSlot { id, booted: false });
        Ok(())
    }

    fn sleep(&mut self) {
        let timeout = match self.phase {
            Phase::Running => TICK,
            Phase::Stopping { .. } => Duration::from_millis(100),
        };
        let mut fds = [
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.report_rd.as_fd(), PollFlags::POLLIN),
        ];
        let ms = PollTimeout::try_from(timeout.as_millis() as i32).unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, ms);
    }

    fn exit(self) -> i32 {
        for l in &self.listeners {
            l.remove_file();
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
