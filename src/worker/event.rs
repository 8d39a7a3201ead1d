//! The `event` worker class: one epoll loop multiplexing every connection of the worker over
//! non-blocking sockets, so an idle keep-alive client costs a few hundred bytes and no thread.
//!
//! Each connection moves through a small set of phases ([`Phase`]): idle between requests, receiving a
//! head, writing a response, streaming a parked pull-mode body, lingering before close. When a complete
//! head has arrived the loop runs the exchange inline — the same [`connection::exchange`] the blocking
//! classes use, so the protocol, the limits and the app boundary are shared — with queued output: what
//! the socket does not take at once is written when it becomes writable, and a pull-mode body is
//! produced only as the client takes it ([`connection::resume`]). A client slower than `--min-rate`
//! is dropped ([`super::pace`]). Listeners are registered with `EPOLLEXCLUSIVE`, so one connection wakes one
//! worker, not all of them.
//!
//! Not here: the exchange itself (`connection`), timeouts' values (`config`). Still waiting inline
//! without `--threads`: an app's push past its queue's cap.

mod accept;
mod h2;
mod later;
mod pool;
mod requests;
mod sockets;
mod spares;
mod stepped;
mod sweep;

use super::Context;
use super::connection::{
    self, Io, LOW_WATER, OUT_CAPACITY, Parked, Pending, ProxyStart, READ_CHUNK, ReadBuf, STOP_GRACE, Shared,
};
use super::gather::Gather;
use super::pace::Pace;
use super::websocket::Link;
use crate::app::ConnInfo;
use crate::config::Config;
use crate::http;
use crate::http::conn::{After, LINGER, Wait};
use crate::net::{Listener, Stream};
use crate::sys::scoreboard::Refusal;
use nix::fcntl::OFlag;
use nix::poll::PollFlags;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::cell::RefCell;
use std::io;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use h2::Opening;
use pool::{Handoff, Pool, Queue, pool_thread};
use requests::run_requests;
use sockets::SOCKET;
use spares::Spares;
/// Token of the stop pipe; listener `i` is `LISTENER + i`; connections are their slab index.
const STOP: u64 = u64::MAX;
/// Token of the pipe pool threads write to when they hand a connection back.
const WAKE: u64 = u64::MAX - 1;
/// Token of the eventfd that `post` and host calls made outside the loop's dispatch write to.
const POSTED: u64 = u64::MAX - 2;
const LISTENER: u64 = 1 << 62;
/// Connections accepted per listener wake-up; the rest wake the other workers.
const ACCEPTS_PER_WAKE: usize = 1;
/// How often timeouts are checked.
const TICK: Duration = Duration::from_millis(250);
/// One wake-up reads at most this much of a connection's input (pipelined requests beyond it wait
/// for the next), so a burst never grows its read buffer past this plus one chunk.
const READ_BATCH: usize = 64 * 1024;

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// `--proxy-protocol`: waiting for the PROXY header; closed quietly after `--header-timeout`.
    Proxy,
    /// Between requests, nothing buffered; closed quietly after `--keep-alive`.
    Idle,
    /// Part of a head has arrived; answered 408 after `--header-timeout`.
    Head,
    /// A complete head whose body is being gathered before the app runs ([`Gather`]); answered 408
    /// when the body arrives slower than `--min-rate` (no deadline of its own).
    Body,
    /// Output is waiting for the socket; afterwards the connection persists or closes.
    Writing(After),
    /// A pull-mode body is being produced as the client takes it: refilled below
    /// [`connection::LOW_WATER`], parked at [`connection::HIGH_WATER`].
    Streaming,
    /// Our side is shut; we read and discard until the client closes or `LINGER` passes.
    Lingering,
    /// The app accepted a WebSocket: the connection moves to the links ([`sockets`]) at once.
    Upgraded,
    /// An async app returned `RG_PENDING`: the response goes on through host calls ([`later`]); only
    /// the client's hang-up is watched, and output while there is some.
    Pending,
    /// The response is out; the rest of a body the app left unread is discarded as it comes
    /// ([`After::Discard`]), bounded by the minimum rate, then the next request.
    Discard,
    /// The connection speaks HTTP/2: its session ([`h2`]) has it for good.
    Http2,
}

