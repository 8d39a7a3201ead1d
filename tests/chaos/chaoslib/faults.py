"""Scenarios 1–3: SIGKILLed workers, reload and upgrade storms, app faults."""

from __future__ import annotations

import os
import random
import re
import select
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .core import (
    Context, Failure, Load, Server, WAIT, _GROUPS, _PIDS, alive, children, cpu_seconds, fd_count,
    is_zombie, load_mix, mib, proc_fields, request, socket_inodes, status_kib, verdict,
    wait_stopped,
)


# ---------------------------------------------------------------------------------------------------
# Scenario 1: SIGKILL a random worker every 200 ms.

@dataclass
class Kill:
    """One SIGKILL: the client ports of the connections the victim held (read while it was frozen, at
    `read`), when the signal was sent and when the victim was seen dead (monotonic seconds)."""

    held: set[int]
    read: float
    sigkill: float
    dead: float


def tcp_peer_ports(inodes: list[str], port: int) -> set[int]:
    """The remote ports of the sockets `inodes` ("socket:[N]") whose local port is `port`, from
    /proc/net/tcp and tcp6: the client ends of a worker's connections (not its listener, not a pipe)."""
    wanted = {i[len("socket:["):-1] for i in inodes}
    peers = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[9] in wanted and int(f[1].rsplit(":", 1)[1], 16) == port:
                peers.add(int(f[2].rsplit(":", 1)[1], 16))
    return peers


def lost_to_a_kill(kills: list[Kill], fail: Failure) -> bool:
    """Whether a failed request was in flight on a worker at the moment it was killed: its connection
    ended without a complete response (reset or EOF: not a timeout, not bad bytes, not a wrong status,
    not a connect failure), and that connection was one a victim held — the same port, opened before
    the victim's connections were read — the request was sent before the victim was dead, and the end
    was seen after the SIGKILL (a frozen worker closes nothing, so an end seen before is not the kill's)."""
    return fail.kind == "ended" and any(
        fail.port in k.held and fail.opened <= k.read and fail.sent <= k.dead and fail.ended >= k.sigkill
        for k in kills)


def s1_sigkill(ctx: Context, cls: str) -> dict:
    rng = random.Random(ctx.seed)
    with Server(ctx, cls, workers=2) as srv:
        load = load_mix(cls, srv.addr, ["/sleep?ms=10", "/ok"], check_idle=True).start()
        time.sleep(0.3)
        kills: list[Kill] = []
        end = time.monotonic() + ctx.sz["kill_secs"]
        tick = time.monotonic()
        while time.monotonic() < end:
            live = srv.workers()
            if live:
                victim = rng.choice(live)
                # Freeze the victim so that the connections it holds can be read exactly, then kill it.
                try:
                    os.kill(victim, signal.SIGSTOP)
                    wait_stopped(victim)
                    held = tcp_peer_ports([i for i in socket_inodes(victim) if i not in srv.listen], srv.addr[1])
                    read = sigkill = time.monotonic()
                    # Its pidfd becomes readable when it dies (it is not our child to wait for).
                    pidfd = os.pidfd_open(victim)
                    os.kill(victim, signal.SIGKILL)
                    select.select([pidfd], [], [], 2.0)
                    os.close(pidfd)
                    kills.append(Kill(held, read, sigkill, time.monotonic()))
                except ProcessLookupError:
                    pass
            tick += 0.2
            time.sleep(max(0.0, tick - time.monotonic()))
        time.sleep(0.5)
        load.stop()
        restored = srv.wait_workers(2, timeout=10)
        zombies = srv.zombies()
        after = srv.get("/ok")[0]
        sigkill_logged = len([l for l in srv.log_lines() if "was sent SIGKILL" in l])
        # Lost: the requests in flight on a victim when it died (lost_to_a_kill). Every other failure —
        # a connect failure, a timeout, bad bytes, a wrong status, a connection that ended although its
        # worker was not killed, or ended before the kill — is a broken promise. A kept-alive connection
        # found closed while idle carried no request; it must be one a victim held.
        lost = [x for x in load.failures if lost_to_a_kill(kills, x)]
        others = [x for x in load.failures if not lost_to_a_kill(kills, x)]
        stray_drops = [d for d in load.dropped
                       if not any(d.port in k.held and d.opened <= k.read and d.seen >= k.sigkill for k in kills)]
        f = dict(ok=load.ok, lost=len(lost), failed=len(others), kills=len(kills),
                 held=sum(len(k.held) for k in kills), dropped=len(load.dropped), logged_kills=sigkill_logged,
                 workers=len(restored or srv.workers()), zombies=len(zombies),
                 rss_mib=[mib(status_kib(p, "VmRSS")) for p in srv.workers()],
                 fds=[fd_count(p) for p in srv.workers()], served_after=after)
        problems = []
        if others:
            problems.append(f"{len(others)} failed, not in flight on a killed worker: {others[:5]}")
        if stray_drops:
            problems.append(f"{len(stray_drops)} idle kept-alive connections closed, not by a kill: {stray_drops[:5]}")
        if not kills:
            problems.append("no worker killed")
        if not restored:
            problems.append(f"worker count not restored: {srv.workers()}")
        if zombies:
            problems.append(f"zombies {zombies}")
        if after != 200:
            problems.append("not served after the kills")
        if load.ok == 0:
            problems.append("nothing served")
        return verdict(f, problems)


