"""A file download through ``wsgi.file_wrapper``, as Django's FileResponse serves one: the file at
``?path=P`` with its size as Content-Length (``&length=N`` announces N instead, ``&chunked=1`` none)."""

import os
from urllib.parse import parse_qs


def application(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    path = query["path"][0]
    f = open(path, "rb")
    headers = [("Content-Type", "application/octet-stream")]
    if "chunked" not in query:
        length = query.get("length", [str(os.fstat(f.fileno()).st_size)])[0]
        headers.append(("Content-Length", length))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)
