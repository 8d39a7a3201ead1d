//! Process-level plumbing: the self-pipe signal queue ([`signals`]) and process helpers ([`process`]),
//! the memory the master shares with its workers ([`scoreboard`]), process titles ([`title`]),
//! systemd's notification and socket-activation protocols ([`systemd`]), worker identity and umask
//! ([`privileges`]), and detaching with `--daemon` ([`daemon`]).
//! Signal handlers registered here do only async-signal-safe work: write one byte, set a flag.

pub mod daemon;
pub mod privileges;
pub mod process;
pub mod scoreboard;
pub mod signals;
pub mod systemd;
pub mod title;
