//! Arbitrary bytes as what a client sent on one connection, through the connection state machine the
//! workers drive (`http::conn::Conn`, by the socket-less driver [`Replay`]). Besides crashes and hangs, it fails when the
//! bytes give different requests, bodies or statuses fed whole than cut at a point derived from the
//! data, or in small pieces through a small app buffer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rustgun_http::parse::{HeaderMap, Limits};
use rustgun_http::replay::replay_split;

fuzz_target!(|data: &[u8]| {
    // FNV-1a of the input picks the variations, so the fuzzer reaches them by mutating the input.
    let h =
        data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    // Small limits half of the time, so 414/431/413 are reached within short inputs.
    let (limits, body_limit) = if h & 1 == 0 {
        (Limits::default(), 0)
    } else {
        let header_map = if h & 2 == 0 { HeaderMap::Drop } else { HeaderMap::Refuse };
        (Limits { request_line: 48, fields: 4, field_size: 40, head: 160, header_map, ..Limits::default() }, 16)
    };
    let whole = replay_split(data, &[], &limits, body_limit, 64 * 1024);

    let cut = (h >> 8) as usize % (data.len() + 1);
    let split = replay_split(data, &[cut], &limits, body_limit, 64 * 1024);
    assert_eq!(whole, split, "whole versus cut at {cut}");

    let piece = 1 + (h >> 40) as usize % 7;
    let cuts: Vec<usize> = (piece..data.len()).step_by(piece).collect();
    let read_size = 1 + (h >> 48) as usize % 16;
    let pieces = replay_split(data, &cuts, &limits, body_limit, read_size);
    assert_eq!(whole, pieces, "whole versus pieces of {piece}, reads of {read_size}");
});
