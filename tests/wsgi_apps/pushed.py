"""A body pushed with the ``write()`` callable ``start_response`` returns: ``/pushed?mb=N`` writes N MiB
in 64 KiB blocks, with its Content-Length; ``/pushed-whole?mb=N`` writes N MiB in one block, with no
length; any other path answers a short text."""

from urllib.parse import parse_qs


def application(environ, start_response):
    mb = int(parse_qs(environ["QUERY_STRING"]).get("mb", ["2"])[0])
    if environ["PATH_INFO"] == "/pushed":
        headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(mb << 20))]
        write = start_response("200 OK", headers)
        block = b"p" * 65536
        for _ in range(mb * 16):
            write(block)
        return []
    if environ["PATH_INFO"] == "/pushed-whole":
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        write(b"w" * (mb << 20))
        return []
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"short"]
