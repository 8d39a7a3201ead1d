//! What the other end of a loopback TCP connection has not read yet, from the kernel
//! (`NETLINK_SOCK_DIAG`): the conformance runner writes a row's next piece only once the server has
//! read the ones before.

use crate::procs::poll_for;
use crate::support::WAIT;
use std::net::{SocketAddr, TcpStream};

/// What the other end of a loopback TCP connection has received but not yet read: its socket's
/// receive queue, which the kernel tells through `NETLINK_SOCK_DIAG` (as for `ss`). A client waits
/// on it to know that the server has read what was sent so far, so that what it sends next reaches
/// the server in a read of its own.
pub struct PeerQueue {
    diag: std::os::fd::OwnedFd,
    /// `SOCK_DIAG_BY_FAMILY` for the peer's socket, named by its address and ours.
    request: Vec<u8>,
    port: u16,
}

impl PeerQueue {
    /// The queue of `stream`'s peer; both ends must be IPv4 on this host.
    pub fn of(stream: &TcpStream) -> PeerQueue {
        use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
        let (Ok(SocketAddr::V4(ours)), Ok(SocketAddr::V4(peer))) = (stream.local_addr(), stream.peer_addr())
        else {
            panic!("PeerQueue needs an IPv4 connection");
        };
        let diag = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )
        .expect("a NETLINK_SOCK_DIAG socket");
        let mut request = Vec::with_capacity(72);
        // struct nlmsghdr: length, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, sequence, port id.
        request.extend(72u32.to_ne_bytes());
        request.extend(20u16.to_ne_bytes());
        request.extend(1u16.to_ne_bytes());
        request.extend([0; 8]);
        // struct inet_diag_req_v2: AF_INET, IPPROTO_TCP, no extensions, padding, any state.
        request.extend([libc::AF_INET as u8, libc::IPPROTO_TCP as u8, 0, 0]);
        request.extend(u32::MAX.to_ne_bytes());
        // struct inet_diag_sockid of the peer's socket: its port and ours (big-endian), its address and
        // ours (16 bytes each), any interface, INET_DIAG_NOCOOKIE.
        request.extend(peer.port().to_be_bytes());
        request.extend(ours.port().to_be_bytes());
        request.extend(peer.ip().octets());
        request.extend([0; 12]);
        request.extend(ours.ip().octets());
        request.extend([0; 12]);
        request.extend([0; 4]);
        request.extend([0xff; 8]);
        PeerQueue { diag, request, port: ours.port() }
    }

    /// Bytes the peer has received and not read; `None` once its socket is gone.
    pub fn unread(&self) -> Option<u32> {
        use nix::sys::socket::{MsgFlags, recv, send};
        use std::os::fd::AsRawFd;
        let fd = self.diag.as_raw_fd();
        send(fd, &self.request, MsgFlags::empty()).expect("ask NETLINK_SOCK_DIAG");
        let mut reply = [0u8; 1024];
        let n = recv(fd, &mut reply, MsgFlags::empty()).expect("NETLINK_SOCK_DIAG's answer");
        // An NLMSG_ERROR (ENOENT) instead of SOCK_DIAG_BY_FAMILY: no such socket.
        if n < 16 + 72 || u16::from_ne_bytes([reply[4], reply[5]]) != 20 {
            return None;
        }
        // struct inet_diag_msg: family, state, timer, retransmits, the socket's id (its port, then its
        // peer's), expires, rqueue. Once the socket is gone, the kernel may answer for the listener.
        let msg = &reply[16..n];
        if u16::from_be_bytes([msg[6], msg[7]]) != self.port {
            return None;
        }
        Some(u32::from_ne_bytes([msg[56], msg[57], msg[58], msg[59]]))
    }

    /// Waits until the peer has read every byte sent so far, or is gone, or [`WAIT`] has passed (the
    /// reader of the answer then judges): nothing announces that a peer has read, so the kernel's
    /// counter is polled ([`poll_for`]).
    pub fn wait_until_read(&self) {
        let _ = poll_for(WAIT, || self.unread().is_none_or(|n| n == 0).then_some(()));
    }
}
