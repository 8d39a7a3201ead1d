//! The Python objects a request hands to the app: `wsgi.input` ([`Input`]), `start_response` and
//! its `write` callable ([`Responder`]) and `wsgi.errors` ([`Errors`]).
//!
//! `Input` and `Responder` reach into the `handle` call in progress (the SDK's body reader and
//! response writer) through [`Live`] pointers whose lifetimes are erased. That is sound because the
//! bridge cuts every `Live` off ([`Input::detach`], [`Responder::detach`]) before `handle` returns,
//! and because each use checks that it runs on the request's own thread (the only one the ABI lets
//! call the host functions): an app that stashes these objects or hands them to another thread gets
//! a Python exception, never a dangling pointer.

use std::io::Read;
use std::sync::Mutex;
use std::thread::ThreadId;

use pyo3::exceptions::{PyAssertionError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use rustgun_sdk::log::{Level, log};
use rustgun_sdk::request::Body;
use rustgun_sdk::{Header, HostError, ResponseWriter};

/// A pointer into the `handle` call in progress, usable only on that call's thread.
pub struct Live<T> {
    ptr: *mut T,
    thread: ThreadId,
}

// SAFETY: a `Live` is only dereferenced after `get` checked that the caller is on the thread that
// made it, during the `handle` call it points into (the bridge drops it before `handle` returns).
unsafe impl<T> Send for Live<T> {}
// SAFETY: as above: shared access from another thread never reaches the pointer.
unsafe impl<T> Sync for Live<T> {}

impl<T> Live<T> {
    /// # Safety
    /// `ptr` must stay valid (and otherwise unused) until this `Live` is dropped.
    pub unsafe fn new(ptr: *mut T) -> Live<T> {
        Live { ptr, thread: std::thread::current().id() }
    }

    fn get(&mut self) -> PyResult<&mut T> {
        if std::thread::current().id() != self.thread {
            return Err(PyRuntimeError::new_err(
                "rustgun: this request's WSGI objects can only be used on the thread serving it",
            ));
        }
        // SAFETY: same thread, and `new`'s contract keeps the pointer valid while `self` lives.
        Ok(unsafe { &mut *self.ptr })
    }
}

/// A `&mut T` that may cross into `Python::detach` (which runs the closure on the same thread).
struct SameThread<T>(T);
// SAFETY: `detach` runs its closure on the calling thread; nothing is sent anywhere.
unsafe impl<T> Send for SameThread<T> {}

impl<T> SameThread<T> {
    fn into_inner(self) -> T {
        self.0
    }
}

const READ_CHUNK: usize = 64 * 1024;
const LINE_CHUNK: usize = 8 * 1024;

/// `wsgi.input`: the request body, streamed from the server as the app reads it (never buffered
/// whole unless the app asks for all of it). File-like: `read(n)`, `read()`, `readline(limit)`,
/// `readlines(hint)` and iteration over lines.
#[pyclass(module = "rustgun", name = "Input")]
pub struct Input {
    body: Option<Live<Body<'static>>>,
    /// Bytes read from the server but not yet handed to the app: `buf[pos..]`.
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Body bytes still to come when the length is known (Content-Length): the end is then known
    /// without another trip to the server.
    remaining: Option<u64>,
}

impl Input {
    /// # Safety
    /// `body` must stay valid until [`Input::detach`] is called.
    pub unsafe fn new(body: *mut Body<'static>, has_body: bool, length: Option<u64>) -> Input {
        // SAFETY: passed on to the caller.
        let live = unsafe { Live::new(body) };
        let remaining = if has_body { length } else { Some(0) };
        Input { body: Some(live), buf: Vec::new(), pos: 0, eof: remaining == Some(0), remaining }
    }

    /// Cuts the object off from the request (the end of `handle`).
    pub fn detach(&mut self) {
        self.body = None;
    }

    /// Whether body bytes the app has not read may still be on their way.
    pub fn unread(&self) -> bool {
        !self.eof
    }

    fn available(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads up to `want` more bytes from the server into the buffer (without the GIL); 0 at the end.
    fn fill(&mut self, py: Python<'_>, want: usize) -> PyResult<usize> {
        if self.eof {
            return Ok(0);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > READ_CHUNK && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let Some(live) = self.body.as_mut() else {
            return Err(PyOSError::new_err("rustgun: wsgi.input read after the request ended"));
        };
        let body = SameThread(live.get()?);
        let want = match self.remaining {
            Some(left) => want.max(1).min(usize::try_from(left).unwrap_or(usize::MAX)),
            None => want.max(1),
        };
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let space = SameThread(&mut self.buf[start..]);
        let got = py.detach(move || body.into_inner().read(space.into_inner()));
        match got {
            Ok(n) => {
                self.buf.truncate(start + n);
                if let Some(left) = self.remaining.as_mut() {
                    *left = left.saturating_sub(n as u64);
                }
                if n == 0 || self.remaining == Some(0) {
                    self.eof = true;
                }
                Ok(n)
            }
            Err(e) => {
                self.buf.truncate(start);
                Err(PyOSError::new_err(format!("rustgun: reading the request body failed: {e}")))
            }
        }
    }

    /// Takes `n` buffered bytes (at most what is buffered) as a bytes object.
    fn take<'py>(&mut self, py: Python<'py>, n: usize) -> Bound<'py, PyBytes> {
        let n = n.min(self.available());
        let out = PyBytes::new(py, &self.buf[self.pos..self.pos + n]);
        self.pos += n;
        out
    }

    fn line<'py>(&mut self, py: Python<'py>, limit: Option<usize>) -> PyResult<Bound<'py, PyBytes>> {
        let mut searched = 0;
        loop {
            let avail = &self.buf[self.pos..];
            if let Some(i) = avail[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + i + 1;
                return Ok(self.take(py, limit.map_or(end, |l| l.min(end))));
            }
            searched = avail.len();
            if let Some(limit) = limit
                && searched >= limit
            {
                return Ok(self.take(py, limit));
            }
            let want = limit.map_or(LINE_CHUNK, |l| (l - searched).clamp(1, LINE_CHUNK));
            if self.fill(py, want)? == 0 {
                return Ok(self.take(py, searched));
            }
        }
    }
}

