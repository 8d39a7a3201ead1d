//! What makes an HTTP/2 request well-formed (RFC 9113 §8.2, §8.3.1): its pseudo-headers, the bytes
//! its fields may hold, and the fields HTTP/2 forbids. A malformed request is a stream error
//! ([`super::conn`] resets it). And the [`RequestHead`] a well-formed one is for the app
//! ([`request_head`]), checked by the same rules as an HTTP/1.1 head.
//!
//! Not here: the body and the response (the drivers).

use super::hpack::Fields;
use crate::body::is_token_byte;
use crate::parse::{BodyFraming, Limits, RequestHead, parse_head};
use crate::{Error, ErrorKind, Version};

/// RFC 9113 §8.2.1: a name is lowercase token bytes (a pseudo-header's after its colon); a value
/// holds no NUL, CR or LF and neither starts nor ends with a space or tab.
fn well_formed_field(name: &[u8], value: &[u8]) -> bool {
    let bare = name.strip_prefix(b":").unwrap_or(name);
    let name_ok = !bare.is_empty() && bare.iter().all(|&b| is_token_byte(b) && !b.is_ascii_uppercase());
    let blank = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    let value_ok = !value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n'))
        && !blank(value.first())
        && !blank(value.last());
    name_ok && value_ok
}

/// RFC 9113 §8.2 and §8.3.1: a request's fields are well-formed; the body length its
/// `content-length` declares, if it declares one (every value the same number).
pub fn check_request(fields: &Fields) -> Result<Option<u64>, &'static str> {
    let mut length: Option<u64> = None;
    let mut regular = false;
    let (mut method, mut scheme, mut path, mut authority) = (0, 0, 0, 0);
    let mut connect = false;
    for (name, value) in fields {
        if !well_formed_field(name, value) {
            return Err("a field name or value with bytes HTTP/2 forbids");
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

/// The request a well-formed stream's `fields` make, as the app sees it: `:method` and `:path` (the
/// `:authority` for CONNECT) become the request line, `:authority` the `Host` field, cookie fields
/// are joined again (RFC 9113 §8.2.3), and the result passes the HTTP/1.1 head's own checks and
/// `limits` ([`parse_head`]: one validator for both versions). `end_stream`: the stream ended with
/// its headers (no body); else the body is as long as its `content-length`, or open-ended.
/// `scratch` holds the head's bytes while it is checked.
pub fn request_head(
    fields: &Fields,
    end_stream: bool,
    limits: &Limits,
    scratch: &mut Vec<u8>,
    head: &mut RequestHead,
) -> Result<(), Error> {
    let pseudo = |key: &[u8]| fields.iter().find(|(n, _)| n == key).map(|(_, v)| v.as_slice());
    let method = pseudo(b":method").unwrap_or_default();
    let authority = pseudo(b":authority");
    let target = if method == b"CONNECT" { authority } else { pseudo(b":path") }.unwrap_or_default();
    scratch.clear();
    for part in [method, b" ", target, b" HTTP/1.1\r\n"] {
        scratch.extend_from_slice(part);
    }
    if let Some(authority) = authority {
        for part in [&b"host: "[..], authority, b"\r\n"] {
            scratch.extend_from_slice(part);
        }
    }
    let mut cookies = 0;
    for (name, value) in fields.iter().filter(|(n, _)| !n.starts_with(b":")) {
        match &name[..] {
            // §8.3.1: a Host that names another origin than `:authority` makes the request malformed.
            b"host" if authority.is_some() => {
                if Some(&value[..]) != authority {
                    return Err(Error::new(ErrorKind::BadHost, "host differs from :authority"));
                }
                continue;
            }
            b"cookie" => {
                cookies += 1;
                continue;
            }
            _ => {}
        }
        for part in [name, &b": "[..], value, b"\r\n"] {
            scratch.extend_from_slice(part);
        }
    }
    if cookies > 0 {
        scratch.extend_from_slice(b"cookie: ");
        for (i, (_, value)) in fields.iter().filter(|(n, _)| n == b"cookie").enumerate() {
            if i > 0 {
                scratch.extend_from_slice(b"; ");
            }
            scratch.extend_from_slice(value);
        }
        scratch.extend_from_slice(b"\r\n");
    }
    scratch.extend_from_slice(b"\r\n");
    match parse_head(scratch, limits, head)? {
        Some(n) if n == scratch.len() => {}
        _ => return Err(Error::new(ErrorKind::BadRequestLine, "malformed request")),
    }
    head.version = Version::Http2;
    head.framing = match head.framing {
        _ if end_stream => BodyFraming::Empty,
        BodyFraming::Length(n) => BodyFraming::Length(n),
        // A body with no declared length ends with the stream: the app reads it to its end as it
        // reads a chunked one.
        _ => BodyFraming::Chunked,
    };
    Ok(())
}
