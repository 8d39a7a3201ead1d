//! What `rustgun status` shows and `/status.json` serves: one row per live worker — pid, state,
//! requests served, requests in flight, the oldest current request's line and age, RSS, uptime and
//! loop lag — plus the server's totals (requests, the duration histogram) that the `/status` page
//! turns into its requests-per-second and latency chart. Read from the scoreboard and the master's own
//! records, and `/proc/PID/statm` for the RSS; rendered as a text table or as JSON.
//!
//! Not here: where it is asked for (`control`, `exporter`), the Prometheus text (`metrics`).

use super::Arbiter;
use super::workers::WorkerSlot;
use crate::sys::scoreboard::{self, Counters, DURATION_BOUNDS_US};
use std::fmt::Write as _;

/// A worker's state, as the table says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Forked, not yet ready.
    Booting,
    /// Ready, no request in flight.
    Idle,
    /// Ready, answering at least one request.
    Busy,
    /// Told to stop (TTOU, a reload, a stop): finishing what it has.
    Stopping,
    /// Aborted for silence (`--timeout`).
    Aborted,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Booting => "booting",
            State::Idle => "idle",
            State::Busy => "busy",
            State::Stopping => "stopping",
            State::Aborted => "aborted",
        }
    }
}

/// One worker's row.
#[derive(Debug)]
pub struct Row {
    pub pid: i32,
    pub id: u32,
    pub generation: u32,
    pub state: State,
    pub requests: u64,
    pub in_flight: u64,
    /// The oldest request in flight: its request line and age in milliseconds.
    pub request: Option<(String, u64)>,
    /// Resident memory in bytes, when `/proc` tells.
    pub rss: Option<u64>,
    pub uptime_ms: u64,
    /// How long its busiest thread has been away from its wait (an event loop's lag), milliseconds.
    pub lag_ms: u64,
}

/// The whole answer.
#[derive(Debug)]
pub struct Status {
    pub master: i32,
    pub class: &'static str,
    pub target: u32,
    pub rows: Vec<Row>,
    /// Every request so far, exited workers' included.
    pub totals: Counters,
    /// The master's monotonic clock, milliseconds: successive answers give rates.
    pub now_ms: u64,
}

/// Resident memory of `pid` in bytes, from `/proc/PID/statm` (its second field, in pages).
fn rss(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten()?;
    Some(pages * page as u64)
}

impl Arbiter {
    /// The workers and totals as the scoreboard and the master's records have them now.
    pub(super) fn status(&self) -> Status {
        let now = scoreboard::now_ms();
        let mut totals = self.retired.clone();
        let rows = self
            .workers
            .iter()
            .map(|(pid, w)| {
                let mut row = Row {
                    pid: pid.as_raw(),
                    id: w.id,
                    generation: w.generation,
                    state: State::Booting,
                    requests: 0,
                    in_flight: 0,
                    request: None,
                    rss: rss(pid.as_raw()),
                    uptime_ms: w.started.elapsed().as_millis() as u64,
                    lag_ms: 0,
                };
                if let Some(slot) = self.scoreboard.get(w.slot) {
                    let counters = slot.counters();
                    row.requests = counters.requests;
                    totals.add(&counters);
                    row.in_flight = slot.lanes().filter(|l| l.serving()).count() as u64;
                    row.request = slot.lanes().filter_map(|l| l.request(now)).max_by_key(|(_, age)| *age);
                    row.lag_ms = slot.lanes().filter_map(|l| l.silent_for(now)).max().unwrap_or(0);
                }
                row.state = state(w, row.in_flight);
                row
            })
            .collect();
        Status {
            master: self.pid.as_raw(),
            class: self.config.effective_class().name(),
            target: self.target,
            rows,
            totals,
            now_ms: now,
        }
    }
}

fn state(w: &WorkerSlot, in_flight: u64) -> State {
    if w.aborted.is_some() {
        State::Aborted
    } else if w.stop_deadline.is_some() {
        State::Stopping
    } else if !w.booted {
        State::Booting
    } else if in_flight > 0 {
        State::Busy
    } else {
        State::Idle
    }
}

