//! Criterion bench of the sans-I/O protocol core: request heads parsed per second for a small GET and
//! a 20-header browser request, and a chunked body decoded. Run with `make bench-protocol`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rustgun::http::body::Decoder;
use rustgun::http::parse::{BodyFraming, Limits, RequestHead, parse_head};
use std::hint::black_box;

const SMALL_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost:8000\r\n\r\n";

const BROWSER: &[u8] = b"GET /static/app/main.js?v=1234 HTTP/1.1\r\n\
Host: www.example.com\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0\r\n\
sec-ch-ua: \"Chromium\";v=\"128\", \"Not;A=Brand\";v=\"24\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://www.example.com/index.html\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en;q=0.9,de;q=0.8\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; lang=en\r\n\
If-None-Match: \"5f1a-17c0b0b0b0b0\"\r\n\
If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
Priority: u=0, i\r\n\r\n";

fn heads(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse_head");
    for (name, req) in [("small_get", SMALL_GET), ("browser_20_headers", BROWSER)] {
        let mut head = RequestHead::default();
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| parse_head(black_box(req), &limits, &mut head).unwrap().unwrap())
        });
    }
    group.finish();
}

fn chunked(c: &mut Criterion) {
    let mut wire = Vec::new();
    for _ in 0..64 {
        wire.extend_from_slice(b"400\r\n");
        wire.extend_from_slice(&[b'x'; 0x400]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let mut group = c.benchmark_group("chunked");
    group.throughput(Throughput::Bytes(64 * 1024));
    group.bench_function("decode_64k", |b| {
        b.iter(|| {
            let mut dec = Decoder::new(BodyFraming::Chunked, 0).unwrap();
            let mut rest = black_box(&wire[..]);
            let mut total = 0;
            while !dec.is_done() {
                let step = dec.decode(rest).unwrap();
                total += step.data.len();
                rest = &rest[step.consumed..];
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, heads, chunked);
criterion_main!(benches);
