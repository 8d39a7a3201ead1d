//! Unit tests of `Session` (and of `Deflater` through it), driven by a test-only client encoder.
//!
//! Header and negotiation tests live beside their code in `frame.rs` and `handshake.rs`.

use super::deflate::{INFLATER_BYTES, Inflater, TAIL};
use super::frame::{self, BINARY, CLOSE, CONTINUATION, FIN, PING, PONG, RSV1, RSV2, RSV3, TEXT};
use super::*;

const KEY: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];
const MAX: usize = 64 * 1024;

/// A masked client frame.
fn client(first: u8, payload: &[u8]) -> Vec<u8> {
    let (header, used) = frame::encode(first, payload.len(), Some(KEY));
    let mut wire = header[..used].to_vec();
    wire.extend_from_slice(payload);
    frame::apply_mask(&mut wire[used..], KEY, 0);
    wire
}

/// A message compressed as a client with no context takeover would (tail dropped).
fn deflated(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Deflater::new().compress(15, data, &mut out).unwrap();
    out
}

/// Inflates one whole message as a client would.
fn inflated(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut inflater = Inflater::new();
    inflater.inflate(data, &mut out, usize::MAX - 1).unwrap();
    inflater.finish(&mut out, usize::MAX - 1).unwrap();
    out
}

/// Splits the server's output into (first byte, payload), checking it is unmasked.
fn server_frames(mut out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        let (header, used) = frame::decode(out).expect("whole header");
        assert_eq!(header.mask, None, "server frames are unmasked");
        let end = used + usize::try_from(header.len).unwrap();
        frames.push((header.first, out[used..end].to_vec()));
        out = &out[end..];
    }
    frames
}

/// Deterministic, incompressible bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// What `receive` reported, with the message bytes or close reason copied out.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    Message(Kind, Vec<u8>),
    Ping,
    Pong,
    Close(u16, String),
    Error(u16),
}

/// Feeds `input` in the given pieces as a driver would, checking that the unconsumed input never
/// exceeds one header; returns what was reported and what the server wrote.
fn feed_pieces<'a>(session: &mut Session, pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Got>, Vec<u8>) {
    let (mut pending, mut got, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for piece in pieces {
        pending.extend_from_slice(piece);
        loop {
            match session.receive(&pending, &mut out) {
                Ok((used, event)) => {
                    pending.drain(..used);
                    let Some(event) = event else {
                        assert!(pending.len() < frame::MAX_HEADER, "{} bytes left unconsumed", pending.len());
                        break;
                    };
                    got.push(match event {
                        Event::Message(kind) => Got::Message(kind, session.message().to_vec()),
                        Event::Ping => Got::Ping,
                        Event::Pong => Got::Pong,
                        Event::Close(code) => Got::Close(code, session.close_reason().to_owned()),
                    });
                }
                Err(error) => {
                    assert_eq!(session.state(), State::Closed);
                    got.push(Got::Error(error.code));
                    return (got, out);
                }
            }
        }
    }
    (got, out)
}

fn feed(session: &mut Session, input: &[u8]) -> (Vec<Got>, Vec<u8>) {
    feed_pieces(session, [input])
}

fn plain() -> Session {
    Session::new(MAX, None)
}

fn deflating(client_no_context_takeover: bool) -> Session {
    Session::new(
        MAX,
        Some(DeflateParams { server_window_bits: 15, client_window_bits: 15, client_no_context_takeover }),
    )
}

/// Feeds one input to a fresh session and returns the single error code it must cause, checking
/// that the matching close frame went out.
fn error_of(mut session: Session, input: &[u8]) -> u16 {
    let (got, out) = feed(&mut session, input);
    let Some(Got::Error(code)) = got.last() else { panic!("no error: {got:?}") };
    let frames = server_frames(&out);
    assert_eq!(
        frames.last().map(|(first, payload)| (*first, payload[..2].to_vec())),
        Some((FIN | CLOSE, code.to_be_bytes().to_vec()))
    );
    *code
}

