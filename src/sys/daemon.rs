//! `-D/--daemon`: detach from the terminal the classic way (fork, `setsid`, fork again, stdio onto
//! `/dev/null`), with one addition: a pipe back to the launching process, which waits for the daemon's
//! start-up result and exits with it — 0 once the master has bound its sockets and written its pidfile,
//! 1 with the daemon's one-line error otherwise — instead of exiting 0 before anything was tried.

use nix::unistd::ForkResult;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

/// The daemon's end of the start-up pipe.
pub struct Detached {
    report: std::fs::File,
}

impl Detached {
    /// The server started: the launcher exits 0.
    pub fn started(mut self) {
        let _ = self.report.write_all(b"OK\n");
    }

    /// The server could not start: the launcher prints `message` and exits 1.
    pub fn failed(mut self, message: &str) {
        let _ = self.report.write_all(format!("ERR {}\n", message.replace('\n', " ")).as_bytes());
    }
}

/// Detaches this process and returns in the daemon; the launcher and the intermediate child never
/// return (they exit). stdin and stdout go to `/dev/null`, and stderr too unless `keep_stderr` (the
/// error log is a file). Call it while the process is single-threaded.
pub fn daemonize(keep_stderr: bool) -> io::Result<Detached> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: the process is single-threaded here (the caller's contract), so the child starts with
    // consistent locks and allocator state.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { .. } => {
            drop(write);
            std::process::exit(await_start(read))
        }
        ForkResult::Child => {}
    }
    drop(read);
    nix::unistd::setsid()?;
    // SAFETY: as above; the first child is still single-threaded.
    match unsafe { nix::unistd::fork() }? {
        // The session leader exits, so the daemon can never reacquire a controlling terminal.
        ForkResult::Parent { .. } => std::process::exit(crate::exit::OK),
        ForkResult::Child => {}
    }
    let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    let targets: &[i32] = if keep_stderr { &[0, 1] } else { &[0, 1, 2] };
    for &fd in targets {
        nix::unistd::dup2(null.as_raw_fd(), fd)?;
    }
    Ok(Detached { report: std::fs::File::from(write) })
}

/// In the launcher: waits for the daemon's report; the exit code to leave with.
fn await_start(read: OwnedFd) -> i32 {
    let mut text = String::new();
    let _ = std::fs::File::from(read).read_to_string(&mut text);
    match text.lines().next() {
        Some("OK") => crate::exit::OK,
        Some(line) => {
            eprintln!("rustgun: {}", line.strip_prefix("ERR ").unwrap_or(line));
            crate::exit::FAILED
        }
        None => {
            eprintln!("rustgun: the daemon exited before it started (see the error log)");
            crate::exit::FAILED
        }
    }
}
