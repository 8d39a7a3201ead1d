//! Real HTTP clients against the real server: curl, Python's `http.client` and `requests`, and `h11`
//! as a strict client that raises on any protocol violation.

use crate::support::{Server, python, run};
use std::process::Command;

fn curl(args: &[&str]) -> (String, String) {
    let (status, out, err) = run(Command::new("curl").args(["-s", "-S", "--max-time", "10"]).args(args));
    assert_eq!(status, 0, "curl {args:?} failed:\n{err}");
    (out, err)
}

fn host_port(server: &Server) -> [String; 2] {
    [server.addr.ip().to_string(), server.addr.port().to_string()]
}

#[test]
fn curl_gets_posts_heads_and_uploads_chunked() {
    let server = Server::start("echo");
    let (out, _) = curl(&[&server.url("/x?y=1")]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["method"].as_str(), v["target"].as_str()), (Some("GET"), Some("/x?y=1")));

    let (out, _) = curl(&["-d", "a=1&b=2", &server.url("/form")]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["method"].as_str(), v["body"].as_str()), (Some("POST"), Some("a=1&b=2")));

    let (out, _) = curl(&["-H", "Transfer-Encoding: chunked", "-d", "sent in chunks", &server.url("/up")]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["body"], "sent in chunks");
    let headers: Vec<(String, String)> = serde_json::from_value(v["headers"].clone()).unwrap();
    assert!(headers.contains(&("Transfer-Encoding".into(), "chunked".into())), "{headers:?}");

    let hello = Server::start("hello");
    let (out, _) = curl(&["-I", &hello.url("/")]);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Content-Length: 13\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\n"), "no body after the head: {out:?}");
}

#[test]
fn curl_reuses_one_connection_for_two_urls() {
    let server = Server::start("chaos");
    let port = server.url("/environ?key=REMOTE_PORT");
    let (out, err) = curl(&["-v", "-w", "\\n", &port, &port]);
    assert!(err.contains("Re-using existing connection"), "{err}");
    let ports: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(ports.len(), 2, "{out:?}");
    assert_eq!(ports[0], ports[1], "both requests came from the same client port");
}

#[test]
fn python_http_client_sends_several_requests_on_one_connection() {
    let server = Server::start("chaos");
    let out = python(
        r#"
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
for method, path, body in [("GET", "/environ?key=REMOTE_PORT", None), ("POST", "/echo", b"x" * 100000),
                           ("GET", "/stream?chunks=3", None), ("HEAD", "/ok", None),
                           ("GET", "/environ?key=REMOTE_PORT", None)]:
    c.request(method, path, body=body)
    r = c.getresponse()
    data = r.read()
    print(r.status, r.getheader("Transfer-Encoding"), len(data), data[:12].decode().replace("\n", "|"))
"#,
        &host_port(&server).each_ref().map(String::as_str),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[1].starts_with("200 None 100000 xxxxxxxxxxxx"), "{out}");
    assert_eq!(lines[2], "200 chunked 24 chunk 0|chun");
    assert_eq!(lines[3], "200 None 0 ");
    assert_eq!(lines[0], lines[4], "the first and last request share the client port");
}

#[test]
fn requests_session_reuses_its_connection_and_posts_json() {
    let server = Server::start("chaos");
    let out = python(
        r#"
import requests, sys
base = "http://%s:%s" % (sys.argv[1], sys.argv[2])
with requests.Session() as s:
    ports = [s.get(base + "/environ", params={"key": "REMOTE_PORT"}, timeout=10).text for _ in range(4)]
    echoed = s.post(base + "/echo", data=b"payload", timeout=10).text
print(len(set(ports)), echoed)
"#,
        &host_port(&server).each_ref().map(String::as_str),
    );
    assert_eq!(out.trim(), "1 payload", "all four requests on one connection");

    let framework = Server::start("framework_app");
    let out = python(
        r#"
import requests, sys
base = "http://%s:%s" % (sys.argv[1], sys.argv[2])
with requests.Session() as s:
    r = s.post(base + "/a?x=1", json={"k": [1, 2]}, timeout=10)
    print(r.status_code, r.headers["Content-Type"])
    print(r.text)
    print(s.get(base + "/users/7", timeout=10).json()["id"])
"#,
        &host_port(&framework).each_ref().map(String::as_str),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("200 application/json"), "{out}");
    assert_eq!(lines[1], r#"{"result": "hello", "params": "x=1", "body": "{\"k\": [1, 2]}"}"#);
    assert_eq!(lines[2], "7");
}

#[test]
fn h11_drives_a_whole_conversation_without_a_protocol_error() {
    let server = Server::start("chaos");
    let out = python(
        r#"
import h11, socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
conn = h11.Connection(our_role=h11.CLIENT)

def exchange(method, target, body=b""):
    headers = [("Host", "t")]
    if body:
        headers.append(("Content-Length", str(len(body))))
    data = conn.send(h11.Request(method=method, target=target, headers=headers))
    if body:
        data += conn.send(h11.Data(data=body))
    data += conn.send(h11.EndOfMessage())
    sock.sendall(data)
    status, te, got = None, None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            te = dict(event.headers).get(b"transfer-encoding", b"-").decode()
        elif isinstance(event, h11.Data):
            got += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
    assert conn.our_state is h11.DONE and conn.their_state is h11.DONE, (conn.our_state, conn.their_state)
    conn.start_next_cycle()
    print(method, target, status, te, got.decode().replace("\n", "|"))

exchange("GET", "/ok")
exchange("HEAD", "/ok")
exchange("POST", "/echo", b"posted body")
exchange("GET", "/stream?chunks=3")
exchange("GET", "/status?code=204")
exchange("GET", "/status?code=304")
exchange("GET", "/pull?chunks=2")
exchange("GET", "/ok")
"#,
        &host_port(&server).each_ref().map(String::as_str),
    );
    let want = [
        "GET /ok 200 - ok",
        "HEAD /ok 200 - ",
        "POST /echo 200 - posted body",
        "GET /stream?chunks=3 200 chunked chunk 0|chunk 1|chunk 2|",
        "GET /status?code=204 204 - ",
        "GET /status?code=304 304 - ",
        "GET /pull?chunks=2 200 chunked pull 0|pull 1|",
        "GET /ok 200 - ok",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want);
}
