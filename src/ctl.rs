//! The control socket's protocol, and its client: `rustgun status` and `rustgun ctl ACTION`, which
//! ask a running master through its `--control-socket` as gunicorn's `gunicornc` does.
//!
//! The protocol: a client connects, sends one line (a [`Command`]'s word, then `\n`), and reads the
//! answer until the master closes the connection. The answer's first line is `ok` or `error: WHY`;
//! what follows `ok` is the command's output (the workers' table for `status`, JSON for `status
//! json`, one line for the actions).
//!
//! Not here: the master's side (`arbiter::control`), what the table holds (`arbiter::status`).

use clap::{Parser, ValueEnum};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// A request on the control socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Command {
    /// The workers' table.
    #[value(skip)]
    Status,
    /// The same, as JSON (what `/status.json` serves).
    #[value(skip)]
    StatusJson,
    /// Reload, as SIGHUP does: a new generation of workers replaces the current one.
    Reload,
    /// One worker more, as SIGTTIN does.
    Ttin,
    /// One worker fewer, as SIGTTOU does.
    Ttou,
    /// Stop gracefully, as SIGTERM does.
    Stop,
}

impl Command {
    const ALL: [Command; 6] =
        [Command::Status, Command::StatusJson, Command::Reload, Command::Ttin, Command::Ttou, Command::Stop];

    /// The line that asks for it.
    pub fn word(self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::StatusJson => "status json",
            Command::Reload => "reload",
            Command::Ttin => "ttin",
            Command::Ttou => "ttou",
            Command::Stop => "stop",
        }
    }

    /// The command a line asks for (surrounding white space and case aside).
    pub fn parse(line: &str) -> Option<Command> {
        let words: Vec<String> = line.split_whitespace().map(str::to_ascii_lowercase).collect();
        Command::ALL.into_iter().find(|c| c.word().split(' ').eq(words.iter().map(String::as_str)))
    }

    /// Every command's word, for an error message.
    pub fn words() -> String {
        Command::ALL.map(Command::word).join(", ")
    }
}

/// The control socket's path when `--control-socket` names none: `$XDG_RUNTIME_DIR/rustgun.ctl`
/// when that directory exists, else `~/.rustgun/rustgun.ctl` (gunicorn's choice of directories).
pub fn default_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && dir.is_dir()
    {
        return dir.join("rustgun.ctl");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
    home.join(".rustgun").join("rustgun.ctl")
}

/// `rustgun status` / `rustgun ctl`: what a running master is asked.
#[derive(Parser, Debug)]
#[command(name = "rustgun", about = "Ask a running rustgun master through its control socket.")]
enum Cli {
    /// Print the workers of a running server: pid, state, requests served, in flight, the oldest
    /// current request and its age, RSS, uptime, loop lag.
    Status {
        /// The server's --control-socket (default: as the server's).
        #[arg(long = "control-socket", value_name = "PATH")]
        control_socket: Option<PathBuf>,
        /// JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Tell a running server to reload (as HUP), add a worker (TTIN), remove one (TTOU) or stop
    /// gracefully (TERM).
    Ctl {
        #[arg(value_enum)]
        action: Command,
        /// The server's --control-socket (default: as the server's).
        #[arg(long = "control-socket", value_name = "PATH")]
        control_socket: Option<PathBuf>,
    },
}

/// How long the client waits for the master's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `argv` asks for the client rather than the server: its first argument is `status` or
/// `ctl`. (To serve a Python module named `status` or `ctl`, name its callable: `status:app`.)
pub fn asked(argv: &[std::ffi::OsString]) -> bool {
    argv.get(1).is_some_and(|a| a == "status" || a == "ctl")
}

/// Runs the client; the process exit status.
pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let (command, path) = match Cli::parse_from(argv) {
        Cli::Status { control_socket, json } => {
            (if json { Command::StatusJson } else { Command::Status }, control_socket)
        }
        Cli::Ctl { action, control_socket } => (action, control_socket),
    };
    let path = path.unwrap_or_else(default_path);
    match ask(&path, command) {
        Ok(answer) => match answer.split_once('\n') {
            Some(("ok", out)) => {
                print!("{out}");
                crate::exit::OK
            }
            _ => {
                eprint!("rustgun: {}: {answer}", path.display());
                crate::exit::FAILED
            }
        },
        Err(e) => {
            eprintln!(
                "rustgun: cannot ask the server at {}: {e} (is it running, with this --control-socket?)",
                path.display()
            );
            crate::exit::FAILED
        }
    }
}

/// Sends `command` to the control socket at `path`; the whole answer.
pub fn ask(path: &std::path::Path, command: Command) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    stream.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    stream.write_all(format!("{}\n", command.word()).as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses_from_its_word() {
        for c in Command::ALL {
            assert_eq!(Command::parse(c.word()), Some(c));
        }
        assert_eq!(Command::parse("  Status   JSON \r"), Some(Command::StatusJson));
        assert_eq!(Command::parse("status xml"), None);
        assert_eq!(Command::parse(""), None);
    }
}
