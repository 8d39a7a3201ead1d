//! One exchange — read a head, run the app, frame its response, drain what it did not read — and the
//! blocking loop of the sync and threads classes around it (deadline-bounded waits on a non-blocking
//! socket), repeated while the connection may persist.
//!
//! Every block the app writes or a body yields is handed to the socket before the app runs again (no
//! delay). With blocking I/O the exchange waits until the socket took it; with queued I/O
//! ([`Io::queued`], the event loop) what the socket did not take stays queued, and a pull-mode body
//! past [`HIGH_WATER`] is [`Parked`] for the loop to [`resume`].
//!
//! Protocol decisions come from [`crate::http`]; the keep-alive decision still lives here and in the
//! event loop (the sans-I/O `http::conn` that will own it is the next step of the connection core).

mod buffers;
mod files;
mod io;
mod serve;

pub use buffers::{Buffers, Shared};
pub(super) use buffers::{OUT_CAPACITY, READ_CHUNK, ReadBuf};
use files::PendingFile;
use io::ReadStop;
pub(super) use io::{HIGH_WATER, Io, LOW_WATER};
pub use serve::serve;
pub(super) use serve::{ProxyStart, STOP_GRACE, take_proxy_header};

use super::Context;
use super::pace::Pace;
use crate::app::host::BodySource;
use crate::app::host::{CallSlot, call_handle};
use crate::app::{ConnInfo, Exchange, RequestView};
use crate::http::body::Decoder;
use crate::http::date::DateCache;
use crate::http::parse::RequestHead;
use crate::http::response::{self, CONTINUE_100, Encoder, Framing, ResponseHead};
use crate::http::{Error as HttpError, ErrorKind};
use crate::logging::access::Record;
use rustgun_abi::{RG_E_CLOSED, RG_E_INVALID, RG_E_IO, RG_E_STATE, RG_OK, RgBodySource, RgHeader};
use std::os::fd::BorrowedFd;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Most unread request body we read and discard to keep a connection alive.
const MAX_DRAIN: u64 = 1024 * 1024;

/// Where the response stands.
enum Reply {
    /// `start_response` not called (or refused).
    None,
    /// A head is recorded but nothing is sent; it may be replaced once.
    Recorded { replaced: bool },
    /// The head is sent (or buffered to send); body bytes go through the encoder.
    Streaming(Encoder),
}

/// Whether a `100 Continue` is owed to the client.
#[derive(PartialEq, Eq)]
enum Continue {
    NotExpected,
    Owed,
    Sent,
}

