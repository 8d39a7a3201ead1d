//! The host function table ([`HOST`]) the app calls back into, the [`Exchange`] trait each worker
//! class implements to answer those calls for one request, and the [`Socket`] trait of a call that
//! outlived `handle` (an accepted WebSocket, driven by the event loop).
//!
//! Every entry point here converts raw pointers into slices, forwards to the exchange or socket behind
//! the `call` handle, catches any panic so that none unwinds into the app's frames, and turns the
//! answer into the ABI's status ([`HostError::code`]): the only place a `HostError` becomes one.

use super::HostError;
use super::calls::{self, Target};
use rustgun_abi::{
    RG_ABI_MAJOR, RG_ABI_MINOR, RG_E_INVALID, RG_LOG_DEBUG, RG_LOG_ERROR, RG_LOG_INFO, RG_LOG_WARN, RG_OK,
    RG_RESPONSE_FLAGS, RG_RESPONSE_REPLACE, RgBodySource, RgCall, RgHeader, RgHost, RgStr,
};
use std::os::fd::BorrowedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a kind of call cannot do (a WebSocket's `read_body`, a pending call's `environ`).
const NOT_THIS_CALL: HostError = HostError::State("this kind of call cannot do that");

/// One request's server side, as the app sees it through the host functions. What a kind of call
/// cannot do is refused as out of order (`HostError::State`, the defaults).
pub trait Exchange {
    /// Reads decoded body bytes: `Ok(0)` at the end of the body.
    fn read_body(&mut self, _buf: &mut [u8]) -> Result<usize, HostError> {
        Err(NOT_THIS_CALL)
    }
    /// Records the response head; `replace` is PEP 3333's exc_info.
    fn start_response(
        &mut self,
        _status: u32,
        _reason: &[u8],
        _headers: &[RgHeader],
        _replace: bool,
    ) -> Result<(), HostError> {
        Err(NOT_THIS_CALL)
    }
    /// Sends body bytes.
    fn write(&mut self, _data: &[u8]) -> Result<(), HostError> {
        Err(NOT_THIS_CALL)
    }
    /// Registers a pull-mode body to be read after `handle` returns.
    fn set_body(&mut self, _source: RgBodySource) -> Result<(), HostError> {
        Err(NOT_THIS_CALL)
    }
    /// The environ entries, built on first use (during `handle` only).
    fn environ(&mut self) -> Result<&[RgHeader], HostError> {
        Err(NOT_THIS_CALL)
    }
    /// Sends up to `len` bytes of `file` from `offset` as body bytes, never moving the file's own
    /// offset: the count the framing accepted, less than `len` when the file ended first or the
    /// response takes no more (HEAD, 304, a Content-Length already met), in which case the file is
    /// not read beyond what was sent.
    fn send_file(&mut self, _file: BorrowedFd<'_>, _offset: u64, _len: u64) -> Result<u64, HostError> {
        Err(NOT_THIS_CALL)
    }
    /// Accepts the WebSocket the request asks for (ABI 1.3): the 101 is sent once `handle` returns
    /// `RG_PENDING`.
    fn accept_websocket(&mut self, _subprotocol: &[u8], _headers: &[RgHeader]) -> Result<(), HostError> {
        Err(NOT_THIS_CALL)
    }
    /// Adds trailer fields to the response (after `start_response`, before it ends).
    fn trailers(&mut self, _headers: &[RgHeader]) -> Result<(), HostError> {
        Err(NOT_THIS_CALL)
    }
    /// Ends the call with `status` (ABI 1.3): from `handle`, the status it returns stands for this
    /// one once it returns `RG_PENDING`.
    fn complete(&mut self, _status: i32) -> Result<(), HostError> {
        Err(NOT_THIS_CALL)
    }
}

/// A call that outlived `handle` (ABI 1.3): an accepted WebSocket, or an HTTP exchange whose response
/// goes on (its [`Exchange`] side), as its host functions see it.
pub trait Socket: Exchange {
    /// Sends one message (`RG_WS_TEXT` or `RG_WS_BINARY`).
    fn ws_send(&mut self, _kind: u32, _data: &[u8]) -> Result<(), HostError> {
        Err(NOT_THIS_CALL)
    }
    /// Starts the closing handshake.
    fn ws_close(&mut self, _code: u16, _reason: &[u8]) -> Result<(), HostError> {
        Err(NOT_THIS_CALL)
    }
    /// The app ended the call with `status`: finish the response or close the socket (1000 for
    /// `RG_OK`, else 1011), and deliver no more events.
    fn end(&mut self, status: i32);
}

