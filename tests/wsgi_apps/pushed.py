"""A body pushed with the ``write()`` callable ``start_response`` returns: ``/pushed?mb=N`` writes N MiB
in 64 KiB blocks, with its Content-Length; any other path answers a short text."""


def application(environ, start_response):
    if environ["PATH_INFO"] == "/pushed":
        mb = int(environ["QUERY_STRING"].partition("=")[2] or "2")
        headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(mb << 20))]
        write = start_response("200 OK", headers)
        block = b"p" * 65536
        for _ in range(mb * 16):
            write(block)
        return []
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"short"]
