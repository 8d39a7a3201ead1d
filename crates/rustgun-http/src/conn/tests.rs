//! Every transition of [`Conn`], and every request of a small corpus split at every byte.

use super::*;
use crate::replay::{Event, Pending, Replay, replay_split};

const DATE: &[u8] = b"Thu, 03 Dec 2026 12:00:00 GMT";

/// A connection with one head received from `wire` (which must hold it whole).
fn with_head(wire: &[u8]) -> (Conn, RequestHead, usize) {
    let mut conn = Conn::default();
    let mut head = RequestHead::default();
    let n = conn.receive_head(wire, &Limits::default(), 0, &mut head).expect("valid").expect("complete");
    (conn, head, n)
}

/// Records a response of `status` with `headers` and begins it: the bytes written.
fn begin(conn: &mut Conn, status: u32, headers: &[(&[u8], &[u8])], closing: bool) -> Vec<u8> {
    let mut resp = ResponseHead::default();
    resp.set(status, b"", headers.iter().map(|&(n, v)| (n, v))).expect("valid head");
    let mut out = Vec::new();
    conn.begin_response(&mut resp, closing, DATE, &mut out).expect("a final status");
    out
}

fn says_close(out: &[u8]) -> bool {
    out.windows(19).any(|w| w == b"Connection: close\r\n")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn a_silent_connection_waits_idle_and_expires_quietly() {
    let mut conn = Conn::default();
    assert_eq!(conn.waiting_for(false), Wait::Idle);
    let mut head = RequestHead::default();
    assert_eq!(conn.receive_head(b"", &Limits::default(), 0, &mut head), Ok(None));
    assert_eq!(conn.waiting_for(false), Wait::Idle);
    assert_eq!(conn.expire(false), Expiry::Quiet);
    assert_eq!(conn.waiting_for(false), Wait::Closed);
}

#[test]
fn part_of_a_head_waits_for_the_rest_and_expires_with_408() {
    let mut conn = Conn::default();
    let mut head = RequestHead::default();
    assert_eq!(conn.receive_head(b"GET / HT", &Limits::default(), 0, &mut head), Ok(None));
    assert_eq!(conn.waiting_for(true), Wait::Head);
    match conn.expire(true) {
        Expiry::Refuse(e) => assert_eq!(e.status(), 408),
        other => panic!("expected 408, got {other:?}"),
    }
    let mut out = Vec::new();
    conn.refuse(408, DATE, &mut out);
    assert!(text(&out).starts_with("HTTP/1.1 408 ") && says_close(&out), "{}", text(&out));
    assert_eq!(conn.after(false), After::Linger);
}

#[test]
fn a_keep_alive_exchange_persists_and_starts_over() {
    let (mut conn, _, n) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(n, 27);
    assert!(conn.body_done());
    assert_eq!(conn.waiting_for(false), Wait::Response);
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"2")], false);
    assert!(!says_close(&out), "{}", text(&out));
    assert_eq!(conn.send_data(b"hi!", &mut out), Some(2), "the Content-Length takes two bytes");
    assert_eq!(conn.end_response(&mut out), 0);
    assert_eq!(conn.sent(), 2);
    assert_eq!(conn.after(false), After::KeepAlive);
    assert_eq!(conn.waiting_for(false), Wait::Idle);
    assert_eq!(conn.sent(), 0, "the next exchange starts from nothing");
}

#[test]
fn http_1_0_closes_unless_it_asks_for_keep_alive() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.0\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    assert!(says_close(&out));
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::Close);

    let (mut conn, _, _) = with_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    assert!(text(&out).contains("Connection: keep-alive\r\n"), "{}", text(&out));
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::KeepAlive);
}

#[test]
fn an_http_1_0_response_without_length_is_delimited_by_close() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[], false);
    assert_eq!(conn.body_room(), Some((Framing::Close, u64::MAX)));
    assert!(says_close(&out));
    conn.send_data(b"all of it", &mut out);
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::Close);
}

#[test]
fn the_request_the_app_or_the_driver_can_each_close_the_connection() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let out = begin(&mut conn, 204, &[], false);
    assert!(says_close(&out));
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let out = begin(&mut conn, 204, &[(b"Connection", b"close")], false);
    assert!(says_close(&out));
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut out = begin(&mut conn, 204, &[], true);
    assert!(says_close(&out), "a stopping worker says close");
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::Close);
}

