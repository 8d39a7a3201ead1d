//! The boundary, inbound half: the `extern "C"` functions the server calls (`init`, `handle`,
//! `shutdown`, and a pull body's `next`/`close`), and the [`export_app!`](crate::export_app) /
//! [`export_handler!`](crate::export_handler) macros that put them in an `RgApp` descriptor.
//!
//! Every entry point runs its body under `catch_unwind`: a panic is logged as `app panicked: <message>`
//! and answered with `RG_E_PANIC`; no unwinding ever crosses into the server.

pub(crate) mod hooks;

use std::any::Any;
use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use rustgun_abi::{
    RG_ABI_MAJOR, RG_E_INVALID, RG_E_PANIC, RG_ERROR, RG_EV_DISCONNECT, RG_EV_READABLE, RG_EV_WRITABLE,
    RG_EV_WS_CLOSE, RG_EV_WS_MESSAGE, RG_EV_WS_OPEN, RG_OK, RG_PENDING, RG_WS_TEXT, RgEvent, RgHost, RgInit,
    RgLoop, RgRequest, RgStr,
};

use crate::app::{App, AppFactory, InitContext};
use crate::error::HostError;
use crate::ffi;
use crate::later::{HostLoop, Later, LaterEvent};
use crate::log::{Level, log};
use crate::response::{BodySource, ResponseWriter};
use crate::websocket::{WebSocket, WsEvent};

/// Runs `f`, turning a panic into a log line and `RG_E_PANIC` (or `on_panic`).
fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            log_panic(&*payload);
            // Dropping a payload can itself panic (a payload whose `Drop` panics); keep that in here too.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            on_panic
        }
    }
}

thread_local! {
    /// Where the last panic on this thread happened, recorded by the hook [`install_panic_hook`] sets.
    static PANIC_LOCATION: Cell<Option<String>> = const { Cell::new(None) };
}

/// Chains a panic hook that remembers the panic's location for the `app panicked` log line. The hook
/// belongs to the app library's own copy of `std`, not the server's. An app that sets its own hook
/// later replaces it; the log line then just lacks the location.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(loc) = info.location() {
                let at = format!("{}:{}:{}", loc.file(), loc.line(), loc.column());
                let _ = PANIC_LOCATION.try_with(|cell| cell.set(Some(at)));
            }
            previous(info);
        }));
    });
}

/// The message of a panic payload (`panic!("…")` makes a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "(a non-string panic payload)"
    }
}

/// Logs `app panicked: <message> (at <file:line:col>)` at error level.
fn log_panic(payload: &(dyn Any + Send)) {
    let msg = panic_message(payload);
    match PANIC_LOCATION.try_with(Cell::take).ok().flatten() {
        Some(at) => log(Level::Error, &format!("app panicked: {msg} (at {at})")),
        None => log(Level::Error, &format!("app panicked: {msg}")),
    }
}

/// Checks the host table's version and size; the error message otherwise.
fn check_host(host: &RgHost) -> Result<(), String> {
    if host.abi_major != RG_ABI_MAJOR {
        return Err(format!(
            "rustgun-sdk: host ABI {}.{} is not major version {RG_ABI_MAJOR}",
            host.abi_major, host.abi_minor
        ));
    }
    if (host.size as usize) < size_of::<RgHost>() {
        return Err(format!(
            "rustgun-sdk: host function table is {} bytes, expected at least {}",
            host.size,
            size_of::<RgHost>()
        ));
    }
    Ok(())
}

/// Copies `msg` into the init struct's error buffer, cut at a char boundary to fit.
fn report_init_error(init: &mut RgInit, msg: &str) {
    let cap = init.error_cap.min(u32::MAX as usize);
    if init.error_buf.is_null() || cap == 0 {
        init.error_len = 0;
        return;
    }
    let mut len = msg.len().min(cap);
    while !msg.is_char_boundary(len) {
        len -= 1;
    }
    // SAFETY: the server lends `error_cap` writable bytes at `error_buf` for the `init` call; `len` is at
    // most that, and `msg` cannot overlap a buffer the server owns.
    unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), init.error_buf, len) };
    init.error_len = len as u32;
}

