//! Rows for slow clients: a head or a body that stops arriving, or trickles in, gets 408 once the
//! server's timeout has passed (RFC 9110 §15.5.9). These are the timed rows: their verdict depends
//! on the clock, so they keep their own client and are not replayed cut.

use super::Expect::Refused;
use super::{Client, Row, Setup};

pub(super) fn rows() -> Vec<Row> {
    vec![
        // Slow clients.
        Row {
            rule: "head not complete within --header-timeout",
            rfc: "9110 §15.5.9",
            setup: Setup::HeaderTimeout,
            client: Client::Stall,
            request: b"GET /ok HTTP/1.1\r\nHost: t\r\n",
            expect: Refused(408),
        },
        Row {
            rule: "slowloris: a head trickled byte by byte still ends at --header-timeout",
            rfc: "9110 §15.5.9",
            setup: Setup::HeaderTimeout,
            client: Client::Trickle,
            request: b"GET /ok HTTP/1.1\r\nHost: t\r\nX-Slow: 0123456789\r\n\r\n",
            expect: Refused(408),
        },
        Row {
            rule: "Content-Length body stalled for a --min-rate-period",
            rfc: "9110 §15.5.9",
            setup: Setup::BodyTimeout,
            client: Client::Stall,
            request: b"POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",
            expect: Refused(408),
        },
        Row {
            rule: "chunked body stalled for a --min-rate-period",
            rfc: "9110 §15.5.9",
            setup: Setup::BodyTimeout,
            client: Client::Stall,
            request: b"POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            expect: Refused(408),
        },
    ]
}
