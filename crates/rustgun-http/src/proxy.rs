//! The PROXY protocol, versions 1 and 2 (HAProxy's `proxy-protocol.txt`), sans-I/O: a load balancer
//! that forwards raw TCP (HAProxy `send-proxy` / `send-proxy-v2`, nginx `proxy_protocol on;` in a
//! `stream {}` block) starts the connection with one header naming the client it accepted. [`parse`]
//! reads it from the first bytes of a connection: more bytes needed, the header and how many bytes it
//! used (the HTTP request starts right after), or the error that refuses the connection with 400.
//!
//! # Rules
//! - v1 (§2.1): `PROXY SP ( TCP4 | TCP6 ) SP src SP dst SP srcport SP dstport CRLF`, or
//!   `PROXY SP UNKNOWN [anything] CRLF`, at most 107 bytes with the CRLF; single spaces; addresses of
//!   the family the protocol names; ports decimal 0–65535 without leading zeros.
//! - v2 (§2.2): the 12-byte signature, a version/command byte (version 2; `LOCAL` or `PROXY`), a
//!   family/transport byte (`UNSPEC`, `INET`, `INET6`, `UNIX` over `UNSPEC`, `STREAM` or `DGRAM`), a
//!   big-endian length, then the addresses and TLVs, which are skipped.
//! - `LOCAL` (a health check by the proxy itself), `UNKNOWN`, `UNSPEC` and `UNIX` name no IP client: the
//!   connection's own endpoints stand (§2.1, §2.2: "the receiver must ignore the address information"
//!   for LOCAL, and may use the real endpoints for the others).
//! - Anything else, or a connection that does not start with a signature, is an error. A valid
//!   header is [`Parsed::Incomplete`] for every prefix of it: input split at any byte reads the same.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::fmt;

/// The v2 signature (§2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 header, CRLF included (§2.1).
pub const V1_MAX: usize = 107;
const V2_FIXED: usize = 16;

/// Which version of the protocol the header used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// What the header says about the connection's endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// TCP over IPv4 or IPv6: the client the proxy accepted and the address it accepted it on.
    Inet { source: SocketAddr, destination: SocketAddr },
    /// The client reached the proxy over a unix socket (v2 `UNIX`).
    Unix,
    /// v1 `UNKNOWN` or v2 `UNSPEC`: the proxy does not say.
    Unknown,
    /// v2 `LOCAL`: the proxy's own connection (a health check), not a relayed one.
    Local,
}

/// A parsed PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    pub addresses: Addresses,
}

