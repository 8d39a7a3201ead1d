//! The request as the app sees it: the [`RgRequest`] view over a parsed head, and the CGI/WSGI environ
//! (PEP 3333, built in [`super::environ`]) on first use. Both reuse their buffers from one request to
//! the next.
//!
//! Behind a trusted proxy, the client address, URL scheme and host the app sees are the ones the
//! proxy's headers name ([`RequestView::apply_forwarded`], rules in [`crate::http::forwarded`]);
//! `HTTP_*` variables and the raw header list always stay as received.

use super::environ::Environ;
use crate::http::forwarded::{self, ForwardedError, TrustList};
use crate::http::parse::RequestHead;
use crate::http::target::percent_decode_into;
use rustgun_abi::{RG_REQ_CHUNKED, RG_REQ_HAS_BODY, RgCall, RgHeader, RgHost, RgRequest, RgStr};
use std::net::IpAddr;

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
pub(super) struct Origin {
    /// Set by [`RequestView::apply_forwarded`] for the next [`RequestView::build`]; without it, build
    /// takes the connection's facts, so a driver that never applies proxy headers sees none.
    fresh: bool,
    pub(super) remote_addr: String,
    pub(super) remote_port: u16,
    pub(super) url_scheme: &'static str,
    /// The forwarded host (`host[:port]`) a proxy named, for SERVER_NAME and SERVER_PORT; empty
    /// when none did.
    pub(super) host: Vec<u8>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::environ::{Port, server_name_port};
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
