//! Process helpers: forking a child, signalling it, reaping children, and the pidfile.

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use std::io;
use std::path::{Path, PathBuf};

/// Forks; in the child runs `child` and exits with its code (never returns there).
pub fn fork_child(child: impl FnOnce() -> i32) -> io::Result<Pid> {
    // SAFETY: the master is single-threaded (no runtime, no helper threads), so the child starts
    // with a consistent copy of every lock and allocator state.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code = child();
            std::process::exit(code)
        }
    }
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
        Ok(PidFile { path: path.to_path_buf() })
    }

    /// Removes the file if it still holds our pid.
    pub fn remove(&self) {
        if std::fs::read_to_string(&self.path).is_ok_and(|s| s.trim() == std::process::id().to_string()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
