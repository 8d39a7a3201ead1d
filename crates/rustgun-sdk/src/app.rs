//! The [`App`] trait an exported app implements, the [`InitContext`] it is built with, the
//! [`AppFactory`] forms `export_app!` accepts, and [`HandlerFn`], which turns a plain
//! request → response function into an app.

use std::marker::PhantomData;

use rustgun_abi::{RG_REQ_MULTIPROCESS, RG_REQ_MULTITHREAD};

use crate::error::Error;
use crate::request::Request;
use crate::response::{Response, ResponseWriter};
use crate::websocket::{WebSocket, WsEvent};

/// An app: one object per worker process, built after fork by the factory given to
/// [`export_app!`](crate::export_app), shared by the worker's threads (hence `Send + Sync`; the
/// descriptor declares `RG_APP_THREAD_SAFE`), dropped at graceful shutdown.
pub trait App: Send + Sync + 'static {
    /// Serves one request: record the status and headers with [`ResponseWriter::start`] (or send a
    /// whole [`Response`] with [`ResponseWriter::send`]), then write the body.
    ///
    /// An `Err` is logged and answered with a 500 when nothing was sent yet; otherwise the server
    /// aborts the connection. Returning without starting a response is the app's bug; the server then
    /// answers on its own.
    fn handle(&self, req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error>;

    /// An event of a WebSocket this app accepted ([`ResponseWriter::accept_websocket`]), on the
    /// worker's event-loop thread (export with `export_app!(SYMBOL, FACTORY, websockets)`). It must
    /// not block: every WebSocket of the worker waits while it runs.
    fn on_websocket(&self, _ws: WebSocket, _event: WsEvent<'_>) {}

    /// An event of a response this app continues after `handle`
    /// ([`ResponseWriter::later`](crate::ResponseWriter::later)), on the event-loop thread.
    fn on_later(&self, _call: crate::later::Later, _event: crate::later::LaterEvent) {}

    /// The app's own event loop takes the worker's thread (export with `export_app!(SYMBOL, FACTORY,
    /// owns_loop)`): watch `host_loop.fd()`, call `host_loop.step()` when it is readable and when the
    /// time it returned has passed, and return once it says [`Step::Done`](crate::later::Step::Done).
    /// An `Err` is logged.
    fn run(&self, _host_loop: &crate::later::HostLoop) -> Result<(), Error> {
        Err(Error::msg("this app exported a run entry but does not implement App::run"))
    }

    /// Called once before the worker exits gracefully, before the app is dropped.
    fn shutdown(&mut self) {}
}

/// What an app's constructor learns about its worker.
#[derive(Debug, Clone)]
pub struct InitContext {
    worker_id: u32,
    flags: u32,
    raw_args: Vec<Vec<u8>>,
    args: Vec<String>,
}

impl InitContext {
    /// A context as `init` would build it: for tests of an app's constructor.
    pub fn new(worker_id: u32, flags: u32, raw_args: Vec<Vec<u8>>) -> InitContext {
        let args = raw_args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        InitContext { worker_id, flags, raw_args, args }
    }

    /// The worker's id (1-based, stable across respawns of the same slot).
    pub fn worker_id(&self) -> u32 {
        self.worker_id
    }

    /// The arguments given after `--` on the server's command line (invalid UTF-8 replaced).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The arguments as the server passed them.
    pub fn raw_args(&self) -> &[Vec<u8>] {
        &self.raw_args
    }

    /// The raw `RG_REQ_*` flags of the worker class.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Several threads of this worker may call the app at once.
    pub fn is_multithread(&self) -> bool {
        self.flags & RG_REQ_MULTITHREAD != 0
    }

    /// Several worker processes serve the app.
    pub fn is_multiprocess(&self) -> bool {
        self.flags & RG_REQ_MULTIPROCESS != 0
    }
}

/// Something `export_app!` can build an app with. Implemented for
/// - `Fn() -> A` (marker `fn() -> A`), and
/// - `Fn(&InitContext) -> Result<A, String>` (marker `fn(&InitContext) -> Result<A, String>`),
///
/// where `A: App`. The marker type parameter only keeps the two blanket impls apart; it is inferred.
pub trait AppFactory<Marker> {
    /// The app built.
    type App: App;
    /// Builds the app; an `Err` refuses to boot the worker with that message.
    fn build(&self, ctx: &InitContext) -> Result<Self::App, String>;
}

impl<F, A> AppFactory<fn() -> A> for F
where
    F: Fn() -> A,
    A: App,
{
    type App = A;
    fn build(&self, _ctx: &InitContext) -> Result<A, String> {
        Ok(self())
    }
}

impl<F, A> AppFactory<fn(&InitContext) -> Result<A, String>> for F
where
    F: Fn(&InitContext) -> Result<A, String>,
    A: App,
{
    type App = A;
    fn build(&self, ctx: &InitContext) -> Result<A, String> {
        self(ctx)
    }
}

/// What a high-level handler may return: a [`Response`], or a `Result` of one.
pub trait IntoResponse {
    /// The response, or the error to report.
    fn into_response(self) -> Result<Response, Error>;
}

impl IntoResponse for Response {
    fn into_response(self) -> Result<Response, Error> {
        Ok(self)
    }
}

impl<E: Into<Error>> IntoResponse for Result<Response, E> {
    fn into_response(self) -> Result<Response, Error> {
        self.map_err(Into::into)
    }
}

/// An [`App`] made of a function `Fn(&mut Request) -> R`; see [`export_handler!`](crate::export_handler).
pub struct HandlerFn<F, R = Response> {
    handler: F,
    _returns: PhantomData<fn() -> R>,
}

impl<F, R> HandlerFn<F, R>
where
    F: Fn(&mut Request<'_>) -> R + Send + Sync + 'static,
    R: IntoResponse + 'static,
{
    /// Wraps `handler`.
    pub fn new(handler: F) -> Self {
        HandlerFn { handler, _returns: PhantomData }
    }
}

impl<F, R> App for HandlerFn<F, R>
where
    F: Fn(&mut Request<'_>) -> R + Send + Sync + 'static,
    R: IntoResponse + 'static,
{
    fn handle(&self, req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
        let response = (self.handler)(req).into_response()?;
        resp.send(&response)?;
        Ok(())
    }
}
