//! The request an app handles: [`Request`], a safe view of the server's `RgRequest` borrowed for one
//! `handle` call, with its [`Headers`], the CGI/WSGI [`Environ`] and the body reader [`Body`].

use std::borrow::Cow;
use std::io::{self, Read};
use std::iter::FusedIterator;

use rustgun_abi::{
    RG_REQ_CHUNKED, RG_REQ_HAS_BODY, RG_REQ_MULTIPROCESS, RG_REQ_MULTITHREAD, RG_REQ_RUN_ONCE,
};
use serde::de::DeserializeOwned;

use crate::error::{Error, HostError};
use crate::ffi::{Call, HeaderList};
use crate::url;

/// One request, borrowed from the server for the `handle` call (`'a`). Accessors return borrowed bytes
/// (`&'a [u8]`): nothing is copied unless a helper says so. Neither `Send` nor `Sync`: the host
/// functions behind [`body`](Request::body) and [`environ`](Request::environ) may only be called on the
/// request's thread.
pub struct Request<'a> {
    pub(crate) call: Call<'a>,
    pub(crate) flags: u32,
    pub(crate) method: &'a [u8],
    pub(crate) target: &'a [u8],
    pub(crate) path_raw: &'a [u8],
    pub(crate) path: &'a [u8],
    pub(crate) query: &'a [u8],
    pub(crate) version: &'a [u8],
    pub(crate) headers: HeaderList<'a>,
    pub(crate) content_length: i64,
    pub(crate) peer_addr: &'a [u8],
    pub(crate) server_addr: &'a [u8],
    pub(crate) peer_port: u16,
    pub(crate) server_port: u16,
    pub(crate) worker_id: u32,
    pub(crate) url_scheme: &'a [u8],
}

fn ascii_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

impl<'a> Request<'a> {
    /// The method, e.g. `GET` (a token, so ASCII; `""` if the server ever passed invalid UTF-8).
    pub fn method(&self) -> &'a str {
        ascii_str(self.method)
    }

    /// The raw request-target as sent: `/a%20b?x=1`, `http://h/p`, `*`, `host:443`.
    pub fn target(&self) -> &'a [u8] {
        self.target
    }

    /// The path component of the target, still percent-encoded.
    pub fn path_raw(&self) -> &'a [u8] {
        self.path_raw
    }

    /// The path, percent-decoded (any byte, including `/` from `%2F`).
    pub fn path(&self) -> &'a [u8] {
        self.path
    }

    /// [`path`](Request::path) as text, invalid UTF-8 replaced.
    pub fn path_str(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.path)
    }

    /// The query string without the `?` (raw, percent-encoded); empty when there is none.
    pub fn query(&self) -> &'a [u8] {
        self.query
    }

    /// [`query`](Request::query) as text, invalid UTF-8 replaced.
    pub fn query_str(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.query)
    }

    /// The first value of query parameter `name`, decoded as a form (`%XX` and `+` as space), invalid
    /// UTF-8 replaced. `a&b=` gives `Some("")` for both.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::query_param(self.query, name.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// Every query parameter, decoded, in order, duplicates kept.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::parse_query(self.query)
            .map(|(k, v)| {
                (String::from_utf8_lossy(&k).into_owned(), String::from_utf8_lossy(&v).into_owned())
            })
            .collect()
    }

    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn version(&self) -> &'a str {
        ascii_str(self.version)
    }

    /// The header fields in arrival order, duplicates kept, as raw `(name, value)` bytes.
    pub fn headers(&self) -> Headers<'a> {
        Headers { list: self.headers, front: 0, back: self.headers.len() }
    }

    /// The value of the first header named `name` (compared ASCII case-insensitively).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// [`header`](Request::header) as text; `None` also when the value is not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The body length from Content-Length; `None` when the body is chunked.
    pub fn content_length(&self) -> Option<u64> {
        u64::try_from(self.content_length).ok()
    }

    /// The client's address as text (`127.0.0.1`, `::1`; empty for a unix-socket peer).
    pub fn peer_addr(&self) -> &'a [u8] {
        self.peer_addr
    }

    /// The client's port (0 for a unix-socket peer).
    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// The address of the listening socket as text (or the unix socket's path).
    pub fn server_addr(&self) -> &'a [u8] {
        self.server_addr
    }

    /// The listening port (0 for a unix socket).
    pub fn server_port(&self) -> u16 {
        self.server_port
    }

    /// `http` or `https`.
    pub fn url_scheme(&self) -> &'a str {
        ascii_str(self.url_scheme)
    }

    /// The worker's id (1-based).
    pub fn worker_id(&self) -> u32 {
        self.worker_id
    }

    /// The raw `RG_REQ_*` flags.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The request is a valid WebSocket handshake the app may accept (ABI 1.3; only an app exported
    /// with `websockets` is told).
    pub fn is_websocket(&self) -> bool {
        self.flags & rustgun_abi::RG_REQ_WEBSOCKET != 0
    }

    /// The request has a body (Content-Length > 0 or chunked).
    pub fn has_body(&self) -> bool {
        self.flags & RG_REQ_HAS_BODY != 0
    }

    /// The body is chunked on the wire (the reader returns it decoded).
    pub fn is_chunked(&self) -> bool {
        self.flags & RG_REQ_CHUNKED != 0
    }

    /// Several threads may call the app at once (`wsgi.multithread`).
    pub fn is_multithread(&self) -> bool {
        self.flags & RG_REQ_MULTITHREAD != 0
    }

    /// Several processes serve the app (`wsgi.multiprocess`).
    pub fn is_multiprocess(&self) -> bool {
        self.flags & RG_REQ_MULTIPROCESS != 0
    }

    /// The app is called once in this process's life (`wsgi.run_once`).
    pub fn is_run_once(&self) -> bool {
        self.flags & RG_REQ_RUN_ONCE != 0
    }

    /// The CGI/WSGI environ of this request (`REQUEST_METHOD`, `PATH_INFO`, `HTTP_*`, …), built by the
    /// server on first use.
    pub fn environ(&self) -> Result<Environ<'a>, HostError> {
        let list = self.call.environ()?;
        Ok(Environ { list, front: 0, back: list.len() })
    }

    /// A reader over the decoded request body (`std::io::Read`). The first read sends
    /// `100 Continue` when the client asked for it. Reading past the end keeps returning 0.
    pub fn body(&self) -> Body<'a> {
        Body { call: self.call, done: false }
    }

    /// Reads the whole body.
    pub fn read_body_to_vec(&self) -> io::Result<Vec<u8>> {
        // Trust Content-Length for the first allocation, within reason.
        let hint = self.content_length().unwrap_or(0).min(1 << 20) as usize;
        let mut out = Vec::with_capacity(hint);
        self.body().read_to_end(&mut out)?;
        Ok(out)
    }

    /// Parses the body as JSON into a `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let body = self.read_body_to_vec()?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// Parses the body as a JSON value.
    pub fn json_value(&self) -> Result<serde_json::Value, Error> {
        self.json()
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &String::from_utf8_lossy(self.target))
            .field("version", &self.version())
            .field("headers", &self.headers.len())
            .finish_non_exhaustive()
    }
}

