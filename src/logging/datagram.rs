//! The datagram socket StatsD and syslog output share the shape of: UDP to `HOST:PORT`, or a unix
//! datagram socket at a path; connected once, non-blocking, and a datagram that cannot leave at once
//! is dropped, so that output never holds up the process that logs.

use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;

/// A connected, non-blocking datagram socket.
pub(super) enum Datagram {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Datagram {
    /// UDP to `host` (`HOST:PORT`, resolved once; the socket's family follows the address).
    pub(super) fn udp(host: &str) -> std::io::Result<Datagram> {
        let addr = host.to_socket_addrs()?.next().ok_or(std::io::ErrorKind::NotFound)?;
        let sock = UdpSocket::bind(if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" })?;
        sock.connect(addr)?;
        sock.set_nonblocking(true)?;
        Ok(Datagram::Udp(sock))
    }

    /// The unix datagram socket at `path`.
    pub(super) fn unix(path: &str) -> std::io::Result<Datagram> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(path)?;
        sock.set_nonblocking(true)?;
        Ok(Datagram::Unix(sock))
    }

    /// Sends `packet` if it can leave now; else it is lost.
    pub(super) fn send(&self, packet: &[u8]) {
        let _ = match self {
            Datagram::Udp(sock) => sock.send(packet),
            Datagram::Unix(sock) => sock.send(packet),
        };
    }
}
