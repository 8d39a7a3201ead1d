//! gunicorn.conf.py run unchanged: its settings by gunicorn's names (every gunicorn setting that has
//! a command-line flag, read from the pinned gunicorn's own registry), `./gunicorn.conf.py` read
//! when no `-c` is given, `-c python:module`, and each server hook seen firing at its moment in its
//! process (master hooks in the master, worker hooks in the worker), with a file that writes one
//! line per call. A file without hooks leaves no Python in the master.

use crate::gunicorn_flags::REFUSED;
use crate::procs::{Bare, TempDir, lib, live_children, poll_for, tcp_get};
use crate::support::{WAIT, pyenv, run, worker_class};
use std::path::Path;
use std::process::Command;

/// A file of hooks that each append `NAME pid=PID ...` to `marks` (its path is the first line).
const HOOKS: &str = r#"
import multiprocessing, os
workers = multiprocessing.cpu_count() * 0 + 2
timeout = 2

def mark(name, *extra):
    with open(MARKS, "a") as f:
        f.write(" ".join([name, "pid=%d" % os.getpid()] + [str(e) for e in extra]) + "\n")

mark("loaded")

def on_starting(server): mark("on_starting", server.pid)
def when_ready(server): mark("when_ready", server.num_workers)
def on_reload(server): mark("on_reload")
def pre_fork(server, worker): mark("pre_fork", worker.id, worker.pid)
def post_fork(server, worker): mark("post_fork", worker.pid, worker.ppid)
def post_worker_init(worker): mark("post_worker_init", worker.pid)
def pre_request(worker, req): mark("pre_request", req.method, req.path)
def post_request(worker, req, environ, resp): mark("post_request", req.path, resp.status_code, environ["PATH_INFO"])
def worker_int(worker): mark("worker_int", worker.pid)
def worker_abort(worker): mark("worker_abort", worker.pid)
def child_exit(server, worker): mark("child_exit", worker.pid)
def worker_exit(server, worker): mark("worker_exit", worker.pid)
def nworkers_changed(server, new_value, old_value): mark("nworkers_changed", new_value, old_value)
def on_exit(server): mark("on_exit")
"#;

/// A WSGI app: `/spin` never returns (for `--timeout`), anything else answers `ok`.
const APP: &str = r#"
def application(environ, start_response):
    if environ["PATH_INFO"] == "/spin":
        while True:
            pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"#;

/// A directory holding `gunicorn.conf.py` (the hooks) and `app.py`.
fn project() -> TempDir {
    let dir = TempDir::new("gconf");
    let marks = dir.join("marks");
    std::fs::write(
        dir.join("gunicorn.conf.py"),
        format!("MARKS = {:?}\n{HOOKS}", marks.display().to_string()),
    )
    .unwrap();
    std::fs::write(dir.join("app.py"), APP).unwrap();
    dir
}

/// `rustgun app:application` started in `dir` with no `-c`: gunicorn's default file is read.
fn start_in(dir: &TempDir) -> Bare {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
    cmd.current_dir(dir.join(""));
    let class = worker_class();
    let venv = pyenv().display().to_string();
    let mut args = vec!["app:application", "--bind", "127.0.0.1:0", "--worker-class", class.as_str()];
    if class == "threads" {
        args.extend(["--threads", "2"]);
    }
    Bare::spawn_in(cmd, &args, &[("VIRTUAL_ENV", venv.as_str())])
}

/// The marks written so far, as `(name, pid, the rest)`.
fn marks(dir: &TempDir) -> Vec<(String, i32, String)> {
    let text = std::fs::read_to_string(dir.join("marks")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut words = l.splitn(3, ' ');
            let name = words.next()?.to_string();
            let pid = words.next()?.strip_prefix("pid=")?.parse().ok()?;
            Some((name, pid, words.next().unwrap_or_default().to_string()))
        })
        .collect()
}

/// Waits (bounded) until `count` marks named `name` are there; they.
fn wait_marks(dir: &TempDir, name: &str, count: usize) -> Vec<(i32, String)> {
    poll_for(WAIT, || {
        let found: Vec<(i32, String)> =
            marks(dir).into_iter().filter(|(n, _, _)| n == name).map(|(_, p, r)| (p, r)).collect();
        (found.len() >= count).then_some(found)
    })
    .unwrap_or_else(|| panic!("fewer than {count} {name} marks: {:?}", marks(dir)))
}