struct Conn {
    stream: Stream,
    rbuf: ReadBuf,
    out: Vec<u8>,
    info: ConnInfo,
    phase: Phase,
    deadline: Instant,
    /// Whether epoll currently waits for writability rather than readability.
    writing: bool,
    /// The connection's protocol state: what it has received and sent, and what comes next.
    proto: http::conn::Conn,
    /// Accepted, and no byte has arrived yet: the client's first request is on its way.
    fresh: bool,
    /// Which protocol the connection speaks is not decided yet (HTTP/2 is served).
    opening: bool,
    /// The response being produced in [`Phase::Streaming`]; dropping it closes the app's body.
    parked: Option<Box<Parked>>,
    /// The body being gathered in [`Phase::Body`].
    gather: Option<Gather>,
    /// The head handed to the pool with the connection, or given back by it.
    handoff: Handoff,
    /// How the client keeps up while the loop waits on it (`--min-rate`): bytes moved since the last
    /// sweep, and when that was.
    pace: Pace,
    moved: u64,
    paced: Instant,
}

/// The loop's state.
struct Loop<'a, 'c> {
    epoll: Epoll,
    ctx: &'a Context<'c>,
    listeners: &'a [&'a Listener],
    locals: Vec<(String, u16)>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// The pending calls of connections in [`Phase::Pending`], by token.
    pending: Vec<Option<Rc<RefCell<Pending>>>>,
    /// The HTTP/2 sessions of connections in [`Phase::Http2`], by token.
    sessions: Vec<Option<Box<crate::worker::h2::Session>>>,
    /// Accepted WebSockets, their free slots, and what epoll watches on each (write, read).
    sockets: Vec<Option<Rc<RefCell<Link>>>>,
    free_sockets: Vec<usize>,
    interest: Vec<(bool, bool)>,
    /// Connections and WebSockets.
    live: usize,
    max_conns: usize,
    accepting: bool,
    stopping: bool,
    shared: Shared,
    /// Read buffers and output buffers of connections that hold no bytes, lent to the next ones.
    storage: Spares,
    outs: Spares,
    id: u32,
    flags: u32,
    pool: Option<Pool>,
    /// The eventfd of `post` ([`crate::app::wake`]).
    posted: std::os::fd::OwnedFd,
    next_sweep: Instant,
}

/// Runs the event loop until the worker is told to stop and its connections are done.
pub fn run(id: u32, listeners: &[&Listener], ctx: &Context<'_>, flags: u32, config: &Config) {
    let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("cannot create the epoll instance: {e}");
            return;
        }
    };
    if let Err(e) = epoll.add(ctx.stop_fd, EpollEvent::new(EpollFlags::EPOLLIN, STOP)) {
        tracing::error!("cannot watch the stop pipe: {e}");
        return;
    }
    // `post` and host calls from outside the loop's dispatch wake it through this.
    let posted = match crate::app::wake::install() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::error!("cannot create the loop's eventfd: {e}");
            return;
        }
    };
    if let Err(e) = epoll.add(posted.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, POSTED)) {
        tracing::error!("cannot watch the loop's eventfd: {e}");
        return;
    }
    let mut ev = Loop {
        epoll,
        ctx,
        listeners,
        locals: listeners.iter().map(|l| l.local()).collect(),
        conns: Vec::new(),
        free: Vec::new(),
        pending: Vec::new(),
        sessions: Vec::new(),
        sockets: Vec::new(),
        free_sockets: Vec::new(),
        interest: Vec::new(),
        live: 0,
        max_conns: config.worker_connections as usize,
        accepting: false,
        stopping: false,
        shared: Shared::default(),
        // A read buffer is cut back to one chunk of bytes but keeps the room of a whole read batch, so
        // a pipelined burst grows it without allocating.
        storage: Spares::new(READ_CHUNK, READ_BATCH + READ_CHUNK),
        outs: Spares::new(0, OUT_CAPACITY),
        id,
        flags,
        pool: None,
        posted,
        next_sweep: Instant::now() + TICK,
    };
    ev.set_accepting(true);
    // An async app's calls live on the loop (their handles and events are the loop thread's): it
    // never blocks it, so it needs no pool.
    if ctx.app.lib.is_async() {
        ev.serve_async();
        return crate::app::wake::uninstall();
    }
    if config.threads <= 1 {
        return ev.serve();
    }
    // `--threads N`: app calls run on a pool of N threads; the loop only moves bytes.
    let (wake_rd, wake_wr) = match nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("cannot create the pool's wake pipe: {e}; running app calls on the loop");
            return ev.serve();
        }
    };
    if let Err(e) = ev.epoll.add(wake_rd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE)) {
        tracing::error!("cannot watch the pool's wake pipe: {e}; running app calls on the loop");
        return ev.serve();
    }
    let (jobs, done) = (Queue::new(), Queue::new());
    ev.pool = Some(Pool { jobs: jobs.clone(), done: done.clone(), wake: std::fs::File::from(wake_rd) });
    std::thread::scope(|scope| {
        for i in 0..config.threads as usize {
            let (jobs, done, wake) = (&*jobs, &*done, &wake_wr);
            // Lane 0 is the loop's; pool thread i reports on lane i + 1.
            scope.spawn(move || pool_thread(jobs, done, wake, ctx, i + 1));
        }
        ev.serve();
        // Dropping the pool closes its job queue, which ends the pool threads.
        ev.pool = None;
    });
}

