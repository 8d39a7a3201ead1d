//! The transport half of a connection ([`Io`]): the socket, its read buffer and output queue, and
//! every wait on the client — blocking (sync, threads, the event pool) or queued for an event loop.

use super::ReadBuf;
use crate::config::Settings;
use crate::http::conn::{LINGER, LINGER_BYTES};
use crate::net::Stream;
use crate::net::stream::Interrupted;
use crate::sys::scoreboard::Lane;
use crate::worker::gather::Spool;
use crate::worker::pace::{self, MinRate, Pace};
use nix::poll::PollFlags;
use std::io;
use std::time::{Duration, Instant};

/// The transport half of a connection: socket, read buffer and output buffer.
pub(in crate::worker) struct Io<'a> {
    pub(in crate::worker) stream: &'a mut Stream,
    pub(in crate::worker) rbuf: &'a mut ReadBuf,
    pub(in crate::worker) out: &'a mut Vec<u8>,
    /// `--min-rate`, and how the client has kept up with it in this exchange.
    pub(in crate::worker) rule: MinRate,
    pub(in crate::worker) pace: Pace,
    /// Who the client is, for the log line of a client dropped by the rule.
    pub(in crate::worker) peer: Option<std::net::IpAddr>,
    /// A write failed or timed out: nothing more can be sent.
    pub(in crate::worker) dead: bool,
    /// The scoreboard lane that says "waiting" while this connection waits on the socket, so that a
    /// slow client is never taken for a stuck worker.
    pub(in crate::worker) beat: Option<&'a Lane>,
    /// Output is queued for an event loop rather than waited out (see [`Io::queued`]).
    pub(in crate::worker) queued: bool,
    /// The start of the next request's body, gathered to a file by the event loop: read before the
    /// read buffer.
    pub(in crate::worker) spool: Option<Spool>,
    /// Bytes queued I/O moved through the socket itself, either way (the loop counts them for
    /// `--min-rate`).
    pub(in crate::worker) transferred: u64,
}

/// A pull-mode body is produced only while less than this is queued for the client: what a stalled
/// reader can hold of an event worker's memory is this plus one chunk.
pub(in crate::worker) const HIGH_WATER: usize = 128 * 1024;
/// The event loop asks the producer for more once the queue has drained below this.
pub(in crate::worker) const LOW_WATER: usize = 32 * 1024;
/// How much pushed output (an app's `write` on the event loop) may be queued before the write waits
/// for the client.
const PUSH_CAP: usize = 1024 * 1024;

/// Why reading more input stopped.
pub(in crate::worker) enum ReadStop {
    Eof,
    TimedOut,
    Stopping,
    Failed,
}

