//! The master's listening sockets: bound from `--bind` (under `--umask`, chowned to `--user`), passed
//! by systemd, or adopted from the master that upgraded to this one; matched against a new `--bind` on
//! reload; closed (their socket files removed) when they are dropped.
//!
//! Not here: a socket itself (`net::listener`).

use super::{Arbiter, StartError};
use crate::config::Config;
use crate::net::listener::Endpoint;
use crate::net::{BindAddr, Listener};
use crate::sys::privileges::Umask;
use crate::sys::systemd;
use std::os::fd::RawFd;

impl Arbiter {
    /// Closes the master's copies of `listeners` (workers close theirs as they exit) and removes the
    /// socket files this master bound — unless a new master started by USR2 serves on the same sockets.
    pub(super) fn close_listeners(&self, listeners: Vec<Listener>) {
        for l in listeners {
            if self.new_master.is_none() {
                l.remove_file();
            }
            tracing::info!("Stopped listening at: {}", l.url());
        }
    }
}

/// The listening sockets of a fresh start, and whether systemd passed them: the ones systemd passed
/// when it socket-activated us (`--bind` is then ignored), else `--bind`'s ([`bind_all`]).
pub(super) fn open_listeners(config: &Config) -> Result<(Vec<Listener>, bool), StartError> {
    let activated =
        systemd::take_listen_fds().map_err(|error| StartError::Bind { addr: "LISTEN_FDS".into(), error })?;
    if !activated.is_empty() {
        let listeners = activated
            .iter()
            .map(|passed| {
                let addr = format!("fd://{} from systemd", passed.fd);
                let listener =
                    Listener::adopt(passed.fd).map_err(|error| StartError::Bind { addr, error })?;
                let name = passed.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
                tracing::info!("Adopted fd {}{name} from systemd socket activation", passed.fd);
                Ok(listener)
            })
            .collect::<Result<_, _>>()?;
        return Ok((listeners, true));
    }
    Ok((bind_all(&config.bind, config)?, false))
}

/// Binds `addrs` under `--umask`, their socket files given to the workers' `--user`. If one fails,
/// the sockets bound before it are closed and their files removed.
pub(super) fn bind_all<'a>(
    addrs: impl IntoIterator<Item = &'a BindAddr>,
    config: &Config,
) -> Result<Vec<Listener>, StartError> {
    let _umask = Umask::set(config.umask);
    let mut listeners = Vec::new();
    for addr in addrs {
        match bind_one(addr, config) {
            Ok(listener) => listeners.push(listener),
            Err(error) => {
                for l in &listeners {
                    l.remove_file();
                }
                return Err(bind_error(addr, error));
            }
        }
    }
    Ok(listeners)
}

fn bind_one(addr: &BindAddr, config: &Config) -> std::io::Result<Listener> {
    let listener = Listener::bind(addr, config.backlog, config.reuse_port)?;
    if let (Some(identity), Some(path)) = (&config.identity, listener.socket_file())
        && let Err(e) = identity.chown(path)
    {
        listener.remove_file();
        return Err(e);
    }
    Ok(listener)
}

/// `cannot listen on ADDR: …`
pub(super) fn bind_error(addr: &BindAddr, error: std::io::Error) -> StartError {
    StartError::Bind { addr: addr.to_string(), error }
}

/// For each wanted endpoint, the index in `have` of a listener that already serves it (each serves one
/// at most), or `None`: to be bound. Exact addresses choose first, so that `HOST:0` (any port) takes a
/// listener no exact address wants.
pub(super) fn match_listeners(have: &[&Listener], wanted: &[Endpoint]) -> Vec<Option<usize>> {
    let mut taken = vec![false; have.len()];
    let mut matched = vec![None; wanted.len()];
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by_key(|&i| wanted[i].any_port());
    for i in order {
        matched[i] = (0..have.len()).find(|&j| !taken[j] && have[j].serves(&wanted[i]));
        if let Some(j) = matched[i] {
            taken[j] = true;
        }
    }
    matched
}

/// Adopts every listening socket named in `RUSTGUN_FD` (`3,4`).
pub(super) fn adopt_all(fds: &str) -> std::io::Result<Vec<Listener>> {
    fds.split(',')
        .map(|fd| {
            let fd: RawFd = fd.trim().parse().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{fd:?} is not a descriptor"))
            })?;
            Listener::adopt(fd)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(addr: &str) -> Listener {
        Listener::bind(&addr.parse().unwrap(), 16, false).expect("bind on loopback")
    }

    fn wanted(addrs: &[&str]) -> Vec<Endpoint> {
        addrs.iter().map(|a| a.parse::<BindAddr>().unwrap().endpoint().unwrap()).collect()
    }

    fn at(l: &Listener) -> String {
        format!("127.0.0.1:{}", l.local().1)
    }

    #[test]
    fn a_reload_keeps_the_listeners_of_the_addresses_it_still_names_and_binds_the_rest() {
        let (a, b) = (bound("127.0.0.1:0"), bound("127.0.0.1:0"));
        let have = [&a, &b];
        // Same addresses in another order: both kept, each by its own address.
        assert_eq!(match_listeners(&have, &wanted(&[&at(&b), &at(&a)])), [Some(1), Some(0)]);
        // One dropped, one new: the kept one matched, the new one to be bound.
        assert_eq!(match_listeners(&have, &wanted(&[&at(&a), "127.0.0.1:1"])), [Some(0), None]);
        // A listener serves one address at most.
        assert_eq!(match_listeners(&have, &wanted(&[&at(&a), &at(&a)])), [Some(0), None]);
    }

    #[test]
    fn an_any_port_address_takes_a_listener_no_exact_address_wants() {
        let (a, b) = (bound("127.0.0.1:0"), bound("127.0.0.1:0"));
        let have = [&a, &b];
        // Listed first, `:0` still leaves `a` to the exact address that names it.
        assert_eq!(match_listeners(&have, &wanted(&["127.0.0.1:0", &at(&a)])), [Some(1), Some(0)]);
        assert_eq!(
            match_listeners(&have, &wanted(&["127.0.0.1:0", &at(&a), &at(&b)])),
            [None, Some(0), Some(1)]
        );
    }

    #[test]
    fn adopting_names_what_is_not_a_descriptor() {
        let e = adopt_all("x").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("\"x\""), "{e}");
    }
}
