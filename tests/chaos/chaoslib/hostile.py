"""Scenario 8: hostile bytes."""

from __future__ import annotations

import random
import re
import socket
import threading
import time

from .core import Context, Invalid, Server, parse_head, says_close, verdict


# ---------------------------------------------------------------------------------------------------
# Scenario 8: hostile bytes.

CORPUS = [
    (b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"HEAD /ok HTTP/1.1\r\nHost: a\r\n\r\n", ["HEAD"]),
    (b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ["GET"]),
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world", ["POST"]),
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: v\r\n\r\n", ["POST"]),
    (b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /worker HTTP/1.1\r\nHost: a\r\n\r\nHEAD /ok HTTP/1.1\r\nHost: a\r\n\r\n", ["GET", "GET", "HEAD"]),
    (b"POST /noread HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcdeGET /ok HTTP/1.1\r\nHost: a\r\n\r\n", ["POST", "GET"]),
    (b"GET http://a/ok?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", ["OPTIONS"]),
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", ["POST"]),
    (b"GET /big?bytes=3000 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nUser-Agent: chaos\r\n\r\n", ["GET"]),
    (b"GET /stream?chunks=4 HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /pull?chunks=3 HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /status?code=204 HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /status?code=304 HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /environ?key=HTTP_X_A HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX_A: 2\r\n\r\n", ["GET"]),
    (b"POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody", ["POST"]),
    (b"GET /hop HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\n\r\n", ["GET"]),
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ["POST"]),
    (b"GET /short HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /long HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /badheader HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /replace HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /error HTTP/1.1\r\nHost: a\r\n\r\n", ["GET"]),
    (b"GET /close HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\n\r\n", ["GET", "GET"]),
]
INSERTS = [b"\r\n", b"\n", b"\r", b":", b" ", b"\x00", b"\t", b"\x7f", b"\xff", b"chunked", b"0\r\n\r\n",
           b"Transfer-Encoding: chunked\r\n", b"Content-Length: 5\r\n", b"Content-Length: -1\r\n",
           b"Host: b\r\n", b"Expect: 100-continue\r\n", b"Connection: close\r\n", b" HTTP/1.1",
           b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n", b"%00", b"../", b"\xc0\xaf", b"ffffffffffffffff\r\n"]


def hostile_case(rng: random.Random) -> tuple[bytes, list[str]]:
    """One random or mutated request (the methods of the requests it was made from, for HEAD)."""
    kind = rng.random()
    if kind < 0.1:
        return rng.randbytes(rng.randint(0, 600)), []
    if kind < 0.15:
        alphabet = b"GETPOSHAD /:\r\n HTTP/1.1 Host: Content-Length: chunked 0123456789abcdef;="
        return bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 400))), []
    data, methods = rng.choice(CORPUS)
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.25 and data:  # flip bytes
            i = rng.randrange(len(data))
            data[i] = rng.randrange(256) if rng.random() < 0.5 else data[i] ^ (1 << rng.randrange(8))
        elif op < 0.45:  # insert
            i = rng.randrange(len(data) + 1)
            data[i:i] = rng.choice(INSERTS)
        elif op < 0.55 and data:  # truncate
            del data[rng.randrange(len(data)):]
        elif op < 0.7:  # duplicate a header line
            lines = bytes(data).split(b"\r\n")
            heads = [i for i, l in enumerate(lines[1:], 1) if b":" in l]
            if heads:
                i = rng.choice(heads)
                lines.insert(i, lines[i] if rng.random() < 0.7 else lines[i].upper())
                data = bytearray(b"\r\n".join(lines))
        elif op < 0.8 and data:  # delete a run
            i = rng.randrange(len(data))
            del data[i:i + rng.randint(1, 8)]
        elif op < 0.9:  # an overlong or repeated field
            i = data.find(b"\r\n") + 2
            if i > 1:
                data[i:i] = b"X-Long: " + b"y" * rng.choice([100, 5000, 9000]) + b"\r\n"
        else:  # many fields
            i = data.find(b"\r\n") + 2
            if i > 1:
                data[i:i] = b"".join(b"X-%d: v\r\n" % k for k in range(rng.choice([20, 99, 150])))
    return bytes(data), methods


