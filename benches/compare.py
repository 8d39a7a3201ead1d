#!/usr/bin/env python3
"""`make bench`: rustgun's three worker classes against nginx, gunicorn and granian under wrk, each
class both serving the native hello app (`libhello.so`) and the same app in Python through the WSGI
bridge (`libwsgi.so`).

Standard library only. What it does, in order:

1. Installs what is missing: `wrk` and `nginx` with apt-get (only as root; otherwise it says what to
   install and stops), `gunicorn` and `granian` with pip into the venv `target/bench-venv`.
2. Writes the hello app as a WSGI callable into `target/bench/hello_wsgi.py` (the same response as
   rustgun's `libhello.so`: 200, `Content-Type: text/plain`, `Content-Length: 13`, `Hello, World!`),
   served by gunicorn (sync and gthread), granian and rustgun + `libwsgi.so` (each worker class).
3. Starts every server once (2 workers each, its own ephemeral loopback port, logs quiet, each in its
   own process group), checks it answers a GET with `Hello, World!`, and measures its idle RSS per
   worker.
4. For each scenario (32 and 256 connections, keep-alive and `Connection: close`) runs
   `wrk -t2 -cN -dDs --latency` in interleaved rounds (A B C … A B C …), reading the server's CPU time
   (utime + stime of all its processes, from /proc) around each run.
5. The 10,000 idle keep-alive connections test on a separate rustgun `event` server.
6. Prints the tables — every server per scenario; the WSGI servers against gunicorn sync and granian;
   the bridge's CPU µs/request over the native app's, per class; the targets of issues 6 and 8 — and
   writes docs/benchmarks.md and docs/benchmarks.svg.

Every server is stopped (its process group killed) in a `finally`, also on Ctrl-C.

    python3 benches/compare.py                             # the full run (5 s x 3 rounds)
    python3 benches/compare.py --duration 1 --rounds 1 --no-docs   # a smoke test
    python3 benches/compare.py --duration 1 --rounds 1 --no-docs --only rustgun-sync,wsgi-sync,granian
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import html
import http.client
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RELEASE = Path("target/release")
BENCH_DIR = Path("target/bench")
VENV = Path("target/bench-venv")
HELLO = b"Hello, World!"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WANT_NOFILE = 65536
IDLE_CONNECTIONS = 10_000
THREADS = 4  # --threads of rustgun `threads` (native and WSGI) and gunicorn gthread

WSGI_APP = '''\
"""The hello app as a WSGI callable: the same response as rustgun's libhello.so (written by
benches/compare.py)."""

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "13")]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
'''

NGINX_CONF = """\
# Written by benches/compare.py: nginx answering the hello response itself.
worker_processes 2;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
{temp_paths}    server {{
        listen 127.0.0.1:{port};
        location / {{
            return 200 "Hello, World!";
        }}
    }}
}}
"""

# ----------------------------------------------------------------------------------------------------
# Small helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_out(argv: list[str], timeout: float = 60) -> str:
    """stdout + stderr of a short command, '' when it cannot run."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (p.stdout + p.stderr).strip()


def free_ports(n: int) -> list[int]:
    """n distinct ephemeral loopback ports (bound together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def raise_nofile() -> tuple[int, int]:
    """Raises this process's soft RLIMIT_NOFILE to 65536 (or the hard limit, if that is lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = WANT_NOFILE if hard == resource.RLIM_INFINITY else min(WANT_NOFILE, hard)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
    try:  # A privileged process may also raise the hard limit.
        if hard != resource.RLIM_INFINITY and hard < WANT_NOFILE:
            resource.setrlimit(resource.RLIMIT_NOFILE, (WANT_NOFILE, WANT_NOFILE))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def child_setup() -> None:
    """preexec_fn of every server: the raised descriptor limit (`ulimit -n 65536`, or the hard limit),
    and SIGTERM should this script die without cleaning up."""
    raise_nofile()
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


# ----------------------------------------------------------------------------------------------------
# /proc


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (index 0 = state, field 3)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


