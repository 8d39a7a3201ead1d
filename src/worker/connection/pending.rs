//! An HTTP call that outlived `handle` (ABI 1.3): an async app returned `RG_PENDING` and goes on with
//! the response later, from `on_event`, a posted function or its own loop's callbacks.
//!
//! The app's host calls reach a [`Pending`] (the call's handle names it weakly) and never the
//! connection: `start_response` records the head (by the same rule as during `handle`), `write`
//! queues bytes in an outbox, `read_body` takes decoded bytes from an inbox, `complete` records the
//! end; each marks the call [`touched`]. The loop then [`advance`]s it with the connection in hand,
//! through the same [`Call`] that serves `handle`: framing, logging and keep-alive stay one code path.
//!
//! Bounded: `write` refuses (`RG_E_AGAIN`, then `RG_EV_WRITABLE`) once the connection's queue and the
//! outbox hold [`HIGH_WATER`]; the inbox holds at most [`INBOX`] decoded bytes, refilled from the
//! gathered body (read buffer and spool) as the app takes them.
//!
//! Not here: epoll and the events' delivery (`event`), the response rules (`Call`).

use super::record::{NO_HEAD, record_head, record_trailers};
use super::{Call, CallState, HIGH_WATER, Io, NOT_WEBSOCKET, Parked, Reply, Shared};
use crate::app::host::{Exchange, Socket};
use crate::app::{ConnInfo, HostError};
use crate::http;
use crate::http::conn::After;
use crate::http::parse::RequestHead;
use crate::http::response::ResponseHead;
use crate::http::upgrade::Opening;
use crate::worker::Context;
use crate::worker::gather::Spool;
use crate::worker::websocket::Link;
use rustgun_abi::{RgCall, RgHeader, RgStr};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// Decoded body bytes a pending call holds for the app at most.
pub const INBOX: usize = 64 * 1024;

