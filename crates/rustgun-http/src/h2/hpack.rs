//! HPACK (RFC 7541) for the server: one decoder per connection for the client's header blocks, bounded
//! in what it hands out, and one encoder for the responses.
//!
//! The coding itself is `loona-hpack`'s (a maintained fork of `hpack` that passes h2spec; its decoder
//! takes a whole block and calls back per field, which is what a sans-I/O connection has once
//! CONTINUATION frames are joined). What is ours is the bound: a block keeps being decoded to its end
//! (the dynamic table must stay in step with the client's), but once the decoded list passes
//! `max_list` bytes (RFC 9113 §6.5.2's size: name, value and 32 per field) no more fields are kept,
//! so a small block that names a large table entry again and again (an HPACK bomb) costs the worker
//! nothing beyond the limit.
//!
//! Not here: frames ([`super::frame`]), what the fields mean ([`super::conn`]).

use std::borrow::Cow;

/// A decoded header list: (name, value) pairs in order, pseudo-headers first.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Why a header block could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// The block does not decode: the connection's table is lost (COMPRESSION_ERROR).
    Compression,
    /// It decoded, but its list is larger than SETTINGS_MAX_HEADER_LIST_SIZE.
    TooLarge,
}

/// The client's header blocks.
pub struct Decoder {
    inner: loona_hpack::Decoder<'static>,
    max_list: usize,
}

impl Decoder {
    /// A decoder whose table may grow to `table` bytes (the SETTINGS_HEADER_TABLE_SIZE we announce)
    /// and that keeps lists of at most `max_list` bytes.
    pub fn new(table: usize, max_list: usize) -> Decoder {
        let mut inner = loona_hpack::Decoder::new();
        inner.set_max_allowed_table_size(table);
        Decoder { inner, max_list }
    }

    /// Decodes one whole header block into `fields` (cleared first).
    pub fn decode(&mut self, block: &[u8], fields: &mut Fields) -> Result<(), HpackError> {
        fields.clear();
        let mut size = 0usize;
        let mut over = false;
        let max = self.max_list;
        self.inner
            .decode_with_cb(block, |name: Cow<'_, [u8]>, value: Cow<'_, [u8]>| {
                size = size.saturating_add(name.len() + value.len() + 32);
                if size > max {
                    over = true;
                } else {
                    fields.push((name.into_owned(), value.into_owned()));
                }
            })
            .map_err(|_| HpackError::Compression)?;
        if over {
            fields.clear();
            return Err(HpackError::TooLarge);
        }
        Ok(())
    }
}

/// The largest dynamic table our encoder uses (RFC 7541's default): a client that allows more gets
/// no more.
const ENCODER_TABLE: usize = 4096;

/// The response header blocks.
pub struct Encoder {
    inner: loona_hpack::Encoder<'static>,
    /// The table size in use.
    size: usize,
    /// Sizes not yet signalled to the client: the smallest since the last block, and the last.
    pending: Option<(usize, usize)>,
    /// A field name lowercased for the block.
    name: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder { inner: loona_hpack::Encoder::new(), size: ENCODER_TABLE, pending: None, name: Vec::new() }
    }
}

impl Encoder {
    /// The client's SETTINGS_HEADER_TABLE_SIZE: the table is held to it at once, and the change
    /// signalled at the start of the next block (RFC 7541 §4.2: the smallest size since the last
    /// block first, then the last one).
    pub fn set_max_table_size(&mut self, peer_max: usize) {
        let size = peer_max.min(ENCODER_TABLE);
        if size == self.size && self.pending.is_none() {
            return;
        }
        let smallest = self.pending.map_or(size, |(smallest, _)| smallest.min(size));
        self.pending = Some((smallest, size));
        self.size = size;
        self.inner.set_max_table_size(size);
    }

    /// Appends the block for `fields` to `out`, their names lowercased (RFC 9113 §8.2.2: a field
    /// name with an uppercase letter makes a message malformed), whatever case the app gave.
    pub fn encode<'f>(&mut self, fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        if let Some((smallest, last)) = self.pending.take() {
            let _ = loona_hpack::encoder::encode_integer_into(smallest, 5, 0x20, out);
            if last != smallest {
                let _ = loona_hpack::encoder::encode_integer_into(last, 5, 0x20, out);
            }
        }
        for (name, value) in fields {
            let name = if name.iter().any(u8::is_ascii_uppercase) {
                self.name.clear();
                self.name.extend(name.iter().map(u8::to_ascii_lowercase));
                &self.name[..]
            } else {
                name
            };
            let _ = self.inner.encode_into(std::iter::once((name, value)), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_encoder_writes_the_decoder_reads() {
        let mut out = Vec::new();
        let fields: [(&[u8], &[u8]); 3] =
            [(b":status", b"200"), (b"content-type", b"text/plain"), (b"x-a", b"1")];
        Encoder::default().encode(fields, &mut out);
        let mut decoded = Vec::new();
        Decoder::new(4096, 16_384).decode(&out, &mut decoded).unwrap();
        let want: Fields = fields.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(decoded, want);
    }

    #[test]
    fn a_block_that_names_a_large_entry_many_times_is_too_large_and_keeps_nothing() {
        // One literal with incremental indexing (a 1000-byte value), then 200 references to it.
        let mut block = vec![0x40, 0x01, b'x', 0x7f, 0xe9, 0x06];
        block.extend(std::iter::repeat_n(b'v', 1000));
        block.extend(std::iter::repeat_n(0xbe, 200));
        let mut decoder = Decoder::new(4096, 65_536);
        let mut fields = Vec::new();
        assert_eq!(decoder.decode(&block, &mut fields), Err(HpackError::TooLarge));
        assert!(fields.is_empty());
        // The table stayed in step: the entry is still there for the next block.
        decoder.decode(&[0xbe], &mut fields).unwrap();
        assert_eq!(fields[0].1.len(), 1000);
    }

    #[test]
    fn a_smaller_table_is_signalled_first_in_the_next_block_smallest_then_last() {
        let mut encoder = Encoder::default();
        encoder.set_max_table_size(8192);
        let mut out = Vec::new();
        encoder.encode([(&b"x-a"[..], &b"1"[..])], &mut out);
        assert_eq!(out[0], 0x40, "8192 is more than we use: no update");
        encoder.set_max_table_size(0);
        encoder.set_max_table_size(100);
        out.clear();
        encoder.encode([(&b"x-a"[..], &b"1"[..])], &mut out);
        assert_eq!(
            out[..4],
            [0x20, 0x3f, 0x45, 0x40],
            "0, then 100, then the field (evicted: a literal again)"
        );
        let mut decoder = Decoder::new(4096, 1024);
        let mut fields = Vec::new();
        decoder.decode(&out, &mut fields).unwrap();
        assert_eq!(fields, [(b"x-a".to_vec(), b"1".to_vec())]);
    }

    #[test]
    fn garbage_is_a_compression_error() {
        let mut fields = Vec::new();
        assert_eq!(
            Decoder::new(4096, 1024).decode(&[0xff, 0xff, 0xff, 0xff, 0xff], &mut fields),
            Err(HpackError::Compression)
        );
    }
}
