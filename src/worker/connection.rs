//! One exchange — read a head, run the app, frame its response, drain what it did not read — and the
//! blocking loop of the sync and threads classes around it (deadline-bounded waits on a non-blocking
//! socket), repeated while the connection may persist.
//!
//! Every block the app writes or a body yields is handed to the socket before the app runs again (no
//! delay). With blocking I/O the exchange waits until the socket took it; with queued I/O
//! ([`Io::queued`], the event loop) what the socket did not take stays queued, and a pull-mode body
//! past [`HIGH_WATER`] is [`Parked`] for the loop to [`resume`].
//!
//! Every protocol decision — framing, `100 Continue`, draining, whether the connection persists — is
//! [`http::conn::Conn`]'s; the exchange only sequences the app's calls onto it and moves the bytes.

mod buffers;
mod files;
mod io;
mod pending;
mod record;
mod refuse;
mod serve;

pub use buffers::{Buffers, Shared};
pub(super) use buffers::{OUT_CAPACITY, READ_CHUNK, ReadBuf};
use files::PendingFile;
use io::ReadStop;
pub(super) use io::{HIGH_WATER, Io, LOW_WATER};
pub(super) use pending::{Advanced, Pending, advance, touched};
pub(in crate::worker) use record::{NO_HEAD, record_head, record_trailers};
pub(super) use refuse::{record_refusal, refuse, refuse_status};
pub use serve::serve;
pub(super) use serve::{ProxyStart, STOP_GRACE, take_proxy_header};

use super::Context;
use super::pace::Pace;
use super::websocket::Link;
use crate::app::calls::Registration;
use crate::app::host::BodySource;
use crate::app::host::CallSlot;
use crate::app::{ConnInfo, Exchange, HostError, RequestView};
use crate::http;
use crate::http::conn::{After, InterimAsFinal};
use crate::http::date::DateCache;
use crate::http::parse::RequestHead;
use crate::http::response::{Framing, ResponseHead};
use crate::http::upgrade::{Opening, WEBSOCKET};
use crate::http::ws::DeflateParams;
use crate::logging::access::Record;
use rustgun_abi::{RG_OK, RG_PENDING, RG_REQ_WEBSOCKET, RgBodySource, RgHeader};
use std::cell::RefCell;
use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where the app's response stands (the ABI's rules for `start_response`).
pub(in crate::worker) enum Reply {
    /// `start_response` not called (or refused).
    None,
    /// A head is recorded but nothing is sent; it may be replaced once.
    Recorded { replaced: bool },
    /// The head went to the connection; body bytes are framed by it.
    Streaming,
}

/// One request/response exchange: what the host functions act on while the app runs.
struct Call<'a, 'b, 'c> {
    io: &'a mut Io<'b>,
    proto: &'a mut http::conn::Conn,
    head: &'a RequestHead,
    resp: &'a mut ResponseHead,
    view: &'a mut RequestView,
    info: &'a ConnInfo,
    date: &'a mut DateCache,
    ctx: &'a Context<'c>,
    state: CallState,
    /// The thread's buffer for pulled body chunks and file reads.
    scratch: &'a mut Vec<u8>,
}

