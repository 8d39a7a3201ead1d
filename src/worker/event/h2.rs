//! The loop's HTTP/2 connections ([`Phase::Http2`]). How a connection becomes one: ALPN chose `h2`
//! under TLS, or a cleartext connection from a peer in `--forwarded-allow-ips` opens with the
//! preface (`--http2-cleartext prior-knowledge`). Then the loop only moves bytes and time for its
//! [`Session`]: the client's frames in, the ready streams' apps run, their responses pumped, the
//! frames out; `--keep-alive` closes it idle, a stop sends GOAWAY and lets its streams finish.
//!
//! An HTTP/1.1 request may also ask to go on as HTTP/2 (`Upgrade: h2c`, `--http2-cleartext upgrade`):
//! [`Loop::upgrade_h2`] answers 101 and the request becomes stream 1.
//!
//! Not here: the session itself (`worker::h2`), when a request may upgrade (`requests`).

use crate::http::conn::{After, LINGER};
use crate::http::h2::ErrorCode;
use crate::http::h2::frame::{PREFACE, write_goaway};
use crate::http::response::ResponseHead;
use crate::http::upgrade::H2C;
use crate::worker::connection;
use crate::worker::h2::{self, Session};
use nix::sys::epoll::{EpollEvent, EpollFlags};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::{Loop, Phase, READ_BATCH};

/// What a new connection's first bytes say it speaks.
pub(super) enum Opening {
    Http1,
    Http2,
    /// Too few bytes yet to tell.
    Undecided,
}

impl Loop<'_, '_> {
    /// Decides once, from the first bytes, whether the connection at `token` speaks HTTP/2. A
    /// trusted peer on a prior-knowledge-only port that sends anything but the preface is answered
    /// 400 (it is expected to speak HTTP/2: a silent downgrade would hide the mistake, as gunicorn).
    pub(super) fn opening(&mut self, token: usize) -> Opening {
        let Some(conn) = self.conns[token].as_mut() else { return Opening::Http1 };
        let Some(settings) = self.ctx.settings.http2 else {
            conn.opening = false;
            return Opening::Http1;
        };
        let trusted = self.ctx.settings.forwarded_allow_ips.trusts(conn.info.peer_ip);
        let (decided, refused) = if conn.stream.is_tls() {
            (if conn.stream.alpn_h2() { Opening::Http2 } else { Opening::Http1 }, false)
        } else if !settings.prior_knowledge || !trusted {
            (Opening::Http1, false)
        } else {
            let data = conn.rbuf.data();
            let n = data.len().min(PREFACE.len());
            if data[..n] != PREFACE[..n] {
                (Opening::Http1, !settings.upgrade)
            } else if n < PREFACE.len() {
                return Opening::Undecided;
            } else {
                (Opening::Http2, false)
            }
        };
        conn.opening = false;
        if refused {
            self.refuse_400(token, &"not the HTTP/2 preface (--http2-cleartext prior-knowledge)");
        }
        if matches!(decided, Opening::Http2) {
            self.begin_h2(token);
        }
        decided
    }

    /// The request just received on the connection at `token` asked for `Upgrade: h2c`: the 101 goes
    /// out (after what earlier requests left queued), then the connection speaks HTTP/2 and the
    /// request is its stream 1. A malformed `HTTP2-Settings` is a 400.
    pub(super) fn upgrade_h2(&mut self, token: usize) {
        let Some(settings) = self.ctx.settings.http2 else { return self.close(token) };
        let head = std::mem::take(&mut self.shared.head);
        let field = crate::http::upgrade::h2c_settings(&head).unwrap_or_default().to_vec();
        let Some(conn) = self.conns[token].as_mut() else { return };
        conn.opening = false;
        let Some(mut session) = Session::upgraded(&settings, token, &field, head, self.ctx) else {
            self.refuse_400(token, &"an HTTP2-Settings field that is not a SETTINGS payload");
            return self.drive(token);
        };
        let mut resp = ResponseHead::default();
        let date = *self.shared.date.get(connection::unix_now());
        conn.proto.switch_protocols(&mut resp, H2C, &date, &mut conn.out);
        let frames = std::mem::replace(session.output(), std::mem::take(&mut conn.out));
        session.output().extend_from_slice(&frames);
        self.start_session(token, session);
        self.h2_drive(token);
    }

