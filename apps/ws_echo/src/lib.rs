//! A WebSocket echo and broadcast app for rustgun (ABI 1.3), written with the SDK:
//!
//! ```text
//! rustgun target/release/libws_echo.so:app -k event
//! ```
//!
//! - `/echo`: every message comes back as it was sent (text as text, binary as binary). A client
//!   offering the subprotocol `echo` gets it.
//! - `/broadcast`: every message goes to every WebSocket open on `/broadcast` in this worker, the
//!   sender's included; each is greeted with `welcome` when it opens. A receiver whose queue is full
//!   misses the message (the server refuses to queue more for it; see `docs/abi.md`).
//! - `/close?code=N`: the app closes the WebSocket with code N and the reason `bye` as soon as it is
//!   open.
//! - `/complete`: the app ends the call (`complete`, code 1000) on the first message.
//!
//! And plain HTTP requests answered after `handle` returned (`ResponseWriter::later`):
//! - `/later`: a thread of the app computes the answer and `post`s it back to the loop.
//! - `/later/echo`: the request body comes back, read through the pending call (`Readable` events
//!   past the part the server holds for it), chunked, with its length in the trailer field
//!   `X-Body-Length`.
//! - `/trailers`: answered in `handle`, chunked, with the trailer fields `X-Checksum` and
//!   `Grpc-Status`; its body tells what the server answered to trailers before the head and to a
//!   `Content-Length` trailer.
//! - `/later/hang`: never answered; the app logs `holding /later/hang`, then `client left
//!   /later/hang` when the client goes.
//! - Anything else, and a request that is no WebSocket handshake: 426 naming the routes.

use std::collections::HashMap;
use std::sync::Mutex;

use rustgun_sdk::log::{Level, log};
use rustgun_sdk::{
    App, Error, Header, HostError, Later, LaterEvent, Request, Response, ResponseWriter, WebSocket, WsEvent,
    later,
};

/// What a WebSocket was opened for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Echo,
    Broadcast,
    Close(u16),
    Complete,
}

#[derive(Default)]
struct WsEcho {
    /// Every open WebSocket of this worker and its route. Events all come on the worker's loop
    /// thread; the lock is never contended.
    open: Mutex<HashMap<WebSocket, Route>>,
    /// The bodies `/later/echo` calls have read so far (`None`: a `/later/hang` call).
    pending: Mutex<HashMap<Later, Option<Vec<u8>>>>,
}

static TEXT: [Header<'static>; 1] = [Header::new(b"Content-Type", b"text/plain")];

impl WsEcho {
    /// Serves the `/later` routes; `false` for any other path.
    fn later(&self, req: &Request<'_>, resp: &mut ResponseWriter<'_>) -> bool {
        match req.path() {
            b"/later" => {
                let call = resp.later();
                std::thread::spawn(move || {
                    let answer = format!("later from {:?}\n", std::thread::current().id());
                    let _ = later::post(move || {
                        let _ = call.start(200, &TEXT);
                        let _ = call.write(answer.as_bytes());
                        let _ = call.complete(true);
                    });
                });
            }
            b"/later/echo" => {
                let call = resp.later();
                self.remember(call, Some(Vec::new()));
                self.pump(call);
            }
            b"/later/hang" => {
                self.remember(resp.later(), None);
                log(Level::Info, "holding /later/hang");
            }
            _ => return false,
        }
        true
    }

    fn remember(&self, call: Later, body: Option<Vec<u8>>) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(call, body);
        }
    }

    /// Reads what the server has of an echo call's body; answers once it ended.
    fn pump(&self, call: Later) {
        let Ok(mut pending) = self.pending.lock() else { return };
        let Some(Some(body)) = pending.get_mut(&call) else { return };
        let mut buf = [0u8; 16 * 1024];
        loop {
            match call.read_body(&mut buf) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
                // The rest comes with a Readable event.
                Err(HostError::Again) => return,
                Err(_) => {
                    pending.remove(&call);
                    let _ = call.complete(false);
                    return;
                }
            }
        }
        let body = pending.remove(&call).flatten().unwrap_or_default();
        let _ = call.start(200, &TEXT);
        let _ = call.write(&body);
        let length = body.len().to_string();
        let _ = call.trailers(&[Header::new(b"X-Body-Length", length.as_bytes())]);
        let _ = call.complete(true);
    }
}

