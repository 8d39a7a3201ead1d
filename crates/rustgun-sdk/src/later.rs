//! Responses that go on after `handle` (ABI 1.3), for apps whose work completes later: on another
//! thread (hand the result back with [`post`]), or in the app's own event loop, which may take the
//! worker's thread ([`App::run`](crate::App::run) and [`HostLoop`]).
//!
//! In `handle`, [`ResponseWriter::later`](crate::ResponseWriter::later) keeps the call open and
//! returns a [`Later`]; the app then starts, writes and completes the response through it, on the
//! worker's loop thread, and hears [`LaterEvent`]s for it in
//! [`App::on_later`](crate::App::on_later). Export such an app with `export_app!(SYMBOL, FACTORY,
//! websockets)` (or `owns_loop`); only the `event` worker class serves it.
//!
//! ```no_run
//! use rustgun_sdk::{App, Error, Header, Request, ResponseWriter, later};
//!
//! struct Slow;
//!
//! impl App for Slow {
//!     fn handle(&self, _req: &mut Request, resp: &mut ResponseWriter) -> Result<(), Error> {
//!         let call = resp.later();
//!         std::thread::spawn(move || {
//!             let answer = "computed elsewhere";
//!             let _ = later::post(move || {
//!                 let _ = call.start(200, &[Header::new(b"Content-Type", b"text/plain")]);
//!                 let _ = call.write(answer.as_bytes());
//!                 let _ = call.complete(true);
//!             });
//!         });
//!         Ok(())
//!     }
//! }
//! rustgun_sdk::export_app!(app, || Slow, websockets);
//! ```

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use rustgun_abi::{RG_E_STATE, RG_ERROR, RG_LOOP_DONE, RG_OK};

use crate::error::HostError;
use crate::ffi::{LoopRef, SocketCall};
use crate::response::Header;

thread_local! {
    /// The pending HTTP calls of this thread's loop, to tell their events from a WebSocket's.
    static LIVE: RefCell<HashSet<usize>> = RefCell::new(HashSet::new());
}

/// An HTTP response that goes on after `handle`: a plain handle, as [`WebSocket`](crate::WebSocket)
/// is. Its functions work on the worker's loop thread only ([`post`] gets there from elsewhere); once
/// the call ended (completed, or the client left) they return [`HostError::State`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Later(pub(crate) SocketCall);

impl Later {
    pub(crate) fn new(call: SocketCall) -> Later {
        LIVE.with_borrow_mut(|live| live.insert(call.0));
        Later(call)
    }

    /// Whether `call` names a pending HTTP call of this thread.
    pub(crate) fn is_live(call: SocketCall) -> bool {
        LIVE.with_borrow(|live| live.contains(&call.0))
    }

    fn forget(self) {
        LIVE.with_borrow_mut(|live| live.remove(&self.0.0));
    }

    /// A number naming this call among the worker's live ones.
    pub fn id(&self) -> usize {
        self.0.0
    }

    /// Records the status and headers (once; the body starts with the first write).
    pub fn start(&self, status: u16, headers: &[Header<'_>]) -> Result<(), HostError> {
        self.0.start(u32::from(status), headers)
    }

    /// Sends body bytes. [`HostError::Again`] when the output queue is full (nothing was taken: write
    /// again after [`LaterEvent::Writable`]).
    pub fn write(&self, data: &[u8]) -> Result<(), HostError> {
        self.0.write(data)
    }

    /// Adds trailer fields, sent after the body when it is chunked and the client asked for them
    /// (`TE: trailers`); see [`ResponseWriter::trailers`](crate::ResponseWriter::trailers).
    pub fn trailers(&self, fields: &[Header<'_>]) -> Result<(), HostError> {
        self.0.trailers(fields)
    }

    /// Reads decoded request body bytes: 0 at its end, [`HostError::Again`] when none are ready yet
    /// (read again after [`LaterEvent::Readable`]).
    pub fn read_body(&self, buf: &mut [u8]) -> Result<usize, HostError> {
        self.0.read_body(buf)
    }

    /// Accepts the WebSocket the request asks for, later than `handle` (ABI 1.3; before any response):
    /// the call goes on as the returned [`WebSocket`](crate::WebSocket), whose events come to
    /// [`App::on_websocket`](crate::App::on_websocket) from its `Open` on.
    pub fn accept_websocket(
        self,
        subprotocol: &str,
        headers: &[Header<'_>],
    ) -> Result<crate::WebSocket, HostError> {
        self.0.accept(subprotocol.as_bytes(), headers)?;
        self.forget();
        Ok(crate::WebSocket(self.0))
    }

    /// Ends the response: `ok`, or the app failed (a 500 if nothing was sent, else the connection is
    /// cut). No more events come for it.
    pub fn complete(self, ok: bool) -> Result<(), HostError> {
        self.forget();
        self.0.complete(if ok { RG_OK } else { RG_ERROR })
    }

    /// The client left: the call is over (the SDK's bookkeeping).
    pub(crate) fn ended(self) {
        self.forget();
    }
}

/// What happened on a pending response.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum LaterEvent {
    /// A read refused with [`HostError::Again`] may be retried.
    Readable,
    /// A write refused with [`HostError::Again`] may be retried.
    Writable,
    /// The client went away before the response completed. The last event.
    Disconnected,
}

/// Runs `f` on the worker's event-loop thread soon, from any thread: the way a thread of the app hands
/// its result to a [`Later`]. [`HostError::State`] when the worker has no event loop (not `-k event`)
/// or has stopped; `f` is then dropped unrun.
pub fn post(f: impl FnOnce() + Send + 'static) -> Result<(), HostError> {
    crate::export::post_boxed(Box::new(f))
}

/// The worker's event loop, lent to [`App::run`](crate::App::run) for as long as it runs. A clone
/// stays on the thread (it is not `Send`); stepped after `run` returned it answers
/// [`HostError::State`].
#[derive(Clone)]
pub struct HostLoop(pub(crate) LoopRef);

/// What a [`HostLoop::step`] asks for next.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Step {
    /// Step again when the descriptor is readable, or after this long at the latest.
    Within(Duration),
    /// The worker has stopped: return from `run`.
    Done,
}

impl HostLoop {
    /// The descriptor to watch for reading (`loop.add_reader`, epoll, poll).
    pub fn fd(&self) -> i32 {
        self.0.fd()
    }

    /// Does what the server's loop has ready, without waiting. [`HostError::State`] from inside
    /// `handle` or an event.
    pub fn step(&self) -> Result<Step, HostError> {
        match self.0.step() {
            RG_LOOP_DONE => Ok(Step::Done),
            RG_E_STATE => Err(HostError::State),
            ms if ms >= 0 => Ok(Step::Within(Duration::from_millis(ms as u64))),
            other => Err(HostError::from_code(i64::from(other)).unwrap_or(HostError::State)),
        }
    }
}
