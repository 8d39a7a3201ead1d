"""The Flask app of the WSGI bridge's tests (the same routes as apps/framework_app)."""

import json

from flask import Flask, Response, request

app = Flask(__name__)

CHUNK = b"y" * 65536


@app.post("/a")
def post_a():
    body = request.get_data(as_text=True)
    payload = {"result": "hello", "params": request.query_string.decode(), "body": body}
    return Response(json.dumps(payload), mimetype="application/json")


@app.get("/users/<user_id>")
def get_user(user_id):
    return Response(json.dumps({"id": user_id}), mimetype="application/json")


@app.get("/download")
def download():
    """`mb` MiB produced by a generator, 64 KiB at a time."""
    chunks = int(request.args.get("mb", "100")) * 16

    def generate():
        for _ in range(chunks):
            yield CHUNK

    return Response(generate(), mimetype="application/octet-stream")


@app.post("/upload")
def upload():
    """Reads the body in 64 KiB pieces and reports how much came in."""
    total = 0
    pieces = 0
    stream = request.stream
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        total += len(piece)
        pieces += 1
    return {"bytes": total, "pieces": pieces}
