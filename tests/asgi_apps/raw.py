"""Raw ASGI: the scope as the app sees it, http.disconnect, a large streamed body, no answer, trailers,
a gRPC unary method, and which process imported it."""

import asyncio
import json
import os

# Set by /release, for the request that /hold keeps waiting.
RELEASE = asyncio.Event()

# The process that imported this module: the master under --preload, else the worker itself.
IMPORTED_IN = os.getpid()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                say("raw: lifespan shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path.startswith("/scope"):
        body = await read_all(receive)
        seen = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
        seen["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
        seen["raw_path"] = scope["raw_path"].decode("latin-1")
        seen["query_string"] = scope["query_string"].decode("latin-1")
        seen["body"] = body.decode("latin-1")
        await answer(send, 200, json.dumps(seen).encode())
    elif path == "/disconnect":
        await read_all(receive)
        say("raw: waiting for the client to leave")
        message = await receive()
        say("raw: then came %s" % message["type"])
    elif path == "/big":
        size = int(scope["query_string"] or b"1048576")
        block = bytes(range(256)) * 256
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": sent < size})
    elif path == "/pids":
        await answer(send, 200, json.dumps({"imported_in": IMPORTED_IN, "serving": os.getpid()}).encode())
    elif path == "/hold":
        # Receives nothing until /release says so: a client that sent Expect: 100-continue hears
        # nothing until then.
        say("raw: holding the body back")
        await asyncio.wait_for(RELEASE.wait(), 30)
        RELEASE.clear()
        body = await read_all(receive)
        await answer(send, 200, json.dumps({"bytes": len(body)}).encode())
    elif path == "/release":
        RELEASE.set()
        await answer(send, 200, b"released")
    elif path == "/count":
        # Reads the body message by message, keeping none of it.
        size = pieces = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                say("raw: the client left mid-body after %d bytes" % size)
                return
            size += len(message.get("body", b""))
            pieces += 1
            if not message.get("more_body"):
                break
        await answer(send, 200, json.dumps({"bytes": size, "pieces": pieces}).encode())
    elif path == "/trailers":
        # http.response.trailers: two body parts, then the trailers in two messages.
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain"), (b"trailer", b"x-digest, grpc-status")]})
        await send({"type": "http.response.body", "body": b"part one, ", "more_body": True})
        await send({"type": "http.response.body", "body": b"part two"})
        await send({"type": "http.response.trailers", "headers": [(b"x-digest", b"abc")], "more_trailers": True})
        await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})
    elif path == "/rustgun.Echo/Shout":
        # A gRPC unary call: one length-prefixed message in, its upper case out, the status in trailers.
        body = await read_all(receive)
        message = body[5:5 + int.from_bytes(body[1:5], "big")]
        reply = message.upper()
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"application/grpc")]})
        await send({"type": "http.response.body", "body": b"\0" + len(reply).to_bytes(4, "big") + reply})
        await send({"type": "http.response.trailers",
                    "headers": [(b"grpc-status", b"0"), (b"grpc-message", b"shouted")]})
    elif path == "/silent":
        return
    elif path == "/linger":
        # Waits for the client to leave, then ignores it: only --asgi-disconnect-grace-period ends
        # it, by cancelling it (at once with 0, before it even hears of the disconnect).
        await read_all(receive)
        say("raw: lingering")
        try:
            message = await receive()
            say("raw: lingered past %s" % message["type"])
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            say("raw: cancelled after the client left")
            raise
    elif path == "/after":
        # Django's handler waits for http.disconnect once its response is sent.
        await answer(send, 200, b"done")
        message = await receive()
        say("raw: after the response came %s" % message["type"])
    else:
        await answer(send, 404, b"no such route")


def say(line):
    """One line to the error log in one write: two workers' lines never interleave."""
    os.write(2, (line + "\n").encode())


async def read_all(receive):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def answer(send, status, body):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
