//! Each example app, served by the real binary, answers as its documentation says.

use crate::support::{Server, python};

#[test]
fn hello_answers_hello_world_with_a_length() {
    let server = Server::start("hello");
    let resp = server.get("/anything");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    assert_eq!(resp.header("content-length"), Some("13"));
    assert_eq!(resp.header("server"), Some("rustgun"));
    assert!(resp.header("date").is_some_and(|d| d.ends_with(" GMT")));
    assert_eq!(resp.text(), "Hello, World!");
}

#[test]
fn the_c_hello_app_built_from_the_header_is_served() {
    let server = Server::start("hello_c");
    let resp = server.get("/");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "Hello, World!");
}

#[test]
fn framework_app_routes_like_flask() {
    let server = Server::start("framework_app");
    let out = std::process::Command::new("curl")
        .args(["-s", "-X", "POST", &server.url("/a?x=1"), "-d", r#"{"0": 0}"#])
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        r#"{"result": "hello", "params": "x=1", "body": "{\"0\": 0}"}"#
    );
    assert_eq!(server.get("/users/42").text(), r#"{"id": "42"}"#);
    assert_eq!(server.get("/nowhere").status, 404);
    let wrong_method = Server::raw(&server, b"DELETE /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let resp = crate::support::Response::parse_one(&wrong_method).unwrap().0;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
}

#[test]
fn echo_reports_the_request_as_received() {
    let server = Server::start("echo");
    let out = python(
        r#"
import http.client, json, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]))
c.putrequest("POST", "/p%20q/r?z=1&y", skip_accept_encoding=True)
c.putheader("X-Dup", "one")
c.putheader("X-Dup", "two")
c.putheader("Content-Length", "7")
c.endheaders()
c.send(b"bod\xffy!!")
r = c.getresponse()
print(r.status, r.getheader("Content-Type"))
print(json.dumps(json.loads(r.read())))
"#,
        &[&server.addr.ip().to_string(), &server.addr.port().to_string()],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("200 application/json"));
    let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["target"], "/p%20q/r?z=1&y");
    assert_eq!(v["path"], "/p%20q/r");
    assert_eq!(v["query"], "z=1&y");
    assert_eq!(v["version"], "HTTP/1.1");
    let headers: Vec<(String, String)> = serde_json::from_value(v["headers"].clone()).unwrap();
    let dups: Vec<&str> = headers.iter().filter(|(n, _)| n == "X-Dup").map(|(_, v)| v.as_str()).collect();
    assert_eq!(dups, ["one", "two"]);
    assert_eq!(v["body"], "bod\u{fffd}y!!");
}

#[test]
fn environ_app_dumps_sorted_wsgi_keys() {
    let server = Server::start("environ");
    let req = b"GET /a%2Fb/c?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-Dup: 1\r\nX-Dup: 2\r\nX_Spoof: evil\r\nContent-Type: text/x\r\nConnection: close\r\n\r\n";
    let resp = crate::support::Response::parse_one(&server.raw(req)).unwrap().0;
    assert_eq!(resp.status, 200);
    let text = resp.text();
    let lines: Vec<&str> = text.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted, "lines are sorted by key");
    for expected in [
        "REQUEST_METHOD: GET",
        "SCRIPT_NAME: ",
        "PATH_INFO: /a/b/c",
        "QUERY_STRING: q=1",
        "RAW_URI: /a%2Fb/c?q=1",
        "CONTENT_TYPE: text/x",
        "SERVER_NAME: example.com",
        "SERVER_PORT: 8080",
        "SERVER_PROTOCOL: HTTP/1.1",
        "REMOTE_ADDR: 127.0.0.1",
        "HTTP_X_DUP: 1,2",
        "wsgi.url_scheme: http",
        "wsgi.multiprocess: true",
        "wsgi.run_once: false",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{text}");
    }
    let multithread = if crate::support::worker_class() == "threads" { "true" } else { "false" };
    assert!(lines.contains(&format!("wsgi.multithread: {multithread}").as_str()), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("SERVER_SOFTWARE: rustgun/")));
    assert!(lines.iter().any(|l| l.starts_with("REMOTE_PORT: ") && l.len() > "REMOTE_PORT: ".len()));
    assert!(lines.iter().any(|l| l.starts_with("CONTENT_LENGTH:")));
    assert!(!text.contains("evil"), "a header name with '_' must not reach the environ:\n{text}");
}