#[test]
fn a_chunked_response_ends_with_its_terminator() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[], false);
    assert!(text(&out).contains("Transfer-Encoding: chunked\r\n"));
    out.clear();
    assert_eq!(conn.send_data(b"abc", &mut out), Some(3));
    assert_eq!(conn.end_response(&mut out), 0);
    assert_eq!(out, b"3\r\nabc\r\n0\r\n\r\n");
    assert_eq!(conn.send_data(b"late", &mut out), None, "nothing after the end");
}

#[test]
fn a_head_request_takes_no_body_bytes() {
    let (mut conn, _, _) = with_head(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"5")], false);
    assert!(text(&out).contains("Content-Length: 5\r\n"));
    assert_eq!(conn.body_room(), Some((Framing::NoBody, 0)));
    assert_eq!(conn.send_data(b"hello", &mut out), Some(0));
    assert_eq!(conn.end_response(&mut out), 0);
    assert_eq!(conn.after(false), After::KeepAlive);
}

#[test]
fn a_short_response_body_closes_the_connection() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"10")], false);
    conn.send_data(b"four", &mut out);
    assert_eq!(conn.end_response(&mut out), 6);
    assert_eq!(conn.after(false), After::Close);
}

#[test]
fn bytes_sent_from_a_file_count_against_the_length() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"10")], false);
    conn.sent_directly(10);
    assert_eq!(conn.body_room(), Some((Framing::Length(10), 0)));
    assert_eq!(conn.end_response(&mut out), 0);
    assert_eq!(conn.sent(), 10);
}

#[test]
fn a_1xx_as_the_final_status_is_answered_500_and_closes() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut resp = ResponseHead::default();
    resp.set(103, b"", std::iter::empty()).unwrap();
    let mut out = Vec::new();
    assert_eq!(conn.begin_response(&mut resp, false, DATE, &mut out), Err(InterimAsFinal(103)));
    assert!(text(&out).starts_with("HTTP/1.1 500 ") && says_close(&out), "{}", text(&out));
    assert_eq!(resp.status, 500);
    let before = out.len();
    assert_eq!(conn.send_data(b"swallowed", &mut out), Some(0));
    conn.end_response(&mut out);
    assert_eq!(out.len(), before);
    assert_eq!(conn.after(false), After::Close);
}

#[test]
fn a_failed_app_gets_its_client_an_error_without_a_body_for_head() {
    let (mut conn, _, _) = with_head(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut resp = ResponseHead::default();
    let mut out = Vec::new();
    conn.fail(500, &mut resp, DATE, &mut out);
    let t = text(&out);
    assert!(t.starts_with("HTTP/1.1 500 ") && t.ends_with("\r\n\r\n") && says_close(&out), "{t}");
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::Close);
}

#[test]
fn a_malformed_head_is_refused_and_lingers() {
    let mut conn = Conn::default();
    let mut head = RequestHead::default();
    let e = conn.receive_head(b"GET / HTTP/1.1\r\n\r\n", &Limits::default(), 0, &mut head).unwrap_err();
    assert_eq!(e.status(), 400, "no Host on HTTP/1.1");
    let mut out = Vec::new();
    conn.refuse(e.status(), DATE, &mut out);
    assert!(text(&out).starts_with("HTTP/1.1 400 ") && says_close(&out));
    assert_eq!(conn.after(false), After::Linger);
    assert_eq!(conn.waiting_for(false), Wait::Closed);
}

#[test]
fn a_declared_body_over_the_limit_is_refused_before_it_is_read() {
    let mut conn = Conn::default();
    let mut head = RequestHead::default();
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n";
    let e = conn.receive_head(wire, &Limits::default(), 10, &mut head).unwrap_err();
    assert_eq!(e.status(), 413);
}

#[test]
fn a_body_is_decoded_then_the_connection_persists() {
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (mut conn, _, n) = with_head(wire);
    assert_eq!(conn.waiting_for(false), Wait::Body);
    assert_eq!(conn.body_remaining(), None);
    let step = conn.receive_body(&wire[n..]).unwrap();
    assert_eq!(&wire[n..][step.data.clone()], b"abc");
    assert!(!conn.body_done());
    let rest = &wire[n + step.consumed..];
    let step = conn.receive_body(rest).unwrap();
    assert!(step.done && step.consumed == rest.len());
    assert!(conn.body_done());
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::KeepAlive);
}

