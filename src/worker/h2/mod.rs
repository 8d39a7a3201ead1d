//! HTTP/2 in the event loop: a [`Session`] is one connection's HTTP/2 side — the sans-I/O
//! [`Connection`] and a [`StreamCall`] per open stream. The loop hands it the client's bytes
//! ([`Session::receive`]), lets it run the apps of the streams that are ready ([`Session::run_ready`])
//! and move what they recorded into frames ([`Session::pump_all`]), and writes
//! [`Session::output`] to the socket.
//!
//! Every stream is a request as the app knows it (`SERVER_PROTOCOL` `HTTP/2`): a synchronous app runs
//! on the loop once its stream's body is here, an async app as soon as its head is, and goes on
//! through host calls. Each stream's response is held to its own window, so a stream whose client
//! does not read holds up no other: what waits is the app's outbox (bounded by `write`'s
//! back-pressure) and nothing else. A stream whose client keeps its window shut is reset by the
//! minimum-rate rule ([`Session::sweep`]).
//!
//! Not here: frames and the protocol's rules (`http::h2`), sockets, epoll and deadlines (the event
//! loop's `event::h2`), the response's recording rules ([`stream`]).

mod inline;
mod stream;

pub(in crate::worker) use stream::touched;

use super::Context;
use super::connection::{Shared, record_refusal, unix_now};
use super::pace::{self, MinRate};
use crate::app::ConnInfo;
use crate::config::Http2Settings;
use crate::http::date::DateCache;
use crate::http::h2::ErrorCode;
use crate::http::h2::conn::{Connection, Event};
use crate::http::h2::hpack::Fields;
use crate::http::h2::request::request_head;
use crate::http::parse::RequestHead;
use crate::net::Stream;
use inline::Link;
use rustgun_abi::{RG_EV_DISCONNECT, RG_EV_READABLE, RG_EV_WRITABLE, RgCall};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};
use stream::{Env, Intake, StreamCall, respond_status};

use super::connection::ReadBuf;

/// One connection's HTTP/2 state.
pub(in crate::worker) struct Session {
    proto: Connection,
    calls: BTreeMap<u32, Rc<RefCell<StreamCall>>>,
    /// Streams whose app may run now (a synchronous app's once its body is here), in that order.
    ready: VecDeque<u32>,
    events: Vec<Event>,
    scratch: Vec<u8>,
    token: usize,
    /// The connection failed (its streams abandoned), or the client said it is going away (the
    /// streams it started finish): the connection closes once no stream is left and the output is
    /// written.
    closing: bool,
    /// Events owed to async apps, given once no borrow of their calls is held.
    owed: Vec<(*mut RgCall, u32)>,
    date: DateCache,
    /// The running streams' ids while they are pumped (kept, so a pump allocates nothing).
    pumping: Vec<u32>,
    /// The client was cut off for abuse (a connection error of ENHANCE_YOUR_CALM).
    abusive: bool,
}

impl Session {
    /// A session for the connection at `token`, its SETTINGS queued. The connection's own window is
    /// opened to what all its streams' windows add up to, so that only a stream's window bounds it.
    pub(in crate::worker) fn new(settings: &Http2Settings, token: usize) -> Session {
        Session::over(Connection::new(settings.config), token)
    }

    /// A session for a connection whose HTTP/1.1 request `head` asked to go on as HTTP/2
    /// (`Upgrade: h2c`, its `HTTP2-Settings` in `settings_field`): the request is stream 1, ready to
    /// run. `None` when the field is not a valid SETTINGS payload.
    pub(in crate::worker) fn upgraded(
        settings: &Http2Settings,
        token: usize,
        settings_field: &[u8],
        mut head: RequestHead,
        ctx: &Context<'_>,
    ) -> Option<Session> {
        let proto = Connection::upgraded(settings.config, settings_field).ok()?;
        let mut session = Session::over(proto, token);
        head.version = crate::http::Version::Http2;
        let intake = if ctx.app.lib.is_async() { Intake::AsRead } else { Intake::Gather };
        let mut call = StreamCall::new(1, token, head, intake);
        call.end_body(Ok(()));
        session.calls.insert(1, Rc::new(RefCell::new(call)));
        session.ready.push_back(1);
        Some(session)
    }

