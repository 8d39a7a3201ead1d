//! Running the requests a connection has buffered, and gathering a body before the app runs on the
//! loop.

use crate::http::parse::parse_head;
use crate::http::response::CONTINUE_100;
use crate::worker::Context;
use crate::worker::connection::{self, After, Io, Shared};
use crate::worker::gather::Gather;
use std::io;
use std::time::Instant;

use super::{Conn, Phase};

/// Runs the complete requests in a connection's read buffer; returns the phase that writes what they
/// left queued ([`Phase::Writing`] with what the connection does next, or [`Phase::Streaming`] when a
/// pull-mode body was parked in `conn.parked`), or `None` when no complete head is buffered and
/// nothing was produced. Runs on the loop with `queued` output, or on a pool thread (with the
/// connection handed over) waiting on the client as the blocking classes do.
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
        let parsed = parse_head(conn.rbuf.data(), &settings.limits, shared.head_mut());
        if let Ok(Some(n)) = parsed
            && queued
        {
            match gathered(conn, shared, n, ctx) {
                Ok(true) => {}
                // Whatever earlier requests or a 100 Continue left queued goes first.
                Ok(false) if ran || !conn.out.is_empty() => return Some(Phase::Writing(After::KeepAlive)),
                Ok(false) => return Some(Phase::Body),
                Err(e) => {
                    let mut io = Io::new(&mut conn.stream, &mut conn.rbuf, &mut conn.out, settings);
                    let why = format!("cannot spool its body: {e}");
                    connection::refuse_status(&mut io, shared, &conn.info, ctx, 500, &why, started);
                    conn.linger = true;
                    return Some(Phase::Writing(After::Close));
                }
            }
        }
        let mut io = Io::new(&mut conn.stream, &mut conn.rbuf, &mut conn.out, settings);
        if queued {
            io = io.queued();
        }
        match parsed {
            Ok(None) => return ran.then_some(Phase::Writing(After::KeepAlive)),
            Err(e) => {
                connection::refuse(&mut io, shared, &conn.info, ctx, e, started);
                conn.linger = true;
                return Some(Phase::Writing(After::Close));
            }
            Ok(Some(n)) => {
                if let Some(gather) = conn.gather.take() {
                    let continued = gather.continued;
                    io.gathered(gather.into_spool(), continued);
                }
                io.consume_input(n);
                let exchanged = connection::exchange(&mut io, shared, &conn.info, ctx, started);
                ran = true;
                if io.is_dead() {
                    // The client is gone or unwritable: nothing buffered for it may go out.
                    conn.out.clear();
                    return Some(Phase::Writing(After::Close));
                }
                let after = match exchanged {
                    Ok(after) => after,
                    Err(parked) => {
                        conn.parked = Some(parked);
                        return Some(Phase::Streaming);
                    }
                };
                if after == After::Close {
                    conn.linger = io.body_pending();
                    return Some(Phase::Writing(After::Close));
                }
                if !conn.out.is_empty() || conn.rbuf.is_empty() {
                    return Some(Phase::Writing(After::KeepAlive));
                }
            }
        }
    }
}

/// Whether the body of the request whose head (`head_len` bytes) starts the read buffer is all here,
/// gathering what arrived so far ([`Gather`]): an app on the loop is called only then, so it never
/// waits for its client. The first time, a client that asked for `100 Continue` is told to go on (it
/// waits for that before it sends the body). An error is a spool that could not be written.
fn gathered(conn: &mut Conn, shared: &mut Shared, head_len: usize, ctx: &Context<'_>) -> io::Result<bool> {
    let settings = ctx.settings;
    if conn.gather.is_none() {
        let head = shared.head_mut();
        conn.gather = Gather::new(head.framing, settings.limit_request_body);
        if let Some(gather) = conn.gather.as_mut()
            && head.expect_continue
        {
            gather.continued = true;
            conn.out.extend_from_slice(CONTINUE_100);
        }
    }
    let Some(gather) = conn.gather.as_mut() else { return Ok(true) };
    let done = gather.absorb(&mut conn.rbuf, head_len, settings.client_body_buffer);
    if done.is_err() {
        conn.gather = None;
    }
    done
}
