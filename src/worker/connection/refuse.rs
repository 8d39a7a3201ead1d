//! Refusing a request the protocol layer rejected: the status with `Connection: close`, the warning
//! line, the access log's record and the scoreboard's count.

use super::{Shared, unix_now};
use crate::app::ConnInfo;
use crate::http;
use crate::http::Error as HttpError;
use crate::worker::Context;
use std::time::Instant;

/// Where a refusal is written: the connection's protocol state and its output buffer.
pub(in crate::worker) type Answer<'a> = (&'a mut http::conn::Conn, &'a mut Vec<u8>);

/// Answers a request refused by the protocol layer (the connection closes afterwards).
pub(in crate::worker) fn refuse(
    (proto, out): Answer<'_>,
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'_>,
    e: HttpError,
    started: Instant,
) {
    refuse_status((proto, out), shared, info, ctx, e.status(), &e.detail, started);
}

/// Answers `status` with `Connection: close`, logging why (the connection closes afterwards).
pub(in crate::worker) fn refuse_status(
    (proto, out): Answer<'_>,
    shared: &mut Shared,
    info: &ConnInfo,
    ctx: &Context<'_>,
    status: u16,
    why: &dyn std::fmt::Display,
    started: Instant,
) {
    proto.refuse(status, shared.date.get(unix_now()), out);
    record_refusal(info, ctx, shared.lane, (status, why), started);
}

/// The record of a request refused with `status` for `why`, whatever the HTTP version: the warning
/// line, the access log's line and the scoreboard's count on `lane`.
pub(in crate::worker) fn record_refusal(
    info: &ConnInfo,
    ctx: &Context<'_>,
    lane: usize,
    (status, why): (u16, &dyn std::fmt::Display),
    started: Instant,
) {
    tracing::warn!("Invalid request from ip={}: {why} ({status})", info.peer_or_unix());
    if let Some(log) = ctx.access_log {
        log.write_refused(info, status, started);
    }
    if let Some(lane) = ctx.lane(lane) {
        lane.end(status, started.elapsed().as_micros() as u64);
    }
}
