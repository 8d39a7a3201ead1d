//! The request as the app sees it: the [`RgRequest`] view over a parsed head, and the CGI/WSGI environ
//! (PEP 3333) built from it on first use. Both reuse their buffers from one request to the next.

use crate::http::parse::{HeaderMap, RequestHead};
use crate::http::target::percent_decode_into;
use rustgun_abi::{RG_REQ_CHUNKED, RG_REQ_HAS_BODY, RgCall, RgHeader, RgHost, RgRequest, RgStr};
use std::ops::Range;

/// What the server knows about the connection a request came in on.
#[derive(Debug, Default)]
pub struct ConnInfo {
    /// The client's address as text; empty for a unix-socket peer.
    pub peer_addr: String,
    pub peer_port: u16,
    /// The listening socket's address as text (or the unix socket path).
    pub server_addr: String,
    pub server_port: u16,
    pub url_scheme: &'static str,
    pub worker_id: u32,
    /// `RG_REQ_MULTITHREAD` / `RG_REQ_MULTIPROCESS` for this worker class.
    pub flags: u32,
}

impl ConnInfo {
    /// The peer as logs show it: its address, or `unix` for a unix-socket peer.
    pub fn peer_or_unix(&self) -> &str {
        if self.peer_addr.is_empty() { "unix" } else { &self.peer_addr }
    }
}

/// Reusable storage behind the request view.
#[derive(Default)]
pub struct RequestView {
    headers: Vec<RgHeader>,
    path: Vec<u8>,
    environ: Environ,
}

const SERVER_SOFTWARE: &str = concat!("rustgun/", env!("CARGO_PKG_VERSION"));

impl RequestView {
    /// Builds the view of `head` for the app. The result points into `head`, `conn` and `self`: it is
    /// valid while none of them changes, that is, for one `handle` call.
    pub fn build(
        &mut self,
        head: &RequestHead,
        conn: &ConnInfo,
        host: &'static RgHost,
        call: *mut RgCall,
    ) -> RgRequest {
        self.headers.clear();
        self.headers.extend(head.fields().map(|(name, value)| RgHeader {
            name: RgStr::from_bytes(name),
            value: RgStr::from_bytes(value),
        }));
        self.path.clear();
        percent_decode_into(head.path(), &mut self.path);
        self.environ.built = false;
        let mut flags = conn.flags;
        match head.content_length() {
            None => flags |= RG_REQ_HAS_BODY | RG_REQ_CHUNKED,
            Some(n) if n > 0 => flags |= RG_REQ_HAS_BODY,
            Some(_) => {}
        }
        RgRequest {
            size: std::mem::size_of::<RgRequest>() as u32,
            flags,
            host,
            call,
            method: RgStr::from_bytes(head.method()),
            target: RgStr::from_bytes(head.target()),
            path_raw: RgStr::from_bytes(head.path()),
            path: RgStr::from_bytes(&self.path),
            query: RgStr::from_bytes(head.query()),
            version: RgStr::from_bytes(head.version.as_bytes()),
            headers: self.headers.as_ptr(),
            headers_len: self.headers.len(),
            content_length: head.content_length().map_or(-1, |n| n.min(i64::MAX as u64) as i64),
            peer_addr: RgStr::from_bytes(conn.peer_addr.as_bytes()),
            server_addr: RgStr::from_bytes(conn.server_addr.as_bytes()),
            peer_port: conn.peer_port,
            server_port: conn.server_port,
            worker_id: conn.worker_id,
            url_scheme: RgStr::from_bytes(conn.url_scheme.as_bytes()),
        }
    }

    /// The environ for the request last passed to [`RequestView::build`], built once per request.
    pub fn environ(&mut self, head: &RequestHead, conn: &ConnInfo, header_map: HeaderMap) -> &[RgHeader] {
        if !self.environ.built {
            self.environ.build(head, &self.path, conn, header_map);
        }
        &self.environ.entries
    }
}

