//! WebSockets (ABI 1.3) against `apps/ws_echo` under the event class: strict clients (Python's
//! `websockets` and `wsproto`) never see a protocol error, and a frame-level client of our own
//! checks the rules RFC 6455 gives the server, one story each: what a broken frame is answered with,
//! pings and closes, limits, keep-alive, shutdown. Every wait is on bytes received.

use crate::procs::Bare;
use crate::support::{Server, python};
use std::io::{Read, Write};
use std::net::TcpStream;

/// ws_echo on one event worker, with `extra` options.
fn ws_echo(extra: &[&str]) -> Server {
    Server::builder("ws_echo").args(&["-k", "event"]).args(extra).start()
}

/// A frame-level WebSocket client: masks what it sends, reads frames one by one.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

const TEXT: u8 = 1;
const BINARY: u8 = 2;
const CLOSE: u8 = 8;
const PING: u8 = 9;
const PONG: u8 = 10;

impl Client {
    /// Opens `path` with a valid handshake plus `extra` header lines; asserts the 101.
    fn open(server: &Server, path: &str, extra: &str) -> (Client, String) {
        let mut stream = server.connect();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        stream.write_all(req.as_bytes()).unwrap();
        let mut client = Client { stream, buf: Vec::new() };
        let head = client.head();
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{head}");
        (client, head)
    }

    /// Reads up to the end of the response head.
    fn head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8(head).unwrap();
            }
            self.fill().expect("the server closed before its head");
        }
    }

    fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    /// Sends one frame: `first` is FIN, RSV and opcode bits; masked unless `unmasked`.
    fn frame(&mut self, first: u8, payload: &[u8], unmasked: bool) {
        let mut out = vec![first];
        let mask_bit = if unmasked { 0 } else { 0x80 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n < 65536 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if unmasked {
            out.extend_from_slice(payload);
        } else {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        self.stream.write_all(&out).unwrap();
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.frame(0x80 | opcode, payload, false);
    }

    /// The next frame from the server: (FIN and opcode byte, payload), or `None` at EOF.
    fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "a server frame must not be masked");
                let (len, at) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => {
                        (u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize, 10)
                    }
                    n @ 0..=125 => (n as usize, 2),
                    _ => (usize::MAX, 0),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let first = self.buf[0];
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some((first, payload));
                }
            }
            self.fill()?;
        }
    }

    /// Reads frames until a close: its code (1005 for none) and reason. Pings on the way are kept.
    fn close_frame(&mut self) -> (u16, String) {
        loop {
            let (first, payload) = self.recv().expect("a close frame before EOF");
            if first & 0x0f == CLOSE {
                if payload.is_empty() {
                    return (1005, String::new());
                }
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8(payload[2..].to_vec()).unwrap());
            }
        }
    }

    /// After the close handshake the server closes the TCP connection (RFC 6455 §7.1.1).
    fn assert_eof(&mut self) {
        self.buf.clear();
        assert!(self.fill().is_none(), "the server kept the connection open: {:?}", self.buf);
    }
}

/// What a case sends on an open WebSocket.
type Sends = dyn Fn(&mut Client);

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

