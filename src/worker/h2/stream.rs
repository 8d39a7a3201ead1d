//! One HTTP/2 stream's exchange as the app's host calls see it ([`StreamCall`]): the request's head
//! and body, and what the app recorded of its response — the head, body bytes not yet sent, a
//! pull-mode body, trailers, how the call ended. Nothing here touches the socket: the session
//! [`StreamCall::pump`]s what was recorded into the connection's frames, within the client's
//! flow-control windows, whenever the app or the client made progress possible.
//!
//! Two ways of taking the body, one per kind of app: a synchronous app runs once its whole body is
//! here ([`Intake::Gather`]: credited to the client as it arrives, kept in memory up to
//! `--client-body-buffer-size` and in an unlinked file beyond, as for HTTP/1.1); an async app reads
//! it as it comes ([`Intake::AsRead`]: credited only as the app reads it, so the stream's window is
//! the bound).
//!
//! Not here: frames and windows (`http::h2`), the session's events and the app's calls (`super`).

use crate::app::host::{BodySource, Exchange, Socket};
use crate::app::{ConnInfo, HostError};
use crate::http::h2::ErrorCode;
use crate::http::h2::conn::Connection;
use crate::http::parse::RequestHead;
use crate::http::response::ResponseHead;
use crate::http::status;
use crate::logging::access::Record;
use crate::worker::Context;
use crate::worker::connection::{HIGH_WATER, NO_HEAD, Reply, record_head, record_trailers};
use crate::worker::gather::Spool;
use crate::worker::pace::Pace;
use rustgun_abi::{RG_OK, RgBodySource, RgCall, RgHeader};
use std::cell::RefCell;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;
use std::time::Instant;

thread_local! {
    /// Streams whose calls host calls touched since the loop last looked: (connection, stream).
    static TOUCHED: RefCell<Vec<(usize, u32)>> = const { RefCell::new(Vec::new()) };
}

/// The streams touched since the last look (emptied).
pub(in crate::worker) fn touched() -> Vec<(usize, u32)> {
    TOUCHED.with_borrow_mut(std::mem::take)
}

/// How a stream's body is taken from the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Intake {
    /// All of it before the app runs (a synchronous app on the loop never waits for a client).
    Gather,
    /// As the app reads it (an async app).
    AsRead,
}

/// A request body as it arrives: the spooled part first, then what is in memory.
#[derive(Default)]
struct Body {
    mem: Vec<u8>,
    read: usize,
    spool: Option<Spool>,
    /// How the body ended: `Err` when it was cut short (the stream reset, the body refused).
    end: Option<Result<(), ()>>,
    received: u64,
}

impl Body {
    /// Takes the next bytes into `buf`: 0 at the end, `Again` when none are here yet.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        if let Some(spool) = self.spool.as_mut().filter(|s| s.unread() > 0) {
            let n = spool.peek(buf).map_err(HostError::Io)?;
            spool.take(n);
            return Ok(n);
        }
        if self.read < self.mem.len() {
            let n = buf.len().min(self.mem.len() - self.read);
            buf[..n].copy_from_slice(&self.mem[self.read..self.read + n]);
            self.read += n;
            if self.read == self.mem.len() {
                self.mem.clear();
                self.read = 0;
            }
            return Ok(n);
        }
        match self.end {
            Some(Ok(())) => Ok(0),
            Some(Err(())) => Err(HostError::Body),
            None => Err(HostError::Again),
        }
    }

    fn unread(&self) -> usize {
        self.mem.len() - self.read
    }
}

/// How much of a synchronous app's pushed body may wait in a stream's spill file before its `write`
/// waits for the client (nginx's `proxy_max_temp_file_size`).
pub(super) const SPILL_CAP: usize = 1 << 30;

/// A host call on a call the app completed already.
const COMPLETED: HostError = HostError::State("the call is complete");

