//! A real nginx in front of rustgun, as deployments run it: HTTP reverse proxy over TCP and over a unix
//! socket with forwarded headers (`X-Forwarded-For $remote_addr`, `X-Forwarded-Proto https`,
//! `Host $host`), and a `stream {}` TCP proxy with `proxy_protocol on;` in front of
//! `--proxy-protocol`. Each test generates nginx's configuration in a temp dir, starts the Debian
//! package's `/usr/sbin/nginx` on an ephemeral port, and checks what the app behind it sees. The
//! client connects from 127.0.0.2, so the address the app reports can only have come from nginx.
//!
//! nginx missing is a failure, not a skip: `.ci/run` installs it.

use crate::procs::TempDir;
use crate::support::{Response, Server, WAIT, python};
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";
/// Debian builds the stream module as a dynamic module (package `libnginx-mod-stream`).
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";
/// Where test clients connect from: not 127.0.0.1, so nothing can report it by accident.
const CLIENT_IP: &str = "127.0.0.2";

/// A running nginx; dropping it kills it.
struct Nginx {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Nginx {
    /// Starts nginx with the top-level blocks `blocks(port, dir)` returns (`http {…}` or
    /// `stream {…}`; `dir` is nginx's own temp dir), listening on an ephemeral port picked by binding
    /// port 0 and closing it; if another process takes the port in between, tries again with a new one.
    fn start(tag: &str, blocks: impl Fn(u16, &Path) -> String) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "nginx is not installed at {NGINX}: the nginx tests need the Debian package \
             (`apt-get install nginx-light libnginx-mod-stream`; .ci/run installs it)"
        );
        for _attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let dir = TempDir::new(tag);
            let blocks = blocks(port, &dir.join(""));
            let stream = blocks.starts_with("stream {");
            assert!(
                !stream || Path::new(STREAM_MODULE).exists(),
                "nginx's stream module is not installed at {STREAM_MODULE}: the PROXY protocol tests \
                 need the Debian package `libnginx-mod-stream` (.ci/run installs it)"
            );
            let conf = format!(
                "master_process off;\n\
                 worker_processes 1;\n\
                 pid {pid};\n\
                 error_log {log} info;\n\
                 {load}\
                 events {{ worker_connections 64; }}\n\
                 {blocks}\n",
                pid = dir.arg("nginx.pid"),
                log = dir.arg("error.log"),
                load = if stream { format!("load_module {STREAM_MODULE};\n") } else { String::new() },
            );
            std::fs::write(dir.join("nginx.conf"), conf).unwrap();
            let mut nginx = Nginx { child: spawn(&dir), dir, port };
            if nginx.wait_listening() {
                return nginx;
            }
            let log = nginx.log();
            assert!(log.contains("Address already in use"), "nginx did not start:\n{log}");
        }
        panic!("nginx found no free port in 5 attempts");
    }

    /// Waits until nginx accepts connections (true) or exits (false).
    fn wait_listening(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            assert!(Instant::now() < deadline, "nginx not listening within {WAIT:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Sends `requests` back to back on one connection from [`CLIENT_IP`] (the last should close
    /// it) and reads until the connection ends; returns the client's source port and every response
    /// (one when nothing is sent: an answer that comes unasked).
    fn exchange(&self, requests: &[&str]) -> (u16, Vec<Response>) {
        let out = python(
            r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20, source_address=(sys.argv[1], 0))
s.sendall("".join(sys.argv[3:]).encode())
data = b""
while True:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        break
    if not chunk:
        break
    data += chunk
sys.stdout.write("%d\n" % s.getsockname()[1])
sys.stdout.write(data.decode("latin-1"))
"#,
            &[&[CLIENT_IP, &self.port.to_string()][..], requests].concat(),
        );
        let (port, raw) = out.split_once('\n').unwrap();
        let responses = Response::parse_all(raw.as_bytes());
        assert_eq!(responses.len(), requests.len().max(1), "{raw:?}\nnginx log:\n{}", self.log());
        (port.parse().unwrap(), responses)
    }
}

