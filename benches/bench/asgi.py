"""The ASGI and WebSocket rows of `make bench`: rustgun + `libasgi.so` (`event`) against uvicorn (uvloop
and httptools), granian's ASGI interface and gunicorn's ASGI worker (`-k asgi`), 2 workers each, on
a raw ASGI hello (wrk, 256 keep-alive connections), a FastAPI JSON route (64) and a WebSocket echo
(`ws_load`, one message in flight per connection, 64 and 256 connections), with rustgun's native
`ws_echo` as the reference of the WebSocket rows. Every server of a row serves the same Python
module from `target/bench`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .common import BENCH_DIR, CLK_TCK, RELEASE, REPO, VENV, log
from .servers import Server
from .wrk import Run, Summary, check, fmt_ms, fmt_rps, fmt_us, measure, ratio, run_wrk, summarise

ASGI_APP = '''\
"""The hello app as raw ASGI, and a WebSocket echo on any path (written by benches/compare.py)."""

BODY = b"Hello, World!"
HEAD = {"type": "http.response.start", "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]}


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(HEAD)
        await send({"type": "http.response.body", "body": BODY})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
'''

FASTAPI_APP = '''\
"""A FastAPI JSON route with a typed path parameter (written by benches/compare.py)."""

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def hello():
    return "Hello, World!"


@app.get("/users/{uid}")
async def user(uid: int):
    return {"id": uid, "name": "user %d" % uid, "active": True}
'''

MESSAGE_BYTES = 64


@dataclass
class Row:
    """One measured scenario: what it loads, and with what."""
    key: str
    label: str
    unit: str  # req/s or msg/s
    module: str  # the Python app every server of the row serves
    conns: int
    path: str
    websocket: bool


ROWS = [
    Row("hello-256", "raw ASGI hello, 256 keep-alive connections", "req/s", "hello_asgi:app", 256, "/", False),
    Row("fastapi-64", "FastAPI `GET /users/{id}` (JSON), 64 keep-alive connections", "req/s", "fastapi_bench:app", 64,
        "/users/7", False),
    Row("ws-64", f"WebSocket echo, {MESSAGE_BYTES}-byte text messages, 64 connections", "msg/s", "hello_asgi:app", 64,
        "/echo", True),
    Row("ws-256", f"WebSocket echo, {MESSAGE_BYTES}-byte text messages, 256 connections", "msg/s", "hello_asgi:app",
        256, "/echo", True),
]


def write_apps() -> None:
    for name, text in (("hello_asgi.py", ASGI_APP), ("fastapi_bench.py", FASTAPI_APP)):
        path = REPO / BENCH_DIR / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def servers_for(module: str) -> list[Server]:
    """rustgun + libasgi.so, uvicorn, granian and gunicorn's ASGI worker, each serving `module`."""
    venv_bin = REPO / VENV / "bin"
    name = module.split(":")[0].replace("_", "-")
    quiet = ["--log-level", "warning"]
    return [
        Server(f"asgi-{name}", "rustgun+asgi event", 2,
               lambda port: ["env", f"VIRTUAL_ENV={REPO / VENV}", str(RELEASE / "rustgun"),
                             str(RELEASE / "libasgi.so") + ":app", "-k", "event", "-w", "2", "-b",
                             f"127.0.0.1:{port}", *quiet, "--", "--pythonpath", str(BENCH_DIR), module],
               rustgun_class="event", python=True),
        Server(f"uvicorn-{name}", "uvicorn", 2,
               lambda port: [str(venv_bin / "uvicorn"), "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
                             "--app-dir", str(BENCH_DIR), "--no-access-log", *quiet, module],
               python=True),
        Server(f"granian-{name}", "granian asgi", 2,
               lambda port: [str(venv_bin / "granian"), "--interface", "asgi", "--workers", "2", "--http", "1",
                             "--host", "127.0.0.1", "--port", str(port), "--working-dir", str(BENCH_DIR), *quiet,
                             module],
               python=True),
        Server(f"gunicorn-asgi-{name}", "gunicorn -k asgi", 2,
               lambda port: [str(venv_bin / "gunicorn"), "-k", "asgi", "-w", "2", "-b", f"127.0.0.1:{port}",
                             "--chdir", str(BENCH_DIR), *quiet, module],
               python=True),
    ]


