"""Autobahn's sections 9 (limits and performance), 10 (auto-fragmentation), 12 and 13
(permessage-deflate, RFC 7692): large messages and long runs of messages, each echo checked to be
identical (Autobahn checks 9.x by length only).

Sizes are Autobahn's (up to 16 MiB, the server's default ``--websocket-max-message-size``). What
differs, to keep a run to seconds:

- 12.x and 13.x send ``messages`` messages per case (Autobahn: 1000; default here 10), each after
  the echo of the one before, so context takeover is exercised across messages all the same;
- 12.x use generated payloads of the kinds Autobahn's test files are (JSON, a bitmap, German prose
  as bytes, HTML, a PDF-like mix), not the files themselves;
- 13.8-13.10 are extra: the parameters Autobahn's offers never use (the client keeping its context,
  client_max_window_bits=9 and 12, server_max_window_bits=8, inflated with an 8-bit window).
"""

import random

from runner import Case, Echo, F
from wsclient import BINARY, TEXT

KIB, MIB = 1024, 1024 * 1024


def echo(id, desc, count, messages, offer=None, extra=False):
    """A case of ``count`` messages, each sent after the echo of the one before: ``messages()``
    makes them as the case runs."""
    return Case(id, desc, [Echo(messages)], ok=[("echoed", count)], offer=offer, extra=extra)