def session_pids(sid: int) -> list[int]:
    """Every live process of session `sid` (each server runs in its own session and process group)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        # [1] ppid, [2] pgrp, [3] session
        if st and st[0] != "Z" and (int(st[3]) == sid or int(st[2]) == sid):
            pids.append(int(name))
    return sorted(pids)


def cpu_ticks_by_pid(sid: int) -> dict[int, int]:
    """utime + stime (all threads) of every process of the server, plus its reaped children's
    cutime + cstime, in clock ticks."""
    out = {}
    for pid in session_pids(sid):
        st = proc_stat(pid)
        if st:
            out[pid] = int(st[11]) + int(st[12]) + int(st[13]) + int(st[14])
    return out


def status_kib(pid: int, key: str, path: str = "status") -> int | None:
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def machine_busy() -> tuple[int, int]:
    """(task, total) jiffies of all CPUs from /proc/stat: `task` is the user + system time of processes.
    irq and softirq time (the loopback's TCP processing, for one) is accounted apart on this kind of
    kernel: it is in neither a process's times nor `task`."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (parts + [0] * 8)[:8]
    return user + nice + system, user + nice + system + idle + iowait + irq + softirq + steal


def children_ticks() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * CLK_TCK


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ----------------------------------------------------------------------------------------------------
# Servers


@dataclass
class Server:
    key: str
    label: str
    workers: int
    argv_fn: object  # (port) -> argv
    rustgun_class: str | None = None
    python: bool = False  # serves target/bench/hello_wsgi.py (gunicorn, granian, rustgun + libwsgi.so)
    colour: str = "#888888"  # its bars in the chart
    setup_fn: object = None  # (port) -> None, before start
    proc: subprocess.Popen | None = None
    port: int = 0
    argv: list[str] = field(default_factory=list)
    log_path: Path | None = None
    rss_idle: list[int] = field(default_factory=list)
    pss_idle: list[int] = field(default_factory=list)
    rss_after: list[int] = field(default_factory=list)
    master_rss: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        return [p for p in session_pids(self.pid) if p != self.pid]

    def start(self, port: int) -> None:
        self.port = port
        if self.setup_fn:
            self.setup_fn(port)
        self.argv = self.argv_fn(port)
        self.log_path = BENCH_DIR / "logs" / f"{self.key}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(REPO / self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=child_setup,
            )

    def wait_ready(self, timeout: float = 30) -> None:
        """GET / until it answers the hello response, then until all workers are up."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200 and body == HELLO:
                    break
                last = f"{resp.status} {body[:60]!r}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.label} not ready after {timeout}s ({last}): {self.log_tail()}")
        while time.monotonic() < deadline and len(self.worker_pids()) < self.workers:
            time.sleep(0.1)
        time.sleep(0.5)

    def log_tail(self) -> str:
        try:
            return (REPO / self.log_path).read_text(errors="replace")[-800:]
        except OSError:
            return ""

    def rss(self) -> list[int]:
        return [v for v in (status_kib(p, "VmRSS") for p in self.worker_pids()) if v is not None]

    def pss(self) -> list[int]:
        return [v for v in (status_kib(p, "Pss", "smaps_rollup") for p in self.worker_pids()) if v]

    def stop(self) -> None:
        if self.proc is None:
            return
        pid = self.pid
        if self.proc.poll() is None:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (workers outliving their master included) is killed.
        for _ in range(50):
            left = session_pids(pid)
            if not left:
                break
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None


def make_servers(nginx_prefix: Path) -> list[Server]:
    """The native servers first, then those serving the Python app (the chart groups them so)."""
    rustgun = str(RELEASE / "rustgun")
    venv_bin = VENV / "bin"
    quiet = ["--log-level", "warning"]
    # rustgun's classes, each with the --threads of its native and WSGI rows (event: none, the app runs on
    # the loop), and its chart colours (native, WSGI).
    classes = [("sync", [], "#d95f02", "#fc8d62"), ("threads", ["--threads", str(THREADS)], "#e6ab02", "#ffd92f"),
               ("event", [], "#a6761d", "#e5c494")]

    def rg(cls: str, extra: list[str], wsgi: bool = False):
        """rustgun serving libhello.so, or with wsgi libwsgi.so serving hello_wsgi:app (bridge options after --)."""
        app = str(RELEASE / ("libwsgi.so" if wsgi else "libhello.so")) + ":app"
        bridge = ["--", "--pythonpath", str(BENCH_DIR), "hello_wsgi:app"] if wsgi else []
        return lambda port: [rustgun, app, "-k", cls, "-w", "2", *extra, "-b", f"127.0.0.1:{port}", *quiet, *bridge]

    def nginx_setup(port: int) -> None:
        built = run_out(["nginx", "-V"])
        temp = ""
        for mod in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]:
            if mod != "client_body" and f"--without-http_{mod}_module" in built:
                continue
            (nginx_prefix / f"{mod}_temp").mkdir(exist_ok=True)
            temp += f"    {mod}_temp_path {nginx_prefix}/{mod}_temp;\n"
        (nginx_prefix / "nginx.conf").write_text(NGINX_CONF.format(prefix=nginx_prefix, port=port, temp_paths=temp))

    return [
        *(Server(f"rustgun-{cls}", f"rustgun {cls}", 2, rg(cls, extra), rustgun_class=cls, colour=native)
          for cls, extra, native, _ in classes),
        Server(
            "nginx",
            "nginx",
            2,
            lambda port: ["nginx", "-p", str(nginx_prefix), "-e", "stderr", "-c", str(nginx_prefix / "nginx.conf"),
                          "-g", "daemon off;"],
            setup_fn=nginx_setup,
            colour="#1b9e77",
        ),
        *(Server(f"wsgi-{cls}", f"rustgun+wsgi {cls}", 2, rg(cls, extra, wsgi=True), rustgun_class=cls, python=True,
                 colour=wsgi)
          for cls, extra, _, wsgi in classes),
        Server(
            "gunicorn-sync",
            "gunicorn sync",
            2,
            lambda port: [str(venv_bin / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(BENCH_DIR),
                          *quiet, "hello_wsgi:app"],
            python=True,
            colour="#7570b3",
        ),
        Server(
            "gunicorn-gthread",
            "gunicorn gthread",
            2,
            lambda port: [str(venv_bin / "gunicorn"), "-w", "2", "--threads", str(THREADS), "-k", "gthread", "-b",
                          f"127.0.0.1:{port}", "--chdir", str(BENCH_DIR), *quiet, "hello_wsgi:app"],
            python=True,
            colour="#9e9ac8",
        ),
        Server(
            "granian",
            "granian",
            2,
            lambda port: [str(venv_bin / "granian"), "--interface", "wsgi", "--workers", "2", "--http", "1",
                          "--no-ws", "--host", "127.0.0.1", "--port", str(port), "--working-dir", str(BENCH_DIR),
                          "--log-level", "warning", "hello_wsgi:app"],
            python=True,
            colour="#e7298a",
        ),
    ]


# ----------------------------------------------------------------------------------------------------
# Installing


def ensure_tools() -> None:
    missing = [t for t in ("wrk", "nginx") if shutil.which(t) is None]
    if missing:
        if os.geteuid() != 0:
            sys.exit(f"compare.py: {', '.join(missing)} missing and not root: install them first, e.g.\n"
                     f"    sudo apt-get install -y wrk nginx-light")
        log(f"installing {' '.join(missing)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "wrk", "nginx-light"]
        if subprocess.run(cmd, env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(cmd, env=env, check=True)
        # The package's own nginx service is none of ours.
        subprocess.run(["sh", "-c", "command -v systemctl >/dev/null && systemctl stop nginx || service nginx stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for t in ("wrk", "nginx"):
        if shutil.which(t) is None:
            sys.exit(f"compare.py: {t} still missing after apt-get")
    if not all((REPO / RELEASE / f).exists() for f in ("rustgun", "libhello.so", "libwsgi.so")):
        sys.exit("compare.py: target/release/rustgun, libhello.so or libwsgi.so missing: run `make build` first")


def ensure_venv() -> None:
    py = REPO / VENV / "bin" / "python"
    if not py.exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(REPO / VENV)], check=True)
    want = [p for p in ("gunicorn", "granian") if not (REPO / VENV / "bin" / p).exists()]
    if want:
        log(f"pip install {' '.join(want)} into {VENV}")
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", *want], check=True)


def write_wsgi_app() -> None:
    (REPO / BENCH_DIR).mkdir(parents=True, exist_ok=True)
    path = REPO / BENCH_DIR / "hello_wsgi.py"
    if not path.exists() or path.read_text() != WSGI_APP:
        path.write_text(WSGI_APP)


def versions() -> dict[str, str]:
    def first(s: str) -> str:
        return s.splitlines()[0] if s else "?"

    venv_bin = str(REPO / VENV / "bin")
    commit = run_out(["git", "rev-parse", "--short", "HEAD"]) or "?"
    dirty = run_out(["git", "status", "--porcelain", "--", "src", "apps", "crates"])
    return {
        "rustgun": first(run_out([str(RELEASE / "rustgun"), "--version"]))
        + f" (commit {commit}{', with uncommitted changes in src/' if dirty else ''})",
        "nginx": first(run_out(["nginx", "-v"])).replace("nginx version: ", ""),
        "gunicorn": first(run_out([venv_bin + "/gunicorn", "--version"])),
        "granian": first(run_out([venv_bin + "/granian", "--version"])),
        "wrk": first(run_out(["wrk", "-v"])).split(" Copyright")[0],
        "python (venv)": first(run_out([venv_bin + "/python", "--version"])),
        "libwsgi.so's libpython": (re.findall(r"libpython\S* => (\S+)", run_out(["ldd", str(RELEASE / "libwsgi.so")]))
                                   or ["?"])[0],
    }


def machine() -> dict[str, str]:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    return {
        "nproc": run_out(["nproc"]) or str(os.cpu_count()),
        "CPU": model,
        "memory": f"{mem:.0f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "OS": (run_out(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]) or "?"),
    }


# ----------------------------------------------------------------------------------------------------
# wrk


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


def wrk_argv(port: int, conns: int, duration: float, close: bool) -> list[str]:
    argv = ["wrk", "-t2", f"-c{conns}", f"-d{duration:g}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    return argv + [f"http://127.0.0.1:{port}/"]


def run_wrk(server: Server, conns: int, duration: float, close: bool) -> Run:
    argv = wrk_argv(server.port, conns, duration, close)
    by0, kids0, (busy0, tot0) = cpu_ticks_by_pid(server.pid), children_ticks(), machine_busy()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    by1, kids1, (busy1, tot1) = cpu_ticks_by_pid(server.pid), children_ticks(), machine_busy()
    cpu0, cpu1 = sum(by0.values()), sum(by1.values())
    workers = [by1[pid] - by0.get(pid, 0) for pid in sorted(by1) if pid != server.pid]
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stderr or p.stdout}")
    rps, p99, avg, requests, non2xx, sock = parse_wrk(p.stdout)
    cpu = cpu1 - cpu0
    ncpu = os.cpu_count() or 1
    other = (busy1 - busy0) - cpu - (kids1 - kids0)
    background = max(0.0, 100.0 * other / max(1, tot1 - tot0) * ncpu)
    return Run(rps, p99, avg, requests, non2xx, sock, cpu, background, workers)


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


# ----------------------------------------------------------------------------------------------------
# The 10,000 idle keep-alive connections


REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_hello(s: socket.socket) -> bool:
    buf = b""
    for _ in range(64):  # bounded: the response is ~100 bytes
        chunk = s.recv(4096)
        if not chunk:
            return False
        buf += chunk
        head, sep, body = buf.partition(b"\r\n\r\n")
        if sep and len(body) >= len(HELLO):
            return head.startswith(b"HTTP/1.1 200") and body[: len(HELLO)] == HELLO
    return False


def open_idle(port: int, n: int, deadline: float) -> list[socket.socket]:
    """n keep-alive connections, each having made one request, then left idle."""
    socks: list[socket.socket] = []
    try:
        batch = 250
        for start in range(0, n, batch):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(socks)} idle connections opened in time")
            group = []
            for _ in range(min(batch, n - start)):
                s = socket.create_connection(("127.0.0.1", port), timeout=15)
                group.append(s)
                socks.append(s)
                s.sendall(REQ)
            for s in group:
                if not read_hello(s):
                    raise RuntimeError(f"idle connection {len(socks)}: no hello response")
        return socks
    except BaseException:
        close_all(socks)
        raise


def still_held(socks: list[socket.socket]) -> int:
    """How many of the idle connections still answer a request."""
    ok = 0
    for s in socks:
        try:
            s.sendall(REQ)
            ok += read_hello(s)
        except OSError:
            pass
    return ok


def close_all(socks: list[socket.socket]) -> None:
    """Closes with a reset (SO_LINGER 0): no TIME_WAIT left holding 10,000 loopback ports per round."""
    for s in socks:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass
    socks.clear()


def conns_per_worker(server: Server) -> list[int]:
    out = []
    for pid in server.worker_pids():
        try:
            out.append(sum(1 for fd in os.listdir(f"/proc/{pid}/fd")
                           if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")))
        except OSError:
            out.append(-1)
    return out


# ----------------------------------------------------------------------------------------------------
# Output: the terminal table, the markdown and the SVG


def table(headers: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """A markdown table, also readable as plain text (padded)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)) + "|"
    return [line(headers), sep, *(line(r) for r in rows)]


