"""Streams that only a server which sends every block at once can finish (PEP 3333: "the server must
not delay the transmission of any block"). Each block is produced only after the client acknowledged
the one before by writing a byte into the named pipe ``DIR/acks`` (``?dir=DIR&chunks=N``).

``/generator`` is a server-sent-events endpoint (a generator); ``/write`` pushes the blocks with the
``write()`` callable that ``start_response`` returns."""

import os
import select
from urllib.parse import parse_qs

ACK_WAIT = 30.0


class _Acks:
    """The client's acknowledgements: one byte per block, read from the pipe as they come. Opened
    read-write, so the open never waits for the client and a missing writer is no end of file."""

    def __init__(self, directory):
        self.fd = os.open(os.path.join(directory, "acks"), os.O_RDWR)

    def wait(self, i):
        ready, _, _ = select.select([self.fd], [], [], ACK_WAIT)
        if not ready or not os.read(self.fd, 1):
            raise TimeoutError(f"block {i} never acknowledged")

    def close(self):
        os.close(self.fd)


def application(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    directory, chunks = query["dir"][0], int(query.get("chunks", ["3"])[0])
    if chunks == 0:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return []
    acks = _Acks(directory)
    if environ["PATH_INFO"] == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            for i in range(chunks):
                write(f"block {i}\n".encode())
                acks.wait(i)
        finally:
            acks.close()
        return []

    def events():
        try:
            for i in range(chunks):
                yield f"data: {i}\n\n".encode()
                acks.wait(i)
        finally:
            acks.close()

    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])
    return events()
