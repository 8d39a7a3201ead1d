//! Waking the worker's event loop (ABI 1.3): `post` from any thread, and host calls that queued work
//! while the loop was not dispatching (an app whose own loop owns the thread, `RgApp::run`, calling
//! from its callbacks). One eventfd per worker process sits in the loop's epoll set; the loop drains
//! it, runs what was posted and writes out what host calls queued.
//!
//! Not here: the loop itself (`worker::event`), what a touched call does (`worker`).

use super::HostError;
use nix::sys::eventfd::{EfdFlags, EventFd};
use rustgun_abi::RgPostFn;
use std::cell::Cell;
use std::ffi::c_void;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

/// The worker's side of the eventfd, and what other threads posted since the loop last drained it.
struct Waker {
    fd: OwnedFd,
    posted: Vec<(RgPostFn, usize)>,
    /// The eventfd was written since the last drain: another write would wake no one more.
    signaled: bool,
}

static WAKER: Mutex<Option<Waker>> = Mutex::new(None);

thread_local! {
    /// The loop is in its own dispatch on this thread: whatever host calls queue now is written out
    /// before the loop waits again, so they need no wake-up.
    static DISPATCHING: Cell<bool> = const { Cell::new(false) };
}

/// A function an app posted and its argument, to be run on the loop thread.
pub struct Posted(RgPostFn, usize);

impl Posted {
    /// Runs it. The app's function must not unwind (the ABI's functions are `extern "C"`).
    pub fn run(self) {
        // SAFETY: the app handed over `f` and `arg` to be called once on the loop thread (`post`).
        unsafe { (self.0)(std::ptr::with_exposed_provenance_mut::<c_void>(self.1)) }
    }
}

/// Makes `post` work in this worker; the descriptor is the loop's to watch and [`drain`].
pub fn install() -> io::Result<OwnedFd> {
    let fd: OwnedFd =
        EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?.into();
    let theirs = fd.try_clone()?;
    *lock() = Some(Waker { fd: theirs, posted: Vec::new(), signaled: false });
    Ok(fd)
}

/// `post` refuses from now on; what was posted and never run is dropped.
pub fn uninstall() {
    *lock() = None;
}

fn lock() -> std::sync::MutexGuard<'static, Option<Waker>> {
    WAKER.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The host function `post`: queues `f(arg)` for the loop thread and wakes it.
pub fn post(f: RgPostFn, arg: *mut c_void) -> Result<(), HostError> {
    let mut waker = lock();
    let Some(w) = waker.as_mut() else { return Err(HostError::State("the worker is not serving")) };
    w.posted.push((f, arg.expose_provenance()));
    signal(w);
    Ok(())
}

/// A host call queued work on the loop thread: unless the loop is dispatching (and writes it out
/// itself before it waits), wake it.
pub fn nudge() {
    if DISPATCHING.get() {
        return;
    }
    if let Some(w) = lock().as_mut() {
        signal(w);
    }
}

fn signal(w: &mut Waker) {
    if !w.signaled {
        w.signaled = true;
        let _ = nix::unistd::write(w.fd.as_fd(), &1u64.to_ne_bytes());
    }
}

/// Reads the eventfd and takes what was posted (the loop runs it).
pub fn drain(fd: BorrowedFd<'_>) -> Vec<Posted> {
    let mut count = [0u8; 8];
    let _ = nix::unistd::read(fd.as_raw_fd(), &mut count);
    let mut waker = lock();
    let Some(w) = waker.as_mut() else { return Vec::new() };
    w.signaled = false;
    w.posted.drain(..).map(|(f, arg)| Posted(f, arg)).collect()
}

/// Whether the loop is dispatching on this thread (a step must not start inside one).
pub fn is_dispatching() -> bool {
    DISPATCHING.get()
}

/// Marks the loop thread as dispatching until the guard drops.
pub fn dispatching() -> Dispatching {
    Dispatching(DISPATCHING.replace(true))
}

/// While it lives, host calls on this thread need no wake-up ([`dispatching`]).
pub struct Dispatching(bool);

impl Drop for Dispatching {
    fn drop(&mut self) {
        DISPATCHING.set(self.0);
    }
}
