//! The request-target (RFC 9112 §3.2): which of the four forms it is, its path and query, and
//! percent-decoding of the path.

use super::{Error, ErrorKind};
use std::ops::Range;

/// The parts of a target, as ranges of the target bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetParts {
    /// The path component, raw (still percent-encoded). Empty for authority-form and `*`.
    pub path: Range<usize>,
    /// The query without its `?`; empty when there is none.
    pub query: Range<usize>,
    /// The authority of an absolute-form target (`host:port`), if any.
    pub authority: Option<Range<usize>>,
}

/// Checks the target's bytes and form against the method and splits it.
///
/// - origin-form `/path?query` for any method;
/// - absolute-form `scheme://authority/path?query` for any method (§3.2.2);
/// - authority-form `host:port` for CONNECT only (§3.2.3);
/// - asterisk-form `*` for OPTIONS only (§3.2.4).
///
/// A fragment (`#`) or any byte outside visible ASCII is refused: a client never sends them.
pub fn split(method: &[u8], target: &[u8]) -> Result<TargetParts, Error> {
    const BAD: Error = Error::new(ErrorKind::BadTarget, "malformed request-target");
    if target.is_empty() || !target.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b'#') {
        return Err(BAD);
    }
    let is_connect = method == b"CONNECT";
    if is_connect {
        // authority-form only: host ":" port, no path.
        return match target.iter().rposition(|&b| b == b':') {
            Some(colon)
                if colon > 0
                    && colon + 1 < target.len()
                    && target[colon + 1..].iter().all(u8::is_ascii_digit)
                    && !target.contains(&b'/') =>
            {
                Ok(TargetParts { path: 0..0, query: 0..0, authority: Some(0..target.len()) })
            }
            _ => Err(BAD),
        };
    }
    if target == b"*" {
        // The path is `*`, as gunicorn gives it to PATH_INFO.
        return if method == b"OPTIONS" {
            Ok(TargetParts { path: 0..1, ..TargetParts::default() })
        } else {
            Err(BAD)
        };
    }
    let (path_start, authority) = if target[0] == b'/' {
        (0, None)
    } else {
        let scheme_end = target
            .windows(3)
            .position(|w| w == b"://")
            .filter(|&i| i > 0 && is_scheme(&target[..i]))
            .ok_or(BAD)?;
        let auth_start = scheme_end + 3;
        let auth_end = target[auth_start..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(target.len(), |i| auth_start + i);
        if auth_end == auth_start {
            return Err(BAD);
        }
        (auth_end, Some(auth_start..auth_end))
    };
    let (path, query) = match target[path_start..].iter().position(|&b| b == b'?') {
        Some(q) => (path_start..path_start + q, path_start + q + 1..target.len()),
        None => (path_start..target.len(), target.len()..target.len()),
    };
    Ok(TargetParts { path, query, authority })
}

fn is_scheme(s: &[u8]) -> bool {
    s[0].is_ascii_alphabetic()
        && s.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Appends `raw` percent-decoded to `out`. A `%` not followed by two hex digits stays as it is.
pub fn percent_decode_into(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%'
            && i + 2 < raw.len()
            && let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, target: &str) -> Option<(String, String)> {
        let t = target.as_bytes();
        split(method.as_bytes(), t).ok().map(|p| {
            (String::from_utf8(t[p.path].to_vec()).unwrap(), String::from_utf8(t[p.query].to_vec()).unwrap())
        })
    }

    #[test]
    fn the_four_forms() {
        assert_eq!(parts("GET", "/a/b?x=1"), Some(("/a/b".into(), "x=1".into())));
        assert_eq!(parts("GET", "/"), Some(("/".into(), "".into())));
        assert_eq!(parts("GET", "http://example.com:80/p?q"), Some(("/p".into(), "q".into())));
        assert_eq!(parts("GET", "http://example.com"), Some(("".into(), "".into())));
        assert_eq!(parts("CONNECT", "example.com:443"), Some(("".into(), "".into())));
        assert_eq!(parts("OPTIONS", "*"), Some(("*".into(), "".into())));
    }

    #[test]
    fn refused_targets() {
        for (m, t) in [
            ("GET", "*"),
            ("GET", "example.com:443"),
            ("CONNECT", "/path"),
            ("GET", "/a#frag"),
            ("GET", "/caf\u{e9}"),
            ("GET", "relative/path"),
            ("GET", "http:///nohost"),
            ("GET", "://x/"),
        ] {
            assert_eq!(parts(m, t), None, "{m} {t}");
        }
    }

    #[test]
    fn percent_decoding() {
        let mut out = Vec::new();
        percent_decode_into(b"/a%20b%2Fc%zz%4", &mut out);
        assert_eq!(out, b"/a b/c%zz%4");
    }
}
