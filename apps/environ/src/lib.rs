//! `libenviron.so`: answers `200 text/plain` with the request's CGI/WSGI environ as the server builds
//! it, one `KEY: value` line per entry, sorted by key.

use rustgun_sdk::{Error, Request, Response};

fn environ(req: &mut Request<'_>) -> Result<Response, Error> {
    let mut entries: Vec<(&[u8], &[u8])> = req.environ()?.collect();
    // Stable: entries with the same key keep the server's order.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let len = entries.iter().map(|(k, v)| k.len() + v.len() + 3).sum();
    let mut body = Vec::with_capacity(len);
    for (key, value) in entries {
        body.extend_from_slice(key);
        body.extend_from_slice(b": ");
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    Ok(Response::new(200).header("Content-Type", "text/plain").body(body))
}

rustgun_sdk::export_handler!(app, environ);