impl Loop<'_, '_> {
    fn serve(&mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        let _dispatching = crate::app::wake::dispatching();
        while self.turn(&mut events, TICK).is_some() {}
    }

    /// One turn of the loop: waits up to `timeout` for readiness, handles what is ready, applies the
    /// deadlines when a tick is due, and writes out what host calls queued. The time until the next
    /// tick, or `None` once the worker is done (stopped, and its connections finished).
    fn turn(&mut self, events: &mut [EpollEvent], timeout: Duration) -> Option<Duration> {
        if self.ctx.stopping() && !self.stopping {
            self.begin_stop();
        }
        if self.stopping && self.live == 0 {
            return None;
        }
        let beat = self.ctx.lane(0);
        let timeout = EpollTimeout::try_from(timeout).unwrap_or(EpollTimeout::NONE);
        if let Some(lane) = beat
            && timeout != EpollTimeout::ZERO
        {
            lane.waiting();
        }
        let waited = self.epoll.wait(events, timeout);
        if let Some(lane) = beat {
            lane.awake();
        }
        let n = match waited {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => {
                tracing::error!("epoll_wait failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                0
            }
        };
        for event in &events[..n] {
            match event.data() {
                STOP => self.begin_stop(),
                WAKE => self.returned(),
                POSTED => self.run_posted(),
                token if token >= LISTENER => self.accept((token - LISTENER) as usize),
                token if token >= SOCKET => self.on_socket((token - SOCKET) as usize, event.events()),
                token => self.on_ready(token as usize, event.events()),
            }
        }
        self.settle();
        let now = Instant::now();
        if now >= self.next_sweep {
            self.sweep(now);
            self.sweep_sockets(now);
            self.settle();
            self.next_sweep = now + TICK;
        }
        Some(self.next_sweep.saturating_duration_since(now))
    }

    /// Stops accepting; idle keep-alive connections get [`STOP_GRACE`] more. Their clients cannot know
    /// we are stopping and may be sending a request right now: one that arrives is answered with
    /// `Connection: close` (so is one that had already arrived). A connection accepted but not yet
    /// heard from keeps its header deadline, for the same reason.
    fn begin_stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        // The stop pipe is never drained: left in the set, it would end every wait at once and spin
        // the loop for as long as the stop takes.
        let _ = self.epoll.delete(self.ctx.stop_fd);
        self.set_accepting(false);
        self.stop_sockets();
        self.stop_h2();
        for token in 0..self.conns.len() {
            if !self.conns[token].as_ref().is_some_and(|c| c.phase == Phase::Idle && !c.fresh) {
                continue;
            }
            match self.read(token) {
                Ok(true) if self.conns[token].as_ref().is_some_and(|c| c.phase == Phase::Head) => {
                    self.drive(token)
                }
                Ok(true) => self.shorten_idle(token),
                _ => self.close(token),
            }
        }
        // Logged once the idle connections have their grace: a request that arrives after the line
        // finds its connection waiting for it.
        self.ctx.log_stopping();
    }

