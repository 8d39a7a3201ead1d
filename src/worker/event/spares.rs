//! The loop's spare buffers, lent to connections only while they hold bytes.

/// Most spare buffers of each kind a loop keeps: enough for the connections that turn over between
/// two wake-ups, few enough that a burst leaves no lasting footprint (64 read buffers of at most
/// 80 KiB and 64 output buffers of 64 KiB).
const SPARES_MAX: usize = 64;

/// Buffers lent to connections only while they hold bytes, all of one shape (`len` bytes, starting
/// `capacity`). Capped in number, and each cut back to that shape before it is kept, so a burst of
/// large heads or responses leaves no lasting footprint.
pub(super) struct Spares {
    kept: Vec<Vec<u8>>,
    len: usize,
    capacity: usize,
}

impl Spares {
    pub(super) fn new(len: usize, capacity: usize) -> Spares {
        Spares { kept: Vec::new(), len, capacity }
    }

    /// A kept buffer, or a new one.
    pub(super) fn take(&mut self) -> Vec<u8> {
        self.kept.pop().unwrap_or_else(|| {
            let mut buf = Vec::with_capacity(self.capacity);
            buf.resize(self.len, 0);
            buf
        })
    }

    /// Keeps `buf` for the next connection, cut back to the shape, unless enough are kept already.
    pub(super) fn keep(&mut self, mut buf: Vec<u8>) {
        if self.kept.len() >= SPARES_MAX {
            return;
        }
        buf.truncate(self.len);
        buf.shrink_to(self.capacity);
        self.kept.push(buf);
    }
}