/// `init` for the app the factory `F` builds.
///
/// # Safety
/// The arguments must be what the server passes to `RgApp::init` (any of them may be null; that is
/// reported, not dereferenced).
#[doc(hidden)]
pub unsafe fn init_with<F: AppFactory<M>, M>(
    factory: &F,
    host: *const RgHost,
    init: *mut RgInit,
    app_state: *mut *mut c_void,
) -> i32 {
    guard(RG_E_PANIC, || {
        // SAFETY: the caller's contract is ours.
        let (init, ctx) = match unsafe { enter("init", host, init) } {
            Ok(entered) => entered,
            Err(code) => return code,
        };
        if app_state.is_null() {
            report_init_error(init, "rustgun-sdk: init called without an app_state pointer");
            return RG_ERROR;
        }
        run_setup(init, "init", || {
            factory.build(&ctx).map(|app| {
                let state = Box::into_raw(Box::new(app)).cast::<c_void>();
                // SAFETY: `app_state` is not null and the server lends it for the call.
                unsafe { *app_state = state };
            })
        })
    })
}

/// `preload` (ABI 1.1): runs `f` once in the master under `--preload`, before any worker is forked.
///
/// # Safety
/// The arguments must be what the server passes to `RgApp::preload` (any of them may be null; that is
/// reported, not dereferenced).
#[doc(hidden)]
pub unsafe fn preload_with<F: Fn(&InitContext) -> Result<(), String>>(
    f: &F,
    host: *const RgHost,
    init: *mut RgInit,
) -> i32 {
    guard(RG_E_PANIC, || {
        // SAFETY: the caller's contract is ours.
        let (init, ctx) = match unsafe { enter("preload", host, init) } {
            Ok(entered) => entered,
            Err(code) => return code,
        };
        run_setup(init, "preload", || f(&ctx))
    })
}

/// The checks `init` and `preload` share: a complete `RgInit`, a usable host table (remembered for
/// logging, with the panic hook installed), and the arguments copied into an [`InitContext`].
///
/// # Safety
/// `host` and `init` are what the server passes to `init` / `preload` (null is reported, not used).
unsafe fn enter<'a>(
    what: &str,
    host: *const RgHost,
    init: *mut RgInit,
) -> Result<(&'a mut RgInit, InitContext), i32> {
    // SAFETY: the server passes a valid, exclusive `RgInit` for the call, or null.
    let Some(init) = (unsafe { init.as_mut() }) else {
        log(Level::Error, &format!("rustgun-sdk: {what} called without an RgInit"));
        return Err(RG_ERROR);
    };
    if (init.size as usize) < size_of::<RgInit>() {
        // Fields past `size` do not exist, the error buffer included.
        log(Level::Error, "rustgun-sdk: RgInit is smaller than ABI 1.0's");
        return Err(RG_ERROR);
    }
    // SAFETY: the server's function table, valid for the process, or null.
    let Some(host) = (unsafe { host.as_ref() }) else {
        report_init_error(init, &format!("rustgun-sdk: {what} called without a host table"));
        return Err(RG_ERROR);
    };
    if let Err(msg) = check_host(host) {
        report_init_error(init, &msg);
        return Err(RG_ERROR);
    }
    ffi::remember_host(host);
    install_panic_hook();
    // SAFETY: the server lends the arguments for the call.
    let ctx = unsafe { init_context(init) };
    Ok((init, ctx))
}

