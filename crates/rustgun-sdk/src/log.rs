//! Logging to the server's error log (WSGI's `wsgi.errors`) through the host's `log` function:
//! [`log()`] and the `error!`/`warn!`/`info!`/`debug!` macros. The host is known from the first `init`
//! or request on; before that (in unit tests, say) lines go to stderr.

use rustgun_abi::{RG_LOG_DEBUG, RG_LOG_ERROR, RG_LOG_INFO, RG_LOG_WARN};

use crate::ffi;

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    /// The `RG_LOG_*` value.
    pub fn code(self) -> i32 {
        match self {
            Level::Error => RG_LOG_ERROR,
            Level::Warn => RG_LOG_WARN,
            Level::Info => RG_LOG_INFO,
            Level::Debug => RG_LOG_DEBUG,
        }
    }
}

/// Writes one line (`msg`, without a trailing newline) to the server's error log.
pub fn log(level: Level, msg: &str) {
    if !ffi::host_log(level.code(), msg.as_bytes()) {
        eprintln!("[{level:?}] {msg}");
    }
}

/// `log!(Level::Info, "format {}", args)`: formats and writes a line to the server's error log.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::log($level, &::std::format!($($arg)+))
    };
}

/// Logs at error level: `error!("format {}", args)`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Error, $($arg)+) };
}

/// Logs at warning level: `warn!("format {}", args)`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Warn, $($arg)+) };
}

/// Logs at info level: `info!("format {}", args)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Info, $($arg)+) };
}

/// Logs at debug level: `debug!("format {}", args)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Debug, $($arg)+) };
}
