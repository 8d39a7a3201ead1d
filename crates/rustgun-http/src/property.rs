//! The property test of the protocol core: any valid request, pipelined with others and split at any
//! byte boundaries, is parsed exactly as it was generated, whatever the segmentation.
//!
//! Requests come from a small seeded PRNG (a failure names its seed, so it replays exactly): varied
//! methods and the four target forms, header sets with optional whitespace and obs-text, bodies
//! framed by Content-Length (sometimes sent twice) or chunked with extensions and trailers, HTTP/1.0
//! and HTTP/1.1. Each pipeline goes through [`Replay`] (a socket-less driver of the workers'
//! `conn::Conn`) whole, cut at random points, byte by byte, and for small pipelines cut once at every
//! offset, with several app read sizes.

// Trailer names the decoder refuses: generated trailer names avoid all of them.
use super::Version;
use super::body::FORBIDDEN_TRAILERS;
use super::parse::{BodyFraming, Limits};
use super::replay::{Event, Pending, replay_split};

/// SplitMix64: tiny, seedable, good enough to spread test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn string_of(&mut self, alphabet: &[u8], lo: usize, hi: usize) -> Vec<u8> {
        let len = self.range(lo, hi);
        (0..len).map(|_| *self.pick(alphabet)).collect()
    }
}

const TCHAR: &[u8] = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// pchar (RFC 3986 §3.3) without pct-encoded, which is added separately.
const PCHAR: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@";
const REG_NAME: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-.";
/// Names whose meaning would change the framing or persistence the generator decides.
const RESERVED: &[&[u8]] = &[b"host", b"content-length", b"transfer-encoding", b"connection", b"expect"];

/// A generated request: its bytes and what the parser must make of them.
struct Generated {
    wire: Vec<u8>,
    head: Event,
    body: Vec<u8>,
}

fn token(rng: &mut Rng, avoid: &[&[u8]]) -> Vec<u8> {
    loop {
        let t = rng.string_of(TCHAR, 1, 12);
        if !avoid.iter().any(|a| a.eq_ignore_ascii_case(&t)) {
            return t;
        }
    }
}

fn path(rng: &mut Rng) -> Vec<u8> {
    let mut p = Vec::new();
    for _ in 0..rng.range(1, 4) {
        p.push(b'/');
        p.extend(rng.string_of(PCHAR, 0, 8));
        if rng.chance(20) {
            let pct: [&[u8]; 4] = [b"%20", b"%2F", b"%e9", b"%C3%A9"];
            let chosen = *rng.pick(&pct);
            p.extend_from_slice(chosen);
        }
    }
    if rng.chance(40) {
        p.push(b'?');
        p.extend(rng.string_of(b"abc=&/?%20:@", 0, 12));
    }
    p
}

fn host(rng: &mut Rng) -> Vec<u8> {
    let mut h = match rng.below(4) {
        0 => b"[::1]".to_vec(),
        1 => b"127.0.0.1".to_vec(),
        _ => rng.string_of(REG_NAME, 1, 16),
    };
    if rng.chance(50) {
        h.extend(format!(":{}", rng.below(65536)).bytes());
    }
    h
}

/// A field value without leading or trailing whitespace: VCHAR, obs-text, inner SP and HTAB.
fn field_value(rng: &mut Rng) -> Vec<u8> {
    let mut v: Vec<u8> = (0..rng.range(0, 24))
        .map(|_| match rng.below(10) {
            0 => b' ',
            1 => b'\t',
            2 => rng.range(0x80, 0xff) as u8,
            _ => rng.range(0x21, 0x7e) as u8,
        })
        .collect();
    while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
        v.pop();
    }
    while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        v.remove(0);
    }
    v
}

fn ows(rng: &mut Rng) -> Vec<u8> {
    let most = if rng.chance(70) { 1 } else { 3 };
    rng.string_of(b" \t", 0, most)
}

