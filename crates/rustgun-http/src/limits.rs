//! What a request head may be ([`Limits`], gunicorn's `--limit-request-*` and `--header-map`), and
//! the sizes derived from them.
//!
//! Not here: applying them to bytes (`parse`).

/// What a request head may be, as gunicorn names its limits.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Longest request line in bytes, without CRLF (`--limit-request-line`); 0 = unlimited (8190).
    pub request_line: usize,
    /// Most header fields (`--limit-request-fields`).
    pub fields: usize,
    /// Longest header line as sent, its CRLF included, as gunicorn counts it
    /// (`--limit-request-field-size`).
    pub field_size: usize,
    /// Most bytes of a whole head, request line and fields together (`--limit-request-head`): what
    /// one connection's unfinished head may hold of a worker's memory.
    pub head: usize,
    /// What to do with header names containing `_` (`--header-map`).
    pub header_map: HeaderMap,
    /// Names with `_` a trusted proxy may send whatever `header_map` says (gunicorn's
    /// `--forwarder-headers`, `SCRIPT_NAME` and `PATH_INFO` by default; `*` for every one), compared
    /// without case. They are kept at parse time; [`crate::parse::RequestHead::check_forwarder`] applies
    /// `header_map` to them once the peer is known.
    pub forwarder: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 4094,
            fields: 100,
            field_size: 8190,
            head: DEFAULT_HEAD_LIMIT,
            header_map: HeaderMap::Drop,
            forwarder: vec!["SCRIPT_NAME".into(), "PATH_INFO".into()],
        }
    }
}

impl Limits {
    /// Whether `name` (which has a `_`) is one a trusted proxy may send.
    pub(crate) fn forwards(&self, name: &[u8]) -> bool {
        self.forwarder.iter().any(|f| f == "*" || f.as_bytes().eq_ignore_ascii_case(name))
    }

    pub(crate) fn request_line_max(&self) -> usize {
        if self.request_line == 0 { 8190 } else { self.request_line }
    }

    /// The most bytes a head may take (leading empty lines included) before it is refused as too
    /// large: room for the longest request line and the most fields of the longest size, and never
    /// more than the total head limit.
    pub fn head_max(&self) -> usize {
        let fields = self.request_line_max() + 2 + self.fields * (self.field_size + 2) + 2;
        fields.min(self.head.max(1))
    }
}

/// `--limit-request-head`'s default: 64 KiB, eight times gunicorn's longest header line and twice
/// nginx's `large_client_header_buffers` (4 × 8 KiB).
pub const DEFAULT_HEAD_LIMIT: usize = 64 * 1024;

/// Header names containing `_` are ambiguous once mapped into a CGI environ (`X_Auth` and `X-Auth`
/// both become `HTTP_X_AUTH`), so by default they never reach the environ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderMap {
    /// Dropped: in neither the environ nor the raw header list (gunicorn's default).
    Drop,
    /// Refused with 400.
    Refuse,
    /// Mapped into the environ like any other name.
    Dangerous,
}
