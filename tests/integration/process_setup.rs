//! How the processes are set up: workers drop to `--user`/`--group` before loading the app (seen in
//! `/proc/PID/status`) while the master stays as it is; `--umask` gives the unix socket file its mode;
//! `--chdir` moves the server before it loads the app; `-e` reaches the app; `--daemon` detaches, and
//! the pidfile it writes is how it is stopped; a pidfile naming a live server refuses a second one.

use crate::procs::{Bare, TempDir, error_lines, lib, live_children, poll_for, unix_get};
use crate::support::{WAIT, stat, worker_class};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The worker-class options the suite runs under (`RUSTGUN_TEST_WORKER_CLASS`), for command lines
/// written out in full.
pub(crate) fn class_args() -> Vec<String> {
    let class = worker_class();
    let mut args = vec!["--worker-class".to_string(), class.clone()];
    if class == "threads" {
        args.extend(["--threads".to_string(), "4".to_string()]);
    }
    args
}

/// `rustgun APP --bind unix:DIR/s.sock` plus `extra` and the suite's worker class.
fn spawn_on_socket(app: &str, sock: &Path, extra: &[&str]) -> Bare {
    let bind = format!("unix:{}", sock.display());
    let class = class_args();
    let mut args = vec![app, "--bind", &bind];
    args.extend_from_slice(extra);
    args.extend(class.iter().map(String::as_str));
    Bare::spawn(&args, &[])
}

/// A `/proc/PID/status` line's fields, e.g. `Uid` → `["65534", "65534", "65534", "65534"]`.
fn status_ids(pid: i32, field: &str) -> Vec<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).expect("a status line");
    line[field.len() + 1..].split_whitespace().map(str::to_string).collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn workers_run_as_user_and_group_while_the_master_keeps_its_uid() {
    let hello = lib("hello");
    if !is_root() {
        // Only root can switch users (here to root itself, surely not who we are): the first worker
        // fails to boot, naming the call that failed.
        let class = class_args();
        let mut args = vec![hello.as_str(), "--bind", "127.0.0.1:0", "--user", "root", "--group", "root"];
        args.extend(class.iter().map(String::as_str));
        let mut server = Bare::spawn(&args, &[]);
        assert_eq!(server.wait_exit(), Some(3), "log:\n{}", server.log().join("\n"));
        let log = server.log();
        let errors = error_lines(&log);
        assert_eq!(errors.len(), 1, "log:\n{}", log.join("\n"));
        assert!(errors[0].contains("cannot drop privileges: setgid(0) failed"), "{}", errors[0]);
        return;
    }
    let dir = TempDir::new("privileges");
    let sock = dir.join("s.sock");
    let server =
        spawn_on_socket(&hello, &sock, &["--workers", "2", "--user", "nobody", "--group", "nogroup"]);
    server.wait_for_log("Ready: 2 workers serving");
    let workers = live_children(server.pid);
    assert_eq!(workers.len(), 2);
    for w in &workers {
        assert_eq!(status_ids(*w, "Uid"), ["65534"; 4], "worker {w}: real, effective, saved, fs uid");
        assert_eq!(status_ids(*w, "Gid"), ["65534"; 4], "worker {w}: gids");
        assert_eq!(status_ids(*w, "Groups"), ["65534"], "worker {w}: no supplementary group of root's left");
    }
    assert_eq!(status_ids(server.pid, "Uid"), ["0"; 4], "the master keeps its uid");
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "the socket file belongs to the workers' user");
    let resp = unix_get(&sock, "/").expect("a response from a nobody worker");
    assert_eq!((resp.status, resp.text().as_str()), (200, "Hello, World!"));

    // Changing credentials cleared the workers' parent-death signal; it was set again: a master killed
    // outright still takes its workers with it.
    // SAFETY: kill(2) on the master this test started.
    unsafe { libc::kill(server.pid, libc::SIGKILL) };
    let gone =
        poll_for(WAIT, || workers.iter().all(|w| stat(*w).is_none_or(|(s, _)| s == 'Z')).then_some(()));
    assert!(gone.is_some(), "workers {workers:?} outlived their master");
}

