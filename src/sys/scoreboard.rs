//! The scoreboard: memory shared between the master and its workers, through which each worker reports
//! that it is alive, what it is serving, and its request counters — without a system call on the
//! request path.
//!
//! A [`Board`] is one `MAP_SHARED | MAP_ANONYMOUS` mapping created by the master before it forks, so
//! every worker forked afterwards sees the same pages. It holds a number of [`Slot`]s, one per live
//! worker, each followed by that worker's [`Lane`]s: one per thread that serves requests (the sync
//! worker has one, a `threads` worker one per thread, an `event` worker one for its loop and one per
//! pool thread). Every field is an atomic with a single writer (the lane's thread, or the master
//! between workers), so readers need no lock; a torn request line is only ever cosmetic.
//!
//! Why shared memory and not gunicorn's per-worker temp file: touching it is a store, not a `utime`
//! call, so liveness can be reported at every wait without cost, and a disk-backed temp directory
//! (gunicorn #1305) cannot stall it; the same pages carry the metrics.
//!
//! Liveness is per lane: `since` is when the lane's thread last came back from a wait (0 while it
//! waits). A lane that is not waiting and has not come back for longer than `--timeout` is stuck — an
//! app in an endless loop — while an idle keep-alive connection or an empty listen queue is a wait,
//! and never counts as silence.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Upper bounds, in microseconds, of the request-duration histogram's buckets; the last bucket
/// (`+Inf`) is implicit.
pub const DURATION_BOUNDS_US: [u64; 11] =
    [5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000];
/// How many bytes of the request line a lane keeps (`GET /path HTTP/1.1`).
pub const LINE_MAX: usize = 104;
const LINE_WORDS: usize = LINE_MAX / 8;

/// Why a worker closed a connection without serving it, as `rustgun_connections_refused_total`'s
/// `reason` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `--proxy-protocol`: the sender is not in `--proxy-allow-ips`, or its PROXY header is malformed.
    Proxy = 0,
    /// The TLS handshake failed.
    Tls = 1,
    /// An HTTP/2 client was cut off for abuse: resetting streams as fast as it opens them (rapid
    /// reset), or control frames faster than it reads their answers (floods).
    Http2Abuse = 2,
}

impl Refusal {
    /// Every reason's label, indexed by the discriminant.
    pub const LABELS: [&'static str; 3] = ["proxy", "tls", "http2_abuse"];
}

/// Why a worker is leaving of its own accord (the master cannot tell it from its exit code alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retired {
    No = 0,
    MaxRequests = 1,
}

/// A worker's own record: written by the worker, read (and reset between workers) by the master.
#[repr(C, align(64))]
pub struct Slot {
    /// How many lanes the worker uses.
    lanes: AtomicU32,
    /// A [`Retired`] value.
    retired: AtomicU32,
}

/// One serving thread's record.
#[repr(C, align(64))]
pub struct Lane {
    /// Monotonic milliseconds of the last return from a wait; 0 while waiting.
    since: AtomicU64,
    /// Length of the request line in `line`; 0 between requests.
    line_len: AtomicU64,
    /// Monotonic milliseconds ([`now_ms`]) at which the request in `line` began.
    begun: AtomicU64,
    line: [AtomicU64; LINE_WORDS],
    /// Connections accepted.
    accepted: AtomicU64,
    /// Connections closed unserved, by [`Refusal`].
    refused: [AtomicU64; Refusal::LABELS.len()],
    /// Requests completed.
    requests: AtomicU64,
    /// Requests by status class: 1xx … 5xx.
    status: [AtomicU64; 5],
    /// Request durations: one count per bucket of [`DURATION_BOUNDS_US`], then `+Inf`.
    duration: [AtomicU64; DURATION_BOUNDS_US.len() + 1],
    /// The sum of request durations, in microseconds.
    duration_sum_us: AtomicU64,
    /// An app's write on the event loop that waited for the client (its queue was full).
    push_waits: AtomicU64,
    /// Clients dropped for taking a response slower than `--min-rate`.
    too_slow: AtomicU64,
}

/// The counters of one lane, or their sum over many.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub accepted: u64,
    pub refused: [u64; Refusal::LABELS.len()],
    pub requests: u64,
    pub status: [u64; 5],
    pub duration: [u64; DURATION_BOUNDS_US.len() + 1],
    pub duration_sum_us: u64,
    pub push_waits: u64,
    pub too_slow: u64,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.accepted += other.accepted;
        for (a, b) in self.refused.iter_mut().zip(other.refused) {
            *a += b;
        }
        self.requests += other.requests;
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for (a, b) in self.duration.iter_mut().zip(other.duration) {
            *a += b;
        }
        self.duration_sum_us += other.duration_sum_us;
        self.push_waits += other.push_waits;
        self.too_slow += other.too_slow;
    }
}