#[test]
fn python_websockets_echoes_broadcasts_and_sees_app_closes_without_a_protocol_error() {
    let server = ws_echo(&[]);
    let out = python(
        r#"
import asyncio, sys, websockets
url = sys.argv[1]
async def main():
    async with websockets.connect(url + "/echo", subprotocols=["echo"]) as ws:
        print("subprotocol", ws.subprotocol)
        print("extensions", ws.response.headers.get("Sec-WebSocket-Extensions"))
        await ws.send("héllo")
        print("text", await ws.recv())
        await ws.send(bytes(range(256)) * 4)
        print("binary", len(await ws.recv()))
        await ws.send("x" * 300_000)
        print("large", len(await ws.recv()))
        await ws.ping(b"are you there")
        print("pong ok")
    async with websockets.connect(url + "/broadcast") as a, websockets.connect(url + "/broadcast") as b:
        print("greeted", await a.recv(), await b.recv())
        await a.send("to everyone")
        print("broadcast", await a.recv(), "/", await b.recv())
    async with websockets.connect(url + "/close?code=4001") as ws:
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            print("app closed", e.rcvd.code, e.rcvd.reason)
    async with websockets.connect(url + "/complete") as ws:
        await ws.send("done")
        try:
            await ws.recv()
        except websockets.ConnectionClosedOK as e:
            print("completed", e.rcvd.code)
asyncio.run(main())
"#,
        &[&format!("ws://{}", server.addr)],
    );
    let expected = [
        "subprotocol echo",
        "extensions permessage-deflate; server_no_context_takeover; client_max_window_bits=15",
        "text héllo",
        "binary 1024",
        "large 300000",
        "pong ok",
        "greeted welcome welcome",
        "broadcast to everyone / to everyone",
        "app closed 4001 bye",
        "completed 1000",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
}

#[test]
fn wsproto_as_a_strict_client_gets_every_message_back_fragmented_or_not() {
    let server = ws_echo(&["--ws-per-message-deflate", "false"]);
    let out = python(
        r#"
import socket, sys
from wsproto import WSConnection, ConnectionType
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message, Request,
                            TextMessage)
host, port = sys.argv[1].rsplit(":", 1)
sock = socket.create_connection((host, int(port)), timeout=20)
ws = WSConnection(ConnectionType.CLIENT)
def send(event):
    sock.sendall(ws.send(event))
def events():
    while True:
        pending = list(ws.events())
        if pending:
            return pending
        data = sock.recv(65536)
        ws.receive_data(data or None)
send(Request(host="t", target="/echo", extensions=[]))
accepted = [e for e in events() if isinstance(e, AcceptConnection)]
print("accepted", len(accepted), accepted[0].extensions)
send(TextMessage(data="part one, ", message_finished=False))
send(TextMessage(data="part two", message_finished=True))
got = ""
while True:
    evs = events()
    got += "".join(e.data for e in evs if isinstance(e, TextMessage))
    if any(isinstance(e, Message) and e.message_finished for e in evs):
        break
print("text", got)
send(BytesMessage(data=b"\x00" * 70000))
size = 0
while size < 70000:
    size += sum(len(e.data) for e in events() if isinstance(e, BytesMessage))
print("bytes", size)
send(CloseConnection(code=1000, reason="thanks"))
closed = [e for e in events() if isinstance(e, CloseConnection)]
print("closed", closed[0].code)
print("eof", sock.recv(1) == b"")
"#,
        &[&server.addr.to_string()],
    );
    let expected = ["accepted 1 []", "text part one, part two", "bytes 70000", "closed 1000", "eof True"];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
}

#[test]
fn a_fragmented_message_with_a_ping_between_its_fragments_comes_back_whole_after_the_pong() {
    let server = ws_echo(&[]);
    let (mut ws, _) = Client::open(&server, "/echo", "");
    ws.frame(TEXT, "frag".as_bytes(), false);
    ws.send(PING, b"in between");
    // A code point split across fragments is fine: only the whole message must be UTF-8.
    ws.frame(0, &"mént é".as_bytes()[..2], false);
    ws.frame(0x80, &"mént é".as_bytes()[2..], false);
    assert_eq!(ws.recv(), Some((0x80 | PONG, b"in between".to_vec())), "the pong comes at once");
    assert_eq!(ws.recv(), Some((0x80 | TEXT, "fragmént é".as_bytes().to_vec())));
    ws.send(CLOSE, &close_payload(1000, "bye"));
    assert_eq!(ws.close_frame(), (1000, "bye".to_string()), "the close is echoed with its code and reason");
    ws.assert_eof();
}

