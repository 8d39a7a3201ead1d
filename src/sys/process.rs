//! Process helpers: forking a child, signalling it, reaping children, and the pidfile.

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Forks; in the child runs `child` and exits with its code, or with `panicked` if it panics: the
/// child never returns from here.
pub fn fork_child(child: impl FnOnce() -> i32, panicked: i32) -> io::Result<Pid> {
    // SAFETY: the master's own code runs on one thread (no runtime, no helper threads), so the child
    // starts with a consistent copy of every lock the master uses; threads an app's `--preload` may
    // have started are warned about at start (`thread_count`), and the child never returns into the
    // master's frames (below).
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            // The child never returns into the master's frames, not even by a panic: their owners
            // would close descriptors the child has reused, and the master's exit handlers would run.
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(panicked);
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            // SAFETY: _exit(2) ends the process at once; everything the child owned was dropped above.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Takes ownership of a descriptor this process inherited by number (systemd's sockets, `fd://N`, a
/// binary upgrade's listeners): an error if it is not open.
pub fn adopt_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("fd {fd} is not open")));
    }
    // SAFETY: the descriptor is open (checked above) and, by the caller's contract (a number given on
    // the command line or by the parent process), this process's alone from now on.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Clears close-on-exec on `fds` in the child `cmd` forks, so the program it runs inherits them (a
/// binary upgrade's listeners).
pub fn keep_across_exec(cmd: &mut std::process::Command, fds: Vec<RawFd>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl(2), which is
    // async-signal-safe; it allocates nothing (the descriptor list was built before the fork).
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
}

/// Sets an environment variable of this process.
///
/// Only while the process runs its own thread alone: the master at start, before `--preload` runs app
/// code; a worker right after its fork. (The environment is not safe to change while another thread
/// may read it; every caller says which of the two moments it is.)
pub fn set_env(key: &str, value: &str) {
    // SAFETY: single-threaded by the contract above.
    unsafe { std::env::set_var(key, value) };
}

/// Reads and removes an environment variable meant for this process only. The contract of
/// [`set_env`] applies.
pub fn take_env(key: &str) -> Option<String> {
    let value = std::env::var(key).ok();
    // SAFETY: single-threaded by the contract of `set_env`.
    unsafe { std::env::remove_var(key) };
    value
}

/// How many threads this process runs, from the `Threads:` line of `/proc/self/status`.
pub fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("/proc/self/status has no Threads line"))
}

/// Sends `sig` to `pid`, ignoring a child that is already gone.
pub fn signal(pid: Pid, sig: Signal) {
    let _ = kill(pid, sig);
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(Signal),
}

/// Reaps every child that has exited (`waitpid(-1, WNOHANG)` until nothing is left).
pub fn reap_all(mut on_exit: impl FnMut(Pid, Exit)) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => on_exit(pid, Exit::Code(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => on_exit(pid, Exit::Signal(sig)),
            Ok(WaitStatus::StillAlive) => return,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

/// The master's pidfile: written atomically (temp file + rename), removed on exit if still ours.
pub struct PidFile {
    path: PathBuf,
    /// The name it had before a binary upgrade moved it to `PIDFILE.oldbin`.
    original: Option<PathBuf>,
}

impl PidFile {
    pub fn create(path: &Path) -> io::Result<PidFile> {
        let pid = std::process::id();
        if let Ok(existing) = std::fs::read_to_string(path)
            && let Ok(other) = existing.trim().parse::<i32>()
            && other != pid as i32
            && kill(Pid::from_raw(other), None).is_ok()
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("pidfile {} names a running process {other}", path.display()),
            ));
        }
        let tmp = path.with_extension(format!("tmp{pid}"));
        std::fs::write(&tmp, format!("{pid}\n"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot write pidfile {}: {e}", path.display())))?;
        Ok(PidFile { path: path.to_path_buf(), original: None })
    }

    /// Binary upgrade: moves the file to `PIDFILE.oldbin`, leaving the name to the new master.
    pub fn rename_to_oldbin(&mut self) -> io::Result<()> {
        let mut name = self.path.clone().into_os_string();
        name.push(".oldbin");
        let oldbin = PathBuf::from(name);
        std::fs::rename(&self.path, &oldbin).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot rename the pidfile {} to {}: {e}", self.path.display(), oldbin.display()),
            )
        })?;
        self.original = Some(std::mem::replace(&mut self.path, oldbin));
        Ok(())
    }

    /// Gives a pidfile moved by [`PidFile::rename_to_oldbin`] its name back (the new master is gone).
    pub fn restore(&mut self) -> io::Result<()> {
        let Some(original) = self.original.take() else { return Ok(()) };
        std::fs::rename(&self.path, &original).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot rename the pidfile {} back to {}: {e}",
                    self.path.display(),
                    original.display()
                ),
            )
        })?;
        self.path = original;
        Ok(())
    }

    /// Removes the file if it still holds our pid.
    pub fn remove(&self) {
        if std::fs::read_to_string(&self.path).is_ok_and(|s| s.trim() == std::process::id().to_string()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forks a child running `body` and returns how it exited.
    fn exit_of(body: impl FnOnce() -> i32) -> WaitStatus {
        let pid = fork_child(body, 3).expect("fork");
        waitpid(pid, None).expect("waitpid")
    }

    #[test]
    fn a_child_exits_with_the_code_its_body_returns() {
        assert!(matches!(exit_of(|| 7), WaitStatus::Exited(_, 7)));
    }

    /// A panic that unwound out of `fork_child` would go on running this test harness in the child,
    /// which would then exit with the harness's own code, not 3.
    #[test]
    fn a_child_that_panics_exits_with_the_panic_code_and_never_unwinds_into_its_parent_frames() {
        assert!(matches!(exit_of(|| panic!("a worker's boot panicked")), WaitStatus::Exited(_, 3)));
    }
}