/// `1.2s`, `850ms`, `3m04s`, `2h05m`, `3d04h`.
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}.{}s", s, ms % 1000 / 100),
        60_000..3_600_000 => format!("{}m{:02}s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `812K`, `12.5M`, `1.2G`.
fn bytes(n: u64) -> String {
    const K: u64 = 1024;
    match n {
        0..K => format!("{n}B"),
        K..0x10_0000 => format!("{}K", n / K),
        0x10_0000..0x4000_0000 => format!("{:.1}M", n as f64 / (K * K) as f64),
        _ => format!("{:.1}G", n as f64 / (K * K * K) as f64),
    }
}

/// A JSON string literal of `s`.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list(values: impl IntoIterator<Item = u64>) -> String {
    let items: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(","))
}

impl Status {
    /// The table `rustgun status` prints: a summary line, then one row per worker.
    pub fn text(&self) -> String {
        let mut out = format!(
            "master {}, {} workers (target {}), {} class, {} requests served\n",
            self.master,
            self.rows.len(),
            self.target,
            self.class,
            self.totals.requests
        );
        let head = ["PID", "WORKER", "STATE", "REQUESTS", "IN FLIGHT", "RSS", "UPTIME", "LAG", "REQUEST"];
        let mut cells: Vec<[String; 9]> = vec![head.map(str::to_string)];
        for r in &self.rows {
            let request = match &r.request {
                Some((line, age)) => format!("{line} ({})", duration(*age)),
                None => "-".to_string(),
            };
            cells.push([
                r.pid.to_string(),
                r.id.to_string(),
                r.state.name().to_string(),
                r.requests.to_string(),
                r.in_flight.to_string(),
                r.rss.map_or_else(|| "-".to_string(), bytes),
                duration(r.uptime_ms),
                duration(r.lag_ms),
                request,
            ]);
        }
        let mut widths = [0; 9];
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &cells {
            let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// The same as JSON (what `/status.json` serves): durations in milliseconds, RSS in bytes
    /// (`null` when unknown), the current request as `{"line", "age_ms"}` or `null`, and the totals
    /// with the duration histogram's buckets (`bounds_us`, each bucket's own count, then `+Inf`).
    pub fn json(&self) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                let request = match &r.request {
                    Some((line, age)) => format!("{{\"line\":{},\"age_ms\":{age}}}", json_str(line)),
                    None => "null".to_string(),
                };
                let rss = r.rss.map_or_else(|| "null".to_string(), |b| b.to_string());
                format!(
                    "{{\"pid\":{},\"worker\":{},\"generation\":{},\"state\":\"{}\",\"requests\":{},\
                     \"in_flight\":{},\"request\":{request},\"rss_bytes\":{rss},\"uptime_ms\":{},\"lag_ms\":{}}}",
                    r.pid,
                    r.id,
                    r.generation,
                    r.state.name(),
                    r.requests,
                    r.in_flight,
                    r.uptime_ms,
                    r.lag_ms
                )
            })
            .collect();
        let t = &self.totals;
        format!(
            "{{\"master\":{},\"class\":\"{}\",\"target\":{},\"now_ms\":{},\"workers\":[{}],\
             \"totals\":{{\"requests\":{},\"status\":{},\"duration_sum_us\":{},\"bounds_us\":{},\"duration\":{}}}}}\n",
            self.master,
            self.class,
            self.target,
            self.now_ms,
            rows.join(","),
            t.requests,
            json_list(t.status),
            t.duration_sum_us,
            json_list(DURATION_BOUNDS_US),
            json_list(t.duration.iter().copied()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_at_a_glance() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(1_250), "1.2s");
        assert_eq!(duration(184_000), "3m04s");
        assert_eq!(duration(7_500_000), "2h05m");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d04h");
        assert_eq!(bytes(900), "900B");
        assert_eq!(bytes(812 * 1024), "812K");
        assert_eq!(bytes(12 * 1024 * 1024 + 512 * 1024), "12.5M");
    }

    #[test]
    fn a_request_line_is_escaped_in_json() {
        assert_eq!(json_str("GET /a\"b\\c\u{1}\u{2028} HTTP/1.1"), r#""GET /a\"b\\c\u0001\u2028 HTTP/1.1""#);
    }
}
