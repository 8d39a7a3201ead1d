//! The conversations the master holds itself on the listeners it serves (`--metrics-bind`, the
//! control socket), without ever waiting on a client: every socket is non-blocking, each conversation
//! is a small state machine (read the request, write the answer, close) moved forward whenever the
//! master's loop wakes, and one that has not finished within [`TIMEOUT`] is dropped. A slow or hostile
//! client therefore costs the master a descriptor and a few KiB, never time: signals, reaping and the
//! heartbeat go on meanwhile.
//!
//! Not here: what is asked and answered — HTTP on the metrics listener (`exporter`), one line on the
//! control socket (`control`).

use nix::poll::PollFlags;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

/// How long a client may take to send its request and read the answer (Prometheus' own default
/// scrape timeout is 10 s).
const TIMEOUT: Duration = Duration::from_secs(5);
/// Conversations in progress at once; a new one past this drops the oldest, so clients that never
/// finish cannot keep a real one out.
const MAX_OPEN: usize = 64;

/// A listening socket the master serves: it hands over new connections, non-blocking.
pub trait Accept: AsFd {
    type Stream: Read + Write + AsFd;
    /// The next waiting connection, already non-blocking; `WouldBlock` when there is none.
    fn accept_nonblocking(&self) -> io::Result<Self::Stream>;
}

impl Accept for TcpListener {
    type Stream = std::net::TcpStream;
    fn accept_nonblocking(&self) -> io::Result<Self::Stream> {
        let (stream, _) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}

impl Accept for UnixListener {
    type Stream = std::os::unix::net::UnixStream;
    fn accept_nonblocking(&self) -> io::Result<Self::Stream> {
        let (stream, _) = self.accept()?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }
}

/// One conversation: its request arriving, then its answer leaving.
struct Conversation<S> {
    stream: S,
    deadline: Instant,
    request: Vec<u8>,
    /// The answer, once the request is complete, and how much of it has left.
    out: Option<(Vec<u8>, usize)>,
}

/// A non-blocking listener and the conversations in progress on it.
pub struct Conversations<L: Accept> {
    listener: L,
    open: Vec<Conversation<L::Stream>>,
}

impl<L: Accept> Conversations<L> {
    /// Serves `listener`, which must already be non-blocking.
    pub fn new(listener: L) -> Conversations<L> {
        Conversations { listener, open: Vec::new() }
    }

    pub fn listener(&self) -> &L {
        &self.listener
    }

    /// What the master's `poll` should wait for on their behalf: new connections, and each
    /// conversation's next read or write.
    pub fn interest(&self) -> impl Iterator<Item = (BorrowedFd<'_>, PollFlags)> {
        let open = self.open.iter().map(|c| {
            let wants = if c.out.is_some() { PollFlags::POLLOUT } else { PollFlags::POLLIN };
            (c.stream.as_fd(), wants)
        });
        std::iter::once((self.listener.as_fd(), PollFlags::POLLIN)).chain(open)
    }

    /// The listener's descriptor and every conversation's: what a forked worker must close.
    pub fn descriptors(&self) -> impl Iterator<Item = RawFd> + '_ {
        let open = self.open.iter().map(|c| c.stream.as_fd().as_raw_fd());
        std::iter::once(self.listener.as_fd().as_raw_fd()).chain(open)
    }

    /// When the oldest conversation runs out of time: the master wakes by then to drop it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.iter().map(|c| c.deadline).min()
    }

    /// Moves every conversation as far as it goes without waiting: takes new ones, reads requests,
    /// answers each once `answer` finds its request complete (it is given the bytes so far and
    /// returns `None` while more must come), and drops the finished, the failed and the late.
    pub fn step(&mut self, mut answer: impl FnMut(&[u8]) -> Option<Vec<u8>>) {
        while let Ok(stream) = self.listener.accept_nonblocking() {
            if self.open.len() >= MAX_OPEN {
                // The oldest is the likeliest to be a client that never finishes.
                self.open.remove(0);
            }
            let deadline = Instant::now() + TIMEOUT;
            self.open.push(Conversation { stream, deadline, request: Vec::with_capacity(512), out: None });
        }
        let now = Instant::now();
        self.open.retain_mut(|c| now < c.deadline && c.advance(&mut answer));
    }
}

impl<S: Read + Write> Conversation<S> {
    /// Reads what has arrived, answers once the request is complete, writes what the socket takes;
    /// `false` once the conversation is over (answered, gone, or failed).
    fn advance(&mut self, answer: &mut impl FnMut(&[u8]) -> Option<Vec<u8>>) -> bool {
        if self.out.is_none() {
            let mut chunk = [0u8; 1024];
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => self.request.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            match answer(&self.request) {
                None => return true,
                Some(out) => self.out = Some((out, 0)),
            }
        }
        let Some((out, sent)) = &mut self.out else { return true };
        while *sent < out.len() {
            match self.stream.write(&out[*sent..]) {
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        false
    }
}