fn spawn(dir: &TempDir) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new(NGINX)
        .arg("-p")
        .arg(dir.join(""))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {NGINX}: {e}"))
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group we created for this nginx.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// An `http {}` block proxying each `(location, upstream)` with the usual forwarded headers. The
/// temp paths live in the prefix so nothing touches `/var/lib/nginx`.
fn http_block(port: u16, dir: &Path, routes: &[(&str, &str)]) -> String {
    let temp = |name: &str| dir.join(name).display().to_string();
    let mut upstreams = String::new();
    let mut locations = String::new();
    for (i, (location, upstream)) in routes.iter().enumerate() {
        upstreams += &format!("    upstream rustgun{i} {{ server {upstream}; keepalive 4; }}\n");
        locations += &format!(
            "        location {location} {{\n\
             \x20           proxy_pass http://rustgun{i};\n\
             \x20           proxy_http_version 1.1;\n\
             \x20           proxy_set_header Connection \"\";\n\
             \x20           proxy_set_header Host $host;\n\
             \x20           proxy_set_header X-Forwarded-For $remote_addr;\n\
             \x20           proxy_set_header X-Forwarded-Proto https;\n\
             \x20       }}\n"
        );
    }
    format!(
        "http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {};\n\
         \x20   proxy_temp_path {};\n\
         \x20   fastcgi_temp_path {};\n\
         \x20   uwsgi_temp_path {};\n\
         \x20   scgi_temp_path {};\n\
         {upstreams}\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         {locations}\
         \x20   }}\n\
         }}",
        temp("client_body"),
        temp("proxy"),
        temp("fastcgi"),
        temp("uwsgi"),
        temp("scgi"),
    )
}

/// A `stream {}` block relaying raw TCP to `upstream` with a PROXY v1 header first.
fn stream_block(port: u16, upstream: &str) -> String {
    format!(
        "stream {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       proxy_pass {upstream};\n\
         \x20       proxy_protocol on;\n\
         \x20   }}\n\
         }}"
    )
}

