//! The request body decoder: Content-Length and chunked (RFC 9112 §6, §7.1), as an explicit state
//! machine fed whatever bytes have arrived. Decoded data is reported as a range of the input, so the
//! caller copies it once, straight into the app's buffer.

use super::parse::BodyFraming;
use super::{Error, ErrorKind};
use std::ops::Range;

/// Longest chunk extension we parse over before calling it an attack.
const MAX_EXTENSION: u32 = 4096;
/// Most bytes of trailer fields we accept after the last chunk.
const MAX_TRAILERS: u32 = 16 * 1024;
/// A chunk size has at most 16 hex digits (2^64 - 1).
const MAX_SIZE_DIGITS: u8 = 16;
/// Trailer fields that would change framing or routing if a server merged them into the head (RFC
/// 9110 §6.5.1): refused. Every other trailer field is parsed and dropped, as gunicorn does, so one
/// that a server must not merge (`Content-Type`, `Authorization`, `Cookie`, …) never reaches the app.
pub(crate) const FORBIDDEN_TRAILERS: &[&[u8]] = &[b"content-length", b"transfer-encoding", b"host"];

/// One call's progress: how much input was used, which part of it is body data, and whether the body
/// has ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    pub consumed: usize,
    pub data: Range<usize>,
    pub done: bool,
}

#[derive(Debug)]
enum Chunked {
    /// Hex digits of a chunk size.
    Size { value: u64, digits: u8 },
    /// Whitespace after the size, which must lead to `;` (BWS before a chunk extension).
    SizeSpace { value: u64 },
    /// Inside the chunk extensions, up to CR: checked against their grammar, then ignored.
    Extension { value: u64, len: u32, at: Ext },
    /// CR seen after the size line; LF must follow.
    SizeLf { value: u64 },
    /// Chunk data still to come.
    Data { remaining: u64 },
    /// The CR after chunk data.
    DataCr,
    /// The LF after chunk data.
    DataLf,
    /// At the start of a trailer line, or of the empty line that ends the message.
    TrailerStart,
    /// In a trailer field name; the first bytes are kept to check against [`FORBIDDEN_TRAILERS`].
    TrailerName { name: [u8; 24], len: u8 },
    /// In a trailer field value, up to CR.
    TrailerValue,
    /// CR seen at the end of a trailer line.
    TrailerLf,
    /// CR seen on the final empty line.
    EndLf,
}

/// Where in `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )` (RFC 9112
/// §7.1.1) the decoder is; `chunk-ext-val = token / quoted-string`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// After `;`: whitespace, then the name's first byte.
    Start,
    /// In the name.
    Name,
    /// Whitespace after the name: `=`, `;` or the line's end follow.
    AfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    ValueStart,
    /// In a token value.
    Token,
    /// In a quoted string.
    Quoted,
    /// After a backslash in a quoted string.
    QuotedPair,
    /// Whitespace after a value: `;` or the line's end follow.
    AfterValue,
}

#[derive(Debug)]
enum State {
    Length { remaining: u64 },
    Chunked(Chunked),
    Done,
}

/// Decodes one request body.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// `--limit-request-body` (0 = none) and what has been decoded so far, for chunked bodies.
    limit: u64,
    total: u64,
    trailer_bytes: u32,
}

fn bad(detail: &'static str) -> Error {
    Error::new(ErrorKind::BadChunk, detail)
}