#[test]
fn every_hook_of_gunicorn_conf_py_fires_at_its_moment_in_its_process() {
    let dir = project();
    let mut server = start_in(&dir);
    let addr = server.wait_ready();
    let master = server.pid;

    // The master ran the file, then its start hooks; the file's `workers` expression made two workers.
    assert_eq!(wait_marks(&dir, "on_starting", 1), [(master, master.to_string())]);
    assert_eq!(wait_marks(&dir, "when_ready", 1), [(master, "2".to_string())]);
    let forks = wait_marks(&dir, "pre_fork", 2);
    assert!(forks.iter().all(|(pid, rest)| *pid == master && rest.ends_with("None")), "{forks:?}");
    let workers = live_children(master);
    assert_eq!(workers.len(), 2, "two workers from `workers = ...`");
    // Each worker ran post_fork and post_worker_init itself, knowing its master.
    for (pid, rest) in wait_marks(&dir, "post_fork", 2) {
        assert!(workers.contains(&pid), "post_fork in worker {pid}, not {workers:?}");
        assert_eq!(rest, format!("{pid} {master}"));
    }
    let inits: Vec<i32> = wait_marks(&dir, "post_worker_init", 2).into_iter().map(|(p, _)| p).collect();
    assert!(inits.iter().all(|p| workers.contains(p)), "{inits:?} vs {workers:?}");

    // A request: pre_request and post_request in the worker that served it.
    assert_eq!(tcp_get(addr, "/hello").expect("an answer").text(), "ok");
    let (pre, rest) = wait_marks(&dir, "pre_request", 1).remove(0);
    assert!(workers.contains(&pre) && rest == "GET /hello", "{pre} {rest}");
    let (post, rest) = wait_marks(&dir, "post_request", 1).remove(0);
    assert_eq!((post, rest.as_str()), (pre, "/hello 200 /hello"));

    // TTIN: the master says the count changed, and forks the third worker.
    // SAFETY: kill(2) on the server this test started.
    unsafe { libc::kill(master, libc::SIGTTIN) };
    assert_eq!(wait_marks(&dir, "nworkers_changed", 1), [(master, "3 2".to_string())]);
    wait_marks(&dir, "post_worker_init", 3);

    // QUIT to one worker: worker_int runs in it before it exits; the master reaps it (child_exit)
    // and replaces it.
    let victim = workers[0];
    // SAFETY: kill(2) on a worker of the server this test started.
    unsafe { libc::kill(victim, libc::SIGQUIT) };
    assert_eq!(wait_marks(&dir, "worker_int", 1), [(victim, victim.to_string())]);
    assert_eq!(wait_marks(&dir, "child_exit", 1), [(master, victim.to_string())]);
    wait_marks(&dir, "post_worker_init", 4);

    // The file ran twice at start: in a throwaway python for its settings, in the master for its hooks.
    let loads = wait_marks(&dir, "loaded", 2);
    assert_eq!(loads.len(), 2, "{loads:?}");
    assert!(loads[0].0 != master && loads[1].0 == master, "{loads:?}");
    // HUP: the master reads the file again (its hooks too) and says so with on_reload.
    // SAFETY: as above.
    unsafe { libc::kill(master, libc::SIGHUP) };
    assert_eq!(wait_marks(&dir, "on_reload", 1), [(master, String::new())]);
    assert_eq!(wait_marks(&dir, "loaded", 4)[3].0, master, "the master ran the file again");
    server.wait_for_log("Reloaded:");

    // TERM: every worker runs worker_exit in itself, the master child_exit for each, then on_exit.
    let serving = live_children(master);
    // SAFETY: as above.
    unsafe { libc::kill(master, libc::SIGTERM) };
    assert_eq!(server.wait_exit(), Some(0));
    let exits: Vec<i32> =
        wait_marks(&dir, "worker_exit", serving.len()).into_iter().map(|(p, _)| p).collect();
    for pid in &serving {
        assert!(exits.contains(pid), "worker {pid} ran worker_exit: {exits:?}");
    }
    let last = marks(&dir).pop().expect("marks");
    assert_eq!((last.0.as_str(), last.1), ("on_exit", master), "on_exit comes last, in the master");
}

#[test]
fn worker_abort_runs_in_the_worker_the_timeout_aborts() {
    let dir = project();
    let server = start_in(&dir);
    let addr = server.wait_ready();
    let master = server.pid;
    wait_marks(&dir, "post_worker_init", 2);
    // A request that never returns: the worker falls silent, the master aborts it after --timeout.
    let spin = std::thread::spawn(move || tcp_get(addr, "/spin"));
    let (pid, _) = wait_marks(&dir, "pre_request", 1).remove(0);
    let (aborted, rest) = wait_marks(&dir, "worker_abort", 1).remove(0);
    assert_eq!((aborted, rest), (pid, pid.to_string()), "worker_abort in the aborted worker");
    assert_eq!(wait_marks(&dir, "child_exit", 1), [(master, pid.to_string())]);
    server.wait_for_log(&format!("WORKER TIMEOUT (pid:{pid})"));
    let _ = spin.join();
}