#[test]
fn a_masked_text_frame_is_a_message() {
    let (got, out) = feed(&mut plain(), &client(FIN | TEXT, b"Hello"));
    assert_eq!(got, [Got::Message(Kind::Text, b"Hello".to_vec())]);
    assert!(out.is_empty());
}

#[test]
fn header_violations_fail_with_1002() {
    let unmasked = [FIN | TEXT, 0];
    assert_eq!(error_of(plain(), &unmasked), close::PROTOCOL);
    for bad in [FIN | RSV2 | TEXT, FIN | RSV3 | BINARY, FIN | RSV1 | TEXT] {
        assert_eq!(error_of(plain(), &client(bad, b"x")), close::PROTOCOL, "{bad:#x}");
    }
    for opcode in (3..=7).chain(0xB..=0xF) {
        assert_eq!(error_of(plain(), &client(FIN | opcode, b"")), close::PROTOCOL, "opcode {opcode}");
    }
    // A 64-bit length with its top bit set.
    let mut huge = vec![FIN | BINARY, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
    huge.extend_from_slice(&KEY);
    assert_eq!(error_of(plain(), &huge), close::PROTOCOL);
}

#[test]
fn rsv1_only_on_the_first_frame_of_a_compressed_data_message() {
    let mut continued = client(RSV1 | TEXT, &deflated(b"ab"));
    continued.extend(client(FIN | RSV1 | CONTINUATION, b""));
    assert_eq!(error_of(deflating(false), &continued), close::PROTOCOL);
    for control in [PING, PONG, CLOSE] {
        assert_eq!(error_of(deflating(false), &client(FIN | RSV1 | control, b"")), close::PROTOCOL);
    }
}

#[test]
fn control_frames_must_be_short_and_whole() {
    assert_eq!(error_of(plain(), &client(FIN | PING, &[0; 126])), close::PROTOCOL);
    assert_eq!(error_of(plain(), &client(PING, b"")), close::PROTOCOL);
    let (got, out) = feed(&mut plain(), &client(FIN | PING, &[7; 125]));
    assert_eq!(got, [Got::Ping]);
    assert_eq!(server_frames(&out), [(FIN | PONG, vec![7; 125])]);
}

#[test]
fn fragments_reassemble_with_pings_between_and_a_character_split_across() {
    let euro = "€".as_bytes();
    let mut input = client(TEXT, &[b"Hi ", &euro[..1]].concat());
    input.extend(client(FIN | PING, b"p1"));
    input.extend(client(CONTINUATION, &euro[1..2]));
    input.extend(client(FIN | PONG, b"any payload"));
    input.extend(client(FIN | CONTINUATION, &[&euro[2..], b"!"].concat()));
    let (got, out) = feed(&mut plain(), &input);
    assert_eq!(got, [Got::Ping, Got::Pong, Got::Message(Kind::Text, "Hi €!".into())]);
    assert_eq!(server_frames(&out), [(FIN | PONG, b"p1".to_vec())]);
}

#[test]
fn fragmentation_order_is_enforced() {
    assert_eq!(error_of(plain(), &client(FIN | CONTINUATION, b"x")), close::PROTOCOL);
    let mut input = client(BINARY, b"a");
    input.extend(client(FIN | TEXT, b"b"));
    assert_eq!(error_of(plain(), &input), close::PROTOCOL);
}

#[test]
fn too_big_fails_at_the_header_before_the_payload_arrives() {
    let (header, used) = frame::encode(FIN | BINARY, MAX + 1, Some(KEY));
    let mut session = plain();
    let mut out = Vec::new();
    assert_eq!(session.receive(&header[..used], &mut out).unwrap_err().code, close::TOO_BIG);
    assert_eq!(session.held(), 0);
    // Across fragments: the second header already makes the message too long.
    let mut input = client(BINARY, &vec![1; MAX - 10]);
    input.extend_from_slice(&frame::encode(FIN | CONTINUATION, 11, Some(KEY)).0[..6]);
    assert_eq!(error_of(plain(), &input), close::TOO_BIG);
    // Exactly the limit is fine.
    let mut input = client(BINARY, &vec![1; MAX - 10]);
    input.extend(client(FIN | CONTINUATION, &[2; 10]));
    assert!(
        matches!(&feed(&mut plain(), &input).0[..], [Got::Message(Kind::Binary, data)] if data.len() == MAX)
    );
}

#[test]
fn text_fails_as_soon_as_it_cannot_be_utf8() {
    // Within a frame whose end has not arrived: F4 90 is beyond U+10FFFF.
    let wire = client(FIN | TEXT, &[b"ok", &[0xF4, 0x90][..], &[0x80; 20]].concat());
    let mut session = plain();
    let mut out = Vec::new();
    assert_eq!(session.receive(&wire[..6 + 4], &mut out).unwrap_err().code, close::INVALID_DATA);
    // In the first fragment, before the message ends; a surrogate; an overlong form.
    for bad in [&[0xFF][..], &[0xED, 0xA0], &[0xC0, 0x80], &[0xE0, 0x80]] {
        assert_eq!(error_of(plain(), &client(TEXT, bad)), close::INVALID_DATA, "{bad:x?}");
    }
    // A character cut by the message's end.
    assert_eq!(error_of(plain(), &client(FIN | TEXT, &"€".as_bytes()[..2])), close::INVALID_DATA);
    // Binary is not checked.
    assert_eq!(
        feed(&mut plain(), &client(FIN | BINARY, &[0xFF])).0,
        [Got::Message(Kind::Binary, vec![0xFF])]
    );
}

#[test]
fn close_frames_are_validated_and_echoed() {
    let (got, out) = feed(&mut plain(), &client(FIN | CLOSE, b""));
    assert_eq!(got, [Got::Close(close::NO_STATUS, String::new())]);
    assert_eq!(server_frames(&out), [(FIN | CLOSE, vec![])]);

    for code in [1000, 1001, 1003, 1007, 1010, 1011, 1012, 1014, 3000, 4999] {
        let mut session = plain();
        let (got, out) = feed(
            &mut session,
            &client(FIN | CLOSE, &[&u16::to_be_bytes(code)[..], "bye ü".as_bytes()].concat()),
        );
        assert_eq!(got, [Got::Close(code, "bye ü".into())]);
        assert_eq!(
            server_frames(&out),
            [(FIN | CLOSE, [&code.to_be_bytes()[..], "bye ü".as_bytes()].concat())]
        );
        assert_eq!(session.state(), State::Closed);
    }
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
        assert_eq!(error_of(plain(), &client(FIN | CLOSE, &code.to_be_bytes())), close::PROTOCOL, "{code}");
    }
    assert_eq!(error_of(plain(), &client(FIN | CLOSE, &[3])), close::PROTOCOL);
    assert_eq!(error_of(plain(), &client(FIN | CLOSE, &[0x03, 0xE8, 0xFF])), close::INVALID_DATA);
}

