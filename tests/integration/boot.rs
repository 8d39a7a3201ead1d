//! Booting: an app that cannot be loaded or initialised stops the server with exit code 4 and one
//! ERROR line naming the file and the symbol (no respawn storm); a busy port is a clear error; unix
//! sockets serve and replace stale socket files; app arguments after `--` reach `init`.

use crate::procs::{Bare, TempDir, error_lines, lib, unix_get};
use crate::support::Server;
use std::path::PathBuf;
use std::process::Command;

/// Runs a server over `app` that must refuse to boot; checks the shape of the refusal and returns
/// its one ERROR line.
fn refused(app: &str, extra: &[&str], workers: usize) -> String {
    let n = workers.to_string();
    let mut args = vec![app, "--bind", "127.0.0.1:0", "--workers", &n];
    args.extend_from_slice(extra);
    let (code, log) = Bare::run(&args);
    let all = log.join("\n");
    assert_eq!(code, 4, "exit code; log:\n{all}");
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "exactly one ERROR line; log:\n{all}");
    assert!(errors[0].contains("[master]"), "the master reports it: {}", errors[0]);
    let booted = log.iter().filter(|l| l.contains("Booting worker")).count();
    assert!(booted <= workers + 2, "{booted} workers booted for {workers}: a respawn storm\n{all}");
    // Nobody signals this server: a "Handling signal" line would be a signal the master made up.
    assert!(!log.iter().any(|l| l.contains("Handling signal")), "an unsent signal was handled:\n{all}");
    errors[0].clone()
}

#[test]
fn a_missing_library_file_halts_with_code_4() {
    let line = refused("/nonexistent/libx.so:app", &[], 3);
    assert!(line.contains("/nonexistent/libx.so:app"), "{line}");
    assert!(line.contains("No such file"), "{line}");
}

#[test]
fn a_missing_symbol_halts_with_code_4() {
    let app = format!("{}:nosuch", lib("hello"));
    let line = refused(&app, &[], 3);
    assert!(line.contains(&app), "{line}");
    assert!(line.contains("symbol `nosuch` not found"), "{line}");
}

/// A C library with one good descriptor (`app_ok`), one for ABI 2.0 (`app_v2`), one for a newer
/// minor 1.7 (`app_v1_7`), one with a flag no version defines (`app_flags`), one that tries flags
/// and handles it should not (`app_probe`, below), and a plain `int` exported as `app`.
pub(crate) fn c_descriptors(dir: &TempDir) -> PathBuf {
    crate::procs::build_c_app(
        dir,
        "descriptors",
        r#"#include <stdio.h>
#include "rustgun.h"
static const rg_header headers[] = {{RG_STR_INIT("Content-Length"), RG_STR_INIT("2")}};
static int32_t handle(void *state, const rg_request *req) {
    int32_t rc = req->host->start_response(req->call, 200, rg_str_make("", 0), headers, 1, 0);
    (void)state;
    return rc != RG_OK ? rc : req->host->write(req->call, (const uint8_t *)"ok", 2);
}
RG_EXPORT const rg_app app_ok = RG_APP_DESCRIPTOR(0, NULL, handle, NULL);
RG_EXPORT const rg_app app_v2 = {RG_MAGIC, 2, 0, (uint32_t)sizeof(rg_app), 0, NULL, handle, NULL, NULL, NULL, NULL};
RG_EXPORT const rg_app app_v1_7 = {RG_MAGIC, 1, 7, (uint32_t)sizeof(rg_app), 0, NULL, handle, NULL, NULL, NULL, NULL};

/* A descriptor built for ABI 1.2: it ends after `preload` (48 bytes on 64-bit), before 1.3's
 * `on_event`. Its preload must still run. */
typedef struct {
    uint32_t magic; uint16_t major, minor; uint32_t size, flags;
    rg_init_fn init; rg_handle_fn handle; rg_shutdown_fn shutdown; rg_preload_fn preload;
} app12;
static int32_t preload12(const rg_host *host, rg_init *init) {
    host->log(RG_LOG_INFO, rg_str_make("preloaded by a 1.2 descriptor", 29));
    (void)init;
    return RG_OK;
}
RG_EXPORT const app12 app_v1_2 = {RG_MAGIC, 1, 2, (uint32_t)sizeof(app12), 0, NULL, handle, NULL, preload12};
/* RG_APP_ASYNC without the on_event it requires. */
RG_EXPORT const rg_app app_async_mute = RG_APP_DESCRIPTOR(RG_APP_ASYNC, NULL, handle, NULL);
RG_EXPORT const rg_app app_flags = RG_APP_DESCRIPTOR(RG_APP_THREAD_SAFE | (1u << 7), NULL, handle, NULL);
RG_EXPORT int app = 42;

/* Tries a start_response flag no version defines, and writes through the call handle of the request
 * before this one (stale once its handle returned), then answers what each call returned. */
static rg_call *kept;
static int32_t probe(void *state, const rg_request *req) {
    char out[64];
    int32_t flags = req->host->start_response(req->call, 200, rg_str_make("", 0), NULL, 0, 1u << 5);
    int32_t stale = kept ? req->host->write(kept, (const uint8_t *)"x", 1) : 1;
    int n = snprintf(out, sizeof out, "flags=%d stale=%d", flags, stale);
    int32_t rc = req->host->start_response(req->call, 200, rg_str_make("", 0), NULL, 0, 0);
    (void)state;
    kept = req->call;
    return rc != RG_OK ? rc : req->host->write(req->call, (const uint8_t *)out, (size_t)n);
}
RG_EXPORT const rg_app app_probe = RG_APP_DESCRIPTOR(RG_APP_THREAD_SAFE, NULL, probe, NULL);
"#,
    )
}