    /// A session over `proto`, whose own receive window is opened to what all its streams' windows
    /// add up to.
    fn over(mut proto: Connection, token: usize) -> Session {
        let config = proto.config();
        let streams = config.max_concurrent_streams.min(1024);
        proto.widen_window(config.initial_window_size.saturating_mul(streams).saturating_sub(65_535));
        Session {
            proto,
            calls: BTreeMap::new(),
            ready: VecDeque::new(),
            events: Vec::new(),
            scratch: Vec::new(),
            token,
            closing: false,
            owed: Vec::new(),
            date: DateCache::default(),
            pumping: Vec::new(),
            abusive: false,
        }
    }

    /// The frames to write; the driver drains what it wrote.
    pub(in crate::worker) fn output(&mut self) -> &mut Vec<u8> {
        self.proto.output()
    }

    /// Whether the connection is over: it failed or the client left, or it is shutting down (GOAWAY
    /// sent), and no stream is left.
    pub(in crate::worker) fn is_over(&self) -> bool {
        (self.closing || self.proto.is_done()) && self.calls.is_empty()
    }

    /// Whether the client was cut off for abuse: what is queued for it is not worth sending.
    pub(in crate::worker) fn is_abusive(&self) -> bool {
        self.abusive
    }

    /// Whether no stream is open: the connection is idle (`--keep-alive` bounds it).
    pub(in crate::worker) fn is_idle(&self) -> bool {
        self.calls.is_empty() && self.proto.open_streams() == 0
    }

    /// Graceful shutdown: GOAWAY; the streams already started finish, no new one starts.
    pub(in crate::worker) fn go_away(&mut self) {
        self.proto.go_away();
    }

    /// Takes the client's bytes: every whole frame of `input` is acted on; how many bytes were used.
    /// A connection error queues GOAWAY and ends the session's streams.
    pub(in crate::worker) fn receive(&mut self, input: &[u8], info: &ConnInfo, ctx: &Context<'_>) -> usize {
        let mut events = std::mem::take(&mut self.events);
        let used = match self.proto.receive(input, &mut events) {
            Ok(used) => used,
            Err(e) => {
                tracing::debug!(
                    "HTTP/2 connection error from ip={}: {} ({:?})",
                    info.peer_or_unix(),
                    e.why,
                    e.code
                );
                if e.code == ErrorCode::EnhanceYourCalm {
                    tracing::warn!("HTTP/2 client cut off: {} (ip={})", e.why, info.peer_or_unix());
                    ctx.count_refused(None, crate::sys::scoreboard::Refusal::Http2Abuse);
                    self.abusive = true;
                }
                // GOAWAY is queued: the streams end with the connection, and what the frames
                // before the error began (a request) is not started.
                self.closing = true;
                self.abandon_all(ctx);
                events.clear();
                input.len()
            }
        };
        for event in events.drain(..) {
            self.on_event(event, info, ctx);
        }
        self.events = events;
        used
    }

    fn on_event(&mut self, event: Event, info: &ConnInfo, ctx: &Context<'_>) {
        let settings = ctx.settings;
        match event {
            Event::Request { stream, fields, end_stream } => {
                self.begin(stream, &fields, end_stream, info, ctx)
            }
            Event::Data { stream, data, end_stream } => {
                let Some(call) = self.calls.get(&stream).cloned() else {
                    // A stream we answered already: its bytes are nobody's.
                    self.proto.consumed(stream, data.len() as u32);
                    return;
                };
                let Ok(mut c) = call.try_borrow_mut() else { return };
                let taken = c.take_data(&data, settings.limit_request_body, settings.client_body_buffer);
                if c.intake() == Intake::Gather {
                    self.proto.consumed(stream, data.len() as u32);
                }
                if let Err(status) = taken {
                    drop(c);
                    return self.refuse_body(stream, status, info, ctx);
                }
                if end_stream {
                    self.body_ended(&mut c);
                }
                if c.take_readable() {
                    self.owed.push((c.call, RG_EV_READABLE));
                }
            }
            Event::Trailers { stream, .. } => {
                if let Some(call) = self.calls.get(&stream).cloned()
                    && let Ok(mut c) = call.try_borrow_mut()
                {
                    self.body_ended(&mut c);
                    if c.take_readable() {
                        self.owed.push((c.call, RG_EV_READABLE));
                    }
                }
            }
            Event::Reset { stream, .. } => {
                if let Some(call) = self.calls.remove(&stream) {
                    self.abandon(&call, ctx);
                }
            }
            // Every stream with something to send is pumped after the input.
            Event::Writable => {}
            Event::GoAway { .. } => self.closing = true,
        }
    }

