//! Process-level plumbing: the self-pipe signal queue ([`signals`]) and process helpers ([`process`]).
//! Signal handlers registered here do only async-signal-safe work: write one byte, set a flag.

pub mod process;
pub mod signals;
