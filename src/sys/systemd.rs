//! systemd integration without libsystemd: `sd_notify` ([`notify`]) and socket activation
//! ([`take_listen_fds`]).
//!
//! Both follow the documented wire protocols (sd_notify(3), sd_listen_fds(3)): a notification is one
//! datagram of `KEY=VALUE` lines sent to the unix socket named by `$NOTIFY_SOCKET` (a path, or an
//! abstract name written `@name`); activated sockets arrive as descriptors 3, 4, … with `$LISTEN_FDS`
//! saying how many and `$LISTEN_PID` saying for which process.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::OnceLock;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// `$NOTIFY_SOCKET`, read once by [`read_notify_socket`].
static NOTIFY_SOCKET: OnceLock<Option<OsString>> = OnceLock::new();

/// Reads `$NOTIFY_SOCKET` for [`notify`]. The master calls it at start, before `--preload` runs app
/// code that may start threads: from then on it never reads the environment again.
pub fn read_notify_socket() {
    NOTIFY_SOCKET.get_or_init(|| std::env::var_os("NOTIFY_SOCKET"));
}

/// Sends `state` (e.g. `READY=1`, `STATUS=4 workers`) to the service manager when `$NOTIFY_SOCKET` was
/// set at start; does nothing otherwise. Errors are ignored: a notification is advice, never a reason
/// to stop.
pub fn notify(state: &str) {
    if let Some(Some(socket)) = NOTIFY_SOCKET.get()
        && let Err(e) = send(socket, state)
    {
        tracing::debug!("sd_notify {state:?} to {}: {e}", socket.to_string_lossy());
    }
}

fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let addr = match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(socket)?,
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// One socket passed by systemd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenFd {
    pub fd: RawFd,
    /// Its `FileDescriptorName=` from `$LISTEN_FDNAMES` (systemd names them after the socket unit).
    pub name: Option<String>,
}

/// The sockets systemd passed to this process: descriptors 3..3+`$LISTEN_FDS` when `$LISTEN_PID` is our
/// pid, none otherwise. `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` are removed from the environment
/// either way, so workers and apps never mistake them for their own. A malformed `LISTEN_FDS` is an
/// error (`sd_listen_fds` answers `-EINVAL` there too).
///
/// Call it in the master while it is still single-threaded: it edits the environment.
pub fn take_listen_fds() -> io::Result<Vec<ListenFd>> {
    // At start, before `--preload` (the contract of `take_env`).
    let [pid, count, names] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"].map(super::process::take_env);
    let (Some(pid), Some(count)) = (pid, count) else { return Ok(Vec::new()) };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: RawFd = count.trim().parse().ok().filter(|&n| (0..=4096).contains(&n)).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("LISTEN_FDS={count:?} is not a descriptor count"))
    })?;
    let mut names = names.as_deref().map(|s| s.split(':').map(str::to_string)).into_iter().flatten();
    Ok((0..n).map(|i| ListenFd { fd: LISTEN_FDS_START + i, name: names.next() }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("rg-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn notify_reaches_an_abstract_socket() {
        let name = format!("rg-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        send(OsStr::new(&format!("@{name}")), "STATUS=2 workers").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=2 workers");
    }
}
