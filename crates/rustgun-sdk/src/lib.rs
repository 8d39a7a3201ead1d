//! Write rustgun apps in safe Rust.
//!
//! An app is a `cdylib` that exports one [`RgApp`](abi::RgApp) descriptor; this crate builds that
//! descriptor and every `extern "C"` trampoline behind it, so the app itself is plain safe Rust:
//!
//! ```no_run
//! use rustgun_sdk::{Request, Response};
//!
//! fn hello(_req: &mut Request) -> Response {
//!     Response::text("Hello, World!")
//! }
//! rustgun_sdk::export_handler!(app, hello); // rustgun ./libmyapp.so:app
//! ```
//!
//! Three levels, pick the one that fits:
//! - [`export_handler!`]: a plain function `Fn(&mut Request) -> Response` (or `Result<Response, E>`).
//! - [`Router`]: Flask-like routes with `<name>` path parameters, exported with [`export_app!`].
//! - [`App`]: a type with `handle(&self, &mut Request, &mut ResponseWriter)` that streams its response
//!   (status and headers, then `write`s or a pull-mode [`BodySource`]), exported with [`export_app!`].
//!
//! Every entry point catches panics (logged as `app panicked: …`, answered with `RG_E_PANIC`, which the
//! server turns into a 500 when nothing was sent yet); an `Err` from a handler becomes `RG_ERROR`.
//!
//! Module map: [`request`] (the borrowed request), [`response`] (owned [`Response`] and the streaming
//! [`ResponseWriter`]), [`app`] (the [`App`] trait and its constructors), [`websocket`] (accepted
//! WebSockets and their events), [`later`] (responses that go on after `handle`, `post`, an app's
//! own event loop), [`router`], [`json`], [`log`](mod@log)
//! (the host's error log), [`url`] (percent-decoding, query strings), [`error`](mod@error). The `unsafe` code lives
//! in two private modules only: `ffi` (calls into the host) and `export` (calls from the host).

pub mod app;
pub mod error;
mod export;
mod ffi;
pub mod json;
pub mod later;
pub mod log;
pub mod request;
pub mod response;
pub mod router;
pub mod url;
pub mod websocket;

/// The raw ABI types and constants, for apps that need them (flags, status codes).
pub use rustgun_abi as abi;
/// The `serde` crate this SDK was built with (for `Request::json::<T>()` bounds).
pub use serde;
/// The `serde_json` crate this SDK was built with (`json!`, `Value`), with `preserve_order` enabled.
pub use serde_json;

pub use app::{App, AppFactory, HandlerFn, InitContext, IntoResponse};
pub use error::{Error, HostError, Result};
pub use later::{HostLoop, Later, LaterEvent, Step};
pub use log::{Level, log};
pub use request::{Body, Environ, Headers, Request};
pub use response::{BodySource, Header, IterBody, ReadBody, Response, ResponseWriter};
pub use router::{Params, Router};
pub use websocket::{WebSocket, WsEvent};

/// Items the export macros expand to. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::hooks::{hooks_call_with, hooks_defined_with, hooks_load_with};
    pub use crate::export::{event_with, handle_with, init_with, preload_with, run_with, shutdown_with};
}
