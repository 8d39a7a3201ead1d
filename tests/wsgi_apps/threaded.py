"""A WSGI app whose import starts a thread, as an SDK's background sender does (tests/integration/fork.rs).

Under --preload that thread lives in the master: it waits on the FIFO named by $THREADED_FIFO and
answers each line it reads with "threaded: heard LINE in pid PID" on stderr, which it can only do
if the master let go of the GIL after the import. Workers inherit the module but not the thread.
"""

import os
import sys
import threading


def _listen(path):
    # Each writer's lines, until the test stops writing; a new writer opens it again.
    for _ in range(16):
        with open(path) as fifo:
            for line in fifo:
                sys.stderr.write(f"threaded: heard {line.strip()} in pid {os.getpid()}\n")
                sys.stderr.flush()


listener = threading.Thread(target=_listen, args=(os.environ["THREADED_FIFO"],), daemon=True)
listener.start()


def app(environ, start_response):
    body = f"listener alive: {listener.is_alive()} in pid {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
