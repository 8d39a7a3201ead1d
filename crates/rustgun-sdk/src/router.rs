//! A Flask-like [`Router`]: routes are a method, a path pattern with `<name>` segments, and a handler
//! `Fn(&mut Request, &Params) -> Response`. An unknown path answers 404, a known path with another
//! method 405 with an `Allow` header. The router is an [`App`], exported with
//! [`export_app!`](crate::export_app):
//!
//! ```no_run
//! use rustgun_sdk::{Params, Request, Response, Router};
//!
//! fn user(_req: &mut Request, params: &Params) -> Response {
//!     Response::text(format!("user {}", params.get("id").unwrap_or("?")))
//! }
//! fn routes() -> Router {
//!     Router::new().route("GET", "/users/<id>", user)
//! }
//! rustgun_sdk::export_app!(app, routes);
//! ```
//!
//! Patterns match the percent-decoded path, segment by segment:
//! - `literal` matches itself;
//! - `<name>` matches one non-empty segment;
//! - `<int:name>` matches one segment of ASCII digits;
//! - `<path:name>` (last only) matches the non-empty rest of the path, slashes included.
//!
//! A trailing slash is significant (`/a` and `/a/` are different routes). `HEAD` is served by the `GET`
//! route when no `HEAD` route is registered. The first matching route in registration order wins.

use crate::app::{App, IntoResponse};
use crate::error::Error;
use crate::request::Request;
use crate::response::{Response, ResponseWriter};

type Handler = dyn Fn(&mut Request<'_>, &Params) -> Result<Response, Error> + Send + Sync;

/// Routes requests by method and path to handlers.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

struct Route {
    method: String,
    pattern: Pattern,
    handler: Box<Handler>,
}

/// The values of a route's `<name>` segments, decoded (invalid UTF-8 replaced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The value bound to `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value bound to `name`, parsed (`params.parse::<u64>("id")`); `None` if absent or unparsable.
    pub fn parse<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.get(name)?.parse().ok()
    }

    /// `(name, value)` pairs in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the route had no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Vec<u8>),
    Any(String),
    Int(String),
    Rest(String),
}

