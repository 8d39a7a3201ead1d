//! A WebSocket an app accepted (ABI 1.3): the connection after its 101, with the protocol state
//! ([`http::ws::Session`]), its buffers and its keep-alive clock, as the app's host calls reach it
//! ([`Socket`]: `ws_send`, `ws_close`, `complete`) and as the event loop drives it
//! ([`Link::receive`], [`Link::tick`]).
//!
//! The loop owns the link (an `Rc`) and the call's handle names it weakly: when the loop drops it,
//! the handle is stale. Host calls never touch the socket: they queue frames and mark the link
//! [`touched`], and the loop writes what is queued once the app's callback has returned.
//!
//! Memory per link is bounded: the output queue refuses a message once it holds [`HIGH_WATER`]
//! (`RG_E_AGAIN`, then `RG_EV_WRITABLE`), reading pauses while it does (a client that does not read
//! sends nothing more), and an incoming message is bounded by `--websocket-max-message-size`.
//!
//! Not here: the frames and the handshake (`http::ws`, `http::upgrade`), epoll (`event::sockets`).

use super::connection::{HIGH_WATER, ReadBuf};
use crate::app::HostError;
use crate::app::host::{Exchange, Socket};
use crate::config::WebSocketSettings;
use crate::http::ws::{self, Deflater, Event, Kind, Session, State};
use crate::net::Stream;
use rustgun_abi::{RG_EV_WS_CLOSE, RG_EV_WS_MESSAGE, RG_OK, RG_WS_BINARY, RG_WS_TEXT, RgCall};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// How long a link whose close frame went out waits for the client's before it drops the connection.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

thread_local! {
    /// One compressor for every link of the thread: each message is compressed on its own
    /// (`server_no_context_takeover`), so no link keeps a compression context.
    static DEFLATER: RefCell<Deflater> = RefCell::new(Deflater::new());
    /// Links that host calls queued frames on since the loop last looked.
    static TOUCHED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The tokens of the links host calls touched, for the loop to write out (emptied).
pub fn touched() -> Vec<usize> {
    TOUCHED.with_borrow_mut(std::mem::take)
}

/// What the loop delivers to the app after a [`Link::receive`] or [`Link::tick`].
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A whole message, taken with [`Link::take_message`] and given back with [`Link::restore`].
    Message(u32),
    /// The WebSocket closed with this code (and [`Link::reason`]): the call's last event.
    Closed(u16),
}

/// One accepted WebSocket.
pub struct Link {
    /// The socket; taken when the connection is closed.
    pub stream: Option<Stream>,
    pub rbuf: ReadBuf,
    pub out: Vec<u8>,
    session: Session,
    /// The call's handle, named in every event.
    pub call: *mut RgCall,
    /// The link's token in the event loop.
    pub token: usize,
    /// The app ended the call (`complete`) or was told it closed: no more events.
    pub ended: bool,
    /// A send was refused with `RG_E_AGAIN`: `RG_EV_WRITABLE` is owed once the queue drains.
    pub owes_writable: bool,
    /// The message being delivered (taken from the session) and the close reason.
    message: Vec<u8>,
    reason: String,
    heard: Instant,
    pinged: Option<Instant>,
    closing_since: Option<Instant>,
    settings: WebSocketSettings,
}

impl Link {
    /// The link of a call whose 101 is about to be sent; the loop gives it the stream and the token.
    pub fn new(call: *mut RgCall, deflate: Option<ws::DeflateParams>, settings: WebSocketSettings) -> Link {
        Link {
            stream: None,
            rbuf: ReadBuf::unallocated(),
            out: Vec::new(),
            session: Session::new(settings.max_message, deflate),
            call,
            token: usize::MAX,
            ended: false,
            owes_writable: false,
            message: Vec::new(),
            reason: String::new(),
            heard: Instant::now(),
            pinged: None,
            closing_since: None,
            settings,
        }
    }

    /// Decodes what has arrived, up to the next thing to deliver. Pongs and close echoes are queued
    /// as they are owed; a protocol error queues its close frame and closes with its code. Nothing is
    /// decoded while the output queue is full.
    pub fn receive(&mut self, now: Instant) -> Option<Delivery> {
        loop {
            // While the queue is full nothing more is decoded: the app answering a message must be
            // able to send, and a client that does not read gets nothing more read from it.
            if self.rbuf.is_empty() || self.session.state() == State::Closed || self.out.len() >= HIGH_WATER {
                return None;
            }
            self.heard = now;
            let received = self.session.receive(self.rbuf.data(), &mut self.out);
            match received {
                Err(e) => {
                    self.rbuf.clear();
                    self.reason = e.reason.to_string();
                    return Some(Delivery::Closed(e.code));
                }
                Ok((used, event)) => {
                    self.rbuf.consume(used);
                    match event {
                        None if used == 0 => return None,
                        None | Some(Event::Ping) => {}
                        Some(Event::Pong) => self.pinged = None,
                        Some(Event::Message(kind)) => {
                            self.message = self.session.take_message();
                            let code = if kind == Kind::Text { RG_WS_TEXT } else { RG_WS_BINARY };
                            return Some(Delivery::Message(code));
                        }
                        Some(Event::Close(code)) => {
                            self.reason = self.session.close_reason().to_string();
                            return Some(Delivery::Closed(code));
                        }
                    }
                }
            }
        }
    }

