//! Slow clients cannot freeze an event loop or hold a worker's memory. A pull-mode body (`set_body`, a
//! WSGI iterable) is produced only as the client takes it, into a bounded queue, while the loop serves
//! everyone else; a request body is gathered before the app runs on the loop (in memory up to
//! `--client-body-buffer-size`, then in an unlinked temporary file); and a client that sends its body
//! or takes its response slower than `--min-rate` over `--min-rate-period` is dropped.

use crate::procs::poll_for;
use crate::support::{Response, Server, WAIT};
use crate::wsgi::rss;
use std::io::{Read, Write};
use std::time::Instant;

const MIB: u64 = 1 << 20;

#[test]
fn one_event_loop_serves_a_hundred_requests_while_a_client_stops_reading_a_100_mb_body() {
    let server = Server::builder("chaos")
        .args(&["-k", "event", "--min-rate-period", "2", "--metrics-bind", "127.0.0.1:0"])
        .start();
    let worker = server.wait_for_workers(1)[0];
    let mut stalled = server.connect();
    stalled.write_all(b"GET /big?bytes=100000000 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    // The response has started (its head is here), and then this client reads nothing more.
    let mut first = [0u8; 1024];
    assert!(stalled.read(&mut first).unwrap() > 0);
    let since = Instant::now();
    for i in 0..100 {
        let resp = server.get(&format!("/ok?{i}"));
        assert_eq!(resp.text(), "ok", "request {i} while a client stalls");
    }
    // The loop did not wait on the stalled client: what it holds for it is a bounded queue.
    assert!(rss(worker) < 64 * MIB, "the worker holds {} MiB", rss(worker) / MIB);
    // Reading nothing is slower than any minimum rate: the server drops the client.
    let mut got = 1024u64;
    let mut chunk = vec![0u8; 64 * 1024];
    server.wait_for_log("Dropped a client taking its response slower than --min-rate");
    loop {
        match stalled.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
        assert!(since.elapsed() < WAIT, "the stalled client was never dropped");
    }
    assert!(got < 100_000_000, "the stalled client got the whole body");
    assert_eq!(server.metrics()["rustgun_slow_clients_dropped_total"], 1.0);
    // The same worker goes on serving.
    assert_eq!(server.get("/ok").text(), "ok");
    assert_eq!(server.wait_for_workers(1), vec![worker]);
}

#[test]
fn a_client_that_reads_a_long_body_to_its_end_gets_every_byte_from_the_event_loop() {
    let server = Server::builder("chaos").args(&["-k", "event"]).start();
    let mut client = server.connect();
    client.write_all(b"GET /big?bytes=50000000 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut all = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let head_end = loop {
        let n = client.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early");
        all.extend_from_slice(&chunk[..n]);
        if let Some(at) = all.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let mut body = (all.len() - head_end) as u64;
    assert!(all[head_end..].iter().all(|&b| b == b'x'));
    while body < 50_000_000 {
        let n = client.read(&mut chunk).unwrap();
        assert!(n > 0, "closed after {body} bytes");
        assert!(chunk[..n].iter().all(|&b| b == b'x'), "a wrong byte after {body}");
        body += n as u64;
    }
    assert_eq!(body, 50_000_000);
    // The connection persists after the long response.
    client.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(String::from_utf8_lossy(&rest).ends_with("\r\n\r\nok"), "{:?}", String::from_utf8_lossy(&rest));
}

/// The worker's descriptors that point at a deleted file (a spooled body).
fn spools(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().ends_with("(deleted)"))
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn one_event_loop_serves_a_hundred_requests_while_a_client_holds_back_its_upload_and_drops_it_by_the_rate() {
    let server = Server::builder("chaos").args(&["-k", "event", "--min-rate-period", "2"]).start();
    let mut holder = server.connect();
    // 10 bytes of a 100,000-byte body, and then nothing: under any minimum rate.
    holder.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n0123456789").unwrap();
    for i in 0..100 {
        assert_eq!(
            server.get(&format!("/ok?{i}")).text(),
            "ok",
            "request {i} while a client holds back its body"
        );
    }
    server.wait_for_log("request body sent slower than --min-rate");
    let mut answer = Vec::new();
    let _ = holder.read_to_end(&mut answer);
    let resp = Response::parse_one(&answer).expect("an answer to the holder").0;
    assert_eq!(resp.status, 408, "{:?}", String::from_utf8_lossy(&answer));
    assert_eq!(server.get("/ok").text(), "ok");
}

#[test]
fn a_body_past_the_memory_buffer_waits_in_a_temporary_file_and_arrives_intact() {
    let server =
        Server::builder("chaos").args(&["-k", "event", "--client-body-buffer-size", "65536"]).start();
    let worker = server.wait_for_workers(1)[0];
    let body: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 253) as u8).collect();
    // Chunked, in 100 KiB chunks, with a pipelined request behind it.
    let mut wire = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(100 * 1024) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut conn = server.conn();
    let (start, end) = wire.split_at(wire.len() - 60);
    conn.send(start);
    // All but the end of the body is here: the worker keeps it in a file that has no name.
    assert!(
        poll_for(WAIT, || (spools(worker) == 1).then_some(())).is_some(),
        "no spool file while gathering"
    );
    conn.send(end);
    let echoed = conn.response();
    assert!(echoed.body == body, "the spooled body came back altered ({} bytes)", echoed.body.len());
    assert_eq!(conn.response().text(), "ok", "the pipelined request after the body");
    assert_eq!(spools(worker), 0, "the spool outlived its request");
}

