//! Trusted proxies, sans-I/O: which peers may speak for a client ([`TrustList`], behind
//! `--forwarded-allow-ips` and `--proxy-allow-ips`), and what a trusted peer's headers say about the
//! request ([`interpret`]): the client's address, the URL scheme and the host the client addressed.
//!
//! # Rules
//! - The caller asks [`TrustList::trusts`] about the connection's peer first: headers from a peer that
//!   is not trusted are never interpreted (they reach the app untouched and change nothing). A
//!   unix-socket peer has no address and is always trusted, as in gunicorn.
//! - **Client address**: from `Forwarded: for=` (RFC 7239 §5.2) when a `Forwarded` field is present,
//!   else from `X-Forwarded-For`. Both are lists that each proxy appends to, so the client is the
//!   **rightmost untrusted** entry: walking from the right, entries naming a trusted proxy are skipped
//!   and the first other entry is the client; when every entry is trusted, the leftmost is. Entries
//!   to the left of the client were written by the client itself and are never believed. An entry that
//!   is not an IP address (`unknown`, an obfuscated `_name`, garbage) names nobody: the connection's
//!   own peer stays.
//! - **Scheme**: gunicorn's `secure_scheme_headers` — `X-Forwarded-Proto: https`,
//!   `X-Forwarded-Ssl: on`, `X-Forwarded-Protocol: ssl` — plus `Forwarded: proto=` (RFC 7239 §5.4) of
//!   the element the client was taken from. Each one present says `https` when it has its secure value
//!   and `http` otherwise; two that disagree are refused (400), as gunicorn does.
//! - **Host**: `Forwarded: host=` (RFC 7239 §5.3) of that element, else `X-Forwarded-Host`. It must be
//!   a valid `uri-host [":" port]` (RFC 9110 §7.2), else 400.
//! - Several field lines of one name are one comma-separated list (RFC 9110 §5.3). The
//!   single-valued `X-Forwarded-*` headers take their **rightmost** element: the one the nearest
//!   proxy, which is trusted, wrote.
//! - IPv4-mapped IPv6 peers (`::ffff:127.0.0.1`, as a dual-stack listener reports them) match their
//!   IPv4 form.

use super::body::is_token_byte;
use super::parse::{is_valid_host, list_elements};
use super::{Error, ErrorKind};
use core::net::{IpAddr, Ipv6Addr};
use std::fmt;
use std::str::FromStr;

/// Who may speak for a client: `*` (everyone) or a list of addresses and networks (`10.0.0.0/8`,
/// `::1`, `2001:db8::/32`), as `--forwarded-allow-ips` and `--proxy-allow-ips` take them; or nobody at
/// all, not even a unix-socket peer (uvicorn's `--no-proxy-headers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustList {
    All,
    Nets(Vec<Net>),
    Nobody,
}

/// An address with a prefix length: a single address has the full length (32 or 128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why a trust list could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustListError {
    /// An entry is neither an IP address nor `ADDRESS/PREFIX`.
    BadAddress { entry: String },
    /// A network's prefix length is not a number up to `max` (32 for IPv4, 128 for IPv6).
    BadPrefix { entry: String, max: u8 },
}

impl fmt::Display for TrustListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustListError::BadAddress { entry } => {
                write!(f, "{entry:?} is not an IP address or network (use `*`, `ADDR` or `ADDR/PREFIX`)")
            }
            TrustListError::BadPrefix { entry, max } => {
                write!(f, "{entry:?} has a prefix length that is not a number from 0 to {max}")
            }
        }
    }
}

impl std::error::Error for TrustListError {}

impl FromStr for TrustList {
    type Err = TrustListError;

    /// Comma-separated entries, spaces allowed around them; `*` anywhere means everyone; an empty
    /// list trusts no TCP peer.
    fn from_str(s: &str) -> Result<TrustList, TrustListError> {
        let mut nets = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(TrustList::All);
            }
            let bad = || TrustListError::BadAddress { entry: entry.to_string() };
            let (addr, prefix) = match entry.split_once('/') {
                Some((addr, prefix)) => (addr.parse::<IpAddr>().map_err(|_| bad())?, Some(prefix)),
                None => (entry.parse::<IpAddr>().map_err(|_| bad())?, None),
            };
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => match p.parse::<u8>() {
                    Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                    _ => return Err(TrustListError::BadPrefix { entry: entry.to_string(), max }),
                },
            };
            // Peers are compared in their canonical form, so an IPv4-mapped network becomes IPv4.
            let net = match addr.to_canonical() {
                v4 @ IpAddr::V4(_) if addr.is_ipv6() && prefix >= 96 => Net { addr: v4, prefix: prefix - 96 },
                _ => Net { addr, prefix },
            };
            nets.push(net);
        }
        Ok(TrustList::Nets(nets))
    }
}