/// Every gunicorn setting with a flag, as a line of a config file with a value gunicorn takes
/// (`name = value` in Python); the actions and the hooks apart.
const SETTINGS: &str = r#"
import os
from gunicorn.config import Config
values = {
    "bind": "127.0.0.1:8001", "chdir": "/tmp", "user": os.getuid(), "group": os.getgid(),
    "umask": 0o22, "pidfile": "/tmp/rustgun-conf.pid", "worker_tmp_dir": "/dev/shm", "accesslog": "-",
    "logconfig": "/dev/null", "logconfig_json": "/dev/null", "syslog_prefix": "app",
    "statsd_host": "127.0.0.1:8125", "dogstatsd_tags": "env:test", "statsd_prefix": "app",
    "proc_name": "app", "pythonpath": "/tmp", "paste": "app.ini", "keyfile": "/tmp/k.pem",
    "certfile": "/tmp/c.pem", "ssl_version": "TLSv1_2", "cert_reqs": 0, "ca_certs": "/tmp/ca.pem",
    "ciphers": "TLSv1.2", "reload_extra_files": ["/tmp/x.py"], "raw_paste_global_conf": ["a=b"],
    "dirty_apps": ["m:C"], "control_socket": "/tmp/ctl", "control_socket_mode": 0o600,
    "raw_env": ["A=B"], "root_path": "/mnt", "forwarded_allow_ips": ["127.0.0.1", "::1"],
}
for name, s in Config().settings.items():
    if not s.cli or name in ("config", "check_config", "print_config"):
        continue
    if s.action in ("store_true", "store_const"):
        value = True
    elif name in values:
        value = values[name]
    elif isinstance(s.default, (int, str)) and not isinstance(s.default, bool):
        value = s.default
    else:
        value = str(s.default)
    flags = [f for f in s.cli if f.startswith("--")]
    print(f"{name}\t{value!r}\t{flags[0]}")
"#;

