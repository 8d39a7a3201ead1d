//! gunicorn's options that rustgun takes beside its own, so that a gunicorn command line (or
//! `GUNICORN_CMD_ARGS`) runs unchanged: each either does what it does under gunicorn, or has nothing
//! to do here and says why in its help (and in docs/wsgi.md), or is refused with one line naming it
//! when it asks for what rustgun does not do yet. `tests/integration/gunicorn_flags.rs` feeds every
//! option of the gunicorn the tests pin.
//!
//! Not here: the options both servers share (`super`), uvicorn's spellings (also `super`).

use clap::Args;
use std::path::PathBuf;

/// gunicorn's options beyond rustgun's own (flattened into [`super::Config`]).
#[derive(Args, Debug, Clone)]
pub struct Gunicorn {
    /// gunicorn's --pythonpath DIRS: import directories for a Python app named by its module (the
    /// bridge's --pythonpath).
    #[arg(long = "pythonpath", value_name = "DIRS")]
    pub pythonpath: Option<String>,

    /// gunicorn's --reload-extra-file: with --reload, a change to this file reloads the workers too
    /// (repeatable).
    #[arg(long = "reload-extra-file", value_name = "FILE")]
    pub reload_extra_file: Vec<PathBuf>,

    /// gunicorn's --capture-output: the workers' stdout goes to --error-logfile too (stderr always
    /// does).
    #[arg(long = "capture-output")]
    pub capture_output: bool,

    /// gunicorn's --no-sendfile: files are copied to the socket, never sent by sendfile(2).
    #[arg(long = "no-sendfile")]
    pub no_sendfile: bool,

    /// gunicorn's -R/--enable-stdio-inheritance: workers' Python output is unbuffered
    /// (PYTHONUNBUFFERED=1); the workers inherit the master's stdio in any case.
    #[arg(short = 'R', long = "enable-stdio-inheritance")]
    pub enable_stdio_inheritance: bool,

    /// gunicorn's --http-protocols: h1, h2 or both, comma-separated, most preferred first (the order
    /// TLS's ALPN offers them in). HTTP/2 is served by the event class; sync and threads keep
    /// HTTP/1.1 and say so at boot.
    #[arg(long = "http-protocols", value_name = "PROTOCOLS", default_value = "h1", value_parser = http_protocols)]
    pub http_protocols: String,

    /// gunicorn's --protocol: only http (the uwsgi protocol is not served).
    #[arg(long = "protocol", value_name = "PROTOCOL", default_value = "http", value_parser = ["http"])]
    pub protocol: String,

    /// gunicorn's --asgi-loop, for an ASGI app named by its module: auto, asyncio or uvloop (the
    /// bridge's --asgi-loop).
    #[arg(long = "asgi-loop", value_name = "LOOP", value_parser = ["auto", "asyncio", "uvloop"])]
    pub asgi_loop: Option<String>,

    /// gunicorn's --asgi-lifespan, for an ASGI app named by its module: auto, on or off.
    #[arg(long = "asgi-lifespan", value_name = "MODE", value_parser = ["auto", "on", "off"])]
    pub asgi_lifespan: Option<String>,

    /// gunicorn's --paste: serve the WSGI app a PasteDeploy config file names (FILE, or FILE#SECTION),
    /// in place of APP; PasteDeploy must be installed in the app's environment.
    #[arg(long = "paste", visible_alias = "paster", value_name = "FILE")]
    pub paste: Option<String>,

    /// gunicorn's --paste-global: a KEY=VALUE of the PasteDeploy file's global_conf (repeatable).
    #[arg(long = "paste-global", value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub paste_global: Vec<String>,

    /// gunicorn's --asgi-disconnect-grace-period, for an ASGI app named by its module: how many seconds
    /// a request may run on after its client left (it got `http.disconnect`) before it is cancelled
    /// (default 3; 0 cancels at once).
    #[arg(long = "asgi-disconnect-grace-period", value_name = "SECONDS")]
    pub asgi_disconnect_grace_period: Option<u32>,

    /// gunicorn's --statsd-host: send gunicorn's metrics to this StatsD server (HOST:PORT over UDP,
    /// or unix:PATH, a unix datagram socket).
    #[arg(long = "statsd-host", value_name = "ADDRESS")]
    pub statsd_host: Option<String>,

    /// gunicorn's --statsd-prefix: put before every metric's name (a dot is added).
    #[arg(long = "statsd-prefix", value_name = "PREFIX", default_value = "")]
    pub statsd_prefix: String,

