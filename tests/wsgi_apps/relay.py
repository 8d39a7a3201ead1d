"""Streams that only a server which sends every block at once can finish (PEP 3333: "the server must
not delay the transmission of any block"). Each block is produced only after the client acknowledged
the one before by creating the file ``DIR/ack-I`` (``?dir=DIR&chunks=N``).

``/generator`` is a server-sent-events endpoint (a generator); ``/write`` pushes the blocks with the
``write()`` callable that ``start_response`` returns."""

import os
import time
from urllib.parse import parse_qs

ACK_WAIT = 30.0


def _await_ack(directory, i):
    path = os.path.join(directory, f"ack-{i}")
    deadline = time.monotonic() + ACK_WAIT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"block {i} never acknowledged")
        time.sleep(0.001)


def application(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    directory, chunks = query["dir"][0], int(query.get("chunks", ["3"])[0])
    if environ["PATH_INFO"] == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        for i in range(chunks):
            write(f"block {i}\n".encode())
            _await_ack(directory, i)
        return []

    def events():
        for i in range(chunks):
            yield f"data: {i}\n\n".encode()
            _await_ack(directory, i)

    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
    return events()