/// One stream's request and what the app made of its response so far.
pub(in crate::worker) struct StreamCall {
    pub id: u32,
    /// The connection's token in the event loop.
    token: usize,
    /// The call's handle once it outlived `handle` (an async app's), else null.
    pub call: *mut RgCall,
    pub head: RequestHead,
    resp: ResponseHead,
    reply: Reply,
    intake: Intake,
    body: Body,
    /// Body bytes the app wrote that the client's windows have not taken yet.
    outbox: Vec<u8>,
    source: Option<BodySource>,
    file: Option<FileBody>,
    /// A synchronous app's pushed body past [`HIGH_WATER`], waiting for the windows.
    spill: Option<Spool>,
    pub completed: Option<i32>,
    /// The request was refused before its app ran, with this status.
    refusal: Option<u16>,
    /// The stream is over on our side, logged and counted.
    finished: bool,
    /// The app's call started (`handle` ran).
    pub running: bool,
    /// `write` answered `RG_E_AGAIN` / `read_body` answered it: the event is owed.
    owes_writable: bool,
    owes_readable: bool,
    /// Body bytes the app read that are not yet credited to the client.
    credit: u32,
    head_sent: bool,
    sent: u64,
    excess_logged: bool,
    pub started: Instant,
    /// How the client keeps up with this stream's response while it waits on the client's window
    /// (`--min-rate`), and what was sent since the last sweep.
    pub pace: Pace,
    pub moved: u64,
}

impl StreamCall {
    pub(super) fn new(id: u32, token: usize, head: RequestHead, intake: Intake) -> StreamCall {
        StreamCall {
            id,
            token,
            call: std::ptr::null_mut(),
            head,
            resp: ResponseHead::default(),
            reply: Reply::None,
            intake,
            body: Body::default(),
            outbox: Vec::new(),
            source: None,
            file: None,
            spill: None,
            completed: None,
            refusal: None,
            finished: false,
            running: false,
            owes_writable: false,
            owes_readable: false,
            credit: 0,
            head_sent: false,
            sent: 0,
            excess_logged: false,
            started: Instant::now(),
            pace: Pace::default(),
            moved: 0,
        }
    }

    fn touch(&self) {
        if !self.call.is_null() {
            TOUCHED.with_borrow_mut(|t| t.push((self.token, self.id)));
            crate::app::wake::nudge();
        }
    }

    /// Body bytes from the client; `Err` when they pass `limit` (`--limit-request-body`, 0: none)
    /// or cannot be spooled. A gathered body past `in_memory` goes to a file.
    pub(super) fn take_data(&mut self, data: &[u8], limit: u64, in_memory: usize) -> Result<(), u16> {
        self.body.received += data.len() as u64;
        if limit > 0 && self.body.received > limit {
            self.body.end = Some(Err(()));
            return Err(413);
        }
        let spool = self.intake == Intake::Gather
            && (self.body.spool.is_some() || self.body.unread() + data.len() > in_memory);
        if !spool {
            self.body.mem.extend_from_slice(data);
            return Ok(());
        }
        let spooled = match &mut self.body.spool {
            Some(spool) => spool,
            none => none.insert(Spool::create().map_err(|e| {
                tracing::error!("cannot spool an HTTP/2 request body: {e}");
                500u16
            })?),
        };
        let held = std::mem::take(&mut self.body.mem);
        spooled.append(&held[self.body.read..]).and_then(|()| spooled.append(data)).map_err(|e| {
            tracing::error!("cannot spool an HTTP/2 request body: {e}");
            500u16
        })?;
        self.body.read = 0;
        Ok(())
    }

    pub(super) fn intake(&self) -> Intake {
        self.intake
    }

    /// The request is refused with `status` instead of running its app.
    pub(super) fn refused(&mut self, status: u16) {
        self.refusal = Some(status);
    }

    /// The body ended (`Ok`) or was cut short.
    pub(super) fn end_body(&mut self, end: Result<(), ()>) {
        self.body.end.get_or_insert(end);
    }

    /// Whether an `RG_EV_READABLE` owed to the app can be given now (and it is taken as given).
    pub(super) fn take_readable(&mut self) -> bool {
        let ready = self.owes_readable && (self.body.unread() > 0 || self.body.end.is_some());
        if ready {
            self.owes_readable = false;
        }
        ready
    }