#[test]
fn after_the_servers_close_frames_are_checked_but_not_reported() {
    let mut session = plain();
    let mut sent = Vec::new();
    session.close(close::GOING_AWAY, "restart", &mut sent);
    assert_eq!(session.state(), State::CloseSent);
    assert_eq!(server_frames(&sent), [(FIN | CLOSE, [&1001u16.to_be_bytes()[..], b"restart"].concat())]);
    assert_eq!(session.send(Kind::Text, b"late", &mut Deflater::new(), &mut sent), Err(State::CloseSent));

    let mut input = client(FIN | TEXT, b"ignored");
    input.extend(client(FIN | PING, b""));
    input.extend(client(FIN | CLOSE, &1000u16.to_be_bytes()));
    let (got, out) = feed(&mut session, &input);
    assert_eq!(got, [Got::Close(1000, String::new())]);
    assert!(out.is_empty(), "no echo and no pong after our close");
    assert_eq!(session.state(), State::Closed);
    // Closed: everything is consumed and ignored.
    let mut out = Vec::new();
    assert_eq!(session.receive(b"\x00garbage", &mut out), Ok((8, None)));
    assert!(out.is_empty());

    // Invalid data still fails the connection, without a second close frame.
    let mut session = plain();
    session.close(close::NORMAL, "", &mut Vec::new());
    let (got, out) = feed(&mut session, &client(FIN | TEXT, &[0xFF]));
    assert_eq!((got, out), (vec![Got::Error(close::INVALID_DATA)], vec![]));
}

