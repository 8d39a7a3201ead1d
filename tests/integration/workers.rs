//! The master keeps its workers: the count asked for, a replacement for each one that dies (reaped,
//! never left a zombie), TTIN/TTOU to grow and shrink, and a crashing app costs one worker, not the
//! server.

use crate::procs::{Bare, is_child_of, lib, live_children, poll_for, zombie_children};
use crate::support::{Server, WAIT};
use std::time::{Duration, Instant};

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a worker of a server this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// The pid `/worker` on the chaos app reports.
fn serving_pid(server: &Server) -> i32 {
    let resp = server.get("/worker");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let text = resp.text();
    text.rsplit(' ').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no pid in {text:?}"))
}

#[test]
fn three_workers_are_three_children_of_the_master() {
    let server = Server::builder("hello").workers(3).start();
    let kids = live_children(server.pid);
    assert_eq!(kids.len(), 3, "children once ready: {kids:?}");
    for kid in &kids {
        assert!(server.log().iter().any(|l| l.contains(&format!("Booting worker with pid: {kid}"))));
    }
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn a_killed_worker_is_reaped_and_replaced_within_a_second() {
    let server = Server::builder("chaos").workers(3).start();
    let before = server.wait_for_workers(3);
    let victim = before[1];

    kill(victim, libc::SIGKILL);
    let killed = Instant::now();
    let after = poll_for(Duration::from_secs(1), || {
        let live = live_children(server.pid);
        (live.len() == 3 && !live.contains(&victim)).then_some(live)
    });
    let after = after.unwrap_or_else(|| {
        panic!(
            "3 workers without {victim} not back within 1 s of the kill; now {:?}",
            live_children(server.pid)
        )
    });
    assert!(killed.elapsed() <= Duration::from_secs(1));
    assert!(!is_child_of(victim, server.pid), "the killed worker {victim} was not reaped");
    assert_eq!(zombie_children(server.pid), Vec::<i32>::new());
    let survivors: Vec<i32> = before.iter().copied().filter(|p| *p != victim).collect();
    assert!(
        survivors.iter().all(|p| after.contains(p)),
        "only the victim is replaced: {before:?} → {after:?}"
    );

    server.wait_for_log(&format!("(pid: {victim}) was sent SIGKILL"));
    assert_eq!(server.get("/ok").text(), "ok");
    assert_eq!(zombie_children(server.pid), Vec::<i32>::new(), "a zombie appeared after serving");
}

#[test]
fn killing_each_worker_in_turn_keeps_the_server_serving() {
    let server = Server::builder("chaos").workers(3).start();
    server.allow_log("was sent SIGKILL!");
    let originals = server.wait_for_workers(3);
    for victim in &originals {
        kill(*victim, libc::SIGKILL);
        // Served while (or right after) the victim is replaced: a live worker takes it.
        assert_eq!(server.get("/ok").text(), "ok", "after killing {victim}");
        poll_for(WAIT, || {
            let live = live_children(server.pid);
            (live.len() == 3 && !live.contains(victim)).then_some(())
        })
        .unwrap_or_else(|| panic!("{victim} not replaced; children {:?}", live_children(server.pid)));
        assert!(zombie_children(server.pid).is_empty(), "zombies after killing {victim}");
    }
    let now = live_children(server.pid);
    assert!(now.iter().all(|p| !originals.contains(p)), "every original replaced: {originals:?} → {now:?}");
    let pid = serving_pid(&server);
    assert!(now.contains(&pid), "served by {pid}, a worker of {now:?}");
}

#[test]
fn web_concurrency_sets_the_default_worker_count() {
    let app = lib("hello");
    let server = Bare::spawn(&[&app, "--bind", "127.0.0.1:0"], &[("WEB_CONCURRENCY", "2")]);
    server.wait_for_log("Ready: 2 workers serving");
    assert_eq!(live_children(server.pid).len(), 2);
}

#[test]
fn the_workers_flag_overrides_web_concurrency() {
    let server = Server::builder("hello").env("WEB_CONCURRENCY", "2").workers(3).start();
    assert_eq!(live_children(server.pid).len(), 3);
    server.wait_for_log("Ready: 3 workers serving");
}

#[test]
fn ttin_adds_workers_and_ttou_removes_them_but_never_the_last() {
    let server = Server::builder("hello").workers(1).start();
    let first = server.wait_for_workers(1)[0];

    for n in 2..=3 {
        server.signal(libc::SIGTTIN);
        server.wait_for_log(&format!("Handling signal: SIGTTIN; workers: {n}"));
        server.wait_for_workers(n);
    }
    for n in [2, 1] {
        server.signal(libc::SIGTTOU);
        server.wait_for_log(&format!("Handling signal: SIGTTOU; workers: {n}"));
        server.wait_for_workers(n);
    }
    // A third TTOU must be refused: one TTIN after it gives two workers, not one.
    server.signal(libc::SIGTTOU);
    let left = server.wait_for_workers(1);
    server.signal(libc::SIGTTIN);
    server.wait_for_log_count("Handling signal: SIGTTIN; workers: 2", 2);
    server.wait_for_workers(2);
    assert!(
        !server.log().iter().any(|l| l.contains("workers: 0")),
        "the count went below one:\n{}",
        server.log().join("\n")
    );
    assert_eq!(left, [first], "TTOU stops the newest workers and keeps the first");
    // The surplus workers stopped gracefully (exit 0), not killed.
    let exited = server.log().iter().filter(|l| l.contains(") exited") && !l.contains("code")).count();
    assert_eq!(exited, 2, "log:\n{}", server.log().join("\n"));
    assert_eq!(server.get("/").status, 200);
}

#[test]
fn an_aborting_app_costs_its_connection_and_worker_only() {
    let server = Server::builder("chaos").workers(1).start();
    let before = serving_pid(&server);

    let raw = server.raw(b"GET /abort HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(raw.is_empty(), "the aborted connection got bytes: {:?}", String::from_utf8_lossy(&raw));
    server.wait_for_log(&format!("(pid: {before}) was sent SIGABRT"));

    let after = serving_pid(&server);
    assert_ne!(after, before, "a new worker serves");
    assert_eq!(server.wait_for_workers(1), [after]);
    assert!(!is_child_of(before, server.pid), "the aborted worker was reaped");
}

#[test]
fn a_panicking_handler_gets_500_and_the_worker_lives_on() {
    let server = Server::builder("chaos").workers(1).start();
    server.allow_log("app failed with status");
    server.allow_log("chaos: /panic asked for it");
    let before = serving_pid(&server);

    let resp = server.get("/panic");
    assert_eq!(resp.status, 500);
    assert_eq!(serving_pid(&server), before, "the same worker serves the next request");
    assert_eq!(live_children(server.pid), [before]);
    assert!(!server.log().iter().any(|l| l.contains("was sent")), "no worker died");
}

#[test]
fn preload_serves_and_replaces_workers_from_the_loaded_app() {
    let server = Server::builder("chaos").arg("--preload").workers(2).start();
    let before = server.wait_for_workers(2);
    let pid = serving_pid(&server);
    assert!(before.contains(&pid));

    kill(pid, libc::SIGKILL);
    server.wait_for_log(&format!("(pid: {pid}) was sent SIGKILL"));
    let after = poll_for(WAIT, || {
        let live = live_children(server.pid);
        (live.len() == 2 && !live.contains(&pid)).then_some(live)
    })
    .expect("the killed preloaded worker is replaced");
    for _ in 0..4 {
        assert!(after.contains(&serving_pid(&server)));
    }
}