impl TrustList {
    /// Whether `ip` is in the list.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match self {
            TrustList::All => true,
            TrustList::Nets(nets) => nets.iter().any(|n| n.contains(ip)),
            TrustList::Nobody => false,
        }
    }

    /// Whether a connection's peer is trusted: `None` is a unix-socket peer, always trusted.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        *self != TrustList::Nobody && peer.is_none_or(|ip| self.contains(ip))
    }
}

/// A URL scheme a proxy can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The client a proxy names: its address and, when the proxy gave one, its port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

/// What a trusted peer's headers say about one request; `None` where they say nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forwarded<'h> {
    pub client: Option<Client>,
    pub scheme: Option<Scheme>,
    /// The host the client addressed, `uri-host [":" port]`, as the proxy sent it.
    pub host: Option<&'h [u8]>,
}

/// Why a trusted peer's proxy headers were refused (each is a 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardedError {
    /// Two scheme headers disagree (gunicorn: "Contradictory scheme headers").
    ConflictingScheme { first: &'static str, second: &'static str },
    /// A `Forwarded` field that is not RFC 7239 §4 syntax.
    BadForwarded { reason: &'static str },
    /// A forwarded host that is not `uri-host [":" port]`.
    BadHost { header: &'static str },
}

impl ForwardedError {
    /// The protocol error the client gets.
    pub fn to_http(self) -> Error {
        let detail = match self {
            ForwardedError::ConflictingScheme { .. } => "contradictory scheme headers from a trusted proxy",
            ForwardedError::BadForwarded { .. } => "malformed Forwarded header from a trusted proxy",
            ForwardedError::BadHost { .. } => "malformed forwarded host from a trusted proxy",
        };
        Error::new(ErrorKind::BadHeader, detail)
    }
}

impl fmt::Display for ForwardedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardedError::ConflictingScheme { first, second } => {
                write!(f, "contradictory scheme headers: {first} and {second} disagree")
            }
            ForwardedError::BadForwarded { reason } => write!(f, "malformed Forwarded header: {reason}"),
            ForwardedError::BadHost { header } => write!(f, "{header} is not a valid host[:port]"),
        }
    }
}

impl std::error::Error for ForwardedError {}

/// One `Forwarded` element's parameters (RFC 7239 §4), values unquoted.
#[derive(Clone, Copy, Debug, Default)]
struct Element<'h> {
    /// The `for=` node when it is an address; `None` when absent, `unknown` or obfuscated.
    client: Option<Client>,
    proto: Option<&'h [u8]>,
    host: Option<&'h [u8]>,
}

/// The rightmost-untrusted walk over a list, done left to right without storing it: the rightmost
/// untrusted entry is the last untrusted one seen; with none, the first entry.
struct Walk<T> {
    first: Option<T>,
    last_untrusted: Option<T>,
}

impl<T: Copy> Walk<T> {
    fn new() -> Walk<T> {
        Walk { first: None, last_untrusted: None }
    }

    fn push(&mut self, item: T, trusted: bool) {
        self.first.get_or_insert(item);
        if !trusted {
            self.last_untrusted = Some(item);
        }
    }

    fn chosen(&self) -> Option<T> {
        self.last_untrusted.or(self.first)
    }
}

/// gunicorn's `secure_scheme_headers`, after RFC 7239's `proto`, in the order they are compared: each
/// header's name (for the error) and the value that means https; any other value means http.
const SCHEME_HEADERS: [(&str, &[u8]); 4] = [
    ("Forwarded proto", b"https"),
    ("X-Forwarded-Proto", b"https"),
    ("X-Forwarded-Ssl", b"on"),
    ("X-Forwarded-Protocol", b"ssl"),
];

