//! The request as the app sees it: the [`RgRequest`] view over a parsed head, and the CGI/WSGI environ
//! (PEP 3333) built from it on first use. Both reuse their buffers from one request to the next.
//!
//! Behind a trusted proxy, the client address, URL scheme and host the app sees are the ones the
//! proxy's headers name ([`RequestView::apply_forwarded`], rules in [`crate::http::forwarded`]);
//! `HTTP_*` variables and the raw header list always stay as received.

use crate::http::forwarded::{self, ForwardedError, TrustList};
use crate::http::parse::RequestHead;
use crate::http::target::percent_decode_into;
use rustgun_abi::{RG_REQ_CHUNKED, RG_REQ_HAS_BODY, RgCall, RgHeader, RgHost, RgRequest, RgStr};
use std::net::IpAddr;
use std::ops::Range;

/// What the server knows about the connection a request came in on.
#[derive(Debug, Default)]
pub struct ConnInfo {
    /// The client's address as text; empty for a unix-socket peer.
    pub peer_addr: String,
    pub peer_port: u16,
    /// The client's address, `None` for a unix-socket peer: what proxy trust is decided on.
    pub peer_ip: Option<IpAddr>,
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

    /// Makes the client a PROXY protocol header names the connection's peer; a header that names
    /// none (LOCAL, UNKNOWN, a unix-socket client) leaves the connection's own peer.
    pub fn adopt_proxy_header(&mut self, header: &crate::http::proxy::Header) {
        use std::fmt::Write as _;
        if let Some(source) = header.source() {
            self.peer_addr.clear();
            let _ = write!(self.peer_addr, "{}", source.ip());
            self.peer_port = source.port();
            self.peer_ip = Some(source.ip());
        }
    }
}

/// Reusable storage behind the request view.
#[derive(Default)]
pub struct RequestView {
    headers: Vec<RgHeader>,
    /// PATH_INFO: the path after the mount point, percent-decoded.
    path: Vec<u8>,
    /// How many bytes of the raw path are the mount point (SCRIPT_NAME), from [`RequestView::mount`].
    script_len: usize,
    origin: Origin,
    environ: Environ,
}

/// Who a request is from and how the client addressed it: the connection's facts, or what a trusted
/// proxy's headers say instead.
#[derive(Default)]
struct Origin {
    /// Set by [`RequestView::apply_forwarded`] for the next [`RequestView::build`]; without it, build
    /// takes the connection's facts, so a driver that never applies proxy headers sees none.
    fresh: bool,
    remote_addr: String,
    remote_port: u16,
    url_scheme: &'static str,
    /// The forwarded host (`host[:port]`) a proxy named, for SERVER_NAME and SERVER_PORT; empty
    /// when none did.
    host: Vec<u8>,
}

impl Origin {
    fn reset(&mut self, conn: &ConnInfo) {
        self.remote_addr.clear();
        self.remote_addr.push_str(&conn.peer_addr);
        self.remote_port = conn.peer_port;
        self.url_scheme = conn.url_scheme;
        self.host.clear();
    }
}

const SERVER_SOFTWARE: &str = concat!("rustgun/", env!("CARGO_PKG_VERSION"));

