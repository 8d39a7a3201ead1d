"""Autobahn's fuzzingclient cases of sections 1-7 (framing, pings, reserved bits and opcodes,
fragmentation, UTF-8, close handling), case for case after autobahntestsuite/case/*.py, with
Autobahn's ids, payloads and expectations.

Where Autobahn sleeps (``continueLater(1, ...)``) these wait on an event instead: 5.19/5.20 send
their second part once the first pong came back, 6.4.x check the server is still open with a ping
between fragments (``Probe``). Cases marked ``extra`` are not Autobahn's: 7.7.14-16 (1012 Service
Restart, 1013 Try Again Later, 1014 Bad Gateway: registered at IANA, so an endpoint may send them)
and 7.9.10 (1015, which RFC 6455 §7.4.1 says no endpoint may send).
"""

from runner import C, F, Case, FailFast, Poll, Probe, Send, Wait
from wsclient import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, frame

NORMAL, PROTOCOL, INVALID_DATA = 1000, 1002, 1007


def msg(data, binary=False):
    return ("message", data.encode() if isinstance(data, str) else data, binary)


def echo_case(id, desc, steps, ok, **kw):
    """The server must answer with the events ``ok``, then take the client's close cleanly."""
    return Case(id, desc, steps, ok=ok, **kw)


def fail_case(id, desc, steps, ok=(), non_strict=None, codes=(PROTOCOL,)):
    """The server must fail the connection (close with one of ``codes``, or drop TCP)."""
    return Case(id, desc, steps, ok=ok, non_strict=non_strict, by_me=False, codes=codes, clean=False)


def section1():
    cases = []
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for kind, (opcode, byte, binary) in enumerate([(TEXT, b"*", False), (BINARY, b"\xfe", True)], 1):
        for i, n in enumerate(sizes, 1):
            desc = "%s message of %d bytes" % ("binary" if binary else "text", n)
            cases.append(echo_case("1.%d.%d" % (kind, i), desc, [F(opcode, byte * n)], [msg(byte * n, binary)]))
        cases.append(echo_case("1.%d.8" % kind, "65536 bytes in chops of 997", [F(opcode, byte * 65536, chop=997)],
                               [msg(byte * 65536, binary)]))
    return cases


