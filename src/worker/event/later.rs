//! The event loop's pending HTTP calls (ABI 1.3): a connection whose async app returned `RG_PENDING`
//! stays in [`Phase::Pending`] while the app goes on through host calls. Here the loop applies what
//! those calls recorded ([`connection::advance`]), writes it out, tells the app when it may write or
//! read again, and tells it when the client hangs up; and it runs what other threads `post`ed.
//!
//! No borrow of a pending call is held while the app runs: its host calls borrow it themselves.
//!
//! Not here: the call's rules (`connection::pending`).

use crate::worker::connection::{self, Advanced, Io, LOW_WATER, Pending};
use crate::worker::websocket;
use nix::sys::epoll::{EpollEvent, EpollFlags};
use rustgun_abi::{RG_EV_DISCONNECT, RG_EV_READABLE, RG_EV_WRITABLE, RgCall};
use std::cell::RefCell;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Instant;

use super::{Loop, Phase, send};

/// Rounds of [`Loop::settle`] per turn: events delivered while settling may touch more calls, and
/// an app that answers every event with another write still lets the loop move on.
const SETTLE_ROUNDS: usize = 64;

impl Loop<'_, '_> {
    /// The app at `token` returned `RG_PENDING`: its call learns its token, and what it wrote during
    /// `handle` goes out.
    pub(super) fn begin_pending(&mut self, token: usize) {
        let Some(pending) = self.shared.pending.take() else { return self.close(token) };
        let Some(conn) = self.conns[token].as_mut() else { return };
        pending.borrow_mut().token = token;
        conn.phase = Phase::Pending;
        conn.start_pacing(Instant::now());
        if self.pending.len() <= token {
            self.pending.resize(token + 1, None);
        }
        self.pending[token] = Some(pending);
        self.pending_io(token);
    }

    /// Readiness of a pending connection: body bytes the app waits for came, the client hung up, or
    /// its queue can take more.
    pub(super) fn on_pending(&mut self, token: usize, events: EpollFlags) {
        if events.contains(EpollFlags::EPOLLIN) {
            // Read first: a client may send the rest of its body and hang up in one go.
            self.advance(token);
        }
        let gone = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP;
        if events.intersects(gone) {
            return self.close(token);
        }
        self.pending_io(token);
    }

    /// Writes what the socket takes of a pending connection's queue, owes the app `RG_EV_WRITABLE`
    /// once it drained, and watches for the rest, for a hang-up, and for body bytes while the app
    /// waits for them (never for requests: a pipelined one waits for this response).
    pub(super) fn pending_io(&mut self, token: usize) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        let Some(pending) = self.pending.get(token).and_then(Option::clone) else { return };
        if send(conn).is_err() {
            return self.close(token);
        }
        let left = conn.out.len();
        let (call, reading) = {
            let mut p = pending.borrow_mut();
            p.set_queued(left);
            let owed = p.owes_writable && left <= LOW_WATER;
            if owed {
                p.owes_writable = false;
            }
            (owed.then_some(p.call), p.wants_input())
        };
        let mut flags = EpollFlags::EPOLLRDHUP;
        if reading {
            flags |= EpollFlags::EPOLLIN;
        }
        if left > 0 {
            flags |= EpollFlags::EPOLLOUT;
        }
        let mut event = EpollEvent::new(flags, token as u64);
        if self.epoll.modify(conn.stream.as_fd(), &mut event).is_err() {
            return self.close(token);
        }
        conn.writing = left > 0;
        if let Some(call) = call {
            self.tell(call, RG_EV_WRITABLE);
        }
    }

    /// Applies what host calls recorded on the pending call at `token`.
    fn advance(&mut self, token: usize) {
        let settings = self.ctx.settings;
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else { return };
        let Some(pending) = self.pending.get(token).and_then(Option::clone) else { return };
        if conn.out.capacity() == 0 {
            conn.out = self.outs.take();
        }
        let mut io = Io::new(&mut conn.stream, &mut conn.rbuf, &mut conn.out, settings).queued();
        let advanced =
            connection::advance(&pending, (&mut io, &mut conn.proto), &mut self.shared, &conn.info, self.ctx);
        let dead = io.is_dead();
        conn.moved += io.transferred();
        let call = pending.borrow().call;
        match advanced {
            _ if dead => self.close(token),
            Advanced::Waiting { readable } => {
                self.pending_io(token);
                if readable {
                    self.tell(call, RG_EV_READABLE);
                }
            }
            Advanced::Done(after) => {
                self.pending[token] = None;
                crate::app::calls::end(call);
                conn.phase = super::Phase::Writing(after);
                conn.start_pacing(Instant::now());
                self.rewatch(token);
                self.drive(token);
            }
            Advanced::Upgraded(link) => {
                self.pending[token] = None;
                crate::app::calls::rebind(call, &(link.clone() as Rc<RefCell<dyn crate::app::host::Socket>>));
                self.shared.upgraded = Some(link);
                conn.phase = Phase::Upgraded;
                self.adopt(token);
            }
            Advanced::Parked(parked) => {
                self.pending[token] = None;
                crate::app::calls::end(call);
                conn.parked = Some(parked);
                conn.phase = Phase::Streaming;
                conn.start_pacing(Instant::now());
                self.rewatch(token);
                self.want_write(token, true);
            }
        }
    }

    /// A connection leaves [`Phase::Pending`]: it is watched for reading again, as every other phase
    /// expects to find it unless it is writing.
    fn rewatch(&mut self, token: usize) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        conn.writing = false;
        let mut event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, token as u64);
        if self.epoll.modify(conn.stream.as_fd(), &mut event).is_err() {
            self.close(token);
        }
    }

    /// A pending call whose connection is being closed: an app that has not completed it hears
    /// `RG_EV_DISCONNECT`, its last event, and the request is counted as the client's (499).
    pub(super) fn abandon(&mut self, pending: Rc<RefCell<Pending>>) {
        let (call, complete, started) = {
            let p = pending.borrow();
            (p.call, p.is_complete(), p.started())
        };
        if !complete {
            self.ctx.count_request(self.ctx.lane(self.shared.lane), 499, started);
            self.tell(call, RG_EV_DISCONNECT);
        }
        crate::app::calls::end(call);
    }

    /// Gives the app an event with no data, with no borrow held.
    fn tell(&mut self, call: *mut RgCall, kind: u32) {
        let _dispatching = crate::app::wake::dispatching();
        self.ctx.app.on_event(call, kind, 0, &[]);
    }

    /// Writes out what host calls queued on pending calls and WebSockets since the loop last looked.
    pub(super) fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            let (calls, links) = (connection::touched(), websocket::touched());
            let streams = self.settle_h2();
            if calls.is_empty() && links.is_empty() && !streams {
                return;
            }
            for token in calls {
                self.advance(token);
            }
            for index in links {
                self.flush(index);
            }
        }
    }

    /// Runs what other threads posted.
    pub(super) fn run_posted(&mut self) {
        let _dispatching = crate::app::wake::dispatching();
        for posted in crate::app::wake::drain(self.posted.as_fd()) {
            posted.run();
        }
    }
}
