"""The HTTP/2 rows of `make bench`: rustgun's `event` class over h2c (prior knowledge) and over TLS
(ALPN h2), serving the native hello app (`libhello.so`), the WSGI hello (`libwsgi.so`) and the raw ASGI
hello (`libasgi.so`), against nginx's `http2` (the native app's twin, `return 200`), granian's
`--http 2` (WSGI and ASGI interfaces) and gunicorn 27's HTTP/2 (`gthread` for WSGI, `-k asgi` for
ASGI), 2 workers each, under h2load with 1, 32 and 256 concurrent streams.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import asgi
from .common import (BENCH_DIR, CLK_TCK, HELLO, NGINX_CONF, RELEASE, REPO, THREADS, VENV, cpu_ticks_by_pid,
                     log, machine_busy, proc_stat, run_out)
from .servers import Server
from .servers import versions
from .wrk import check, fmt_rps, fmt_us, ratio, worker_split

# docs/benchmarks.md keeps this section between these lines, so that a run of the HTTP/2 rows alone
# (`compare.py --only-h2`) replaces it and leaves the rest of the page alone.
BEGIN = "<!-- HTTP/2 rows: written by benches/bench/h2.py (compare.py --only-h2 rewrites only this block) -->"
END = "<!-- end of the HTTP/2 rows -->"

MODES = ("h2c", "tls")
MODE_LABEL = {"h2c": "h2c (cleartext, prior knowledge)", "tls": "TLS (ALPN h2)"}


@dataclass
class H2Scenario:
    """`h2load -t threads -c conns -m per_conn`: conns x per_conn streams in flight at all times."""
    conns: int
    per_conn: int
    threads: int

    @property
    def streams(self) -> int:
        return self.conns * self.per_conn

    @property
    def key(self) -> str:
        return f"s{self.streams}"

    @property
    def label(self) -> str:
        s = "stream" if self.streams == 1 else "streams"
        c = "connection" if self.conns == 1 else "connections"
        return f"{self.streams} {s} ({self.conns} {c} × {self.per_conn})"


SCENARIOS = [H2Scenario(1, 1, 1), H2Scenario(4, 8, 2), H2Scenario(4, 64, 2)]

# nginx's configuration of the wrk rows, its listener speaking HTTP/2 (and TLS).
NGINX_H2_CONF = NGINX_CONF.replace(
    "# Written by benches/compare.py: nginx answering the hello response itself.",
    "# Written by benches/compare.py (bench/h2.py): nginx answering the hello response itself over HTTP/2.",
).replace("        listen 127.0.0.1:{port};\n", "        listen 127.0.0.1:{port} {listen};\n{tls}")
assert "{listen}" in NGINX_H2_CONF and "HTTP/2" in NGINX_H2_CONF


@dataclass
class H2Server(Server):
    """A server of the HTTP/2 rows: one app group (native, wsgi, asgi), one mode (h2c or tls)."""
    mode: str = "h2c"
    group: str = "native"
    na: str = ""  # why it is not measured, when it could not be started or did not speak h2

    @property
    def url(self) -> str:
        return f"{'https' if self.mode == 'tls' else 'http'}://127.0.0.1:{self.port}/"

    def wait_ready(self, timeout: float = 30) -> None:
        """curl over HTTP/2 (prior knowledge, or TLS with ALPN) until it answers 200 with the hello body
        on HTTP/2, then until all workers are up. An HTTP/1.1 answer does not count: many of these
        listeners refuse HTTP/1 (h2c prior knowledge), and a TLS one that picks http/1.1 is no h2 row."""
        deadline = time.monotonic() + timeout
        how = ["-k", "--http2"] if self.mode == "tls" else ["--http2-prior-knowledge"]
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                p = subprocess.run(["curl", "-s", "--max-time", "2", *how, "-w", "\n%{http_version} %{http_code}",
                                    self.url], capture_output=True, timeout=5)
                body, _, tail = p.stdout.rpartition(b"\n")
                if tail == b"2 200" and body == HELLO:
                    break
                last = f"curl: {tail.decode(errors='replace')} {body[:60]!r}"
                if tail.startswith(b"1.1 ") and body:
                    raise RuntimeError(f"answers HTTP/1.1, not HTTP/2 ({last})")
            except subprocess.TimeoutExpired:
                last = "curl timed out"
            time.sleep(0.1)
        else:
            raise RuntimeError(f"not ready after {timeout}s ({last}): {self.log_tail()}")
        while time.monotonic() < deadline and len(self.worker_pids()) < self.workers:
            time.sleep(0.1)
        time.sleep(0.5)


@dataclass
class H2Run:
    rps: float
    mean_ms: float | None
    requests: int  # succeeded in the measured window
    errors: dict[str, int]
    cpu_ticks: int
    background_pct: float
    protocol: str
    tls: str
    worker_ticks: list[int] = field(default_factory=list)  # each worker's share of cpu_ticks

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())


@dataclass
class H2Summary:
    rps: float
    mean_ms: float | None
    cpu_us: float | None
    errors: int
    error_detail: str
    protocol: str
    tls: str
    runs: list[H2Run] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------
# The servers


def write_cert() -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (RSA 2048) in target/bench/h2/, made once."""
    d = REPO / BENCH_DIR / "h2"
    cert, key = d / "cert.pem", d / "key.pem"
    if not (cert.exists() and key.exists()):
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                        str(cert), "-days", "3650", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
    return cert, key


