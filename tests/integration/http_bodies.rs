//! Message bodies both ways (RFC 9112 §6–§7): chunked and split requests in, chunked and
//! close-delimited responses out, 100-continue, bodiless responses, and what the server does when an
//! app's response is malformed (wrong length, bad header, failure, panic).

use crate::support::{Response, Server, worker_class};
use std::io::Write;

/// The chaos app's `/worker` answer (`worker N pid P`) on a fresh connection: proof the server lives.
fn worker(server: &Server) -> String {
    let resp = server.get("/worker");
    assert_eq!(resp.status, 200);
    resp.text()
}

#[test]
fn chunked_request_body_is_decoded_with_extensions_and_trailers() {
    let server = Server::start("chaos");
    let req = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
        4;name=value\r\nWiki\r\n5 ; quoted=\"a;b\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n\
        0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
    let resp = Response::parse_one(&server.raw(req)).expect("a response").0;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "Wikipedia in\r\n\r\nchunks.");
}

#[test]
fn a_request_split_across_many_small_writes_is_reassembled() {
    let server = Server::start("chaos");
    let mut conn = server.conn();
    conn.stream.set_nodelay(true).unwrap();
    let req = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789";
    for piece in req.chunks(3) {
        conn.send(piece);
    }
    let resp = conn.response();
    assert_eq!((resp.status, resp.text().as_str()), (200, "0123456789"));
    // The same connection goes on with a chunked body, one byte per write.
    let req = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n";
    for byte in req.chunks(1) {
        conn.send(byte);
    }
    assert_eq!(conn.response().text(), "abcde");
}

#[test]
fn responses_without_a_length_are_chunked_on_11_and_close_delimited_on_10() {
    let server = Server::start("chaos");
    for (path, want) in
        [("/stream?chunks=3", "chunk 0\nchunk 1\nchunk 2\n"), ("/pull?chunks=3", "pull 0\npull 1\npull 2\n")]
    {
        // HTTP/1.1: chunked, and the connection stays usable.
        let mut conn = server.conn();
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let resp = conn.response();
        assert_eq!(resp.header("transfer-encoding"), Some("chunked"), "{path}");
        assert_eq!(resp.header("content-length"), None, "{path}");
        assert_eq!(resp.text(), want);
        conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(conn.response().text(), "ok");
        drop(conn);

        // HTTP/1.0, even asking for keep-alive: no chunked coding; the body ends where the connection does.
        let mut conn = server.conn();
        conn.send(format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes());
        let head_and_body = conn.rest();
        let resp = Response::parse_one(&head_and_body).expect("a response").0;
        assert_eq!(resp.header("transfer-encoding"), None, "{path}");
        assert_eq!(resp.header("content-length"), None, "{path}");
        assert_eq!(resp.header("connection"), Some("close"));
        assert_eq!(resp.text(), want);
    }
}

