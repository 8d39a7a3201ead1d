//! The frameworks people serve with uvicorn, each through `libasgi.so` as its users write it:
//! FastAPI's parameters, bodies, validation, server-sent events, files and background tasks;
//! Starlette, Litestar and async Django with their lifespans, bodies, streams and WebSockets. Each
//! test drives the real server with a real client (httpx, websockets) from the tests' venv.

use super::{apps_dir, asgi, json};
use crate::support::python;

#[test]
fn fastapi_reads_query_json_and_form_parameters_and_answers_bad_ones_with_422() {
    let server = asgi("fastapi_app:app").start();
    let out = python(
        r#"
import httpx, json, sys
with httpx.Client(base_url=sys.argv[1]) as c:
    seen = [
        c.get("/items", params={"q": "caf\u00e9", "limit": 3}).json(),
        c.post("/items", json={"name": "pen", "price": 1.5, "tags": ["a"]}).json(),
        c.post("/form", data={"name": "Ada", "age": "36"}).json(),
    ]
    for bad in (c.get("/users/abc"), c.get("/items"), c.post("/items", json={"name": "pen"})):
        seen.append([bad.status_code, [e["loc"] for e in bad.json()["detail"]]])
    print(json.dumps(seen))
"#,
        &[&server.url("")],
    );
    let seen = json(out.trim().as_bytes());
    assert_eq!(seen[0], serde_json::json!({"q": "café", "limit": 3}));
    assert_eq!(seen[1], serde_json::json!({"name": "pen", "total": 3.0, "tags": ["a"]}));
    assert_eq!(seen[2], serde_json::json!({"name": "Ada", "age": 36}));
    assert_eq!(seen[3], serde_json::json!([422, [["path", "uid"]]]));
    assert_eq!(seen[4], serde_json::json!([422, [["query", "q"]]]));
    assert_eq!(seen[5], serde_json::json!([422, [["body", "price"]]]));
}

#[test]
fn each_server_sent_event_reaches_the_client_before_the_app_sends_the_next() {
    // The app sends the next event only after the client, having read the previous one, asks for it
    // on a second connection: a server that held events back would leave both waiting.
    let server = asgi("fastapi_app:app").start();
    let out = python(
        r#"
import httpx, sys
seen = []
with httpx.Client(base_url=sys.argv[1], timeout=60) as c, httpx.Client(base_url=sys.argv[1]) as other:
    with c.stream("GET", "/events") as events:
        seen.append(events.headers["content-type"])
        for line in events.iter_lines():
            if line.startswith("data: "):
                seen.append(line[6:])
                other.get("/events/next")
print(seen)
"#,
        &[&server.url("")],
    );
    assert_eq!(
        out.trim(),
        "['text/event-stream; charset=utf-8', 'event 0', 'event 1', 'event 2']",
        "every event came as it was sent"
    );
}