/// `name:OWS value OWS CRLF`, recording `(name, value)` unless `--header-map drop` (the default)
/// drops it for the `_` in its name.
fn push_field(
    rng: &mut Rng,
    wire: &mut Vec<u8>,
    fields: &mut Vec<(Vec<u8>, Vec<u8>)>,
    name: &[u8],
    value: &[u8],
) {
    wire.extend_from_slice(name);
    wire.push(b':');
    wire.extend(ows(rng));
    wire.extend_from_slice(value);
    wire.extend(ows(rng));
    wire.extend_from_slice(b"\r\n");
    if !name.contains(&b'_') {
        fields.push((name.to_vec(), value.to_vec()));
    }
}

/// A chunk extension: `BWS ; BWS name [BWS = BWS (token / quoted-string)]` (RFC 9112 §7.1.1).
fn chunk_ext(rng: &mut Rng) -> Vec<u8> {
    let mut e = ows(rng);
    e.push(b';');
    e.extend(ows(rng));
    e.extend(token(rng, &[]));
    if rng.chance(70) {
        e.extend(ows(rng));
        e.push(b'=');
        e.extend(ows(rng));
        if rng.chance(50) {
            e.extend(token(rng, &[]));
        } else {
            e.push(b'"');
            for _ in 0..rng.range(0, 8) {
                match rng.below(6) {
                    0 => e.extend_from_slice(b"\\\""),
                    1 => e.push(b';'),
                    2 => e.push(b' '),
                    _ => e.push(rng.range(0x23, 0x5b) as u8),
                }
            }
            e.push(b'"');
        }
    }
    e
}

fn chunk_size_line(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut line = vec![b'0'; rng.range(0, 2)];
    line.extend(if rng.chance(50) { format!("{size:x}") } else { format!("{size:X}") }.bytes());
    for _ in 0..rng.range(0, 2) {
        line.extend(chunk_ext(rng));
    }
    line.extend_from_slice(b"\r\n");
    line
}

fn body_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        0 => 0,
        1 => rng.range(1000, 5000),
        _ => rng.range(1, 64),
    };
    // Any byte: bodies that look like CRLFs, chunk sizes or requests must stay bodies.
    (0..len).map(|_| *rng.pick(b"\r\n0123456789abcdefGET /HTTP\x00\xff")).collect()
}

