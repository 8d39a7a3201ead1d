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

use super::Context;
use super::gather::Spool;
use super::pace::{MinRate, Pace};
use crate::app::host::BodySource;
use crate::app::host::{CallSlot, call_handle};
use crate::app::{ConnInfo, Exchange, RequestView};
use crate::config::Settings;
use crate::http::body::Decoder;
use crate::http::date::DateCache;
use crate::http::parse::{RequestHead, parse_head};
use crate::http::response::{self, CONTINUE_100, Encoder, Framing, ResponseHead};
use crate::http::{Error as HttpError, ErrorKind};
use crate::logging::access::Record;
use crate::net::Stream;
use crate::net::stream::Interrupted;
use crate::sys::scoreboard::{Lane, Refusal};
use nix::poll::PollFlags;
use rustgun_abi::{RG_E_CLOSED, RG_E_INVALID, RG_E_IO, RG_E_STATE, RG_OK, RgBodySource, RgHeader};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The output buffer's starting capacity: a response head and a small body fit without growing.
pub(super) const OUT_CAPACITY: usize = 64 * 1024;
/// Most unread request body we read and discard to keep a connection alive.
const MAX_DRAIN: u64 = 1024 * 1024;
/// How long a closing connection waits for the client to stop sending, so that our last response is
/// not destroyed by a reset (RFC 9112 §9.6).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;
/// How long an idle keep-alive connection stays open once the worker is told to stop. Its client cannot
/// know yet and may be sending its next request at this very moment: a request that arrives in this
/// window is answered (with `Connection: close`) instead of being reset unread, so clients that keep
/// their connections busy never have to resend (RFC 9112 §9.3.1) during a reload or an upgrade.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(1);
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// The read buffer: bytes received but not yet parsed or handed to the app.
pub(super) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// A buffer without storage yet (the event worker lends storage only while a connection has
    /// bytes to hold).
    pub(super) fn unallocated() -> ReadBuf {
        ReadBuf { buf: Vec::new(), start: 0, end: 0 }
    }

    /// Gives back the storage of an empty buffer, to be lent to another connection.
    pub(super) fn take_storage(&mut self) -> Option<Vec<u8>> {
        (self.is_empty() && !self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }

    /// Whether the buffer holds storage (lent or its own).
    pub(super) fn has_storage(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Lends storage to a buffer that has none (the caller checks [`ReadBuf::has_storage`] first).
    pub(super) fn give_storage(&mut self, storage: Vec<u8>) {
        debug_assert!(self.buf.is_empty());
        self.buf = storage;
        self.start = 0;
        self.end = 0;
    }

    pub(super) fn new() -> ReadBuf {
        ReadBuf { buf: vec![0; READ_CHUNK], start: 0, end: 0 }
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space for at least `READ_CHUNK / 4` more bytes, moving data to the front or growing by
    /// `READ_CHUNK` (linearly: a head at `--limit-request-head` costs that limit plus one chunk, not
    /// the next power of two).
    pub(super) fn spare(&mut self) -> &mut [u8] {
        if self.buf.len() - self.end < READ_CHUNK / 4 {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < READ_CHUNK / 4 {
                self.buf.resize(self.buf.len() + READ_CHUNK, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    pub(super) fn commit(&mut self, n: usize) {
        self.end += n;
    }

    /// Removes `len` bytes that start `at` bytes into the data (body bytes moved to a spool).
    pub(super) fn remove(&mut self, at: usize, len: usize) {
        let from = self.start + at;
        self.buf.copy_within(from + len..self.end, from);
        self.end -= len;
        if self.start == self.end {
            self.clear();
        }
    }

    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// What one thread needs to run exchanges, whichever connection they come from: reused across
/// requests so that the steady state allocates nothing.
pub struct Shared {
    head: RequestHead,
    resp: ResponseHead,
    view: RequestView,
    date: DateCache,
    scratch: Vec<u8>,
    /// The scoreboard lane of the thread these buffers belong to.
    lane: usize,
}

impl Shared {
    /// Where the next head is parsed into.
    pub(super) fn head_mut(&mut self) -> &mut RequestHead {
        &mut self.head
    }

    /// Says which scoreboard lane the owning thread reports on.
    pub(super) fn set_lane(&mut self, lane: usize) {
        self.lane = lane;
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            head: RequestHead::default(),
            resp: ResponseHead::default(),
            view: RequestView::default(),
            date: DateCache::default(),
            scratch: vec![0; READ_CHUNK],
            lane: 0,
        }
    }
}

/// A blocking thread's buffers: the shared part plus the one connection it serves at a time.
pub struct Buffers {
    rbuf: ReadBuf,
    out: Vec<u8>,
    shared: Shared,
    pub info: ConnInfo,
}

impl Buffers {
    /// Says which scoreboard lane the owning thread reports on.
    pub(super) fn set_lane(&mut self, lane: usize) {
        self.shared.set_lane(lane);
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            rbuf: ReadBuf::new(),
            out: Vec::with_capacity(OUT_CAPACITY),
            shared: Shared::default(),
            info: ConnInfo::default(),
        }
    }
}

/// The transport half of a connection: socket, read buffer and output buffer.
pub(super) struct Io<'a> {
    stream: &'a mut Stream,
    rbuf: &'a mut ReadBuf,
    out: &'a mut Vec<u8>,
    io_timeout: Duration,
    /// `--min-rate`, and how the client has kept up with it in this exchange.
    rule: MinRate,
    pace: Pace,
    /// Who the client is, for the log line of a client dropped by the rule.
    peer: Option<std::net::IpAddr>,
    /// A write failed or timed out: nothing more can be sent.
    dead: bool,
    /// The scoreboard lane that says "waiting" while this connection waits on the socket, so that a
    /// slow client is never taken for a stuck worker.
    beat: Option<&'a Lane>,
    /// The last request's body was not read to its end: the client may still be sending it.
    body_pending: bool,
    /// Output is queued for an event loop rather than waited out (see [`Io::queued`]).
    queued: bool,
    /// The start of the next request's body, gathered to a file by the event loop: read before the
    /// read buffer.
    spool: Option<Spool>,
    /// The event loop sent `100 Continue` for this request while it gathered the body.
    continued: bool,
    /// Bytes queued I/O handed to the socket itself (the loop counts them for `--min-rate`).
    written: u64,
}

/// A pull-mode body is produced only while less than this is queued for the client: what a stalled
/// reader can hold of an event worker's memory is this plus one chunk.
pub(super) const HIGH_WATER: usize = 128 * 1024;
/// The event loop asks the producer for more once the queue has drained below this.
pub(super) const LOW_WATER: usize = 32 * 1024;
/// How much pushed output (an app's `write` on the event loop) may be queued before the write waits
/// for the client.
const PUSH_CAP: usize = 1024 * 1024;

/// Why reading more input stopped.
enum ReadStop {
    Eof,
    TimedOut,
    Stopping,
    Failed,
}

impl<'a> Io<'a> {
    pub(super) fn new(
        stream: &'a mut Stream,
        rbuf: &'a mut ReadBuf,
        out: &'a mut Vec<u8>,
        settings: &Settings,
    ) -> Io<'a> {
        Io {
            stream,
            rbuf,
            out,
            io_timeout: settings.io_timeout,
            rule: settings.min_rate,
            pace: Pace::default(),
            peer: None,
            dead: false,
            body_pending: false,
            beat: None,
            queued: false,
            spool: None,
            continued: false,
            written: 0,
        }
    }

    /// Bytes this queued I/O handed to the socket itself, beside what the loop writes from the queue.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// The next request's body has been gathered (the event loop, [`super::gather`]): its spooled
    /// part, and whether `100 Continue` was already sent.
    pub(super) fn gathered(&mut self, spool: Option<Spool>, continued: bool) {
        self.spool = spool;
        self.continued = continued;
    }

    /// Queues output for an event loop: each block is written as far as the socket takes it at once
    /// and the rest stays in the output buffer for the loop to send when the socket is writable; a
    /// pull-mode body stops at [`HIGH_WATER`] and is resumed by the loop. Only a pushed write past
    /// [`PUSH_CAP`] waits for the client.
    pub(super) fn queued(mut self) -> Self {
        self.queued = true;
        self
    }

    /// Runs `wait` (a wait on the socket) with the lane marked as waiting, so that a thread waiting on
    /// its one client is not taken for a stuck worker. Not on an event loop: a loop that waits on one
    /// client stalls all the others, and one that is away longer than `--timeout` is stuck.
    fn waiting<T>(&mut self, wait: impl FnOnce(&mut Self) -> T) -> T {
        if self.queued {
            return wait(self);
        }
        if let Some(lane) = self.beat {
            lane.waiting();
        }
        let result = wait(self);
        if let Some(lane) = self.beat {
            lane.awake();
        }
        result
    }

    /// Marks `n` buffered bytes as used (a head parsed from them).
    pub(super) fn consume_input(&mut self, n: usize) {
        self.rbuf.consume(n);
    }

    /// Whether the last request's body was left unread (the client may still be sending it).
    pub(super) fn body_pending(&self) -> bool {
        self.body_pending
    }

    /// Whether a write failed: nothing more can be sent on this connection.
    pub(super) fn is_dead(&self) -> bool {
        self.dead
    }

    /// Writes all buffered output, waiting for the client as long as it keeps up ([`Io::drain`]).
    fn flush(&mut self) -> bool {
        if !self.dead && !self.out.is_empty() && !self.drain() {
            self.dead = true;
        }
        if self.dead {
            self.out.clear();
        }
        !self.dead
    }

    /// Writes the whole output buffer, waiting on the client while it keeps up: `false` once it moved
    /// nothing for `--timeout`, or less than `--min-rate` over a period of waiting ([`Pace`]).
    fn drain(&mut self) -> bool {
        let mut stalls_at = Instant::now() + self.io_timeout;
        loop {
            let before = self.out.len();
            let wrote = self.stream.write_some(self.out);
            let moved = (before - self.out.len()) as u64;
            if moved > 0 {
                stalls_at = Instant::now() + self.io_timeout;
            }
            match wrote {
                Ok(true) => {
                    self.pace.record(Duration::ZERO, moved, self.rule);
                    return true;
                }
                Ok(false) => {}
                Err(_) => return false,
            }
            let began = Instant::now();
            let deadline = stalls_at.min(began + self.pace.left(self.rule));
            let waited = self.waiting(|io| io.stream.wait(PollFlags::POLLOUT, deadline, None));
            let now = Instant::now();
            if self.pace.record(now - began, moved, self.rule) {
                super::pace::dropped(self.beat, self.rule, "taking its response", self.peer);
                return false;
            }
            if waited.is_err() && now >= stalls_at {
                return false;
            }
        }
    }

    /// Hands buffered output to the socket now (no delay). Blocking I/O waits until all of it is gone;
    /// queued I/O writes what the socket takes and leaves the rest to the loop, waiting only past
    /// [`PUSH_CAP`] (logged once per connection, counted in `/metrics`).
    fn push(&mut self) -> bool {
        if !self.queued || self.dead {
            return self.flush();
        }
        let before = self.out.len();
        let wrote = self.stream.write_some(self.out);
        self.written += (before - self.out.len()) as u64;
        if wrote.is_err() {
            self.dead = true;
            self.out.clear();
            return false;
        }
        if self.out.len() > PUSH_CAP {
            if let Some(lane) = self.beat {
                lane.push_waited();
            }
            tracing::debug!("a pushed response outgrew the event loop's queue; waiting for the client");
            return self.flush();
        }
        true
    }

    /// Reads more bytes into the read buffer, flushing pending output first (never wait on the
    /// client while it waits on us). `stop` lets an idle wait end early on shutdown.
    fn fill(
        &mut self,
        deadline: Instant,
        stop: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<usize, ReadStop> {
        if !self.flush() {
            return Err(ReadStop::Failed);
        }
        loop {
            match self.stream.try_read(self.rbuf.spare()) {
                Ok(Some(0)) => return Err(ReadStop::Eof),
                Ok(Some(n)) => {
                    self.rbuf.commit(n);
                    return Ok(n);
                }
                Ok(None) => {}
                Err(_) => return Err(ReadStop::Failed),
            }
            match self.waiting(|io| io.stream.wait(PollFlags::POLLIN, deadline, stop)) {
                Ok(()) => {}
                Err(Interrupted::TimedOut) => return Err(ReadStop::TimedOut),
                Err(Interrupted::Stopping) => return Err(ReadStop::Stopping),
            }
        }
    }

    /// Closes gracefully: flush, and if the client may still be sending, half-close and read a little
    /// so that the kernel does not answer its bytes with a reset that destroys our response.
    pub(super) fn close(mut self, client_may_send: bool) {
        if !self.flush() {
            return;
        }
        if client_may_send || !self.rbuf.is_empty() {
            self.stream.shutdown_write();
            let deadline = Instant::now() + LINGER;
            let mut drained = 0;
            while drained < LINGER_BYTES {
                self.rbuf.clear();
                match self.fill(deadline, None) {
                    Ok(n) => drained += n,
                    Err(_) => break,
                }
            }
        }
        self.rbuf.clear();
    }
}

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

    /// Sends what is left of a file `send_file` handed over: by sendfile(2) while nothing else is
    /// queued and the framing adds no bytes of its own, else copied through the scratch buffer. With
    /// `may_park`, stops (`true`, the file kept) once the socket is full or [`HIGH_WATER`] is queued.
    fn pump_file(&mut self, may_park: bool) -> bool {
        let Some(mut file) = self.state.file.take() else { return false };
        let mut scratch = std::mem::take(self.scratch);
        let parked = loop {
            if file.left == 0 || self.io.dead {
                break false;
            }
            if may_park && self.io.out.len() >= HIGH_WATER {
                break true;
            }
            let Reply::Streaming(encoder) = &mut self.state.reply else { break false };
            if self.io.out.is_empty() && encoder.framing() != Framing::Chunked {
                match self.io.stream.try_send_file(file.fd.as_fd(), file.offset, file.left) {
                    Ok(Some(0)) => break false,
                    Ok(Some(n)) => {
                        // Length and close framing add no bytes of their own: this only counts them.
                        encoder.begin_chunk(n, self.io.out);
                        (file.offset, file.left) = (file.offset + n as u64, file.left - n as u64);
                        self.io.written += n as u64;
                        continue;
                    }
                    Ok(None) if may_park => break true,
                    Ok(None) => {
                        let deadline = Instant::now() + self.io.io_timeout;
                        if self.io.waiting(|io| io.stream.wait(PollFlags::POLLOUT, deadline, None)).is_err() {
                            self.io.dead = true;
                        }
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                        self.file_failed(nix::errno::Errno::EIO);
                        self.io.dead = true;
                        break false;
                    }
                    Err(_) => {
                        self.io.dead = true;
                        break false;
                    }
                }
            }
            let want = file.left.min(scratch.len() as u64) as usize;
            let Ok(at) = i64::try_from(file.offset) else { break false };
            match nix::sys::uio::pread(&file.fd, &mut scratch[..want], at) {
                Ok(0) => break false,
                Ok(n) => {
                    if self.send_body(&scratch[..n]).is_err() {
                        break false;
                    }
                    (file.offset, file.left) = (file.offset + n as u64, file.left - n as u64);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    self.file_failed(e);
                    self.io.dead = true;
                    break false;
                }
            }
        };
        *self.scratch = scratch;
        if parked {
            self.state.file = Some(file);
        }
        parked
    }

    /// Copies `len` bytes of `file` from `offset` into the response through the scratch buffer (TLS,
    /// chunked framing, or a file sendfile(2) cannot read): the count the framing accepted.
    fn copy_file(&mut self, file: BorrowedFd<'_>, offset: u64, len: u64) -> Result<u64, i32> {
        let mut scratch = std::mem::take(self.scratch);
        let mut sent = 0u64;
        let result = loop {
            if sent == len {
                break Ok(sent);
            }
            let want = (len - sent).min(scratch.len() as u64) as usize;
            let Ok(at) = i64::try_from(offset + sent) else { break Err(RG_E_INVALID) };
            match nix::sys::uio::pread(file, &mut scratch[..want], at) {
                Ok(0) => break Ok(sent),
                Ok(n) => match self.send_body(&scratch[..n]) {
                    Ok(()) => sent += n as u64,
                    Err(code) => break Err(code),
                },
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => break Err(self.file_failed(e)),
            }
        };
        *self.scratch = scratch;
        result
    }

    /// Takes a file for queued I/O to send as the client takes it (after `handle` returned, with the
    /// rest of the response): the server keeps a descriptor of its own, and the count accepted is what
    /// the file holds from `offset`, up to `len`. A file that cannot be measured is copied now.
    fn hand_over_file(&mut self, file: BorrowedFd<'_>, offset: u64, len: u64) -> Result<u64, i32> {
        let size = match nix::sys::stat::fstat(file.as_raw_fd()) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => st.st_size as u64,
            _ => return self.copy_file(file, offset, len),
        };
        let len = len.min(size.saturating_sub(offset));
        let fd = file.try_clone_to_owned().map_err(|_| RG_E_INVALID)?;
        if len > 0 {
            self.state.file = Some(PendingFile { fd, offset, left: len });
        }
        Ok(len)
    }

    /// A file could not be read: `RG_E_IO` for a read error (the response is cut, so the connection
    /// closes), `RG_E_INVALID` for a descriptor that is not a readable file.
    fn file_failed(&mut self, e: nix::errno::Errno) -> i32 {
        use nix::errno::Errno;
        if matches!(e, Errno::EBADF | Errno::EINVAL | Errno::EISDIR | Errno::ESPIPE | Errno::ENXIO) {
            return RG_E_INVALID;
        }
        tracing::error!(
            "reading the file of {} {} failed: {e}; closing the connection",
            String::from_utf8_lossy(self.head.method()),
            String::from_utf8_lossy(self.head.target())
        );
        self.state.keep_alive = false;
        RG_E_IO
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

/// What the start of a `--proxy-protocol` connection has shown so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProxyStart {
    /// More bytes are needed.
    Incomplete,
    /// The header was taken: `info` now names the client it carried.
    Adopted,
    /// The sender is not allowed (403) or the header is malformed (400): the answer is in the output.
    Refused,
}

/// Takes the PROXY protocol header from the buffered bytes. A sender outside `--proxy-allow-ips` is
/// refused before anything is read.
pub(super) fn take_proxy_header(
    io: &mut Io<'_>,
    shared: &mut Shared,
    info: &mut ConnInfo,
    ctx: &Context<'_>,
    started: Instant,
) -> ProxyStart {
    use crate::http::proxy::{Parsed, parse};
    if !ctx.settings.proxy_allow_ips.trusts(info.peer_ip) {
        let why = "PROXY protocol from a peer not in --proxy-allow-ips";
        ctx.count_refused(io.beat, Refusal::Proxy);
        refuse_status(io, shared, info, ctx, 403, &why, started);
        return ProxyStart::Refused;
    }
    match parse(io.rbuf.data()) {
        Ok(Parsed::Header { header, consumed }) => {
            io.rbuf.consume(consumed);
            info.adopt_proxy_header(&header);
            ProxyStart::Adopted
        }
        Ok(Parsed::Incomplete) => ProxyStart::Incomplete,
        Err(e) => {
            ctx.count_refused(io.beat, Refusal::Proxy);
            refuse_status(io, shared, info, ctx, e.status(), &e, started);
            ProxyStart::Refused
        }
    }
}

/// Reads the PROXY header, waiting up to `--header-timeout`; false when the connection must close
/// (refused, or the peer left or stalled: no response then).
fn read_proxy_header(io: &mut Io<'_>, shared: &mut Shared, info: &mut ConnInfo, ctx: &Context<'_>) -> bool {
    let started = Instant::now();
    let deadline = started + ctx.settings.header_timeout;
    loop {
        match take_proxy_header(io, shared, info, ctx, started) {
            ProxyStart::Adopted => return true,
            ProxyStart::Refused => return false,
            ProxyStart::Incomplete => {
                if io.fill(deadline, None).is_err() {
                    io.rbuf.clear();
                    return false;
                }
            }
        }
    }
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

/// The rest of a file that `send_file` handed to queued I/O: the server's own descriptor for it (the
/// app may close its own once `handle` returns) and what is left to send.
struct PendingFile {
    fd: std::os::fd::OwnedFd,
    offset: u64,
    left: u64,
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

/// Serves requests on `stream` until the connection ends, waiting (with deadlines) whenever the client
/// is slow: the loop of the `sync` and `threads` classes. Returns how many requests it served.
pub fn serve(mut stream: Stream, bufs: &mut Buffers, ctx: &Context<'_>) -> u64 {
    let lane = ctx.lane(bufs.shared.lane);
    let served = serve_stream(&mut stream, bufs, ctx, lane);
    if stream.handshake_failed() {
        ctx.count_refused(lane, Refusal::Tls);
    }
    served
}

fn serve_stream(stream: &mut Stream, bufs: &mut Buffers, ctx: &Context<'_>, lane: Option<&Lane>) -> u64 {
    let Buffers { rbuf, out, shared, info } = bufs;
    let settings = ctx.settings;
    let mut io = Io::new(stream, rbuf, out, settings);
    io.beat = lane;
    if settings.proxy_protocol && !read_proxy_header(&mut io, shared, info, ctx) {
        io.close(true);
        return 0;
    }
    let mut served = 0u64;
    loop {
        let mut head_deadline = Instant::now() + settings.header_timeout;
        if served > 0 && io.rbuf.is_empty() {
            // Idle keep-alive: wait for the next request's first byte (or shutdown) quietly.
            let idle = Instant::now() + settings.keep_alive;
            let waited = match io.fill(idle, Some(ctx.stop_fd.as_fd())) {
                Err(ReadStop::Stopping) => io.fill(idle.min(Instant::now() + STOP_GRACE), None),
                waited => waited,
            };
            match waited {
                Ok(_) => head_deadline = Instant::now() + settings.header_timeout,
                Err(_) => {
                    io.close(false);
                    return served;
                }
            }
        }
        let started = Instant::now();
        let parsed = loop {
            match parse_head(io.rbuf.data(), &settings.limits, &mut shared.head) {
                Ok(Some(n)) => {
                    io.rbuf.consume(n);
                    break Ok(());
                }
                Ok(None) => match io.fill(head_deadline, None) {
                    Ok(_) => {}
                    // A partial head gets 408; a client that sent nothing at all (a browser's
                    // preconnect, say) is closed quietly, as the event loop and nginx do.
                    Err(ReadStop::TimedOut) if !io.rbuf.is_empty() => {
                        break Err(HttpError::new(
                            ErrorKind::HeadTimeout,
                            "request head not received in time",
                        ));
                    }
                    // EOF or failure mid-head: no response, as the client is gone (RFC 9112 §9.6).
                    Err(_) => {
                        io.rbuf.clear();
                        return served;
                    }
                },
                Err(e) => break Err(e),
            }
        };
        // A refused request may still be arriving: linger then. After an exchange, linger only when
        // its body was left unread; a client that sent everything just gets our FIN.
        let (after, client_may_send) = match parsed {
            Ok(()) => {
                served += 1;
                // Blocking I/O never parks a response: each is complete when exchange returns.
                let after = exchange(&mut io, shared, info, ctx, started).unwrap_or(After::Close);
                (after, io.body_pending)
            }
            Err(e) => {
                refuse(&mut io, shared, info, ctx, e, started);
                (After::Close, true)
            }
        };
        if after == After::Close {
            io.close(client_may_send);
            return served;
        }
    }
}