/// Runs the app's constructor or preload hook, turning its error or panic into the boot error line.
fn run_setup(init: &mut RgInit, what: &str, setup: impl FnOnce() -> Result<(), String>) -> i32 {
    // A panic here is caught by `guard` too, but it should reach the boot error line.
    match catch_unwind(AssertUnwindSafe(setup)) {
        Ok(Ok(())) => RG_OK,
        Ok(Err(msg)) => {
            report_init_error(init, &msg);
            RG_ERROR
        }
        Err(payload) => {
            log_panic(&*payload);
            let msg = format!("app panicked in {what}: {}", panic_message(&*payload));
            report_init_error(init, &msg);
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            RG_E_PANIC
        }
    }
}

/// The [`InitContext`] of an `RgInit`, arguments copied out.
///
/// # Safety
/// `init.args` must point at `init.args_len` valid strings (or be null / empty) for the call.
unsafe fn init_context(init: &RgInit) -> InitContext {
    let args = if init.args_len == 0 || init.args.is_null() {
        &[][..]
    } else {
        // SAFETY: the server lends `args_len` strings at `args` for the call.
        unsafe { std::slice::from_raw_parts(init.args, init.args_len) }
    };
    let args = args
        .iter()
        // SAFETY: each argument string is valid for the call; we copy it out at once.
        .map(|s: &RgStr| unsafe { ffi::bytes(*s) }.to_vec())
        .collect();
    InitContext::new(init.worker_id, init.flags, args)
}

/// `handle` for the app the factory `F` builds (the factory is only there to name the app's type).
///
/// # Safety
/// `app_state` must be what `init_with::<F, M>` stored (or null), `request` what the server passes to
/// `RgApp::handle` (or null).
#[doc(hidden)]
pub unsafe fn handle_with<F: AppFactory<M>, M>(
    _factory: &F,
    app_state: *mut c_void,
    request: *const RgRequest,
) -> i32 {
    guard(RG_E_PANIC, || {
        // SAFETY: the server's request, valid until we return, or null.
        let Some(raw) = (unsafe { request.as_ref() }) else {
            log(Level::Error, "rustgun-sdk: handle called without a request");
            return RG_ERROR;
        };
        // SAFETY: the same table as `init`'s, valid for the process, or null.
        let Some(host) = (unsafe { raw.host.as_ref() }) else {
            log(Level::Error, "rustgun-sdk: request without a host table");
            return RG_ERROR;
        };
        ffi::remember_host(host);
        if (raw.size as usize) < size_of::<RgRequest>() {
            log(Level::Error, "rustgun-sdk: RgRequest is smaller than ABI 1.0's");
            return RG_ERROR;
        }
        if app_state.is_null() {
            log(Level::Error, "rustgun-sdk: handle called before a successful init");
            return RG_ERROR;
        }
        // SAFETY: `init_with::<F, M>` stored a `Box<F::App>` here; `handle` only ever borrows it shared
        // (the app is `Sync`), and `shutdown` takes it back only after the last `handle`.
        let app = unsafe { &*app_state.cast::<F::App>() };
        // SAFETY: the request is valid for this call and its size was checked; both borrows end when we
        // return.
        let mut req = unsafe { ffi::request(raw, host) };
        let mut resp = ResponseWriter::new(req.call);
        match app.handle(&mut req, &mut resp) {
            Ok(()) if resp.accepted() => RG_PENDING,
            Ok(()) => RG_OK,
            Err(e) => {
                // A client that went away is routine, not an app failure.
                let level = match e.host_error() {
                    Some(HostError::Closed) => Level::Info,
                    _ => Level::Error,
                };
                log(level, &format!("handler failed: {e}"));
                RG_ERROR
            }
        }
    })
}