impl Decoder {
    /// A decoder for `framing`, refusing a declared length over `limit` (0 = no limit) before any
    /// body byte is read.
    pub fn new(framing: BodyFraming, limit: u64) -> Result<Decoder, Error> {
        let state = match framing {
            BodyFraming::Empty => State::Done,
            BodyFraming::Length(n) if limit > 0 && n > limit => {
                return Err(Error::new(ErrorKind::BodyTooLarge, "Content-Length over the limit"));
            }
            BodyFraming::Length(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::Chunked(Chunked::Size { value: 0, digits: 0 }),
        };
        Ok(Decoder { state, limit, total: 0, trailer_bytes: 0 })
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes of body data still expected, when the framing says (Content-Length).
    pub fn remaining_hint(&self) -> Option<u64> {
        match self.state {
            State::Length { remaining } => Some(remaining),
            State::Done => Some(0),
            State::Chunked(_) => None,
        }
    }

    /// Consumes framing from `input` up to and including the next run of body data.
    ///
    /// Returns when data was found (`data` non-empty), the body ended (`done`), or the input ran out
    /// (`consumed == input.len()`, no data).
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, Error> {
        let mut i = 0;
        loop {
            match &mut self.state {
                State::Done => {
                    return Ok(Step { consumed: i, data: i..i, done: true });
                }
                State::Length { remaining } => {
                    let take = (*remaining).min((input.len() - i) as u64) as usize;
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::Done;
                    }
                    return Ok(Step { consumed: i + take, data: i..i + take, done: self.is_done() });
                }
                State::Chunked(Chunked::Data { remaining }) => {
                    let take = (*remaining).min((input.len() - i) as u64) as usize;
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::Chunked(Chunked::DataCr);
                    }
                    if take > 0 || i == input.len() {
                        return Ok(Step { consumed: i + take, data: i..i + take, done: false });
                    }
                }
                State::Chunked(_) => {
                    let Some(&b) = input.get(i) else {
                        return Ok(Step { consumed: i, data: i..i, done: false });
                    };
                    i += 1;
                    if let Some(next) = self.framing_byte(b)? {
                        self.state = next;
                    }
                }
            }
        }
    }

