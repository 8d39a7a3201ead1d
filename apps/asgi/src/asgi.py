# The Python half of libasgi.so: the asyncio loop that owns the worker thread and steps the server's
# loop, ASGI lifespan, and one Cycle per HTTP request (receive/send over the server's pending call).
# Compiled once per process as the module `_rustgun_asgi`.

import asyncio

from _rustgun_embed import format_exception

ASGI = {"version": "3.0", "spec_version": "2.4"}
# The server's call: read returns (bytes, ended) or None when nothing is ready yet.
READ_SIZE = 64 * 1024
READABLE, WRITABLE, DISCONNECTED = 1, 2, 3
# WebSocket events (the server's, after the app accepted).
WS_OPEN, WS_TEXT, WS_BINARY, WS_CLOSE = 10, 11, 12, 13
ERROR_BODY = b"Internal Server Error"
ERROR_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(ERROR_BODY)).encode()),
    (b"connection", b"close"),
]


class ClientDisconnected(OSError):
    """`send` after the client went away (ASGI spec 2.4: an OSError subclass)."""


class LifespanFailure(Exception):
    """The app refused to start (lifespan.startup.failed), or raised under --asgi-lifespan on."""


class Runner:
    """One worker's event loop, app and lifespan state."""

    def __init__(self, app, log, lifespan="auto", root_path="", loop="auto", grace="3"):
        if lifespan not in ("auto", "on", "off"):
            raise ValueError("--asgi-lifespan must be auto, on or off, not %r" % lifespan)
        if loop not in ("auto", "asyncio", "uvloop"):
            raise ValueError("--asgi-loop must be auto, asyncio or uvloop, not %r" % loop)
        self.app = app
        self.log = log
        # --asgi-disconnect-grace-period: how long a request's task may run on once its client has
        # gone, before it is cancelled (gunicorn's asgi worker).
        self.grace = float(grace)
        self.lifespan = lifespan
        self.root_path = root_path
        self.state = {}
        self.loop = _new_loop(loop)
        asyncio.set_event_loop(self.loop)
        self._lifespan_task = None
        self._events = asyncio.Queue()
        self._startup_done = None
        self._shutdown_done = None

    # ---- lifespan ----------------------------------------------------------------------------------

    def startup(self):
        """Runs lifespan startup before the worker serves; raises LifespanFailure to refuse to boot."""
        if self.lifespan == "off":
            return
        self._startup_done = self.loop.create_future()
        self._shutdown_done = self.loop.create_future()
        self._lifespan_task = self.loop.create_task(self._lifespan_main())
        self._events.put_nowait({"type": "lifespan.startup"})
        failure = self.loop.run_until_complete(self._startup_done)
        if failure is not None:
            raise LifespanFailure(failure)

    async def _lifespan_main(self):
        scope = {"type": "lifespan", "asgi": ASGI, "state": self.state}
        try:
            await self.app(scope, self._events.get, self._lifespan_send)
        except BaseException as exc:
            if self._startup_done.done():
                # Failing after startup completed is the app's shutdown failing.
                self.log(40, "Exception in 'lifespan' protocol\n" + format_exception(exc))
            elif self.lifespan == "on":
                self.log(40, "Exception in 'lifespan' protocol\n" + format_exception(exc))
                _settle(self._startup_done, "the app raised %s during lifespan startup" % type(exc).__name__)
            else:
                self.log(20, "ASGI 'lifespan' protocol appears unsupported.")
        finally:
            _settle(self._startup_done, None)
            _settle(self._shutdown_done, None)

    async def _lifespan_send(self, message):
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            _settle(self._startup_done, None)
        elif kind == "lifespan.startup.failed":
            _settle(self._startup_done, message.get("message") or "lifespan.startup.failed")
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            if kind == "lifespan.shutdown.failed":
                self.log(40, "lifespan shutdown failed: %s" % message.get("message", ""))
            _settle(self._shutdown_done, None)

    def shutdown(self):
        """Runs lifespan shutdown once the worker stopped serving."""
        if self._lifespan_task is None or self._lifespan_task.done():
            return
        self._events.put_nowait({"type": "lifespan.shutdown"})
        self.loop.run_until_complete(self._shutdown_done)

    # ---- the loop ----------------------------------------------------------------------------------

    def serve(self, fd, step):
        """Runs the loop until the server's step says the worker is done."""
        loop = self.loop

        def ready():
            if step() < 0:
                loop.remove_reader(fd)
                loop.stop()

        def tick():
            wait = step()
            if wait < 0:
                loop.remove_reader(fd)
                loop.stop()
            else:
                loop.call_later(wait / 1000.0, tick)

        loop.add_reader(fd, ready)
        loop.call_soon(tick)
        loop.run_forever()

    def request(self, scope, call):
        """A request from the server's handle: its Cycle runs as a task of the loop."""
        scope["root_path"] = self.root_path
        if self.state:
            scope["state"] = dict(self.state)
        if scope["type"] == "websocket":
            cycle = WebSocketCycle(call, self.log)
            self.loop.create_task(cycle.run(self.app, scope))
        else:
            cycle = Cycle(call, self.log, self.grace)
            cycle.task = self.loop.create_task(cycle.run(self.app, scope))
        return cycle