def ensure() -> None:
    """h2load (Debian's nghttp2-client), curl and openssl; the `h2` package gunicorn's HTTP/2 needs, in
    target/bench-venv."""
    missing = [t for t in ("h2load", "curl", "openssl") if shutil.which(t) is None]
    if missing:
        pkgs = {"h2load": "nghttp2-client", "curl": "curl", "openssl": "openssl"}
        want = [pkgs[t] for t in missing]
        if os.geteuid() != 0:
            sys.exit(f"compare.py: {', '.join(missing)} missing and not root: install them first, e.g.\n"
                     f"    sudo apt-get install -y {' '.join(want)}")
        log(f"installing {' '.join(want)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.run(["apt-get", "install", "-y", *want], env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(["apt-get", "install", "-y", *want], env=env, check=True)
    py = REPO / VENV / "bin" / "python"
    if subprocess.run([str(py), "-c", "import h2"], capture_output=True).returncode != 0:
        log(f"pip install h2 into {VENV} (gunicorn's HTTP/2)")
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "h2"], check=True)
    if not (REPO / RELEASE / "libasgi.so").exists():
        sys.exit("compare.py: target/release/libasgi.so missing: run `make build` first")


def nginx_setup(prefix: Path, mode: str, cert: Path, key: Path):
    def setup(port: int) -> None:
        built = run_out(["nginx", "-V"])
        temp = ""
        for mod in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]:
            if mod != "client_body" and f"--without-http_{mod}_module" in built:
                continue
            (prefix / f"{mod}_temp").mkdir(exist_ok=True)
            temp += f"    {mod}_temp_path {prefix}/{mod}_temp;\n"
        (prefix / "nginx.conf").write_text(nginx_conf(prefix, port, mode, temp, cert, key))
    return setup


def nginx_conf(prefix, port, mode: str, temp: str, cert, key) -> str:
    tls = f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n" if mode == "tls" else ""
    return NGINX_H2_CONF.format(prefix=prefix, port=port, temp_paths=temp,
                                listen="ssl http2" if mode == "tls" else "http2", tls=tls)


