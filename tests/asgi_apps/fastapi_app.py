"""FastAPI as its users write it: a lifespan, path and query parameters, a sync route, JSON and form
bodies, validation errors, a stream, server-sent events, a file, a background task, WebSockets."""

import asyncio
import sys
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, Form, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel


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


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/items")
async def search(q: str, limit: int = 10):
    return {"q": q, "limit": limit}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "total": item.price * 2, "tags": item.tags}


@app.post("/form")
async def form(name: str = Form(), age: int = Form()):
    return {"name": name, "age": age}


# Server-sent events, each released by a request to /events/next: a client sees the next event only
# if the server sent the previous one as soon as the app did (a buffering server never gets there).
NEXT = asyncio.Event()


@app.get("/events")
async def events():
    async def stream():
        for i in range(3):
            yield "data: event %d\n\n" % i
            try:
                await asyncio.wait_for(NEXT.wait(), 30)
            except asyncio.TimeoutError:
                yield "data: nobody asked for the next event\n\n"
                return
            NEXT.clear()

    return StreamingResponse(stream(), media_type="text/event-stream")


@app.get("/events/next")
async def next_event():
    NEXT.set()
    return {"released": True}


@app.get("/file")
async def file():
    return FileResponse(__file__, media_type="text/x-python")


def remember(what):
    print("fastapi: background task ran for %s" % what, file=sys.stderr, flush=True)


@app.post("/notify")
async def notify(who: str, tasks: BackgroundTasks):
    tasks.add_task(remember, who)
    return {"queued": who}


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
