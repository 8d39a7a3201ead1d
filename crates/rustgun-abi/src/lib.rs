//! The rustgun application ABI, version 1.3: the `#[repr(C)]` types and constants that cross the
//! boundary between the server and an app library. `include/rustgun.h` declares the same thing for C;
//! the test suite compiles that header and checks that every size and offset agrees with this file.
//!
//! What lives here: plain data and function-pointer types, nothing that runs. The safe wrapper for app
//! authors is the `rustgun-sdk` crate; the server's side of the boundary is `rustgun::app`.
//!
//! # The contract in short
//! - The app exports one static [`RgApp`] descriptor under the symbol named on the command line
//!   (`rustgun ./libapp.so:app`). Its frozen head (`magic`, `abi_major`, `abi_minor`, `size`) is checked
//!   before any app code runs: same major, app minor ≤ host minor, `size` at least the 1.0 size.
//! - The server never links the app against its own symbols: it hands the app a table of host functions
//!   ([`RgHost`]) in every request (and at `init`).
//! - Memory is **borrowed for the length of a call** in both directions and never freed on the other side:
//!   the app copies what it wants to keep; the server copies headers and body bytes it is given.
//! - Integers, not Rust enums or `bool`, carry every choice, so an out-of-range value is an error, not UB.
//! - A minor version may append fields at the end of a struct (guarded by its `size`); a major breaks.
//! - No unwinding crosses: every function on either side returns a status code.

#![no_std]

use core::ffi::c_void;

/// `"RGUN"` read as a little-endian `u32`: the first field of every descriptor.
pub const RG_MAGIC: u32 = u32::from_le_bytes(*b"RGUN");
/// Incompatible changes bump the major version: the server refuses an app with another major.
pub const RG_ABI_MAJOR: u16 = 1;
/// Compatible additions bump the minor version: the server refuses an app built for a newer minor.
pub const RG_ABI_MINOR: u16 = 3;

// ---- Status codes returned by host functions and app entry points -----------------------------------

/// Success.
pub const RG_OK: i32 = 0;
/// The app failed (generic). As a `handle` result: a 500 if no response has started, else the
/// connection is aborted.
pub const RG_ERROR: i32 = -1;
/// A Rust panic was caught at the boundary.
pub const RG_E_PANIC: i32 = -2;
/// A call made out of order: a second `start_response` without `RG_RESPONSE_REPLACE`, a replace after
/// the first body byte left, a `write` before `start_response`.
pub const RG_E_STATE: i32 = -3;
/// An invalid argument: a status outside 100..=999, a header name or value with CR, LF or NUL, an
/// invalid header name.
pub const RG_E_INVALID: i32 = -4;
/// The client went away; nothing more can be sent on this connection.
pub const RG_E_CLOSED: i32 = -5;
/// Reading the request body failed: the client timed out, closed early or sent a malformed body.
pub const RG_E_IO: i32 = -6;
/// The connection's output queue is above its high-water mark: nothing was taken. Try again after
/// the `RG_EV_WRITABLE` event (ABI 1.3).
pub const RG_E_AGAIN: i32 = -7;
/// A `handle` result (ABI 1.3, `RG_APP_ASYNC` apps only): the call goes on after `handle` returns.
/// For an accepted WebSocket it ends when the app calls `complete` or when the `RG_EV_WS_CLOSE` event
/// returns; for an HTTP request the app goes on with `start_response`, `write` and `read_body` and
/// ends it with `complete`, or the `RG_EV_DISCONNECT` event ends it. The handle is stale afterwards.
pub const RG_PENDING: i32 = 1;
/// `RgLoop::step`'s result when the worker is done: `run` must return.
pub const RG_LOOP_DONE: i32 = -1;

// ---- Flags ------------------------------------------------------------------------------------------

