//! The status views: the `/status` page, rendered by headless Chromium, lists the live workers and,
//! while it stays open, follows a TTIN to the new one.

use crate::support::{Server, WAIT, run};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Chromium's DOM of `url` after its scripts ran for a few seconds of virtual time.
fn rendered(url: &str) -> String {
    let installed = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "headless Chromium is not installed: run scripts/setup (it installs Debian's chromium)"
    );
    let profile = std::env::temp_dir().join(format!("rustgun-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let (code, dom, err) = run(Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        // The page polls every second: three polls at least.
        .args(["--virtual-time-budget=3500", "--timeout=15000", "--dump-dom", url]));
    let _ = std::fs::remove_dir_all(&profile);
    assert_eq!(code, 0, "chromium failed: {err}");
    dom
}

/// The pids of the rows the page drew, and how many times it polled.
fn page_workers(dom: &str) -> (Vec<i32>, u32) {
    let mut pids: Vec<i32> = dom
        .split("<tr class=")
        .skip(1)
        .filter_map(|row| row.split("data-pid=\"").nth(1)?.split('"').next()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let polls = dom.split("data-polls=\"").nth(1).and_then(|s| s.split('"').next()?.parse().ok());
    (pids, polls.unwrap_or(0))
}

/// An HTTP proxy in front of `upstream` for the page's whole life, one request per connection, each
/// connection on a thread of its own: it forwards each request, keeps every `/status.json` answer,
/// and runs `before(n)` ahead of forwarding the `n`th (from 1) — Chromium's virtual time stands still
/// meanwhile, the fetch being pending. It ends at the first connection once `done` is set.
fn proxy(
    listener: &TcpListener,
    upstream: &str,
    done: &AtomicBool,
    before: impl Fn(usize) + Sync,
) -> Vec<String> {
    let answers = Mutex::new(Vec::new());
    let asked = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for client in listener.incoming() {
            let mut client = client.unwrap();
            client.set_read_timeout(Some(WAIT)).unwrap();
            if done.load(Ordering::SeqCst) {
                break;
            }
            let (mut request, mut chunk) = (Vec::new(), [0u8; 4096]);
            let (answers, asked, before) = (&answers, &asked, &before);
            s.spawn(move || {
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match client.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let json = request.starts_with(b"GET /status.json ");
                if json {
                    before(asked.fetch_add(1, Ordering::SeqCst) + 1);
                }
                let mut up = TcpStream::connect(upstream).unwrap();
                up.set_read_timeout(Some(WAIT)).unwrap();
                up.write_all(&request).unwrap();
                let mut answer = Vec::new();
                up.read_to_end(&mut answer).unwrap();
                if json {
                    answers.lock().unwrap().push(String::from_utf8_lossy(&answer).into_owned());
                }
                let _ = client.write_all(&answer);
            });
        }
    });
    answers.into_inner().unwrap()
}

#[test]
fn the_status_page_renders_the_live_workers_and_follows_a_ttin() {
    let server = Server::builder("hello").workers(2).args(&["--metrics-bind", "127.0.0.1:0"]).start();
    let upstream = server.metrics_addr();
    let before = server.wait_for_workers(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/status", listener.local_addr().unwrap());
    let (after, done) = (Mutex::new(Vec::new()), AtomicBool::new(false));
    let (answers, dom) = std::thread::scope(|s| {
        let proxied = s.spawn(|| {
            proxy(&listener, &upstream, &done, |n| {
                // The page has drawn two polls' workers: one more now, before its third poll.
                if n == 3 {
                    server.signal(libc::SIGTTIN);
                    server.wait_for_log("Handling signal: SIGTTIN; workers: 3");
                    *after.lock().unwrap() = server.wait_for_workers(3);
                }
            })
        });
        let dom = rendered(&url);
        done.store(true, Ordering::SeqCst);
        drop(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
        (proxied.join().unwrap(), dom)
    });
    let after = after.into_inner().unwrap();
    assert!(answers.len() >= 3, "the page refreshes itself: {} polls", answers.len());
    for pid in &before {
        assert!(answers[0].contains(&format!(r#""pid":{pid},"#)), "{}", answers[0]);
    }
    assert!(answers[0].contains(r#""target":2,"#), "{}", answers[0]);
    let (pids, polls) = page_workers(&dom);
    assert!(polls >= 3 && polls as usize <= answers.len(), "{polls} polls drawn of {}", answers.len());
    assert_eq!(pids, after, "the open page follows the TTIN to the new worker:\n{dom}");
    assert!(dom.contains("3 workers (target 3)"), "{dom}");
    assert!(dom.contains("<canvas id=\"rps\""), "{dom}");
}
