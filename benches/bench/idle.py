"""The 10,000 idle keep-alive connections: opening them, checking they still answer, counting them per
worker."""

from __future__ import annotations

import os
import socket
import struct
import time

from .common import HELLO
from .servers import Server


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
