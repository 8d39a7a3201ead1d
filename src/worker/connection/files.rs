//! Files an exchange sends for `send_file`: sendfile(2) where the socket and the framing allow it,
//! else copied block by block through the thread's scratch buffer; on an event loop, handed over and
//! sent as the client takes it, like a parked body.

use super::{Call, HIGH_WATER};
use crate::app::HostError;
use crate::http::response::Framing;
use nix::poll::PollFlags;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

/// The rest of a file that `send_file` handed to queued I/O: the server's own descriptor for it (the
/// app may close its own once `handle` returns) and what is left to send.
pub(super) struct PendingFile {
    pub(super) fd: std::os::fd::OwnedFd,
    pub(super) offset: u64,
    pub(super) left: u64,
}

impl Call<'_, '_, '_> {
    /// Sends what is left of a file `send_file` handed over: by sendfile(2) while nothing else is
    /// queued and the framing adds no bytes of its own, else copied through the scratch buffer. With
    /// `may_park`, stops (`true`, the file kept) once the socket is full or [`HIGH_WATER`] is queued.
    pub(super) fn pump_file(&mut self, may_park: bool) -> bool {
        let Some(mut file) = self.state.file.take() else { return false };
        let mut scratch = std::mem::take(self.scratch);
        let parked = loop {
            if file.left == 0 || self.io.dead {
                break false;
            }
            if may_park && self.io.out.len() >= HIGH_WATER {
                break true;
            }
            let Some((framing, _)) = self.proto.body_room() else { break false };
            if self.io.out.is_empty() && framing != Framing::Chunked && self.ctx.settings.sendfile {
                match self.io.stream.try_send_file(file.fd.as_fd(), file.offset, file.left) {
                    Ok(Some(0)) => break false,
                    Ok(Some(n)) => {
                        self.proto.sent_directly(n as u64);
                        (file.offset, file.left) = (file.offset + n as u64, file.left - n as u64);
                        self.io.transferred += n as u64;
                        continue;
                    }
                    Ok(None) if may_park => break true,
                    Ok(None) => {
                        if self.io.wait_on_client(PollFlags::POLLOUT).is_err() {
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

    /// Sends `len` bytes of `file` from `offset` by sendfile(2) (blocking I/O, a framing that adds no
    /// bytes), waiting on the client under the minimum rate: the count sent, short only at the file's
    /// end; `None` when sendfile(2) cannot be used here (TLS, a pipe: the caller copies).
    pub(super) fn send_file_directly(
        &mut self,
        file: BorrowedFd<'_>,
        offset: u64,
        len: u64,
    ) -> Result<Option<u64>, HostError> {
        if !self.ctx.settings.sendfile {
            return Ok(None);
        }
        let mut sent = 0u64;
        while sent < len {
            match self.io.stream.try_send_file(file, offset + sent, len - sent) {
                Ok(Some(0)) => break,
                Ok(Some(n)) => {
                    sent += n as u64;
                    self.proto.sent_directly(n as u64);
                    self.io.moved(n as u64);
                }
                Ok(None) => {
                    if self.io.wait_on_client(PollFlags::POLLOUT).is_err() {
                        self.io.dead = true;
                        return Err(HostError::Closed);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported && sent == 0 => return Ok(None),
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    return Err(self.file_failed(nix::errno::Errno::EIO));
                }
                Err(_) => {
                    self.io.dead = true;
                    return Err(HostError::Closed);
                }
            }
        }
        Ok(Some(sent))
    }

    /// Copies `len` bytes of `file` from `offset` into the response through the scratch buffer (TLS,
    /// chunked framing, or a file sendfile(2) cannot read): the count the framing accepted.
    pub(super) fn copy_file(
        &mut self,
        file: BorrowedFd<'_>,
        offset: u64,
        len: u64,
    ) -> Result<u64, HostError> {
        let mut scratch = std::mem::take(self.scratch);
        let mut sent = 0u64;
        let result = loop {
            if sent == len {
                break Ok(sent);
            }
            let want = (len - sent).min(scratch.len() as u64) as usize;
            let Ok(at) = i64::try_from(offset + sent) else { break Err(HostError::Invalid) };
            match nix::sys::uio::pread(file, &mut scratch[..want], at) {
                Ok(0) => break Ok(sent),
                Ok(n) => match self.send_body(&scratch[..n]) {
                    Ok(()) => sent += n as u64,
                    Err(e) => break Err(e),
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
    pub(super) fn hand_over_file(
        &mut self,
        file: BorrowedFd<'_>,
        offset: u64,
        len: u64,
    ) -> Result<u64, HostError> {
        let size = match nix::sys::stat::fstat(file.as_raw_fd()) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => st.st_size as u64,
            _ => return self.copy_file(file, offset, len),
        };
        let len = len.min(size.saturating_sub(offset));
        let fd = file.try_clone_to_owned().map_err(|_| HostError::Invalid)?;
        if len > 0 {
            self.state.file = Some(PendingFile { fd, offset, left: len });
        }
        Ok(len)
    }

    /// A file could not be read: `Io` for a read error (the response is cut, so the connection
    /// closes), `Invalid` for a descriptor that is not a readable file.
    pub(super) fn file_failed(&mut self, e: nix::errno::Errno) -> HostError {
        use nix::errno::Errno;
        if matches!(e, Errno::EBADF | Errno::EINVAL | Errno::EISDIR | Errno::ESPIPE | Errno::ENXIO) {
            return HostError::Invalid;
        }
        tracing::error!(
            "reading the file of {} {} failed: {e}; closing the connection",
            String::from_utf8_lossy(self.head.method()),
            String::from_utf8_lossy(self.head.target())
        );
        self.proto.must_close();
        HostError::Io(e.into())
    }
}
