"""Raw ASGI WebSocket echo (no framework), the twin of apps/ws_echo's /echo route: text comes back
as text and bytes as bytes until the client disconnects. Other paths are refused (403), plain
HTTP gets 426; it does not speak the lifespan protocol (the bridge's `auto` carries on)."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "http":
        body = b"WebSocket echo: open /echo with a WebSocket handshake\n"
        await send({"type": "http.response.start", "status": 426,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                                (b"upgrade", b"websocket")]})
        await send({"type": "http.response.body", "body": body})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if scope["path"] != "/echo":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