def section9():
    cases = []
    text, binary = b"BAsd7&jh23", b"\x00\xfe\x23\xfa\xf0"

    def repeat(pattern, n):
        return (pattern * (n // len(pattern) + 1))[:n]

    for sub, (pattern, is_binary) in [(1, (text, False)), (2, (binary, True))]:
        for i, n in enumerate([64 * KIB, 256 * KIB, MIB, 4 * MIB, 8 * MIB, 16 * MIB], 1):
            desc = "%s message of %d bytes" % ("binary" if is_binary else "text", n)
            cases.append(echo("9.%d.%d" % (sub, i), desc, 1,
                              lambda p=pattern, n=n, b=is_binary: [(repeat(p, n), b, None, False)]))
    for sub, (byte, is_binary) in [(3, (b"*", False)), (4, (b"\xfe", True))]:
        for i, size in enumerate([64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB], 1):
            cases.append(echo("9.%d.%d" % (sub, i), "4 MiB in fragments of %d bytes" % size,
                              1, lambda c=byte, b=is_binary, s=size: [(c * (4 * MIB), b, s, False)]))
    for sub, (pattern, opcode) in [(5, (text, TEXT)), (6, (binary, BINARY))]:
        for i, chop in enumerate([64, 128, 256, 512, 1024, 2048], 1):
            cases.append(Case("9.%d.%d" % (sub, i), "1 MiB in one frame, written in chops of %d bytes" % chop,
                              [F(opcode, pattern, payload_len=MIB, chop=chop)],
                              ok=[("message", repeat(pattern, MIB), opcode == BINARY)]))
    for sub, (byte, is_binary) in [(7, (b"*", False)), (8, (b"\xfe", True))]:
        for i, n in enumerate([0, 16, 64, 256, 1024, 4096], 1):
            cases.append(echo("9.%d.%d" % (sub, i), "1000 round trips of %d-byte messages" % n,
                              1000, lambda c=byte, n=n, b=is_binary: [(c * n, b, None, False)] * 1000))
    return cases


def section10():
    return [echo("10.1.1", "64 KiB text sent in frames of 1300 bytes", 1,
                 lambda: [(b"*" * 65536, False, 1300, False)])]


# Autobahn's MSG_SIZES of case12_x_x.py: (message size, frame size of the compressed payload).
MSG_SIZES = [(16, 0), (64, 0), (256, 0), (1024, 0), (4096, 0), (8192, 0), (16384, 0), (32768, 0), (65536, 0),
             (131072, 0), (8192, 256), (16384, 256), (32768, 256), (65536, 256), (131072, 256), (131072, 1024),
             (131072, 4096), (131072, 32768)]


_CORPUS = []


def corpus():
    """The corpus, made once."""
    if not _CORPUS:
        _CORPUS.extend(make_corpus())
    return _CORPUS


def make_corpus():
    """Five payloads of the kinds of Autobahn's 12.x test files, generated (deterministically)."""
    rnd = random.Random(12)
    words = ("Faust Gretchen Mephistopheles Geist Nacht Studierzimmer \u00fcber sch\u00f6n Tr\u00e4ne "
             "Stra\u00dfe Wald H\u00f6hle Kerker Himmel Erde Habe nun ach Philosophie Juristerei und Medizin "
             "leider auch Theologie durchaus studiert mit hei\u00dfem Bem\u00fchn da steh ich nun").split()

    def prose(n):
        out, size = [], 0
        while size < n:
            line = " ".join(rnd.choice(words) for _ in range(rnd.randint(4, 14))) + ",\n"
            out.append(line)
            size += len(line)
        return "".join(out)

    def json_data(n):
        out, size, i = ["["], 0, 0
        while size < n:
            item = ('{"id": %d, "name": "%s", "tags": ["%s", "%s"], "score": %.4f, "active": %s},\n'
                    % (i, rnd.choice(words), rnd.choice(words), rnd.choice(words), rnd.random(),
                       "true" if rnd.random() < 0.5 else "false"))
            out.append(item)
            size += len(item)
            i += 1
        return "".join(out) + "{}]"

    def html(n):
        out, size = ["<html><body>\n"], 0
        while size < n:
            tag = rnd.choice(["p", "div", "li", "td", "span"])
            item = '<%s class="c%d">%s</%s>\n' % (tag, rnd.randint(0, 20), prose(rnd.randint(40, 200)), tag)
            out.append(item)
            size += len(item)
        return "".join(out) + "</body></html>"

    def bitmap(side):
        # A grey-scale picture: smooth gradients with a little noise in the low bits, like a photograph.
        base = bytes((3 * x) & 0xFF for x in range(side))
        low_bits = bytes(i & 7 for i in range(256))
        rows = []
        for y in range(side):
            row = base.translate(bytes((i + 2 * y) & 0xFF for i in range(256)))
            noise = rnd.randbytes(side).translate(low_bits)
            rows.append((int.from_bytes(row, "big") ^ int.from_bytes(noise, "big")).to_bytes(side, "big"))
        return b"BM" + bytes(52) + b"".join(rows)

    def pdf_like(n):
        out, size = [b"%PDF-1.4\n"], 0
        while size < n:
            if rnd.random() < 0.5:
                piece = ("%d 0 obj << /Type /Page /Contents %d 0 R >> endobj\n" % (size, size + 1)).encode()
                piece += prose(300).encode()
            else:
                piece = b"stream\n" + rnd.randbytes(rnd.randint(200, 3000)) + b"\nendstream\n"
            out.append(piece)
            size += len(piece)
        return b"".join(out)

    return [
        ("Large JSON data file (utf8, generated)", json_data(200 * KIB), False),
        ("Bitmap 512x512 grey-scale (binary, generated)", bitmap(512), True),
        ("Human readable text, German (binary, generated)", prose(200 * KIB).encode(), True),
        ("Large HTML file (utf8, generated)", html(200 * KIB), False),
        ("A PDF-like mix of text and compressed streams (binary, generated)", pdf_like(200 * KIB), True),
    ]


def slices(data, size, count):
    """Autobahn's sendOne: consecutive ``size``-long slices of the payload, wrapping around (text is
    sliced by characters, then encoded)."""
    out, at = [], 0
    for _ in range(count):
        end = (at + size) % len(data)
        piece = data[at:end] if end > at else data[at:] + data[:end]
        at = end
        out.append(piece.encode() if isinstance(piece, str) else piece)
    return out


def compressed_cases(prefix, desc, data, binary, offer, count, extra=False):
    cases = []
    for i, (size, fragment) in enumerate(MSG_SIZES, 1):
        def messages(size=size, fragment=fragment):
            return [(m, binary, fragment or None, True) for m in slices(data, size, count)]

        cases.append(echo("%s.%d" % (prefix, i), "%s: %d compressed messages of %d, frames of %s" % (
            desc, count, size, fragment or "any size"), count, messages, offer=offer, extra=extra))
    return cases


def section12(count):
    cases = []
    # autobahn-python's default PerMessageDeflateOffer().
    offer = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
    for j, (desc, data, binary) in enumerate(corpus(), 1):
        cases += compressed_cases("12.%d" % j, desc, data, binary, offer, count)
    return cases


# Section 13's offers, as autobahn-python writes PerMessageDeflateOffer(requestNoContextTakeover,
# requestMaxWindowBits), then the extra ones.
BASE = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
OFFERS_13 = [
    BASE,
    BASE + "; server_no_context_takeover",
    BASE + "; server_max_window_bits=9",
    BASE + "; server_max_window_bits=15",
    BASE + "; server_no_context_takeover; server_max_window_bits=9",
    BASE + "; server_no_context_takeover; server_max_window_bits=15",
    ", ".join([BASE + "; server_no_context_takeover; server_max_window_bits=9",
               BASE + "; server_no_context_takeover", BASE]),
]
EXTRA_OFFERS_13 = [
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits=9",
    "permessage-deflate; client_max_window_bits=12; server_max_window_bits=8",
]


def section13(count):
    desc, data, binary = corpus()[0]
    cases = []
    for j, offer in enumerate(OFFERS_13 + EXTRA_OFFERS_13, 1):
        cases += compressed_cases("13.%d" % j, "%s, offer %r" % (desc, offer), data, binary, offer, count,
                                  extra=j > len(OFFERS_13))
    return cases


SECTIONS = {"9": lambda count: section9(), "10": lambda count: section10(), "12": section12, "13": section13}
