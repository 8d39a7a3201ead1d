//! Switching protocols (RFC 9110 §7.8) to WebSocket: whether a request is a valid opening handshake
//! (RFC 6455 §4.2.1), which subprotocols and extensions it offers, and the response fields that accept
//! it; and to cleartext HTTP/2 ([`h2c_settings`], RFC 7540 §3.2). The 101 head itself is written by [`super::conn::Conn::switch_protocols`]; the frames after it
//! are [`super::ws`]'s.
//!
//! Not here: whether the app accepts (the app's call), the sockets (the event loop).

use super::parse::{RequestHead, list_elements};
use super::ws::{self, DeflateParams};

/// The token a WebSocket upgrade names in `Upgrade` (case-insensitive) and the 101 answers with.
pub const WEBSOCKET: &[u8] = b"websocket";

/// What a valid opening handshake asks for.
#[derive(Debug)]
pub struct Opening<'h> {
    head: &'h RequestHead,
    accept: [u8; 28],
}

impl<'h> Opening<'h> {
    /// The handshake in `head`, if it is a valid one: `GET` on HTTP/1.1 without a body, `Upgrade`
    /// naming `websocket`, `Connection` naming `upgrade`, `Sec-WebSocket-Version: 13` and a
    /// `Sec-WebSocket-Key` of 16 bytes in base64.
    pub fn read(head: &'h RequestHead) -> Option<Opening<'h>> {
        let valid = head.method() == b"GET"
            && head.version == super::Version::Http11
            && head.content_length() == Some(0)
            && has_token(head, b"upgrade", WEBSOCKET)
            && has_token(head, b"connection", b"upgrade")
            && single(head, b"sec-websocket-version") == Some(b"13");
        if !valid {
            return None;
        }
        let accept = ws::accept_key(single(head, b"sec-websocket-key")?)?;
        Some(Opening { head, accept })
    }

    /// Whether the client offered `name` in `Sec-WebSocket-Protocol` (tokens are case-sensitive).
    pub fn offers_subprotocol(&self, name: &[u8]) -> bool {
        fields(self.head, b"sec-websocket-protocol").flat_map(list_elements).any(|offered| offered == name)
    }

    /// The permessage-deflate parameters and the `Sec-WebSocket-Extensions` value that accepts them,
    /// when the client offered an acceptable one.
    pub fn deflate(&self) -> Option<(DeflateParams, String)> {
        ws::negotiate_deflate(fields(self.head, b"sec-websocket-extensions"))
    }

    /// The `Sec-WebSocket-Accept` value.
    pub fn accept(&self) -> &[u8] {
        &self.accept
    }
}

/// The `HTTP2-Settings` value of a request that asks to continue as HTTP/2 (RFC 7540 §3.2): HTTP/1.1,
/// no body (one that has one is served as HTTP/1.1: the upgrade may be ignored), `Upgrade` naming
/// `h2c`, exactly one `HTTP2-Settings`, and `Connection` naming both `upgrade` and `http2-settings`
/// (§3.2.1).
pub fn h2c_settings(head: &RequestHead) -> Option<&[u8]> {
    let valid = head.version == super::Version::Http11
        && head.content_length() == Some(0)
        && has_token(head, b"upgrade", H2C)
        && has_token(head, b"connection", b"upgrade")
        && has_token(head, b"connection", b"http2-settings");
    if valid { single(head, b"http2-settings") } else { None }
}

/// The token an upgrade to cleartext HTTP/2 names, and the 101 answers with.
pub const H2C: &[u8] = b"h2c";

/// Every value of the field `name`, in order.
fn fields<'h>(head: &'h RequestHead, name: &'static [u8]) -> impl Iterator<Item = &'h [u8]> {
    head.fields().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The value of a field that must appear once.
fn single<'h>(head: &'h RequestHead, name: &'static [u8]) -> Option<&'h [u8]> {
    let mut values = fields(head, name);
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Whether a list field (in any of its lines) holds `token`, case-insensitively.
fn has_token(head: &RequestHead, name: &'static [u8], token: &[u8]) -> bool {
    fields(head, name).flat_map(list_elements).any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Limits, parse_head};

    fn head(raw: &str) -> RequestHead {
        let mut head = RequestHead::default();
        let raw = raw.replace('\n', "\r\n");
        parse_head(raw.as_bytes(), &Limits::default(), &mut head).expect("valid").expect("complete");
        head
    }

    const VALID: &str = "GET /chat HTTP/1.1\nHost: h\nUpgrade: WebSocket\nConnection: keep-alive, Upgrade\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\
                         Sec-WebSocket-Protocol: chat, superchat\n\n";

    #[test]
    fn the_rfc_example_is_an_opening_and_gets_its_accept_key() {
        let head = head(VALID);
        let opening = Opening::read(&head).expect("a valid opening handshake");
        assert_eq!(opening.accept(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(opening.offers_subprotocol(b"superchat"));
        assert!(!opening.offers_subprotocol(b"Chat"), "subprotocol tokens are case-sensitive");
        assert!(opening.deflate().is_none());
    }

    #[test]
    fn anything_short_of_the_rules_is_no_opening() {
        for (from, to) in [
            ("GET /chat", "POST /chat"),
            ("HTTP/1.1\nHost", "HTTP/1.0\nHost"),
            ("Upgrade: WebSocket", "Upgrade: h2c"),
            ("keep-alive, Upgrade", "keep-alive"),
            ("Version: 13", "Version: 8"),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ"),
            ("Version: 13\n", "Version: 13\nSec-WebSocket-Version: 13\n"),
            ("Version: 13\n", "Version: 13\nContent-Length: 2\n"),
        ] {
            let raw = VALID.replacen(from, to, 1);
            assert!(Opening::read(&head(&raw)).is_none(), "{from:?} -> {to:?} is still an opening");
        }
    }

    #[test]
    fn a_deflate_offer_is_negotiated() {
        let raw =
            VALID.replacen("Version: 13\n", "Version: 13\nSec-WebSocket-Extensions: permessage-deflate\n", 1);
        let head = head(&raw);
        let (_, answer) = Opening::read(&head).unwrap().deflate().expect("accepted");
        assert!(answer.starts_with("permessage-deflate"), "{answer}");
    }
}
