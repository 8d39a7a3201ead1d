//! A differential run against uvicorn: `tests/differential/uvicorn.py` sends the same raw requests
//! and WebSocket sessions to rustgun and to a uvicorn it starts on the same app, and compares status,
//! headers but Date and Server, body, the scope the app saw and every WebSocket event. What differs
//! by design is listed in the script with its reason (and in docs/asgi.md); it must still differ,
//! and nothing else may.

use super::{apps_dir, asgi};
use crate::support::{pyenv, run};
use std::path::Path;
use std::process::Command;

/// Runs the comparison for `spec` and returns the report once it showed no unlisted difference.
fn compare(spec: &str) -> serde_json::Value {
    // Some cases raise in the app, or return without a response, on purpose.
    let server = asgi(spec)
        .allow_log("Exception in ASGI application")
        .allow_log("ASGI callable returned without starting response")
        .start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/uvicorn.py");
    let addr = server.addr.to_string();
    let (status, out, err) = run(Command::new(pyenv().join("bin/python")).arg(script).args([
        "--rustgun",
        &addr,
        "--app",
        spec,
        "--app-dir",
        &apps_dir(),
    ]));
    assert_eq!(status, 0, "the differential script failed:\n{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("the script's JSON report");
    assert_eq!(report["differences"], serde_json::json!([]), "{out}");
    report
}

fn known(report: &serde_json::Value) -> Vec<&str> {
    report["known"].as_array().unwrap().iter().map(|k| k["case"].as_str().unwrap()).collect()
}

#[test]
fn raw_asgi_requests_get_what_uvicorn_gives_and_the_app_sees_the_same_scope() {
    let report = compare("raw:app");
    assert_eq!(report["compared"]["http"], 13);
    assert_eq!(known(&report), ["HTTP/1.0 keep-alive"]);
}

#[test]
fn websocket_sessions_go_as_they_go_with_uvicorn_but_for_the_wording_of_protocol_errors() {
    let report = compare("ws_echo:app");
    assert_eq!(report["compared"]["websocket"], 8);
    assert_eq!(known(&report), ["invalid UTF-8 in a text message (1007)", "a reserved opcode (1002)"]);
}

#[test]
fn fastapi_answers_as_it_does_under_uvicorn() {
    let report = compare("fastapi_app:app");
    assert_eq!(
        (report["compared"]["http"].as_u64(), report["compared"]["websocket"].as_u64()),
        (Some(9), Some(2))
    );
    assert!(known(&report).is_empty());
}
