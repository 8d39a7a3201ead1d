//! The blocking driver of the sync and threads classes: serve one connection until it ends, waiting
//! on the client with deadlines; and the PROXY protocol header both drivers read first.

use super::{Buffers, Exchanged, Io, ReadStop, Shared, exchange, refuse, refuse_status};
use crate::app::ConnInfo;
use crate::http::conn::{After, Conn, Expiry};
use crate::net::Stream;
use crate::sys::scoreboard::{Lane, Refusal};
use crate::worker::Context;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// How long an idle keep-alive connection stays open once the worker is told to stop. Its client cannot
/// know yet and may be sending its next request at this very moment: a request that arrives in this
/// window is answered (with `Connection: close`) instead of being reset unread, so clients that keep
/// their connections busy never have to resend (RFC 9112 §9.3.1) during a reload or an upgrade.
pub(in crate::worker) const STOP_GRACE: Duration = Duration::from_secs(1);

/// What the start of a `--proxy-protocol` connection has shown so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::worker) enum ProxyStart {
    /// More bytes are needed.
    Incomplete,
    /// The header was taken: `info` now names the client it carried.
    Adopted,
    /// The sender is not allowed (403) or the header is malformed (400): the answer is in the output.
    Refused,
}

/// Takes the PROXY protocol header from the buffered bytes. A sender outside `--proxy-allow-ips` is
/// refused before anything is read.
pub(in crate::worker) fn take_proxy_header(
    (io, proto): (&mut Io<'_>, &mut Conn),
    shared: &mut Shared,
    info: &mut ConnInfo,
    ctx: &Context<'_>,
    started: Instant,
) -> ProxyStart {
    use crate::http::proxy::{Parsed, parse};
    if !ctx.settings.proxy_allow_ips.trusts(info.peer_ip) {
        let why = "PROXY protocol from a peer not in --proxy-allow-ips";
        ctx.count_refused(io.beat, Refusal::Proxy);
        refuse_status((proto, io.out), shared, info, ctx, 403, &why, started);
        return ProxyStart::Refused;
    }
    match parse(io.rbuf.data()) {
        Ok(Parsed::Header { header, consumed }) => {
            io.rbuf.consume(consumed);
            info.adopt_proxy_header(&header);
            ProxyStart::Adopted
        }
        Ok(Parsed::Incomplete) => ProxyStart::Incomplete,
        Err(e) => {
            ctx.count_refused(io.beat, Refusal::Proxy);
            refuse_status((proto, io.out), shared, info, ctx, e.status(), &e, started);
            ProxyStart::Refused
        }
    }
}

/// Reads the PROXY header, waiting up to `--header-timeout`; false when the connection must close
/// (refused, or the peer left or stalled: no response then).
fn read_proxy_header(
    (io, proto): (&mut Io<'_>, &mut Conn),
    shared: &mut Shared,
    info: &mut ConnInfo,
    ctx: &Context<'_>,
) -> bool {
    let started = Instant::now();
    let deadline = started + ctx.settings.header_timeout;
    loop {
        match take_proxy_header((io, proto), shared, info, ctx, started) {
            ProxyStart::Adopted => return true,
            ProxyStart::Refused => return false,
            ProxyStart::Incomplete => {
                if io.fill(deadline, None).is_err() {
                    io.rbuf.clear();
                    return false;
                }
            }
        }
    }
}

/// Serves requests on `stream` until the connection ends, waiting (with deadlines) whenever the client
/// is slow: the loop of the `sync` and `threads` classes. Returns how many requests it served.
pub fn serve(mut stream: Stream, bufs: &mut Buffers, ctx: &Context<'_>) -> u64 {
    let lane = ctx.lane(bufs.shared.lane);
    let served = serve_stream(&mut stream, bufs, ctx, lane);
    if stream.handshake_failed() {
        ctx.count_refused(lane, Refusal::Tls);
    }
    served
}

fn serve_stream(stream: &mut Stream, bufs: &mut Buffers, ctx: &Context<'_>, lane: Option<&Lane>) -> u64 {
    let Buffers { rbuf, out, shared, info } = bufs;
    let settings = ctx.settings;
    let mut io = Io::new(stream, rbuf, out, settings);
    io.beat = lane;
    let mut proto = Conn::default();
    if settings.proxy_protocol && !read_proxy_header((&mut io, &mut proto), shared, info, ctx) {
        io.close(true);
        return 0;
    }
    let mut served = 0u64;
    loop {
        let mut head_deadline = Instant::now() + settings.header_timeout;
        if served > 0 && io.rbuf.is_empty() {
            // Idle keep-alive: wait for the next request's first byte (or shutdown) quietly.
            let idle = Instant::now() + settings.keep_alive;
            let waited = match io.fill(idle, Some(ctx.stop_fd.as_fd())) {
                Err(ReadStop::Stopping) => {
                    ctx.log_stopping();
                    io.fill(idle.min(Instant::now() + STOP_GRACE), None)
                }
                waited => waited,
            };
            match waited {
                Ok(_) => head_deadline = Instant::now() + settings.header_timeout,
                Err(_) => {
                    io.close(false);
                    return served;
                }
            }
        }
        let started = Instant::now();
        let body_limit = settings.limit_request_body;
        let parsed = loop {
            match proto.receive_head(io.rbuf.data(), &settings.limits, body_limit, &mut shared.head) {
                Ok(Some(n)) => {
                    io.rbuf.consume(n);
                    break Ok(());
                }
                Ok(None) => match io.fill(head_deadline, None) {
                    Ok(_) => {}
                    // What a late client gets is the connection's to say: 408 for part of a head, a
                    // quiet close for nothing at all (a browser's preconnect, say).
                    Err(ReadStop::TimedOut) => match proto.expire(!io.rbuf.is_empty()) {
                        Expiry::Refuse(e) => break Err(e),
                        Expiry::Quiet | Expiry::Drop => {
                            io.rbuf.clear();
                            return served;
                        }
                    },
                    // EOF or failure mid-head: no response, as the client is gone (RFC 9112 §9.6).
                    Err(_) => {
                        io.rbuf.clear();
                        return served;
                    }
                },
                Err(e) => break Err(e),
            }
        };
        let after = match parsed {
            Ok(()) => {
                served += 1;
                match exchange(&mut io, &mut proto, shared, info, ctx, started) {
                    Exchanged::Done(after) => after,
                    // Blocking I/O never parks a body, and only the event loop serves async apps.
                    Exchanged::Parked(_) | Exchanged::Upgraded(_) | Exchanged::Pending(_) => After::Close,
                }
            }
            Err(e) => {
                refuse((&mut proto, io.out), shared, info, ctx, e, started);
                proto.after(!io.rbuf.is_empty())
            }
        };
        match after {
            After::KeepAlive => {}
            // A client that sent everything just gets our FIN; one that may still be sending (a
            // refused request, an unread body) is lingered on first.
            // (`Discard` is the event loop's: a blocking drain waits for the body's end.)
            After::Close | After::Linger | After::Discard => {
                io.close(after != After::Close);
                return served;
            }
        }
    }
}
