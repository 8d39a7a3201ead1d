//! The `rustgun` binary: parse the command line, start the logs, run the master until it exits.

use clap::Parser;
use rustgun::arbiter::Arbiter;
use rustgun::config::Config;

fn main() {
    let mut config = Config::parse();
    if let Err(e) = rustgun::logging::init(&config.error_logfile, config.log_level) {
        eprintln!("rustgun: cannot open error log {}: {e}", config.error_logfile);
        std::process::exit(1);
    }
    if let Err(e) = config.load_tls() {
        tracing::error!("{e}");
        std::process::exit(1);
    }
    let code = match Arbiter::start(config) {
        Ok(arbiter) => arbiter.run(),
        Err(e) => {
            tracing::error!("{e}");
            match e {
                rustgun::arbiter::StartError::Preload(_) => rustgun::worker::EXIT_APP_LOAD,
                _ => 1,
            }
        }
    };
    std::process::exit(code);
}
