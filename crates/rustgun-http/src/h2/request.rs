//! What makes an HTTP/2 request well-formed (RFC 9113 §8.2, §8.3.1): its pseudo-headers, and the
//! fields HTTP/2 forbids. A malformed request is a stream error ([`super::conn`] resets it).
//!
//! Not here: turning the fields into the app's request (the drivers).

use super::hpack::Fields;

/// RFC 9113 §8.2 and §8.3.1: a request's fields are well-formed.
pub fn check_request(fields: &Fields) -> Result<(), &'static str> {
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
            _ => {}
        }
    }
    let once = |n: i32| n == 1;
    let well_formed = if connect {
        once(method) && once(authority) && scheme == 0 && path == 0
    } else {
        once(method) && once(scheme) && once(path) && authority <= 1
    };
    if well_formed { Ok(()) } else { Err("missing or repeated pseudo-headers") }
}
