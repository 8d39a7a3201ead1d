//! Why a host call was refused ([`HostError`]): what the exchange, a pending call and a WebSocket
//! answer internally, turned into the ABI's `RG_E_*` status only where a host function returns to
//! the app ([`HostError::code`], in [`super::host`]).

use rustgun_abi::{RG_E_AGAIN, RG_E_CLOSED, RG_E_INVALID, RG_E_IO, RG_E_PANIC, RG_E_STATE};
use std::{fmt, io};

/// A host call the server refused or could not carry out. No variant allocates: the common ones
/// (`Again` above all) are answered on the hot path.
#[derive(Debug)]
pub enum HostError {
    /// Nothing was done, and an event says when to try again (`RG_E_AGAIN`): the output queue is
    /// above its high-water mark, or a pending call's body has no bytes ready.
    Again,
    /// The client went away, or the WebSocket is closing: nothing more can be sent (`RG_E_CLOSED`).
    Closed,
    /// An argument is refused: bad status or header bytes, an unknown flag or kind, a descriptor that
    /// is not a readable file (`RG_E_INVALID`).
    Invalid,
    /// The request body cannot be read: the client left, stalled or broke its framing (`RG_E_IO`).
    Body,
    /// A read failed: a spooled body, a file being sent (`RG_E_IO`).
    Io(io::Error),
    /// The call cannot do this now, or no call by that handle is in progress; the rule it broke
    /// (`RG_E_STATE`).
    State(&'static str),
    /// A host function panicked, a server bug (`RG_E_PANIC`).
    Panic,
}

impl HostError {
    /// The ABI status the app sees for this error: the one conversion, made by the host functions.
    pub fn code(&self) -> i32 {
        match self {
            HostError::Again => RG_E_AGAIN,
            HostError::Closed => RG_E_CLOSED,
            HostError::Invalid => RG_E_INVALID,
            HostError::Body | HostError::Io(_) => RG_E_IO,
            HostError::State(_) => RG_E_STATE,
            HostError::Panic => RG_E_PANIC,
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Again => f.write_str("not now: wait for the event"),
            HostError::Closed => f.write_str("the client went away"),
            HostError::Invalid => f.write_str("invalid argument"),
            HostError::Body => f.write_str("the request body cannot be read"),
            HostError::Io(e) => write!(f, "read failed: {e}"),
            HostError::State(rule) => write!(f, "out of order: {rule}"),
            HostError::Panic => f.write_str("panic in a host function"),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostError::Io(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_keeps_its_abi_status() {
        let io = || HostError::Io(io::Error::from(io::ErrorKind::UnexpectedEof));
        let cases = [
            (HostError::Again, -7),
            (HostError::Closed, -5),
            (HostError::Invalid, -4),
            (HostError::Body, -6),
            (io(), -6),
            (HostError::State("test"), -3),
            (HostError::Panic, -2),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }
}