#[test]
fn server_close_ping_and_send_frames() {
    let mut session = plain();
    let mut out = Vec::new();
    session.ping(&[1; 200], &mut out);
    session.send(Kind::Binary, &[2; 126], &mut Deflater::new(), &mut out).unwrap();
    session.send(Kind::Text, &[b'a'; 70000], &mut Deflater::new(), &mut out).unwrap();
    session.close(close::NORMAL, &"é".repeat(100), &mut out);
    session.close(close::POLICY, "again", &mut out);
    let frames = server_frames(&out);
    assert_eq!(frames[0], (FIN | PING, vec![1; 125]));
    assert_eq!(frames[1], (FIN | BINARY, vec![2; 126]));
    assert_eq!(frames[2], (FIN | TEXT, vec![b'a'; 70000]));
    // The reason is cut at 123 bytes, on a character boundary: 61 two-byte characters.
    assert_eq!(frames[3], (FIN | CLOSE, [&1000u16.to_be_bytes()[..], "é".repeat(61).as_bytes()].concat()));
    assert_eq!(frames.len(), 4);
    // A code that may not be sent gives an empty close frame.
    let mut out = Vec::new();
    plain().close(close::ABNORMAL, "x", &mut out);
    assert_eq!(server_frames(&out), [(FIN | CLOSE, vec![])]);
}

#[test]
fn compressed_messages_round_trip_whole_and_fragmented() {
    let text = "permessage-deflate ".repeat(50);
    let mut input = client(FIN | RSV1 | TEXT, &deflated(text.as_bytes()));
    let compressed = deflated(&noise(5000));
    let (a, rest) = compressed.split_at(1000);
    let (b, c) = rest.split_at(3000);
    input.extend(client(RSV1 | BINARY, a));
    input.extend(client(FIN | PING, b""));
    input.extend(client(CONTINUATION, b""));
    input.extend(client(CONTINUATION, b));
    input.extend(client(FIN | CONTINUATION, c));
    // An empty compressed message (RFC 7692 §7.2.3.6) and an uncompressed one.
    input.extend(client(FIN | RSV1 | TEXT, &[0x00]));
    input.extend(client(FIN | TEXT, b"plain"));
    let mut session = deflating(true);
    let (got, _) = feed(&mut session, &input);
    assert_eq!(
        got,
        [
            Got::Message(Kind::Text, text.into_bytes()),
            Got::Ping,
            Got::Message(Kind::Binary, noise(5000)),
            Got::Message(Kind::Text, vec![]),
            Got::Message(Kind::Text, b"plain".to_vec()),
        ]
    );
    // client_no_context_takeover: the inflater went with the message.
    assert!(session.held() < INFLATER_BYTES, "{}", session.held());
}