#[test]
fn fastapi_sends_files_whole_and_runs_background_tasks_after_the_response() {
    let server = asgi("fastapi_app:app").start();
    let file = server.get("/file");
    assert_eq!(file.status, 200);
    let source = std::fs::read(format!("{}/fastapi_app.py", apps_dir())).unwrap();
    assert_eq!(file.body, source, "FileResponse (http.response.pathsend) sends the file");
    assert_eq!(file.header("content-length"), Some(source.len().to_string().as_str()));
    let notify = server
        .raw(b"POST /notify?who=ada HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert!(String::from_utf8_lossy(&notify).ends_with(r#"{"queued":"ada"}"#));
    server.wait_for_log("fastapi: background task ran for ada");
}

#[test]
fn starlette_serves_its_lifespan_state_forms_streams_files_tasks_and_websockets() {
    let server = asgi("starlette_app:app").start();
    let out = python(
        r#"
import asyncio, httpx, json, sys, websockets
base = sys.argv[1]
with httpx.Client(base_url=base) as c:
    seen = [
        c.get("/items/7", params={"q": "x"}).json(),
        c.post("/form", data={"b": "2", "a": "1"}).json(),
        c.post("/form", files={"upload": ("f.txt", b"x" * 70_000)}, data={"a": "multi"}).json(),
        c.get("/stream").text,
        len(c.get("/file").content),
        c.post("/later", params={"who": "bob"}).json(),
        c.get("/nowhere").status_code,
    ]
async def ws():
    async with websockets.connect(base.replace("http://", "ws://") + "/ws") as s:
        await s.send("one")
        return await s.recv()
seen.append(asyncio.run(ws()))
print(json.dumps(seen))
"#,
        &[&server.url("")],
    );
    let seen = json(out.trim().as_bytes());
    assert_eq!(seen[0], serde_json::json!({"id": 7, "q": "x", "motto": "set at startup"}));
    assert_eq!(seen[1], serde_json::json!({"a": "1", "b": "2"}));
    assert_eq!(seen[2], serde_json::json!({"a": "multi", "upload": ["f.txt", 70000]}), "a multipart form");
    assert_eq!(seen[3], "line 0\nline 1\nline 2\nline 3\n");
    let source = std::fs::metadata(format!("{}/starlette_app.py", apps_dir())).unwrap().len();
    assert_eq!(seen[4], source);
    assert_eq!(seen[5], serde_json::json!({"queued": "bob"}));
    assert_eq!(seen[6], 404);
    assert_eq!(seen[7], "starlette: one");
    server.wait_for_log("starlette: background task ran for bob");
}

#[test]
fn litestar_serves_its_startup_state_typed_bodies_streams_and_websocket_listeners() {
    let server = asgi("litestar_app:app").start();
    let out = python(
        r#"
import asyncio, httpx, json, sys, websockets
base = sys.argv[1]
with httpx.Client(base_url=base) as c:
    good = c.post("/orders", json={"item": "tea", "quantity": 2})
    bad = c.post("/orders", json={"item": "tea"})
    seen = [
        c.get("/users/3").json(),
        [good.status_code, good.json()],
        bad.status_code,
        c.get("/stream").text,
    ]
async def ws():
    async with websockets.connect(base.replace("http://", "ws://") + "/ws") as s:
        await s.send("ping")
        return await s.recv()
seen.append(asyncio.run(ws()))
print(json.dumps(seen))
"#,
        &[&server.url("")],
    );
    let seen = json(out.trim().as_bytes());
    assert_eq!(seen[0], serde_json::json!({"id": 3, "motto": "litestar started"}));
    assert_eq!(seen[1], serde_json::json!([201, {"item": "tea", "quantity": 2, "double": 4}]));
    assert_eq!(seen[2], 400, "a body that misses a field");
    assert_eq!(seen[3], "chunk 0\nchunk 1\nchunk 2\n");
    assert_eq!(seen[4], "litestar: ping");
}

#[test]
fn async_django_views_run_on_the_loop_through_djangos_asgi_handler() {
    // Django's handler refuses the lifespan scope: under --asgi-lifespan auto that is "unsupported",
    // and the worker boots; it then waits on http.disconnect after each response.
    let server = asgi("djasync.asgi:application").start();
    server.wait_for_log("ASGI 'lifespan' protocol appears unsupported.");
    let out = python(
        r#"
import httpx, json, sys
with httpx.Client(base_url=sys.argv[1]) as c:
    print(json.dumps([
        c.get("/hello/5/", params={"q": "x"}).json(),
        c.post("/echo/", content=b"z" * 100_000, headers={"content-type": "application/octet-stream"}).json(),
        c.get("/stream/").text,
        c.get("/missing/").status_code,
        c.get("/hello/6/").json()["n"],
    ]))
"#,
        &[&server.url("")],
    );
    let seen = json(out.trim().as_bytes());
    assert_eq!(seen[0], serde_json::json!({"n": 5, "method": "GET", "q": "x", "async": true}));
    assert_eq!(seen[1], serde_json::json!({"length": 100000, "type": "application/octet-stream"}));
    assert_eq!(seen[2], "django part 0\ndjango part 1\ndjango part 2\n");
    assert_eq!(seen[3], 404);
    assert_eq!(seen[4], 6, "the next request after Django's wait on http.disconnect");
}