fn size_arg(size: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    match size {
        None => Ok(None),
        Some(s) if s.is_none() => Ok(None),
        Some(s) => {
            let n: i64 = s.extract()?;
            Ok(usize::try_from(n).ok())
        }
    }
}

#[pymethods]
impl Input {
    /// `read(size=-1)`: up to `size` bytes (fewer only at the end of the body); all that is left when
    /// `size` is negative or None.
    #[pyo3(signature = (size = None))]
    fn read<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        match size_arg(size)? {
            Some(n) => {
                while self.available() < n {
                    if self.fill(py, (n - self.available()).min(4 * READ_CHUNK))? == 0 {
                        break;
                    }
                }
                Ok(self.take(py, n))
            }
            None => {
                while self.fill(py, READ_CHUNK)? > 0 {}
                let n = self.available();
                Ok(self.take(py, n))
            }
        }
    }

    /// `readline(size=-1)`: the next line with its `\n`, cut at `size` bytes when given.
    #[pyo3(signature = (size = None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.line(py, size_arg(size)?)
    }

    /// `readlines(hint=-1)`: the remaining lines, stopping once `hint` bytes were read when given.
    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint)?.filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.line(py, None)?;
            let n = line.as_bytes().len();
            if n == 0 {
                break;
            }
            lines.append(line)?;
            total += n;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.line(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}

