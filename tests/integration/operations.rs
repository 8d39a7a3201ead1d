//! The operator's signals under load: HUP reloads (a rebuilt app library is served, no request fails),
//! USR1 reopens moved log files, WINCH parks the workers, USR2 + WINCH + QUIT upgrades the binary with
//! no request failing, and `--reload` reloads when the library file changes.

use crate::load::Load;
use crate::procs::{Bare, TempDir, live_children, poll_for, unix_get};
use crate::support::{Server, WAIT, worker_class};
use std::path::{Path, PathBuf};

/// Compiles the C hello app with `body` (13 bytes, the app's Content-Length) into `dir/lib{name}.so`.
pub fn build_app(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    assert_eq!(body.len(), 13, "the hello_c app sends Content-Length: 13");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("apps/hello_c/hello.c")).expect("hello.c");
    crate::procs::build_c_app(dir, name, &source.replace("Hello, World!", body))
}

/// Deploys `from` at `to` the safe way: copy next to it, then rename over it.
pub fn deploy(from: &Path, to: &Path) {
    let tmp = to.with_extension("so.new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[test]
fn hup_five_times_under_load_fails_no_request_and_serves_the_rebuilt_library() {
    let dir = TempDir::new("hup");
    let v1 = build_app(&dir, "v1", "generation 01");
    let v2 = build_app(&dir, "v2", "generation 02");
    let served = dir.join("libserved.so");
    deploy(&v1, &served);
    let server = Server::builder_for_path(&served).workers(2).start();
    let load = Load::start(server.addr, 4, "/", 20_000);
    load.wait_for_more(50);

    for round in 1..=5 {
        if round == 3 {
            deploy(&v2, &served);
        }
        server.signal(libc::SIGHUP);
        server.wait_for_log_count("Reloaded: 2 workers", round);
        load.wait_for_more(50);
    }
    let report = load.stop();
    eprintln!("HUP x5 under load: {report:?}");
    assert!(report.failed.is_empty(), "failed requests: {:?}", report.failed);
    assert!(report.bodies.contains_key("generation 01"), "bodies: {:?}", report.bodies);
    assert!(report.bodies.contains_key("generation 02"), "bodies: {:?}", report.bodies);
    // Once the previous generation has left, only the rebuilt library answers.
    server.wait_for_workers(2);
    assert_eq!(server.get("/").text(), "generation 02");
}

#[test]
fn usr1_reopens_the_access_and_error_logs_in_master_and_workers() {
    let dir = TempDir::new("usr1");
    let (sock, access, error) = (dir.join("s.sock"), dir.join("access.log"), dir.join("error.log"));
    let bind = format!("unix:{}", sock.display());
    let class = worker_class();
    let (access_arg, error_arg) = (access.display().to_string(), error.display().to_string());
    let app = crate::procs::lib("hello");
    let mut args = vec![app.as_str(), "--bind", &bind, "--workers", "2", "--worker-class", &class];
    args.extend(["--access-logfile", &access_arg, "--error-logfile", &error_arg]);
    let server = Bare::spawn(&args, &[]);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    poll_for(WAIT, || read(&error).contains("Ready: 2 workers").then_some(()))
        .unwrap_or_else(|| panic!("not ready; error log:\n{}", read(&error)));
    assert_eq!(unix_get(&sock, "/before").map(|r| r.status), Some(200));
    assert!(read(&access).contains("GET /before"));

    let (access_old, error_old) = (dir.join("access.log.1"), dir.join("error.log.1"));
    std::fs::rename(&access, &access_old).unwrap();
    std::fs::rename(&error, &error_old).unwrap();
    // SAFETY: kill(2) on the master this test started.
    unsafe { libc::kill(server.pid, libc::SIGUSR1) };
    poll_for(WAIT, || read(&error).contains("Handling signal: SIGUSR1").then_some(()))
        .unwrap_or_else(|| panic!("the master wrote no line to the new error log"));
    // Each worker reopens in its signal handler: wait until no descriptor of theirs names an old file.
    let workers = live_children(server.pid);
    assert_eq!(workers.len(), 2);
    let on_old_files = |pid: i32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == access_old || t == error_old))
    };
    poll_for(WAIT, || workers.iter().all(|&w| !on_old_files(w)).then_some(()))
        .unwrap_or_else(|| panic!("a worker still writes to a moved log file"));
    for i in 0..10 {
        assert_eq!(unix_get(&sock, &format!("/after-{i}")).map(|r| r.status), Some(200));
    }
    let (new, old) = (read(&access), read(&access_old));
    for i in 0..10 {
        assert!(new.contains(&format!("GET /after-{i} ")), "/after-{i} missing from the new file:\n{new}");
    }
    assert!(!old.contains("/after-"), "the moved file got new lines:\n{old}");
    assert!(!new.contains("/before"));
}