/// One request/response exchange: what the host functions act on while the app runs.
struct Call<'a, 'b, 'c> {
    io: &'a mut Io<'b>,
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
    fn date(&mut self) -> &[u8] {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.date.get(now)
    }

    /// Sends (buffers) the recorded head and switches to streaming.
    fn begin_body(&mut self) {
        if self.resp.status < 200 {
            // A 1xx is interim: sent as the final answer, the client would wait for another one.
            tracing::error!(
                "app gave {} as the final status for {} {}; answering 500",
                self.resp.status,
                String::from_utf8_lossy(self.head.method()),
                String::from_utf8_lossy(self.head.target())
            );
            self.fail(500);
            self.state.reply = Reply::Streaming(Encoder::new(Framing::NoBody));
            return;
        }
        let framing = self.resp.framing(self.head.version, self.head.is_head());
        self.state.keep_alive = self.state.keep_alive
            && !self.resp.close
            && framing != Framing::Close
            && self.state.expect != Continue::Owed
            && !self.ctx.stopping()
            && !self.ctx.last_request();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let date = self.date.get(now);
        self.resp.write(self.io.out, framing, self.head.version, self.state.keep_alive, date);
        self.state.reply = Reply::Streaming(Encoder::new(framing));
    }

    fn send_body(&mut self, data: &[u8]) -> Result<(), i32> {
        if matches!(self.state.reply, Reply::Recorded { .. }) {
            self.begin_body();
        }
        let Reply::Streaming(encoder) = &mut self.state.reply else {
            return Err(RG_E_STATE);
        };
        if self.io.dead {
            return Err(RG_E_CLOSED);
        }
        let taken = encoder.begin_chunk(data.len(), self.io.out);
        if taken < data.len() && encoder.framing() != Framing::NoBody && !self.state.overflow_logged {
            self.state.overflow_logged = true;
            tracing::error!(
                "app wrote more body than its Content-Length for {} {}; the excess is cut",
                String::from_utf8_lossy(self.head.method()),
                String::from_utf8_lossy(self.head.target())
            );
        }
        self.io.out.extend_from_slice(&data[..taken]);
        encoder.end_chunk(taken, self.io.out);
        // No delay (PEP 3333, docs/abi.md): the block leaves before the app is given control back, so a
        // stream's reader sees each block when it is written. The head rides along with the first one:
        // a response written in one piece is still one send.
        if !self.io.push() { Err(RG_E_CLOSED) } else { Ok(()) }
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

    /// Replaces whatever the app did with a complete error response and closes afterwards.
    fn fail(&mut self, status: u16) {
        self.state.keep_alive = false;
        let with_body = !self.head.is_head();
        let date = self.date().to_owned();
        response::write_error(self.io.out, status, &date, with_body);
        self.resp.status = status;
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
        match (&mut self.state.reply, code) {
            (Reply::Streaming(encoder), RG_OK) => {
                let missing = encoder.finish(self.io.out);
                if missing > 0 {
                    tracing::error!(
                        "app sent {missing} bytes less than its Content-Length for {} {}; closing the connection",
                        String::from_utf8_lossy(self.head.method()),
                        String::from_utf8_lossy(self.head.target())
                    );
                    // Send what the app wrote (the client sees a short body), then close.
                    self.state.keep_alive = false;
                }
            }
            (Reply::Streaming(_), _) => {
                tracing::error!(
                    "app failed with status {code} after its response started; aborting the connection"
                );
                self.io.dead = true;
            }
            (Reply::Recorded { .. }, RG_OK) => {
                self.begin_body();
                if let Reply::Streaming(encoder) = &mut self.state.reply
                    && encoder.finish(self.io.out) > 0
                {
                    tracing::error!("app sent no body but a non-zero Content-Length; closing the connection");
                    self.state.keep_alive = false;
                }
            }
            (_, _) => {
                let status = match self.state.body_error {
                    Some(e) => e.status(),
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
    /// answer), one that stalled past `--timeout` gets 408 if nothing was sent yet.
    fn body_cut_short(&mut self, stop: ReadStop) -> i32 {
        self.state.keep_alive = false;
        match stop {
            ReadStop::TimedOut => {
                self.state.body_error =
                    Some(HttpError::new(ErrorKind::BodyTimeout, "request body stalled past --timeout"));
            }
            ReadStop::Eof | ReadStop::Failed | ReadStop::Stopping => self.io.dead = true,
        }
        RG_E_IO
    }

    /// Reads and discards the body the app left unread, so the next request starts in the right
    /// place; gives up (closing the connection) past a bound.
    fn drain_body(&mut self) {
        if self.state.decoder.is_done() || !self.state.keep_alive || self.io.dead {
            return;
        }
        if self.state.expect == Continue::Owed {
            self.state.keep_alive = false;
            return;
        }
        let mut drained = 0u64;
        let mut sink = [0u8; 4096];
        while !self.state.decoder.is_done() {
            match self.read_body(&mut sink) {
                // The last read of a chunked body may decode only the terminator and trailers.
                Ok(0) if self.state.decoder.is_done() => {}
                Ok(n) if n > 0 && drained + (n as u64) <= MAX_DRAIN => drained += n as u64,
                _ => {
                    self.state.keep_alive = false;
                    return;
                }
            }
        }
    }
}

impl Exchange for Call<'_, '_, '_> {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, i32> {
        if self.state.decoder.is_done() || buf.is_empty() {
            return Ok(0);
        }
        // Once the final response has begun a 100 would land inside it: the client then sends the body
        // after its own wait, and the head already said `Connection: close`.
        if self.state.expect == Continue::Owed && !matches!(self.state.reply, Reply::Streaming(_)) {
            self.state.expect = Continue::Sent;
            self.io.out.extend_from_slice(CONTINUE_100);
            if !self.io.flush() {
                return Err(RG_E_CLOSED);
            }
        }
        let deadline = Instant::now() + self.io.io_timeout;
        loop {
            // A gathered body's spooled bytes come before anything in the read buffer. They are read
            // into the app's buffer and decoded in place (the data never starts before its framing).
            if let Some(spool) = self.io.spool.as_mut().filter(|s| s.unread() > 0) {
                let got = spool.peek(buf).map_err(|e| {
                    tracing::error!("cannot read a spooled request body back: {e}");
                    self.state.keep_alive = false;
                    RG_E_IO
                })?;
                let step = self.state.decoder.decode(&buf[..got]).map_err(|e| {
                    self.state.body_error = Some(e);
                    self.state.keep_alive = false;
                    RG_E_IO
                })?;
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
                let step = self.state.decoder.decode(&avail[..limit]).map_err(|e| {
                    self.state.body_error = Some(e);
                    self.state.keep_alive = false;
                    RG_E_IO
                })?;
                let n = step.data.len();
                buf[..n].copy_from_slice(&avail[step.data]);
                self.io.rbuf.consume(step.consumed);
                if n > 0 || step.done {
                    return Ok(n);
                }
                continue;
            }
            // A Content-Length body with nothing buffered: read straight into the app's buffer (after
            // sending what the app wrote so far, as `fill` does).
            if let Some(remaining) = self.state.decoder.remaining_hint() {
                if !self.io.flush() {
                    self.state.keep_alive = false;
                    return Err(RG_E_CLOSED);
                }
                let want = buf.len().min(remaining.min(usize::MAX as u64) as usize);
                return match self.io.waiting(|io| io.stream.read_until(&mut buf[..want], deadline)) {
                    Ok(0) => Err(self.body_cut_short(ReadStop::Eof)),
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        Err(self.body_cut_short(ReadStop::TimedOut))
                    }
                    Err(_) => Err(self.body_cut_short(ReadStop::Failed)),
                    Ok(n) => {
                        let _ = self.state.decoder.decode(&buf[..n]);
                        Ok(n)
                    }
                };
            }
            if let Err(stop) = self.io.fill(deadline, None) {
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
    ) -> Result<(), i32> {
        match self.state.reply {
            Reply::Streaming(_) => return Err(RG_E_STATE),
            Reply::Recorded { replaced: true } => return Err(RG_E_STATE),
            Reply::Recorded { replaced: false } if !replace => return Err(RG_E_STATE),
            Reply::Recorded { .. } | Reply::None => {}
        }
        let replaced = matches!(self.state.reply, Reply::Recorded { .. });
        // SAFETY: the host function lent `headers` for this call; their strings too.
        let pairs = headers
            .iter()
            .map(|h| unsafe { (crate::app::host::bytes(h.name), crate::app::host::bytes(h.value)) });
        match self.resp.set(status, reason, pairs) {
            Ok(()) => {
                self.state.reply = Reply::Recorded { replaced };
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    "app gave an invalid response head for {} {}: {e}; answering 500",
                    String::from_utf8_lossy(self.head.method()),
                    String::from_utf8_lossy(self.head.target())
                );
                self.state.reply = Reply::None;
                Err(RG_E_INVALID)
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), i32> {
        if matches!(self.state.reply, Reply::None) {
            return Err(RG_E_STATE);
        }
        if data.is_empty() {
            return Ok(());
        }
        // A file handed over before goes out first (waiting for the client if it must).
        self.pump_file(false);
        self.send_body(data)
    }

    fn set_body(&mut self, source: RgBodySource) -> Result<(), i32> {
        if self.state.body.is_some() {
            return Err(RG_E_STATE);
        }
        self.state.body = Some(BodySource::new(source).ok_or(RG_E_STATE)?);
        Ok(())
    }

    fn environ(&mut self) -> &[RgHeader] {
        self.view.environ(self.head, self.info, self.ctx.settings.limits.header_map)
    }

    fn send_file(&mut self, file: BorrowedFd<'_>, offset: u64, len: u64) -> Result<u64, i32> {
        match self.state.reply {
            Reply::None => return Err(RG_E_STATE),
            Reply::Recorded { .. } => self.begin_body(),
            Reply::Streaming(_) => {}
        }
        let Reply::Streaming(encoder) = &self.state.reply else { return Err(RG_E_STATE) };
        let (framing, len) = (encoder.framing(), len.min(encoder.room()));
        // What the framing takes no more of is never read (a HEAD of a large file reads nothing);
        // the head still leaves now.
        if self.io.dead || !self.io.push() {
            return Err(RG_E_CLOSED);
        }
        if len == 0 {
            return Ok(0);
        }
        if self.io.queued {
            // A file handed over before goes out first (waiting for the client if it must).
            self.pump_file(false);
            return self.hand_over_file(file, offset, len);
        }
        if framing != Framing::Chunked {
            let Reply::Streaming(encoder) = &mut self.state.reply else { return Err(RG_E_STATE) };
            let deadline = Instant::now() + self.io.io_timeout;
            match self.io.waiting(|io| io.stream.send_file_until(file, offset, len, deadline)) {
                Ok(Some(sent)) => {
                    // Length and close framing add no bytes of their own: this only counts them.
                    encoder.begin_chunk(sent as usize, self.io.out);
                    return Ok(sent);
                }
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    return Err(self.file_failed(nix::errno::Errno::EIO));
                }
                Err(_) => {
                    self.io.dead = true;
                    return Err(RG_E_CLOSED);
                }
            }
        }
        self.copy_file(file, offset, len)
    }
}

/// What the connection may do after an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum After {
    KeepAlive,
    Close,
}

/// Answers a request refused by the protocol layer (the connection closes afterwards).
pub(super) fn refuse(
    io: &mut Io<'_>,
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'_>,
    e: HttpError,
    started: Instant,
) {
    refuse_status(io, shared, info, ctx, e.status(), &e.detail, started);
}

/// Answers `status` with `Connection: close`, logging why (the connection closes afterwards).
pub(super) fn refuse_status(
    io: &mut Io<'_>,
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'_>,
    status: u16,
    why: &dyn std::fmt::Display,
    started: Instant,
) {
    tracing::warn!("Invalid request from ip={}: {why} ({status})", info.peer_or_unix());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    response::write_error(io.out, status, shared.date.get(now), true);
    if let Some(log) = ctx.access_log {
        log.write_refused(info, status, started);
    }
    if let Some(lane) = ctx.lane(shared.lane) {
        lane.end(status, started.elapsed().as_micros() as u64);
    }
}

/// Applies a trusted proxy's headers (`--forwarded-allow-ips`) to the request view before the app
/// runs; contradictory or malformed ones refuse the request (400).
fn apply_forwarded(shared: &mut Shared, info: &ConnInfo, ctx: &Context<'_>) -> Result<(), HttpError> {
    shared.view.apply_forwarded(&shared.head, info, &ctx.settings.forwarded_allow_ips).map_err(|e| {
        tracing::debug!("proxy headers from ip={} refused: {e}", info.peer_or_unix());
        e.to_http()
    })
}

/// Runs one exchange for the head already parsed into `shared`: checks the body's framing, calls the
/// app, completes its response into the output buffer, drains what it left unread, logs it. The
/// output may still be buffered when this returns; flushing and closing are the caller's.
pub(super) fn exchange<'a, 'c: 'a>(
    io: &mut Io<'a>,
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'c>,
    started: Instant,
) -> Result<After, Box<Parked>> {
    let checked = apply_forwarded(shared, info, ctx)
        .and_then(|()| Decoder::new(shared.head.framing, ctx.settings.limit_request_body));
    let decoder = match checked {
        Ok(d) => d,
        Err(e) => {
            refuse(io, shared, info, ctx, e, started);
            return Ok(After::Close);
        }
    };
    let Shared { head, resp, view, date, scratch, lane } = shared;
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
    let expect = match (head.expect_continue, io.continued) {
        (true, false) => Continue::Owed,
        (true, true) => Continue::Sent,
        (false, _) => Continue::NotExpected,
    };
    let mut call = Call {
        io,
        head,
        resp: &mut *resp,
        view,
        info,
        date,
        ctx,
        state: CallState {
            decoder,
            reply: Reply::None,
            expect,
            body: None,
            file: None,
            body_error: None,
            keep_alive: head.keep_alive,
            overflow_logged: false,
        },
        scratch,
    };
    let code = {
        let mut slot: CallSlot<'_> = &mut call;
        request.call = call_handle(&mut slot);
        ctx.app.handle(&request)
    };
    if call.finish(code) {
        return Ok(call.conclude(started));
    }
    let state = call.into_state();
    Err(Box::new(Parked { head: std::mem::take(head), resp: std::mem::take(resp), state, started }))
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
    decoder: Decoder,
    reply: Reply,
    expect: Continue,
    body: Option<BodySource>,
    /// A file `send_file` handed over on queued I/O, sent as the client takes it.
    file: Option<PendingFile>,
    /// A malformed or oversized body found while the app read it: its status replaces a 500.
    body_error: Option<HttpError>,
    keep_alive: bool,
    overflow_logged: bool,
}

impl<'a, 'b, 'c> Call<'a, 'b, 'c> {
    /// The call around a parked response, to go on producing it.
    fn resumed(
        io: &'a mut Io<'b>,
        (head, resp): (&'a RequestHead, &'a mut ResponseHead),
        state: CallState,
        shared: &'a mut Shared,
        info: &'a ConnInfo,
        ctx: &'a Context<'c>,
    ) -> Self {
        Call {
            io,
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
        // while we drain, or while the next pipelined request runs.
        self.io.push();
        self.drain_body();
        let sent = match &self.state.reply {
            Reply::Streaming(enc) => enc.sent,
            _ => 0,
        };
        let (head, info, resp) = (self.head, self.info, &*self.resp);
        if let Some(log) = self.ctx.access_log {
            log.write(&Record { head, info, resp, status: resp.status, sent, started });
        }
        self.ctx.count_request(self.io.beat, resp.status, started);
        self.io.body_pending = !self.state.decoder.is_done();
        // What the response announced holds, even if a stop came since: a client told "keep-alive" may
        // send its next request at once, and the idle wait gives it the stop's grace.
        if self.state.keep_alive && !self.io.dead { After::KeepAlive } else { After::Close }
    }
}

/// Goes on producing a parked response into the output queue: `Ok` with what the connection does
/// next once the response is complete, or the response parked again at [`HIGH_WATER`].
pub(super) fn resume<'a, 'c: 'a>(
    parked: Box<Parked>,
    io: &mut Io<'a>,
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'c>,
) -> Result<After, Box<Parked>> {
    io.beat = ctx.lane(shared.lane);
    let Parked { head, mut resp, state, started } = *parked;
    let mut call = Call::resumed(io, (&head, &mut resp), state, shared, info, ctx);
    if call.finish(RG_OK) {
        return Ok(call.conclude(started));
    }
    let state = call.into_state();
    Err(Box::new(Parked { head, resp, state, started }))
}
