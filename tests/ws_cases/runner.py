"""How one conformance case runs and is judged, after Autobahn's ``Case`` (case/case.py).

A case is a list of steps (frames to send, waits on what comes back) and its expectations: the
events the server must produce (``ok``, or the ``non_strict`` alternative Autobahn also accepts),
who must close (the client after those events, ``by_me``, or the server failing the connection),
with which codes, and whether the close must be clean (close frames both ways, then the server
closes TCP). Every case gets its own connection and one deadline, so it always ends.

Autobahn waits on timers ("wait 1 s, then send the rest"); here every wait is on an event: a
pong, an echo, the server's close. The one exception is the fail-fast check of 6.4.x
(``FailFast``), which waits up to ``FAIL_FAST_WAIT`` for a close that should come at once and
records, as Autobahn does, whether it came before the rest of the message was sent.
"""

import hashlib
import time

from wsclient import CLOSE, PING, Conn, HandshakeError, close_payload, frame

FAIL_FAST_WAIT = 2.0

OK, NON_STRICT, INFORMATIONAL, FAILED = "OK", "NON-STRICT", "INFORMATIONAL", "FAILED"


class Send:
    """Writes bytes: coalesced with its neighbours into one write unless ``chop`` (separate
    writes of that many bytes) or ``sync`` (a write of its own) is given. ``closes`` marks a close
    frame, after which the client counts as having started the closing handshake."""

    def __init__(self, data, chop=None, sync=False, closes=False):
        self.data, self.chop, self.sync, self.closes = data, chop, sync, closes


