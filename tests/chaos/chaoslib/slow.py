"""Scenarios 4, 5, 9 and 10: slow clients, large bodies, a crowd of stalled clients, endless heads."""

from __future__ import annotations

import hashlib
import math
import random
import re
import selectors
import socket
import threading
import time

from .core import (
    Context, Incomplete, Invalid, MIB, Reader, SLOTS, Server, fd_count, mib, pct, request,
    status_kib, verdict,
)


# ---------------------------------------------------------------------------------------------------
# Scenario 4: slowloris.

def s4_slowloris(ctx: Context, cls: str) -> dict:
    n = ctx.sz["slowloris"][cls]
    workers = 2
    slots = workers * SLOTS[cls]
    # The blocking classes give a slow client a whole slot until --header-timeout: keep it short there.
    ht = 10 if cls == "event" else 1
    with Server(ctx, cls, workers=workers, extra=["--header-timeout", str(ht)]) as srv:
        stop = threading.Event()
        loris = Slowloris(srv.addr, n, stop)
        th = threading.Thread(target=loris.run, daemon=True)
        th.start()
        loris.opened.wait(30)
        time.sleep(0.5)
        if cls == "event":
            bound = 5.0
            duration = ctx.sz["slow_secs"]
        else:
            # Each slot frees after --header-timeout; a new client waits behind the slow ones queued first.
            bound = math.ceil(n / slots) * ht * 2 + 10
            duration = 0.0
        lat: list[float] = []
        failed = 0
        t_end = time.monotonic() + duration
        rss_peak = {p: 0 for p in srv.workers()}
        while True:
            t0 = time.monotonic()
            try:
                with socket.create_connection(srv.addr, timeout=bound) as s:
                    s.settimeout(bound)
                    s.sendall(request("/ok", close=True))
                    status, _h, _b = Reader(s).response()
                ok = status == 200
            except (OSError, Incomplete, Invalid):
                ok = False
            if ok:
                lat.append(time.monotonic() - t0)
            else:
                failed += 1
            for p in rss_peak:
                rss_peak[p] = max(rss_peak[p], status_kib(p, "VmRSS"))
            if time.monotonic() >= t_end or failed or len(lat) >= 10_000:
                break
            time.sleep(0.05)
        fds = [fd_count(p) for p in srv.workers()]
        stop.set()
        th.join(10)
        f = dict(slow_conns=n, header_timeout=ht, legit_ok=len(lat), legit_failed=failed,
                 legit_p50_ms=f"{pct(lat, 50) * 1000:.1f}", legit_max_ms=f"{max(lat, default=0) * 1000:.1f}",
                 bound_s=bound, got_408=loris.got_408, reopened=loris.reopened, bytes_sent=loris.sent,
                 rss_mib=[mib(v) for v in rss_peak.values()], fds=fds, exits=len(srv.exits()))
        problems = []
        if not lat or failed:
            problems.append(f"legit clients: {len(lat)} served, {failed} failed within {bound} s each")
        if srv.exits():
            problems.append(f"workers died: {srv.exits()[:3]}")
        return verdict(f, problems)


def recv_ready(s) -> bytes | None:
    """What a non-blocking socket select() called ready holds: bytes, b"" at its end (or on an error),
    None when nothing was there after all."""
    try:
        return s.recv(4096)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


