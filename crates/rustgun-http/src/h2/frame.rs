//! HTTP/2 frames (RFC 9113 §4 and §6): the 9-byte frame header, each frame type's payload read out
//! of a borrowed buffer, and the frames an endpoint writes, appended to an output buffer.
//!
//! Reading only checks what a frame's own bytes can show (lengths, padding, a stream id where one
//! must or must not be); what a frame means for the connection is [`super::conn`]'s.
//!
//! Not here: header compression ([`super::hpack`]), stream states and flow control ([`super::conn`]).

use super::ErrorCode;

/// What a client sends first (RFC 9113 §3.4), before its SETTINGS.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The frame header's size.
pub const HEAD_LEN: usize = 9;
/// The largest frame payload any endpoint must accept (RFC 9113 §4.2), and the default.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// The largest value SETTINGS_MAX_FRAME_SIZE may take.
pub const MAX_MAX_FRAME: u32 = (1 << 24) - 1;
/// The largest flow-control window (RFC 9113 §6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Frame types (RFC 9113 §6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (RFC 9113 §6).
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// SETTINGS identifiers (RFC 9113 §6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// A frame's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The payload's length.
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    /// The stream, the reserved bit cleared.
    pub stream: u32,
}

impl Head {
    /// The header at the start of `buf`, if all 9 bytes are there.
    pub fn parse(buf: &[u8]) -> Option<Head> {
        let b = buf.get(..HEAD_LEN)?;
        Some(Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Why a frame's own bytes are wrong: the connection ends with this code (RFC 9113 §5.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub why: &'static str,
}

fn protocol(why: &'static str) -> FrameError {
    FrameError { code: ErrorCode::Protocol, why }
}

fn frame_size(why: &'static str) -> FrameError {
    FrameError { code: ErrorCode::FrameSize, why }
}

/// A payload without its padding (`PADDED`: a length byte first, that many bytes last), and the
/// bytes before the data that `skip` says a flag adds (HEADERS' priority block).
fn unpad(head: &Head, payload: &[u8], skip: usize) -> Result<(usize, usize), FrameError> {
    let (pad, start) = if head.has(flag::PADDED) {
        let pad = *payload.first().ok_or(frame_size("a padded frame without its pad length"))? as usize;
        (pad, 1)
    } else {
        (0, 0)
    };
    let start = start + skip;
    if start + pad > payload.len() {
        return Err(protocol("padding longer than the frame"));
    }
    Ok((start, payload.len() - pad))
}

/// A DATA payload's data, as a range of the payload.
pub fn data(head: &Head, payload: &[u8]) -> Result<std::ops::Range<usize>, FrameError> {
    if head.stream == 0 {
        return Err(protocol("DATA on stream 0"));
    }
    let (start, end) = unpad(head, payload, 0)?;
    Ok(start..end)
}

/// A HEADERS payload's header block fragment, as a range of the payload (the priority block, which
/// is advisory and ignored, skipped), and the stream it says this one depends on.
pub fn headers(head: &Head, payload: &[u8]) -> Result<(std::ops::Range<usize>, Option<u32>), FrameError> {
    if head.stream == 0 {
        return Err(protocol("HEADERS on stream 0"));
    }
    let skip = if head.has(flag::PRIORITY) { 5 } else { 0 };
    let (start, end) = unpad(head, payload, skip)?;
    let depends = (skip == 5).then(|| {
        let at = start - 5;
        u32::from_be_bytes([payload[at], payload[at + 1], payload[at + 2], payload[at + 3]]) & 0x7fff_ffff
    });
    Ok((start..end, depends))
}

/// A PRIORITY payload: the stream it depends on.
pub fn priority(head: &Head, payload: &[u8]) -> Result<u32, FrameError> {
    if head.stream == 0 {
        return Err(protocol("PRIORITY on stream 0"));
    }
    if payload.len() != 5 {
        // A stream error in RFC 9113 §6.3; the caller resets the stream.
        return Err(frame_size("PRIORITY is 5 bytes"));
    }
    Ok(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff)
}

/// A 4-byte payload (RST_STREAM's code, WINDOW_UPDATE's increment).
fn word(payload: &[u8], why: &'static str) -> Result<u32, FrameError> {
    match payload {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(frame_size(why)),
    }
}

/// An RST_STREAM payload: the error code.
pub fn rst_stream(head: &Head, payload: &[u8]) -> Result<u32, FrameError> {
    if head.stream == 0 {
        return Err(protocol("RST_STREAM on stream 0"));
    }
    word(payload, "RST_STREAM is 4 bytes")
}

/// A WINDOW_UPDATE payload: the increment (0 is the caller's to refuse, on the stream or the
/// connection as RFC 9113 §6.9 says).
pub fn window_update(payload: &[u8]) -> Result<u32, FrameError> {
    Ok(word(payload, "WINDOW_UPDATE is 4 bytes")? & 0x7fff_ffff)
}

/// A SETTINGS payload's (identifier, value) pairs.
pub fn settings(head: &Head, payload: &[u8]) -> Result<Vec<(u16, u32)>, FrameError> {
    if head.stream != 0 {
        return Err(protocol("SETTINGS on a stream"));
    }
    if head.has(flag::ACK) {
        return if payload.is_empty() {
            Ok(Vec::new())
        } else {
            Err(frame_size("a SETTINGS ACK with a payload"))
        };
    }
    if payload.len() % 6 != 0 {
        return Err(frame_size("SETTINGS is a multiple of 6 bytes"));
    }
    Ok(payload
        .chunks_exact(6)
        .map(|s| (u16::from_be_bytes([s[0], s[1]]), u32::from_be_bytes([s[2], s[3], s[4], s[5]])))
        .collect())
}

/// A PING payload's 8 opaque bytes.
pub fn ping(head: &Head, payload: &[u8]) -> Result<[u8; 8], FrameError> {
    if head.stream != 0 {
        return Err(protocol("PING on a stream"));
    }
    payload.try_into().map_err(|_| frame_size("PING is 8 bytes"))
}

/// A GOAWAY payload: the last stream the peer processed, and the code.
pub fn goaway(head: &Head, payload: &[u8]) -> Result<(u32, u32), FrameError> {
    if head.stream != 0 {
        return Err(protocol("GOAWAY on a stream"));
    }
    if payload.len() < 8 {
        return Err(frame_size("GOAWAY is at least 8 bytes"));
    }
    let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
    Ok((last, u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]])))
}

