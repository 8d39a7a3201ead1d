//! Protocol errors: one kind per way a request can be refused, and the one map from kind to status.

use std::fmt;

/// Why a request was refused. The display text is for logs, not a contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request line is longer than `--limit-request-line`.
    RequestLineTooLong,
    /// More header fields than `--limit-request-fields`.
    TooManyHeaders,
    /// A header line longer than `--limit-request-field-size`, or the whole head too large.
    HeaderTooLarge,
    /// The request line does not have the form `METHOD SP TARGET SP VERSION`.
    BadRequestLine,
    /// The method is not a token.
    BadMethod,
    /// The request-target is not in a form the method allows, or has a fragment or raw non-ASCII.
    BadTarget,
    /// The version is not `HTTP/d.d`.
    BadVersion,
    /// A well-formed version this server does not speak (`HTTP/2.0`).
    UnsupportedVersion,
    /// A header field is malformed (bad name, bad byte, obs-fold, bare LF, space before the colon).
    BadHeader,
    /// A header name contains `_` and `--header-map refuse` is set.
    UnderscoreHeader,
    /// `Host` missing on HTTP/1.1, duplicated, or malformed.
    BadHost,
    /// Content-Length is not a plain decimal, overflows, or several values differ.
    BadContentLength,
    /// Transfer-Encoding together with Content-Length, on HTTP/1.0, or with chunked not last or repeated.
    BadTransferEncoding,
    /// A transfer coding this server does not implement.
    UnsupportedTransferCoding,
    /// An `Expect` value other than `100-continue`.
    UnsupportedExpectation,
    /// A malformed chunk size, extension, terminator or trailer.
    BadChunk,
    /// The body is larger than `--limit-request-body`.
    BodyTooLarge,
    /// The client did not finish sending the request head in time.
    HeadTimeout,
    /// The request body arrived slower than `--min-rate` (or not at all) over a `--min-rate-period`.
    BodyTimeout,
}

impl ErrorKind {
    /// The status the client gets for this error.
    pub fn status(self) -> u16 {
        use ErrorKind::*;
        match self {
            RequestLineTooLong => 414,
            TooManyHeaders | HeaderTooLarge => 431,
            UnsupportedVersion => 505,
            UnsupportedTransferCoding => 501,
            UnsupportedExpectation => 417,
            BodyTooLarge => 413,
            HeadTimeout | BodyTimeout => 408,
            BadRequestLine | BadMethod | BadTarget | BadVersion | BadHeader | UnderscoreHeader | BadHost
            | BadContentLength | BadTransferEncoding | BadChunk => 400,
        }
    }
}

/// A refused request: the kind (which decides the status) and a short static detail for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub detail: &'static str,
}

impl Error {
    pub const fn new(kind: ErrorKind, detail: &'static str) -> Error {
        Error { kind, detail }
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for Error {}
