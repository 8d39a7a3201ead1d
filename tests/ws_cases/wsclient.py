"""A frame-level WebSocket client (RFC 6455, RFC 7692 permessage-deflate) for the conformance cases.

It sends exactly the bytes a case asks for — any opcode, RSV bits, fragmentation, masked or not,
chopped into separate writes — and reads the server's frames strictly: a server frame that breaks
the protocol (masked, a reserved bit not negotiated, a bad opcode, a long or fragmented control
frame, a bad close payload) becomes a ``("violation", why)`` event, which fails the case.

Events, as ``Conn.next_event`` returns them:
``("message", data, is_binary)``, ``("ping", data)``, ``("pong", data)``,
``("close", code_or_None, reason_bytes)``, ``("violation", why)``, and at the end of the
stream ``("eof",)``, ``("reset",)`` or ``("timeout",)``.
"""

import base64
import hashlib
import os
import socket
import struct
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DEFLATE_TAIL = b"\x00\x00\xff\xff"


def mask(data, key):
    """XORs ``data`` with the 4-byte masking ``key`` (one big-integer XOR: fast for megabytes)."""
    n = len(data)
    if n == 0:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, key=None):
    """The bytes of one client frame. ``rsv`` is Autobahn's 3-bit value: 4 = RSV1, 2 = RSV2, 1 = RSV3."""
    first = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", first, bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, bit | 127, n)
    if not masked:
        return head + payload
    key = key or os.urandom(4)
    return head + key + mask(payload, key)


def close_payload(code=None, reason=b""):
    """A close frame's payload: nothing, or the 2-byte code and the reason."""
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


def parse_extension(value):
    """``permessage-deflate; a; b=1`` → ``("permessage-deflate", {"a": None, "b": "1"})``."""
    parts = [p.strip() for p in value.split(";")]
    params = {}
    for part in parts[1:]:
        key, _, val = part.partition("=")
        params[key.strip()] = val.strip().strip('"') if _ else None
    return parts[0].lower(), params


class Deflate:
    """The client's half of one negotiated permessage-deflate (RFC 7692 §7).

    ``offer`` is what the client offered (a dict of parameters) and ``params`` what the server
    answered. The client compresses with context takeover unless ``client_no_context_takeover``
    was agreed, with ``client_max_window_bits`` when agreed; it inflates with the window the server
    agreed to use (``server_max_window_bits``, else 15), so a server that used more would fail
    here, and resets its inflater per message when ``server_no_context_takeover`` was agreed.
    """

    def __init__(self, offer, params):
        self.problem = None
        known = {"server_no_context_takeover", "client_no_context_takeover",
                 "server_max_window_bits", "client_max_window_bits"}
        unknown = set(params) - known
        if unknown:
            self.problem = "unknown parameters in the response: %s" % sorted(unknown)
        if "client_max_window_bits" in params and "client_max_window_bits" not in offer:
            self.problem = "client_max_window_bits in the response but not in the offer (RFC 7692 §7.1.2.2)"
        self.client_reset = "client_no_context_takeover" in params
        self.server_reset = "server_no_context_takeover" in params
        if "server_no_context_takeover" in offer and not self.server_reset:
            self.problem = "server_no_context_takeover was requested but not accepted (RFC 7692 §7.1.1.1)"
        if "server_max_window_bits" in offer and "server_max_window_bits" not in params:
            self.problem = "server_max_window_bits was requested but not accepted (RFC 7692 §7.1.2.1)"
        self.client_bits = self._bits(params, "client_max_window_bits", offer)
        self.server_bits = self._bits(params, "server_max_window_bits", offer)
        self.compressor = None
        self.inflater = None

    def _bits(self, params, name, offer):
        value = params.get(name)
        if value is None:
            return 15
        if not value.isdigit() or not 8 <= int(value) <= 15:
            self.problem = "%s=%s is no window size" % (name, value)
            return 15
        wanted = offer.get(name)
        if wanted and int(value) > int(wanted):
            self.problem = "%s=%s is more than the %s offered" % (name, value, wanted)
        return int(value)

    def compress(self, data):
        """One message's compressed payload, the trailing 00 00 ff ff removed (§7.2.1)."""
        if self.compressor is None or self.client_reset:
            # zlib's raw deflate has no 8-bit window; with 9 it never reaches back more than 250 bytes.
            bits = max(9, self.client_bits)
            self.compressor = zlib.compressobj(1, zlib.DEFLATED, -bits)
        out = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        if out.endswith(DEFLATE_TAIL):
            out = out[:-4]
        return out or b"\x00"

    def decompress(self, data):
        """Inflates one compressed message from the server (the tail appended back, §7.2.2)."""
        if self.inflater is None or self.server_reset:
            self.inflater = zlib.decompressobj(wbits=-self.server_bits)
        if self.server_bits == 15:
            return self.inflater.decompress(data + DEFLATE_TAIL)
        # zlib checks a match's distance against the window only for what lies before the current
        # output buffer: inflating into small pieces makes a match farther back than the agreed
        # window (plus at most one piece) fail with "invalid distance too far back".
        out, data = [], data + DEFLATE_TAIL
        while data:
            out.append(self.inflater.decompress(data, 64))
            data = self.inflater.unconsumed_tail
        return b"".join(out)