    /// Whether an `RG_EV_WRITABLE` owed to the app can be given now (and it is taken as given).
    pub(super) fn take_writable(&mut self) -> bool {
        let ready = self.owes_writable && self.outbox.len() < HIGH_WATER / 2;
        if ready {
            self.owes_writable = false;
        }
        ready
    }

    /// Whether every body byte the app's `Content-Length` announced is framed: nothing more of the
    /// body can come.
    pub(super) fn body_complete(&self) -> bool {
        self.head_sent && self.unsent() == 0 && self.resp.content_length.is_some_and(|n| self.sent >= n)
    }

    /// Body bytes queued here, not yet within the client's windows.
    pub(super) fn unsent(&self) -> usize {
        self.outbox.len() + self.spill.as_ref().map_or(0, |s| s.unread() as usize)
    }

    /// Whether the response waits on the client (its windows) rather than the app.
    pub(super) fn waits_on_client(&self, proto: &Connection) -> bool {
        let more =
            self.unsent() > 0 || self.file.is_some() || (self.source.is_some() && self.completed.is_some());
        more && room(proto, self.id) == 0
    }

    /// Records pushed body bytes (the app's `write`), without the async app's bound.
    pub(super) fn push(&mut self, data: &[u8]) -> Result<(), HostError> {
        if matches!(self.reply, Reply::None) {
            return Err(NO_HEAD);
        }
        if self.completed.is_some() {
            return Err(COMPLETED);
        }
        let data = self.within_length(data);
        if self.head.is_head() || status::forbids_body(self.resp.status) {
            return Ok(());
        }
        // A synchronous app never waits on its client for what its stream's window does not take:
        // past HIGH_WATER its body goes to an unlinked file (as nginx buffers an upstream's), and
        // only past SPILL_CAP of that does its `write` wait.
        if self.intake == Intake::Gather
            && (self.spill.is_some() || self.outbox.len() + data.len() > HIGH_WATER)
        {
            let spill = match &mut self.spill {
                Some(spill) => spill,
                none => none.insert(Spool::create().map_err(HostError::Io)?),
            };
            return spill.append(data).map_err(HostError::Io);
        }
        self.outbox.extend_from_slice(data);
        Ok(())
    }

