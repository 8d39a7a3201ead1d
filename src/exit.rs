//! The process exit statuses, in one place: the binary's (and a `--daemon` launcher's, which leaves
//! with its daemon's start-up result), the master's, and a worker's, which the master reads when it
//! reaps one. The values are gunicorn's where it has one.

/// Done: a clean shutdown, a worker that stopped (or was told to quit at once), a `--check-config`
/// that found nothing, a daemon that started.
pub const OK: i32 = 0;
/// The server could not start or went on no further: the directory, the error log, TLS, a listener,
/// daemonizing; also a `--check-config` that found a fault (gunicorn's 1).
pub const FAILED: i32 = 1;
/// The configuration is invalid: an unknown option or key, a bad value (clap's own status for a bad
/// command line).
pub const CONFIG: i32 = 2;
/// A worker failed to boot for a reason other than its app; the master halts with it (gunicorn's
/// `WORKER_BOOT_ERROR`).
pub const WORKER_BOOT: i32 = 3;
/// The app could not be loaded or initialised, in a worker or by `--preload`; the master halts with
/// it (gunicorn's `APP_LOAD_ERROR`).
pub const APP_LOAD: i32 = 4;
