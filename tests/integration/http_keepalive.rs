//! Persistent connections (RFC 9112 §9): who keeps a connection open, who closes it and when, and
//! pipelined requests answered in order without a byte lost.

use crate::support::{Response, Server};

const WORKER: &[u8] = b"GET /worker HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn http11_connection_persists_by_default_on_the_same_worker() {
    let server = Server::builder("chaos").workers(2).start();
    let mut conn = server.conn();
    conn.send(WORKER);
    let first = conn.response();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None, "1.1 persistence needs no Connection header");
    conn.send(WORKER);
    let second = conn.response();
    assert!(first.text().starts_with("worker "), "{}", first.text());
    assert_eq!(first.text(), second.text(), "both requests served by the same worker process");
}

#[test]
fn http10_closes_unless_the_client_asks_for_keep_alive() {
    let server = Server::start("chaos");
    let mut conn = server.conn();
    conn.send(b"GET /ok HTTP/1.0\r\n\r\n");
    let resp = conn.response();
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok"));
    assert_eq!(resp.header("connection"), Some("close"));
    conn.assert_closed();

    let mut conn = server.conn();
    conn.send(b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let resp = conn.response();
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    conn.send(b"GET /worker HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(conn.response().text().starts_with("worker "));
}

#[test]
fn connection_close_from_the_client_is_honoured() {
    let server = Server::start("chaos");
    let mut conn = server.conn();
    conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let resp = conn.response();
    assert_eq!(resp.text(), "ok");
    assert_eq!(resp.header("connection"), Some("close"));
    conn.assert_closed();
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let server = Server::builder("chaos").args(&["--keep-alive", "1"]).start();
    let mut conn = server.conn();
    conn.send(WORKER);
    assert_eq!(conn.response().status, 200);
    // The read times out (and fails the test) after WAIT if the server keeps the idle connection.
    conn.assert_closed();
    assert_eq!(server.get("/ok").text(), "ok");
}

#[test]
fn pipelined_requests_are_answered_in_order_with_no_byte_lost() {
    let server = Server::start("chaos");
    let pipeline = b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n\
        POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello\r\nGET \
        GET /status?code=201 HTTP/1.1\r\nHost: t\r\n\r\n\
        POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
        GET /worker HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let bytes = server.raw(pipeline);
    let all = Response::parse_exact(&bytes);
    let seen: Vec<(u16, String)> = all.iter().map(|r| (r.status, r.text())).collect();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[0], (200, "ok".to_string()));
    assert_eq!(seen[1], (200, "hello\r\nGET ".to_string()), "a body that looks like a request stays a body");
    assert_eq!(seen[2], (201, "status 201".to_string()));
    assert_eq!(seen[3], (200, "abc".to_string()));
    assert!(seen[4].1.starts_with("worker "), "{seen:?}");
}

#[test]
fn an_unread_body_is_drained_and_the_next_pipelined_request_answered() {
    let server = Server::start("chaos");
    for body in [
        "Content-Length: 12\r\n\r\nGET /ok HTTP",
        "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
    ] {
        let mut conn = server.conn();
        conn.send(
            format!("POST /noread HTTP/1.1\r\nHost: t\r\n{body}GET /worker HTTP/1.1\r\nHost: t\r\n\r\n")
                .as_bytes(),
        );
        let first = conn.response();
        assert_eq!((first.status, first.text().as_str()), (200, "did not read the body"));
        assert_eq!(first.header("connection"), None, "the connection persists: {body:?}");
        let second = conn.response();
        assert!(second.text().starts_with("worker "), "after {body:?}: {second:?}");
    }
}

#[test]
fn app_asking_for_connection_close_closes_after_its_response() {
    let server = Server::start("chaos");
    let mut conn = server.conn();
    conn.send(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    let all = Response::parse_all(&conn.rest());
    assert_eq!(all.len(), 1, "the request pipelined after it is not answered");
    assert_eq!(all[0].text(), "bye\r\n");
    assert_eq!(all[0].header("connection"), Some("close"));
    drop(conn);
    assert_eq!(server.get("/ok").text(), "ok");
}