/// `on_event` (ABI 1.3) for the app the factory `F` builds: a WebSocket's event, handed to
/// [`App::on_websocket`](crate::App::on_websocket).
///
/// # Safety
/// `app_state` must be what `init_with::<F, M>` stored (or null), `event` what the server passes to
/// `RgApp::on_event` (or null).
#[doc(hidden)]
pub unsafe fn event_with<F: AppFactory<M>, M>(_factory: &F, app_state: *mut c_void, event: *const RgEvent) {
    guard((), || {
        // SAFETY: the server's event, valid until we return, or null.
        let Some(event) = (unsafe { event.as_ref() }) else { return };
        if app_state.is_null() || (event.size as usize) < size_of::<RgEvent>() {
            log(Level::Error, "rustgun-sdk: on_event called without an app or with a short event");
            return;
        }
        // SAFETY: as in `handle_with`: a shared borrow of the app `init_with` stored.
        let app = unsafe { &*app_state.cast::<F::App>() };
        // SAFETY: the event's data is lent for this call.
        let data = unsafe { ffi::bytes(event.data) };
        let call = ffi::SocketCall::new(event.call);
        if Later::is_live(call) {
            let later = Later(call);
            let what = match event.kind {
                RG_EV_READABLE => LaterEvent::Readable,
                RG_EV_WRITABLE => LaterEvent::Writable,
                RG_EV_DISCONNECT => {
                    later.ended();
                    LaterEvent::Disconnected
                }
                _ => return,
            };
            return app.on_later(later, what);
        }
        let ws = WebSocket(call);
        let event = match (event.kind, event.code) {
            (RG_EV_WS_OPEN, _) => WsEvent::Open,
            (RG_EV_WS_MESSAGE, RG_WS_TEXT) => match std::str::from_utf8(data) {
                Ok(text) => WsEvent::Text(text),
                Err(_) => WsEvent::Binary(data),
            },
            (RG_EV_WS_MESSAGE, _) => WsEvent::Binary(data),
            (RG_EV_WRITABLE, _) => WsEvent::Writable,
            (RG_EV_WS_CLOSE, code) => WsEvent::Closed {
                code: u16::try_from(code).unwrap_or(1006),
                reason: std::str::from_utf8(data).unwrap_or(""),
            },
            // An event of a newer minor: not this app's business.
            _ => return,
        };
        app.on_websocket(ws, event);
    })
}

/// `run` (ABI 1.3) for the app the factory `F` builds: [`App::run`](crate::App::run) with the loop.
///
/// # Safety
/// `app_state` must be what `init_with::<F, M>` stored (or null), `host_loop` what the server passes
/// to `RgApp::run` (or null).
#[doc(hidden)]
pub unsafe fn run_with<F: AppFactory<M>, M>(
    _factory: &F,
    app_state: *mut c_void,
    host_loop: *const RgLoop,
) -> i32 {
    guard(RG_E_PANIC, || {
        // SAFETY: the server's loop, valid for this call, or null.
        let Some(host_loop) = (unsafe { ffi::LoopRef::new(host_loop) }) else {
            log(Level::Error, "rustgun-sdk: run called without a complete RgLoop");
            return RG_ERROR;
        };
        if app_state.is_null() {
            return RG_ERROR;
        }
        // SAFETY: as in `handle_with`: a shared borrow of the app `init_with` stored.
        let app = unsafe { &*app_state.cast::<F::App>() };
        match ffi::lending_loop(|| app.run(&HostLoop(host_loop))) {
            Ok(()) => RG_OK,
            Err(e) => {
                log(Level::Error, &format!("the app's event loop failed: {e}"));
                RG_ERROR
            }
        }
    })
}

/// A closure handed to `post`, boxed twice so that a thin pointer crosses.
type PostedFn = Box<dyn FnOnce() + Send>;

/// [`post`](crate::later::post): hands the closure to the host, which runs [`run_posted`] with it.
pub(crate) fn post_boxed(f: PostedFn) -> Result<(), HostError> {
    let arg = Box::into_raw(Box::new(f)).cast::<c_void>();
    // SAFETY: `run_posted` takes back the box made here, once, and catches any panic.
    let posted = unsafe { ffi::post(run_posted, arg) };
    if posted.is_err() {
        // SAFETY: the host refused, so it will never call `run_posted` with `arg`: the box is ours.
        drop(unsafe { Box::from_raw(arg.cast::<PostedFn>()) });
    }
    posted
}

