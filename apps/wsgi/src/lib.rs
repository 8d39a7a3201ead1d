//! `libwsgi.so`: serves any PEP 3333 (WSGI) Python app under rustgun by embedding CPython.
//!
//! ```sh
//! rustgun target/release/libwsgi.so:app --workers 4 -- myproject.wsgi:application
//! rustgun target/release/libwsgi.so:app -- --pythonpath src 'myapp:create_app("prod")'
//! ```
//!
//! The bridge is an ordinary rustgun app built on the public SDK: every worker starts its own
//! interpreter in `init` (after fork), imports the app the way gunicorn does ([`args`] and
//! `helpers.py`), and turns each request into a WSGI call:
//! - the environ comes from the server's (`Request::environ`), values decoded as latin-1, plus
//!   `wsgi.input` (the body streamed through the host's `read_body`), `wsgi.errors` (the error log),
//!   `wsgi.file_wrapper` and the `wsgi.*` flags as booleans;
//! - `start_response` records the head with the SDK's `start` (`restart` for `exc_info`); the legacy
//!   `write()` sends at once;
//! - a list or tuple is written out in `handle`; any other iterable is pulled chunk by chunk after
//!   `handle` returned (a [`body::PyBody`] registered with `set_body`), except while the request body
//!   is still unread, when it is written out in `handle` so that `wsgi.input` stays readable;
//! - `close()` is called exactly once on every path; an exception is logged with its traceback and
//!   answered with gunicorn's 500 page when nothing was sent yet.
//!
//! The GIL is released whenever the bridge waits on the server (reading the body, writing), and the
//! descriptor is thread-safe (the GIL guards the interpreter), so `-k threads` overlaps requests.

mod body;
mod objects;

use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::exceptions::{PyAssertionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use rustgun_sdk::{App, Error, HostError, InitContext, Request, ResponseWriter};

use body::{Closer, PyBody};
use objects::{Errors, Input, Responder};
use rustgun_python::args::{self, Bridge as Kind};
use rustgun_python::{attach, describe, log_exception, start_interpreter};

/// The helper module compiled from `helpers.py`, once per process.
static HELPERS: OnceLock<Py<PyModule>> = OnceLock::new();

fn helpers(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    if HELPERS.get().is_none() {
        let code = CString::new(include_str!("helpers.py")).expect("no NUL in helpers.py");
        let module = PyModule::from_code(py, &code, c"rustgun_wsgi.py", c"_rustgun_wsgi")?;
        let _ = HELPERS.set(module.unbind());
    }
    Ok(HELPERS.get().expect("set above").bind(py))
}

/// A body chunk: PEP 3333 wants bytes.
pub(crate) fn bytes_of<'py>(item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    match item.cast::<PyBytes>() {
        Ok(b) => Ok(b.clone()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "the WSGI app yielded {}, which is not a byte string",
            item.repr()?
        ))),
    }
}

/// How the bridge's arguments are parsed.
const WSGI: Kind = Kind { library: "libwsgi.so", kind: "WSGI", options: &["--paste-global"] };

/// A worker's WSGI app.
struct Bridge {
    app: Py<PyAny>,
    errors: Py<Errors>,
    file_wrapper: Py<PyAny>,
    early_hints: Py<PyAny>,
}

/// gunicorn's 500 page, byte for byte, so clients see the same answer from either server.
const ERROR_PAGE: &str = "<html>\n  <head>\n    <title>Internal Server Error</title>\n  </head>\n  <body>\n    <h1><p>Internal Server Error</p></h1>\n    \n  </body>\n</html>\n";

/// How a response continues after the app returned its iterable.
enum Flow {
    /// Everything was written in `handle`.
    Done,
    /// A small body already in memory (a list or tuple), written once the GIL is released: one
    /// release fewer per request, which is what a `threads` worker's Python threads contend on.
    Write(Vec<u8>),
    /// The server pulls the rest.
    Pull(PyBody),
}

/// The largest in-memory body copied out to be written after the GIL is released; larger ones are
/// written piece by piece, each without the GIL.
const WRITE_AFTER_MAX: usize = 64 * 1024;

