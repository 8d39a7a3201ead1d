//! What `--metrics-bind` reports, in Prometheus text exposition (format 0.0.4). The master answers
//! scrapes itself ([`super::exporter`]), never a worker or the app, so it answers while every worker is
//! busy — which is when it matters.
//!
//! The numbers come from the scoreboard the workers write (no I/O on their request path), plus what the
//! master knows itself: which workers exited and why, and the listen queue's depth, read from
//! `/proc/net/tcp` (`rx_queue` of a listening socket is its accept queue), and the connections the
//! kernel dropped at full listen queues, from `/proc/net/netstat`.

use super::Arbiter;
use crate::net::Listener;
use crate::sys::scoreboard::{Counters, DURATION_BOUNDS_US, Refusal};
use std::fmt::Write as _;
use std::os::fd::AsRawFd;

/// What one scrape reports.
pub struct Snapshot<'a> {
    pub counters: Counters,
    pub in_flight: u64,
    pub busy: u64,
    pub idle: u64,
    /// Each worker's id and its lag in milliseconds: how long its busiest thread has been away from
    /// its wait (`epoll_wait` for an event loop); 0 while all of them wait.
    pub lags: Vec<(u32, u64)>,
    /// `(reason, detail)` → count; detail is the exit code or the signal.
    pub exits: &'a super::ExitCounts,
    /// Each listener's URL and accept-queue depth (TCP listeners only).
    pub queues: Vec<(String, u64)>,
    /// The kernel's `ListenDrops` for this network namespace, when readable.
    pub listen_drops: Option<u64>,
}

/// The accept-queue depth of each TCP listener, from `/proc/net/tcp` and `/proc/net/tcp6` (each read
/// once per scrape): the row whose inode is the socket's, in state LISTEN (0A), has the queue length
/// in `rx_queue`.
pub fn listen_queues(listeners: &[Listener]) -> Vec<(String, u64)> {
    let tables: Vec<String> =
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().filter_map(|t| std::fs::read_to_string(t).ok()).collect();
    listeners
        .iter()
        .filter_map(|listener| {
            let Listener::Tcp(l) = listener else { return None };
            // The descriptor's link reads `socket:[INODE]`.
            let link = std::fs::read_link(format!("/proc/self/fd/{}", l.as_raw_fd())).ok()?;
            let link = link.to_string_lossy();
            let inode = link.strip_prefix("socket:[")?.strip_suffix(']')?;
            let depth = tables.iter().flat_map(|t| t.lines().skip(1)).find_map(|row| {
                let cols: Vec<&str> = row.split_whitespace().collect();
                if cols.get(3) != Some(&"0A") || cols.get(9) != Some(&inode) {
                    return None;
                }
                u64::from_str_radix(cols.get(4)?.split(':').nth(1)?, 16).ok()
            })?;
            Some((listener.url(), depth))
        })
        .collect()
}

/// The kernel's `TcpExt: ListenDrops` from `/proc/net/netstat`: connection attempts dropped at a full
/// (or failing) listen queue, summed over the network namespace.
pub fn listen_drops() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut rows = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (rows.next()?, rows.next()?);
    let at = names.split_whitespace().position(|n| n == "ListenDrops")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The Prometheus text for `s`.