    /// A new stream: its request head for the app, checked as HTTP/1.1's is; refused with its
    /// status when it is not one.
    fn begin(&mut self, stream: u32, fields: &Fields, end_stream: bool, info: &ConnInfo, ctx: &Context<'_>) {
        let started = Instant::now();
        let settings = ctx.settings;
        let mut head = RequestHead::default();
        let built = request_head(fields, end_stream, &settings.limits, &mut self.scratch, &mut head);
        let refused = match built {
            Err(e) => Some((e.status(), e.detail)),
            Ok(())
                if settings.limit_request_body > 0
                    && head.content_length().is_some_and(|n| n > settings.limit_request_body) =>
            {
                Some((413, "request body too large"))
            }
            Ok(()) => None,
        };
        if let Some((status, why)) = refused {
            return self.refuse(stream, (status, why), info, ctx, started);
        }
        let intake = if ctx.app.lib.is_async() { Intake::AsRead } else { Intake::Gather };
        if head.expect_continue && !end_stream {
            // The client may hold its body back until told to go on; it is read as it comes.
            self.proto.respond(stream, 100, &[], false);
        }
        let mut call = StreamCall::new(stream, self.token, head, intake);
        if end_stream {
            call.end_body(Ok(()));
        }
        if intake == Intake::AsRead || end_stream {
            self.ready.push_back(stream);
        }
        self.calls.insert(stream, Rc::new(RefCell::new(call)));
    }

    /// A stream's request ended: a gathered one may run now.
    fn body_ended(&mut self, c: &mut StreamCall) {
        c.end_body(Ok(()));
        if c.intake() == Intake::Gather && !c.running {
            self.ready.push_back(c.id);
        }
    }

    /// Answers a request with `status` before its app runs (logged as refused).
    fn refuse(
        &mut self,
        stream: u32,
        (status, why): (u16, &str),
        info: &ConnInfo,
        ctx: &Context<'_>,
        started: Instant,
    ) {
        respond_status(&mut self.proto, stream, status, self.date.get(unix_now()));
        record_refusal(info, ctx, 0, (status, &why), started);
    }

    /// A body refused as it arrives (too large, or it cannot be spooled): answered with `status` if
    /// the app has not run yet, and the client told to stop sending (RST_STREAM NO_ERROR, RFC 9113
    /// §8.1); a running app reads the body as cut short.
    fn refuse_body(&mut self, stream: u32, status: u16, info: &ConnInfo, ctx: &Context<'_>) {
        let Some(call) = self.calls.get(&stream).cloned() else { return };
        let (running, started) = {
            let c = call.borrow();
            (c.running, c.started)
        };
        if running {
            self.proto.reset(stream, ErrorCode::Cancel);
            return;
        }
        self.calls.remove(&stream);
        self.refuse(stream, (status, "request body too large"), info, ctx, started);
        self.proto.reset(stream, ErrorCode::NoError);
    }

    /// Runs the apps of the streams that are ready, one after another, each one's answer written
    /// before the next runs. A synchronous app runs to its end (its pushed body spilled past what the
    /// window takes, [`stream`]); an async app's call goes on after `handle` through host calls.
    pub(in crate::worker) fn run_ready(
        &mut self,
        (socket, rbuf): (&mut Stream, &mut ReadBuf),
        shared: &mut Shared,
        info: &ConnInfo,
        ctx: &Context<'_>,
    ) {
        // (A connection error abandoned every stream: their ids name nothing any more.)
        while let Some(id) = self.ready.pop_front() {
            let Some(call) = self.calls.get(&id).cloned() else { continue };
            inline::run(self, &call, Link { socket, rbuf }, shared, info, ctx);
            self.pump(&call, info, ctx);
            // Its answer leaves before the next app runs (a failed write shows at the next one).
            let _ = socket.write_some(self.proto.output());
        }
        self.deliver(ctx);
    }

    /// Moves what every running stream recorded into frames, as far as the windows allow.
    pub(in crate::worker) fn pump_all(&mut self, info: &ConnInfo, ctx: &Context<'_>) {
        let mut ids = std::mem::take(&mut self.pumping);
        ids.extend(
            self.calls.iter().filter(|(_, c)| c.try_borrow().is_ok_and(|c| c.running)).map(|(id, _)| *id),
        );
        for &id in &ids {
            if let Some(call) = self.calls.get(&id).cloned() {
                self.pump(&call, info, ctx);
            }
        }
        ids.clear();
        self.pumping = ids;
        self.deliver(ctx);
    }

