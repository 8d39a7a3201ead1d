//! The buffers a connection and a serving thread reuse across requests: the read buffer, the
//! thread's shared per-exchange state, and a blocking thread's set of both.

use crate::app::{ConnInfo, RequestView};
use crate::http::date::DateCache;
use crate::http::parse::RequestHead;
use crate::http::response::ResponseHead;
use crate::worker::websocket::Link;
use std::cell::RefCell;
use std::rc::Rc;

/// The output buffer's starting capacity: a response head and a small body fit without growing.
pub(in crate::worker) const OUT_CAPACITY: usize = 64 * 1024;
pub(in crate::worker) const READ_CHUNK: usize = 16 * 1024;

/// The read buffer: bytes received but not yet parsed or handed to the app.
pub(in crate::worker) struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// A buffer without storage yet (the event worker lends storage only while a connection has
    /// bytes to hold).
    pub(in crate::worker) fn unallocated() -> ReadBuf {
        ReadBuf { buf: Vec::new(), start: 0, end: 0 }
    }

    /// Gives back the storage of an empty buffer, to be lent to another connection.
    pub(in crate::worker) fn take_storage(&mut self) -> Option<Vec<u8>> {
        (self.is_empty() && !self.buf.is_empty()).then(|| std::mem::take(&mut self.buf))
    }

    /// Whether the buffer holds storage (lent or its own).
    pub(in crate::worker) fn has_storage(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Lends storage to a buffer that has none (the caller checks [`ReadBuf::has_storage`] first).
    pub(in crate::worker) fn give_storage(&mut self, storage: Vec<u8>) {
        debug_assert!(self.buf.is_empty());
        self.buf = storage;
        self.start = 0;
        self.end = 0;
    }

    pub(in crate::worker) fn new() -> ReadBuf {
        ReadBuf { buf: vec![0; READ_CHUNK], start: 0, end: 0 }
    }

    pub(in crate::worker) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub(in crate::worker) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(in crate::worker) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space for at least `READ_CHUNK / 4` more bytes, moving data to the front or growing by
    /// `READ_CHUNK` (linearly: a head at `--limit-request-head` costs that limit plus one chunk, not
    /// the next power of two).
    pub(in crate::worker) fn spare(&mut self) -> &mut [u8] {
        if self.buf.len() - self.end < READ_CHUNK / 4 {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < READ_CHUNK / 4 {
                self.buf.reserve_exact(READ_CHUNK);
                self.buf.resize(self.buf.len() + READ_CHUNK, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    pub(in crate::worker) fn commit(&mut self, n: usize) {
        self.end += n;
    }

    pub(in crate::worker) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

/// What one thread needs to run exchanges, whichever connection they come from: reused across
/// requests so that the steady state allocates nothing.
pub struct Shared {
    pub(in crate::worker) head: RequestHead,
    pub(in crate::worker) resp: ResponseHead,
    pub(in crate::worker) view: RequestView,
    pub(in crate::worker) date: DateCache,
    pub(in crate::worker) scratch: Vec<u8>,
    /// The scoreboard lane of the thread these buffers belong to.
    pub(in crate::worker) lane: usize,
    /// Heads lent to bodies being gathered (each keeps its request's head while this one serves
    /// others) and given back, so that gathering allocates none in the steady state.
    spare_heads: Vec<RequestHead>,
    /// The WebSocket the last exchange's app accepted, until the event loop adopts it.
    pub(in crate::worker) upgraded: Option<Rc<RefCell<Link>>>,
    /// The call an async app just left pending, for the event loop to keep ([`super::Pending`]).
    pub(in crate::worker) pending: Option<Rc<RefCell<super::Pending>>>,
}

/// Most spare heads kept for gathered bodies.
const SPARE_HEADS: usize = 16;

impl Shared {
    /// Where the next head is parsed into.
    pub(in crate::worker) fn head_mut(&mut self) -> &mut RequestHead {
        &mut self.head
    }

    /// Says which scoreboard lane the owning thread reports on.
    pub(in crate::worker) fn set_lane(&mut self, lane: usize) {
        self.lane = lane;
    }

    /// A head to hold a gathered request's own while this one serves other connections.
    pub(in crate::worker) fn lend_head(&mut self) -> RequestHead {
        self.spare_heads.pop().unwrap_or_default()
    }

    /// Takes back a head [`Shared::lend_head`] lent, up to [`SPARE_HEADS`].
    pub(in crate::worker) fn take_back_head(&mut self, head: RequestHead) {
        if self.spare_heads.len() < SPARE_HEADS {
            self.spare_heads.push(head);
        }
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
            spare_heads: Vec::new(),
            upgraded: None,
            pending: None,
        }
    }
}

/// A blocking thread's buffers: the shared part plus the one connection it serves at a time.
pub struct Buffers {
    pub(in crate::worker) rbuf: ReadBuf,
    pub(in crate::worker) out: Vec<u8>,
    pub(in crate::worker) shared: Shared,
    pub info: ConnInfo,
}

impl Buffers {
    /// Says which scoreboard lane the owning thread reports on.
    pub(in crate::worker) fn set_lane(&mut self, lane: usize) {
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
