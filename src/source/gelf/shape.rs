//! GELF payloads → Logstash-shaped JSON, as logstash-input-gelf (3.4, `gelf.rb`) builds the
//! event and a `json` codec writes it:
//!
//! * the JSON object is taken as it is (every key and value as sent: `host`, `level`,
//!   `version`, `facility`, `_…` extras, even keys the spec forbids);
//! * `source_host`: the sender's IP;
//! * a numeric `timestamp` becomes `@timestamp` (to the digits sent: Logstash rationalises the
//!   float, this reads its shortest decimal form) and is removed; any other `timestamp` stays;
//! * `remap`: a non-empty `full_message` becomes `message` (and `short_message` goes if equal),
//!   else a non-empty `short_message` becomes `message`;
//! * `strip_leading_underscore`: `_foo` becomes `foo`; `_@timestamp` must be a number (or a
//!   string holding one) or the event is tagged `_gelf_move_field_failure` and keeps it;
//! * `@version: "1"`.
//!
//! That input has no ECS mode: `ecs_compatibility` changes nothing here. A payload that is not
//! a JSON object is kept as Logstash keeps it: its text as `message`, tagged
//! `_jsonparsefailure` (Logstash writes Ruby's `inspect` of it, quotes and escapes added; the
//! text is kept as sent here).

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use logport_gelf::{decompress, detect, Encoding, PayloadError};
use serde_json::{Map, Value};

use super::app::AppKey;
use crate::config::ListenerConfig;
use crate::event::write_rfc3339_utc;
use crate::source::off_core;
use crate::source::AppCache;

pub const JSON_FAILURE_TAG: &str = "_jsonparsefailure";
pub const MOVE_FAILURE_TAG: &str = "_gelf_move_field_failure";
pub const TIMESTAMP_FAILURE_TAG: &str = "_timestampparsefailure";

/// Years Logstash's JSON (and ours) can render: 0001 to 9999.
const MIN_SECS: i64 = -62_135_596_800;
const MAX_SECS: i64 = 253_402_300_799;

/// Shapes payloads of one listener. Built once per listener from its config.
#[derive(Clone, Debug)]
pub struct Shaper {
    remap: bool,
    strip: bool,
    max_decompressed: usize,
    pub app: AppKey,
}

/// What shaping one payload tells the caller beside the JSON it wrote.
#[derive(Debug)]
pub struct Shaped {
    pub app: Arc<str>,
    /// Not a JSON object: kept as text, tagged `_jsonparsefailure`.
    pub json_failed: bool,
}

impl Shaper {
    pub fn new(config: &ListenerConfig) -> anyhow::Result<Shaper> {
        let fields = config
            .app_fields
            .clone()
            .unwrap_or_else(AppKey::default_fields);
        Ok(Shaper {
            remap: config.gelf.remap,
            strip: config.gelf.strip_leading_underscore,
            max_decompressed: config.gelf.max_decompressed_bytes.0 as usize,
            app: AppKey::compile(&fields, &config.app_default).map_err(anyhow::Error::msg)?,
        })
    }

    /// Writes one event for `payload` (plain, zlib or gzip) into `out`. `now` is the receive
    /// time, the `@timestamp` of messages without a usable `timestamp`. An error (a corrupt or
    /// oversized compressed payload, or nothing at all) writes nothing.
    pub fn shape(
        &self,
        payload: &[u8],
        peer_ip: &str,
        now: (i64, u32),
        out: &mut BytesMut,
        apps: &mut AppCache,
    ) -> Result<Shaped, PayloadError> {
        // A compressed payload this long may inflate up to max_decompressed (a bomb does).
        let heavy = payload.len() >= 4 << 10 && detect(payload) != Encoding::Plain;
        let json = off_core(heavy, || decompress(payload, self.max_decompressed))?;
        // Some UDP senders end datagrams with a NUL, as on TCP.
        let end = json
            .iter()
            .rposition(|&b| !matches!(b, b'\0' | b' ' | b'\t' | b'\r' | b'\n'))
            .map_or(0, |k| k + 1);
        let json = &json[..end];
        if json.is_empty() {
            return Err(PayloadError::Empty);
        }
        let (event, json_failed) = match serde_json::from_slice::<Value>(json) {
            Ok(Value::Object(map)) => (self.event(map, peer_ip, now), false),
            _ => (failure_event(json, peer_ip, now), true),
        };
        let app = apps.get(&self.app.resolve(&event));
        // Serialising a map of JSON values into memory cannot fail.
        serde_json::to_writer(out.writer(), &event).expect("JSON into memory");
        Ok(Shaped { app, json_failed })
    }

