async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, World!"})


def create_app():
    """A factory (uvicorn's --factory, or `hello:create_app()`): an app of its own."""

    async def made(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b"Hello from a factory"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return made
