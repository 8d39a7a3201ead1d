//! The sending half of [`Connection`]: the response head, body and trailers, each held to the
//! client's flow-control windows and frame size, and closing our side of a stream; resets and the
//! graceful GOAWAY.
//!
//! Not here: what the client sends ([`super`]).

use super::{Connection, State};
use crate::h2::ErrorCode;
use crate::h2::frame::{self, flag, kind};

impl Connection {
    /// Queues the response head (`:status` first, then `headers`, their names lowercased).
    pub fn respond(&mut self, stream: u32, status: u16, headers: &[(&[u8], &[u8])], end_stream: bool) {
        let status = status.to_string();
        let mut block = Vec::new();
        let fields = std::iter::once((&b":status"[..], status.as_bytes())).chain(headers.iter().copied());
        self.encoder.encode(fields, &mut block);
        frame::write_header_block(&mut self.out, stream, &block, end_stream, self.peer_max_frame);
        if end_stream {
            self.end_local(stream);
        }
    }

    /// Queues trailers, which end the response.
    pub fn send_trailers(&mut self, stream: u32, fields: &[(&[u8], &[u8])]) {
        let mut block = Vec::new();
        self.encoder.encode(fields.iter().copied(), &mut block);
        frame::write_header_block(&mut self.out, stream, &block, true, self.peer_max_frame);
        self.end_local(stream);
    }

    /// How many bytes of frames wait in [`Connection::output`] for the driver.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// How many body bytes `stream` may send now (the smaller of its window and the connection's).
    pub fn send_capacity(&self, stream: u32) -> usize {
        match self.streams.get(&stream) {
            Some(s) => s.send_window.min(self.send_window).max(0) as usize,
            None => 0,
        }
    }

    /// Queues as much of `data` as the windows allow, in frames of the client's largest size;
    /// returns how much was taken (`end_stream` applies only when all of it was).
    pub fn send_data(&mut self, stream: u32, data: &[u8], end_stream: bool) -> usize {
        let take = data.len().min(self.send_capacity(stream));
        let ends = end_stream && take == data.len();
        let mut pieces = data[..take].chunks(self.peer_max_frame).peekable();
        if take == 0 && ends {
            frame::write(&mut self.out, kind::DATA, flag::END_STREAM, stream, &[]);
        }
        while let Some(piece) = pieces.next() {
            let last = ends && pieces.peek().is_none();
            frame::write(&mut self.out, kind::DATA, if last { flag::END_STREAM } else { 0 }, stream, piece);
        }
        self.send_window -= take as i64;
        if let Some(s) = self.streams.get_mut(&stream) {
            s.send_window -= take as i64;
        }
        if ends {
            self.end_local(stream);
        }
        take
    }

    /// Our side of `stream` ended: closed once the client's has too.
    fn end_local(&mut self, stream: u32) {
        if self.streams.contains_key(&stream) {
            self.answered += 1;
        }
        match self.streams.get_mut(&stream).map(|s| s.state) {
            Some(State::HalfClosedRemote) => {
                self.forget(stream);
            }
            Some(_) => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.state = State::HalfClosedLocal;
                }
            }
            None => {}
        }
    }

    /// Resets `stream` from our side (the app failed, or the driver gives up on it).
    pub fn reset(&mut self, stream: u32, code: ErrorCode) {
        self.write_reset(stream, code);
        self.forget(stream);
    }

    /// Graceful shutdown: GOAWAY naming the last stream started; those finish, no new one starts.
    pub fn go_away(&mut self) {
        if self.going_away.is_none() {
            frame::write_goaway(&mut self.out, self.last_stream, ErrorCode::NoError);
            self.going_away = Some(self.last_stream);
        }
    }

    /// GOAWAY was sent and every stream it let finish has.
    pub fn is_done(&self) -> bool {
        self.going_away.is_some() && self.streams.is_empty()
    }
}
