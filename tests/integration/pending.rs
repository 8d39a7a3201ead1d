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

/// The bytes after the last chunk of `raw`'s chunked body: the trailer section and its empty line.
fn trailer_section(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let at = text.rfind("\r\n0\r\n").unwrap_or_else(|| panic!("no last chunk in {text:?}"));
    text[at + 5..].to_string()
}

#[test]
fn trailers_follow_the_last_chunk_when_the_client_takes_them_and_are_dropped_when_it_does_not() {
    let server = ws_echo();
    // Set in handle: refused before the head and for a framing field, sent after the body.
    let asked = server.raw(b"GET /trailers HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&asked);
    assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
    assert!(text.contains("before start: Err(State); Content-Length: Err(Invalid)\n"), "{text}");
    assert_eq!(trailer_section(&asked), "X-Checksum: sha1=deadbeef\r\nGrpc-Status: 0\r\n\r\n");
    let not_asked = server.raw(b"GET /trailers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(trailer_section(&not_asked), "\r\n", "no TE: trailers, no trailers");
    // Set on a pending call, after its body was read through it.
    let later = server.raw(
        b"POST /later/echo HTTP/1.1\r\nHost: t\r\nTE: trailers\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(trailer_section(&later), "X-Body-Length: 5\r\n\r\n");
    // The connection goes on after a trailer section: a strict client (h11) reads both responses.
    let out = crate::support::python(
        r#"
import socket, sys, h11
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
c = h11.Connection(h11.CLIENT)
seen = []
for path in ("/trailers", "/later/echo"):
    s.sendall(c.send(h11.Request(method="POST", target=path, headers=[("Host", "t"), ("TE", "trailers"), ("Content-Length", "2")])))
    s.sendall(c.send(h11.Data(data=b"hi")) + c.send(h11.EndOfMessage()))
    while True:
        event = c.next_event()
        if event is h11.NEED_DATA:
            c.receive_data(s.recv(65536))
        elif isinstance(event, h11.EndOfMessage):
            seen.append([(n.decode(), v.decode()) for n, v in event.headers])
            break
    c.start_next_cycle()
print(seen)
"#,
        &[&server.addr.to_string()],
    );
    assert_eq!(
        out.trim(),
        "[[('x-checksum', 'sha1=deadbeef'), ('grpc-status', '0')], [('x-body-length', '2')]]"
    );
}

#[test]
fn a_body_an_async_app_left_unread_is_discarded_as_it_arrives_and_the_next_request_is_served() {
    let server = ws_echo();
    let mut conn = server.conn();
    // The app answers from the head alone; the body has not been sent when the answer comes.
    conn.send(b"POST /trailers HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    let first = conn.response();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None, "the connection was promised to persist");
    // The body comes afterwards, in pieces, and the next request right behind it.
    conn.send(b"5\r\nhel");
    conn.send(b"lo\r\n0\r\n\r\nGET /trailers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let second = conn.response();
    assert_eq!(second.status, 200);
    assert!(second.text().contains("before start"), "{}", second.text());
    conn.assert_closed();
}
