//! The `--threads N` pool of an event worker: app calls run on pool threads, so a slow app never
//! stalls the loop; the loop hands a connection with a complete request over and takes it back.

use crate::http::conn::After;
use crate::http::parse::parse_head;
use crate::worker::Context;
use crate::worker::connection::Shared;
use nix::sys::epoll::{EpollEvent, EpollFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

use super::{Conn, Loop, Phase, run_requests};

impl Loop<'_, '_> {
    /// Hands a connection with a complete head to the pool (a partial head waits here for more bytes;
    /// a malformed one is answered here). The slot stays reserved until the connection comes back.
    pub(super) fn dispatch(&mut self, token: usize) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        // Only whether a whole head is here: the pool thread's exchange receives it (and refuses it).
        let parsed = parse_head(conn.rbuf.data(), &self.ctx.settings.limits, self.shared.head_mut());
        if let Ok(None) = parsed {
            return;
        }
        let Some(conn) = self.conns[token].take() else { return };
        let _ = self.epoll.delete(conn.stream.as_fd());
        let Some(pool) = &self.pool else { return };
        if let Err(returned) = pool.jobs.send((token, conn)) {
            // The pool is gone (the worker is exiting): drop the connection.
            drop(returned);
            self.free.push(token);
            self.live -= 1;
        }
    }

    /// Takes back the connections the pool has finished with and writes their output.
    pub(super) fn returned(&mut self) {
        let mut byte = [0u8; 64];
        let Some(pool) = &mut self.pool else { return };
        while matches!(std::io::Read::read(&mut pool.wake, &mut byte), Ok(n) if n > 0) {}
        let back: Vec<(usize, Conn, Phase)> = pool.done.try_iter().collect();
        for (token, mut conn, phase) in back {
            conn.writing = false;
            conn.phase = phase;
            conn.start_pacing(Instant::now());
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
            if self.epoll.add(conn.stream.as_fd(), EpollEvent::new(flags, token as u64)).is_err() {
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
    jobs: &Mutex<Receiver<(usize, Conn)>>,
    done: Sender<(usize, Conn, Phase)>,
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
        let job = jobs.lock().map_err(|_| ()).and_then(|rx| rx.recv().map_err(|_| ()));
        if let Some(lane) = beat {
            lane.awake();
        }
        let Ok((token, mut conn)) = job else { return };
        let phase =
            run_requests(&mut conn, &mut shared, ctx, false).unwrap_or(Phase::Writing(After::KeepAlive));
        if done.send((token, conn, phase)).is_err() {
            return;
        }
        let _ = nix::unistd::write(wake, b"!");
    }
}

/// The loop's side of the app-call pool.
pub(super) struct Pool {
    pub(super) jobs: Sender<(usize, Conn)>,
    pub(super) done: Receiver<(usize, Conn, Phase)>,
    pub(super) wake: std::fs::File,
}
