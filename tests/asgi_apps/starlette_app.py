"""Starlette without FastAPI: a lifespan with state, routes with path and query parameters, a form, a
streamed response, a file, a background task, a WebSocket echo."""

import contextlib
import sys

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"motto": "set at startup"}


async def item(request):
    return JSONResponse(
        {
            "id": request.path_params["id"],
            "q": request.query_params.get("q"),
            "motto": request.state.motto,
        }
    )


async def form(request):
    async with request.form() as data:
        fields = {}
        for key in sorted(data.keys()):
            value = data[key]
            # An uploaded file is told by its name and size.
            fields[key] = value if isinstance(value, str) else [value.filename, len(await value.read())]
        return JSONResponse(fields)


async def stream(request):
    async def lines():
        for i in range(4):
            yield b"line %d\n" % i

    return StreamingResponse(lines(), media_type="text/plain")


async def file(request):
    return FileResponse(__file__)


def note(what):
    print("starlette: background task ran for %s" % what, file=sys.stderr, flush=True)


async def later(request):
    who = request.query_params["who"]
    return JSONResponse({"queued": who}, background=BackgroundTask(note, who))


async def echo(websocket):
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text("starlette: " + text)


app = Starlette(
    routes=[
        Route("/items/{id:int}", item),
        Route("/form", form, methods=["POST"]),
        Route("/stream", stream),
        Route("/file", file),
        Route("/later", later, methods=["POST"]),
        WebSocketRoute("/ws", echo),
    ],
    lifespan=lifespan,
)
