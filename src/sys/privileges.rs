//! Who the workers run as, and the mode of the files rustgun creates: `--user` / `--group` resolved
//! to ids ([`UserSpec`], [`GroupSpec`], [`Identity`]), the switch a worker makes right after fork
//! ([`Identity::assume`]), the chown of unix socket files, and `--umask` ([`Umask`]).
//!
//! As in gunicorn, only workers change identity: the master keeps its uid, so it can still bind,
//! re-exec and signal. Unlike gunicorn, `--user` alone also takes the user's primary group (gunicorn
//! keeps the master's, often root's).

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Group, Uid, User};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// A `--user` value: a user name, or a numeric uid (which need not have a passwd entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    pub uid: Uid,
    /// The passwd entry's primary group, when there is an entry.
    pub primary_gid: Option<Gid>,
}

impl FromStr for UserSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<UserSpec, String> {
        let numeric = s.parse::<u32>().ok();
        let entry = match numeric {
            Some(uid) => User::from_uid(Uid::from_raw(uid)),
            None => User::from_name(s),
        }
        .map_err(|e| format!("cannot look up user {s}: {e}"))?;
        match (entry, numeric) {
            (Some(user), _) => Ok(UserSpec { uid: user.uid, primary_gid: Some(user.gid) }),
            (None, Some(uid)) => Ok(UserSpec { uid: Uid::from_raw(uid), primary_gid: None }),
            (None, None) => Err(format!("no such user: {s}")),
        }
    }
}

/// A `--group` value: a group name or a numeric gid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub gid: Gid,
}

impl FromStr for GroupSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<GroupSpec, String> {
        if let Ok(gid) = s.parse::<u32>() {
            return Ok(GroupSpec { gid: Gid::from_raw(gid) });
        }
        match Group::from_name(s).map_err(|e| format!("cannot look up group {s}: {e}"))? {
            Some(group) => Ok(GroupSpec { gid: group.gid }),
            None => Err(format!("no such group: {s}")),
        }
    }
}

/// The uid and gid workers run as, and their supplementary groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: Uid,
    pub gid: Gid,
    /// `--initgroups`: every group the user is a member of (and `gid`), looked up by the master; else
    /// just `gid`.
    pub groups: Arc<[Gid]>,
}

/// Why the identity `--user` / `--group` ask for cannot be had: not worked out from the options, or
/// not taken on by a worker.
#[derive(Debug)]
pub enum PrivilegeError {
    /// `--user` is a uid with no passwd entry, and no `--group` says which group goes with it.
    NoGroup { uid: Uid },
    /// `--initgroups` for a uid with no passwd entry (no name to look its groups up by), or the lookup
    /// failed.
    Groups { uid: Uid, reason: String },
    /// A worker's `call` to switch to `id` failed.
    Switch { call: &'static str, id: u32, error: Errno },
}

impl fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivilegeError::NoGroup { uid } => {
                write!(f, "--user {uid} has no passwd entry to take a group from: give --group too")
            }
            PrivilegeError::Groups { uid, reason } => {
                write!(f, "--initgroups: cannot look up the groups of user {uid}: {reason}")
            }
            PrivilegeError::Switch { call, id, error } => write!(
                f,
                "cannot drop privileges: {call}({id}) failed: {error} (the master runs as uid {}; only root can switch users)",
                Uid::current()
            ),
        }
    }
}

impl std::error::Error for PrivilegeError {}

impl Identity {
    /// The identity `--user` / `--group` ask for: `None` when neither is given. The group defaults to
    /// the user's primary group, and the user to the current one.
    pub fn resolve(
        user: Option<&UserSpec>,
        group: Option<&GroupSpec>,
        initgroups: bool,
    ) -> Result<Option<Identity>, PrivilegeError> {
        let gid = match (group, user) {
            (None, None) => return Ok(None),
            (Some(g), _) => g.gid,
            (None, Some(UserSpec { primary_gid: Some(gid), .. })) => *gid,
            (None, Some(UserSpec { uid, primary_gid: None })) => {
                return Err(PrivilegeError::NoGroup { uid: *uid });
            }
        };
        let uid = user.map_or_else(Uid::current, |u| u.uid);
        let groups: Arc<[Gid]> = if initgroups { member_of(uid, gid)?.into() } else { Arc::new([gid]) };
        Ok(Some(Identity { uid, gid, groups }))
    }

    /// Becomes this identity for good: supplementary groups to just `gid`, then the gid, then the uid
    /// (in that order: once the uid is dropped the others can no longer be changed). A process that
    /// already is this identity changes nothing, so a non-root master with its own `--user` works.
    /// The kernel clears the parent-death signal when credentials change (prctl(2)); it is set again.
    pub fn assume(&self) -> Result<(), PrivilegeError> {
        if Uid::current() == self.uid
            && Uid::effective() == self.uid
            && Gid::current() == self.gid
            && Gid::effective() == self.gid
        {
            return Ok(());
        }
        let fail = |call, id: u32| move |error| PrivilegeError::Switch { call, id, error };
        let death_signal = prctl::get_pdeathsig().ok().flatten();
        if Uid::effective().is_root() {
            nix::unistd::setgroups(&self.groups).map_err(fail("setgroups", self.gid.as_raw()))?;
        }
        nix::unistd::setgid(self.gid).map_err(fail("setgid", self.gid.as_raw()))?;
        nix::unistd::setuid(self.uid).map_err(fail("setuid", self.uid.as_raw()))?;
        if let Some(sig) = death_signal {
            let _ = prctl::set_pdeathsig(sig);
        }
        Ok(())
    }

