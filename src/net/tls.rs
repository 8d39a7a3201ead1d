//! TLS with rustls: loading `--certfile`/`--keyfile`/`--ca-certs` into one shared server
//! configuration (done once, in the master, so a bad file is a start-up error), and [`TlsStream`], the
//! encrypted connection behind [`Stream::Tls`](super::Stream::Tls).
//!
//! A `TlsStream` keeps the non-blocking, deadline-bounded semantics of a plain stream: the handshake
//! is driven by the first reads (so the caller's header deadline bounds it), ciphertext is written
//! without blocking while reading and with `poll` up to the caller's deadline while writing.

use super::stream::{Interrupted, wait_fd};
use nix::poll::PollFlags;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether clients must present a certificate (`--cert-reqs`), with gunicorn's names and numbers:
/// `none` (0, `CERT_NONE`), `optional` (1, `CERT_OPTIONAL`), `required` (2, `CERT_REQUIRED`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertReqs {
    #[default]
    None,
    Optional,
    Required,
}

impl std::str::FromStr for CertReqs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.strip_prefix("cert_").unwrap_or(&lower) {
            "none" | "0" => Ok(CertReqs::None),
            "optional" | "1" => Ok(CertReqs::Optional),
            "required" | "2" => Ok(CertReqs::Required),
            _ => Err(format!("{s:?} is not none (0), optional (1) or required (2)")),
        }
    }
}

impl fmt::Display for CertReqs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertReqs::None => "none",
            CertReqs::Optional => "optional",
            CertReqs::Required => "required",
        })
    }
}

/// The TLS options as given on the command line.
#[derive(Clone, Debug)]
pub struct TlsFiles<'a> {
    /// The server's certificate chain (PEM), leaf first.
    pub certfile: &'a Path,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1); `None` reads it from `certfile`.
    pub keyfile: Option<&'a Path>,
    /// CA certificates (PEM) that client certificates must chain to.
    pub ca_certs: Option<&'a Path>,
    pub cert_reqs: CertReqs,
    /// HTTP/2 by ALPN (`--http-protocols` with h2): `Some(true)` when it is preferred to HTTP/1.1.
    pub h2: Option<bool>,
}

/// Why the TLS configuration could not be built; the message names the file at fault.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("cannot read {what} {}: {e}", path.display())))
}

fn read_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("cannot parse {what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{what} {} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

/// Reads the certificate, key and client CA files and builds the configuration every connection of
/// every worker shares: TLS 1.2 and 1.3 with rustls' `ring` provider, ALPN `http/1.1` (or
/// `http/1.0`), and client certificates verified against `ca_certs` when `cert_reqs` asks for them.
pub fn load(files: &TlsFiles<'_>) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certs("TLS certificate file", files.certfile)?;
    let keyfile = files.keyfile.unwrap_or(files.certfile);
    let key_pem = read_file("TLS key file", keyfile)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let e = match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key found".to_string(),
            e => e.to_string(),
        };
        TlsError(format!("cannot parse TLS key file {}: {e}", keyfile.display()))
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("cannot set up TLS: {e}")))?;
    let builder = match files.cert_reqs {
        CertReqs::None => builder.with_no_client_auth(),
        reqs => {
            let Some(ca_path) = files.ca_certs else {
                return Err(TlsError(format!(
                    "--cert-reqs {reqs} needs --ca-certs: the CA certificates client certificates are checked against"
                )));
            };
            let mut roots = RootCertStore::empty();
            for cert in read_certs("CA certificates file", ca_path)? {
                roots.add(cert).map_err(|e| {
                    TlsError(format!("bad certificate in CA certificates file {}: {e}", ca_path.display()))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier =
                if reqs == CertReqs::Optional { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| {
                TlsError(format!("cannot use CA certificates file {}: {e}", ca_path.display()))
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "cannot use TLS certificate file {} with key file {}: {e}",
            files.certfile.display(),
            keyfile.display()
        ))
    })?;
    // A client offering only other protocols is refused in the handshake; `curl --http1.0` offers
    // http/1.0 alone. The first of ours the client offers is chosen.
    let h1 = [b"http/1.1".to_vec(), b"http/1.0".to_vec()];
    config.alpn_protocols = match files.h2 {
        None => h1.to_vec(),
        Some(true) => std::iter::once(b"h2".to_vec()).chain(h1).collect(),
        Some(false) => h1.into_iter().chain(std::iter::once(b"h2".to_vec())).collect(),
    };
    Ok(Arc::new(config))
}

/// The socket under a TLS connection.
enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write_vectored(bufs),
            Socket::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }
}

