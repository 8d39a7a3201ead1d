//! `libframework_app.so`: a small app on the SDK's [`Router`], answering JSON in Python's
//! `json.dumps` style (`{"a": 1}`):
//! - `POST /a?x=1` with body `B` → `{"result": "hello", "params": "x=1", "body": "B"}` (`params` is the
//!   raw query string);
//! - `GET /users/<id>` → `{"id": "<id>"}`;
//! - any other path → 404, another method on a known path → 405 with `Allow`.

use rustgun_sdk::json::json;
use rustgun_sdk::{Error, Params, Request, Response, Router};

fn post_a(req: &mut Request<'_>, _params: &Params) -> Result<Response, Error> {
    let body = req.read_body_to_vec()?;
    Ok(Response::json_python(&json!({
        "result": "hello",
        "params": req.query_str(),
        "body": String::from_utf8_lossy(&body),
    })))
}

fn get_user(_req: &mut Request<'_>, params: &Params) -> Response {
    Response::json_python(&json!({ "id": params.get("id").unwrap_or_default() }))
}

fn routes() -> Router {
    Router::new().route("POST", "/a", post_a).route("GET", "/users/<id>", get_user)
}

rustgun_sdk::export_app!(app, routes);