def servers_for(group: str, mode: str, cert: Path, key: Path, prefixes: list[Path]) -> list[H2Server]:
    """The servers of one app group in one mode: rustgun first, then the others."""
    rustgun = str(RELEASE / "rustgun")
    venv_bin = REPO / VENV / "bin"
    quiet = ["--log-level", "warning"]
    tls = mode == "tls"
    # rustgun: h2 (preferred) and h1 by ALPN under TLS; h2c by prior knowledge in cleartext.
    rg_h2 = (["--http-protocols", "h2,h1", "--certfile", str(cert), "--keyfile", str(key)] if tls else
             ["--http-protocols", "h1,h2", "--http2-cleartext", "prior-knowledge"])
    gu_h2 = (["--http-protocols", "h2,h1", "--certfile", str(cert), "--keyfile", str(key)] if tls else
             ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"])
    gr_h2 = ["--http", "2", *(["--ssl-certificate", str(cert), "--ssl-keyfile", str(key)] if tls else [])]

    def rg(lib: str, module: str | None, env: list[str]):
        bridge = ["--", "--pythonpath", str(BENCH_DIR), module] if module else []
        return lambda port: [*env, rustgun, str(RELEASE / lib) + ":app", "-k", "event", "-w", "2", "-b",
                             f"127.0.0.1:{port}", *rg_h2, "--no-control-socket", *quiet, *bridge]

    def granian(interface: str, module: str):
        return lambda port: [str(venv_bin / "granian"), "--interface", interface, "--workers", "2", *gr_h2,
                             "--no-ws", "--host", "127.0.0.1", "--port", str(port), "--working-dir", str(BENCH_DIR),
                             *quiet, module]

    def gunicorn(worker: list[str], module: str):
        return lambda port: [str(venv_bin / "gunicorn"), "-w", "2", *worker, "-b", f"127.0.0.1:{port}", *gu_h2,
                             "--chdir", str(BENCH_DIR), *quiet, module]

    k = lambda name: f"h2-{name}-{mode}"  # noqa: E731
    if group == "native":
        prefix = Path(tempfile.mkdtemp(prefix="rustgun-bench-nginx-"))
        prefixes.append(prefix)
        return [
            H2Server(k("rustgun"), "rustgun event", 2, rg("libhello.so", None, []), rustgun_class="event",
                     mode=mode, group=group),
            H2Server(k("nginx"), "nginx", 2,
                     lambda port: ["nginx", "-p", str(prefix), "-e", "stderr", "-c", str(prefix / "nginx.conf"),
                                   "-g", "daemon off;"],
                     setup_fn=nginx_setup(prefix, mode, cert, key), mode=mode, group=group),
        ]
    if group == "wsgi":
        return [
            H2Server(k("wsgi"), "rustgun+wsgi event", 2, rg("libwsgi.so", "hello_wsgi:app", []),
                     rustgun_class="event", python=True, mode=mode, group=group),
            H2Server(k("granian-wsgi"), "granian wsgi", 2, granian("wsgi", "hello_wsgi:app"), python=True, mode=mode,
                     group=group),
            H2Server(k("gunicorn-gthread"), "gunicorn gthread", 2,
                     gunicorn(["-k", "gthread", "--threads", str(THREADS)], "hello_wsgi:app"), python=True, mode=mode,
                     group=group),
        ]
    assert group == "asgi"
    return [
        H2Server(k("asgi"), "rustgun+asgi event", 2,
                 rg("libasgi.so", "hello_asgi:app", ["env", f"VIRTUAL_ENV={REPO / VENV}"]), rustgun_class="event",
                 python=True, mode=mode, group=group),
        H2Server(k("granian-asgi"), "granian asgi", 2, granian("asgi", "hello_asgi:app"), python=True, mode=mode,
                 group=group),
        H2Server(k("gunicorn-asgi"), "gunicorn -k asgi", 2, gunicorn(["-k", "asgi"], "hello_asgi:app"), python=True,
                 mode=mode, group=group),
    ]


GROUPS = [("native", "native hello (`libhello.so`; nginx's `return 200`)"),
          ("wsgi", "WSGI hello (`target/bench/hello_wsgi.py`)"),
          ("asgi", "raw ASGI hello (`target/bench/hello_asgi.py`)")]
ORDER = ["rustgun event", "nginx", "rustgun+wsgi event", "granian wsgi", "gunicorn gthread", "rustgun+asgi event",
         "granian asgi", "gunicorn -k asgi"]


# ----------------------------------------------------------------------------------------------------
# h2load


def ms_of(tok: str) -> float | None:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", tok)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else None


def parse_h2load(out: str) -> tuple[float, float | None, int, dict[str, int], str, str]:
    """req/s, mean time per request (ms), requests succeeded, the errors, the application protocol and
    (under TLS) protocol + cipher, from h2load's report."""
    m = re.search(r"^finished in \S+, ([\d.]+) req/s", out, re.M)
    rps = float(m.group(1)) if m else 0.0
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out, re.M)
    succeeded = int(m.group(4)) if m else 0
    errors = dict(zip(("failed", "errored", "timeout"), map(int, m.groups()[4:]))) if m else {"no report": 1}
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    if m:
        errors["non-2xx"] = sum(map(int, m.groups()[1:]))
    m = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    mean = ms_of(m.group(3)) if m else None
    m = re.search(r"^Application protocol: (\S+)", out, re.M)
    proto = m.group(1) if m else "?"
    tp, ci = re.search(r"^TLS Protocol: (\S+)", out, re.M), re.search(r"^Cipher: (\S+)", out, re.M)
    tls = f"{tp.group(1)} {ci.group(1)}" if tp and ci else ""
    return rps, mean, succeeded, {k: v for k, v in errors.items() if v}, proto, tls


