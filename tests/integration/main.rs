//! The integration suite: one binary (see Cargo.toml), one module per story. Every test starts the
//! real `rustgun` binary with real app libraries and talks to it over real sockets.

mod support;

mod abi_layout;
mod apps;
mod boot;
mod clients;
mod http_bodies;
mod http_errors;
mod http_keepalive;
mod logs;
mod nginx;
mod procs;
mod proxies;
mod shutdown;
mod tls;
mod worker_classes;
mod workers;
