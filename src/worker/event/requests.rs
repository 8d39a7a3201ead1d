//! Running the requests a connection has buffered, and gathering a body before the app runs on the
//! loop.

use crate::http::conn::After;
use crate::worker::Context;
use crate::worker::connection::{self, Exchanged, Io, Shared};
use crate::worker::gather::Gather;
use std::time::Instant;

use super::{Conn, Phase};

/// Runs the complete requests in a connection's read buffer; returns the phase that writes what they
/// left queued ([`Phase::Writing`] with what the connection does next, or [`Phase::Streaming`] when a
/// pull-mode body was parked in `conn.parked`), [`Phase::Upgraded`] when the app accepted a WebSocket
/// (its link in `shared.upgraded`), [`Phase::Pending`] when an async app goes on with the response
/// after `handle` (in `shared.pending`), [`Phase::Http2`] when the request asks to go on as HTTP/2
/// and may (`Upgrade: h2c`, its head in `shared.head`), [`Phase::Body`] while a body is being gathered, or
/// `None` when no complete head is buffered and nothing was produced. Runs on the loop with `queued`
/// output, or on a pool thread (with the connection handed over) waiting on the client as the
/// blocking classes do.
pub(super) fn run_requests(
    conn: &mut Conn,
    shared: &mut Shared,
    ctx: &Context<'_>,
    queued: bool,
) -> Option<Phase> {
    let settings = ctx.settings;
    let mut ran = false;
    loop {
        let started = Instant::now();
        if conn.gather.is_none() {
            // A head the loop parsed before handing the connection to this pool thread is taken as is.
            let received = match conn.handoff.receive(shared) {
                Some(len) => conn
                    .proto
                    .receive_parsed_head(&shared.head, settings.limit_request_body)
                    .map(|()| Some(len)),
                None => conn.proto.receive_head(
                    conn.rbuf.data(),
                    &settings.limits,
                    settings.limit_request_body,
                    &mut shared.head,
                ),
            };
            match received {
                Ok(None) => return ran.then_some(Phase::Writing(After::KeepAlive)),
                Err(e) => {
                    connection::refuse((&mut conn.proto, &mut conn.out), shared, &conn.info, ctx, e, started);
                    return Some(Phase::Writing(conn.proto.after(true)));
                }
                Ok(Some(n)) => {
                    conn.rbuf.consume(n);
                    if queued && may_upgrade_h2(conn, shared, ctx) {
                        return Some(Phase::Http2);
                    }
                    // The app on the loop runs once its body is here: gather it first, the head with it.
                    // An async app reads its body as it comes, never waiting on the loop for it.
                    let (framing, limit) = (shared.head.framing, settings.limit_request_body);
                    if queued
                        && !ctx.app.lib.is_async()
                        && !conn.proto.body_done()
                        && let Some(mut gather) = Gather::new(framing, limit, shared.lend_head())
                    {
                        std::mem::swap(&mut gather.head, &mut shared.head);
                        conn.gather = Some(gather);
                        conn.proto.send_continue(&mut conn.out);
                    }
                }
            }
        }
        if let Some(gather) = conn.gather.as_mut() {
            match gather.absorb(&mut conn.rbuf, settings.client_body_buffer) {
                // Whatever earlier requests or a 100 Continue left queued goes first.
                Ok(false) if ran || !conn.out.is_empty() => return Some(Phase::Writing(After::KeepAlive)),
                Ok(false) => return Some(Phase::Body),
                Ok(true) => {}
                Err(e) => {
                    conn.gather = None;
                    let why = format!("cannot spool its body: {e}");
                    let answer = (&mut conn.proto, &mut conn.out);
                    connection::refuse_status(answer, shared, &conn.info, ctx, 500, &why, started);
                    return Some(Phase::Writing(conn.proto.after(true)));
                }
            }
        }
        let mut io = Io::new(&mut conn.stream, &mut conn.rbuf, &mut conn.out, settings);
        if queued {
            io = io.queued();
        }
        if let Some(mut gather) = conn.gather.take() {
            std::mem::swap(&mut gather.head, &mut shared.head);
            let (spool, spare) = gather.into_parts();
            shared.take_back_head(spare);
            io.gathered(spool);
        }
        let exchanged = connection::exchange(&mut io, &mut conn.proto, shared, &conn.info, ctx, started);
        ran = true;
        if io.is_dead() {
            // The client is gone or unwritable: nothing buffered for it may go out.
            conn.out.clear();
            return Some(Phase::Writing(After::Close));
        }
        match exchanged {
            Exchanged::Parked(parked) => {
                conn.parked = Some(parked);
                return Some(Phase::Streaming);
            }
            Exchanged::Upgraded(link) => {
                shared.upgraded = Some(link);
                return Some(Phase::Upgraded);
            }
            Exchanged::Pending(pending) => {
                shared.pending = Some(pending);
                return Some(Phase::Pending);
            }
            Exchanged::Done(After::KeepAlive) if conn.out.is_empty() && !conn.rbuf.is_empty() => {}
            Exchanged::Done(after) => return Some(Phase::Writing(after)),
        }
    }
}

/// Whether the request just received asks to go on as HTTP/2 and may: `--http2-cleartext upgrade`
/// (or `both`), a cleartext connection from a trusted peer, and a well-formed `Upgrade: h2c`.
fn may_upgrade_h2(conn: &Conn, shared: &Shared, ctx: &Context<'_>) -> bool {
    let settings = ctx.settings;
    settings.http2.is_some_and(|h2| h2.upgrade)
        && !conn.stream.is_tls()
        && settings.forwarded_allow_ips.trusts(conn.info.peer_ip)
        && crate::http::upgrade::h2c_settings(&shared.head).is_some()
}
