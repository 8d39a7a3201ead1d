"""HTTP/2 conversations with a running rustgun, as Python's `h2` (a strict client) holds them, frame by
frame over a real socket: `python cases.py CASE PORT`. Each case prints what it saw on its last line
(`ok ...` or the outcome the Rust test checks) and exits non-zero on anything unexpected; every wait
is bounded (select with a timeout), so a case never hangs.

Used by tests/integration/http2.rs.
"""
import select
import socket
import sys

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hpack
import hyperframe.frame as hf

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
WAIT = 20


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def request(path, method="GET"):
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]


class Client:
    """A client that gathers each stream's status, body and end, and credits only what it is told to."""

    def __init__(self, port, open_streams=True):
        self.sock, self.conn = connect(port)
        self.status, self.body, self.ended, self.resets, self.trailers = {}, {}, set(), {}, {}
        self.terminated = None
        # Streams whose window the client keeps shut: their bytes are credited to the connection only.
        self.shut = set()
        self.open_streams = open_streams

    def get(self, stream, path):
        self.conn.send_headers(stream, request(path), end_stream=True)
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def turn(self):
        ready, _, _ = select.select([self.sock], [], [], WAIT)
        if not ready:
            sys.exit("the server went quiet")
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.terminated = self.terminated or "reset"
            return
        if not data:
            self.terminated = self.terminated or "closed"
            return
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                self.status[event.stream_id] = dict(event.headers)[":status"]
            elif isinstance(event, h2.events.DataReceived):
                self.body[event.stream_id] = self.body.get(event.stream_id, b"") + event.data
                if event.stream_id in self.shut:
                    self.conn.increment_flow_control_window(event.flow_controlled_length)
                else:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                self.trailers[event.stream_id] = dict(event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.resets[event.stream_id] = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.terminated = (event.error_code, event.last_stream_id)
        self.flush()

    def until(self, done, what):
        while not done():
            if self.terminated:
                sys.exit("the connection ended (%r) while waiting for %s" % (self.terminated, what))
            self.turn()

    def open_window(self, stream):
        """Credits what the stream got so far and everything it gets from now on."""
        self.shut.discard(stream)
        got = len(self.body.get(stream, b""))
        if got:
            self.conn.increment_flow_control_window(got, stream_id=stream)
            self.flush()


def stalled(port):
    """A stream whose client keeps its window shut holds up no other stream on the connection: the
    2 MiB of `argv[3]` (default a WSGI generator's) wait while stream 3 is answered."""
    path = sys.argv[3] if len(sys.argv) > 3 else "/download?mb=2"
    c = Client(port)
    c.shut.add(1)
    c.get(1, path)
    c.until(lambda: len(c.body.get(1, b"")) > 0, "the first bytes of stream 1")
    c.get(3, "/users/3")
    c.until(lambda: 3 in c.ended, "stream 3 while stream 1 waits")
    assert c.status[3] == "200", c.status
    held = len(c.body.get(1, b""))
    assert 1 not in c.ended and held <= 65535, held
    c.open_window(1)
    c.until(lambda: 1 in c.ended, "the rest of stream 1")
    assert len(c.body[1]) == 2 * 1024 * 1024, len(c.body[1])
    print("ok stream 3 answered while stream 1 held %d bytes" % held)


def zero_window(port):
    """A stream whose window never opens is reset (CANCEL) by the minimum rate; the connection lives."""
    c = Client(port)
    c.shut.add(1)
    c.get(1, "/download?mb=2")
    c.until(lambda: 1 in c.resets, "stream 1's reset")
    assert c.resets[1] == h2.errors.ErrorCodes.CANCEL, c.resets
    c.get(3, "/users/3")
    c.until(lambda: 3 in c.ended, "stream 3 after the reset")
    assert c.status[3] == "200", c.status
    print("ok reset CANCEL, then stream 3 answered")


def rapid_reset(port):
    """Streams opened and cancelled at once, in a loop: the server cuts the connection off."""
    c = Client(port)
    for i in range(1000):
        stream = 1 + 2 * i
        c.conn.send_headers(stream, request("/"), end_stream=True)
        c.conn.reset_stream(stream)
        try:
            c.flush()
        except OSError:
            break
    while c.terminated is None:
        c.turn()
    print("terminated %r" % (c.terminated,))


def frames_of(sock, quiet=WAIT):
    """The frames the server sends, as they come; ends when it closes, resets, or is quiet for
    `quiet` seconds."""
    buf = b""
    while True:
        try:
            ready, _, _ = select.select([sock], [], [], quiet)
            data = sock.recv(1 << 20) if ready else b""
        except OSError:
            return
        if not data:
            return
        buf += data
        while len(buf) >= 9:
            frame, length = hf.Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            frame.parse_body(memoryview(buf[9 : 9 + length]))
            buf = buf[9 + length :]
            yield frame


def raw_frames(port, frames, tail_request=False):
    """Sends the preface, SETTINGS and `frames` as bytes; returns the frames the server sent back until
    it closed or went quiet, or, with `tail_request`, until it answered a GET sent afterwards on
    stream 101."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    try:
        sock.sendall(PREFACE + hf.SettingsFrame(0).serialize() + b"".join(f.serialize() for f in frames))
    except OSError:
        pass
    if tail_request:
        block = hpack.Encoder().encode(request("/users/1"))
        sock.sendall(hf.HeadersFrame(101, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    got = []
    for frame in frames_of(sock, 3 if tail_request else WAIT):
        got.append(frame)
        if tail_request and isinstance(frame, hf.DataFrame) and frame.stream_id == 101 and "END_STREAM" in frame.flags:
            break
    return got


def describe(frames):
    out = []
    for f in frames:
        if isinstance(f, hf.GoAwayFrame):
            out.append("GOAWAY:%d" % f.error_code)
        elif isinstance(f, hf.RstStreamFrame):
            out.append("RST:%d:%d" % (f.stream_id, f.error_code))
        elif isinstance(f, hf.HeadersFrame):
            out.append("HEADERS:%d" % f.stream_id)
    return " ".join(out)


def continuation_flood(port):
    """A header block that never ends, CONTINUATION after CONTINUATION: cut off."""
    block = hpack.Encoder().encode(request("/"))
    frames = [hf.HeadersFrame(1, data=block[:4])]
    frames += [hf.ContinuationFrame(1, data=b"\x00" * 100) for _ in range(10_000)]
    print(describe(raw_frames(port, frames)))


def hpack_bomb(port):
    """A small block naming a 4 KB table entry again and again: the stream is reset, the connection
    goes on (stream 101 is answered)."""
    encoder = hpack.Encoder()
    block = encoder.encode(request("/") + [("x-big", "a" * 4000)])
    # Index 62: the entry just added to the dynamic table, repeated far past 64 KiB decoded.
    bomb = block + b"\xbe" * 200
    frames = [hf.HeadersFrame(1, data=bomb, flags=["END_HEADERS", "END_STREAM"])]
    sock_frames = raw_frames(port, frames, tail_request=True)
    print(describe(sock_frames))


def ping_flood(port):
    """PINGs sent as fast as the socket takes them by a client that never reads the answers: cut off."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(PREFACE + hf.SettingsFrame(0).serialize())
    ping = hf.PingFrame(0, opaque_data=b"12345678").serialize() * 1000
    sent = 0
    try:
        for _ in range(4000):
            sock.sendall(ping)
            sent += 1000
    except OSError:
        pass
    codes = sorted(f.error_code for f in frames_of(sock) if isinstance(f, hf.GoAwayFrame))
    print("sent %d pings, GOAWAY codes %s" % (sent, codes))


def idle(port):
    """A connection with no stream: closed after --keep-alive, with GOAWAY NO_ERROR first."""
    frames = raw_frames(port, [])
    print(describe(frames))


def trailers(port):
    """Trailers end a stream (gRPC's status rides in them)."""
    c = Client(port)
    c.get(1, "/trailers")
    c.until(lambda: 1 in c.ended, "stream 1")
    assert c.status[1] == "200", c.status
    assert c.body[1] == b"part one, part two", c.body
    assert c.trailers[1] == {"x-digest": "abc", "grpc-status": "0"}, c.trailers
    print("ok trailers %r" % (c.trailers[1],))


def graceful(port):
    """The worker stops while a stream is in flight: GOAWAY names it, and it finishes. (Raw frames:
    `h2` closes its side on GOAWAY, which RFC 9113 §6.8 does not ask of a client.)"""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    block = hpack.Encoder().encode(request("/download?mb=2"))
    sock.sendall(PREFACE + hf.SettingsFrame(0).serialize()
                 + hf.HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    got, goaway, ended = 0, None, False
    for frame in frames_of(sock):
        if isinstance(frame, hf.SettingsFrame) and "ACK" not in frame.flags:
            sock.sendall(hf.SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(frame, hf.DataFrame) and frame.stream_id == 1:
            if got == 0:
                print("streaming", flush=True)
            got += len(frame.data)
            ended = "END_STREAM" in frame.flags
            if goaway is not None:
                credit = len(frame.data)
                sock.sendall(hf.WindowUpdateFrame(0, window_increment=credit).serialize()
                             + hf.WindowUpdateFrame(1, window_increment=credit).serialize())
            if ended:
                break
        elif isinstance(frame, hf.GoAwayFrame):
            goaway = (frame.error_code, frame.last_stream_id)
            # Open stream 1's window for what it sent so far: the rest may come.
            sock.sendall(hf.WindowUpdateFrame(0, window_increment=got).serialize()
                         + hf.WindowUpdateFrame(1, window_increment=got).serialize())
        elif isinstance(frame, hf.RstStreamFrame):
            sys.exit("stream 1 was reset: %d" % frame.error_code)
    assert goaway == (0, 1), goaway
    assert ended and got == 2 * 1024 * 1024, (ended, got)
    print("ok GOAWAY last_stream 1, stream 1 finished")


def relay(port):
    """`argv[3]` sends `argv[5]` blocks (`block I\n`), each only once this client acknowledges the one
    before through the named pipe `argv[4]/acks`: a server that holds a block back never finishes."""
    path, directory, n = sys.argv[3], sys.argv[4], int(sys.argv[5])
    c = Client(port)
    c.get(1, "%s%schunks=%d&dir=%s" % (path, "&" if "?" in path else "?", n, directory))
    acks = None
    for i in range(n):
        block = ("block %d\n" % i).encode()
        c.until(lambda: c.body.get(1, b"").endswith(block) or 1 in c.ended, "block %d" % i)
        assert c.body.get(1, b"").endswith(block), (i, c.body.get(1))
        if acks is None:
            acks = open(directory + "/acks", "wb", buffering=0)
        acks.write(b"!")
    c.until(lambda: 1 in c.ended, "the end of the stream")
    assert c.status[1] == "200" and c.body[1] == b"".join(b"block %d\n" % i for i in range(n)), c.body
    print("ok %d blocks, each before the next was made" % n)


def huge_window(port):
    """Opens every window as wide as HTTP/2 allows, asks for `argv[3]`, takes one DATA frame and then
    reads nothing until the test closes stdin: what the server queues for it must stay bounded."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    widest = 2**31 - 1
    settings = hf.SettingsFrame(0, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: widest})
    block = hpack.Encoder().encode(request(sys.argv[3]))
    sock.sendall(PREFACE + settings.serialize()
                 + hf.WindowUpdateFrame(0, window_increment=widest - 65535).serialize()
                 + hf.HeadersFrame(1, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    for frame in frames_of(sock):
        if isinstance(frame, hf.DataFrame):
            break
    print("stalled", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    case, port = sys.argv[1].replace("-", "_"), int(sys.argv[2])
    globals()[case](port)
