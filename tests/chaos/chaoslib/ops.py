"""Scenarios 6 and 7: a long soak, and operational faults."""

from __future__ import annotations

import os
import resource
import signal
import socket
import threading
import time

from .core import (
    Context, Incomplete, Invalid, Reader, Server, children, cpu_seconds, fd_count, free_port, mib,
    request, status_kib, verdict,
)


# ---------------------------------------------------------------------------------------------------
# Scenario 6: many requests in a row.

SOAK_PATHS = [
    request("/ok"),
    request("/echo", method="POST", body=b"0123456789" * 10),
    request("/big?bytes=2000"),
    request("/stream?chunks=3"),
    request("/environ?key=PATH_INFO"),
    request("/worker"),
    request("/status?code=404"),
    request("/nope"),
]
SOAK_STATUS = [200, 200, 200, 200, 200, 200, 404, 404]


def s6_soak(ctx: Context, cls: str) -> dict:
    total = ctx.sz["requests"]
    conns = 2 if cls == "sync" else 4
    depth = 8
    with Server(ctx, cls, workers=2) as srv:
        workers = srv.workers()

        def snapshot():
            return ({p: status_kib(p, "VmRSS") for p in workers}, {p: fd_count(p) for p in workers},
                    fd_count(srv.pid), status_kib(srv.pid, "VmRSS"))

        # Warm up with every serving thread of every worker busy at once (each makes its allocator
        # arena and first buffers), then measure. The warm-up connections are chosen by the worker that
        # serves them: left to the kernel, all of them may land on one worker.
        # A round of each kind of load until a round leaves every worker's RSS as it found it (a few
        # hundred KiB of first-use pages otherwise show as growth at these small sizes).
        warm = max(2000, total // 20)
        res = {"ok": 0, "bad": 0, "errors": []}
        for _round in range(5):
            before = {p: status_kib(p, "VmRSS") for p in workers}
            held = connections_to_every_worker(srv, {"sync": 1, "threads": 4, "event": 4}[cls])
            for part in (soak(srv.addr, warm, len(held), depth, held), soak(srv.addr, warm, conns, depth)):
                res = {k: res[k] + part[k] for k in res}
            time.sleep(0.5)
            if {p: status_kib(p, "VmRSS") for p in workers} == before:
                break
        rss0, fds0, mfd0, mrss0 = snapshot()
        t0 = time.monotonic()
        res2 = soak(srv.addr, total, conns, depth)
        took = time.monotonic() - t0
        time.sleep(0.5)
        rss1, fds1, mfd1, mrss1 = snapshot()
        ok = res["ok"] + res2["ok"]
        bad = res["bad"] + res2["bad"]
        growth = {p: (rss1[p] - rss0[p]) / rss0[p] * 100 if rss0[p] else 0 for p in workers}
        f = dict(requests=ok + bad, ok=ok, failed=bad, req_s=f"{total / took:.0f}",
                 rss_mib=[f"{mib(rss0[p])}→{mib(rss1[p])}" for p in workers],
                 rss_growth_pct=[f"{g:+.1f}" for g in growth.values()],
                 fds=[f"{fds0[p]}→{fds1[p]}" for p in workers], master_fds=f"{mfd0}→{mfd1}",
                 master_rss_mib=f"{mib(mrss0)}→{mib(mrss1)}", same_workers=srv.workers() == workers)
        problems = []
        if bad:
            problems.append(f"{bad} failed: {res['errors'][:3] + res2['errors'][:3]}")
        if srv.workers() != workers:
            problems.append(f"workers changed: {workers} → {srv.workers()}")
        if any(g >= 10 for g in growth.values()):
            problems.append(f"RSS grew: {growth}")
        if fds0 != fds1 or mfd0 != mfd1:
            problems.append(f"descriptors changed: {fds0} → {fds1}, master {mfd0} → {mfd1}")
        return verdict(f, problems)


def connections_to_every_worker(srv: Server, per_worker: int, attempts: int = 400) -> list[socket.socket]:
    """Keep-alive connections, `per_worker` of them held by each worker (each found by asking `/worker`
    which worker serves it); never more than a worker can hold at once."""
    held: dict[int, list] = {p: [] for p in srv.workers()}
    for _ in range(attempts):
        if all(len(v) >= per_worker for v in held.values()):
            break
        s = socket.create_connection(srv.addr, timeout=30)
        s.sendall(request("/worker"))
        _status, _h, body = Reader(s).response()
        pid = int(body.split()[-1])  # "worker N pid P"
        if pid in held and len(held[pid]) < per_worker:
            held[pid].append(s)
        else:
            s.close()
    return [s for conns in held.values() for s in conns]


def soak(addr, total: int, conns: int, depth: int, socks: list | None = None) -> dict:
    """`total` requests over `conns` keep-alive connections (`socks` when given, else new ones),
    `depth` pipelined at a time; each connection is closed at the end so that the server's
    descriptors can be compared."""
    res = {"ok": 0, "bad": 0, "errors": []}
    lock = threading.Lock()
    per = [total // conns + (1 if i < total % conns else 0) for i in range(conns)]

    def run(i: int, n: int):
        ok = bad = 0
        errors = []
        k = i
        try:
            s = socks[i] if socks else socket.create_connection(addr, timeout=30)
            r = Reader(s)
            while n > 0:
                batch = list(range(k, k + min(depth, n)))
                s.sendall(b"".join(SOAK_PATHS[j % len(SOAK_PATHS)] for j in batch))
                for j in batch:
                    status, _h, _b = r.response()
                    if status == SOAK_STATUS[j % len(SOAK_STATUS)]:
                        ok += 1
                    else:
                        bad += 1
                        errors.append(f"{j}: {status}")
                k += len(batch)
                n -= len(batch)
            s.close()
        except (OSError, Incomplete, Invalid) as e:
            bad += n
            errors.append(repr(e))
        with lock:
            res["ok"] += ok
            res["bad"] += bad
            res["errors"] += errors

    threads = [threading.Thread(target=run, args=(i, n)) for i, n in enumerate(per)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return res


# ---------------------------------------------------------------------------------------------------
# Scenario 7: operational faults.

def s7_ops(ctx: Context, cls: str) -> dict:
    f: dict = {}
    problems: list[str] = []

    # The port already in use: exit 1, one line naming the address.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        srv = Server(ctx, cls, bind=f"127.0.0.1:{port}", expect_exit=True)
        code = srv.wait_exit()
        line = next((l for l in srv.log_lines() if f"127.0.0.1:{port}" in l and "ERROR" in l), "")
        srv.stop()
    f["port_in_use"] = f"exit {code}"
    if code != 1 or "in use" not in line:
        problems.append(f"port in use: exit {code}, log {srv.tail(3)!r}")

    # An error log that cannot be opened (a directory): exit 1 naming it. An access log that cannot be
    # opened: the workers cannot boot, the master halts naming it.
    d = ctx.tmp / f"{cls}-logdir"
    d.mkdir(exist_ok=True)
    srv = Server(ctx, cls, extra=["--error-logfile", str(d)], expect_exit=True)
    code = srv.wait_exit()
    text = srv.log()
    srv.stop()
    f["error_log_unopenable"] = f"exit {code}"
    if code != 1 or "cannot open error log" not in text:
        problems.append(f"unopenable error log: exit {code}, stderr {text[-300:]!r}")
    srv = Server(ctx, cls, extra=["--access-logfile", str(d)], expect_exit=True)
    code = srv.wait_exit()
    text = srv.log()
    srv.stop()
    f["access_log_unopenable"] = f"exit {code}"
    if code not in (1, 3) or "access log" not in text:
        problems.append(f"unopenable access log: exit {code}, log {text[-300:]!r}")

    # Logs whose writes fail (/dev/full: every write is ENOSPC, as on a full disk): serving goes on.
    for which, extra, error_log in (
        ("error", ["--log-level", "debug"], "/dev/full"),
        ("access", ["--access-logfile", "/dev/full"], None),
    ):
        srv = Server(ctx, cls, error_log=error_log or str(ctx.tmp / f"{cls}-{which}-full.log"),
                     bind=f"127.0.0.1:{free_port()}", extra=extra, ready=False)
        try:
            deadline = time.monotonic() + 10
            served = 0
            while time.monotonic() < deadline and srv.proc.poll() is None and served == 0:
                served = srv.get("/ok", timeout=2)[0] == 200
                time.sleep(0.1)
            served += sum(srv.get("/ok")[0] == 200 for _ in range(19)) if served else 0
            code = srv.proc.poll()
            f[f"{which}_log_full_served"] = f"{served}/20" + (f" (master exit {code})" if code is not None else "")
            if served != 20 or code is not None:
                why = (f"{which} log on a full disk (/dev/full): {served}/20 served, master exit "
                       f"{code}{' (a panic: failed printing to stderr)' if code == 101 else ''}")
                problems.append(why)
        finally:
            srv.stop()

    # Deleted log files: serving goes on (into the unlinked files); USR1 reopens them.
    elog, alog = ctx.tmp / f"{cls}-error.log", ctx.tmp / f"{cls}-access.log"
    with Server(ctx, cls, error_log=str(elog), bind=f"127.0.0.1:{free_port()}",
                extra=["--access-logfile", str(alog)]) as srv:
        srv.get("/ok")
        elog.unlink()
        alog.unlink()
        served = sum(srv.get("/ok")[0] == 200 for _ in range(20))
        os.kill(srv.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        reopened = False
        while time.monotonic() < deadline and not reopened:
            time.sleep(0.2)
            srv.get("/ok")
            reopened = elog.exists() and alog.exists()
        f["deleted_logs_served"] = f"{served}/20"
        f["usr1_reopen"] = "yes" if reopened else "no"
        if served != 20:
            problems.append(f"deleted logs: {served}/20 served")
        if not reopened:
            problems.append("USR1 did not reopen the deleted log files")

    # A pidfile in a missing directory: exit 1 naming it, nothing left running.
    srv = Server(ctx, cls, extra=["-p", str(ctx.tmp / "missing" / "dir" / "rustgun.pid")], expect_exit=True)
    code = srv.wait_exit()
    text = srv.log()
    left = children(srv.pid)
    srv.stop()
    f["pidfile_missing_dir"] = f"exit {code}"
    if code != 1 or "pidfile" not in text or left:
        problems.append(f"pidfile in a missing dir: exit {code}, children {left}, log {text[-300:]!r}")

    # EMFILE on accept: the worker backs off (no spinning) and keeps serving what it holds.
    f.update(emfile(ctx, cls, problems))
    return verdict(f, problems)


def emfile(ctx: Context, cls: str, problems: list[str]) -> dict:
    with Server(ctx, cls, workers=1, extra=["--keep-alive", "60"]) as srv:
        (w,) = srv.workers()
        time.sleep(0.3)
        _soft, hard = resource.prlimit(w, resource.RLIMIT_NOFILE)
        # Room for one connection (none under sync: its worker would hold it and never accept again).
        # The limit bounds descriptor numbers: the next ones accept would take are the lowest free.
        room = 0 if cls == "sync" else 1
        used = {int(n) for n in os.listdir(f"/proc/{w}/fd")}
        free = [n for n in range(max(used) + 3) if n not in used]
        resource.prlimit(w, resource.RLIMIT_NOFILE, (free[room], hard))
        held = None
        if room:
            held = socket.create_connection(srv.addr, timeout=10)
            held_reader = Reader(held)
            held.sendall(request("/ok"))
            held_reader.response()
        waiting = []
        for _ in range(4):
            s = socket.create_connection(srv.addr, timeout=30)
            s.sendall(request("/ok", close=True))
            waiting.append(s)
        log0 = len(srv.log_lines())
        secs = ctx.sz["emfile_secs"]
        c0, m0, t0 = cpu_seconds(w), cpu_seconds(srv.pid), time.monotonic()
        served_during = 0
        while time.monotonic() - t0 < secs:
            if held:
                held.sendall(request("/ok"))
                served_during += held_reader.response()[0] == 200
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        cpu = (cpu_seconds(w) - c0) / elapsed * 100
        mcpu = (cpu_seconds(srv.pid) - m0) / elapsed * 100
        log_lines = len(srv.log_lines()) - log0
        resource.prlimit(w, resource.RLIMIT_NOFILE, (_soft, hard))
        if held:
            held.close()
        after = 0
        for s in waiting:
            try:
                status, _h, _b = Reader(s).response()
                after += status == 200
            except (OSError, Incomplete, Invalid):
                pass
            s.close()
        f = dict(emfile_worker_cpu_pct=f"{cpu:.1f}", emfile_master_cpu_pct=f"{mcpu:.1f}",
                 emfile_log_lines_s=f"{log_lines / elapsed:.0f}",
                 emfile_held_served=f"{served_during}" if room else "-",
                 emfile_queued_served_after=f"{after}/4")
        if cpu > 50:
            problems.append(f"EMFILE: the worker used {cpu:.0f}% CPU at the limit (spinning)")
        if room and served_during == 0:
            problems.append("EMFILE: the held connection was not served at the limit")
        if after != 4:
            problems.append(f"EMFILE: {after}/4 queued clients served once descriptors were free")
        if srv.workers() != [w]:
            problems.append(f"EMFILE: the worker was replaced: {w} → {srv.workers()}")
        return f