#[test]
fn root_path_mounts_the_app_and_refuses_paths_outside_it() {
    // A trailing slash on the mount is not part of SCRIPT_NAME.
    let server = Server::builder("environ").args(&["--root-path", "/app/"]).start();
    server.allow_log("does not start with --root-path");
    let environ = |target: &str| {
        let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let resp = crate::support::Response::parse_one(&server.raw(req.as_bytes())).unwrap().0;
        (resp.status, resp.text())
    };
    for (target, script, path) in [("/app/a%2Fb?q=1", "/app", "/a/b"), ("/app", "/app", "")] {
        let (status, text) = environ(target);
        assert_eq!(status, 200, "{target}: {text}");
        assert!(text.contains(&format!("\nSCRIPT_NAME: {script}\n")), "{target}: {text}");
        assert!(text.contains(&format!("\nPATH_INFO: {path}\n")), "{target}: {text}");
        assert!(
            text.contains(&format!("\nRAW_URI: {target}\n")),
            "{target}: the raw target is whole: {text}"
        );
    }
    // Outside the mount, including a path that only shares its first letters: 500, and the worker serves on.
    for target in ["/elsewhere", "/application"] {
        assert_eq!(environ(target).0, 500, "{target}");
    }
    assert_eq!(environ("/app/ok").0, 200);
}

#[test]
fn a_trusted_proxys_script_name_header_mounts_the_app_and_nobody_elses_does() {
    let get = |server: &Server, extra: &str| {
        let req = format!("GET /shop/cart HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n");
        let resp = crate::support::Response::parse_one(&server.raw(req.as_bytes())).unwrap().0;
        (resp.status, resp.text())
    };
    let sent = "SCRIPT_NAME: /shop\r\nPATH_INFO: /forged\r\nX_Other: evil\r\n";
    // 127.0.0.1 is a trusted proxy by default, and gunicorn's --forwarder-headers default lets its
    // SCRIPT_NAME and PATH_INFO through: the mount is the header's; other `_` names stay dropped.
    let trusted = Server::start("environ");
    let (status, text) = get(&trusted, sent);
    assert_eq!(status, 200, "{text}");
    for line in
        ["SCRIPT_NAME: /shop", "PATH_INFO: /cart", "HTTP_SCRIPT_NAME: /shop", "HTTP_PATH_INFO: /forged"]
    {
        assert!(text.contains(&format!("\n{line}\n")), "{line:?} in:\n{text}");
    }
    assert!(!text.contains("evil"), "{text}");

    // A peer outside --forwarded-allow-ips: the fields are dropped, as any `_` name is.
    let untrusted = Server::builder("environ").args(&["--forwarded-allow-ips", "10.9.9.9"]).start();
    let (status, text) = get(&untrusted, sent);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\nSCRIPT_NAME: \n") && text.contains("\nPATH_INFO: /shop/cart\n"), "{text}");
    assert!(!text.contains("/forged") && !text.contains("HTTP_SCRIPT_NAME"), "{text}");
    // ... or refused, under --header-map refuse; a trusted proxy's still pass then.
    let strict = Server::builder("environ")
        .args(&["--forwarded-allow-ips", "10.9.9.9", "--header-map", "refuse"])
        .allow_log("header name with underscore (400)")
        .start();
    assert_eq!(get(&strict, "SCRIPT_NAME: /shop\r\n").0, 400);
    let strict_trusted = Server::builder("environ").args(&["--header-map", "refuse"]).start();
    assert_eq!(get(&strict_trusted, "SCRIPT_NAME: /shop\r\n").0, 200);
    // An empty --forwarder-headers lets no `_` name through, trusted or not.
    let none = Server::builder("environ").args(&["--forwarder-headers", ""]).start();
    let (_, text) = get(&none, sent);
    assert!(text.contains("\nSCRIPT_NAME: \n") && !text.contains("HTTP_SCRIPT_NAME"), "{text}");
}
