//! The chaos suite's short versions (issue 7). Each test runs one scenario of `tests/chaos/chaos.py` —
//! the driver `make chaos` runs at full size on every worker class — against the worker class under
//! test (`RUSTGUN_TEST_WORKER_CLASS`), at a size that takes seconds: 2 s of SIGKILLs, 100 slowloris
//! connections (10 under `sync`, 20 under `threads`, whose slots they hold in turn), 10 MiB bodies,
//! 20,000 requests, 500 hostile requests, a crowd of 50 + 50 stalled clients and 300 endless heads
//! (fewer under the blocking classes). The driver starts this build's `rustgun` with `libchaos.so`,
//! counts every request's outcome (ok, failed to connect, failed mid-response, wrong status), checks
//! the scenario's promise and prints its figures; the test fails with those figures when a promise is
//! broken. The driver's verdict is PASS (exit 0) or FAIL (exit 1): every feature a scenario exercises
//! (HUP reload, USR2 upgrade, USR1 log reopening, the `--timeout` heartbeat kill) is expected to work,
//! and its absence is a failure. Scenario 1 counts as lost only the requests in flight on a worker when
//! it was killed; any other failure fails it.

use crate::procs::{TempDir, poll_for};
use crate::support::{app, is_zombie, pyenv, worker_class};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One scenario at a time: each loads both cores for a few seconds.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// The longest a short scenario may run; the driver bounds each of its own waits well within it.
const BOUND: Duration = Duration::from_secs(240);

/// Runs scenario `n` on this suite's worker class.
fn scenario(n: u32) {
    use std::os::unix::process::CommandExt;
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("chaos");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chaos/chaos.py");
    let class = worker_class();
    let (binary, lib) = (env!("CARGO_BIN_EXE_rustgun"), app("chaos"));
    let mut cmd = Command::new(pyenv().join("bin/python"));
    cmd.arg(driver).args(["--short", "--classes", &class, "--scenarios", &n.to_string()]);
    cmd.args(["--bin", binary, "--lib", &lib]);
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .process_group(0);
    let mut child = cmd.spawn().expect("run tests/chaos/chaos.py with target/pyenv's python");
    let started = Instant::now();
    let status = poll_for(BOUND, || child.try_wait().expect("wait for the driver"));
    if status.is_none() {
        // TERM lets the driver kill the servers it started (they also die with it: PDEATHSIG); what is
        // left of its group once it has exited (a zombie, not reaped, so its pid still names the
        // group), or after 3 s, is killed.
        let pgid = child.id() as i32;
        // SAFETY: kill(2) on the process group this test created.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let _ = poll_for(Duration::from_secs(3), || is_zombie(pgid).then_some(()));
        // SAFETY: as above.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let figures: Vec<&str> =
        out.lines().filter(|l| l.starts_with("chaos S") || l.starts_with("    ")).collect();
    // Exit 0 is PASS; anything else (1 for a broken promise, a crash, a timeout) fails the test.
    match status.and_then(|s| s.code()) {
        Some(0) => println!("{}", figures.join("\n")),
        code => {
            panic!("chaos scenario {n} on {class}: exit {code:?} after {:?}\n{out}\n{err}", started.elapsed())
        }
    }
}

#[test]
fn chaos_1_sigkill_every_200ms_fails_only_the_requests_in_flight_on_killed_workers() {
    scenario(1);
}

#[test]
fn chaos_2_hup_usr2_winch_quit_and_ttin_ttou_storms_fail_no_request() {
    scenario(2);
}

#[test]
fn chaos_3_panic_abort_and_loop_cost_only_their_own_worker() {
    scenario(3);
}

#[test]
fn chaos_4_slowloris_connections_do_not_starve_other_clients() {
    scenario(4);
}

#[test]
fn chaos_5_large_bodies_stay_under_64_mib_and_stalled_clients_time_out() {
    scenario(5);
}

#[test]
fn chaos_6_requests_in_a_row_leak_no_memory_and_no_descriptors() {
    scenario(6);
}

#[test]
fn chaos_7_operational_faults_give_a_clear_error_or_degrade_gracefully() {
    scenario(7);
}

#[test]
fn chaos_8_hostile_bytes_get_valid_responses_or_closes_and_crash_no_worker() {
    scenario(8);
}

#[test]
fn chaos_9_a_crowd_of_stalled_readers_and_trickling_uploads_is_dropped_while_others_are_served() {
    scenario(9);
}

#[test]
fn chaos_10_unfinished_maximal_heads_stay_under_64_mib_and_get_408() {
    scenario(10);
}
