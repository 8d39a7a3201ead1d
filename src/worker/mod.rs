//! A worker: a forked child that loads the app, accepts connections on the inherited listeners and
//! serves them until told to stop. Its life cycle is short: boot (signals, app load, `init`), report
//! ready to the master, serve, `shutdown`, exit.
//!
//! Its exit status ([`crate::exit`]): `OK` once it served, `APP_LOAD` when the app could not be
//! loaded or initialised, `WORKER_BOOT` for any other failure before serving.

pub mod connection;
pub mod event;
mod gather;
mod h2;
pub mod pace;
mod websocket;

use crate::app::hooks::{self, About, Hook};
use crate::app::{App, Library, LoadError};
use crate::config::WorkerClass;
use crate::config::{Config, Settings};
use crate::exit;
use crate::logging::access::AccessLog;
use crate::net::{Listener, Peer};
use crate::sys::scoreboard::{Lane, Refusal, Retired, SlotRef};
use connection::Buffers;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustgun_abi::{RG_REQ_MULTIPROCESS, RG_REQ_MULTITHREAD};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What every connection of this worker shares.
pub struct Context<'a> {
    pub app: &'a App,
    pub settings: &'a Settings,
    pub access_log: Option<&'a AccessLog>,
    /// Readable once the worker has been told to stop: wakes idle waits.
    pub stop_fd: BorrowedFd<'a>,
    stop: &'a AtomicBool,
    /// Set by the first thread that acts on the stop, which logs it.
    stop_logged: AtomicBool,
    /// The write end of the stop pipe, for stopping from inside (`--max-requests`).
    stop_wr: Option<BorrowedFd<'a>>,
    requests: AtomicU64,
    /// Retire after this many requests (`--max-requests` plus jitter); 0 = never.
    max_requests: u64,
    /// This worker's scoreboard slot: liveness and counters the master reads.
    slot: Option<SlotRef<'a>>,
}

impl<'a> Context<'a> {
    /// A context for serving with `app` under `settings`, stopping once `stop` is set (and `stop_fd`
    /// becomes readable). A forked worker builds one in [`run`]; tests of the hot path build their own.
    pub fn new(
        app: &'a App,
        settings: &'a Settings,
        stop_fd: BorrowedFd<'a>,
        stop: &'a AtomicBool,
    ) -> Context<'a> {
        Context {
            app,
            settings,
            access_log: None,
            stop_fd,
            stop,
            stop_logged: AtomicBool::new(false),
            stop_wr: None,
            requests: AtomicU64::new(0),
            max_requests: 0,
            slot: None,
        }
    }

    /// The worker was told to stop: finish the current request and close.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Logs `Worker stopping (pid: N)`, once per worker, from the first thread to act on the stop: an
    /// accept loop leaving, an idle keep-alive connection that has begun its grace, or the event loop
    /// once its idle connections have theirs. The thread that logs it accepts nothing more.
    pub(in crate::worker) fn log_stopping(&self) {
        if !self.stop_logged.swap(true, Ordering::Relaxed) {
            tracing::info!("Worker stopping (pid: {})", std::process::id());
        }
    }

    /// Scoreboard lane `i` (each serving thread owns one), when the worker has a slot.
    pub fn lane(&self, i: usize) -> Option<&'a Lane> {
        self.slot.and_then(|s| s.lane(i))
    }

    /// Counts a connection closed unserved for `why`, on the calling thread's `lane` (the event loop's
    /// when it has none of its own).
    pub fn count_refused(&self, lane: Option<&Lane>, why: Refusal) {
        if let Some(lane) = lane.or_else(|| self.lane(0)) {
            lane.refused(why);
        }
    }

    /// Whether the request being answered is the last before `--max-requests` retires the worker: its
    /// response then says `Connection: close`.
    pub fn last_request(&self) -> bool {
        self.max_requests != 0 && self.requests.load(Ordering::Relaxed) + 1 >= self.max_requests
    }

    /// Counts a finished request (on its lane too); the one that reaches `--max-requests` retires the
    /// worker: it stops accepting, finishes what it has, exits 0, and the master replaces it.
    pub fn count_request(&self, lane: Option<&Lane>, status: u16, started: Instant) {
        let took = started.elapsed();
        if let Some(lane) = lane {
            lane.end(status, took.as_micros() as u64);
        }
        if let Some(statsd) = crate::logging::statsd::get() {
            statsd.request(status, took);
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.max_requests {
            tracing::info!("Autorestarting worker after current request.");
            if let Some(slot) = self.slot {
                slot.retire(Retired::MaxRequests);
            }
            self.stop.store(true, Ordering::Relaxed);
            if let Some(fd) = self.stop_wr {
                let _ = nix::unistd::write(fd, b"!");
            }
        }
    }
}