#[test]
fn a_malformed_body_answers_its_status_and_lingers() {
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    let (mut conn, _, n) = with_head(wire);
    assert_eq!(conn.receive_body(&wire[n..]).unwrap_err().status(), 400);
    assert_eq!(conn.body_error(), Some(400));
    assert!(!conn.response_started());
    let mut resp = ResponseHead::default();
    let mut out = Vec::new();
    conn.fail(400, &mut resp, DATE, &mut out);
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::Linger);
}

#[test]
fn a_stalled_body_is_answered_408_before_the_response_and_dropped_after() {
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
    let (mut conn, _, _) = with_head(wire);
    assert_eq!(conn.body_remaining(), Some(5));
    match conn.expire(false) {
        Expiry::Refuse(e) => assert_eq!(e.status(), 408),
        other => panic!("expected 408, got {other:?}"),
    }
    let (mut conn, _, _) = with_head(wire);
    conn.body_stalled();
    assert_eq!(conn.body_error(), Some(408));
    let (mut conn, _, _) = with_head(wire);
    let _ = begin(&mut conn, 200, &[], false);
    assert_eq!(conn.waiting_for(false), Wait::Response);
    assert_eq!(conn.expire(false), Expiry::Drop);
    assert_eq!(conn.after(false), After::Linger, "the body was never read");
}

#[test]
fn continue_is_sent_once_and_only_before_the_response() {
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let (mut conn, _, _) = with_head(wire);
    let mut out = Vec::new();
    assert!(conn.send_continue(&mut out));
    assert_eq!(out, CONTINUE_100);
    assert!(!conn.send_continue(&mut out), "once");

    let (mut conn, _, _) = with_head(wire);
    let out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    assert!(says_close(&out), "the client still holds its body back: the connection cannot persist");
    let mut more = Vec::new();
    assert!(!conn.send_continue(&mut more), "a 100 would land inside the response");
    assert!(more.is_empty());
}

#[test]
fn a_body_held_back_for_100_continue_is_not_drained() {
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let (mut conn, _, _) = with_head(wire);
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    conn.end_response(&mut out);
    assert!(!conn.should_drain());
    assert_eq!(conn.after(false), After::Linger);
}

#[test]
fn an_unread_body_is_drained_within_the_bound() {
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody";
    let (mut conn, _, n) = with_head(wire);
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    conn.end_response(&mut out);
    assert!(conn.should_drain());
    let step = conn.receive_body(&wire[n..]).unwrap();
    assert!(conn.drained(step.data.len()) && step.done);
    assert!(!conn.should_drain(), "nothing left");
    assert_eq!(conn.after(false), After::KeepAlive);

    let (mut conn, _, _) = with_head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    conn.end_response(&mut out);
    assert!(conn.should_drain());
    assert!(conn.drained(MAX_DRAIN as usize));
    assert!(!conn.drained(1), "past the bound");
    assert_eq!(conn.after(false), After::Linger);
}

#[test]
fn a_body_that_has_not_all_arrived_is_discarded_as_it_comes_and_the_next_request_follows() {
    let wire = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let (mut conn, _, _) = with_head(wire);
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    conn.end_response(&mut out);
    assert!(conn.should_drain());
    assert_eq!(conn.after(false), After::Discard, "the response is out, the body is still coming");
    assert_eq!(conn.discard(b"4\r\nbo"), Ok((5, false)));
    let rest = b"dy\r\n0\r\n\r\nGET /next HTTP/1.1\r\n";
    let (taken, done) = conn.discard(rest).expect("a well-formed body");
    assert!(done);
    assert_eq!(&rest[taken..], b"GET /next HTTP/1.1\r\n", "the next request starts after the body");
    assert_eq!(conn.waiting_for(true), Wait::Head);

    let (mut conn, _, _) = with_head(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::Discard);
    assert!(conn.discard(b"zz\r\n").is_err(), "a malformed body closes the connection");

    let (mut conn, _, _) = with_head(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::Discard);
    assert!(conn.discard(&vec![b'x'; MAX_DRAIN as usize + 1]).is_err(), "past the drain bound");
}

#[test]
fn bytes_after_a_closing_exchange_make_it_linger() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    conn.end_response(&mut out);
    assert_eq!(conn.after(true), After::Linger);
}

#[test]
fn an_aborted_response_ends_the_connection() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[], false);
    conn.send_data(b"part", &mut out);
    conn.abort();
    assert_eq!(conn.sent(), 4);
    assert_eq!(conn.after(false), After::Close);
}

#[test]
fn must_close_holds_whatever_the_response_says() {
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    conn.must_close();
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"0")], false);
    assert!(says_close(&out));
    conn.end_response(&mut out);
    assert_eq!(conn.after(false), After::Close);
}

