//! The `--threads N` pool of an event worker: app calls run on pool threads, so a slow app never
//! stalls the loop. The loop parses a connection's head, hands the connection over with it (its
//! descriptor stays registered, disarmed), and takes it back with its output buffered. The queues
//! both ways reuse their storage, so handing over allocates nothing in the steady state.
//!
//! Not here: running the requests ([`super::requests`]), writing what the pool buffered.

use crate::http::conn::After;
use crate::http::parse::{RequestHead, parse_head};
use crate::worker::Context;
use crate::worker::connection::Shared;
use nix::sys::epoll::{EpollEvent, EpollFlags};
use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::{Conn, Loop, Phase, run_requests};

/// A head travelling with a connection between the loop and a pool thread.
#[derive(Default)]
pub(super) enum Handoff {
    #[default]
    None,
    /// Parsed on the loop from the first `len` bytes of the connection's read buffer.
    Parsed { head: RequestHead, len: usize },
    /// The head the pool thread's buffers held before, given back to the loop's spares.
    Spare(RequestHead),
}

impl Handoff {
    /// The head the loop parsed, swapped into `shared` (its old head goes back with the connection),
    /// and the bytes it took.
    pub(super) fn receive(&mut self, shared: &mut Shared) -> Option<usize> {
        match std::mem::take(self) {
            Handoff::Parsed { mut head, len } => {
                std::mem::swap(&mut head, shared.head_mut());
                *self = Handoff::Spare(head);
                Some(len)
            }
            other => {
                *self = other;
                None
            }
        }
    }
}

/// A queue between the loop and its pool threads that keeps its storage.
pub(super) struct Queue<T> {
    items: Mutex<(VecDeque<T>, bool)>,
    ready: Condvar,
}

impl<T> Queue<T> {
    pub(super) fn new() -> Arc<Queue<T>> {
        Arc::new(Queue { items: Mutex::new((VecDeque::new(), false)), ready: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, (VecDeque<T>, bool)> {
        // A pool thread never panics holding the lock (apps run under catch_unwind elsewhere).
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn push(&self, item: T) {
        self.lock().0.push_back(item);
        self.ready.notify_one();
    }

    pub(super) fn try_pop(&self) -> Option<T> {
        self.lock().0.pop_front()
    }

    /// The next item, waiting for one; `None` once the queue is closed.
    fn pop_wait(&self) -> Option<T> {
        let mut items = self.lock();
        loop {
            if items.1 {
                return None;
            }
            if let Some(item) = items.0.pop_front() {
                return Some(item);
            }
            items = self.ready.wait(items).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Ends the waits of [`Queue::pop_wait`]: the pool threads exit.
    fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_all();
    }
}

/// The loop's side of the app-call pool. Dropping it ends the pool threads.
pub(super) struct Pool {
    pub(super) jobs: Arc<Queue<(usize, Conn)>>,
    pub(super) done: Arc<Queue<(usize, Conn, Phase)>>,
    pub(super) wake: std::fs::File,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs.close();
    }
}

impl Loop<'_, '_> {
    /// Hands a connection with a complete head to the pool, the parsed head with it (a partial head
    /// waits here for more bytes; a malformed one is parsed again and answered by the pool thread).
    /// The slot stays reserved and the descriptor registered, disarmed, until the connection is back.
    pub(super) fn dispatch(&mut self, token: usize) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        let parsed = parse_head(conn.rbuf.data(), &self.ctx.settings.limits, self.shared.head_mut());
        match parsed {
            Ok(None) => return,
            Ok(Some(len)) => {
                let mut head = self.shared.lend_head();
                std::mem::swap(&mut head, self.shared.head_mut());
                conn.handoff = Handoff::Parsed { head, len };
            }
            Err(_) => {}
        }
        let Some(conn) = self.conns[token].take() else { return };
        // One-shot with no event asked for: at most one hang-up is reported (and ignored, the slot
        // being empty) until `returned` re-arms it.
        let _ = self
            .epoll
            .modify(conn.stream.as_fd(), &mut EpollEvent::new(EpollFlags::EPOLLONESHOT, token as u64));
        match &self.pool {
            Some(pool) => pool.jobs.push((token, conn)),
            None => {
                self.free.push(token);
                self.live -= 1;
            }
        }
    }

    /// Takes back the connections the pool has finished with and writes their output.
    pub(super) fn returned(&mut self) {
        let mut byte = [0u8; 64];
        let Some(pool) = &mut self.pool else { return };
        while matches!(std::io::Read::read(&mut pool.wake, &mut byte), Ok(n) if n > 0) {}
        while let Some((token, mut conn, phase)) = self.pool.as_ref().and_then(|pool| pool.done.try_pop()) {
            if let Handoff::Spare(head) = std::mem::take(&mut conn.handoff) {
                self.shared.take_back_head(head);
            }
            conn.writing = false;
            conn.phase = phase;
            conn.start_pacing(Instant::now());
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
            if self.epoll.modify(conn.stream.as_fd(), &mut EpollEvent::new(flags, token as u64)).is_err() {
                self.free.push(token);
                self.live -= 1;
                continue;
            }
            self.conns[token] = Some(conn);
            self.drive(token);
        }
    }
}

/// A pool thread: takes connections with a complete request from the loop, runs their app calls (so a
/// slow app never stalls the loop), and hands them back with their output buffered.
pub(super) fn pool_thread(
    jobs: &Queue<(usize, Conn)>,
    done: &Queue<(usize, Conn, Phase)>,
    wake: &OwnedFd,
    ctx: &Context<'_>,
    lane: usize,
) {
    let mut shared = Shared::default();
    shared.set_lane(lane);
    let beat = ctx.lane(lane);
    loop {
        if let Some(lane) = beat {
            lane.waiting();
        }
        let job = jobs.pop_wait();
        if let Some(lane) = beat {
            lane.awake();
        }
        let Some((token, mut conn)) = job else { return };
        let phase =
            run_requests(&mut conn, &mut shared, ctx, false).unwrap_or(Phase::Writing(After::KeepAlive));
        done.push((token, conn, phase));
        let _ = nix::unistd::write(wake, b"!");
    }
}