/// `start_response` (called as the object itself) and the `write` callable it returns: PEP 3333's
/// rules on top of the SDK's [`ResponseWriter`] (`start`, `restart` for `exc_info`, `write`).
#[pyclass(module = "rustgun", name = "StartResponse")]
pub struct Responder {
    writer: Option<Live<ResponseWriter<'static>>>,
    /// A head was recorded.
    pub started: bool,
    /// A body byte went to the server: the head is out and can no longer change.
    pub sent: bool,
    /// Writing failed because the client went away.
    pub client_gone: bool,
    /// `handle` returned and the server pulls the body: `write()` queues here for the body source.
    pub pulling: bool,
    pub queued: Vec<u8>,
    /// The status and headers the app gave, kept only for a `post_request` hook.
    pub head: Option<(Py<PyAny>, Py<PyAny>)>,
}

impl Responder {
    /// # Safety
    /// `writer` must stay valid until [`Responder::detach`] is called.
    pub unsafe fn new(writer: *mut ResponseWriter<'static>) -> Responder {
        Responder {
            // SAFETY: passed on to the caller.
            writer: Some(unsafe { Live::new(writer) }),
            started: false,
            sent: false,
            client_gone: false,
            pulling: false,
            queued: Vec::new(),
            head: None,
        }
    }

    pub fn detach(&mut self) {
        self.writer = None;
    }

    pub fn writer(&mut self) -> PyResult<&mut ResponseWriter<'static>> {
        match self.writer.as_mut() {
            Some(live) => live.get(),
            None => Err(PyRuntimeError::new_err("rustgun: the response has already ended")),
        }
    }

    /// Sends body bytes (without the GIL), or queues them when the server is pulling the body.
    pub fn send(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        if !self.started {
            return Err(PyAssertionError::new_err("write() before start_response()"));
        }
        if data.is_empty() {
            return Ok(());
        }
        if self.pulling {
            self.queued.extend_from_slice(data);
            return Ok(());
        }
        let writer = SameThread(self.writer()?);
        let data = SameThread(data);
        match py.detach(move || writer.into_inner().write(data.into_inner())) {
            Ok(()) => {
                self.sent = true;
                Ok(())
            }
            Err(HostError::Closed) => {
                self.client_gone = true;
                Err(PyOSError::new_err("rustgun: the client went away"))
            }
            Err(e) => Err(PyOSError::new_err(format!("rustgun: cannot send the response: {e}"))),
        }
    }
}

impl Responder {
    /// Sends `len` bytes of the file `fd` from `offset` through the server (without the GIL).
    pub fn send_file(&mut self, py: Python<'_>, fd: i32, offset: u64, len: u64) -> PyResult<()> {
        if !self.started {
            return Err(PyAssertionError::new_err("write() before start_response()"));
        }
        let writer = SameThread(self.writer()?);
        // SAFETY: the file object the app returned keeps `fd` open until after this call.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match py.detach(move || writer.into_inner().send_file(fd, offset, len)) {
            Ok(sent) => {
                self.sent |= sent > 0;
                Ok(())
            }
            Err(HostError::Closed) => {
                self.client_gone = true;
                Err(PyOSError::new_err("rustgun: the client went away"))
            }
            Err(e) => Err(PyOSError::new_err(format!("rustgun: cannot send the file: {e}"))),
        }
    }
}

/// Re-raises an `exc_info` tuple: `raise exc_info[1].with_traceback(exc_info[2])`.
fn reraise(exc_info: &Bound<'_, PyAny>) -> PyErr {
    match exc_info.get_item(1) {
        Ok(value) => {
            let value = match exc_info.get_item(2) {
                Ok(tb) if !tb.is_none() => value.call_method1("with_traceback", (tb,)).unwrap_or(value),
                _ => value,
            };
            PyErr::from_value(value)
        }
        Err(e) => e,
    }
}

