//! HTTP/2 (RFC 9113), **sans-I/O**, beside the HTTP/1.1 core: [`frame`] reads and writes frames,
//! [`hpack`] the header blocks (bounded), and [`conn::Connection`] is one connection's whole state
//! machine, server side: bytes in, [`conn::Event`]s out, responses in, frames out.
//!
//! Not here: sockets, timers and the app (the worker's drivers), the HTTP/1.1 `Upgrade: h2c` and
//! ALPN negotiation (the drivers choose which core a connection gets).

#[cfg(test)]
mod conformance;
pub mod conn;
pub mod frame;
pub mod hpack;
pub mod request;

/// Error codes (RFC 9113 §7), carried by RST_STREAM and GOAWAY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrorCode {
    NoError = 0x0,
    Protocol = 0x1,
    Internal = 0x2,
    FlowControl = 0x3,
    SettingsTimeout = 0x4,
    StreamClosed = 0x5,
    FrameSize = 0x6,
    RefusedStream = 0x7,
    Cancel = 0x8,
    Compression = 0x9,
    Connect = 0xa,
    EnhanceYourCalm = 0xb,
    InadequateSecurity = 0xc,
    Http11Required = 0xd,
}
