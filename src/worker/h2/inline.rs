//! Running one stream's app on the loop ([`run`]): the request view from the stream's head, the
//! call's handle, and the [`Inline`] exchange its host calls reach while `handle` runs.
//!
//! A synchronous app's `write` hands each block to the connection before the app goes on (no
//! delay), and waits on the client only once [`HIGH_WATER`] of its body is unsent on this stream,
//! reading the client's frames meanwhile (its WINDOW_UPDATEs, other streams' requests, which wait
//! their turn), as long as the client keeps the minimum rate. An async app never waits: its `write`
//! answers `RG_E_AGAIN` there, and its call goes on as the stream's [`StreamCall`] after `handle`.
//!
//! Not here: what the calls record ([`super::stream`]).

use super::Session;
use super::stream::{SPILL_CAP, StreamCall};
use crate::app::calls::Registration;
use crate::app::host::{CallSlot, Exchange, HOST, Socket};
use crate::app::{ConnInfo, HostError, RequestView};
use crate::http::h2::ErrorCode;
use crate::net::Stream;
use crate::worker::Context;
use crate::worker::connection::{HIGH_WATER, ReadBuf, Shared, admit};
use crate::worker::pace::{self, Pace};
use nix::poll::PollFlags;
use rustgun_abi::{RG_ERROR, RG_OK, RG_PENDING, RgBodySource, RgHeader};
use std::cell::RefCell;
use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::time::Instant;

/// The connection's socket and read buffer, for a synchronous app's waits.
pub(super) struct Link<'a> {
    pub socket: &'a mut Stream,
    pub rbuf: &'a mut ReadBuf,
}

/// A stream's exchange while its app's `handle` runs.
struct Inline<'a, 'c> {
    call: &'a Rc<RefCell<StreamCall>>,
    session: &'a mut Session,
    link: Link<'a>,
    view: &'a mut RequestView,
    info: &'a ConnInfo,
    ctx: &'a Context<'c>,
    /// The connection failed under a wait: nothing more can be sent on it.
    dead: bool,
}

/// Runs the app of the stream `call`: refuses it as HTTP/1.1's exchange would (a proxy's bad
/// headers, a path outside the root), else calls `handle`; what `handle` returned completes the call,
/// unless an async app goes on with it (`RG_PENDING`).
pub(super) fn run(
    session: &mut Session,
    call: &Rc<RefCell<StreamCall>>,
    link: Link<'_>,
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'_>,
) {
    let view = &mut shared.view;
    let mut request = {
        let mut c = call.borrow_mut();
        c.running = true;
        let c = &mut *c;
        if let Err((status, why)) = admit(&mut c.head, view, info, ctx) {
            tracing::warn!("Invalid request from ip={}: {why} ({status})", info.peer_or_unix());
            c.refused(status);
            return;
        }
        if let Some(lane) = ctx.lane(0) {
            lane.begin(c.head.method(), c.head.target(), c.head.version.as_bytes());
        }
        // The view points into the call's head, which does not change while the call lives.
        view.build(&c.head, info, &HOST, std::ptr::null_mut())
    };
    let is_async = ctx.app.lib.is_async();
    let mut inline = Inline { call, session, link, view, info, ctx, dead: false };
    let (code, kept) = {
        let mut slot: CallSlot<'_> = &mut inline;
        let live = Registration::new(&mut slot);
        request.call = live.handle();
        (ctx.app.handle(&request), live.keep())
    };
    let mut c = call.borrow_mut();
    let code = match code {
        RG_PENDING if c.completed.is_some() => c.completed.unwrap_or(RG_OK),
        RG_PENDING if is_async => {
            c.call = kept.handle();
            drop(c);
            kept.outlive(&(call.clone() as Rc<RefCell<dyn Socket>>));
            return;
        }
        RG_PENDING => {
            tracing::error!(
                "app returned RG_PENDING but is not an async app on the event loop; answering 500"
            );
            RG_ERROR
        }
        code => code,
    };
    drop(kept);
    c.completed = Some(code);
}

impl Inline<'_, '_> {
    /// Moves the stream's recorded response into frames and writes what the socket takes now.
    /// A body that has reached its `Content-Length` is complete: its frames wait for the end of the
    /// stream, which follows when `handle` returns (one write, not two, for the usual response).
    fn send(&mut self) -> Result<(), HostError> {
        self.session.pump(self.call, self.info, self.ctx);
        if self.call.borrow().body_complete() {
            return if self.dead { Err(HostError::Closed) } else { Ok(()) };
        }
        if self.dead || self.link.socket.write_some(self.session.output()).is_err() {
            self.dead = true;
            return Err(HostError::Closed);
        }
        Ok(())
    }