/// "ABI 1.N" as this server names its own version in refusals.
fn ours() -> String {
    format!("ABI {}.{}", rustgun_abi::RG_ABI_MAJOR, rustgun_abi::RG_ABI_MINOR)
}

/// An app built for an older minor keeps everything its descriptor has: a 1.2 descriptor, shorter
/// than today's, has its `preload` run and is served.
#[test]
fn a_descriptor_built_for_abi_1_2_keeps_its_preload() {
    let dir = TempDir::new("abi-1-2");
    let lib = c_descriptors(&dir);
    let sock = dir.join("s.sock");
    let bind = format!("unix:{}", sock.display());
    let app = format!("{}:app_v1_2", lib.display());
    let server = Bare::spawn(&[&app, "--bind", &bind, "--preload"], &[]);
    server.wait_for_log("preloaded by a 1.2 descriptor");
    server.wait_for_log("Ready: 1 workers serving");
    let resp = unix_get(&sock, "/").expect("a response");
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok"));
}

#[test]
fn an_async_app_without_on_event_is_refused() {
    let dir = TempDir::new("abi-async-mute");
    let app = format!("{}:app_async_mute", c_descriptors(&dir).display());
    let line = refused(&app, &["-k", "event"], 2);
    assert!(line.contains(&app) && line.contains("no on_event"), "{line}");
}

#[test]
fn the_c_control_descriptor_is_served() {
    let dir = TempDir::new("abi-ok");
    let lib = c_descriptors(&dir);
    let sock = dir.join("s.sock");
    let bind = format!("unix:{}", sock.display());
    let app = format!("{}:app_ok", lib.display());
    let server = Bare::spawn(&[&app, "--bind", &bind], &[]);
    server.wait_for_log("Ready: 1 workers serving");
    let resp = unix_get(&sock, "/").expect("a response");
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok"));
}

#[test]
fn another_abi_major_is_refused_naming_both_versions() {
    let dir = TempDir::new("abi-major");
    let app = format!("{}:app_v2", c_descriptors(&dir).display());
    let line = refused(&app, &[], 2);
    assert!(line.contains(&app), "{line}");
    assert!(line.contains("ABI 2.0") && line.contains(&ours()), "{line}");
}

#[test]
fn a_newer_abi_minor_is_refused_naming_both_versions() {
    let dir = TempDir::new("abi-minor");
    let app = format!("{}:app_v1_7", c_descriptors(&dir).display());
    let line = refused(&app, &[], 2);
    assert!(line.contains(&app), "{line}");
    assert!(line.contains("ABI 1.7") && line.contains(&ours()), "{line}");
}

#[test]
fn a_descriptor_flag_the_abi_does_not_define_is_refused() {
    let dir = TempDir::new("abi-flags");
    let app = format!("{}:app_flags", c_descriptors(&dir).display());
    let line = refused(&app, &[], 2);
    assert!(line.contains(&app), "{line}");
    assert!(line.contains("flags 0x80") && line.contains(&ours()), "{line}");
}

