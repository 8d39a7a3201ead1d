# The Python half every rustgun bridge shares (libwsgi.so, libasgi.so): sys.path and virtual
# environment set-up, loading the app the way gunicorn does, tracebacks, exit functions. Compiled once
# per process as the module `_rustgun_embed`.

import ast
import importlib
import os
import signal
import sys
import threading
import time
import traceback


class AppImportError(Exception):
    """The app reference is malformed or does not name a callable (gunicorn's AppImportError)."""


def setup_path(pythonpath, venv):
    """Puts the working directory (the server's --chdir) and every --pythonpath directory in front
    of sys.path as gunicorn does, and honours a virtual environment the way its own python would."""
    if venv:
        _use_venv(venv)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for path in pythonpath:
        path = os.path.abspath(path)
        if path not in sys.path:
            sys.path.insert(0, path)


def _use_venv(venv):
    import site

    venv = os.path.abspath(venv)
    include_system = False
    try:
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition("=")
                if sep and key.strip().lower() == "include-system-site-packages":
                    include_system = value.strip().lower() == "true"
    except OSError:
        pass
    if not include_system:
        base = set(site.getsitepackages())
        user = site.getusersitepackages()
        sys.path[:] = [p for p in sys.path if p not in base and p != user]
    sys.prefix = sys.exec_prefix = venv
    version = "python%d.%d" % sys.version_info[:2]
    for lib in ("lib", "lib64"):
        candidate = os.path.join(venv, lib, version, "site-packages")
        if os.path.isdir(candidate):
            site.addsitedir(candidate)


def load(spec, factory=False, paste_global=()):
    """`module:callable`, `module` (callable `application`) or `module:factory(literal args)`:
    gunicorn's import_app, with the same messages. `factory` (uvicorn's --factory): the callable is
    a factory, called with no arguments. `paste:FILE[#SECTION]` (gunicorn's --paste) is loaded by
    PasteDeploy, with `paste_global`'s KEY=VALUE items as its global_conf (--paste-global)."""
    if spec.startswith("paste:"):
        return _load_paste(spec[len("paste:"):], paste_global)
    module, sep, obj = spec.partition(":")
    if not sep:
        obj = "application"
    if not module:
        raise AppImportError("No module named in %r." % spec)
    try:
        expression = ast.parse(obj, mode="eval").body
    except SyntaxError:
        raise AppImportError("Failed to parse %r as an attribute name or function call." % obj) from None
    if isinstance(expression, ast.Name):
        name, args, kwargs = expression.id, None, None
    elif isinstance(expression, ast.Call):
        if not isinstance(expression.func, ast.Name):
            raise AppImportError("Function reference must be a simple name: %r" % obj)
        name = expression.func.id
        try:
            args = [ast.literal_eval(arg) for arg in expression.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expression.keywords}
        except ValueError:
            raise AppImportError("Failed to parse arguments as literal values: %r" % obj) from None
    else:
        raise AppImportError("Failed to parse %r as an attribute name or function call." % obj)

    mod = importlib.import_module(module)
    try:
        app = getattr(mod, name)
    except AttributeError:
        raise AppImportError("Failed to find attribute %r in %r." % (name, module)) from None
    if args is None and factory:
        args, kwargs = [], {}
    if args is not None:
        app = app(*args, **kwargs)
    if app is None:
        raise AppImportError("Failed to find application object: %r" % obj)
    if not callable(app):
        raise AppImportError("Application object must be callable.")
    return app


def _load_paste(target, paste_global):
    try:
        from paste.deploy import loadapp
    except ImportError:
        raise AppImportError("--paste needs PasteDeploy in the app's environment (pip install PasteDeploy)") from None
    path, _, section = target.partition("#")
    global_conf = dict(item.split("=", 1) for item in paste_global if "=" in item)
    return loadapp("config:" + os.path.abspath(path), name=section or None, global_conf=global_conf)


def format_exception(exc, tb=None):
    """The full traceback of `exc`, without the trailing newline."""
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__)).rstrip("\n")


def describe(exc):
    """`ExcType: message` on one line."""
    return "".join(traceback.format_exception_only(exc)).strip().replace("\n", " ")


def run_exit_functions():
    """What a gunicorn worker's interpreter does on the way out: atexit handlers, flushed streams."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def watch_modules(log):
    """--reload in a worker, as gunicorn's reloader does it: a thread looks at the files of every
    imported module each second, and at the first change logs it and stops the worker gracefully
    (SIGTERM to itself); the master starts another, which imports the new code."""

    def files():
        return {f for f in (getattr(m, "__file__", None) for m in list(sys.modules.values())) if f}

    def stamp(path):
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return None

    # What is imported now is stamped now, before the worker serves; later imports when first seen.
    seen = {path: stamp(path) for path in files()}

    def run():
        while True:
            for path in files():
                now = stamp(path)
                if now is not None and seen.setdefault(path, now) != now:
                    log("Worker reloading: %s modified" % path)
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
            time.sleep(1)

    threading.Thread(target=run, name="rustgun-reloader", daemon=True).start()