impl WsEcho {
    fn route(req: &Request<'_>) -> Option<Route> {
        match req.path() {
            b"/echo" => Some(Route::Echo),
            b"/broadcast" => Some(Route::Broadcast),
            b"/complete" => Some(Route::Complete),
            b"/close" => {
                let code = req.query_param("code").and_then(|c| c.parse().ok()).unwrap_or(1000);
                Some(Route::Close(code))
            }
            _ => None,
        }
    }

    fn route_of(&self, ws: WebSocket) -> Option<Route> {
        self.open.lock().ok()?.get(&ws).copied()
    }

    fn broadcast(&self, event: &WsEvent<'_>) {
        let Ok(open) = self.open.lock() else { return };
        for (ws, route) in open.iter() {
            if *route == Route::Broadcast {
                // A receiver that cannot take more misses this one: never block the others.
                let _ = send_back(*ws, event);
            }
        }
    }
}

/// `/trailers`: a chunked body, then trailer fields; the one a trailer may not carry is refused.
fn trailers(resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
    let early = resp.trailers(&[Header::new(b"X-Early", b"1")]);
    resp.start(200, &TEXT)?;
    let framing = resp.trailers(&[Header::new(b"Content-Length", b"4")]);
    resp.write(format!("before start: {early:?}; Content-Length: {framing:?}\n").as_bytes())?;
    resp.trailers(&[Header::new(b"X-Checksum", b"sha1=deadbeef"), Header::new(b"Grpc-Status", b"0")])?;
    Ok(())
}

fn send_back(ws: WebSocket, event: &WsEvent<'_>) -> Result<(), rustgun_sdk::HostError> {
    match event {
        WsEvent::Text(text) => ws.send_text(text),
        WsEvent::Binary(data) => ws.send_binary(data),
        _ => Ok(()),
    }
}

impl App for WsEcho {
    fn handle(&self, req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
        if !req.is_websocket() && self.later(req, resp) {
            return Ok(());
        }
        if req.path() == b"/trailers" {
            return trailers(resp);
        }
        let Some(route) = Self::route(req).filter(|_| req.is_websocket()) else {
            let body = "ws_echo serves WebSockets on /echo, /broadcast, /close?code=N and /complete\n";
            resp.send(&Response::text(body).status(426).header("Upgrade", "websocket"))?;
            return Ok(());
        };
        let offers_echo = req
            .header("sec-websocket-protocol")
            .is_some_and(|v| v.split(|&b| b == b',').any(|p| p.trim_ascii() == b"echo"));
        let subprotocol = if route == Route::Echo && offers_echo { "echo" } else { "" };
        static SERVED_BY: [Header<'static>; 1] = [Header::new(b"X-Served-By", b"ws_echo")];
        let ws = resp.accept_websocket(subprotocol, &SERVED_BY)?;
        if let Ok(mut open) = self.open.lock() {
            open.insert(ws, route);
        }
        Ok(())
    }

    fn on_websocket(&self, ws: WebSocket, event: WsEvent<'_>) {
        match event {
            WsEvent::Open => {
                let _ = match self.route_of(ws) {
                    Some(Route::Broadcast) => ws.send_text("welcome"),
                    Some(Route::Close(code)) => ws.close(code, "bye"),
                    _ => Ok(()),
                };
            }
            WsEvent::Text(_) | WsEvent::Binary(_) => match self.route_of(ws) {
                Some(Route::Echo) => {
                    let _ = send_back(ws, &event);
                }
                Some(Route::Broadcast) => self.broadcast(&event),
                Some(Route::Complete) => {
                    if let Ok(mut open) = self.open.lock() {
                        open.remove(&ws);
                    }
                    let _ = ws.complete(true);
                }
                Some(Route::Close(_)) | None => {}
            },
            WsEvent::Writable => {}
            WsEvent::Closed { .. } => {
                if let Ok(mut open) = self.open.lock() {
                    open.remove(&ws);
                }
            }
        }
    }

    fn on_later(&self, call: Later, event: LaterEvent) {
        match event {
            LaterEvent::Readable => self.pump(call),
            LaterEvent::Writable => {}
            LaterEvent::Disconnected => {
                let hung =
                    self.pending.lock().ok().and_then(|mut p| p.remove(&call)).is_some_and(|b| b.is_none());
                if hung {
                    log(Level::Info, "client left /later/hang");
                }
            }
        }
    }
}

rustgun_sdk::export_app!(app, WsEcho::default, websockets);
