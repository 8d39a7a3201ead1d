"""Differential run against uvicorn: the same raw HTTP requests and WebSocket sessions go to rustgun
(already serving the app, at ``--rustgun HOST:PORT``) and to a uvicorn this script starts on the
same app, and the answers are compared after the normalisations in ``KNOWN`` (each is a difference
docs/asgi.md lists with its reason). Prints one JSON report on stdout:
``{"compared": {"http": N, "websocket": M}, "differences": [...], "known": [...]}``; no differences
means every status, header (but Date and Server), body, scope and WebSocket event matched, except
in the cases listed as differing by design (``known``, each with its reason), which must differ.

Stdlib only, plus uvicorn in the same interpreter; every socket has a timeout, so a run ends.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ws_cases"))
import wsclient  # noqa: E402

TIMEOUT = 10.0


# --- HTTP -------------------------------------------------------------------------------------------

def exchange(port, request, then=None):
    """Sends ``request`` on a fresh connection; with ``then``, waits for the 100 Continue first and
    sends ``then`` after it. Returns every byte the server sent until it closed."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        sock.sendall(request)
        got = b""
        if then is not None:
            while b"\r\n\r\n" not in got:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
            sock.sendall(then)
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        return got
    finally:
        sock.close()


def dechunk(body):
    """The payload of a chunked body, and its trailer lines."""
    out = b""
    while True:
        line, _, body = body.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return out, sorted(t.lower() for t in body.split(b"\r\n") if t)
        out, body = out + body[:size], body[size + 2:]


def parse(raw, head_request):
    """Every response in ``raw``: status line, headers (lower-cased names, sorted, without Date and
    Server), and the payload (dechunked)."""
    responses = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            responses.append({"unparsed": raw.decode("latin-1")})
            break
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0]
        fields = [(n.strip().lower(), v.strip()) for n, _, v in (line.partition(":") for line in lines[1:])]
        headers = dict()
        for name, value in fields:
            headers.setdefault(name, []).append(value)
        version, code = status.split()[:2]
        code = int(code)
        shown = sorted([n, v] for n, v in fields if n not in ("date", "server"))
        # Reason phrases are free text (RFC 9112 4): uvicorn takes Python's, which change between
        # versions (422 "Unprocessable Entity" before 3.13), rustgun RFC 9110's.
        response = {"status": "%s %d" % (version, code), "headers": shown}
        if 100 <= code < 200:
            responses.append(response)
            raw = rest
            continue
        if head_request or code in (204, 304):
            body, raw = b"", rest
        elif headers.get("transfer-encoding") == ["chunked"]:
            body, response["trailers"] = dechunk(rest)
            raw = b""  # one response per connection after the interim ones
        elif "content-length" in headers:
            n = int(headers["content-length"][0])
            body, raw = rest[:n], rest[n:]
        else:
            body, raw = rest, b""
        response["body"] = body
        responses.append(response)
        if head_request:
            break
    return responses


def normalise_scope(scope):
    """A scope as /scope shows it, without what differs by design (docs/asgi.md, "What differs from
    uvicorn") or by port: the spec version (rustgun implements 2.4, where a send after the client
    left raises) and the extensions (rustgun offers http.response.pathsend and trailers)."""
    for key in ("client", "server"):
        if isinstance(scope.get(key), list):
            scope[key] = [scope[key][0], "port"]
    scope["asgi"].pop("spec_version", None)
    scope.pop("extensions", None)
    return scope


def shown(response, scope, drop):
    """A response as compared: a scope normalised, the keys in ``drop`` left out of a JSON body."""
    body = response.pop("body", b"")
    if scope:
        # The JSON's length depends on the ports and versions normalised away.
        response["headers"] = [h for h in response["headers"] if h[0] != "content-length"]
        if body:
            response["scope"] = normalise_scope(json.loads(body))
    elif drop and body:
        seen = json.loads(body)
        response["json"] = {k: v for k, v in seen.items() if k not in drop}
        response["headers"] = [h for h in response["headers"] if h[0] != "content-length"]
    else:
        response["body"] = body.decode("latin-1") if len(body) < 2048 else "%d bytes" % len(body)
        response["body_bytes"] = len(body)
    return response


