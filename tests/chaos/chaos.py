#!/usr/bin/env python3
"""The chaos driver (issue 7): starts the real `rustgun` (release build) with `libchaos.so` once per
scenario and worker class, runs a bounded load against it over loopback, injects the fault, and prints
one line of figures per scenario and class, then a table of them all.

    python3 tests/chaos/chaos.py --long                      # what `make chaos` runs: every scenario, full size
    python3 tests/chaos/chaos.py --short --classes event --scenarios 1,8

Scenarios (see docs/reliability.md for what each promises and the figures of a full run):

  1 sigkill   SIGKILL a random worker every 200 ms → only requests in flight on a killed worker lost
  2 reload    TTIN/TTOU storms, HUP ×N, USR2 + WINCH + QUIT of the old master → zero failed
  3 faults    /panic → 500 and the worker lives; /abort → only that worker's connections fail;
              /loop → the worker is killed after --timeout and replaced, others served meanwhile
  4 slowloris N connections sending one header byte a second → other clients still served
  5 bodies    upload and download through /echo and /big with RSS per worker < 64 MiB; a client that
              stops reading or sending → the worker moves on after a --min-rate-period
  6 soak      many requests in a row → RSS growth < 10 %, open descriptors constant
  7 ops       port in use, unwritable / deleted log file, pidfile in a missing directory, EMFILE
  8 hostile   random and mutated requests (seeded) → only valid responses or closes, no crash
  9 crowd     N clients stop reading 100 MB and N trickle an upload on 2 workers → other clients served
              meanwhile (p99 reported), the stalled dropped by the minimum rate, RSS per worker < 64 MiB
 10 heads     N connections each send a maximal (64 KiB) head without its end → RSS per worker
              < 64 MiB, other clients served, every one answered 408 at --header-timeout

Every request's outcome is counted: ok, failed-connect, failed-mid-response (the connection ended or
timed out before a complete response), wrong-status. Every loop is bounded in time and count; every
server runs in its own process group (and dies with this driver: PR_SET_PDEATHSIG), killed whatever
happens. Only 127.0.0.1 is ever contacted. Python 3 standard library only.

Exit status: 0 every scenario passed, 1 one failed (its FAIL lines say which promise broke).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from chaoslib.core import CLASSES, ROOT, Context, _kill_everything, _on_signal, verdict
from chaoslib.faults import s1_sigkill, s2_reload, s3_faults
from chaoslib.hostile import s8_hostile
from chaoslib.ops import s6_soak, s7_ops
from chaoslib.slow import s4_slowloris, s5_bodies, s9_crowd, s10_heads


SCENARIOS = {
    1: ("sigkill", s1_sigkill),
    2: ("reload", s2_reload),
    3: ("app-faults", s3_faults),
    4: ("slowloris", s4_slowloris),
    5: ("bodies", s5_bodies),
    6: ("soak", s6_soak),
    7: ("ops-faults", s7_ops),
    8: ("hostile", s8_hostile),
    9: ("slow-crowd", s9_crowd),
    10: ("endless-heads", s10_heads),
}


# The columns of each scenario's table: (heading, figure key, or keys shown as "a / b").
COLUMNS = {
    1: [("kills", "kills"), ("ok", "ok"), ("lost (in flight on killed workers)", "lost"), ("failed", "failed"),
        ("connections on killed workers", "held"), ("idle ones found closed", "dropped"), ("zombies", "zombies"), ("workers after", "workers"), ("RSS MiB", "rss_mib"), ("fds", "fds")],
    2: [("ok", "ok"), ("failed", "failed"), ("TTIN/TTOU", "ttin_ttou"), ("HUP", "hup"),
        ("USR2+WINCH+QUIT", "usr2"), ("worker exits logged", "exits_logged")],
    3: [("/panic → 500", "panic_500"), ("others failed (panic)", "panic_others_failed"),
        ("/abort: replaced", "abort_replaced"), ("others ok / failed (abort)", ("abort_others_ok", "abort_others_failed")),
        ("/loop killed after (s)", "loop_killed_after_s"), ("served meanwhile", "loop_served_meanwhile"),
        ("others failed (loop)", "loop_others_failed")],
    4: [("slow conns", "slow_conns"), ("--header-timeout", "header_timeout"), ("client served", "legit_ok"),
        ("client failed", "legit_failed"), ("latency p50 / max (ms)", ("legit_p50_ms", "legit_max_ms")),
        ("408s", "got_408"), ("RSS MiB", "rss_mib"), ("fds", "fds")],
    5: [("body MiB", "body_mib"), ("up MiB/s", "upload_mib_s"), ("down MiB/s", "download_mib_s"),
        ("peak RSS MiB", "rss_peak_mib"), ("block delay p99 (ms)", "block_delay_p99_ms"),
        ("stalled reader: next served (s)", "stalled_reader_next_served_s"),
        ("stalled sender: next served (s)", "stalled_sender_next_served_s")],
    6: [("requests", "requests"), ("failed", "failed"), ("req/s", "req_s"), ("RSS MiB", "rss_mib"),
        ("growth %", "rss_growth_pct"), ("fds", "fds"), ("master fds", "master_fds"), ("master RSS MiB", "master_rss_mib")],
    7: [("port in use", "port_in_use"), ("error log a dir", "error_log_unopenable"),
        ("access log a dir", "access_log_unopenable"), ("error log full", "error_log_full_served"),
        ("access log full", "access_log_full_served"), ("logs deleted", "deleted_logs_served"),
        ("USR1 reopens", "usr1_reopen"), ("pidfile dir missing", "pidfile_missing_dir"),
        ("EMFILE: worker CPU %", "emfile_worker_cpu_pct"), ("held conn served", "emfile_held_served"),
        ("queued served after", "emfile_queued_served_after"), ("log lines/s", "emfile_log_lines_s")],
    8: [("cases", "cases"), ("complete responses", "ok"), ("closed, no response", "close"),
        ("cut mid-body (app failed)", "aborted"), ("invalid", "invalid"), ("statuses", "statuses"),
        ("served after", "served_after"), ("same workers", "workers_same")],
    9: [("stalled readers", "stalled_readers"), ("tricklers", "tricklers"),
        ("others p99 unloaded / loaded (ms)", ("unloaded_p99_ms", "loaded_p99_ms")), ("ratio", "p99_ratio"),
        ("readers dropped", "readers_dropped"), ("most read MiB", "most_read_mib"),
        ("tricklers dropped / 408", ("tricklers_ended", "tricklers_408")), ("peak RSS MiB", "rss_peak_mib")],
    10: [("connections", "connections"), ("head KiB", "head_kib"), ("--header-timeout", "header_timeout"),
         ("others served", "served"), ("others p99 (ms)", "p99_ms"), ("408s", "answered_408"),
         ("peak RSS MiB", "rss_peak_mib")]
}


def figures_tables(rows) -> list[str]:
    """One markdown table per scenario, a row per class, then the failures."""
    out: list[str] = []
    for n in sorted({r[0] for r in rows}):
        cols = COLUMNS[n]
        out += ["", f"**{n} · {SCENARIOS[n][0]}**", ""]
        out.append("| class | verdict | " + " | ".join(c for c, _ in cols) + " |")
        out.append("|---" * (len(cols) + 2) + "|")
        notes = []
        for _n, _name, cls, v, took, figures, problems in (r for r in rows if r[0] == n):
            cells = []
            for _, key in cols:
                keys = key if isinstance(key, tuple) else (key,)
                cells.append(" / ".join(fmt_value(figures.get(k, 0 if k == "invalid" else "–"), ", ").strip("[]")
                                        for k in keys))
            out.append(f"| {cls} | {v} ({took:.0f} s) | " + " | ".join(cells) + " |")
            notes += [f"- {cls}: FAIL: {x}" for x in problems]
        if notes:
            out += [""] + notes
    return out


def fmt_value(v, sep: str = ",") -> str:
    if isinstance(v, list):
        return "[" + sep.join(str(x) for x in v) + "]"
    return str(v)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--short", action="store_true", help="the make-test sizes (default)")
    size.add_argument("--long", action="store_true", help="the full sizes of issue 7 (make chaos)")
    p.add_argument("--classes", default=",".join(CLASSES))
    p.add_argument("--scenarios", default=",".join(str(n) for n in SCENARIOS))
    p.add_argument("--bin", default=str(ROOT / "target/release/rustgun"))
    p.add_argument("--lib", default=str(ROOT / "target/release/libchaos.so"))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--table", help="also write the figures table (markdown) to this file")
    p.add_argument("--keep", action="store_true", help="keep the logs directory")
    args = p.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    # Slowloris holds a thousand sockets; servers inherit the raised limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    ctx = Context(args)
    for path in (ctx.binary, ctx.lib):
        if not Path(path).exists():
            print(f"chaos: {path} is missing: run `make build` first", file=sys.stderr)
            return 1
    classes = [c for c in args.classes.split(",") if c]
    scenarios = [int(s) for s in args.scenarios.split(",") if s]
    rows = []
    started = time.monotonic()
    print(f"chaos: {ctx.size} run, seed {ctx.seed}, classes {','.join(classes)}, logs in {ctx.tmp}", flush=True)
    for n in scenarios:
        name, fn = SCENARIOS[n]
        for cls in classes:
            t0 = time.monotonic()
            try:
                figures = fn(ctx, cls)
            except Exception as e:  # noqa: BLE001 - a crash of the driver is a failed scenario
                traceback.print_exc()
                figures = verdict({}, [f"driver error: {e!r}"])
            finally:
                _kill_everything()
            took = time.monotonic() - t0
            v = figures.pop("_verdict")
            problems = figures.pop("_problems")
            text = " ".join(f"{k}={fmt_value(v_)}" for k, v_ in figures.items())
            print(f"chaos S{n} {name:<10} {cls:<7} {v:<7} {took:5.1f}s  {text}", flush=True)
            for pr in problems:
                print(f"    FAIL: {pr}", flush=True)
            rows.append((n, name, cls, v, took, figures, problems))
    table = figures_tables(rows)
    print()
    print("\n".join(table))
    print(f"\nchaos: {len(rows)} runs in {time.monotonic() - started:.0f} s: "
          f"{sum(r[3] == 'PASS' for r in rows)} passed, {sum(r[3] == 'FAIL' for r in rows)} failed")
    if args.table:
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text("\n".join(table) + "\n")
    failed = any(r[3] == "FAIL" for r in rows)
    if not ctx.keep and not failed:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
