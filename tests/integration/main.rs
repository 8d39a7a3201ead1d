//! The integration suite: one binary (see Cargo.toml), one module per story. Every test starts the
//! real `rustgun` binary with real app libraries and talks to it over real sockets.

mod support;

mod abi_layout;
mod apps;
mod asgi;
mod autobahn;
mod boot;
mod chaos;
mod clients;
mod config_sources;
mod conformance;
mod fork;
mod gunicorn_conf;
mod gunicorn_flags;
mod h2_core;
mod http2;
mod http_bodies;
mod http_errors;
mod http_keepalive;
mod load;
mod logs;
mod nginx;
mod operations;
mod pending;
mod process_setup;
mod procs;
mod proxies;
mod send_file;
mod shutdown;
mod slow_clients;
mod statsd;
mod status;
mod stories;
mod streaming;
mod supervision;
mod syslog;
mod systemd;
mod tls;
mod websockets;
mod wheel;
mod worker_classes;
mod workers;
mod wsgi;
