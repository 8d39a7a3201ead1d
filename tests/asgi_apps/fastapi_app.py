"""FastAPI as its users write it: a lifespan, a path parameter, a sync route, a body, a stream,
WebSockets."""

import asyncio
import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse


@asynccontextmanager
async def lifespan(app):
    app.state.greeting = "hello from lifespan"
    yield {"started": True}


app = FastAPI(lifespan=lifespan)


@app.get("/users/{uid}")
async def user(uid: int, request: Request):
    return {"id": uid, "greeting": request.app.state.greeting, "started": request.state.started}


@app.get("/sync")
def sync_route():
    # FastAPI runs a plain def in its thread pool: the answer comes back from another thread.
    return {"sync": True}


@app.post("/length")
async def length(request: Request):
    body = await request.body()
    return {"length": len(body), "sum": sum(body) % 65536}


@app.get("/stream")
async def stream():
    async def parts():
        for i in range(3):
            yield "part %d\n" % i

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/boom")
async def boom():
    raise RuntimeError("kaboom from the route")


from fastapi import WebSocket, WebSocketDisconnect  # noqa: E402


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket):
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol="echo" if "echo" in offered else None)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                print("fastapi: ws closed with %s" % message.get("code"), file=sys.stderr, flush=True)
                return
            if message.get("text") is not None:
                if message["text"] == "bye":
                    await websocket.close(code=4000, reason="asked to")
                    return
                await websocket.send_text("echo: " + message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


@app.websocket("/ws/deny")
async def ws_deny(websocket: WebSocket):
    await websocket.close()