/// A pull-mode body the app registered with `set_body`: the server pulls it with [`BodySource::next`]
/// (on one thread at a time, possibly after `handle` returned and on another thread than `handle`'s),
/// and dropping it calls the app's `close` exactly once, however the response ended (finished, failed,
/// the client gone, the worker unwinding).
pub struct BodySource(RgBodySource);

// SAFETY: the ABI lets `next` and `close` run on any one thread at a time (docs/abi.md), and the server
// holds the source in one place only: moving it to another thread is allowed, sharing it is not.
unsafe impl Send for BodySource {}

impl BodySource {
    /// Takes the app's source; `None` when it has no `next`.
    pub fn new(source: RgBodySource) -> Option<BodySource> {
        source.next.map(|_| BodySource(source))
    }

    /// Asks for the next bytes into `buf` (never empty): the count (≥ 1), 0 at the end, or the app's
    /// negative status. A count larger than `buf` is reported as `RG_E_INVALID`.
    pub fn next(&mut self, buf: &mut [u8]) -> i64 {
        let Some(next) = self.0.next else { return 0 };
        // SAFETY: the app registered `next` and `state` for this response and has not been told to
        // close them; `buf` is writable for its length during the call.
        let n = unsafe { next(self.0.state, buf.as_mut_ptr(), buf.len()) };
        if n > buf.len() as i64 { i64::from(RG_E_INVALID) } else { n }
    }
}

impl Drop for BodySource {
    fn drop(&mut self) {
        if let Some(close) = self.0.close {
            // SAFETY: called once, after the last `next`, as the ABI promises; `state` is the app's.
            unsafe { close(self.0.state) };
        }
    }
}

/// What a call handle names: the exchange serving the request ([`super::calls`]).
pub type CallSlot<'a> = &'a mut dyn Exchange;

/// The table handed to every app.
pub static HOST: RgHost = RgHost {
    size: std::mem::size_of::<RgHost>() as u32,
    abi_major: RG_ABI_MAJOR,
    abi_minor: RG_ABI_MINOR,
    read_body: host_read_body,
    start_response: host_start_response,
    write: host_write,
    set_body: host_set_body,
    environ: host_environ,
    log: host_log,
    send_file: host_send_file,
    accept_websocket: host_accept_websocket,
    ws_send: host_ws_send,
    ws_close: host_ws_close,
    complete: host_complete,
    post: host_post,
    trailers: host_trailers,
};

/// Borrows an app's header array: `None` for a null pointer with a length (the call is refused).
///
/// # Safety
/// `ptr` must point at `len` valid headers that outlive `'a` (the app's promise for the call).
unsafe fn header_array<'a>(ptr: *const RgHeader, len: usize) -> Option<&'a [RgHeader]> {
    match (ptr.is_null(), len) {
        (_, 0) => Some(&[]),
        (true, _) => None,
        // SAFETY: the caller's promise.
        (false, _) => Some(unsafe { std::slice::from_raw_parts(ptr, len) }),
    }
}

/// The name and value bytes of header fields an app lent for one host call: the `&[RgHeader]` an
/// [`Exchange`] method receives is only ever built by a host function from its arguments, and lives
/// no longer than that call.
pub(crate) fn lent_pairs(headers: &[RgHeader]) -> impl Iterator<Item = (&[u8], &[u8])> {
    // SAFETY: the app lends these fields and their strings for the call (above).
    headers.iter().map(|h| unsafe { (bytes(h.name), bytes(h.value)) })
}

/// Borrows the bytes of an `RgStr`. A null pointer is accepted when the length is 0.
///
/// # Safety
/// `s.ptr` must point at `s.len` readable bytes that outlive `'a` (the app's promise for the call).
pub unsafe fn bytes<'a>(s: RgStr) -> &'a [u8] {
    if s.len == 0 || s.ptr.is_null() {
        &[]
    } else {
        // SAFETY: non-null and, by the caller's contract, `len` readable bytes.
        unsafe { std::slice::from_raw_parts(s.ptr, s.len) }
    }
}