#[test]
fn every_gunicorn_setting_is_taken_by_its_name_or_refused_as_listed() {
    let (code, out, err) = run(Command::new(pyenv().join("bin/python")).args(["-c", SETTINGS]));
    assert_eq!(code, 0, "{err}");
    let settings: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    assert!(settings.len() > 90, "gunicorn's settings: {}", settings.len());
    let dir = TempDir::new("gconf-settings");
    let mut wrong = Vec::new();
    for setting in &settings {
        let [name, value, flag] = setting[..] else { panic!("{setting:?}") };
        let file = dir.join(&format!("{name}.py"));
        std::fs::write(&file, format!("{name} = {value}\n")).unwrap();
        let (code, _, err) = run(Command::new(env!("CARGO_BIN_EXE_rustgun")).args([
            "-c",
            &file.display().to_string(),
            "--interface",
            "wsgi",
            "--print-config",
            "myproject.wsgi:application",
        ]));
        match (REFUSED.contains(&flag), code == 0) {
            (false, true) => {}
            (true, false) if err.contains(flag) || err.contains(name) => {}
            (listed, _) => wrong.push(format!("{name} = {value} (refused: {listed}): exit {code}: {err}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `rustgun --print-config` with `-c FILE` (and `args`), run in `dir`; its output.
fn printed(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
    cmd.current_dir(dir).env("VIRTUAL_ENV", pyenv()).args(args).arg("--print-config");
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn gunicorn_names_and_python_values_mean_what_they_mean_in_gunicorn() {
    let dir = TempDir::new("gconf-values");
    let conf = r#"
import multiprocessing
wsgi_app = "myproject.wsgi:application"
workers = multiprocessing.cpu_count() * 2 + 1
bind = ["127.0.0.1:8123", "unix:/tmp/rg-conf.sock"]
preload_app = True
accesslog = "-"
errorlog = "-"
loglevel = "debug"
umask = 0o22
raw_env = ["A=1", "B=2"]
sendfile = False
keepalive = 7
forwarded_allow_ips = ["10.0.0.1", "10.0.0.2"]
proc_name = "shop"
interface = "wsgi"
def helper(): pass
"#;
    std::fs::write(dir.join("gunicorn.conf.py"), conf).unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = printed(&dir.join(""), &[]);
    for line in [
        "app = \"myproject.wsgi:application\"".to_string(),
        format!("workers = {}", cpus * 2 + 1),
        "bind = [\"127.0.0.1:8123\", \"unix:/tmp/rg-conf.sock\"]".to_string(),
        "preload = true".to_string(),
        "access-logfile = \"-\"".to_string(),
        "log-level = \"debug\"".to_string(),
        "umask = \"0o022\"".to_string(),
        "env = [\"A=1\", \"B=2\"]".to_string(),
        "no-sendfile = true".to_string(),
        "keep-alive = 7".to_string(),
        "forwarded-allow-ips = \"10.0.0.1,10.0.0.2\"".to_string(),
        "name = \"shop\"".to_string(),
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in:\n{out}");
    }
    // The command line still wins, setting by setting; -c python:module reads a module the same way.
    assert!(printed(&dir.join(""), &["-w", "3"]).lines().any(|l| l == "workers = 3"));
    std::fs::write(dir.join("deploy_settings.py"), "workers = 5\nwsgi_app = 'm:app'\ninterface = 'wsgi'\n")
        .unwrap();
    let out = printed(&dir.join(""), &["-c", "python:deploy_settings"]);
    assert!(out.lines().any(|l| l == "workers = 5"), "{out}");
    // gunicorn's own scheme map is what rustgun reads; another one is refused rather than ignored.
    std::fs::write(dir.join("scheme.py"), "secure_scheme_headers = {'X-FORWARDED-PROTO': 'https'}\n")
        .unwrap();
    printed(&dir.join(""), &["-c", "scheme.py", "--interface", "wsgi", "m:app"]);
    std::fs::write(dir.join("scheme.py"), "secure_scheme_headers = {'X-SCHEME': 'https'}\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
    cmd.current_dir(dir.join("")).env("VIRTUAL_ENV", pyenv()).args([
        "-c",
        "scheme.py",
        "--interface",
        "wsgi",
        "m:app",
    ]);
    let (code, _, err) = run(cmd.arg("--print-config"));
    assert!(code == 2 && err.contains("secure_scheme_headers"), "{code}: {err}");
}

#[test]
fn a_config_file_that_raises_stops_the_server_with_one_line_naming_it() {
    let dir = TempDir::new("gconf-raise");
    std::fs::write(dir.join("broken.py"), "workers = 2\nraise RuntimeError('no database url')\n").unwrap();
    let file = dir.arg("broken.py");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
    let (code, _, err) = run(cmd.env("VIRTUAL_ENV", pyenv()).args(["-c", &file, &lib("hello")]));
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].contains(&file) && lines[0].contains("RuntimeError: no database url"), "{err}");
}

#[test]
fn without_hooks_the_master_runs_no_python_and_with_them_a_native_app_gets_them_too() {
    let dir = TempDir::new("gconf-native");
    std::fs::write(dir.join("plain.py"), "workers = 1\n").unwrap();
    let venv = pyenv().display().to_string();
    let env = [("VIRTUAL_ENV", venv.as_str())];
    let plain = Bare::spawn(&["-c", &dir.arg("plain.py"), "--bind", "127.0.0.1:0", &lib("hello")], &env);
    plain.wait_ready();
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", plain.pid)).unwrap();
    assert!(!maps.contains("libpython"), "a file without hooks leaves no Python in the master");
    drop(plain);

    let marks = dir.join("marks");
    let hooks = format!(
        "import os\nworkers = 1\ndef when_ready(server):\n    open({:?}, 'w').write(str(os.getpid()))\n",
        marks.display().to_string()
    );
    std::fs::write(dir.join("hooked.py"), hooks).unwrap();
    let hooked = Bare::spawn(&["-c", &dir.arg("hooked.py"), "--bind", "127.0.0.1:0", &lib("hello")], &env);
    let addr = hooked.wait_ready();
    assert_eq!(std::fs::read_to_string(&marks).unwrap(), hooked.pid.to_string());
    assert_eq!(tcp_get(addr, "/").expect("an answer").text(), "Hello, World!");
}

#[test]
fn paste_serves_the_app_a_paste_deploy_file_names() {
    // gunicorn's --paste FILE[#SECTION] stands for the app, and --paste-global fills its global_conf.
    let apps = crate::wsgi::apps_dir();
    let venv = pyenv().display().to_string();
    let env = [("VIRTUAL_ENV", venv.as_str())];
    for (section, answer) in [("", "hello from main, region eu"), ("#admin", "welcome from admin, region eu")]
    {
        let ini = format!("paste.ini{section}");
        let args =
            ["--chdir", &apps, "--paste", &ini, "--paste-global", "region=eu", "--bind", "127.0.0.1:0"];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
        cmd.current_dir(&apps);
        let server = Bare::spawn_in(cmd, &args, &env);
        let addr = server.wait_ready();
        assert_eq!(tcp_get(addr, "/").expect("an answer").text(), answer, "--paste {ini}");
    }
}
