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
//! - Anything else, and a request that is no WebSocket handshake: 426 naming the routes.

use std::collections::HashMap;
use std::sync::Mutex;

use rustgun_sdk::{App, Error, Header, Request, Response, ResponseWriter, WebSocket, WsEvent};

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

fn send_back(ws: WebSocket, event: &WsEvent<'_>) -> Result<(), rustgun_sdk::HostError> {
    match event {
        WsEvent::Text(text) => ws.send_text(text),
        WsEvent::Binary(data) => ws.send_binary(data),
        _ => Ok(()),
    }
}

impl App for WsEcho {
    fn handle(&self, req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
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
}

rustgun_sdk::export_app!(app, WsEcho::default, websockets);
