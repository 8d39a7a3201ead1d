#!/usr/bin/env python3
"""`make bench`: rustgun's three worker classes against nginx, gunicorn and granian under wrk, each
class both serving the native hello app (`libhello.so`) and the same app in Python through the WSGI
bridge (`libwsgi.so`); then the ASGI bridge (`libasgi.so`) and WebSockets against uvicorn, granian and
gunicorn's ASGI worker (`bench/asgi.py`); then HTTP/2 (h2c and TLS) against nginx, granian and
gunicorn under h2load (`bench/h2.py`). The parts live in `benches/bench/`: the servers, wrk runs, the
idle-connections test, the ASGI rows, the HTTP/2 rows and the report; this file only runs them in order.

Standard library only. What it does, in order:

1. Installs what is missing: `wrk` and `nginx` with apt-get (only as root; otherwise it says what to
   install and stops), `gunicorn`, `granian`, `uvicorn[standard]` and `fastapi` with pip into the
   venv `target/bench-venv`.
2. Writes the hello app as a WSGI callable into `target/bench/hello_wsgi.py` (the same response as
   rustgun's `libhello.so`: 200, `Content-Type: text/plain`, `Content-Length: 13`, `Hello, World!`),
   served by gunicorn (sync and gthread), granian and rustgun + `libwsgi.so` (each worker class).
3. Starts every server once (2 workers each, its own ephemeral loopback port, logs quiet, each in its
   own process group), checks it answers a GET with `Hello, World!`, and measures its idle RSS per
   worker.
4. For each scenario (32 and 256 connections, keep-alive and `Connection: close`) runs
   `wrk -t2 -cN -dDs --latency` in interleaved rounds (A B C … A B C …), reading the server's CPU time
   (utime + stime of all its processes, from /proc) around each run.
5. The ASGI and WebSocket rows (`bench/asgi.py`), on servers of their own once the others stopped:
   wrk on a raw ASGI hello and a FastAPI route, `ws_load` (`examples/ws_load.rs`) on a WebSocket echo.
6. The HTTP/2 rows (`bench/h2.py`), on servers of their own: rustgun `event` (native, WSGI and ASGI
   hello) over h2c and TLS against nginx, granian and gunicorn, h2load with 1, 32 and 256 streams.
7. The 10,000 idle keep-alive connections test on a separate rustgun `event` server.
8. Prints the tables — every server per scenario; the WSGI servers against gunicorn sync and granian;
   the bridge's CPU µs/request over the native app's, per class; the targets of issues 6 and 8 — and
   writes docs/benchmarks.md and docs/benchmarks.svg.

Every server is stopped (its process group killed) in a `finally`, also on Ctrl-C.

    python3 benches/compare.py                             # the full run (5 s x 3 rounds)
    python3 benches/compare.py --duration 1 --rounds 1 --no-docs   # a smoke test
    python3 benches/compare.py --duration 1 --rounds 1 --no-docs --only rustgun-sync,wsgi-sync,granian
    python3 benches/compare.py --only-h2                   # the HTTP/2 rows alone (rewrites only their block)
    python3 benches/compare.py --only-h2 --h2-duration 2 --h2-rounds 1 --h2-warmup 0 --no-docs   # HTTP/2 smoke
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from bench.common import CLK_TCK, IDLE_CONNECTIONS, RELEASE, REPO, free_ports, loadavg, log, raise_nofile, status_kib
from bench.servers import Server, ensure_tools, ensure_venv, make_servers, versions, write_wsgi_app
from bench.wrk import Run, Scenario, Summary, fmt_mib, fmt_ms, run_wrk, summarise
from bench.idle import close_all, conns_per_worker, open_idle, still_held
from bench import asgi, h2
from bench.report import render, svg_chart, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario (default 3)")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of wrk per server before measuring (0: none)")
    ap.add_argument("--only", default="", help="comma-separated server keys to run (nginx is always kept)")
    ap.add_argument("--skip-idle", action="store_true", help="skip the 10,000 idle connections test")
    ap.add_argument("--skip-asgi", action="store_true", help="skip the ASGI and WebSocket rows")
    ap.add_argument("--skip-h2", action="store_true", help="skip the HTTP/2 rows (their block of the page is kept)")
    ap.add_argument("--only-h2", action="store_true",
                    help="run the HTTP/2 rows alone and rewrite only their block of the page")
    ap.add_argument("--h2-duration", type=float, default=1.5, help="seconds per h2load run (default 1.5)")
    ap.add_argument("--h2-rounds", type=int, default=3, help="interleaved rounds of the HTTP/2 rows (default 3)")
    ap.add_argument("--h2-warmup", type=float, default=0.5, help="h2load's --warm-up-time per run (default 0.5; 0: none)")
    ap.add_argument("--idle-connections", type=int, default=IDLE_CONNECTIONS)
    ap.add_argument("--docs", default="docs/benchmarks.md", help="markdown to write (the SVG goes beside it)")
    ap.add_argument("--no-docs", action="store_true", help="print the tables only")
    args = ap.parse_args()
    if args.rounds < 1 or args.duration <= 0:
        ap.error("--rounds must be >= 1 and --duration > 0")
    if args.h2_rounds < 1 or args.h2_duration <= 0 or args.h2_warmup < 0:
        ap.error("--h2-rounds must be >= 1, --h2-duration > 0 and --h2-warmup >= 0")
    if args.only_h2 and args.skip_h2:
        ap.error("--only-h2 and --skip-h2 exclude each other")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started in the background with SIGINT ignored
    signal.signal(signal.SIGHUP, on_signal)

    os.chdir(REPO)
    ensure_tools()
    ensure_venv()
    write_wsgi_app()
    nofile = raise_nofile()
    if args.only_h2:
        return only_h2(args)
    started = datetime.datetime.now().astimezone()
    vers = versions()  # before the run: the commit of the binary being measured
    load_before = loadavg()
    log(f"load average {load_before}; RLIMIT_NOFILE {nofile}")

    nginx_prefix = Path(tempfile.mkdtemp(prefix="rustgun-bench-nginx-"))
    servers = make_servers(nginx_prefix)
    if args.only:
        keep = set(args.only.split(",")) | {"nginx"}
        servers = [s for s in servers if s.key in keep]
    scenarios = [Scenario(c, close) for close in (False, True) for c in (32, 256)]
    res: dict[str, dict[str, Summary]] = {}
    asgi_results: dict = {}
    h2_results: dict = {}
    idle: dict | None = None
    idle_server: Server | None = None
    idle_socks: list[socket.socket] = []
    try:
        ports = free_ports(len(servers))
        for s, port in zip(servers, ports):
            log(f"starting {s.label} on 127.0.0.1:{port}")
            s.start(port)
        for s in servers:
            s.wait_ready()
            s.rss_idle, s.pss_idle = s.rss(), s.pss()
            s.master_rss = status_kib(s.pid, "VmRSS")
            log(f"{s.label}: up, {len(s.worker_pids())} worker processes, idle RSS/worker MiB {fmt_mib(s.rss_idle)}")
        if args.warmup > 0:
            for s in servers:
                run_wrk(s, 32, args.warmup, False)

        runs: dict[str, dict[str, list[Run]]] = {s.key: {sc.key: [] for sc in scenarios} for s in servers}
        for sc in scenarios:
            for rnd in range(args.rounds):
                for s in servers:
                    r = run_wrk(s, sc.conns, args.duration, sc.close)
                    runs[s.key][sc.key].append(r)
                    err = f", {r.errors} errors" if r.errors else ""
                    log(f"{sc.label:<30} round {rnd + 1}/{args.rounds} {s.label:<20} {r.rps:>10,.0f} req/s  "
                        f"p99 {fmt_ms(r.p99_ms):>9}  in service {r.rps * (r.avg_ms or 0) / 1000:4.0f}  cpu {r.cpu_ticks / CLK_TCK * 1e6 / max(1, r.requests):6.1f} µs/req"
                        f"  bg {r.background_pct:3.0f}%{err}")
        for s in servers:
            res[s.key] = {sc.key: summarise(runs[s.key][sc.key]) for sc in scenarios}
            s.rss_after = s.rss()

        if not args.skip_asgi:
            # The ASGI rows start their own servers: the others stop first, to leave them the CPUs.
            for s in servers:
                s.stop()
            asgi_results = asgi.run_rows(args, free_ports)

        if not args.skip_h2:
            for s in servers:  # the HTTP/2 rows start their own servers too
                s.stop()
            h2_results = h2.run_rows(args, free_ports)

        if not args.skip_idle:
            idle_server = Server("rustgun-event-idle", "rustgun event (10k idle)", 2,
                                 lambda port: [str(RELEASE / "rustgun"), str(RELEASE / "libhello.so") + ":app", "-k",
                                               "event", "-w", "2", "--worker-connections", str(args.idle_connections),
                                               "--keep-alive", "3600", "-b", f"127.0.0.1:{port}",
                                               "--log-level", "warning"],
                                 rustgun_class="event")
            # Stop the others first: only the idle test's server and wrk share the CPUs now.
            for s in servers:
                s.stop()
            idle_server.start(free_ports(1)[0])
            idle_server.wait_ready()
            need = args.idle_connections + 200
            if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
                raise RuntimeError(f"RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)} < {need}")
            # Interleaved as well: each round runs wrk without, then with the idle connections.
            base_runs, idle_runs, open_times, held_counts = [], [], [], []
            rss_before = rss_held = per_worker = []
            for rnd in range(args.rounds):
                base_runs.append(run_wrk(idle_server, 32, args.duration, False))
                log(f"idle test round {rnd + 1}: without idle connections {base_runs[-1].rps:,.0f} req/s, "
                    f"worker CPU ticks {base_runs[-1].worker_ticks}")
                rss_before = rss_before or idle_server.rss()
                t0 = time.monotonic()
                idle_socks = open_idle(idle_server.port, args.idle_connections, time.monotonic() + 120)
                open_times.append(time.monotonic() - t0)
                per_worker, rss_held = conns_per_worker(idle_server), idle_server.rss()
                log(f"{len(idle_socks)} idle connections open in {open_times[-1]:.1f}s; sockets per worker "
                    f"{per_worker}; RSS/worker MiB {fmt_mib(rss_held)}")
                idle_runs.append(run_wrk(idle_server, 32, args.duration, False))
                log(f"idle test round {rnd + 1}: with {len(idle_socks)} idle connections {idle_runs[-1].rps:,.0f} req/s, "
                    f"worker CPU ticks {idle_runs[-1].worker_ticks}")
                held_counts.append(still_held(idle_socks))
                log(f"{held_counts[-1]} of {len(idle_socks)} idle connections still answer")
                close_all(idle_socks)
                time.sleep(1)  # let the workers see the connections go
            open_s, held = max(open_times), min(held_counts)
            idle = {
                "n": args.idle_connections,
                "open_s": open_s,
                "per_worker": per_worker,
                "held": held,
                "base": summarise(base_runs),
                "idle": summarise(idle_runs),
                "rss_before": rss_before,
                "rss_held": rss_held,
                "argv": idle_server.argv,
                "port": idle_server.port,
            }
    finally:
        close_all(idle_socks)
        for s in servers + ([idle_server] if idle_server else []):
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                print(f"stopping {s.label}: {e}", file=sys.stderr)
        shutil.rmtree(nginx_prefix, ignore_errors=True)

    load_after = loadavg()
    report = render(args, servers, scenarios, res, idle, started, load_before, load_after, nofile, vers)
    asgi_md, asgi_targets = asgi.lines(asgi_results, table)
    if asgi_md:
        section = ["", "## ASGI and WebSocket: rustgun + `libasgi.so` vs uvicorn, granian and gunicorn's ASGI worker",
                   "", asgi.__doc__.split("\n\n")[0].replace("\n", " ").strip(), "", *asgi_md,
                   "### Targets (issue 12)", "", *table(["target", "measured", ""], asgi_targets, "llc"), ""]
        report["markdown"] += "\n".join(section)
        report["text"] += "\n" + "\n".join(section)
    md = REPO / args.docs
    if h2_results:
        h2_md, h2_text = h2.render(h2_results, args, table)
        report["text"] += "\n" + h2_text
    else:  # skipped: the block of an earlier run stays
        h2_md = h2.existing(md.read_text()) if md.exists() else ""
    if h2_md:
        report["markdown"] = report["markdown"].rstrip("\n") + "\n\n" + h2_md
    print()
    print(report["text"])
    if not args.no_docs:
        svg = md.with_suffix(".svg")
        md.parent.mkdir(parents=True, exist_ok=True)
        svg.write_text(svg_chart(servers, scenarios, res, report["chart_note"]))
        md.write_text(report["markdown"].replace("@SVG@", svg.name))
        log(f"wrote {md} and {svg}")
    return 0


def only_h2(args) -> int:
    """`--only-h2`: the HTTP/2 rows alone; their block of the page is replaced, the rest left as it is."""
    res = h2.run_rows(args, free_ports)
    md_section, text = h2.render(res, args, table)
    print()
    print(text)
    if not args.no_docs:
        md = REPO / args.docs
        page = md.read_text() if md.exists() else "# Benchmarks\n"
        md.write_text(h2.splice(page, md_section))
        log(f"wrote the HTTP/2 block of {md}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ncompare.py: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
