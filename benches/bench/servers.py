"""The servers under test: how each starts, stops and reports its workers and memory; installing what
they need."""

from __future__ import annotations

import http.client
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import (BENCH_DIR, HELLO, NGINX_CONF, RELEASE, REPO, THREADS, VENV, WSGI_APP, child_setup, log, run_out,
                     session_pids, status_kib)


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
    ready_status: int = 200  # what GET / answers once it is up (200 with the hello body, or this status)
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
        """GET / until it answers the hello response (or `ready_status`), then until all workers are up."""
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
                if resp.status == self.ready_status and (body == HELLO or resp.status != 200):
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
    # gunicorn and granian serve both the WSGI and the ASGI rows; uvicorn (with uvloop and httptools, as
    # a deployment installs it) and FastAPI the ASGI ones.
    want = [p for p, exe in (("gunicorn", "gunicorn"), ("granian", "granian"), ("uvicorn[standard]", "uvicorn"),
                             ("fastapi", "fastapi")) if not (REPO / VENV / "bin" / exe).exists()]
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
        "uvicorn": first(run_out([venv_bin + "/uvicorn", "--version"])),
        "fastapi": first(run_out([venv_bin + "/python", "-c", "import fastapi; print(fastapi.__version__)"])),
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