/// `RgApp::flags`: the app's `handle` may run on several threads at once.
/// Without it, the server refuses to boot the app under a threaded worker class.
pub const RG_APP_THREAD_SAFE: u32 = 1 << 0;
/// `RgApp::flags` (ABI 1.3): the app's calls may outlive `handle` (`RG_PENDING`) and it receives
/// events through `RgApp::on_event`, which must be set. Only the `event` worker class serves such an
/// app; the others refuse to boot it.
pub const RG_APP_ASYNC: u32 = 1 << 1;
/// Every `RgApp::flags` bit this version defines. From ABI 1.2 on, a server refuses to boot an app
/// that sets any other bit, and `start_response` refuses flags outside [`RG_RESPONSE_FLAGS`] with
/// `RG_E_INVALID`: an app can rely on a flag it sets being understood.
pub const RG_APP_FLAGS: u32 = RG_APP_THREAD_SAFE | RG_APP_ASYNC;

/// `RgRequest::flags` and `RgInit::flags`: the same app may be called by several threads at once
/// (WSGI's `wsgi.multithread`).
pub const RG_REQ_MULTITHREAD: u32 = 1 << 0;
/// Several processes serve the same app (`wsgi.multiprocess`).
pub const RG_REQ_MULTIPROCESS: u32 = 1 << 1;
/// The app is called once in this process's life (`wsgi.run_once`).
pub const RG_REQ_RUN_ONCE: u32 = 1 << 2;
/// `RgRequest::flags`: the request has a body (Content-Length > 0 or chunked).
pub const RG_REQ_HAS_BODY: u32 = 1 << 3;
/// `RgRequest::flags`: the body is chunked on the wire; `read_body` returns it decoded.
pub const RG_REQ_CHUNKED: u32 = 1 << 4;
/// `RgRequest::flags` (ABI 1.3): the request is a valid WebSocket opening handshake (RFC 6455 §4.2.1)
/// and the app may `accept_websocket` it. Set for `RG_APP_ASYNC` apps only.
pub const RG_REQ_WEBSOCKET: u32 = 1 << 5;

/// `RgEvent::kind` (ABI 1.3): the WebSocket the app accepted is open (the 101 is on its way); the
/// app may send from now on.
pub const RG_EV_WS_OPEN: u32 = 1;
/// `RgEvent::kind`: a whole message arrived; `code` is `RG_WS_TEXT` (valid UTF-8) or `RG_WS_BINARY`,
/// `data` its bytes.
pub const RG_EV_WS_MESSAGE: u32 = 2;
/// `RgEvent::kind`: the WebSocket is closed; `code` is the peer's close code (1005 when its close
/// frame had none, 1006 when the connection was lost without one, the server's own code when it
/// closed for a protocol error, a timeout or shutdown), `data` the reason. The last event of the call:
/// its handle is stale once the callback returns.
pub const RG_EV_WS_CLOSE: u32 = 3;
/// `RgEvent::kind`: a send refused with `RG_E_AGAIN` may be retried: the output queue drained.
pub const RG_EV_WRITABLE: u32 = 4;
/// `RgEvent::kind`: a pending HTTP call's `read_body` answered `RG_E_AGAIN`; body bytes (or the end of
/// the body) can be read now.
pub const RG_EV_READABLE: u32 = 5;
/// `RgEvent::kind`: the client of a pending HTTP call went away before `complete`. The last event of
/// the call: its handle is stale once the callback returns.
pub const RG_EV_DISCONNECT: u32 = 6;

/// `ws_send` kinds and `RG_EV_WS_MESSAGE` codes (ABI 1.3).
pub const RG_WS_TEXT: u32 = 1;
pub const RG_WS_BINARY: u32 = 2;

/// `start_response` flag: replace a head recorded earlier (PEP 3333's `exc_info`). Allowed once, and
/// only before the first body byte has been sent.
pub const RG_RESPONSE_REPLACE: u32 = 1 << 0;
/// Every `start_response` flag this version defines (ABI 1.2).
pub const RG_RESPONSE_FLAGS: u32 = RG_RESPONSE_REPLACE;

// ---- Log levels for `RgHost::log` -------------------------------------------------------------------

pub const RG_LOG_ERROR: i32 = 1;
pub const RG_LOG_WARN: i32 = 2;
pub const RG_LOG_INFO: i32 = 3;
pub const RG_LOG_DEBUG: i32 = 4;