impl<'a> Io<'a> {
    pub(in crate::worker) fn new(
        stream: &'a mut Stream,
        rbuf: &'a mut ReadBuf,
        out: &'a mut Vec<u8>,
        settings: &Settings,
    ) -> Io<'a> {
        Io {
            stream,
            rbuf,
            out,
            rule: settings.min_rate,
            pace: Pace::default(),
            peer: None,
            dead: false,
            beat: None,
            queued: false,
            spool: None,
            transferred: 0,
        }
    }

    /// Bytes this queued I/O moved through the socket itself (read, or written beside what the loop
    /// writes from the queue).
    pub(in crate::worker) fn transferred(&self) -> u64 {
        self.transferred
    }

    /// The next request's body has been gathered (the event loop, [`super::gather`]): its spooled
    /// part, read before the read buffer.
    pub(in crate::worker) fn gathered(&mut self, spool: Option<Spool>) {
        self.spool = spool;
    }

    /// Queues output for an event loop: each block is written as far as the socket takes it at once
    /// and the rest stays in the output buffer for the loop to send when the socket is writable; a
    /// pull-mode body stops at [`HIGH_WATER`] and is resumed by the loop. Only a pushed write past
    /// [`PUSH_CAP`] waits for the client.
    pub(in crate::worker) fn queued(mut self) -> Self {
        self.queued = true;
        self
    }

    /// Runs `wait` (a wait on the socket) with the lane marked as waiting, so that a thread waiting on
    /// its one client is not taken for a stuck worker. Not on an event loop: a loop that waits on one
    /// client stalls all the others, and one that is away longer than `--timeout` is stuck.
    pub(in crate::worker) fn waiting<T>(&mut self, wait: impl FnOnce(&mut Self) -> T) -> T {
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

    /// Whether a write failed: nothing more can be sent on this connection.
    pub(in crate::worker) fn is_dead(&self) -> bool {
        self.dead
    }

    /// Writes all buffered output, waiting for the client as long as it keeps up ([`Io::drain`]). An
    /// error once nothing more can be sent (now or by an earlier write): the output is dropped.
    pub(in crate::worker) fn flush(&mut self) -> io::Result<()> {
        if !self.dead
            && !self.out.is_empty()
            && let Err(e) = self.drain()
        {
            self.dead = true;
            self.out.clear();
            return Err(e);
        }
        if self.dead {
            self.out.clear();
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }

    /// Writes the whole output buffer, waiting on the client while it keeps up: `TimedOut` once it
    /// moved less than `--min-rate` over a period of waiting ([`Pace`]), or the write's error.
    pub(in crate::worker) fn drain(&mut self) -> io::Result<()> {
        loop {
            let before = self.out.len();
            let wrote = self.stream.write_some(self.out);
            self.moved((before - self.out.len()) as u64);
            if wrote? {
                return Ok(());
            }
            self.wait_on_client(PollFlags::POLLOUT).map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?;
        }
    }

    /// Counts `n` bytes the client moved (sent or took) toward the minimum rate.
    pub(in crate::worker) fn moved(&mut self, n: u64) {
        self.pace.record(Duration::ZERO, n, self.rule);
    }

    /// Waits once for the socket to be ready for `events` (`POLLIN`: the client sends its body;
    /// `POLLOUT`: it takes its response), at most until the minimum rate's period ends. `Err` once a
    /// whole period of waiting moved less than the rule asks: the client is dropped (logged, counted).
    pub(in crate::worker) fn wait_on_client(&mut self, events: PollFlags) -> Result<(), ReadStop> {
        let began = Instant::now();
        let deadline = began + self.pace.left(self.rule);
        let _ = self.waiting(|io| io.stream.wait(events, deadline, None));
        if self.pace.record(began.elapsed(), 0, self.rule) {
            let sending = events.contains(PollFlags::POLLIN);
            let taking = if sending { "sending its body" } else { "taking its response" };
            pace::dropped(self.beat, self.rule, taking, self.peer);
            if !sending {
                // What is queued for it would otherwise trickle out for as long as its window allows.
                self.stream.reset_on_close();
            }
            return Err(ReadStop::TimedOut);
        }
        Ok(())
    }

    /// Reads request body bytes — into `direct` when given, else into the read buffer — waiting on
    /// the client under the minimum rate (pending output is flushed first).
    pub(in crate::worker) fn read_body(&mut self, mut direct: Option<&mut [u8]>) -> Result<usize, ReadStop> {
        self.flush().map_err(|_| ReadStop::Failed)?;
        loop {
            let got = match direct.as_deref_mut() {
                Some(buf) => self.stream.try_read(buf),
                None => self.stream.try_read(self.rbuf.spare()),
            };
            match got {
                Ok(Some(0)) => return Err(ReadStop::Eof),
                Ok(Some(n)) => {
                    if direct.is_none() {
                        self.rbuf.commit(n);
                    }
                    self.moved(n as u64);
                    return Ok(n);
                }
                Ok(None) => self.wait_on_client(PollFlags::POLLIN)?,
                Err(_) => return Err(ReadStop::Failed),
            }
        }
    }

    /// Hands buffered output to the socket now (no delay). Blocking I/O waits until all of it is gone;
    /// queued I/O writes what the socket takes and leaves the rest to the loop, waiting only past
    /// [`PUSH_CAP`] (logged once per connection, counted in `/metrics`). An error as for [`Io::flush`].
    pub(in crate::worker) fn push(&mut self) -> io::Result<()> {
        if !self.queued || self.dead {
            return self.flush();
        }
        let before = self.out.len();
        let wrote = self.stream.write_some(self.out);
        self.transferred += (before - self.out.len()) as u64;
        if let Err(e) = wrote {
            self.dead = true;
            self.out.clear();
            return Err(e);
        }
        if self.out.len() > PUSH_CAP {
            if let Some(lane) = self.beat {
                lane.push_waited();
            }
            tracing::debug!("a pushed response outgrew the event loop's queue; waiting for the client");
            return self.flush();
        }
        Ok(())
    }

    /// Reads more bytes into the read buffer, flushing pending output first (never wait on the
    /// client while it waits on us). `stop` lets an idle wait end early on shutdown.
    pub(in crate::worker) fn fill(
        &mut self,
        deadline: Instant,
        stop: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<usize, ReadStop> {
        self.flush().map_err(|_| ReadStop::Failed)?;
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

    /// Reads what the socket has now into the read buffer, never waiting (the event loop's body
    /// of an async app's call): `Ok(None)` when nothing is there yet.
    pub(in crate::worker) fn try_fill(&mut self) -> Result<Option<usize>, ReadStop> {
        match self.stream.try_read(self.rbuf.spare()) {
            Ok(Some(0)) => Err(ReadStop::Eof),
            Ok(Some(n)) => {
                self.rbuf.commit(n);
                self.transferred += n as u64;
                Ok(Some(n))
            }
            Ok(None) => Ok(None),
            Err(_) => Err(ReadStop::Failed),
        }
    }

    /// Closes gracefully: flush, and if the client may still be sending, half-close and read a little
    /// so that the kernel does not answer its bytes with a reset that destroys our response.
    pub(in crate::worker) fn close(mut self, client_may_send: bool) {
        if self.flush().is_err() {
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