def section2():
    ten = [("payload-%d" % i).encode() for i in range(10)]
    return [
        echo_case("2.1", "ping without payload", [F(PING)], [("pong", b"")]),
        echo_case("2.2", "ping with small text payload", [F(PING, "Hello, world!")], [("pong", b"Hello, world!")]),
        echo_case("2.3", "ping with small binary payload", [F(PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")],
                  [("pong", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")]),
        echo_case("2.4", "ping with 125 bytes", [F(PING, b"\xfe" * 125)], [("pong", b"\xfe" * 125)]),
        fail_case("2.5", "ping with 126 bytes", [F(PING, b"\xfe" * 126)]),
        echo_case("2.6", "ping with 125 bytes, octet-wise chops", [F(PING, b"\xfe" * 125, chop=1)],
                  [("pong", b"\xfe" * 125)]),
        echo_case("2.7", "unsolicited pong without payload, then close", [F(PONG), C(NORMAL)], []),
        echo_case("2.8", "unsolicited pong with payload, then close",
                  [F(PONG, "unsolicited pong payload"), C(NORMAL)], []),
        echo_case("2.9", "unsolicited pong, then ping",
                  [F(PONG, "unsolicited pong payload"), F(PING, "ping payload")], [("pong", b"ping payload")]),
        echo_case("2.10", "10 pings", [F(PING, p) for p in ten], [("pong", p) for p in ten]),
        echo_case("2.11", "10 pings, octet-wise chops", [F(PING, p, chop=1) for p in ten],
                  [("pong", p) for p in ten]),
    ]


def section3():
    hello = "Hello, world!"
    binary = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    return [
        fail_case("3.1", "RSV3 on a text frame", [F(TEXT, hello, rsv=1)]),
        fail_case("3.2", "text, then RSV2 text, then ping", [F(TEXT, hello), F(TEXT, hello, rsv=2), F(PING)],
                  ok=[msg(hello)], non_strict=[]),
        fail_case("3.3", "the same with RSV2|RSV3, each frame written alone",
                  [F(TEXT, hello, sync=True), F(TEXT, hello, rsv=3, sync=True), F(PING, sync=True)],
                  ok=[msg(hello)], non_strict=[]),
        fail_case("3.4", "the same with RSV1, octet-wise chops",
                  [F(TEXT, hello, chop=1), F(TEXT, hello, rsv=4, chop=1), F(PING, chop=1)],
                  ok=[msg(hello)], non_strict=[]),
        fail_case("3.5", "RSV1|RSV3 on a binary frame", [F(BINARY, binary, rsv=5)]),
        fail_case("3.6", "RSV1|RSV2 on a binary frame", [F(BINARY, hello, rsv=6)]),
        fail_case("3.7", "all RSV bits on a close frame", [F(CLOSE, rsv=7)]),
    ]


def section4():
    hello = "Hello, world!"
    cases = []
    for sub, base in [(1, 3), (2, 11)]:
        cases += [
            fail_case("4.%d.1" % sub, "reserved opcode %d" % base, [F(base)]),
            fail_case("4.%d.2" % sub, "reserved opcode %d with payload" % (base + 1),
                      [F(base + 1, "reserved opcode payload")]),
            fail_case("4.%d.3" % sub, "text, reserved opcode %d, ping" % (base + 2),
                      [F(TEXT, hello), F(base + 2), F(PING)], ok=[msg(hello)], non_strict=[]),
            fail_case("4.%d.4" % sub, "text, reserved opcode %d with payload, ping" % (base + 3),
                      [F(TEXT, hello), F(base + 3, hello), F(PING)], ok=[msg(hello)], non_strict=[]),
            fail_case("4.%d.5" % sub, "the same with opcode %d, octet-wise chops" % (base + 4),
                      [F(TEXT, hello, chop=1), F(base + 4, hello, chop=1), F(PING, chop=1)],
                      ok=[msg(hello)], non_strict=[]),
        ]
    return cases


def section5():
    f1, f2 = "fragment1", "fragment2"
    frags = ["fragment%d" % i for i in range(1, 6)]
    pings = ["pongme 1!", "pongme 2!"]

    def two_part(sync):
        return [F(TEXT, frags[0], fin=False, sync=sync), F(CONTINUATION, frags[1], fin=False, sync=sync),
                F(PING, pings[0], sync=sync), Wait(1),
                F(CONTINUATION, frags[2], fin=False, sync=sync), F(CONTINUATION, frags[3], fin=False, sync=sync),
                F(PING, pings[1], sync=sync), F(CONTINUATION, frags[4], sync=sync)]

    expected19 = [("pong", pings[0].encode()), ("pong", pings[1].encode()), msg("".join(frags))]
    bad_starts = [
        ("5.9", "continuation without a message, then text", dict()),
        ("5.10", "the same, each frame alone", dict(sync=True)),
        ("5.11", "the same, octet-wise chops", dict(chop=1)),
    ]
    cases = [
        fail_case("5.1", "fragmented ping", [F(PING, f1, fin=False), F(CONTINUATION, f2)]),
        fail_case("5.2", "fragmented pong", [F(PONG, f1, fin=False), F(CONTINUATION, f2)]),
        echo_case("5.3", "text in 2 fragments", [F(TEXT, f1, fin=False), F(CONTINUATION, f2)], [msg(f1 + f2)]),
        echo_case("5.4", "the same, each frame alone",
                  [F(TEXT, f1, fin=False, sync=True), F(CONTINUATION, f2, sync=True)], [msg(f1 + f2)]),
        echo_case("5.5", "the same, octet-wise chops",
                  [F(TEXT, f1, fin=False, chop=1), F(CONTINUATION, f2, chop=1)], [msg(f1 + f2)]),
    ]
    between = [("pong", b"ping payload"), msg(f1 + f2)]
    for id, desc, kw in [("5.6", "text in 2 fragments, a ping between", dict()),
                         ("5.7", "the same, each frame alone", dict(sync=True)),
                         ("5.8", "the same, octet-wise chops", dict(chop=1))]:
        cases.append(echo_case(id, desc, [F(TEXT, f1, fin=False, **kw), F(PING, "ping payload", **kw),
                                          F(CONTINUATION, f2, **kw)], between))
    for id, desc, kw in bad_starts:
        cases.append(fail_case(id, desc, [F(CONTINUATION, "non-continuation payload", **kw),
                                          F(TEXT, "Hello, world!", **kw)]))
    for id, desc, kw in [("5.12", "unfinished continuation without a message, then text", dict()),
                         ("5.13", "the same, each frame alone", dict(sync=True)),
                         ("5.14", "the same, octet-wise chops", dict(chop=1))]:
        cases.append(fail_case(id, desc, [F(CONTINUATION, "non-continuation payload", fin=False, **kw),
                                          F(TEXT, "Hello, world!", **kw)]))
    cases += [
        fail_case("5.15", "text in 2 fragments, then a continuation and a text", [
            F(TEXT, frags[0], fin=False), F(CONTINUATION, frags[1]), F(CONTINUATION, frags[2], fin=False),
            F(TEXT, frags[3])], ok=[msg(frags[0] + frags[1])], non_strict=[]),
        fail_case("5.16", "twice: continuation, text unfinished, continuation",
                  [F(CONTINUATION, f1, fin=False), F(TEXT, f2, fin=False), F(CONTINUATION, "fragment3")] * 2),
        fail_case("5.17", "twice: finished continuation, text unfinished, continuation",
                  [F(CONTINUATION, f1), F(TEXT, f2, fin=False), F(CONTINUATION, "fragment3")] * 2),
        fail_case("5.18", "a text message inside a fragmented one", [F(TEXT, f1, fin=False), F(TEXT, f2)]),
        echo_case("5.19", "5 fragments with 2 pings between, second half after the first pong", two_part(False),
                  expected19),
        echo_case("5.20", "the same, each frame alone", two_part(True), expected19),
    ]
    return cases


def utf8_tables():
    """Autobahn's createUtf8TestSequences (after Markus Kuhn's UTF-8-test.txt): (title, [(valid, bytes)])."""
    vss = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

    def valid(b):
        try:
            b.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False

    k = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
         b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    lonely = [bytes(x for i in range(lo, hi) for x in (i, 0x20))
              for lo, hi in [(0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7), (0xf8, 0xfb), (0xfc, 0xfd)]]
    nonchars = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in b"\xf0\xf1\xf2\xf3\xf4":
        for z2 in b"\x8f\x9f\xaf\xbf":
            if not (z1 == 0xf4 and z2 != 0x8f):
                for z3 in b"\xbe\xbf":
                    zz = bytes([z1, z2, 0xbf, z3])
                    if zz not in (b"\xf0\x8f\xbf\xbe", b"\xf0\x8f\xbf\xbf"):
                        nonchars.append(zz)
    T, N = True, False
    return [
        ("Some valid UTF-8 sequences", [(T, b"hello\x24world"), (T, b"hello\xc2\xa2world"),
                                        (T, b"hello\xe2\x82\xacworld"), (T, b"hello\xf0\xa4\xad\xa2world"),
                                        (T, vss)]),
        ("All prefixes of a valid UTF-8 string", [(valid(vss[:i]), vss[:i]) for i in range(1, len(vss) + 1)]),
        ("First possible sequence of a certain length", [(T, b"\x00"), (T, b"\xc2\x80"), (T, b"\xe0\xa0\x80"),
                                                        (T, b"\xf0\x90\x80\x80")]),
        ("First possible sequence length 5/6", [(N, b"\xf8\x88\x80\x80\x80"), (N, b"\xfc\x84\x80\x80\x80\x80")]),
        ("Last possible sequence of a certain length", [(T, b"\x7f"), (T, b"\xdf\xbf"), (T, b"\xef\xbf\xbf"),
                                                       (T, b"\xf4\x8f\xbf\xbf")]),
        ("Last possible sequence length 4/5/6", [(N, b"\xf7\xbf\xbf\xbf"), (N, b"\xfb\xbf\xbf\xbf\xbf"),
                                                (N, b"\xfd\xbf\xbf\xbf\xbf\xbf")]),
        ("Other boundary conditions", [(T, b"\xed\x9f\xbf"), (T, b"\xee\x80\x80"), (T, b"\xef\xbf\xbd"),
                                       (T, b"\xf4\x8f\xbf\xbf"), (N, b"\xf4\x90\x80\x80")]),
        ("Unexpected continuation bytes", [(N, b"\x80"), (N, b"\xbf"), (N, b"\x80\xbf"), (N, b"\x80\xbf\x80"),
                                           (N, b"\x80\xbf\x80\xbf"), (N, b"\x80\xbf\x80\xbf\x80"),
                                           (N, b"\x80\xbf\x80\xbf\x80\xbf"), (N, bytes(range(0x80, 0xbf)))]),
        ("Lonely start characters", [(N, s) for s in lonely]),
        ("Sequences with last continuation byte missing", [(N, s) for s in k]),
        ("Concatenation of incomplete sequences", [(N, b"".join(k))]),
        ("Impossible bytes", [(N, b"\xfe"), (N, b"\xff"), (N, b"\xfe\xfe\xff\xff")]),
        ("Examples of an overlong ASCII character", [(N, b"\xc0\xaf"), (N, b"\xe0\x80\xaf"),
                                                     (N, b"\xf0\x80\x80\xaf"), (N, b"\xf8\x80\x80\x80\xaf"),
                                                     (N, b"\xfc\x80\x80\x80\x80\xaf")]),
        ("Maximum overlong sequences", [(N, b"\xc1\xbf"), (N, b"\xe0\x9f\xbf"), (N, b"\xf0\x8f\xbf\xbf"),
                                        (N, b"\xf8\x87\xbf\xbf\xbf"), (N, b"\xfc\x83\xbf\xbf\xbf\xbf")]),
        ("Overlong representation of the NUL character", [(N, b"\xc0\x80"), (N, b"\xe0\x80\x80"),
                                                          (N, b"\xf0\x80\x80\x80"), (N, b"\xf8\x80\x80\x80\x80"),
                                                          (N, b"\xfc\x80\x80\x80\x80\x80")]),
        ("Single UTF-16 surrogates", [(N, b"\xed" + t) for t in [b"\xa0\x80", b"\xad\xbf", b"\xae\x80",
                                                                 b"\xaf\xbf", b"\xb0\x80", b"\xbe\x80",
                                                                 b"\xbf\xbf"]]),
        ("Paired UTF-16 surrogates", [(N, a + b) for a in [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80",
                                                           b"\xed\xaf\xbf"]
                                      for b in [b"\xed\xb0\x80", b"\xed\xbf\xbf"]]),
        ("Non-character code points (valid UTF-8)", [(T, s) for s in nonchars]),
        ("Unicode specials", [(T, b"\xef\xbf" + bytes([c])) for c in range(0xb9, 0xc0)]),
    ]


def section6():
    kappa = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
    mixed = "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode()
    part1, part2 = "Hello-\u00b5@\u00df\u00f6\u00e4".encode(), "\u00fc\u00e0\u00e1-UTF-8!!".encode()
    bad = kappa + b"\xed\xa0\x80" + b"edited"
    p1, p2, p3 = kappa, b"\xf4\x90\x80\x80", b"edited"
    whole = p1 + p2 + p3

    def bytewise(data):
        last = len(data) - 1
        return [F(TEXT if i == 0 else CONTINUATION, data[i:i + 1], fin=i == last) for i in range(len(data))]

    def one_frame_in_parts(parts):
        # One text frame whose payload is written in three parts (Autobahn's beginMessageFrame).
        wire = frame(TEXT, b"".join(parts))
        head = len(wire) - len(b"".join(parts))
        cut1, cut2 = head + len(parts[0]), head + len(parts[0]) + len(parts[1])
        return [Send(wire[:cut1], sync=True), Poll("A"), Send(wire[cut1:cut2], sync=True), FailFast("B"),
                Send(wire[cut2:], sync=True)]

    fast = dict(ok=[("mark", "A")], non_strict=[("mark", "A"), ("mark", "B")], codes=(INVALID_DATA,))
    cases = [
        echo_case("6.1.1", "empty text", [F(TEXT)], [msg(b"")]),
        echo_case("6.1.2", "empty text in 3 empty fragments",
                  [F(TEXT, fin=False), F(CONTINUATION, fin=False), F(CONTINUATION)], [msg(b"")]),
        echo_case("6.1.3", "3 fragments, only the middle one with payload",
                  [F(TEXT, fin=False), F(CONTINUATION, "middle frame payload", fin=False), F(CONTINUATION)],
                  [msg("middle frame payload")]),
        echo_case("6.2.1", "valid UTF-8 in one frame", [F(TEXT, mixed)], [msg(mixed)]),
        echo_case("6.2.2", "valid UTF-8 in 2 fragments cut on a code point",
                  [F(TEXT, part1, fin=False), F(CONTINUATION, part2)], [msg(mixed)]),
        echo_case("6.2.3", "valid UTF-8 in 1-byte fragments", bytewise(mixed), [msg(mixed)]),
        echo_case("6.2.4", "valid UTF-8 (kappa) in 1-byte fragments", bytewise(kappa), [msg(kappa)]),
        fail_case("6.3.1", "invalid UTF-8 in one frame", [F(TEXT, bad)], codes=(INVALID_DATA,)),
        fail_case("6.3.2", "invalid UTF-8 in 1-byte fragments", bytewise(bad), codes=(INVALID_DATA,)),
        fail_case("6.4.1", "fail fast: 3 fragments, the 2nd makes it invalid",
                  [F(TEXT, p1, fin=False), Probe("A"), F(CONTINUATION, p2, fin=False), FailFast("B"),
                   F(CONTINUATION, p3)], **fast),
        fail_case("6.4.2", "fail fast: 3 fragments, the 2nd is the one invalid byte",
                  [F(TEXT, whole[:12], fin=False), Probe("A"), F(CONTINUATION, whole[12:13], fin=False),
                   FailFast("B"), F(CONTINUATION, whole[13:])], **fast),
        fail_case("6.4.3", "fail fast: one frame written in 3 parts, the 2nd makes it invalid",
                  one_frame_in_parts([p1, p2, p3]), **fast),
        fail_case("6.4.4", "fail fast: one frame written in 3 parts, the 2nd is the one invalid byte",
                  one_frame_in_parts([whole[:12], whole[12:13], whole[13:]]), **fast),
    ]
    for i, (title, seqs) in enumerate(utf8_tables(), 5):
        for j, (ok, data) in enumerate(seqs, 1):
            id, desc = "6.%d.%d" % (i, j), "%s: %s" % (title, data.hex())
            if ok:
                cases.append(echo_case(id, desc, [F(TEXT, data)], [msg(data)]))
            else:
                cases.append(fail_case(id, desc, [F(TEXT, data)], codes=(INVALID_DATA,)))
    return cases


def section7():
    hello = "Hello World!"
    bad_reason = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"
    cases = [
        echo_case("7.1.1", "text, then a clean close", [F(TEXT, hello)], [msg(hello)]),
        echo_case("7.1.2", "close, then close again", [C(NORMAL), F(CLOSE)], []),
        echo_case("7.1.3", "close, then ping", [C(NORMAL), F(PING)], []),
        echo_case("7.1.4", "close, then text", [C(NORMAL), F(TEXT, hello)], []),
        echo_case("7.1.5", "a fragment, close, the last fragment", [F(TEXT, "fragment1", fin=False), C(NORMAL),
                                                                     F(CONTINUATION, "fragment2")], []),
        Case("7.1.6", "256 KiB text, small text, close, ping", [
            F(TEXT, "BAsd7&jh23", payload_len=256 * 1024), F(TEXT, hello), C(NORMAL), F(PING)],
            ok=[msg(hello)], non_strict=[], informational=True),
        echo_case("7.3.1", "close with an empty payload", [C()], []),
        Case("7.3.2", "close with a 1-byte payload", [F(CLOSE, b"a", closes=True)], ok=[], codes=(PROTOCOL,),
             clean=False),
        echo_case("7.3.3", "close 1000 without a reason", [C(NORMAL)], []),
        echo_case("7.3.4", "close 1000 with a reason", [C(NORMAL, hello)], []),
        echo_case("7.3.5", "close 1000 with a 123-byte reason", [C(NORMAL, "*" * 123)], []),
        Case("7.3.6", "close 1000 with a 124-byte reason (126-byte control frame)", [C(NORMAL, "*" * 124)],
             ok=[], codes=(PROTOCOL,), clean=False),
        Case("7.5.1", "close 1000 with a reason that is not UTF-8", [C(NORMAL, bad_reason)], ok=[],
             codes=(PROTOCOL, INVALID_DATA), clean=False),
    ]
    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
    for i, code in enumerate(valid + [1012, 1013, 1014], 1):
        cases.append(Case("7.7.%d" % i, "close with valid code %d" % code, [C(code)], ok=[], codes=(NORMAL, code),
                          extra=i > len(valid)))
    invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
    for i, code in enumerate(invalid + [1015], 1):
        cases.append(Case("7.9.%d" % i, "close with invalid code %d" % code, [C(code)], ok=[], codes=(PROTOCOL,),
                          clean=False, extra=i > len(invalid)))
    for i, code in enumerate([5000, 65535], 1):
        cases.append(Case("7.13.%d" % i, "close with code %d (outside the ranges)" % code, [C(code)], ok=[],
                          codes=(NORMAL, code, PROTOCOL), clean=False, informational=True))
    return cases


SECTIONS = {"1": section1, "2": section2, "3": section3, "4": section4, "5": section5, "6": section6,
            "7": section7}