#[test]
fn initgroups_gives_the_workers_every_group_of_their_user() {
    if !is_root() {
        return; // only root can switch users; the error path is the first story
    }
    // nobody, made a member of one more group, in a mount namespace of the server's own (the host's
    // /etc/group is left alone).
    let dir = TempDir::new("initgroups");
    let groups = std::fs::read_to_string("/etc/group").unwrap() + "rgextra:x:4242:nobody\n";
    std::fs::write(dir.join("group"), groups).unwrap();
    let sock = dir.join("s.sock");
    let bind = format!("unix:{}", sock.display());
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        r#"mount --bind "$0" /etc/group && exec "$@""#,
    ]);
    cmd.arg(dir.join("group")).arg(env!("CARGO_BIN_EXE_rustgun"));
    let class = class_args();
    let mut args = vec![lib("hello"), "--bind".into(), bind, "--user".into(), "nobody".into()];
    args.extend(["--group".into(), "nogroup".into(), "--initgroups".into()]);
    args.extend(class);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Bare::spawn_in(cmd, &args, &[]);
    server.wait_for_log("Ready: 1 workers serving");
    let worker = live_children(server.pid)[0];
    let mut groups = status_ids(worker, "Groups");
    groups.sort();
    assert_eq!(groups, ["4242", "65534"], "nobody's groups, by the group file the master read");
    assert_eq!(status_ids(worker, "Gid")[0], "65534");
    assert_eq!(unix_get(&sock, "/").expect("an answer").status, 200);
}

#[test]
fn a_numeric_user_alone_takes_its_primary_group() {
    if !is_root() {
        return; // the error path is the test above
    }
    let dir = TempDir::new("privileges-uid");
    let sock = dir.join("s.sock");
    let server = spawn_on_socket(&lib("hello"), &sock, &["-u", "65534"]);
    server.wait_for_log("Ready: 1 workers serving");
    let worker = live_children(server.pid)[0];
    assert_eq!(status_ids(worker, "Uid")[0], "65534");
    assert_eq!(status_ids(worker, "Gid")[0], "65534", "nobody's primary group, not the master's root");
}

#[test]
fn the_umask_sets_the_unix_socket_files_mode() {
    let dir = TempDir::new("umask");
    for (umask, mode) in [(None, 0o777), (Some("077"), 0o700), (Some("0o027"), 0o750)] {
        let sock = dir.join(&format!("s{mode:o}.sock"));
        let server = match umask {
            Some(m) => spawn_on_socket(&lib("hello"), &sock, &["--umask", m]),
            None => spawn_on_socket(&lib("hello"), &sock, &[]),
        };
        server.wait_for_log("Ready:");
        let got = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "--umask {umask:?} gave mode {got:o}");
        assert_eq!(unix_get(&sock, "/").map(|r| r.status), Some(200));
    }
}

#[test]
fn chdir_moves_the_server_before_it_loads_the_app() {
    let dir = TempDir::new("chdir");
    let app_dir = dir.join("app");
    std::fs::create_dir(&app_dir).unwrap();
    std::fs::copy(lib("hello"), app_dir.join("libmine.so")).unwrap();
    let sock = dir.join("s.sock");
    let chdir = app_dir.display().to_string();
    // Both the app and the socket are given relative to the new directory.
    let server = spawn_on_socket("./libmine.so:app", Path::new("../s.sock"), &["--chdir", &chdir]);
    server.wait_for_log("Ready: 1 workers serving");
    let cwd = |pid: i32| std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd(server.pid), app_dir.canonicalize().unwrap());
    assert_eq!(cwd(live_children(server.pid)[0]), app_dir.canonicalize().unwrap());
    assert_eq!(unix_get(&sock, "/").map(|r| r.text()), Some("Hello, World!".to_string()));
}

/// A C app that answers with the value of the environment variable its path names (`/RG_GREETING`),
/// or 404 when it is unset.
pub(crate) fn getenv_app(dir: &TempDir) -> PathBuf {
    crate::procs::build_c_app(
        dir,
        "getenv",
        r#"#include <stdlib.h>
#include <string.h>
#include "rustgun.h"
static int32_t handle(void *state, const rg_request *req) {
    char name[256];
    size_t n = req->path.len > 1 && req->path.len < sizeof name ? req->path.len - 1 : 0;
    memcpy(name, (const char *)req->path.ptr + 1, n);
    name[n] = 0;
    const char *value = n ? getenv(name) : NULL;
    (void)state;
    int32_t rc = req->host->start_response(req->call, value ? 200 : 404, rg_str_make("", 0), NULL, 0, 0);
    if (rc != RG_OK || !value) return rc;
    return req->host->write(req->call, (const uint8_t *)value, strlen(value));
}
RG_EXPORT const rg_app app = RG_APP_DESCRIPTOR(RG_APP_THREAD_SAFE, NULL, handle, NULL);
"#,
    )
}

