//! `libhello.so`: every request gets `200`, `Content-Type: text/plain` and `Hello, World!`.
//!
//! The benchmark app, so it takes the fast path: a low-level [`App`] whose head is a static header
//! array and whose body is a static slice. Nothing is allocated per request.

use rustgun_sdk::{App, Error, Header, Request, ResponseWriter};

const BODY: &[u8] = b"Hello, World!";

static HEADERS: [Header<'static>; 2] =
    [Header::new(b"Content-Type", b"text/plain"), Header::new(b"Content-Length", b"13")];

// The Content-Length above is spelled out by hand: keep it honest.
const _: () = assert!(BODY.len() == 13);

/// The app: stateless.
struct Hello;

impl App for Hello {
    fn handle(&self, _req: &mut Request<'_>, resp: &mut ResponseWriter<'_>) -> Result<(), Error> {
        resp.start(200, &HEADERS)?;
        resp.write(BODY)?;
        Ok(())
    }
}

rustgun_sdk::export_app!(app, || Hello);