def case(name, request, then=None, head=False, scope=False, drop=(), known=None):
    """One HTTP case: the raw request (on its own connection), the body sent after the 100 Continue,
    whether it is a HEAD, whether the body is a scope; ``drop`` names keys of a JSON body that vary
    from run to run (how the body happened to be split); ``known`` is the reason, as docs/asgi.md
    gives it, when the servers answer differently by design."""
    return {"name": name, "request": request, "then": then, "head": head, "scope": scope, "drop": drop,
            "known": known}


HTTP_1_0_KEEP_ALIVE = ("rustgun keeps an HTTP/1.0 connection that asked for keep-alive open (RFC 9112 "
                       "9.3, as gunicorn and nginx do); uvicorn closes it")

RAW_CASES = [
    case("scope of a GET with a query and repeated fields",
         b"GET /scope?a=1&b=%20x HTTP/1.1\r\nHost: t\r\nX-One: 1\r\nx-two: a\r\nX-Two: b\r\nConnection: close\r\n\r\n",
         scope=True),
    case("scope of a percent-encoded path",
         b"GET /scope/caf%C3%A9/a%2Fb HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", scope=True),
    case("scope of an HTTP/1.0 request", b"GET /scope HTTP/1.0\r\nHost: t\r\n\r\n", scope=True),
    case("scope of a POST with a Content-Length body",
         b"POST /scope HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
         b"Connection: close\r\n\r\nhello world", scope=True),
    case("scope of a POST with a chunked body",
         b"POST /scope HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
         b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", scope=True),
    case("HEAD of the scope", b"HEAD /scope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", head=True,
         scope=True),
    case("a 100 KB response with a Content-Length",
         b"GET /big?100000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("a 300 KB upload read message by message",
         b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 300000\r\nConnection: close\r\n\r\n" + b"u" * 300000,
         drop=("pieces",)),
    case("Expect: 100-continue, the body after the 100",
         b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
         then=b"12345"),
    case("a route the app does not know", b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("an app that returns without a response",
         b"GET /silent HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("two pipelined requests",
         b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\nGET /big?10 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("HTTP/1.0 keep-alive",
         b"GET /big?10 HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\nGET /nope HTTP/1.0\r\nHost: t\r\n\r\n",
         known=HTTP_1_0_KEEP_ALIVE),
]

FASTAPI_CASES = [
    case("a path parameter", b"GET /users/7 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("a path parameter that is not an int (422)",
         b"GET /users/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("query parameters", b"GET /items?q=a%20b&limit=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("a JSON body",
         b"POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
         b'Connection: close\r\n\r\n{"name": "pen", "price": 2}'),
    case("a form",
         b"POST /form HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
         b"Content-Length: 15\r\nConnection: close\r\n\r\nname=ann&age=31"),
    case("a streamed response", b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("a sync route", b"GET /sync HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("an exception in a route", b"GET /boom HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    case("a file", b"GET /file HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
]


def compare(name, answers, known, report):
    """Files one case's two answers: a difference, a known one, or a known one that vanished."""
    if answers[0] != answers[1]:
        entry = {"case": name, "rustgun": answers[0], "uvicorn": answers[1]}
        if known:
            report["known"].append(dict(entry, reason=known))
        else:
            report["differences"].append(entry)
    elif known:
        report["differences"].append({"case": name, "listed as differing but the same": known})


def run_http(cases, ports, report):
    for c in cases:
        answers = []
        for port in ports:
            raw = exchange(port, c["request"], c["then"])
            answers.append([shown(r, c["scope"], c["drop"]) for r in parse(raw, c["head"])])
        compare(c["name"], answers, c["known"], report)
    report["compared"]["http"] += len(cases)


# --- WebSocket ----------------------------------------------------------------------------------------

def session(port, path, steps, protocols=None, offer=None):
    """Runs one WebSocket session; returns its transcript: the handshake's outcome, then for each step
    what the client sent and every event until the step's answer came."""
    transcript = []
    try:
        conn = wsclient.Conn("ws://127.0.0.1:%d%s" % (port, path), offer=offer, protocols=protocols,
                             timeout=TIMEOUT)
    except wsclient.HandshakeError as e:
        return [["refused", str(e)]]
    picked = conn.headers.get("sec-websocket-protocol")
    transcript.append(["accepted", picked, conn.extension is not None])
    deadline = time.monotonic() + TIMEOUT
    try:
        for step in steps:
            kind = step[0]
            if kind == "text":
                conn.send_message(step[1].encode(), False, fragment=step[2] if len(step) > 2 else None)
            elif kind == "binary":
                conn.send_message(step[1], True, fragment=step[2] if len(step) > 2 else None)
            elif kind == "ping":
                conn.send_frame(wsclient.PING, step[1])
            elif kind == "close":
                conn.send_frame(wsclient.CLOSE, wsclient.close_payload(step[1], step[2]))
            elif kind == "raw":
                conn.send(step[1])
            events = []
            while True:
                event = conn.next_event(deadline)
                events.append([e.decode("latin-1") if isinstance(e, bytes) else e for e in event])
                if event[0] in ("message", "pong", "close", "eof", "reset", "timeout", "violation"):
                    break
            transcript.append([kind, events])
            if events[-1][0] != "message" and events[-1][0] != "pong":
                break
        # After a close, the server ends the TCP connection.
        if transcript[-1][1][-1][0] == "close":
            end = conn.next_event(deadline)
            transcript.append(["after the close", end[0]])
    finally:
        conn.sock.close()
    return transcript


FREE_REASON = ("the reason of a close for a protocol error is free text (RFC 6455 7.1.6): rustgun says "
               "what was wrong, uvicorn's websockets library says less; the codes agree")


def ws_cases(app):
    if app == "ws_echo:app":
        return [
            ("text, binary and a close", "/echo", None, None,
             [("text", "hello"), ("binary", b"\x00\x01\xff"), ("close", 1000, "bye")]),
            ("a fragmented text and a fragmented binary message", "/echo", None, None,
             [("text", "fragmented message", 4), ("binary", b"0123456789" * 10, 7), ("close", 1000, "")]),
            ("a ping between messages, answered with its payload", "/echo", None, None,
             [("text", "a"), ("ping", b"are you there"), ("text", "b"), ("close", 1001, "going")]),
            ("a close without a code", "/echo", None, None, [("close", None, "")]),
            ("invalid UTF-8 in a text message (1007)", "/echo", None, None,
             [("raw", wsclient.frame(wsclient.TEXT, b"\xff\xfe"))], FREE_REASON),
            ("a reserved opcode (1002)", "/echo", None, None, [("raw", wsclient.frame(0x3, b""))], FREE_REASON),
            ("compressed messages", "/echo", None, "permessage-deflate",
             [("text", "squeeze " * 40), ("close", 1000, "")]),
            ("a path the app refuses before accepting", "/elsewhere", None, None, []),
        ]
    return [
        ("a subprotocol, text, binary and the app's own close code", "/ws", "chat, echo", None,
         [("text", "hi"), ("binary", b"\x01\x02"), ("text", "close")]),
        ("a denied WebSocket", "/ws/deny", None, None, []),
    ]


def run_ws(app, ports, report):
    cases = ws_cases(app)
    for name, path, protocols, offer, steps, *known in cases:
        transcripts = [session(port, path, steps, protocols, offer) for port in ports]
        compare(name, transcripts, known[0] if known else None, report)
    report["compared"]["websocket"] += len(cases)


# --- uvicorn ------------------------------------------------------------------------------------------

def start_uvicorn(app, app_dir):
    """uvicorn on a socket bound here (so its port is known before it starts), one worker."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--fd", str(sock.fileno()), "--app-dir", app_dir,
         "--no-access-log", "--log-level", "warning", app],
        pass_fds=[sock.fileno()], stdout=subprocess.DEVNULL,
    )
    port = sock.getsockname()[1]
    sock.close()
    return proc, port


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rustgun", required=True, help="HOST:PORT of rustgun serving the app")
    parser.add_argument("--app", required=True, help="module:attribute, as both servers load it")
    parser.add_argument("--app-dir", required=True)
    args = parser.parse_args()
    rustgun = int(args.rustgun.rpartition(":")[2])
    proc, port = start_uvicorn(args.app, args.app_dir)
    report = {"compared": {"http": 0, "websocket": 0}, "differences": [], "known": []}
    try:
        ports = [rustgun, port]
        if args.app == "raw:app":
            run_http(RAW_CASES, ports, report)
        if args.app == "fastapi_app:app":
            run_http(FASTAPI_CASES, ports, report)
        if args.app in ("ws_echo:app", "fastapi_app:app"):
            run_ws(args.app, ports, report)
        print(json.dumps(report, indent=1, default=lambda b: b.decode("latin-1")))
    finally:
        proc.terminate()
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