/// The request body, read through the host's `read_body`. A host failure (client timed out or closed,
/// malformed chunking) is an `io::Error` wrapping the [`HostError`].
pub struct Body<'a> {
    call: Call<'a>,
    done: bool,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.done {
            return Ok(0);
        }
        let n = self.call.read_body(buf);
        match HostError::from_code(n) {
            Some(e) => Err(e.into()),
            None if n == 0 => {
                self.done = true;
                Ok(0)
            }
            // The host never returns more than asked; clamp anyway rather than trust it.
            None => Ok((n as u64).min(buf.len() as u64) as usize),
        }
    }
}

/// Iterator over `(name, value)` pairs of a borrowed host array.
macro_rules! pair_iter {
    ($name:ident) => {
        impl<'a> Iterator for $name<'a> {
            type Item = (&'a [u8], &'a [u8]);

            fn next(&mut self) -> Option<Self::Item> {
                if self.front == self.back {
                    return None;
                }
                let item = self.list.get(self.front);
                self.front += 1;
                item
            }

            fn size_hint(&self) -> (usize, Option<usize>) {
                let n = self.back - self.front;
                (n, Some(n))
            }
        }

        impl DoubleEndedIterator for $name<'_> {
            fn next_back(&mut self) -> Option<Self::Item> {
                if self.front == self.back {
                    return None;
                }
                self.back -= 1;
                self.list.get(self.back)
            }
        }

        impl ExactSizeIterator for $name<'_> {}
        impl FusedIterator for $name<'_> {}
    };
}

/// The request's header fields in arrival order, duplicates kept: `(name, value)` raw bytes.
#[derive(Clone)]
pub struct Headers<'a> {
    list: HeaderList<'a>,
    front: usize,
    back: usize,
}

pair_iter!(Headers);

/// The request's CGI/WSGI environ entries as the server built them: `(key, value)` raw bytes.
#[derive(Clone)]
pub struct Environ<'a> {
    list: HeaderList<'a>,
    front: usize,
    back: usize,
}

pair_iter!(Environ);

impl<'a> Environ<'a> {
    /// The value of the first entry named exactly `key`.
    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.clone().find(|(k, _)| *k == key.as_bytes()).map(|(_, v)| v)
    }
}
