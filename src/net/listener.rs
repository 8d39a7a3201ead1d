//! Listening sockets: `--bind` parsing, binding with SO_REUSEADDR and a backlog, adopting inherited
//! descriptors, telling whether a socket already serves an address (a reload keeps those), and
//! accepting.

use super::stream::{Peer, Stream};
use nix::sys::socket::{
    self, AddressFamily, Backlog, SockFlag, SockType, SockaddrLike, SockaddrStorage, sockopt,
};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// One `--bind` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindAddr {
    /// `HOST:PORT` or `[V6]:PORT`, resolved when bound.
    Tcp(String),
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `fd://N`: a socket this process inherited, already bound and listening.
    Fd(RawFd),
}

impl std::str::FromStr for BindAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(format!("bind address {s:?} has an empty socket path"));
            }
            return Ok(BindAddr::Unix(PathBuf::from(path)));
        }
        if let Some(fd) = s.strip_prefix("fd://") {
            return fd
                .parse::<RawFd>()
                .ok()
                .filter(|&fd| fd >= 0)
                .map(BindAddr::Fd)
                .ok_or_else(|| format!("bind address {s:?}: fd:// needs a descriptor number"));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("bind address {s:?} is not HOST:PORT, [V6]:PORT, unix:PATH or fd://N"))?;
        port.parse::<u16>().map_err(|_| format!("bind address {s:?} has an invalid port"))?;
        if host.is_empty() {
            return Err(format!("bind address {s:?} has an empty host"));
        }
        Ok(BindAddr::Tcp(s.to_string()))
    }
}

impl BindAddr {
    /// Where this address listens, resolved now: what [`Listener::serves`] compares.
    pub fn endpoint(&self) -> io::Result<Endpoint> {
        match self {
            BindAddr::Tcp(spec) => resolve(spec).map(Endpoint::Tcp),
            BindAddr::Unix(path) => Ok(Endpoint::Unix(path.clone())),
            BindAddr::Fd(fd) => Ok(Endpoint::Fd(*fd)),
        }
    }
}

/// A `--bind` value resolved: the socket address, the socket file or the descriptor it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Port 0 asks for any free port: a listener on the same IP, at whatever port, serves it.
    Tcp(SocketAddr),
    Unix(PathBuf),
    Fd(RawFd),
}

impl Endpoint {
    /// `HOST:0`: served by a listener on any port of HOST.
    pub fn any_port(&self) -> bool {
        matches!(self, Endpoint::Tcp(a) if a.port() == 0)
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp(s) => f.write_str(s),
            BindAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            BindAddr::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

/// A bound, listening socket shared by the master and every worker.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// The socket file's path, and who made the file.
    Unix(UnixListener, PathBuf, SocketFile),
}

/// Who made a unix listener's socket file, and so may remove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketFile {
    /// This process bound it: the master removes it on its final exit.
    Bound,
    /// An inherited socket (`fd://N`, systemd, a binary upgrade): its file belongs to whoever bound
    /// it — systemd keeps a socket unit's file across service restarts — and is never removed here.
    Inherited,
}

impl Listener {
    /// Binds `addr` with SO_REUSEADDR and `backlog`; a stale unix socket file is replaced.
    ///
    /// With `reuse_port`, a TCP address is bound with SO_REUSEPORT but not listened on: it only holds
    /// the port, and each worker listens on its own socket ([`Listener::for_worker`]).
    pub fn bind(addr: &BindAddr, backlog: i32, reuse_port: bool) -> io::Result<Listener> {
        match addr {
            BindAddr::Tcp(spec) => bind_tcp(
                resolve(spec)?,
                backlog,
                if reuse_port { ReusePort::Reserve } else { ReusePort::Off },
            ),
            BindAddr::Unix(path) => bind_unix(path, backlog),
            BindAddr::Fd(fd) => Listener::adopt(*fd),
        }
    }

