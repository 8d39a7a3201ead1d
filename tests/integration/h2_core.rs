//! The HTTP/2 core against a strict peer: Python's `h2` as the client, over pipes, and
//! `rustgun::http::h2::conn::Connection` as the server, driven here as a worker will drive it. The
//! client sends a GET and a 100 KB POST; the server answers the GET with 100 KB (more than the
//! client's first window: it must wait for the client's WINDOW_UPDATEs) and the POST with its length
//! and a trailer (it credits the POST's body back as it reads it, so the client can send past 64 KiB).
//! `h2` raises on any protocol error of ours; the client checks every answer.

use crate::support::pyenv;
use rustgun::http::h2::conn::{Config, Connection, Event};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

const CLIENT: &str = r#"
import os, select, sys
import h2.config, h2.connection, h2.events

conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
conn.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "/big"), (":authority", "t")], end_stream=True)
conn.send_headers(3, [(":method", "POST"), (":scheme", "http"), (":path", "/up"), (":authority", "t")])
upload = b"u" * 100_000
sent = 0
bodies, statuses, trailers, ended = {}, {}, {}, set()

def pump():
    global sent
    while sent < len(upload):
        room = min(conn.local_flow_control_window(3), conn.max_outbound_frame_size, len(upload) - sent)
        if room <= 0:
            break
        sent += room
        conn.send_data(3, upload[sent - room:sent], end_stream=sent == len(upload))
    os.write(1, conn.data_to_send())

pump()
while ended != {1, 3}:
    ready, _, _ = select.select([0], [], [], 10)
    if not ready:
        sys.exit("the server went quiet with streams %s unfinished" % ({1, 3} - ended))
    data = os.read(0, 65536)
    if not data:
        sys.exit("the server closed early")
    for event in conn.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived):
            statuses[event.stream_id] = dict(event.headers)[":status"]
        elif isinstance(event, h2.events.DataReceived):
            bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            trailers[event.stream_id] = dict(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            ended.add(event.stream_id)
        elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
            sys.exit("the server ended %r" % event)
    pump()
assert statuses == {1: "200", 3: "200"}, statuses
assert bodies[1] == b"a" * 100_000, len(bodies[1])
assert bodies[3] == b"100000", bodies[3]
assert trailers[3] == {"x-bytes": "100000"}, trailers
conn.close_connection()
os.write(1, conn.data_to_send())
print("ok", file=sys.stderr)
"#;

#[test]
fn pythons_h2_client_gets_both_answers_through_the_flow_control_of_both_sides() {
    let mut client = Command::new(pyenv().join("bin/python"))
        .args(["-c", CLIENT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let mut to_client = client.stdin.take().unwrap();
    let mut from_client = client.stdout.take().unwrap();
    let mut conn = Connection::new(Config::default());
    let mut events = Vec::new();
    let mut pending = Vec::new();
    // What each stream still has to send, and the POST's length so far.
    let mut unsent: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut uploaded = 0usize;
    let mut goaway = false;
    let mut buf = vec![0u8; 65_536];
    while !goaway {
        to_client.write_all(&std::mem::take(conn.output())).unwrap();
        let n = from_client.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        let used = conn.receive(&pending, &mut events).expect("no connection error");
        pending.drain(..used);
        for event in events.drain(..) {
            match event {
                Event::Request { stream: 1, .. } => {
                    conn.respond(1, 200, &[(b"content-type", b"text/plain")], false);
                    unsent.insert(1, vec![b'a'; 100_000]);
                }
                Event::Request { stream: 3, end_stream, .. } => assert!(!end_stream),
                Event::Data { stream: 3, data, end_stream } => {
                    uploaded += data.len();
                    conn.consumed(3, data.len() as u32);
                    if end_stream {
                        conn.respond(3, 200, &[], false);
                        let length = uploaded.to_string();
                        assert_eq!(conn.send_data(3, length.as_bytes(), false), length.len());
                        conn.send_trailers(3, &[(b"x-bytes", length.as_bytes())]);
                    }
                }
                Event::Writable => {}
                Event::GoAway { .. } => goaway = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        for (stream, body) in unsent.iter_mut() {
            let taken = conn.send_data(*stream, body, true);
            body.drain(..taken);
        }
        unsent.retain(|_, body| !body.is_empty());
    }
    to_client.write_all(&std::mem::take(conn.output())).ok();
    drop(to_client);
    let status = client.wait().unwrap();
    let mut err = String::new();
    client.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success() && err.trim_end().ends_with("ok"), "the h2 client: {err}");
    assert_eq!(uploaded, 100_000);
    assert!(unsent.is_empty() && conn.open_streams() == 0);
}