// ---- Data -------------------------------------------------------------------------------------------

/// A borrowed byte string: `len` bytes at `ptr`, not NUL-terminated, not necessarily UTF-8.
/// `ptr` may be dangling when `len` is 0. Valid only for the call it is passed in.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RgStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl RgStr {
    /// The empty string.
    pub const EMPTY: RgStr = RgStr { ptr: core::ptr::NonNull::<u8>::dangling().as_ptr(), len: 0 };

    /// Borrows a byte slice. The result is valid as long as `bytes` is.
    pub const fn from_bytes(bytes: &[u8]) -> RgStr {
        RgStr { ptr: bytes.as_ptr(), len: bytes.len() }
    }
}

/// A header (or an environ entry): a name and a value, both borrowed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RgHeader {
    pub name: RgStr,
    pub value: RgStr,
}

/// The server's per-request state, opaque to the app. Passed back to every request-scoped host function.
#[repr(C)]
pub struct RgCall {
    _private: [u8; 0],
}

/// The request the server hands to `RgApp::handle`. Every pointer in it is borrowed for that call only.
#[repr(C)]
pub struct RgRequest {
    /// `size_of::<RgRequest>()` as the server built it; fields past it do not exist.
    pub size: u32,
    /// `RG_REQ_*` bits.
    pub flags: u32,
    /// The host functions; the same table as given to `init`.
    pub host: *const RgHost,
    /// This request's handle for the request-scoped host functions.
    pub call: *mut RgCall,
    /// The method, e.g. `GET`.
    pub method: RgStr,
    /// The raw request-target as sent: `/a%20b?x=1`, `http://h/p`, `*`, `host:443`.
    pub target: RgStr,
    /// The path component of the target, raw (still percent-encoded), without scheme and authority.
    pub path_raw: RgStr,
    /// `path_raw` percent-decoded (may contain any byte, including `/` from `%2F`).
    pub path: RgStr,
    /// The query string without the `?`; empty when there is none.
    pub query: RgStr,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: RgStr,
    /// The header fields in arrival order, duplicates kept, raw bytes (values without surrounding
    /// whitespace).
    pub headers: *const RgHeader,
    pub headers_len: usize,
    /// The body length from Content-Length, or -1 when the body is chunked.
    pub content_length: i64,
    /// The client's address as text (`127.0.0.1`, `::1`; empty for a unix-socket peer).
    pub peer_addr: RgStr,
    /// The address of the socket that accepted the connection, as text (or the unix socket's path).
    pub server_addr: RgStr,
    /// The client's port (0 for a unix-socket peer).
    pub peer_port: u16,
    /// The listening port (0 for a unix socket).
    pub server_port: u16,
    /// The worker's id (1-based, stable across respawns of the same slot).
    pub worker_id: u32,
    /// `http` or `https`.
    pub url_scheme: RgStr,
}

/// A pull-mode response body: the server calls `next` whenever the socket can take more, until it
/// returns 0 (end) or a negative status (abort), then calls `close` exactly once however the response
/// ended. Registered with `RgHost::set_body`; the state is owned by the app.
#[repr(C)]
pub struct RgBodySource {
    pub state: *mut c_void,
    /// Fill up to `cap` bytes at `buf`; return the count (> 0), 0 at the end, or `RG_E_*` / `RG_ERROR`.
    pub next: Option<unsafe extern "C" fn(state: *mut c_void, buf: *mut u8, cap: usize) -> i64>,
    /// Release `state`. Called exactly once, on the thread of the last `next`. Optional.
    pub close: Option<unsafe extern "C" fn(state: *mut c_void)>,
}