/// How long closing waits for the last TLS records (the close_notify alert) to leave.
const CLOSE_FLUSH: Duration = Duration::from_millis(200);

/// A server-side TLS connection over a non-blocking socket.
pub struct TlsStream {
    conn: ServerConnection,
    sock: Socket,
    /// The socket reached EOF.
    eof: bool,
    /// A TLS error ended the connection: nothing more is sent, not even close_notify.
    failed: bool,
    /// close_notify is queued.
    closing: bool,
    /// Bytes [`try_write`](TlsStream::try_write) encrypted but has not yet reported taken.
    held: usize,
    /// Decrypted bytes waiting inside rustls: readable now, whatever the socket says.
    buffered: usize,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("fd", &self.sock.as_fd())
            .field("handshaking", &self.conn.is_handshaking())
            .field("eof", &self.eof)
            .field("failed", &self.failed)
            .finish()
    }
}

impl TlsStream {
    pub(super) fn new_tcp(config: &Arc<ServerConfig>, sock: TcpStream) -> io::Result<TlsStream> {
        Self::new(config, Socket::Tcp(sock))
    }

    pub(super) fn new_unix(config: &Arc<ServerConfig>, sock: UnixStream) -> io::Result<TlsStream> {
        Self::new(config, Socket::Unix(sock))
    }

    fn new(config: &Arc<ServerConfig>, sock: Socket) -> io::Result<TlsStream> {
        let conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        Ok(TlsStream { conn, sock, eof: false, failed: false, closing: false, held: 0, buffered: 0 })
    }

    /// Whether decrypted input is waiting inside the stream (a read smaller than a TLS record leaves
    /// the rest there): the socket will not signal it, so read before waiting.
    pub(super) fn has_buffered_input(&self) -> bool {
        self.buffered > 0
    }

    /// The protocol ALPN chose (`h2`, `http/1.1`), once the handshake has.
    pub(super) fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the handshake failed (a protocol error or an alert, not a client that just left).
    pub(super) fn handshake_failed(&self) -> bool {
        self.failed && self.conn.is_handshaking()
    }

    /// The poll events to wait for when the caller wants `events`: ciphertext still queued for the
    /// socket (a handshake flight, an alert) needs it writable as well.
    pub(super) fn interest(&self, events: PollFlags) -> PollFlags {
        if self.conn.wants_write() && !self.failed { events | PollFlags::POLLOUT } else { events }
    }

