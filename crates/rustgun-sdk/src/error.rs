//! Errors: [`HostError`] for a status code the server returned, and [`Error`], the boxed error a
//! handler returns (any `std::error::Error` converts into it with `?`).

use std::fmt;
use std::io;

use rustgun_abi as abi;

/// A handler's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A negative status returned by a host function (`RG_E_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostError {
    /// `RG_ERROR`: a generic failure.
    Failed,
    /// `RG_E_PANIC`.
    Panic,
    /// `RG_E_STATE`: a call out of order (a second `start` without `restart`, a `write` before `start`,
    /// a `restart` after the first body byte left).
    State,
    /// `RG_E_INVALID`: a bad status or header bytes.
    Invalid,
    /// `RG_E_CLOSED`: the client went away.
    Closed,
    /// `RG_E_IO`: reading the request body failed (timeout, early close, malformed chunking).
    Io,
    /// `RG_E_AGAIN` (ABI 1.3): a WebSocket's output queue is full; nothing was sent. Send again after
    /// [`WsEvent::Writable`](crate::WsEvent::Writable).
    Again,
    /// A code this version of the SDK does not know.
    Other(i32),
}

impl HostError {
    /// The error for a host status: `None` for `RG_OK` (and any non-negative value).
    pub fn from_code(code: i64) -> Option<HostError> {
        if code >= 0 {
            return None;
        }
        let code = i32::try_from(code).unwrap_or(i32::MIN);
        Some(match code {
            abi::RG_ERROR => HostError::Failed,
            abi::RG_E_PANIC => HostError::Panic,
            abi::RG_E_STATE => HostError::State,
            abi::RG_E_INVALID => HostError::Invalid,
            abi::RG_E_CLOSED => HostError::Closed,
            abi::RG_E_IO => HostError::Io,
            abi::RG_E_AGAIN => HostError::Again,
            other => HostError::Other(other),
        })
    }

    /// The ABI status code.
    pub fn code(self) -> i32 {
        match self {
            HostError::Failed => abi::RG_ERROR,
            HostError::Panic => abi::RG_E_PANIC,
            HostError::State => abi::RG_E_STATE,
            HostError::Invalid => abi::RG_E_INVALID,
            HostError::Closed => abi::RG_E_CLOSED,
            HostError::Io => abi::RG_E_IO,
            HostError::Again => abi::RG_E_AGAIN,
            HostError::Other(code) => code,
        }
    }

    /// `Ok(())` for a non-negative status, the error otherwise.
    pub(crate) fn check(code: i32) -> std::result::Result<(), HostError> {
        match HostError::from_code(i64::from(code)) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Failed => f.write_str("the server reported a failure (RG_ERROR)"),
            HostError::Panic => f.write_str("a panic was caught (RG_E_PANIC)"),
            HostError::State => f.write_str("call out of order (RG_E_STATE)"),
            HostError::Invalid => f.write_str("invalid status or header (RG_E_INVALID)"),
            HostError::Closed => f.write_str("the client went away (RG_E_CLOSED)"),
            HostError::Io => f.write_str("reading the request body failed (RG_E_IO)"),
            HostError::Again => {
                f.write_str("the output queue is full; send again once writable (RG_E_AGAIN)")
            }
            HostError::Other(code) => write!(f, "unknown host status {code}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<HostError> for io::Error {
    fn from(e: HostError) -> io::Error {
        let kind = match e {
            HostError::Closed => io::ErrorKind::BrokenPipe,
            HostError::Invalid => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The error a handler returns: any `std::error::Error + Send + Sync` converts into it with `?`, and
/// [`Error::msg`] makes one from a message. The server answers 500 (or aborts the connection when the
/// response had started) and the message goes to the server's error log.
pub struct Error {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl Error {
    /// An error carrying just a message.
    pub fn msg(message: impl fmt::Display) -> Error {
        Error { inner: Box::new(Message(message.to_string())) }
    }

    /// The wrapped error, if it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.inner.downcast_ref::<T>()
    }

    /// The [`HostError`] behind this error, if any (directly or inside an `io::Error`).
    pub fn host_error(&self) -> Option<HostError> {
        if let Some(e) = self.downcast_ref::<HostError>() {
            return Some(*e);
        }
        self.downcast_ref::<io::Error>()
            .and_then(|e| e.get_ref())
            .and_then(|e| e.downcast_ref::<HostError>())
            .copied()
    }

    /// The wrapped error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.inner
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Error {
        Error { inner: Box::new(e) }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)?;
        let mut source = self.inner.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_codes_round_trip() {
        for code in [-1, -2, -3, -4, -5, -6, -77] {
            assert_eq!(HostError::from_code(code).unwrap().code() as i64, code);
        }
        assert_eq!(HostError::from_code(0), None);
        assert_eq!(HostError::from_code(12), None);
    }

    #[test]
    fn host_error_survives_io_error() {
        let e: Error = io::Error::from(HostError::Closed).into();
        assert_eq!(e.host_error(), Some(HostError::Closed));
        assert_eq!(Error::msg("x").host_error(), None);
        assert_eq!(Error::msg("boom").to_string(), "boom");
    }
}