/// An event of a call that outlived `handle` (ABI 1.3), passed to `RgApp::on_event` on the worker's
/// event-loop thread. Borrowed for the callback, `data` included.
#[repr(C)]
pub struct RgEvent {
    /// `size_of::<RgEvent>()` as the server built it.
    pub size: u32,
    /// `RG_EV_*`.
    pub kind: u32,
    /// The call the event belongs to: the handle `handle` received.
    pub call: *mut RgCall,
    /// `RG_EV_WS_MESSAGE`: `RG_WS_TEXT` or `RG_WS_BINARY`; `RG_EV_WS_CLOSE`: the close code; else 0.
    pub code: u32,
    /// `RG_EV_WS_MESSAGE`: the message; `RG_EV_WS_CLOSE`: the close reason; else empty.
    pub data: RgStr,
}

/// The host functions. Request-scoped ones take the `call` from the request and may only be used
/// during that `handle` call, on its thread — or, for a call that outlived `handle` (`RG_PENDING`),
/// on the event-loop thread until the call ends.
#[repr(C)]
pub struct RgHost {
    /// `size_of::<RgHost>()` as the server built it.
    pub size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    /// Read up to `cap` bytes of the decoded request body. Returns the count (> 0), 0 at the end of the
    /// body, or a negative `RG_E_*`. The first call sends `100 Continue` when the client asked for it.
    /// On a pending call (ABI 1.3), `RG_E_AGAIN` when no decoded bytes are ready: wait for
    /// `RG_EV_READABLE`.
    pub read_body: unsafe extern "C" fn(call: *mut RgCall, buf: *mut u8, cap: usize) -> i64,
    /// Record the response status and headers (WSGI's `start_response`). Nothing is sent until the first
    /// body byte or the end of `handle`. `reason` may be empty (the standard phrase is used). Returns
    /// `RG_OK`, `RG_E_INVALID` (bad status or header bytes) or `RG_E_STATE`.
    pub start_response: unsafe extern "C" fn(
        call: *mut RgCall,
        status: u32,
        reason: RgStr,
        headers: *const RgHeader,
        headers_len: usize,
        flags: u32,
    ) -> i32,
    /// Send body bytes (after `start_response`). Returns `RG_OK`, `RG_E_STATE` or `RG_E_CLOSED`; on a
    /// pending call (ABI 1.3) also `RG_E_AGAIN` while the output queue is above its high-water mark
    /// (nothing was taken: wait for `RG_EV_WRITABLE`).
    pub write: unsafe extern "C" fn(call: *mut RgCall, data: *const u8, len: usize) -> i32,
    /// Register a pull-mode body, read after `handle` returns. The server copies the struct.
    pub set_body: unsafe extern "C" fn(call: *mut RgCall, source: *const RgBodySource) -> i32,
    /// The CGI/WSGI environ of this request, built on first use: `*out` points at `*out_len` entries
    /// valid until `handle` returns.
    pub environ:
        unsafe extern "C" fn(call: *mut RgCall, out: *mut *const RgHeader, out_len: *mut usize) -> i32,
    /// Write a line to the server's error log (WSGI's `wsgi.errors`). Usable from `init` too.
    pub log: unsafe extern "C" fn(level: i32, msg: RgStr),
    // ---- ABI 1.1 ----
    /// Send up to `len` bytes of the open file `fd`, starting at `offset`, as body bytes (after
    /// `start_response`), through the server's file-sending path. The file stays the app's (the server
    /// neither moves its offset nor closes it). Returns the count sent (less than `len` only when the
    /// file ended), or `RG_E_STATE`, `RG_E_INVALID` (`fd` is not readable) or `RG_E_CLOSED`.
    pub send_file: unsafe extern "C" fn(call: *mut RgCall, fd: i32, offset: u64, len: u64) -> i64,
    // ---- ABI 1.3 ----
    /// Accept the WebSocket this request asks for (`RG_REQ_WEBSOCKET`), during `handle` and before any
    /// response: the server answers 101 with `Sec-WebSocket-Accept`, the negotiated compression, the
    /// `subprotocol` when not empty (one the client offered), and `headers`; `handle` then returns
    /// `RG_PENDING`. Also on a pending call (after `handle` returned `RG_PENDING` without accepting),
    /// before any response: the 101 goes out then, and `RG_EV_WS_OPEN` follows. Returns `RG_OK`,
    /// `RG_E_STATE` (not a WebSocket request, not an async app, a response
    /// already recorded) or `RG_E_INVALID` (a subprotocol the client did not offer, bad header bytes).
    pub accept_websocket: unsafe extern "C" fn(
        call: *mut RgCall,
        subprotocol: RgStr,
        headers: *const RgHeader,
        headers_len: usize,
    ) -> i32,
    /// Send one WebSocket message (`RG_WS_TEXT`, which must be valid UTF-8, or `RG_WS_BINARY`) after
    /// `RG_EV_WS_OPEN`. `data` is borrowed for this call (copied, compressed when negotiated). Returns
    /// `RG_OK`, `RG_E_AGAIN` (the queue is above its high-water mark: nothing was taken; wait for
    /// `RG_EV_WRITABLE`), `RG_E_INVALID`, `RG_E_CLOSED` (closing or closed) or `RG_E_STATE`.
    pub ws_send: unsafe extern "C" fn(call: *mut RgCall, kind: u32, data: *const u8, len: usize) -> i32,
    /// Start the closing handshake with `code` (1000, 1001, 1003, 1007–1011 or 3000–4999) and a UTF-8
    /// `reason` of at most 123 bytes. `RG_EV_WS_CLOSE` follows when the peer answers (or the wait
    /// for it ends). Returns `RG_OK`, `RG_E_INVALID`, `RG_E_CLOSED` or `RG_E_STATE`.
    pub ws_close: unsafe extern "C" fn(call: *mut RgCall, code: u32, reason: RgStr) -> i32,
    /// End a call that outlived `handle`. A pending HTTP response ends (`RG_OK`; any other status is
    /// the app failing: a 500 when nothing was sent, else the connection is cut); a WebSocket closes
    /// with 1000 for `RG_OK`, else 1011. No event follows, and the handle is stale on return. Returns
    /// `RG_OK` or `RG_E_STATE`.
    pub complete: unsafe extern "C" fn(call: *mut RgCall, status: i32) -> i32,
    /// Run `f(arg)` on the worker's event-loop thread soon (at its next wake-up, which this causes).
    /// The one host function safe from any thread: a thread of the app's hands its results to the loop
    /// this way, and makes its host calls from `f`. Returns `RG_OK`, or `RG_E_STATE` when the worker is
    /// not an event-loop worker or has stopped (`f` is then never called).
    pub post: unsafe extern "C" fn(f: RgPostFn, arg: *mut c_void) -> i32,
    /// Add trailer fields to the response: they follow the last chunk of a chunked body when the
    /// request said `TE: trailers`, and are dropped otherwise (a body framed by Content-Length,
    /// HTTP/1.0, a client that did not ask). Call after `start_response`, before the response ends;
    /// each call adds to those before. Returns `RG_OK`, `RG_E_INVALID` (bad bytes, or a field a
    /// trailer may not carry: framing, routing, authentication, content metadata) or `RG_E_STATE`.
    pub trailers:
        unsafe extern "C" fn(call: *mut RgCall, headers: *const RgHeader, headers_len: usize) -> i32,
}

