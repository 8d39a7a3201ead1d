//! The one-line reports workers write to the master's pipe: `R <pid>` once booted, `F <pid> <reason>`
//! just before a failed boot exits; and the `Ready:` announcement once the whole generation is up.

use super::Arbiter;
use crate::sys::systemd;
use nix::unistd::Pid;
use std::io::Read;

impl Arbiter {
    /// Reads the one-line reports workers send: `R <pid>` once booted, `F <pid> <reason>` on failure.
    pub(super) fn read_reports(&mut self) {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = self.report_rd.read(&mut chunk) {
            if n == 0 {
                break;
            }
            self.report_buf.extend_from_slice(&chunk[..n]);
        }
        while let Some(end) = self.report_buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.report_buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let mut parts = line.splitn(3, ' ');
            let (kind, pid) = (parts.next(), parts.next().and_then(|p| p.parse::<i32>().ok()));
            let Some(pid) = pid.map(Pid::from_raw) else { continue };
            match kind {
                Some("R") => {
                    if let Some(w) = self.workers.get_mut(&pid) {
                        w.booted = true;
                    }
                }
                Some("F") => {
                    self.failures.insert(pid, parts.next().unwrap_or("").to_string());
                }
                _ => {}
            }
        }
        if !self.ready_announced && self.current().filter(|(_, w)| w.booted).count() == self.target as usize {
            self.ready_announced = true;
            tracing::info!("Ready: {} workers serving", self.target);
            if self.old_master.is_some() {
                // The service manager's main process is this master from now on (NotifyAccess=all).
                systemd::notify(&format!("MAINPID={}", self.pid));
            }
            systemd::notify("READY=1");
        }
    }
}
