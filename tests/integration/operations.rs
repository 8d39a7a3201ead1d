//! The operator's signals under load: HUP reloads (a rebuilt app library is served, no request fails;
//! a changed `bind` in the config file is rebound), USR1 reopens moved log files, WINCH parks the
//! workers, USR2 + WINCH + QUIT upgrades the binary with no request failing, and `--reload` reloads
//! when the library file changes.

use crate::load::Load;
use crate::procs::{Bare, TempDir, live_children, poll_for, tcp_get, unix_get};
use crate::support::{Server, WAIT, worker_class};
use std::net::{SocketAddr, TcpListener, TcpStream};
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
    // Gone, or exited and not yet reaped (a zombie is not a live child).
    assert!(
        old_workers
            .iter()
            .all(|w| crate::support::stat(*w).is_none_or(|(state, ppid)| ppid != old || state == 'Z'))
    );
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
fn reload_extra_file_reloads_when_a_watched_file_changes() {
    let dir = TempDir::new("reload-extra");
    let settings = dir.join("settings.toml");
    std::fs::write(&settings, "greeting = 'one'\n").unwrap();
    let extra = settings.display().to_string();
    let server =
        Server::builder("chaos").workers(2).args(&["--reload", "--reload-extra-file", &extra]).start();
    let before = server.wait_for_workers(2);
    std::fs::write(&settings, "greeting = 'two, longer'\n").unwrap();
    server.wait_for_log(&format!("File {extra} changed; reloading"));
    server.wait_for_log("Reloaded: 2 workers");
    let after = poll_for(WAIT, || {
        let now = server.wait_for_workers(2);
        now.iter().all(|p| !before.contains(p)).then_some(now)
    });
    assert!(after.is_some(), "new workers serve after the change: {:?}", server.worker_pids());
    assert_eq!(server.get("/ok").text(), "ok");
}