/// How many scoreboard lanes (serving threads) a worker under `config` has: one per connection thread,
/// and under `event` one for the loop plus one per app-call pool thread.
pub fn lanes(config: &Config) -> usize {
    let threads = config.threads as usize;
    match config.effective_class() {
        WorkerClass::Sync => 1,
        WorkerClass::Threads => threads,
        WorkerClass::Event if threads > 1 => 1 + threads,
        WorkerClass::Event => 1,
    }
}

/// The class that serves `lib` under `config`, and whether its calls may run on several threads at
/// once. An async app's calls all run on one event loop, so `threads` serves it with the event
/// loop (`sync`, one blocking request at a time, refuses it); any other app gets the class asked for.
pub fn serving_class(config: &Config, lib: &Library) -> Result<(WorkerClass, bool), LoadError> {
    let class = config.effective_class();
    if lib.is_async() {
        lib.check_class(class.name(), false, class != WorkerClass::Sync)?;
        return Ok((WorkerClass::Event, false));
    }
    lib.check_class(class.name(), config.multithreaded(), false)?;
    Ok((class, config.multithreaded()))
}

/// Everything a freshly forked worker gets from the master.
pub struct Boot<'a> {
    pub id: u32,
    /// How many workers the master had forked before this one (gunicorn's `worker.age`).
    pub age: u32,
    pub config: &'a Config,
    pub listeners: &'a [Listener],
    /// The app library when `--preload` opened it in the master.
    pub preloaded: Option<Library>,
    /// The write end of the master's report pipe.
    pub report: OwnedFd,
    /// This worker's scoreboard slot.
    pub slot: SlotRef<'a>,
    /// The process title (`rustgun: worker [NAME]`).
    pub title: &'a str,
    pub master: nix::unistd::Pid,
    /// The signal mask to restore once the worker's handlers are installed; every signal is blocked
    /// until then (see [`crate::sys::signals::Blocked`]).
    pub sigmask: nix::sys::signal::SigSet,
}

