//! Binary upgrades (USR2): start a new master from the binary on disk, hand it the listening sockets,
//! move the pidfile aside, and take it back when the new master exits; and, in a new master, notice
//! when the old one is gone.
//!
//! Not here: the signal handlers that start and finish an upgrade (`arbiter`), adopting the handed-down
//! sockets (`listeners`).

use super::{Arbiter, ENV_ACTIVATED, ENV_FDS, ENV_METRICS_FD, ENV_PID, Phase};
use crate::app::hooks::{self, Hook};
use crate::net::Listener;
use crate::sys::process::{self, Exit};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, RawFd};

impl Arbiter {
    /// USR2: binary upgrade. Start a new master from the binary on disk with the same command line,
    /// handing it the listening sockets; rename the pidfile to `PIDFILE.oldbin` and keep serving. The
    /// operator then sends WINCH and QUIT (or TERM) here — or, to roll back, HUP here and TERM there.
    pub(super) fn handle_usr2(&mut self) {
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
        // gunicorn runs pre_exec in the child it is about to exec; the new master is started by
        // posix_spawn here, so the hook runs in this master, just before.
        hooks::run(Hook::PreExec, hooks::master(self.target));
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

    /// A master started by USR2 becomes the only one when the old master is gone (its parent changes).
    pub(super) fn check_old_master(&mut self) {
        if let Some(old) = self.old_master
            && nix::unistd::getppid() != old
        {
            tracing::info!("The old master (pid {old}) is gone; this is now the only master");
            self.old_master = None;
        }
    }

    /// Gives the pidfile its name back after an upgrade failed or was rolled back.
    pub(super) fn restore_pidfile(&mut self) {
        if let Some(p) = &mut self.pidfile
            && let Err(e) = p.restore()
        {
            tracing::error!("{e}");
        }
    }

    /// The master a USR2 started has exited: the upgrade failed or was rolled back (TERM to it), so
    /// this master is the one again and takes its pidfile back.
    pub(super) fn new_master_exited(&mut self, pid: Pid, exit: Exit) {
        match exit {
            Exit::Code(code) => tracing::warn!("The new master (pid {pid}) exited with code {code}"),
            Exit::Signal(sig) => tracing::warn!("The new master (pid {pid}) was sent {}", sig.as_str()),
        }
        self.new_master = None;
        self.restore_pidfile();
    }
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
    process::keep_across_exec(&mut cmd, fds);
    let child = cmd.spawn()?;
    Ok(Pid::from_raw(child.id() as i32))
}