/// The app the master imported under `--preload`; every worker inherits it through fork.
static PRELOADED: OnceLock<Bridge> = OnceLock::new();

/// `preload` (ABI 1.1, `rustgun --preload`): the master starts the interpreter and imports the app
/// once, before any fork, so the workers share the imported modules copy-on-write (gunicorn's
/// `--preload`). Import failures stop the server here, with the same line as in a worker.
fn preload(ctx: &InitContext) -> Result<(), String> {
    let opts = args::parse(ctx.args(), WSGI)?;
    start_interpreter();
    let bridge = Python::attach(|py| Bridge::load(py, &opts))?;
    let _ = PRELOADED.set(bridge);
    rustgun_python::release_gil_for_forks();
    Ok(())
}

impl Bridge {
    fn new(ctx: &InitContext) -> Result<Bridge, String> {
        let opts = args::parse(ctx.args(), WSGI)?;
        if let Some(preloaded) = PRELOADED.get() {
            return Ok(Python::attach(|py| preloaded.clone_ref(py)));
        }
        start_interpreter();
        Python::attach(|py| {
            let bridge = Bridge::load(py, &opts)?;
            rustgun_python::watch_modules(py, &opts);
            Ok(bridge)
        })
    }

    fn clone_ref(&self, py: Python<'_>) -> Bridge {
        Bridge {
            app: self.app.clone_ref(py),
            errors: self.errors.clone_ref(py),
            file_wrapper: self.file_wrapper.clone_ref(py),
            early_hints: self.early_hints.clone_ref(py),
        }
    }

    fn load(py: Python<'_>, opts: &args::Options) -> Result<Bridge, String> {
        let fail = |e: PyErr| format!("cannot start the WSGI bridge: {}", describe(py, &e));
        let wsgi_app = rustgun_python::load_app(py, opts, "WSGI")?;
        let helpers = helpers(py).map_err(fail)?;
        let errors = Py::new(py, Errors::default()).map_err(fail)?;
        let file_wrapper = helpers.getattr("FileWrapper").map_err(fail)?.unbind();
        let early_hints = helpers.getattr("early_hints").map_err(fail)?.unbind();
        Ok(Bridge { app: wsgi_app.unbind(), errors, file_wrapper, early_hints })
    }

