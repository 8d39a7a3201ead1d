//! Arbitrary bytes as a chunked request body. Besides crashes and hangs, it fails when decoding the
//! input in one call and one byte at a time disagree: on the body, on where it ended, or on the error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rustgun_http::body::Decoder;
use rustgun_http::parse::BodyFraming;

/// What decoding `input` in pieces of `piece` bytes gives: the body, the input used when the body
/// ended (None if it did not), and the refusal's status.
fn decode(input: &[u8], piece: usize, limit: u64) -> (Vec<u8>, Option<usize>, Option<u16>) {
    let mut dec = Decoder::new(BodyFraming::Chunked, limit).expect("a chunked decoder");
    let mut body = Vec::new();
    let mut used = 0;
    while used < input.len() && !dec.is_done() {
        let end = (used + piece).min(input.len());
        let mut pending = &input[used..end];
        loop {
            match dec.decode(pending) {
                Err(e) => return (body, None, Some(e.status())),
                Ok(step) => {
                    assert!(step.consumed <= pending.len() && step.data.end <= step.consumed);
                    body.extend_from_slice(&pending[step.data.clone()]);
                    used += step.consumed;
                    pending = &pending[step.consumed..];
                    if step.done {
                        return (body, Some(used), None);
                    }
                    if pending.is_empty() {
                        break;
                    }
                    assert!(step.consumed > 0, "no progress on {} bytes", pending.len());
                }
            }
        }
    }
    let ended = dec.is_done().then_some(used);
    (body, ended, None)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks `--limit-request-body` (0 = none, else a small one).
    let Some((&first, input)) = data.split_first() else { return };
    let limit = u64::from(first % 4) * 8;
    let whole = decode(input, input.len().max(1), limit);
    let bytes = decode(input, 1, limit);
    assert_eq!(whole, bytes, "whole versus byte by byte, limit {limit}");
});