    fn event(&self, map: Map<String, Value>, peer_ip: &str, now: (i64, u32)) -> Map<String, Value> {
        let mut fields = Map::with_capacity(map.len() + 1);
        let mut timestamp = None;
        let mut version = None;
        let mut tags: Option<Value> = None;
        // LogStash::Event.new(hash): `@timestamp`, `@version` and `tags` are the event's own.
        for (k, v) in map {
            match k.as_str() {
                "@timestamp" => match v.as_str().and_then(parse_rfc3339) {
                    Some(t) => timestamp = Some(t),
                    None => {
                        add_tag(&mut tags, TIMESTAMP_FAILURE_TAG);
                        fields.insert("_@timestamp".into(), v);
                    }
                },
                "@version" => version = Some(v),
                "tags" => tags = Some(v),
                _ => {
                    fields.insert(k, v);
                }
            }
        }
        fields.insert("source_host".into(), Value::String(peer_ip.to_owned()));
        if let Some(t) = fields
            .get("timestamp")
            .filter(|v| v.is_number())
            .and_then(unix_time)
        {
            timestamp = Some(t);
            fields.shift_remove("timestamp");
        }
        if self.remap {
            remap(&mut fields);
        }
        if self.strip {
            // One pass that rebuilds the map: removing keys one by one from an order-keeping
            // map is O(n) each, and a message with thousands of `_fields` would hold a thread.
            let old = std::mem::take(&mut fields);
            fields = Map::with_capacity(old.len());
            for (key, v) in old {
                let Some(dest) = key.strip_prefix('_').filter(|d| !d.is_empty()) else {
                    // A field that was also sent with an underscore keeps that value, as
                    // Logstash's move (the underscored one) overwrites it.
                    if !fields.contains_key(&key) {
                        fields.insert(key, v);
                    }
                    continue;
                };
                match dest {
                    "@timestamp" => {
                        // Logstash coerces numbers and numeric strings (BigDecimal) only.
                        let coerced = match &v {
                            Value::String(s) => s
                                .trim()
                                .parse::<f64>()
                                .ok()
                                .and_then(serde_json::Number::from_f64)
                                .map(Value::Number)
                                .as_ref()
                                .and_then(unix_time),
                            v => unix_time(v),
                        };
                        match coerced {
                            Some(t) => timestamp = Some(t),
                            None => {
                                add_tag(&mut tags, MOVE_FAILURE_TAG);
                                fields.insert(key, v);
                            }
                        }
                    }
                    "@version" => version = Some(v),
                    "tags" => tags = Some(v),
                    _ => {
                        fields.insert(dest.to_owned(), v);
                    }
                }
            }
        }
        let mut event = Map::with_capacity(fields.len() + 3);
        let (secs, nanos) = timestamp.unwrap_or(now);
        event.insert("@timestamp".into(), Value::String(render_time(secs, nanos)));
        event.insert(
            "@version".into(),
            version.unwrap_or_else(|| Value::String("1".into())),
        );
        event.extend(fields);
        if let Some(tags) = tags {
            event.insert("tags".into(), tags);
        }
        event
    }
}

fn failure_event(json: &[u8], peer_ip: &str, now: (i64, u32)) -> Map<String, Value> {
    let mut event = Map::with_capacity(5);
    event.insert(
        "@timestamp".into(),
        Value::String(render_time(now.0, now.1)),
    );
    event.insert("@version".into(), Value::String("1".into()));
    event.insert(
        "message".into(),
        Value::String(String::from_utf8_lossy(json).into_owned()),
    );
    event.insert("source_host".into(), Value::String(peer_ip.to_owned()));
    event.insert(
        "tags".into(),
        Value::Array(vec![Value::String(JSON_FAILURE_TAG.into())]),
    );
    event
}

