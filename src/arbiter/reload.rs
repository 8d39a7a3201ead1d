//! Reloads (HUP, `--reload`): re-read the configuration, rebind what `--bind` changed, start a full
//! new generation, and stop the previous one once every new worker is ready — or go back to it when
//! the new workers cannot boot.
//!
//! Not here: forking and stopping workers (`workers`), binding a socket (`listeners`).

use super::listeners::{bind_all, bind_error, match_listeners};
use super::{Arbiter, Phase, StartError, set_title};
use crate::app::hooks::{self, Hook};
use crate::config::{Config, ConfigError, TlsConfigError};
use crate::net::{BindAddr, Listener};
use crate::sys::systemd;
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;

/// A reload under way: the new generation is booting, the previous one still serves. If the new
/// workers cannot boot, the master goes back to what it had.
pub(super) struct Reload {
    pub(super) previous: Config,
    pub(super) previous_target: u32,
    pub(super) previous_generation: u32,
    /// The listeners serving before the reload, in order, by descriptor.
    pub(super) previous_listeners: Vec<RawFd>,
    /// The listeners a changed `--bind` dropped: open until the reload finishes (the previous
    /// generation accepts on them; an abandoned reload takes them back), never in a new worker.
    pub(super) retired: Vec<Listener>,
}

/// The app library's identity as `--reload` last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

/// What `--reload` watches, each with its stamp now: the app library and every
/// `--reload-extra-file`; nothing without `--reload`.
pub(super) fn watched_files(config: &Config) -> Vec<(PathBuf, Option<FileStamp>)> {
    if !config.reload {
        return Vec::new();
    }
    let files = std::iter::once(&config.app.path).chain(&config.gunicorn.reload_extra_file);
    files.map(|path| (path.clone(), FileStamp::of(path))).collect()
}

impl FileStamp {
    pub(super) fn of(path: &std::path::Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp { dev: m.dev(), ino: m.ino(), len: m.len(), mtime: (m.mtime(), m.mtime_nsec()) })
    }
}

