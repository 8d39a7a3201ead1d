//! Accepting connections on the event loop: watching the listeners (with `EPOLLEXCLUSIVE`, and not
//! at the connection limit or while stopping), taking one connection per wake-up, and giving each a
//! slot in the connection slab.
//!
//! Not here: what a connection does once in the slab (`event`).

use crate::app::ConnInfo;
use crate::http;
use crate::net::Stream;
use crate::worker::describe_connection;
use crate::worker::pace::Pace;
use nix::sys::epoll::{EpollEvent, EpollFlags};
use std::os::fd::AsFd;
use std::time::Instant;

use super::{ACCEPTS_PER_WAKE, Conn, Handoff, LISTENER, Loop, Phase, ReadBuf};

impl Loop<'_, '_> {
    /// Registers or removes the listeners (at the connection limit, and when stopping).
    pub(super) fn set_accepting(&mut self, on: bool) {
        if on == self.accepting || (on && self.stopping) {
            return;
        }
        for (i, l) in self.listeners.iter().enumerate() {
            let result = if on {
                // One connection wakes one waiting worker, not every worker (no thundering herd).
                let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE;
                self.epoll.add(l.as_fd(), EpollEvent::new(flags, LISTENER + i as u64))
            } else {
                self.epoll.delete(l.as_fd())
            };
            if let Err(e) = result {
                tracing::error!("cannot {} listener {i}: {e}", if on { "watch" } else { "unwatch" });
            }
        }
        self.accepting = on;
    }

    pub(super) fn accept(&mut self, i: usize) {
        // One connection per wake-up (nginx's `multi_accept off`): with EPOLLEXCLUSIVE the kernel wakes
        // one idle worker per new connection, so taking a whole burst here would pile it on this worker.
        for _ in 0..ACCEPTS_PER_WAKE {
            if self.live >= self.max_conns || self.stopping {
                break;
            }
            match self.listeners[i].accept() {
                Ok(Some((stream, peer))) => {
                    if let Some(lane) = self.ctx.lane(0) {
                        lane.accepted();
                    }
                    let Some(stream) = crate::worker::secure(stream, self.ctx) else { continue };
                    let mut info = ConnInfo {
                        worker_id: self.id,
                        flags: self.flags,
                        url_scheme: stream.url_scheme(),
                        ..ConnInfo::default()
                    };
                    describe_connection(&mut info, &self.locals[i], peer);
                    self.add(stream, info);
                }
                Ok(None) => break,
                Err(e) if crate::net::out_of_resources(&e) => {
                    tracing::error!("accept failed: {e}; pausing accepts");
                    // Stop watching the listener until the next sweep, instead of spinning on it.
                    self.set_accepting(false);
                    break;
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    break;
                }
            }
        }
        if self.live >= self.max_conns {
            self.set_accepting(false);
        }
    }

    pub(super) fn add(&mut self, stream: Stream, info: ConnInfo) {
        let token = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        if let Err(e) = self.epoll.add(stream.as_fd(), EpollEvent::new(flags, token as u64)) {
            tracing::error!("cannot watch a connection: {e}");
            self.free.push(token);
            return;
        }
        self.conns[token] = Some(Conn {
            stream,
            rbuf: ReadBuf::unallocated(),
            out: Vec::new(),
            info,
            phase: if self.ctx.settings.proxy_protocol { Phase::Proxy } else { Phase::Idle },
            // A new connection gets the head timeout for its first byte, as the blocking classes do.
            deadline: Instant::now() + self.ctx.settings.header_timeout,
            writing: false,
            proto: http::conn::Conn::default(),
            fresh: true,
            opening: self.ctx.settings.http2.is_some(),
            parked: None,
            gather: None,
            handoff: Handoff::None,
            pace: Pace::default(),
            moved: 0,
            paced: Instant::now(),
        });
        self.live += 1;
        if self.ctx.settings.proxy_protocol {
            // A sender outside --proxy-allow-ips is answered at once.
            self.drive(token);
        }
    }
}