def fmt_duration(s: float) -> str:
    return f"{s:g}s" if s == int(s) else f"{round(s * 1000)}ms"


def h2load_argv(url: str, sc: H2Scenario, duration: float, warmup: float) -> list[str]:
    argv = ["h2load", f"-t{sc.threads}", f"-c{sc.conns}", f"-m{sc.per_conn}", "-D", fmt_duration(duration)]
    if warmup > 0:
        argv += ["--warm-up-time", fmt_duration(warmup)]
    return argv + [url]


def ticks_of(pid: int) -> int:
    st = proc_stat(pid)
    return int(st[11]) + int(st[12]) if st else 0


def run_h2load(server: H2Server, sc: H2Scenario, duration: float, warmup: float) -> H2Run:
    """One h2load run. The server's CPU time (every process of its session) is read when h2load says its
    main duration started (its first thread; the warm-up's requests are not in its counts) and when it
    says it is over, so the CPU and the requests cover the same window; h2load's own CPU time is read at
    the same moments, to tell the rest of the machine's work (`background`) apart."""
    argv = h2load_argv(server.url, sc, duration, warmup)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    watchdog = threading.Timer(warmup + duration + 60, p.kill)  # bounded: a hung h2load is killed
    watchdog.start()
    lines: list[str] = []
    start = end = None
    if warmup <= 0:  # no warm-up: all of the run is measured
        start = (cpu_ticks_by_pid(server.pid), machine_busy(), ticks_of(p.pid))
    try:
        for line in p.stdout:
            lines.append(line)
            if start is None and line.startswith("Main benchmark duration is started"):
                start = (cpu_ticks_by_pid(server.pid), machine_busy(), ticks_of(p.pid))
            elif end is None and line.startswith("Main benchmark duration is over"):
                end = (cpu_ticks_by_pid(server.pid), machine_busy(), ticks_of(p.pid))
        p.wait()
    finally:
        watchdog.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    out = "".join(lines)
    if p.returncode != 0:
        raise RuntimeError(f"h2load failed ({p.returncode}): {out[-600:]}")
    if start is None or end is None:
        raise RuntimeError(f"h2load said nothing of its main duration: {out[-600:]}")
    rps, mean, ok, errors, proto, tls = parse_h2load(out)
    (by0, (busy0, tot0), gen0), (by1, (busy1, tot1), gen1) = start, end
    cpu = sum(by1.values()) - sum(by0.values())
    other = (busy1 - busy0) - cpu - (gen1 - gen0)  # neither the server nor h2load
    background = max(0.0, 100.0 * other / max(1, tot1 - tot0) * (os.cpu_count() or 1))
    workers = [by1[pid] - by0.get(pid, 0) for pid in sorted(by1) if pid != server.pid]
    return H2Run(rps, mean, ok, errors, cpu, background, proto, tls, workers)


