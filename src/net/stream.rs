//! An accepted connection: non-blocking reads and writes that wait with `poll` until a deadline, and
//! wake early when the worker is told to stop. Plain TCP, unix, or TLS over either ([`TlsStream`]):
//! callers see the same interface and never touch TLS themselves.

use super::tls::TlsStream;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustls::ServerConfig;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Instant;

/// Who is on the other end.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    Tcp(SocketAddr),
    Unix,
}

/// An accepted connection, always in non-blocking mode.
///
/// With TLS, plaintext may be buffered inside the stream: read with [`try_read`](Stream::try_read)
/// until it returns `Ok(None)` before waiting on the descriptor, and wait for
/// [`interest`](Stream::interest) rather than bare `POLLIN` ([`wait`](Stream::wait) does both).
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// TLS over a TCP or unix socket; the handshake happens during the first reads.
    Tls(Box<TlsStream>),
}

/// Why a wait ended without the socket becoming ready.
#[derive(Debug, PartialEq, Eq)]
pub enum Interrupted {
    /// The deadline passed.
    TimedOut,
    /// The stop descriptor became readable: the worker is shutting down.
    Stopping,
}

impl Stream {
    /// Wraps the connection in TLS when `tls` is given (the handshake starts with the first read);
    /// returns it unchanged otherwise.
    pub fn secure(self, tls: Option<&Arc<ServerConfig>>) -> io::Result<Stream> {
        let Some(config) = tls else { return Ok(self) };
        Ok(match self {
            Stream::Tcp(s) => Stream::Tls(Box::new(TlsStream::new_tcp(config, s)?)),
            Stream::Unix(s) => Stream::Tls(Box::new(TlsStream::new_unix(config, s)?)),
            tls @ Stream::Tls(_) => tls,
        })
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Whether this is a TLS connection whose handshake failed: nothing was served on it.
    pub fn handshake_failed(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.handshake_failed())
    }

    /// Whether TLS's ALPN chose HTTP/2 for this connection.
    pub fn alpn_h2(&self) -> bool {
        matches!(self, Stream::Tls(s) if s.alpn() == Some(b"h2"))
    }

