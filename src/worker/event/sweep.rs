//! The loop's deadlines, checked every tick: idle and lingering connections close, a late head or
//! body gets 408, a client slower than the minimum rate is dropped.

use crate::http::{Error as HttpError, ErrorKind};
use crate::worker::connection::{self, After, Io};
use std::time::Instant;

use super::{Loop, Phase};

impl Loop<'_, '_> {
    /// Applies the deadlines: idle and lingering connections close, a late head gets 408, a client
    /// that stopped reading is dropped.
    pub(super) fn sweep(&mut self, now: Instant) {
        if !self.accepting && !self.stopping && self.live < self.max_conns {
            self.set_accepting(true);
        }
        for token in 0..self.conns.len() {
            let Some(conn) = self.conns[token].as_mut() else { continue };
            let waiting = conn.phase == Phase::Body
                || (matches!(conn.phase, Phase::Writing(_) | Phase::Streaming) && conn.writing);
            let (waited, moved) = (now.duration_since(conn.paced), std::mem::take(&mut conn.moved));
            conn.paced = now;
            let slow = waiting && conn.pace.record(waited, moved, self.ctx.settings.min_rate);
            if matches!(conn.phase, Phase::Writing(_) | Phase::Streaming) {
                if slow {
                    let rule = self.ctx.settings.min_rate;
                    crate::worker::pace::dropped(
                        self.ctx.lane(0),
                        rule,
                        "taking its response",
                        conn.info.peer_ip,
                    );
                    self.close(token);
                }
                continue;
            }
            let slow_body = conn.phase == Phase::Body && slow;
            if now < conn.deadline && !slow_body {
                continue;
            }
            match conn.phase {
                Phase::Writing(_) | Phase::Streaming => {}
                Phase::Proxy | Phase::Idle | Phase::Lingering => self.close(token),
                Phase::Head | Phase::Body => {
                    let e = match conn.phase {
                        Phase::Head => {
                            HttpError::new(ErrorKind::HeadTimeout, "request head not received in time")
                        }
                        _ if slow_body => {
                            if let Some(lane) = self.ctx.lane(0) {
                                lane.dropped_too_slow();
                            }
                            HttpError::new(ErrorKind::BodyTimeout, "request body sent slower than --min-rate")
                        }
                        _ => HttpError::new(ErrorKind::BodyTimeout, "request body stalled past --timeout"),
                    };
                    conn.gather = None;
                    let mut io = Io::new(&mut conn.stream, &mut conn.rbuf, &mut conn.out, self.ctx.settings);
                    connection::refuse(&mut io, &mut self.shared, &conn.info, self.ctx, e, now);
                    conn.rbuf.clear();
                    conn.linger = true;
                    conn.phase = Phase::Writing(After::Close);
                    self.drive(token);
                }
            }
        }
    }
}
