//! JSON helpers: [`PythonFormatter`], a `serde_json` formatter that writes what Python's
//! `json.dumps(value)` writes with its defaults (`", "` and `": "` separators, `ensure_ascii`, Python's
//! float `repr`), and [`to_vec_python`] / [`to_string_python`] over it. `Response::json` and
//! `Request::json` live with the request and response types.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

pub use serde_json::{Value, json};

/// Formats like Python's `json.dumps(obj)` with default arguments: `{"a": 1, "b": [1, 2]}`, every
/// character outside printable ASCII escaped as `\uXXXX` (surrogate pairs past U+FFFF), floats as
/// Python's `repr` (`1e+16`, `1e-05`, `0.1`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        // `serde_json` has already split off `"`, `\` and the C0 controls (escaped the way Python does:
        // `\n`, `\t`, …, `\u001f`); what is left needs escaping past printable ASCII.
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        let s: &[u8] = match char_escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(writer, "\\u{byte:04x}"),
        };
        writer.write_all(s)
    }

    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        // `serde_json` writes `null` for NaN and the infinities before it gets here.
        writer.write_all(python_float_repr(format!("{value:e}")).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        writer.write_all(python_float_repr(format!("{value:e}")).as_bytes())
    }
}

/// Python's `float.__repr__` from Rust's shortest round-trip `{:e}` form (`-1.25e-7`): the same digits,
/// laid out as Python does (positional when the decimal exponent is in -4..16, else `d.ddde±XX`).
fn python_float_repr(sci: String) -> String {
    let (mantissa, exp) = match sci.split_once('e') {
        Some(parts) => parts,
        None => return sci,
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if digits.bytes().all(|b| b == b'0') {
        return format!("{sign}0.0");
    }
    // The value is 0.DIGITS × 10^decpt.
    let decpt = exp + 1;
    if (-3..=16).contains(&decpt) {
        if decpt <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
        } else if decpt as usize >= digits.len() {
            let zeros = "0".repeat(decpt as usize - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.unsigned_abs())
    }
}

/// Serializes `value` the way Python's `json.dumps(value)` would.
pub fn to_vec_python<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut ser = Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Serializes `value` the way Python's `json.dumps(value)` would.
pub fn to_string_python<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let bytes = to_vec_python(value)?;
    // The formatter writes ASCII only.
    Ok(String::from_utf8(bytes).expect("PythonFormatter writes ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(v: &Value) -> String {
        to_string_python(v).unwrap()
    }

    #[test]
    fn python_separators_and_key_order() {
        let v = json!({"result": "hello", "params": "x=1", "body": "{\"0\": 0}"});
        assert_eq!(py(&v), r#"{"result": "hello", "params": "x=1", "body": "{\"0\": 0}"}"#);
        assert_eq!(py(&json!({"id": "42"})), r#"{"id": "42"}"#);
        assert_eq!(
            py(&json!({"a": [1, [], {}, {"b": null}], "c": true})),
            r#"{"a": [1, [], {}, {"b": null}], "c": true}"#
        );
        assert_eq!(py(&json!([])), "[]");
        assert_eq!(py(&json!({})), "{}");
    }

    #[test]
    fn python_string_escapes() {
        // json.dumps("é€😀\x7f/\n\x01\"\\")
        assert_eq!(py(&json!("é€😀\u{7f}/\n\u{1}\"\\")), r#""\u00e9\u20ac\ud83d\ude00\u007f/\n\u0001\"\\""#);
    }

    #[test]
    fn python_floats() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e22, "1e+22"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e-300, "1e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (9007199254740993.0, "9007199254740992.0"),
            (1234567890123456.7, "1234567890123456.8"),
        ];
        for (value, want) in cases {
            assert_eq!(py(&json!(value)), *want, "{value:e}");
        }
    }
}
