//! The CGI/WSGI environ (PEP 3333) of one request, built straight into a reused arena: the server
//! variables, `HTTP_*` for each header name (repeats joined by `,`), SERVER_NAME and SERVER_PORT from
//! what the client or a trusted proxy said.
//!
//! Not here: the request view it comes with and the proxy rules ([`super::view`]).

use super::view::{ConnInfo, Origin};
use crate::http::parse::RequestHead;
use rustgun_abi::{RgHeader, RgStr};
use std::ops::Range;

const SERVER_SOFTWARE: &str = concat!("rustgun/", env!("CARGO_PKG_VERSION"));

/// The environ's entries and the arena they point into.
#[derive(Default)]
pub(super) struct Environ {
    pub(super) built: bool,
    arena: Vec<u8>,
    spans: Vec<(Range<usize>, Range<usize>)>,
    pub(super) entries: Vec<RgHeader>,
}

impl Environ {
    /// Appends one entry whose key and value the two closures write into the arena.
    fn push_with(&mut self, key: impl FnOnce(&mut Vec<u8>), value: impl FnOnce(&mut Vec<u8>)) {
        let start = self.arena.len();
        key(&mut self.arena);
        let middle = self.arena.len();
        value(&mut self.arena);
        self.spans.push((start..middle, middle..self.arena.len()));
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        self.push_with(|a| a.extend_from_slice(key), |a| a.extend_from_slice(value));
    }

    /// Appends `key` with a number as its value.
    fn push_number(&mut self, key: &[u8], n: u16) {
        use std::io::Write as _;
        // Writing a number into a Vec<u8> formats in place: no allocation once the arena has grown.
        self.push_with(|a| a.extend_from_slice(key), |a| drop(write!(a, "{n}")));
    }

    /// Builds every entry straight into the reused arena: nothing is allocated per request once the
    /// arena and the span list have grown to the working size (`tests/hot_path.rs`).
    pub(super) fn build(
        &mut self,
        head: &RequestHead,
        script_name: &[u8],
        path: &[u8],
        conn: &ConnInfo,
        origin: &Origin,
    ) {
        self.arena.clear();
        self.spans.clear();
        let flag = |bit: u32| if conn.flags & bit != 0 { &b"true"[..] } else { b"false" };
        let (server_name, server_port) = server_name_port(head, conn, origin);
        self.push(b"REQUEST_METHOD", head.method());
        self.push(b"SCRIPT_NAME", script_name);
        self.push(b"PATH_INFO", path);
        self.push(b"QUERY_STRING", head.query());
        self.push(b"RAW_URI", head.target());
        self.push(b"SERVER_PROTOCOL", head.version.as_bytes());
        self.push(b"SERVER_NAME", server_name);
        match server_port {
            Port::Said(port) => self.push(b"SERVER_PORT", port),
            Port::Number(port) => self.push_number(b"SERVER_PORT", port),
        }
        self.push(b"SERVER_SOFTWARE", SERVER_SOFTWARE.as_bytes());
        self.push(b"REMOTE_ADDR", origin.remote_addr.as_bytes());
        self.push_number(b"REMOTE_PORT", origin.remote_port);
        self.push(b"CONTENT_TYPE", head.header(b"content-type").unwrap_or_default());
        self.push(b"CONTENT_LENGTH", head.header(b"content-length").unwrap_or_default());
        self.push_http_variables(head);
        self.push(b"wsgi.url_scheme", origin.url_scheme.as_bytes());
        self.push(b"wsgi.multithread", flag(rustgun_abi::RG_REQ_MULTITHREAD));
        self.push(b"wsgi.multiprocess", flag(rustgun_abi::RG_REQ_MULTIPROCESS));
        self.push(b"wsgi.run_once", flag(rustgun_abi::RG_REQ_RUN_ONCE));
        self.push(b"wsgi.input_terminated", b"true");
        self.entries.clear();
        let arena = &self.arena;
        self.entries.extend(self.spans.iter().map(|(k, v)| RgHeader {
            name: RgStr::from_bytes(&arena[k.clone()]),
            value: RgStr::from_bytes(&arena[v.clone()]),
        }));
        self.built = true;
    }

    /// `HTTP_*` variables: names upper-cased with `-` as `_`, duplicates joined by `,` in arrival
    /// order (under the first one's place). Names with `_` are left out unless `--header-map
    /// dangerous`, so `X_Auth` cannot pose as `X-Auth`.
    fn push_http_variables(&mut self, head: &RequestHead) {
        let wanted = |name: &[u8]| {
            // A name with `_` is here only under `--header-map dangerous` (the parser drops or
            // refuses it otherwise).
            !name.eq_ignore_ascii_case(b"content-type") && !name.eq_ignore_ascii_case(b"content-length")
        };
        for (i, (name, value)) in head.fields().enumerate() {
            let first =
                !head.fields().take(i).any(|(earlier, _)| wanted(earlier) && same_variable(earlier, name));
            if !wanted(name) || !first {
                continue;
            }
            let key = |a: &mut Vec<u8>| {
                a.extend_from_slice(b"HTTP_");
                a.extend(name.iter().map(|&b| variable_byte(b)));
            };
            let joined = |a: &mut Vec<u8>| {
                a.extend_from_slice(value);
                for (_, more) in
                    head.fields().skip(i + 1).filter(|(later, _)| wanted(later) && same_variable(later, name))
                {
                    a.push(b',');
                    a.extend_from_slice(more);
                }
            };
            self.push_with(key, joined);
        }
    }
}

/// A header name's byte as it appears in its `HTTP_*` variable.
fn variable_byte(b: u8) -> u8 {
    if b == b'-' { b'_' } else { b.to_ascii_uppercase() }
}

/// Whether two header names give the same `HTTP_*` variable.
fn same_variable(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| variable_byte(x) == variable_byte(y))
}

/// SERVER_PORT as the client or proxy said it, or the number it implies.
#[derive(Debug, PartialEq)]
pub(super) enum Port<'a> {
    Said(&'a [u8]),
    Number(u16),
}

/// SERVER_NAME and SERVER_PORT: from a trusted proxy's forwarded host, else the Host header when
/// sent, else the listening socket. A host without a port implies the scheme's default port.
pub(super) fn server_name_port<'a>(
    head: &'a RequestHead,
    conn: &'a ConnInfo,
    origin: &'a Origin,
) -> (&'a [u8], Port<'a>) {
    let default_port = || Port::Number(if origin.url_scheme == "https" { 443 } else { 80 });
    let forwarded = Some(&origin.host[..]).filter(|h| !h.is_empty());
    match forwarded.or(head.host()).filter(|h| !h.is_empty()) {
        Some(host) => {
            let split = if host.starts_with(b"[") {
                host.iter().position(|&b| b == b']').map(|end| end + 1)
            } else {
                host.iter().position(|&b| b == b':')
            };
            match split {
                Some(i) if i < host.len() && host[i] == b':' => (&host[..i], Port::Said(&host[i + 1..])),
                _ => (host, default_port()),
            }
        }
        None => (conn.server_addr.as_bytes(), Port::Number(conn.server_port)),
    }
}
