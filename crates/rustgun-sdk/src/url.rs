//! Percent-decoding and query-string parsing (`application/x-www-form-urlencoded` rules: `&`
//! separates pairs, `=` splits a pair, `+` is a space). Pure functions over bytes; malformed escapes
//! (`%zz`, a trailing `%`) are kept literally, as browsers and Python's `urllib.parse` do.

use std::borrow::Cow;

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(input: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    let needs_work = input.iter().any(|&b| b == b'%' || (plus_is_space && b == b'+'));
    if !needs_work {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' && i + 2 < input.len() {
            if let (Some(hi), Some(lo)) = (hex_val(input[i + 1]), hex_val(input[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    Cow::Owned(out)
}

/// Decodes `%XX` escapes (`+` stays a `+`), as for a path.
pub fn percent_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, false)
}

/// Decodes a form component: `%XX` escapes and `+` as a space, as for a query parameter.
pub fn form_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, true)
}

/// The `(name, value)` pairs of a query string, decoded, in order, duplicates kept. Empty pieces
/// (`a&&b`) are skipped; a piece without `=` has an empty value.
pub fn parse_query(query: &[u8]) -> impl Iterator<Item = (Cow<'_, [u8]>, Cow<'_, [u8]>)> {
    query.split(|&b| b == b'&').filter(|piece| !piece.is_empty()).map(|piece| {
        let (name, value) = match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], &piece[eq + 1..]),
            None => (piece, &b""[..]),
        };
        (form_decode(name), form_decode(value))
    })
}

/// The decoded value of the first parameter named `name` (compared after decoding).
pub fn query_param<'q>(query: &'q [u8], name: &[u8]) -> Option<Cow<'q, [u8]>> {
    parse_query(query).find(|(n, _)| n.as_ref() == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(&*percent_decode(b"/a%20b"), b"/a b");
        assert_eq!(&*percent_decode(b"/a%2Fb%2f"), b"/a/b/");
        assert_eq!(&*percent_decode(b"a+b"), b"a+b");
        assert_eq!(&*percent_decode(b"%e2%82%AC"), "€".as_bytes());
        assert_eq!(&*percent_decode(b"%ff"), b"\xff");
        // Malformed escapes stay as they are.
        assert_eq!(&*percent_decode(b"100%"), b"100%");
        assert_eq!(&*percent_decode(b"%4"), b"%4");
        assert_eq!(&*percent_decode(b"%zz%41"), b"%zzA");
        assert_eq!(&*percent_decode(b"%%41"), b"%A");
        assert!(matches!(percent_decode(b"/plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn form_decoding() {
        assert_eq!(&*form_decode(b"a+b%2Bc"), b"a b+c");
        assert_eq!(&*form_decode(b"+"), b" ");
    }

    #[test]
    fn query_parsing() {
        let pairs: Vec<_> = parse_query(b"x=1&y=a+b&&flag&x=2&e=&=v&k=a=b")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            [("x", "1"), ("y", "a b"), ("flag", ""), ("x", "2"), ("e", ""), ("", "v"), ("k", "a=b")]
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
        assert_eq!(pairs, want);
        assert_eq!(parse_query(b"").count(), 0);
    }

    #[test]
    fn query_param_lookup() {
        let q = b"name=J%C3%B6rg+M&x=1&x=2&a%20b=c";
        assert_eq!(query_param(q, b"name").as_deref(), Some("Jörg M".as_bytes()));
        assert_eq!(query_param(q, b"x").as_deref(), Some(&b"1"[..]));
        assert_eq!(query_param(q, b"a b").as_deref(), Some(&b"c"[..]));
        assert_eq!(query_param(q, b"missing"), None);
    }
}