/// Why a reload keeps the current configuration.
#[derive(Debug)]
pub(super) enum ReloadError {
    /// The configuration as it reads now is invalid.
    Config(ConfigError),
    /// Its TLS options cannot be used.
    Tls(TlsConfigError),
    /// Its `--bind` cannot be resolved or bound.
    Bind(StartError),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Config(e) => write!(f, "{e}"),
            ReloadError::Tls(e) => write!(f, "{e}"),
            ReloadError::Bind(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReloadError {}

impl Arbiter {
    /// Re-reads the configuration and starts the next generation ([`Arbiter::handle_hup`], `--reload`).
    /// A configuration that cannot be read, or whose new addresses cannot be bound, is not applied at
    /// all: the next generation starts with the current one (and the current listeners).
    pub(super) fn begin_reload(&mut self) {
        if self.phase != Phase::Running {
            return;
        }
        let previous_listeners = self.listeners.iter().map(|l| l.as_fd().as_raw_fd()).collect();
        let (config, retired) = self.next_config().unwrap_or_else(|e| {
            tracing::error!("Reload: keeping the current configuration: {e}");
            (self.config.clone(), Vec::new())
        });
        if let Err(e) =
            crate::logging::reopen_error_log(&config.error_logfile, config.gunicorn.capture_output)
        {
            tracing::error!("cannot reopen the error log {}: {e}", config.error_logfile);
        }
        if self.preloaded.is_some() {
            tracing::warn!("Reload: with --preload the app library loaded at start keeps serving");
        }
        set_title("master", &config);
        let previous = std::mem::replace(&mut self.config, config);
        // A reload that is still booting is superseded; the workers (and listeners) serving before it
        // stay the ones to go back to.
        match &mut self.reload {
            Some(reload) => reload.retired.extend(retired),
            None => {
                self.reload = Some(Reload {
                    previous,
                    previous_target: self.target,
                    previous_generation: self.generation,
                    previous_listeners,
                    retired,
                })
            }
        }
        self.generation += 1;
        let old_target = self.target;
        self.target = self.config.workers;
        // gunicorn reads the file again on HUP: its hooks too.
        if let Err(e) = hooks::load(self.config.hooks.as_ref()) {
            tracing::error!("Reload: {e}");
        }
        hooks::run(Hook::OnReload, hooks::master(self.target));
        self.workers_changed(old_target);
        self.watched = watched_files(&self.config);
        tracing::info!("Reloading: starting {} new workers (generation {})", self.target, self.generation);
    }

    /// The configuration a reload applies, its `--bind` bound ([`Arbiter::rebind`]), and the listeners
    /// it drops.
    pub(super) fn next_config(&mut self) -> Result<(Config, Vec<Listener>), ReloadError> {
        let mut config = self.reread_config()?;
        if config.reuse_port != self.config.reuse_port {
            // The kept listeners were made for one mode: a placeholder or a shared listening socket.
            let mode = if self.config.reuse_port { "on" } else { "off" };
            tracing::warn!("Reload: --reuse-port changes only on restart; it stays {mode}");
            config.reuse_port = self.config.reuse_port;
        }
        let retired = self.rebind(&config).map_err(ReloadError::Bind)?;
        Ok((config, retired))
    }

    /// The configuration as the command line (and whatever it names) says now.
    pub(super) fn reread_config(&self) -> Result<Config, ReloadError> {
        let mut config = crate::config::load(self.argv.iter().cloned()).map_err(ReloadError::Config)?;
        config.load_tls().map_err(ReloadError::Tls)?;
        Ok(config)
    }

    /// Makes the listeners what `config.bind` asks for (gunicorn rebinds on HUP too). A listener that
    /// already serves an address is kept as it is — never closed and bound again, so no connection
    /// is refused there; the addresses nobody serves are bound (and logged `Listening at:`); the
    /// listeners left over are returned, still open, for the reload to close once it finishes. If an
    /// address does not resolve or cannot be bound, nothing changes and the error names it.
    ///
    /// Sockets systemd passed are kept whatever `--bind` says, and `fd://N` is adopted only at start
    /// (a descriptor number names anything later).
    pub(super) fn rebind(&mut self, config: &Config) -> Result<Vec<Listener>, StartError> {
        if self.activated {
            if config.bind != self.config.bind {
                tracing::warn!("Reload: --bind is ignored: the listening sockets came from systemd");
            }
            return Ok(Vec::new());
        }
        let wanted = config
            .bind
            .iter()
            .map(|addr| addr.endpoint().map_err(|error| bind_error(addr, error)))
            .collect::<Result<Vec<_>, _>>()?;
        // Indexes into the current listeners, then the ones a reload under way retired.
        let matched = {
            let have: Vec<&Listener> = self.listeners.iter().chain(self.retired()).collect();
            match_listeners(&have, &wanted)
        };
        if matched.iter().copied().eq((0..self.listeners.len()).map(Some)) {
            return Ok(Vec::new());
        }
        let missing: Vec<&BindAddr> =
            config.bind.iter().zip(&matched).filter(|(_, m)| m.is_none()).map(|(addr, _)| addr).collect();
        if let Some(addr) = missing.iter().find(|addr| matches!(addr, BindAddr::Fd(_))) {
            let why = "an inherited descriptor is adopted at start only";
            return Err(bind_error(addr, std::io::Error::new(std::io::ErrorKind::Unsupported, why)));
        }
        let fresh = bind_all(missing, config)?;
        for l in &fresh {
            tracing::info!("Listening at: {} ({})", l.url(), self.pid);
        }
        let mut fresh = fresh.into_iter();
        let mut pool: Vec<Option<Listener>> = std::mem::take(&mut self.listeners)
            .into_iter()
            .chain(self.reload.iter_mut().flat_map(|r| std::mem::take(&mut r.retired)))
            .map(Some)
            .collect();
        self.listeners = matched
            .iter()
            .filter_map(|m| match m {
                Some(i) => pool[*i].take(),
                None => fresh.next(),
            })
            .collect();
        Ok(pool.into_iter().flatten().collect())
    }

    /// The listeners a reload under way retired.
    pub(super) fn retired(&self) -> impl Iterator<Item = &Listener> {
        self.reload.iter().flat_map(|r| &r.retired)
    }

    /// Once every worker of the new generation is ready, the older ones stop gracefully and the
    /// listeners the reload dropped close.
    pub(super) fn finish_reload(&mut self) {
        if self.reload.is_none() || self.current().filter(|(_, w)| w.booted).count() < self.target as usize {
            return;
        }
        let old: Vec<Pid> = self
            .workers
            .iter()
            .filter(|(_, w)| w.generation != self.generation && w.stop_deadline.is_none())
            .map(|(p, _)| *p)
            .collect();
        tracing::info!(
            "Reloaded: {} workers of generation {} serving; stopping {} previous workers",
            self.target,
            self.generation,
            old.len()
        );
        for pid in old {
            self.stop_worker(pid);
        }
        self.commit_reload();
        systemd::notify("READY=1");
    }

    /// The reload under way is over and its configuration stays: the listeners it dropped close.
    pub(super) fn commit_reload(&mut self) {
        if let Some(reload) = self.reload.take() {
            self.close_listeners(reload.retired);
        }
    }

    /// A worker of the new generation failed to boot: stop the new generation and go back to the
    /// configuration, listeners and workers that were serving before the reload.
    pub(super) fn abandon_reload(&mut self, message: &str) {
        let Some(reload) = self.reload.take() else { return };
        tracing::error!("Reload failed: {message}; the previous workers keep serving");
        let mut pool = std::mem::take(&mut self.listeners);
        pool.extend(reload.retired);
        self.listeners = reload
            .previous_listeners
            .iter()
            .filter_map(|fd| Some(pool.remove(pool.iter().position(|l| l.as_fd().as_raw_fd() == *fd)?)))
            .collect();
        // Those the reload added.
        self.close_listeners(pool);
        self.config = reload.previous;
        self.target = reload.previous_target;
        let abandoned = self.generation;
        self.generation = reload.previous_generation;
        let new: Vec<Pid> =
            self.workers.iter().filter(|(_, w)| w.generation == abandoned).map(|(p, _)| *p).collect();
        for pid in new {
            self.stop_worker(pid);
        }
        systemd::notify("READY=1");
    }

    /// `--reload`: a changed app library (new inode, size or mtime) starts a reload.
    pub(super) fn watch_app(&mut self) {
        let changed = self.watched.iter_mut().find_map(|(path, stamp)| {
            let now = FileStamp::of(path);
            (now.is_some() && now != *stamp).then(|| {
                *stamp = now;
                path.clone()
            })
        });
        if let Some(path) = changed {
            let what = if path == self.config.app.path { "App library" } else { "File" };
            tracing::info!("{what} {} changed; reloading", path.display());
            self.begin_reload();
        }
    }
}
