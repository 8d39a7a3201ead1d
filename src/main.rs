//! The `rustgun` binary: `rustgun status` and `rustgun ctl` ask a running server ([`rustgun::ctl`]);
//! otherwise load the configuration (command line, `RUSTGUN_CMD_ARGS`, `-c FILE`), act on
//! `--print-config` / `--check-config`, set the process up (`--chdir`, `--daemon`, the error log,
//! `-e`), then start the master and run it until it exits.
//!
//! Exit statuses: [`rustgun::exit`].

use rustgun::app::Library;
use rustgun::arbiter::{Arbiter, StartError};
use rustgun::config::{self, Config, ConfigError};
use rustgun::exit;
use rustgun::sys::daemon::{self, Detached};

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `rustgun status` and `rustgun ctl ACTION` ask a running server; anything else starts one.
    if rustgun::ctl::asked(&argv) {
        std::process::exit(rustgun::ctl::main(argv));
    }
    let mut config = match config::load(argv) {
        Ok(config) => config,
        Err(ConfigError::CommandLine(e)) => e.exit(),
        // The app named does not import (or cannot be served): gunicorn's app-load status.
        Err(e @ ConfigError::PythonApp(_)) => {
            eprintln!("rustgun: {e}");
            std::process::exit(exit::APP_LOAD);
        }
        Err(e) => {
            eprintln!("rustgun: {e}");
            std::process::exit(exit::CONFIG);
        }
    };
    if config.print_config {
        print!("{}", config.to_toml());
        return;
    }
    if let Some(dir) = &config.chdir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        eprintln!("rustgun: cannot change to directory {}: {e}", dir.display());
        std::process::exit(exit::FAILED);
    }
    if config.check_config {
        std::process::exit(check(&mut config));
    }
    // A master started by a USR2 upgrade (RUSTGUN_FD set) is the child of one already detached.
    let detached = if config.daemon && std::env::var_os(rustgun::arbiter::ENV_FDS).is_none() {
        match daemon::daemonize(config.error_logfile != "-") {
            Ok(detached) => Some(detached),
            Err(e) => {
                eprintln!("rustgun: cannot daemonize: {e}");
                std::process::exit(exit::FAILED);
            }
        }
    } else {
        None
    };
    if let Err(e) =
        rustgun::logging::init(&config.error_logfile, config.log_level, config.gunicorn.capture_output)
    {
        let message = format!("cannot open error log {}: {e}", config.error_logfile);
        eprintln!("rustgun: {message}");
        if let Some(d) = detached {
            d.failed(&message);
        }
        std::process::exit(exit::FAILED);
    }
    let g = &config.gunicorn;
    if g.log_syslog {
        let prefix = g.log_syslog_prefix.as_deref().or(config.name.as_deref()).unwrap_or_default();
        let access = !g.disable_redirect_access_to_syslog;
        match rustgun::logging::syslog::Syslog::open(&g.log_syslog_to, &g.log_syslog_facility, prefix, access)
        {
            Ok(syslog) => rustgun::logging::syslog::Syslog::install(syslog),
            Err(e) => halt(detached, exit::FAILED, &e.to_string()),
        }
    }
    if let Some(host) = &config.gunicorn.statsd_host {
        match rustgun::logging::statsd::Statsd::open(
            host,
            &config.gunicorn.statsd_prefix,
            &config.gunicorn.dogstatsd_tags,
        ) {
            Ok(statsd) => rustgun::logging::statsd::Statsd::install(statsd),
            Err(e) => halt(detached, exit::FAILED, &format!("cannot open --statsd-host {host}: {e}")),
        }
    }
    config.export_env();
    if let Err(e) = config.load_tls() {
        halt(detached, exit::FAILED, &e.to_string());
    }
    match Arbiter::start(config) {
        Ok(arbiter) => {
            if let Some(d) = detached {
                d.started();
            }
            std::process::exit(arbiter.run());
        }
        Err(e) => {
            let code = match e {
                StartError::Preload(_) | StartError::Hooks(_) => exit::APP_LOAD,
                _ => exit::FAILED,
            };
            halt(detached, code, &e.to_string());
        }
    }
}

/// Logs why the server cannot start, tells a waiting launcher (`--daemon`), and exits with `code`.
fn halt(detached: Option<Detached>, code: i32, message: &str) -> ! {
    tracing::error!("{message}");
    if let Some(d) = detached {
        d.failed(message);
    }
    std::process::exit(code);
}

/// `--check-config`: the configuration loaded; now read the TLS files and open the app library,
/// checking its descriptor as a worker would (its `init` is not run). One line either way; the exit
/// status.
fn check(config: &mut Config) -> i32 {
    let opened = config.load_tls().map_err(|e| e.to_string()).and_then(|()| {
        let lib = Library::open(&config.app).map_err(|e| e.to_string())?;
        rustgun::worker::serving_class(config, &lib).map(drop).map_err(|e| e.to_string())
    });
    match opened {
        Ok(()) => {
            println!(
                "rustgun: configuration OK: app {} opened and its descriptor checked (init not run); {} {} worker(s)",
                config.app,
                config.workers,
                config.effective_class().name()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("rustgun: configuration check failed: {e}");
            exit::FAILED
        }
    }
}
