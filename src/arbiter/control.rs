//! The control socket (`--control-socket`, gunicorn's): a unix stream socket on which the master
//! answers one line per connection ([`crate::ctl`] has the protocol) through [`Conversations`], so
//! that no client can make it wait. `reload`, `ttin`, `ttou` and `stop` run the very handlers HUP,
//! TTIN, TTOU and TERM run ([`Arbiter::dispatch`]).
//!
//! The socket file: created with `--control-socket-mode` (under a umask that allows no more, so it is
//! never reachable by others even for a moment), removed at exit if it is still this master's. A file
//! left by a dead server (nobody answers on it) is replaced; one a live server answers on is not
//! taken: that is refused at start when `--control-socket` named the path, and with the default
//! path this server runs without a control socket and says so — two servers of one user on one host
//! keep working as under gunicorn, and the first keeps its socket. A master started by a binary
//! upgrade (USR2) takes the path over from the master that started it.
//!
//! Not here: what `status` shows (`status`), the client (`crate::ctl`).

use super::Arbiter;
use super::conversations::Conversations;
use crate::config::Config;
use crate::ctl::Command;
use crate::sys::privileges::{Umask, UmaskSpec};
use signal_hook::consts::{SIGHUP, SIGTERM, SIGTTIN, SIGTTOU};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The longest request line taken.
const LINE_MAX: usize = 256;

/// Why the control socket could not be opened.
#[derive(Debug)]
pub enum ControlError {
    /// A live server answers on the path.
    InUse(PathBuf),
    /// The path names something other than a socket: it is not removed.
    NotASocket(PathBuf),
    Io {
        path: PathBuf,
        error: io::Error,
    },
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::InUse(p) => {
                write!(f, "control socket {}: another running server answers on it", p.display())
            }
            ControlError::NotASocket(p) => {
                write!(f, "control socket {}: the path exists and is not a socket", p.display())
            }
            ControlError::Io { path, error } => write!(f, "control socket {}: {error}", path.display()),
        }
    }
}

/// Where the control socket goes, if anywhere: the path, and whether `--control-socket` named it
/// (else it is [`crate::ctl::default_path`]).
pub struct Placement {
    path: PathBuf,
    named: bool,
}

impl Placement {
    /// Reads the configuration (and, for the default path, the environment: call it before
    /// `--preload` runs app code).
    pub fn of(config: &Config) -> Option<Placement> {
        let g = &config.gunicorn;
        if g.no_control_socket {
            return None;
        }
        Some(match &g.control_socket {
            Some(path) => Placement { path: path.clone(), named: true },
            None => Placement { path: crate::ctl::default_path(), named: false },
        })
    }

    /// Opens the socket as [`Control::open`] does; with the default path, a failure is logged and
    /// the server runs without a control socket, while a named path's failure is returned.
    pub fn open(self, mode: u32, take_over: bool) -> Result<Option<Control>, ControlError> {
        match Control::open(&self.path, mode, take_over, !self.named) {
            Ok(control) => Ok(Some(control)),
            Err(e) if self.named => Err(e),
            Err(e @ ControlError::InUse(_)) => {
                tracing::info!("{e}; this server has none (give it --control-socket PATH)");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!("{e}; running without one (--no-control-socket turns it off)");
                Ok(None)
            }
        }
    }
}

/// The control socket and the conversations on it.
pub struct Control {
    served: Conversations<UnixListener>,
    path: PathBuf,
    /// The socket file's device and inode: at exit it is removed only if the path still names it.
    file: (u64, u64),
}

impl Control {
    /// Listens at `path` with permission bits `mode`: replaces a dead server's socket file (or any
    /// socket file, when `take_over`), refuses a live one's; makes the parent directory (0700) when
    /// `make_dir` and it is missing.
    pub fn open(path: &Path, mode: u32, take_over: bool, make_dir: bool) -> Result<Control, ControlError> {
        let io_error = |error| ControlError::Io { path: path.to_path_buf(), error };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => return Err(ControlError::NotASocket(path.into())),
            Ok(_) => {
                if !take_over && UnixStream::connect(path).is_ok() {
                    return Err(ControlError::InUse(path.into()));
                }
                std::fs::remove_file(path).or_else(ignore_missing).map_err(io_error)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(dir) =
                    path.parent().filter(|d| make_dir && !d.as_os_str().is_empty() && !d.exists())
                {
                    use std::os::unix::fs::DirBuilderExt;
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(dir)
                        .or_else(ignore_exists)
                        .map_err(io_error)?;
                }
            }
            Err(e) => return Err(io_error(e)),
        }
        let listener = {
            let _umask = Umask::set(UmaskSpec(!mode & 0o777));
            UnixListener::bind(path)
        };
        let listener = listener.map_err(|e| match e.kind() {
            // Another server bound it between our look and our bind.
            io::ErrorKind::AddrInUse => ControlError::InUse(path.into()),
            _ => io_error(e),
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_error)?;
        let meta = std::fs::metadata(path).map_err(io_error)?;
        listener.set_nonblocking(true).map_err(io_error)?;
        let served = Conversations::new(listener);
        Ok(Control { served, path: path.to_path_buf(), file: (meta.dev(), meta.ino()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The conversations in progress, for the master's `poll` and its forks.
    pub fn conversations(&self) -> &Conversations<UnixListener> {
        &self.served
    }

    /// Removes the socket file, unless another master (an upgrade's, a server that replaced it)
    /// has made the path its own since.
    pub fn remove_file(&self) {
        if std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
}

fn ignore_exists(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::AlreadyExists { Ok(()) } else { Err(e) }
}

/// The request line in `request`, once it is complete (`Err` with the answer when it is not a line).
fn line(request: &[u8]) -> Option<Result<&str, &'static str>> {
    match request.iter().position(|&b| b == b'\n') {
        Some(end) => Some(std::str::from_utf8(&request[..end]).map_err(|_| "the request is not UTF-8")),
        None if request.len() > LINE_MAX => Some(Err("the request line is too long")),
        None => None,
    }
}

impl Arbiter {
    /// Moves the control socket's conversations as far as they go without waiting, running each
    /// complete request.
    pub(super) fn step_control(&mut self) {
        let Some(mut control) = self.control.take() else { return };
        control.served.step(|request| line(request).map(|line| self.control_answer(line).into_bytes()));
        self.control = Some(control);
    }

    fn control_answer(&mut self, line: Result<&str, &str>) -> String {
        let command = match line {
            Ok(line) => Command::parse(line).ok_or_else(|| {
                format!("unknown command {:?}; the commands are {}", line.trim(), Command::words())
            }),
            Err(why) => Err(why.to_string()),
        };
        let command = match command {
            Ok(command) => command,
            Err(why) => return format!("error: {why}\n"),
        };
        let signal = match command {
            Command::Status => return format!("ok\n{}", self.status().text()),
            Command::StatusJson => return format!("ok\n{}", self.status().json()),
            Command::Reload => SIGHUP,
            Command::Ttin => SIGTTIN,
            Command::Ttou => SIGTTOU,
            Command::Stop => SIGTERM,
        };
        tracing::info!("Control socket: {}", command.word());
        self.dispatch(signal);
        format!("ok\n{}: workers: {}\n", command.word(), self.target)
    }
}