/// One valid request; `persist` says it must keep the connection open (it is not the last).
fn request(rng: &mut Rng, persist: bool) -> Generated {
    let version = if rng.chance(85) { Version::Http11 } else { Version::Http10 };
    let methods: [&[u8]; 11] = [
        b"GET",
        b"POST",
        b"PUT",
        b"DELETE",
        b"PATCH",
        b"HEAD",
        b"OPTIONS",
        b"CONNECT",
        b"PROPFIND",
        b"get",
        b"X-Custom_1!",
    ];
    let method = rng.pick(&methods).to_vec();
    let target = match (&method[..], rng.below(10)) {
        (b"CONNECT", _) => {
            format!("{}:{}", String::from_utf8(rng.string_of(REG_NAME, 1, 12)).unwrap(), rng.below(65536))
                .into_bytes()
        }
        (b"OPTIONS", 0..=3) => b"*".to_vec(),
        (_, 0..=2) => {
            let mut t = b"http://".to_vec();
            t.extend(host(rng));
            if rng.chance(70) {
                t.extend(path(rng));
            }
            t
        }
        _ => path(rng),
    };

    let mut wire = Vec::new();
    if rng.chance(10) {
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(&method);
    wire.push(b' ');
    wire.extend_from_slice(&target);
    wire.push(b' ');
    wire.extend_from_slice(version.as_bytes());
    wire.extend_from_slice(b"\r\n");

    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // Fields in random order: Host, the framing fields, Connection and others.
    let mut specials: Vec<u8> = Vec::new();
    if version == Version::Http11 || rng.chance(50) {
        specials.push(b'H');
    }
    let body = if method != b"CONNECT" && rng.chance(60) { body_bytes(rng) } else { Vec::new() };
    let chunked = version == Version::Http11 && rng.chance(50) && (!body.is_empty() || rng.chance(30));
    if chunked {
        specials.push(b'T');
    } else if !body.is_empty() || rng.chance(20) {
        specials.push(b'L');
        if rng.chance(20) {
            specials.push(b'L');
        }
    }
    let keep_alive = match version {
        Version::Http10 => persist || rng.chance(30),
        // Only HTTP/1.x heads are generated.
        Version::Http11 | Version::Http2 => persist || rng.chance(80),
    };
    match (version, keep_alive) {
        (Version::Http10, true) | (Version::Http11, false) => specials.push(b'C'),
        _ if rng.chance(20) => specials.push(b'C'),
        _ => {}
    }
    let others = rng.range(0, 6);
    specials.extend(std::iter::repeat_n(b'X', others));
    for i in (1..specials.len()).rev() {
        specials.swap(i, rng.below(i + 1));
    }
    for kind in specials {
        match kind {
            b'H' => {
                let (name, value) = (rng_case(rng, b"Host"), host(rng));
                push_field(rng, &mut wire, &mut fields, &name, &value);
            }
            b'L' => {
                let name = rng_case(rng, b"Content-Length");
                push_field(rng, &mut wire, &mut fields, &name, body.len().to_string().as_bytes());
            }
            b'T' => {
                let name = rng_case(rng, b"Transfer-Encoding");
                let value = rng_case(rng, b"chunked");
                push_field(rng, &mut wire, &mut fields, &name, &value);
            }
            b'C' => {
                let value: &[u8] = match (version, keep_alive) {
                    (Version::Http10, true) => b"keep-alive",
                    (_, false) => b"close",
                    (Version::Http11 | Version::Http2, true) => {
                        [&b"keep-alive"[..], b"upgrade", b"x-token"][rng.below(3)]
                    }
                };
                let name = rng_case(rng, b"Connection");
                push_field(rng, &mut wire, &mut fields, &name, value);
            }
            _ => {
                let name = token(rng, RESERVED);
                let value = field_value(rng);
                push_field(rng, &mut wire, &mut fields, &name, &value);
            }
        }
    }
    wire.extend_from_slice(b"\r\n");

    let framing = if chunked {
        let mut rest = &body[..];
        while !rest.is_empty() {
            let most = if rng.chance(20) { 4096 } else { 40 };
            let size = rng.range(1, rest.len().min(most));
            wire.extend(chunk_size_line(rng, size));
            wire.extend_from_slice(&rest[..size]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[size..];
        }
        wire.extend(chunk_size_line(rng, 0));
        for _ in 0..rng.range(0, 3) {
            let name = token(rng, FORBIDDEN_TRAILERS);
            let mut value = ows(rng);
            value.extend(field_value(rng));
            wire.extend_from_slice(&name);
            wire.push(b':');
            wire.extend(value);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        BodyFraming::Chunked
    } else {
        wire.extend_from_slice(&body);
        if body.is_empty() { BodyFraming::Empty } else { BodyFraming::Length(body.len() as u64) }
    };
    let head = Event::Head { method, target, version, fields, framing, keep_alive };
    Generated { wire, head, body }
}

/// `word` with each letter's case flipped at random (field names and `chunked` are case-insensitive).
fn rng_case(rng: &mut Rng, word: &[u8]) -> Vec<u8> {
    word.iter()
        .map(|&b| if rng.chance(20) { b ^ (0x20 * u8::from(b.is_ascii_alphabetic())) } else { b })
        .collect()
}

/// A pipeline of 1–4 requests, its bytes and the events a driver must report for it.
fn pipeline(rng: &mut Rng) -> (Vec<u8>, Vec<Event>, Pending) {
    let count = rng.range(1, 4);
    let mut wire = Vec::new();
    let mut events = Vec::new();
    let mut pending = Pending::Nothing;
    for i in 0..count {
        let last = i + 1 == count;
        let r = request(rng, !last);
        if let Event::Head { keep_alive: false, .. } = r.head {
            pending = Pending::Closed;
        }
        wire.extend(r.wire);
        events.push(r.head);
        events.push(Event::Body(r.body));
    }
    (wire, events, pending)
}

fn check(seed: u64, how: &str, wire: &[u8], want: &(Vec<Event>, Pending), got: (Vec<Event>, Pending)) {
    if got != *want {
        let at = want.0.iter().zip(&got.0).position(|(a, b)| a != b).unwrap_or(want.0.len().min(got.0.len()));
        panic!(
            "seed {seed}, {how}: event {at} differs\n  want {:?}\n  got  {:?}\n  ending want {:?} got {:?}\nwire: {:?}",
            want.0.get(at),
            got.0.get(at),
            want.1,
            got.1,
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn any_valid_pipeline_parses_identically_at_any_split() {
    let limits = Limits::default();
    let cases: u64 =
        std::env::var("RUSTGUN_PROPERTY_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1500);
    let mut total_bytes = 0usize;
    let mut split_runs = 0usize;
    for seed in 0..cases {
        let mut rng = Rng(seed);
        let (wire, events, pending) = pipeline(&mut rng);
        let want = (events, pending);
        total_bytes += wire.len();
        for read_size in [1usize, 7, 64, 16 * 1024] {
            check(
                seed,
                &format!("whole, reads of {read_size}"),
                &wire,
                &want,
                replay_split(&wire, &[], &limits, 0, read_size),
            );
            for _ in 0..4 {
                let mut cuts: Vec<usize> = (0..rng.range(1, 8)).map(|_| rng.below(wire.len() + 1)).collect();
                cuts.sort_unstable();
                let got = replay_split(&wire, &cuts, &limits, 0, read_size);
                check(seed, &format!("cut at {cuts:?}, reads of {read_size}"), &wire, &want, got);
                split_runs += 1;
            }
        }
        if wire.len() <= 1024 {
            let every: Vec<usize> = (1..wire.len()).collect();
            check(seed, "byte by byte", &wire, &want, replay_split(&wire, &every, &limits, 0, 3));
            split_runs += 1;
        }
        if wire.len() <= 256 {
            for cut in 0..=wire.len() {
                check(
                    seed,
                    &format!("cut at {cut}"),
                    &wire,
                    &want,
                    replay_split(&wire, &[cut], &limits, 0, 16 * 1024),
                );
                split_runs += 1;
            }
        }
    }
    // The generator must produce what it claims: enough traffic, of every kind, to mean something.
    assert!(total_bytes > 200 * cases as usize, "{total_bytes} bytes over {cases} pipelines");
    assert!(split_runs > 20 * cases as usize, "{split_runs} split runs");
}

#[test]
fn the_generator_covers_every_framing_version_and_target_form() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let mut rng = Rng(seed);
        for event in pipeline(&mut rng).1 {
            if let Event::Head { method, target, version, framing, fields, .. } = event {
                seen.insert(format!("{version:?}"));
                seen.insert(match framing {
                    BodyFraming::Empty => "empty".to_string(),
                    BodyFraming::Length(_) => "length".to_string(),
                    BodyFraming::Chunked => "chunked".to_string(),
                });
                seen.insert(match target[0] {
                    b'/' => "origin".to_string(),
                    b'*' => "asterisk".to_string(),
                    b'h' if target.starts_with(b"http://") => "absolute".to_string(),
                    _ if method == b"CONNECT" => "authority".to_string(),
                    _ => format!("unexpected target {target:?}"),
                });
                let cls = fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(b"content-length")).count();
                if cls > 1 {
                    seen.insert("duplicate Content-Length".to_string());
                }
                if fields.iter().any(|(_, v)| v.iter().any(|&b| b >= 0x80)) {
                    seen.insert("obs-text".to_string());
                }
            }
        }
    }
    let want = [
        "Http10",
        "Http11",
        "empty",
        "length",
        "chunked",
        "origin",
        "asterisk",
        "absolute",
        "authority",
        "duplicate Content-Length",
        "obs-text",
    ];
    let want: std::collections::BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    assert_eq!(seen, want);
}
