//! The integration suite: one binary (see Cargo.toml), one module per story. Every test starts the
//! real `rustgun` binary with real app libraries and talks to it over real sockets.

mod support;

mod abi_layout;
mod apps;
