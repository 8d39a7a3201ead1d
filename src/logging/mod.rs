//! The error log (tracing-subscriber with gunicorn's line shape), the access log ([`access`]) and
//! StatsD output ([`statsd`]), which counts the error log's errors and warnings too.
//!
//! Error log lines look like `[2026-11-29 17:52:02 +0000] [1234] [INFO] [worker 2] message`: every
//! line names the process and its role. A file given with `--error-logfile` is put on descriptor 2,
//! so the app's own stderr output lands in the same log and reopening it is one `dup2`.

pub mod access;
mod datagram;
pub mod statsd;
pub mod syslog;

use crate::config::LogLevel;
use std::fmt;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// 0 in the master, the worker id in a worker.
static ROLE: AtomicU32 = AtomicU32::new(0);
/// This process's pid, cached (refreshed after fork by [`set_worker`]).
static PID: AtomicU32 = AtomicU32::new(0);

/// Marks this process as worker `id` in every later log line. Called right after fork.
pub fn set_worker(id: u32) {
    ROLE.store(id, Ordering::Relaxed);
    PID.store(std::process::id(), Ordering::Relaxed);
}

/// The worker id [`set_worker`] gave this process; 0 in the master.
pub fn worker_id() -> u32 {
    ROLE.load(Ordering::Relaxed)
}

/// Points descriptor 2 (and 1 with `capture`, gunicorn's `--capture-output`) at the error log file
/// (`-` keeps stderr) and installs the subscriber.
pub fn init(error_logfile: &str, level: LogLevel, capture: bool) -> std::io::Result<()> {
    PID.store(std::process::id(), Ordering::Relaxed);
    reopen_error_log(error_logfile, capture)?;
    let filter = match level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warning => LevelFilter::WARN,
        LogLevel::Error | LogLevel::Critical => LevelFilter::ERROR,
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let lines =
        tracing_subscriber::fmt().with_max_level(filter).with_writer(ErrorLog).event_format(LineFormat);
    let _ = lines.finish().with(CountLines).try_init();
    Ok(())
}

/// Counts each error and warning line for StatsD (`gunicorn.log.error`, `gunicorn.log.warning`).
struct CountLines;

impl<S: Subscriber> tracing_subscriber::Layer<S> for CountLines {
    fn on_event(&self, event: &Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let Some(statsd) = statsd::get() else { return };
        match *event.metadata().level() {
            tracing::Level::ERROR => statsd.log("error"),
            tracing::Level::WARN => statsd.log("warning"),
            _ => {}
        }
    }
}

/// Opens `path` for appending and puts it on descriptor 2, and on 1 with `capture` (logrotate's
/// reopen; also the first open).
pub fn reopen_error_log(path: &str, capture: bool) -> std::io::Result<()> {
    if path == "-" {
        return Ok(());
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    nix::unistd::dup2(file.as_raw_fd(), 2)?;
    if capture {
        nix::unistd::dup2(file.as_raw_fd(), 1)?;
    }
    Ok(())
}

/// Where error log lines go: descriptor 2, and syslog when `--log-syslog` is on.
struct ErrorLog;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ErrorLog {
    type Writer = LossyStderr;

    fn make_writer(&'a self) -> LossyStderr {
        LossyStderr(tracing::Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LossyStderr {
        LossyStderr(*meta.level())
    }
}

/// Descriptor 2, where a failed write (a full disk, a closed pipe) loses the line instead of making
/// tracing-subscriber report the error, which panics when stderr itself is what failed; each write is
/// one whole line of this level, which syslog gets too.
struct LossyStderr(tracing::Level);

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        if let Some(syslog) = syslog::get() {
            syslog.error_line(self.0, buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (y, mo, d) = crate::http::date::civil_from_days((now / 86_400) as i64);
        let s = now % 86_400;
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARNING",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::TRACE => "TRACE",
        };
        write!(
            writer,
            "[{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} +0000] [{}] [{level}] ",
            s / 3600,
            s / 60 % 60,
            s % 60,
            PID.load(Ordering::Relaxed)
        )?;
        match ROLE.load(Ordering::Relaxed) {
            0 => write!(writer, "[master] ")?,
            id => write!(writer, "[worker {id}] ")?,
        }
        if event.metadata().target() == "app" {
            write!(writer, "app: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