    /// The URL scheme requests on this connection came in with: `https` over TLS, else `http`.
    pub fn url_scheme(&self) -> &'static str {
        if self.is_tls() { "https" } else { "http" }
    }

    /// The poll events to wait for when the caller wants `events` (TLS may need to send a handshake
    /// flight or an alert before it can read).
    pub fn interest(&self, events: PollFlags) -> PollFlags {
        match self {
            Stream::Tls(s) => s.interest(events),
            _ => events,
        }
    }

    /// Whether input is waiting inside the stream, readable by [`try_read`](Stream::try_read) although
    /// the socket may not poll readable (TLS plaintext left by a read smaller than a record). An event
    /// loop checks this before going back to sleep on the descriptor.
    pub fn has_buffered_input(&self) -> bool {
        match self {
            Stream::Tls(s) => s.has_buffered_input(),
            _ => false,
        }
    }

    /// Reads what is available now; `Ok(None)` when nothing is. Over TLS this is decrypted data, and
    /// the handshake advances as a side effect.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let r = match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => return s.try_read(buf),
        };
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes what the socket takes now; `Ok(None)` when it takes nothing.
    ///
    /// Over TLS, without blocking either: the bytes reported taken are encrypted, and when their
    /// ciphertext could not all leave yet the last of them is reported only once it has (as with
    /// OpenSSL, retry with the unsent rest after `POLLOUT`), so a loop that stops when everything is
    /// taken never leaves a response stuck inside the stream. A write before the handshake completed
    /// fails with `NotConnected`.
    pub fn try_write(&mut self, data: &[u8]) -> io::Result<Option<usize>> {
        let r = match self {
            Stream::Tcp(s) => s.write(data),
            Stream::Unix(s) => s.write(data),
            Stream::Tls(s) => return s.try_write(data),
        };
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes as much of `out` as the socket takes now and removes it from `out`; `Ok(true)` when all
    /// of it is gone.
    pub fn write_some(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let mut written = 0;
        let result = loop {
            if written == out.len() {
                break Ok(true);
            }
            match self.try_write(&out[written..]) {
                Ok(Some(0)) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(Some(n)) => written += n,
                Ok(None) => break Ok(false),
                Err(e) => break Err(e),
            }
        };
        out.drain(..written);
        result
    }

    /// Sends output queued inside the stream (TLS ciphertext) as far as the socket takes it now;
    /// `Ok(true)` when nothing is left. Plain streams queue nothing. While it returns `Ok(false)`,
    /// [`interest`](Stream::interest) includes `POLLOUT`.
    pub fn try_flush(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tls(s) => s.try_flush(),
            _ => Ok(true),
        }
    }

    /// One sendfile(2) of up to `len` bytes of `file` from `offset`, the kernel copying from the page
    /// cache straight to the socket: `Some(n)` sent (0 at the file's end), `None` when the socket takes
    /// nothing now. `Unsupported` over TLS, where the bytes must be encrypted first, and for a file
    /// sendfile(2) cannot read (a pipe): the caller copies then.
    pub fn try_send_file(
        &mut self,
        file: BorrowedFd<'_>,
        offset: u64,
        len: u64,
    ) -> io::Result<Option<usize>> {
        if self.is_tls() {
            return Err(io::ErrorKind::Unsupported.into());
        }
        let mut at = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let want = len.min(SENDFILE_MAX) as usize;
        loop {
            return match nix::sys::sendfile::sendfile(self.as_fd(), file, Some(&mut at), want) {
                Ok(n) => Ok(Some(n)),
                Err(nix::errno::Errno::EAGAIN) => Ok(None),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
                    Err(io::ErrorKind::Unsupported.into())
                }
                Err(e) => Err(e.into()),
            };
        }
    }

    /// Waits until the socket is ready for `events`, the deadline passes, or `stop` becomes readable.
    /// Over TLS, queued ciphertext also wakes the wait once the socket is writable, so that the next
    /// `try_read` sends it.
    pub fn wait(
        &self,
        events: PollFlags,
        deadline: Instant,
        stop: Option<BorrowedFd<'_>>,
    ) -> Result<(), Interrupted> {
        if events.contains(PollFlags::POLLIN) && self.has_buffered_input() {
            return Ok(());
        }
        wait_fd(self.as_fd(), self.interest(events), deadline, stop)
    }

    /// Makes closing this connection reset it (`SO_LINGER` 0): what is still queued for the client
    /// is thrown away instead of trickling out for as long as its window allows. For a client
    /// dropped for being too slow; nothing is owed to it any more.
    pub fn reset_on_close(&self) {
        if !matches!(self, Stream::Unix(_)) {
            let abort = libc::linger { l_onoff: 1, l_linger: 0 };
            let _ = nix::sys::socket::setsockopt(&self.as_fd(), nix::sys::socket::sockopt::Linger, &abort);
        }
    }

    /// Closes our sending side, so the client sees the end of a close-delimited response (after
    /// TLS's close_notify).
    pub fn shutdown_write(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tls(s) => {
                s.shutdown_write();
                Ok(())
            }
        };
    }
}

/// Most bytes one sendfile(2) call is asked for, so that a huge file goes out in steps, each counted
/// toward the minimum rate.
const SENDFILE_MAX: u64 = 1 << 20;

/// Waits until `fd` is ready for `events`, the deadline passes, or `stop` becomes readable.
pub(super) fn wait_fd(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Instant,
    stop: Option<BorrowedFd<'_>>,
) -> Result<(), Interrupted> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Interrupted::TimedOut);
        }
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, events), PollFd::new(fd, PollFlags::empty())];
        let n = match stop {
            Some(stop) => {
                fds[1] = PollFd::new(stop, PollFlags::POLLIN);
                2
            }
            None => 1,
        };
        match poll(&mut fds[..n], timeout) {
            Ok(0) => continue,
            Ok(_) => {
                // Input that has already arrived wins over the stop: a request sent just before it
                // is answered (with `Connection: close`) rather than reset unread.
                let ready = fds[0].any().unwrap_or(false);
                if n == 2 && !ready && fds[1].any().unwrap_or(false) {
                    return Err(Interrupted::Stopping);
                }
                return Ok(());
            }
            Err(nix::errno::Errno::EINTR) => continue,
            // poll on two valid descriptors cannot fail otherwise; treat it as ready and let the
            // next read or write report the real error.
            Err(_) => return Ok(()),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            Stream::Tls(s) => s.as_fd(),
        }
    }
}
