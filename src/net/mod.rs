//! Sockets: binding the listeners the master shares with its workers ([`listener`]), and the accepted
//! connection with deadline-bounded, non-blocking reads and writes ([`stream`]), TLS over it ([`tls`]).
//!
//! Nothing here knows HTTP; nothing outside here calls `socket`, `bind` or `poll` on a connection.

pub mod listener;
pub mod stream;
pub mod tls;

pub use listener::{BindAddr, Listener, out_of_resources};
pub use stream::{Peer, Stream};
