//! Configuration from three places — a TOML file (`-c`), `RUSTGUN_CMD_ARGS` and the command line —
//! with the command line strongest and the file weakest; errors that name the file and the key;
//! `--check-config` on a good and a broken app; `--print-config` printing a file that loads back to
//! the same configuration.

use crate::process_setup::class_args;
use crate::procs::{Bare, TempDir, lib, unix_get};
use crate::support::run;
use std::process::Command;

/// Runs `rustgun ARGS…` to its end with only `env` added to a clean environment; (status, stdout,
/// stderr).
fn rustgun(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rustgun"));
    cmd.args(args).env_remove("WEB_CONCURRENCY").env_remove("RUSTGUN_CMD_ARGS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// The `key = value` line of `key` in `--print-config` output.
fn setting<'a>(printed: &'a str, key: &str) -> &'a str {
    printed
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{printed}"))
}

/// Prints the effective configuration of `args` (asserting success).
fn print_config(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["--print-config"];
    all.extend_from_slice(args);
    let (code, out, err) = rustgun(&all, env);
    assert_eq!(code, 0, "--print-config failed: {err}");
    out
}

#[test]
fn the_command_line_beats_the_environment_beats_the_file() {
    let dir = TempDir::new("precedence");
    let file = dir.join("rustgun.toml");
    std::fs::write(&file, "workers = 2\nbind = [\"127.0.0.1:7001\", \"127.0.0.1:7002\"]\nkeep_alive = 9\n")
        .unwrap();
    let c = file.display().to_string();
    let hello = lib("hello");

    let from_file = print_config(&[&hello, "-c", &c], &[]);
    assert_eq!(setting(&from_file, "workers"), "workers = 2");
    assert_eq!(setting(&from_file, "bind"), r#"bind = ["127.0.0.1:7001", "127.0.0.1:7002"]"#);
    assert_eq!(setting(&from_file, "keep-alive"), "keep-alive = 9", "`keep_alive` is `keep-alive`");

    let env = [("RUSTGUN_CMD_ARGS", "-w 3 --bind 127.0.0.1:7003")];
    let from_env = print_config(&[&hello, "-c", &c], &env);
    assert_eq!(setting(&from_env, "workers"), "workers = 3");
    assert_eq!(
        setting(&from_env, "bind"),
        r#"bind = ["127.0.0.1:7003"]"#,
        "a stronger bind replaces the list"
    );
    assert_eq!(setting(&from_env, "keep-alive"), "keep-alive = 9", "what the env does not set stays");

    let from_cli = print_config(&[&hello, "-c", &c, "--workers", "4", "-b", "unix:/tmp/x.sock"], &env);
    assert_eq!(setting(&from_cli, "workers"), "workers = 4");
    assert_eq!(setting(&from_cli, "bind"), r#"bind = ["unix:/tmp/x.sock"]"#);

    // WEB_CONCURRENCY is a default: any source beats it, and it beats the built-in 1.
    let web = [("WEB_CONCURRENCY", "6")];
    assert_eq!(setting(&print_config(&[&hello, "-c", &c], &web), "workers"), "workers = 2");
    assert_eq!(setting(&print_config(&[&hello], &web), "workers"), "workers = 6");
    assert_eq!(setting(&print_config(&[&hello], &[]), "workers"), "workers = 1");
}

#[test]
fn a_server_takes_its_app_and_settings_from_the_file_and_the_environment() {
    let dir = TempDir::new("from-file");
    let sock = dir.join("s.sock");
    let file = dir.join("rustgun.toml");
    let text = format!("app = {:?}\nworkers = 2\nbind = \"unix:{}\"\n", lib("hello"), sock.display());
    std::fs::write(&file, text).unwrap();
    let c = file.display().to_string();
    let class = class_args();
    let mut args: Vec<&str> = vec!["-c", &c];
    args.extend(class.iter().map(String::as_str));

    let server = Bare::spawn(&args, &[("RUSTGUN_CMD_ARGS", "--workers 3")]);
    server.wait_for_log("Ready: 3 workers serving");
    let resp = unix_get(&sock, "/").expect("served on the file's bind");
    assert_eq!((resp.status, resp.text().as_str()), (200, "Hello, World!"));
    drop(server);

    // The command line's bind wins over the file's.
    args.extend(["--bind", "127.0.0.1:0"]);
    let server = Bare::spawn(&args, &[]);
    server.wait_for_log("Listening at: http://127.0.0.1:");
    server.wait_for_log("Ready: 2 workers serving");
}

#[test]
fn an_unknown_key_is_an_error_naming_the_file_and_the_key() {
    let dir = TempDir::new("unknown-key");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "workers = 2\nwokers = 3\n").unwrap();
    let (code, out, err) = rustgun(&[&lib("hello"), "-c", &file.display().to_string()], &[]);
    assert_eq!(code, 2, "stderr: {err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(&file.display().to_string()) && err.contains("unknown key `wokers`"), "{err}");
}

#[test]
fn bad_values_are_errors_naming_the_file_and_the_key() {
    let dir = TempDir::new("bad-value");
    let file = dir.join("bad.toml");
    let c = file.display().to_string();
    let hello = lib("hello");
    for (text, key, why) in [
        ("workers = \"many\"", "workers", "invalid digit"),
        ("workers = 0", "workers", "not in 1..=4096"),
        ("worker_class = \"fancy\"", "worker_class", "expected one of: sync, threads, event"),
        ("preload = \"yes\"", "preload", "expected true or false"),
        ("timeout = [1, 2]", "timeout", "expected one value"),
        ("user = \"no-such-user-here\"", "user", "no such user"),
        ("umask = \"0o1777\"", "umask", "is not a umask"),
        ("print-config = true", "print-config", "an action, not a setting"),
    ] {
        std::fs::write(&file, format!("{text}\n")).unwrap();
        let (code, _, err) = rustgun(&[&hello, "-c", &c], &[]);
        assert_eq!(code, 2, "{text}: {err}");
        assert_eq!(err.lines().count(), 1, "{text}: one line: {err}");
        assert!(
            err.contains(&c) && err.contains(&format!("key `{key}`")) && err.contains(why),
            "{text}: {err}"
        );
    }
    std::fs::write(&file, "workers = \n").unwrap();
    let (code, _, err) = rustgun(&[&hello, "-c", &c], &[]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("config file {c}, line 1:")), "TOML syntax: {err}");

    let (code, _, err) = rustgun(&[&hello], &[("RUSTGUN_CMD_ARGS", "--workers 'two")]);
    assert_eq!(code, 2);
    assert!(err.contains("RUSTGUN_CMD_ARGS: unbalanced quotes"), "{err}");
    let (code, _, err) = rustgun(&[&hello], &[("RUSTGUN_CMD_ARGS", "--workers two")]);
    assert_eq!(code, 2);
    assert!(err.contains("RUSTGUN_CMD_ARGS: invalid value 'two' for '--workers"), "{err}");
}

#[test]
fn check_config_opens_a_good_app_and_exits_0() {
    let (code, out, err) = rustgun(&[&lib("hello"), "--workers", "3", "--check-config"], &[]);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(out.contains("configuration OK") && out.contains(&lib("hello")), "{out}");
    assert!(!err.contains("Booting worker"), "no worker is forked: {err}");
}

#[test]
fn check_config_names_the_file_and_symbol_of_a_broken_app_and_exits_1() {
    let app = format!("{}:nosuch", lib("hello"));
    let (code, out, err) = rustgun(&[&app, "--check-config"], &[]);
    assert_eq!(code, 1, "stdout: {out}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(&app) && err.contains("symbol `nosuch` not found"), "{err}");

    let (code, _, err) = rustgun(&["/nonexistent/libx.so", "--check-config"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/libx.so:app") && err.contains("No such file"), "{err}");
}

#[test]
fn print_config_prints_a_file_that_loads_back_to_the_same_configuration() {
    let dir = TempDir::new("round-trip");
    let first = print_config(
        &[
            &lib("hello"),
            "-w",
            "3",
            "-b",
            "127.0.0.1:7100",
            "-b",
            "unix:/tmp/rg \"quoted\".sock",
            "-k",
            "threads",
            "--threads",
            "5",
            "--preload",
            "-e",
            "GREETING=hello world",
            "-e",
            "EMPTY=",
            "--umask",
            "027",
            "--access-log-format",
            r#"%(h)s "%(r)s" \ 'x' ü"#,
            "--",
            "app-arg",
            "--looks-like-an-option",
        ],
        &[],
    );
    assert_eq!(setting(&first, "umask"), r#"umask = "0o027""#);
    assert_eq!(setting(&first, "preload"), "preload = true");
    assert_eq!(setting(&first, "reuse-port"), "reuse-port = false", "flags are printed too");
    assert_eq!(setting(&first, "app-args"), r#"app-args = ["app-arg", "--looks-like-an-option"]"#);
    assert!(first.contains("# pid = (not set)"), "unset settings are listed as comments:\n{first}");
    assert!(
        !first.contains("print-config =") && !first.contains("check-config ="),
        "actions are not settings"
    );

    let file = dir.join("printed.toml");
    std::fs::write(&file, &first).unwrap();
    let second = print_config(&["-c", &file.display().to_string()], &[]);
    assert_eq!(first, second, "the printed file loads back to the same configuration");
}