/// `event.tag(tag)`: `tags` becomes an array if it was a single value.
fn add_tag(tags: &mut Option<Value>, tag: &str) {
    let mut list = match tags.take() {
        None => vec![],
        Some(Value::Array(a)) => a,
        Some(other) => vec![other],
    };
    if !list.iter().any(|t| t == tag) {
        list.push(Value::String(tag.to_owned()));
    }
    *tags = Some(Value::Array(list));
}

/// Logstash's `remap_gelf`: only non-empty strings count.
fn remap(fields: &mut Map<String, Value>) {
    let non_empty = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(full) = non_empty(fields.get("full_message")) {
        fields.shift_remove("full_message");
        if fields.get("short_message").and_then(Value::as_str) == Some(full.as_str()) {
            fields.shift_remove("short_message");
        }
        fields.insert("message".into(), Value::String(full));
    } else if let Some(short) = non_empty(fields.get("short_message")) {
        fields.shift_remove("short_message");
        fields.insert("message".into(), Value::String(short));
    }
}

/// A GELF `timestamp` (seconds since the epoch) as (seconds, nanoseconds), to the decimal
/// digits the sender wrote: the float's shortest decimal form is what it sent, and what
/// Logstash's `Float#rationalize` recovers. `None` for non-numbers and years beyond 1..9999.
fn unix_time(v: &Value) -> Option<(i64, u32)> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        return (MIN_SECS..=MAX_SECS).contains(&i).then_some((i, 0));
    }
    let f = n.as_f64()?;
    if !f.is_finite() || f < MIN_SECS as f64 || f > MAX_SECS as f64 + 1.0 {
        return None;
    }
    // `Display` for f64 is the shortest round-trip decimal, never in exponent form.
    let text = format!("{}", f.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int: i64 = int.parse().ok()?;
    let mut nanos: u32 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
    }
    let (secs, nanos) = if f < 0.0 {
        if nanos == 0 {
            (-int, 0)
        } else {
            (-int - 1, 1_000_000_000 - nanos)
        }
    } else {
        (int, nanos)
    };
    (MIN_SECS..=MAX_SECS)
        .contains(&secs)
        .then_some((secs, nanos))
}

fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let t: jiff::Timestamp = s.parse().ok()?;
    let secs = t.as_second();
    let nanos = t.subsec_nanosecond();
    // jiff gives a negative fraction before the epoch.
    if nanos < 0 {
        Some((secs - 1, (nanos + 1_000_000_000) as u32))
    } else {
        Some((secs, nanos as u32))
    }
}

