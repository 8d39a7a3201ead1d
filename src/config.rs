//! The command line: every option, its gunicorn name and default, parsed with clap.
//!
//! What lives here is only the shape of the configuration and its validation; turning it into
//! sockets, processes and limits happens in `arbiter` and `worker`. Where the values come from — the
//! command line, `RUSTGUN_CMD_ARGS`, a TOML file — and which wins is [`sources`]; start with [`load`].

pub mod compat;
mod pyfile;
mod sources;

pub use sources::{ConfigError, ENV_ARGS, load, start_dir};

use crate::app::AppRef;
use crate::http::forwarded::TrustList;
use crate::http::parse::{HeaderMap, Limits};
use crate::net::BindAddr;
use crate::net::tls::{CertReqs, TlsError, TlsFiles};
use crate::sys::privileges::{GroupSpec, Identity, PrivilegeError, UmaskSpec, UserSpec};
use clap::{Parser, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// rustgun: a pre-fork HTTP/1.1 server for apps built as shared libraries.
///
/// APP is `PATH[:SYMBOL]`, the app library and the descriptor symbol it exports (default `app`), or a
/// Python app's `MODULE[:CALLABLE]`, served through the bundled bridge. Arguments after `--` are
/// passed to the app's init (to the bridge, for a Python app).
#[derive(Parser, Debug, Clone)]
#[command(name = "rustgun", version, about, long_about = None, disable_version_flag = true)]
pub struct Config {
    /// Print the version (gunicorn's -v, clap's -V).
    #[arg(short = 'v', short_alias = 'V', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,

    /// gunicorn's options beyond rustgun's own ([`compat`]).
    #[command(flatten)]
    pub gunicorn: compat::Gunicorn,

    /// The app: a library's PATH[:SYMBOL] (./libmyapp.so:app) or a Python MODULE[:CALLABLE]
    /// (myproject.wsgi:application, main:app)
    #[arg(value_name = "APP", index = 1)]
    pub app: AppRef,

    /// Arguments passed to the app's init (after `--`).
    #[arg(last = true, value_name = "APP_ARGS", index = 2)]
    pub app_args: Vec<String>,

    /// How a Python app named by its module is served: auto (WSGI or ASGI, as the callable shows,
    /// which imports it once before start), wsgi or asgi (uvicorn's --interface).
    #[arg(long = "interface", value_enum, default_value = "auto")]
    pub interface: crate::app::python::Interface,

    /// Where to listen: HOST:PORT, [V6]:PORT, unix:PATH or fd://N. Repeatable.
    #[arg(short = 'b', long = "bind", value_name = "ADDRESS", default_value = "127.0.0.1:8000")]
    pub bind: Vec<BindAddr>,

    /// uvicorn's --host: listen on this host (with --port, default 8000) instead of --bind.
    #[arg(long = "host", value_name = "HOST", conflicts_with = "bind")]
    pub host: Option<String>,

    /// uvicorn's --port: listen on this port (of --host, default 127.0.0.1) instead of --bind.
    #[arg(long = "port", value_name = "PORT", conflicts_with = "bind")]
    pub port: Option<u16>,

    /// uvicorn's --uds: listen on this unix socket instead of --bind (unix:PATH).
    #[arg(long = "uds", value_name = "PATH", conflicts_with_all = ["bind", "host", "port"])]
    pub uds: Option<PathBuf>,

    /// uvicorn's --fd: listen on this inherited descriptor instead of --bind (fd://N).
    #[arg(long = "fd", value_name = "FD", conflicts_with_all = ["bind", "host", "port", "uds"])]
    pub fd: Option<i32>,

    /// Number of worker processes.
    #[arg(short = 'w', long, env = "WEB_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub workers: u32,

    /// The listen queue length.
    #[arg(long, default_value_t = 2048)]
    pub backlog: i32,

    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long = "keep-alive", visible_aliases = ["keepalive", "timeout-keep-alive"], default_value_t = 2)]
    pub keep_alive: u64,

    /// Seconds workers get to finish in-flight requests on a graceful stop before they are killed.
    #[arg(long = "graceful-timeout", default_value_t = 30)]
    pub graceful_timeout: u64,

    /// Seconds a worker may stay silent (an app call that does not return, an event loop away) before
    /// it is aborted and replaced (the heartbeat); 0 turns it off. Clients are bounded by
    /// --header-timeout, --keep-alive and --min-rate instead.
    #[arg(short = 't', long, default_value_t = 30)]
    pub timeout: u64,

    /// A worker retires gracefully (and is replaced) after this many requests; 0 = never.
    #[arg(long = "max-requests", visible_alias = "limit-max-requests", default_value_t = 0)]
    pub max_requests: u64,

    /// Up to this many more requests, drawn at random per worker, so workers do not all retire at once.
    #[arg(long = "max-requests-jitter", default_value_t = 0)]
    pub max_requests_jitter: u64,

    /// The name in process titles (`rustgun: master [NAME]`); default: the app reference.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: Option<String>,

    /// Development: reload (as on HUP) whenever the app library file changes.
    #[arg(long = "reload")]
    pub reload: bool,

    /// Serve Prometheus metrics from the master on this HOST:PORT (never through the app).
    #[arg(long = "metrics-bind", value_name = "ADDRESS")]
    pub metrics_bind: Option<String>,

    /// Seconds a client gets to send a complete request head before it is answered 408.
    #[arg(long = "header-timeout", default_value_t = 10)]
    pub header_timeout: u64,

    /// Longest request line in bytes (0 = unlimited, which means 8190); longer → 414.
    #[arg(long = "limit-request-line", default_value_t = 4094, value_parser = clap::value_parser!(u64).range(0..=8190))]
    pub limit_request_line: u64,

    /// Most header fields in a request; more → 431.
    #[arg(long = "limit-request-fields", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=32768))]
    pub limit_request_fields: u64,

    /// Longest header line in bytes; longer → 431.
    #[arg(long = "limit-request-field-size", visible_alias = "limit-request-field_size", default_value_t = 8190, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub limit_request_field_size: u64,

    /// Slowest a client may send its request body or take its response, in bytes a second over each
    /// --min-rate-period spent waiting on it; a slower one is dropped (a body not yet answered gets
    /// 408), as Apache's MinRate and nginx's send_timeout drop them. 0 only asks for progress: a
    /// period in which the client moved nothing.
    #[arg(long = "min-rate", default_value_t = 500)]
    pub min_rate: u64,

    /// Seconds over which --min-rate is measured.
    #[arg(long = "min-rate-period", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub min_rate_period: u64,

    /// How much of a request body the event loop (without --threads) keeps in memory while it
    /// gathers the body before calling the app; the rest waits in an unlinked temporary file, as
    /// nginx's client_body_buffer_size. Bytes.
    #[arg(long = "client-body-buffer-size", default_value_t = 64 * 1024)]
    pub client_body_buffer_size: u64,

    /// Seconds a WebSocket may stay silent before the server pings it (uvicorn's --ws-ping-interval);
    /// 0 sends no pings.
    #[arg(long = "ws-ping-interval", default_value_t = 20)]
    pub ws_ping_interval: u64,

    /// Seconds a ping may go unanswered before the WebSocket is closed with 1011 (uvicorn's
    /// --ws-ping-timeout). A client that stops reading is dropped by it too: the ping waits behind
    /// what it has not taken.
    #[arg(long = "ws-ping-timeout", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_ping_timeout: u64,

    /// Largest WebSocket message in bytes, after decompression; a larger one closes the WebSocket
    /// with 1009 (gunicorn's --websocket-max-message-size).
    #[arg(long = "websocket-max-message-size", visible_alias = "ws-max-size", default_value_t = 16 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(125..=1 << 30))]
    pub websocket_max_message_size: u64,

    /// Whether WebSockets may negotiate permessage-deflate (RFC 7692) when the client offers it
    /// (uvicorn's --ws-per-message-deflate): `true` or `false`.
    #[arg(long = "ws-per-message-deflate", default_value_t = true, action = clap::ArgAction::Set)]
    pub ws_per_message_deflate: bool,

    /// Largest request head in bytes, request line and header fields together; larger → 431. Bounds
    /// what one connection's unfinished head may take of a worker's memory.
    #[arg(long = "limit-request-head", default_value_t = crate::http::parse::DEFAULT_HEAD_LIMIT as u64, value_parser = clap::value_parser!(u64).range(1024..=4 * 1024 * 1024))]
    pub limit_request_head: u64,

    /// Largest request body in bytes (0 = no limit); larger → 413.
    #[arg(long = "limit-request-body", default_value_t = 0)]
    pub limit_request_body: u64,

    /// What to do with header names containing `_`: drop them from the environ, refuse the request
    /// (400), or pass them (dangerous: `X_Auth` can then pose as `X-Auth`).
    #[arg(long = "header-map", value_enum, default_value_t = HeaderMapArg::Drop)]
    pub header_map: HeaderMapArg,

    /// Header names with `_` a trusted proxy (--forwarded-allow-ips) may send whatever --header-map
    /// says, comma-separated (`*`: any). A `SCRIPT_NAME` header then mounts the app as --root-path does.
    #[arg(long = "forwarder-headers", value_name = "NAMES", default_value = "SCRIPT_NAME,PATH_INFO")]
    pub forwarder_headers: String,

    /// Peers whose proxy headers are believed (X-Forwarded-For/-Proto/-Ssl/-Host, RFC 7239
    /// Forwarded): comma-separated IPs and CIDR networks, or `*` for all. Unix-socket peers always are.
    #[arg(
        long = "forwarded-allow-ips",
        value_name = "IPS",
        env = "FORWARDED_ALLOW_IPS",
        default_value = "127.0.0.1,::1"
    )]
    pub forwarded_allow_ips: TrustList,

    /// Where the app is mounted. WSGI: the request path must start with it; it becomes SCRIPT_NAME and
    /// is taken off PATH_INFO (gunicorn takes it from SCRIPT_NAME). ASGI: the scope's root_path, as
    /// uvicorn's --root-path.
    #[arg(long = "root-path", value_name = "PATH", env = "SCRIPT_NAME", default_value = "")]
    pub root_path: String,

    /// uvicorn's --proxy-headers: proxy headers from --forwarded-allow-ips peers are believed (the
    /// default).
    #[arg(long = "proxy-headers", conflicts_with = "no_proxy_headers")]
    pub proxy_headers: bool,

    /// uvicorn's --no-proxy-headers: no peer's proxy headers are believed, whatever
    /// --forwarded-allow-ips says.
    #[arg(long = "no-proxy-headers")]
    pub no_proxy_headers: bool,

    /// uvicorn's --factory, for a Python app: the callable named is a factory, called for the app.
    #[arg(long = "factory")]
    pub factory: bool,

    /// uvicorn's --lifespan, for an ASGI app: auto, on or off (the bridge's --asgi-lifespan).
    #[arg(long = "lifespan", value_name = "MODE", value_parser = ["auto", "on", "off"])]
    pub lifespan: Option<String>,

    /// Every connection must start with a PROXY protocol header naming the client; gunicorn's values
    /// auto (the default when none is given), v1 or v2 are taken, and either version is read. Not
    /// with --certfile yet: the header precedes the TLS handshake, which starts at accept.
    #[arg(
        long = "proxy-protocol",
        value_name = "VERSION",
        num_args = 0..=1,
        default_missing_value = "auto",
        value_parser = ["auto", "v1", "v2"],
        conflicts_with = "certfile"
    )]
    pub proxy_protocol: Option<String>,

    /// Peers allowed to send a PROXY protocol header (others get 403): IPs, CIDR networks or `*`.
    #[arg(
        long = "proxy-allow-ips",
        visible_alias = "proxy-allow-from",
        value_name = "IPS",
        default_value = "127.0.0.1,::1"
    )]
    pub proxy_allow_ips: TrustList,

    /// How a worker serves connections: `sync` (one at a time), `threads` (`--threads` connections at a
    /// time, one per thread) or `event` (an epoll loop multiplexing up to `--worker-connections`).
    #[arg(short = 'k', long = "worker-class", value_enum, default_value_t = WorkerClass::Sync)]
    pub worker_class: WorkerClass,

    /// Threads per worker: connection threads under `threads`, the app-call pool under `event`.
    /// With `sync`, more than one thread switches to `threads` (as gunicorn does).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: u32,

    /// Most simultaneous connections per `event` worker; beyond it the worker stops accepting.
    #[arg(long = "worker-connections", visible_alias = "limit-concurrency", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub worker_connections: u32,

    /// Give each worker its own SO_REUSEPORT listening socket instead of sharing the master's.
    /// Not with --user: the kernel shares a port between SO_REUSEPORT sockets of one effective uid only.
    #[arg(long = "reuse-port", conflicts_with = "user")]
    pub reuse_port: bool,

    /// Load the app in the master before forking workers.
    #[arg(long = "preload", visible_alias = "preload-app")]
    pub preload: bool,

    /// Write the master's pid to this file (removed on exit).
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Read settings from this file: gunicorn's Python config (`gunicorn.conf.py`, or
    /// `python:MODULE`; gunicorn's setting names and server hooks; `./gunicorn.conf.py` when -c is not
    /// given), or a `.toml` file whose keys are the long option names (`workers = 4`,
    /// `bind = ["unix:/run/app.sock"]`). The command line and RUSTGUN_CMD_ARGS override it.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Load the configuration and open the app library (checking its descriptor, not running init),
    /// print one line, and exit: 0 if both are fine, 1 otherwise.
    #[arg(long = "check-config")]
    pub check_config: bool,

    /// Print the effective configuration as a TOML config file and exit.
    #[arg(long = "print-config", conflicts_with = "check_config")]
    pub print_config: bool,

    /// Run workers as this user (name or uid); the master keeps its own. Needs a root master.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<UserSpec>,

    /// Run workers with this group (name or gid); default: the --user's primary group.
    #[arg(short = 'g', long = "group", value_name = "GROUP")]
    pub group: Option<GroupSpec>,

    /// Give the workers every supplementary group of the --user (initgroups(3)), not just --group.
    #[arg(long = "initgroups")]
    pub initgroups: bool,

    /// The umask unix socket files are created under (`027`, `0o027`; gunicorn's rules), so 0 gives
    /// mode 0777 and 007 mode 0770.
    #[arg(short = 'm', long = "umask", value_name = "MASK", default_value = "0")]
    pub umask: UmaskSpec,

    /// Change to this directory before loading the app (relative paths below resolve from it).
    #[arg(long = "chdir", value_name = "DIR")]
    pub chdir: Option<PathBuf>,

    /// Detach from the terminal and run in the background (skipped on a USR2 re-exec).
    #[arg(short = 'D', long = "daemon")]
    pub daemon: bool,

    /// Set an environment variable for the app (KEY=VALUE). Repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// The identity workers take on, from --user and --group ([`Config::resolve_identity`]).
    #[arg(skip)]
    pub identity: Option<Identity>,

    /// The merged arguments this configuration was parsed from ([`load`]), for `--print-config`.
    #[arg(skip)]
    effective: Vec<OsString>,

    /// The configuration file's server hooks, when it defines any: the master runs them.
    #[arg(skip)]
    pub hooks: Option<crate::app::hooks::Spec>,

    /// TLS certificate chain (PEM, leaf first). With it, every listener serves HTTPS only.
    #[arg(long = "certfile", visible_alias = "ssl-certfile", value_name = "FILE")]
    pub certfile: Option<PathBuf>,

    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1); by default read from --certfile.
    #[arg(long = "keyfile", visible_alias = "ssl-keyfile", value_name = "FILE")]
    pub keyfile: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to.
    #[arg(long = "ca-certs", visible_alias = "ssl-ca-certs", value_name = "FILE")]
    pub ca_certs: Option<PathBuf>,

    /// Client certificates: none (0), optional (1: verified when sent) or required (2); with
    /// optional or required, --ca-certs is needed.
    #[arg(long = "cert-reqs", visible_alias = "ssl-cert-reqs", value_name = "REQS", default_value = "none")]
    pub cert_reqs: CertReqs,

    /// The TLS configuration [`Config::load_tls`] built from the four options above.
    #[arg(skip)]
    pub tls: Option<Arc<rustls::ServerConfig>>,

    /// The access log file (`-` = stdout). Off unless given.
    #[arg(long = "access-logfile", value_name = "FILE")]
    pub access_logfile: Option<String>,

    /// uvicorn's --access-log: the access log on stdout, unless --access-logfile names a file.
    #[arg(long = "access-log", conflicts_with = "no_access_log")]
    pub access_log: bool,

    /// uvicorn's --no-access-log: no access log, whatever --access-logfile says.
    #[arg(long = "no-access-log")]
    pub no_access_log: bool,

    /// The access log format, with gunicorn's atoms.
    #[arg(
        long = "access-log-format",
        visible_alias = "access-logformat",
        default_value = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#
    )]
    pub access_log_format: String,

    /// The error log file (`-` = stderr).
    #[arg(long = "error-logfile", visible_alias = "log-file", value_name = "FILE", default_value = "-")]
    pub error_logfile: String,

    /// The error log level.
    #[arg(long = "log-level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HeaderMapArg {
    Drop,
    Refuse,
    Dangerous,
}

