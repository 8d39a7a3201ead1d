//! What an app may record of its response through the ABI: the head (`start_response`'s rules) and
//! trailers. Not here: sending them (the exchange, through `http::conn`).

use super::Reply;
use crate::app::host::lent_pairs;
use crate::http::parse::RequestHead;
use crate::http::response::ResponseHead;
use rustgun_abi::{RG_E_INVALID, RG_E_STATE, RgHeader};

/// `start_response`'s rules (ABI): a head may be recorded once, and replaced once (`replace`) until
/// the body starts; an invalid one is refused and leaves no head.
pub(super) fn record_head(
    reply: &mut Reply,
    resp: &mut ResponseHead,
    head: &RequestHead,
    (status, reason, headers): (u32, &[u8], &[RgHeader]),
    replace: bool,
) -> Result<(), i32> {
    match *reply {
        Reply::Streaming => return Err(RG_E_STATE),
        Reply::Recorded { replaced: true } => return Err(RG_E_STATE),
        Reply::Recorded { replaced: false } if !replace => return Err(RG_E_STATE),
        Reply::Recorded { .. } | Reply::None => {}
    }
    let replaced = matches!(reply, Reply::Recorded { .. });
    match resp.set(status, reason, lent_pairs(headers)) {
        Ok(()) => {
            *reply = Reply::Recorded { replaced };
            Ok(())
        }
        Err(e) => {
            tracing::error!(
                "app gave an invalid response head for {} {}: {e}; answering 500",
                String::from_utf8_lossy(head.method()),
                String::from_utf8_lossy(head.target())
            );
            *reply = Reply::None;
            Err(RG_E_INVALID)
        }
    }
}

/// `trailers`' rules (ABI): once a head is recorded, fields a trailer may carry add to the
/// response's trailers; the connection sends them if the request takes them.
pub(super) fn record_trailers(
    reply: &Reply,
    resp: &mut ResponseHead,
    headers: &[RgHeader],
) -> Result<(), i32> {
    if matches!(reply, Reply::None) {
        return Err(RG_E_STATE);
    }
    resp.add_trailers(lent_pairs(headers)).map_err(|_| RG_E_INVALID)
}