#[test]
fn winch_parks_the_workers_and_ttin_or_hup_bring_them_back() {
    let server = Server::builder("hello").workers(2).start();
    server.wait_for_workers(2);
    server.signal(libc::SIGWINCH);
    server.wait_for_log("Handling signal: SIGWINCH");
    server.wait_for_workers(0);
    // The master keeps the socket: a connection made now waits in the listen queue.
    let mut waiting = server.conn();
    waiting.send(b"GET /queued HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    server.signal(libc::SIGTTIN);
    server.wait_for_workers(1);
    assert_eq!(waiting.response().status, 200, "the queued request is served once a worker is back");
    server.signal(libc::SIGHUP);
    server.wait_for_log("Reloaded: 2 workers");
    server.wait_for_workers(2);
    assert_eq!(server.get("/").status, 200);
}

/// The pid in a pidfile, once it holds one other than `not`.
fn pid_in(path: &Path, not: i32) -> i32 {
    poll_for(WAIT, || std::fs::read_to_string(path).ok()?.trim().parse::<i32>().ok().filter(|p| *p != not))
        .unwrap_or_else(|| panic!("{} never named a new pid", path.display()))
}

#[test]
fn usr2_then_winch_then_quit_upgrades_the_binary_with_no_failed_request() {
    let dir = TempDir::new("usr2");
    let pidfile = dir.join("rustgun.pid");
    let pid_arg = pidfile.display().to_string();
    let mut server = Server::builder("hello").workers(2).args(&["-p", &pid_arg]).start();
    let old = server.pid;
    let old_workers = server.wait_for_workers(2);
    let load = Load::start(server.addr, 4, "/", 50_000);
    load.wait_for_more(50);

    server.signal(libc::SIGUSR2);
    let new = pid_in(&pidfile, old);
    let oldbin = dir.join("rustgun.pid.oldbin");
    assert_eq!(std::fs::read_to_string(&oldbin).unwrap().trim(), old.to_string());
    server.wait_for_log_count("Ready: 2 workers", 2);
    assert_eq!(crate::support::stat(new).map(|s| s.1), Some(old), "the new master is the old one's child");
    load.wait_for_more(50);
    // USR2 again while the new master runs: ignored.
    server.signal(libc::SIGUSR2);
    server.wait_for_log("Ignoring SIGUSR2");

    server.signal(libc::SIGWINCH);
    poll_for(WAIT, || (live_children(old) == [new]).then_some(()))
        .unwrap_or_else(|| panic!("the old workers did not stop: {:?}", live_children(old)));
    assert!(old_workers.iter().all(|w| crate::support::stat(*w).is_none_or(|s| s.1 != old)));
    load.wait_for_more(50);

    server.signal(libc::SIGQUIT);
    assert_eq!(server.wait_exit(), Some(0));
    assert!(!oldbin.exists(), "the old master removed its .oldbin pidfile");
    load.wait_for_more(100);
    let report = load.stop();
    eprintln!("USR2 + WINCH + QUIT under load: {report:?}");
    assert!(report.failed.is_empty(), "failed requests: {:?}", report.failed);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), new.to_string());
    assert_eq!(live_children(new).len(), 2, "the new master serves with its own workers");
    assert_eq!(server.get("/").status, 200);
    // SAFETY: kill(2) on the new master this test caused to exist.
    unsafe { libc::kill(new, libc::SIGTERM) };
    poll_for(WAIT, || (!pidfile.exists()).then_some(())).expect("the new master removes its pidfile");
}

#[test]
fn reload_flag_reloads_when_the_library_file_is_replaced() {
    let dir = TempDir::new("reload");
    let v1 = build_app(&dir, "v1", "first version");
    let v2 = build_app(&dir, "v2", "second versio");
    let served = dir.join("libserved.so");
    deploy(&v1, &served);
    let server = Server::builder_for_path(&served).workers(2).arg("--reload").start();
    assert_eq!(server.get("/").text(), "first version");
    deploy(&v2, &served);
    server.wait_for_log("changed; reloading");
    server.wait_for_log("Reloaded: 2 workers");
    server.wait_for_workers(2);
    assert_eq!(server.get("/").text(), "second versio");
}

#[test]
fn a_reload_whose_library_cannot_load_keeps_the_old_workers_serving() {
    let dir = TempDir::new("badreload");
    let v1 = build_app(&dir, "v1", "still serving");
    let served = dir.join("libserved.so");
    deploy(&v1, &served);
    let server = Server::builder_for_path(&served).workers(2).start();
    let before = server.wait_for_workers(2);
    std::fs::write(dir.join("broken.so"), b"not an ELF file").unwrap();
    deploy(&dir.join("broken.so"), &served);
    server.signal(libc::SIGHUP);
    server.wait_for_log("Reload failed:");
    assert_eq!(server.get("/").text(), "still serving");
    poll_for(WAIT, || (live_children(server.pid) == before).then_some(())).unwrap_or_else(|| {
        panic!("the old workers {before:?} should be alone: {:?}", live_children(server.pid))
    });
    assert_eq!(server.get("/").text(), "still serving");
}
