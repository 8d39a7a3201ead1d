//! The server's side of the opening handshake: Sec-WebSocket-Key → Sec-WebSocket-Accept
//! (RFC 6455 §4.2.2) and the permessage-deflate offer negotiation (RFC 7692 §5, §7.1).
//!
//! The rest of the upgrade request (method, Upgrade/Connection tokens, version 13) is checked by
//! the HTTP layer that calls these; nothing here reads a socket or writes a response.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::deflate::DeflateParams;

/// The GUID that RFC 6455 §1.3 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The extension token of RFC 7692.
const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// Optional whitespace of RFC 7230 §3.2.3.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Validates a Sec-WebSocket-Key value (after trimming OWS: base64 of exactly 16 bytes) and
/// returns the Sec-WebSocket-Accept value (base64 of SHA-1 of key + the RFC GUID), 28 ASCII bytes.
pub fn accept_key(key: &[u8]) -> Option<[u8; 28]> {
    let key = trim_ows(key);
    // 16 bytes are 24 base64 characters; decoding 24 characters needs room for 18.
    if key.len() != 24 {
        return None;
    }
    let mut nonce = [0u8; 18];
    if STANDARD.decode_slice(key, &mut nonce).ok()? != 16 {
        return None;
    }
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let mut accept = [0u8; 28];
    let written = STANDARD.encode_slice(sha.digest().bytes(), &mut accept).ok()?;
    (written == accept.len()).then_some(accept)
}

/// Splits `s` at each `sep` that is not inside a quoted-string.
fn split_unquoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    s.split(move |c: char| {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            return true;
        }
        false
    })
}

/// A window-bits value of RFC 7692 §7.1.2: `8`..=`15`, no leading zero; a quoted-string whose
/// content is such a token is accepted too (§7.1).
fn window_bits(value: &str) -> Option<u8> {
    let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// The parameters of one permessage-deflate offer, each `Some` when it was present.
#[derive(Default)]
struct Offer {
    server_no_context_takeover: Option<()>,
    client_no_context_takeover: Option<()>,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

/// Stores `value` in `slot` unless the parameter was already there (RFC 7692 §7.1: decline an
/// offer with a duplicate parameter).
fn set_once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    slot.is_none().then(|| *slot = Some(value))
}

impl Offer {
    /// Parses one offer (`permessage-deflate; param[=value]; ...`); `None` if it is for another
    /// extension or must be declined.
    fn parse(offer: &str) -> Option<Offer> {
        let mut parts = split_unquoted(offer, ';');
        let name = parts.next()?.trim_matches([' ', '\t']);
        if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
            return None;
        }
        let mut parsed = Offer::default();
        for param in parts {
            let (key, value) = match param.split_once('=') {
                Some((key, value)) => (key.trim_matches([' ', '\t']), Some(value.trim_matches([' ', '\t']))),
                None => (param.trim_matches([' ', '\t']), None),
            };
            match (key, value) {
                ("server_no_context_takeover", None) => set_once(&mut parsed.server_no_context_takeover, ())?,
                ("client_no_context_takeover", None) => set_once(&mut parsed.client_no_context_takeover, ())?,
                ("server_max_window_bits", Some(value)) => {
                    set_once(&mut parsed.server_max_window_bits, window_bits(value)?)?
                }
                ("client_max_window_bits", None) => set_once(&mut parsed.client_max_window_bits, None)?,
                ("client_max_window_bits", Some(value)) => {
                    set_once(&mut parsed.client_max_window_bits, Some(window_bits(value)?))?
                }
                _ => return None,
            }
        }
        Some(parsed)
    }

    /// The parameters the server uses and the response's Sec-WebSocket-Extensions value.
    fn accept(&self) -> (DeflateParams, String) {
        let params = DeflateParams {
            server_window_bits: self.server_max_window_bits.unwrap_or(15),
            client_window_bits: self.client_max_window_bits.flatten().unwrap_or(15),
            client_no_context_takeover: self.client_no_context_takeover.is_some(),
        };
        // Always server_no_context_takeover (§7.1.1.1): one compressor per thread, reset per message.
        let mut response = format!("{PERMESSAGE_DEFLATE}; server_no_context_takeover");
        if params.client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits.is_some() {
            response.push_str(&format!("; server_max_window_bits={}", params.server_window_bits));
        }
        if self.client_max_window_bits.is_some() {
            response.push_str(&format!("; client_max_window_bits={}", params.client_window_bits));
        }
        (params, response)
    }
}