#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses `/a/<b>/<int:c>/<path:d>`. Panics on a malformed pattern: routes are fixed at startup.
    fn parse(pattern: &str) -> Pattern {
        let Some(rest) = pattern.strip_prefix('/') else {
            panic!("route pattern {pattern:?} must start with '/'");
        };
        let pieces: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(pieces.len());
        let mut names: Vec<&str> = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let segment = match piece.strip_prefix('<').and_then(|p| p.strip_suffix('>')) {
                None => {
                    assert!(
                        !piece.contains(['<', '>']),
                        "route pattern {pattern:?}: a `<name>` must be a whole segment"
                    );
                    Segment::Literal(piece.as_bytes().to_vec())
                }
                Some(inner) => {
                    let (kind, name) = inner.split_once(':').unwrap_or(("", inner));
                    assert!(
                        !name.is_empty() && !names.contains(&name),
                        "route pattern {pattern:?}: empty or repeated parameter name {name:?}"
                    );
                    names.push(name);
                    let name = name.to_string();
                    match kind {
                        "" | "string" => Segment::Any(name),
                        "int" => Segment::Int(name),
                        "path" => {
                            assert!(
                                i == pieces.len() - 1,
                                "route pattern {pattern:?}: `<path:…>` must be the last segment"
                            );
                            Segment::Rest(name)
                        }
                        other => {
                            panic!("route pattern {pattern:?}: unknown converter {other:?}")
                        }
                    }
                }
            };
            segments.push(segment);
        }
        Pattern { segments }
    }

    /// The parameters when `path` (decoded) matches.
    fn matches(&self, path: &[u8]) -> Option<Params> {
        let mut rest = path.strip_prefix(b"/")?;
        let mut params = Params::default();
        let last = self.segments.len() - 1;
        for (i, segment) in self.segments.iter().enumerate() {
            if let Segment::Rest(name) = segment {
                if rest.is_empty() {
                    return None;
                }
                params.pairs.push((name.clone(), lossy(rest)));
                return Some(params);
            }
            let (piece, tail) = match rest.iter().position(|&b| b == b'/') {
                Some(slash) => (&rest[..slash], Some(&rest[slash + 1..])),
                None => (rest, None),
            };
            match segment {
                Segment::Literal(lit) if lit.as_slice() == piece => {}
                Segment::Any(name) if !piece.is_empty() => {
                    params.pairs.push((name.clone(), lossy(piece)));
                }
                Segment::Int(name) if !piece.is_empty() && piece.iter().all(u8::is_ascii_digit) => {
                    params.pairs.push((name.clone(), lossy(piece)));
                }
                _ => return None,
            }
            match (tail, i == last) {
                (None, true) => return Some(params),
                (Some(tail), false) => rest = tail,
                _ => return None,
            }
        }
        None
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a method and path resolve to.
enum Resolution<'r> {
    Found(&'r Route, Params),
    NotFound,
    /// The path is known, the method not: the value of the `Allow` header.
    MethodNotAllowed(String),
}

impl Router {
    /// A router with no routes (everything is a 404).
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route: `method` (e.g. `"GET"`; upper-cased), a path `pattern` (see the module docs;
    /// panics if malformed) and a `handler` returning a [`Response`] or a `Result` of one.
    pub fn route<H, R>(mut self, method: &str, pattern: &str, handler: H) -> Router
    where
        H: Fn(&mut Request<'_>, &Params) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            pattern: Pattern::parse(pattern),
            handler: Box::new(move |req: &mut Request<'_>, params: &Params| {
                handler(req, params).into_response()
            }),
        });
        self
    }

    /// `route("GET", pattern, handler)`.
    pub fn get<H, R>(self, pattern: &str, handler: H) -> Router
    where
        H: Fn(&mut Request<'_>, &Params) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.route("GET", pattern, handler)
    }

    /// `route("POST", pattern, handler)`.
    pub fn post<H, R>(self, pattern: &str, handler: H) -> Router
    where
        H: Fn(&mut Request<'_>, &Params) -> R + Send + Sync + 'static,
        R: IntoResponse,
    {
        self.route("POST", pattern, handler)
    }

    fn resolve(&self, method: &str, path: &[u8]) -> Resolution<'_> {
        let mut allowed: Vec<&str> = Vec::new();
        let mut get_fallback: Option<(&Route, Params)> = None;
        for route in &self.routes {
            let Some(params) = route.pattern.matches(path) else {
                continue;
            };
            if route.method == method {
                return Resolution::Found(route, params);
            }
            if method == "HEAD" && route.method == "GET" && get_fallback.is_none() {
                get_fallback = Some((route, params));
            }
            allowed.push(&route.method);
        }
        if let Some((route, params)) = get_fallback {
            return Resolution::Found(route, params);
        }
        if allowed.is_empty() {
            return Resolution::NotFound;
        }
        if allowed.contains(&"GET") {
            allowed.push("HEAD");
        }
        allowed.sort_unstable();
        allowed.dedup();
        Resolution::MethodNotAllowed(allowed.join(", "))
    }

    /// Routes `req` and runs the handler: the handler's response, a 404 or a 405.
    pub fn dispatch(&self, req: &mut Request<'_>) -> Result<Response, Error> {
        match self.resolve(req.method(), req.path()) {
            Resolution::Found(route, params) => (route.handler)(req, &params),
            Resolution::NotFound => Ok(Response::text("Not Found\n").status(404)),
            Resolution::MethodNotAllowed(allow) => {
                Ok(Response::text("Method Not Allowed\n").status(405).header("Allow", allow))
            }
        }
    }
}

impl App for Router {
    fn handle(&self, req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
        let response = self.dispatch(req)?;
        resp.send(&response)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_req: &mut Request<'_>, _p: &Params) -> Response {
        Response::text("ok")
    }

    fn router() -> Router {
        Router::new()
            .route("POST", "/a", ok)
            .route("GET", "/", ok)
            .route("GET", "/users/<id>", ok)
            .route("DELETE", "/users/<id>", ok)
            .route("get", "/n/<int:n>/x", ok)
            .route("GET", "/files/<path:rest>", ok)
            .route("PUT", "/both", ok)
            .route("GET", "/both", ok)
    }

    /// `Ok((method of the route found, params))`, or `Err(None)` for 404, `Err(Some(allow))` for 405.
    type Resolved = Result<(String, Vec<(String, String)>), Option<String>>;

