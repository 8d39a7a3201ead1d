# The classic first WSGI program: answer with the environ, one sorted `key: value` line each.
def application(environ, start_response):
    lines = ["%s: %r" % (key, value) for key, value in sorted(environ.items())]
    body = "\n".join(lines).encode("utf-8")
    start_response("200 OK", [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ])
    return [body]
