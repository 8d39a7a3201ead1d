"""FastAPI as its users write it: a lifespan, a path parameter, a sync route, a body, a stream."""

import asyncio
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
            await asyncio.sleep(0)

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/boom")
async def boom():
    raise RuntimeError("kaboom from the route")