    /// The environ: the server's entries as native strings, the `wsgi.*` flags as booleans, and the
    /// objects only the bridge can provide.
    fn environ<'py>(
        &self,
        py: Python<'py>,
        req: &Request<'_>,
        input: &Bound<'py, Input>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let environ = PyDict::new(py);
        let entries = req.environ().map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
        for (key, value) in entries {
            match key {
                b"wsgi.multithread" | b"wsgi.multiprocess" | b"wsgi.run_once" | b"wsgi.input_terminated" => {
                    environ.set_item(latin1(py, key)?, value == b"true")?;
                }
                // gunicorn leaves these out when the request has no such header; so does the bridge.
                b"CONTENT_TYPE" | b"CONTENT_LENGTH" if value.is_empty() => {}
                _ => environ.set_item(latin1(py, key)?, latin1(py, value)?)?,
            }
        }
        environ.set_item(pyo3::intern!(py, "wsgi.version"), (1, 0))?;
        environ.set_item(pyo3::intern!(py, "wsgi.input"), input)?;
        environ.set_item(pyo3::intern!(py, "wsgi.errors"), self.errors.bind(py))?;
        environ.set_item(pyo3::intern!(py, "wsgi.file_wrapper"), self.file_wrapper.bind(py))?;
        environ.set_item(pyo3::intern!(py, "wsgi.early_hints"), self.early_hints.bind(py))?;
        Ok(environ)
    }

    /// Runs the app for one request; returns the body bytes left to write once the GIL is released.
    fn serve(
        &self,
        py: Python<'_>,
        req: &mut Request<'_>,
        resp: &mut ResponseWriter<'_>,
    ) -> Result<Vec<u8>, Error> {
        let mut body = req.body();
        let body_ptr: *mut rustgun_sdk::request::Body<'_> = &mut body;
        let writer_ptr: *mut ResponseWriter<'_> = resp;
        let length = if req.is_chunked() { None } else { req.content_length() };
        // SAFETY: `body` and `resp` outlive this function, and the guard below cuts both objects off
        // before it returns; from here on the writer is only used through the responder.
        let input = Bound::new(py, unsafe { Input::new(body_ptr.cast(), req.has_body(), length) })?;
        // SAFETY: as for `input`.
        let responder = Bound::new(py, unsafe { Responder::new(writer_ptr.cast()) })?;
        let _cut_off = CutOff { input: input.clone().unbind(), responder: responder.clone().unbind() };
        let request = format!("{} {}", req.method(), String::from_utf8_lossy(req.target()));
        let environ = self.environ(py, req, &input)?;
        let hooked = rustgun_python::hooks::per_request();
        if hooked {
            rustgun_python::hooks::pre_request(py, &environ);
        }
        let flow = self.run(py, &environ, &input, &responder, &request);
        if hooked {
            let r = responder.borrow();
            let (status, headers) = match &r.head {
                Some((status, headers)) => (Some(status.bind(py)), Some(headers.bind(py))),
                None => (None, None),
            };
            rustgun_python::hooks::post_request(py, &environ, status, headers);
        }
        match flow {
            Ok(Flow::Done) => Ok(Vec::new()),
            Ok(Flow::Write(body)) => Ok(body),
            Ok(Flow::Pull(body)) => {
                let mut r = responder.borrow_mut();
                r.pulling = true;
                let registered = r.writer().map(|w| w.set_body(body));
                match registered {
                    Ok(Ok(())) => Ok(Vec::new()),
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => self.fail(py, &responder, &request, e).map(|()| Vec::new()),
        }
    }

    /// Calls the app and writes (or prepares to pull) its response.
    fn run(
        &self,
        py: Python<'_>,
        environ: &Bound<'_, PyDict>,
        input: &Bound<'_, Input>,
        responder: &Bound<'_, Responder>,
        request: &str,
    ) -> PyResult<Flow> {
        let result = self.app.bind(py).call1((environ, responder))?;
        let closer = Closer::new(&result);
        let send = |chunk: &Bound<'_, PyAny>| -> PyResult<()> {
            let bytes = bytes_of(chunk)?;
            responder.borrow_mut().send(py, bytes.as_bytes())
        };
        let started = || -> PyResult<()> {
            if responder.borrow().started {
                Ok(())
            } else {
                Err(PyAssertionError::new_err("the WSGI app returned without calling start_response"))
            }
        };
        // wsgi.file_wrapper over a regular file: the server's file-sending path.
        if result.is_instance(self.file_wrapper.bind(py))? && self.send_file(py, &result, responder)? {
            started()?;
            drop(closer);
            return Ok(Flow::Done);
        }
        // A list or tuple is already in memory: write it out, after the GIL is released when small.
        let items: Option<Vec<Bound<'_, PyAny>>> = match result.cast::<PyList>() {
            Ok(list) => Some(list.iter().collect()),
            Err(_) => result.cast::<PyTuple>().ok().map(|tuple| tuple.iter().collect()),
        };
        if let Some(items) = items {
            let chunks = items.iter().map(bytes_of).collect::<PyResult<Vec<_>>>()?;
            started()?;
            let total: usize = chunks.iter().map(|c| c.as_bytes().len()).sum();
            let flow = if total <= WRITE_AFTER_MAX {
                Flow::Write(chunks.iter().flat_map(|c| c.as_bytes()).copied().collect())
            } else {
                for chunk in &chunks {
                    send(chunk.as_any())?;
                }
                Flow::Done
            };
            drop(closer);
            return Ok(flow);
        }
        // Anything else: pull until the first non-empty chunk (a generator calls start_response in
        // its first step), then let the server pull the rest.
        let iter = result.try_iter()?;
        let first = loop {
            match iter.clone().next() {
                None => break None,
                Some(item) => {
                    let bytes = bytes_of(&item?)?;
                    if !bytes.as_bytes().is_empty() {
                        break Some(bytes);
                    }
                }
            }
        };
        let Some(first) = first else {
            started()?;
            drop(closer);
            return Ok(Flow::Done);
        };
        started()?;
        if input.borrow().unread() {
            // The app may still read the request body while it produces the response: keep the
            // request alive by writing everything out in `handle`.
            send(&first)?;
            for item in iter {
                send(&item?)?;
            }
            drop(closer);
            return Ok(Flow::Done);
        }
        Ok(Flow::Pull(PyBody::new(iter, first, responder.clone().unbind(), request.to_string(), closer)))
    }

    /// Sends what is left of a file_wrapper's regular file with the host's `send_file`; `false` (nothing
    /// sent) when the file-like object has no usable descriptor, so the caller iterates it instead.
    fn send_file(
        &self,
        py: Python<'_>,
        wrapper: &Bound<'_, PyAny>,
        responder: &Bound<'_, Responder>,
    ) -> PyResult<bool> {
        let filelike = wrapper.getattr("filelike")?;
        let Some(fd) = helpers(py)?.call_method1("regular_fd", (&filelike,))?.extract::<Option<i32>>()?
        else {
            return Ok(false);
        };
        let offset: u64 = filelike.call_method0("tell")?.extract()?;
        // SAFETY: fstat(2) on the descriptor the file object holds open for this call.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 {
                return Ok(false);
            }
            st.st_size as u64
        };
        responder.borrow_mut().send_file(py, fd, offset, size.saturating_sub(offset))?;
        Ok(true)
    }

    /// The app raised: log it, and answer 500 when nothing was sent yet.
    fn fail(
        &self,
        py: Python<'_>,
        responder: &Bound<'_, Responder>,
        request: &str,
        e: PyErr,
    ) -> Result<(), Error> {
        let mut r = responder.borrow_mut();
        if r.client_gone {
            return Err(HostError::Closed.into());
        }
        log_exception(py, &format!("Error handling request {request}"), &e);
        if r.sent {
            return Err(Error::msg("the WSGI app failed after its response started"));
        }
        let length = ERROR_PAGE.len().to_string();
        let headers =
            [("Connection", "close"), ("Content-Type", "text/html"), ("Content-Length", length.as_str())];
        let replace = r.started;
        let writer = r.writer()?;
        let recorded =
            if replace { writer.restart_pairs(500, &headers) } else { writer.start_pairs(500, &headers) };
        recorded
            .map_err(|_| Error::msg("the WSGI app failed and its response head could not be replaced"))?;
        writer.write(ERROR_PAGE.as_bytes())?;
        Ok(())
    }
}