thread_local! {
    /// Connections whose pending call host calls touched since the loop last looked.
    static TOUCHED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The tokens of the connections whose pending calls were touched (emptied).
pub fn touched() -> Vec<usize> {
    TOUCHED.with_borrow_mut(std::mem::take)
}

/// A WebSocket acceptance recorded on a pending call: the subprotocol and the app's headers.
type Acceptance = (Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

/// An HTTP exchange whose response goes on after `handle` returned `RG_PENDING`.
pub struct Pending {
    /// The call's handle, named in every event.
    pub call: *mut RgCall,
    /// The connection's token in the event loop.
    pub token: usize,
    head: RequestHead,
    resp: ResponseHead,
    state: CallState,
    started: Instant,
    /// The gathered body's spooled part, while the exchange is not being advanced.
    spool: Option<Spool>,
    /// A `write` was taken: the head is fixed.
    writing: bool,
    outbox: Vec<u8>,
    /// Decoded body bytes for `read_body`, the part already read, and how the body ended.
    inbox: Vec<u8>,
    read: usize,
    body_end: Option<Result<(), ()>>,
    /// The status the app completed the call with.
    completed: Option<i32>,
    /// The connection's queue as of the last advance.
    queued: usize,
    /// The app accepted the WebSocket the request asks for: the subprotocol and its headers.
    upgrade: Option<Acceptance>,
    /// `write` answered `RG_E_AGAIN`: `RG_EV_WRITABLE` is owed once the queue drains.
    pub owes_writable: bool,
    /// `read_body` answered `RG_E_AGAIN`: `RG_EV_READABLE` is owed once bytes are ready.
    owes_readable: bool,
}

/// A host call on a pending call the app completed already.
const COMPLETED: HostError = HostError::State("the call is complete");

/// What [`advance`] left the exchange in.
pub enum Advanced {
    /// Still the app's: `readable` when an owed `RG_EV_READABLE` can be delivered now.
    Waiting { readable: bool },
    /// The response is complete: what the connection does next.
    Done(After),
    /// Completed with a pull-mode body still to produce ([`super::resume`]).
    Parked(Box<Parked>),
    /// The app accepted the WebSocket: the 101 is queued, and the connection now belongs to the link.
    Upgraded(Rc<RefCell<Link>>),
}

impl Pending {
    /// The request's head and the response's, which the exchange lent the call while `handle` ran.
    pub(super) fn keep_heads(&mut self, head: RequestHead, resp: ResponseHead) {
        (self.head, self.resp) = (head, resp);
    }

    /// When the request's head arrived.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Whether the app ended the call (`complete`).
    pub fn is_complete(&self) -> bool {
        self.completed.is_some()
    }

    /// Whether the app waits for body bytes that only the client can bring: the loop reads for it.
    pub fn wants_input(&self) -> bool {
        self.owes_readable && self.read == self.inbox.len() && self.body_end.is_none()
    }

    /// The connection's queue now holds `queued` bytes.
    pub fn set_queued(&mut self, queued: usize) {
        self.queued = queued;
    }

    fn touch(&self) {
        TOUCHED.with_borrow_mut(|t| t.push(self.token));
        crate::app::wake::nudge();
    }
}

impl Exchange for Pending {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        if self.read < self.inbox.len() {
            let n = buf.len().min(self.inbox.len() - self.read);
            buf[..n].copy_from_slice(&self.inbox[self.read..self.read + n]);
            self.read += n;
            return Ok(n);
        }
        match self.body_end {
            Some(Ok(())) => Ok(0),
            Some(Err(())) => Err(HostError::Body),
            None => {
                self.owes_readable = true;
                self.touch();
                Err(HostError::Again)
            }
        }
    }

    fn start_response(
        &mut self,
        status: u32,
        reason: &[u8],
        headers: &[RgHeader],
        replace: bool,
    ) -> Result<(), HostError> {
        if self.completed.is_some() {
            return Err(COMPLETED);
        }
        if self.writing {
            return Err(HostError::State("the body has started"));
        }
        record_head(&mut self.state.reply, &mut self.resp, &self.head, (status, reason, headers), replace)?;
        self.touch();
        Ok(())
    }

    fn accept_websocket(&mut self, subprotocol: &[u8], headers: &[RgHeader]) -> Result<(), HostError> {
        self.accept(subprotocol, headers)
    }

    fn trailers(&mut self, headers: &[RgHeader]) -> Result<(), HostError> {
        if self.completed.is_some() {
            return Err(COMPLETED);
        }
        record_trailers(&self.state.reply, &mut self.resp, headers)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), HostError> {
        if matches!(self.state.reply, Reply::None) {
            return Err(NO_HEAD);
        }
        if self.completed.is_some() {
            return Err(COMPLETED);
        }
        if data.is_empty() {
            return Ok(());
        }
        if self.queued + self.outbox.len() >= HIGH_WATER {
            self.owes_writable = true;
            return Err(HostError::Again);
        }
        self.outbox.extend_from_slice(data);
        self.writing = true;
        self.touch();
        Ok(())
    }
}

impl Pending {
    /// `accept_websocket` on a pending call: checked now, applied by the loop ([`advance`]).
    fn accept(&mut self, subprotocol: &[u8], headers: &[RgHeader]) -> Result<(), HostError> {
        if self.writing || self.completed.is_some() || !matches!(self.state.reply, Reply::None) {
            return Err(HostError::State("a response is under way"));
        }
        let opening = Opening::read(&self.head).ok_or(NOT_WEBSOCKET)?;
        if !subprotocol.is_empty() && !opening.offers_subprotocol(subprotocol) {
            return Err(HostError::Invalid);
        }
        // Copied: the upgrade is answered after this call.
        let headers = crate::app::host::lent_pairs(headers).map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        self.upgrade = Some((subprotocol.to_vec(), headers));
        self.touch();
        Ok(())
    }
}

impl Socket for Pending {
    fn end(&mut self, status: i32) {
        self.completed = Some(status);
        self.touch();
    }
}

impl Call<'_, '_, '_> {
    /// Decodes up to [`INBOX`] more body bytes into `inbox` (emptied first): how the body ended, when
    /// it did. It reads what the client has sent so far and never waits for more (`None` with what
    /// it got: the loop watches the socket while the app asks). The bytes
    /// pass through the thread's scratch buffer, so the inbox holds only what it got: a call without
    /// a body (a WebSocket's, an idle stream's) keeps no buffer while it lives.
    fn fill_inbox(&mut self, inbox: &mut Vec<u8>) -> Option<Result<(), ()>> {
        inbox.clear();
        let mut scratch = std::mem::take(self.scratch);
        if scratch.is_empty() {
            scratch.resize(super::READ_CHUNK, 0);
        }
        let end = loop {
            if inbox.len() >= INBOX {
                break None;
            }
            let want = scratch.len().min(INBOX - inbox.len());
            match self.read_body(&mut scratch[..want]) {
                Ok(0) => break Some(Ok(())),
                Ok(n) => inbox.extend_from_slice(&scratch[..n]),
                Err(HostError::Again) => break None,
                Err(_) => break Some(Err(())),
            }
        };
        *self.scratch = scratch;
        end
    }

    /// The exchange after `handle` returned `RG_PENDING`: the call goes on as a [`Pending`], with the
    /// first part of the body already decoded for it (the heads follow: [`Pending::keep_heads`]).
    pub(super) fn into_pending(self, call: *mut RgCall, started: Instant) -> Pending {
        // The body is read when the app asks for it (a 100 Continue goes out then too), so that a
        // client's upload waits in its own buffers, not the worker's, while the app is not reading.
        let body_end = match (self.proto.body_error(), self.proto.body_done()) {
            (Some(_), _) => Some(Err(())),
            (None, true) => Some(Ok(())),
            (None, false) => None,
        };
        let owes_readable = self.state.read_again;
        let spool = self.io.spool.take();
        let writing = matches!(self.state.reply, Reply::Streaming);
        let queued = self.io.out.len();
        let state = self.into_state();
        Pending {
            call,
            token: usize::MAX,
            head: RequestHead::default(),
            resp: ResponseHead::default(),
            state,
            started,
            spool,
            writing,
            outbox: Vec::new(),
            inbox: Vec::new(),
            read: 0,
            body_end,
            completed: None,
            queued,
            upgrade: None,
            owes_writable: false,
            owes_readable,
        }
    }
}