    /// Whether a stream would frame more if pumped again (its pull-mode body, one block per pump).
    pub(in crate::worker) fn wants_pump(&self) -> bool {
        self.calls.values().any(|c| c.try_borrow().is_ok_and(|c| c.wants_pump(&self.proto)))
    }

    /// Moves what the stream `id` recorded into frames (a call host calls touched).
    pub(in crate::worker) fn pump_stream(&mut self, id: u32, info: &ConnInfo, ctx: &Context<'_>) {
        if let Some(call) = self.calls.get(&id).cloned() {
            self.pump(&call, info, ctx);
        }
        self.deliver(ctx);
    }

    pub(super) fn pump(&mut self, call: &Rc<RefCell<StreamCall>>, info: &ConnInfo, ctx: &Context<'_>) {
        let Ok(mut c) = call.try_borrow_mut() else { return };
        if !c.running {
            return;
        }
        let date = self.date.get(unix_now());
        let mut env = Env { ctx, info, date, scratch: &mut self.scratch };
        let done = c.pump(&mut self.proto, &mut env);
        if done {
            let id = c.id;
            let pending = (!c.call.is_null() && c.completed.is_none()).then_some(c.call);
            drop(c);
            self.calls.remove(&id);
            if let Some(handle) = pending {
                self.owed.push((handle, RG_EV_DISCONNECT));
            }
        } else if c.take_writable() {
            self.owed.push((c.call, RG_EV_WRITABLE));
        }
    }

    /// A stream gone before its response ended (reset, or the connection closing): an async app that
    /// has not completed its call hears `RG_EV_DISCONNECT`, and the request is counted as the
    /// client's (499).
    fn abandon(&mut self, call: &Rc<RefCell<StreamCall>>, ctx: &Context<'_>) {
        let Ok(c) = call.try_borrow() else { return };
        if c.running && c.completed.is_none() && !c.call.is_null() {
            ctx.count_request(ctx.lane(0), 499, c.started);
            self.owed.push((c.call, RG_EV_DISCONNECT));
        }
    }

    /// The connection is closing: every stream still open is abandoned.
    pub(in crate::worker) fn abandon_all(&mut self, ctx: &Context<'_>) {
        for (_, call) in std::mem::take(&mut self.calls) {
            self.abandon(&call, ctx);
        }
        self.deliver(ctx);
    }

    /// Gives async apps the events owed to them, with no borrow of their calls held; the last one
    /// of a call ends its handle.
    fn deliver(&mut self, ctx: &Context<'_>) {
        if self.owed.is_empty() {
            return;
        }
        let _dispatching = crate::app::wake::dispatching();
        for (call, kind) in std::mem::take(&mut self.owed) {
            ctx.app.on_event(call, kind, 0, &[]);
            if kind == RG_EV_DISCONNECT {
                crate::app::calls::end(call);
            }
        }
    }

    /// The minimum-rate rule per stream, once per sweep (`elapsed` since the last one): a stream
    /// whose response waits on a client that keeps its window shut, or opens it slower than
    /// `--min-rate`, is reset (CANCEL); the connection's other streams go on.
    pub(in crate::worker) fn sweep(
        &mut self,
        elapsed: Duration,
        rule: MinRate,
        info: &ConnInfo,
        ctx: &Context<'_>,
    ) {
        let mut slow = Vec::new();
        for call in self.calls.values() {
            let Ok(mut c) = call.try_borrow_mut() else { continue };
            let moved = std::mem::take(&mut c.moved);
            let waited = if c.waits_on_client(&self.proto) { elapsed } else { Duration::ZERO };
            if c.running && c.pace.record(waited, moved, rule) {
                slow.push(c.id);
            }
        }
        for id in slow {
            pace::dropped(ctx.lane(0), rule, "taking an HTTP/2 stream's response", info.peer_ip);
            self.proto.reset(id, ErrorCode::Cancel);
            if let Some(call) = self.calls.get(&id).cloned() {
                self.pump(&call, info, ctx);
            }
        }
        self.deliver(ctx);
    }
}