#[test]
fn a_reload_whose_library_cannot_load_keeps_the_old_workers_serving() {
    let dir = TempDir::new("badreload");
    let v1 = build_app(&dir, "v1", "still serving");
    let served = dir.join("libserved.so");
    deploy(&v1, &served);
    let server = Server::builder_for_path(&served).workers(2).start();
    server.allow_log("cannot load app");
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

/// Writes the config file a rebind story reloads: `app`, two workers, the suite's worker class, and
/// `bind`.
fn write_config(path: &Path, app: &str, bind: &[&str]) {
    let bind: Vec<String> = bind.iter().map(|b| format!("{b:?}")).collect();
    let text = format!(
        "app = {app:?}\nworkers = 2\nworker-class = {:?}\nbind = [{}]\n",
        worker_class(),
        bind.join(", ")
    );
    std::fs::write(path, text).unwrap();
}

/// `rustgun -c FILE`, ready with its two workers.
fn start_with_config(path: &Path) -> Bare {
    let config = path.display().to_string();
    let class = worker_class();
    let mut args = vec!["-c", config.as_str()];
    if class == "threads" {
        args.extend(["--threads", "4"]);
    }
    let server = Bare::spawn(&args, &[]);
    server.wait_for_log("Ready: 2 workers");
    server
}

fn signal(server: &Bare, sig: i32) {
    // SAFETY: kill(2) on the master this test started.
    unsafe { libc::kill(server.pid, sig) };
}

/// HUP, then wait for the `n`th reload to finish.
fn reload(server: &Bare, n: usize) {
    signal(server, libc::SIGHUP);
    poll_for(WAIT, || {
        (server.log().iter().filter(|l| l.contains("Reloaded: 2 workers")).count() >= n).then_some(())
    })
    .unwrap_or_else(|| panic!("reload {n} did not finish; log:\n{}", server.log().join("\n")));
}

/// The TCP addresses of the `Listening at: http://…` lines so far, in order.
fn tcp_listening(server: &Bare) -> Vec<SocketAddr> {
    let lines = server.log();
    let urls = lines.iter().filter_map(|l| l.split("Listening at: http://").nth(1));
    urls.filter_map(|u| u.split_whitespace().next()?.parse().ok()).collect()
}

#[test]
fn hup_with_a_new_unix_bind_serves_the_new_socket_and_removes_the_old_file() {
    let (dir, hello) = (TempDir::new("rebind-unix"), crate::procs::lib("hello"));
    let (a, b, config) = (dir.join("a.sock"), dir.join("b.sock"), dir.join("rustgun.toml"));
    let (bind_a, bind_b) = (format!("unix:{}", a.display()), format!("unix:{}", b.display()));
    write_config(&config, &hello, &[&bind_a]);
    let server = start_with_config(&config);
    assert_eq!(unix_get(&a, "/").map(|r| r.status), Some(200));
    assert!(!b.exists());

    write_config(&config, &hello, &[&bind_b]);
    reload(&server, 1);
    assert_eq!(unix_get(&b, "/").map(|r| r.status), Some(200), "the new socket serves");
    server.wait_for_log(&format!("Listening at: {bind_b}"));
    server.wait_for_log(&format!("Stopped listening at: {bind_a}"));
    assert!(!a.exists(), "the dropped socket's file is removed");
    assert!(std::os::unix::net::UnixStream::connect(&a).is_err());
    for i in 0..5 {
        assert_eq!(unix_get(&b, &format!("/{i}")).map(|r| r.status), Some(200));
    }
}

#[test]
fn hup_adding_then_dropping_a_tcp_address_keeps_the_unchanged_one_open_and_closes_the_dropped_one() {
    let (dir, hello) = (TempDir::new("rebind-tcp"), crate::procs::lib("hello"));
    let config = dir.join("rustgun.toml");
    // Ports are learnt from the log, never guessed: `127.0.0.1:0` binds a free one.
    write_config(&config, &hello, &["127.0.0.1:0"]);
    let server = start_with_config(&config);
    let a = tcp_listening(&server)[0];
    assert_eq!(tcp_get(a, "/").map(|r| r.status), Some(200));

    // A again, spelt with its port now (an unchanged address however written), plus a new one.
    let load = Load::start(a, 4, "/", 50_000);
    load.wait_for_more(50);
    write_config(&config, &hello, &[&a.to_string(), "127.0.0.1:0"]);
    reload(&server, 1);
    load.wait_for_more(50);
    let report = load.stop();
    assert!(report.failed.is_empty(), "requests to the kept address failed: {:?}", report.failed);
    let listening = tcp_listening(&server);
    assert_eq!(listening.len(), 2, "one new `Listening at:` line: {listening:?}");
    let b = listening[1];
    assert_ne!(a, b);
    assert_eq!(tcp_get(b, "/").map(|r| r.status), Some(200), "the added address serves");
    assert_eq!(tcp_get(a, "/").map(|r| r.status), Some(200), "the kept address serves");

    write_config(&config, &hello, &[&b.to_string()]);
    reload(&server, 2);
    server.wait_for_log(&format!("Stopped listening at: http://{a}"));
    assert_eq!(tcp_get(b, "/").map(|r| r.status), Some(200));
    // Once the previous workers have exited nothing holds A: connections are refused.
    let refused = poll_for(WAIT, || {
        TcpStream::connect(a).err().filter(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    assert!(refused.is_some(), "{a} still accepts connections after it was dropped from bind");
    assert_eq!(tcp_get(b, "/").map(|r| r.status), Some(200));
}

#[test]
fn hup_naming_an_address_that_cannot_be_bound_keeps_the_configuration_and_serves_on() {
    let (dir, hello) = (TempDir::new("rebind-fail"), crate::procs::lib("hello"));
    let (a, c, config) = (dir.join("a.sock"), dir.join("c.sock"), dir.join("rustgun.toml"));
    let (bind_a, bind_c) = (format!("unix:{}", a.display()), format!("unix:{}", c.display()));
    write_config(&config, &hello, &[&bind_a]);
    let server = start_with_config(&config);
    assert_eq!(unix_get(&a, "/").map(|r| r.status), Some(200));

    // C binds, then the port this test holds cannot: nothing of the new list may stay.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    write_config(&config, &hello, &[&bind_a, &bind_c, &taken_addr]);
    reload(&server, 1);
    let log = server.log();
    let errors = crate::procs::error_lines(&log);
    assert_eq!(errors.len(), 1, "one error line: {errors:#?}");
    assert!(
        errors[0]
            .contains(&format!("Reload: keeping the current configuration: cannot listen on {taken_addr}:")),
        "{}",
        errors[0]
    );
    assert!(!c.exists(), "the address bound before the failure is closed again");
    assert!(!log.iter().any(|l| l.contains(&format!("Listening at: {bind_c}"))), "{log:#?}");
    for i in 0..5 {
        assert_eq!(unix_get(&a, &format!("/{i}")).map(|r| r.status), Some(200), "the old socket serves on");
    }
    drop(taken); // held until here: the address stays unbindable throughout
}

#[test]
fn a_reload_to_a_new_bind_whose_workers_cannot_boot_goes_back_to_the_old_listener() {
    let (dir, hello) = (TempDir::new("rebind-abandon"), crate::procs::lib("hello"));
    let (a, b, config) = (dir.join("a.sock"), dir.join("b.sock"), dir.join("rustgun.toml"));
    let (bind_a, bind_b) = (format!("unix:{}", a.display()), format!("unix:{}", b.display()));
    let broken = dir.join("libbroken.so");
    std::fs::write(&broken, b"not an ELF file").unwrap();
    write_config(&config, &hello, &[&bind_a]);
    let server = start_with_config(&config);

    write_config(&config, &broken.display().to_string(), &[&bind_b]);
    signal(&server, libc::SIGHUP);
    server.wait_for_log(&format!("Listening at: {bind_b}"));
    server.wait_for_log("Reload failed:");
    server.wait_for_log(&format!("Stopped listening at: {bind_b}"));
    assert!(!b.exists(), "the address the failed reload added is closed again");
    for i in 0..5 {
        assert_eq!(unix_get(&a, &format!("/{i}")).map(|r| r.status), Some(200), "the old socket serves on");
    }
}

#[test]
fn usr2_after_a_rebind_hands_the_new_listener_to_the_new_master() {
    let (dir, hello) = (TempDir::new("rebind-usr2"), crate::procs::lib("hello"));
    let (a, b, config) = (dir.join("a.sock"), dir.join("b.sock"), dir.join("rustgun.toml"));
    let (bind_a, bind_b) = (format!("unix:{}", a.display()), format!("unix:{}", b.display()));
    write_config(&config, &hello, &[&bind_a]);
    let server = start_with_config(&config);
    write_config(&config, &hello, &[&bind_b]);
    reload(&server, 1);
    server.wait_for_log(&format!("Stopped listening at: {bind_a}"));

    signal(&server, libc::SIGUSR2);
    let upgrading = server.wait_for_log("Upgrading:");
    assert!(upgrading.contains("adopted 1 sockets"), "{upgrading}");
    let new_master_listening = |l: &String| {
        l.contains(&format!("Listening at: {bind_b} (")) && !l.contains(&format!("({})", server.pid))
    };
    poll_for(WAIT, || server.log().iter().any(new_master_listening).then_some(())).unwrap_or_else(|| {
        panic!("the new master does not listen at {bind_b}:\n{}", server.log().join("\n"))
    });
    poll_for(WAIT, || {
        (server.log().iter().filter(|l| l.contains("Ready: 2 workers")).count() >= 2).then_some(())
    })
    .expect("the new master's workers are ready");
    // Only the new master's workers are left to answer on B.
    signal(&server, libc::SIGWINCH);
    poll_for(WAIT, || (live_children(server.pid).len() == 1).then_some(()))
        .unwrap_or_else(|| panic!("the old workers did not stop: {:?}", live_children(server.pid)));
    for i in 0..5 {
        assert_eq!(unix_get(&b, &format!("/{i}")).map(|r| r.status), Some(200));
    }
}