/// Interprets the proxy headers among `fields` (name, value pairs in arrival order) of a request from
/// a trusted peer; `trusted` is the list the walk skips proxies by.
pub fn interpret<'h>(
    fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    trusted: &TrustList,
) -> Result<Forwarded<'h>, ForwardedError> {
    let mut forwarded = Walk::new();
    let mut xff = Walk::new();
    let (mut proto, mut ssl, mut protocol, mut xhost) = (None, None, None, None);
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"forwarded") {
            for element in split_quoted(value, b',')? {
                if element.trim_ascii().is_empty() {
                    continue;
                }
                let element = parse_element(element)?;
                let trusted_hop = element.client.is_some_and(|c| trusted.contains(c.ip));
                forwarded.push(element, trusted_hop);
            }
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            for node in list_elements(value) {
                let client = parse_node(node);
                xff.push(client, client.is_some_and(|c| trusted.contains(c.ip)));
            }
        } else if name.eq_ignore_ascii_case(b"x-forwarded-proto") {
            proto = list_elements(value).last().or(proto);
        } else if name.eq_ignore_ascii_case(b"x-forwarded-ssl") {
            ssl = list_elements(value).last().or(ssl);
        } else if name.eq_ignore_ascii_case(b"x-forwarded-protocol") {
            protocol = list_elements(value).last().or(protocol);
        } else if name.eq_ignore_ascii_case(b"x-forwarded-host") {
            xhost = list_elements(value).last().or(xhost);
        }
    }

    let element = forwarded.chosen();
    let client = match element {
        Some(e) => e.client,
        None => xff.chosen().flatten(),
    };

    let values = [element.and_then(|e| e.proto), proto, ssl, protocol];
    let mut scheme: Option<(Scheme, &'static str)> = None;
    for ((header, secure), value) in SCHEME_HEADERS.into_iter().zip(values) {
        let Some(value) = value else { continue };
        let says = if value.eq_ignore_ascii_case(secure) { Scheme::Https } else { Scheme::Http };
        match scheme {
            Some((s, first)) if s != says => {
                return Err(ForwardedError::ConflictingScheme { first, second: header });
            }
            Some(_) => {}
            None => scheme = Some((says, header)),
        }
    }

    let host = match (element.and_then(|e| e.host), xhost) {
        (Some(h), _) if !h.is_empty() && is_valid_host(h) => Some(h),
        (Some(_), _) => return Err(ForwardedError::BadHost { header: "Forwarded host" }),
        (None, Some(h)) if is_valid_host(h) => Some(h),
        (None, Some(_)) => return Err(ForwardedError::BadHost { header: "X-Forwarded-Host" }),
        (None, None) => None,
    };
    Ok(Forwarded { client, scheme: scheme.map(|(s, _)| s), host })
}

/// Splits `value` at `sep` outside quoted-strings (RFC 9110 §5.6.4); an unterminated quoted-string
/// is malformed.
fn split_quoted(value: &[u8], sep: u8) -> Result<SplitQuoted<'_>, ForwardedError> {
    let mut quoted = false;
    let mut bytes = value.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => quoted = !quoted,
            b'\\' if quoted => {
                bytes.next();
            }
            _ => {}
        }
    }
    if quoted {
        return Err(ForwardedError::BadForwarded { reason: "unterminated quoted-string" });
    }
    Ok(SplitQuoted { rest: Some(value), sep })
}

/// The pieces of a value between separators outside quoted-strings, without allocating.
struct SplitQuoted<'h> {
    rest: Option<&'h [u8]>,
    sep: u8,
}

impl<'h> Iterator for SplitQuoted<'h> {
    type Item = &'h [u8];

    fn next(&mut self) -> Option<&'h [u8]> {
        let rest = self.rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, &b) in rest.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b if b == self.sep && !quoted => {
                    self.rest = Some(&rest[i + 1..]);
                    return Some(&rest[..i]);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(rest)
    }
}

/// forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] ), forwarded-pair = token "="
/// value (RFC 7239 §4); each parameter at most once per element; unknown parameters are extensions
/// and ignored.
fn parse_element(element: &[u8]) -> Result<Element<'_>, ForwardedError> {
    let mut out = Element::default();
    let (mut seen_for, mut seen_by) = (false, false);
    for pair in split_quoted(element, b';')? {
        let pair = pair.trim_ascii();
        if pair.is_empty() {
            continue;
        }
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            return Err(ForwardedError::BadForwarded { reason: "a parameter without `=`" });
        };
        let (name, value) = (&pair[..eq], unquote(&pair[eq + 1..])?);
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            return Err(ForwardedError::BadForwarded { reason: "a parameter name that is not a token" });
        }
        const TWICE: ForwardedError =
            ForwardedError::BadForwarded { reason: "a parameter given twice in one element" };
        if name.eq_ignore_ascii_case(b"for") {
            if std::mem::replace(&mut seen_for, true) {
                return Err(TWICE);
            }
            out.client = parse_node(value);
        } else if name.eq_ignore_ascii_case(b"by") {
            if std::mem::replace(&mut seen_by, true) {
                return Err(TWICE);
            }
        } else if name.eq_ignore_ascii_case(b"proto") {
            if out.proto.replace(value).is_some() {
                return Err(TWICE);
            }
        } else if name.eq_ignore_ascii_case(b"host") && out.host.replace(value).is_some() {
            return Err(TWICE);
        }
    }
    Ok(out)
}