#[test]
fn env_options_reach_the_app() {
    let dir = TempDir::new("env");
    let app = getenv_app(&dir).display().to_string();
    let sock = dir.join("s.sock");
    let server =
        spawn_on_socket(&app, &sock, &["-e", "RG_GREETING=hello world", "--env", "RG_EQ=a=b", "-w", "2"]);
    server.wait_for_log("Ready: 2 workers serving");
    for _ in 0..4 {
        assert_eq!(unix_get(&sock, "/RG_GREETING").map(|r| r.text()), Some("hello world".to_string()));
        assert_eq!(unix_get(&sock, "/RG_EQ").map(|r| r.text()), Some("a=b".to_string()));
    }
    assert_eq!(unix_get(&sock, "/RG_UNSET_HERE").map(|r| r.status), Some(404), "the control");
}

/// Kills the daemon named by a pidfile when the test ends early (it left the test's process group).
struct Reap(PathBuf);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) on the daemon this test started; its workers follow it (PDEATHSIG).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// The session id of `pid`, from `/proc/PID/stat`.
fn session_of(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 2..].split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn daemon_detaches_serves_and_stops_through_its_pidfile() {
    let dir = TempDir::new("daemon");
    let (sock, pidfile, errlog) = (dir.join("s.sock"), dir.join("rustgun.pid"), dir.join("error.log"));
    let _reap = Reap(pidfile.clone());
    let hello = lib("hello");
    let (bind, pid_arg, log_arg) =
        (format!("unix:{}", sock.display()), pidfile.display().to_string(), errlog.display().to_string());
    let class = class_args();
    let mut args =
        vec![hello.as_str(), "-D", "-b", &bind, "-p", &pid_arg, "--error-logfile", &log_arg, "-w", "2"];
    args.extend(class.iter().map(String::as_str));
    let mut launcher = Bare::spawn(&args, &[]);
    assert_eq!(launcher.wait_exit(), Some(0), "the launcher exits 0; log:\n{}", launcher.log().join("\n"));

    let daemon: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert_ne!(daemon, launcher.pid);
    let (_, ppid) = stat(daemon).expect("the daemon is alive");
    assert_ne!(ppid, launcher.pid, "the daemon was reparented");
    assert_ne!(session_of(daemon), session_of(std::process::id() as i32), "the daemon has its own session");
    assert_ne!(session_of(daemon), Some(daemon), "and is not its leader (no controlling terminal)");

    let served = poll_for(WAIT, || unix_get(&sock, "/")).expect("the daemon serves");
    assert_eq!(served.text(), "Hello, World!");
    let log = std::fs::read_to_string(&errlog).unwrap();
    assert!(log.contains(&format!("[{daemon}] [INFO] [master] Listening at: unix:")), "{log}");

    // SAFETY: kill(2) on the daemon's pid from its pidfile.
    unsafe { libc::kill(daemon, libc::SIGTERM) };
    let gone = poll_for(WAIT, || (stat(daemon).is_none() && !pidfile.exists()).then_some(()));
    assert!(gone.is_some(), "TERM through the pidfile stops the daemon and removes the pidfile");
}

#[test]
fn a_daemon_that_cannot_start_fails_its_launcher() {
    let dir = TempDir::new("daemon-fail");
    let file = dir.join("not-a-socket");
    std::fs::write(&file, "precious").unwrap();
    let bind = format!("unix:{}", file.display());
    let log_arg = dir.arg("error.log");
    let (code, log) = Bare::run(&[&lib("hello"), "-D", "-b", &bind, "--error-logfile", &log_arg]);
    assert_eq!(code, 1, "log:\n{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("exists and is not a socket")),
        "the launcher says why:\n{}",
        log.join("\n")
    );
}

#[test]
fn a_pidfile_naming_a_live_server_refuses_a_second_one_and_a_stale_one_is_replaced() {
    let dir = TempDir::new("pidfile");
    let pidfile = dir.join("rustgun.pid");
    std::fs::write(&pidfile, "999999999\n").unwrap();
    let p = pidfile.display().to_string();
    let first = spawn_on_socket(&lib("hello"), &dir.join("a.sock"), &["-p", &p]);
    first.wait_for_log("Ready:");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", first.pid),
        "the stale pidfile was replaced"
    );

    let mut second = spawn_on_socket(&lib("hello"), &dir.join("b.sock"), &["-p", &p]);
    assert_eq!(second.wait_exit(), Some(1));
    let log = second.log();
    assert!(
        error_lines(&log).iter().any(|l| l.contains(&format!("names a running process {}", first.pid))),
        "log:\n{}",
        log.join("\n")
    );
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), format!("{}\n", first.pid), "left as it was");
}