def summarise(runs: list[H2Run]) -> H2Summary:
    requests = sum(r.requests for r in runs)
    means = [r.mean_ms for r in runs if r.mean_ms is not None]
    detail: dict[str, int] = {}
    for r in runs:
        for k, v in r.errors.items():
            detail[k] = detail.get(k, 0) + v
    return H2Summary(statistics.median(r.rps for r in runs), statistics.median(means) if means else None,
                     sum(r.cpu_ticks for r in runs) / CLK_TCK * 1e6 / requests if requests else None,
                     sum(detail.values()), ", ".join(f"{k} {v}" for k, v in detail.items()),
                     "/".join(dict.fromkeys(r.protocol for r in runs)), "/".join(dict.fromkeys(r.tls for r in runs if r.tls)),
                     runs)


def run_rows(args, free_ports) -> dict:
    """Every group (native, WSGI, ASGI): its servers in both modes started together, measured in
    interleaved rounds per scenario, then stopped. Returns {"results": {(label, mode): {scenario key:
    H2Summary}}, "na": {(label, mode): reason}, "argv": {(label, mode): (argv, port)}, "args": ...}."""
    ensure()
    asgi.write_apps()
    cert, key = write_cert()
    results: dict[tuple[str, str], dict[str, H2Summary]] = {}
    na: dict[tuple[str, str], str] = {}
    argvs: dict[tuple[str, str], tuple[list[str], int]] = {}
    started = time.monotonic()
    for group, _ in GROUPS:
        prefixes: list[Path] = []
        servers = [s for mode in MODES for s in servers_for(group, mode, cert, key, prefixes)]
        try:
            for s, port in zip(servers, free_ports(len(servers))):
                log(f"h2: starting {s.label} ({s.mode}) on 127.0.0.1:{port}")
                try:
                    s.start(port)
                except OSError as e:
                    s.na = f"could not start: {e}"
            for s in servers:
                if s.na:
                    continue
                try:
                    s.wait_ready()
                except RuntimeError as e:
                    s.na = str(e).strip().replace("\n", " ")[:300]
                    log(f"h2: {s.label} ({s.mode}) n/a: {s.na}")
                    s.stop()
            live = [s for s in servers if not s.na]
            for s in servers:
                argvs[(s.label, s.mode)] = (s.argv, s.port)
                if s.na:
                    na[(s.label, s.mode)] = s.na
            runs: dict[tuple[str, str, str], list[H2Run]] = {}
            for sc in SCENARIOS:
                for rnd in range(args.h2_rounds):
                    for s in live:
                        if s.na:
                            continue
                        try:
                            r = run_h2load(s, sc, args.h2_duration, args.h2_warmup)
                        except (RuntimeError, subprocess.SubprocessError) as e:
                            s.na = f"h2load failed: {str(e).strip()[:300]}"
                            na[(s.label, s.mode)] = s.na
                            log(f"h2: {s.label} ({s.mode}) n/a: {s.na}")
                            continue
                        if r.protocol not in ("h2", "h2c"):
                            s.na = f"h2load negotiated {r.protocol}, not h2"
                            na[(s.label, s.mode)] = s.na
                            log(f"h2: {s.label} ({s.mode}) n/a: {s.na}")
                            continue
                        runs.setdefault((s.label, s.mode, sc.key), []).append(r)
                        cpu = r.cpu_ticks / CLK_TCK * 1e6 / max(1, r.requests)
                        mean = "–" if r.mean_ms is None else f"{r.mean_ms:.2f} ms"
                        log(f"h2 {sc.key:<5} {s.mode:<4} round {rnd + 1}/{args.h2_rounds} {s.label:<20} "
                            f"{r.rps:>10,.0f} req/s  mean {mean:>9}  cpu {cpu:6.1f} µs/req  bg {r.background_pct:3.0f}%"
                            f"{f', errors {r.errors}' if r.errors else ''}")
            for s in servers:
                if not s.na:
                    results[(s.label, s.mode)] = {sc.key: summarise(runs[(s.label, s.mode, sc.key)])
                                                  for sc in SCENARIOS}
        finally:
            for s in servers:
                try:
                    s.stop()
                except Exception as e:  # keep stopping the others
                    print(f"stopping {s.label} ({s.mode}): {e}", file=sys.stderr)
            for prefix in prefixes:
                shutil.rmtree(prefix, ignore_errors=True)
    log(f"h2: the HTTP/2 rows took {time.monotonic() - started:.0f} s")
    vers = versions()
    return {"results": results, "na": na, "argv": argvs, "cert": cert, "key": key,
            "versions": {k: vers[k] for k in ("rustgun", "nginx", "granian", "gunicorn")},
            "h2load": run_out(["h2load", "--version"]).splitlines()[0] if shutil.which("h2load") else "?"}