fn render_time(secs: i64, nanos: u32) -> String {
    let mut b = BytesMut::with_capacity(32);
    write_rfc3339_utc(&mut b, secs, nanos);
    String::from_utf8(b.to_vec()).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ListenerConfig, ProtocolName};
    use logport_gelf::{compress, Encoding};
    use serde_json::json;

    const NOW: (i64, u32) = (1_700_000_000, 5_000_000);

    fn shaper(f: impl FnOnce(&mut ListenerConfig)) -> Shaper {
        let mut c = ListenerConfig::new(ProtocolName::Gelf, "127.0.0.1:0".parse().unwrap());
        f(&mut c);
        Shaper::new(&c).unwrap()
    }

    fn shape_with(s: &Shaper, payload: &[u8]) -> (Value, String, bool) {
        let mut out = BytesMut::new();
        let shaped = s
            .shape(payload, "10.1.2.3", NOW, &mut out, &mut AppCache::default())
            .unwrap();
        (
            serde_json::from_slice(&out).unwrap(),
            shaped.app.to_string(),
            shaped.json_failed,
        )
    }

    fn shape(payload: &[u8]) -> (Value, String, bool) {
        shape_with(&shaper(|_| {}), payload)
    }

    /// What Docker's gelf driver sends for one stdout line (reference §3.3) and what
    /// Logstash's gelf input makes of it (§3.4).
    #[test]
    fn a_docker_line_is_shaped_as_logstash_shapes_it() {
        let docker = br#"{"version":"1.1","host":"dockerhost","short_message":"hello 1","timestamp":1700000000.123,"level":6,"_command":"sh -c echo","_container_id":"4f1c","_container_name":"web","_created":"2024-05-01T12:00:00.123456789Z","_image_id":"sha256:ab","_image_name":"busybox","_tag":"4f1c","_MARATHON_APP_ID":"/shop/cart"}"#;
        let (v, app, failed) = shape(docker);
        assert!(!failed);
        assert_eq!(app, "/shop/cart");
        assert_eq!(
            v,
            json!({
                "@timestamp": "2023-11-14T22:13:20.123Z",
                "@version": "1",
                "version": "1.1",
                "host": "dockerhost",
                "message": "hello 1",
                "level": 6,
                "command": "sh -c echo",
                "container_id": "4f1c",
                "container_name": "web",
                "created": "2024-05-01T12:00:00.123456789Z",
                "image_id": "sha256:ab",
                "image_name": "busybox",
                "tag": "4f1c",
                "MARATHON_APP_ID": "/shop/cart",
                "source_host": "10.1.2.3",
            })
        );
    }

    #[test]
    fn logstash_spec_timestamps() {
        // logstash-input-gelf spec: 946702800.123 ⇒ 2000-01-01T05:00:00.123Z.
        let (v, _, _) = shape(br#"{"short_message":"m","timestamp":946702800.123}"#);
        assert_eq!(v["@timestamp"], "2000-01-01T05:00:00.123Z");
        assert!(v.get("timestamp").is_none());
        let (v, _, _) = shape(br#"{"short_message":"m","_@timestamp":946702800.1}"#);
        assert_eq!(v["@timestamp"], "2000-01-01T05:00:00.100Z");
        assert!(v.get("_@timestamp").is_none() && v.get("tags").is_none());
        let (v, _, _) = shape(br#"{"short_message":"m","_@timestamp":"946702800.25"}"#);
        assert_eq!(v["@timestamp"], "2000-01-01T05:00:00.250Z");
        let (v, _, _) = shape(br#"{"short_message":"m","_@timestamp":"foo"}"#);
        assert_eq!(v["tags"], json!([MOVE_FAILURE_TAG]));
        assert_eq!(v["_@timestamp"], "foo");
        assert_eq!(v["@timestamp"], "2023-11-14T22:13:20.005Z");
        // Microseconds and integers survive exactly; a string timestamp is not coerced.
        let (v, _, _) = shape(br#"{"timestamp":1700000000.123456}"#);
        assert_eq!(v["@timestamp"], "2023-11-14T22:13:20.123456Z");
        let (v, _, _) = shape(br#"{"timestamp":1700000000}"#);
        assert_eq!(v["@timestamp"], "2023-11-14T22:13:20.000Z");
        let (v, _, _) = shape(br#"{"timestamp":"1700000000.5"}"#);
        assert_eq!(v["timestamp"], "1700000000.5");
        assert_eq!(v["@timestamp"], "2023-11-14T22:13:20.005Z");
        // A millisecond sender (exponent form) is beyond year 9999: kept as sent.
        let (v, _, _) = shape(br#"{"timestamp":1.660873462488E13}"#);
        assert_eq!(v["timestamp"], 1.660873462488E13);
        let (v, _, _) = shape(br#"{"timestamp":-1.5}"#);
        assert_eq!(v["@timestamp"], "1969-12-31T23:59:58.500Z");
    }

    #[test]
    fn remap_follows_logstash() {
        let (v, _, _) = shape(br#"{"short_message":"s","full_message":"f\nstack"}"#);
        assert_eq!(v["message"], "f\nstack");
        assert_eq!(v["short_message"], "s");
        assert!(v.get("full_message").is_none());
        let (v, _, _) = shape(br#"{"short_message":"same","full_message":"same"}"#);
        assert_eq!(v["message"], "same");
        assert!(v.get("short_message").is_none() && v.get("full_message").is_none());
        let (v, _, _) = shape(br#"{"short_message":"s","full_message":""}"#);
        assert_eq!(v["message"], "s");
        assert_eq!(v["full_message"], "");
        let (v, _, _) = shape(br#"{"short_message":""}"#);
        assert!(v.get("message").is_none());
        assert_eq!(v["short_message"], "");

        let off = shaper(|c| c.gelf.remap = false);
        let (v, _, _) = shape_with(&off, br#"{"short_message":"s","full_message":"f"}"#);
        assert!(v.get("message").is_none());
        assert_eq!(
            (&v["short_message"], &v["full_message"]),
            (&json!("s"), &json!("f"))
        );
    }

    #[test]
    fn strip_leading_underscore_follows_logstash() {
        let (v, _, _) = shape(br#"{"_a":1,"a":0,"__b":true,"_":"u","_id":"x","_n":null}"#);
        assert_eq!(v["a"], 1);
        assert_eq!(v["_b"], true);
        assert_eq!(v["_"], "u");
        assert_eq!(v["id"], "x");
        assert_eq!(v["n"], Value::Null);
        assert!(v.get("_a").is_none() && v.get("_id").is_none());

        let keep = shaper(|c| c.gelf.strip_leading_underscore = false);
        let (v, app, _) = shape_with(&keep, br#"{"_container_name":"web","_a":1}"#);
        assert_eq!(v["_container_name"], "web");
        assert_eq!(v["_a"], 1);
        assert_eq!(app, "web");
    }

    #[test]
    fn values_and_odd_keys_pass_through() {
        let (v, app, _) = shape(
            br#"{"version":"1.0","host":"h1","level":"6","facility":"local0","line":12,"file":"a.c","x":{"y":[1,2.5]},"big":12345678901234567890,"tags":["t"]}"#,
        );
        assert_eq!(v["level"], "6");
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["facility"], "local0");
        assert_eq!(v["line"], 12);
        assert_eq!(v["x"], json!({"y": [1, 2.5]}));
        assert_eq!(v["big"], json!(12345678901234567890u64));
        assert_eq!(v["tags"], json!(["t"]));
        assert_eq!(app, "h1");
        let (v, _, _) = shape(br#"{"@timestamp":"2024-05-01T12:00:00.5+02:00","@version":"2"}"#);
        assert_eq!(v["@timestamp"], "2024-05-01T10:00:00.500Z");
        assert_eq!(v["@version"], "2");
        let (v, _, _) = shape(br#"{"@timestamp":"yesterday","short_message":"m"}"#);
        assert_eq!(v["tags"], json!([TIMESTAMP_FAILURE_TAG, MOVE_FAILURE_TAG]));
        assert_eq!(v["_@timestamp"], "yesterday");
    }

    #[test]
    fn compressed_payloads_and_failures() {
        let json = br#"{"short_message":"zipped","host":"h"}"#;
        for enc in [Encoding::Zlib, Encoding::Gzip] {
            for level in [1, 6, 9] {
                let (v, _, _) = shape(&compress(json, enc, level));
                assert_eq!(v["message"], "zipped", "{enc} {level}");
            }
        }
        let (v, app, failed) = shape(b"not json at all\0");
        assert!(failed);
        assert_eq!(app, "unknown");
        assert_eq!(
            v,
            json!({"@timestamp": "2023-11-14T22:13:20.005Z", "@version": "1", "message": "not json at all",
                   "source_host": "10.1.2.3", "tags": [JSON_FAILURE_TAG]})
        );
        let (_, _, failed) = shape(b"[1,2]");
        assert!(failed);

        let s = shaper(|c| c.gelf.max_decompressed_bytes = crate::config::ByteSize(1024));
        let bomb = compress(&vec![b' '; 1 << 20], Encoding::Gzip, 9);
        let mut out = BytesMut::new();
        let e = s
            .shape(&bomb, "ip", NOW, &mut out, &mut AppCache::default())
            .unwrap_err();
        assert!(matches!(e, PayloadError::TooLarge { .. }), "{e}");
        assert!(out.is_empty());
        let e = s
            .shape(
                &[0x1f, 0x8b, 1, 2, 3],
                "ip",
                NOW,
                &mut out,
                &mut AppCache::default(),
            )
            .unwrap_err();
        assert!(matches!(e, PayloadError::Decompress { .. }), "{e}");
        let e = s
            .shape(b" \0\n", "ip", NOW, &mut out, &mut AppCache::default())
            .unwrap_err();
        assert_eq!(e, PayloadError::Empty);
    }
}