class Slowloris:
    """N connections each sending one byte of an endless request head per second; a connection the
    server closes (after its 408) is opened again, so that N stay open until stopped."""

    HEAD = b"GET /ok HTTP/1.1\r\nHost: chaos\r\nX-Slow: " + b"s" * 4000

    def __init__(self, addr, n: int, stop: threading.Event):
        self.addr, self.n, self.stop = addr, n, stop
        self.opened = threading.Event()
        self.got_408 = self.reopened = self.sent = 0

    def _open(self, sel, due):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(self.addr)
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_READ, [0])
        due.append((time.monotonic() + random.random(), s))

    def run(self):
        sel = selectors.DefaultSelector()
        due: list = []
        for _ in range(self.n):
            self._open(sel, due)
        self.opened.set()
        while not self.stop.is_set():
            now = time.monotonic()
            keep = []
            for t, s in due:
                if s.fileno() < 0:
                    continue
                if t <= now:
                    pos = sel.get_key(s).data
                    try:
                        s.send(self.HEAD[pos[0] % len(self.HEAD):][:1])
                        pos[0] += 1
                        self.sent += 1
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        pass
                    t = now + 1.0
                keep.append((t, s))
            due = keep
            for key, _ev in sel.select(timeout=0.05):
                s = key.fileobj
                data = recv_ready(s)
                if data is None:
                    continue
                if b" 408 " in data:
                    self.got_408 += 1
                if not data or b" 408 " in data:
                    sel.unregister(s)
                    s.close()
                    if not self.stop.is_set():
                        self.reopened += 1
                        self._open(sel, due)
        for key in list(sel.get_map().values()):
            key.fileobj.close()


# ---------------------------------------------------------------------------------------------------
# Scenario 5: large and slow bodies.

class RssWatch:
    """Samples the VmRSS of a server's workers until stopped; keeps each worker's peak."""

    def __init__(self, srv: Server):
        self.srv = srv
        self.peak: dict[int, int] = {}
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            for p in self.srv.workers():
                self.peak[p] = max(self.peak.get(p, 0), status_kib(p, "VmRSS"), status_kib(p, "VmHWM"))
            time.sleep(0.05)

    def done(self) -> dict[int, int]:
        self.stop.set()
        self.t.join(5)
        return self.peak


def block_delays(srv: Server, chunks: int, ms: int) -> list[float]:
    """Seconds from the app writing each block of a stamped /stream to this client receiving it."""
    delays: list[float] = []
    stamp = re.compile(rb"chunk \d+ (\d+)\n")
    pending = b""
    try:
        with socket.create_connection(srv.addr, timeout=30) as s:
            s.sendall(request(f"/stream?chunks={chunks}&ms={ms}&stamp=1", close=True))
            while data := s.recv(65536):
                now = time.time()
                pending += data
                for m in stamp.finditer(pending):
                    delays.append(max(0.0, now - int(m.group(1)) / 1e6))
                pending = pending[pending.rfind(b"\n") + 1:]
    except OSError:
        pass
    return delays


