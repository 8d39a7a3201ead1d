"""What each hop between a server and an asyncio app costs, per request, on this machine.

The two ways a host can drive an ASGI app (docs/asgi.md):
- threads: the server's thread hands the request to the thread running the asyncio loop
  (call_soon_threadsafe, which writes the loop's self-pipe) and waits for the answer on a lock;
- owned: the asyncio loop owns the thread and calls the server's step from a reader callback, so a
  request is a task created in that callback (what libasgi.so does).

Each is timed over N requests of a no-op app coroutine, with asyncio's loop and with uvloop.
Run: target/pyenv/bin/python benches/asgi_hops.py [N]
"""

import asyncio
import os
import sys
import threading
import time


async def app():
    return b"hello"


def threads(make_loop, n):
    loop = make_loop()
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    t = threading.Thread(target=run)
    t.start()
    ready.wait()
    done = threading.Lock()

    def start():
        task = loop.create_task(app())
        task.add_done_callback(lambda _: done.release())

    start_time = time.perf_counter()
    for _ in range(n):
        done.acquire()
        loop.call_soon_threadsafe(start)
        done.acquire()
        done.release()
    elapsed = time.perf_counter() - start_time
    loop.call_soon_threadsafe(loop.stop)
    t.join()
    loop.close()
    return elapsed / n


def owned(make_loop, n):
    loop = make_loop()
    rd, wr = os.pipe()
    os.set_blocking(rd, False)
    left = [n]
    start_time = [0.0]

    def finished(_):
        left[0] -= 1
        if left[0] == 0:
            loop.stop()
        else:
            os.write(wr, b"x")

    def step():
        # The server's step: the fd said a request is there; handle makes its task.
        os.read(rd, 64)
        loop.create_task(app()).add_done_callback(finished)

    loop.add_reader(rd, step)
    start_time[0] = time.perf_counter()
    os.write(wr, b"x")
    loop.run_forever()
    elapsed = time.perf_counter() - start_time[0]
    loop.remove_reader(rd)
    loop.close()
    os.close(rd)
    os.close(wr)
    return elapsed / n


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    loops = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop

        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        pass
    print("| loop | thread hop (µs/request) | loop owns the thread (µs/request) |")
    print("|---|---|---|")
    for name, make in loops:
        print("| %s | %.1f | %.1f |" % (name, threads(make, n) * 1e6, owned(make, n) * 1e6))


if __name__ == "__main__":
    main()