    fn resolve(r: &Router, method: &str, path: &str) -> Resolved {
        match r.resolve(method, path.as_bytes()) {
            Resolution::Found(route, params) => Ok((route.method.clone(), params.pairs)),
            Resolution::NotFound => Err(None),
            Resolution::MethodNotAllowed(allow) => Err(Some(allow)),
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn literal_routes() {
        let r = router();
        assert_eq!(resolve(&r, "POST", "/a"), Ok(("POST".into(), vec![])));
        assert_eq!(resolve(&r, "GET", "/"), Ok(("GET".into(), vec![])));
        assert_eq!(resolve(&r, "GET", "/a/"), Err(None));
        assert_eq!(resolve(&r, "GET", "/b"), Err(None));
        assert_eq!(resolve(&r, "GET", ""), Err(None));
        assert_eq!(resolve(&r, "OPTIONS", "*"), Err(None));
    }

    #[test]
    fn params_bind() {
        let r = router();
        assert_eq!(resolve(&r, "GET", "/users/42"), Ok(("GET".into(), p(&[("id", "42")]))));
        assert_eq!(
            resolve(&r, "DELETE", "/users/j%C3%B6rg a"),
            Ok(("DELETE".into(), p(&[("id", "j%C3%B6rg a")])))
        );
        assert_eq!(resolve(&r, "GET", "/users/"), Err(None));
        assert_eq!(resolve(&r, "GET", "/users/1/2"), Err(None));
        assert_eq!(resolve(&r, "GET", "/n/12/x"), Ok(("GET".into(), p(&[("n", "12")]))));
        assert_eq!(resolve(&r, "GET", "/n/1a/x"), Err(None));
        assert_eq!(resolve(&r, "GET", "/files/a/b/c.txt"), Ok(("GET".into(), p(&[("rest", "a/b/c.txt")]))));
        assert_eq!(resolve(&r, "GET", "/files/"), Err(None));
    }

    #[test]
    fn method_not_allowed_lists_methods() {
        let r = router();
        assert_eq!(resolve(&r, "GET", "/a"), Err(Some("POST".into())));
        assert_eq!(resolve(&r, "POST", "/users/1"), Err(Some("DELETE, GET, HEAD".into())));
        assert_eq!(resolve(&r, "POST", "/both"), Err(Some("GET, HEAD, PUT".into())));
    }

    #[test]
    fn head_falls_back_to_get() {
        let r = router();
        assert_eq!(resolve(&r, "HEAD", "/users/7"), Ok(("GET".into(), p(&[("id", "7")]))));
        assert_eq!(resolve(&r, "HEAD", "/a"), Err(Some("POST".into())));
        let r = Router::new().route("GET", "/x", ok).route("HEAD", "/x", ok);
        assert_eq!(resolve(&r, "HEAD", "/x"), Ok(("HEAD".into(), vec![])));
    }

    #[test]
    fn first_route_wins() {
        let r = Router::new().route("GET", "/u/me", ok).route("GET", "/u/<name>", ok);
        assert_eq!(resolve(&r, "GET", "/u/me"), Ok(("GET".into(), vec![])));
        assert_eq!(resolve(&r, "GET", "/u/you"), Ok(("GET".into(), p(&[("name", "you")]))));
    }

    #[test]
    fn decoded_slash_splits_segments() {
        // The router sees the decoded path, where `%2F` is already a `/`.
        let r = Router::new().route("GET", "/a/<x>", ok);
        assert_eq!(resolve(&r, "GET", "/a/b/c"), Err(None));
    }

    #[test]
    #[should_panic(expected = "must start with '/'")]
    fn bad_pattern_panics() {
        let _ = Router::new().route("GET", "a", ok);
    }

    #[test]
    #[should_panic(expected = "must be the last segment")]
    fn path_converter_must_be_last() {
        let _ = Router::new().route("GET", "/<path:p>/x", ok);
    }

    #[test]
    fn params_accessors() {
        let params = Params { pairs: p(&[("id", "42"), ("name", "x")]) };
        assert_eq!(params.get("id"), Some("42"));
        assert_eq!(params.parse::<u32>("id"), Some(42));
        assert_eq!(params.parse::<u32>("name"), None);
        assert_eq!(params.get("nope"), None);
        assert_eq!(params.len(), 2);
        assert_eq!(params.iter().next(), Some(("id", "42")));
    }
}
