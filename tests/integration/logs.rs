//! The logs: the access log in gunicorn's default format and with custom atoms, refused requests
//! included; the error log in a file with every line naming its process and role; `--log-level`;
//! and the command line's own answers (`--version`, a bad value).

use crate::procs::{TempDir, poll_for, unix_get};
use crate::support::{Response, Server, WAIT, run};
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Waits (bounded) until `path` holds at least `n` complete lines; returns them.
fn wait_for_lines(path: &Path, n: usize) -> Vec<String> {
    let text = poll_for(WAIT, || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        (text.ends_with('\n') && text.lines().count() >= n).then_some(text)
    });
    let text = text.unwrap_or_else(|| {
        panic!(
            "{} has fewer than {n} lines:\n{}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        )
    });
    text.lines().map(str::to_string).collect()
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Parses `dd/Mon/yyyy:HH:MM:SS +0000` into Unix seconds, checking every field's shape.
fn parse_clf_time(t: &str) -> i64 {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (stamp, zone) = t.split_once(' ').unwrap_or_else(|| panic!("no zone in {t:?}"));
    assert_eq!(zone, "+0000", "{t}");
    let parts: Vec<&str> = stamp.splitn(3, '/').collect();
    let [day, month, rest] = parts[..] else { panic!("not dd/Mon/yyyy:… in {t:?}") };
    let clock: Vec<&str> = rest.split(':').collect();
    let [year, hh, mm, ss] = clock[..] else { panic!("not yyyy:HH:MM:SS in {t:?}") };
    for (field, width) in [(day, 2), (year, 4), (hh, 2), (mm, 2), (ss, 2)] {
        assert!(field.len() == width && field.bytes().all(|b| b.is_ascii_digit()), "{field:?} in {t:?}");
    }
    let month =
        MONTHS.iter().position(|m| *m == month).unwrap_or_else(|| panic!("month in {t:?}")) as i64 + 1;
    let num = |s: &str| s.parse::<i64>().unwrap();
    let (h, mi, s) = (num(hh), num(mm), num(ss));
    assert!(h < 24 && mi < 60 && s < 61, "{t}");
    days_from_civil(num(year), month, num(day)) * 86_400 + h * 3600 + mi * 60 + s
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn the_access_log_writes_one_default_format_line_per_request() {
    let dir = TempDir::new("access");
    let log = dir.join("access.log");
    let server = Server::builder("hello").args(&["--access-logfile", &dir.arg("access.log")]).start();
    let started = now();
    let curl = |path: &str| {
        let out = Command::new("curl").args(["-s", &server.url(path)]).output().expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, World!");
    };
    curl("/x?y=1");
    curl("/second");
    let lines = wait_for_lines(&log, 2);
    assert_eq!(lines.len(), 2, "one line per request: {lines:#?}");

    let version = run(Command::new("curl").arg("--version")).1;
    let agent = format!("curl/{}", version.split_whitespace().nth(1).expect("curl's version"));
    for (line, request) in lines.iter().zip(["GET /x?y=1 HTTP/1.1", "GET /second HTTP/1.1"]) {
        let (who, rest) = line.split_once(" [").unwrap_or_else(|| panic!("no time in {line:?}"));
        assert_eq!(who, "127.0.0.1 - -", "{line}");
        let (time, rest) = rest.split_once("] \"").unwrap_or_else(|| panic!("no request in {line:?}"));
        let at = parse_clf_time(time);
        assert!((started - 5..=now() + 5).contains(&at), "{time} is not now");
        let (req, rest) = rest.split_once("\" ").unwrap_or_else(|| panic!("no status in {line:?}"));
        assert_eq!(req, request, "{line}");
        let (status, rest) = rest.split_once(' ').unwrap();
        let (bytes, rest) = rest.split_once(' ').unwrap();
        assert_eq!((status, bytes), ("200", "13"), "{line}");
        assert_eq!(rest, format!("\"-\" \"{agent}\""), "{line}");
    }
}

#[test]
fn a_custom_access_log_format_renders_each_atom() {
    let dir = TempDir::new("access-format");
    let log = dir.join("access.log");
    let server = Server::builder("hello")
        .args(&["--access-logfile", &dir.arg("access.log")])
        .args(&["--access-log-format", "%(m)s %(U)s %(q)s %(s)s %(B)s %({x-id}i)s %({content-type}o)s %(p)s"])
        .start();
    let worker = server.wait_for_workers(1)[0];
    let raw = server.raw(b"GET /x?y=1 HTTP/1.1\r\nHost: t\r\nX-Id: abc-123\r\nConnection: close\r\n\r\n");
    assert_eq!(Response::parse_one(&raw).unwrap().0.status, 200);
    let lines = wait_for_lines(&log, 1);
    assert_eq!(lines, [format!("GET /x y=1 200 13 abc-123 text/plain <{worker}>")]);
}

#[test]
fn a_refused_request_is_logged_with_its_status() {
    let dir = TempDir::new("access-400");
    let log = dir.join("access.log");
    let server = Server::builder("hello")
        .args(&["--access-logfile", &dir.arg("access.log")])
        .args(&["--access-log-format", "%(h)s %(s)s"])
        .start();
    server.allow_log("Invalid request from");
    let raw = server.raw(b"GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n");
    assert_eq!(Response::parse_one(&raw).expect("a response").0.status, 400);
    assert_eq!(wait_for_lines(&log, 1), ["127.0.0.1 400"]);
}

#[test]
fn the_error_logfile_gets_every_line_with_its_pid_and_role() {
    let dir = TempDir::new("error-log");
    let (log, sock) = (dir.join("error.log"), dir.join("s.sock"));
    let mut server = Server::builder("hello")
        .bind(&format!("unix:{}", sock.display()))
        .args(&["--error-logfile", &dir.arg("error.log")])
        .workers(2)
        .spawn();
    poll_for(WAIT, || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("Ready: 2 workers serving").then_some(())
    })
    .unwrap_or_else(|| panic!("not ready:\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
    let workers = server.wait_for_workers(2);
    assert_eq!(unix_get(&sock, "/").map(|r| r.status), Some(200));
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(), Some(0));
    assert!(server.log().is_empty(), "stderr got lines meant for the file: {:#?}", server.log());

    let lines = wait_for_lines(&log, 1);
    let mut roles = std::collections::BTreeSet::new();
    for line in &lines {
        // [date] [pid] [LEVEL] [role] message
        let fields: Vec<&str> = line.splitn(4, "] [").collect();
        assert_eq!(fields.len(), 4, "not `[date] [pid] [LEVEL] [role] msg`: {line:?}");
        assert!(fields[0].starts_with('[') && fields[0].ends_with(" +0000"), "{line}");
        let pid: i32 = fields[1].parse().unwrap_or_else(|_| panic!("pid in {line:?}"));
        assert!(["INFO", "WARNING", "ERROR"].contains(&fields[2]), "{line}");
        let (role, _msg) = fields[3].split_once("] ").unwrap_or_else(|| panic!("role in {line:?}"));
        match role {
            "master" => assert_eq!(pid, server.pid, "{line}"),
            worker => {
                assert!(["worker 1", "worker 2"].contains(&worker), "{line}");
                assert!(workers.contains(&pid), "{line}: not a worker pid of {workers:?}");
            }
        }
        roles.insert(role.to_string());
    }
    assert_eq!(roles.into_iter().collect::<Vec<_>>(), ["master", "worker 1", "worker 2"]);
    for needle in [
        "[master] Starting rustgun",
        "Booting worker",
        "Worker stopping",
        "Worker exiting",
        "[master] Shutting down: Master",
    ] {
        assert!(lines.iter().any(|l| l.contains(needle)), "no {needle:?} in:\n{}", lines.join("\n"));
    }
}

#[test]
fn log_level_error_hides_info_lines() {
    let dir = TempDir::new("log-level");
    let sock = dir.join("s.sock");
    let mut server = Server::builder("chaos")
        .bind(&format!("unix:{}", sock.display()))
        .args(&["--log-level", "error"])
        .workers(2)
        .spawn();
    poll_for(WAIT, || unix_get(&sock, "/ok").filter(|r| r.status == 200)).expect("the server serves");
    assert_eq!(unix_get(&sock, "/error").map(|r| r.status), Some(500));
    server.wait_for_log("] [ERROR] [worker ");
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(), Some(0));
    let log = server.log();
    let hidden: Vec<&String> =
        log.iter().filter(|l| l.contains("] [INFO] [") || l.contains("] [WARNING] [")).collect();
    assert!(hidden.is_empty(), "lines below ERROR: {hidden:#?}");
}

#[test]
fn version_prints_the_version_and_exits_0() {
    let (code, out, _) = run(Command::new(env!("CARGO_BIN_EXE_rustgun")).arg("--version"));
    assert_eq!(code, 0);
    assert_eq!(out, format!("rustgun {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_bad_option_value_exits_2_with_clap_s_message() {
    let app = crate::support::app("hello");
    let (code, out, err) = run(Command::new(env!("CARGO_BIN_EXE_rustgun")).args([&app, "--workers", "many"]));
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(err.starts_with("error: invalid value 'many' for '--workers <WORKERS>'"), "{err}");
    let (code, _, err) = run(Command::new(env!("CARGO_BIN_EXE_rustgun")).args([&app, "--log-level", "loud"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'loud' for '--log-level <LOG_LEVEL>'"), "{err}");
    assert!(err.contains("[possible values: debug, info, warning, error, critical]"), "{err}");
}

#[test]
fn capture_output_puts_the_apps_stdout_in_the_error_log() {
    let dir = TempDir::new("capture-output");
    let error_log = dir.join("error.log");
    let (wsgi, apps, venv) = (crate::procs::lib("wsgi"), crate::wsgi::apps_dir(), crate::support::pyenv());
    let log_arg = error_log.display().to_string();
    let args = [
        &wsgi,
        "-b",
        "127.0.0.1:0",
        "--capture-output",
        "--error-logfile",
        &log_arg,
        "--",
        "--pythonpath",
        &apps,
        "probe",
    ];
    let server = crate::procs::Bare::spawn(&args, &[("VIRTUAL_ENV", &venv.display().to_string())]);
    let read = || std::fs::read_to_string(&error_log).unwrap_or_default();
    let addr = poll_for(WAIT, || {
        let text = read();
        text.contains("Ready:")
            .then(|| {
                text.split("Listening at: http://").nth(1)?.split_whitespace().next().map(str::to_string)
            })
            .flatten()
    })
    .unwrap_or_else(|| panic!("the server did not start:\n{}", read()));
    let (code, out, _) = run(Command::new("curl").args(["-s", &format!("http://{addr}/print")]));
    assert_eq!((code, out.as_str()), (0, r#"{"ok": true}"#));
    // The app's print went to the error log file, not to the stdout the server was started with.
    poll_for(WAIT, || read().contains("probe: printed to stdout").then_some(()))
        .unwrap_or_else(|| panic!("no printed line in the error log:\n{}", read()));
    assert!(!server.log().iter().any(|l| l.contains("printed to stdout")), "{:?}", server.log());
}
