//! Large bodies through `libasgi.so` with flat memory: a 1 GiB streamed response that the client
//! reads as it comes, and a 1 GiB upload the app reads message by message; the worker's resident
//! set stays within 64 MiB of where it started either way (the server's output queue holds back the
//! app's `send`, and the body is read from the socket only as the app receives it). And idle WebSockets
//! cost the worker little each: no buffer stays with a call that has nothing to hold.

use super::asgi;
use crate::wsgi::rss;
use std::io::{Read, Write};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

#[test]
fn a_1_gib_streamed_response_reaches_the_client_with_flat_memory() {
    let server = asgi("raw:app").start();
    let worker = server.wait_for_workers(1)[0];
    assert_eq!(server.get("/big?65536").body.len(), 65536, "warm up");
    let before = rss(worker);
    let mut s = server.connect();
    s.write_all(format!("GET /big?{GIB} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = vec![0u8; 1024 * 1024];
    let (mut total, mut peak) = (0u64, before);
    loop {
        let n = s.read(&mut buf).expect("read the stream");
        if n == 0 {
            break;
        }
        total += n as u64;
        if total % (64 * MIB) < n as u64 {
            peak = peak.max(rss(worker));
        }
    }
    assert!(total > GIB, "only {total} bytes arrived (the head comes first)");
    assert!(peak - before < 64 * MIB, "the worker grew from {} to {} MiB", before / MIB, peak / MIB);
}

#[test]
fn a_1_gib_upload_is_read_message_by_message_with_flat_memory() {
    let server = asgi("raw:app").start();
    let worker = server.wait_for_workers(1)[0];
    let warm =
        server.raw(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
    assert!(String::from_utf8_lossy(&warm).ends_with(r#"{"bytes": 2, "pieces": 1}"#), "warm up");
    let before = rss(worker);
    let mut s = server.connect();
    let head =
        format!("POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: {GIB}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let piece = vec![b'u'; MIB as usize];
    let mut peak = before;
    for i in 0..1024 {
        s.write_all(&piece).expect("send the upload");
        if i % 64 == 0 {
            peak = peak.max(rss(worker));
        }
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    peak = peak.max(rss(worker));
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let counted = super::json(text.split("\r\n\r\n").nth(1).unwrap_or_default().as_bytes());
    assert_eq!(counted["bytes"], GIB);
    assert!(counted["pieces"].as_u64().unwrap() >= GIB / (64 * 1024), "read in 64 KiB pieces: {counted}");
    assert!(peak - before < 64 * MIB, "the worker grew from {} to {} MiB", before / MIB, peak / MIB);
}

#[test]
fn two_thousand_idle_asgi_websockets_cost_the_worker_under_32_kib_each() {
    let server = super::asgi_with(&[], "ws_echo:app").args(&["--worker-connections", "3000"]).start();
    let worker = server.wait_for_workers(1)[0];
    let handshake = b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let open = |n: usize| -> Vec<std::net::TcpStream> {
        let mut socks: Vec<_> = (0..n).map(|_| server.connect()).collect();
        socks.iter_mut().for_each(|s| s.write_all(handshake).unwrap());
        for s in &mut socks {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(s.read(&mut byte).unwrap(), 1, "the server closed during the handshake");
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
        }
        socks
    };
    // Warm up: the first WebSockets import what the bridge and asyncio import lazily.
    let warm = open(50);
    let before = rss(worker);
    let idle = open(2000);
    let grown = rss(worker).saturating_sub(before);
    assert!(grown < 2000 * 32 * 1024, "2000 idle WebSockets took {} KiB each", grown / 2000 / 1024);
    drop((warm, idle));
}
