//! `libecho.so`, like httpbin's `/anything`: answers `200 application/json` with what it received:
//! `{"method", "target", "path", "query", "version", "headers": [[name, value], …], "body"}`, in that
//! key order. `target` is the raw request-target, `path` the raw (still percent-encoded) path,
//! `headers` as received (in order, duplicates kept), `body` the whole request body read through the
//! body reader; byte strings are decoded as UTF-8 with invalid bytes replaced.

use rustgun_sdk::json::{Value, json};
use rustgun_sdk::{Error, Request, Response};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn echo(req: &mut Request<'_>) -> Result<Response, Error> {
    let body = req.read_body_to_vec()?;
    let headers: Vec<Value> = req.headers().map(|(name, value)| json!([text(name), text(value)])).collect();
    let value = json!({
        "method": req.method(),
        "target": text(req.target()),
        "path": text(req.path_raw()),
        "query": text(req.query()),
        "version": req.version(),
        "headers": headers,
        "body": text(&body),
    });
    Ok(Response::json(&value))
}

rustgun_sdk::export_handler!(app, echo);
