//! The server's side of the application ABI: loading an app library and checking its descriptor
//! ([`load`]), the host function table the app calls back into ([`host`]), why a host call is
//! refused ([`error`]) and the handles that name the calls in progress ([`calls`]), the event loop's wake-up for `post` ([`wake`]), and the request view handed to it ([`view`]) with its CGI/WSGI environ ([`environ`]).
//!
//! This is one of the few places with `unsafe`: every raw pointer that crosses the boundary is turned
//! into a Rust reference here, and nowhere else.

pub mod calls;
mod environ;
pub mod error;
pub mod hooks;
pub mod host;
pub mod load;
pub mod python;
pub mod view;
pub mod wake;

pub use error::HostError;
pub use host::Exchange;
pub use load::{App, AppRef, Library, LoadError};
pub use view::{ConnInfo, RequestView};
