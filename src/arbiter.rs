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
//! This file holds the loop and one named handler per signal; the nouns it drives have a file each:
//! `workers` (fork, stop, reap, `--timeout`), `reload` (generations, rebind), `upgrade` (USR2, the
//! pidfile), `listeners` (bind, adopt, match), `reports` (what workers tell the master), `metrics`
//! and `exporter` (`--metrics-bind`), `control` (`--control-socket`), `status` (the workers' table
//! both serve) and `conversations` (how the master answers clients without waiting on them). What
//! does not live here: serving requests (`worker`), parsing the command line (`config`), the shared
//! memory workers report through (`sys::scoreboard`).

mod control;
mod conversations;
mod exporter;
mod listeners;
mod metrics;
mod reload;
mod reports;
mod start;
mod status;
mod upgrade;
mod workers;

use crate::app::Library;
use crate::app::hooks::{self, About, Hook};
use crate::config::Config;
use crate::net::Listener;
use crate::sys::process::{self, PidFile};
use crate::sys::scoreboard::{Counters, Scoreboard};
use crate::sys::signals::{self, SignalQueue};
use crate::sys::systemd;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use reload::{FileStamp, Reload};
use signal_hook::consts::*;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use workers::WorkerSlot;

pub use start::StartError;

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
    watched: Vec<(std::path::PathBuf, Option<FileStamp>)>,
    next_check: Instant,
    /// `--metrics-bind`.
    metrics: Option<exporter::Exporter>,
    /// `--control-socket`.
    control: Option<control::Control>,
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
    /// Workers forked so far: the next one's age (gunicorn's `worker.age`).
    spawned: u32,
}

impl Arbiter {
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
        let reopened =
            crate::logging::reopen_error_log(&self.config.error_logfile, self.config.gunicorn.capture_output);
        tracing::info!("Handling signal: SIGUSR1; reopened the log files");
        if let Err(e) = reopened {
            tracing::error!("cannot reopen the error log {}: {e}", self.config.error_logfile);
        }
        for pid in self.workers.keys() {
            process::signal(*pid, Signal::SIGUSR1);
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

    /// TTIN: one worker more.
    fn handle_ttin(&mut self) {
        if self.phase == Phase::Running {
            self.target += 1;
            tracing::info!("Handling signal: SIGTTIN; workers: {}", self.target);
            self.workers_changed(self.target - 1);
        }
    }

    /// TTOU: one worker fewer, never below one; the oldest surplus worker stops gracefully.
    fn handle_ttou(&mut self) {
        if self.phase == Phase::Running && self.target > 1 {
            self.target -= 1;
            tracing::info!("Handling signal: SIGTTOU; workers: {}", self.target);
            self.workers_changed(self.target + 1);
            self.stop_surplus();
        }
    }

    /// `nworkers_changed(server, new, old)`, when the count the master keeps changed from `old`.
    fn workers_changed(&self, old: u32) {
        if old != self.target {
            let about = About { old_workers: old, ..hooks::master(self.target) };
            hooks::run(Hook::NworkersChanged, about);
        }
    }

    fn sleep(&mut self) {
        let timeout = match self.phase {
            Phase::Running => TICK,
            Phase::Stopping { .. } => Duration::from_millis(100),
        };
        // A conversation in progress wakes the master by its deadline, to be dropped if it is late.
        let metrics = self.metrics.as_ref().map(|m| m.conversations());
        let control = self.control.as_ref().map(|c| c.conversations());
        let due = metrics
            .and_then(|m| m.next_deadline())
            .into_iter()
            .chain(control.and_then(|c| c.next_deadline()));
        let timeout =
            due.min().map_or(timeout, |due| timeout.min(due.saturating_duration_since(Instant::now())));
        let mut fds = vec![
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.report_rd.as_fd(), PollFlags::POLLIN),
        ];
        let served = metrics
            .into_iter()
            .flat_map(|m| m.interest())
            .chain(control.into_iter().flat_map(|c| c.interest()));
        fds.extend(served.map(|(fd, events)| PollFd::new(fd, events)));
        let ms = PollTimeout::try_from(timeout.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, ms);
        drop(fds);
        // Conversations move only as far as they can without waiting (the master never blocks).
        if let Some(mut m) = self.metrics.take() {
            m.step(|page| match page {
                exporter::Page::Metrics => self.render_metrics(),
                exporter::Page::StatusJson => self.status().json(),
            });
            self.metrics = Some(m);
        }
        self.step_control();
    }

    /// The descriptors of the listeners the master serves itself and their conversations: what a
    /// forked worker closes.
    fn served_descriptors(&self) -> impl Iterator<Item = std::os::fd::RawFd> + '_ {
        let metrics = self.metrics.iter().flat_map(|m| m.conversations().descriptors());
        metrics.chain(self.control.iter().flat_map(|c| c.conversations().descriptors()))
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
        if let Some(c) = &self.control {
            c.remove_file();
        }
        match self.halt {
            Some((code, message)) => {
                tracing::error!("{message}");
                code
            }
            None => {
                hooks::run(Hook::OnExit, hooks::master(self.target));
                tracing::info!("Shutting down: Master");
                crate::exit::OK
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