    /// Plaintext available now: `Ok(None)` when none is and the socket would block, `Ok(Some(0))` at
    /// the end of the stream. Drives the handshake and sends whatever rustls queued, without waiting.
    pub(super) fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.failed {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "TLS connection failed"));
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => {
                    self.buffered = self.buffered.saturating_sub(n);
                    return Ok(Some(n));
                }
                // The peer closed the socket without close_notify: an ordinary end for HTTP, which
                // frames its own messages.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(0)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            self.send_queued()?;
            if self.eof {
                return Ok(Some(0));
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
                Err(e) => return Err(e),
            }
            match self.conn.process_new_packets() {
                Ok(state) => self.buffered = state.plaintext_bytes_to_read(),
                Err(e) => {
                    // rustls queued an alert telling the peer why; send it if the socket takes it now.
                    let _ = self.send_queued();
                    self.failed = true;
                    let stage = if self.conn.is_handshaking() { "handshake" } else { "connection" };
                    tracing::debug!("TLS {stage} with {} failed: {e}", self.peer());
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        }
    }

    /// Encrypts what rustls takes of `data` and sends what the socket takes now; `Ok(None)` while
    /// earlier ciphertext is still waiting for the socket. When the whole of `data` was taken but its
    /// ciphertext could not all leave, one byte is held back from the count and reported by the next
    /// call once the socket drained (the caller retries with the unsent rest, as with OpenSSL).
    pub(super) fn try_write(&mut self, data: &[u8]) -> io::Result<Option<usize>> {
        if self.failed || self.conn.is_handshaking() {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "TLS handshake not complete"));
        }
        if !self.try_flush()? {
            return Ok(None);
        }
        if self.held > 0 {
            let n = self.held.min(data.len());
            self.held -= n;
            return Ok(Some(n));
        }
        if data.is_empty() {
            return Ok(Some(0));
        }
        let n = self.conn.writer().write(data)?;
        self.send_queued()?;
        if n == data.len() && self.conn.wants_write() {
            self.held = 1;
            return Ok(if n > 1 { Some(n - 1) } else { None });
        }
        Ok(if n > 0 { Some(n) } else { None })
    }

    /// Sends queued ciphertext as far as the socket takes it now; `Ok(true)` when none is left.
    pub(super) fn try_flush(&mut self) -> io::Result<bool> {
        self.send_queued()?;
        Ok(!self.conn.wants_write())
    }

    /// Queues close_notify, sends it (briefly waiting if need be) and half-closes the socket.
    pub(super) fn shutdown_write(&mut self) {
        if !self.failed && !self.closing {
            self.closing = true;
            self.conn.send_close_notify();
            let _ = self.send_until(Instant::now() + CLOSE_FLUSH);
        }
        let _ = match &self.sock {
            Socket::Tcp(s) => s.shutdown(Shutdown::Write),
            Socket::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Sends queued ciphertext until the socket would block.
    fn send_queued(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends all queued ciphertext, waiting for the socket to drain until `deadline`.
    fn send_until(&mut self, deadline: Instant) -> io::Result<()> {
        loop {
            self.send_queued()?;
            if !self.conn.wants_write() {
                return Ok(());
            }
            wait_fd(self.sock.as_fd(), PollFlags::POLLOUT, deadline, None)
                .map_err(|_: Interrupted| io::Error::from(io::ErrorKind::TimedOut))?;
        }
    }

    fn peer(&self) -> String {
        match &self.sock {
            Socket::Tcp(s) => s.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string()),
            Socket::Unix(_) => "unix socket".to_string(),
        }
    }
}

impl AsFd for TlsStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Drop for TlsStream {
    /// A connection closed without [`shutdown_write`](TlsStream::shutdown_write) (idle keep-alive,
    /// worker exit) still says close_notify if the socket takes it at once.
    fn drop(&mut self) {
        if !self.failed && !self.closing && !self.eof && !self.conn.is_handshaking() {
            self.conn.send_close_notify();
            let _ = self.send_queued();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_reqs_take_names_and_numbers() {
        for (s, want) in [
            ("none", CertReqs::None),
            ("0", CertReqs::None),
            ("CERT_NONE", CertReqs::None),
            ("optional", CertReqs::Optional),
            ("1", CertReqs::Optional),
            ("cert_optional", CertReqs::Optional),
            ("Required", CertReqs::Required),
            ("2", CertReqs::Required),
            ("CERT_REQUIRED", CertReqs::Required),
        ] {
            assert_eq!(s.parse::<CertReqs>(), Ok(want), "{s}");
        }
        assert!("3".parse::<CertReqs>().is_err());
        assert!("yes".parse::<CertReqs>().is_err());
    }

    #[test]
    fn missing_files_are_named() {
        let files = TlsFiles {
            certfile: Path::new("/nonexistent/cert.pem"),
            keyfile: None,
            ca_certs: None,
            cert_reqs: CertReqs::None,
            h2: None,
        };
        let e = load(&files).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    }
}