/// Milliseconds on the coarse monotonic clock (never 0): cheap enough to read at every wait.
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000).max(1)
}

impl Lane {
    /// The thread is about to wait (for a connection, a request, the socket).
    pub fn waiting(&self) {
        self.since.store(0, Relaxed);
    }

    /// The thread is back from a wait (or making progress): it is alive now.
    pub fn awake(&self) {
        self.since.store(now_ms(), Relaxed);
    }

    /// An app's write on the event loop waited for the client: its queue was full.
    pub fn push_waited(&self) {
        self.push_waits.store(self.push_waits.load(Relaxed) + 1, Relaxed);
    }

    /// A client was dropped for reading its response slower than `--min-rate`.
    pub fn dropped_too_slow(&self) {
        self.too_slow.store(self.too_slow.load(Relaxed) + 1, Relaxed);
    }

    pub fn accepted(&self) {
        self.accepted.store(self.accepted.load(Relaxed) + 1, Relaxed);
    }

    /// A connection is closed unserved, for `why`.
    pub fn refused(&self, why: Refusal) {
        let c = &self.refused[why as usize];
        c.store(c.load(Relaxed) + 1, Relaxed);
    }

    /// A request starts: keep (the start of) its request line for the master's timeout report.
    pub fn begin(&self, method: &[u8], target: &[u8], version: &[u8]) {
        let mut line = [0u8; LINE_MAX];
        let mut len = 0;
        for part in [method, b" ", target, b" ", version] {
            let n = part.len().min(LINE_MAX - len);
            line[len..len + n].copy_from_slice(&part[..n]);
            len += n;
        }
        for (word, bytes) in self.line.iter().zip(line.chunks_exact(8)) {
            word.store(u64::from_ne_bytes(bytes.try_into().unwrap_or_default()), Relaxed);
        }
        self.begun.store(now_ms(), Relaxed);
        self.line_len.store(len as u64, Relaxed);
    }

    /// A request ends with `status` after `micros`.
    pub fn end(&self, status: u16, micros: u64) {
        self.line_len.store(0, Relaxed);
        let bump = |c: &AtomicU64| c.store(c.load(Relaxed) + 1, Relaxed);
        bump(&self.requests);
        if let Some(class) = self.status.get(usize::from(status / 100).wrapping_sub(1)) {
            bump(class);
        }
        let bucket = DURATION_BOUNDS_US.iter().position(|&b| micros <= b).unwrap_or(DURATION_BOUNDS_US.len());
        bump(&self.duration[bucket]);
        self.duration_sum_us.store(self.duration_sum_us.load(Relaxed) + micros, Relaxed);
    }

    /// Whether the lane is inside a request.
    pub fn serving(&self) -> bool {
        self.line_len.load(Relaxed) != 0
    }

    /// The request line being served, if any.
    pub fn line(&self) -> Option<String> {
        let len = (self.line_len.load(Relaxed) as usize).min(LINE_MAX);
        if len == 0 {
            return None;
        }
        let bytes: Vec<u8> = self.line.iter().flat_map(|w| w.load(Relaxed).to_ne_bytes()).collect();
        Some(String::from_utf8_lossy(&bytes[..len]).into_owned())
    }

    /// The request line being served and how many milliseconds ago it began, if any.
    pub fn request(&self, now: u64) -> Option<(String, u64)> {
        let begun = self.begun.load(Relaxed);
        self.line().map(|line| (line, now.saturating_sub(begun)))
    }

    /// Milliseconds since the lane last came back from a wait; `None` while it waits.
    pub fn silent_for(&self, now: u64) -> Option<u64> {
        match self.since.load(Relaxed) {
            0 => None,
            since => Some(now.saturating_sub(since)),
        }
    }

    pub fn counters(&self) -> Counters {
        Counters {
            accepted: self.accepted.load(Relaxed),
            refused: self.refused.each_ref().map(|c| c.load(Relaxed)),
            requests: self.requests.load(Relaxed),
            status: self.status.each_ref().map(|c| c.load(Relaxed)),
            duration: self.duration.each_ref().map(|c| c.load(Relaxed)),
            duration_sum_us: self.duration_sum_us.load(Relaxed),
            push_waits: self.push_waits.load(Relaxed),
            too_slow: self.too_slow.load(Relaxed),
        }
    }

