//! Large bodies through `libasgi.so` with flat memory: a 1 GiB streamed response that the client
//! reads as it comes, and a 1 GiB upload the app reads message by message; the worker's resident
//! set stays within 64 MiB of where it started either way (the server's output queue holds back the
//! app's `send`, and a gathered body waits in a temporary file, not in memory).

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