def scenario_table(servers: list[Server], sc: Scenario, res: dict, refs: list[Server], full: bool = True) -> list[str]:
    """One scenario's table, a row per server: its req/s, that as a multiple of each of `refs`' req/s,
    p99, CPU µs/request, (with `full`) connections in service and the workers' CPU split, and errors."""
    headers = ["server", "req/s (median)", *(f"× {ref.label}" for ref in refs), "p99 (median)", "CPU µs/req",
               *(["conns in service", "workers' CPU split"] if full else []), "errors"]
    rows = []
    for s in servers:
        r = res[s.key][sc.key]
        rows.append([s.label, fmt_rps(r.rps), *(f"{ratio(r.rps, res[ref.key][sc.key].rps):.2f}×" for ref in refs),
                     fmt_ms(r.p99_ms), fmt_us(r.cpu_us),
                     *(["–" if r.served is None else f"{r.served:.0f}", worker_split(r.runs)] if full else []),
                     str(r.errors) + (f" ({r.error_detail})" if r.errors else "")])
    return table(headers, rows, "l" + "r" * (len(headers) - 2) + "l")


def best_line(servers: list[Server], sc: Scenario, res: dict) -> str:
    best = max(servers, key=lambda s: res[s.key][sc.key].rps)
    cheapest = min((s for s in servers if res[s.key][sc.key].cpu_us), key=lambda s: res[s.key][sc.key].cpu_us,
                   default=None)
    return f"Most requests/s: **{best.label}**" + (f"; least CPU per request: **{cheapest.label}**." if cheapest else ".")