/// `-k`: rustgun's three classes, and gunicorn's names for what they do (an ASGI worker's class is
/// the event loop; the interface follows the app, `--interface`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkerClass {
    Sync,
    #[value(alias = "gthread")]
    Threads,
    #[value(aliases = [
        "gevent",
        "eventlet",
        "tornado",
        "asgi",
        "uvicorn.workers.UvicornWorker",
        "uvicorn.workers.UvicornH11Worker",
        "uvicorn_worker.UvicornWorker",
    ])]
    Event,
}

impl WorkerClass {
    pub fn name(self) -> &'static str {
        match self {
            WorkerClass::Sync => "sync",
            WorkerClass::Threads => "threads",
            WorkerClass::Event => "event",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// uvicorn's `trace` is the most it logs: here, `debug`.
    #[value(alias = "trace")]
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// The settings a worker needs to serve connections, derived once from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: Limits,
    pub keep_alive: Duration,
    pub header_timeout: Duration,
    pub limit_request_body: u64,
    /// `--client-body-buffer-size`: the part of a gathered body the event loop keeps in memory.
    pub client_body_buffer: usize,
    /// `--min-rate` bytes a second over each `--min-rate-period` of waiting on a client.
    pub min_rate: crate::worker::pace::MinRate,
    /// `--forwarded-allow-ips`: whose proxy headers are believed.
    pub forwarded_allow_ips: TrustList,
    /// `--root-path` without its trailing `/`: the SCRIPT_NAME every request path must start with.
    pub root_path: Vec<u8>,
    /// Files may go out by sendfile(2) (gunicorn's `--no-sendfile` says no).
    pub sendfile: bool,
    /// `--proxy-protocol`: every connection starts with a PROXY header.
    pub proxy_protocol: bool,
    /// `--proxy-allow-ips`: who may send one.
    pub proxy_allow_ips: TrustList,
    /// Set when the listeners serve TLS: one configuration shared by every connection.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How accepted WebSockets are kept.
    pub websocket: WebSocketSettings,
    /// `--http-protocols` with h2: HTTP/2 is served (by the event class).
    pub http2: Option<Http2Settings>,
}

/// HTTP/2's settings: what each connection announces (`--http2-*`), and how a cleartext one may
/// begin (`--http2-cleartext`, for peers in `--forwarded-allow-ips`).
#[derive(Clone, Copy, Debug)]
pub struct Http2Settings {
    pub config: crate::http::h2::conn::Config,
    pub prior_knowledge: bool,
    pub upgrade: bool,
}

/// `--ws-ping-interval`, `--ws-ping-timeout`, `--websocket-max-message-size`, `--ws-per-message-deflate`.
#[derive(Clone, Copy, Debug)]
pub struct WebSocketSettings {
    /// `None`: no pings.
    pub ping_interval: Option<Duration>,
    pub ping_timeout: Duration,
    pub max_message: usize,
    pub deflate: bool,
}

/// `-e KEY=VALUE`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains('\0') && !value.contains('\0') => {
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// Why the TLS options cannot be used ([`Config::load_tls`]).
#[derive(Debug)]
pub enum TlsConfigError {
    /// `--keyfile` without `--certfile`.
    KeyWithoutCert,
    /// `--ca-certs` or `--cert-reqs` without `--certfile`.
    ClientCertsWithoutCert,
    /// A file could not be read, or what it holds cannot be used.
    Files(TlsError),
}

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsConfigError::KeyWithoutCert => f.write_str("--keyfile needs --certfile"),
            TlsConfigError::ClientCertsWithoutCert => {
                f.write_str("--ca-certs and --cert-reqs need --certfile (client certificates are TLS)")
            }
            TlsConfigError::Files(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

impl Config {
    /// Fills [`Config::identity`] from `--user` and `--group`.
    fn resolve_identity(&mut self) -> Result<(), PrivilegeError> {
        self.identity = Identity::resolve(self.user.as_ref(), self.group.as_ref(), self.initgroups)?;
        Ok(())
    }

    /// Folds uvicorn's spellings into the settings they mean: `--host`/`--port`, `--uds` and `--fd`
    /// into the listener, `--no-proxy-headers` into trusting nobody, `--access-log` and
    /// `--no-access-log` into the access log.
    pub(crate) fn apply_uvicorn_spellings(&mut self) -> Result<(), String> {
        let listen = match (&self.host, self.port, &self.uds, self.fd) {
            (_, _, Some(path), _) => Some(format!("unix:{}", path.display())),
            (_, _, _, Some(fd)) => Some(format!("fd://{fd}")),
            (None, None, ..) => None,
            (host, port, ..) => {
                let host = host.as_deref().unwrap_or("127.0.0.1");
                let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
                Some(format!("{host}:{}", port.unwrap_or(8000)))
            }
        };
        if let Some(listen) = listen {
            self.bind = vec![listen.parse().map_err(|e| format!("--host/--port/--uds/--fd {listen}: {e}"))?];
        }
        if self.no_proxy_headers {
            self.forwarded_allow_ips = TrustList::Nobody;
        }
        // gunicorn's -R: a Python worker's output is not held back in its buffers.
        if self.gunicorn.enable_stdio_inheritance && !self.env.iter().any(|(k, _)| k == "PYTHONUNBUFFERED") {
            self.env.push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
        }
        if self.no_access_log {
            self.access_logfile = None;
        } else if self.access_log && self.access_logfile.is_none() {
            self.access_logfile = Some("-".to_string());
        }
        Ok(())
    }

    /// `-e KEY=VALUE`: sets the variables in this process. Two callers, each while its process runs
    /// only its own thread: the master at start, before `--preload` runs app code (so a preloaded app
    /// sees them, as under gunicorn), and every worker right after its fork, for the configuration it
    /// was forked under, so that a reload's new values reach the new workers while the master's
    /// environment stays as it was at start.
    pub fn export_env(&self) {
        for (key, value) in &self.env {
            crate::sys::process::set_env(key, value);
        }
    }

    /// The worker class in effect: `sync` with several threads is `threads`, as in gunicorn.
    pub fn effective_class(&self) -> WorkerClass {
        match self.worker_class {
            WorkerClass::Sync if self.threads > 1 => WorkerClass::Threads,
            class => class,
        }
    }

    /// Whether HTTP/2 is served: h2 in `--http-protocols` and the event class, the one that serves
    /// it (`Some(true)` when it is preferred to HTTP/1.1). The other classes keep HTTP/1.1, and TLS
    /// does not offer them h2.
    pub fn http2_served(&self) -> Option<bool> {
        self.gunicorn.h2_preferred().filter(|_| self.effective_class() == WorkerClass::Event)
    }

    /// Whether app calls may run on several threads of one worker at once.
    pub fn multithreaded(&self) -> bool {
        self.threads > 1 && self.effective_class() != WorkerClass::Sync
    }

    /// Reads the TLS certificate, key and CA files into [`Config::tls`] (the master does this once at
    /// start, so a bad file stops it there); the error names the file or option at fault.
    pub fn load_tls(&mut self) -> Result<(), TlsConfigError> {
        let Some(certfile) = &self.certfile else {
            if self.keyfile.is_some() {
                return Err(TlsConfigError::KeyWithoutCert);
            }
            if self.ca_certs.is_some() || self.cert_reqs != CertReqs::None {
                return Err(TlsConfigError::ClientCertsWithoutCert);
            }
            return Ok(());
        };
        let files = TlsFiles {
            certfile,
            keyfile: self.keyfile.as_deref(),
            ca_certs: self.ca_certs.as_deref(),
            cert_reqs: self.cert_reqs,
            h2: self.http2_served(),
        };
        self.tls = Some(crate::net::tls::load(&files).map_err(TlsConfigError::Files)?);
        Ok(())
    }

    pub fn settings(&self) -> Settings {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Settings {
            limits: Limits {
                request_line: self.limit_request_line as usize,
                fields: self.limit_request_fields as usize,
                field_size: self.limit_request_field_size as usize,
                head: self.limit_request_head as usize,
                header_map: match self.header_map {
                    HeaderMapArg::Drop => HeaderMap::Drop,
                    HeaderMapArg::Refuse => HeaderMap::Refuse,
                    HeaderMapArg::Dangerous => HeaderMap::Dangerous,
                },
                forwarder: self
                    .forwarder_headers
                    .split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
            },
            keep_alive: Duration::from_secs(self.keep_alive),
            header_timeout: secs(self.header_timeout),
            limit_request_body: self.limit_request_body,
            client_body_buffer: self.client_body_buffer_size as usize,
            min_rate: crate::worker::pace::MinRate {
                bytes: self.min_rate,
                period: Duration::from_secs(self.min_rate_period),
            },
            forwarded_allow_ips: self.forwarded_allow_ips.clone(),
            root_path: self.root_path.trim_end_matches('/').as_bytes().to_vec(),
            sendfile: !self.gunicorn.no_sendfile,
            proxy_protocol: self.proxy_protocol.is_some(),
            proxy_allow_ips: self.proxy_allow_ips.clone(),
            tls: self.tls.clone(),
            websocket: WebSocketSettings {
                ping_interval: (self.ws_ping_interval > 0)
                    .then(|| Duration::from_secs(self.ws_ping_interval)),
                ping_timeout: Duration::from_secs(self.ws_ping_timeout),
                max_message: self.websocket_max_message_size as usize,
                deflate: self.ws_per_message_deflate,
            },
            http2: self.http2_served().and_then(|_| self.gunicorn.http2()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(args: &[&str]) -> Config {
        let argv = ["rustgun"].iter().chain(args).chain(&["libx.so"]);
        let mut config = <Config as Parser>::try_parse_from(argv).expect("a valid command line");
        config.apply_uvicorn_spellings().expect("spellings that fold");
        config
    }

    fn binds(config: &Config) -> Vec<String> {
        config.bind.iter().map(|b| b.to_string()).collect()
    }

    #[test]
    fn uvicorns_listener_spellings_become_the_bind() {
        assert_eq!(binds(&folded(&["--host", "0.0.0.0", "--port", "9000"])), ["0.0.0.0:9000"]);
        assert_eq!(binds(&folded(&["--port", "9001"])), ["127.0.0.1:9001"]);
        assert_eq!(binds(&folded(&["--host", "::1"])), ["[::1]:8000"]);
        assert_eq!(binds(&folded(&["--uds", "/run/app.sock"])), ["unix:/run/app.sock"]);
        assert_eq!(binds(&folded(&["--fd", "3"])), ["fd://3"]);
        assert_eq!(binds(&folded(&[])), ["127.0.0.1:8000"], "--bind's default stays");
        let argv = ["rustgun", "--bind", "127.0.0.1:1", "--port", "2", "libx.so"];
        assert!(<Config as Parser>::try_parse_from(argv).is_err(), "--bind or --host/--port, not both");
    }

    #[test]
    fn uvicorns_proxy_and_access_log_switches_fold_in() {
        assert_eq!(folded(&["--no-proxy-headers"]).forwarded_allow_ips, TrustList::Nobody);
        assert_eq!(folded(&["--access-log"]).access_logfile.as_deref(), Some("-"));
        assert_eq!(
            folded(&["--access-log", "--access-logfile", "a.log"]).access_logfile.as_deref(),
            Some("a.log")
        );
        assert_eq!(folded(&["--no-access-log", "--access-logfile", "a.log"]).access_logfile, None);
        assert_eq!(folded(&["--log-level", "trace"]).log_level, LogLevel::Debug);
    }
}
