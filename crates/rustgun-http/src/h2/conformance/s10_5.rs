//! RFC 9113 §10.5 (denial-of-service considerations): not MUSTs h2spec checks, but the bounds a
//! server needs against known attacks — each answered by the exact frame that ends it.

use super::*;

#[test]
fn s10_5_continuation_flood_is_enhance_your_calm() {
    // CVE-2024-27316: a header block that never ends is cut off.
    let mut flood = Client::new().frame(kind::HEADERS, 0, 1, &[0x82]);
    for _ in 0..100 {
        flood = flood.frame(kind::CONTINUATION, 0, 1, &[0x40, 0x01, b'a', 0x01, b'b']);
    }
    assert_eq!(run(flood).goaway(), Some(ErrorCode::EnhanceYourCalm));
}

#[test]
fn s10_5_1_header_block_larger_than_max_header_list_size_is_enhance_your_calm() {
    let config = Config { max_header_list_size: 100, ..Config::default() };
    let out = run_with(config, Client::new().frame(kind::HEADERS, flag::END_HEADERS, 1, &[0x82; 101]));
    assert_eq!(out.goaway(), Some(ErrorCode::EnhanceYourCalm));
}

#[test]
fn s10_5_1_hpack_bomb_resets_the_stream_and_the_connection_goes_on() {
    // One 1000-byte entry, then 100 references to it: a 100 KB list from a 1 KB block
    // (static-table fields only, so no encoder's table needs to follow).
    let mut bomb = vec![0x82, 0x86, 0x84, 0x40, 0x01, b'x', 0x7f, 0xe9, 0x06];
    bomb.extend(std::iter::repeat_n(b'v', 1000));
    bomb.extend(std::iter::repeat_n(0xbe, 100));
    let both = flag::END_HEADERS | flag::END_STREAM;
    let client = Client::new().frame(kind::HEADERS, both, 1, &bomb).frame(
        kind::HEADERS,
        both,
        3,
        &[0x82, 0x86, 0x84, 0xbe],
    );
    let out = run(client);
    assert_eq!(out.rst(1), Some(ErrorCode::Protocol));
    // Stream 3 names the entry once: the table kept it.
    let Some(Event::Request { stream: 3, fields, .. }) = out.events.first() else {
        panic!("{:?}", out.events)
    };
    assert_eq!(fields[3].1.len(), 1000);
}

#[test]
fn s10_5_rapid_reset_is_enhance_your_calm_after_the_allowance() {
    // CVE-2023-44487: open a stream, reset it, again and again.
    let mut flood = Client::new();
    for i in 0..300u32 {
        flood = flood.post(2 * i + 1).rst(2 * i + 1, ErrorCode::Cancel as u32);
    }
    let out = run(flood);
    assert_eq!(out.goaway(), Some(ErrorCode::EnhanceYourCalm));
    let resets = out.events.iter().filter(|e| matches!(e, Event::Reset { .. })).count();
    assert_eq!(resets, 101, "the allowance, then the cut");
}

#[test]
fn s10_5_answered_streams_earn_their_cancellations() {
    // A client whose streams are answered may cancel as many as it was answered, and more.
    let mut client = Client::new();
    for i in 0..200u32 {
        client = client.get(2 * i + 1);
    }
    let mut out = run_with(Config { max_concurrent_streams: 1000, ..Config::default() }, client);
    for i in 0..200u32 {
        out.conn.respond(2 * i + 1, 204, &[], true);
    }
    out.send(|mut c| {
        for i in 200..450u32 {
            c = c.post(2 * i + 1).rst(2 * i + 1, ErrorCode::Cancel as u32);
        }
        c
    });
    assert_eq!(out.error, None, "250 < 100 + 200");
}

/// 20,000 PINGs in one go.
fn ping_flood() -> Client {
    let mut flood = Client::new();
    for i in 0..20_000u64 {
        flood = flood.ping(&i.to_be_bytes());
    }
    flood
}

#[test]
fn s10_5_ping_flood_that_never_reads_its_answers_is_enhance_your_calm() {
    let mut conn = Connection::new(Config::default());
    let mut events = Vec::new();
    let err = conn.receive(&ping_flood().bytes, &mut events).unwrap_err();
    assert_eq!(err.code, ErrorCode::EnhanceYourCalm);
    assert!(conn.output().len() <= super::super::conn::MAX_UNSENT + 64, "{}", conn.output().len());
}

#[test]
fn s10_5_a_client_that_reads_its_answers_may_ping_as_often_as_it_likes() {
    let mut conn = Connection::new(Config::default());
    let mut events = Vec::new();
    let mut pending = Vec::new();
    for chunk in ping_flood().bytes.chunks(17 * 1000) {
        pending.extend_from_slice(chunk);
        let used = conn.receive(&pending, &mut events).unwrap();
        pending.drain(..used);
        conn.output().clear();
    }
    assert!(pending.is_empty());
}

#[test]
fn s10_5_settings_flood_that_never_reads_its_answers_is_enhance_your_calm() {
    let mut flood = Client::new();
    for _ in 0..40_000 {
        flood = flood.settings(&[]);
    }
    let mut conn = Connection::new(Config::default());
    let err = conn.receive(&flood.bytes, &mut Vec::new()).unwrap_err();
    assert_eq!(err.code, ErrorCode::EnhanceYourCalm);
}