def native_ws_echo() -> Server:
    return Server("ws-echo-native", "rustgun event, native ws_echo", 2,
                  lambda port: [str(RELEASE / "rustgun"), str(RELEASE / "libws_echo.so") + ":app", "-k", "event",
                                "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
                  rustgun_class="event", ready_status=426)


def run_ws(server: Server, conns: int, duration: float, path: str) -> Run:
    """`ws_load` against `server`: messages echoed a second, as a Run (requests = messages)."""
    argv = [str(REPO / RELEASE / "examples" / "ws_load"), f"127.0.0.1:{server.port}", path, str(conns),
            f"{duration:g}", str(MESSAGE_BYTES)]
    load = measure(server, argv, duration + 60)
    got = json.loads(load.out)
    rate = got["messages"] / got["seconds"] if got["seconds"] else 0.0
    return Run(rate, got["p99_ms"], got["p50_ms"], got["messages"], 0, {"ws": got["errors"]} if got["errors"] else {},
               load.cpu_ticks, load.background_pct, load.worker_ticks)


def run_rows(args, free_ports) -> dict:
    """Every row, its servers started together and measured in interleaved rounds, then stopped.
    Returns {row key: [(server label, Summary)]}."""
    write_apps()
    results: dict[str, list[tuple[str, Summary]]] = {}
    for module in dict.fromkeys(r.module for r in ROWS):
        rows = [r for r in ROWS if r.module == module]
        servers = servers_for(module)
        if any(r.websocket for r in rows):
            servers.append(native_ws_echo())
        try:
            for s, port in zip(servers, free_ports(len(servers))):
                log(f"starting {s.label} ({module}) on 127.0.0.1:{port}")
                s.start(port)
            for s in servers:
                s.wait_ready()
            runs: dict[tuple[str, str], list[Run]] = {}
            for row in rows:
                serving = [s for s in servers if row.websocket or s.key != "ws-echo-native"]
                load = run_ws if row.websocket else run_wrk_path
                for s in serving if args.warmup > 0 else []:
                    load(s, row.conns, args.warmup, row.path)
                for rnd in range(args.rounds):
                    for s in serving:
                        r = load(s, row.conns, args.duration, row.path)
                        runs.setdefault((row.key, s.label), []).append(r)
                        cpu = r.cpu_ticks / CLK_TCK * 1e6 / max(1, r.requests)
                        log(f"{row.key:<11} round {rnd + 1}/{args.rounds} {s.label:<32} {r.rps:>10,.0f} {row.unit}  "
                            f"p99 {fmt_ms(r.p99_ms):>9}  cpu {cpu:6.1f} µs  bg {r.background_pct:3.0f}%"
                            f"{f', {r.errors} errors' if r.errors else ''}")
                results[row.key] = [(s.label, summarise(runs[(row.key, s.label)])) for s in serving]
        finally:
            for s in servers:
                s.stop()
    return results


def run_wrk_path(server: Server, conns: int, duration: float, path: str) -> Run:
    return run_wrk(server, conns, duration, False, path)


def lines(results: dict, table) -> tuple[list[str], list[list[str]]]:
    """The markdown of the rows (a table each), and the target rows: rustgun + libasgi.so ahead of
    uvicorn and granian in each."""
    out: list[str] = []
    targets: list[list[str]] = []
    for row in ROWS:
        if row.key not in results:
            continue
        got = dict(results[row.key])
        ours = got.get("rustgun+asgi event")
        cells = []
        for label, s in results[row.key]:
            vs = [f"{ratio(s.rps, got[ref].rps):.2f}×" if ref in got else "–" for ref in ("uvicorn", "granian asgi")]
            errors = f"{s.errors} ({s.error_detail})" if s.errors else "0"
            cells.append([label, fmt_rps(s.rps), fmt_ms(s.p99_ms), fmt_us(s.cpu_us), errors, *vs])
        out += [f"### {row.label}", "",
                *table(["server", f"{row.unit} (median)", "p99", "CPU µs/" + row.unit.split("/")[0], "errors",
                        "× uvicorn", "× granian"], cells, "lrrrrrr"), ""]
        if ours:
            vals = [ratio(ours.rps, got[ref].rps) for ref in ("uvicorn", "granian asgi") if ref in got]
            targets.append([f"rustgun + `libasgi.so`, {row.label}: ahead of uvicorn and granian",
                            " / ".join(f"{v:.2f}×" for v in vals), check(bool(vals) and min(vals) > 1.0)])
    return out, targets
