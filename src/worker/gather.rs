//! A request body the event loop gathers before it calls a synchronous app on the loop, so that the app never
//! waits for a client (nginx buffers bodies for its upstreams the same way): up to
//! `--client-body-buffer-size` in the connection's read buffer, beyond it in an unlinked temporary file
//! ([`Spool`]). A scout [`Decoder`] walks the framing as bytes arrive and says where the body ends;
//! the exchange then decodes the same bytes again, from the spool first and the read buffer after.
//!
//! Not here: when a body is gathered (the event loop without `--threads`, for a synchronous app;
//! pool threads, the blocking classes and async apps read bodies as they arrive), and how the gathered bytes are read
//! (`connection`'s `read_body`).

use super::connection::ReadBuf;
use crate::http::body::Decoder;
use crate::http::parse::{BodyFraming, RequestHead};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// What has been gathered of one request's body, and the request's head, kept while the loop's
/// shared head serves other connections.
pub(super) struct Gather {
    pub head: RequestHead,
    scout: Decoder,
    /// Body bytes held at the start of the read buffer (none once spooling started).
    held: usize,
    spool: Option<Spool>,
    /// The scout reached the body's end, or a framing error the exchange will answer.
    done: bool,
}

impl Gather {
    /// A gatherer for a body of `framing`, stopping at a chunked body's `limit`, keeping its request's
    /// head in `head` (a spare the caller lends, to swap with its own); `None` when there is nothing to
    /// wait for: no body, or a Content-Length over the limit (the connection refused that with the head).
    pub fn new(framing: BodyFraming, limit: u64, head: RequestHead) -> Option<Gather> {
        if framing == BodyFraming::Empty {
            return None;
        }
        let scout = Decoder::new(framing, limit).ok()?;
        Some(Gather { head, scout, held: 0, spool: None, done: false })
    }

    /// Takes in what has arrived (`rbuf` holds the body so far, then whatever follows it); body bytes
    /// past `cap` in memory move to the spool. `true` once the whole body is here (or its framing
    /// failed: the exchange answers that).
    pub fn absorb(&mut self, rbuf: &mut ReadBuf, cap: usize) -> io::Result<bool> {
        let data = rbuf.data();
        let fresh = &data[self.held..];
        let mut used = 0;
        while !self.done && used < fresh.len() {
            match self.scout.decode(&fresh[used..]) {
                Ok(step) => {
                    used += step.consumed;
                    self.done = step.done;
                    if step.consumed == 0 {
                        break;
                    }
                }
                Err(_) => self.done = true,
            }
        }
        let body = self.held + used;
        if self.spool.is_some() || body > cap {
            let spool = match &mut self.spool {
                Some(spool) => spool,
                none => none.insert(Spool::create()?),
            };
            spool.append(&data[..body])?;
            rbuf.consume(body);
            self.held = 0;
        } else {
            self.held = body;
        }
        Ok(self.done)
    }

    /// The spooled part of the body, for the exchange to read first, and the head it held (by then
    /// the spare it was lent, swapped back).
    pub fn into_parts(self) -> (Option<Spool>, RequestHead) {
        (self.spool, self.head)
    }
}

/// Body bytes kept in an unlinked temporary file: appended while they arrive, read back once by the
/// exchange. The file has no name, so nothing is left behind however the worker ends.
pub(super) struct Spool {
    file: File,
    len: u64,
    read: u64,
}

impl Spool {
    pub(super) fn create() -> io::Result<Spool> {
        let dir = std::env::temp_dir();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o600)
            .open(&dir)
            .or_else(|_| named_then_unlinked(&dir))?;
        Ok(Spool { file, len: 0, read: 0 })
    }

    pub(super) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Spooled bytes not yet taken.
    pub fn unread(&self) -> u64 {
        self.len - self.read
    }

    /// Copies the next unread bytes into `buf` without taking them; [`Spool::take`] says how many
    /// were used.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.unread().min(buf.len() as u64)) as usize;
        self.file.read_exact_at(&mut buf[..want], self.read)?;
        Ok(want)
    }

    pub fn take(&mut self, n: usize) {
        self.read = (self.read + n as u64).min(self.len);
    }
}

/// Where `O_TMPFILE` is not supported: a file created under a unique name and unlinked at once.
fn named_then_unlinked(dir: &std::path::Path) -> io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name =
        dir.join(format!(".rustgun-body-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&name)?;
    std::fs::remove_file(&name)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf_with(bytes: &[u8]) -> ReadBuf {
        let mut rbuf = ReadBuf::new();
        rbuf.spare()[..bytes.len()].copy_from_slice(bytes);
        rbuf.commit(bytes.len());
        rbuf
    }

    #[test]
    fn a_small_body_stays_in_memory_and_what_follows_it_stays_after_it() {
        let mut rbuf = buf_with(b"hello world!NEXT");
        let mut gather = Gather::new(BodyFraming::Length(12), 0, RequestHead::default()).unwrap();
        assert!(gather.absorb(&mut rbuf, 64).unwrap());
        assert_eq!(rbuf.data(), b"hello world!NEXT");
        assert!(gather.into_parts().0.is_none());
    }

    #[test]
    fn a_body_past_the_cap_is_spooled_in_order_and_the_read_buffer_keeps_what_follows() {
        let mut rbuf = buf_with(b"5\r\nhello\r\n");
        let mut gather = Gather::new(BodyFraming::Chunked, 0, RequestHead::default()).unwrap();
        assert!(!gather.absorb(&mut rbuf, 8).unwrap());
        assert!(rbuf.is_empty());
        // The rest arrives in pieces, with the next request behind the body's end.
        for piece in [&b"6\r\n wor"[..], b"ld\r\n0\r\n", b"\r\nGET"] {
            let at = rbuf.data().len();
            rbuf.spare()[..piece.len()].copy_from_slice(piece);
            rbuf.commit(piece.len());
            let done = gather.absorb(&mut rbuf, 8).unwrap();
            assert_eq!(done, piece.ends_with(b"GET"), "after {piece:?}");
            assert!(rbuf.data().len() <= at + piece.len());
        }
        assert_eq!(rbuf.data(), b"GET");
        let mut spool = gather.into_parts().0.expect("spooled");
        let mut all = vec![0u8; spool.unread() as usize];
        assert_eq!(spool.peek(&mut all).unwrap(), all.len());
        spool.take(all.len());
        assert_eq!(all, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        assert_eq!(spool.unread(), 0);
    }

    #[test]
    fn nothing_to_gather_without_a_body_or_with_a_refused_length() {
        assert!(Gather::new(BodyFraming::Empty, 0, RequestHead::default()).is_none());
        assert!(Gather::new(BodyFraming::Length(10), 5, RequestHead::default()).is_none());
    }

    #[test]
    fn a_framing_error_ends_the_gathering_for_the_exchange_to_answer() {
        let mut rbuf = buf_with(b"zz\r\n");
        let mut gather = Gather::new(BodyFraming::Chunked, 0, RequestHead::default()).unwrap();
        assert!(gather.absorb(&mut rbuf, 64).unwrap());
    }
}
