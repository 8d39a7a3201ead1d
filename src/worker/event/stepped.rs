//! An async app's own event loop owns the worker thread (`RgApp::run`, ABI 1.3): asyncio or libuv
//! waits, and the server's loop becomes a step the app calls when the loop's descriptor (its epoll
//! set, which holds every socket, the stop pipe and the `post` eventfd) is readable, or when the time
//! the last step asked for has passed. NGINX Unit drives asyncio the same way: no thread hop and no
//! lock between the server and the app's coroutines.
//!
//! Not here: what a step does ([`Loop::turn`]).

use crate::app::HostError;
use nix::sys::epoll::EpollEvent;
use rustgun_abi::{RG_LOOP_DONE, RgLoop};
use std::ffi::c_void;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::{Loop, TICK};

/// What a step needs besides the loop: the event buffer it reuses.
struct Host<'l, 'a, 'c> {
    ev: &'l mut Loop<'a, 'c>,
    events: Vec<EpollEvent>,
    done: bool,
}

impl Loop<'_, '_> {
    /// Serves an async app: through its own loop when it has `run`, else on ours.
    pub(super) fn serve_async(&mut self) {
        if !self.ctx.app.has_run() {
            return self.serve();
        }
        let fd = self.epoll.0.as_raw_fd();
        let mut host = Host { ev: self, events: vec![EpollEvent::empty(); 256], done: false };
        let host_loop = RgLoop {
            size: std::mem::size_of::<RgLoop>() as u32,
            fd,
            host: (&raw mut host).cast::<c_void>(),
            step,
        };
        let app = host.ev.ctx.app;
        let code = app.run(&host_loop);
        if code != rustgun_abi::RG_OK {
            tracing::error!("app's run returned status {code}");
        }
        if !host.done {
            tracing::error!("app's run returned before the worker stopped");
        }
    }
}

/// `RgLoop::step`: one turn of the loop without waiting.
unsafe extern "C" fn step(host: *mut c_void) -> i32 {
    // A step from inside `handle` or `on_event` would re-enter the loop that is calling the app.
    if crate::app::wake::is_dispatching() {
        return HostError::State("a step from inside handle or on_event").code();
    }
    // SAFETY: `host` is the `Host` that `serve_async` lent the app for the length of `run`, and it is
    // used on this thread only (the app calls `step` from its loop, which runs on the worker's thread),
    // never re-entered (checked above: a turn marks the thread as dispatching).
    let host = unsafe { &mut *host.cast::<Host<'_, '_, '_>>() };
    if host.done {
        return RG_LOOP_DONE;
    }
    let turned = catch_unwind(AssertUnwindSafe(|| {
        let _dispatching = crate::app::wake::dispatching();
        host.ev.turn(&mut host.events, Duration::ZERO)
    }));
    match turned {
        Ok(Some(next)) => next.min(TICK).as_millis() as i32,
        Ok(None) => {
            host.done = true;
            RG_LOOP_DONE
        }
        Err(_) => {
            tracing::error!("panic in the event loop's step; the worker stops");
            host.done = true;
            RG_LOOP_DONE
        }
    }
}
