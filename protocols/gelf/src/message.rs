//! The GELF 1.1 message and its JSON form.
//!
//! Decoding is lenient in the way Logstash's gelf input is, because logport
//! must accept whatever that input accepted: nothing a real client sends is
//! rejected for its content, only for not being a JSON object.
//!
//! * `version`: any string is kept as sent ("1.1", "1.0" from old clients);
//!   absent is `None`. Nothing is rejected for its version.
//! * `host` and `short_message` are required by the spec but `None` when
//!   absent: Logstash keeps such messages (its `remap` then falls back to
//!   `full_message`, or leaves `message` unset); Graylog would refuse them.
//! * `timestamp`: a JSON number, or a string holding a number (as Graylog's
//!   codec parses it; some clients quote it). Exponent notation is fine
//!   (`1.660873462488E13`, a millisecond sender; no unit guessing is done).
//! * `level`, `line`: an integer, an integral float (`6.0`) or a string holding
//!   an integer.
//! * A standard field whose value has some other type is not an error: it goes
//!   to [`Message::other`] verbatim, with the non-`_` keys the spec forbids
//!   but clients send anyway, so nothing is lost.
//! * Additional fields (`_` keys) keep their order and any JSON value
//!   (booleans, null, objects), though the spec says string or number.
//!   `_id`, reserved by the spec for Graylog, is kept like any other field, as
//!   Logstash does (it becomes `id` there).

use serde_json::{Map, Value};

use crate::payload::PayloadError;

/// One GELF message. `PartialEq` compares floats exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    pub version: Option<String>,
    pub host: Option<String>,
    pub short_message: Option<String>,
    pub full_message: Option<String>,
    /// Seconds since the epoch, as sent (milliseconds by buggy senders).
    pub timestamp: Option<f64>,
    /// Syslog severity. Absent means 1 (ALERT) per the spec; Logstash leaves it
    /// absent, so no default is filled in here.
    pub level: Option<i64>,
    /// Deprecated by GELF 1.1, still sent by old clients.
    pub facility: Option<String>,
    /// Deprecated by GELF 1.1.
    pub file: Option<String>,
    /// Deprecated by GELF 1.1.
    pub line: Option<i64>,
    /// Keys starting with `_`, in payload order, underscore included.
    pub additional: Map<String, Value>,
    /// Everything else: keys outside the spec, and standard keys whose value
    /// had a type that could not be taken (e.g. `"host": 12`), in payload order.
    pub other: Map<String, Value>,
}

impl Message {
    /// Parses one JSON object. Leading whitespace and trailing whitespace or
    /// NUL bytes (some UDP senders terminate datagrams like TCP frames) are
    /// ignored.
    pub fn from_json(json: &[u8]) -> Result<Message, PayloadError> {
        let end = json
            .iter()
            .rposition(|&b| !matches!(b, b'\0' | b' ' | b'\t' | b'\r' | b'\n'))
            .map_or(0, |k| k + 1);
        let json = &json[..end];
        let start = json
            .iter()
            .position(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .ok_or(PayloadError::Empty)?;
        if json[start] != b'{' {
            return Err(PayloadError::NotAnObject {
                offset: start,
                byte: json[start],
            });
        }
        let map: Map<String, Value> =
            serde_json::from_slice(json).map_err(|e| PayloadError::Json {
                line: e.line(),
                column: e.column(),
                reason: e.to_string(),
            })?;
        Ok(Message::from_map(map))
    }

    /// Sorts the fields of an already parsed object into a `Message`.
    pub fn from_map(map: Map<String, Value>) -> Message {
        let mut m = Message::default();
        for (k, v) in map {
            if k.starts_with('_') {
                m.additional.insert(k, v);
                continue;
            }
            let v = match k.as_str() {
                "version" => take_string(&mut m.version, v),
                "host" => take_string(&mut m.host, v),
                "short_message" => take_string(&mut m.short_message, v),
                "full_message" => take_string(&mut m.full_message, v),
                "facility" => take_string(&mut m.facility, v),
                "file" => take_string(&mut m.file, v),
                "timestamp" => match number(&v) {
                    Some(t) => {
                        m.timestamp = Some(t);
                        None
                    }
                    None => Some(v),
                },
                "level" => take_integer(&mut m.level, v),
                "line" => take_integer(&mut m.line, v),
                _ => Some(v),
            };
            if let Some(v) = v {
                m.other.insert(k, v);
            }
        }
        m
    }

    /// The message as compact JSON: standard fields in spec order, then the
    /// additional fields, then [`Message::other`]. Absent fields are omitted.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(b'{');
        let mut first = true;
        let mut field = |out: &mut Vec<u8>, key: &str, value: &dyn Fn(&mut Vec<u8>)| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, key);
            out.push(b':');
            value(out);
        };
        let strings = [
            ("version", &self.version),
            ("host", &self.host),
            ("short_message", &self.short_message),
            ("full_message", &self.full_message),
        ];
        for (key, v) in strings {
            if let Some(s) = v {
                field(&mut out, key, &|o| write_str(o, s));
            }
        }
        if let Some(t) = self.timestamp {
            field(&mut out, "timestamp", &|o| write_value(o, &t));
        }
        if let Some(l) = self.level {
            field(&mut out, "level", &|o| write_value(o, &l));
        }
        if let Some(s) = &self.facility {
            field(&mut out, "facility", &|o| write_str(o, s));
        }
        if let Some(s) = &self.file {
            field(&mut out, "file", &|o| write_str(o, s));
        }
        if let Some(l) = self.line {
            field(&mut out, "line", &|o| write_value(o, &l));
        }
        for (k, v) in self.additional.iter().chain(self.other.iter()) {
            field(&mut out, k, &|o| write_value(o, v));
        }
        out.push(b'}');
        out
    }

    /// `timestamp` in whole microseconds since the epoch, rounded to the
    /// nearest: an f64 of today's seconds holds microseconds exactly enough
    /// that the digits a client sent (Docker: milliseconds) come back as sent,
    /// which is what Logstash's rationalised `@timestamp` keeps.
    /// `None` when absent or out of range.
    pub fn timestamp_micros(&self) -> Option<i64> {
        let us = (self.timestamp? * 1e6).round();
        // i64::MAX as f64 rounds up to 2^63, itself out of range.
        (us.is_finite() && us >= i64::MIN as f64 && us < i64::MAX as f64).then_some(us as i64)
    }
}

fn take_string(slot: &mut Option<String>, v: Value) -> Option<Value> {
    match v {
        Value::String(s) => {
            *slot = Some(s);
            None
        }
        v => Some(v),
    }
}

fn take_integer(slot: &mut Option<i64>, v: Value) -> Option<Value> {
    let n = match &v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) => {
            *slot = Some(n);
            None
        }
        None => Some(v),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_value(out, &s);
}

fn write_value<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing to a Vec cannot fail, and every value here serialises (map keys
    // are strings).
    serde_json::to_writer(&mut *out, v).expect("JSON to a Vec");
}