pub fn render(s: &Snapshot<'_>) -> String {
    let mut out = String::with_capacity(4096);
    let c = &s.counters;
    family(&mut out, "rustgun_requests_total", "counter", "Requests answered, by status class.");
    for (i, n) in c.status.iter().enumerate() {
        let _ = writeln!(out, "rustgun_requests_total{{status=\"{}xx\"}} {n}", i + 1);
    }
    family(
        &mut out,
        "rustgun_request_duration_seconds",
        "histogram",
        "Time from a complete request head to the end of its response.",
    );
    let mut cumulative = 0;
    for (bound, n) in DURATION_BOUNDS_US.iter().zip(&c.duration) {
        cumulative += n;
        let le = *bound as f64 / 1e6;
        let _ = writeln!(out, "rustgun_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}");
    }
    cumulative += c.duration[DURATION_BOUNDS_US.len()];
    let _ = writeln!(out, "rustgun_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "rustgun_request_duration_seconds_sum {}", c.duration_sum_us as f64 / 1e6);
    let _ = writeln!(out, "rustgun_request_duration_seconds_count {cumulative}");
    family(&mut out, "rustgun_requests_in_flight", "gauge", "Requests being answered now.");
    let _ = writeln!(out, "rustgun_requests_in_flight {}", s.in_flight);
    family(
        &mut out,
        "rustgun_workers",
        "gauge",
        "Live workers: busy ones are answering a request, idle ones are not.",
    );
    let _ = writeln!(out, "rustgun_workers{{state=\"busy\"}} {}", s.busy);
    let _ = writeln!(out, "rustgun_workers{{state=\"idle\"}} {}", s.idle);
    family(
        &mut out,
        "rustgun_worker_exits_total",
        "counter",
        "Worker exits by reason: exit (with its code), signal, timeout (aborted by --timeout), max_requests.",
    );
    for ((reason, detail), n) in s.exits {
        let label = match *reason {
            "exit" => format!("reason=\"exit\",code=\"{detail}\""),
            "signal" => format!("reason=\"signal\",signal=\"{detail}\""),
            _ => format!("reason=\"{reason}\""),
        };
        let _ = writeln!(out, "rustgun_worker_exits_total{{{label}}} {n}");
    }
    family(&mut out, "rustgun_connections_accepted_total", "counter", "Connections accepted by the workers.");
    let _ = writeln!(out, "rustgun_connections_accepted_total {}", c.accepted);
    family(
        &mut out,
        "rustgun_connections_refused_total",
        "counter",
        "Connections the workers closed unserved, by reason: proxy (PROXY header from a peer outside \
         --proxy-allow-ips, or malformed), tls (TLS handshake failed).",
    );
    for (label, n) in Refusal::LABELS.iter().zip(&c.refused) {
        let _ = writeln!(out, "rustgun_connections_refused_total{{reason=\"{label}\"}} {n}");
    }
    family(
        &mut out,
        "rustgun_worker_lag_seconds",
        "gauge",
        "How long each worker's busiest thread has been away from its wait (for an event loop, since \
         epoll_wait last returned); --timeout aborts a worker whose lag passes it.",
    );
    for (id, ms) in &s.lags {
        let _ = writeln!(out, "rustgun_worker_lag_seconds{{worker=\"{id}\"}} {:.3}", *ms as f64 / 1000.0);
    }
    family(
        &mut out,
        "rustgun_slow_clients_dropped_total",
        "counter",
        "Connections dropped for taking their response slower than --min-rate bytes a second over \
         --min-rate-period.",
    );
    let _ = writeln!(out, "rustgun_slow_clients_dropped_total {}", c.too_slow);
    family(
        &mut out,
        "rustgun_event_loop_write_waits_total",
        "counter",
        "App writes on an event loop that waited for their client because its output queue was full.",
    );
    let _ = writeln!(out, "rustgun_event_loop_write_waits_total {}", c.push_waits);
    if let Some(drops) = s.listen_drops {
        family(
            &mut out,
            "rustgun_listen_drops_total",
            "counter",
            "Connection attempts the kernel dropped because a listen queue was full, in this network \
             namespace (every listening socket's, not only rustgun's: Linux counts no further).",
        );
        let _ = writeln!(out, "rustgun_listen_drops_total {drops}");
    }
    family(
        &mut out,
        "rustgun_listen_queue_depth",
        "gauge",
        "Connections waiting in a listening socket's accept queue (TCP listeners).",
    );
    for (url, depth) in &s.queues {
        let _ = writeln!(out, "rustgun_listen_queue_depth{{listener=\"{url}\"}} {depth}");
    }
    out
}

impl Arbiter {
    /// The metrics as the scoreboard and the master's own records have them now.
    pub(super) fn render_metrics(&self) -> String {
        let status = self.status();
        let in_flight = status.rows.iter().map(|r| r.in_flight).sum();
        let busy = status.rows.iter().filter(|r| r.in_flight > 0).count() as u64;
        let idle = status.rows.len() as u64 - busy;
        let mut lags: Vec<(u32, u64)> = status.rows.iter().map(|r| (r.id, r.lag_ms)).collect();
        let queues = listen_queues(&self.listeners);
        let listen_drops = listen_drops();
        let exits = &self.exits;
        lags.sort_unstable();
        let counters = status.totals;
        render(&Snapshot { counters, in_flight, busy, idle, lags, exits, queues, listen_drops })
    }
}
