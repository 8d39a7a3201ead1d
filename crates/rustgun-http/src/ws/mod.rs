//! A sans-I/O WebSocket server protocol layer: RFC 6455 framing and close handshake plus RFC 7692
//! permessage-deflate. Bytes in, events out, frames written into the caller's `Vec<u8>`.
//!
//! What lives here: the handshake's accept key and extension negotiation (`handshake`), frame
//! headers and masking (`frame`), compression (`deflate`), and the per-connection state machine
//! (`session`). What does not: sockets, readiness, timers (keep-alive pings, close timeouts),
//! threads, the HTTP upgrade request itself and the application interface — the driver owns those.

mod deflate;
mod frame;
mod handshake;
mod session;
#[cfg(test)]
mod tests;

pub use deflate::{DeflateParams, Deflater};
pub use handshake::{accept_key, negotiate_deflate};
pub use session::{Event, Kind, ProtocolError, Session, State};

/// Close codes the server itself uses.
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down (or the page is going away).
    pub const GOING_AWAY: u16 = 1001;
    /// The peer broke the protocol.
    pub const PROTOCOL: u16 = 1002;
    /// A message type the endpoint cannot accept.
    pub const UNSUPPORTED: u16 = 1003;
    /// Reported (never sent) when a close frame had no code.
    pub const NO_STATUS: u16 = 1005;
    /// Reported (never sent) when the connection ended without a close frame.
    pub const ABNORMAL: u16 = 1006;
    /// A message's data was inconsistent with its type (e.g. text not UTF-8).
    pub const INVALID_DATA: u16 = 1007;
    /// A message violated the endpoint's policy.
    pub const POLICY: u16 = 1008;
    /// A message too big to process.
    pub const TOO_BIG: u16 = 1009;
    /// The server hit an unexpected condition.
    pub const INTERNAL: u16 = 1011;
}

/// Whether `code` may be sent in a Close frame by an endpoint (RFC 6455 §7.4 and the IANA
/// registry: 1000-1003 and 1007-1011, plus 1012-1014 that Autobahn's cases 7.7.x/7.9.x accept,
/// and 3000..=4999 for libraries and applications). 1004-1006, 1015 and the rest are not.
pub fn sendable_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