    fn reset(&self) {
        self.since.store(0, Relaxed);
        self.line_len.store(0, Relaxed);
        let all = [
            &self.begun,
            &self.accepted,
            &self.requests,
            &self.duration_sum_us,
            &self.push_waits,
            &self.too_slow,
        ];
        let arrays = self.status.iter().chain(&self.duration).chain(&self.line).chain(&self.refused);
        for c in all.into_iter().chain(arrays) {
            c.store(0, Relaxed);
        }
    }
}

/// One shared mapping of `slots` slots with `lanes` lanes each.
pub struct Board {
    base: NonNull<u8>,
    len: usize,
    slots: usize,
    lanes: usize,
}

// SAFETY: the mapping is only ever accessed through `&Slot` and `&Lane`, whose fields are all atomics;
// the pointer itself never changes, and the mapping lives until the board is dropped.
unsafe impl Sync for Board {}
// SAFETY: as above; moving the board moves only the pointer to memory no thread owns exclusively.
unsafe impl Send for Board {}

impl Board {
    /// Maps a zeroed board for `slots` workers of up to `lanes` serving threads each.
    pub fn new(slots: usize, lanes: usize) -> io::Result<Board> {
        let slots = slots.max(1);
        let lanes = lanes.max(1);
        let len = slots * Board::stride(lanes);
        // SAFETY: a fresh anonymous shared mapping: no address hint, no file; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Board { base, len, slots, lanes })
    }

    fn stride(lanes: usize) -> usize {
        size_of::<Slot>() + lanes * size_of::<Lane>()
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    pub fn lanes(&self) -> usize {
        self.lanes
    }

    pub fn slot(&self, index: usize) -> &Slot {
        assert!(index < self.slots, "slot {index} of {}", self.slots);
        // SAFETY: in bounds (checked), aligned (the mapping is page-aligned and the stride is a
        // multiple of 64, the alignment of both types), zero-initialised by mmap, which is a valid
        // `Slot` since every field is an atomic integer.
        unsafe { &*self.base.as_ptr().add(index * Board::stride(self.lanes)).cast::<Slot>() }
    }

    fn lane_of(&self, index: usize, lane: usize) -> &Lane {
        assert!(index < self.slots && lane < self.lanes, "lane {lane} of slot {index}");
        let offset = index * Board::stride(self.lanes) + size_of::<Slot>() + lane * size_of::<Lane>();
        // SAFETY: in bounds and aligned as in `slot`; zeroed atomics are a valid `Lane`.
        unsafe { &*self.base.as_ptr().add(offset).cast::<Lane>() }
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` created; no reference into it outlives `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A worker's view of its slot: the board and its index.
#[derive(Clone, Copy)]
pub struct SlotRef<'a> {
    board: &'a Board,
    index: usize,
}

impl<'a> SlotRef<'a> {
    pub fn new(board: &'a Board, index: usize) -> SlotRef<'a> {
        SlotRef { board, index }
    }

    /// Lane `i`, or `None` past the lanes this board has (such a thread reports nothing).
    pub fn lane(&self, i: usize) -> Option<&'a Lane> {
        (i < self.board.lanes).then(|| self.board.lane_of(self.index, i))
    }

    /// The worker says how many lanes it uses (at boot).
    pub fn set_lanes(&self, n: usize) {
        self.board.slot(self.index).lanes.store(n.min(self.board.lanes) as u32, Relaxed);
    }

    /// The worker says why it is leaving.
    pub fn retire(&self, why: Retired) {
        self.board.slot(self.index).retired.store(why as u32, Relaxed);
    }

    /// The lanes in use.
    pub fn lanes(&self) -> impl Iterator<Item = &'a Lane> + 'a {
        let (board, index) = (self.board, self.index);
        let n = board.slot(index).lanes.load(Relaxed) as usize;
        (0..n.min(board.lanes)).map(move |i| board.lane_of(index, i))
    }

    pub fn retired(&self) -> Retired {
        match self.board.slot(self.index).retired.load(Relaxed) {
            1 => Retired::MaxRequests,
            _ => Retired::No,
        }
    }

    /// The sum of the counters of every lane in use.
    pub fn counters(&self) -> Counters {
        let mut sum = Counters::default();
        for lane in self.lanes() {
            sum.add(&lane.counters());
        }
        sum
    }

    /// Clears the slot for the next worker (the master does this before forking it).
    pub fn reset(&self) {
        let slot = self.board.slot(self.index);
        slot.lanes.store(0, Relaxed);
        slot.retired.store(0, Relaxed);
        for i in 0..self.board.lanes {
            self.board.lane_of(self.index, i).reset();
        }
    }
}

/// Where a worker's slot is: which board, which slot on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId {
    board: u32,
    index: usize,
}

/// The master's boards and which of their slots are taken. A board is mapped when no free slot has
/// enough lanes (at start, when `TTIN` outgrows it, when a reload asks for more threads) and unmapped
/// once it is empty and a newer one exists; workers forked earlier keep their own mapping of it.
#[derive(Default)]
pub struct Scoreboard {
    boards: std::collections::BTreeMap<u32, (Board, Vec<bool>)>,
    next: u32,
}

impl Scoreboard {
    /// Takes a free, cleared slot with at least `lanes` lanes, mapping a board of `capacity` slots when
    /// none is free.
    pub fn take(&mut self, lanes: usize, capacity: usize) -> io::Result<SlotId> {
        let free = self.boards.iter().find_map(|(&board, (b, used))| {
            (b.lanes() >= lanes).then(|| used.iter().position(|u| !u).map(|index| SlotId { board, index }))?
        });
        let id = match free {
            Some(id) => id,
            None => {
                let board = Board::new(capacity, lanes)?;
                let id = self.next;
                self.next += 1;
                let slots = board.slots();
                self.boards.insert(id, (board, vec![false; slots]));
                SlotId { board: id, index: 0 }
            }
        };
        if let Some((_, used)) = self.boards.get_mut(&id.board) {
            used[id.index] = true;
        }
        if let Some(slot) = self.get(id) {
            slot.reset();
        }
        Ok(id)
    }