# ---------------------------------------------------------------------------------------------------
# Scenario 2: HUP ×N, USR2 + WINCH + QUIT, TTIN/TTOU storms → zero failed.

def s2_reload(ctx: Context, cls: str) -> dict:
    problems: list[str] = []
    parts: dict[str, str] = {}
    pidfile = ctx.tmp / f"{cls}-reload.pid"
    with Server(ctx, cls, workers=2, extra=["-p", str(pidfile)]) as srv:
        load = load_mix(cls, srv.addr, ["/sleep?ms=5", "/ok"]).start()
        try:
            # TTIN/TTOU storms: bursts of three up and three down. A signal sent again before the master
            # took the first one is merged with it (POSIX signals do not queue; the master blocks them
            # while it forks), so the count the master ends at is the one its log gives.
            for _ in range(ctx.sz["storms"]):
                for sig in [signal.SIGTTIN] * 3 + [signal.SIGTTOU] * 3:
                    os.kill(srv.pid, sig)
                    time.sleep(0.03)
                time.sleep(0.2)
            time.sleep(0.5)
            handled = [l for l in srv.log_lines() if re.search(r"SIGTT(IN|OU); workers: \d+", l)]
            target = int(re.search(r"workers: (\d+)", handled[-1]).group(1)) if handled else 2
            settled = srv.wait_workers(target, timeout=WAIT)
            parts["ttin_ttou"] = f"{ctx.sz['storms'] * 6} sent, {len(handled)} handled"
            if not handled:
                problems.append("TTIN/TTOU: no signal handled")
            if settled is None:
                problems.append(f"TTIN/TTOU: the master says {target} workers, there are {srv.workers()}")
            # Back to two, one signal at a time.
            for _ in range(10):
                n = len(srv.workers())
                if n == 2:
                    break
                os.kill(srv.pid, signal.SIGTTOU if n > 2 else signal.SIGTTIN)
                srv.wait_workers(n - 1 if n > 2 else n + 1, timeout=WAIT)
            if srv.wait_workers(2, timeout=WAIT) is None:
                problems.append(f"TTIN/TTOU: cannot get back to 2 workers: {srv.workers()}")

            # HUP ×N: every worker replaced each time, none of the requests lost.
            hups = 0
            for i in range(ctx.sz["hups"]):
                before = srv.workers()
                os.kill(srv.pid, signal.SIGHUP)
                new = srv.wait_workers(2, timeout=WAIT, without=before)
                if new is None:
                    problems.append(f"HUP {i + 1}: workers {before} not all replaced: {srv.workers()}")
                    break
                hups += 1
            parts["hup"] = f"{hups}/{ctx.sz['hups']} reloads"

            # USR2: a new master with new workers; WINCH: the old workers stop; QUIT: the old master goes.
            usr2 = upgrade(srv, pidfile)
            if isinstance(usr2, str):
                problems.append(usr2)
                parts["usr2"] = "failed"
            else:
                parts["usr2"] = f"new master {usr2} serving"
            time.sleep(1.0)
        finally:
            load.stop()
        f = load.figures()
        f.update(parts)
        f["exits_logged"] = len(srv.exits())
        if load.failed:
            problems.append(f"{load.failed} failed: {load.failures[:5]}")
        return verdict(f, problems)


