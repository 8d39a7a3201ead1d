"""Load runs with wrk and what they measured: requests/s, latency, CPU time, and the summaries and
formats of the tables."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
from dataclasses import dataclass

from .common import CLK_TCK, children_ticks, cpu_ticks_by_pid, machine_busy
from .servers import Server


@dataclass
class Run:
    rps: float
    p99_ms: float | None
    avg_ms: float | None
    requests: int
    non2xx: int
    socket_errors: dict[str, int]
    cpu_ticks: int
    background_pct: float  # CPU% of the machine used by neither the server nor wrk during the run
    worker_ticks: list[int]  # each worker's share of cpu_ticks

    @property
    def errors(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(out: str) -> tuple[float, float | None, float | None, int, int, dict[str, int]]:
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1)) if m else 0.0
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    p99 = float(m.group(1)) * _UNITS[m.group(2)] if m else None
    m = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s|m)\s", out, re.M)
    avg = float(m.group(1)) * _UNITS[m.group(2)] if m else None
    m = re.search(r"(\d+) requests in ", out)
    requests = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sock = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    return rps, p99, avg, requests, non2xx, sock


def wrk_argv(port: int, conns: int, duration: float, close: bool, path: str = "/") -> list[str]:
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{duration:g}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    return argv + [f"http://127.0.0.1:{port}{path}"]


@dataclass
class Load:
    """What one run of a load generator left: its output, and the server's CPU time meanwhile."""
    out: str
    cpu_ticks: int
    background_pct: float
    worker_ticks: list[int]


def measure(server: Server, argv: list[str], timeout: float) -> Load:
    """Runs the load generator `argv` against `server`, reading the server's CPU time (every process of
    its session) and the machine's around it."""
    by0, kids0, (busy0, tot0) = cpu_ticks_by_pid(server.pid), children_ticks(), machine_busy()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    by1, kids1, (busy1, tot1) = cpu_ticks_by_pid(server.pid), children_ticks(), machine_busy()
    cpu0, cpu1 = sum(by0.values()), sum(by1.values())
    workers = [by1[pid] - by0.get(pid, 0) for pid in sorted(by1) if pid != server.pid]
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({p.returncode}): {p.stderr or p.stdout}")
    cpu = cpu1 - cpu0
    ncpu = os.cpu_count() or 1
    other = (busy1 - busy0) - cpu - (kids1 - kids0)
    background = max(0.0, 100.0 * other / max(1, tot1 - tot0) * ncpu)
    return Load(p.stdout, cpu, background, workers)


def run_wrk(server: Server, conns: int, duration: float, close: bool, path: str = "/") -> Run:
    load = measure(server, wrk_argv(server.port, conns, duration, close, path), duration + 60)
    rps, p99, avg, requests, non2xx, sock = parse_wrk(load.out)
    return Run(rps, p99, avg, requests, non2xx, sock, load.cpu_ticks, load.background_pct, load.worker_ticks)


# ----------------------------------------------------------------------------------------------------
# Results


@dataclass
class Scenario:
    conns: int
    close: bool

    @property
    def key(self) -> str:
        return f"{self.conns}-{'close' if self.close else 'ka'}"

    @property
    def label(self) -> str:
        return f"{self.conns} conns, {'Connection: close' if self.close else 'keep-alive'}"


@dataclass
class Summary:
    rps: float
    p99_ms: float | None
    cpu_us: float | None
    served: float | None  # connections in service on average: req/s x mean latency (Little's law)
    errors: int
    error_detail: str
    runs: list[Run]


def summarise(runs: list[Run]) -> Summary:
    rps = statistics.median(r.rps for r in runs)
    p99s = [r.p99_ms for r in runs if r.p99_ms is not None]
    requests = sum(r.requests for r in runs)
    cpu_us = sum(r.cpu_ticks for r in runs) / CLK_TCK * 1e6 / requests if requests else None
    errors = sum(r.errors for r in runs)
    parts = []
    non2xx = sum(r.non2xx for r in runs)
    if non2xx:
        parts.append(f"non-2xx {non2xx}")
    for k in ("connect", "read", "write", "timeout"):
        n = sum(r.socket_errors.get(k, 0) for r in runs)
        if n:
            parts.append(f"{k} {n}")
    served = [r.rps * r.avg_ms / 1000 for r in runs if r.avg_ms is not None]
    return Summary(rps, statistics.median(p99s) if p99s else None, cpu_us,
                   statistics.median(served) if served else None, errors, ", ".join(parts), runs)


def fmt_rps(v: float) -> str:
    return f"{v:,.0f}"


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def fmt_us(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def fmt_mib(kib: list[int]) -> str:
    if not kib:
        return "–"
    return " / ".join(f"{k / 1024:.1f}" for k in kib)


def worker_split(runs: list[Run]) -> str:
    """Each worker's share of the workers' CPU time over the runs, busiest first."""
    shares: list[float] = []
    for r in runs:
        total = sum(r.worker_ticks)
        if total:
            shares += [0.0] * (len(r.worker_ticks) - len(shares))
            for i, t in enumerate(sorted(r.worker_ticks, reverse=True)):
                shares[i] += t / total / len(runs)
    return " / ".join(f"{100 * x:.0f}%" for x in shares) or "–"


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def check(ok: bool) -> str:
    return "✓" if ok else "✗"
