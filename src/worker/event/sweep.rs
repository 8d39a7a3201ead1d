//! The loop's deadlines, checked every tick: idle and lingering connections close, a late head or
//! body gets 408, a client slower than the minimum rate is dropped (also one that an async app's
//! pending call waits on, for its body or to take its response).

use crate::http::conn::{After, Expiry};
use crate::worker::connection;
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
            // A pending call waits on its client while the client has output to take, or while the
            // app waits for body bytes only the client can bring.
            let app_reads = conn.phase == Phase::Pending
                && self.pending[token].as_ref().is_some_and(|p| p.borrow().wants_input());
            let sends_body = matches!(conn.phase, Phase::Body | Phase::Discard) || app_reads;
            let waiting = sends_body
                || (matches!(conn.phase, Phase::Writing(_) | Phase::Streaming | Phase::Pending)
                    && conn.writing);
            let (waited, moved) = (now.duration_since(conn.paced), std::mem::take(&mut conn.moved));
            conn.paced = now;
            if conn.phase == Phase::Http2 {
                self.sweep_h2(token, now, waited, moved);
                continue;
            }
            let slow = waiting && conn.pace.record(waited, moved, self.ctx.settings.min_rate);
            if matches!(conn.phase, Phase::Writing(_) | Phase::Streaming | Phase::Pending | Phase::Discard) {
                if slow {
                    let rule = self.ctx.settings.min_rate;
                    let taking = if sends_body { "sending its body" } else { "taking its response" };
                    crate::worker::pace::dropped(self.ctx.lane(0), rule, taking, conn.info.peer_ip);
                    conn.stream.reset_on_close();
                    self.close(token);
                }
                continue;
            }
            // A body has no deadline of its own: only the minimum rate ends it.
            let expired = if conn.phase == Phase::Body { slow } else { now >= conn.deadline };
            if !expired {
                continue;
            }
            match conn.phase {
                Phase::Writing(_)
                | Phase::Streaming
                | Phase::Upgraded
                | Phase::Pending
                | Phase::Discard
                | Phase::Http2 => {}
                Phase::Proxy | Phase::Lingering => self.close(token),
                // What a late client gets is the connection's to say (a quiet close, or 408).
                Phase::Idle | Phase::Head | Phase::Body => match conn.proto.expire(!conn.rbuf.is_empty()) {
                    Expiry::Quiet | Expiry::Drop => self.close(token),
                    Expiry::Refuse(e) => {
                        if conn.phase == Phase::Body
                            && let Some(lane) = self.ctx.lane(0)
                        {
                            lane.dropped_too_slow();
                        }
                        conn.gather = None;
                        let answer = (&mut conn.proto, &mut conn.out);
                        connection::refuse(answer, &mut self.shared, &conn.info, self.ctx, e, now);
                        conn.rbuf.clear();
                        conn.phase = Phase::Writing(After::Linger);
                        self.drive(token);
                    }
                },
            }
        }
    }
}