def s5_bodies(ctx: Context, cls: str) -> dict:
    size = ctx.sz["body"]
    f: dict = {}
    problems: list[str] = []
    with Server(ctx, cls, workers=2) as srv:
        watch = RssWatch(srv)
        # Upload through /echo, reading the echo as it comes.
        block = random.Random(ctx.seed).randbytes(1 << 20)
        t0 = time.monotonic()
        sent_hash, got_hash = hashlib.blake2b(), hashlib.blake2b()
        got = [0]
        with socket.create_connection(srv.addr, timeout=60) as s:
            s.sendall(request("/echo", method="POST", close=True, length=size))

            def recv_all():
                r = Reader(s)
                try:
                    status, _h, _b = r.response(sink=lambda b: (got_hash.update(b), got.__setitem__(0, got[0] + len(b))))
                    got.append(status)
                except (Incomplete, Invalid) as e:
                    got.append(str(e))

            rt = threading.Thread(target=recv_all, daemon=True)
            rt.start()
            left = size
            try:
                while left:
                    chunk = block[:min(left, len(block))]
                    s.sendall(chunk)
                    sent_hash.update(chunk)
                    left -= len(chunk)
            except OSError as e:
                problems.append(f"upload: {e}")
            rt.join(120)
        up_s = time.monotonic() - t0
        f["upload_mib_s"] = f"{size / MIB / up_s:.0f}"
        if got[0] != size or got[-1] != 200 or sent_hash.digest() != got_hash.digest():
            problems.append(f"/echo: {got[0]} of {size} bytes back, status {got[-1]}, "
                            f"same bytes: {sent_hash.digest() == got_hash.digest()}")
        # Download from /big.
        t0 = time.monotonic()
        n = [0, True]

        def count(b):
            n[0] += len(b)
            if b.count(b"x") != len(b):
                n[1] = False

        try:
            with socket.create_connection(srv.addr, timeout=60) as s:
                s.sendall(request(f"/big?bytes={size}", close=True))
                status, _h, _b = Reader(s).response(sink=count)
        except (OSError, Incomplete, Invalid) as e:
            status = str(e)
        down_s = time.monotonic() - t0
        f["download_mib_s"] = f"{size / MIB / down_s:.0f}"
        if status != 200 or n[0] != size or not n[1]:
            problems.append(f"/big: status {status}, {n[0]} of {size} bytes, all 'x': {n[1]}")
        # How long a streamed block takes to reach the client: /stream stamps each chunk with the
        # wall-clock time the app wrote it, and this client (same machine, same clock) notes when the
        # bytes arrived.
        delays = block_delays(srv, 200, 5)
        f["block_delay_p99_ms"] = f"{pct(delays, 99) * 1000:.2f}" if delays else "-"
        if len(delays) != 200:
            problems.append(f"/stream: {len(delays)} of 200 stamped blocks arrived")
        elif ctx.size == "long" and pct(delays, 99) > 0.005:
            problems.append(f"a streamed block took {pct(delays, 99) * 1000:.2f} ms (p99) to reach its client")
        peak = watch.done()
        f["body_mib"] = size // MIB
        f["rss_peak_mib"] = [mib(v) for v in peak.values()]
        if max(peak.values(), default=0) >= 64 * 1024:
            problems.append(f"a worker's RSS reached {mib(max(peak.values()))} MiB")
        if srv.exits():
            problems.append(f"workers died: {srv.exits()[:3]}")

    # A client that stops reading, and one that stops sending: one worker, --min-rate-period 2 (a body
    # not sent or a response not taken at --min-rate is dropped after 2 s of waiting on it). The next
    # client's bound is per class: a sync worker serves it once the stalled one is dropped (t s); the
    # threads and event classes serve it at once while the stalled client waits (the event loop parks
    # a response its client does not read, and gathers a body before it calls the app).
    t = 2
    bound = {
        ("sync", "reader"): t + 2, ("sync", "sender"): t + 2,
        ("threads", "reader"): 1.0, ("threads", "sender"): 1.0,
        ("event", "reader"): 1.0, ("event", "sender"): 1.0,
    }
    extra = ["--min-rate-period", str(t)]
    with Server(ctx, cls, workers=1, extra=extra) as srv:
        for what in ("reader", "sender"):
            stalled = socket.create_connection(srv.addr, timeout=30)
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            if what == "reader":
                stalled.sendall(request(f"/big?bytes={64 * MIB}", close=True))
            else:
                stalled.sendall(request("/echo", method="POST", close=True, length=MIB) + b"x" * 1000)
            time.sleep(0.3)
            t0 = time.monotonic()
            status, _b = srv.get("/ok", timeout=bound[(cls, what)])
            waited = time.monotonic() - t0
            # The stalled connection must have been given up once its period passed: reading it then
            # ends well short of the body.
            time.sleep(max(0.0, t0 + t + 1.5 - time.monotonic()))
            got = 0
            stalled.settimeout(t + 5)
            try:
                while chunk := stalled.recv(1 << 20):
                    got += len(chunk)
                    if got > 48 * MIB:
                        break
            except OSError:
                pass
            stalled.close()
            f[f"stalled_{what}_next_served_s"] = f"{waited:.1f}"
            if status != 200:
                problems.append(f"stalled {what}: the next client was not served within {bound[(cls, what)]} s")
            if what == "reader" and got > 48 * MIB:
                problems.append(f"stalled reader: the server was still sending after its --min-rate-period ({got} bytes)")
        if srv.exits():
            problems.append(f"workers died: {srv.exits()[:3]}")
    return verdict(f, problems)