    /// While stopping, an idle connection waits at most [`STOP_GRACE`] for another request.
    fn shorten_idle(&mut self, token: usize) {
        if let Some(conn) = self.conns[token].as_mut() {
            conn.deadline = conn.deadline.min(Instant::now() + STOP_GRACE);
        }
    }

    fn close(&mut self, token: usize) {
        // Closing the descriptor (its only one) takes it out of the epoll set: no EPOLL_CTL_DEL needed.
        if let Some(mut conn) = self.conns[token].take() {
            if let Some(pending) = self.pending.get_mut(token).and_then(Option::take) {
                self.abandon(pending);
            }
            if let Some(mut session) = self.sessions.get_mut(token).and_then(Option::take) {
                session.abandon_all(self.ctx);
            }
            if conn.stream.handshake_failed() {
                self.ctx.count_refused(None, Refusal::Tls);
            }
            self.recycle(&mut conn);
            self.free.push(token);
            self.live -= 1;
            if !self.accepting && self.live < self.max_conns {
                self.set_accepting(true);
            }
        }
    }

    /// Returns a connection's empty buffers to the pools.
    fn recycle(&mut self, conn: &mut Conn) {
        conn.rbuf.clear();
        if let Some(storage) = conn.rbuf.take_storage() {
            self.storage.keep(storage);
        }
        if conn.out.is_empty() && conn.out.capacity() > 0 {
            self.outs.keep(std::mem::take(&mut conn.out));
        }
    }