#[test]
fn one_event_loop_serves_others_while_a_client_stops_reading_a_file_it_sends_with_send_file() {
    let dir = crate::procs::TempDir::new("slowfile");
    let big = dir.join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
    let server = crate::wsgi::wsgi("files").args(&["-k", "event", "--min-rate-period", "2"]).start();
    let worker = server.wait_for_workers(1)[0];
    let path = big.display().to_string();
    let mut stalled = server.connect();
    stalled.write_all(format!("GET /?path={path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
    let mut first = [0u8; 1024];
    assert!(stalled.read(&mut first).unwrap() > 0);
    for i in 0..100 {
        let raw = server.raw(
            format!("HEAD /?path={path}&n={i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let resp = Response::parse_one_for(&raw, true).expect("a HEAD response").0;
        assert_eq!(resp.status, 200, "request {i} while a client stalls on a file");
    }
    assert!(rss(worker) < 64 * MIB, "the worker holds {} MiB", rss(worker) / MIB);
    server.wait_for_log("Dropped a client taking its response slower than --min-rate");
    let mut got = 1024u64;
    let mut chunk = vec![0u8; 1 << 20];
    while let Ok(n @ 1..) = stalled.read(&mut chunk) {
        got += n as u64;
    }
    assert!(got < 1 << 30, "the stalled client got the whole file");
}

/// The rule holds in every class (the suite runs this under each): a reader that takes 16 KiB a
/// second, where the minimum is 64 KiB a second, is dropped after a period of waiting on it, well
/// short of the body — however often it comes back for more (each read used to restart `--timeout`).
#[test]
fn a_client_that_reads_slower_than_the_minimum_rate_is_dropped_in_every_class() {
    use std::os::fd::AsRawFd;
    let server = Server::builder("chaos").args(&["--min-rate", "65536", "--min-rate-period", "2"]).start();
    let mut reader = server.connect();
    let small: libc::c_int = 16 * 1024;
    // SAFETY: setsockopt(2) on a socket this test owns, with a pointer to a live c_int and its size.
    let set = unsafe {
        libc::setsockopt(
            reader.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_RCVBUF");
    reader.write_all(b"GET /big?bytes=100000000 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut got = 0u64;
    let mut chunk = vec![0u8; 16 * 1024];
    // 16 KiB a second, until the server says it gave up (a minute at most).
    let dropped = (0..60).find_map(|_| {
        match reader.read(&mut chunk) {
            Ok(n) => got += n as u64,
            Err(e) => panic!("the slow reader's read failed before the drop: {e}"),
        }
        let log = server.try_wait_for_log(
            "Dropped a client taking its response slower than --min-rate",
            std::time::Duration::from_secs(1),
        );
        log.map(|_| ())
    });
    assert!(dropped.is_some(), "a reader at 16 KiB/s was never dropped ({got} bytes)");
    // The connection is reset: what was queued for the client is thrown away rather than left to
    // trickle out through its small window.
    let mut big = vec![0u8; 1 << 20];
    let end = loop {
        match reader.read(&mut big) {
            Ok(0) => break None,
            Ok(n) => got += n as u64,
            Err(e) => break Some(e.kind()),
        }
    };
    assert_eq!(end, Some(std::io::ErrorKind::ConnectionReset), "after {got} bytes");
    assert!(got < 100_000_000, "the slow reader got the whole body");
    assert_eq!(server.get("/ok").text(), "ok");
}

/// The rule bounds uploads in every class too: a client that sends 1 KiB a second, where the minimum
/// is 64 KiB a second, gets 408 after a period of waiting on it — however often it sends a little more
/// (each read used to restart `--timeout`).
#[test]
fn a_client_that_uploads_slower_than_the_minimum_rate_gets_408_in_every_class() {
    let server = Server::builder("echo").args(&["--min-rate", "65536", "--min-rate-period", "2"]).start();
    server.allow_log("reading the request body failed");
    let mut sender = server.connect();
    sender.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n").unwrap();
    // 1 KiB a second, until the server says it gave up (a minute at most).
    let dropped = (0..60).find_map(|_| {
        let _ = sender.write_all(&[b'x'; 1024]);
        server.try_wait_for_log("slower than --min-rate", std::time::Duration::from_secs(1)).map(|_| ())
    });
    assert!(dropped.is_some(), "an upload at 1 KiB/s was never dropped");
    let mut answer = Vec::new();
    let _ = sender.read_to_end(&mut answer);
    let resp = Response::parse_one(&answer).expect("an answer to the slow sender").0;
    assert_eq!(resp.status, 408, "{:?}", String::from_utf8_lossy(&answer));
    assert_eq!(server.get("/").status, 200, "the worker goes on serving");
}