    /// Gives a unix socket file to this identity, so workers (and a proxy in the group) may use it.
    pub fn chown(&self, path: &Path) -> std::io::Result<()> {
        nix::unistd::chown(path, Some(self.uid), Some(self.gid)).map_err(std::io::Error::from)
    }
}

/// The groups `uid` is a member of by the group database, with `gid` (initgroups(3)'s list).
fn member_of(uid: Uid, gid: Gid) -> Result<Vec<Gid>, PrivilegeError> {
    let fail = |reason: String| PrivilegeError::Groups { uid, reason };
    let user = nix::unistd::User::from_uid(uid).map_err(|e| fail(e.to_string()))?;
    let name = user.ok_or_else(|| fail("it has no passwd entry".into()))?.name;
    let name = std::ffi::CString::new(name).map_err(|e| fail(e.to_string()))?;
    nix::unistd::getgrouplist(&name, gid).map_err(|e| fail(e.to_string()))
}

/// `--umask`: parsed like gunicorn's (`0o027`, `027` and `0x17` are octal, octal and hex; `23` is
/// decimal), at most `0o777`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UmaskSpec(pub u32);

impl FromStr for UmaskSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<UmaskSpec, String> {
        permission_bits(s)
            .map(UmaskSpec)
            .ok_or_else(|| format!("{s:?} is not a umask (0 to 0o777, e.g. 027 or 0o027)"))
    }
}

/// A file's permission bits, as gunicorn reads them (`0600`, `0o600`, `0x180`, `384`): the control
/// socket's `--control-socket-mode`.
pub fn file_mode(s: &str) -> Result<u32, String> {
    permission_bits(s).ok_or_else(|| format!("{s:?} is not a file mode (0 to 0o777, e.g. 0600 or 0o660)"))
}

/// 0 to 0o777 written in octal (`0o27`, `027`), hex (`0x17`) or decimal (`23`), as gunicorn's
/// `auto_int` reads it (and a leading 0 for octal, as umask(1) writes it).
fn permission_bits(s: &str) -> Option<u32> {
    let t = s.trim();
    let parsed = if let Some(oct) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        u32::from_str_radix(oct, 8)
    } else if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        u32::from_str_radix(&t[1..], 8)
    } else {
        t.parse::<u32>()
    };
    parsed.ok().filter(|bits| *bits <= 0o777)
}

/// A umask in force until dropped (gunicorn sets `--umask` only while it creates its sockets).
pub struct Umask {
    previous: Mode,
}

impl Umask {
    pub fn set(mask: UmaskSpec) -> Umask {
        Umask { previous: umask(Mode::from_bits_truncate(mask.0)) }
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        umask(self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umasks_parse_like_gunicorn() {
        assert_eq!("0".parse(), Ok(UmaskSpec(0)));
        assert_eq!("027".parse(), Ok(UmaskSpec(0o27)));
        assert_eq!("0o027".parse(), Ok(UmaskSpec(0o27)));
        assert_eq!("0x12".parse(), Ok(UmaskSpec(0o22)));
        assert_eq!("18".parse(), Ok(UmaskSpec(0o22)));
        assert!("0o1000".parse::<UmaskSpec>().is_err());
        assert!("08".parse::<UmaskSpec>().is_err());
        assert!("rw".parse::<UmaskSpec>().is_err());
        assert_eq!(file_mode("384"), Ok(0o600));
        assert_eq!(file_mode("0660"), Ok(0o660));
        assert!(file_mode("0o1777").is_err());
    }

    #[test]
    fn users_and_groups_resolve_by_name_and_number() {
        let root: UserSpec = "root".parse().unwrap();
        assert_eq!((root.uid.as_raw(), root.primary_gid.map(Gid::as_raw)), (0, Some(0)));
        assert_eq!("0".parse::<UserSpec>().unwrap(), root);
        let unknown: UserSpec = "4000123".parse().unwrap();
        assert_eq!(unknown.primary_gid, None);
        assert!("no-such-user-here".parse::<UserSpec>().is_err());
        assert_eq!("root".parse::<GroupSpec>().unwrap().gid.as_raw(), 0);
        assert!("no-such-group-here".parse::<GroupSpec>().is_err());
        assert!(Identity::resolve(Some(&unknown), None, false).is_err());
        let g = GroupSpec { gid: Gid::from_raw(7) };
        let gid = Gid::from_raw(7);
        assert_eq!(
            Identity::resolve(Some(&unknown), Some(&g), false).unwrap(),
            Some(Identity { uid: Uid::from_raw(4000123), gid, groups: Arc::new([gid]) })
        );
        // No name to look the groups up by.
        let err = Identity::resolve(Some(&unknown), Some(&g), true).unwrap_err().to_string();
        assert!(err.contains("no passwd entry"), "{err}");
        assert_eq!(Identity::resolve(None, None, false).unwrap(), None);
    }
}