    /// What of `data` the app's `Content-Length` still has room for (the excess is cut, and logged
    /// once).
    fn within_length<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        let Some(n) = self.resp.content_length else { return data };
        let room = n.saturating_sub(self.sent + self.unsent() as u64).min(usize::MAX as u64) as usize;
        if data.len() > room && !self.excess_logged {
            self.excess_logged = true;
            tracing::error!(
                "app wrote more body than its Content-Length for {} {}; the excess is cut",
                String::from_utf8_lossy(self.head.method()),
                String::from_utf8_lossy(self.head.target())
            );
        }
        &data[..data.len().min(room)]
    }

    /// Moves what the app recorded into the connection's frames, as far as the client's windows
    /// allow: the head, body bytes (cut at the app's `Content-Length`), a pull-mode body, the end
    /// and trailers; credits the body bytes the app read. `true` once the stream is over on our side
    /// (ended or reset); it is then logged and counted.
    pub(super) fn pump(&mut self, proto: &mut Connection, env: &mut Env<'_, '_>) -> bool {
        if self.finished {
            return true;
        }
        if let Some(status) = self.refusal {
            respond_status(proto, self.id, status, env.date);
            self.resp.status = status;
            return self.finish(env, status);
        }
        if self.credit > 0 {
            proto.consumed(self.id, std::mem::take(&mut self.credit));
        }
        if !proto.is_open(self.id) {
            // The client reset the stream (or the connection did): nothing more goes out.
            return self.finish(env, 499);
        }
        let code = self.completed;
        let failed = code.is_some_and(|c| c != RG_OK);
        if (failed || (code.is_some() && matches!(self.reply, Reply::None))) && !self.head_sent {
            match code {
                Some(RG_OK) => tracing::error!("app returned without a valid start_response; answering 500"),
                Some(code) => tracing::error!("app failed with status {code}; answering 500"),
                None => {}
            }
            respond_status(proto, self.id, 500, env.date);
            self.resp.status = 500;
            return self.finish(env, 500);
        }
        if failed {
            tracing::error!(
                "app failed with status {code:?} after its response started; resetting the stream"
            );
            proto.reset(self.id, ErrorCode::Internal);
            return self.finish(env, self.resp.status);
        }
        let bodiless = self.head.is_head() || status::forbids_body(self.resp.status);
        let body_waits = self.unsent() > 0 || self.file.is_some();
        if matches!(self.reply, Reply::Recorded { .. }) && (code.is_some() || body_waits) {
            if self.resp.status < 200 {
                tracing::error!("app gave {} as the final status; answering 500", self.resp.status);
                respond_status(proto, self.id, 500, env.date);
                self.resp.status = 500;
                return self.finish(env, 500);
            }
            let ends = code.is_some()
                && (bodiless
                    || (!body_waits && self.source.is_none() && self.resp.content_length.unwrap_or(0) == 0))
                && self.resp.trailers().is_empty();
            respond_head(proto, self.id, &self.resp, bodiless, ends, env.date);
            self.reply = Reply::Streaming;
            self.head_sent = true;
            if ends {
                return self.finish(env, self.resp.status);
            }
        }
        if !self.head_sent {
            return false;
        }
        if bodiless {
            self.outbox.clear();
            self.spill = None;
            self.file = None;
            self.source = None;
        }
        self.send_outbox(proto);
        self.pull_file(proto, env.scratch);
        if code.is_some() {
            self.pull(proto, env.scratch);
        }
        if self.completed.is_some_and(|c| c != RG_OK) {
            // The body's source or file failed midway: the client must not take it as whole.
            proto.reset(self.id, ErrorCode::Internal);
            return self.finish(env, self.resp.status);
        }
        if code.is_none() || self.unsent() > 0 || self.source.is_some() || self.file.is_some() {
            return false;
        }
        if let Some(missing) = self.resp.content_length.filter(|&n| !bodiless && self.sent < n) {
            tracing::error!(
                "app sent {} bytes less than its Content-Length for {} {}; resetting the stream",
                missing - self.sent,
                String::from_utf8_lossy(self.head.method()),
                String::from_utf8_lossy(self.head.target())
            );
            proto.reset(self.id, ErrorCode::Internal);
        } else if self.resp.trailers().is_empty() {
            proto.send_data(self.id, &[], true);
        } else {
            let fields: Vec<(&[u8], &[u8])> = self.resp.trailer_fields().collect();
            proto.send_trailers(self.id, &fields);
        }
        self.finish(env, self.resp.status)
    }

    /// Sends what the windows take of the outbox, refilled from the spill file as it drains.
    fn send_outbox(&mut self, proto: &mut Connection) {
        loop {
            let fits = self.outbox.len().min(room(proto, self.id));
            let taken = proto.send_data(self.id, &self.outbox[..fits], false);
            self.outbox.drain(..taken);
            self.sent += taken as u64;
            self.moved += taken as u64;
            if !self.outbox.is_empty() || room(proto, self.id) == 0 || !self.refill() {
                return;
            }
        }
    }

    /// Moves up to [`HIGH_WATER`] spilled bytes back into the outbox; whether it moved any.
    fn refill(&mut self) -> bool {
        let Some(spill) = self.spill.as_mut().filter(|s| s.unread() > 0) else { return false };
        let at = self.outbox.len();
        self.outbox.resize(at + HIGH_WATER.min(spill.unread() as usize), 0);
        match spill.peek(&mut self.outbox[at..]) {
            Ok(n) => {
                spill.take(n);
                self.outbox.truncate(at + n);
                n > 0
            }
            Err(e) => {
                tracing::error!("cannot read a spilled HTTP/2 response body back: {e}; resetting the stream");
                self.outbox.truncate(at);
                self.spill = None;
                self.completed = Some(rustgun_abi::RG_ERROR);
                false
            }
        }
    }

    /// Reads the file `send_file` handed over while the windows have room for it.
    fn pull_file(&mut self, proto: &mut Connection, scratch: &mut Vec<u8>) {
        while self.outbox.is_empty() && room(proto, self.id) > 0 {
            let Some(file) = self.file.as_mut() else { return };
            if scratch.is_empty() {
                scratch.resize(crate::worker::connection::READ_CHUNK, 0);
            }
            let want = scratch.len().min(room(proto, self.id)).min(file.left.min(usize::MAX as u64) as usize);
            match file.file.read_at(&mut scratch[..want], file.offset) {
                Ok(n) if n > 0 => {
                    file.offset += n as u64;
                    file.left -= n as u64;
                    if file.left == 0 {
                        self.file = None;
                    }
                    self.outbox.extend_from_slice(&scratch[..n]);
                    self.send_outbox(proto);
                }
                // The file ended early: what it had is sent, the Content-Length check says the rest.
                Ok(_) => self.file = None,
                Err(e) => {
                    tracing::error!("cannot read the file an app sends: {e}; resetting the stream");
                    self.file = None;
                    self.completed = Some(rustgun_abi::RG_ERROR);
                }
            }
        }
    }

    /// Whether a file `send_file` handed over is still being sent: body bytes written after it wait.
    pub(super) fn sending_file(&self) -> bool {
        self.file.is_some()
    }

    /// Pulls the pull-mode body while the windows have room for it, one block per pump.
    fn pull(&mut self, proto: &mut Connection, scratch: &mut Vec<u8>) {
        while self.outbox.is_empty() && room(proto, self.id) > 0 {
            let Some(source) = self.source.as_mut() else { return };
            if scratch.is_empty() {
                scratch.resize(crate::worker::connection::READ_CHUNK, 0);
            }
            let room = scratch.len().min(room(proto, self.id));
            let n = source.next(&mut scratch[..room]);
            if n <= 0 {
                if n < 0 {
                    tracing::error!("app body source failed with status {n}; resetting the stream");
                    self.completed = Some(n as i32);
                }
                self.source = None;
                return;
            }
            let data = self.within_length(&scratch[..n as usize]);
            self.outbox.extend_from_slice(data);
            self.send_outbox(proto);
            // No delay: the block reaches the socket before the app is asked for the next (the
            // driver writes, then pumps again), unless nothing more of the body can come.
            if !self.body_complete() {
                return;
            }
        }
    }

    /// Whether a pump now would frame more: a pull-mode body or a file still to send, with room for
    /// it in the windows.
    pub(super) fn wants_pump(&self, proto: &Connection) -> bool {
        self.completed.is_some() && (self.source.is_some() || self.file.is_some()) && room(proto, self.id) > 0
    }

    /// The stream is over on our side: logged, counted, and its pull-mode body closed.
    fn finish(&mut self, env: &mut Env<'_, '_>, status: u16) -> bool {
        self.finished = true;
        self.source = None;
        self.file = None;
        self.spill = None;
        self.outbox = Vec::new();
        if let Some(log) = env.ctx.access_log {
            let (head, info, resp) = (&self.head, env.info, &self.resp);
            log.write(&Record { head, info, resp, status, sent: self.sent, started: self.started });
        }
        env.ctx.count_request(env.ctx.lane(0), status, self.started);
        true
    }
}