impl Header {
    /// The client's address and port, when the header names one.
    pub fn source(&self) -> Option<SocketAddr> {
        match self.addresses {
            Addresses::Inet { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What [`parse`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The input is a prefix of a header: read more.
    Incomplete,
    /// A complete header that used the first `consumed` bytes.
    Header { header: Header, consumed: usize },
}

/// Why a PROXY header was refused (400, then the connection closes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// The connection does not start with `PROXY ` or the v2 signature.
    NoSignature,
    /// A v1 line without CRLF within 107 bytes.
    V1TooLong,
    /// A v1 line not of the documented form.
    V1Malformed { reason: &'static str },
    /// A v2 version other than 2.
    V2Version { version: u8 },
    /// A v2 command other than LOCAL (0) or PROXY (1).
    V2Command { command: u8 },
    /// A v2 address family or transport protocol outside the specification.
    V2Family { byte: u8 },
    /// A v2 length too short for the addresses of its family.
    V2Length { family: &'static str, length: usize, needed: usize },
}

impl ProxyError {
    /// The status the connection is refused with.
    pub fn status(self) -> u16 {
        400
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::NoSignature => write!(f, "the connection does not start with a PROXY header"),
            ProxyError::V1TooLong => write!(f, "PROXY v1 line without CRLF within {V1_MAX} bytes"),
            ProxyError::V1Malformed { reason } => write!(f, "malformed PROXY v1 line: {reason}"),
            ProxyError::V2Version { version } => write!(f, "PROXY v2 header with version {version}"),
            ProxyError::V2Command { command } => write!(f, "PROXY v2 header with command {command}"),
            ProxyError::V2Family { byte } => write!(f, "PROXY v2 header with family/protocol {byte:#04x}"),
            ProxyError::V2Length { family, length, needed } => {
                write!(f, "PROXY v2 {family} header of {length} bytes, needs at least {needed}")
            }
        }
    }
}

impl std::error::Error for ProxyError {}

/// Parses the PROXY header at the start of `input` (version 1 or 2, told apart by the first byte).
pub fn parse(input: &[u8]) -> Result<Parsed, ProxyError> {
    if input.starts_with(&V2_SIGNATURE) {
        return parse_v2(input);
    }
    if input.starts_with(V1_PREFIX) {
        return parse_v1(input);
    }
    let n = input.len();
    if V2_SIGNATURE.starts_with(input) || (n < V1_PREFIX.len() && V1_PREFIX.starts_with(input)) {
        return Ok(Parsed::Incomplete);
    }
    Err(ProxyError::NoSignature)
}

fn parse_v1(input: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &input[..input.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if input.len() >= V1_MAX { Err(ProxyError::V1TooLong) } else { Ok(Parsed::Incomplete) };
    };
    let malformed = |reason| Err(ProxyError::V1Malformed { reason });
    if lf == 0 || window[lf - 1] != b'\r' {
        return malformed("line not ended by CRLF");
    }
    let line = &window[V1_PREFIX.len()..lf - 1];
    if !line.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return malformed("a byte that is not printable ASCII");
    }
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::V1Malformed { reason: "not ASCII" })?;
    let consumed = lf + 1;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or_default();
    let addresses = match family {
        // §2.1: "the receiver must ignore anything presented before the CRLF" after UNKNOWN.
        "UNKNOWN" => Addresses::Unknown,
        "TCP4" | "TCP6" => {
            let (Some(src), Some(dst), Some(sport), Some(dport), None) =
                (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return malformed("not `TCPx src dst srcport dstport`, single-spaced");
            };
            let ip = |text: &str| -> Option<IpAddr> {
                if family == "TCP4" {
                    text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
                } else {
                    text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
                }
            };
            let (Some(src), Some(dst)) = (ip(src), ip(dst)) else {
                return malformed("an address that is not of the family named");
            };
            let (Some(sport), Some(dport)) = (v1_port(sport), v1_port(dport)) else {
                return malformed("a port that is not 0-65535 without leading zeros");
            };
            Addresses::Inet { source: SocketAddr::new(src, sport), destination: SocketAddr::new(dst, dport) }
        }
        _ => return malformed("a protocol other than TCP4, TCP6 or UNKNOWN"),
    };
    Ok(Parsed::Header { header: Header { version: Version::V1, addresses }, consumed })
}

fn v1_port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

fn parse_v2(input: &[u8]) -> Result<Parsed, ProxyError> {
    // The version/command and family bytes are checked as soon as they arrive.
    if let Some(&ver_cmd) = input.get(12) {
        if ver_cmd >> 4 != 2 {
            return Err(ProxyError::V2Version { version: ver_cmd >> 4 });
        }
        if ver_cmd & 0x0f > 1 {
            return Err(ProxyError::V2Command { command: ver_cmd & 0x0f });
        }
    }
    if let Some(&fam) = input.get(13)
        && (fam >> 4 > 3 || fam & 0x0f > 2)
    {
        return Err(ProxyError::V2Family { byte: fam });
    }
    if input.len() < V2_FIXED {
        return Ok(Parsed::Incomplete);
    }
    let length = usize::from(u16::from_be_bytes([input[14], input[15]]));
    let consumed = V2_FIXED + length;
    // The whole header is read even when only its start matters, so that the request after it
    // starts at the right byte.
    if input.len() < consumed {
        return Ok(Parsed::Incomplete);
    }
    let body = &input[V2_FIXED..consumed];
    let header =
        |addresses| Ok(Parsed::Header { header: Header { version: Version::V2, addresses }, consumed });
    if input[12] & 0x0f == 0 {
        return header(Addresses::Local);
    }
    let need = |family: &'static str, needed: usize| {
        if length < needed { Err(ProxyError::V2Length { family, length, needed }) } else { Ok(()) }
    };
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    match input[13] >> 4 {
        0 => header(Addresses::Unknown),
        1 => {
            need("INET", 12)?;
            let ip = |at: usize| IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&body[at..at + 4]).unwrap()));
            header(Addresses::Inet {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            })
        }
        2 => {
            need("INET6", 36)?;
            let ip =
                |at: usize| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&body[at..at + 16]).unwrap()));
            header(Addresses::Inet {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            })
        }
        _ => {
            need("UNIX", 216)?;
            header(Addresses::Unix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn inet(src: &str, dst: &str) -> Addresses {
        Addresses::Inet { source: sa(src), destination: sa(dst) }
    }

    /// A v2 header: command byte, family byte, address block, then `tlvs`.
    fn v2(ver_cmd: u8, fam: u8, addresses: &[u8], tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(ver_cmd);
        h.push(fam);
        h.extend_from_slice(&((addresses.len() + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(addresses);
        h.extend_from_slice(tlvs);
        h
    }

    fn v2_inet4() -> Vec<u8> {
        let mut a = vec![192, 0, 2, 7, 10, 0, 0, 1];
        a.extend_from_slice(&51234u16.to_be_bytes());
        a.extend_from_slice(&8000u16.to_be_bytes());
        a
    }

    /// Asserts that `header` parses as `want` and that every split of it (and of it followed by a
    /// request) reads the same: every strict prefix is Incomplete.
    fn assert_parses(header: &[u8], want: Header) {
        let mut with_request = header.to_vec();
        with_request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        for input in [header, &with_request] {
            assert_eq!(
                parse(input),
                Ok(Parsed::Header { header: want, consumed: header.len() }),
                "{input:?}"
            );
        }
        for cut in 0..header.len() {
            assert_eq!(parse(&header[..cut]), Ok(Parsed::Incomplete), "cut at {cut} of {header:?}");
        }
    }

    /// Asserts that `header` is refused with `want`, and that no prefix of it is accepted.
    fn assert_refused(header: &[u8], want: ProxyError) {
        assert_eq!(parse(header), Err(want), "{:?}", String::from_utf8_lossy(header));
        for cut in 0..header.len() {
            let got = parse(&header[..cut]);
            assert!(got == Ok(Parsed::Incomplete) || got == Err(want), "cut at {cut}: {got:?}");
        }
    }

    #[test]
    fn v1_headers_as_haproxy_and_nginx_send_them() {
        let v1 = |addresses| Header { version: Version::V1, addresses };
        assert_parses(
            b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000\r\n",
            v1(inet("192.0.2.7:51234", "10.0.0.1:8000")),
        );
        assert_parses(b"PROXY TCP6 2001:db8::7 ::1 65535 0\r\n", v1(inet("[2001:db8::7]:65535", "[::1]:0")));
        assert_parses(b"PROXY UNKNOWN\r\n", v1(Addresses::Unknown));
        assert_parses(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", v1(Addresses::Unknown));
        // The longest legal line: TCP6 with two full-length addresses and five-digit ports.
        let longest =
            format!("PROXY TCP6 {0} {0} 65535 65535\r\n", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(longest.len(), 104);
        assert!(matches!(parse(longest.as_bytes()), Ok(Parsed::Header { consumed: 104, .. })));
    }

    #[test]
    fn malformed_v1_headers_are_refused() {
        let malformed = |line: &str| {
            let got = parse(line.as_bytes());
            assert!(matches!(got, Err(ProxyError::V1Malformed { .. })), "{line:?}: {got:?}");
        };
        for line in [
            "PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000\n",
            "PROXY TCP4 192.0.2.7 10.0.0.1 51234\r\n",
            "PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000 9\r\n",
            "PROXY TCP4  192.0.2.7 10.0.0.1 51234 8000\r\n",
            "PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000 \r\n",
            "PROXY TCP4 2001:db8::7 10.0.0.1 51234 8000\r\n",
            "PROXY TCP6 192.0.2.7 ::1 51234 8000\r\n",
            "PROXY TCP4 192.0.2.7 10.0.0.1 65536 8000\r\n",
            "PROXY TCP4 192.0.2.7 10.0.0.1 051234 8000\r\n",
            "PROXY TCP4 192.0.2.7 10.0.0.1 01 8000\r\n",
            "PROXY TCP4 192.0.2.7 10.0.0.1 -1 8000\r\n",
            "PROXY TCP4 192.0.2.777 10.0.0.1 1 8000\r\n",
            "PROXY UDP4 192.0.2.7 10.0.0.1 1 8000\r\n",
            "PROXY tcp4 192.0.2.7 10.0.0.1 1 8000\r\n",
            "PROXY \r\n",
            "PROXY TCP4 192.0.2.7\t10.0.0.1 1 8000\r\n",
        ] {
            malformed(line);
        }
        assert_refused(format!("PROXY UNKNOWN {}\r\n", "x".repeat(100)).as_bytes(), ProxyError::V1TooLong);
        assert_refused(b"GET / HTTP/1.1\r\n", ProxyError::NoSignature);
        assert_refused(b"PROXYTCP4", ProxyError::NoSignature);
        assert_refused(b"proxy TCP4", ProxyError::NoSignature);
        assert_refused(b"\r\n\r\n\0\r\nQUIX\n", ProxyError::NoSignature);
    }

    #[test]
    fn v2_headers_as_haproxy_sends_them() {
        let v2h = |addresses| Header { version: Version::V2, addresses };
        assert_parses(&v2(0x21, 0x11, &v2_inet4(), &[]), v2h(inet("192.0.2.7:51234", "10.0.0.1:8000")));
        // TLVs (here ALPN and an authority) are skipped, whatever they hold.
        let tlvs = [0x01, 0x00, 0x02, b'h', b'2', 0x02, 0x00, 0x03, b'a', b'.', b'b'];
        assert_parses(&v2(0x21, 0x11, &v2_inet4(), &tlvs), v2h(inet("192.0.2.7:51234", "10.0.0.1:8000")));
        let mut six = Vec::new();
        six.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        six.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        six.extend_from_slice(&443u16.to_be_bytes());
        six.extend_from_slice(&8000u16.to_be_bytes());
        assert_parses(&v2(0x21, 0x21, &six, &[]), v2h(inet("[2001:db8::7]:443", "[::1]:8000")));
        assert_parses(&v2(0x21, 0x31, &[0; 216], &[]), v2h(Addresses::Unix));
        assert_parses(&v2(0x21, 0x00, &[], &[]), v2h(Addresses::Unknown));
        // LOCAL ignores whatever address block follows.
        assert_parses(&v2(0x20, 0x00, &[], &[]), v2h(Addresses::Local));
        assert_parses(&v2(0x20, 0x11, &v2_inet4(), &[]), v2h(Addresses::Local));
        assert_parses(&v2(0x20, 0x11, &[1, 2, 3], &[]), v2h(Addresses::Local));
        // UDP over IPv4 still names a client.
        assert_parses(&v2(0x21, 0x12, &v2_inet4(), &[]), v2h(inet("192.0.2.7:51234", "10.0.0.1:8000")));
        assert_eq!(v2h(inet("192.0.2.7:1", "10.0.0.1:2")).source(), Some(sa("192.0.2.7:1")));
        assert_eq!(v2h(Addresses::Local).source(), None);
    }

    #[test]
    fn malformed_v2_headers_are_refused() {
        assert_refused(&v2(0x11, 0x11, &v2_inet4(), &[]), ProxyError::V2Version { version: 1 });
        assert_refused(&v2(0x31, 0x11, &v2_inet4(), &[]), ProxyError::V2Version { version: 3 });
        assert_refused(&v2(0x22, 0x11, &v2_inet4(), &[]), ProxyError::V2Command { command: 2 });
        assert_refused(&v2(0x21, 0x41, &v2_inet4(), &[]), ProxyError::V2Family { byte: 0x41 });
        assert_refused(&v2(0x21, 0x13, &v2_inet4(), &[]), ProxyError::V2Family { byte: 0x13 });
        assert_refused(
            &v2(0x21, 0x11, &v2_inet4()[..11], &[]),
            ProxyError::V2Length { family: "INET", length: 11, needed: 12 },
        );
        assert_refused(
            &v2(0x21, 0x21, &v2_inet4(), &[]),
            ProxyError::V2Length { family: "INET6", length: 12, needed: 36 },
        );
        assert_refused(
            &v2(0x21, 0x31, &[0; 108], &[]),
            ProxyError::V2Length { family: "UNIX", length: 108, needed: 216 },
        );
        for e in [ProxyError::NoSignature, ProxyError::V1TooLong, ProxyError::V2Version { version: 1 }] {
            assert_eq!(e.status(), 400);
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn a_header_split_anywhere_then_completed_reads_the_same() {
        // Feeding a growing buffer, as the driver does, finds the header exactly when it is complete.
        let header = v2(0x21, 0x11, &v2_inet4(), &[0xEE, 0x00, 0x01, 0x00]);
        let mut stream = header.clone();
        stream.extend_from_slice(b"GET /");
        let complete_at =
            (1..=stream.len()).find(|&n| parse(&stream[..n]) != Ok(Parsed::Incomplete)).unwrap();
        assert_eq!(complete_at, header.len());
        let line = b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 8000\r\nGET /";
        let complete_at = (1..=line.len()).find(|&n| parse(&line[..n]) != Ok(Parsed::Incomplete)).unwrap();
        assert_eq!(complete_at, line.len() - "GET /".len());
    }
}
