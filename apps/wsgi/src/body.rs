//! The response iterable after `handle` returned: a pull-mode [`BodySource`] that calls `next()` on the
//! Python iterator (with the GIL) whenever the server's socket can take more, and the [`Closer`] that
//! calls the iterable's `close()` exactly once however the response ends.

use std::io;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyTuple};
use rustgun_sdk::BodySource;

use crate::objects::Responder;
use crate::{bytes_of, log_exception};

/// Calls the app's iterable's `close()` (if it has one) when dropped, with the GIL: PEP 3333's
/// "close() must be called" on every path, including a client that went away.
pub struct Closer(Option<Py<PyAny>>);

impl Closer {
    /// A plain list or tuple has no `close()`: asking for it would raise (and format) an
    /// AttributeError on every request, so it gets no closer.
    pub fn new(result: &Bound<'_, PyAny>) -> Closer {
        let plain = result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>();
        Closer((!plain).then(|| result.clone().unbind()))
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        let Some(result) = self.0.take() else { return };
        Python::attach(|py| {
            let result = result.into_bound(py);
            match result.getattr_opt("close") {
                Ok(Some(close)) => {
                    if let Err(e) = close.call0() {
                        log_exception(py, "Error closing the response iterable", &e);
                    }
                }
                Ok(None) => {}
                Err(e) => log_exception(py, "Error closing the response iterable", &e),
            }
        });
    }
}

/// Bytes on their way to the socket: a Python bytes object kept alive, or bytes the app queued with
/// `write()` while the body was being pulled.
enum Keep {
    Py(#[allow(dead_code)] Py<PyBytes>),
    Owned(#[allow(dead_code)] Vec<u8>),
}

struct Chunk {
    ptr: *const u8,
    len: usize,
    offset: usize,
    _keep: Keep,
}

impl Chunk {
    fn py(bytes: Bound<'_, PyBytes>) -> Chunk {
        let data = bytes.as_bytes();
        // A bytes object's buffer is immutable and never moves while a reference is held.
        Chunk { ptr: data.as_ptr(), len: data.len(), offset: 0, _keep: Keep::Py(bytes.unbind()) }
    }

    fn owned(data: Vec<u8>) -> Chunk {
        Chunk { ptr: data.as_ptr(), len: data.len(), offset: 0, _keep: Keep::Owned(data) }
    }
}

/// The rest of a response iterable, pulled by the server.
pub struct PyBody {
    iter: Option<Py<PyIterator>>,
    responder: Py<Responder>,
    chunk: Option<Chunk>,
    request: String,
    closer: Option<Closer>,
}

// SAFETY: the raw pointer in `chunk` points into the bytes object (or vector) the chunk owns; Python
// objects are only touched with the GIL.
unsafe impl Send for PyBody {}

impl PyBody {
    /// The iterator `iter` after its first chunk `first`, for the request named `request` (logs).
    pub fn new(
        iter: Bound<'_, PyIterator>,
        first: Bound<'_, PyBytes>,
        responder: Py<Responder>,
        request: String,
        closer: Closer,
    ) -> PyBody {
        PyBody {
            iter: Some(iter.unbind()),
            responder,
            chunk: Some(Chunk::py(first)),
            request,
            closer: Some(closer),
        }
    }

    /// Gets the next chunk from the app (queued `write()`s first); `false` at the end.
    fn pull(&mut self) -> io::Result<bool> {
        crate::attach(|py| {
            self.chunk = None;
            loop {
                let queued = match self.responder.try_borrow_mut(py) {
                    Ok(mut r) => std::mem::take(&mut r.queued),
                    Err(_) => Vec::new(),
                };
                if !queued.is_empty() {
                    self.chunk = Some(Chunk::owned(queued));
                    return Ok(true);
                }
                let Some(iter) = self.iter.as_ref() else { return Ok(false) };
                let step = iter.bind(py).clone().next();
                match step {
                    None => {
                        self.iter = None;
                    }
                    Some(Ok(item)) => match bytes_of(&item) {
                        Ok(bytes) if bytes.as_bytes().is_empty() => {}
                        Ok(bytes) => {
                            self.chunk = Some(Chunk::py(bytes));
                            return Ok(true);
                        }
                        Err(e) => return Err(self.failed(py, &e)),
                    },
                    Some(Err(e)) => return Err(self.failed(py, &e)),
                }
            }
        })
    }

    fn failed(&mut self, py: Python<'_>, e: &PyErr) -> io::Error {
        self.iter = None;
        log_exception(py, &format!("Error handling request {}", self.request), e);
        io::Error::other("the WSGI response iterable raised")
    }
}

impl BodySource for PyBody {
    fn next(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = &mut self.chunk
                && chunk.offset < chunk.len
            {
                let n = (chunk.len - chunk.offset).min(buf.len());
                // SAFETY: `ptr..ptr+len` is the chunk's own live buffer; `offset + n <= len`.
                let data = unsafe { std::slice::from_raw_parts(chunk.ptr.add(chunk.offset), n) };
                buf[..n].copy_from_slice(data);
                chunk.offset += n;
                return Ok(n);
            }
            if !self.pull()? {
                return Ok(0);
            }
        }
    }
}

impl Drop for PyBody {
    fn drop(&mut self) {
        crate::attach(|py| {
            self.chunk = None;
            self.iter = None;
            if let Ok(mut responder) = self.responder.try_borrow_mut(py) {
                responder.pulling = false;
                responder.queued = Vec::new();
            }
        });
        drop(self.closer.take());
    }
}