/// A function `post` runs on the event-loop thread.
pub type RgPostFn = unsafe extern "C" fn(arg: *mut c_void);

/// The worker's event loop as an app that owns the thread sees it (`RgApp::run`, ABI 1.3).
#[repr(C)]
pub struct RgLoop {
    /// `size_of::<RgLoop>()` as the server built it.
    pub size: u32,
    /// Readable whenever the loop has work (a connection, a signal, a `post`, host calls made outside
    /// `step`): watch it with epoll, poll or select, and call `step` when it is.
    pub fd: i32,
    /// The server's; passed back to `step`.
    pub host: *mut c_void,
    /// Does what is ready without waiting — accepts, reads, calls `handle` and `on_event`, writes —
    /// and returns the milliseconds within which it wants to be called again even if `fd` stays quiet
    /// (timeouts, pings), or `RG_LOOP_DONE` once the worker has stopped. Loop thread only; not from
    /// inside `handle` or `on_event` (`RG_E_STATE`).
    pub step: unsafe extern "C" fn(host: *mut c_void) -> i32,
}

/// What `init` receives, once per worker after fork.
#[repr(C)]
pub struct RgInit {
    /// `size_of::<RgInit>()` as the server built it.
    pub size: u32,
    /// The worker's id (1-based).
    pub worker_id: u32,
    /// The arguments given after `--` on the command line.
    pub args: *const RgStr,
    pub args_len: usize,
    /// `RG_REQ_MULTITHREAD` / `RG_REQ_MULTIPROCESS` as the worker class will set them on requests.
    pub flags: u32,
    /// On failure the app may write a UTF-8 message into `error_buf` (at most `error_cap` bytes) and set
    /// `error_len`; the server prints it in its one-line boot error.
    pub error_len: u32,
    pub error_buf: *mut u8,
    pub error_cap: usize,
}