/// Reads every Sec-WebSocket-Extensions field value of the request (in order; each may hold
/// several comma-separated offers) and accepts the first permessage-deflate offer whose parameters
/// are valid and supported. Returns the negotiated parameters and the exact value for the
/// response's Sec-WebSocket-Extensions header. An offer with an unknown parameter, a duplicate
/// parameter or an invalid value is skipped (RFC 7692 §5: decline it), and the next one is tried.
pub fn negotiate_deflate<'a>(
    field_values: impl IntoIterator<Item = &'a [u8]>,
) -> Option<(DeflateParams, String)> {
    field_values
        .into_iter()
        .filter_map(|value| std::str::from_utf8(value).ok())
        .flat_map(|value| split_unquoted(value, ','))
        .find_map(Offer::parse)
        .map(|offer| offer.accept())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_of_the_rfc_example() {
        assert_eq!(&accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").unwrap(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(&accept_key(b" \tdGhlIHNhbXBsZSBub25jZQ== ").unwrap(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn accept_key_rejects_keys_that_are_not_16_bytes_of_base64() {
        for key in [
            &b""[..],
            b"dGhlIHNhbXBsZSBub25jZQ=",   // cut
            b"dGhlIHNhbXBsZSBub25jZQ===", // too long
            b"dGhlIHNhbXBsZSBub25jZQ",    // no padding
            b"dGhlIHNhbXBsZSBub25jZ!==",  // not base64
            b"dGhlIHNhbXBsZSBub25jZWU=",  // 17 bytes
            b"dGhlIHNhbXBsZSBub25j",      // 15 bytes
            b"dGhlIHNhbXBs ZSBub25jZQ==", // inner space
        ] {
            assert_eq!(accept_key(key), None, "{}", String::from_utf8_lossy(key));
        }
    }

    fn params(server: u8, client: u8, client_no_context_takeover: bool) -> DeflateParams {
        DeflateParams { server_window_bits: server, client_window_bits: client, client_no_context_takeover }
    }

    fn negotiate(values: &[&str]) -> Option<(DeflateParams, String)> {
        negotiate_deflate(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn negotiation_table() {
        const BASE: &str = "permessage-deflate; server_no_context_takeover";
        let accepted = [
            ("permessage-deflate", params(15, 15, false), String::new()),
            ("Permessage-Deflate", params(15, 15, false), String::new()),
            (
                "permessage-deflate; client_max_window_bits",
                params(15, 15, false),
                "; client_max_window_bits=15".to_owned(),
            ),
            (
                "permessage-deflate;client_max_window_bits=10",
                params(15, 10, false),
                "; client_max_window_bits=10".to_owned(),
            ),
            (
                "permessage-deflate; server_max_window_bits=8",
                params(8, 15, false),
                "; server_max_window_bits=8".to_owned(),
            ),
            (
                "permessage-deflate; server_max_window_bits = \"12\"",
                params(12, 15, false),
                "; server_max_window_bits=12".to_owned(),
            ),
            ("permessage-deflate; server_no_context_takeover", params(15, 15, false), String::new()),
            (
                "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
                params(15, 15, true),
                "; client_no_context_takeover".to_owned(),
            ),
            (
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits=8; client_no_context_takeover",
                params(9, 8, true),
                "; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8".to_owned(),
            ),
        ];
        for (offer, expected, tail) in accepted {
            assert_eq!(negotiate(&[offer]), Some((expected, format!("{BASE}{tail}"))), "{offer}");
        }
        let declined = [
            "",
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=\"1\\0\"",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
            "permessage-deflate; mux",
            "permessage-deflate;",
        ];
        for offer in declined {
            assert_eq!(negotiate(&[offer]), None, "{offer}");
        }
    }

    #[test]
    fn the_first_acceptable_offer_wins_across_fields() {
        let (negotiated, _) = negotiate(&[
            "foo, permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; x=\"a, permessage-deflate\", permessage-deflate; server_max_window_bits=10",
            "permessage-deflate",
        ])
        .unwrap();
        assert_eq!(negotiated.server_window_bits, 10);
        // A field that is not UTF-8 is skipped, not fatal.
        let values: [&[u8]; 2] =
            [b"\xffpermessage-deflate", b"permessage-deflate; client_max_window_bits=12"];
        assert_eq!(negotiate_deflate(values).unwrap().0, params(15, 12, false));
        assert_eq!(negotiate(&[]), None);
    }
}