/// How many body bytes a stream may frame now: what its windows allow, and no more than keeps the
/// connection's unwritten frames under [`HIGH_WATER`] (a client that opens huge windows and then
/// reads nothing holds that much of the worker, no more).
fn room(proto: &Connection, id: u32) -> usize {
    proto.send_capacity(id).min(HIGH_WATER.saturating_sub(proto.queued()))
}

/// A file `send_file` handed over, sent as the windows open.
struct FileBody {
    file: std::fs::File,
    offset: u64,
    left: u64,
}

/// What pumping a stream needs of the worker besides the connection.
pub(super) struct Env<'a, 'c> {
    pub ctx: &'a Context<'c>,
    pub info: &'a ConnInfo,
    pub date: &'a [u8],
    pub scratch: &'a mut Vec<u8>,
}

/// Sends the app's head: `:status`, then its fields (the encoder lowercases names), `server` and `date` unless
/// the app gave them, and its `content-length` (kept for HEAD and 304, RFC 9110 §8.6).
fn respond_head(
    proto: &mut Connection,
    id: u32,
    resp: &ResponseHead,
    bodiless: bool,
    ends: bool,
    date: &[u8],
) {
    let (has_server, has_date) = resp.names_server_and_date();
    let length = resp
        .content_length
        .filter(|_| !bodiless || (resp.status >= 200 && resp.status != 204))
        .map(|n| n.to_string());
    let mut fields: Vec<(&[u8], &[u8])> = Vec::with_capacity(16);
    if !has_server {
        fields.push((b"server", b"rustgun"));
    }
    if !has_date {
        fields.push((b"date", date));
    }
    fields.extend(resp.fields());
    if let Some(length) = &length {
        fields.push((b"content-length", length.as_bytes()));
    }
    proto.respond(id, resp.status, &fields, ends);
}