    /// Advances the chunked framing by one byte; returns the new state when it changes.
    fn framing_byte(&mut self, b: u8) -> Result<Option<State>, Error> {
        let State::Chunked(chunked) = &mut self.state else {
            unreachable!("framing_byte outside chunked framing");
        };
        use Chunked::*;
        let next = match chunked {
            // chunk-size = 1*HEXDIG (RFC 9112 §7.1): no sign, no 0x, no spaces inside.
            Size { value, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if *digits == MAX_SIZE_DIGITS {
                        return Err(bad("chunk size overflows"));
                    }
                    *value = (*value << 4) | u64::from((b as char).to_digit(16).unwrap_or(0));
                    *digits += 1;
                    return Ok(None);
                }
                _ if *digits == 0 => return Err(bad("chunk size is not hex")),
                b';' => Extension { value: *value, len: 0, at: Ext::Start },
                b' ' | b'\t' => SizeSpace { value: *value },
                b'\r' => SizeLf { value: *value },
                _ => return Err(bad("invalid byte after chunk size")),
            },
            SizeSpace { value } => match b {
                b' ' | b'\t' => return Ok(None),
                b';' => Extension { value: *value, len: 0, at: Ext::Start },
                _ => return Err(bad("whitespace after chunk size without extension")),
            },
            // chunk-ext is held to its grammar, and a bare LF or any CTL in it refused: that is where
            // parsers disagree about where the line ends (and what is data).
            Extension { value, len, at } => {
                match (b, *at) {
                    (b'\r', Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue) => {
                        return Ok(Some(State::Chunked(SizeLf { value: *value })));
                    }
                    // `2;`, `2;a=`, an open quote: the line ends before the extension does.
                    (b'\r', _) => return Err(bad("malformed chunk extension")),
                    (b'\n', _) => return Err(bad("bare LF in chunk extension")),
                    (0..=0x08 | 0x0a..=0x1f | 0x7f, _) => return Err(bad("control byte in chunk extension")),
                    (_, next) => *at = next_in_extension(b, next)?,
                }
                *len += 1;
                if *len > MAX_EXTENSION {
                    return Err(bad("chunk extension too long"));
                }
                return Ok(None);
            }
            SizeLf { value } => {
                if b != b'\n' {
                    return Err(bad("bare CR in chunk size line"));
                }
                let size = *value;
                if size == 0 {
                    TrailerStart
                } else {
                    self.total = self.total.saturating_add(size);
                    if self.limit > 0 && self.total > self.limit {
                        return Err(Error::new(ErrorKind::BodyTooLarge, "chunked body over the limit"));
                    }
                    Data { remaining: size }
                }
            }
            Data { .. } => unreachable!("data is consumed in bulk by decode"),
            DataCr if b == b'\r' => DataLf,
            DataLf if b == b'\n' => Size { value: 0, digits: 0 },
            DataCr | DataLf => return Err(bad("chunk data not followed by CRLF")),
            TrailerStart => match b {
                b'\r' => EndLf,
                _ if is_token_byte(b) => {
                    let mut name = [0u8; 24];
                    name[0] = b.to_ascii_lowercase();
                    TrailerName { name, len: 1 }
                }
                _ => return Err(bad("malformed trailer field")),
            },
            TrailerName { name, len } => match b {
                b':' => {
                    let name = &name[..usize::from(*len)];
                    if FORBIDDEN_TRAILERS.contains(&name) {
                        return Err(bad("trailer field that affects framing or routing"));
                    }
                    TrailerValue
                }
                _ if is_token_byte(b) => {
                    // A name longer than the buffer is longer than any forbidden one: stop recording.
                    if usize::from(*len) < name.len() {
                        name[usize::from(*len)] = b.to_ascii_lowercase();
                        *len += 1;
                    }
                    self.count_trailer_byte()?;
                    return Ok(None);
                }
                _ => return Err(bad("malformed trailer field name")),
            },
            TrailerValue => match b {
                b'\r' => TrailerLf,
                b'\t' | b' '..=0x7e | 0x80..=0xff => {
                    self.count_trailer_byte()?;
                    return Ok(None);
                }
                _ => return Err(bad("control byte in trailer field")),
            },
            TrailerLf if b == b'\n' => TrailerStart,
            TrailerLf => return Err(bad("bare CR in trailer field")),
            EndLf if b == b'\n' => return Ok(Some(State::Done)),
            EndLf => return Err(bad("last chunk not ended by CRLF")),
        };
        Ok(Some(State::Chunked(next)))
    }

    fn count_trailer_byte(&mut self) -> Result<(), Error> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILERS {
            return Err(bad("trailer section too large"));
        }
        Ok(())
    }
}

/// The next place in a chunk extension after byte `b` (not a CTL) at `at`.
fn next_in_extension(b: u8, at: Ext) -> Result<Ext, Error> {
    let space = b == b' ' || b == b'\t';
    Ok(match at {
        Ext::Start | Ext::ValueStart if space => at,
        Ext::Start if is_token_byte(b) => Ext::Name,
        Ext::Name if is_token_byte(b) => Ext::Name,
        Ext::Name | Ext::AfterName if space => Ext::AfterName,
        Ext::Name | Ext::AfterName if b == b'=' => Ext::ValueStart,
        Ext::ValueStart if b == b'"' => Ext::Quoted,
        Ext::ValueStart | Ext::Token if is_token_byte(b) => Ext::Token,
        Ext::Token | Ext::AfterValue if space => Ext::AfterValue,
        Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue if b == b';' => Ext::Start,
        // qdtext and obs-text; a backslash quotes the next byte; a quote ends the string.
        Ext::Quoted if b == b'\\' => Ext::QuotedPair,
        Ext::Quoted if b == b'"' => Ext::AfterValue,
        Ext::Quoted | Ext::QuotedPair => Ext::Quoted,
        _ => return Err(bad("malformed chunk extension")),
    })
}