def nice_step(vmax: float, ticks: int = 5) -> float:
    raw = vmax / ticks if vmax > 0 else 1
    mag = 10 ** int(f"{raw:e}".split("e")[1])
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def short_num(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def svg_chart(servers: list[Server], scenarios: list[Scenario], res: dict, title_note: str) -> str:
    """Two panels of grouped bars (one group per scenario, one bar per server; the servers of the Python
    app after a gap, with their own legend line): requests/s on a linear axis, CPU µs/request on a
    logarithmic one (the Python servers use 10-40x the CPU of the others)."""
    W, left, right = 980, 78, 20
    panel_h, top0 = 300, 74
    panels = [
        ("Requests per second (median of the rounds; higher is better)", lambda s: s.rps, short_num, False),
        ("Server CPU time per request, µs, log scale (all its processes; lower is better)",
         lambda s: s.cpu_us or 0.0, lambda v: f"{v:.0f}" if v >= 10 else f"{v:.1f}", True),
    ]
    H = top0 + len(panels) * (panel_h + 70) + 10
    plot_w = W - left - right
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="#fff"/>',
           f'<text x="{left}" y="20" font-size="15" font-weight="bold">rustgun (native and WSGI) vs nginx, gunicorn, '
           f'granian: hello app, wrk, 2 workers each</text>',
           f'<text x="{left}" y="37" fill="#555">{html.escape(title_note)}</text>']
    legend = [("native app:", [s for s in servers if not s.python]),
              ("Python WSGI app:", [s for s in servers if s.python])]
    for y, (caption, group) in zip((45, 63), (g for g in legend if g[1])):
        out.append(f'<text x="{left}" y="{y + 10}" fill="#555">{html.escape(caption)}</text>')
        x = left + 116
        for s in group:
            out.append(f'<rect x="{x:.0f}" y="{y}" width="11" height="11" fill="{s.colour}"/>')
            out.append(f'<text x="{x + 15:.0f}" y="{y + 10}">{html.escape(s.label)}</text>')
            x += 26 + 6.7 * len(s.label)
    n_s, n_b = len(scenarios), len(servers)
    # The Python app's bars start after a gap of `gap` bars when both kinds are shown.
    first_py = next((i for i, s in enumerate(servers) if s.python), n_b)
    gap = 0.7 if 0 < first_py < n_b else 0.0
    group_w = plot_w / n_s
    bar_w = group_w * 0.84 / (n_b + gap)
    for pi, (ptitle, value, fmt, log_scale) in enumerate(panels):
        top = top0 + 30 + pi * (panel_h + 70)
        bottom = top + panel_h
        vals = [value(res[s.key][sc.key]) for s in servers for sc in scenarios]
        vmax = max(vals, default=1) or 1
        if log_scale:
            positive = [v for v in vals if v > 0] or [1.0]
            lo = 10 ** math.floor(math.log10(min(positive)))
            hi = 10 ** math.ceil(math.log10(vmax * 1.3))
            ticks = [m * 10 ** e for e in range(int(math.log10(lo)), int(math.log10(hi)) + 1) for m in (1, 2, 5)
                     if lo <= m * 10 ** e <= hi]

            def height(v: float, lo=lo, hi=hi) -> float:
                return panel_h * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        else:
            step = nice_step(vmax * 1.08)
            ymax = step * max(1, -(-vmax * 1.08 // step))
            ticks = [i * step for i in range(int(round(ymax / step)) + 1)]

            def height(v: float, ymax=ymax) -> float:
                return panel_h * v / ymax
        out.append(f'<text x="{left}" y="{top - 10}" font-weight="bold">{html.escape(ptitle)}</text>')
        for t in ticks:
            y = bottom - height(t)
            out.append(f'<line x1="{left}" x2="{W - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444">'
                       f'{short_num(t) if t else "0"}</text>')
        out.append(f'<line x1="{left}" x2="{W - right}" y1="{bottom}" y2="{bottom}" stroke="#333"/>')
        for gi, sc in enumerate(scenarios):
            gx = left + gi * group_w + group_w * 0.08
            for bi, s in enumerate(servers):
                v = value(res[s.key][sc.key])
                h = height(v)
                bx = gx + (bi + (gap if bi >= first_py else 0)) * bar_w
                out.append(f'<rect x="{bx:.1f}" y="{bottom - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                           f'fill="{s.colour}"><title>{html.escape(s.label)}, {html.escape(sc.label)}: '
                           f'{fmt(v)}</title></rect>')
                tx, ty = bx + (bar_w - 2) / 2 + 3.5, bottom - h - 4
                out.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="10" fill="#222" '
                           f'transform="rotate(-90 {tx:.1f} {ty:.1f})">{fmt(v)}</text>')
            out.append(f'<text x="{left + gi * group_w + group_w / 2:.1f}" y="{bottom + 18}" text-anchor="middle">'
                       f'{html.escape(sc.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------------
# Main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario (default 3)")
    ap.add_argument("--warmup", type=float, default=1, help="seconds of wrk per server before measuring (0: none)")
    ap.add_argument("--only", default="", help="comma-separated server keys to run (nginx is always kept)")
    ap.add_argument("--skip-idle", action="store_true", help="skip the 10,000 idle connections test")
    ap.add_argument("--idle-connections", type=int, default=IDLE_CONNECTIONS)
    ap.add_argument("--docs", default="docs/benchmarks.md", help="markdown to write (the SVG goes beside it)")
    ap.add_argument("--no-docs", action="store_true", help="print the tables only")
    args = ap.parse_args()
    if args.rounds < 1 or args.duration <= 0:
        ap.error("--rounds must be >= 1 and --duration > 0")

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
    print()
    print(report["text"])
    if not args.no_docs:
        md = REPO / args.docs
        svg = md.with_suffix(".svg")
        md.parent.mkdir(parents=True, exist_ok=True)
        svg.write_text(svg_chart(servers, scenarios, res, report["chart_note"]))
        md.write_text(report["markdown"].replace("@SVG@", svg.name))
        log(f"wrote {md} and {svg}")
    return 0


def render(args, servers, scenarios, res, idle, started, load_before, load_after, nofile, vers) -> dict:
    by = {s.key: s for s in servers}
    rg = [s for s in servers if s.rustgun_class and not s.python]  # rustgun with the native hello app
    wsgi = [s for s in servers if s.rustgun_class and s.python]  # rustgun + libwsgi.so
    py = [s for s in servers if s.python]  # every server of the Python app
    has = lambda k: k in res  # noqa: E731
    refs = lambda *keys: [by[k] for k in keys if has(k)]  # noqa: E731

    # Per-scenario tables: every server against nginx, then the Python app's servers against gunicorn
    # sync and granian.
    result_lines: list[str] = []
    wsgi_lines: list[str] = []
    text_tables: list[str] = []
    for sc in scenarios:
        everyone = scenario_table(servers, sc, res, refs("nginx"))
        result_lines += [f"### {sc.label}", "", *everyone, "", best_line(servers, sc, res), ""]
        text_tables += [f"{sc.label}:", *everyone, ""]
        if wsgi:
            python = scenario_table(py, sc, res, refs("gunicorn-sync", "granian"), full=False)
            wsgi_lines += [f"### WSGI, {sc.label}", "", *python, "", best_line(py, sc, res), ""]
            text_tables += [f"WSGI app, {sc.label}:", *python, ""]

    # The bridge's overhead: CPU µs/request of rustgun + libwsgi.so less the same class's with libhello.so.
    overhead_rows = []
    for w in wsgi:
        native = next((s for s in rg if s.rustgun_class == w.rustgun_class), None)
        if native is None:
            continue
        cells = []
        for sc in scenarios:
            n, p = res[native.key][sc.key].cpu_us, res[w.key][sc.key].cpu_us
            cells.append("–" if n is None or p is None else f"+{p - n:.1f} ({n:.1f} → {p:.1f})")
        overhead_rows.append([f"`{w.rustgun_class}`", *cells])
    overhead_lines = table(["class", *(sc.label for sc in scenarios)], overhead_rows) if overhead_rows else []

    rss_rows = []
    for s in servers:
        rss_rows.append([s.label, str(len(s.rss_idle)), fmt_mib(s.rss_idle), fmt_mib(s.pss_idle),
                         fmt_mib(s.rss_after), fmt_mib([s.master_rss] if s.master_rss else [])])
    rss_lines = table(["server", "worker processes", "idle RSS/worker MiB", "idle PSS/worker MiB",
                       "RSS/worker after the load MiB", "master RSS MiB"], rss_rows, "lrrrrr")

    # Targets.
    tgt: list[list[str]] = []
    def sc_of(conns, close):
        return next((sc.key for sc in scenarios if sc.conns == conns and sc.close == close), None)
    if has("rustgun-event") and has("nginx"):
        k = sc_of(256, False)
        e, n = res["rustgun-event"][k], res["nginx"][k]
        ok = ratio(e.rps, n.rps) >= 1.0 and e.p99_ms is not None and n.p99_ms is not None and e.p99_ms <= n.p99_ms
        tgt.append(["`event`, keep-alive, 256 conns: ≥ 1.0× nginx req/s, p99 ≤ nginx's",
                    f"{ratio(e.rps, n.rps):.2f}× ({fmt_rps(e.rps)} vs {fmt_rps(n.rps)}); p99 {fmt_ms(e.p99_ms)} vs "
                    f"{fmt_ms(n.p99_ms)}", check(ok)])
    if has("nginx"):
        for s in rg:
            vals = [ratio(res[s.key][sc_of(c, True)].rps, res["nginx"][sc_of(c, True)].rps) for c in (32, 256)]
            tgt.append([f"`{s.rustgun_class}`, `Connection: close`: ≥ 0.95× nginx",
                        f"{vals[0]:.2f}× at 32, {vals[1]:.2f}× at 256", check(min(vals) >= 0.95)])
    def ahead(group: list[Server], suffix: str, gunicorn_times: float) -> list[list[str]]:
        """The req/s targets against gunicorn sync (≥ gunicorn_times) and granian (> 1×), every scenario."""
        rows = []
        for ref, want, digits, passes in (("gunicorn-sync", f"≥ {gunicorn_times:g}× gunicorn sync", 1,
                                           lambda v: v >= gunicorn_times),
                                          ("granian", "ahead of granian", 2, lambda v: v > 1.0)):
            if not has(ref):
                continue
            for s in group:
                vals = [ratio(res[s.key][sc.key].rps, res[ref][sc.key].rps) for sc in scenarios]
                rows.append([f"`{s.rustgun_class}`{suffix}: {want} (every scenario)",
                             f"min {min(vals):.{digits}f}×, " + " / ".join(f"{v:.{digits}f}×" for v in vals),
                             check(passes(min(vals)))])
        return rows

    tgt += ahead(rg, "", 10)
    for s in rg:
        mx = max(s.rss_idle) / 1024 if s.rss_idle else float("nan")
        tgt.append([f"`{s.rustgun_class}`: idle RSS per worker ≤ 5 MiB", f"{fmt_mib(s.rss_idle)} MiB (VmRSS)",
                    check(mx <= 5)])
    if idle:
        r = ratio(idle["idle"].rps, idle["base"].rps)
        ok = idle["held"] == idle["n"] and r >= 0.8
        tgt.append([f"{idle['n']:,} idle keep-alive connections held by 2 `event` workers, wrk ≥ 80% of its req/s",
                    f"{idle['held']:,} of {idle['n']:,} held; {r:.0%} ({fmt_rps(idle['idle'].rps)} vs "
                    f"{fmt_rps(idle['base'].rps)} req/s)", check(ok)])
    tgt_lines = table(["target", "measured", ""], tgt, "llc")
    tgt8 = ahead(wsgi, " + libwsgi.so", 5)
    tgt8_lines = table(["target", "measured", ""], tgt8, "llc") if tgt8 else []

    idle_lines: list[str] = []
    if idle:
        idle_lines = table(
            ["", "req/s (median)", "p99 (median)", "CPU µs/req", "errors", "RSS/worker MiB", "workers' CPU split"],
            [["without idle connections", fmt_rps(idle["base"].rps), fmt_ms(idle["base"].p99_ms),
              fmt_us(idle["base"].cpu_us), str(idle["base"].errors), fmt_mib(idle["rss_before"]),
              worker_split(idle["base"].runs)],
             [f"with {idle['n']:,} idle connections", fmt_rps(idle["idle"].rps), fmt_ms(idle["idle"].p99_ms),
              fmt_us(idle["idle"].cpu_us), str(idle["idle"].errors), fmt_mib(idle["rss_held"]),
              worker_split(idle["idle"].runs)]],
            "lrrrrrr")
        idle_lines += ["",
                       f"The {idle['n']:,} connections each made one request and then stayed idle; each round opened "
                       f"them anew (at most {idle['open_s']:.1f} s) and closed them after its wrk run. The workers held {' and '.join(str(n) for n in idle['per_worker'])} "
                       f"sockets (listener included), and after each wrk run at least {idle['held']:,} of them still answered a "
                       f"request. "
                       f"Ratio with/without: **{ratio(idle['idle'].rps, idle['base'].rps):.0%}**."]

    bg = [r.background_pct for s in servers for sc in scenarios for r in res[s.key][sc.key].runs]
    bg_med = statistics.median(bg) if bg else 0.0
    busy_note = (f"Other work on the machine during the wrk runs (CPU used by neither the server nor wrk): median "
                 f"{bg_med:.0f}% of one core, max {max(bg, default=0):.0f}%. Load average {load_before} before, "
                 f"{load_after} after.")
    busy_warning = ("" if bg_med < 25 else
                    "\n\n**This run was not quiet**: other work took a median "
                    f"{bg_med:.0f}% of a core while wrk ran, so the requests/s below are low and noisy (the slower, "
                    "CPU-hungry servers suffer most); the CPU µs/request figures are the ones to compare.")
    chart_note = (f"{started:%Y-%m-%d}, {machine()['nproc']} cores, wrk -t2, {args.rounds} × {args.duration:g} s "
                  f"rounds; background load median {bg_med:.0f}% of a core")

    text = "\n".join(
        text_tables
        + (["WSGI bridge overhead, CPU µs/request over the native app (native → WSGI):", *overhead_lines, ""]
           if overhead_lines else [])
        + ["RSS per worker (MiB):", *rss_lines, ""]
        + ([f"{args.idle_connections:,} idle keep-alive connections (rustgun event):", *idle_lines, ""] if idle else [])
        + ["Targets (issue 6):", *tgt_lines, ""]
        + (["Targets (issue 8, WSGI):", *tgt8_lines, ""] if tgt8_lines else [])
        + [busy_note])

    mach = machine()
    def shown(argv: list[str], port: int) -> str:
        """The command as run, with the ephemeral port and nginx's temporary prefix named."""
        text = shlex.join(argv).replace(f"127.0.0.1:{port}", "127.0.0.1:$PORT").replace(f"--port {port}", "--port $PORT")
        return re.sub(r"/tmp/rustgun-bench-nginx-[^/ ']+", "$PREFIX", text)

    cmds = [f"{s.label}: `{shown(s.argv, s.port)}`" for s in servers]
    if idle:
        cmds.append(f"rustgun event, idle test: `{shown(idle['argv'], idle['port'])}`")
    nginx_conf = NGINX_CONF.format(prefix="$PREFIX", port="$PORT", temp_paths="    # (*_temp_path under $PREFIX)\n")
    sample_wrk = [shlex.join(wrk_argv(0, sc.conns, args.duration, sc.close)).replace(":0/", ":$PORT/") for sc in
                  scenarios]
    argv_run = shlex.join(["python3", "benches/compare.py", *sys.argv[1:]])
    threads_note = ", ".join(f"`{s.rustgun_class}` " + (f"with `--threads {s.argv[s.argv.index('--threads') + 1]}`"
                                                        if "--threads" in s.argv else "without `--threads`")
                             for s in wsgi)
    overhead_section = "" if not overhead_lines else f"""### Bridge overhead per request

Server CPU µs/request of rustgun + `libwsgi.so` over that of the same class with the native `libhello.so`
(the native figure → the WSGI one), per scenario: what the bridge and the interpreter cost per request.

{chr(10).join(overhead_lines)}

"""
    wsgi_section = "" if not wsgi else f"""## Python WSGI app: rustgun + libwsgi.so vs gunicorn and granian

The same `target/bench/hello_wsgi.py` (below) served by rustgun with the WSGI bridge `libwsgi.so`
("rustgun+wsgi"), by gunicorn (sync, and gthread with `--threads {THREADS}`) and by granian's WSGI
interface, 2 workers each. rustgun's classes run as in the native rows:
{threads_note}
(without `--threads` the `event` class calls the app on its loop). These are rows of the tables above,
with their requests/s as multiples of gunicorn sync's and granian's.

{chr(10).join(wsgi_lines)}
{overhead_section}"""
    tgt8_section = "" if not tgt8_lines else f"""
## Targets (issue 8: the WSGI bridge)

{chr(10).join(tgt8_lines)}
"""

    md = f"""# Benchmarks

Written by `make bench` (`benches/compare.py`) on {started:%Y-%m-%d %H:%M %Z}; rerun it to refresh this page.
`make bench` builds the release binaries, installs what is missing (wrk and nginx with apt-get, gunicorn and
granian into the venv `target/bench-venv`), starts every server below once with 2 workers on its own
loopback port, and runs wrk against them in interleaved rounds. Each rustgun worker class runs twice:
with the native hello app (`libhello.so`), and as "rustgun+wsgi", the WSGI bridge (`libwsgi.so`) serving
the same Python app as gunicorn and granian
([Python WSGI app](#python-wsgi-app-rustgun--libwsgiso-vs-gunicorn-and-granian)). A quick smoke run that
leaves this page alone: `python3 benches/compare.py --duration 1 --rounds 1 --no-docs` (`--only KEY,…`
runs some of the servers: `rustgun-sync`, `wsgi-event`, `granian`, …). The criterion bench of the
protocol core (request heads parsed per second) is separate: `make bench-protocol`.

![requests/s and CPU µs/request per server and scenario](@SVG@)

## How it was measured

- This run: `{argv_run}` — {args.rounds} interleaved round{"s" if args.rounds > 1 else ""} (every server once per round, in the order below)
  of {args.duration:g} s per scenario{f", after a {args.warmup:g} s warm-up per server" if args.warmup > 0 else ""}.
  Figures are the **median** of the rounds; CPU µs/request is the server's CPU time over all rounds divided by
  the requests wrk completed in them; errors are summed.
- **CPU µs/request**: user + system time of all the server's processes (master and workers, all threads,
  plus reaped children) from `/proc/PID/stat`, read just before and after each wrk run. On this 2-core
  machine wrk (2 threads) competes with the server for the CPUs and is often the real limit of requests/s,
  so this figure, which does not depend on who wins the scheduler, is the fairer comparison of efficiency.
  The kernel's softirq time (the loopback's TCP processing, much the same for every server) is accounted
  apart on this kernel and is in no process's time, so it is not in this figure.
- **conns in service**: requests/s × wrk's mean latency (Little's law), the number of wrk's connections
  that were being served on average. Well below the connection count means the rest sat waiting: a
  `sync` worker serves one connection at a time and a `threads` worker one per thread, each until the
  client closes it, so under keep-alive the other connections wait in the accept queue and their
  requests never finish (wrk's latencies cover finished requests only, hence their low p99).
- **bridge overhead**: the CPU µs/request of rustgun + `libwsgi.so` less that of the same worker class
  serving the native `libhello.so` in the same scenario. The HTTP side (parsing, writing, the same
  response bytes) is the same code, so the difference is what the bridge and CPython add per request:
  the environ dict, the call of the app and `start_response`, turning its list into the response, the GIL.
- **workers' CPU split**: each worker's share of the workers' CPU time during the runs, busiest first:
  how evenly the kernel and the server spread wrk's connections over the 2 workers.
- **RSS per worker**: `VmRSS` of each worker process (every process of the server but the master), idle
  (after one GET), and again after all the load; PSS (`/proc/PID/smaps_rollup`) shares out the pages
  workers share with their master.
- **p99**: wrk's latency distribution; requests wrk timed out on (2 s) are in the errors, not in p99.
- **Other work** below: the machine's process CPU time (user + system from `/proc/stat`) during each wrk
  run less the server's and wrk's, i.e. what the other builds and tests on the machine took.
- Servers run with `RLIMIT_NOFILE` raised to {nofile[0]} (65536 or the hard limit), stdout/stderr to
  `target/bench/logs/`.

wrk, per scenario:

```
{chr(10).join(sample_wrk)}
```

Servers (each on its own ephemeral port, `$PORT`; paths relative to the repository; nginx's `$PREFIX` is a
temporary directory):

{chr(10).join("- " + c for c in cmds)}

`target/bench/hello_wsgi.py` (gunicorn, granian and rustgun + `libwsgi.so`):

```python
{WSGI_APP.rstrip()}
```

nginx.conf (run with `-p $PREFIX -e stderr -c $PREFIX/nginx.conf -g 'daemon off;'`):

```nginx
{nginx_conf.rstrip()}
```

## Machine

{chr(10).join(table(["machine", ""], [[k, v] for k, v in mach.items()] + [[k, v] for k, v in vers.items()], "ll"))}

{busy_note} Other engineers build and test on this machine at the same time, so
a busy neighbour skews single runs; the interleaved rounds spread that over all servers alike.{busy_warning}

## Results

{chr(10).join(result_lines)}
{wsgi_section}## Memory

{chr(10).join(rss_lines)}

## {args.idle_connections:,} idle keep-alive connections

{"Skipped (`--skip-idle`)." if not idle else ""}{chr(10).join(idle_lines)}

## Targets (issue 6)

{chr(10).join(tgt_lines)}
{tgt8_section}"""
    return {"text": text, "markdown": md, "chart_note": chart_note}


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ncompare.py: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