/// Connections whose bytes, cut anywhere, must give the same requests and the same ending.
const CORPUS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\nGET /a?b=c HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /partial HT",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nonly",
];

#[test]
fn every_connection_of_the_corpus_split_at_every_byte_ends_the_same() {
    for wire in CORPUS {
        let whole = replay_split(wire, &[], &Limits::default(), 0, 64 * 1024);
        assert!(!whole.0.is_empty(), "{:?} produced nothing", text(wire));
        for cut in 0..=wire.len() {
            for read_size in [1, 3, 64 * 1024] {
                let split = replay_split(wire, &[cut], &Limits::default(), 0, read_size);
                assert_eq!(split, whole, "{:?} cut at {cut}, reads of {read_size}", text(wire));
            }
        }
        let every: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(
            replay_split(wire, &every, &Limits::default(), 0, 1),
            whole,
            "{:?} byte by byte",
            text(wire)
        );
    }
}

#[test]
fn the_corpus_ends_as_the_connection_decides() {
    let endings: Vec<(usize, Pending)> = CORPUS
        .iter()
        .map(|wire| {
            let (events, pending) = replay_split(wire, &[], &Limits::default(), 0, 64 * 1024);
            (events.iter().filter(|e| matches!(e, Event::Head { .. })).count(), pending)
        })
        .collect();
    assert_eq!(
        endings,
        [
            (1, Pending::Nothing),
            (2, Pending::Closed),
            (2, Pending::Closed),
            (2, Pending::Nothing),
            (1, Pending::Closed),
            (1, Pending::Closed),
            (0, Pending::Closed),
            (1, Pending::Head),
            (1, Pending::Body),
        ]
    );
    let (events, _) = replay_split(CORPUS[4], &[], &Limits::default(), 0, 64 * 1024);
    assert_eq!(events.last(), Some(&Event::Refused(400)), "the second request has no Host");
    let (events, _) = replay_split(CORPUS[5], &[], &Limits::default(), 0, 64 * 1024);
    assert_eq!(events.last(), Some(&Event::Refused(400)), "chunk data longer than its size");
}

#[test]
fn input_after_the_connection_closed_is_ignored() {
    let mut replay = Replay::new(Limits::default(), 0, 1024);
    replay.feed(b"GET / HTTP/1.0\r\n\r\n");
    replay.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let (events, pending) = replay.finish();
    assert_eq!(events.len(), 2, "one head and its empty body: {events:?}");
    assert_eq!(pending, Pending::Closed);
}

#[test]
fn trailers_follow_the_last_chunk_only_when_the_request_takes_them() {
    let mut resp = ResponseHead::default();
    resp.set(200, b"", std::iter::empty()).unwrap();
    resp.add_trailers([(&b"Grpc-Status"[..], &b"0"[..]), (b"X-Sum", b" 42 ")].into_iter()).unwrap();
    assert!(resp.add_trailers([(&b"Content-Length"[..], &b"1"[..])].into_iter()).is_err(), "framing");
    assert!(resp.add_trailers([(&b"X-Bad"[..], &b"a\nb"[..])].into_iter()).is_err(), "a bare LF");
    assert_eq!(resp.trailers(), b"Grpc-Status: 0\r\nX-Sum: 42\r\n", "refused calls leave nothing");
    for (te, end) in [
        ("TE: trailers\r\n", &b"0\r\nGrpc-Status: 0\r\nX-Sum: 42\r\n\r\n"[..]),
        ("TE: gzip, trailers\r\n", b"0\r\nGrpc-Status: 0\r\nX-Sum: 42\r\n\r\n"),
        ("", b"0\r\n\r\n"),
    ] {
        let (mut conn, _, _) = with_head(format!("GET / HTTP/1.1\r\nHost: a\r\n{te}\r\n").as_bytes());
        let mut out = begin(&mut conn, 200, &[], false);
        conn.send_data(b"ab", &mut out);
        conn.end_response_with(resp.trailers(), &mut out);
        assert!(out.ends_with(end), "{te:?}: {}", text(&out));
    }
    // A body framed by Content-Length has nowhere to put them.
    let (mut conn, _, _) = with_head(b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n");
    let mut out = begin(&mut conn, 200, &[(b"Content-Length", b"2")], false);
    conn.send_data(b"ab", &mut out);
    conn.end_response_with(resp.trailers(), &mut out);
    assert!(out.ends_with(b"\r\n\r\nab"), "{}", text(&out));
}
