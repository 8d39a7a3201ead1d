//! gunicorn's whole command line: every option of the gunicorn the tests pin (read from gunicorn's
//! own argument parser, so a new gunicorn option fails this test until rustgun takes it) is taken by
//! rustgun with a value gunicorn takes, except those [`REFUSED`] names, which rustgun refuses with
//! one line naming the option and docs/wsgi.md lists with why. `-v` prints the version.

use crate::support::{pyenv, run};
use std::process::Command;

/// gunicorn's options rustgun refuses on purpose, each by name (and in docs/wsgi.md, with why).
pub const REFUSED: &[&str] = &[
    "--permit-obsolete-folding",
    "--strip-header-spaces",
    "--permit-unconventional-http-method",
    "--permit-unconventional-http-version",
    "--casefold-http-method",
    "--dirty-app",
    "--dirty-workers",
    "--dirty-timeout",
    "--dirty-threads",
    "--dirty-graceful-timeout",
];

/// Each gunicorn option with a value gunicorn takes for it (none for a switch), from gunicorn's
/// settings; the actions (`--help`, `--version`, `-c`, `--check-config`, `--print-config`) apart.
const OPTIONS: &str = r#"
import os
from gunicorn.config import Config
values = {
    "bind": "127.0.0.1:8001", "chdir": "/tmp", "user": str(os.getuid()), "group": str(os.getgid()),
    "umask": "0", "pidfile": "/tmp/rustgun-flags.pid", "worker_tmp_dir": "/dev/shm", "accesslog": "-",
    "logconfig": "/dev/null", "logconfig_json": "/dev/null", "syslog_prefix": "app",
    "statsd_host": "127.0.0.1:8125", "dogstatsd_tags": "env:test", "statsd_prefix": "app",
    "proc_name": "app", "pythonpath": "/tmp", "paste": "app.ini", "keyfile": "/tmp/k.pem",
    "certfile": "/tmp/c.pem", "ssl_version": "TLSv1_2", "cert_reqs": "0", "ca_certs": "/tmp/ca.pem",
    "ciphers": "TLSv1.2", "reload_extra_files": "/tmp/x.py", "raw_paste_global_conf": "a=b",
    "dirty_apps": "m:C", "control_socket": "/tmp/ctl", "control_socket_mode": "384", "raw_env": "A=B",
    "root_path": "/mnt",
}
for name, s in Config().settings.items():
    if not s.cli or name in ("config", "check_config", "print_config"):
        continue
    switch = s.action in ("store_true", "store_const") or s.nargs == "?"
    value = "" if switch else values.get(name, str(s.default))
    for flag in s.cli:
        print(f"{flag}\t{value}")
"#;

#[test]
fn every_gunicorn_option_is_taken_or_refused_by_name_as_listed() {
    let (code, out, err) = run(Command::new(pyenv().join("bin/python")).args(["-c", OPTIONS]));
    assert_eq!(code, 0, "{err}");
    let options: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once('\t')).collect();
    assert!(options.len() > 100, "gunicorn's options: {}", options.len());
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/wsgi.md")).unwrap();
    let mut wrong = Vec::new();
    for (flag, value) in &options {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
        cmd.arg(flag);
        if !value.is_empty() {
            cmd.arg(value);
        }
        // A Python app by module name, its interface given: nothing is imported to print the settings.
        cmd.args(["--interface", "wsgi", "--print-config", "myproject.wsgi:application"]);
        let (code, _, err) = run(&mut cmd);
        let refused_by_name = code != 0 && err.contains(&format!("'{flag}'"));
        match (REFUSED.contains(flag), code == 0) {
            (false, true) => {}
            (true, false) if refused_by_name && docs.contains(&format!("`{flag}`")) => {}
            (listed, _) => {
                wrong.push(format!("{flag} {value} (listed as refused: {listed}): exit {code}: {err}"))
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn dash_v_prints_the_version_as_gunicorn_does() {
    for flag in ["-v", "-V", "--version"] {
        let (code, out, _) = run(Command::new(env!("CARGO_BIN_EXE_rustgun")).arg(flag));
        assert_eq!((code, out.trim()), (0, concat!("rustgun ", env!("CARGO_PKG_VERSION"))), "{flag}");
    }
}

#[test]
fn gunicorns_worker_class_names_pick_rustguns_classes() {
    for (name, class) in
        [("gthread", "threads"), ("gevent", "event"), ("uvicorn.workers.UvicornWorker", "event")]
    {
        let server = crate::support::Server::builder("hello").args(&["-k", name, "--threads", "2"]).start();
        server.wait_for_log(&format!("Using worker: {class}"));
        assert_eq!(server.get("/").text(), "Hello, World!", "-k {name}");
    }
}