/// `init`: returns `RG_OK`, or anything else to refuse to boot (the worker exits, the server halts).
pub type RgInitFn =
    unsafe extern "C" fn(host: *const RgHost, init: *mut RgInit, app_state: *mut *mut c_void) -> i32;
/// `handle`: serve one request. Returns `RG_OK` or an error status.
pub type RgHandleFn = unsafe extern "C" fn(app_state: *mut c_void, request: *const RgRequest) -> i32;
/// `shutdown`: called once before the worker exits gracefully.
pub type RgShutdownFn = unsafe extern "C" fn(app_state: *mut c_void);
/// `preload` (ABI 1.1): called once in the master under `--preload`, before any worker is forked, with
/// `worker_id` 0. What it sets up is shared copy-on-write by every worker; `init` still runs in each.
/// Returns `RG_OK`, or anything else to refuse to boot (the message goes in `init.error_buf`).
pub type RgPreloadFn = unsafe extern "C" fn(host: *const RgHost, init: *mut RgInit) -> i32;
/// `on_event` (ABI 1.3): an event of a call that outlived `handle`, on the event-loop thread. The app
/// may call host functions for this and any other live call from it.
pub type RgEventFn = unsafe extern "C" fn(app_state: *mut c_void, event: *const RgEvent);
/// `run` (ABI 1.3, `RG_APP_ASYNC` apps): the app's own event loop takes the worker's thread (asyncio,
/// libuv). Called once, after `init`, instead of the server's loop: the app watches `host_loop.fd`,
/// calls `host_loop.step` when it is readable and when the time `step` returned has passed, and
/// returns once `step` returned `RG_LOOP_DONE` (`RG_OK`, or an error status, which is logged).
pub type RgRunFn = unsafe extern "C" fn(app_state: *mut c_void, host_loop: *const RgLoop) -> i32;

/// The descriptor an app exports. The first four fields are frozen for every major version.
#[repr(C)]
pub struct RgApp {
    /// [`RG_MAGIC`].
    pub magic: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    /// `size_of::<RgApp>()` as the app was built.
    pub size: u32,
    /// `RG_APP_*` bits.
    pub flags: u32,
    /// Optional per-worker setup; its `app_state` result is passed to `handle` and `shutdown`.
    pub init: Option<RgInitFn>,
    /// Required.
    pub handle: Option<RgHandleFn>,
    /// Optional per-worker teardown.
    pub shutdown: Option<RgShutdownFn>,
    // ---- ABI 1.1 ----
    /// Optional set-up in the master before fork (`--preload`).
    pub preload: Option<RgPreloadFn>,
    // ---- ABI 1.3 ----
    /// Events of calls that outlived `handle`; required with `RG_APP_ASYNC`.
    pub on_event: Option<RgEventFn>,
    /// Optional with `RG_APP_ASYNC`: the app's loop drives the worker's ([`RgRunFn`]).
    pub run: Option<RgRunFn>,
}