def _new_loop(kind):
    """uvloop when asked for, or under auto when it is installed (uvicorn's --loop), else asyncio's."""
    if kind == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _settle(future, value):
    if future is not None and not future.done():
        future.set_result(value)


class Cycle:
    """One HTTP request/response over the server's pending call."""

    __slots__ = ("call", "log", "more_body", "started", "complete", "disconnected", "waiter", "gone",
                 "trailers", "body_ended", "grace", "task")

    def __init__(self, call, log, grace):
        self.call = call
        self.log = log
        self.grace = grace
        self.task = None
        self.more_body = True
        self.started = False
        self.complete = False
        self.disconnected = False
        self.waiter = None
        self.gone = None
        # http.response.trailers: the start said trailers come after the body, which then ends the
        # response instead of the body's last message.
        self.trailers = False
        self.body_ended = False

    def event(self, kind, code=0, data=b""):
        """The server's event for this call."""
        if kind == DISCONNECTED:
            self.disconnected = True
            _settle(self.gone, None)
            if self.task is not None and not self.task.done():
                if self.grace > 0:
                    asyncio.get_running_loop().call_later(self.grace, self._cancel_if_pending)
                else:
                    self.task.cancel()
        waiter, self.waiter = self.waiter, None
        _settle(waiter, None)

    def _cancel_if_pending(self):
        if not self.task.done():
            self.task.cancel()

    async def _wait(self):
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter

    async def receive(self):
        if self.disconnected or self.complete:
            return {"type": "http.disconnect"}
        if not self.more_body:
            # Nothing more to receive until the client goes (or the response is done).
            if self.gone is None:
                self.gone = asyncio.get_running_loop().create_future()
            await self.gone
            return {"type": "http.disconnect"}
        got = self.call.read(READ_SIZE)
        while got is None:
            await self._wait()
            if self.disconnected:
                return {"type": "http.disconnect"}
            got = self.call.read(READ_SIZE)
        body, ended = got
        if ended:
            self.more_body = False
        return {"type": "http.request", "body": body, "more_body": not ended}

    async def send(self, message):
        if self.disconnected:
            raise ClientDisconnected("the client went away")
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started = True
            self.trailers = bool(message.get("trailers", False))
            self.call.start(message["status"], message.get("headers", ()))
        elif kind == "http.response.body":
            if not self.started or self.complete or self.body_ended:
                raise RuntimeError("http.response.body outside a response")
            await self._write(message.get("body", b""))
            if not message.get("more_body", False):
                self._end_body()
        elif kind == "http.response.pathsend":
            if not self.started or self.complete or self.body_ended:
                raise RuntimeError("http.response.pathsend outside a response")
            with open(message["path"], "rb") as f:
                while True:
                    block = f.read(READ_SIZE)
                    if not block:
                        break
                    await self._write(block)
            self._end_body()
        elif kind == "http.response.trailers":
            if not self.trailers or not self.body_ended or self.complete:
                raise RuntimeError("http.response.trailers without trailers: true, or before the body ended")
            self.call.trailers(message.get("headers", ()))
            if not message.get("more_trailers", False):
                self._finish(True)
        else:
            raise RuntimeError("unexpected ASGI message %r" % kind)

    async def _write(self, data):
        if not data:
            return
        while not self.call.write(data):
            await self._wait()
            if self.disconnected:
                raise ClientDisconnected("the client went away")

    def _end_body(self):
        if self.trailers:
            self.body_ended = True
        else:
            self._finish(True)

    def _finish(self, ok):
        self.complete = True
        self.call.complete(ok)
        _settle(self.gone, None)

    async def run(self, app, scope):
        try:
            await app(scope, self.receive, self.send)
        except BaseException as exc:
            # The client left: its write failing, or the grace period's cancellation, is no fault.
            if self.disconnected and isinstance(exc, (OSError, asyncio.CancelledError)):
                return
            self.log(40, "Exception in ASGI application\n" + format_exception(exc))
            if self.disconnected or self.complete:
                return
            if not self.started:
                self.call.start(500, ERROR_HEADERS)
                self.call.write(ERROR_BODY)
                self._finish(True)
            else:
                self._finish(False)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        if self.complete or self.disconnected:
            return
        if not self.started:
            self.log(40, "ASGI callable returned without starting response.")
            self.call.start(500, ERROR_HEADERS)
            self.call.write(ERROR_BODY)
            self._finish(True)
        else:
            self.log(40, "ASGI callable returned without completing response.")
            self._finish(False)


