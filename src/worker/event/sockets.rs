//! The event loop's WebSockets (ABI 1.3): a connection whose app accepted a WebSocket leaves the
//! HTTP connections for this slab of [`Link`]s, under tokens of its own ([`SOCKET`] + index). Here
//! the loop reads frames into the link, delivers what arrives to the app's `on_event`, writes what
//! the app queued, keeps the pings' time, and closes each link exactly once, telling the app.
//!
//! No borrow of a link is held while the app runs: the app's host calls borrow it themselves.
//!
//! Not here: the protocol (`http::ws`), the link's rules (`worker::websocket`).

use crate::worker::connection::LOW_WATER;
use crate::worker::websocket::{self, Delivery, Link};
use nix::sys::epoll::{EpollEvent, EpollFlags};
use rustgun_abi::{RG_EV_WRITABLE, RG_EV_WS_OPEN};
use std::cell::RefCell;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Instant;

use super::{Loop, READ_BATCH};

/// Tokens of links: `SOCKET + index` (below the listeners' tokens).
pub(super) const SOCKET: u64 = 1 << 61;

/// Close code and reason a stopping worker sends every open WebSocket.
const GOING_AWAY: (u16, &str) = (crate::http::ws::close::GOING_AWAY, "server shutting down");

impl Loop<'_, '_> {
    /// Moves the connection at `token`, whose app just accepted a WebSocket, into a link: its stream,
    /// its unread bytes and its queued 101 go along. Then the app hears that the WebSocket is open.
    pub(super) fn adopt(&mut self, token: usize) {
        let Some(mut conn) = self.conns[token].take() else { return };
        self.free.push(token);
        let Some(link) = self.shared.upgraded.take() else { return self.live -= 1 };
        let index = self.free_sockets.pop().unwrap_or_else(|| {
            self.sockets.push(None);
            self.interest.push((false, false));
            self.sockets.len() - 1
        });
        {
            let mut l = link.borrow_mut();
            l.token = index;
            l.out = std::mem::take(&mut conn.out);
            l.rbuf = std::mem::replace(&mut conn.rbuf, crate::worker::connection::ReadBuf::unallocated());
            let mut event =
                EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, SOCKET + index as u64);
            if self.epoll.modify(conn.stream.as_fd(), &mut event).is_err() {
                drop(l);
                self.free_sockets.push(index);
                self.live -= 1;
                return;
            }
            l.stream = Some(conn.stream);
        }
        self.sockets[index] = Some(link.clone());
        // As registered just above: readable, not writable.
        self.interest[index] = (false, true);
        self.deliver(&link, RG_EV_WS_OPEN, 0, &[]);
        // Frames the client sent right behind its handshake are already here.
        self.on_link(index, true);
    }

    /// Readiness of link `index`: read what arrived, deliver it, write what is queued.
    pub(super) fn on_socket(&mut self, index: usize, events: EpollFlags) {
        if events.intersects(EpollFlags::EPOLLERR) {
            return self.lose(index);
        }
        self.on_link(
            index,
            events.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP),
        );
    }

    fn on_link(&mut self, index: usize, readable: bool) {
        let Some(link) = self.sockets.get(index).and_then(Option::clone) else { return };
        // TLS may hold decrypted bytes epoll cannot see: keep going while the stream says so.
        for _ in 0..16 {
            if !readable || !link.borrow().wants_input() {
                break;
            }
            match self.read_link(&link) {
                Ok(true) => self.deliver_received(&link),
                // EOF or a failed read: what was already read is delivered first.
                Ok(false) | Err(()) => {
                    self.deliver_received(&link);
                    return self.lose(index);
                }
            }
            let more = link.borrow().stream.as_ref().is_some_and(|s| s.has_buffered_input());
            if !more || self.sockets[index].is_none() {
                break;
            }
        }
        // Bytes that came with the handshake, or that waited while the queue was full.
        self.deliver_received(&link);
        self.flush(index);
    }

    /// Reads into the link's buffer; `Ok(false)` at EOF.
    fn read_link(&mut self, link: &Rc<RefCell<Link>>) -> Result<bool, ()> {
        let mut guard = link.borrow_mut();
        let l = &mut *guard;
        if !l.rbuf.has_storage() {
            l.rbuf.give_storage(self.storage.take());
        }
        let stream = l.stream.as_mut().ok_or(())?;
        loop {
            let spare = l.rbuf.spare();
            let offered = spare.len();
            match stream.try_read(spare) {
                Ok(Some(0)) => return Ok(false),
                Ok(Some(n)) => {
                    l.rbuf.commit(n);
                    if n < offered || l.rbuf.data().len() >= READ_BATCH {
                        return Ok(true);
                    }
                }
                Ok(None) => return Ok(true),
                Err(_) => return Err(()),
            }
        }
    }

    /// Delivers every message decoded from what was read, and the close if one came.
    fn deliver_received(&mut self, link: &Rc<RefCell<Link>>) {
        loop {
            let delivery = link.borrow_mut().receive(Instant::now());
            match delivery {
                None => break,
                Some(delivery) => {
                    let closed = matches!(delivery, Delivery::Closed(_));
                    self.hand_over(link, delivery);
                    if closed {
                        break;
                    }
                }
            }
        }
        if let Some(storage) = link.borrow_mut().rbuf.take_storage() {
            self.storage.keep(storage);
        }
    }

    /// Gives the app one delivery: a message (then its buffer goes back to the session), or the close
    /// that ends the call.
    fn hand_over(&mut self, link: &Rc<RefCell<Link>>, delivery: Delivery) {
        let (kind, code) = websocket::event_of(&delivery);
        if matches!(delivery, Delivery::Closed(_)) {
            let (ended, reason) = {
                let l = link.borrow();
                (l.ended, l.reason().to_string())
            };
            if !ended {
                link.borrow_mut().ended = true;
                self.deliver(link, kind, code, reason.as_bytes());
                crate::app::calls::end(link.borrow().call);
            }
            return;
        }
        let (message, ended) = {
            let mut l = link.borrow_mut();
            (l.take_message(), l.ended)
        };
        if !ended {
            self.deliver(link, kind, code, &message);
        }
        link.borrow_mut().restore(message);
    }

    /// Calls the app's `on_event` with no borrow of any link held, then writes what its host calls
    /// queued on any link.
    fn deliver(&mut self, link: &Rc<RefCell<Link>>, kind: u32, code: u32, data: &[u8]) {
        let call = link.borrow().call;
        self.ctx.app.on_event(call, kind, code, data);
        for index in websocket::touched() {
            self.flush(index);
        }
    }

    /// Writes link `index`'s queue as far as the socket takes it and watches for what comes next;
    /// closes the link once its protocol is over and its queue written.
    pub(super) fn flush(&mut self, index: usize) {
        let Some(link) = self.sockets.get(index).and_then(Option::clone) else { return };
        let (written, owes, wants_input, closed) = {
            let mut guard = link.borrow_mut();
            let l = &mut *guard;
            let Some(stream) = l.stream.as_mut() else { return };
            // TLS keeps ciphertext of its own: it must be gone too.
            let written = stream.write_some(&mut l.out).and_then(|all| Ok(all && stream.try_flush()?));
            let drained = l.out.len() <= LOW_WATER;
            (written, l.owes_writable && drained, l.wants_input(), l.is_closed())
        };
        let Ok(all) = written else { return self.lose(index) };
        if all && closed {
            return self.retire(index);
        }
        if owes && !closed {
            link.borrow_mut().owes_writable = false;
            self.deliver(&link, RG_EV_WRITABLE, 0, &[]);
        }
        self.watch(index, !all, wants_input);
    }

    fn watch(&mut self, index: usize, write: bool, read: bool) {
        let Some(link) = self.sockets.get(index).and_then(Option::clone) else { return };
        let want = (write, read);
        if self.interest.get(index) == Some(&want) {
            return;
        }
        let mut flags = EpollFlags::EPOLLRDHUP;
        if write {
            flags |= EpollFlags::EPOLLOUT;
        }
        if read {
            flags |= EpollFlags::EPOLLIN;
        }
        let l = link.borrow();
        let Some(stream) = l.stream.as_ref() else { return };
        let mut event = EpollEvent::new(flags, SOCKET + index as u64);
        let ok = self.epoll.modify(stream.as_fd(), &mut event).is_ok();
        drop(l);
        if ok {
            self.interest[index] = want;
        } else {
            self.lose(index);
        }
    }

    /// The connection is gone (or given up on) without a close handshake: the app hears 1006.
    fn lose(&mut self, index: usize) {
        let Some(link) = self.sockets.get(index).and_then(Option::clone) else { return };
        let delivery = link.borrow_mut().lost();
        self.hand_over(&link, delivery);
        self.retire(index);
    }

    /// Closes link `index` and frees its token (the handle went stale when the app was told).
    fn retire(&mut self, index: usize) {
        let Some(link) = self.sockets[index].take() else { return };
        {
            let mut l = link.borrow_mut();
            l.stream = None;
            l.out = Vec::new();
            if let Some(storage) = l.rbuf.take_storage() {
                self.storage.keep(storage);
            }
        }
        crate::app::calls::end(link.borrow().call);
        self.free_sockets.push(index);
        self.live -= 1;
        if !self.accepting && self.live < self.max_conns {
            self.set_accepting(true);
        }
    }

    /// Every tick: pings silent links, closes those whose ping or close went unanswered.
    pub(super) fn sweep_sockets(&mut self, now: Instant) {
        for index in 0..self.sockets.len() {
            let Some(link) = self.sockets[index].clone() else { continue };
            let delivery = link.borrow_mut().tick(now);
            match delivery {
                Some(Delivery::Closed(code)) if code == crate::http::ws::close::ABNORMAL => self.lose(index),
                Some(delivery) => {
                    self.hand_over(&link, delivery);
                    self.flush(index);
                }
                None => self.flush(index),
            }
        }
    }

    /// The worker stops: every open WebSocket is sent 1001 and has the close wait to answer.
    pub(super) fn stop_sockets(&mut self) {
        let now = Instant::now();
        for index in 0..self.sockets.len() {
            let Some(link) = self.sockets[index].clone() else { continue };
            link.borrow_mut().start_close(GOING_AWAY.0, GOING_AWAY.1, now);
            self.flush(index);
        }
    }
}
