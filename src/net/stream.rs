//! An accepted connection: non-blocking reads and writes that wait with `poll` until a deadline, and
//! wake early when the worker is told to stop.

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Who is on the other end.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    Tcp(SocketAddr),
    Unix,
}

/// An accepted connection, always in non-blocking mode.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
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
    pub(super) fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(true),
            Stream::Unix(s) => s.set_nonblocking(true),
        }
    }

    /// Reads what is available now; `Ok(None)` when nothing is.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let r = match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        };
        match r {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads at least one byte (or EOF, `Ok(0)`), waiting until `deadline`.
    pub fn read_until(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            if let Some(n) = self.try_read(buf)? {
                return Ok(n);
            }
            self.wait(PollFlags::POLLIN, deadline, None).map_err(timeout_error)?;
        }
    }

    /// Writes all of `data`, waiting for the socket to drain until `deadline`.
    pub fn write_all_until(&mut self, mut data: &[u8], deadline: Instant) -> io::Result<()> {
        while !data.is_empty() {
            let r = match self {
                Stream::Tcp(s) => s.write(data),
                Stream::Unix(s) => s.write(data),
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(PollFlags::POLLOUT, deadline, None).map_err(timeout_error)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits until the socket is ready for `events`, the deadline passes, or `stop` becomes readable.
    pub fn wait(
        &self,
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
            let mut fds = [PollFd::new(self.as_fd(), events), PollFd::new(self.as_fd(), PollFlags::empty())];
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
                    if n == 2 && fds[1].any().unwrap_or(false) {
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

    /// Closes our sending side, so the client sees the end of a close-delimited response.
    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }
}

fn timeout_error(_: Interrupted) -> io::Error {
    io::ErrorKind::TimedOut.into()
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}