/// An unknown `start_response` flag is refused, and the handle of a request whose `handle` returned
/// names nothing any more: the app gets `RG_E_STATE` (-3), not a write into freed memory.
#[test]
fn unknown_response_flags_and_stale_call_handles_are_refused_with_a_status() {
    let dir = TempDir::new("abi-probe");
    let sock = dir.join("s.sock");
    let bind = format!("unix:{}", sock.display());
    let app = format!("{}:app_probe", c_descriptors(&dir).display());
    let server = Bare::spawn(&[&app, "--bind", &bind, "--workers", "1"], &[]);
    server.wait_for_log("Ready: 1 workers serving");
    let first = unix_get(&sock, "/").expect("a first response");
    assert_eq!((first.status, first.text().as_str()), (200, "flags=-4 stale=1"));
    let second = unix_get(&sock, "/").expect("a second response");
    assert_eq!((second.status, second.text().as_str()), (200, "flags=-4 stale=-3"));
}

#[test]
fn a_symbol_that_is_not_a_descriptor_is_refused() {
    let dir = TempDir::new("abi-magic");
    let app = format!("{}:app", c_descriptors(&dir).display());
    let line = refused(&app, &[], 2);
    assert!(line.contains(&app), "{line}");
    assert!(line.contains("not a rustgun app descriptor"), "{line}");
    assert!(line.contains("magic 0x0000002a"), "the int's value is reported as the magic: {line}");
}

#[test]
fn an_init_failure_halts_with_the_apps_message() {
    let mut server = Server::builder("chaos").app_arg("fail-init").workers(2).spawn();
    server.allow_log("init refused: fail-init given");
    assert_eq!(server.wait_exit(), Some(4));
    let log = server.log();
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "log:\n{}", log.join("\n"));
    assert!(errors[0].contains(&format!("{}:app", lib("chaos"))), "{}", errors[0]);
    assert!(errors[0].contains("init refused: fail-init given"), "{}", errors[0]);
    assert!(log.iter().filter(|l| l.contains("Booting worker")).count() <= 4);
}

#[test]
fn app_args_after_the_double_dash_reach_init() {
    // The control: another argument boots, so `fail-init` above failed because init saw it.
    let server = Server::builder("chaos").app_arg("not-fail-init").start();
    assert_eq!(server.get("/ok").text(), "ok");
}

#[test]
fn preload_with_a_missing_symbol_fails_before_forking() {
    let app = format!("{}:nosuch", lib("hello"));
    let (code, log) = Bare::run(&[&app, "--preload", "--bind", "127.0.0.1:0", "--workers", "3"]);
    assert_eq!(code, 4, "log:\n{}", log.join("\n"));
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "log:\n{}", log.join("\n"));
    assert!(errors[0].contains(&app) && errors[0].contains("symbol `nosuch` not found"), "{}", errors[0]);
    assert!(!log.iter().any(|l| l.contains("Booting worker")), "a worker was forked:\n{}", log.join("\n"));
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, log) = Bare::run(&[&lib("hello"), "--bind", &addr]);
    assert_ne!(code, 0);
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "log:\n{}", log.join("\n"));
    assert!(errors[0].contains(&format!("cannot listen on {addr}")), "{}", errors[0]);
    assert!(errors[0].contains("Address already in use"), "{}", errors[0]);
    assert!(!log.iter().any(|l| l.contains("Booting worker")));
}

#[test]
fn a_unix_socket_serves_and_replaces_a_stale_socket_file() {
    let dir = TempDir::new("unix");
    let sock = dir.join("app.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists(), "the stale socket file stays after its listener is gone");
    assert!(std::os::unix::net::UnixStream::connect(&sock).is_err(), "nobody listens on it");

    let server = Server::builder("hello").bind(&format!("unix:{}", sock.display())).workers(2).start();
    server.wait_for_log(&format!("Listening at: unix:{}", sock.display()));
    for _ in 0..3 {
        let resp = unix_get(&sock, "/").expect("a response over the unix socket");
        assert_eq!((resp.status, resp.text().as_str()), (200, "Hello, World!"));
    }
    let curl = Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(&sock)
        .arg("http://localhost/")
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "Hello, World!");
}

#[test]
fn a_unix_socket_path_holding_a_regular_file_is_not_replaced() {
    let dir = TempDir::new("unix-file");
    let path = dir.join("data.sock");
    std::fs::write(&path, "precious").unwrap();
    let (code, log) = Bare::run(&[&lib("hello"), "--bind", &format!("unix:{}", path.display())]);
    assert_ne!(code, 0);
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "log:\n{}", log.join("\n"));
    assert!(errors[0].contains("exists and is not a socket"), "{}", errors[0]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}