# ---------------------------------------------------------------------------------------------------
# Scenarios 9 and 10: a crowd of slow clients, and heads that never end.

def latencies(srv: Server, n: int, timeout: float) -> tuple[list[float], int]:
    """`n` sequential GET /ok on new connections: their latencies, and how many failed."""
    lat: list[float] = []
    failed = 0
    for _ in range(n):
        t0 = time.monotonic()
        try:
            status, _b = srv.get("/ok", timeout=timeout)
        except (OSError, Incomplete, Invalid):
            status = 0
        if status == 200:
            lat.append(time.monotonic() - t0)
        else:
            failed += 1
    return lat, failed


class Crowd:
    """`n` clients that stop reading a 100 MB response, and `n` that send 10 bytes of a 1 MiB upload and
    then one byte a second. Each records how it ended: dropped (EOF or reset), or answered 408."""

    def __init__(self, addr, n: int):
        self.readers = []
        for _ in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(addr)
            s.sendall(request(f"/big?bytes={100 * 1000 * 1000}", close=True))
            self.readers.append(s)
        self.tricklers = []
        for _ in range(n):
            s = socket.create_connection(addr)
            s.sendall(request("/echo", method="POST", close=True, length=MIB) + b"0123456789")
            s.setblocking(False)
            self.tricklers.append(s)
        self.answered_408 = 0
        self.trickle_ended = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._trickle, daemon=True)
        self.t.start()

    def _trickle(self):
        sel = selectors.DefaultSelector()
        for s in self.tricklers:
            sel.register(s, selectors.EVENT_READ)
        next_byte = time.monotonic() + 1.0
        while not self.stop.is_set() and sel.get_map():
            for key, _ev in sel.select(timeout=0.1):
                s = key.fileobj
                data = recv_ready(s)
                if data is None:
                    continue
                if b" 408 " in data:
                    self.answered_408 += 1
                sel.unregister(s)
                self.trickle_ended += 1
            if time.monotonic() >= next_byte:
                next_byte += 1.0
                for key in list(sel.get_map().values()):
                    try:
                        key.fileobj.send(b"x")
                    except OSError:
                        pass

    def readers_dropped(self, timeout: float) -> tuple[int, int]:
        """Reads each stalled reader (once the server dropped them all) to its end: how many ended,
        and the most bytes one got."""
        ended, most = 0, 0
        deadline = time.monotonic() + timeout
        for s in self.readers:
            got = 0
            try:
                while True:
                    s.settimeout(max(0.1, deadline - time.monotonic()))
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        ended += 1
                        break
                    got += len(chunk)
            except ConnectionError:
                ended += 1
            except OSError:
                pass
            most = max(most, got)
        return ended, most

    def close(self):
        self.stop.set()
        self.t.join(5)
        for s in self.readers + self.tricklers:
            s.close()


