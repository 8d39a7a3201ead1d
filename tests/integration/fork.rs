//! What a fork hands a worker and what it keeps back: a worker holds the listeners, its own pipes and
//! its log files, none of the master's descriptors; `-e` is applied in each worker after its fork, so
//! a reload's new values reach the new workers; a preloaded app that starts a thread leaves it running
//! in the master (the master lets go of the GIL after the import), is warned about, and its workers
//! still fork cleanly, on every reload too.
//!
//! The fork itself (a child that panics exits 3 and never unwinds into the master's frames) is a unit
//! test of `sys::process`.

use crate::process_setup::getenv_app;
use crate::procs::TempDir;
use crate::supervision::{socket_inodes, tcp_inodes};
use crate::support::Server;
use crate::wsgi::wsgi;
use std::collections::BTreeSet;
use std::io::Write;

/// `pid`'s descriptors from 3 up (0-2 are the test's), each with what it names (`socket:[123]`,
/// `pipe:[456]`, a path).
fn descriptors(pid: i32) -> Vec<(i32, String)> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the process's descriptors");
    let mut fds: Vec<(i32, String)> = dir
        .flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            (fd > 2).then(|| (fd, target.display().to_string()))
        })
        .collect();
    fds.sort();
    fds
}

#[test]
fn a_worker_holds_the_listeners_its_own_pipes_and_its_log_file_and_nothing_of_the_masters() {
    let dir = TempDir::new("worker-fds");
    let access = dir.arg("access.log");
    let server = Server::builder("hello")
        .workers(1)
        .args(&["--metrics-bind", "127.0.0.1:0", "--access-logfile", &access])
        .start();
    let worker = server.wait_for_workers(1)[0];
    assert_eq!(server.get("/").status, 200);

    let listeners: BTreeSet<String> =
        tcp_inodes(server.addr.port(), "0A").into_iter().map(|i| format!("socket:[{i}]")).collect();
    assert_eq!(listeners.len(), 1, "one listening socket on the port");
    // What the test's own caller passed down (a shell's stray descriptors) is nobody's doing here.
    let inherited: BTreeSet<String> =
        descriptors(std::process::id() as i32).into_iter().map(|(_, t)| t).collect();
    let masters: BTreeSet<String> = descriptors(server.pid).into_iter().map(|(_, t)| t).collect();
    let held: Vec<(i32, String)> =
        descriptors(worker).into_iter().filter(|(_, t)| !inherited.contains(t)).collect();
    for (fd, target) in &held {
        let allowed = listeners.contains(target)
            || (!masters.contains(target)
                && (target.starts_with("pipe:") || target.starts_with("anon_inode:") || *target == access));
        assert!(
            allowed,
            "worker fd {fd} -> {target} is not its own; the master holds {masters:?}; worker: {held:?}"
        );
    }
    assert!(held.iter().any(|(_, t)| listeners.contains(t)), "the worker holds the listener: {held:?}");
    assert!(held.iter().any(|(_, t)| *t == access), "the worker holds its access log: {held:?}");
    assert_eq!(socket_inodes(worker).len(), 1, "the listener is the worker's only socket: {held:?}");
}

#[test]
fn a_reloads_new_env_values_reach_the_new_workers() {
    let dir = TempDir::new("env-reload");
    let app = getenv_app(&dir);
    let config = dir.join("rustgun.toml");
    std::fs::write(&config, "env = [\"RG_GREETING=one\"]\n").unwrap();
    let server =
        Server::builder_for_path(&app).workers(1).args(&["-c", &config.display().to_string()]).start();
    assert_eq!(server.get("/RG_GREETING").text(), "one");
    let first = server.wait_for_workers(1)[0];

    std::fs::write(&config, "env = [\"RG_GREETING=two\", \"RG_ADDED=yes\"]\n").unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log(&format!("(pid: {first}) exited"));
    assert_eq!(server.get("/RG_GREETING").text(), "two");
    assert_eq!(server.get("/RG_ADDED").text(), "yes");
}

#[test]
fn a_preloaded_app_that_starts_a_thread_keeps_it_running_in_the_master_and_is_warned_about() {
    let dir = TempDir::new("preload-thread");
    let fifo = dir.join("listener.fifo");
    let path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path in the test's own directory.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let server = wsgi("threaded:app")
        .arg("--preload")
        .env("THREADED_FIFO", &fifo.display().to_string())
        .workers(2)
        .start();
    server.allow_log("with --preload the app library loaded at start keeps serving");
    server.wait_for_log("--preload: the app left the master with 2 threads");

    // The workers inherit the module, not the thread.
    let answer = server.get("/").text();
    let worker: i32 = answer.strip_prefix("listener alive: False in pid ").expect(&answer).parse().unwrap();
    assert!(server.wait_for_workers(2).contains(&worker), "{answer}");

    // The thread answers from the master: it can only when the master does not keep the GIL.
    let tell = |word: &str| {
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).expect("open the FIFO");
        writeln!(writer, "{word}").unwrap();
    };
    tell("ping");
    server.wait_for_log(&format!("threaded: heard ping in pid {}", server.pid));

    // Workers forked beside the running thread (a reload) serve, and the thread goes on.
    let first = server.wait_for_workers(2);
    server.signal(libc::SIGHUP);
    for pid in first {
        server.wait_for_log(&format!("(pid: {pid}) exited"));
    }
    for _ in 0..4 {
        assert!(server.get("/").text().starts_with("listener alive: False in pid "));
    }
    tell("pong");
    server.wait_for_log(&format!("threaded: heard pong in pid {}", server.pid));
}