impl Call<'_, '_, '_> {
    /// Sends (buffers) the recorded head and switches to streaming.
    fn begin_body(&mut self) {
        let closing = self.ctx.stopping() || self.ctx.last_request();
        let date = self.date.get(unix_now());
        if let Err(InterimAsFinal(status)) = self.proto.begin_response(self.resp, closing, date, self.io.out)
        {
            // A 1xx is interim: sent as the final answer, the client would wait for another one.
            tracing::error!(
                "app gave {status} as the final status for {} {}; answering 500",
                String::from_utf8_lossy(self.head.method()),
                String::from_utf8_lossy(self.head.target())
            );
        }
        self.state.reply = Reply::Streaming;
    }

    fn send_body(&mut self, data: &[u8]) -> Result<(), HostError> {
        if matches!(self.state.reply, Reply::Recorded { .. }) {
            self.begin_body();
        }
        if !matches!(self.state.reply, Reply::Streaming) {
            return Err(NO_HEAD);
        }
        if self.io.dead {
            return Err(HostError::Closed);
        }
        let taken = self.proto.send_data(data, self.io.out).ok_or(ENDED)?;
        let bodiless = matches!(self.proto.body_room(), Some((Framing::NoBody, _)));
        if taken < data.len() && !bodiless && !self.state.overflow_logged {
            self.state.overflow_logged = true;
            tracing::error!(
                "app wrote more body than its Content-Length for {} {}; the excess is cut",
                String::from_utf8_lossy(self.head.method()),
                String::from_utf8_lossy(self.head.target())
            );
        }
        // No delay (PEP 3333, docs/abi.md): the block leaves before the app is given control back, so a
        // stream's reader sees each block when it is written. The head rides along with the first one:
        // a response written in one piece is still one send.
        self.io.push().map_err(|_| HostError::Closed)
    }

    /// Pulls a registered pull-mode body until it ends (dropping it closes it), or, on queued I/O,
    /// until [`HIGH_WATER`] is queued: `true` then, with the source kept for [`resume`].
    fn pump_body(&mut self) -> bool {
        if self.pump_file(self.io.queued) {
            return true;
        }
        let Some(mut source) = self.state.body.take() else { return false };
        let mut scratch = std::mem::take(self.scratch);
        let parked = loop {
            if self.io.queued && self.io.out.len() >= HIGH_WATER {
                break true;
            }
            let n = source.next(&mut scratch);
            if n == 0 {
                break false;
            }
            if n < 0 {
                tracing::error!("app body source failed with status {n}; aborting the response");
                self.io.dead = true;
                break false;
            }
            if self.send_body(&scratch[..n as usize]).is_err() {
                break false;
            }
        };
        *self.scratch = scratch;
        if parked {
            self.state.body = Some(source);
        }
        parked
    }

    /// Sends the 101 of an accepted WebSocket and counts the request (its access log line is the
    /// upgrade's).
    fn switch_protocols(&mut self, started: Instant) {
        let date = self.date.get(unix_now());
        self.proto.switch_protocols(self.resp, WEBSOCKET, date, self.io.out);
        if let Some(log) = self.ctx.access_log {
            let (head, info, resp) = (self.head, self.info, &*self.resp);
            log.write(&Record { head, info, resp, status: 101, sent: 0, started });
        }
        self.ctx.count_request(self.io.beat, 101, started);
    }

    /// Replaces whatever the app did with a complete error response and closes afterwards.
    fn fail(&mut self, status: u16) {
        self.proto.fail(status, self.resp, self.date.get(unix_now()), self.io.out);
    }

    /// Completes the response after `handle` returned `code`; `false` when a pull-mode body was
    /// parked half-way (queued I/O) and the response is completed by [`resume`].
    fn finish(&mut self, code: i32) -> bool {
        if code == RG_OK {
            if self.pump_body() {
                return false;
            }
        } else {
            // The body is never pulled after a failed handle: dropping it closes it.
            self.state.body = None;
        }
        match (&self.state.reply, code) {
            // The client went away (or was dropped) mid-body: the app is not at fault.
            (Reply::Streaming, RG_OK) if self.io.dead => self.proto.abort(),
            (Reply::Streaming, RG_OK) => {
                let missing = self.proto.end_response_with(self.resp.trailers(), self.io.out);
                if missing > 0 {
                    tracing::error!(
                        "app sent {missing} bytes less than its Content-Length for {} {}; closing the connection",
                        String::from_utf8_lossy(self.head.method()),
                        String::from_utf8_lossy(self.head.target())
                    );
                    // What the app wrote is sent (the client sees a short body), then the connection closes.
                }
            }
            (Reply::Streaming, _) => {
                tracing::error!(
                    "app failed with status {code} after its response started; aborting the connection"
                );
                self.proto.abort();
                self.io.dead = true;
            }
            (Reply::Recorded { .. }, RG_OK) => {
                self.begin_body();
                if self.proto.end_response_with(self.resp.trailers(), self.io.out) > 0 {
                    tracing::error!("app sent no body but a non-zero Content-Length; closing the connection");
                }
            }
            (_, _) => {
                let status = match self.proto.body_error() {
                    Some(status) => status,
                    None => {
                        if code == RG_OK {
                            tracing::error!("app returned without a valid start_response; answering 500");
                        } else {
                            tracing::error!("app failed with status {code}; answering 500");
                        }
                        500
                    }
                };
                self.fail(status);
            }
        }
        true
    }

    /// The body ended before its framing said: a client that left gets nothing more (it cannot read an
    /// answer), one the minimum rate dropped gets 408 if nothing was sent yet.
    fn body_cut_short(&mut self, stop: ReadStop) -> HostError {
        match stop {
            ReadStop::TimedOut => self.proto.body_stalled(),
            ReadStop::Eof | ReadStop::Failed | ReadStop::Stopping => {
                self.proto.must_close();
                self.io.dead = true;
            }
        }
        HostError::Body
    }

    /// Reads and discards the body the app left unread, so the next request starts in the right
    /// place, as far as the connection's drain bound allows. On an event loop it takes what has
    /// arrived; the loop discards the rest as it comes ([`After::Discard`]).
    fn drain_body(&mut self) {
        if self.io.dead || !self.proto.should_drain() {
            return;
        }
        let mut sink = [0u8; 4096];
        while !self.proto.body_done() {
            match self.read_body(&mut sink) {
                // The last read of a chunked body may decode only the terminator and trailers.
                Ok(0) if self.proto.body_done() => {}
                Ok(n) if n > 0 && self.proto.drained(n) => {}
                Err(HostError::Again) => return,
                _ => {
                    self.proto.must_close();
                    return;
                }
            }
        }
    }
}