/// Encodes a native string (PEP 3333: `str` holding latin-1 code points) to bytes.
fn latin1(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    let Ok(s) = value.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!("{what} {} is not a string", value.repr()?)));
    };
    let text = s.to_cow()?;
    text.chars().map(|c| u8::try_from(u32::from(c))).collect::<Result<Vec<u8>, _>>().map_err(|_| {
        PyValueError::new_err(format!(
            "{what} {} is not latin-1",
            value.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}

/// `"200 OK"` → (200, `"OK"`).
fn parse_status(status: &Bound<'_, PyAny>) -> PyResult<(u16, String)> {
    let raw = latin1(status, "status")?;
    let text = String::from_utf8_lossy(&raw);
    let (code, reason) = text.split_once(' ').unwrap_or((&text, ""));
    match code.parse::<u16>() {
        Ok(code) if code.to_string().len() == 3 => Ok((code, reason.trim().to_string())),
        _ => {
            Err(PyValueError::new_err(format!("invalid status {text:?}: it must start with a 3-digit code")))
        }
    }
}

fn header_pairs(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for item in headers.try_iter()? {
        let item = item?;
        let pair = item.cast::<PyTuple>().ok().filter(|t| t.len() == 2).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "header {} is not a (name, value) tuple",
                item.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        out.push((latin1(&pair.get_item(0)?, "header name")?, latin1(&pair.get_item(1)?, "header value")?));
    }
    Ok(out)
}

#[pymethods]
impl Responder {
    /// `start_response(status, response_headers, exc_info=None)` → `write`.
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        {
            let mut me = slf.borrow_mut();
            let replacing = match exc_info {
                Some(exc) if !exc.is_none() => {
                    if me.sent || me.pulling {
                        return Err(reraise(exc));
                    }
                    me.started
                }
                _ if me.started => return Err(PyAssertionError::new_err("Response headers already set!")),
                _ => false,
            };
            let (code, reason) = parse_status(status)?;
            let pairs = header_pairs(headers)?;
            let list: Vec<Header<'_>> = pairs.iter().map(|(n, v)| Header::new(n, v)).collect();
            let reason = if reason.is_ascii() { reason } else { String::new() };
            let writer = me.writer()?;
            let recorded = if replacing {
                writer.restart_with_reason(code, &reason, &list)
            } else {
                writer.start_with_reason(code, &reason, &list)
            };
            match recorded {
                Ok(()) => {
                    me.started = true;
                    if rustgun_python::hooks::per_request() {
                        me.head = Some((status.clone().unbind(), headers.clone().unbind()));
                    }
                }
                Err(HostError::Invalid) => {
                    return Err(PyValueError::new_err(format!(
                        "invalid response status or header (status {code}, headers {})",
                        headers.repr()?
                    )));
                }
                Err(HostError::State) => {
                    return Err(PyRuntimeError::new_err("the response head can no longer be replaced"));
                }
                Err(e) => return Err(PyOSError::new_err(format!("rustgun: start_response failed: {e}"))),
            }
        }
        slf.getattr("write")
    }

    /// The legacy `write(data)` callable start_response returns.
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let Ok(bytes) = data.cast::<PyBytes>() else {
            return Err(PyTypeError::new_err(format!("{} is not a byte string", data.repr()?)));
        };
        self.send(py, bytes.as_bytes())
    }
}

/// `wsgi.errors`: a text stream whose lines go to rustgun's error log.
#[pyclass(module = "rustgun", name = "Errors")]
#[derive(Default)]
pub struct Errors {
    partial: Mutex<String>,
}

impl Errors {
    fn emit(&self, text: &str, flush: bool) {
        let mut partial = self.partial.lock().unwrap_or_else(|e| e.into_inner());
        partial.push_str(text);
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            log(Level::Error, line.trim_end_matches(['\n', '\r']));
        }
        if flush && !partial.is_empty() {
            log(Level::Error, &partial);
            partial.clear();
        }
    }
}

#[pymethods]
impl Errors {
    fn write(&self, text: &Bound<'_, PyAny>) -> PyResult<usize> {
        let text = match text.cast::<PyString>() {
            Ok(s) => s.to_cow()?.into_owned(),
            Err(_) => text.str()?.to_cow()?.into_owned(),
        };
        self.emit(&text, false);
        Ok(text.chars().count())
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    fn flush(&self) {
        self.emit("", true);
    }

    fn writable(&self) -> bool {
        true
    }
}