def upgrade(srv: Server, pidfile: Path):
    """USR2 + WINCH + QUIT of the old master; returns the new master's pid or a problem string. The new
    master replaces `srv.pid` for the rest of the scenario."""
    old = srv.pid
    old_workers = srv.workers()
    os.kill(old, signal.SIGUSR2)
    deadline = time.monotonic() + WAIT
    new = None
    while time.monotonic() < deadline and new is None:
        for kid in children(old):
            if kid not in old_workers and len([p for p in children(kid) if not is_zombie(p)]) >= 2:
                new = kid
        time.sleep(0.05)
    if new is None:
        return "USR2: no new master with 2 workers within 20 s"
    _PIDS.add(new)
    f = proc_fields(new)
    if f:
        _GROUPS.add(int(f[2]))
    new_workers = srv.wait_workers(2, master=new) or []
    _PIDS.update(new_workers)
    os.kill(old, signal.SIGWINCH)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        left = [p for p in srv.workers(old) if p != new]
        if not left:
            break
        time.sleep(0.05)
    else:
        return f"WINCH: old workers still running: {srv.workers(old)}"
    os.kill(old, signal.SIGQUIT)
    if srv.wait_exit(WAIT) is None:
        return "QUIT: the old master did not exit"
    if not alive(new):
        return "the new master died with the old one"
    srv.pid = new
    try:
        written = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        written = 0
    if written != new:
        return f"the pidfile says {written}, the new master is {new}"
    return new


# ---------------------------------------------------------------------------------------------------
# Scenario 3: /panic, /abort, /loop.

