//! RFC 6455 §5.2 frame headers: decoding a client header, encoding a header, and XOR masking.
//!
//! Only the wire layout lives here; which headers are allowed (mask required, RSV bits, opcodes,
//! control-frame limits) is the session's business (`session.rs`), and so are payloads.

/// FIN bit of the first header byte.
pub(super) const FIN: u8 = 0x80;
/// RSV1 bit of the first header byte (RFC 7692: "Per-Message Compressed").
pub(super) const RSV1: u8 = 0x40;
/// RSV2 bit of the first header byte.
pub(super) const RSV2: u8 = 0x20;
/// RSV3 bit of the first header byte.
pub(super) const RSV3: u8 = 0x10;

/// Opcode of a continuation frame.
pub(super) const CONTINUATION: u8 = 0x0;
/// Opcode of the first frame of a text message.
pub(super) const TEXT: u8 = 0x1;
/// Opcode of the first frame of a binary message.
pub(super) const BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub(super) const CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub(super) const PING: u8 = 0x9;
/// Opcode of a pong frame.
pub(super) const PONG: u8 = 0xA;

/// The longest header: 2 bytes, an 8-byte extended length and a 4-byte masking key.
pub(super) const MAX_HEADER: usize = 14;
/// The longest unmasked header (what the server sends).
pub(super) const MAX_SERVER_HEADER: usize = 10;

/// One decoded frame header, as it was on the wire (nothing validated but its layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    /// The first byte: FIN, RSV1-3 and the opcode.
    pub(super) first: u8,
    /// The masking key, if the MASK bit was set.
    pub(super) mask: Option<[u8; 4]>,
    /// The payload length (may have its top bit set: the caller rejects that).
    pub(super) len: u64,
}

impl Header {
    /// The opcode (low four bits of the first byte).
    pub(super) fn opcode(&self) -> u8 {
        self.first & 0x0F
    }

    /// Whether the given bit(s) of the first byte are set.
    pub(super) fn has(&self, bits: u8) -> bool {
        self.first & bits != 0
    }
}

/// Decodes the header at the start of `buf`: `None` while it is incomplete, else the header and
/// its length in bytes.
pub(super) fn decode(buf: &[u8]) -> Option<(Header, usize)> {
    let (&first, rest) = buf.split_first()?;
    let (&second, rest) = rest.split_first()?;
    let (len, ext) = match second & 0x7F {
        126 => (u64::from(u16::from_be_bytes(*rest.first_chunk::<2>()?)), 2),
        127 => (u64::from_be_bytes(*rest.first_chunk::<8>()?), 8),
        short => (u64::from(short), 0),
    };
    let mut used = 2 + ext;
    let mask = if second & 0x80 != 0 {
        let key = *buf[used..].first_chunk::<4>()?;
        used += 4;
        Some(key)
    } else {
        None
    };
    Some((Header { first, mask, len }, used))
}

/// Encodes a header with the given first byte, payload length and optional masking key; returns
/// the bytes and how many of them are used.
pub(super) fn encode(first: u8, len: usize, mask: Option<[u8; 4]>) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0u8; MAX_HEADER];
    header[0] = first;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut used = 2;
    if len < 126 {
        // `len < 126` so the cast is lossless.
        header[1] = mask_bit | len as u8;
    } else if let Ok(short) = u16::try_from(len) {
        header[1] = mask_bit | 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        used = 4;
    } else {
        header[1] = mask_bit | 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        used = 10;
    }
    if let Some(key) = mask {
        header[used..used + 4].copy_from_slice(&key);
        used += 4;
    }
    (header, used)
}

/// Appends one unmasked (server) frame with the given first byte and payload.
pub(super) fn write(out: &mut Vec<u8>, first: u8, payload: &[u8]) {
    let (header, used) = encode(first, payload.len(), None);
    out.reserve(used + payload.len());
    out.extend_from_slice(&header[..used]);
    out.extend_from_slice(payload);
}

/// XORs `data` with the masking `key`, `data` starting at byte `offset` of the payload (so a
/// payload can be unmasked piece by piece as it arrives). Masking and unmasking are the same.
pub(super) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (byte, k) in chunks.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_at_every_length_form() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 1 << 32] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let (header, used) = encode(FIN | BINARY, len, mask);
                let expected =
                    2 + if len < 126 {
                        0
                    } else if len < 65536 {
                        2
                    } else {
                        8
                    } + if mask.is_some() { 4 } else { 0 };
                assert_eq!(used, expected, "len {len}");
                let decoded = Header { first: FIN | BINARY, mask, len: len as u64 };
                assert_eq!(decode(&header[..used]), Some((decoded, used)));
                // Every cut short of the whole header is incomplete.
                assert!((0..used).all(|cut| decode(&header[..cut]).is_none()));
            }
        }
    }

    #[test]
    fn masking_matches_the_bytewise_definition_at_any_offset() {
        let key = [0x37, 0xFA, 0x21, 0x3D];
        let data: Vec<u8> = (0..=255).collect();
        for offset in 0..8 {
            for len in [0, 1, 7, 8, 9, 31, 256] {
                let mut masked = data[..len].to_vec();
                apply_mask(&mut masked, key, offset);
                let expected: Vec<u8> =
                    data[..len].iter().enumerate().map(|(i, b)| b ^ key[(i + offset) % 4]).collect();
                assert_eq!(masked, expected, "offset {offset} len {len}");
            }
        }
    }
}
