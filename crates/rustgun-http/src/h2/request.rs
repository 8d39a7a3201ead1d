//! What makes an HTTP/2 request well-formed (RFC 9113 §8.2, §8.3.1): its pseudo-headers, and the
//! fields HTTP/2 forbids. A malformed request is a stream error ([`super::conn`] resets it).
//!
//! Not here: turning the fields into the app's request (the drivers).

use super::hpack::Fields;

/// RFC 9113 §8.2 and §8.3.1: a request's fields are well-formed; the body length its
/// `content-length` declares, if it declares one (every value the same number).
pub fn check_request(fields: &Fields) -> Result<Option<u64>, &'static str> {
    let mut length: Option<u64> = None;
    let mut regular = false;
    let (mut method, mut scheme, mut path, mut authority) = (0, 0, 0, 0);
    let mut connect = false;
    for (name, value) in fields {
        if name.iter().any(|b| b.is_ascii_uppercase()) {
            return Err("an uppercase field name");
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if regular {
                return Err("a pseudo-header after a regular field");
            }
            match pseudo {
                b"method" => {
                    method += 1;
                    connect = value == b"CONNECT";
                }
                b"scheme" => scheme += 1,
                b"path" => {
                    path += 1;
                    if value.is_empty() {
                        return Err("an empty :path");
                    }
                }
                b"authority" => authority += 1,
                _ => return Err("an unknown or response pseudo-header"),
            }
            continue;
        }
        regular = true;
        match &name[..] {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade" => {
                return Err("a connection-specific field");
            }
            b"te" if value != b"trailers" => return Err("TE other than trailers"),
            b"content-length" => {
                let n = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or("a content-length that is not a number")?;
                if length.is_some_and(|l| l != n) {
                    return Err("content-length values that differ");
                }
                length = Some(n);
            }
            _ => {}
        }
    }
    let once = |n: i32| n == 1;
    let well_formed = if connect {
        once(method) && once(authority) && scheme == 0 && path == 0
    } else {
        once(method) && once(scheme) && once(path) && authority <= 1
    };
    if well_formed { Ok(length) } else { Err("missing or repeated pseudo-headers") }
}