impl Exchange for Call<'_, '_, '_> {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        if self.proto.body_error().is_some() {
            return Err(HostError::Body);
        }
        if self.proto.body_done() || buf.is_empty() {
            return Ok(0);
        }
        // The client may be holding its body back until it is told to go on.
        if self.proto.send_continue(self.io.out) {
            self.io.flush().map_err(|_| HostError::Closed)?;
        }
        loop {
            // A gathered body's spooled bytes come before anything in the read buffer. They are read
            // into the app's buffer and decoded in place (the data never starts before its framing).
            if let Some(spool) = self.io.spool.as_mut().filter(|s| s.unread() > 0) {
                let got = spool.peek(buf).map_err(|e| {
                    tracing::error!("cannot read a spooled request body back: {e}");
                    self.proto.must_close();
                    HostError::Io(e)
                })?;
                let step = self.proto.receive_body(&buf[..got]).map_err(|_| HostError::Body)?;
                spool.take(step.consumed);
                let n = step.data.len();
                buf.copy_within(step.data, 0);
                if n > 0 || step.done {
                    return Ok(n);
                }
                continue;
            }
            if !self.io.rbuf.is_empty() {
                let avail = self.io.rbuf.data();
                let limit = avail.len().min(buf.len());
                let step = self.proto.receive_body(&avail[..limit]).map_err(|_| HostError::Body)?;
                let n = step.data.len();
                buf[..n].copy_from_slice(&avail[step.data]);
                self.io.rbuf.consume(step.consumed);
                if n > 0 || step.done {
                    return Ok(n);
                }
                continue;
            }
            // On an event loop the body of an async app's call is read as it comes (it was not
            // gathered): what the socket has now, else `Again` and the loop watches for more.
            if self.io.queued {
                match self.io.try_fill() {
                    Ok(Some(_)) => continue,
                    Ok(None) => {
                        self.state.read_again = true;
                        return Err(HostError::Again);
                    }
                    Err(stop) => return Err(self.body_cut_short(stop)),
                }
            }
            // A Content-Length body with nothing buffered: read straight into the app's buffer (after
            // sending what the app wrote so far, as `fill` does).
            if let Some(remaining) = self.proto.body_remaining() {
                if self.io.flush().is_err() {
                    self.proto.must_close();
                    return Err(HostError::Closed);
                }
                let want = buf.len().min(remaining.min(usize::MAX as u64) as usize);
                return match self.io.read_body(Some(&mut buf[..want])) {
                    Err(stop) => Err(self.body_cut_short(stop)),
                    Ok(n) => {
                        // A Content-Length body's bytes are all data: this only counts them.
                        let _ = self.proto.receive_body(&buf[..n]);
                        Ok(n)
                    }
                };
            }
            if let Err(stop) = self.io.read_body(None) {
                return Err(self.body_cut_short(stop));
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
        record_head(&mut self.state.reply, self.resp, self.head, (status, reason, headers), replace)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), HostError> {
        if matches!(self.state.reply, Reply::None) {
            return Err(NO_HEAD);
        }
        if data.is_empty() {
            return Ok(());
        }
        // A file handed over before goes out first (waiting for the client if it must).
        self.pump_file(false);
        self.send_body(data)
    }

    fn set_body(&mut self, source: RgBodySource) -> Result<(), HostError> {
        if self.state.body.is_some() {
            return Err(HostError::State("a body is registered already"));
        }
        self.state.body = Some(BodySource::new(source).ok_or(HostError::State("the body has no next"))?);
        Ok(())
    }

    fn environ(&mut self) -> Result<&[RgHeader], HostError> {
        Ok(self.view.environ(self.head, self.info))
    }

    fn send_file(&mut self, file: BorrowedFd<'_>, offset: u64, len: u64) -> Result<u64, HostError> {
        match self.state.reply {
            Reply::None => return Err(NO_HEAD),
            Reply::Recorded { .. } => self.begin_body(),
            Reply::Streaming => {}
        }
        let Some((framing, room)) = self.proto.body_room() else { return Err(ENDED) };
        let len = len.min(room);
        // What the framing takes no more of is never read (a HEAD of a large file reads nothing);
        // the head still leaves now.
        if self.io.dead || self.io.push().is_err() {
            return Err(HostError::Closed);
        }
        if len == 0 {
            return Ok(0);
        }
        if self.io.queued {
            // A file handed over before goes out first (waiting for the client if it must).
            self.pump_file(false);
            return self.hand_over_file(file, offset, len);
        }
        if framing != Framing::Chunked
            && let Some(sent) = self.send_file_directly(file, offset, len)?
        {
            return Ok(sent);
        }
        self.copy_file(file, offset, len)
    }

    fn accept_websocket(&mut self, subprotocol: &[u8], headers: &[RgHeader]) -> Result<(), HostError> {
        if !self.ctx.app.lib.is_async() || !self.io.queued {
            return Err(NOT_ASYNC);
        }
        if !matches!(self.state.reply, Reply::None) {
            return Err(HostError::State("a response is recorded"));
        }
        let opening = Opening::read(self.head).ok_or(NOT_WEBSOCKET)?;
        if !subprotocol.is_empty() && !opening.offers_subprotocol(subprotocol) {
            return Err(HostError::Invalid);
        }
        let deflate = if self.ctx.settings.websocket.deflate { opening.deflate() } else { None };
        let ours = [
            (&b"Sec-WebSocket-Accept"[..], opening.accept()),
            (b"Sec-WebSocket-Protocol", subprotocol),
            (b"Sec-WebSocket-Extensions", deflate.as_ref().map_or(&b""[..], |(_, answer)| answer.as_bytes())),
        ];
        let theirs = crate::app::host::lent_pairs(headers);
        let fields = ours.into_iter().filter(|(_, value)| !value.is_empty()).chain(theirs);
        self.resp.set(101, b"", fields).map_err(|_| HostError::Invalid)?;
        self.state.reply = Reply::Recorded { replaced: true };
        self.state.upgrade = Some(deflate.map(|(params, _)| params));
        Ok(())
    }

    fn trailers(&mut self, headers: &[RgHeader]) -> Result<(), HostError> {
        record_trailers(&self.state.reply, self.resp, headers)
    }

    fn complete(&mut self, status: i32) -> Result<(), HostError> {
        if !self.ctx.app.lib.is_async() || !self.io.queued {
            return Err(NOT_ASYNC);
        }
        if self.state.upgrade.is_some() {
            return Err(HostError::State("the call accepted a WebSocket"));
        }
        self.state.completed = Some(status);
        Ok(())
    }
}