/// Applies what the app's host calls recorded on `pending` to its connection: the head and the body
/// bytes go out, the inbox is refilled when the app asked for more, and a completed call finishes
/// its response as one that completed in `handle` does.
pub(in crate::worker) fn advance<'a, 'c: 'a>(
    pending: &Rc<RefCell<Pending>>,
    (io, proto): (&mut Io<'a>, &mut http::conn::Conn),
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'c>,
) -> Advanced {
    io.beat = ctx.lane(shared.lane);
    let mut guard = pending.borrow_mut();
    let p = &mut *guard;
    io.gathered(p.spool.take());
    let state = std::mem::replace(&mut p.state, CallState::new());
    let mut call = Call::resumed((io, proto), (&p.head, &mut p.resp), state, shared, info, ctx);
    if !p.outbox.is_empty() {
        // A client gone mid-body leaves the call dead: the loop hears it from `is_dead`.
        let _ = call.send_body(&p.outbox);
        p.outbox.clear();
    }
    if p.owes_readable && p.read == p.inbox.len() && p.body_end.is_none() {
        p.read = 0;
        p.body_end = call.fill_inbox(&mut p.inbox);
    }
    if let Some((subprotocol, headers)) = p.upgrade.take() {
        let fields: Vec<RgHeader> = headers
            .iter()
            .map(|(n, v)| RgHeader { name: RgStr::from_bytes(n), value: RgStr::from_bytes(v) })
            .collect();
        if call.accept_websocket(&subprotocol, &fields).is_ok()
            && let Some(deflate) = call.state.upgrade.take()
        {
            call.switch_protocols(p.started);
            return Advanced::Upgraded(Rc::new(RefCell::new(Link::new(
                p.call,
                deflate,
                ctx.settings.websocket,
            ))));
        }
        // Checked when the app asked: only bad header bytes get here, which the app hears as a 500.
        p.completed = Some(rustgun_abi::RG_ERROR);
    }
    if let Some(code) = p.completed {
        if call.finish(code) {
            let after = call.conclude(p.started);
            shared.take_back_head(std::mem::take(&mut p.head));
            return Advanced::Done(after);
        }
        let state = call.into_state();
        return Advanced::Parked(Box::new(Parked {
            head: std::mem::take(&mut p.head),
            resp: std::mem::take(&mut p.resp),
            state,
            started: p.started,
        }));
    }
    p.state = call.into_state();
    p.spool = io.spool.take();
    p.queued = io.out.len();
    let readable = p.owes_readable && (p.read < p.inbox.len() || p.body_end.is_some());
    if readable {
        p.owes_readable = false;
    }
    Advanced::Waiting { readable }
}
