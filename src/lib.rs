//! rustgun: a pre-fork HTTP/1.1 server for apps loaded from shared libraries through a C ABI.
//!
//! Layers, bottom up: [`http`] is the sans-I/O protocol core (the `rustgun-http` crate); [`app`] loads an app library and
//! implements the host side of the ABI; [`net`] binds and accepts; [`worker`] serves connections in a
//! forked child; [`arbiter`] is the master process that forks, reaps and signals workers; [`config`] is
//! the command line; [`ctl`] the control socket's protocol and client (`rustgun status`, `rustgun
//! ctl`); [`logging`] the error and access logs; [`exit`] the process exit statuses.

pub mod app;
pub mod arbiter;
pub mod config;
pub mod ctl;
pub mod exit;
pub mod logging;
pub mod net;
pub mod sys;
pub mod worker;

/// The sans-I/O protocol core, its own crate (`crates/rustgun-http`, which forbids `unsafe`).
pub use rustgun_http as http;