#[test]
fn protocol_errors_are_answered_with_their_close_code_and_the_connection_closes() {
    let server = ws_echo(&["--websocket-max-message-size", "1000"]);
    let cases: [(&str, Box<Sends>, u16); 7] = [
        ("an unmasked frame", Box::new(|c| c.frame(0x80 | TEXT, b"hi", true)), 1002),
        ("a reserved opcode", Box::new(|c| c.send(3, b"")), 1002),
        ("RSV2 set", Box::new(|c| c.frame(0x80 | 0x20 | TEXT, b"x", false)), 1002),
        ("a continuation with nothing to continue", Box::new(|c| c.send(0, b"x")), 1002),
        ("text that is not UTF-8", Box::new(|c| c.send(TEXT, &[0xce, 0xba, 0xff])), 1007),
        ("a message over the limit", Box::new(|c| c.send(BINARY, &[7u8; 1001])), 1009),
        ("a close code no one may send", Box::new(|c| c.send(CLOSE, &close_payload(1005, ""))), 1002),
    ];
    for (what, send, code) in cases {
        let (mut ws, _) = Client::open(&server, "/echo", "");
        send(&mut ws);
        assert_eq!(ws.close_frame().0, code, "{what}");
        ws.assert_eof();
    }
    // The worker lives on and serves the next one.
    let (mut ws, _) = Client::open(&server, "/echo", "");
    ws.send(TEXT, b"still here");
    assert_eq!(ws.recv(), Some((0x80 | TEXT, b"still here".to_vec())));
}

#[test]
fn a_silent_client_is_pinged_and_closed_with_1011_when_it_does_not_answer() {
    let server = ws_echo(&["--ws-ping-interval", "1", "--ws-ping-timeout", "1"]);
    let (mut ws, _) = Client::open(&server, "/echo", "");
    let (first, _) = ws.recv().expect("a ping");
    assert_eq!(first, 0x80 | PING, "the server pings a silent WebSocket");
    assert_eq!(ws.close_frame(), (1011, "keepalive ping timeout".to_string()));
    // An answering client is left alone: it gets pings and stays open.
    let (mut alive, _) = Client::open(&server, "/echo", "");
    for _ in 0..2 {
        let (first, payload) = alive.recv().expect("a ping");
        assert_eq!(first, 0x80 | PING);
        alive.send(PONG, &payload);
    }
    alive.send(TEXT, b"alive");
    assert_eq!(alive.recv(), Some((0x80 | TEXT, b"alive".to_vec())));
}

#[test]
fn a_stopping_worker_sends_every_websocket_1001_and_waits_for_its_close() {
    let mut server = ws_echo(&[]);
    let (mut a, _) = Client::open(&server, "/echo", "");
    let (mut b, _) = Client::open(&server, "/broadcast", "");
    assert_eq!(b.recv(), Some((0x80 | TEXT, b"welcome".to_vec())));
    server.signal(libc::SIGTERM);
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.close_frame(), (1001, "server shutting down".to_string()));
        ws.send(CLOSE, &close_payload(1001, ""));
        ws.assert_eof();
    }
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn a_request_that_is_no_valid_handshake_gets_the_apps_answer_not_a_101() {
    let server = ws_echo(&[]);
    let raw = server.raw(
        b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 426 "), "{text}");
}

#[test]
fn an_async_app_is_refused_by_sync_with_one_line_and_served_by_threads_on_an_event_loop() {
    let app = crate::procs::lib("ws_echo");
    let (code, log) = Bare::run(&[&app, "--bind", "127.0.0.1:0", "-k", "sync"]);
    let errors = crate::procs::error_lines(&log);
    assert_eq!(code, 4, "{log:?}");
    assert_eq!(errors.len(), 1, "{log:?}");
    assert!(errors[0].contains("RG_APP_ASYNC") && errors[0].contains("-k event"), "{}", errors[0]);
    // The threads class gives it the event loop its calls need, and says so.
    let server = Server::builder("ws_echo").args(&["-k", "threads", "--threads", "4"]).start();
    server.wait_for_log("Serving the async app");
    let (mut ws, _) = Client::open(&server, "/echo", "");
    ws.send(TEXT, b"under threads");
    assert_eq!(ws.recv(), Some((0x80 | TEXT, b"under threads".to_vec())));
}