fn environ(resp: &Response) -> HashMap<String, String> {
    assert_eq!(resp.status, 200, "{:?}", resp.text());
    resp.text()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[track_caller]
fn assert_environ(env: &HashMap<String, String>, want: &[(&str, &str)]) {
    for (key, value) in want {
        assert_eq!(env.get(*key).map(String::as_str), Some(*value), "{key} in {env:#?}");
    }
}

fn get(path: &str, host: &str, connection: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\n\r\n")
}

/// The rustgun that nginx proxies to, as nginx names it: `127.0.0.1:PORT` or `unix:PATH`.
fn upstream(server: &Server, sock: Option<&PathBuf>) -> String {
    match sock {
        Some(path) => format!("unix:{}", path.display()),
        None => server.addr.to_string(),
    }
}

#[test]
fn nginx_over_tcp_with_forwarded_headers() {
    let environ_app = Server::start("environ");
    let echo_app = Server::start("echo");
    let routes = [("/echo/", echo_app.addr.to_string()), ("/", upstream(&environ_app, None))];
    let routes: Vec<(&str, &str)> = routes.iter().map(|(l, u)| (*l, u.as_str())).collect();
    let nginx = Nginx::start("nginx-tcp", |port, dir| http_block(port, dir, &routes));

    let (_, resps) = nginx.exchange(&[&get("/a%2Fb?q=1", "shop.example", "close")]);
    let env = environ(&resps[0]);
    assert_environ(
        &env,
        &[
            // From X-Forwarded-For: nginx (127.0.0.1) is trusted by default.
            ("REMOTE_ADDR", CLIENT_IP),
            ("REMOTE_PORT", "0"),
            ("wsgi.url_scheme", "https"),
            ("SERVER_NAME", "shop.example"),
            ("SERVER_PORT", "443"),
            ("HTTP_HOST", "shop.example"),
            ("HTTP_X_FORWARDED_FOR", CLIENT_IP),
            ("HTTP_X_FORWARDED_PROTO", "https"),
            ("PATH_INFO", "/a/b"),
            ("QUERY_STRING", "q=1"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ],
    );

    // The echo app sees the headers nginx set, and a body nginx relayed.
    let post =
        "POST /echo/x HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let (_, resps) = nginx.exchange(&[post]);
    assert_eq!(resps[0].status, 200, "{:?}", resps[0].text());
    let v: serde_json::Value = serde_json::from_slice(&resps[0].body).unwrap();
    let headers: Vec<(String, String)> = serde_json::from_value(v["headers"].clone()).unwrap();
    let header =
        |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    assert_eq!(header("host"), Some("shop.example"));
    assert_eq!(header("x-forwarded-for"), Some(CLIENT_IP));
    assert_eq!(header("x-forwarded-proto"), Some("https"));
    assert_eq!((v["path"].as_str(), v["body"].as_str()), (Some("/echo/x"), Some("hello")));

    // The same nginx in front of a rustgun that does not trust it: the headers pass, unused.
    let distrustful = Server::builder("environ").args(&["--forwarded-allow-ips", "10.0.0.1"]).start();
    let up = upstream(&distrustful, None);
    let nginx = Nginx::start("nginx-tcp-untrusted", |port, dir| http_block(port, dir, &[("/", &up)]));
    let (_, resps) = nginx.exchange(&[&get("/", "shop.example", "close")]);
    let env = environ(&resps[0]);
    assert_environ(
        &env,
        &[
            ("REMOTE_ADDR", "127.0.0.1"),
            ("wsgi.url_scheme", "http"),
            ("HTTP_X_FORWARDED_FOR", CLIENT_IP),
            ("HTTP_X_FORWARDED_PROTO", "https"),
        ],
    );
}

#[test]
fn nginx_over_a_unix_socket_with_forwarded_headers() {
    let dir = TempDir::new("nginx-unix");
    let sock = dir.join("rustgun.sock");
    // A unix-socket peer is trusted whatever the list says.
    let app = Server::builder("environ")
        .bind(&format!("unix:{}", sock.display()))
        .args(&["--forwarded-allow-ips", "10.0.0.1"])
        .start();
    let up = upstream(&app, Some(&sock));
    let nginx = Nginx::start("nginx-unix-conf", |port, dir| http_block(port, dir, &[("/", &up)]));
    // Two requests on one client connection; nginx may reuse its upstream connection for both.
    let (_, resps) = nginx.exchange(&[
        &get("/one", "app.example:8443", "keep-alive"),
        &get("/two", "app.example:8443", "close"),
    ]);
    for (resp, path) in resps.iter().zip(["/one", "/two"]) {
        let env = environ(resp);
        assert_environ(
            &env,
            &[
                ("REMOTE_ADDR", CLIENT_IP),
                ("wsgi.url_scheme", "https"),
                ("PATH_INFO", path),
                // nginx's $host drops the port: the scheme's default port stands in.
                ("HTTP_HOST", "app.example"),
                ("SERVER_NAME", "app.example"),
                ("SERVER_PORT", "443"),
            ],
        );
    }
}

#[test]
fn nginx_stream_proxy_protocol_names_the_client() {
    let app = Server::builder("environ").arg("--proxy-protocol").start();
    let up = upstream(&app, None);
    let nginx = Nginx::start("nginx-stream", |port, _| stream_block(port, &up));
    let (client_port, resps) = nginx.exchange(&[&get("/one", "t", "keep-alive"), &get("/two", "t", "close")]);
    for (resp, path) in resps.iter().zip(["/one", "/two"]) {
        let env = environ(resp);
        assert_environ(
            &env,
            &[
                ("REMOTE_ADDR", CLIENT_IP),
                ("REMOTE_PORT", &client_port.to_string()),
                ("PATH_INFO", path),
                ("wsgi.url_scheme", "http"),
            ],
        );
    }

    // Over a unix socket too.
    let dir = TempDir::new("nginx-stream-unix");
    let sock = dir.join("rustgun.sock");
    let app =
        Server::builder("environ").bind(&format!("unix:{}", sock.display())).arg("--proxy-protocol").start();
    let up = upstream(&app, Some(&sock));
    let nginx = Nginx::start("nginx-stream-unix-conf", |port, _| stream_block(port, &up));
    let (client_port, resps) = nginx.exchange(&[&get("/", "t", "close")]);
    let env = environ(&resps[0]);
    assert_environ(&env, &[("REMOTE_ADDR", CLIENT_IP), ("REMOTE_PORT", &client_port.to_string())]);

    // A rustgun that does not allow nginx to send PROXY headers refuses the connection with 403 at
    // once. (The client sends nothing: nginx would reset a client whose bytes it never read.)
    let strict = Server::builder("environ")
        .args(&["--proxy-protocol", "--proxy-allow-ips", "10.0.0.1"])
        .allow_log("PROXY protocol from a peer not in --proxy-allow-ips")
        .start();
    let up = upstream(&strict, None);
    let nginx = Nginx::start("nginx-stream-403", |port, _| stream_block(port, &up));
    let (_, resps) = nginx.exchange(&[]);
    assert_eq!(resps[0].status, 403);
}

#[test]
fn nginx_grpc_pass_carries_a_grpc_unary_call_and_its_trailers_over_h2c() {
    // The raw ASGI app's gRPC method behind rustgun speaking h2c by prior knowledge, which is what
    // nginx's grpc_pass speaks to its upstream.
    let h2c = ["--http-protocols", "h1,h2", "--http2-cleartext", "prior-knowledge"];
    let app = crate::asgi::asgi_on("event", &[], "raw:app").args(&h2c).start();
    let upstream = app.addr.to_string();
    let nginx = Nginx::start("nginx-grpc", |port, dir| {
        format!(
            "http {{\n\
             client_body_temp_path {dir}/body;\n\
             access_log off;\n\
             server {{ listen 127.0.0.1:{port} http2; location / {{ grpc_pass grpc://{upstream}; }} }}\n\
             }}",
            dir = dir.display()
        )
    });
    assert_eq!(crate::http2::grpc_shout(&format!("127.0.0.1:{}", nginx.port)), "HELLO GRPC StatusCode.OK");
}