/// Runs `f` on the exchange behind `call` — the one serving `handle`, or a call that outlived it:
/// out of order when `call` names no call in progress on this thread (stale, from another thread,
/// made up) or the call is busy (a host call from inside one on it), `Panic` for a panic (a server
/// bug).
fn with_exchange<T>(
    call: *mut RgCall,
    f: impl FnOnce(&mut dyn Exchange) -> Result<T, HostError>,
) -> Result<T, HostError> {
    match calls::lookup(call) {
        Some(Target::Exchange(slot)) => {
            // SAFETY: a live registration holds the exchange's only borrow until it is dropped, and it
            // is reached from its own thread only (the slab is per thread); host calls do not nest.
            let slot = unsafe { &mut *slot };
            guarded(|| f(&mut **slot))
        }
        Some(Target::Socket(socket)) => {
            let Ok(mut socket) = socket.try_borrow_mut() else { return Err(BUSY) };
            guarded(|| f(&mut *socket))
        }
        None => Err(NO_CALL),
    }
}

/// Runs `f` on the socket behind `call` (a call that outlived `handle`): out of order as for
/// [`with_exchange`], and also while the socket is busy (a host call from inside one on it).
fn with_socket(call: *mut RgCall, f: impl FnOnce(&mut dyn Socket) -> Result<(), HostError>) -> i32 {
    let Some(Target::Socket(socket)) = calls::lookup(call) else { return NO_CALL.code() };
    let Ok(mut socket) = socket.try_borrow_mut() else { return BUSY.code() };
    status(guarded(|| f(&mut *socket)))
}

/// A handle that names no call in progress on this thread.
const NO_CALL: HostError = HostError::State("no call in progress by that handle");
/// A host call made from inside another one on the same call.
const BUSY: HostError = HostError::State("the call is busy");

fn guarded<T>(f: impl FnOnce() -> Result<T, HostError>) -> Result<T, HostError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("panic in a host function; the request is failed");
        Err(HostError::Panic)
    })
}

/// A host function's status: `RG_OK`, or the error's.
fn status(result: Result<(), HostError>) -> i32 {
    result.map_or_else(|e| e.code(), |()| RG_OK)
}

/// A host function's count (at most `i64::MAX`), or the error's status.
fn count(result: Result<u64, HostError>) -> i64 {
    result.map_or_else(|e| i64::from(e.code()), |n| n.min(i64::MAX as u64) as i64)
}

unsafe extern "C" fn host_read_body(call: *mut RgCall, buf: *mut u8, cap: usize) -> i64 {
    if buf.is_null() && cap > 0 {
        return count(Err(HostError::Invalid));
    }
    // SAFETY: `call` is the handle the server put in the request the app is serving.
    let read = unsafe {
        with_exchange(call, |ex| {
            let buf: &mut [u8] = if cap == 0 {
                &mut []
            } else {
                // SAFETY: the app lends `cap` writable bytes at `buf` for this call.
                std::slice::from_raw_parts_mut(buf, cap)
            };
            ex.read_body(buf).map(|n| n as u64)
        })
    };
    count(read)
}

unsafe extern "C" fn host_start_response(
    call: *mut RgCall,
    status_code: u32,
    reason: RgStr,
    headers: *const RgHeader,
    headers_len: usize,
    flags: u32,
) -> i32 {
    // Flags this server does not know are refused (ABI 1.2), so an app can tell what it may use.
    if flags & !RG_RESPONSE_FLAGS != 0 {
        return HostError::Invalid.code();
    }
    // SAFETY: `call` is the server's handle; `reason` and `headers` are lent for this call.
    unsafe {
        let Some(headers) = header_array(headers, headers_len) else { return HostError::Invalid.code() };
        status(with_exchange(call, |ex| {
            let replace = flags & RG_RESPONSE_REPLACE != 0;
            ex.start_response(status_code, bytes(reason), headers, replace)
        }))
    }
}

unsafe extern "C" fn host_write(call: *mut RgCall, data: *const u8, len: usize) -> i32 {
    // SAFETY: `call` is the server's handle; `data` is lent for this call.
    status(unsafe { with_exchange(call, |ex| ex.write(bytes(RgStr { ptr: data, len }))) })
}