    /// Takes over an inherited listening socket (systemd socket activation, `fd://N`, binary upgrade).
    pub fn adopt(fd: RawFd) -> io::Result<Listener> {
        let owned = crate::sys::process::adopt_fd(fd)?;
        let accepting = socket::getsockopt(&owned, sockopt::AcceptConn).map_err(io::Error::from)?;
        if !accepting {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("fd {fd} is not a listening socket"),
            ));
        }
        nix::fcntl::fcntl(owned.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
        let local: SockaddrStorage = socket::getsockname(owned.as_raw_fd()).map_err(io::Error::from)?;
        let listener = if local.family() == Some(AddressFamily::Unix) {
            let path = local.as_unix_addr().and_then(|u| u.path()).map(Path::to_path_buf).unwrap_or_default();
            Listener::Unix(UnixListener::from(owned), path, SocketFile::Inherited)
        } else {
            // Accepted connections inherit it (see `accept_nonblocking`).
            socket::setsockopt(&owned, sockopt::TcpNoDelay, &true)?;
            Listener::Tcp(TcpListener::from(owned))
        };
        listener.set_nonblocking()?;
        Ok(listener)
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true),
            Listener::Unix(l, ..) => l.set_nonblocking(true),
        }
    }

    /// A socket of the worker's own under `--reuse-port`: a fresh SO_REUSEPORT socket listening on the
    /// same TCP address (the kernel spreads connections over the workers' sockets). `None` when the
    /// worker accepts on this one, shared with its siblings (unix sockets, and TCP without the flag).
    pub fn own_for_worker(&self, backlog: i32, reuse_port: bool) -> io::Result<Option<Listener>> {
        match self {
            Listener::Tcp(l) if reuse_port => bind_tcp(l.local_addr()?, backlog, ReusePort::Listen).map(Some),
            _ => Ok(None),
        }
    }

    /// Accepts one connection without blocking; `Ok(None)` when another worker took it first.
    pub fn accept(&self) -> io::Result<Option<(Stream, Peer)>> {
        match accept_nonblocking(self.as_fd()) {
            Ok((fd, peer)) => Ok(Some(match self {
                Listener::Tcp(_) => {
                    let peer = peer.as_ref().and_then(inet_addr);
                    let peer = peer.ok_or_else(|| io::Error::other("accept gave no IP peer address"))?;
                    (Stream::Tcp(TcpStream::from(fd)), Peer::Tcp(peer))
                }
                Listener::Unix(..) => (Stream::Unix(UnixStream::from(fd)), Peer::Unix),
            })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The local address as the access log and environ show it, and the port (0 for unix).
    pub fn local(&self) -> (String, u16) {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => (a.ip().to_string(), a.port()),
                Err(_) => (String::new(), 0),
            },
            Listener::Unix(_, path, _) => (path.display().to_string(), 0),
        }
    }

    /// `http://127.0.0.1:8000` or `unix:/run/app.sock`, for the "Listening at" line.
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("http://{a}"),
                Err(e) => format!("http://?({e})"),
            },
            Listener::Unix(_, path, _) => format!("unix:{}", path.display()),
        }
    }

    /// Whether this socket already listens where `wanted` asks: the same IP and port (any port for port
    /// 0), the same socket file (by name, or by inode for another spelling of its path), or the same
    /// descriptor.
    pub fn serves(&self, wanted: &Endpoint) -> bool {
        match (self, wanted) {
            (_, Endpoint::Fd(fd)) => self.as_fd().as_raw_fd() == *fd,
            (Listener::Tcp(l), Endpoint::Tcp(want)) => l
                .local_addr()
                .is_ok_and(|have| have.ip() == want.ip() && (want.port() == 0 || have.port() == want.port())),
            (Listener::Unix(_, path, _), Endpoint::Unix(want)) => path == want || same_file(path, want),
            _ => false,
        }
    }

    /// The socket file of a unix listener this process bound (not of an inherited one).
    pub fn socket_file(&self) -> Option<&Path> {
        match self {
            Listener::Unix(_, path, SocketFile::Bound) => Some(path),
            _ => None,
        }
    }

    /// Removes the socket file of a unix listener this process bound; called by the master when it
    /// stops listening there (a reload that drops the address, its final exit).
    pub fn remove_file(&self) {
        if let Some(path) = self.socket_file() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, ..) => l.as_fd(),
        }
    }
}

/// Whether an accept failed for lack of descriptors or memory: the connection stays queued, and the
/// caller should back off rather than spin on a listener that stays ready.
pub fn out_of_resources(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// accept(2) that hands the connection over already non-blocking and close-on-exec (`accept4` flags),
/// and, over TCP, with TCP_NODELAY inherited from the listener: two system calls per connection fewer
/// than setting both afterwards. Returns the descriptor and the peer's address.
fn accept_nonblocking(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, Option<SockaddrStorage>)> {
    // SAFETY: `sockaddr_storage` is plain data, for which all zeroes is a valid value.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `addr` and `len` are valid for writes and `len` holds `addr`'s size; the result is checked.
    let fd = unsafe { libc::accept4(listener.as_raw_fd(), (&raw mut addr).cast(), &mut len, flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the kernel wrote a socket address of `len` bytes (at most the storage's size) into `addr`.
    let peer = unsafe { SockaddrStorage::from_raw((&raw const addr).cast(), Some(len)) };
    Ok((fd, peer))
}

/// An IPv4 or IPv6 socket address as std's type.
fn inet_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    let v4 = addr.as_sockaddr_in().map(|a| SocketAddr::from(std::net::SocketAddrV4::from(*a)));
    v4.or_else(|| addr.as_sockaddr_in6().map(|a| SocketAddr::from(std::net::SocketAddrV6::from(*a))))
}

/// How a TCP socket uses SO_REUSEPORT.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReusePort {
    Off,
    /// Set, bound, not listening: the master's placeholder that keeps the port.
    Reserve,
    /// Set, bound and listening: a worker's own socket.
    Listen,
}

/// `HOST:PORT`'s first address, the one it is bound to.
fn resolve(spec: &str) -> io::Result<SocketAddr> {
    spec.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "address did not resolve"))
}