impl RgApp {
    /// A descriptor with the given flags and entry points (and no `preload`).
    pub const fn new(
        flags: u32,
        init: Option<RgInitFn>,
        handle: RgHandleFn,
        shutdown: Option<RgShutdownFn>,
    ) -> RgApp {
        RgApp {
            magic: RG_MAGIC,
            abi_major: RG_ABI_MAJOR,
            abi_minor: RG_ABI_MINOR,
            size: core::mem::size_of::<RgApp>() as u32,
            flags,
            init,
            handle: Some(handle),
            shutdown,
            preload: None,
            on_event: None,
            run: None,
        }
    }

    /// The same descriptor with a `preload` entry (ABI 1.1).
    pub const fn with_preload(self, preload: Option<RgPreloadFn>) -> RgApp {
        RgApp { preload, ..self }
    }

    /// The same descriptor with an `on_event` entry and `RG_APP_ASYNC` set (ABI 1.3).
    pub const fn with_events(self, on_event: RgEventFn) -> RgApp {
        RgApp { on_event: Some(on_event), flags: self.flags | RG_APP_ASYNC, ..self }
    }

    /// The same descriptor with a `run` entry (ABI 1.3): the app's event loop owns the worker thread.
    pub const fn with_run(self, run: RgRunFn) -> RgApp {
        RgApp { run: Some(run), ..self }
    }
}

/// The version of [`RgHooks`] this crate describes.
pub const RG_HOOKS_VERSION: u32 = 1;

/// The server hooks of gunicorn's configuration file, each a moment of a server's life (the
/// `RG_HOOK_*` ids, `RgHookCtx::hook`). Master hooks run in the master, worker hooks in the worker.
/// `on_starting(server)`: the master, before it binds.
pub const RG_HOOK_ON_STARTING: u32 = 0;
/// `on_reload(server)`: the master, on HUP, before the new workers.
pub const RG_HOOK_ON_RELOAD: u32 = 1;
/// `when_ready(server)`: the master, once it listens, before the first worker.
pub const RG_HOOK_WHEN_READY: u32 = 2;
/// `pre_fork(server, worker)`: the master, before it forks a worker (no worker pid yet).
pub const RG_HOOK_PRE_FORK: u32 = 3;
/// `post_fork(server, worker)`: the worker, first thing after the fork.
pub const RG_HOOK_POST_FORK: u32 = 4;
/// `post_worker_init(worker)`: the worker, once the app is loaded.
pub const RG_HOOK_POST_WORKER_INIT: u32 = 5;
/// `worker_int(worker)`: the worker, on INT or QUIT, before it exits.
pub const RG_HOOK_WORKER_INT: u32 = 6;
/// `worker_abort(worker)`: the worker, on ABRT (the master's `--timeout`), before it exits.
pub const RG_HOOK_WORKER_ABORT: u32 = 7;
/// `pre_exec(server)`: the child of USR2, before it executes the new binary.
pub const RG_HOOK_PRE_EXEC: u32 = 8;
/// `pre_request(worker, req)`: the worker, before the app is called (run by a bridge).
pub const RG_HOOK_PRE_REQUEST: u32 = 9;
/// `post_request(worker, req, environ, resp)`: the worker, after the response (run by a bridge).
pub const RG_HOOK_POST_REQUEST: u32 = 10;
/// `child_exit(server, worker)`: the master, once it reaped a worker.
pub const RG_HOOK_CHILD_EXIT: u32 = 11;
/// `worker_exit(server, worker)`: the worker, as it exits.
pub const RG_HOOK_WORKER_EXIT: u32 = 12;
/// `nworkers_changed(server, new_value, old_value)`: the master, when the worker count changes.
pub const RG_HOOK_NWORKERS_CHANGED: u32 = 13;
/// `on_exit(server)`: the master, just before it exits.
pub const RG_HOOK_ON_EXIT: u32 = 14;

/// One moment for [`RgHooks::call`]: which hook, and the server and worker it is about.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RgHookCtx {
    /// `size_of::<RgHookCtx>()` as the server built it.
    pub size: u32,
    /// `RG_HOOK_*`.
    pub hook: u32,
    /// The master's pid.
    pub master_pid: i32,
    /// The worker's pid, 0 when there is none yet (`pre_fork`) or no worker is concerned.
    pub worker_pid: i32,
    /// The worker's id (1-based, the slot it fills), 0 when no worker is concerned.
    pub worker_id: u32,
    /// The worker's age: how many workers the master had forked before it (gunicorn's `worker.age`).
    pub worker_age: u32,
    /// The worker count the master keeps (`nworkers_changed`'s new value).
    pub workers: u32,
    /// `nworkers_changed`'s old value; else equal to `workers`.
    pub old_workers: u32,
}