/// Body bytes once the response's framing has ended.
const ENDED: HostError = HostError::State("the response has ended");
/// What only an async app's call on the event loop can do.
const NOT_ASYNC: HostError = HostError::State("not an async app on the event loop");
/// `accept_websocket` on a request that asks for no WebSocket.
const NOT_WEBSOCKET: HostError = HostError::State("the request asks for no WebSocket");

/// The wall clock in whole seconds, for the `Date` field.
pub(in crate::worker) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Applies a trusted proxy's headers (`--forwarded-allow-ips`) to the request view before the app
/// runs and mounts the app at its root: contradictory or malformed proxy headers refuse the request
/// (400); a path outside `--root-path` (or a trusted proxy's `SCRIPT_NAME`, `--forwarder-headers`)
/// is a deployment's mistake, not the client's: 500, as gunicorn. For every HTTP version.
pub(in crate::worker) fn admit(
    head: &mut RequestHead,
    view: &mut RequestView,
    info: &ConnInfo,
    ctx: &Context<'_>,
) -> Result<(), (u16, std::borrow::Cow<'static, str>)> {
    let trusted = || ctx.settings.forwarded_allow_ips.trusts(info.peer_ip);
    head.check_forwarder(trusted, ctx.settings.limits.header_map)
        .map_err(|e| (e.status(), e.detail.into()))?;
    view.apply_forwarded(head, info, &ctx.settings.forwarded_allow_ips).map_err(|e| {
        tracing::debug!("proxy headers from ip={} refused: {e}", info.peer_or_unix());
        let e = e.to_http();
        (e.status(), e.detail.into())
    })?;
    let forwarded = head.forwarded().then(|| head.header(b"script_name")).flatten();
    let root = forwarded.unwrap_or(&ctx.settings.root_path);
    if !view.mount(head, root) {
        return Err((500, "the request path does not start with --root-path (SCRIPT_NAME)".into()));
    }
    Ok(())
}

