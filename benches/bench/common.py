"""Paths, constants, the apps the Python servers serve, nginx's configuration, and small process helpers
(ports, file limits, /proc readings)."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent.parent
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