unsafe extern "C" fn host_set_body(call: *mut RgCall, source: *const RgBodySource) -> i32 {
    if source.is_null() {
        return HostError::Invalid.code();
    }
    // SAFETY: `call` is the server's handle; the struct at `source` is copied before returning.
    let source = unsafe { std::ptr::read(source) };
    status(with_exchange(call, |ex| ex.set_body(source)))
}

unsafe extern "C" fn host_environ(call: *mut RgCall, out: *mut *const RgHeader, out_len: *mut usize) -> i32 {
    if out.is_null() || out_len.is_null() {
        return HostError::Invalid.code();
    }
    // SAFETY: `call` is the server's handle; `out` and `out_len` are writable out-pointers. The
    // entries stay valid until `handle` returns (the exchange owns them).
    status(unsafe {
        with_exchange(call, |ex| {
            let entries = ex.environ()?;
            *out = entries.as_ptr();
            *out_len = entries.len();
            Ok(())
        })
    })
}

unsafe extern "C" fn host_send_file(call: *mut RgCall, fd: i32, offset: u64, len: u64) -> i64 {
    if fd < 0 {
        return count(Err(HostError::Invalid));
    }
    // SAFETY: `call` is the server's handle; `fd` is the app's open file, lent for this call and only
    // read (never closed) through the borrow.
    let file = unsafe { BorrowedFd::borrow_raw(fd) };
    count(with_exchange(call, |ex| ex.send_file(file, offset, len)))
}

unsafe extern "C" fn host_accept_websocket(
    call: *mut RgCall,
    subprotocol: RgStr,
    headers: *const RgHeader,
    headers_len: usize,
) -> i32 {
    // SAFETY: `call` is the server's handle; `subprotocol` and `headers` are lent for this call.
    unsafe {
        let Some(headers) = header_array(headers, headers_len) else { return HostError::Invalid.code() };
        status(with_exchange(call, |ex| ex.accept_websocket(bytes(subprotocol), headers)))
    }
}

unsafe extern "C" fn host_trailers(call: *mut RgCall, headers: *const RgHeader, headers_len: usize) -> i32 {
    // SAFETY: `call` is the server's handle; `headers` are lent for this call.
    unsafe {
        let Some(headers) = header_array(headers, headers_len) else { return HostError::Invalid.code() };
        status(with_exchange(call, |ex| ex.trailers(headers)))
    }
}

unsafe extern "C" fn host_ws_send(call: *mut RgCall, kind: u32, data: *const u8, len: usize) -> i32 {
    if data.is_null() && len > 0 {
        return HostError::Invalid.code();
    }
    // SAFETY: `data` is lent for this call.
    let data = unsafe { bytes(RgStr { ptr: data, len }) };
    with_socket(call, |socket| socket.ws_send(kind, data))
}

unsafe extern "C" fn host_ws_close(call: *mut RgCall, code: u32, reason: RgStr) -> i32 {
    let Ok(code) = u16::try_from(code) else { return HostError::Invalid.code() };
    // SAFETY: `reason` is lent for this call.
    let reason = unsafe { bytes(reason) };
    with_socket(call, |socket| socket.ws_close(code, reason))
}

unsafe extern "C" fn host_complete(call: *mut RgCall, status_code: i32) -> i32 {
    let code = match calls::lookup(call) {
        Some(Target::Exchange(_)) => status(with_exchange(call, |ex| ex.complete(status_code))),
        _ => with_socket(call, |socket| {
            socket.end(status_code);
            Ok(())
        }),
    };
    if code == RG_OK {
        calls::end(call);
    }
    code
}

unsafe extern "C" fn host_post(f: rustgun_abi::RgPostFn, arg: *mut std::ffi::c_void) -> i32 {
    status(guarded(|| super::wake::post(f, arg)))
}

unsafe extern "C" fn host_log(level: i32, msg: RgStr) {
    // SAFETY: `msg` is lent for this call.
    let text = unsafe { bytes(msg) };
    let _ = catch_unwind(|| {
        let text = String::from_utf8_lossy(text);
        let text = text.trim_end();
        match level {
            RG_LOG_ERROR => tracing::error!(target: "app", "{text}"),
            RG_LOG_WARN => tracing::warn!(target: "app", "{text}"),
            RG_LOG_INFO => tracing::info!(target: "app", "{text}"),
            RG_LOG_DEBUG => tracing::debug!(target: "app", "{text}"),
            _ => tracing::info!(target: "app", "{text}"),
        }
    });
}