# ----------------------------------------------------------------------------------------------------
# The section


def targets(results: dict) -> list[list[str]]:
    rows = []
    ours, ref = results.get(("rustgun event", "h2c")), results.get(("nginx", "h2c"))
    if ours and ref:
        vals = [ratio(ours[sc.key].rps, ref[sc.key].rps) for sc in SCENARIOS]
        rows.append(["rustgun `event` (native hello), h2c: ≥ 1.0× nginx's req/s, every scenario",
                     " / ".join(f"{v:.2f}× ({fmt_rps(ours[sc.key].rps)} vs {fmt_rps(ref[sc.key].rps)})"
                                for v, sc in zip(vals, SCENARIOS)) + f" at {'/'.join(str(sc.streams) for sc in SCENARIOS)} streams",
                     check(min(vals) >= 1.0)])
    for mine, theirs, what in (("rustgun+wsgi event", "granian wsgi", "WSGI"),
                               ("rustgun+asgi event", "granian asgi", "ASGI")):
        cells, oks = [], []
        for mode in MODES:
            a, b = results.get((mine, mode)), results.get((theirs, mode))
            if not (a and b):
                continue
            for sc in SCENARIOS:
                x, y = a[sc.key].cpu_us, b[sc.key].cpu_us
                if x is None or y is None:
                    continue
                oks.append(x < y)
                cells.append(f"{mode} {sc.streams}: {x:.1f} vs {y:.1f}")
        if cells:
            rows.append([f"rustgun + `lib{what.lower()}.so`: fewer CPU µs/request than granian ({what}), every "
                         f"scenario and mode", "; ".join(cells) + f" ({sum(oks)} of {len(oks)} lower)",
                         check(all(oks))])
    return rows


def shown(argv: list[str], port: int) -> str:
    """The command as run, with the ephemeral port, nginx's temporary prefix and the repository named."""
    text = shlex.join(argv).replace(f"127.0.0.1:{port}", "127.0.0.1:$PORT").replace(f"--port {port}", "--port $PORT")
    text = re.sub(r"/tmp/rustgun-bench-nginx-[^/ ']+", "$PREFIX", text)
    return text.replace(str(REPO) + "/", "")


