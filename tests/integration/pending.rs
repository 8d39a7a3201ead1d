//! HTTP responses that go on after `handle` (ABI 1.3, `RG_PENDING`), against `apps/ws_echo` under the
//! event class: an answer computed on a thread of the app and `post`ed back to the loop, a request body
//! read through the pending call past what the server holds for it, and a client that leaves before
//! the answer. Every wait is on bytes received or a log line.

use crate::support::Server;

fn ws_echo() -> Server {
    Server::builder("ws_echo").args(&["-k", "event"]).start()
}

#[test]
fn an_answer_posted_back_from_another_thread_completes_and_the_connection_serves_the_next_request() {
    let server = ws_echo();
    let mut conn = server.conn();
    // Two requests in one write: the second waits for the first's answer, then gets its own.
    conn.send(
        b"GET /later HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /later/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    let first = conn.response();
    assert_eq!(first.status, 200);
    assert!(first.text().starts_with("later from "), "{}", first.text());
    let second = conn.response();
    assert_eq!((second.status, second.text().as_str()), (200, "hello"));
    conn.send(b"GET /later HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(conn.response().status, 200);
    conn.assert_closed();
}

#[test]
fn a_body_larger_than_the_pending_calls_inbox_is_read_through_readable_events_and_echoed_whole() {
    let server = ws_echo();
    // 300 KB: past the 64 KiB the server decodes ahead for a pending call, so the app reads the rest
    // after RG_EV_READABLE events.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut conn = server.conn();
    let head = format!("POST /later/echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    conn.send(head.as_bytes());
    conn.send(&body);
    let resp = conn.response();
    assert_eq!(resp.status, 200);
    assert!(resp.body == body, "the echoed body differs ({} bytes back)", resp.body.len());
    // Chunked the same way.
    let mut chunked = b"POST /later/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(70_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    conn.send(&chunked);
    let resp = conn.response();
    assert!(resp.status == 200 && resp.body == body);
}

#[test]
fn a_client_that_leaves_before_the_answer_is_reported_to_the_app_and_the_worker_goes_on() {
    let server = ws_echo();
    let pids = server.wait_for_workers(1);
    {
        let mut conn = server.conn();
        conn.send(b"GET /later/hang HTTP/1.1\r\nHost: t\r\n\r\n");
        server.wait_for_log("holding /later/hang");
    }
    server.wait_for_log("client left /later/hang");
    let resp = server.get("/later");
    assert_eq!(resp.status, 200);
    assert_eq!(server.worker_pids(), pids, "the worker lives");
}