/// The `RgPostFn` behind [`post_boxed`].
unsafe extern "C" fn run_posted(arg: *mut c_void) {
    guard((), || {
        // SAFETY: `arg` is the box `post_boxed` leaked, and the host calls this once with it.
        let f = unsafe { Box::from_raw(arg.cast::<PostedFn>()) };
        f();
    })
}

/// `shutdown` for the app the factory `F` builds.
///
/// # Safety
/// `app_state` must be what `init_with::<F, M>` stored (or null); no `handle` may run during or after it.
#[doc(hidden)]
pub unsafe fn shutdown_with<F: AppFactory<M>, M>(_factory: &F, app_state: *mut c_void) {
    guard((), || {
        if app_state.is_null() {
            return;
        }
        // SAFETY: `init_with` made this pointer with `Box::into_raw`, and the server calls `shutdown` once,
        // after the last `handle`.
        let mut app = unsafe { Box::from_raw(app_state.cast::<F::App>()) };
        app.shutdown();
        drop(app);
    })
}

/// `RgBodySource::next` for a boxed `S`.
///
/// # Safety
/// `state` must be the `Box<S>` that `ffi::Call::set_body` registered, not yet closed; `buf` must be
/// writable for `cap` bytes.
pub(crate) unsafe extern "C" fn body_next<S: BodySource>(
    state: *mut c_void,
    buf: *mut u8,
    cap: usize,
) -> i64 {
    guard(i64::from(RG_E_PANIC), || {
        if state.is_null() {
            return i64::from(RG_ERROR);
        }
        // SAFETY: `state` is our live `Box<S>`; the host calls `next` on one thread at a time.
        let source = unsafe { &mut *state.cast::<S>() };
        if cap == 0 || buf.is_null() {
            // An empty buffer would read as the end of the body to most sources: refuse it instead.
            log(Level::Error, "rustgun-sdk: body source asked for 0 bytes");
            return i64::from(RG_E_INVALID);
        }
        // SAFETY: the host lends `cap` writable bytes at `buf` (not null) for this call.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, cap) };
        match source.next(out) {
            Ok(n) if n <= cap => n as i64,
            Ok(n) => {
                log(
                    Level::Error,
                    &format!("response body source returned {n} bytes for a {cap}-byte buffer"),
                );
                i64::from(RG_ERROR)
            }
            Err(e) => {
                log(Level::Error, &format!("response body failed: {e}"));
                i64::from(RG_ERROR)
            }
        }
    })
}

/// `RgBodySource::close` for a boxed `S`.
///
/// # Safety
/// `state` must be the `Box<S>` that `ffi::Call::set_body` registered; called at most once.
pub(crate) unsafe extern "C" fn body_close<S: BodySource>(state: *mut c_void) {
    guard((), || {
        if !state.is_null() {
            // SAFETY: `state` came from `Box::into_raw` in `set_body`, and the host calls `close` once.
            drop(unsafe { Box::from_raw(state.cast::<S>()) });
        }
    })
}

