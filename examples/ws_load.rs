//! `ws_load`: the WebSocket echo load of `make bench`. It opens N WebSocket connections to one echo
//! route, and on each, for the given time, sends one masked text message and waits for its echo
//! before sending the next (one message in flight per connection, as wrk keeps one request in
//! flight per connection). It prints one line of JSON: messages echoed, seconds, errors, and the
//! median and 99th percentile round trip.
//!
//!     ws_load HOST:PORT PATH CONNECTIONS SECONDS MESSAGE_BYTES
//!
//! Standard library only: one blocking thread per connection, every socket with a read timeout, so
//! a server that stops answering ends the run with errors rather than hanging it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How long a connection waits for an echo (or the handshake's answer) before it counts an error.
const PATIENCE: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, conns, seconds, size] = args.as_slice() else {
        eprintln!("usage: ws_load HOST:PORT PATH CONNECTIONS SECONDS MESSAGE_BYTES");
        std::process::exit(2);
    };
    let conns: usize = conns.parse().expect("CONNECTIONS is a number");
    let run = Duration::from_secs_f64(seconds.parse().expect("SECONDS is a number"));
    let size: usize = size.parse().expect("MESSAGE_BYTES is a number");

    let barrier = Arc::new(Barrier::new(conns + 1));
    let workers: Vec<_> = (0..conns)
        .map(|i| {
            let (addr, path, barrier) = (addr.clone(), path.clone(), barrier.clone());
            std::thread::spawn(move || {
                let conn = open(&addr, &path);
                barrier.wait();
                match conn {
                    Ok(stream) => echo_for(stream, run, &frame(size, i as u32), size),
                    Err(_) => (Vec::new(), 1),
                }
            })
        })
        .collect();
    barrier.wait();
    let began = Instant::now();
    let (mut rtts, mut errors) = (Vec::new(), 0u64);
    for worker in workers {
        let (mut r, e) = worker.join().expect("a load thread");
        rtts.append(&mut r);
        errors += e;
    }
    let secs = began.elapsed().as_secs_f64();
    rtts.sort_unstable();
    let at = |q: f64| rtts.get(((rtts.len() as f64 * q) as usize).min(rtts.len().saturating_sub(1)));
    let ms = |v: Option<&u32>| v.map_or("null".to_string(), |us| format!("{:.3}", f64::from(*us) / 1000.0));
    println!(
        "{{\"messages\": {}, \"seconds\": {secs:.3}, \"errors\": {errors}, \"p50_ms\": {}, \"p99_ms\": {}}}",
        rtts.len(),
        ms(at(0.5)),
        ms(at(0.99))
    );
}

/// Connects and completes the opening handshake.
fn open(addr: &str, path: &str) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(io::Error::other(String::from_utf8_lossy(&head).into_owned()));
    }
    Ok(stream)
}

/// One masked text frame of `size` bytes (the mask varies by connection; the server must unmask).
fn frame(size: usize, seed: u32) -> Vec<u8> {
    let key = (0x9E37_79B9u32.wrapping_mul(seed + 1)).to_be_bytes();
    let mut out = vec![0x81];
    match size {
        0..=125 => out.push(0x80 | size as u8),
        126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend((0..size).map(|i| b'a' ^ key[i % 4]));
    out
}

/// Sends `message` and reads its echo until `run` has passed: each round trip in µs, and errors.
fn echo_for(mut stream: TcpStream, run: Duration, message: &[u8], size: usize) -> (Vec<u32>, u64) {
    let started = Instant::now();
    let mut rtts = Vec::new();
    let mut payload = vec![0u8; size];
    while started.elapsed() < run {
        let sent = Instant::now();
        if stream.write_all(message).and_then(|()| read_echo(&mut stream, &mut payload)).is_err() {
            return (rtts, 1);
        }
        rtts.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    (rtts, 0)
}

/// Reads one unmasked server frame carrying exactly `payload.len()` bytes.
fn read_echo(stream: &mut TcpStream, payload: &mut [u8]) -> io::Result<()> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head)?;
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b)?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    if head[0] != 0x81 || len != payload.len() as u64 {
        return Err(io::Error::other(format!("unexpected frame {:#x} of {len} bytes", head[0])));
    }
    stream.read_exact(payload)
}