    /// Answers the HTTP/1.1 request at `token` 400 for `why`; the connection closes after it.
    fn refuse_400(&mut self, token: usize, why: &dyn std::fmt::Display) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        let answer = (&mut conn.proto, &mut conn.out);
        connection::refuse_status(answer, &mut self.shared, &conn.info, self.ctx, 400, why, Instant::now());
        conn.rbuf.clear();
        conn.phase = Phase::Writing(After::Linger);
    }

    /// The connection at `token` speaks HTTP/2 from now on.
    fn begin_h2(&mut self, token: usize) {
        let Some(settings) = self.ctx.settings.http2 else { return };
        self.start_session(token, Session::new(&settings, token));
    }

    /// The connection at `token` is `session`'s from now on.
    fn start_session(&mut self, token: usize, mut session: Session) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        conn.phase = Phase::Http2;
        conn.deadline = Instant::now() + self.ctx.settings.keep_alive;
        conn.start_pacing(Instant::now());
        if self.sessions.len() <= token {
            self.sessions.resize_with(token + 1, || None);
        }
        if self.stopping {
            session.go_away();
        }
        self.sessions[token] = Some(Box::new(session));
    }

    /// Readiness of an HTTP/2 connection: frames to read, room to write, or the client gone.
    pub(super) fn on_h2(&mut self, token: usize, events: EpollFlags) {
        if events.intersects(EpollFlags::EPOLLERR) {
            return self.close(token);
        }
        if events.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP) {
            // TLS may hold decrypted bytes epoll cannot see: read while the stream says so.
            for _ in 0..16 {
                match self.read(token) {
                    Ok(true) => {}
                    Ok(false) | Err(()) => return self.close(token),
                }
                if self.conns[token].as_ref().is_none_or(|c| c.rbuf.data().len() >= READ_BATCH) {
                    break;
                }
                self.h2_drive(token);
                if !self.conns[token].as_ref().is_some_and(|c| c.stream.has_buffered_input()) {
                    return;
                }
            }
        }
        self.h2_drive(token);
    }

    /// Moves an HTTP/2 connection as far as it goes without waiting: the frames buffered are acted
    /// on, the ready streams' apps run, every stream's response goes into frames as far as its
    /// window allows, and the frames go out.
    pub(super) fn h2_drive(&mut self, token: usize) {
        let (Some(conn), Some(Some(session))) = (self.conns[token].as_mut(), self.sessions.get_mut(token))
        else {
            return self.close(token);
        };
        let used = session.receive(conn.rbuf.data(), &conn.info, self.ctx);
        conn.rbuf.consume(used);
        if session.is_abusive() {
            return self.h2_cut(token);
        }
        session.run_ready((&mut conn.stream, &mut conn.rbuf), &mut self.shared, &conn.info, self.ctx);
        self.h2_flush(token);
    }

    /// Pumps the responses of an HTTP/2 connection and writes what the socket takes; watches for
    /// writability while frames wait, and closes the connection once it is over.
    pub(super) fn h2_flush(&mut self, token: usize) {
        let (Some(conn), Some(Some(session))) = (self.conns[token].as_mut(), self.sessions.get_mut(token))
        else {
            return self.close(token);
        };
        // Pump and write while the socket takes it and a pull-mode body has more (each block out
        // before the next is asked for); past a few rounds, writability brings the loop back, so
        // other connections get their turn.
        let mut written = 0;
        for round in 0..8 {
            // What is framed already goes first: a pump may ask an app for its next block.
            if round > 0 {
                session.pump_all(&conn.info, self.ctx);
            }
            let before = session.output().len();
            if conn.stream.write_some(session.output()).is_err() {
                return self.close(token);
            }
            written += before - session.output().len();
            if !session.output().is_empty() || (round > 0 && !session.wants_pump()) {
                break;
            }
        }
        conn.moved += written as u64;
        let waiting = !session.output().is_empty() || session.wants_pump();
        if session.is_over() && !waiting {
            return self.h2_linger(token);
        }
        if conn.writing != waiting {
            conn.writing = waiting;
            let mut flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
            if waiting {
                flags |= EpollFlags::EPOLLOUT;
            }
            let mut event = EpollEvent::new(flags, token as u64);
            if self.epoll.modify(conn.stream.as_fd(), &mut event).is_err() {
                self.close(token);
            }
        }
    }

    /// The connection is over and its frames are out: our side is shut, and what the client still
    /// sends is read and dropped for [`LINGER`] (so that a close does not reset a GOAWAY away).
    fn h2_linger(&mut self, token: usize) {
        if let Some(mut session) = self.sessions.get_mut(token).and_then(Option::take) {
            session.abandon_all(self.ctx);
        }
        let Some(conn) = self.conns[token].as_mut() else { return };
        conn.stream.shutdown_write();
        conn.rbuf.clear();
        conn.phase = Phase::Lingering;
        conn.deadline = Instant::now() + LINGER;
        conn.writing = true;
        self.want_write(token, false);
    }

    /// A client cut off for abuse gets its GOAWAY if the socket takes it at once, and nothing it had
    /// queued: the connection is reset.
    fn h2_cut(&mut self, token: usize) {
        let Some(conn) = self.conns[token].as_mut() else { return };
        let mut goaway = Vec::new();
        write_goaway(&mut goaway, 0, ErrorCode::EnhanceYourCalm);
        let _ = conn.stream.write_some(&mut goaway);
        conn.stream.reset_on_close();
        self.close(token);
    }

    /// Writes out what host calls recorded on HTTP/2 streams since the loop last looked.
    pub(super) fn settle_h2(&mut self) -> bool {
        let touched = h2::touched();
        for &(token, id) in &touched {
            if let (Some(conn), Some(Some(session))) =
                (self.conns[token].as_ref(), self.sessions.get_mut(token))
            {
                session.pump_stream(id, &conn.info, self.ctx);
            }
        }
        for &(token, _) in &touched {
            self.h2_flush(token);
        }
        !touched.is_empty()
    }

    /// The deadlines of an HTTP/2 connection, every tick: idle past `--keep-alive`, a client that
    /// does not take its frames at the minimum rate (the connection), a stream whose window stays
    /// shut (that stream).
    pub(super) fn sweep_h2(&mut self, token: usize, now: Instant, waited: Duration, moved: u64) {
        let (Some(conn), Some(Some(session))) = (self.conns[token].as_mut(), self.sessions.get_mut(token))
        else {
            return;
        };
        let rule = self.ctx.settings.min_rate;
        if conn.writing && conn.pace.record(waited, moved, rule) {
            crate::worker::pace::dropped(
                self.ctx.lane(0),
                rule,
                "taking its HTTP/2 frames",
                conn.info.peer_ip,
            );
            conn.stream.reset_on_close();
            return self.close(token);
        }
        session.sweep(waited, rule, &conn.info, self.ctx);
        // Idle counts from the last tick that found a stream open.
        if !session.is_idle() {
            conn.deadline = now + self.ctx.settings.keep_alive;
        } else if now >= conn.deadline {
            session.go_away();
        }
        self.h2_flush(token);
    }

    /// The worker is stopping: GOAWAY on every HTTP/2 connection; their streams finish.
    pub(super) fn stop_h2(&mut self) {
        for token in 0..self.sessions.len() {
            if let Some(Some(session)) = self.sessions.get_mut(token) {
                session.go_away();
                self.h2_flush(token);
            }
        }
    }
}