#[test]
fn context_takeover_keeps_the_inflater_between_messages() {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compress = Compress::new(Compression::default(), false);
    let mut input = Vec::new();
    for _ in 0..3 {
        let mut payload = Vec::with_capacity(1000);
        compress
            .compress_vec(&[b"hello hello hello ".as_slice(); 20].concat(), &mut payload, FlushCompress::Sync)
            .unwrap();
        assert!(payload.ends_with(&TAIL));
        input.extend(client(FIN | RSV1 | TEXT, &payload[..payload.len() - 4]));
    }
    let mut session = deflating(false);
    let (got, _) = feed(&mut session, &input);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|g| *g == Got::Message(Kind::Text, b"hello hello hello ".repeat(20))));
    assert!(session.held() >= INFLATER_BYTES);
}

#[test]
fn a_client_stream_ended_with_bfinal_still_decodes() {
    use flate2::{Compress, Compression, FlushCompress};
    let mut input = Vec::new();
    for word in ["first ", "second "] {
        let mut compress = Compress::new(Compression::default(), false);
        let mut payload = Vec::with_capacity(1000);
        compress.compress_vec(word.repeat(30).as_bytes(), &mut payload, FlushCompress::Finish).unwrap();
        input.extend(client(FIN | RSV1 | TEXT, &payload));
    }
    let mut session = deflating(false);
    assert_eq!(session.held(), 0, "no inflater before the first compressed message");
    let (got, _) = feed(&mut session, &input);
    assert_eq!(
        got,
        [
            Got::Message(Kind::Text, "first ".repeat(30).into()),
            Got::Message(Kind::Text, "second ".repeat(30).into())
        ]
    );
}

#[test]
fn protocol_errors_are_errors() {
    let error: Box<dyn std::error::Error> = Box::new(ProtocolError { code: 1002, reason: "reserved opcode" });
    assert_eq!(error.to_string(), "websocket protocol error 1002: reserved opcode");
}

#[test]
fn corrupt_compressed_data_fails_with_1007() {
    assert_eq!(error_of(deflating(false), &client(FIN | RSV1 | BINARY, &[0xFF; 10])), close::INVALID_DATA);
    // Valid deflate, invalid UTF-8, caught as soon as it is inflated.
    assert_eq!(
        error_of(deflating(false), &client(RSV1 | TEXT, &deflated(&[0xFF; 100]))),
        close::INVALID_DATA
    );
}

#[test]
fn a_compression_bomb_fails_with_1009_within_the_limit() {
    let bomb = deflated(&vec![0; 16 * 1024 * 1024]);
    assert!(bomb.len() < 20_000, "{}", bomb.len());
    let wire = client(FIN | RSV1 | BINARY, &bomb);
    let mut session = deflating(false);
    let mut out = Vec::new();
    let mut used = 0;
    let error = loop {
        let end = (used + 100).min(wire.len());
        match session.receive(&wire[used..end], &mut out) {
            Ok((n, None)) => used += n,
            Ok((_, Some(event))) => panic!("{event:?}"),
            Err(error) => break error,
        }
        assert!(session.held() <= MAX + 1 + INFLATER_BYTES, "{}", session.held());
    };
    assert_eq!(error.code, close::TOO_BIG);
    assert!(session.held() <= MAX + 1);
    assert_eq!(server_frames(&out)[0].1[..2], 1009u16.to_be_bytes());
}

#[test]
fn the_server_compresses_long_messages_only_when_it_pays() {
    for window in [8, 9, 12, 15] {
        let params = DeflateParams {
            server_window_bits: window,
            client_window_bits: 15,
            client_no_context_takeover: false,
        };
        let mut session = Session::new(MAX, Some(params));
        let mut deflater = Deflater::new();
        let mut out = Vec::new();
        let long = "a fairly compressible message, ".repeat(1000);
        session.send(Kind::Text, long.as_bytes(), &mut deflater, &mut out).unwrap();
        session.send(Kind::Text, b"short", &mut deflater, &mut out).unwrap();
        session.send(Kind::Binary, &noise(1000), &mut deflater, &mut out).unwrap();
        session.send(Kind::Text, long.as_bytes(), &mut deflater, &mut out).unwrap();
        let frames = server_frames(&out);
        assert_eq!(frames[0].0, FIN | RSV1 | TEXT);
        assert!(frames[0].1.len() < long.len() / 10, "window {window}: {}", frames[0].1.len());
        assert_eq!(inflated(&frames[0].1), long.as_bytes());
        assert_eq!(frames[1], (FIN | TEXT, b"short".to_vec()));
        assert_eq!(frames[2], (FIN | BINARY, noise(1000)));
        // The shared deflater was reset: the second copy compresses alone, to the same bytes.
        assert_eq!(frames[3], (FIN | RSV1 | TEXT, frames[0].1.clone()));
    }
}

