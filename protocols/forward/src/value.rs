//! Record values: [`rmpv::Value`] as decoded, and their JSON.
//!
//! What a record may hold, and how it maps to JSON here:
//! - `Value::String`: msgpack str, raw bytes kept even when not UTF-8 (Fluent
//!   Bit and Ruby send binary in str) → JSON string, lossy UTF-8.
//! - `Value::Binary`: msgpack bin, kept as bytes (some clients send Docker's
//!   `log` as bin) → JSON string, lossy UTF-8.
//! - `Value::Ext(0, 8 bytes)`: an EventTime inside a record → integer seconds,
//!   as Fluentd's `EventTime#to_json`. Other ext → `{"ext":type,"data":"<hex>"}`.
//! - Integers, floats (non-finite → `null`), bools, nil, arrays, maps.
//! - Map keys that are not str/bin become strings: nil → `""` (Ruby's
//!   `nil.to_s`), anything else its JSON text (`1` → `"1"`).
//!
//! From JSON connections the same type comes out (numbers as Integer/F64).

use std::borrow::Cow;

use rmpv::Value;

/// The bytes of a str or bin value.
pub fn bytes_of(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        Value::Binary(b) => Some(b),
        _ => None,
    }
}

/// A str or bin value as text (lossy UTF-8, borrowed when valid).
pub fn text_of(v: &Value) -> Option<Cow<'_, str>> {
    bytes_of(v).map(String::from_utf8_lossy)
}

/// The value of `key` in a map whose keys are str or bin (first match; Fluent
/// records seldom repeat keys).
pub fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    match map {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| bytes_of(k) == Some(key.as_bytes()))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Appends `v` as JSON to `out` (see the module doc for the mapping).
pub fn write_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Integer(i) => {
            if let Some(n) = i.as_i64() {
                write_display(out, n);
            } else if let Some(n) = i.as_u64() {
                write_display(out, n);
            }
        }
        Value::F32(f) => write_float(out, f64::from(*f)),
        Value::F64(f) => write_float(out, *f),
        Value::String(_) | Value::Binary(_) => write_str(out, bytes_of(v).unwrap_or_default()),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, out);
            }
            out.push(b']');
        }
        Value::Map(pairs) => {
            out.push(b'{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_key(k, out);
                out.push(b':');
                write_json(v, out);
            }
            out.push(b'}');
        }
        Value::Ext(0, d) if d.len() == 8 => {
            write_display(out, u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
        }
        Value::Ext(ty, d) => {
            out.extend_from_slice(b"{\"ext\":");
            write_display(out, ty);
            out.extend_from_slice(b",\"data\":\"");
            for b in d {
                out.extend_from_slice(&HEX[usize::from(*b >> 4)..][..1]);
                out.extend_from_slice(&HEX[usize::from(*b & 15)..][..1]);
            }
            out.extend_from_slice(b"\"}");
        }
    }
}

/// `v` as a JSON string.
pub fn to_json(v: &Value) -> String {
    let mut out = Vec::with_capacity(128);
    write_json(v, &mut out);
    // write_json emits only lossy-decoded text, so the bytes are UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_key(k: &Value, out: &mut Vec<u8>) {
    match k {
        Value::String(_) | Value::Binary(_) => write_str(out, bytes_of(k).unwrap_or_default()),
        Value::Nil => out.extend_from_slice(b"\"\""),
        other => {
            let mut text = Vec::new();
            write_json(other, &mut text);
            write_str(out, &text);
        }
    }
}

fn write_display(out: &mut Vec<u8>, n: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "{n}");
}

fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &f);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// JSON string of lossy-UTF-8 `bytes`, escaping what RFC 8259 requires.
fn write_str(out: &mut Vec<u8>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    out.reserve(text.len() + 2);
    out.push(b'"');
    let s = text.as_bytes();
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_mapping() {
        let v = Value::Map(vec![
            (Value::from("log"), Value::Binary(b"a\"b\n\xff".to_vec())),
            (Value::from(1), Value::Nil),
            (Value::Nil, Value::from(1.5)),
            (
                Value::from("t"),
                Value::Ext(0, vec![0, 0, 1, 0, 0, 0, 0, 1]),
            ),
            (Value::from("x"), Value::Ext(5, vec![0xab, 1])),
            (Value::from("n"), Value::from(-3)),
            (Value::from("c"), Value::from("\u{1}é")),
            (Value::from("f"), Value::F64(f64::NAN)),
            (Value::from("u"), Value::from(u64::MAX)),
            (
                Value::from("a"),
                Value::Array(vec![true.into(), false.into()]),
            ),
        ]);
        let j = to_json(&v);
        assert_eq!(
            j,
            r#"{"log":"a\"b\n�","1":null,"":1.5,"t":256,"x":{"ext":5,"data":"ab01"},"n":-3,"c":"\u0001é","f":null,"u":18446744073709551615,"a":[true,false]}"#
        );
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["log"], "a\"b\n\u{fffd}");
        assert_eq!(text_of(get(&v, "log").unwrap()).unwrap(), "a\"b\n\u{fffd}");
    }
}