/// value = token / quoted-string (RFC 7239 §4). Unquoted values are taken as any visible bytes but
/// `"`, as proxies often leave `for=192.0.2.1:80` unquoted; the inside of a quoted-string is
/// returned as is (an escape inside makes it match no address, scheme or host).
fn unquote(value: &[u8]) -> Result<&[u8], ForwardedError> {
    match value {
        [b'"', inner @ .., b'"'] => Ok(inner),
        v if !v.is_empty() && v.iter().all(|&b| b.is_ascii_graphic() && b != b'"') => Ok(v),
        _ => Err(ForwardedError::BadForwarded { reason: "a malformed parameter value" }),
    }
}

/// node = nodename [ ":" node-port ] (RFC 7239 §6), nodename = IPv4address / "[" IPv6address "]" /
/// "unknown" / obfnode. Also takes a bare IPv6 address, as `X-Forwarded-For` carries it. Returns
/// `None` for anything that names no address.
fn parse_node(node: &[u8]) -> Option<Client> {
    let text = std::str::from_utf8(node).ok()?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(Client { ip, port: None });
    }
    let (ip, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            (IpAddr::V6(inside.parse::<Ipv6Addr>().ok()?), after)
        }
        None => {
            let colon = text.find(':')?;
            (IpAddr::V4(text[..colon].parse().ok()?), &text[colon..])
        }
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        None => return None,
        // An obfuscated port (`_abc`) hides the port, not the address.
        Some(p) if p.starts_with('_') => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some(Client { ip, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> TrustList {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn run<'h>(fields: &[(&'h str, &'h str)], trusted: &str) -> Result<Forwarded<'h>, ForwardedError> {
        interpret(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())), &list(trusted))
    }

    fn client(fields: &[(&str, &str)], trusted: &str) -> Option<String> {
        run(fields, trusted).unwrap().client.map(|c| match c.port {
            Some(p) => format!("{} {p}", c.ip),
            None => c.ip.to_string(),
        })
    }

    fn scheme(fields: &[(&str, &str)]) -> Result<Option<&'static str>, ForwardedError> {
        run(fields, "127.0.0.1").map(|f| f.scheme.map(Scheme::as_str))
    }

    #[test]
    fn trust_lists_match_addresses_and_networks() {
        let l = list("127.0.0.1, ::1,10.0.0.0/8 , 2001:db8::/32");
        for yes in ["127.0.0.1", "::1", "10.1.2.3", "10.255.255.255", "2001:db8::7", "::ffff:127.0.0.1"] {
            assert!(l.contains(ip(yes)), "{yes}");
        }
        for no in ["127.0.0.2", "11.0.0.1", "::2", "2001:db9::1", "::ffff:11.0.0.1"] {
            assert!(!l.contains(ip(no)), "{no}");
        }
        assert!(list("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")), "mapped networks are IPv4 ones");
        assert!(list("10.0.0.1/8").contains(ip("10.200.0.1")), "host bits are masked");
        assert!(list("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!list("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(list("::/0").contains(ip("2001:db8::1")));
        assert!(list("1.2.3.4, *").contains(ip("2001:db8::1")));
        assert!(!list("").contains(ip("127.0.0.1")));
        assert!(list("").trusts(None), "unix peers are always trusted");
        assert!(!list("").trusts(Some(ip("127.0.0.1"))));
    }

    #[test]
    fn trust_list_errors_name_the_entry() {
        let bad = |s: &str| s.parse::<TrustList>().unwrap_err();
        assert_eq!(bad("127.0.0.1,localhost"), TrustListError::BadAddress { entry: "localhost".into() });
        assert_eq!(bad("10.0.0.0/33"), TrustListError::BadPrefix { entry: "10.0.0.0/33".into(), max: 32 });
        assert_eq!(bad("::/129"), TrustListError::BadPrefix { entry: "::/129".into(), max: 128 });
        assert_eq!(bad("10.0.0.0/+8"), TrustListError::BadPrefix { entry: "10.0.0.0/+8".into(), max: 32 });
        assert_eq!(bad("10.0.0.0/"), TrustListError::BadPrefix { entry: "10.0.0.0/".into(), max: 32 });
        assert!(bad("1.2.3").to_string().contains("\"1.2.3\""));
    }

    #[test]
    fn x_forwarded_for_takes_the_rightmost_untrusted_entry() {
        let xff = |v: &'static str, t| client(&[("X-Forwarded-For", v)], t);
        assert_eq!(xff("203.0.113.7", "127.0.0.1").as_deref(), Some("203.0.113.7"));
        // The client wrote the leftmost entry itself; the nearest untrusted one is believed.
        assert_eq!(xff("1.1.1.1, 203.0.113.7", "127.0.0.1").as_deref(), Some("203.0.113.7"));
        assert_eq!(xff("1.1.1.1, 203.0.113.7, 10.0.0.2", "10.0.0.0/8").as_deref(), Some("203.0.113.7"));
        // Every entry trusted: the leftmost.
        assert_eq!(xff("203.0.113.7, 10.0.0.2", "*").as_deref(), Some("203.0.113.7"));
        assert_eq!(xff("10.0.0.3, 10.0.0.2", "10.0.0.0/8").as_deref(), Some("10.0.0.3"));
        // Forms seen in the wild.
        assert_eq!(xff("2001:db8::1", "").as_deref(), Some("2001:db8::1"));
        assert_eq!(xff("[2001:db8::1]:443", "").as_deref(), Some("2001:db8::1 443"));
        assert_eq!(xff("192.0.2.1:8080", "").as_deref(), Some("192.0.2.1 8080"));
        // Something that is not an address names nobody, even with good entries to its left.
        assert_eq!(xff("203.0.113.7, unknown", "127.0.0.1"), None);
        assert_eq!(xff("203.0.113.7, 999.1.1.1", "127.0.0.1"), None);
        assert_eq!(xff("203.0.113.7, unknown, 10.0.0.2", "10.0.0.0/8"), None);
        assert_eq!(xff("", "*"), None);
        // Several lines are one list.
        let lines = [("X-Forwarded-For", "1.1.1.1"), ("x-forwarded-for", "203.0.113.9, 10.0.0.1")];
        assert_eq!(client(&lines, "10.0.0.0/8").as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn forwarded_for_walks_elements_and_wins_over_x_forwarded_for() {
        let fw = |v: &'static str, t| client(&[("X-Forwarded-For", "198.51.100.1"), ("Forwarded", v)], t);
        assert_eq!(fw("for=192.0.2.60;proto=http;by=203.0.113.43", "").as_deref(), Some("192.0.2.60"));
        assert_eq!(fw(r#"for="[2001:db8:cafe::17]:4711""#, "").as_deref(), Some("2001:db8:cafe::17 4711"));
        assert_eq!(fw(r#"For="192.0.2.43:_hidden""#, "").as_deref(), Some("192.0.2.43"));
        assert_eq!(fw("for=192.0.2.43, for=198.51.100.17", "").as_deref(), Some("198.51.100.17"));
        assert_eq!(fw("for=192.0.2.43, for=10.0.0.5", "10.0.0.0/8").as_deref(), Some("192.0.2.43"));
        assert_eq!(fw("for=unknown", ""), None);
        assert_eq!(fw("for=_gazonk", ""), None);
        // The element the client came from also gives proto and host.
        let f = run(&[("Forwarded", "for=1.1.1.1;proto=http, for=192.0.2.1;proto=https;host=a.example")], "")
            .unwrap();
        assert_eq!(f.scheme, Some(Scheme::Https));
        assert_eq!(f.host, Some(&b"a.example"[..]));
        // An element without `for` is the proxy's own word: it is the one chosen.
        let f = run(&[("Forwarded", "proto=https;host=b.example")], "").unwrap();
        assert_eq!((f.client, f.scheme, f.host), (None, Some(Scheme::Https), Some(&b"b.example"[..])));
    }

    #[test]
    fn malformed_forwarded_fields_are_refused() {
        for bad in [
            "for",
            "for=1.2.3.4;for=5.6.7.8",
            "proto=https;PROTO=http",
            "host=a;host=b",
            "by=a;by=b",
            r#"for="1.2.3.4"#,
            "for=",
            "f r=1.2.3.4",
            "for=1.2.3.4;=x",
        ] {
            let got = run(&[("Forwarded", bad)], "");
            assert!(matches!(got, Err(ForwardedError::BadForwarded { .. })), "{bad:?}: {got:?}");
        }
        // Empty elements and pairs are allowed by the list rule; unknown parameters are extensions.
        assert!(run(&[("Forwarded", "for=1.2.3.4;;ext=\"a,b;c\", ,")], "").is_ok());
        assert_eq!(client(&[("Forwarded", "ext=\"x\";for=1.2.3.4")], "").as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn scheme_headers_follow_gunicorn_and_must_agree() {
        assert_eq!(scheme(&[]), Ok(None));
        assert_eq!(scheme(&[("X-Forwarded-Proto", "https")]), Ok(Some("https")));
        assert_eq!(scheme(&[("X-Forwarded-Proto", "HTTPS")]), Ok(Some("https")));
        assert_eq!(scheme(&[("X-Forwarded-Proto", "http")]), Ok(Some("http")));
        assert_eq!(scheme(&[("X-Forwarded-Ssl", "on")]), Ok(Some("https")));
        assert_eq!(scheme(&[("X-Forwarded-Ssl", "off")]), Ok(Some("http")));
        assert_eq!(scheme(&[("X-Forwarded-Protocol", "ssl")]), Ok(Some("https")));
        assert_eq!(scheme(&[("Forwarded", "proto=https")]), Ok(Some("https")));
        assert_eq!(scheme(&[("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "on")]), Ok(Some("https")));
        // The rightmost element is the nearest proxy's.
        assert_eq!(scheme(&[("X-Forwarded-Proto", "http, https")]), Ok(Some("https")));
        assert_eq!(
            scheme(&[("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")]),
            Ok(Some("http"))
        );
        let conflict = |fields: &[(&str, &str)]| scheme(fields).unwrap_err();
        assert_eq!(
            conflict(&[("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")]),
            ForwardedError::ConflictingScheme { first: "X-Forwarded-Proto", second: "X-Forwarded-Ssl" }
        );
        assert_eq!(
            conflict(&[("X-Forwarded-Proto", "https"), ("Forwarded", "proto=http")]),
            ForwardedError::ConflictingScheme { first: "Forwarded proto", second: "X-Forwarded-Proto" }
        );
        conflict(&[("X-Forwarded-Protocol", "ssl"), ("X-Forwarded-Proto", "http")]);
        assert_eq!(
            conflict(&[("X-Forwarded-Ssl", "on"), ("X-Forwarded-Proto", "x")]).to_http().status(),
            400
        );
    }

    #[test]
    fn hosts_are_checked() {
        let host = |fields: &[(&'static str, &'static str)]| run(fields, "").map(|f| f.host);
        assert_eq!(host(&[("X-Forwarded-Host", "example.com")]), Ok(Some(&b"example.com"[..])));
        assert_eq!(
            host(&[("X-Forwarded-Host", "a.example, example.com:8443")]),
            Ok(Some(&b"example.com:8443"[..]))
        );
        assert_eq!(host(&[("X-Forwarded-Host", "[2001:db8::1]:80")]), Ok(Some(&b"[2001:db8::1]:80"[..])));
        assert_eq!(
            host(&[("X-Forwarded-Host", "x.example"), ("Forwarded", "host=\"y.example:81\"")]),
            Ok(Some(&b"y.example:81"[..]))
        );
        // As the Host field would be: an empty IP-literal is no host.
        for bad in ["a b", "a:b", "[::1", "a/b", "a@b", "[]", "[]:80"] {
            assert_eq!(
                host(&[("X-Forwarded-Host", bad)]),
                Err(ForwardedError::BadHost { header: "X-Forwarded-Host" }),
                "{bad}"
            );
        }
        assert_eq!(
            host(&[("Forwarded", "host=\"a b\"")]),
            Err(ForwardedError::BadHost { header: "Forwarded host" })
        );
    }

    #[test]
    fn unrelated_headers_say_nothing() {
        assert_eq!(
            run(&[("Host", "h"), ("X-Forwarded-Port", "443"), ("Via", "1.1 p")], "*"),
            Ok(Forwarded::default())
        );
    }
}