/// Cuts `wsgi.input` and `start_response` off from the request when `handle` ends, whatever the app
/// kept of them.
struct CutOff {
    input: Py<Input>,
    responder: Py<Responder>,
}

impl Drop for CutOff {
    fn drop(&mut self) {
        Python::attach(|py| {
            self.input.borrow_mut(py).detach();
            self.responder.borrow_mut(py).detach();
        });
    }
}

/// Bytes as a native string (latin-1: every byte is one code point).
fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
    if let Ok(ascii) = std::str::from_utf8(bytes)
        && ascii.is_ascii()
    {
        return Ok(PyString::new(py, ascii));
    }
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    Ok(PyString::new(py, &text))
}

impl App for Bridge {
    fn handle(&self, req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
        let rest = attach(|py| self.serve(py, req, resp))?;
        if !rest.is_empty() {
            resp.write(&rest)?;
        }
        Ok(())
    }

    fn shutdown(&mut self) {
        Python::attach(rustgun_python::run_exit_functions);
    }
}

rustgun_sdk::export_app!(app, Bridge::new, preload = preload);
// gunicorn.conf.py's server hooks, when the configuration file defines any.
rustgun_sdk::export_hooks!(
    rustgun_python::hooks::load,
    rustgun_python::hooks::defined,
    rustgun_python::hooks::call
);
