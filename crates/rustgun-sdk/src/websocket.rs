//! WebSockets (ABI 1.3): accept one in [`App::handle`](crate::App::handle) with
//! [`ResponseWriter::accept_websocket`](crate::ResponseWriter::accept_websocket), then talk on it from
//! [`App::on_websocket`](crate::App::on_websocket), which hears a [`WsEvent`] for each thing that
//! happens, with the [`WebSocket`] it happened on. The server does the protocol: handshake, framing,
//! pings, compression, the close handshake; the app sees whole messages.
//!
//! Export such an app with `export_app!(SYMBOL, FACTORY, websockets)`: its descriptor declares
//! `RG_APP_ASYNC`, which only the `event` worker class serves.
//!
//! ```no_run
//! use rustgun_sdk::{App, Error, Request, ResponseWriter, Response, WebSocket, WsEvent};
//!
//! struct Echo;
//!
//! impl App for Echo {
//!     fn handle(&self, req: &mut Request, resp: &mut ResponseWriter) -> Result<(), Error> {
//!         if req.is_websocket() {
//!             resp.accept_websocket("", &[])?; // the WebSocket its events will name
//!         } else {
//!             resp.send(&Response::text("WebSocket only").status(426))?;
//!         }
//!         Ok(())
//!     }
//!
//!     fn on_websocket(&self, ws: WebSocket, event: WsEvent<'_>) {
//!         let _ = match event {
//!             WsEvent::Text(text) => ws.send_text(text),
//!             WsEvent::Binary(data) => ws.send_binary(data),
//!             _ => Ok(()),
//!         };
//!     }
//! }
//! rustgun_sdk::export_app!(app, || Echo, websockets);
//! ```

use rustgun_abi::{RG_ERROR, RG_OK, RG_WS_BINARY, RG_WS_TEXT};

use crate::error::HostError;
use crate::ffi::SocketCall;

/// An accepted WebSocket, as the app names it in events and sends on it. A plain handle: copy it,
/// keep it (in a map, to broadcast), compare it; once its call has ended every use returns
/// [`HostError::State`], never touches freed memory. It works on the worker's event-loop thread only
/// (inside `on_websocket`); elsewhere the server answers [`HostError::State`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct WebSocket(pub(crate) SocketCall);

impl WebSocket {
    /// A number naming this WebSocket among the worker's live ones (for maps).
    pub fn id(&self) -> usize {
        self.0.0
    }

    /// Sends a text message. [`HostError::Again`] when the output queue is full (nothing was sent:
    /// wait for [`WsEvent::Writable`]), [`HostError::Closed`] once closing.
    pub fn send_text(&self, text: &str) -> Result<(), HostError> {
        self.0.send(RG_WS_TEXT, text.as_bytes())
    }

    /// Sends a binary message (errors as [`send_text`](WebSocket::send_text)).
    pub fn send_binary(&self, data: &[u8]) -> Result<(), HostError> {
        self.0.send(RG_WS_BINARY, data)
    }

    /// Starts the closing handshake with `code` (1000, 1001, 1003, 1007–1011, 3000–4999) and a
    /// reason of at most 123 bytes; [`WsEvent::Closed`] follows with the client's answer.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), HostError> {
        self.0.close(code, reason.as_bytes())
    }

    /// Ends the call: closes with 1000 (`ok`) or 1011, and no more events come for it.
    pub fn complete(self, ok: bool) -> Result<(), HostError> {
        self.0.complete(if ok { RG_OK } else { RG_ERROR })
    }
}

/// What happened on a WebSocket.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// It is open: the app may send from now on.
    Open,
    /// A whole text message (valid UTF-8, checked by the server).
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// A send refused with [`HostError::Again`] may be retried.
    Writable,
    /// It closed: the client's code (1005 when it gave none, 1006 when the connection was lost) or
    /// the server's (a protocol error, a timeout, shutdown: 1001) and the reason. The last event.
    Closed { code: u16, reason: &'a str },
}