    pub fn get(&self, id: SlotId) -> Option<SlotRef<'_>> {
        self.boards.get(&id.board).map(|(board, _)| SlotRef::new(board, id.index))
    }

    /// Gives a slot back; a board left empty is unmapped unless it is the newest.
    pub fn free(&mut self, id: SlotId) {
        let newest = self.boards.keys().next_back().copied();
        let Some((_, used)) = self.boards.get_mut(&id.board) else { return };
        used[id.index] = false;
        if used.iter().all(|u| !u) && Some(id.board) != newest {
            self.boards.remove(&id.board);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_keeps_the_request_line_and_counts_what_ends() {
        let mut board = Scoreboard::default();
        let id = board.take(2, 4).unwrap();
        let slot = board.get(id).unwrap();
        slot.set_lanes(2);
        let lane = slot.lane(1).unwrap();
        assert_eq!(lane.line(), None);
        lane.begin(b"GET", b"/loop", b"HTTP/1.1");
        assert_eq!(lane.line().as_deref(), Some("GET /loop HTTP/1.1"));
        let (line, age) = lane.request(now_ms() + 1_000).unwrap();
        assert_eq!(line, "GET /loop HTTP/1.1");
        assert!((1_000..60_000).contains(&age), "age {age}");
        assert!(lane.serving());
        lane.end(404, 7_000);
        assert!(!lane.serving());
        lane.end(200, 20_000_000);
        let c = slot.counters();
        assert_eq!((c.requests, c.status), (2, [0, 1, 0, 1, 0]));
        assert_eq!((c.duration[1], c.duration[DURATION_BOUNDS_US.len()]), (1, 1));
        assert_eq!(c.duration_sum_us, 20_007_000);
        let long = vec![b'x'; 300];
        lane.begin(b"GET", &long, b"HTTP/1.1");
        assert_eq!(lane.line().map(|l| l.len()), Some(LINE_MAX));
    }

    #[test]
    fn a_waiting_lane_is_never_silent() {
        let mut board = Scoreboard::default();
        let id = board.take(1, 1).unwrap();
        let lane = board.get(id).unwrap().lane(0).unwrap();
        assert_eq!(lane.silent_for(now_ms() + 60_000), None);
        lane.awake();
        assert!(lane.silent_for(now_ms() + 60_000).is_some_and(|ms| ms >= 60_000));
        lane.waiting();
        assert_eq!(lane.silent_for(now_ms() + 60_000), None);
    }

    #[test]
    fn slots_are_reused_cleared_and_boards_grow_when_full() {
        let mut board = Scoreboard::default();
        let a = board.take(1, 2).unwrap();
        board.get(a).unwrap().lane(0).unwrap().end(200, 1);
        let b = board.take(1, 2).unwrap();
        board.free(a);
        let c = board.take(1, 2).unwrap();
        assert_eq!(c, a, "a freed slot is taken again");
        let slot = board.get(c).unwrap();
        slot.set_lanes(1);
        assert_eq!(slot.counters(), Counters::default(), "and cleared");
        let d = board.take(1, 2).unwrap();
        assert!(d != b && d != c, "a full board maps another");
        let wide = board.take(8, 1).unwrap();
        assert!(board.get(wide).unwrap().lane(7).is_some());
    }
}
