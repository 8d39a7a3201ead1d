//! A signal queue on a self-pipe: each handler writes its signal number as one byte into a
//! non-blocking pipe; the owner reads the bytes back, in arrival order, when its `poll` wakes up.
//! This is unicorn's SIG_QUEUE, with signal-hook doing the registration. Also a worker's own handlers
//! (stop, quick exit, reopening the log files), so that every signal handler of the server lives here.

use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow};
use signal_hook::SigId;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Signals caught into a queue.
pub struct SignalQueue {
    read: std::fs::File,
    _write: OwnedFd,
    ids: Vec<SigId>,
}

impl SignalQueue {
    /// Registers a handler for each of `signals` that queues it.
    pub fn install(signals: &[libc::c_int]) -> io::Result<SignalQueue> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let wfd = write.as_raw_fd();
        let mut ids = Vec::with_capacity(signals.len());
        for &sig in signals {
            let byte = sig as u8;
            // SAFETY: the action only calls write(2) on a pipe and saves/restores errno, both
            // async-signal-safe; the pipe outlives the registration (unregistered in `uninstall`,
            // or kept for the life of the process).
            let id = unsafe {
                signal_hook::low_level::register(sig, move || {
                    let saved = nix::errno::Errno::last_raw();
                    libc::write(wfd, (&byte as *const u8).cast(), 1);
                    nix::errno::Errno::set_raw(saved);
                })
            }?;
            ids.push(id);
        }
        Ok(SignalQueue { read: std::fs::File::from(read), _write: write, ids })
    }

    /// Appends the signals received since the last call, oldest first.
    pub fn drain(&mut self, out: &mut Vec<libc::c_int>) {
        let mut buf = [0u8; 64];
        while let Ok(n) = self.read.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend(buf[..n].iter().map(|&b| libc::c_int::from(b)));
        }
    }

    /// In a freshly forked worker: removes the master's handlers and closes the worker's copies of the
    /// master's pipe, so neither the worker nor the app it loads can queue signals into the master.
    /// The worker never drops the master's structures (it leaves through `process::exit`), so the
    /// descriptors are not closed twice.
    pub fn leave_in_child(&self) {
        for id in &self.ids {
            signal_hook::low_level::unregister(*id);
        }
        let _ = nix::unistd::close(self.read.as_raw_fd());
        let _ = nix::unistd::close(self._write.as_raw_fd());
    }
}

impl AsFd for SignalQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// Every signal blocked in this thread until the guard is dropped, which puts the earlier mask back.
///
/// The master holds one across `fork`: a signal sent to a new worker before it has replaced the
/// master's handlers with its own stays pending, instead of running the master's handler in the child
/// (which would queue it into the master's pipe, as if the master had been sent it) or being lost in
/// between. The worker restores [`Blocked::previous`] itself once its own handlers are installed.
pub struct Blocked {
    previous: SigSet,
}

impl Blocked {
    pub fn all() -> io::Result<Blocked> {
        let previous = SigSet::all().thread_swap_mask(SigmaskHow::SIG_SETMASK)?;
        Ok(Blocked { previous })
    }

    /// The mask this thread had before.
    pub fn previous(&self) -> SigSet {
        self.previous
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let _ = self.previous.thread_set_mask();
    }
}

/// The name of a signal for log lines (`SIGTERM`).
pub fn name(sig: libc::c_int) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

/// What a worker runs before it exits on INT/QUIT (`on_quit`) or ABRT (`on_abort`), if anything.
pub struct ExitHooks {
    pub on_quit: Option<Box<dyn Fn() + Send>>,
    pub on_abort: Option<Box<dyn Fn() + Send>>,
}

/// A worker's TERM: stop gracefully (set `stop`, wake the poll through `stop_wr`). INT and QUIT:
/// exit now — or, when `on_quit` is given (the config file's `worker_int`), once a thread of the
/// worker has run it. ABRT (the master's `--timeout`) likewise runs `on_abort` (`worker_abort`)
/// before the worker exits with status 1; without it ABRT keeps its default action.
pub fn install_worker(stop: &Arc<AtomicBool>, stop_wr: &OwnedFd, hooks: ExitHooks) -> std::io::Result<()> {
    let ExitHooks { on_quit, on_abort } = hooks;
    use signal_hook::consts::{SIGABRT, SIGINT, SIGQUIT, SIGTERM};
    signal_hook::flag::register(SIGTERM, Arc::clone(stop))?;
    // `run` keeps the write end open for as long as the handler can fire.
    signal_hook::low_level::pipe::register_raw(SIGTERM, std::os::fd::AsRawFd::as_raw_fd(stop_wr))?;
    if on_quit.is_none() {
        for sig in [SIGINT, SIGQUIT] {
            // SAFETY: _exit is async-signal-safe; a quick stop abandons in-flight requests by design.
            unsafe { signal_hook::low_level::register(sig, || libc::_exit(crate::exit::OK)) }?;
        }
    }
    let mut hooked: Vec<libc::c_int> = Vec::new();
    if on_quit.is_some() {
        hooked.extend([SIGINT, SIGQUIT]);
    }
    if on_abort.is_some() {
        hooked.push(SIGABRT);
    }
    if hooked.is_empty() {
        return Ok(());
    }
    // The hooks are app code: they run on a thread of their own, woken through signal-hook's pipe,
    // never in the handler. The app's threads keep serving meanwhile, as in gunicorn.
    let mut signals = signal_hook::iterator::Signals::new(&hooked)?;
    std::thread::Builder::new().name("rustgun-hooks".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let (hook, code) = if sig == SIGABRT { (on_abort, 1) } else { (on_quit, crate::exit::OK) };
            if let Some(hook) = &hook {
                hook();
            }
            // SAFETY: _exit ends the process at once, as the quick stop without a hook does.
            unsafe { libc::_exit(code) };
        }
    })?;
    Ok(())
}

/// USR1: reopen the log files (logrotate moved them away), right inside the handler — `open`, `dup3`
/// and `close` are async-signal-safe, and `dup3` swaps the file behind a descriptor in one step, so
/// every thread's next write goes to the new file with no lock and no flag to poll.
pub fn reopen_logs_on_usr1(files: Vec<(std::ffi::CString, RawFd)>) -> std::io::Result<()> {
    // SAFETY: the action only calls open(2), dup3(2) and close(2) and saves/restores errno, all
    // async-signal-safe; it allocates nothing (the paths were made before registration).
    unsafe {
        signal_hook::low_level::register(signal_hook::consts::SIGUSR1, move || {
            let saved = nix::errno::Errno::last_raw();
            for (path, target) in &files {
                let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC;
                let fd = libc::open(path.as_ptr(), flags, 0o644);
                if fd >= 0 {
                    let cloexec = if *target == 2 { 0 } else { libc::O_CLOEXEC };
                    libc::dup3(fd, *target, cloexec);
                    libc::close(fd);
                }
            }
            nix::errno::Errno::set_raw(saved);
        })
    }?;
    Ok(())
}
