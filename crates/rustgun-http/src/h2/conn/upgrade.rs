//! A [`Connection`] that began as an HTTP/1.1 request with `Upgrade: h2c` (RFC 7540 §3.2, kept by
//! RFC 9113 §3.1 as deprecated but allowed): the request's `HTTP2-Settings` take effect as the
//! client's SETTINGS would (the 101 acknowledges them, no ACK is sent), and the request itself is
//! stream 1, already half-closed by the client. The client's preface and first SETTINGS frame still
//! come, as on any connection.
//!
//! Not here: deciding to upgrade, the 101 and the request's head (the driver's).

use super::{Connection, ConnectionError, State, Stream, protocol};
use crate::h2::conn::Config;
use crate::h2::frame::{self, Head, kind};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// base64url, padded or not (RFC 7540 §3.2.1 says without; some clients pad).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

impl Connection {
    /// The connection after an upgraded request whose `HTTP2-Settings` field is `settings`; the
    /// request is stream 1. A field that is not base64url of a SETTINGS payload, or whose values
    /// are out of range, refuses the upgrade.
    pub fn upgraded(config: Config, settings: &[u8]) -> Result<Connection, ConnectionError> {
        let payload = BASE64URL
            .decode(settings.trim_ascii())
            .map_err(|_| protocol("HTTP2-Settings is not base64url"))?;
        let head = Head { len: payload.len() as u32, kind: kind::SETTINGS, flags: 0, stream: 0 };
        let pairs = frame::settings(&head, &payload)?;
        let mut conn = Connection::new(config);
        conn.apply_settings(pairs, &mut Vec::new())?;
        let window = i64::from(config.initial_window_size);
        let stream = Stream {
            state: State::HalfClosedRemote,
            recv_window: window,
            send_window: conn.peer_initial_window,
            unconsumed: 0,
            remaining: Some(0),
        };
        conn.streams.insert(1, stream);
        conn.last_stream = 1;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::frame::{PREFACE, flag, setting};

    /// `HTTP2-Settings` of the client's `pairs`, as base64url without padding.
    fn field(pairs: &[(u16, u32)]) -> Vec<u8> {
        let payload: Vec<u8> =
            pairs.iter().flat_map(|(id, v)| [&id.to_be_bytes()[..], &v.to_be_bytes()].concat()).collect();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload).into_bytes()
    }

    #[test]
    fn the_upgraded_request_is_stream_1_and_the_clients_settings_apply_without_an_ack() {
        let mut conn =
            Connection::upgraded(Config::default(), &field(&[(setting::INITIAL_WINDOW_SIZE, 100)])).unwrap();
        assert!(conn.is_open(1));
        assert_eq!(conn.send_capacity(1), 100, "the client's window from HTTP2-Settings");
        // Our SETTINGS (and the connection's WINDOW_UPDATE, if any) only: no SETTINGS ACK.
        let out = std::mem::take(conn.output());
        let head = Head::parse(&out).unwrap();
        assert_eq!((head.kind, head.flags), (kind::SETTINGS, 0));
        assert_eq!(out.len(), frame::HEAD_LEN + head.len as usize);
        // The client's preface and SETTINGS still come, and are acknowledged.
        let mut input = PREFACE.to_vec();
        frame::write_settings(&mut input, &[]);
        let mut events = Vec::new();
        assert_eq!(conn.receive(&input, &mut events), Ok(input.len()));
        assert!(events.is_empty(), "{events:?}");
        let ack = Head::parse(conn.output()).unwrap();
        assert_eq!((ack.kind, ack.flags), (kind::SETTINGS, flag::ACK));
        // The answer on stream 1 ends it (the client ended its side with the request).
        conn.output().clear();
        conn.respond(1, 200, &[], true);
        assert!(!conn.is_open(1));
        assert_eq!(Head::parse(conn.output()).map(|h| (h.kind, h.stream)), Some((kind::HEADERS, 1)));
    }

    #[test]
    fn an_http2_settings_field_that_is_no_settings_payload_refuses_the_upgrade() {
        assert!(Connection::upgraded(Config::default(), b"not base64!").is_err());
        let five = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0u8; 5]);
        assert!(Connection::upgraded(Config::default(), five.as_bytes()).is_err());
        assert!(Connection::upgraded(Config::default(), &field(&[(setting::ENABLE_PUSH, 2)])).is_err());
        // Padded base64url is taken too; an empty field is an empty SETTINGS.
        let padded = base64::engine::general_purpose::URL_SAFE.encode([0, 3, 0, 0, 0, 100]);
        assert!(Connection::upgraded(Config::default(), padded.as_bytes()).is_ok());
        assert!(Connection::upgraded(Config::default(), b"").is_ok());
    }
}
