//! Files through `wsgi.file_wrapper` (the server's `send_file`): what the framing takes no more of is
//! never read (a HEAD of a 1 GiB file reads nothing of it), a Content-Length stops the file where it
//! says, and on a plain socket the kernel sends the file with sendfile(2) instead of the worker reading
//! it. `/proc/WORKER/io` is the witness: `rchar` counts the bytes a process read (sendfile's included),
//! `syscr` its read system calls.

use crate::procs::TempDir;
use crate::support::{Response, Server};
use std::io::Write;

const GIB: u64 = 1 << 30;

/// (rchar, syscr) of a process.
fn reads(pid: i32) -> (u64, u64) {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).expect("/proc/PID/io");
    let field = |name: &str| -> u64 {
        io.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).expect(name)
    };
    (field("rchar:"), field("syscr:"))
}

/// Runs `request` against the worker and returns the response and what the worker read meanwhile.
fn measured(server: &Server, worker: i32, request: &str, head: bool) -> (Response, u64, u64) {
    let before = reads(worker);
    let raw = server.raw(request.as_bytes());
    let resp = Response::parse_one_for(&raw, head).expect("a complete response").0;
    let after = reads(worker);
    (resp, after.0 - before.0, after.1 - before.1)
}

fn request(method: &str, query: &str) -> String {
    format!("{method} /?{query} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
}

#[test]
fn a_head_of_a_gibibyte_file_reads_none_of_it_and_a_content_length_stops_the_file() {
    let dir = TempDir::new("sendfile");
    let big = dir.join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(GIB).unwrap();
    let server = crate::wsgi::wsgi("files").start();
    let worker = server.wait_for_workers(1)[0];
    let path = big.display().to_string();
    // Once, so that what a first request costs (imports, caches) is not counted below.
    measured(&server, worker, &request("HEAD", &format!("path={path}")), true);

    let (resp, rchar, _) = measured(&server, worker, &request("HEAD", &format!("path={path}")), true);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some(GIB.to_string().as_str()));
    assert!(rchar < 256 * 1024, "a HEAD of a 1 GiB file read {rchar} bytes");

    let (resp, rchar, _) =
        measured(&server, worker, &request("GET", &format!("path={path}&length=100")), false);
    assert_eq!(resp.body, vec![0u8; 100]);
    assert!(rchar < 256 * 1024, "100 bytes of a 1 GiB file read {rchar} bytes");
}

#[test]
fn a_file_with_a_length_goes_out_by_sendfile_and_without_one_is_copied_in_chunks() {
    let dir = TempDir::new("sendfile");
    let file = dir.join("data.bin");
    let content: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::File::create(&file).unwrap().write_all(&content).unwrap();
    let server = crate::wsgi::wsgi("files").start();
    let worker = server.wait_for_workers(1)[0];
    let path = file.display().to_string();
    measured(&server, worker, &request("HEAD", &format!("path={path}")), true);

    // Content-Length framing: the kernel moves the 4 MiB, the worker makes no read call per block.
    let (resp, _, syscr) = measured(&server, worker, &request("GET", &format!("path={path}")), false);
    assert!(resp.body == content, "the file arrived altered ({} bytes)", resp.body.len());
    assert!(syscr < 64, "4 MiB with a Content-Length took {syscr} read calls");

    // Chunked framing: each block is read and framed, and the client still gets the file exactly.
    let (resp, _, syscr) =
        measured(&server, worker, &request("GET", &format!("path={path}&chunked=1")), false);
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert!(resp.body == content, "the chunked file arrived altered ({} bytes)", resp.body.len());
    assert!(syscr >= 64, "the chunked copy took only {syscr} read calls: the witness is blind");
}