/// Where the app reads its body as it arrives (sync, threads, the event pool), `100 Continue` is sent
/// only when the app first reads it.
#[test]
fn continue_100_is_sent_only_when_an_app_that_streams_its_body_reads_it() {
    let pool: &[&str] = if worker_class() == "event" { &["--threads", "2"] } else { &[] };
    let server = Server::builder("chaos").args(pool).start();
    let mut conn = server.conn();
    conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(conn.take(25), b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.send(b"hello");
    let resp = conn.response();
    assert_eq!((resp.status, resp.text().as_str()), (200, "hello"));
    conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response().text(), "ok", "the connection persists after a 100-continue exchange");
    drop(conn);

    // An app that never reads: no 100, its final response, then the server closes (the body the
    // client still holds would otherwise be read as the next request).
    let mut conn = server.conn();
    conn.send(b"POST /noread HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let rest = conn.rest();
    let resp = Response::parse_one(&rest).expect("a final response").0;
    assert_eq!((resp.status, resp.text().as_str()), (200, "did not read the body"));
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(!String::from_utf8_lossy(&rest).contains("100 Continue"));
    drop(conn);

    // An app that starts its answer before it reads: a 100 would land inside that answer, so none is
    // sent; the client sends the body on its own and gets the whole answer.
    let mut conn = server.conn();
    conn.send(b"POST /early HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let head = conn.take(12);
    assert_eq!(head, b"HTTP/1.1 200", "the final response comes first");
    conn.send(b"body");
    let mut rest = head;
    rest.extend(conn.rest());
    let all = Response::parse_exact(&rest);
    assert_eq!(all.len(), 1, "{:?}", String::from_utf8_lossy(&rest));
    assert_eq!(all[0].text(), "early:body");
    assert_eq!(all[0].header("connection"), Some("close"));
}

/// An event loop without `--threads` calls an app only once its body is all here, so it answers the
/// client's `Expect: 100-continue` itself as soon as the head has arrived (as nginx does); whatever the
/// app then does with the body, the connection stays in step.
#[test]
fn the_event_loop_says_100_continue_itself_and_calls_the_app_once_the_body_is_here() {
    let server = Server::builder("chaos").args(&["-k", "event"]).start();
    for (path, want) in [("/echo", "hello"), ("/noread", "did not read the body"), ("/early", "early:hello")]
    {
        let mut conn = server.conn();
        conn.send(
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(conn.take(25), b"HTTP/1.1 100 Continue\r\n\r\n", "{path}");
        conn.send(b"hello");
        let resp = conn.response();
        assert_eq!((resp.status, resp.text().as_str()), (200, want), "{path}");
        conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(conn.response().text(), "ok", "{path}: the connection persists");
    }
}

#[test]
fn head_gets_the_same_headers_without_a_body() {
    let server = Server::start("hello");
    let pipeline =
        b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let bytes = server.raw(pipeline);
    let (head, rest) = Response::parse_one_for(&bytes, true).expect("the HEAD response");
    let (get, rest) = Response::parse_one(rest).expect("the GET response right after the HEAD head");
    assert_eq!((head.status, get.status), (200, 200));
    assert_eq!(head.header("content-length"), Some("13"));
    assert_eq!(head.header("content-type"), get.header("content-type"));
    assert_eq!(get.text(), "Hello, World!");
    assert!(rest.is_empty(), "extra bytes: {:?}", String::from_utf8_lossy(rest));
}

#[test]
fn status_204_and_304_carry_no_body() {
    let server = Server::start("chaos");
    let pipeline = b"GET /status?code=204 HTTP/1.1\r\nHost: t\r\n\r\n\
        GET /status?code=304 HTTP/1.1\r\nHost: t\r\n\r\n\
        GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let all = Response::parse_exact(&server.raw(pipeline));
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [204, 304, 200]);
    assert_eq!(all[0].header("content-length"), None, "204 must not have a Content-Length");
    assert_eq!(all[0].header("transfer-encoding"), None);
    assert_eq!(all[2].text(), "ok", "no body byte of the 204 or 304 leaked before the next response");
}

#[test]
fn a_final_1xx_status_from_the_app_becomes_a_500() {
    let server = Server::start("chaos");
    server.allow_log("as the final status for GET /status");
    for code in [100, 101, 199] {
        let mut conn = server.conn();
        conn.send(format!("GET /status?code={code} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let all = Response::parse_exact(&conn.rest());
        assert_eq!(all.iter().map(|r| r.status).collect::<Vec<_>>(), [500], "code {code}");
        assert_eq!(all[0].header("connection"), Some("close"));
    }
    assert!(worker(&server).starts_with("worker "));
}

#[test]
fn a_body_shorter_than_its_content_length_is_sent_then_the_connection_closed() {
    let server = Server::start("chaos");
    server.allow_log("less than its Content-Length for GET /short");
    let mut conn = server.conn();
    conn.send(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n");
    let bytes = conn.rest();
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{text:?}");
    assert!(head.contains("\r\nContent-Length: 10"), "{text:?}");
    assert_eq!(body, "12345");
    drop(conn);
    assert!(worker(&server).starts_with("worker "));
}

#[test]
fn a_body_longer_than_its_content_length_is_cut_and_the_connection_stays_in_sync() {
    let server = Server::start("chaos");
    server.allow_log("more body than its Content-Length for GET /long");
    let pipeline =
        b"GET /long HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let all = Response::parse_exact(&server.raw(pipeline));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].header("content-length"), Some("5"));
    assert_eq!(all[0].text(), "12345");
    assert_eq!(all[1].text(), "ok");
}

#[test]
fn a_header_with_cr_lf_becomes_a_500_and_is_never_sent() {
    let server = Server::start("chaos");
    server.allow_log("app failed with status");
    server.allow_log("invalid response head for GET /badheader");
    server.allow_log("invalid status or header (RG_E_INVALID)");
    let bytes = server.raw(b"GET /badheader HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = Response::parse_one(&bytes).expect("a response").0;
    assert_eq!(resp.status, 500);
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("X-Injected") && !text.contains("evil"), "{text:?}");
    assert!(!text.contains("must not be seen"), "{text:?}");
    assert!(worker(&server).starts_with("worker "));
}

#[test]
fn a_replaced_head_is_the_only_one_sent() {
    let server = Server::start("chaos");
    let resp = server.get("/replace");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("x-second"), Some("1"));
    assert_eq!(resp.header("x-first"), None);
    assert_eq!(resp.text(), "replaced");
}

#[test]
fn an_app_that_fails_or_never_responds_gets_a_500() {
    let server = Server::start("chaos");
    server.allow_log("app failed with status");
    server.allow_log("without a valid start_response");
    server.allow_log("chaos: /error asked for it");
    for path in ["/error", "/nostart"] {
        let resp = server.get(path);
        assert_eq!(resp.status, 500, "{path}");
        assert_eq!(resp.text(), "500 Internal Server Error\n", "{path}");
    }
    assert!(worker(&server).starts_with("worker "));
}

#[test]
fn a_panicking_handler_gets_a_500_and_the_same_worker_serves_on() {
    let server = Server::start("chaos");
    server.allow_log("app failed with status");
    server.allow_log("chaos: /panic asked for it");
    let before = worker(&server);
    assert_eq!(server.get("/panic").status, 500);
    assert_eq!(worker(&server), before, "the worker process survived the panic");
    server.wait_for_log("app panicked");
}

#[test]
fn hop_by_hop_headers_from_the_app_are_dropped() {
    let server = Server::start("chaos");
    let mut conn = server.conn();
    conn.send(b"GET /hop HTTP/1.1\r\nHost: t\r\n\r\n");
    let resp = conn.response();
    assert_eq!(resp.text(), "hop");
    assert_eq!(resp.header("transfer-encoding"), None);
    assert_eq!(resp.header("keep-alive"), None);
    assert_eq!(resp.header("upgrade"), None);
    let servers: Vec<&str> = resp
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("server"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(servers, ["chaos"], "the app's Server header replaces ours");
    conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response().text(), "ok");
}

#[test]
fn a_pull_body_with_a_length_delivers_exactly_that_many_bytes() {
    let server = Server::start("chaos");
    for n in [0usize, 1, 65_537, 3 * 1024 * 1024 + 7] {
        let mut conn = server.conn();
        conn.send(format!("GET /big?bytes={n} HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
        let all = Response::parse_exact(&conn.rest());
        assert_eq!(all.len(), 2, "bytes={n}");
        assert_eq!(all[0].header("content-length"), Some(n.to_string().as_str()));
        assert_eq!(all[0].body.len(), n);
        assert!(all[0].body.iter().all(|&b| b == b'x'));
        assert_eq!(all[1].text(), "ok");
    }
}

#[test]
fn a_large_upload_round_trips_intact() {
    let server = Server::start("chaos");
    let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut conn = server.conn();
    let mut writer = conn.stream.try_clone().unwrap();
    let upload = body.clone();
    // Send from another thread: the echo streams back while the upload is still arriving.
    let sender = std::thread::spawn(move || {
        let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", upload.len());
        writer.write_all(head.as_bytes()).unwrap();
        writer.write_all(&upload).unwrap();
    });
    let resp = conn.response();
    sender.join().unwrap();
    assert_eq!(resp.header("content-length"), Some("8388608"));
    assert!(resp.body == body, "the echoed body differs from the upload");
    conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response().text(), "ok", "the connection is still in sync");
}