    /// Waits while `blocked` says so of the stream (its unsent body past [`HIGH_WATER`], a file before
    /// a write): reads the client's frames
    /// (its windows opening) and writes the connection's output, as long as the client moves at the
    /// minimum rate; a client that does not has the stream reset (the connection goes on).
    fn wait_for_window(&mut self, blocked: impl Fn(&StreamCall) -> bool) -> Result<(), HostError> {
        let rule = self.ctx.settings.min_rate;
        let id = self.call.borrow().id;
        let mut pace = Pace::default();
        while blocked(&self.call.borrow()) {
            if !self.session.proto.is_open(id) || self.session.closing {
                return Err(HostError::Closed);
            }
            let events = if self.session.output().is_empty() {
                PollFlags::POLLIN
            } else {
                PollFlags::POLLIN | PollFlags::POLLOUT
            };
            let began = Instant::now();
            let waited = self.link.socket.wait(events, began + pace.left(rule), None);
            let before = self.session.output().len();
            let read = if waited.is_ok() { self.read()? } else { 0 };
            self.send()?;
            let written = before.saturating_sub(self.session.output().len());
            if pace.record(began.elapsed(), (read + written) as u64, rule) {
                pace::dropped(
                    self.ctx.lane(0),
                    rule,
                    "taking an HTTP/2 stream's response",
                    self.info.peer_ip,
                );
                self.session.proto.reset(id, ErrorCode::Cancel);
                return Err(HostError::Closed);
            }
        }
        Ok(())
    }

    /// Reads what the client sent and acts on its frames; the count of bytes read.
    fn read(&mut self) -> Result<usize, HostError> {
        let mut total = 0;
        loop {
            match self.link.socket.try_read(self.link.rbuf.spare()) {
                Ok(Some(0)) | Err(_) => {
                    self.dead = true;
                    self.session.closing = true;
                    return Err(HostError::Closed);
                }
                Ok(Some(n)) => {
                    self.link.rbuf.commit(n);
                    total += n;
                    let used = self.session.receive(self.link.rbuf.data(), self.info, self.ctx);
                    self.link.rbuf.consume(used);
                }
                Ok(None) => return Ok(total),
            }
        }
    }
}

impl Exchange for Inline<'_, '_> {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        self.call.borrow_mut().read_body(buf)
    }

    fn start_response(
        &mut self,
        status: u32,
        reason: &[u8],
        headers: &[RgHeader],
        replace: bool,
    ) -> Result<(), HostError> {
        self.call.borrow_mut().start_response(status, reason, headers, replace)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), HostError> {
        if self.ctx.app.lib.is_async() {
            return self.call.borrow_mut().write(data);
        }
        // A file handed over before goes out first.
        self.wait_for_window(|c| c.sending_file())?;
        self.call.borrow_mut().push(data)?;
        self.send()?;
        self.wait_for_window(|c| c.unsent() >= HIGH_WATER + SPILL_CAP)
    }

    fn set_body(&mut self, source: RgBodySource) -> Result<(), HostError> {
        self.call.borrow_mut().set_body(source)
    }

    fn environ(&mut self) -> Result<&[RgHeader], HostError> {
        let c = self.call.borrow();
        Ok(self.view.environ(&c.head, self.info))
    }

    fn send_file(&mut self, file: BorrowedFd<'_>, offset: u64, len: u64) -> Result<u64, HostError> {
        let sent = self.call.borrow_mut().send_file(file, offset, len)?;
        if !self.ctx.app.lib.is_async() {
            // A synchronous app may close the file once this returns: it is duplicated, and what
            // is sent of it goes out as the windows open, after `handle` too.
            self.send()?;
        }
        Ok(sent)
    }

    fn trailers(&mut self, headers: &[RgHeader]) -> Result<(), HostError> {
        self.call.borrow_mut().trailers(headers)
    }

    fn complete(&mut self, status: i32) -> Result<(), HostError> {
        if !self.ctx.app.lib.is_async() {
            return Err(HostError::State("not an async app on the event loop"));
        }
        self.call.borrow_mut().complete(status)
    }
}