/// Runs one exchange for the head `proto` received into `shared`: applies a trusted proxy's headers,
/// calls the app, completes its response into the output buffer, drains what it left unread, logs it.
/// The output may still be buffered when this returns; flushing and closing are the caller's.
pub(super) fn exchange<'a, 'c: 'a>(
    io: &mut Io<'a>,
    proto: &mut http::conn::Conn,
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'c>,
    started: Instant,
) -> Exchanged {
    if let Err((status, why)) = admit(&mut shared.head, &mut shared.view, info, ctx) {
        refuse_status((proto, io.out), shared, info, ctx, status, &why, started);
        return Exchanged::Done(proto.after(true));
    }
    let Shared { head, resp, view, date, scratch, lane, .. } = shared;
    let lane = ctx.lane(*lane);
    if let Some(lane) = lane {
        lane.begin(head.method(), head.target(), head.version.as_bytes());
    }
    io.beat = lane;
    io.peer = info.peer_ip;
    io.pace = Pace::default();
    // The view is plain data pointing into `head`, `info` and the view's own buffers, none of which
    // move while the app runs; the call handle is filled in once the exchange exists.
    let mut request = view.build(head, info, &crate::app::host::HOST, std::ptr::null_mut());
    // Only an async app on the event loop can take a WebSocket: only it is told of one.
    if io.queued && ctx.app.lib.is_async() && Opening::read(head).is_some() {
        request.flags |= RG_REQ_WEBSOCKET;
    }
    let mut call =
        Call { io, proto, head, resp: &mut *resp, view, info, date, ctx, state: CallState::new(), scratch };
    let (code, kept) = {
        let mut slot: CallSlot<'_> = &mut call;
        let live = Registration::new(&mut slot);
        request.call = live.handle();
        (ctx.app.handle(&request), live.keep())
    };
    let code = match (call.state.upgrade.take(), code) {
        (Some(deflate), RG_PENDING) => {
            call.switch_protocols(started);
            let link = Rc::new(RefCell::new(Link::new(kept.handle(), deflate, ctx.settings.websocket)));
            kept.outlive(&(link.clone() as Rc<RefCell<dyn crate::app::host::Socket>>));
            return Exchanged::Upgraded(link);
        }
        (Some(_), code) => {
            tracing::error!(
                "app accepted a WebSocket but its handle returned {code}, not RG_PENDING; answering 500"
            );
            call.state.reply = Reply::None;
            rustgun_abi::RG_ERROR
        }
        // Completed before `handle` returned: as if `handle` had returned that status.
        (None, RG_PENDING) if call.state.completed.is_some() => call.state.completed.take().unwrap_or(RG_OK),
        // An async app on the loop goes on with its response after `handle`.
        (None, RG_PENDING) if call.io.queued && ctx.app.lib.is_async() => {
            let mut pending = call.into_pending(kept.handle(), started);
            pending.keep_heads(std::mem::take(head), std::mem::take(resp));
            let pending = Rc::new(RefCell::new(pending));
            kept.outlive(&(pending.clone() as Rc<RefCell<dyn crate::app::host::Socket>>));
            return Exchanged::Pending(pending);
        }
        (None, RG_PENDING) => {
            tracing::error!(
                "app returned RG_PENDING but is not an async app on the event loop; answering 500"
            );
            rustgun_abi::RG_ERROR
        }
        (None, code) => code,
    };
    drop(kept);
    if call.finish(code) {
        return Exchanged::Done(call.conclude(started));
    }
    let state = call.into_state();
    Exchanged::Parked(Box::new(Parked {
        head: std::mem::take(head),
        resp: std::mem::take(resp),
        state,
        started,
    }))
}