    /// gunicorn's --dogstatsd-tags: comma-separated tags (`key:value`) after every metric.
    #[arg(long = "dogstatsd-tags", value_name = "TAGS", default_value = "")]
    pub dogstatsd_tags: String,

    /// gunicorn's --log-syslog: error log lines go to syslog too (--log-syslog-to).
    #[arg(long = "log-syslog")]
    pub log_syslog: bool,

    /// gunicorn's --log-syslog-to: udp://HOST:PORT, or unix://PATH for a datagram socket (/dev/log).
    #[arg(long = "log-syslog-to", value_name = "ADDRESS", default_value = "udp://localhost:514")]
    pub log_syslog_to: String,

    /// gunicorn's --log-syslog-prefix: syslog lines are led by rustgun.PREFIX (default: --name).
    #[arg(long = "log-syslog-prefix", value_name = "PREFIX")]
    pub log_syslog_prefix: Option<String>,

    /// gunicorn's --log-syslog-facility: user, daemon, local0 … local7, and the others by name.
    #[arg(long = "log-syslog-facility", value_name = "FACILITY", default_value = "user")]
    pub log_syslog_facility: String,

    /// gunicorn's --disable-redirect-access-to-syslog: access log lines stay out of syslog.
    #[arg(long = "disable-redirect-access-to-syslog")]
    pub disable_redirect_access_to_syslog: bool,

    /// gunicorn's --control-socket: where the master listens for `rustgun status` and `rustgun ctl`
    /// (default: $XDG_RUNTIME_DIR/rustgun.ctl, else ~/.rustgun/rustgun.ctl; a relative PATH is taken
    /// from the directory the server runs in, after --chdir).
    #[arg(long = "control-socket", value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// gunicorn's --control-socket-mode: the control socket's permission bits (0600: its owner only).
    #[arg(long = "control-socket-mode", value_name = "MODE", default_value = "0600", value_parser = crate::sys::privileges::file_mode)]
    pub control_socket_mode: u32,

    /// gunicorn's --no-control-socket: no control socket (`rustgun status` cannot reach this server).
    #[arg(long = "no-control-socket", conflicts_with = "control_socket")]
    pub no_control_socket: bool,

    // What has nothing to do here: accepted, and without effect.
    /// No effect: --spew traces every Python line; use a profiler on the app instead.
    #[arg(long = "spew", hide_short_help = true)]
    pub spew: bool,

    /// No effect: it says who may speak the uwsgi protocol, and only HTTP is served (--protocol http).
    #[arg(long = "uwsgi-allow-from", value_name = "IPS", hide_short_help = true)]
    pub uwsgi_allow_from: Option<String>,

    /// No effect: workers report their heartbeat through shared memory, not temporary files.
    #[arg(long = "worker-tmp-dir", value_name = "DIR", hide_short_help = true)]
    pub worker_tmp_dir: Option<PathBuf>,

    /// No effect: one file watcher serves --reload, whatever the engine named.
    #[arg(long = "reload-engine", value_name = "ENGINE", value_parser = ["auto", "poll", "inotify"], hide_short_help = true)]
    pub reload_engine: Option<String>,

    /// No effect: one HTTP/1.1 parser, rustgun's own.
    #[arg(long = "http-parser", value_name = "PARSER", hide_short_help = true)]
    pub http_parser: Option<String>,

    /// No effect: logging is rustgun's, not Python's logging module (--log-level, --error-logfile).
    #[arg(long = "logger-class", value_name = "CLASS", hide_short_help = true)]
    pub logger_class: Option<String>,

    /// No effect: logging is rustgun's, not Python's logging module.
    #[arg(long = "log-config", value_name = "FILE", hide_short_help = true)]
    pub log_config: Option<PathBuf>,

    /// No effect: logging is rustgun's, not Python's logging module.
    #[arg(long = "log-config-json", value_name = "FILE", hide_short_help = true)]
    pub log_config_json: Option<PathBuf>,

    /// No effect: rustls speaks TLS 1.2 and 1.3 only, and chooses the version with the client.
    #[arg(long = "ssl-version", value_name = "VERSION", hide_short_help = true)]
    pub ssl_version: Option<String>,

    /// No effect: rustls's cipher suites (all with forward secrecy and AEAD) are used.
    #[arg(long = "ciphers", value_name = "CIPHERS", hide_short_help = true)]
    pub ciphers: Option<String>,

    /// No effect: a TLS connection closed without close_notify ends the request like any EOF.
    #[arg(long = "suppress-ragged-eofs", hide_short_help = true)]
    pub suppress_ragged_eofs: bool,