    fn on_ready(&mut self, token: usize, events: EpollFlags) {
        let Some(conn) = self.conns.get_mut(token).and_then(Option::as_mut) else { return };
        if conn.phase == Phase::Pending {
            return self.on_pending(token, events);
        }
        if conn.phase == Phase::Http2 {
            return self.on_h2(token, events);
        }
        if events.intersects(EpollFlags::EPOLLERR) {
            return self.close(token);
        }
        if conn.writing {
            if events.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLHUP) {
                self.drive(token);
            }
            return;
        }
        // TLS may hold decrypted bytes epoll cannot see: keep going while the stream says so.
        for _ in 0..16 {
            match self.read(token) {
                Ok(true) => self.drive(token),
                // The client closed its side. Requests it sent complete before that are answered (a
                // client may half-close right after its request, as `sync` and `threads` allow), then
                // the connection closes once their output is written; a partial head gets no
                // response (RFC 9112 §9.6).
                Ok(false) => {
                    self.drive(token);
                    if self.conns[token].as_ref().is_some_and(|c| !c.writing) {
                        self.close(token);
                    }
                    return;
                }
                Err(()) => return self.close(token),
            }
            match self.conns[token].as_ref() {
                Some(conn) if !conn.writing && conn.stream.has_buffered_input() => continue,
                _ => break,
            }
        }
        self.watch_tls_output(token);
    }

    /// A TLS stream may owe the peer bytes while we wait to read (a handshake flight the socket did
    /// not take): send what it can now, and wait for writability too while something is still owed.
    fn watch_tls_output(&mut self, token: usize) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        if conn.writing || !conn.stream.is_tls() {
            return;
        }
        if conn.stream.try_flush().is_err() {
            return self.close(token);
        }
        let owes = conn.stream.interest(PollFlags::POLLIN).contains(PollFlags::POLLOUT);
        let mut flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        if owes {
            flags |= EpollFlags::EPOLLOUT;
        }
        let mut event = EpollEvent::new(flags, token as u64);
        if self.epoll.modify(conn.stream.as_fd(), &mut event).is_err() {
            self.close(token);
        }
    }

    /// Reads what the socket has; `Ok(false)` at EOF. A read that did not fill the space offered has
    /// taken everything that had arrived: epoll is level-triggered and reports anything newer, so no
    /// further `recv` is spent just to hear `EAGAIN` (a third of the loop's system calls under
    /// keep-alive load).
    fn read(&mut self, token: usize) -> Result<bool, ()> {
        let conn = self.conns[token].as_mut().ok_or(())?;
        if !conn.rbuf.has_storage() {
            conn.rbuf.give_storage(self.storage.take());
        }
        loop {
            if conn.phase == Phase::Lingering {
                conn.rbuf.clear();
            }
            let spare = conn.rbuf.spare();
            let offered = spare.len();
            match conn.stream.try_read(spare) {
                Ok(Some(0)) => return Ok(false),
                Ok(Some(n)) => {
                    conn.rbuf.commit(n);
                    conn.fresh = false;
                    if conn.phase == Phase::Idle {
                        conn.phase = Phase::Head;
                        conn.deadline = Instant::now() + self.ctx.settings.header_timeout;
                    }
                    if matches!(conn.phase, Phase::Body | Phase::Discard) {
                        conn.moved += n as u64;
                    }
                    if n < offered || conn.rbuf.data().len() >= READ_BATCH {
                        return Ok(true);
                    }
                }
                Ok(None) => return Ok(true),
                Err(_) => return Err(()),
            }
        }
    }

    /// Moves a connection forward as far as it can go without waiting: run every complete request
    /// buffered, write the output, and settle in the phase that waits for the next event.
    fn drive(&mut self, token: usize) {
        loop {
            let settings = self.ctx.settings;
            let Some(conn) = self.conns[token].as_mut() else { return };
            match conn.phase {
                Phase::Lingering => return,
                Phase::Http2 => return self.h2_drive(token),
                Phase::Upgraded => return self.adopt(token),
                Phase::Pending => return self.pending_io(token),
                Phase::Discard => {
                    let Ok((taken, done)) = conn.proto.discard(conn.rbuf.data()) else {
                        return self.close(token);
                    };
                    conn.rbuf.consume(taken);
                    if !done {
                        return;
                    }
                    let now = Instant::now();
                    (conn.phase, conn.deadline) = if conn.rbuf.is_empty() {
                        (Phase::Idle, now + settings.keep_alive)
                    } else {
                        (Phase::Head, now + settings.header_timeout)
                    };
                }
                Phase::Proxy => {
                    if conn.out.capacity() == 0 {
                        conn.out = self.outs.take();
                    }
                    let mut io = Io::new(&mut conn.stream, &mut conn.rbuf, &mut conn.out, settings);
                    match connection::take_proxy_header(
                        (&mut io, &mut conn.proto),
                        &mut self.shared,
                        &mut conn.info,
                        self.ctx,
                        Instant::now(),
                    ) {
                        ProxyStart::Incomplete => return,
                        ProxyStart::Refused => conn.phase = Phase::Writing(After::Linger),
                        ProxyStart::Adopted => {
                            conn.phase = if conn.rbuf.is_empty() { Phase::Idle } else { Phase::Head };
                            conn.deadline = Instant::now() + settings.header_timeout;
                        }
                    }
                }
                Phase::Streaming => {
                    if send(conn).is_err() {
                        return self.close(token);
                    }
                    if conn.out.len() > LOW_WATER {
                        return self.want_write(token, true);
                    }
                    let Some(parked) = conn.parked.take() else { return self.close(token) };
                    let mut io = Io::new(&mut conn.stream, &mut conn.rbuf, &mut conn.out, settings).queued();
                    let resumed = connection::resume(
                        parked,
                        (&mut io, &mut conn.proto),
                        &mut self.shared,
                        &conn.info,
                        self.ctx,
                    );
                    conn.moved += io.transferred();
                    if io.is_dead() {
                        // The client is gone or the body failed: dropping the response closes its body.
                        return self.close(token);
                    }
                    match resumed {
                        Ok(after) => conn.phase = Phase::Writing(after),
                        // One refill per wake-up, so a fast client of a long body takes its turn.
                        Err(parked) => {
                            conn.parked = Some(parked);
                            return self.want_write(token, true);
                        }
                    }
                }
                Phase::Writing(then) => {
                    match send(conn) {
                        Err(_) => return self.close(token),
                        Ok(false) => return self.want_write(token, true),
                        Ok(true) => {}
                    }
                    match then {
                        // Nothing more to read from a client that sent its whole request: close now.
                        // (Closing sends the FIN, and TLS's close_notify; a shutdown first would be
                        // one more system call for nothing.)
                        After::Close if conn.rbuf.is_empty() => return self.close(token),
                        After::Close | After::Linger => {
                            conn.stream.shutdown_write();
                            conn.phase = Phase::Lingering;
                            conn.deadline = Instant::now() + LINGER;
                            self.want_write(token, false);
                            let Some(conn) = self.conns[token].as_mut() else { return };
                            conn.rbuf.clear();
                            self.recycle_out(token);
                            return;
                        }
                        After::Discard => {
                            conn.phase = Phase::Discard;
                            conn.start_pacing(Instant::now());
                            self.want_write(token, false);
                        }
                        After::KeepAlive => {
                            // Next: a request, the rest of a head, or the body being gathered.
                            let now = Instant::now();
                            (conn.phase, conn.deadline) = match conn.proto.waiting_for(!conn.rbuf.is_empty())
                            {
                                Wait::Idle => (Phase::Idle, now + settings.keep_alive),
                                // A body has no deadline of its own: the minimum rate bounds it.
                                Wait::Body => {
                                    conn.start_pacing(now);
                                    (Phase::Body, conn.deadline)
                                }
                                _ => (Phase::Head, now + settings.header_timeout),
                            };
                            self.want_write(token, false);
                            if self.stopping
                                && self.conns[token].as_ref().is_some_and(|c| c.phase == Phase::Idle)
                            {
                                self.shorten_idle(token);
                            }
                        }
                    }
                }
                Phase::Idle | Phase::Head | Phase::Body => {
                    if conn.rbuf.is_empty() {
                        self.recycle_idle(token);
                        return;
                    }
                    if conn.opening {
                        match self.opening(token) {
                            Opening::Undecided => return,
                            Opening::Http1 | Opening::Http2 => continue,
                        }
                    }
                    if conn.out.capacity() == 0 {
                        conn.out = self.outs.take();
                    }
                    if self.pool.is_some() {
                        return self.dispatch(token);
                    }
                    let then = run_requests(conn, &mut self.shared, self.ctx, true);
                    let Some(conn) = self.conns[token].as_mut() else { return };
                    match then {
                        Some(Phase::Upgraded) => return self.adopt(token),
                        Some(Phase::Http2) => return self.upgrade_h2(token),
                        Some(Phase::Pending) => return self.begin_pending(token),
                        Some(Phase::Streaming) => {
                            conn.phase = Phase::Streaming;
                            conn.start_pacing(Instant::now());
                            return self.want_write(token, true);
                        }
                        // The body is on its way: wait for it (the minimum rate counts from now).
                        Some(Phase::Body) => {
                            if conn.phase != Phase::Body {
                                conn.start_pacing(Instant::now());
                            }
                            conn.phase = Phase::Body;
                            return;
                        }
                        Some(phase) => {
                            conn.phase = phase;
                            conn.start_pacing(Instant::now());
                        }
                        // No complete head: wait for more bytes.
                        None if conn.out.is_empty() => return,
                        None => conn.phase = Phase::Writing(After::KeepAlive),
                    }
                }
            }
        }
    }

    fn recycle_idle(&mut self, token: usize) {
        let Some(mut conn) = self.conns[token].take() else { return };
        self.recycle(&mut conn);
        self.conns[token] = Some(conn);
    }

    fn recycle_out(&mut self, token: usize) {
        if let Some(conn) = self.conns[token].as_mut()
            && conn.out.is_empty()
            && conn.out.capacity() > 0
        {
            self.outs.keep(std::mem::take(&mut conn.out));
        }
    }

    fn want_write(&mut self, token: usize, write: bool) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        if conn.writing == write {
            return;
        }
        conn.writing = write;
        let flags = if write { EpollFlags::EPOLLOUT } else { EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP };
        let mut event = EpollEvent::new(flags, token as u64);
        if self.epoll.modify(conn.stream.as_fd(), &mut event).is_err() {
            self.close(token);
        }
    }
}

/// Writes what the socket takes of a connection's output now, counting it for the minimum rate;
/// `Ok(true)` when all of it is gone.
fn send(conn: &mut Conn) -> io::Result<bool> {
    let before = conn.out.len();
    let result = conn.stream.write_some(&mut conn.out);
    conn.moved += (before - conn.out.len()) as u64;
    result
}

impl Conn {
    /// A new wait on the client begins (a response, a body): the minimum rate counts from here.
    fn start_pacing(&mut self, now: Instant) {
        self.pace = Pace::default();
        self.moved = 0;
        self.paced = now;
    }
}