/// How an exchange ended.
pub(super) enum Exchanged {
    /// The response is complete (or queued): what the connection does next.
    Done(After),
    /// A pull-mode body waits for the client to take what is queued ([`resume`]).
    Parked(Box<Parked>),
    /// The app accepted a WebSocket: its 101 is queued, and the connection now belongs to the link.
    Upgraded(Rc<RefCell<Link>>),
    /// The app returned `RG_PENDING`: the response goes on through the pending call ([`advance`]).
    Pending(Rc<RefCell<Pending>>),
}

/// A response whose pull-mode body the event loop produces as its client reads it ([`Io::queued`]):
/// what the exchange needs once `handle` has returned and the thread's buffers serve other requests.
pub(super) struct Parked {
    head: RequestHead,
    resp: ResponseHead,
    state: CallState,
    started: Instant,
}

/// The parts of a [`Call`] it owns (the rest it borrows), which a parked response keeps.
struct CallState {
    reply: Reply,
    body: Option<BodySource>,
    /// A file `send_file` handed over on queued I/O, sent as the client takes it.
    file: Option<PendingFile>,
    overflow_logged: bool,
    /// The app accepted a WebSocket, with this compression.
    upgrade: Option<Option<DeflateParams>>,
    /// An async app completed the call from inside `handle`, with this status.
    completed: Option<i32>,
    /// `read_body` answered `Again` in `handle`: the pending call owes `RG_EV_READABLE`.
    read_again: bool,
}

impl CallState {
    fn new() -> CallState {
        CallState {
            reply: Reply::None,
            body: None,
            file: None,
            overflow_logged: false,
            upgrade: None,
            completed: None,
            read_again: false,
        }
    }
}

impl<'a, 'b, 'c> Call<'a, 'b, 'c> {
    /// The call around a parked response, to go on producing it.
    fn resumed(
        (io, proto): (&'a mut Io<'b>, &'a mut http::conn::Conn),
        (head, resp): (&'a RequestHead, &'a mut ResponseHead),
        state: CallState,
        shared: &'a mut Shared,
        info: &'a ConnInfo,
        ctx: &'a Context<'c>,
    ) -> Self {
        Call {
            io,
            proto,
            head,
            resp,
            view: &mut shared.view,
            info,
            date: &mut shared.date,
            ctx,
            state,
            scratch: &mut shared.scratch,
        }
    }

    fn into_state(self) -> CallState {
        self.state
    }

    /// Ends the exchange once its response is complete: the body's end leaves, what the app left
    /// unread is drained, the request is logged and counted; what the connection does next.
    fn conclude(mut self, started: Instant) -> After {
        // The end of the body (a chunked terminator) leaves now too: the client may be waiting for it
        // while we drain, or while the next pipelined request runs; a failure marks the I/O dead.
        let _ = self.io.push();
        self.drain_body();
        let sent = self.proto.sent();
        let (head, info, resp) = (self.head, self.info, &*self.resp);
        if let Some(log) = self.ctx.access_log {
            log.write(&Record { head, info, resp, status: resp.status, sent, started });
        }
        self.ctx.count_request(self.io.beat, resp.status, started);
        // What the response announced holds, even if a stop came since: a client told "keep-alive" may
        // send its next request at once, and the idle wait gives it the stop's grace.
        if self.io.dead {
            self.proto.abort();
        }
        let after = self.proto.after(!self.io.rbuf.is_empty());
        if self.io.dead { After::Close } else { after }
    }
}

/// Goes on producing a parked response into the output queue: `Ok` with what the connection does
/// next once the response is complete, or the response parked again at [`HIGH_WATER`].
pub(super) fn resume<'a, 'c: 'a>(
    parked: Box<Parked>,
    (io, proto): (&mut Io<'a>, &mut http::conn::Conn),
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'c>,
) -> Result<After, Box<Parked>> {
    io.beat = ctx.lane(shared.lane);
    let Parked { head, mut resp, state, started } = *parked;
    let mut call = Call::resumed((io, proto), (&head, &mut resp), state, shared, info, ctx);
    if call.finish(RG_OK) {
        return Ok(call.conclude(started));
    }
    let state = call.into_state();
    Err(Box::new(Parked { head, resp, state, started }))
}