    /// No effect: the handshake runs as the connection's first bytes arrive, bounded by
    /// --header-timeout, on every class.
    #[arg(long = "do-handshake-on-connect", hide_short_help = true)]
    pub do_handshake_on_connect: bool,

    /// No effect: the listen queue is in --metrics-bind's rustgun_listen_queue_depth gauge already.
    #[arg(long = "enable-backlog-metric", hide_short_help = true)]
    pub enable_backlog_metric: bool,

    /// gunicorn's --http2-cleartext: HTTP/2 without TLS (h2c) from peers in --forwarded-allow-ips,
    /// by `prior-knowledge` (the connection opens with the preface), `upgrade` (`Upgrade: h2c`),
    /// `both`, or `off` (the default). Needs h2 in --http-protocols; under TLS, ALPN decides.
    #[arg(long = "http2-cleartext", value_name = "MODE", hide_short_help = true, value_parser = cleartext)]
    pub http2_cleartext: Option<String>,

    /// gunicorn's --http2-max-concurrent-streams (100): streams one HTTP/2 connection may have open.
    #[arg(long = "http2-max-concurrent-streams", value_name = "N", hide_short_help = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: Option<u32>,

    /// gunicorn's --http2-initial-window-size (65535): what a client may send on a stream before the
    /// app has read it.
    #[arg(long = "http2-initial-window-size", value_name = "BYTES", hide_short_help = true,
          value_parser = clap::value_parser!(u32).range(1..=0x7fff_ffff))]
    pub http2_initial_window_size: Option<u32>,

    /// gunicorn's --http2-max-frame-size (16384): the largest frame payload taken from a client.
    #[arg(long = "http2-max-frame-size", value_name = "BYTES", hide_short_help = true,
          value_parser = clap::value_parser!(u32).range(16_384..=16_777_215))]
    pub http2_max_frame_size: Option<u32>,

    /// gunicorn's --http2-max-header-list-size (65536; 0: no limit): a request's decoded header list.
    #[arg(long = "http2-max-header-list-size", value_name = "BYTES", hide_short_help = true)]
    pub http2_max_header_list_size: Option<u32>,
}

impl Gunicorn {
    /// HTTP/2's settings when `--http-protocols` names h2, with gunicorn's defaults.
    pub fn http2(&self) -> Option<super::Http2Settings> {
        self.h2_preferred()?;
        let defaults = crate::http::h2::conn::Config::default();
        let mode = self.http2_cleartext.as_deref().unwrap_or("off");
        Some(super::Http2Settings {
            config: crate::http::h2::conn::Config {
                max_concurrent_streams: self
                    .http2_max_concurrent_streams
                    .unwrap_or(defaults.max_concurrent_streams),
                initial_window_size: self.http2_initial_window_size.unwrap_or(defaults.initial_window_size),
                max_frame_size: self.http2_max_frame_size.unwrap_or(defaults.max_frame_size),
                max_header_list_size: match self.http2_max_header_list_size {
                    Some(0) => u32::MAX,
                    n => n.unwrap_or(defaults.max_header_list_size),
                },
            },
            prior_knowledge: matches!(mode, "prior-knowledge" | "both"),
            upgrade: matches!(mode, "upgrade" | "both"),
        })
    }

    /// Whether h2 is in `--http-protocols` (`None` if not), and before h1 (`Some(true)`).
    pub fn h2_preferred(&self) -> Option<bool> {
        let mut protocols = self.http_protocols.split(',');
        match (protocols.next(), protocols.next()) {
            (Some("h2"), _) => Some(true),
            (_, Some("h2")) => Some(false),
            _ => None,
        }
    }
}

/// `--http-protocols`: `h1` and `h2`, each at most once, in order of preference.
fn http_protocols(value: &str) -> Result<String, String> {
    let protocols: Vec<String> =
        value.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect();
    if protocols.is_empty() {
        return Ok("h1".to_string());
    }
    for (i, p) in protocols.iter().enumerate() {
        if p != "h1" && p != "h2" {
            return Err(format!("invalid protocol {p:?}: valid protocols are h1 and h2"));
        }
        if protocols[..i].contains(p) {
            return Err(format!("{p} is listed twice"));
        }
    }
    Ok(protocols.join(","))
}

/// `--http2-cleartext`: gunicorn's modes, and a config file's booleans (true: prior knowledge).
fn cleartext(value: &str) -> Result<String, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "false" => Ok("off".to_string()),
        "true" => Ok("prior-knowledge".to_string()),
        mode @ ("off" | "prior-knowledge" | "upgrade" | "both") => Ok(mode.to_string()),
        other => Err(format!("invalid mode {other:?}: off, prior-knowledge, upgrade or both")),
    }
}
