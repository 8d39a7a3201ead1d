"""Litestar as its users write it: startup hooks on app.state, typed path parameters, a dataclass
body, a 400 from validation, a stream, a WebSocket listener."""

from dataclasses import dataclass

from litestar import Litestar, get, post, websocket_listener
from litestar.datastructures import State
from litestar.response import Stream


def on_startup(app):
    app.state.motto = "litestar started"


@dataclass
class Order:
    item: str
    quantity: int


@get("/users/{uid:int}")
async def user(uid: int, state: State) -> dict:
    return {"id": uid, "motto": state.motto}


@post("/orders")
async def order(data: Order) -> dict:
    return {"item": data.item, "quantity": data.quantity, "double": data.quantity * 2}


@get("/stream")
async def stream() -> Stream:
    async def chunks():
        for i in range(3):
            yield "chunk %d\n" % i

    return Stream(chunks(), media_type="text/plain")


@websocket_listener("/ws")
async def echo(data: str) -> str:
    return "litestar: " + data


app = Litestar(route_handlers=[user, order, stream, echo], on_startup=[on_startup])