def render(h2: dict, args, table) -> tuple[str, str]:
    """The section (markdown, between BEGIN and END) and its terminal text."""
    results, na = h2["results"], h2["na"]
    labels = [lab for lab in ORDER if any((lab, m) in results or (lab, m) in na for m in MODES)]
    out: list[str] = []
    for mode in MODES:
        rows = []
        for lab in labels:
            got = results.get((lab, mode))
            ref = results.get(("nginx" if lab in ("rustgun event", "nginx") else
                               "granian wsgi" if "wsgi" in lab or "gthread" in lab else "granian asgi", mode))
            if not got:
                reason = na.get((lab, mode), "not run")
                rows.append([lab, *(["n/a"] * (3 * len(SCENARIOS))), f"n/a: {reason[:120]}"])
                continue
            cells = []
            for sc in SCENARIOS:
                r = got[sc.key]
                cells += [fmt_rps(r.rps), f"{ratio(r.rps, ref[sc.key].rps):.2f}×" if ref else "–", fmt_us(r.cpu_us)]
            errs = sum(got[sc.key].errors for sc in SCENARIOS)
            detail = "; ".join(f"{sc.streams}: {got[sc.key].error_detail}" for sc in SCENARIOS if got[sc.key].errors)
            rows.append([lab, *cells, str(errs) + (f" ({detail})" if errs else "")])
        headers = ["server"]
        for sc in SCENARIOS:
            headers += [f"{sc.streams} req/s", "× ref", f"{sc.streams} CPU µs/req"]
        headers.append("errors")
        out += [f"### {MODE_LABEL[mode]}", "", *table(headers, rows, "l" + "r" * (len(headers) - 2) + "l"), ""]

    # Mean time per request (h2load's), per scenario and mode.
    lat_rows = []
    for lab in labels:
        cells = []
        for mode in MODES:
            got = results.get((lab, mode))
            for sc in SCENARIOS:
                m = got[sc.key].mean_ms if got else None
                cells.append("n/a" if not got else "–" if m is None else f"{m:.2f}" if m < 10 else f"{m:.1f}")
        lat_rows.append([lab, *cells])
    lat_lines = table(["server", *(f"{m} {sc.streams}" for m in MODES for sc in SCENARIOS)], lat_rows)
    split_rows = [[lab, *(worker_split(results[(lab, m)][sc.key].runs) if (lab, m) in results else "n/a"
                          for m in MODES for sc in SCENARIOS[1:])] for lab in labels]
    split_lines = table(["server", *(f"{m} {sc.streams}" for m in MODES for sc in SCENARIOS[1:])], split_rows)
    round_rows = [[lab, *(" / ".join(f"{r.rps / 1000:.0f}k" for r in results[(lab, m)][sc.key].runs)
                          if (lab, m) in results else "n/a" for m in MODES for sc in SCENARIOS[1:])] for lab in labels]
    round_lines = table(["server", *(f"{m} {sc.streams}" for m in MODES for sc in SCENARIOS[1:])], round_rows)
    vers_line = "; ".join(f"{k} {v}" if not v.lower().startswith(k) else v for k, v in h2.get("versions", {}).items())
    tls_by = [f"{lab} {'/'.join(dict.fromkeys(r.tls for sc in SCENARIOS for r in results[(lab, 'tls')][sc.key].runs))}"
              for lab in labels if (lab, "tls") in results]

    # Errors: were they only the streams still in flight when h2load's duration ended?
    err_runs = [(r.n_errors, sc.streams) for got in results.values() for sc in SCENARIOS for r in got[sc.key].runs
                if r.n_errors]
    err_note = ("" if not err_runs else
                f" {len(err_runs)} runs had errors; " +
                ("each had at most as many as it had streams in flight, so they may be the streams still open when "
                 "h2load's duration ended."
                 if all(e <= n for e, n in err_runs) else "some had more than the streams they had in flight."))
    na_lines = [f"- {lab}, {mode}: {reason}" for (lab, mode), reason in sorted(na.items())] or ["- none"]
    tgt = targets(results)
    tgt_lines = table(["target", "measured", ""], tgt, "llc") if tgt else ["(not measured)"]
    cmds = [f"- {lab}, {mode}: `{shown(*h2['argv'][(lab, mode)])}`" for lab in labels for mode in MODES
            if (lab, mode) in h2["argv"]]
    nginx_confs = {mode: nginx_conf("$PREFIX", "$PORT", mode, "    # (*_temp_path under $PREFIX)\n",
                                    "target/bench/h2/cert.pem", "target/bench/h2/key.pem") for mode in MODES}
    sample = "\n".join(shlex.join(h2load_argv(f"{'https' if m == 'tls' else 'http'}://127.0.0.1:$PORT/", sc,
                                              args.h2_duration, args.h2_warmup)) for m in MODES[:1] for sc in SCENARIOS)
    argv_run = shlex.join(["python3", "benches/compare.py", *sys.argv[1:]])
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    intro = __doc__.split("\n\n")[0].replace("\n", " ").strip()
    md = f"""{BEGIN}
## HTTP/2: rustgun `event` (native, WSGI, ASGI) vs nginx, granian and gunicorn

{intro}

Measured {when} by `{argv_run}` ({h2['h2load']}; {vers_line}): {args.h2_rounds} interleaved round{"s" if args.h2_rounds > 1 else ""}
(every server of a group, in both modes, once per round) of {args.h2_duration:g} s per scenario, each h2load run
with {args.h2_warmup:g} s of warm-up first. The three groups (native hello; WSGI hello; raw ASGI hello) run one
after the other, each with its servers of both modes up together and the others stopped.

- **Scenarios**: h2load's `-c` connections × `-m` streams in flight on each, so 1, 32 and 256
  concurrent streams: `-t1 -c1 -m1`, `-t2 -c4 -m8`, `-t2 -c4 -m64` (every server allows ≥ 100 streams
  per connection: rustgun and gunicorn 100, nginx 128, granian 200). h2load makes new connections each
  run; its warm-up covers the connection set-up and TLS handshakes, so the figures are the steady state
  of the streams.
- **req/s**: h2load's requests/s of the measured window (the median of the rounds). **× ref**: that
  over nginx's (native rows) or granian's (WSGI and ASGI rows), in the same mode and scenario.
- **CPU µs/req**: user + system time of all the server's processes from `/proc/PID/stat`, read when
  h2load reports its main duration started and when it reports it over (so the warm-up is out of
  both the CPU time and the request count), over the requests that succeeded in the rounds. As in the
  wrk rows, the load generator shares the 2 cores with the server, so this is the fairer comparison.
- **TLS**: a self-signed RSA-2048 certificate (`target/bench/h2/`); h2load negotiated (TLS version and cipher
  per server) {"; ".join(tls_by) or "–"}.
- **Connections over workers**: with 4 connections on 2 workers, how the kernel hands them to the
  workers (2 + 2, 3 + 1, 4 + 0) decides much of a run's req/s for every server; the rounds' req/s and
  the workers' CPU split (busiest first) are below the tables, to read the medians with.
- **errors**: h2load's `failed` + `errored` + `timeout` requests and non-2xx answers in the measured
  windows, summed over the rounds.{err_note}
- Every answer was checked first with curl over HTTP/2 (the hello body, `HTTP/2 200`); a run whose
  h2load negotiated anything but h2/h2c would be dropped as n/a.

{chr(10).join(out)}
### Mean time per request (h2load, ms)

{chr(10).join(lat_lines)}

### req/s of each round (32 and 256 streams)

{chr(10).join(round_lines)}

### Workers' CPU split (32 and 256 streams, over the rounds, busiest first)

{chr(10).join(split_lines)}

### Not measured (n/a)

{chr(10).join(na_lines)}

### Targets (HTTP/2)

{chr(10).join(tgt_lines)}

### How the servers ran

h2load, per scenario (`http://` for h2c, `https://` for TLS):

```
{sample}
```

{chr(10).join(cmds)}

nginx.conf, h2c (TLS: `listen 127.0.0.1:$PORT ssl http2;` and the certificate):

```nginx
{nginx_confs["h2c"].rstrip()}
```
{END}
"""
    text = "\n".join(["HTTP/2 rows:", *out, "Mean time per request (ms):", *lat_lines, "", "req/s per round:",
                      *round_lines, "", "workers' CPU split:", *split_lines, "", "n/a:", *na_lines, "",
                      "Targets (HTTP/2):", *tgt_lines, ""])
    return md, text


def splice(page: str, section: str) -> str:
    """`page` with its HTTP/2 block replaced by `section` (appended when it has none)."""
    i, j = page.find(BEGIN), page.find(END)
    if i >= 0 and j > i:
        return page[:i] + section.rstrip("\n") + page[j + len(END):]
    return page.rstrip("\n") + "\n\n" + section


def existing(page: str) -> str:
    """The HTTP/2 block of `page`, '' when it has none."""
    i, j = page.find(BEGIN), page.find(END)
    return page[i:j + len(END)] + "\n" if i >= 0 and j > i else ""
