"""The chaos driver's toolkit: the worker classes and sizes, servers in their own process groups
(killed whatever happens), HTTP on raw sockets, load clients that count every outcome, and the
verdict a scenario returns."""

from __future__ import annotations

import atexit
import ctypes
import os
import random
import re
import resource
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CLASSES = ("sync", "threads", "event")
CLASS_ARGS = {
    "sync": ["-k", "sync"],
    "threads": ["-k", "threads", "--threads", "4"],
    "event": ["-k", "event"],
}
# Connections one worker serves at the same time.
SLOTS = {"sync": 1, "threads": 4, "event": 1000}
WAIT = 20.0
MIB = 1 << 20

SIZES = {
    "short": dict(
        kill_secs=2.0, hups=2, storms=4, panics=10, aborts=3, loop_timeout=2,
        slowloris={"sync": 10, "threads": 20, "event": 100}, slow_secs=5.0,
        body=10 * MIB, requests=20_000, hostile=500, emfile_secs=2.0,
        crowd={"sync": 1, "threads": 2, "event": 50}, heads={"sync": 4, "threads": 8, "event": 300},
    ),
    "long": dict(
        kill_secs=10.0, hups=10, storms=20, panics=100, aborts=20, loop_timeout=3,
        slowloris={"sync": 1000, "threads": 1000, "event": 1000}, slow_secs=15.0,
        body=1 << 30, requests=1_000_000, hostile=10_000, emfile_secs=5.0,
        crowd={"sync": 1, "threads": 2, "event": 100}, heads={"sync": 4, "threads": 8, "event": 1000},
    ),
}


# ---------------------------------------------------------------------------------------------------
# Processes: every server in its own process group, killed at exit whatever happens.