#[test]
fn every_split_of_the_input_gives_the_same_events() {
    let euro = "€".as_bytes();
    let mut input = client(TEXT, &[b"x", &euro[..2]].concat());
    input.extend(client(FIN | PING, b"ping"));
    input.extend(client(FIN | CONTINUATION, &euro[2..]));
    input.extend(client(FIN | BINARY, &noise(300)));
    input.extend(client(FIN | RSV1 | TEXT, &deflated("zip ".repeat(100).as_bytes())));
    input.extend(client(FIN | PONG, b""));
    input.extend(client(FIN | CLOSE, &[&1000u16.to_be_bytes()[..], b"done"].concat()));
    let (whole, whole_out) = feed(&mut deflating(true), &input);
    assert_eq!(whole.len(), 6);
    assert_eq!(whole[5], Got::Close(1000, "done".into()));
    assert_eq!(feed_pieces(&mut deflating(true), input.chunks(1)), (whole.clone(), whole_out.clone()));
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(
            feed_pieces(&mut deflating(true), [a, b]),
            (whole.clone(), whole_out.clone()),
            "cut at {cut}"
        );
    }
}

#[test]
fn message_buffers_are_reused_or_released() {
    let mut session = plain();
    let mut out = Vec::new();
    let wire = client(FIN | BINARY, &[5; 1000]);
    assert_eq!(session.receive(&wire, &mut out), Ok((wire.len(), Some(Event::Message(Kind::Binary)))));
    assert_eq!(session.message(), [5; 1000]);
    let taken = session.take_message();
    assert_eq!(taken, vec![5; 1000]);
    let capacity = taken.capacity();
    session.restore_message(taken);
    assert_eq!(session.held(), capacity);
    assert_eq!(session.message(), b"");

    // A buffer above 64 KiB is released by the next receive, or on restore.
    let mut session = Session::new(1 << 20, None);
    let wire = client(FIN | BINARY, &[6; 100_000]);
    assert_eq!(session.receive(&wire, &mut out), Ok((wire.len(), Some(Event::Message(Kind::Binary)))));
    assert!(session.held() >= 100_000);
    assert_eq!(feed(&mut session, &client(FIN | PONG, b"")).0, [Got::Pong]);
    assert_eq!(session.held(), 0);
    let wire = client(FIN | BINARY, &[7; 100_000]);
    assert_eq!(session.receive(&wire, &mut out), Ok((wire.len(), Some(Event::Message(Kind::Binary)))));
    let taken = session.take_message();
    assert_eq!(session.held(), 0);
    session.restore_message(taken);
    assert_eq!(session.held(), 0);
}

#[test]
fn sendable_codes() {
    let sendable: Vec<u16> = (0..=u16::MAX).filter(|&code| sendable_code(code)).collect();
    let expected: Vec<u16> = (1000..=1003).chain(1007..=1014).chain(3000..=4999).collect();
    assert_eq!(sendable, expected);
}

#[test]
fn an_idle_session_is_small() {
    // 10,000 idle connections per worker: no buffers, no inflater, a few hundred bytes inline.
    let session = deflating(false);
    assert_eq!(session.held(), 0);
    assert!(std::mem::size_of::<Session>() <= 256, "{}", std::mem::size_of::<Session>());
}