/// What a bridge that can run a configuration file's server hooks exports under the symbol
/// `rustgun_hooks` (a Python bridge runs gunicorn.conf.py's). The server looks for it only when the
/// configuration defines hooks, and calls nothing of it otherwise.
#[repr(C)]
pub struct RgHooks {
    /// [`RG_MAGIC`].
    pub magic: u32,
    /// [`RG_HOOKS_VERSION`].
    pub version: u32,
    /// `size_of::<RgHooks>()` as the bridge was built.
    pub size: u32,
    /// Runs the configuration file in the master: `init.args[0]` names it (a path, or
    /// `python:module`), the rest are the bridge's arguments (`--pythonpath`, `--venv`). Called again
    /// on each reload, replacing the hooks. `RG_OK`, or a refusal with its message in `init.error_buf`.
    pub load: RgPreloadFn,
    /// Which hooks the loaded file defines: bit `1 << RG_HOOK_*` each.
    pub defined: unsafe extern "C" fn() -> u64,
    /// Runs one hook. `RG_OK`, or `RG_ERROR` when it raised (the bridge logged it with its traceback).
    pub call: unsafe extern "C" fn(ctx: *const RgHookCtx) -> i32,
}

#[cfg(test)]
mod tests {
    //! A layout snapshot for 64-bit targets: changing a struct without bumping the version fails here.
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn layout_snapshot_abi_1_3() {
        assert_eq!(size_of::<RgStr>(), 16);
        assert_eq!(size_of::<RgHeader>(), 32);
        // 1.3 appended `on_event` and `run` to the 48-byte 1.1 descriptor and five functions to the
        // table.
        assert_eq!(size_of::<RgApp>(), 64);
        assert_eq!(offset_of!(RgApp, on_event), 48);
        assert_eq!(offset_of!(RgApp, run), 56);
        assert_eq!(size_of::<RgLoop>(), 24);
        assert_eq!(offset_of!(RgLoop, step), 16);
        assert_eq!(size_of::<RgEvent>(), 40);
        assert_eq!(offset_of!(RgEvent, data), 24);
        assert_eq!(offset_of!(RgApp, handle), 24);
        // 1.1 appended `preload` to the 40-byte 1.0 descriptor and `send_file` to the 56-byte table.
        assert_eq!(offset_of!(RgApp, preload), 40);
        assert_eq!(size_of::<RgHost>(), 112);
        assert_eq!(offset_of!(RgHost, post), 96);
        assert_eq!(offset_of!(RgHost, trailers), 104);
        assert_eq!(offset_of!(RgHost, accept_websocket), 64);
        assert_eq!(offset_of!(RgHost, complete), 88);
        assert_eq!(offset_of!(RgHost, log), 48);
        assert_eq!(offset_of!(RgHost, send_file), 56);
        assert_eq!(size_of::<RgInit>(), 48);
        assert_eq!(offset_of!(RgInit, error_cap), 40);
        assert_eq!(size_of::<RgBodySource>(), 24);
        assert_eq!(size_of::<RgRequest>(), 200);
        assert_eq!(offset_of!(RgRequest, content_length), 136);
        assert_eq!(offset_of!(RgRequest, peer_port), 176);
        assert_eq!(offset_of!(RgRequest, url_scheme), 184);
        assert_eq!(size_of::<RgHookCtx>(), 32);
        assert_eq!(size_of::<RgHooks>(), 40);
        assert_eq!(offset_of!(RgHooks, call), 32);
    }

    #[test]
    fn magic_spells_rgun() {
        assert_eq!(&RG_MAGIC.to_le_bytes(), b"RGUN");
    }
}