    /// Takes the message of the last [`Delivery::Message`], to hand it to the app with no borrow
    /// of the link held.
    pub fn take_message(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.message)
    }

    /// Gives the message buffer back to the session once the app has seen it.
    pub fn restore(&mut self, message: Vec<u8>) {
        self.session.restore_message(message);
    }

    /// The reason of the last [`Delivery::Closed`].
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Keeps time: pings a link that has been silent for the ping interval, and closes one whose
    /// ping went unanswered (1011) or whose close handshake did not finish in time (1006).
    pub fn tick(&mut self, now: Instant) -> Option<Delivery> {
        if let Some(since) = self.closing_since {
            return (now >= since + CLOSE_WAIT).then(|| self.lost());
        }
        if let Some(pinged) = self.pinged {
            if now >= pinged + self.settings.ping_timeout {
                self.reason = "keepalive ping timeout".to_string();
                self.start_close(ws::close::INTERNAL, "keepalive ping timeout", now);
                return Some(Delivery::Closed(ws::close::INTERNAL));
            }
        } else if let Some(interval) = self.settings.ping_interval
            && now >= self.heard + interval
        {
            self.session.ping(b"", &mut self.out);
            self.pinged = Some(now);
        }
        None
    }

    /// The connection was lost or given up on without a close handshake: 1006.
    pub fn lost(&mut self) -> Delivery {
        self.reason.clear();
        Delivery::Closed(ws::close::ABNORMAL)
    }

    /// Starts the closing handshake from our side (shutdown: 1001) if it is still open.
    pub fn start_close(&mut self, code: u16, reason: &str, now: Instant) {
        if self.session.state() == State::Open {
            self.session.close(code, reason, &mut self.out);
        }
        self.closing_since.get_or_insert(now);
    }

    /// Whether the protocol is over: the socket closes once the queue is written.
    pub fn is_closed(&self) -> bool {
        self.session.state() == State::Closed
    }

    /// Whether the loop should read: not once closed, nor while the queue is full (a client that
    /// does not take what it is sent may send nothing more).
    pub fn wants_input(&self) -> bool {
        !self.is_closed() && self.out.len() < HIGH_WATER
    }

    fn touch(&self) {
        TOUCHED.with_borrow_mut(|t| t.push(self.token));
        crate::app::wake::nudge();
    }
}

/// A WebSocket answers only the socket's host calls.
impl Exchange for Link {}

impl Socket for Link {
    fn ws_send(&mut self, kind: u32, data: &[u8]) -> Result<(), HostError> {
        let kind = match kind {
            RG_WS_TEXT if std::str::from_utf8(data).is_ok() => Kind::Text,
            RG_WS_BINARY => Kind::Binary,
            _ => return Err(HostError::Invalid),
        };
        if self.session.state() != State::Open || self.stream.is_none() {
            return Err(HostError::Closed);
        }
        if self.out.len() >= HIGH_WATER {
            self.owes_writable = true;
            return Err(HostError::Again);
        }
        DEFLATER
            .with_borrow_mut(|deflater| self.session.send(kind, data, deflater, &mut self.out))
            .map_err(|_| HostError::Closed)?;
        self.touch();
        Ok(())
    }

    fn ws_close(&mut self, code: u16, reason: &[u8]) -> Result<(), HostError> {
        let reason = std::str::from_utf8(reason).map_err(|_| HostError::Invalid)?;
        if !ws::sendable_code(code) || reason.len() > 123 {
            return Err(HostError::Invalid);
        }
        if self.session.state() != State::Open {
            return Err(HostError::Closed);
        }
        self.start_close(code, reason, Instant::now());
        self.touch();
        Ok(())
    }

    fn end(&mut self, status: i32) {
        self.ended = true;
        let code = if status == RG_OK { ws::close::NORMAL } else { ws::close::INTERNAL };
        self.start_close(code, "", Instant::now());
        self.touch();
    }
}

/// The event kind and code of a delivery, as the app receives them.
pub fn event_of(delivery: &Delivery) -> (u32, u32) {
    match *delivery {
        Delivery::Message(code) => (RG_EV_WS_MESSAGE, code),
        Delivery::Closed(code) => (RG_EV_WS_CLOSE, u32::from(code)),
    }
}
