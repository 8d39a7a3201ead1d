//! The master's workers: forking them (each with its scoreboard slot), keeping the current
//! generation at its target, stopping them gracefully or by force, aborting the silent ones
//! (`--timeout`), and reaping them with what their exit means.
//!
//! Not here: what a worker does (`worker`), generations and reloads (`reload`).

use super::{Arbiter, CHECK_EVERY, Phase, title};
use crate::app::hooks::{self, Hook};
use crate::exit;
use crate::sys::process::{self, Exit};
use crate::sys::scoreboard::{self, Retired, SlotId};
use crate::sys::{signals, systemd};
use crate::worker;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

pub(super) struct WorkerSlot {
    pub(super) id: u32,
    pub(super) booted: bool,
    pub(super) generation: u32,
    pub(super) slot: SlotId,
    /// Told to stop gracefully (TTOU, WINCH, replaced by a reload): killed past this deadline.
    pub(super) stop_deadline: Option<Instant>,
    /// Aborted for silence (`--timeout`) at this instant; killed at the next check if still there.
    pub(super) aborted: Option<Instant>,
    pub(super) killed: bool,
    /// How many workers the master had forked before this one (gunicorn's `worker.age`).
    pub(super) age: u32,
    /// When it was forked.
    pub(super) started: Instant,
}

impl Arbiter {
    /// The workers of the current generation that have not been told to stop.
    pub(super) fn current(&self) -> impl Iterator<Item = (&Pid, &WorkerSlot)> {
        self.workers.iter().filter(|(_, w)| w.generation == self.generation && w.stop_deadline.is_none())
    }

    /// Asks one worker to stop gracefully; it is killed if still there after `--graceful-timeout`.
    pub(super) fn stop_worker(&mut self, pid: Pid) {
        let grace = Duration::from_secs(self.config.graceful_timeout);
        if let Some(w) = self.workers.get_mut(&pid)
            && w.stop_deadline.is_none()
        {
            w.stop_deadline = Some(Instant::now() + grace);
            process::signal(pid, Signal::SIGTERM);
        }
    }

    /// Kills the workers that did not stop within their grace period.
    pub(super) fn kill_overdue(&mut self) {
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
    pub(super) fn check_timeouts(&mut self) {
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

    pub(super) fn stop_surplus(&mut self) {
        let mut by_id: Vec<(u32, Pid)> = self.current().map(|(p, w)| (w.id, *p)).collect();
        let surplus = by_id.len().saturating_sub(self.target as usize);
        // The lowest ids are kept, so stop the highest ids.
        by_id.sort_unstable();
        for (_, pid) in by_id.into_iter().rev().take(surplus) {
            self.stop_worker(pid);
        }
    }

    pub(super) fn begin_stop(&mut self, sig: Signal, grace: Duration) {
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

    /// Reaps every exited child, logs how it ended, and notes boot failures.
    pub(super) fn reap(&mut self) {
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
            let about = hooks::worker(self.pid.as_raw(), pid.as_raw(), slot.id, slot.age, self.target);
            hooks::run(Hook::ChildExit, about);
            let failure = self.failures.remove(&pid);
            match exit {
                Exit::Code(exit::OK) => tracing::info!("Worker {} (pid: {pid}) exited", slot.id),
                Exit::Code(code @ (exit::APP_LOAD | exit::WORKER_BOOT)) if !slot.booted => {
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
    pub(super) fn count_exit(&mut self, w: &WorkerSlot, exit: Exit) {
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

    /// Forks workers until the current generation has `target` of them.
    pub(super) fn spawn_missing(&mut self) {
        while self.current().count() < self.target as usize {
            let id = (1..).find(|id| !self.workers.values().any(|w| w.id == *id)).unwrap_or(1);
            if let Err(e) = self.spawn(id) {
                tracing::error!("Cannot fork worker {id}: {e}");
                return;
            }
        }
    }

    pub(super) fn spawn(&mut self, id: u32) -> std::io::Result<()> {
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
        let master_pipe = [self.report_rd.as_raw_fd(), self.report_wr.as_raw_fd()];
        let retired: Vec<RawFd> = self.retired().map(|l| l.as_fd().as_raw_fd()).collect();
        let scrapes: Vec<RawFd> = self.served_descriptors().collect();
        let age = self.spawned;
        self.spawned += 1;
        let workers = self.target;
        hooks::run(Hook::PreFork, hooks::worker(master.as_raw(), 0, id, age, workers));
        // Signals stay blocked in the child until the worker's own handlers replace the master's.
        let blocked = signals::Blocked::all()?;
        let sigmask = blocked.previous();
        let pid = process::fork_child(
            || {
                // The child must not run the master's handlers nor hold the master's pipes: they would
                // let the worker (or its app) queue signals into the master, read other workers'
                // reports or forge its own (it keeps only `report`, its own copy, until it is ready).
                signals.leave_in_child();
                // Nor the listeners a reload dropped: those must close once the previous generation is gone.
                // Nor the metrics listener, the control socket and their conversations: they are the
                // master's to answer.
                // (Closed raw: the child never returns to the frames that own them, see `fork_child`.)
                for &fd in master_pipe.iter().chain(&retired).chain(&scrapes) {
                    let _ = nix::unistd::close(fd);
                }
                let boot = worker::Boot {
                    id,
                    age,
                    config,
                    listeners,
                    preloaded,
                    report,
                    slot,
                    title,
                    master,
                    sigmask,
                };
                worker::run(boot)
            },
            exit::WORKER_BOOT,
        );
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
            age,
            started: Instant::now(),
        };
        self.workers.insert(pid, w);
        Ok(())
    }

    /// Tells systemd the worker count (`STATUS=4 workers`) when it changed since last told.
    pub(super) fn notify_count(&mut self) {
        if self.status_sent != Some(self.workers.len()) {
            self.status_sent = Some(self.workers.len());
            systemd::notify(&format!("STATUS={} workers", self.workers.len()));
            if let Some(statsd) = crate::logging::statsd::get() {
                statsd.workers(self.workers.len());
            }
        }
    }
}