/// Answers a stream with `code` and its reason as a short plain-text body (an error the server
/// chose: a refused request, a failed app).
pub(super) fn respond_status(proto: &mut Connection, id: u32, code: u16, date: &[u8]) {
    let body = format!("{}\n", status::reason(code));
    let length = body.len().to_string();
    let fields: [(&[u8], &[u8]); 4] = [
        (b"server", b"rustgun"),
        (b"date", date),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", length.as_bytes()),
    ];
    proto.respond(id, code, &fields, false);
    proto.send_data(id, body.as_bytes(), true);
}

impl Exchange for StreamCall {
    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.body.read(buf) {
            Ok(n) => {
                if self.intake == Intake::AsRead && n > 0 {
                    self.credit += n as u32;
                    self.touch();
                }
                Ok(n)
            }
            Err(HostError::Again) => {
                self.owes_readable = true;
                Err(HostError::Again)
            }
            Err(e) => Err(e),
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
        record_head(&mut self.reply, &mut self.resp, &self.head, (status, reason, headers), replace)?;
        self.touch();
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), HostError> {
        if data.is_empty() {
            return if matches!(self.reply, Reply::None) { Err(NO_HEAD) } else { Ok(()) };
        }
        if self.outbox.len() >= HIGH_WATER || self.file.is_some() {
            self.owes_writable = true;
            return Err(HostError::Again);
        }
        self.push(data)?;
        self.touch();
        Ok(())
    }

    fn set_body(&mut self, source: RgBodySource) -> Result<(), HostError> {
        if self.source.is_some() {
            return Err(HostError::State("a body is registered already"));
        }
        self.source = Some(BodySource::new(source).ok_or(HostError::State("the body has no next"))?);
        Ok(())
    }

    /// The file goes out as the windows open, read as it goes (never its own offset moved); what
    /// passes the app's `Content-Length`, or a HEAD's or a 304's body, is never read.
    fn send_file(&mut self, file: BorrowedFd<'_>, offset: u64, len: u64) -> Result<u64, HostError> {
        if matches!(self.reply, Reply::None) {
            return Err(NO_HEAD);
        }
        if self.completed.is_some() {
            return Err(COMPLETED);
        }
        if self.file.is_some() {
            return Err(HostError::State("a file is being sent"));
        }
        let bodiless = self.head.is_head() || status::forbids_body(self.resp.status);
        let room = match self.resp.content_length {
            _ if bodiless => 0,
            Some(n) => n.saturating_sub(self.sent + self.unsent() as u64),
            None => u64::MAX,
        };
        let len = len.min(room);
        if len > 0 {
            let file = std::fs::File::from(file.try_clone_to_owned().map_err(HostError::Io)?);
            self.file = Some(FileBody { file, offset, left: len });
            self.touch();
        }
        Ok(len)
    }

    fn trailers(&mut self, headers: &[RgHeader]) -> Result<(), HostError> {
        if self.completed.is_some() {
            return Err(COMPLETED);
        }
        record_trailers(&self.reply, &mut self.resp, headers)
    }

    fn complete(&mut self, status: i32) -> Result<(), HostError> {
        self.completed = Some(status);
        self.touch();
        Ok(())
    }
}

impl Socket for StreamCall {
    fn end(&mut self, status: i32) {
        self.completed = Some(status);
        self.touch();
    }
}