/// Whether two paths name one file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

fn bind_tcp(addr: SocketAddr, backlog: i32, reuse_port: ReusePort) -> io::Result<Listener> {
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let fd = socket::socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        // `[::]:80` should not also claim the IPv4 port: another --bind can take that.
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    if reuse_port != ReusePort::Off {
        socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    // Accepted connections inherit it (see `accept_nonblocking`).
    socket::setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    if reuse_port != ReusePort::Reserve {
        socket::listen(&fd, backlog_of(backlog))?;
    }
    let listener = Listener::Tcp(TcpListener::from(fd));
    listener.set_nonblocking()?;
    Ok(listener)
}

fn bind_unix(path: &Path, backlog: i32) -> io::Result<Listener> {
    // A socket file left by a dead server would make bind fail with EADDRINUSE: replace it, but
    // never delete anything that is not a socket.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let fd = socket::socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    socket::bind(fd.as_raw_fd(), &socket::UnixAddr::new(path)?)?;
    socket::listen(&fd, backlog_of(backlog))?;
    let listener = Listener::Unix(UnixListener::from(fd), path.to_path_buf(), SocketFile::Bound);
    listener.set_nonblocking()?;
    Ok(listener)
}

fn backlog_of(n: i32) -> Backlog {
    Backlog::new(n.clamp(1, i32::MAX)).unwrap_or(Backlog::MAXCONN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bind_forms() {
        assert_eq!("127.0.0.1:8000".parse(), Ok(BindAddr::Tcp("127.0.0.1:8000".into())));
        assert_eq!("[::1]:0".parse(), Ok(BindAddr::Tcp("[::1]:0".into())));
        assert_eq!("unix:/tmp/x.sock".parse(), Ok(BindAddr::Unix("/tmp/x.sock".into())));
        assert_eq!("fd://3".parse(), Ok(BindAddr::Fd(3)));
        assert!("8000".parse::<BindAddr>().is_err());
        assert!("host:port".parse::<BindAddr>().is_err());
        assert!("unix:".parse::<BindAddr>().is_err());
    }

    fn endpoint(s: &str) -> Endpoint {
        s.parse::<BindAddr>().unwrap().endpoint().unwrap()
    }

    #[test]
    fn accepted_connections_come_non_blocking_with_nodelay_and_their_peer() {
        let tcp = Listener::bind(&"127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        assert!(tcp.accept().unwrap().is_none(), "nothing to accept yet");
        let client = std::net::TcpStream::connect(("127.0.0.1", tcp.local().1)).unwrap();
        let (stream, peer) = tcp.accept().unwrap().expect("a connection");
        let Peer::Tcp(peer) = peer else { panic!("a TCP peer, not {peer:?}") };
        assert_eq!(peer, client.local_addr().unwrap());
        assert!(socket::getsockopt(&stream, sockopt::TcpNoDelay).unwrap(), "TCP_NODELAY inherited");
        let flags = nix::fcntl::fcntl(stream.as_fd().as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_ne!(flags & libc::O_NONBLOCK, 0, "non-blocking");
        let fd_flags = nix::fcntl::fcntl(stream.as_fd().as_raw_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "close-on-exec");
    }

    #[test]
    fn a_listener_serves_its_own_address_however_written() {
        let tcp = Listener::bind(&"127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let port = tcp.local().1;
        assert!(tcp.serves(&endpoint(&format!("127.0.0.1:{port}"))));
        assert!(tcp.serves(&endpoint("127.0.0.1:0")), "port 0: any port of that IP");
        assert!(endpoint("127.0.0.1:0").any_port() && !endpoint("127.0.0.1:1").any_port());
        assert!(!tcp.serves(&endpoint(&format!("127.0.0.2:{port}"))));
        assert!(!tcp.serves(&endpoint(&format!("127.0.0.1:{}", port.wrapping_add(1).max(1)))));
        assert!(tcp.serves(&Endpoint::Fd(tcp.as_fd().as_raw_fd())));
        assert!(!tcp.serves(&endpoint("unix:/tmp/x.sock")));

        let dir = std::env::temp_dir().join(format!("rg-serves-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let unix = Listener::bind(&BindAddr::Unix(path.clone()), 16, false).unwrap();
        assert!(unix.serves(&Endpoint::Unix(path.clone())));
        let alias = dir.join("alias");
        let _ = std::fs::remove_file(&alias);
        std::os::unix::fs::symlink(&dir, &alias).unwrap();
        assert!(unix.serves(&Endpoint::Unix(alias.join("s.sock"))), "the same file, spelt otherwise");
        assert!(!unix.serves(&Endpoint::Unix(dir.join("other.sock"))));
        assert!(!unix.serves(&endpoint("127.0.0.1:0")));
        unix.remove_file();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