/// tchar (RFC 9110 §5.6.2).
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of at most `piece` bytes; returns the body or the error.
    fn decode_all(framing: BodyFraming, input: &[u8], piece: usize) -> Result<(Vec<u8>, usize), Error> {
        let mut dec = Decoder::new(framing, 0)?;
        let mut body = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            if dec.is_done() {
                return Ok((body, fed - pending.len()));
            }
            if pending.is_empty() {
                if fed == input.len() {
                    return Err(bad("eof"));
                }
                let end = (fed + piece).min(input.len());
                pending.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            let step = dec.decode(&pending)?;
            body.extend_from_slice(&pending[step.data.clone()]);
            pending.drain(..step.consumed);
        }
    }

    #[test]
    fn chunked_at_every_split() {
        let wire = b"4;ext=1\r\nWiki\r\n5 ;x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for piece in 1..wire.len() {
            let (body, used) = decode_all(BodyFraming::Chunked, wire, piece).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.", "piece {piece}");
            assert_eq!(&wire[used..], b"NEXT");
        }
    }

    #[test]
    fn length_body() {
        let (body, used) = decode_all(BodyFraming::Length(5), b"hello world", 3).unwrap();
        assert_eq!(body, b"hello");
        assert_eq!(used, 5);
    }

    #[test]
    fn refused_chunks() {
        for wire in [
            &b"-1\r\n"[..],
            b"+1\r\nx\r\n0\r\n\r\n",
            b"0x1\r\nx\r\n0\r\n\r\n",
            b" 1\r\nx\r\n0\r\n\r\n",
            b"1 \r\nx\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"1;a\nb\r\nx\r\n0\r\n\r\n",
            b"1;a\rb\r\nx\r\n0\r\n\r\n",
            b"1\r\nxy\r\n0\r\n\r\n",
            b"1\nx\r\n0\r\n\r\n",
            b"0\r\n\r\r",
            b"0\r\nContent-Length: 5\r\n\r\n",
            b"0\r\nHost: x\r\n\r\n",
            b"0\r\nX: a\rb\r\n\r\n",
            b"g\r\n",
        ] {
            let err = decode_all(BodyFraming::Chunked, wire, 1).unwrap_err();
            assert_eq!(err.status(), 400, "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn chunk_extensions_follow_their_grammar() {
        let wire = |ext: &[u8]| [&b"1"[..], ext, b"\r\nx\r\n0\r\n\r\n"].concat();
        let good: [&[u8]; 7] = [
            b";a",
            b";a=b",
            b" ; a = b",
            b";a=\"\"",
            b";a=\"x;y \\\" z\"",
            b";a;b=c;d=\"e\" ",
            b";a=\"\t\x80\xff\"",
        ];
        for ext in good {
            let body = decode_all(BodyFraming::Chunked, &wire(ext), 1).map(|(b, _)| b);
            assert_eq!(body, Ok(b"x".to_vec()), "{:?}", String::from_utf8_lossy(ext));
        }
        // RFC 9112 §7.1.1: a name is a token, a value a token or a quoted string.
        let bad: [&[u8]; 11] = [
            b";",
            b";=x",
            b"; =x",
            b";a b",
            b";a=",
            b";a=b c",
            b";a=\"open",
            b";a=\"x\"y",
            b";a=b\"",
            b";a,b",
            b";a=\x80",
        ];
        for ext in bad {
            let err = decode_all(BodyFraming::Chunked, &wire(ext), 1).unwrap_err();
            assert_eq!(
                (err.status(), err.detail),
                (400, "malformed chunk extension"),
                "{:?}",
                String::from_utf8_lossy(ext)
            );
        }
    }

    #[test]
    fn limit_applies_to_both_framings() {
        assert_eq!(Decoder::new(BodyFraming::Length(11), 10).unwrap_err().status(), 413);
        let wire = b"6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n";
        let mut dec = Decoder::new(BodyFraming::Chunked, 10).unwrap();
        let mut rest: &[u8] = wire;
        let err = loop {
            match dec.decode(rest) {
                Ok(step) => rest = &rest[step.consumed..],
                Err(e) => break e,
            }
        };
        assert_eq!(err.status(), 413);
    }
}