/// Appends a frame header.
pub fn write_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= MAX_MAX_FRAME as usize);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// Appends a whole frame.
pub fn write(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    write_head(out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
}

/// Appends a SETTINGS frame with `pairs`.
pub fn write_settings(out: &mut Vec<u8>, pairs: &[(u16, u32)]) {
    write_head(out, pairs.len() * 6, kind::SETTINGS, 0, 0);
    for (id, value) in pairs {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends a GOAWAY frame.
pub fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: ErrorCode) {
    write_head(out, 8, kind::GOAWAY, 0, 0);
    out.extend_from_slice(&last_stream.to_be_bytes());
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

/// Appends an RST_STREAM frame.
pub fn write_rst(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    write(out, kind::RST_STREAM, 0, stream, &(code as u32).to_be_bytes());
}

/// Appends a WINDOW_UPDATE frame.
pub fn write_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    write(out, kind::WINDOW_UPDATE, 0, stream, &increment.to_be_bytes());
}

/// Appends a header block as HEADERS and as many CONTINUATION frames as `max_frame` needs.
pub fn write_header_block(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool, max_frame: usize) {
    let mut pieces = block.chunks(max_frame.max(1)).peekable();
    let first = pieces.next().unwrap_or_default();
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if pieces.peek().is_none() {
        flags |= flag::END_HEADERS;
    }
    write(out, kind::HEADERS, flags, stream, first);
    while let Some(piece) = pieces.next() {
        let last = if pieces.peek().is_none() { flag::END_HEADERS } else { 0 };
        write(out, kind::CONTINUATION, last, stream, piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_reads_back_what_was_written_without_the_reserved_bit() {
        let mut out = Vec::new();
        write_head(&mut out, 70_000, kind::HEADERS, flag::END_HEADERS, 7);
        out[5] |= 0x80;
        let head = Head::parse(&out).unwrap();
        assert_eq!(head, Head { len: 70_000, kind: kind::HEADERS, flags: flag::END_HEADERS, stream: 7 });
        assert_eq!(Head::parse(&out[..8]), None);
    }

    #[test]
    fn padding_is_taken_off_and_padding_past_the_end_is_a_protocol_error() {
        let head = Head { len: 6, kind: kind::DATA, flags: flag::PADDED, stream: 1 };
        assert_eq!(data(&head, &[2, b'h', b'i', b'!', 0, 0]), Ok(1..4));
        assert_eq!(data(&head, &[6, b'h', 0, 0, 0, 0]).unwrap_err().code, ErrorCode::Protocol);
        let on_zero = Head { stream: 0, ..head };
        assert_eq!(data(&on_zero, &[0]).unwrap_err().code, ErrorCode::Protocol);
    }

    #[test]
    fn headers_skip_the_priority_block() {
        let head = Head { len: 8, kind: kind::HEADERS, flags: flag::PRIORITY, stream: 3 };
        let (block, depends) = headers(&head, &[0, 0, 0, 1, 16, 0x82, 0x84, 0x86]).unwrap();
        assert_eq!((block, depends), (5..8, Some(1)));
    }

    #[test]
    fn fixed_size_frames_of_the_wrong_size_are_frame_size_errors() {
        let on = |kind, stream| Head { len: 0, kind, flags: 0, stream };
        assert_eq!(ping(&on(kind::PING, 0), &[0; 7]).unwrap_err().code, ErrorCode::FrameSize);
        assert_eq!(settings(&on(kind::SETTINGS, 0), &[0; 5]).unwrap_err().code, ErrorCode::FrameSize);
        assert_eq!(rst_stream(&on(kind::RST_STREAM, 1), &[0; 3]).unwrap_err().code, ErrorCode::FrameSize);
        assert_eq!(window_update(&[0; 5]).unwrap_err().code, ErrorCode::FrameSize);
        assert_eq!(ping(&on(kind::PING, 1), &[0; 8]).unwrap_err().code, ErrorCode::Protocol);
    }

    #[test]
    fn a_large_header_block_is_split_into_continuations() {
        let mut out = Vec::new();
        write_header_block(&mut out, 1, &[7u8; 40], true, 16);
        let mut at = 0;
        let mut seen = Vec::new();
        while let Some(head) = Head::parse(&out[at..]) {
            seen.push((head.kind, head.flags, head.len));
            at += HEAD_LEN + head.len as usize;
        }
        assert_eq!(
            seen,
            [
                (kind::HEADERS, flag::END_STREAM, 16),
                (kind::CONTINUATION, 0, 16),
                (kind::CONTINUATION, flag::END_HEADERS, 8)
            ]
        );
    }
}
