"""PEP 3333 corners, one path each. Served by rustgun (libwsgi.so) and by gunicorn in the
differential test: both must give the same status, body and app-visible environ."""

import hashlib
import json
import os
import sys
import tempfile
import threading
import time

CLOSED = os.environ.get("PROBE_CLOSED_DIR")
# The process that imported this module: the master under --preload, else the worker itself.
IMPORTED_IN = os.getpid()


def _visible(environ):
    """The environ as the app sees it, JSON-friendly: objects become their kind."""
    out = {}
    for key, value in sorted(environ.items()):
        if isinstance(value, (str, bool, int)) or value is None:
            out[key] = value
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = "<object>"
    return out


def _json(start_response, value, status="200 OK"):
    body = json.dumps(value, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class Tracked:
    """A response iterable whose close() leaves a marker file (counting calls)."""

    def __init__(self, name, chunks, delay=0.0):
        self.name, self.chunks, self.delay = name, chunks, delay

    def __iter__(self):
        for chunk in self.chunks:
            if self.delay:
                time.sleep(self.delay)
            yield chunk

    def close(self):
        if CLOSED:
            path = os.path.join(CLOSED, self.name)
            count = int(open(path).read()) if os.path.exists(path) else 0
            # Written aside and renamed, so that a test polling the file never reads it half made.
            with open(path + ".new", "w") as f:
                f.write(str(count + 1))
            os.replace(path + ".new", path)


# Where /meet's four requests wait for each other.
MEET = threading.Barrier(4)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    inp = environ["wsgi.input"]
    if path == "/environ" or path.startswith("/unicode") or method == "OPTIONS":
        body = inp.read()
        return _json(start_response, {"environ": _visible(environ), "body": body.decode("latin-1")})
    if path == "/echo":
        # read(n) pieces, as a multipart parser does.
        h, n = hashlib.sha256(), 0
        while True:
            if environ.get("QUERY_STRING") == "say":
                # The line a test waits on: this read() waits for the client.
                environ["wsgi.errors"].write("probe: /echo reads after %d bytes\n" % n)
                environ["wsgi.errors"].flush()
            piece = inp.read(65536)
            if not piece:
                break
            h.update(piece)
            n += len(piece)
        return _json(start_response, {"bytes": n, "sha256": h.hexdigest()})
    if path == "/lines":
        first = inp.readline()
        limited = inp.readline(3)
        rest = [line.decode() for line in inp]
        return _json(start_response, {"first": first.decode(), "limited": limited.decode(), "rest": rest})
    if path == "/readlines":
        return _json(start_response, {"lines": [l.decode() for l in inp.readlines()]})
    if path == "/stream":
        n = int(environ.get("QUERY_STRING", "").partition("=")[2] or 5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (("line %d\n" % i).encode() for i in range(n))
    if path == "/lazy":
        # start_response called in the generator's first step; an empty chunk along the way.
        def gen():
            start_response("201 Created", [("X-Lazy", "yes")])
            yield b""
            yield b"lazy body"
        return gen()
    if path == "/lazy-empty-first":
        # An empty chunk even before start_response: no body byte yet, so still in time (PEP 3333).
        def gen():
            yield b""
            start_response("201 Created", [("X-Lazy", "yes")])
            yield b"lazy body"
        return gen()
    if path == "/empty-gen":
        def gen():
            start_response("204 No Content", [])
            return
            yield
        return gen()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        return [b"then returned"]
    if path == "/excinfo":
        start_response("200 OK", [("X-First", "1")])
        try:
            raise RuntimeError("changed my mind")
        except RuntimeError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced"]
    if path == "/raise":
        raise ValueError("the probe raised on purpose")
    if path == "/raise-late":
        def gen():
            start_response("200 OK", [("Content-Type", "text/plain")])
            yield b"partial"
            raise ValueError("the probe raised mid-stream")
        return gen()
    if path == "/file":
        f = tempfile.TemporaryFile()
        f.write(b"0123456789" * 10000)
        f.seek(0)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/file-bytesio":
        import io

        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"abcdefghij" * 5000), 4096)
    if path == "/dup":
        start_response("200 OK", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("Content-Length", "3")])
        return [b"dup"]
    if path == "/head":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")])
        return [b"head bodies"]
    if path == "/tracked":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Tracked("tracked", [b"a" * 65536] * 64, delay=0.01)
    if path == "/tracked-short":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Tracked("tracked-short", [b"one ", b"two"])
    if path == "/meet":
        # Four requests wait for each other: only a server that runs four at once answers them.
        try:
            MEET.wait(timeout=10)
        except threading.BrokenBarrierError:
            return _json(start_response, {"met": False})
        return _json(start_response, {"met": True, "thread": threading.get_ident()})
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING", "").partition("=")[2] or 0.5))
        return _json(start_response, {"thread": threading.get_ident()})
    if path == "/print":
        print("probe: printed to stdout", flush=True)
        return _json(start_response, {"ok": True})
    if path == "/errors":
        environ["wsgi.errors"].write("probe: a line for the error log\n")
        environ["wsgi.errors"].flush()
        return _json(start_response, {"ok": True})
    if path == "/pids":
        return _json(start_response, {"imported_in": IMPORTED_IN, "serving": os.getpid()})
    if path == "/big":
        n = int(environ.get("QUERY_STRING", "").partition("=")[2] or 0)
        body = b"x" * n
        start_response("200 OK", [("Content-Length", str(n))])
        return [body]
    return _json(start_response, {"error": "not found", "path": path}, status="404 Not Found")


def create_app(greeting="hello from the factory"):
    def factory_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [greeting.encode()]
    return factory_app