_GROUPS: set[int] = set()
_PIDS: set[int] = set()
_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _kill_everything() -> None:
    for g in list(_GROUPS):
        try:
            os.killpg(g, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in list(_PIDS):
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _GROUPS.clear()
    _PIDS.clear()


def _on_signal(signum, _frame):
    _kill_everything()
    raise SystemExit(128 + signum)


atexit.register(_kill_everything)


def proc_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command: state, ppid, pgrp, …, utime at 11, stime at 12."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def free_port() -> int:
    """A loopback port nobody listens on now (for servers whose log cannot tell theirs)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = proc_fields(int(name))
            if f and int(f[1]) == pid:
                kids.append(int(name))
    return sorted(kids)


def wait_stopped(pid: int, bound: float = 1.0) -> bool:
    """Waits until every thread of `pid` is stopped (SIGSTOP is delivered to each thread in turn)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return False
        states = [(proc_fields_task(pid, t) or ["?"])[0] for t in tids]
        if all(st in ("T", "t") for st in states):
            return True
        time.sleep(0.0005)
    return False


def proc_fields_task(pid: int, tid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def is_zombie(pid: int) -> bool:
    f = proc_fields(pid)
    return bool(f) and f[0] == "Z"


def alive(pid: int) -> bool:
    f = proc_fields(pid)
    return bool(f) and f[0] != "Z"


def cpu_seconds(pid: int) -> float:
    f = proc_fields(pid)
    if not f:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def socket_inodes(pid: int) -> list[str]:
    out = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for n in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.append(target)
    return out


class Context:
    def __init__(self, args):
        self.binary = str(Path(args.bin).resolve())
        self.lib = str(Path(args.lib).resolve())
        self.size = "long" if args.long else "short"
        self.sz = SIZES[self.size]
        self.seed = args.seed
        self.tmp = Path(tempfile.mkdtemp(prefix="rustgun-chaos-"))
        self.keep = args.keep
        self.seq = 0


class Server:
    """`rustgun libchaos.so` in its own process group, its error log in a file."""

    def __init__(self, ctx: Context, cls: str, workers: int = 2, extra=(), bind: str = "127.0.0.1:0",
                 nofile: int | None = None, ready: bool = True, expect_exit: bool = False,
                 error_log: str | None = None, app_args=()):
        ctx.seq += 1
        self.ctx = ctx
        self.log_path = ctx.tmp / f"{ctx.seq:03d}-{cls}.log"
        self.workers_wanted = workers
        args = [ctx.binary, ctx.lib, "--bind", bind, "--workers", str(workers), *CLASS_ARGS[cls], *extra]
        if error_log:
            args += ["--error-logfile", error_log]
        if app_args:
            args += ["--", *app_args]
        env = dict(os.environ)
        env.pop("WEB_CONCURRENCY", None)
        env["RUST_BACKTRACE"] = "0"

        def pre():
            # Die with this driver, even if it is killed outright.
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if nofile:
                _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))

        self.args = args
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=logf, start_new_session=True, preexec_fn=pre, env=env)
        self.pid = self.proc.pid
        _GROUPS.add(self.pid)
        self.addr = None
        if expect_exit:
            return
        if bind.startswith("127.0.0.1:") and bind != "127.0.0.1:0":
            self.addr = ("127.0.0.1", int(bind.rsplit(":", 1)[1]))
        elif error_log is None:
            line = self.wait_log("Listening at: http://")
            m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            self.addr = ("127.0.0.1", int(m.group(1)))
        if ready:
            if error_log is None:
                self.wait_log("Ready:")
            else:
                self.wait_http()
        self.listen = set(socket_inodes(self.pid))

    # The log ---------------------------------------------------------------------------------------
    def log(self) -> str:
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self) -> list[str]:
        return self.log().splitlines()

    def wait_log(self, needle: str, timeout: float = WAIT, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while True:
            lines = [l for l in self.log_lines() if needle in l]
            if len(lines) >= count:
                return lines[count - 1]
            if self.proc.poll() is not None and time.monotonic() > deadline - timeout + 1:
                raise AssertionError(f"server exited ({self.proc.returncode}) before {needle!r}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {needle!r} within {timeout}s:\n{self.tail()}")
            time.sleep(0.02)

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log_lines()[-n:])

    def wait_http(self, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/ok", timeout=2)[0] == 200:
                return
            time.sleep(0.05)
        raise AssertionError("the server never answered /ok")

    # Processes -------------------------------------------------------------------------------------
    def workers(self, master: int | None = None) -> list[int]:
        return [p for p in children(master or self.pid) if not is_zombie(p)]

    def zombies(self, master: int | None = None) -> list[int]:
        return [p for p in children(master or self.pid) if is_zombie(p)]

    def wait_workers(self, n: int, timeout: float = WAIT, without=(), master: int | None = None) -> list[int] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.workers(master)
            if len(pids) == n and not set(pids) & set(without):
                return pids
            time.sleep(0.02)
        return None

    def exits(self) -> list[str]:
        """Log lines saying a worker died or exited."""
        return [l for l in self.log_lines() if re.search(r"\(pid: \d+\) (was sent|exited)", l)]

    def wait_exit(self, timeout: float = WAIT) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        _GROUPS.discard(self.pid)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # Clients ---------------------------------------------------------------------------------------
    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """GET with Connection: close; (status, body), status 0 when no complete response came."""
        try:
            with socket.create_connection(self.addr, timeout=timeout) as s:
                s.sendall(request(path, close=True))
                r = Reader(s)
                status, _h, body = r.response()
                return status, body
        except (OSError, Incomplete, Invalid):
            return 0, b""

    def serving_pid(self) -> int:
        status, body = self.get("/worker")
        m = re.search(rb"pid (\d+)", body)
        return int(m.group(1)) if status == 200 and m else 0


# ---------------------------------------------------------------------------------------------------
# HTTP on raw sockets.

class Incomplete(Exception):
    """The connection ended (or timed out) before a complete response."""


class Invalid(Exception):
    """Bytes that are not a valid HTTP/1.1 response."""


def request(path: str, method: str = "GET", body: bytes = b"", close: bool = False, headers=(),
            length: int | None = None) -> bytes:
    """A request head (and body); `length` declares a Content-Length for a body sent separately."""
    lines = [f"{method} {path} HTTP/1.1", "Host: chaos"]
    if close:
        lines.append("Connection: close")
    if length is not None or body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
STATUS_LINE = re.compile(rb"^HTTP/1\.[01] ([1-5][0-9][0-9]) [\x09\x20-\x7e\x80-\xff]*$")


def parse_head(head: bytes) -> tuple[int, dict[bytes, list[bytes]]]:
    """Strictly parses a response head (without its final CRLF CRLF)."""
    lines = head.split(b"\r\n")
    m = STATUS_LINE.match(lines[0])
    if not m:
        raise Invalid(f"bad status line {lines[0][:80]!r}")
    headers: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN.match(name):
            raise Invalid(f"bad header line {line[:80]!r}")
        value = value.strip(b" \t")
        if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value):
            raise Invalid(f"control byte in header {line[:80]!r}")
        headers.setdefault(name.lower(), []).append(value)
    return int(m.group(1)), headers


