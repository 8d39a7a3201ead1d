//! The boundary, outbound half: every call from the app into the host and every read through a pointer
//! the host lent. The rest of the SDK builds on the safe types here ([`Call`], [`HeaderList`],
//! [`Header`]), whose constructors are `unsafe` and state what the host promised.
//!
//! The soundness argument is the ABI's borrowing rule: what the server passes to `handle` stays valid
//! until `handle` returns, on that thread. Everything here carries a lifetime `'a` that the trampoline
//! in `export` ties to the `handle` call, and [`Call`] holds a raw pointer, so nothing derived from it
//! is `Send` or `Sync`: it cannot leave the call or its thread.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::OnceLock;

use rustgun_abi::{RgBodySource, RgCall, RgHeader, RgHost, RgRequest, RgStr};

use crate::error::HostError;
use crate::request::Request;
use crate::response::BodySource;

/// Borrows the bytes of an [`RgStr`].
///
/// # Safety
/// `s.ptr` must point at `s.len` readable bytes that stay valid and unchanged for `'a` (or `s.len`
/// must be 0).
pub(crate) unsafe fn bytes<'a>(s: RgStr) -> &'a [u8] {
    if s.len == 0 || s.ptr.is_null() {
        return &[];
    }
    // SAFETY: the caller guarantees `len` readable bytes at `ptr` for `'a`; `ptr` is not null.
    unsafe { std::slice::from_raw_parts(s.ptr, s.len) }
}

/// A borrowed array of [`RgHeader`] (request headers or environ entries) whose strings are valid for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct HeaderList<'a> {
    items: &'a [RgHeader],
}

impl<'a> HeaderList<'a> {
    /// # Safety
    /// `ptr` must point at `len` initialized `RgHeader`s (or `len` must be 0), and every `RgStr` in them
    /// must satisfy [`bytes`]'s contract, all for `'a`.
    pub(crate) unsafe fn new(ptr: *const RgHeader, len: usize) -> HeaderList<'a> {
        if len == 0 || ptr.is_null() {
            return HeaderList { items: &[] };
        }
        // SAFETY: the caller guarantees `len` valid headers at `ptr` for `'a`; `ptr` is not null.
        let items = unsafe { std::slice::from_raw_parts(ptr, len) };
        HeaderList { items }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The name and value of entry `i`.
    pub(crate) fn get(&self, i: usize) -> Option<(&'a [u8], &'a [u8])> {
        let h = self.items.get(i)?;
        // SAFETY: `new`'s contract: every string in the list is valid for `'a`.
        unsafe { Some((bytes(h.name), bytes(h.value))) }
    }
}

/// A response header: a name and a value borrowed for `'a`, laid out exactly as an [`RgHeader`] so a
/// slice of them goes to `start_response` as is. `const`, so a fixed set of headers can live in a
/// `static` and cost nothing per request:
///
/// ```
/// use rustgun_sdk::Header;
/// static HEADERS: [Header<'static>; 1] = [Header::new(b"Content-Type", b"text/plain")];
/// assert_eq!(HEADERS[0].name(), b"Content-Type");
/// ```
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct Header<'a> {
    raw: RgHeader,
    _borrow: PhantomData<(&'a [u8], &'a [u8])>,
}

// SAFETY: a `Header` is two shared byte slices (`&'a [u8]` is `Send` and `Sync`); the raw pointers in
// `RgHeader` are only read, through `name()`/`value()` or by the host during `start_response`.
unsafe impl Send for Header<'_> {}
// SAFETY: as above.
unsafe impl Sync for Header<'_> {}