class HandshakeError(Exception):
    pass


class Conn:
    """One WebSocket connection to the server, frame by frame."""

    def __init__(self, url, offer=None, timeout=10.0, protocols=None):
        """Connects to ``ws://host:port/path`` and does the opening handshake, offering
        ``offer`` (a Sec-WebSocket-Extensions value) and ``protocols`` (a Sec-WebSocket-Protocol
        value) when given."""
        if not url.startswith("ws://"):
            raise ValueError("only ws:// URLs: %s" % url)
        rest = url[len("ws://"):]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.deflate = None
        self.ended = None
        self.fragments = None
        self.compressed_in = 0
        self.response = None
        self.extension = None
        try:
            self._handshake(hostport, path, offer, timeout, protocols)
        except BaseException:
            self.sock.close()
            raise

    def _handshake(self, hostport, path, offer, timeout, protocols):
        key = base64.b64encode(os.urandom(16))
        lines = [
            "GET /%s HTTP/1.1" % path,
            "Host: %s" % hostport,
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: %s" % key.decode(),
            "Sec-WebSocket-Version: 13",
        ]
        if offer:
            lines.append("Sec-WebSocket-Extensions: %s" % offer)
        if protocols:
            lines.append("Sec-WebSocket-Protocol: %s" % protocols)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._head(time.monotonic() + timeout)
        status, _, fields = head.partition("\r\n")
        headers = {}
        for line in fields.split("\r\n"):
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        self.response = head
        self.headers = headers
        if not status.startswith("HTTP/1.1 101"):
            raise HandshakeError("no 101: %r" % status)
        expected = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != [expected]:
            raise HandshakeError("wrong Sec-WebSocket-Accept: %r" % headers.get("sec-websocket-accept"))
        extensions = [e for v in headers.get("sec-websocket-extensions", []) for e in v.split(",") if e.strip()]
        if extensions:
            offered = [parse_extension(o) for o in (offer or "").split(",") if o.strip()]
            if len(extensions) != 1:
                raise HandshakeError("more than one extension accepted: %r" % extensions)
            name, params = parse_extension(extensions[0])
            if name != "permessage-deflate" or not offered:
                raise HandshakeError("an extension that was not offered: %r" % extensions[0])
            # The server accepts one of the offers: the first whose parameters the answer fits.
            fits = [Deflate(o, params) for _, o in offered]
            good = [d for d in fits if d.problem is None]
            if not good:
                raise HandshakeError("bad permessage-deflate response %r: %s" % (extensions[0], fits[0].problem))
            self.deflate = good[0]
            self.extension = extensions[0]

    def _head(self, deadline):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise HandshakeError("connection ended before the response head: %r" % bytes(self.buf))
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        return head

    def _fill(self, deadline, size=1 << 20):
        """Reads more; False (and ``self.ended`` set) at EOF, reset or the deadline."""
        if self.ended:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            self.ended = "timeout"
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(size)
        except socket.timeout:
            self.ended = "timeout"
            return False
        except (ConnectionResetError, ConnectionAbortedError):
            self.ended = "reset"
            return False
        if not chunk:
            self.ended = "eof"
            return False
        self.buf += chunk
        return True

    def poll(self):
        """Reads what has arrived without waiting; True if anything did (or the stream ended)."""
        self.sock.setblocking(False)
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return False
        except (ConnectionResetError, ConnectionAbortedError):
            self.ended = "reset"
            return True
        finally:
            self.sock.setblocking(True)
        if not chunk:
            self.ended = "eof"
            return True
        self.buf += chunk
        return True

    def send(self, data, chop=None):
        """Writes ``data``, in separate writes of ``chop`` bytes when given. False once the server
        has closed its side (the bytes are then lost, as they would be for any client)."""
        try:
            if chop:
                for at in range(0, len(data), chop):
                    self.sock.sendall(data[at:at + chop])
            else:
                self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            return False
        return True

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, chop=None):
        return self.send(frame(opcode, payload, fin, rsv), chop)

    def send_message(self, data, binary, fragment=None, compress=False):
        """One data message, compressed when ``compress`` (RSV1 on its first frame) and split into
        frames of ``fragment`` payload bytes when given; written in one go."""
        opcode = BINARY if binary else TEXT
        rsv = 0
        if compress:
            data = self.deflate.compress(data)
            rsv = 4
        if not fragment or len(data) <= fragment:
            return self.send(frame(opcode, data, True, rsv))
        pieces = [data[at:at + fragment] for at in range(0, len(data), fragment)]
        keys = os.urandom(4 * len(pieces))
        out = []
        for i, piece in enumerate(pieces):
            out.append(frame(opcode if i == 0 else CONTINUATION, piece, i == len(pieces) - 1,
                             rsv if i == 0 else 0, key=keys[4 * i:4 * i + 4]))
        return self.send(b"".join(out))

    def next_event(self, deadline):
        """The next event from the server (see the module docstring), reading until ``deadline``."""
        while True:
            got = self._frame(deadline)
            if got is None:
                return (self.ended or "timeout",)
            first, payload = got
            if payload is None:
                self.ended = "violation"
                return ("violation", "the server masked a frame")
            fin, rsv, opcode = first & 0x80, (first >> 4) & 7, first & 0x0F
            if opcode >= 8:
                if not fin or len(payload) > 125 or rsv:
                    return ("violation", "bad control frame header %#04x, %d bytes" % (first, len(payload)))
                if opcode == CLOSE:
                    return self._close(payload)
                if opcode == PING:
                    return ("ping", payload)
                if opcode == PONG:
                    return ("pong", payload)
                return ("violation", "reserved control opcode %d" % opcode)
            if opcode not in (CONTINUATION, TEXT, BINARY):
                return ("violation", "reserved data opcode %d" % opcode)
            if rsv & 3 or (rsv & 4 and (self.deflate is None or opcode == CONTINUATION)):
                return ("violation", "reserved bits %d on a server frame" % rsv)
            if opcode == CONTINUATION:
                if self.fragments is None:
                    return ("violation", "continuation frame without a message")
                self.fragments[2].append(payload)
            else:
                if self.fragments is not None:
                    return ("violation", "new message inside a fragmented one")
                self.fragments = (opcode, bool(rsv & 4), [payload])
            if fin:
                opcode, compressed, parts = self.fragments
                self.fragments = None
                data = b"".join(parts)
                if compressed:
                    self.compressed_in += 1
                    try:
                        data = self.deflate.decompress(data)
                    except zlib.error as e:
                        return ("violation", "cannot inflate the server's message: %s" % e)
                if opcode == TEXT:
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError:
                        return ("violation", "the server sent text that is not UTF-8")
                return ("message", data, opcode == BINARY)

    def _close(self, payload):
        if not payload:
            return ("close", None, b"")
        if len(payload) == 1:
            return ("violation", "close payload of one byte")
        code = struct.unpack("!H", payload[:2])[0]
        reason = payload[2:]
        try:
            reason.decode("utf-8")
        except UnicodeDecodeError:
            return ("violation", "close reason that is not UTF-8")
        if not (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
            return ("violation", "close code %d may not be sent" % code)
        return ("close", code, reason)

    def _frame(self, deadline):
        """(first byte, payload) of the next server frame, or None when the stream ended."""
        while True:
            buf = self.buf
            if len(buf) >= 2:
                if buf[1] & 0x80:
                    return buf[0], None
                n = buf[1] & 0x7F
                at = 2
                if n == 126 and len(buf) >= 4:
                    n, at = struct.unpack_from("!H", buf, 2)[0], 4
                elif n == 127 and len(buf) >= 10:
                    n, at = struct.unpack_from("!Q", buf, 2)[0], 10
                elif n >= 126:
                    n = None
                if n is not None and len(buf) >= at + n:
                    first = buf[0]
                    payload = bytes(buf[at:at + n])
                    del buf[: at + n]
                    return first, payload
                if n is not None and len(buf) < at + n:
                    if not self._fill(deadline, max(1 << 16, min(at + n - len(buf), 1 << 22))):
                        return None
                    continue
            if not self._fill(deadline):
                return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
