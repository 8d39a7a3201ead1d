//! What an app may record of its response through the ABI: the head (`start_response`'s rules) and
//! trailers. Not here: sending them (the exchange, through `http::conn`).

use super::Reply;
use crate::app::HostError;
use crate::app::host::lent_pairs;
use crate::http::parse::RequestHead;
use crate::http::response::ResponseHead;
use rustgun_abi::RgHeader;

/// `start_response`'s rules (ABI): a head may be recorded once, and replaced once (`replace`) until
/// the body starts; an invalid one is refused and leaves no head.
pub(in crate::worker) fn record_head(
    reply: &mut Reply,
    resp: &mut ResponseHead,
    head: &RequestHead,
    (status, reason, headers): (u32, &[u8], &[RgHeader]),
    replace: bool,
) -> Result<(), HostError> {
    match *reply {
        Reply::Streaming => return Err(HostError::State("the body has started")),
        Reply::Recorded { replaced: true } => return Err(HostError::State("the head was replaced once")),
        Reply::Recorded { replaced: false } if !replace => {
            return Err(HostError::State("a head is recorded and this does not replace it"));
        }
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
            Err(HostError::Invalid)
        }
    }
}

/// Body bytes, a file or trailers before `start_response`.
pub(in crate::worker) const NO_HEAD: HostError = HostError::State("no response head is recorded");

/// `trailers`' rules (ABI): once a head is recorded, fields a trailer may carry add to the
/// response's trailers; the connection sends them if the request takes them.
pub(in crate::worker) fn record_trailers(
    reply: &Reply,
    resp: &mut ResponseHead,
    headers: &[RgHeader],
) -> Result<(), HostError> {
    if matches!(reply, Reply::None) {
        return Err(NO_HEAD);
    }
    resp.add_trailers(lent_pairs(headers)).map_err(|_| HostError::Invalid)
}