class Reader:
    """Reads responses from a socket one at a time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        try:
            data = self.sock.recv(1 << 18)
        except socket.timeout as e:
            raise Incomplete("timeout") from e
        except OSError as e:
            raise Incomplete(f"{e.__class__.__name__}") from e
        if not data:
            raise Incomplete("eof")
        self.buf += data

    def response(self, head_request: bool = False, sink=None) -> tuple[int, dict, bytes]:
        """The next final response (interim 1xx skipped): (status, headers, body); with `sink`, the
        body goes to sink(bytes) instead and the body returned is empty."""
        while True:
            while (i := self.buf.find(b"\r\n\r\n")) < 0:
                if len(self.buf) > 1 << 16:
                    raise Invalid("response head over 64 KiB")
                self._fill()
            status, headers = parse_head(bytes(self.buf[:i]))
            del self.buf[:i + 4]
            if status >= 200:
                break
        body = bytearray()
        out = sink or body.extend
        te = headers.get(b"transfer-encoding")
        cl = headers.get(b"content-length")
        if te and cl:
            raise Invalid("both Transfer-Encoding and Content-Length")
        if head_request or status in (204, 304):
            pass
        elif te:
            if te != [b"chunked"]:
                raise Invalid(f"transfer-encoding {te!r}")
            while True:
                while (j := self.buf.find(b"\r\n")) < 0:
                    if len(self.buf) > 4096:
                        raise Invalid("chunk size line too long")
                    self._fill()
                line = bytes(self.buf[:j])
                if not re.match(rb"^[0-9a-fA-F]+$", line):
                    raise Invalid(f"bad chunk size {line[:40]!r}")
                size = int(line, 16)
                del self.buf[:j + 2]
                if size == 0:
                    while (j := self.buf.find(b"\r\n")) != 0:
                        if j > 0:
                            del self.buf[:j + 2]  # a trailer field
                            continue
                        self._fill()
                    del self.buf[:2]
                    break
                while len(self.buf) < size + 2:
                    self._fill()
                if self.buf[size:size + 2] != b"\r\n":
                    raise Invalid("chunk data not followed by CRLF")
                out(bytes(self.buf[:size]))
                del self.buf[:size + 2]
        elif cl:
            if len(cl) != 1 or not cl[0].isdigit():
                raise Invalid(f"content-length {cl!r}")
            left = int(cl[0])
            while left:
                if not self.buf:
                    self._fill()
                take = min(left, len(self.buf))
                out(bytes(self.buf[:take]))
                del self.buf[:take]
                left -= take
        else:
            while True:
                if self.buf:
                    out(bytes(self.buf))
                    self.buf.clear()
                try:
                    self._fill()
                except Incomplete:
                    break
        return status, headers, bytes(body)


def says_close(headers: dict) -> bool:
    return any(b"close" in v.lower() for v in headers.get(b"connection", []))


# ---------------------------------------------------------------------------------------------------
# Load: client threads counting every request's outcome.

@dataclass
class Failure:
    """One request that got no good response. `kind` is "connect" (no connection: the request was
    never sent), "ended" (the connection was reset or reached its end before a complete response),
    "timeout", "invalid" (bytes that are not a response) or "status" (a complete response, not the one
    expected). `port` is the client's end of the connection, `opened` when it was opened, `sent` when
    the request was about to be sent (before any of it was), `ended` when its failure was seen
    (monotonic seconds); `pid` the worker that last served the connection (from `/worker`), or 0."""

    kind: str
    what: str
    pid: int = 0
    port: int = 0
    opened: float = 0.0
    sent: float = 0.0
    ended: float = 0.0


@dataclass
class Dropped:
    """A kept-alive connection found closed by the server (EOF or reset readable) while idle, before a
    request was sent on it: no request counts; `seen` is when."""

    port: int
    opened: float
    seen: float


class Load:
    """`close` client threads (a new connection per request) and `keep` threads (one keep-alive
    connection, replaced when it ends), each sending requests one after another until stopped. Nothing is
    resent: a request on a kept-alive connection that the server closed before answering counts as
    failed, although HTTP clients would resend it (RFC 9112 §9.3.1). With `check_idle`, a keep thread
    first looks whether its idle connection was closed (as HTTP clients do before reusing one): if it
    was, no request is sent on it, the connection is recorded in `dropped` and replaced."""

    def __init__(self, addr, close: int, keep: int, paths, expect: int = 200,
                 timeout: float = 30.0, check_idle: bool = False):
        self.addr = addr
        self.paths = paths
        self.expect = expect
        self.timeout = timeout
        self.check_idle = check_idle
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ok = self.failed_connect = self.failed_mid = self.wrong_status = 0
        self.failures: list[Failure] = []
        self.dropped: list[Dropped] = []
        self.threads = [threading.Thread(target=self._run, args=(i, False), daemon=True) for i in range(close)]
        self.threads += [threading.Thread(target=self._run, args=(i, True), daemon=True) for i in range(keep)]

    def start(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> "Load":
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout + 5)
        return self

    @property
    def failed(self) -> int:
        return self.failed_connect + self.failed_mid + self.wrong_status

    def figures(self) -> dict:
        return dict(ok=self.ok, failed=self.failed, failed_connect=self.failed_connect,
                    failed_mid=self.failed_mid, wrong_status=self.wrong_status)

    def _count(self, attr: str, failure: Failure | None = None) -> None:
        with self.lock:
            setattr(self, attr, getattr(self, attr) + 1)
            if failure:
                failure.ended = time.monotonic()
                self.failures.append(failure)

    def _run(self, index: int, keep: bool) -> None:
        rng = random.Random(index * 7919 + keep)
        sock = reader = None
        pid = port = 0
        opened = 0.0
        reused = False  # whether the connection already carried a request
        while not self.stopping.is_set():
            path = rng.choice(self.paths)
            if sock is None:
                opened = time.monotonic()
                try:
                    sock = socket.create_connection(self.addr, timeout=self.timeout)
                    sock.settimeout(self.timeout)
                    port = sock.getsockname()[1]
                except OSError as e:
                    self._count("failed_connect", Failure("connect", f"connect: {e}", sent=opened))
                    sock = None
                    time.sleep(0.01)
                    continue
                reader = Reader(sock)
                pid = 0
                reused = False
            # Taken before the idle check: a connection still open at the check was open when this
            # request was sent.
            sent = time.monotonic()
            if self.check_idle and reused and select.select([sock], [], [], 0)[0]:
                with self.lock:
                    self.dropped.append(Dropped(port, opened, sent))
                sock.close()
                sock = None
                continue
            try:
                sock.sendall(request(path, close=not keep))
                status, headers, body = reader.response()
            except (OSError, Incomplete, Invalid) as e:
                kind = ("invalid" if isinstance(e, Invalid) else
                        "timeout" if isinstance(e, (socket.timeout, TimeoutError)) or str(e) == "timeout"
                        else "ended")
                self._count("failed_mid", Failure(kind, f"{path}: {e}", pid, port, opened, sent))
                sock.close()
                sock = None
                continue
            m = re.search(rb"pid (\d+)", body) if path.startswith("/worker") else None
            if m:
                pid = int(m.group(1))
            reused = True
            if status == self.expect:
                self._count("ok")
            else:
                self._count("wrong_status", Failure("status", f"{path}: {status}", pid, port, opened, sent))
            if not keep or says_close(headers):
                sock.close()
                sock = None
        if sock:
            sock.close()


def load_mix(cls: str, addr, paths, n: int = 8, **kw) -> Load:
    """Half keep-alive, half new-connection clients; only new-connection ones under `sync`, whose
    workers serve one connection at a time (a kept connection would hold a worker for ever)."""
    keep = 0 if cls == "sync" else n // 2
    return Load(addr, close=n - keep, keep=keep, paths=paths, **kw)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def verdict(figures: dict, problems: list[str]) -> dict:
    """PASS, or FAIL when a promise was broken (the problems say which)."""
    figures = dict(figures)
    figures["_verdict"] = "FAIL" if problems else "PASS"
    figures["_problems"] = problems
    return figures
