//! RFC 7692 permessage-deflate: the negotiated parameters, the per-thread compressor and the
//! per-session, bounded, incremental decompressor.
//!
//! Frames, RSV1 and the choice of which messages to compress live in `session.rs`; parsing the
//! offer lives in `handshake.rs`.

use flate2::{Compress, CompressError, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The empty stored block that ends every sync flush; RFC 7692 §7.2.1 drops it from each message
/// and §7.2.2 appends it back before inflating.
pub(super) const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// What an inflater holds, roughly: zlib's 32 KiB window for window bits 15 plus its state and
/// Huffman tables (for `Session::held`).
pub(super) const INFLATER_BYTES: usize = (1 << 15) + 8 * 1024;

/// The parameters one connection negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The LZ77 window (base-2 logarithm, 8..=15) the server compresses with.
    pub server_window_bits: u8,
    /// The window (8..=15) the client said it compresses with; informational, since an inflater
    /// with window 15 decodes any smaller window.
    pub client_window_bits: u8,
    /// Whether the client resets its compressor per message, so that the session can drop its
    /// inflater after each message.
    pub client_no_context_takeover: bool,
}

/// A compressor shared by every connection of a thread (server_no_context_takeover): reset before
/// each message.
pub struct Deflater {
    /// The compressor with the window bits it was made for (zlib cannot change them on reset).
    compress: Option<(u8, Compress)>,
}

impl Default for Deflater {
    fn default() -> Deflater {
        Deflater::new()
    }
}

impl Deflater {
    /// A deflater with no compressor yet: the first message makes one (about 256 KiB for window
    /// bits 15), which is kept until a message needs other window bits.
    pub fn new() -> Deflater {
        Deflater { compress: None }
    }

    /// Compresses one whole message with the given window bits (8..=15; zlib's raw deflate cannot
    /// do 8, and uses 9, whose farthest match, 250 bytes back, also fits in a 256-byte window)
    /// and appends it to `out`, dropping the trailing 00 00 ff ff as RFC 7692 §7.2.1 says.
    ///
    /// On error (zlib's internal errors only) `out` may hold part of the output: the caller
    /// truncates it and sends the message uncompressed.
    pub fn compress(&mut self, window_bits: u8, data: &[u8], out: &mut Vec<u8>) -> Result<(), CompressError> {
        let bits = window_bits.clamp(9, 15);
        let compress = match &mut self.compress {
            Some((made_for, compress)) if *made_for == bits => {
                compress.reset();
                compress
            }
            slot => {
                &mut slot
                    .insert((bits, Compress::new_with_window_bits(Compression::default(), false, bits)))
                    .1
            }
        };
        let mut input = data;
        loop {
            out.reserve((input.len() / 2).max(64));
            let before = compress.total_in();
            compress.compress_vec(input, out, FlushCompress::Sync)?;
            input = &input[to_usize(compress.total_in() - before)..];
            // zlib: a flush is complete when it returns with output space left.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        Ok(())
    }
}

/// Why inflating failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InflateError {
    /// The output would exceed the limit.
    TooBig,
    /// The input is not valid raw deflate data.
    Corrupt,
}

/// One session's decompressor: window bits 15, which decodes every window the client may use.
pub(super) struct Inflater {
    decompress: Decompress,
    /// The client ended its stream with a BFINAL block (RFC 7692 §7.2.3.4 allows it): the rest of
    /// this message is ignored and the next message starts a new stream.
    ended: bool,
}

impl Inflater {
    /// A fresh raw-deflate inflater.
    pub(super) fn new() -> Inflater {
        Inflater { decompress: Decompress::new(false), ended: false }
    }

    /// Inflates `input` (a piece of a message's compressed data) and appends the output to
    /// `out`, failing as soon as `out` would grow past `limit` bytes: `out` never gets more than
    /// `limit + 1` bytes of capacity from here, whatever `input` inflates to.
    pub(super) fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        // Every return below leaves no output pending in zlib, so empty input has nothing to do.
        if input.is_empty() || self.ended {
            return Ok(());
        }
        loop {
            if out.len() == out.capacity() {
                // Grow by doubling, but never past one byte over the limit: that byte tells "more".
                let room = limit.saturating_sub(out.len()) + 1;
                out.reserve_exact(out.capacity().max(4096).min(room));
            }
            let (in_before, out_before) = (self.decompress.total_in(), self.decompress.total_out());
            let status = self
                .decompress
                .decompress_vec(input, out, FlushDecompress::None)
                .map_err(|_| InflateError::Corrupt)?;
            input = &input[to_usize(self.decompress.total_in() - in_before)..];
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                self.ended = true;
                return Ok(());
            }
            // zlib: with output space left, it has taken all the input it can.
            if out.len() < out.capacity() {
                if input.is_empty() {
                    return Ok(());
                }
                if self.decompress.total_in() == in_before && self.decompress.total_out() == out_before {
                    return Err(InflateError::Corrupt);
                }
            }
        }
    }

    /// Ends a message: inflates the 00 00 ff ff tail that RFC 7692 §7.2.2 has the receiver
    /// append, and starts a new stream if the client ended its own.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        self.inflate(&TAIL, out, limit)?;
        if self.ended {
            self.decompress.reset(false);
            self.ended = false;
        }
        Ok(())
    }
}

/// A byte count of this process's memory as `usize` (zlib's counters are `u64`).
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