/// Exports an app under a symbol: `export_app!(SYMBOL, FACTORY)` defines
/// `#[no_mangle] pub static SYMBOL: RgApp`, loaded with `rustgun ./libNAME.so:SYMBOL`.
///
/// `FACTORY` builds the app once per worker (in `init`, after fork). It is a function path or a closure
/// that is either
/// - `Fn() -> A`, e.g. `|| Router::new().route(...)` or `MyApp::default`, or
/// - `Fn(&InitContext) -> Result<A, String>` (worker id, arguments after `--`; an `Err` refuses to
///   boot and its message is the server's boot error),
///
/// where `A: App`. `export_app!(SYMBOL, type T)` is short for `T::default` (`T: App + Default`).
///
/// `export_app!(SYMBOL, FACTORY, preload = PRELOAD)` also exports a `preload` entry (ABI 1.1):
/// `PRELOAD: Fn(&InitContext) -> Result<(), String>` runs once in the master under `--preload`,
/// before any fork (worker id 0), so what it sets up is shared copy-on-write by the workers; an `Err`
/// refuses to boot. `FACTORY` still builds the app in each worker.
///
/// `export_app!(SYMBOL, FACTORY, websockets)` also exports `on_event` (ABI 1.3) and declares
/// `RG_APP_ASYNC`: the app may accept WebSockets and go on with responses after `handle`, and hears
/// their events in [`App::on_websocket`](crate::App::on_websocket) and
/// [`App::on_later`](crate::App::on_later). The `event` and `threads` classes serve it
/// (on an event loop), `sync` refuses it.
/// `export_app!(SYMBOL, FACTORY, owns_loop)` also exports `run`: [`App::run`](crate::App::run) drives
/// the worker's loop from the app's own; `owns_loop, preload = PRELOAD` adds a `preload` entry too.
///
/// The descriptor sets `RG_APP_THREAD_SAFE` (an [`App`](crate::App) is `Send + Sync`).
///
/// ```no_run
/// use rustgun_sdk::{App, Error, InitContext, Request, Response, ResponseWriter};
///
/// struct Greeter {
///     greeting: String,
/// }
///
/// impl Greeter {
///     fn new(ctx: &InitContext) -> Result<Greeter, String> {
///         match ctx.args() {
///             [greeting] => Ok(Greeter { greeting: greeting.clone() }),
///             _ => Err("usage: rustgun ./libgreeter.so:app -- GREETING".to_string()),
///         }
///     }
/// }
///
/// impl App for Greeter {
///     fn handle(&self, _req: &mut Request, resp: &mut ResponseWriter) -> Result<(), Error> {
///         resp.send(&Response::text(self.greeting.clone()))?;
///         Ok(())
///     }
/// }
///
/// rustgun_sdk::export_app!(app, Greeter::new);
/// ```
#[macro_export]
macro_rules! export_app {
    ($symbol:ident, type $app:ty $(,)?) => {
        $crate::export_app!($symbol, <$app as ::core::default::Default>::default);
    };
    ($symbol:ident, $factory:expr, preload = $preload:expr $(,)?) => {
        $crate::export_app!(@descriptor $symbol, $factory, $crate::export_app!(@preload $preload),
            ::core::option::Option::None, ::core::option::Option::None);
    };
    ($symbol:ident, $factory:expr, owns_loop $(,)?) => {
        $crate::export_app!(@events $symbol, $factory, ::core::option::Option::None,
            $crate::export_app!(@run $factory));
    };
    ($symbol:ident, $factory:expr, owns_loop, preload = $preload:expr $(,)?) => {
        $crate::export_app!(@events $symbol, $factory, $crate::export_app!(@preload $preload),
            $crate::export_app!(@run $factory));
    };
    ($symbol:ident, $factory:expr, websockets $(,)?) => {
        $crate::export_app!(@events $symbol, $factory, ::core::option::Option::None,
            ::core::option::Option::None);
    };
    ($symbol:ident, $factory:expr $(,)?) => {
        $crate::export_app!(@descriptor $symbol, $factory, ::core::option::Option::None, ::core::option::Option::None, ::core::option::Option::None);
    };
    (@preload $preload:expr) => {{
        unsafe extern "C" fn __rustgun_preload(
            host: *const $crate::abi::RgHost,
            init: *mut $crate::abi::RgInit,
        ) -> i32 {
            let preload = &$preload;
            // SAFETY: the arguments come unchanged from the server, as `preload_with` requires.
            unsafe { $crate::__private::preload_with(preload, host, init) }
        }
        ::core::option::Option::Some(__rustgun_preload as $crate::abi::RgPreloadFn)
    }};
    (@run $factory:expr) => {{
        unsafe extern "C" fn __rustgun_run(
            app_state: *mut ::core::ffi::c_void,
            host_loop: *const $crate::abi::RgLoop,
        ) -> i32 {
            let factory = &$factory;
            // SAFETY: `app_state` is what `__rustgun_init` stored with the same factory type, and the
            // loop comes unchanged from the server.
            unsafe { $crate::__private::run_with(factory, app_state, host_loop) }
        }
        ::core::option::Option::Some(__rustgun_run as $crate::abi::RgRunFn)
    }};
    (@events $symbol:ident, $factory:expr, $preload:expr, $run:expr) => {
        $crate::export_app!(@descriptor $symbol, $factory, $preload, $run, {
            unsafe extern "C" fn __rustgun_event(
                app_state: *mut ::core::ffi::c_void,
                event: *const $crate::abi::RgEvent,
            ) {
                let factory = &$factory;
                // SAFETY: `app_state` is what `__rustgun_init` stored with the same factory type, and the
                // event comes unchanged from the server.
                unsafe { $crate::__private::event_with(factory, app_state, event) }
            }
            ::core::option::Option::Some(__rustgun_event as $crate::abi::RgEventFn)
        });
    };
    (@descriptor $symbol:ident, $factory:expr, $preload:expr, $run:expr, $events:expr) => {
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static $symbol: $crate::abi::RgApp = {
            unsafe extern "C" fn __rustgun_init(
                host: *const $crate::abi::RgHost,
                init: *mut $crate::abi::RgInit,
                app_state: *mut *mut ::core::ffi::c_void,
            ) -> i32 {
                let factory = &$factory;
                // SAFETY: the arguments come unchanged from the server, as `init_with` requires.
                unsafe { $crate::__private::init_with(factory, host, init, app_state) }
            }
            unsafe extern "C" fn __rustgun_handle(
                app_state: *mut ::core::ffi::c_void,
                request: *const $crate::abi::RgRequest,
            ) -> i32 {
                let factory = &$factory;
                // SAFETY: `app_state` is what `__rustgun_init` stored with the same factory type, and the
                // request comes unchanged from the server.
                unsafe { $crate::__private::handle_with(factory, app_state, request) }
            }
            unsafe extern "C" fn __rustgun_shutdown(app_state: *mut ::core::ffi::c_void) {
                let factory = &$factory;
                // SAFETY: `app_state` is what `__rustgun_init` stored with the same factory type.
                unsafe { $crate::__private::shutdown_with(factory, app_state) }
            }
            let descriptor = $crate::abi::RgApp::new(
                $crate::abi::RG_APP_THREAD_SAFE,
                Some(__rustgun_init),
                __rustgun_handle,
                Some(__rustgun_shutdown),
            )
            .with_preload($preload);
            let events: ::core::option::Option<$crate::abi::RgEventFn> = $events;
            let descriptor = match events {
                ::core::option::Option::Some(on_event) => descriptor.with_events(on_event),
                ::core::option::Option::None => descriptor,
            };
            let run: ::core::option::Option<$crate::abi::RgRunFn> = $run;
            match run {
                ::core::option::Option::Some(run) => descriptor.with_run(run),
                ::core::option::Option::None => descriptor,
            }
        };
    };
}

/// Exports a plain request → response function: `export_handler!(SYMBOL, f)` with
/// `f: Fn(&mut Request) -> R` (`R` a [`Response`](crate::Response) or `Result<Response, E>`).
///
/// ```no_run
/// fn hello(_req: &mut rustgun_sdk::Request) -> rustgun_sdk::Response {
///     rustgun_sdk::Response::text("Hello, World!")
/// }
/// rustgun_sdk::export_handler!(app, hello);
/// ```
#[macro_export]
macro_rules! export_handler {
    ($symbol:ident, $handler:expr $(,)?) => {
        $crate::export_app!($symbol, || $crate::HandlerFn::new($handler));
    };
}