class WebSocketCycle:
    """One WebSocket connection over the server's pending call, then its WebSocket."""

    def __init__(self, call, log):
        self.call = call
        self.log = log
        self.connected = False
        self.accepted = False
        self.responded = False
        self.closed = False
        self.messages = asyncio.Queue()
        self.waiter = None

    def event(self, kind, code=0, data=b""):
        """The server's event for this call."""
        if kind == WS_TEXT:
            self.messages.put_nowait({"type": "websocket.receive", "text": data.decode("utf-8")})
        elif kind == WS_BINARY:
            self.messages.put_nowait({"type": "websocket.receive", "bytes": data})
        elif kind in (WS_CLOSE, DISCONNECTED):
            self.closed = True
            reason = data.decode("utf-8", "replace")
            self.messages.put_nowait({"type": "websocket.disconnect", "code": code or 1006, "reason": reason})
        if kind in (WRITABLE, WS_CLOSE, DISCONNECTED):
            waiter, self.waiter = self.waiter, None
            _settle(waiter, None)

    async def receive(self):
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        return await self.messages.get()

    async def send(self, message):
        kind = message["type"]
        if self.closed:
            raise ClientDisconnected("the WebSocket is closed")
        if kind == "websocket.accept":
            if self.accepted or self.responded:
                raise RuntimeError("websocket.accept after the handshake was answered")
            self.accepted = True
            self.call.accept(message.get("subprotocol") or "", message.get("headers", ()))
        elif kind == "websocket.send":
            if not self.accepted:
                raise RuntimeError("websocket.send before websocket.accept")
            text, data = message.get("text"), message.get("bytes")
            payload, is_text = (text.encode("utf-8"), True) if text is not None else (data or b"", False)
            while not self.call.ws_send(is_text, payload):
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
                if self.closed:
                    raise ClientDisconnected("the WebSocket is closed")
        elif kind == "websocket.close":
            if self.accepted:
                self.closed = True
                self.call.ws_close(message.get("code", 1000), message.get("reason") or "")
            elif not self.responded:
                # Closed before accepting: the handshake is refused (uvicorn's 403).
                self._deny(403, [(b"content-length", b"0")], b"")
        elif kind == "websocket.http.response.start":
            if self.accepted or self.responded:
                raise RuntimeError("websocket.http.response.start after the handshake was answered")
            self.responded = True
            self.call.start(message["status"], message.get("headers", ()))
        elif kind == "websocket.http.response.body":
            if not self.responded:
                raise RuntimeError("websocket.http.response.body before its start")
            body = message.get("body", b"")
            if body and not self.call.write(body):
                raise RuntimeError("the denial response is larger than the server's queue")
            if not message.get("more_body", False):
                self.closed = True
                self.call.complete(True)
        else:
            raise RuntimeError("unexpected ASGI message %r" % kind)

    def _deny(self, status, headers, body):
        self.responded = True
        self.closed = True
        self.call.start(status, headers)
        if body:
            self.call.write(body)
        self.call.complete(True)

    async def run(self, app, scope):
        try:
            await app(scope, self.receive, self.send)
        except BaseException as exc:
            if not (self.closed and isinstance(exc, OSError)):
                self.log(40, "Exception in ASGI application\n" + format_exception(exc))
            if not self.accepted and not self.responded:
                self._deny(500, ERROR_HEADERS, ERROR_BODY)
            elif self.accepted and not self.closed:
                self.closed = True
                self.call.ws_close(1011, "")
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        if not self.accepted and not self.responded:
            self._deny(403, [(b"content-length", b"0")], b"")
        elif self.accepted and not self.closed:
            self.closed = True
            self.call.ws_close(1000, "")