/// The worker's whole life; returns its exit code.
pub fn run(boot: Boot<'_>) -> i32 {
    crate::logging::set_worker(boot.id);
    let pid = std::process::id();
    tracing::info!("Booting worker with pid: {pid}");
    let about = hooks::worker(boot.master.as_raw(), pid as i32, boot.id, boot.age, boot.config.workers);
    hooks::run(Hook::PostFork, about);
    if let Err(e) = crate::sys::title::set(boot.title, "rustgun worker") {
        tracing::debug!("cannot set the process title: {e}");
    }
    let mut report = std::fs::File::from(boot.report);
    // `-e` as the configuration this worker was forked under says (a reload may have changed it).
    boot.config.export_env();

    // Die with the master: if it is killed outright, finish gracefully rather than linger.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
    if nix::unistd::getppid() != boot.master {
        return exit::OK;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (stop_rd, stop_wr) =
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK) {
            Ok(p) => p,
            Err(e) => {
                return fail(&mut report, exit::WORKER_BOOT, &format!("cannot create the stop pipe: {e}"));
            }
        };
    if let Err(e) = crate::sys::signals::install_worker(&stop, &stop_wr, exit_hooks(about)) {
        return fail(&mut report, exit::WORKER_BOOT, &format!("cannot install signal handlers: {e}"));
    }
    let access_log = match &boot.config.access_logfile {
        Some(target) => match AccessLog::open(target, &boot.config.access_log_format) {
            Ok(log) => Some(log),
            Err(e) => {
                return fail(
                    &mut report,
                    exit::WORKER_BOOT,
                    &format!("cannot open access log {target}: {e}"),
                );
            }
        },
        None => None,
    };
    let reopen = log_files(boot.config, &access_log);
    if let Err(e) = crate::sys::signals::reopen_logs_on_usr1(reopen) {
        return fail(&mut report, exit::WORKER_BOOT, &format!("cannot install the USR1 handler: {e}"));
    }
    // A signal sent while the worker was starting was held back; it now reaches our own handler.
    if let Err(e) = boot.sigmask.thread_set_mask() {
        return fail(&mut report, exit::WORKER_BOOT, &format!("cannot unblock signals: {e}"));
    }

    // Before the app is loaded: it never runs with the master's privileges (unless --preload).
    if let Some(identity) = &boot.config.identity
        && let Err(e) = identity.assume()
    {
        return fail(&mut report, exit::WORKER_BOOT, &e.to_string());
    }
    let lib = match boot.preloaded.map_or_else(|| Library::open(&boot.config.app), Ok) {
        Ok(lib) => lib,
        Err(e) => return fail(&mut report, exit::APP_LOAD, &e.to_string()),
    };
    let (class, multithreaded) = match serving_class(boot.config, &lib) {
        Ok(serving) => serving,
        Err(e) => return fail(&mut report, exit::APP_LOAD, &e.to_string()),
    };
    if class != boot.config.effective_class() {
        tracing::info!(
            "Serving the async app {} on an event loop: its calls outlive handle",
            boot.config.app
        );
    }
    let flags = RG_REQ_MULTIPROCESS | if multithreaded { RG_REQ_MULTITHREAD } else { 0 };
    let app = match lib.start(boot.id, &boot.config.app_args, flags) {
        Ok(app) => app,
        Err(e) => return fail(&mut report, exit::APP_LOAD, &e.to_string()),
    };
    hooks::run(Hook::PostWorkerInit, about);
    // Under --reuse-port each worker listens on sockets of its own; otherwise it shares the master's.
    let own: Vec<Option<Listener>> = match boot
        .listeners
        .iter()
        .map(|l| l.own_for_worker(boot.config.backlog, boot.config.reuse_port))
        .collect::<std::io::Result<_>>()
    {
        Ok(l) => l,
        Err(e) => {
            return fail(
                &mut report,
                exit::WORKER_BOOT,
                &format!("cannot open this worker's listening sockets: {e}"),
            );
        }
    };
    let listeners: Vec<&Listener> =
        boot.listeners.iter().zip(&own).map(|(shared, own)| own.as_ref().unwrap_or(shared)).collect();
    let settings = boot.config.settings();
    boot.slot.set_lanes(lanes(boot.config));
    let ctx = Context {
        access_log: access_log.as_ref(),
        stop_wr: Some(stop_wr.as_fd()),
        max_requests: request_limit(boot.config.max_requests, boot.config.max_requests_jitter),
        slot: Some(boot.slot),
        ..Context::new(&app, &settings, stop_rd.as_fd(), &stop)
    };
    send_report(&mut report, &format!("R {pid}"));
    drop(report);

    match class {
        WorkerClass::Sync => accept_loop(boot.id, 0, &listeners, &ctx, flags),
        WorkerClass::Threads => std::thread::scope(|scope| {
            for lane in 0..boot.config.threads as usize {
                let (listeners, ctx) = (&listeners, &ctx);
                scope.spawn(move || accept_loop(boot.id, lane, listeners, ctx, flags));
            }
        }),
        WorkerClass::Event => event::run(boot.id, &listeners, &ctx, flags, boot.config),
    }

    app.shutdown();
    tracing::info!("Worker exiting (pid: {pid})");
    hooks::run(Hook::WorkerExit, about);
    exit::OK
}

/// The config file's `worker_int` and `worker_abort`, when it defines them, as the signal thread
/// runs them ([`crate::sys::signals::install_worker`]).
fn exit_hooks(about: About) -> crate::sys::signals::ExitHooks {
    let at = |hook: Hook| -> Option<Box<dyn Fn() + Send>> {
        hooks::defined(hook).then(|| Box::new(move || hooks::run(hook, about)) as Box<dyn Fn() + Send>)
    };
    crate::sys::signals::ExitHooks { on_quit: at(Hook::WorkerInt), on_abort: at(Hook::WorkerAbort) }
}

/// `--max-requests N` plus a random 0..=J (`--max-requests-jitter`), so that workers started together
/// do not all retire together; 0 when there is no limit.
fn request_limit(max: u64, jitter: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    // splitmix64 over the pid and the clock: enough to spread workers forked from one master.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut z = (u64::from(std::process::id()) << 32 ^ nanos as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    max.saturating_add(z % jitter.saturating_add(1))
}

/// The log files USR1 reopens: each path (as a C string, ready for the handler) and the descriptor
/// it is put back on. `-` (stderr, stdout) is never reopened.
fn log_files(config: &Config, access_log: &Option<AccessLog>) -> Vec<(std::ffi::CString, RawFd)> {
    let mut files = Vec::new();
    if config.error_logfile != "-" {
        let path = std::ffi::CString::new(config.error_logfile.as_str()).ok();
        // `--capture-output`: the app's stdout follows the error log too.
        let fds: &[RawFd] = if config.gunicorn.capture_output { &[2, 1] } else { &[2] };
        files.extend(fds.iter().filter_map(|&fd| path.clone().map(|p| (p, fd))));
    }
    if let (Some(path), Some(fd)) =
        (config.access_logfile.as_deref(), access_log.as_ref().and_then(AccessLog::fd))
    {
        files.extend(std::ffi::CString::new(path).ok().map(|p| (p, fd)));
    }
    files
}

