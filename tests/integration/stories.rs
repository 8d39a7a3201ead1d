//! Connection-level stories with one expected ending, whatever the worker class: the suite runs this
//! table under sync, threads and event (and each story once more on the event pool), so the drivers
//! cannot drift apart on how a connection lives and ends.

use crate::support::{Response, Server, worker_class};
use std::io::{Read, Write};
use std::net::Shutdown;

/// What the client does on its connection.
#[derive(Clone, Copy)]
enum Client {
    /// Connects and sends nothing.
    Silent,
    /// Sends these bytes and nothing more.
    Sends(&'static [u8]),
    /// Sends these bytes, then shuts its sending side.
    SendsThenHalfCloses(&'static [u8]),
}

/// How the server ends the story.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Closes without a byte.
    QuietClose,
    /// Answers with these statuses in order, then closes.
    Answers(&'static [u16]),
}

struct Story {
    name: &'static str,
    args: &'static [&'static str],
    client: Client,
    ending: Ending,
}

const BURST: &[u8] = b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGET /status?code=201 HTTP/1.1\r\nHost: t\r\n\r\n\
GET /nope HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc\
GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

const STORIES: &[Story] = &[
    Story {
        name: "a client that sends nothing is closed quietly at --header-timeout",
        args: &["--header-timeout", "1"],
        client: Client::Silent,
        ending: Ending::QuietClose,
    },
    Story {
        name: "a head that stops half-way gets 408 at --header-timeout",
        args: &["--header-timeout", "1"],
        client: Client::Sends(b"GET /ok HTTP/1.1\r\nHost: t\r\nX-Half"),
        ending: Ending::Answers(&[408]),
    },
    Story {
        name: "an idle keep-alive connection is closed quietly at --keep-alive",
        args: &["--keep-alive", "1"],
        client: Client::Sends(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n"),
        ending: Ending::Answers(&[200]),
    },
    Story {
        name: "a pipelined burst is answered in order, the last one closing",
        args: &[],
        client: Client::Sends(BURST),
        ending: Ending::Answers(&[200, 201, 404, 200, 200]),
    },
    Story {
        name: "a half-closed client still gets every answer it asked for",
        args: &[],
        client: Client::SendsThenHalfCloses(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n"),
        ending: Ending::Answers(&[200, 200]),
    },
    Story {
        name: "an unread body is discarded and the next request served",
        args: &[],
        client: Client::Sends(
            b"POST /noread HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        ),
        ending: Ending::Answers(&[200, 200]),
    },
    Story {
        name: "a malformed request gets 400 and the connection closes",
        args: &[],
        client: Client::Sends(b"GET /ok HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\nGET /ok HTTP/1.1\r\n\r\n"),
        ending: Ending::Answers(&[400]),
    },
];

fn play(server: &Server, story: &Story, variant: &str) {
    let what = format!("{} ({variant})", story.name);
    let mut conn = server.connect();
    match story.client {
        Client::Silent => {}
        Client::Sends(bytes) => conn.write_all(bytes).unwrap(),
        Client::SendsThenHalfCloses(bytes) => {
            conn.write_all(bytes).unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
        }
    }
    // Every story ends with the server closing: read to the end (the support's read timeout bounds it).
    let mut got = Vec::new();
    if let Err(e) = conn.read_to_end(&mut got) {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{what}: the server never closed ({e})");
    }
    match story.ending {
        Ending::QuietClose => assert!(got.is_empty(), "{what}: got {:?}", String::from_utf8_lossy(&got)),
        Ending::Answers(statuses) => {
            let seen: Vec<u16> = Response::parse_exact(&got).iter().map(|r| r.status).collect();
            assert_eq!(seen, statuses, "{what}: {:?}", String::from_utf8_lossy(&got));
        }
    }
}

#[test]
fn every_class_ends_each_connection_story_the_same_way() {
    for story in STORIES {
        let server = Server::builder("chaos").args(story.args).allow_log("Invalid request from").start();
        play(&server, story, &worker_class());
        assert_eq!(server.get("/ok").text(), "ok", "{}: the worker serves on", story.name);
    }
    if worker_class() == "event" {
        for story in STORIES {
            let server = Server::builder("chaos")
                .args(story.args)
                .args(&["--threads", "2"])
                .allow_log("Invalid request from")
                .start();
            play(&server, story, "event pool");
        }
    }
}