def F(opcode, payload=b"", fin=True, rsv=0, chop=None, sync=False, payload_len=None, closes=False):
    """One frame, Autobahn's ``sendFrame``: ``payload_len`` repeats the payload to that length.
    A close frame sent this way does not start the closing handshake (``closes``) unless told."""
    if isinstance(payload, str):
        payload = payload.encode()
    if payload_len is not None:
        payload = (payload * (payload_len // max(1, len(payload)) + 1))[:payload_len]
    return Send(frame(opcode, payload, fin, rsv), chop, sync, closes)


def C(code=None, reason=b"", **kw):
    """A close frame with ``code`` and ``reason``, which starts the closing handshake (Autobahn's
    ``sendCloseFrame``)."""
    return F(CLOSE, close_payload(code, reason), closes=True, **kw)


class Wait:
    """Reads until ``n`` events have been seen (e.g. the pong that Autobahn's 1 s timer awaits)."""

    def __init__(self, n):
        self.n = n


class Probe:
    """Checkpoint ``tag`` between fragments: a ping whose pong proves the server still listens,
    then ("mark", tag) in the trace. The probe's pong is not part of the trace."""

    def __init__(self, tag):
        self.tag = tag


class Poll:
    """Checkpoint ``tag`` inside a frame (no ping possible there): ("mark", tag) unless the server
    has already closed by now (looked at without waiting)."""

    def __init__(self, tag):
        self.tag = tag


class FailFast:
    """Checkpoint ``tag`` after the bytes that make a message invalid: waits up to FAIL_FAST_WAIT
    for the server to fail the connection; ("mark", tag) if it did not (NON-STRICT)."""

    def __init__(self, tag):
        self.tag = tag


class Echo:
    """Sends messages one at a time, each after the echo of the one before (Autobahn 9.7, 12, 13):
    ``messages`` makes the list of (data, binary, fragment_size, compress) when the case runs (so
    that the large payloads of the cases not running take no memory). Adds ("echoed", n) to the
    trace if every echo was identical, else ("mismatch", index, what came)."""

    def __init__(self, messages):
        self.messages = messages


class Case:
    def __init__(self, id, desc, steps, ok=(), non_strict=None, by_me=True, codes=(1000,), clean=True,
                 informational=False, offer=None, extra=False):
        self.id, self.desc, self.steps = id, desc, steps
        self.ok = list(ok) if ok is not None else None
        self.non_strict = list(non_strict) if non_strict is not None else None
        self.by_me, self.codes, self.clean = by_me, tuple(codes), clean
        self.informational = informational
        self.offer = offer
        self.extra = extra

    @property
    def section(self):
        return self.id.split(".")[0]

    def expectation(self):
        if self.informational:
            return "informational: any behaviour, recorded"
        if self.by_me:
            what = "events %s" % summary(self.ok) if self.ok else "no events"
            if self.non_strict is not None:
                what += " (or %s: NON-STRICT)" % summary(self.non_strict)
            closing = "then the client's close is answered with %s" % "/".join(map(str, self.codes))
            return "%s, %s%s" % (what, closing, " and the server closes TCP" if self.clean else "")
        what = "events %s then " % summary(self.ok) if self.ok else ""
        if self.non_strict is not None:
            what = "events %s (or %s: NON-STRICT), then " % (summary(self.ok), summary(self.non_strict))
        return "%sthe server fails the connection: close %s or TCP drop" % (what, "/".join(map(str, self.codes)))


def describe(event):
    """A short, printable form of an event (payloads over 40 bytes by length and SHA-1)."""
    kind = event[0]
    if kind in ("message", "ping", "pong"):
        data = event[1]
        if len(data) <= 40:
            shown = repr(data)
        else:
            shown = "%d bytes sha1 %s" % (len(data), hashlib.sha1(data).hexdigest()[:12])
        if kind == "message":
            return "%s %s" % ("binary" if event[2] else "text", shown)
        return "%s %s" % (kind, shown)
    return " ".join(str(x) for x in event)


def summary(trace):
    return "[" + ", ".join(describe(e) for e in trace) + "]"


class Run:
    """One case on its connection: what was seen, and the closing handshake as it went."""

    def __init__(self, case, url, timeout):
        self.case = case
        self.deadline = time.monotonic() + timeout
        self.trace = []
        self.server_close = None  # the server's close event
        self.server_closed_first = False
        self.client_closed_first = False
        self.sent_close = False
        self.end = None  # eof, reset, timeout or violation
        self.violation = None
        self.conn = Conn(url, offer=case.offer, timeout=timeout)

    @property
    def over(self):
        return self.server_close is not None or self.end is not None

    def read(self, deadline=None):
        """Takes one event; False once the connection is over (or at the deadline)."""
        if self.over:
            return False
        event = self.conn.next_event(min(deadline or self.deadline, self.deadline))
        kind = event[0]
        if kind in ("message", "ping", "pong"):
            self.trace.append(event)
            return True
        if kind == "close":
            self.server_close = event
            if not self.sent_close:
                self.server_closed_first = True
                # Echo the close, as Autobahn does (with its code, if it had one).
                self.conn.send(frame(CLOSE, close_payload(event[1])))
                self.sent_close = True
            return False
        if kind == "violation":
            self.violation = event[1]
            self.end = "violation"
            return False
        if kind == "timeout" and deadline is not None and time.monotonic() < self.deadline:
            self.conn.ended = None  # only this wait timed out
            return False
        self.end = kind
        return False

    def send(self, steps):
        data = b"".join(s.data for s in steps)
        if any(s.closes for s in steps) and not self.sent_close:
            self.sent_close = True
            if self.server_close is None:
                self.client_closed_first = True
        chop = steps[0].chop if len(steps) == 1 else None
        self.conn.send(data, chop)

    def close_after(self, n=None):
        """Autobahn's ``finishWhenDone``: once the expected events are in, the client closes."""
        while not self.over and n is not None and len(self.trace) < n:
            if not self.read():
                break
        if not self.over and not self.sent_close:
            self.send([C(1000)])

    def finish(self):
        """Reads to the server's close and on to the end of the TCP stream."""
        while self.server_close is None and self.end is None:
            self.read()
        if self.end is None:
            # After its close frame the server closes TCP: any other frame is a violation.
            event = self.conn.next_event(self.deadline)
            if event[0] in ("eof", "reset", "timeout"):
                self.end = event[0]
            else:
                self.violation = "a frame after the server's close: %s" % describe(event)
                self.end = "violation"
        self.conn.close()

    def step(self, step, pending):
        """Runs one step; Send steps wait in ``pending`` to be written together."""
        if isinstance(step, Send):
            if step.chop or step.sync:
                self.flush(pending)
                self.send([step])
            else:
                pending.append(step)
            return
        self.flush(pending)
        if isinstance(step, Wait):
            while len(self.trace) < step.n and self.read():
                pass
        elif isinstance(step, Probe):
            tag = ("probe-%s" % step.tag).encode()
            self.conn.send(frame(PING, tag))
            while self.read():
                if self.trace and self.trace[-1] == ("pong", tag):
                    self.trace.pop()
                    self.trace.append(("mark", step.tag))
                    break
        elif isinstance(step, Poll):
            if not self.conn.poll():
                self.trace.append(("mark", step.tag))
        elif isinstance(step, FailFast):
            self.read(time.monotonic() + FAIL_FAST_WAIT)
            if not self.over:
                self.trace.append(("mark", step.tag))
        elif isinstance(step, Echo):
            self.echo(step.messages())

    def flush(self, pending):
        if pending:
            self.send(pending)
            pending.clear()

    def echo(self, messages):
        for i, (data, binary, fragment, compress) in enumerate(messages):
            self.conn.send_message(data, binary, fragment, compress)
            before = len(self.trace)
            while len(self.trace) == before and self.read():
                pass
            if len(self.trace) == before:
                self.trace.append(("mismatch", i, "no echo"))
                return
            got = self.trace.pop()
            if got != ("message", data, binary):
                wanted = describe(("message", data, binary))
                self.trace.append(("mismatch", i, "%s for %s" % (describe(got), wanted)))
                return
        self.trace.append(("echoed", len(messages)))


def run(case, url, timeout):
    """Runs ``case`` against ``url``; returns its result record."""
    try:
        r = Run(case, url, timeout)
    except (HandshakeError, OSError) as e:
        return result(case, False, FAILED, "handshake failed: %s" % e, None)
    if case.offer and r.conn.deflate is None:
        r.conn.close()
        return result(case, False, FAILED, "permessage-deflate was not negotiated: %r" % r.conn.response, None)
    pending = []
    for step in case.steps:
        if r.over:
            break  # like Autobahn: nothing more is sent once the connection is closing
        r.step(step, pending)
    if not r.over:
        r.flush(pending)
    if case.by_me:
        r.close_after(len(case.ok) if case.ok is not None and case.non_strict is None else None)
    r.finish()
    record = judge(case, r)
    record["compressed_replies"] = r.conn.compressed_in
    return record


def judge(case, r):
    """Autobahn's ``onConnectionLost``: the events against the expectations, then the close."""
    if r.trace == case.ok:
        behavior = OK
    elif case.non_strict is not None and r.trace == case.non_strict:
        behavior = NON_STRICT
    else:
        behavior = FAILED
    code = r.server_close[1] if r.server_close else None
    if r.server_close:
        closing = "close %s" % (code if code is not None else "(no code)")
    elif r.end in ("eof", "reset"):
        closing = "TCP drop without a close frame"
    elif r.end == "timeout":
        closing = "no close frame before the deadline"
    else:
        closing = "stopped at the violation"
    if r.server_close and r.end in ("eof", "reset"):
        closing += ", then the server closed TCP"
    problem = None
    if r.violation:
        problem = "server broke the protocol: %s" % r.violation
    elif case.by_me and r.server_closed_first:
        problem = "the server closed first (the wrong endpoint)"
    elif not case.by_me and r.client_closed_first and r.server_close is not None:
        problem = "the server did not fail the connection"
    elif not case.by_me and r.end == "timeout" and r.server_close is None:
        problem = "the server did not fail the connection"
    elif code is not None and code not in case.codes:
        problem = "wrong close code %d (wanted %s)" % (code, "/".join(map(str, case.codes)))
    elif case.clean and (r.server_close is None or r.end not in ("eof", "reset")):
        problem = "not a clean close"
    elif r.end == "timeout":
        problem = "the server did not close TCP"
    seen = "%s; %s" % (summary(r.trace), closing)
    if case.informational:
        passed = r.violation is None
        return result(case, passed, INFORMATIONAL if passed else FAILED, seen if passed else problem, closing)
    passed = behavior != FAILED and problem is None
    if not passed:
        seen = "%s: %s" % (problem or "events differ", seen)
    return result(case, passed, behavior if passed else FAILED, seen, closing)


def result(case, passed, behavior, seen, closing):
    return {"id": case.id, "passed": passed, "behavior": behavior, "expectation": case.expectation(),
            "seen": seen, "closing": closing, "extra": case.extra, "compressed_replies": 0}