def validate(reply: bytes, methods: list[str]) -> tuple[str, list[int]]:
    """Classifies the server's whole reply: `close` (nothing), `ok` (complete responses), `aborted`
    (complete heads, the last body cut: the app failed after its body began) or `invalid: why`."""
    if not reply:
        return "close", []

    def walk(rest: bytes, i: int, statuses: list[int]) -> tuple[str, list[int]]:
        if not rest:
            return "ok", statuses
        end = rest.find(b"\r\n\r\n")
        if end < 0:
            return "invalid: a cut response head", statuses
        try:
            status, headers = parse_head(rest[:end])
        except Invalid as e:
            return f"invalid: {e}", statuses
        after = rest[end + 4:]
        if status < 200:
            if status != 100:
                return f"invalid: interim {status}", statuses
            return walk(after, i, statuses + [status])
        te, cl = headers.get(b"transfer-encoding"), headers.get(b"content-length")
        if te and cl:
            return "invalid: Transfer-Encoding with Content-Length", statuses
        if cl and (len(cl) != 1 or not cl[0].isdigit()):
            return f"invalid: Content-Length {cl!r}", statuses
        statuses = statuses + [status]
        close = says_close(headers)
        # A HEAD answer has no body; the server may have read a mangled HEAD as something else, so both
        # readings are tried where the request might have been a HEAD.
        maybe_head = i >= len(methods) or methods[i] == "HEAD"
        readings = [False, True] if maybe_head else [False]
        best = None
        for head in readings:
            if head or status in (204, 304):
                body_end = 0
            elif te:
                if te != [b"chunked"]:
                    return f"invalid: Transfer-Encoding {te!r}", statuses
                body_end = chunked_end(after)
                if body_end is None:
                    best = best or ("aborted", statuses)
                    continue
                if body_end < 0:
                    return "invalid: bad chunked framing", statuses
            elif cl:
                body_end = int(cl[0])
                if len(after) < body_end:
                    best = best or ("aborted", statuses)
                    continue
            else:
                if not close and b"HTTP/1.0" not in rest[:9]:
                    return "invalid: no framing on a persistent response", statuses
                body_end = len(after)
            tail = after[body_end:]
            if close and tail:
                result = ("invalid: bytes after a Connection: close response", statuses)
            else:
                result = walk(tail, i + 1, statuses)
            if not result[0].startswith("invalid"):
                return result
            best = best or result
        return best

    return walk(reply, 0, [])


def chunked_end(data: bytes) -> int | None:
    """The length of a complete chunked body at the start of `data`; None if cut short, -1 if bad."""
    pos = 0
    while True:
        j = data.find(b"\r\n", pos)
        if j < 0:
            return None
        line = data[pos:j]
        if not re.match(rb"^[0-9a-fA-F]+$", line):
            return -1
        size = int(line, 16)
        pos = j + 2
        if size == 0:
            while True:
                j = data.find(b"\r\n", pos)
                if j < 0:
                    return None
                if j == pos:
                    return pos + 2
                pos = j + 2
        if len(data) < pos + size + 2:
            return None
        if data[pos + size:pos + size + 2] != b"\r\n":
            return -1
        pos += size + 2


def s8_hostile(ctx: Context, cls: str) -> dict:
    n = ctx.sz["hostile"]
    rng = random.Random(ctx.seed)
    cases = [hostile_case(rng) for _ in range(n)]
    results: list = [None] * n
    with Server(ctx, cls, workers=2, extra=["--header-timeout", "3", "--timeout", "3"]) as srv:
        before = srv.workers()
        next_case = [0]
        lock = threading.Lock()

        def run():
            while True:
                with lock:
                    i = next_case[0]
                    next_case[0] += 1
                if i >= n:
                    return
                data, methods = cases[i]
                reply = b""
                hung = False
                try:
                    with socket.create_connection(srv.addr, timeout=10) as s:
                        try:
                            s.sendall(data)
                            s.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        while True:
                            try:
                                chunk = s.recv(1 << 16)
                            except socket.timeout:
                                hung = True
                                break
                            except OSError:
                                break
                            if not chunk:
                                break
                            reply += chunk
                except OSError as e:
                    results[i] = (f"invalid: connect failed {e}", [], reply)
                    continue
                verdict_ = ("invalid: no answer and no close within 10 s", []) if hung else validate(reply, methods)
                results[i] = (verdict_[0], verdict_[1], reply)

        threads = [threading.Thread(target=run, daemon=True) for _ in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        took = time.monotonic() - t0
        after = srv.get("/ok")[0]
        same = srv.workers()
        panics = [l for l in srv.log_lines() if "panicked" in l]
        kinds: dict[str, int] = {}
        classes: dict[str, int] = {}
        invalid = []
        for i, r in enumerate(results):
            if r is None:
                invalid.append((i, "not run", b""))
                continue
            kind = r[0].split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
            for st in r[1]:
                classes[f"{st // 100}xx"] = classes.get(f"{st // 100}xx", 0) + 1
            if kind == "invalid":
                invalid.append((i, r[0], r[2]))
        if invalid:
            dump = ctx.tmp / f"hostile-{cls}-invalid.txt"
            with open(dump, "w") as out:
                for i, why, reply in invalid:
                    out.write(f"case {i} (seed {ctx.seed}): {why}\nrequest: {cases[i][0]!r}\nreply: {reply[:2000]!r}\n\n")
        f = dict(cases=n, seed=ctx.seed, cases_s=f"{n / took:.0f}", **kinds,
                 statuses=" ".join(f"{k}:{v}" for k, v in sorted(classes.items())),
                 served_after=after, workers_same=same == before)
        problems = []
        if invalid:
            problems.append(f"{len(invalid)} invalid replies, e.g. case {invalid[0][0]}: {invalid[0][1]} "
                            f"request {cases[invalid[0][0]][0][:120]!r} reply {invalid[0][2][:200]!r}")
        if after != 200:
            problems.append("a well-formed request afterwards was not served")
        if same != before or srv.exits():
            problems.append(f"workers crashed: {before} → {same}; {srv.exits()[:3]}")
        if panics:
            problems.append(f"panics in the log: {panics[:2]}")
        return verdict(f, problems)
