# gunicorn.conf.py's server hooks as rustgun's Python bridges run them: the file is loaded in the
# master the way gunicorn loads it (a module named __config__), and each hook is called with objects
# shaped like gunicorn's arbiter, worker, request and response, as far as hooks use them. Compiled once
# per process as the module `_rustgun_hooks`.

import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import os
import sys
import traceback

# The hook names, in RG_HOOK_* order.
NAMES = (
    "on_starting", "on_reload", "when_ready", "pre_fork", "post_fork", "post_worker_init",
    "worker_int", "worker_abort", "pre_exec", "pre_request", "post_request", "child_exit",
    "worker_exit", "nworkers_changed", "on_exit",
)
# What each hook is given: the server, the worker, or both.
_SERVER_ONLY = {"on_starting", "on_reload", "when_ready", "pre_exec", "on_exit", "nworkers_changed"}
_WORKER_ONLY = {"post_worker_init", "worker_int", "worker_abort", "pre_request", "post_request"}

_hooks = {}
_cfg = None
_emit = None
_post_request_arity = 4


class Log:
    """gunicorn's logger methods, writing to rustgun's error log (1 error, 2 warning, 3 info, 4 debug)."""

    def _write(self, level, msg, args):
        text = str(msg) % args if args else str(msg)
        _emit(level, text)

    def critical(self, msg, *args, **kwargs):
        self._write(1, msg, args)

    def error(self, msg, *args, **kwargs):
        self._write(1, msg, args)

    def exception(self, msg, *args, **kwargs):
        self._write(1, (str(msg) % args if args else str(msg)) + "\n" + traceback.format_exc().rstrip(), ())

    def warning(self, msg, *args, **kwargs):
        self._write(2, msg, args)

    warn = warning

    def info(self, msg, *args, **kwargs):
        self._write(3, msg, args)

    def debug(self, msg, *args, **kwargs):
        self._write(4, msg, args)

    def log(self, lvl, msg, *args, **kwargs):
        level = 1 if lvl >= 40 else 2 if lvl >= 30 else 3 if lvl >= 20 else 4
        self._write(level, msg, args)


class Config:
    """The file's settings by gunicorn's names (`server.cfg.workers`); a name the file does not set
    reads as None."""

    def __init__(self, namespace):
        self.__dict__.update({k: v for k, v in namespace.items() if not k.startswith("_")})

    def __getattr__(self, name):
        return None


class Server:
    """What hooks see of gunicorn's arbiter."""

    def __init__(self, pid, num_workers):
        self.pid = pid
        self.num_workers = num_workers
        self.cfg = _cfg
        self.log = Log()
        self.proc_name = getattr(_cfg, "proc_name", None) or "rustgun"


class Worker:
    """What hooks see of a gunicorn worker."""

    def __init__(self, pid, ppid, wid, age):
        self.pid = pid or None
        self.ppid = ppid
        self.id = wid
        self.age = age
        self.cfg = _cfg
        self.log = Log()
        self.alive = True
        self.booted = pid == os.getpid()
        self.nr = 0


class Request:
    """What pre_request and post_request see of a request (gunicorn's `req`)."""

    def __init__(self, environ):
        self.method = environ.get("REQUEST_METHOD", "")
        self.path = environ.get("PATH_INFO", "")
        self.query = environ.get("QUERY_STRING", "")
        self.uri = environ.get("RAW_URI") or (self.path + ("?" + self.query if self.query else ""))
        proto = environ.get("SERVER_PROTOCOL", "HTTP/1.1")
        major, _, minor = proto.partition("/")[2].partition(".")
        self.version = (int(major or 1), int(minor or 0))
        self.scheme = environ.get("wsgi.url_scheme", "http")
        self.headers = [
            (k[5:].replace("_", "-"), v) for k, v in environ.items() if k.startswith("HTTP_")
        ]
        for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if k in environ:
                self.headers.append((k.replace("_", "-"), environ[k]))


class Response:
    """What post_request sees of the response (gunicorn's `resp`)."""

    def __init__(self, status, headers):
        self.status = status
        try:
            self.status_code = int(str(status).split(None, 1)[0])
        except (ValueError, IndexError):
            self.status_code = None
        self.headers = list(headers or ())


def _namespace(source):
    """The names the file (a path, or `python:module`) defines, run as gunicorn runs it."""
    if source.startswith("python:"):
        return vars(importlib.import_module(source[len("python:"):]))
    loader = importlib.machinery.SourceFileLoader("__config__", source)
    spec = importlib.util.spec_from_file_location("__config__", source, loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["__config__"] = module
    loader.exec_module(module)
    return vars(module)


def _toml(value):
    """A setting's value as TOML writes it, or None for what no setting takes (a module, a function)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        items = [_toml(v) for v in value]
        return None if None in items else "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        items = [json.dumps(str(k), ensure_ascii=False) + " = " + (_toml(v) or '""') for k, v in value.items()]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, type):
        return json.dumps(value.__module__ + "." + value.__qualname__)
    return None


def settings(source):
    """What the server reads of the file, in a throwaway interpreter before it starts: the hooks it
    defines and its settings by gunicorn's names, as TOML."""
    hooks, lines = [], []
    for name, value in _namespace(source).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if name in NAMES:
            if callable(value):
                hooks.append(name)
            continue
        text = _toml(value)
        if text is not None:
            lines.append(json.dumps(name) + " = " + text)
    return "hooks = " + json.dumps(hooks) + "\n[settings]\n" + "\n".join(lines) + "\n"


def load(source, emit):
    """Runs the configuration file (a path, or `python:module`) as gunicorn does and keeps its hooks;
    returns the RG_HOOK_* bits of the hooks it defines."""
    global _hooks, _cfg, _emit, _post_request_arity
    _emit = emit
    namespace = _namespace(source)
    _cfg = Config(namespace)
    _hooks = {name: namespace[name] for name in NAMES if callable(namespace.get(name))}
    post = _hooks.get("post_request")
    if post is not None:
        # gunicorn takes post_request(worker, req), (worker, req, environ) or the full four.
        try:
            _post_request_arity = len(inspect.signature(post).parameters)
        except (TypeError, ValueError):
            _post_request_arity = 4
    return sum(1 << NAMES.index(name) for name in _hooks)


def call(hook, master_pid, worker_pid, worker_id, age, workers, old_workers):
    name = NAMES[hook]
    f = _hooks.get(name)
    if f is None:
        return
    server = Server(master_pid, workers)
    if name == "nworkers_changed":
        f(server, workers, old_workers)
    elif name in _SERVER_ONLY:
        f(server)
    else:
        ppid = master_pid if worker_pid == os.getpid() else os.getpid()
        worker = Worker(worker_pid, ppid, worker_id, age)
        f(worker) if name in _WORKER_ONLY else f(server, worker)


def _worker():
    return Worker(os.getpid(), os.getppid(), 0, 0)


def pre_request(environ):
    f = _hooks.get("pre_request")
    if f is not None:
        f(_worker(), Request(environ))


def post_request(environ, status, headers):
    f = _hooks.get("post_request")
    if f is None:
        return
    args = (_worker(), Request(environ), environ, Response(status, headers))
    f(*args[: max(2, min(_post_request_arity, 4))])
