//! The HTTP/2 connection (frames, HPACK, stream states, flow control) on arbitrary client bytes after
//! the preface: never a panic, and the same outcome whether the bytes arrive whole or in two pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustgun_http::h2::conn::{Config, Connection, Event};
use rustgun_http::h2::frame::PREFACE;

/// Feeds `pieces` in turn (what a piece leaves unused is kept for the next), then answers every
/// request (the sending half exercised too); what happened, as text.
fn feed(pieces: &[&[u8]]) -> String {
    let mut conn = Connection::new(Config::default());
    let mut events = Vec::new();
    let mut pending = PREFACE.to_vec();
    for piece in pieces {
        pending.extend_from_slice(piece);
        match conn.receive(&pending, &mut events) {
            Ok(used) => {
                pending.drain(..used);
            }
            Err(e) => return format!("{events:?} {:?} error {e:?}", conn.output()),
        }
    }
    for event in &events {
        if let Event::Request { stream, .. } = event {
            conn.respond(*stream, 200, &[(b"content-type", b"text/plain")], false);
            conn.send_data(*stream, b"ok", true);
        }
    }
    format!("{events:?} {:?}", conn.output())
}

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let whole = feed(&[data]);
    let split = feed(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole, split);
});