/// Reports a boot failure to the master (one line) and returns the exit code.
fn fail(report: &mut std::fs::File, code: i32, message: &str) -> i32 {
    let message = message.replace('\n', " ");
    send_report(report, &format!("F {} {message}", std::process::id()));
    code
}

/// Sends one report line to the master with a single `write`: a pipe write of at most `PIPE_BUF`
/// bytes is atomic, so the lines of workers booting together never interleave. (`writeln!` on a
/// `File` would issue one `write` per formatted piece.) Longer lines are cut to fit.
fn send_report(report: &mut std::fs::File, line: &str) {
    const MAX: usize = libc::PIPE_BUF - 1;
    let mut end = line.len().min(MAX);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = Vec::with_capacity(end + 1);
    bytes.extend_from_slice(&line.as_bytes()[..end]);
    bytes.push(b'\n');
    let _ = report.write_all(&bytes);
}

/// Accepts and serves connections one at a time until told to stop: the whole of the `sync` class, and
/// each thread of the `threads` class (threads race to accept; the losers see `EAGAIN` and poll again).
fn accept_loop(id: u32, lane: usize, listeners: &[&Listener], ctx: &Context<'_>, flags: u32) {
    let mut bufs = Buffers::default();
    bufs.set_lane(lane);
    let beat = ctx.lane(lane);
    bufs.info.worker_id = id;
    bufs.info.flags = flags;
    bufs.info.url_scheme = "http";
    let locals: Vec<(String, u16)> = listeners.iter().map(|l| l.local()).collect();
    let mut fds: Vec<PollFd<'_>> = listeners
        .iter()
        .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN))
        .chain(std::iter::once(PollFd::new(ctx.stop_fd, PollFlags::POLLIN)))
        .collect();
    // After serving a connection, try every listener again before waiting: under load a queue is
    // rarely empty, and a poll that would return at once is one system call per connection.
    let mut again = false;
    while !ctx.stopping() {
        if !again {
            if let Some(lane) = beat {
                lane.waiting();
            }
            let polled = poll(&mut fds, PollTimeout::from(1000u16));
            if let Some(lane) = beat {
                lane.awake();
            }
            match polled {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("poll on listeners failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        }
        let polled_ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let mut accepted = false;
        for i in 0..listeners.len() {
            if ctx.stopping() {
                break;
            }
            if !again && !polled_ready(i) {
                continue;
            }
            match listeners[i].accept() {
                Ok(Some((stream, peer))) => {
                    accepted = true;
                    if let Some(lane) = beat {
                        lane.accepted();
                    }
                    let Some(stream) = secure(stream, ctx) else { continue };
                    describe_connection(&mut bufs.info, &locals[i], peer);
                    bufs.info.url_scheme = stream.url_scheme();
                    connection::serve(stream, &mut bufs, ctx);
                }
                Ok(None) => {}
                Err(e) if crate::net::out_of_resources(&e) => {
                    // Out of descriptors or memory: back off instead of spinning on a ready listener.
                    tracing::error!("accept failed: {e}; backing off");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            }
        }
        again = accepted;
    }
    ctx.log_stopping();
}

/// Wraps an accepted connection in TLS when the listeners serve TLS (the handshake happens during the
/// first reads, within the header timeout); `None`, logged, when that cannot start.
fn secure(stream: crate::net::Stream, ctx: &Context<'_>) -> Option<crate::net::Stream> {
    match stream.secure(ctx.settings.tls.as_ref()) {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::warn!("cannot start TLS on an accepted connection: {e}");
            None
        }
    }
}

/// Fills the connection facts the request view and environ report.
fn describe_connection(info: &mut crate::app::ConnInfo, local: &(String, u16), peer: Peer) {
    use std::fmt::Write as _;
    info.peer_addr.clear();
    info.peer_port = 0;
    info.peer_ip = None;
    if let Peer::Tcp(addr) = peer {
        let _ = write!(info.peer_addr, "{}", addr.ip());
        info.peer_port = addr.port();
        info.peer_ip = Some(addr.ip());
    }
    info.server_addr.clear();
    info.server_addr.push_str(&local.0);
    info.server_port = local.1;
}