def s9_crowd(ctx: Context, cls: str) -> dict:
    n = ctx.sz["crowd"][cls]
    period = 2
    f: dict = {}
    problems: list[str] = []
    with Server(ctx, cls, workers=2, extra=["--min-rate-period", str(period)]) as srv:
        unloaded, failed0 = latencies(srv, 200, 10.0)
        watch = RssWatch(srv)
        crowd = Crowd(srv.addr, n)
        # The blocking classes give each stalled client a slot until the rate drops it.
        bound = 5.0 if cls == "event" else 2 * n * (period + 1) / SLOTS[cls] + 10
        loaded, failed = latencies(srv, 200, bound)
        wait = period * 3 + 10 if cls == "event" else bound + period * 3
        # Every stalled client is dropped by the rule (a reader taking its response, a trickler
        # sending its body), each with its log line; only then are the readers read again.
        try:
            srv.wait_log("slower than --min-rate", timeout=wait, count=2 * n)
        except AssertionError:
            problems.append(f"fewer than {2 * n} clients dropped by the minimum rate within {wait} s")
        ended, most = crowd.readers_dropped(wait)
        # The trickling thread ends once every upload connection has ended.
        crowd.t.join(wait)
        crowd.close()
        peak = watch.done()
        p99 = (pct(unloaded, 99), pct(loaded, 99))
        f.update(stalled_readers=n, tricklers=n, unloaded_p99_ms=f"{p99[0] * 1000:.1f}",
                 loaded_p99_ms=f"{p99[1] * 1000:.1f}", p99_ratio=f"{p99[1] / max(p99[0], 1e-6):.1f}",
                 readers_dropped=ended, most_read_mib=f"{most / MIB:.1f}", tricklers_ended=crowd.trickle_ended,
                 tricklers_408=crowd.answered_408,
                 rss_peak_mib=[mib(v) for v in peak.values()])
        if failed0 or failed or len(loaded) != 200:
            problems.append(f"other clients: {failed0} failed unloaded, {failed} failed within {bound} s loaded")
        if ended != n or most >= 100 * 1000 * 1000:
            problems.append(f"stalled readers: {ended} of {n} dropped (one got {most} bytes)")
        # A body gathered on the loop is answered 408; the blocking classes' echo has begun its response.
        if crowd.trickle_ended != n or (cls == "event" and crowd.answered_408 != n):
            problems.append(f"tricklers: {crowd.trickle_ended} of {n} ended, {crowd.answered_408} with 408")
        if max(peak.values(), default=0) >= 64 * 1024:
            problems.append(f"a worker's RSS reached {mib(max(peak.values()))} MiB")
        if ctx.size == "long" and cls == "event" and p99[1] > 2 * p99[0]:
            problems.append(f"other clients' p99 went from {p99[0] * 1000:.1f} to {p99[1] * 1000:.1f} ms (over 2×)")
        if srv.exits():
            problems.append(f"workers died: {srv.exits()[:3]}")
    return verdict(f, problems)


def maximal_head(limit: int = 64 * 1024) -> bytes:
    """A request head just short of --limit-request-head, every field just short of its limit, without
    the empty line that would end it."""
    head = b"GET /ok HTTP/1.1\r\nHost: chaos\r\n"
    i = 0
    while True:
        field = b"X-Pad-%d: " % i + b"p" * 8000 + b"\r\n"
        if len(head) + len(field) > limit - 64:
            return head
        head += field
        i += 1


def s10_heads(ctx: Context, cls: str) -> dict:
    n = ctx.sz["heads"][cls]
    ht = 3
    f: dict = {}
    problems: list[str] = []
    head = maximal_head()
    with Server(ctx, cls, workers=2, extra=["--header-timeout", str(ht)]) as srv:
        watch = RssWatch(srv)
        conns = []
        for _ in range(n):
            s = socket.create_connection(srv.addr)
            s.sendall(head)
            conns.append(s)
        bound = 5.0 if cls == "event" else math.ceil(n / (2 * SLOTS[cls])) * ht * 2 + 10
        loaded, failed = latencies(srv, 20, bound)
        answered = 0
        deadline = time.monotonic() + (ht + 5 if cls == "event" else bound + ht * 2)
        for s in conns:
            try:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                if b" 408 " in s.recv(4096):
                    answered += 1
            except OSError:
                pass
            s.close()
        peak = watch.done()
        f.update(connections=n, head_kib=len(head) // 1024, header_timeout=ht, served=len(loaded),
                 served_failed=failed, p99_ms=f"{pct(loaded, 99) * 1000:.1f}", answered_408=answered,
                 rss_peak_mib=[mib(v) for v in peak.values()])
        if failed or not loaded:
            problems.append(f"other clients: {len(loaded)} served, {failed} failed within {bound} s")
        if answered != n:
            problems.append(f"unfinished heads: {answered} of {n} answered 408")
        if max(peak.values(), default=0) >= 64 * 1024:
            problems.append(f"a worker's RSS reached {mib(max(peak.values()))} MiB")
        if srv.exits():
            problems.append(f"workers died: {srv.exits()[:3]}")
    return verdict(f, problems)