impl<'a> Header<'a> {
    /// A header borrowing `name` and `value`. The server checks them (`RG_E_INVALID` on CR, LF, NUL or a
    /// name that is not a token).
    pub const fn new(name: &'a [u8], value: &'a [u8]) -> Header<'a> {
        Header {
            raw: RgHeader { name: RgStr::from_bytes(name), value: RgStr::from_bytes(value) },
            _borrow: PhantomData,
        }
    }

    /// The name.
    pub fn name(&self) -> &'a [u8] {
        // SAFETY: `new` built the string from a `&'a [u8]`.
        unsafe { bytes(self.raw.name) }
    }

    /// The value.
    pub fn value(&self) -> &'a [u8] {
        // SAFETY: `new` built the string from a `&'a [u8]`.
        unsafe { bytes(self.raw.value) }
    }
}

impl std::fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Header")
            .field(&String::from_utf8_lossy(self.name()))
            .field(&String::from_utf8_lossy(self.value()))
            .finish()
    }
}

/// The request-scoped host functions, bound to one `handle` call.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    host: &'a RgHost,
    call: *mut RgCall,
}

impl<'a> Call<'a> {
    /// # Safety
    /// `host` must be the server's function table and `call` the handle of a `handle` call that lasts
    /// for `'a`; the `Call` must be used on that call's thread only (it is neither `Send` nor `Sync`).
    pub(crate) unsafe fn new(host: &'a RgHost, call: *mut RgCall) -> Call<'a> {
        Call { host, call }
    }

    /// `read_body` into `buf`: the count, 0 at the end, or a negative status.
    pub(crate) fn read_body(&self, buf: &mut [u8]) -> i64 {
        // SAFETY: `call` is live (see `new`); `buf` is writable for `buf.len()` bytes.
        unsafe { (self.host.read_body)(self.call, buf.as_mut_ptr(), buf.len()) }
    }

    /// `start_response`.
    pub(crate) fn start_response(
        &self,
        status: u32,
        reason: &[u8],
        headers: &[Header<'_>],
        flags: u32,
    ) -> Result<(), HostError> {
        // `Header` is `repr(transparent)` over `RgHeader`, so the slice is an `RgHeader` array.
        let ptr = headers.as_ptr().cast::<RgHeader>();
        // SAFETY: `call` is live; `reason` and every header borrow memory valid for this call, which is
        // all the host needs (it copies what it keeps).
        let rc = unsafe {
            (self.host.start_response)(
                self.call,
                status,
                RgStr::from_bytes(reason),
                ptr,
                headers.len(),
                flags,
            )
        };
        HostError::check(rc)
    }

    /// `write`.
    pub(crate) fn write(&self, data: &[u8]) -> Result<(), HostError> {
        // SAFETY: `call` is live; `data` is readable for its length during the call (the host copies it).
        let rc = unsafe { (self.host.write)(self.call, data.as_ptr(), data.len()) };
        HostError::check(rc)
    }

    /// `send_file` (ABI 1.1): the count sent, or the host's error.
    pub(crate) fn send_file(&self, fd: i32, offset: u64, len: u64) -> Result<u64, HostError> {
        // SAFETY: `call` is live; the host only reads `fd`, which the caller keeps open for the call.
        let n = unsafe { (self.host.send_file)(self.call, fd, offset, len) };
        match HostError::from_code(n) {
            Some(e) => Err(e),
            None => Ok(n as u64),
        }
    }

    /// `environ`: the entries, valid until `handle` returns.
    pub(crate) fn environ(&self) -> Result<HeaderList<'a>, HostError> {
        let mut out: *const RgHeader = std::ptr::null();
        let mut out_len: usize = 0;
        // SAFETY: `call` is live; both out-pointers point at live locals.
        let rc = unsafe { (self.host.environ)(self.call, &raw mut out, &raw mut out_len) };
        HostError::check(rc)?;
        // SAFETY: the host promises `out_len` entries at `out`, valid until `handle` returns, which is
        // at least `'a`.
        Ok(unsafe { HeaderList::new(out, out_len) })
    }

    /// `set_body` with `source` boxed behind an `RgBodySource` whose `close` drops it.
    pub(crate) fn set_body<S: BodySource>(&self, source: S) -> Result<(), HostError> {
        let state = Box::into_raw(Box::new(source));
        let desc = RgBodySource {
            state: state.cast::<c_void>(),
            next: Some(crate::export::body_next::<S>),
            close: Some(crate::export::body_close::<S>),
        };
        // SAFETY: `call` is live; the host copies `desc` and from now on owns `state` until it calls `close`.
        let rc = unsafe { (self.host.set_body)(self.call, &raw const desc) };
        let result = HostError::check(rc);
        if result.is_err() {
            // The host refused the body, so it will never call `close`: take the state back.
            // SAFETY: `state` came from `Box::into_raw` above and the host did not keep it.
            drop(unsafe { Box::from_raw(state) });
        }
        result
    }
}

/// Builds the safe [`Request`] view and the [`Call`] of a `handle` call.
///
/// # Safety
/// `raw` must be the request the server passed to `handle`, fully valid (including `raw.host`, which is
/// not null, and every string and the header array) for `'a`; `raw.size` must cover the 1.0 struct.
pub(crate) unsafe fn request<'a>(raw: &'a RgRequest, host: &'a RgHost) -> Request<'a> {
    // SAFETY: the caller's contract covers every pointer read here, for `'a`.
    unsafe {
        Request {
            call: Call::new(host, raw.call),
            flags: raw.flags,
            method: bytes(raw.method),
            target: bytes(raw.target),
            path_raw: bytes(raw.path_raw),
            path: bytes(raw.path),
            query: bytes(raw.query),
            version: bytes(raw.version),
            headers: HeaderList::new(raw.headers, raw.headers_len),
            content_length: raw.content_length,
            peer_addr: bytes(raw.peer_addr),
            server_addr: bytes(raw.server_addr),
            peer_port: raw.peer_port,
            server_port: raw.server_port,
            worker_id: raw.worker_id,
            url_scheme: bytes(raw.url_scheme),
        }
    }
}

type LogFn = unsafe extern "C" fn(level: i32, msg: RgStr);

/// The host's `log`, remembered from `init` or the first request (the function lives as long as the
/// server process, unlike the borrowed structs).
static HOST_LOG: OnceLock<LogFn> = OnceLock::new();

/// The host's WebSocket functions (ABI 1.3), remembered like `log`: events carry no host table.
static HOST_WS: OnceLock<SocketFns> = OnceLock::new();

/// Remembers the host's `log` function for [`host_log`], and its WebSocket functions when the host
/// has them.
pub(crate) fn remember_host(host: &RgHost) {
    if HOST_LOG.get().is_none() {
        let _ = HOST_LOG.set(host.log);
    }
    if HOST_WS.get().is_none() && host.abi_minor >= 3 && host.size as usize >= size_of::<RgHost>() {
        let _ = HOST_WS.set(SocketFns {
            accept: host.accept_websocket,
            send: host.ws_send,
            close: host.ws_close,
            complete: host.complete,
            read_body: host.read_body,
            start_response: host.start_response,
            write: host.write,
            post: host.post,
            trailers: host.trailers,
        });
    }
}

/// The host functions of a call that outlives `handle` (ABI 1.3).
#[derive(Clone, Copy)]
struct SocketFns {
    accept: unsafe extern "C" fn(*mut RgCall, RgStr, *const RgHeader, usize) -> i32,
    send: unsafe extern "C" fn(*mut RgCall, u32, *const u8, usize) -> i32,
    close: unsafe extern "C" fn(*mut RgCall, u32, RgStr) -> i32,
    complete: unsafe extern "C" fn(*mut RgCall, i32) -> i32,
    read_body: unsafe extern "C" fn(*mut RgCall, *mut u8, usize) -> i64,
    start_response: unsafe extern "C" fn(*mut RgCall, u32, RgStr, *const RgHeader, usize, u32) -> i32,
    write: unsafe extern "C" fn(*mut RgCall, *const u8, usize) -> i32,
    post: unsafe extern "C" fn(rustgun_abi::RgPostFn, *mut c_void) -> i32,
    trailers: unsafe extern "C" fn(*mut RgCall, *const RgHeader, usize) -> i32,
}

/// The WebSocket functions, or `RG_E_STATE` from a host older than ABI 1.3.
fn socket_fns() -> Result<SocketFns, HostError> {
    HOST_WS.get().copied().ok_or(HostError::State)
}

impl Call<'_> {
    /// `accept_websocket` (ABI 1.3).
    pub(crate) fn accept_websocket(
        &self,
        subprotocol: &[u8],
        headers: &[Header<'_>],
    ) -> Result<(), HostError> {
        let fns = socket_fns()?;
        let ptr = headers.as_ptr().cast::<RgHeader>();
        // SAFETY: `call` is live; the strings and headers are valid for this call (the host copies them).
        let rc = unsafe { (fns.accept)(self.call, RgStr::from_bytes(subprotocol), ptr, headers.len()) };
        HostError::check(rc)
    }

    /// `trailers` (ABI 1.3).
    pub(crate) fn trailers(&self, fields: &[Header<'_>]) -> Result<(), HostError> {
        self.socket().trailers(fields)
    }

    /// The handle as a call that outlives `handle` keeps it.
    pub(crate) fn socket(&self) -> SocketCall {
        SocketCall::new(self.call)
    }
}

/// A handle of a call that outlived `handle` (an accepted WebSocket), kept as the number it is: the
/// host checks it on every use (`RG_E_STATE` once the call ended, or from another thread), so it may
/// be kept, copied and shared freely.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct SocketCall(pub(crate) usize);

impl SocketCall {
    pub(crate) fn new(call: *mut RgCall) -> SocketCall {
        SocketCall(call.addr())
    }

    fn raw(self) -> *mut RgCall {
        std::ptr::without_provenance_mut(self.0)
    }

    pub(crate) fn send(self, kind: u32, data: &[u8]) -> Result<(), HostError> {
        let fns = socket_fns()?;
        // SAFETY: the host checks the handle; `data` is valid for this call (the host copies it).
        HostError::check(unsafe { (fns.send)(self.raw(), kind, data.as_ptr(), data.len()) })
    }

    pub(crate) fn close(self, code: u16, reason: &[u8]) -> Result<(), HostError> {
        let fns = socket_fns()?;
        // SAFETY: the host checks the handle; `reason` is valid for this call.
        HostError::check(unsafe { (fns.close)(self.raw(), u32::from(code), RgStr::from_bytes(reason)) })
    }

    pub(crate) fn complete(self, status: i32) -> Result<(), HostError> {
        let fns = socket_fns()?;
        // SAFETY: the host checks the handle.
        HostError::check(unsafe { (fns.complete)(self.raw(), status) })
    }

    /// `accept_websocket` on a pending call.
    pub(crate) fn accept(self, subprotocol: &[u8], headers: &[Header<'_>]) -> Result<(), HostError> {
        let fns = socket_fns()?;
        let ptr = headers.as_ptr().cast::<RgHeader>();
        // SAFETY: the host checks the handle; the strings and headers are valid for this call (copied).
        HostError::check(unsafe {
            (fns.accept)(self.raw(), RgStr::from_bytes(subprotocol), ptr, headers.len())
        })
    }

    /// `read_body` on a pending call: the count, 0 at the end.
    pub(crate) fn read_body(self, buf: &mut [u8]) -> Result<usize, HostError> {
        let fns = socket_fns()?;
        // SAFETY: the host checks the handle; `buf` is writable for its length during the call.
        let n = unsafe { (fns.read_body)(self.raw(), buf.as_mut_ptr(), buf.len()) };
        match HostError::from_code(n) {
            Some(e) => Err(e),
            None => Ok(n as usize),
        }
    }

    /// `start_response` on a pending call.
    pub(crate) fn start(self, status: u32, headers: &[Header<'_>]) -> Result<(), HostError> {
        let fns = socket_fns()?;
        let ptr = headers.as_ptr().cast::<RgHeader>();
        // SAFETY: the host checks the handle; the headers are valid for this call (the host copies them).
        HostError::check(unsafe {
            (fns.start_response)(self.raw(), status, RgStr::from_bytes(b""), ptr, headers.len(), 0)
        })
    }

    /// `trailers`: fields for after the last chunk.
    pub(crate) fn trailers(self, fields: &[Header<'_>]) -> Result<(), HostError> {
        let fns = socket_fns()?;
        let ptr = fields.as_ptr().cast::<RgHeader>();
        // SAFETY: the host checks the handle; the fields are valid for this call (the host copies them).
        HostError::check(unsafe { (fns.trailers)(self.raw(), ptr, fields.len()) })
    }

    /// `write` on a pending call.
    pub(crate) fn write(self, data: &[u8]) -> Result<(), HostError> {
        let fns = socket_fns()?;
        // SAFETY: the host checks the handle; `data` is valid for this call (the host copies it).
        HostError::check(unsafe { (fns.write)(self.raw(), data.as_ptr(), data.len()) })
    }
}

/// `post` (ABI 1.3): `f(arg)` runs on the loop thread; from any thread.
///
/// # Safety
/// `f` must be safe to call once with `arg` on another thread than this one, and must not unwind.
pub(crate) unsafe fn post(f: rustgun_abi::RgPostFn, arg: *mut c_void) -> Result<(), HostError> {
    let fns = socket_fns()?;
    // SAFETY: the caller's contract; the host calls `f(arg)` once, or never when it refuses.
    HostError::check(unsafe { (fns.post)(f, arg) })
}

/// Writes a line to the host's error log; `false` when no host is known yet (outside a server).
pub(crate) fn host_log(level: i32, msg: &[u8]) -> bool {
    match HOST_LOG.get() {
        Some(log) => {
            // SAFETY: `log` is the server's function, valid for the life of the process; `msg` is
            // valid for the call and the host copies it.
            unsafe { log(level, RgStr::from_bytes(msg)) };
            true
        }
        None => false,
    }
}

/// The worker's event loop lent to `run` (ABI 1.3): copies of its fields, valid until `run` returns.
#[derive(Clone)]
pub(crate) struct LoopRef {
    fd: i32,
    host: *mut c_void,
    step: unsafe extern "C" fn(*mut c_void) -> i32,
}

impl LoopRef {
    /// # Safety
    /// `raw` must be the `RgLoop` the server passed to `run`; what is made of it is used only until
    /// `run` returns, on its thread (it is not `Send`).
    pub(crate) unsafe fn new(raw: *const rustgun_abi::RgLoop) -> Option<LoopRef> {
        // SAFETY: the caller's contract; null is refused, a short struct too.
        let raw = unsafe { raw.as_ref() }?;
        (raw.size as usize >= size_of::<rustgun_abi::RgLoop>()).then_some(LoopRef {
            fd: raw.fd,
            host: raw.host,
            step: raw.step,
        })
    }

    pub(crate) fn fd(&self) -> i32 {
        self.fd
    }

    /// `step`: milliseconds until the next step is due, or `RG_LOOP_DONE` / `RG_E_STATE` (also once
    /// `run` has returned).
    pub(crate) fn step(&self) -> i32 {
        if !LOOP_LENT.get() {
            return rustgun_abi::RG_E_STATE;
        }
        // SAFETY: `run` has not returned (the flag is set only while it runs, on its thread, and a
        // `LoopRef` never leaves the thread). The host refuses a step from inside `handle` or
        // `on_event` with `RG_E_STATE`.
        unsafe { (self.step)(self.host) }
    }
}

thread_local! {
    /// `run` is running on this thread: its loop may be stepped.
    static LOOP_LENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (the app's `run`) with the loop lent.
pub(crate) fn lending_loop<R>(f: impl FnOnce() -> R) -> R {
    struct Lent;
    impl Drop for Lent {
        fn drop(&mut self) {
            LOOP_LENT.set(false);
        }
    }
    LOOP_LENT.set(true);
    let _lent = Lent;
    f()
}