#[derive(Default)]
struct Environ {
    built: bool,
    arena: Vec<u8>,
    spans: Vec<(Range<usize>, Range<usize>)>,
    entries: Vec<RgHeader>,
}

impl Environ {
    fn push(&mut self, key: &[u8], value: &[u8]) {
        let k = self.arena.len()..self.arena.len() + key.len();
        self.arena.extend_from_slice(key);
        let v = self.arena.len()..self.arena.len() + value.len();
        self.arena.extend_from_slice(value);
        self.spans.push((k, v));
    }

    fn build(&mut self, head: &RequestHead, path: &[u8], conn: &ConnInfo, header_map: HeaderMap) {
        self.arena.clear();
        self.spans.clear();
        let flag = |bit: u32| if conn.flags & bit != 0 { &b"true"[..] } else { b"false" };
        let (server_name, server_port) = server_name_port(head, conn);
        self.push(b"REQUEST_METHOD", head.method());
        self.push(b"SCRIPT_NAME", b"");
        self.push(b"PATH_INFO", path);
        self.push(b"QUERY_STRING", head.query());
        self.push(b"RAW_URI", head.target());
        self.push(b"SERVER_PROTOCOL", head.version.as_bytes());
        self.push(b"SERVER_NAME", &server_name);
        self.push(b"SERVER_PORT", server_port.as_bytes());
        self.push(b"SERVER_SOFTWARE", SERVER_SOFTWARE.as_bytes());
        self.push(b"REMOTE_ADDR", conn.peer_addr.as_bytes());
        self.push(b"REMOTE_PORT", conn.peer_port.to_string().as_bytes());
        self.push(b"CONTENT_TYPE", head.header(b"content-type").unwrap_or_default());
        self.push(b"CONTENT_LENGTH", head.header(b"content-length").unwrap_or_default());
        for (key, value) in http_variables(head, header_map) {
            self.push(&key, &value);
        }
        self.push(b"wsgi.url_scheme", conn.url_scheme.as_bytes());
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
}

/// `HTTP_*` variables: names upper-cased with `-` as `_`, duplicates joined by `,` in arrival order.
/// Names with `_` are left out unless `--header-map dangerous`, so `X_Auth` cannot pose as `X-Auth`.
fn http_variables(head: &RequestHead, header_map: HeaderMap) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (name, value) in head.fields() {
        if name.eq_ignore_ascii_case(b"content-type") || name.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        if name.contains(&b'_') && header_map != HeaderMap::Dangerous {
            continue;
        }
        let mut key = b"HTTP_".to_vec();
        key.extend(name.iter().map(|&b| if b == b'-' { b'_' } else { b.to_ascii_uppercase() }));
        match vars.iter_mut().find(|(k, _)| *k == key) {
            Some((_, joined)) => {
                joined.push(b',');
                joined.extend_from_slice(value);
            }
            None => vars.push((key, value.to_vec())),
        }
    }
    vars
}

/// SERVER_NAME and SERVER_PORT: from the Host header when sent, else the listening socket.
fn server_name_port(head: &RequestHead, conn: &ConnInfo) -> (Vec<u8>, String) {
    let default_port = || if conn.url_scheme == "https" { "443" } else { "80" }.to_string();
    match head.host().filter(|h| !h.is_empty()) {
        Some(host) => {
            let split = if host.starts_with(b"[") {
                host.iter().position(|&b| b == b']').map(|end| end + 1)
            } else {
                host.iter().position(|&b| b == b':')
            };
            match split {
                Some(i) if i < host.len() && host[i] == b':' => {
                    (host[..i].to_vec(), String::from_utf8_lossy(&host[i + 1..]).into_owned())
                }
                _ => (host.to_vec(), default_port()),
            }
        }
        None => (conn.server_addr.as_bytes().to_vec(), conn.server_port.to_string()),
    }
}