def s3_faults(ctx: Context, cls: str) -> dict:
    f: dict = {}
    problems: list[str] = []
    # /panic: 500, and no worker dies.
    with Server(ctx, cls, workers=2) as srv:
        before = srv.workers()
        load = load_mix(cls, srv.addr, ["/ok"]).start()
        statuses = [srv.get("/panic")[0] for _ in range(ctx.sz["panics"])]
        load.stop()
        same = srv.workers()
        f["panic_500"] = f"{statuses.count(500)}/{len(statuses)}"
        f["panic_others_failed"] = load.failed
        if statuses.count(500) != len(statuses):
            problems.append(f"/panic statuses {sorted(set(statuses))}")
        if same != before or srv.exits():
            problems.append(f"a worker died on /panic: {before} → {same}; {srv.exits()[:3]}")
        if load.failed:
            problems.append(f"/panic: others failed {load.failures[:5]}")
        if srv.serving_pid() not in before:
            problems.append("the next request was not served by the same workers")

    # /abort: only that connection (and, where a worker serves several, that worker's) fail. Where a
    # worker serves several connections, the clients keep theirs and learn from `/worker` which worker
    # serves them, so that every failure can be traced to an aborted worker.
    with Server(ctx, cls, workers=2) as srv:
        if cls == "sync":
            load = Load(srv.addr, close=8, keep=0, paths=["/worker"]).start()
        else:
            # Under `threads` a kept connection holds a thread: leave two of the eight free for /abort.
            keep = 6 if cls == "threads" else 8
            load = Load(srv.addr, close=0, keep=keep, paths=["/worker"]).start()
        time.sleep(0.5)
        aborted: list[int] = []
        got_bytes = 0
        for i in range(ctx.sz["aborts"]):
            before = srv.workers()
            try:
                with socket.create_connection(srv.addr, timeout=10) as s:
                    s.sendall(request("/abort", close=True))
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                    got_bytes += len(data)
            except OSError:
                pass
            line = srv.wait_log("was sent SIGABRT", count=i + 1)
            aborted.append(int(re.search(r"\(pid: (\d+)\)", line).group(1)))
            if srv.wait_workers(2, without=[aborted[-1]]) is None:
                problems.append(f"/abort: worker {aborted[-1]} not replaced: {before} → {srv.workers()}")
                break
        time.sleep(0.3)
        load.stop()
        stray = [x for x in load.failures if x.pid not in aborted]
        f["abort_replaced"] = f"{len(aborted)}/{ctx.sz['aborts']}"
        f["abort_others_failed"] = load.failed
        f["abort_others_ok"] = load.ok
        if got_bytes:
            problems.append(f"/abort connections got {got_bytes} bytes")
        if cls == "sync" and load.failed:
            problems.append(f"/abort under sync: other clients failed {load.failures[:5]}")
        if stray:
            problems.append(f"/abort: failures on connections not served by an aborted worker: {stray[:5]}")

    # /loop: killed after --timeout, replaced, others served meanwhile.
    t = ctx.sz["loop_timeout"]
    with Server(ctx, cls, workers=2, extra=["--timeout", str(t)]) as srv:
        before = srv.workers()
        load = load_mix(cls, srv.addr, ["/ok"], n=4, timeout=t + 15).start()
        time.sleep(0.2)
        looper = socket.create_connection(srv.addr, timeout=t + 20)
        looper.sendall(request("/loop", close=True))
        sent = time.monotonic()
        stuck, held = find_spinning(srv, before)
        # The most connections each worker held while the stuck one waited for its kill (under `threads`
        # its other threads go on accepting), in case the CPU pick was wrong too.
        holding = {p: 0 for p in before}
        ok_before = load.ok
        line = None
        deadline = sent + t + 10
        while time.monotonic() < deadline and line is None:
            for p in before:
                holding[p] = max(holding[p], len([i for i in socket_inodes(p) if i not in srv.listen]))
            for l in srv.log_lines():
                m = re.search(r"\(pid: (\d+)\)", l)
                if m and int(m.group(1)) in before and re.search(r"was sent|[Tt]imeout|TIMEOUT", l):
                    line, stuck = l, int(m.group(1))
                    held = max(held, holding.get(stuck, 0))
                    break
            time.sleep(0.05)
        killed_after = time.monotonic() - sent
        served_meanwhile = load.ok - ok_before
        replaced = srv.wait_workers(2, timeout=5, without=[stuck]) if line else None
        if line is None and stuck:
            # Not killed by the server: end it here, so that clients it holds do not wait for ever.
            os.kill(stuck, signal.SIGKILL)
        time.sleep(0.3)
        load.stop()
        looper.close()
        f["loop_served_meanwhile"] = served_meanwhile
        if line is None:
            problems.append(f"/loop: worker {stuck} not killed by the heartbeat within --timeout {t} + 10 s")
            f["loop_killed_after_s"] = "no"
        else:
            f["loop_killed_after_s"] = f"{killed_after:.1f}"
            if not replaced:
                problems.append(f"/loop: worker {stuck} not replaced: {srv.workers()}")
            if load.failed > max(0, held - 1):
                problems.append(f"/loop: {load.failed} others failed, more than the {held - 1} connections "
                                f"the stuck worker held: {load.failures[:5]}")
        if served_meanwhile == 0:
            problems.append("/loop: nobody served while a worker was stuck")
        f["loop_others_failed"] = load.failed
    return verdict(f, problems)


def find_spinning(srv: Server, workers: list[int]) -> tuple[int, int]:
    """The worker burning a CPU (stuck in /loop), and how many connections it holds then."""
    time.sleep(0.3)
    a = {p: cpu_seconds(p) for p in workers}
    time.sleep(0.7)
    b = {p: cpu_seconds(p) - a[p] for p in workers}
    stuck = max(b, key=b.get) if b else 0
    return stuck, len([i for i in socket_inodes(stuck) if i not in srv.listen])

