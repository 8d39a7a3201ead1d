//! The HTTP/1.1 protocol core, **sans-I/O**: bytes in, parsed heads and decoded body ranges out;
//! response heads and framed body bytes out into a caller's buffer.
//!
//! # Theory of operation
//! A connection driver (one per worker class, and the socket-less [`replay`]) owns the socket, the
//! buffers and the clocks; it drives one [`conn::Conn`] per connection, which sequences everything
//! else here and makes every protocol decision. The received bytes go to [`conn::Conn::receive_head`]
//! ([`parse::parse_head`]: more needed, an [`Error`] carrying the status to answer with, or a reusable
//! [`parse::RequestHead`] filled and the bytes it used), then to [`conn::Conn::receive_body`] (the
//! head's [`body::Decoder`], which reports decoded data as ranges of the input, no copy). Responses go
//! the other way: [`response::ResponseHead`] records what the app gave, the connection picks the
//! framing and whether it persists and writes the head, and [`response::Encoder`] frames each body
//! chunk (Content-Length, chunked, or close-delimited) into the output buffer. When the exchange is
//! over, [`conn::After`] says what the connection does next.
//!
//! HTTP/2 lives beside it in [`h2`], in the same style: [`h2::conn::Connection`] takes a connection's
//! bytes and gives events per stream. No worker drives it yet (issue 15): `--http-protocols` still
//! serves h1 only.
//!
//! # Invariants
//! - Nothing here touches a socket, a clock or a file: time comes in as an argument ([`date`]).
//! - Nothing here allocates per request once its reusable buffers have grown to the working size.
//! - Every refusal is an [`Error`] whose [`ErrorKind::status`] is the status the client gets; the driver
//!   never picks a status itself.
//! - The parser is strict (RFC 9110/9112): what it accepts is served exactly as sent, and whatever could
//!   make a proxy in front of us disagree about where a request ends is refused.
//! - No `unsafe`: the crate forbids it, so the build itself keeps the protocol core free of I/O tricks.

#![forbid(unsafe_code)]

pub mod body;
pub mod conn;
pub mod date;
pub mod error;
pub mod forwarded;
pub mod h2;
pub mod limits;
pub mod parse;
#[cfg(test)]
mod property;
pub mod proxy;
#[cfg(any(test, feature = "replay"))]
pub mod replay;
pub mod response;
pub mod status;
pub mod target;
pub mod upgrade;
pub mod ws;

pub use error::{Error, ErrorKind};

/// The HTTP versions rustgun serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
    /// A stream of an HTTP/2 connection ([`h2`]): its head is built from the stream's fields.
    Http2,
}

impl Version {
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Version::Http10 => b"HTTP/1.0",
            Version::Http11 => b"HTTP/1.1",
            Version::Http2 => b"HTTP/2",
        }
    }
}