impl RequestView {
    /// Mounts the next [`RequestView::build`] at `root` (`--root-path`, no trailing `/`): SCRIPT_NAME
    /// is `root` and PATH_INFO the rest of the path. False when the path does not start with `root`
    /// at a segment boundary (an `OPTIONS *` is not a path: it is left whole).
    pub fn mount(&mut self, head: &RequestHead, root: &[u8]) -> bool {
        let path = head.path();
        let under = path.strip_prefix(root).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"));
        self.script_len = if under { root.len() } else { 0 };
        under || root.is_empty() || path == b"*"
    }

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
        percent_decode_into(&head.path()[self.script_len..], &mut self.path);
        self.environ.built = false;
        if !std::mem::take(&mut self.origin.fresh) {
            self.origin.reset(conn);
        }
        let origin = &self.origin;
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
            peer_addr: RgStr::from_bytes(origin.remote_addr.as_bytes()),
            server_addr: RgStr::from_bytes(conn.server_addr.as_bytes()),
            peer_port: origin.remote_port,
            server_port: conn.server_port,
            worker_id: conn.worker_id,
            url_scheme: RgStr::from_bytes(origin.url_scheme.as_bytes()),
        }
    }

    /// The environ for the request last passed to [`RequestView::build`], built once per request.
    pub fn environ(&mut self, head: &RequestHead, conn: &ConnInfo) -> &[RgHeader] {
        if !self.environ.built {
            let script_name = &head.path()[..self.script_len];
            self.environ.build(head, script_name, &self.path, conn, &self.origin);
        }
        &self.environ.entries
    }

    /// Applies the proxy headers of `head` for the next [`RequestView::build`] when the connection's
    /// peer is in `trusted` (`--forwarded-allow-ips`; unix-socket peers always are): the client
    /// address, URL scheme and host they name replace the connection's. Headers from other peers
    /// change nothing. Contradictory or malformed ones are an error the driver answers with 400
    /// before the app runs.
    pub fn apply_forwarded(
        &mut self,
        head: &RequestHead,
        conn: &ConnInfo,
        trusted: &TrustList,
    ) -> Result<(), ForwardedError> {
        use std::fmt::Write as _;
        let origin = &mut self.origin;
        origin.reset(conn);
        origin.fresh = true;
        if !trusted.trusts(conn.peer_ip) {
            return Ok(());
        }
        let said = forwarded::interpret(head.fields(), trusted)?;
        if let Some(client) = said.client {
            origin.remote_addr.clear();
            let _ = write!(origin.remote_addr, "{}", client.ip);
            // The proxy's own port says nothing about the client's: 0 when the proxy gave none.
            origin.remote_port = client.port.unwrap_or(0);
        }
        if let Some(scheme) = said.scheme {
            origin.url_scheme = scheme.as_str();
        }
        origin.host.extend_from_slice(said.host.unwrap_or_default());
        Ok(())
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
    fn build(
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
enum Port<'a> {
    Said(&'a [u8]),
    Number(u16),
}

/// SERVER_NAME and SERVER_PORT: from a trusted proxy's forwarded host, else the Host header when
/// sent, else the listening socket. A host without a port implies the scheme's default port.
fn server_name_port<'a>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{Limits, parse_head};

    fn head(raw: &str) -> RequestHead {
        let mut head = RequestHead::default();
        parse_head(raw.as_bytes(), &Limits::default(), &mut head).unwrap().unwrap();
        head
    }

    fn conn(peer: &str) -> ConnInfo {
        ConnInfo {
            peer_addr: peer.to_string(),
            peer_port: 40000,
            peer_ip: Some(peer.parse().unwrap()),
            url_scheme: "http",
            ..ConnInfo::default()
        }
    }

    /// Whether the view handed out exactly `bytes` (the same memory, which outlives the call).
    fn points_at(s: RgStr, bytes: &[u8]) -> bool {
        s.ptr == bytes.as_ptr() && s.len == bytes.len()
    }

    #[test]
    fn a_trusted_proxys_client_and_scheme_reach_the_request_view_for_one_request() {
        let h = head(
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n\r\n",
        );
        let trusted: TrustList = "127.0.0.1".parse().unwrap();
        let mut view = RequestView::default();
        let proxy = conn("127.0.0.1");
        view.apply_forwarded(&h, &proxy, &trusted).unwrap();
        let r = view.build(&h, &proxy, &crate::app::host::HOST, std::ptr::null_mut());
        assert_eq!((view.origin.remote_addr.as_str(), view.origin.url_scheme), ("203.0.113.7", "https"));
        assert!(points_at(r.peer_addr, view.origin.remote_addr.as_bytes()));
        assert!(points_at(r.url_scheme, view.origin.url_scheme.as_bytes()));
        assert_eq!(r.peer_port, 0);

        // A driver that does not apply proxy headers to the next request gets the connection's facts.
        let r = view.build(&h, &proxy, &crate::app::host::HOST, std::ptr::null_mut());
        assert_eq!((view.origin.remote_addr.as_str(), view.origin.url_scheme), ("127.0.0.1", "http"));
        assert_eq!(r.peer_port, 40000);

        // A peer that is not trusted changes nothing.
        let other = conn("192.0.2.1");
        view.apply_forwarded(&h, &other, &trusted).unwrap();
        let r = view.build(&h, &other, &crate::app::host::HOST, std::ptr::null_mut());
        assert_eq!((view.origin.remote_addr.as_str(), view.origin.url_scheme), ("192.0.2.1", "http"));
        assert_eq!(r.peer_port, 40000);
    }

    #[test]
    fn a_forwarded_host_names_the_server_and_the_scheme_its_default_port() {
        let h =
            head("GET / HTTP/1.1\r\nHost: internal:8000\r\nForwarded: proto=https;host=app.example\r\n\r\n");
        let mut view = RequestView::default();
        let proxy = conn("::1");
        view.apply_forwarded(&h, &proxy, &"::1".parse().unwrap()).unwrap();
        let (name, port) = server_name_port(&h, &proxy, &view.origin);
        assert_eq!((name, port), (&b"app.example"[..], Port::Number(443)));
        view.apply_forwarded(&h, &proxy, &"10.0.0.1".parse().unwrap()).unwrap();
        let (name, port) = server_name_port(&h, &proxy, &view.origin);
        assert_eq!((name, port), (&b"internal"[..], Port::Said(b"8000")));
    }

    #[test]
    fn a_proxy_protocol_client_becomes_the_peer() {
        use crate::http::proxy::{Addresses, Header, Version};
        let mut info = conn("127.0.0.1");
        let local = Header { version: Version::V2, addresses: Addresses::Local };
        info.adopt_proxy_header(&local);
        assert_eq!((info.peer_addr.as_str(), info.peer_port), ("127.0.0.1", 40000));
        let relayed = Header {
            version: Version::V1,
            addresses: Addresses::Inet {
                source: "[2001:db8::7]:443".parse().unwrap(),
                destination: "10.0.0.1:80".parse().unwrap(),
            },
        };
        info.adopt_proxy_header(&relayed);
        assert_eq!((info.peer_addr.as_str(), info.peer_port), ("2001:db8::7", 443));
        assert_eq!(info.peer_ip, Some("2001:db8::7".parse().unwrap()));
    }
}
