//! One Beats event as logstash-input-beats makes it, written as Logstash's json codec would
//! write it (`message_listener.rb`, `decoded_event_transform.rb`, `raw_event_transform.rb`).
//!
//! - The peer address goes under `@metadata` before anything else: `[@metadata][ip_address]`
//!   (ECS disabled) or `[@metadata][input][beats][host][ip]` (ECS).
//! - A document with `message` (or, failing that, v1's `line`) goes through the plain codec:
//!   a fresh event with that text as `message` (and `[event][original]` in ECS mode), the
//!   Beat's `@timestamp` coerced onto it (receive time if it does not parse), every other key
//!   set on it (a hash merged into a hash already there), tag `beats_input_codec_plain_applied`.
//! - Without either, the document is the event as it is (Metricbeat), `@timestamp` parsed by
//!   Logstash's rules (`_timestampparsefailure` and `_@timestamp` when it cannot be), tag
//!   `beats_input_raw_event`.
//! - `@version: "1"` unless the document has one; `@metadata` is not written (the json codec
//!   drops it) unless `metadata_field` names a field to keep it in.

use std::sync::Arc;

use bytes::BytesMut;
use logport_lumberjack::Payload;
use serde_json::{Map, Value};

use super::doc::{Doc, NotADoc};
use super::AppKey;
use crate::config::{EcsCompatibility, ListenerConfig};
use crate::event::{write_json_string, write_rfc3339_utc};
use crate::source::AppCache;

pub const CODEC_TAG: &str = "beats_input_codec_plain_applied";
pub const RAW_TAG: &str = "beats_input_raw_event";
pub const TIMESTAMP_FAILURE_TAG: &str = "_timestampparsefailure";
pub const TIMESTAMP_FAILURE_FIELD: &str = "_@timestamp";

/// The event is not one Logstash could take: the connection is closed (Logstash's parser
/// throws on it too).
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    Json(String),
    NotAnObject,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Json(e) => write!(f, "'J' frame is not valid JSON: {e}"),
            Invalid::NotAnObject => f.write_str("'J' frame holds JSON that is not an object"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Shaper {
    ecs: bool,
    keep_original: bool,
    metadata_field: Option<String>,
    /// Whether `@metadata` is read at all: written (`metadata_field`) or an app field in it.
    /// When not, the peer address is not put there, as nothing would see it (the json codec
    /// drops `@metadata`): four maps less per event.
    metadata_read: bool,
    app: AppKey,
}

impl Shaper {
    pub fn new(listener: &ListenerConfig) -> anyhow::Result<Shaper> {
        let fields = listener
            .app_fields
            .clone()
            .unwrap_or_else(AppKey::default_fields);
        Ok(Shaper {
            ecs: listener.ecs_compatibility != EcsCompatibility::Disabled,
            keep_original: listener.keep_original,
            metadata_field: listener.beats.metadata_field.clone(),
            metadata_read: listener.beats.metadata_field.is_some()
                || fields.iter().any(|f| {
                    crate::event::FieldPath::parse(f)
                        .is_ok_and(|p| p.0.first().is_some_and(|k| k == "@metadata"))
                }),
            app: AppKey::compile(&fields, &listener.app_default).map_err(anyhow::Error::msg)?,
        })
    }

    /// Writes the event for `payload` to `out` and returns its app key.
    pub fn shape(
        &self,
        payload: &Payload,
        peer_ip: &str,
        now: (i64, u32),
        out: &mut BytesMut,
        apps: &mut AppCache,
    ) -> Result<Arc<str>, Invalid> {
        let mut hash = match payload {
            Payload::Json(json) => match Doc::parse(json) {
                Ok(doc) => doc,
                Err(NotADoc::NotAnObject) => return Err(Invalid::NotAnObject),
                Err(NotADoc::Json(e)) => return Err(Invalid::Json(e.to_string())),
                Err(NotADoc::TooDeep) => {
                    return Err(Invalid::Json(format!(
                        "nested deeper than {}",
                        super::doc::MAX_DEPTH
                    )))
                }
            },
            // Keys and values are byte strings meant as UTF-8; bad bytes are kept as U+FFFD.
            Payload::Pairs(pairs) => Doc::from_pairs(pairs.iter().map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })),
        };
        if self.metadata_read {
            self.set_peer_ip(&mut hash, peer_ip);
        }
        let (event, stamp) = match take_target(&mut hash) {
            Some(text) => self.decoded(hash, text, now),
            None => raw(hash, now),
        };
        let app = apps.get(&self.app.resolve_doc(&event));
        self.write(&event, stamp, out);
        Ok(app)
    }

    fn set_peer_ip(&self, hash: &mut Doc, ip: &str) {
        let path: &[&str] = if self.ecs {
            &["input", "beats", "host", "ip"]
        } else {
            &["ip_address"]
        };
        let mut node = hash.object_at("@metadata");
        for part in &path[..path.len() - 1] {
            node = object_at(node, part);
        }
        node.insert(
            path[path.len() - 1].to_owned(),
            Value::String(ip.to_owned()),
        );
    }

    /// The plain codec's event for `text`, with the rest of the document set on it. Logstash
    /// makes a fresh event (`message`, and `[event][original]` in ECS mode) and sets every
    /// other key of the document on it, a hash merged into a hash already there. The same
    /// result is had in place, in the document's own map, which spares hashing and moving
    /// every key again: the document's keys win, except over `message`, where only a key
    /// the codec did not take (a null `message` beside v1's `line`) is kept.
    fn decoded<'a>(
        &self,
        mut event: Doc<'a>,
        text: String,
        now: (i64, u32),
    ) -> (Doc<'a>, (i64, u32)) {
        // Logstash warns and keeps the receive time; no tag on this path.
        let stamp = match event.remove("@timestamp") {
            Some(value) => parse_timestamp(&value).unwrap_or(now),
            None => now,
        };
        if self.ecs && self.keep_original {
            match event.get_mut("event") {
                Some(Value::Object(existing)) => {
                    if !existing.contains_key("original") {
                        existing.insert("original".into(), Value::String(text.clone()));
                    }
                }
                // A non-object `event` in the document replaces the codec's.
                Some(_) => {}
                None => {
                    let mut original = Map::new();
                    original.insert("original".into(), Value::String(text.clone()));
                    event.insert("event", Value::Object(original));
                }
            }
        }
        if !event.contains_key("message") {
            event.insert("message", Value::String(text));
        }
        tag(&mut event, CODEC_TAG);
        (event, stamp)
    }

    fn write(&self, event: &Doc, stamp: (i64, u32), out: &mut BytesMut) {
        out.extend_from_slice(b"{\"@timestamp\":\"");
        write_rfc3339_utc(out, stamp.0, stamp.1);
        out.extend_from_slice(b"\",\"@version\":");
        match event.text("@version") {
            Some(v) => out.extend_from_slice(v.as_bytes()),
            None => out.extend_from_slice(b"\"1\""),
        }
        event.for_each(|key, value| {
            if matches!(key, "@timestamp" | "@version" | "@metadata")
                || Some(key) == self.metadata_field.as_deref()
            {
                return;
            }
            out.extend_from_slice(b",");
            write_json_string(out, key);
            out.extend_from_slice(b":");
            out.extend_from_slice(value.as_bytes());
        });
        if let (Some(field), Some(meta)) = (&self.metadata_field, event.text("@metadata")) {
            out.extend_from_slice(b",");
            write_json_string(out, field);
            out.extend_from_slice(b":");
            out.extend_from_slice(meta.as_bytes());
        }
        out.extend_from_slice(b"}");
    }
}

/// The document as the event, as Logstash's `Event.new(hash)` takes it.
fn raw(mut event: Doc<'_>, now: (i64, u32)) -> (Doc<'_>, (i64, u32)) {
    let stamp = match event.remove("@timestamp") {
        None | Some(Value::Null) => now,
        Some(value) => match parse_timestamp(&value) {
            Some(stamp) => stamp,
            None => {
                tag(&mut event, TIMESTAMP_FAILURE_TAG);
                event.insert(TIMESTAMP_FAILURE_FIELD, value);
                now
            }
        },
    };
    tag(&mut event, RAW_TAG);
    (event, stamp)
}

/// Removes and returns the text the plain codec decodes: `message`, else v1's `line` (a null
/// counts as absent; anything else is made text, as Ruby's `to_s` would).
fn take_target(hash: &mut Doc) -> Option<String> {
    let key = ["message", "line"]
        .into_iter()
        .find(|k| hash.has_value(k))?;
    Some(match hash.remove(key)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// The object at `key`, made (or put in place of a non-object) if need be.
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("made an object above")
}

/// Logstash's `Event#tag`: a list gains the tag unless it has it; a single value becomes a list.
fn tag(event: &mut Doc, tag: &str) {
    let new = Value::String(tag.to_owned());
    match event.get_mut("tags") {
        None | Some(Value::Null) => {
            event.insert("tags", Value::Array(vec![new]));
        }
        Some(Value::Array(tags)) => {
            if !tags.contains(&new) {
                tags.push(new);
            }
        }
        Some(other) => {
            if *other != new {
                let old = other.take();
                *other = Value::Array(vec![old, new]);
            }
        }
    }
}

/// An ISO 8601 / RFC 3339 instant; a stamp without a zone is UTC (as Logstash reads it).
fn parse_timestamp(value: &Value) -> Option<(i64, u32)> {
    let text = value.as_str()?.trim();
    let ts = match text.parse::<jiff::Timestamp>() {
        Ok(ts) => ts,
        Err(_) => jiff::tz::TimeZone::UTC
            .to_timestamp(text.parse::<jiff::civil::DateTime>().ok()?)
            .ok()?,
    };
    // jiff counts sub-second nanoseconds toward zero (negative before 1970): floor instead.
    let (secs, nanos) = (ts.as_second(), ts.subsec_nanosecond());
    Some(if nanos < 0 {
        (secs - 1, (nanos + 1_000_000_000) as u32)
    } else {
        (secs, nanos as u32)
    })
}

#[cfg(test)]
mod timestamp_tests {
    use super::*;

    #[test]
    fn instants_before_1970_keep_their_fraction() {
        assert_eq!(
            parse_timestamp(&Value::from("1969-12-31T23:59:59.5Z")),
            Some((-1, 500_000_000))
        );
        assert_eq!(
            parse_timestamp(&Value::from("2026-11-25T04:00:00.250Z")),
            Some((1_795_579_200, 250_000_000))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProtocolName;
    use serde_json::json;

    fn shaper(ecs: bool, metadata_field: Option<&str>) -> Shaper {
        let mut l = ListenerConfig::new(ProtocolName::Beats, "127.0.0.1:5044".parse().unwrap());
        if !ecs {
            l.ecs_compatibility = EcsCompatibility::Disabled;
        }
        l.beats.metadata_field = metadata_field.map(String::from);
        Shaper::new(&l).unwrap()
    }

    const NOW: (i64, u32) = (1_714_564_800, 5_000_000);

    fn shape(s: &Shaper, payload: Payload) -> (Value, Arc<str>) {
        let mut out = BytesMut::new();
        let app = s
            .shape(
                &payload,
                "10.1.2.3",
                NOW,
                &mut out,
                &mut AppCache::default(),
            )
            .unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("{\"@timestamp\":"), "{text}");
        (serde_json::from_str(text).unwrap(), app)
    }

    fn json_payload(v: Value) -> Payload {
        Payload::Json(serde_json::to_vec(&v).unwrap().into())
    }

    fn filebeat() -> Value {
        json!({"@timestamp":"2024-05-01T10:00:00.123Z","@metadata":{"beat":"filebeat","type":"_doc","version":"8.13.4"},
            "log":{"offset":1234,"file":{"path":"/var/log/app.log"}},"message":"GET /health 200",
            "input":{"type":"filestream"},"ecs":{"version":"8.0.0"},"host":{"name":"web-1"},
            "agent":{"type":"filebeat","version":"8.13.4","name":"web-1","id":"a","ephemeral_id":"b"},
            "event":{"dataset":"app"},"tags":["prod"],"fields":{"app":"billing"}})
    }

    #[test]
    fn a_filebeat_event_in_ecs_mode() {
        let (v, app) = shape(&shaper(true, None), json_payload(filebeat()));
        assert_eq!(
            v,
            json!({"@timestamp":"2024-05-01T10:00:00.123Z","@version":"1","message":"GET /health 200",
                "event":{"original":"GET /health 200","dataset":"app"},
                "log":{"offset":1234,"file":{"path":"/var/log/app.log"}},
                "input":{"type":"filestream"},"ecs":{"version":"8.0.0"},"host":{"name":"web-1"},
                "agent":{"type":"filebeat","version":"8.13.4","name":"web-1","id":"a","ephemeral_id":"b"},
                "tags":["prod","beats_input_codec_plain_applied"],"fields":{"app":"billing"}})
        );
        assert_eq!(&*app, "billing");
    }

    #[test]
    fn the_documents_keys_win_over_the_codecs_as_in_logstash() {
        let s = shaper(true, None);
        // Its own [event][original] is kept; a non-object `event` replaces the codec's.
        let (v, _) = shape(
            &s,
            json_payload(json!({"message":"m","event":{"original":"o"}})),
        );
        assert_eq!(v["event"], json!({"original":"o"}));
        let (v, _) = shape(&s, json_payload(json!({"message":"m","event":"e"})));
        assert_eq!(v["event"], json!("e"));
        // v1's `line` is the text when `message` is null; the null `message` is set after.
        let (v, _) = shape(&s, json_payload(json!({"line":"l","message":null})));
        assert_eq!(
            (&v["message"], &v["event"]),
            (&json!(null), &json!({"original":"l"}))
        );
        // An unparsable @timestamp on this path is the receive time, without a tag.
        let (v, _) = shape(&s, json_payload(json!({"message":"m","@timestamp":"nope"})));
        assert_eq!(v["tags"], json!(["beats_input_codec_plain_applied"]));
        assert!(v.get("_@timestamp").is_none());
    }

    #[test]
    fn legacy_mode_has_no_event_original() {
        let (v, app) = shape(
            &shaper(false, None),
            json_payload(json!({"message":"hi","host":{"name":"h"}})),
        );
        assert_eq!(
            v,
            json!({"@timestamp":"2024-05-01T12:00:00.005Z","@version":"1","message":"hi","host":{"name":"h"},
                "tags":["beats_input_codec_plain_applied"]})
        );
        assert_eq!(&*app, "h");
    }

    #[test]
    fn metadata_and_the_peer_are_kept_only_when_asked() {
        let (v, _) = shape(&shaper(true, Some("meta")), json_payload(filebeat()));
        assert_eq!(
            v["meta"],
            json!({"beat":"filebeat","type":"_doc","version":"8.13.4","input":{"beats":{"host":{"ip":"10.1.2.3"}}}})
        );
        assert!(v.get("@metadata").is_none());
        let (v, _) = shape(
            &shaper(false, Some("meta")),
            json_payload(json!({"message":"x"})),
        );
        assert_eq!(v["meta"], json!({"ip_address":"10.1.2.3"}));
    }

    #[test]
    fn a_document_without_message_is_a_raw_event() {
        let metric = json!({"@timestamp":"2024-05-01T10:00:00Z","metricset":{"name":"cpu"},"system":{"cpu":{"total":{"pct":0.5}}},"service":{"name":"system"}});
        let (v, app) = shape(&shaper(true, None), json_payload(metric));
        assert_eq!(
            v,
            json!({"@timestamp":"2024-05-01T10:00:00.000Z","@version":"1","metricset":{"name":"cpu"},
                "system":{"cpu":{"total":{"pct":0.5}}},"service":{"name":"system"},"tags":["beats_input_raw_event"]})
        );
        assert_eq!(&*app, "system");
        // A null message is no message; a bad stamp is kept aside and tagged, as Logstash does.
        let (v, _) = shape(
            &shaper(true, None),
            json_payload(json!({"@timestamp":"yesterday","message":null,"tags":"x"})),
        );
        assert_eq!(
            v,
            json!({"@timestamp":"2024-05-01T12:00:00.005Z","@version":"1","message":null,"_@timestamp":"yesterday",
                "tags":["x","_timestampparsefailure","beats_input_raw_event"]})
        );
    }

    #[test]
    fn a_v1_key_value_event() {
        let pairs = [
            ("file", "/var/log/a.log"),
            ("host", "h1"),
            ("offset", "0"),
            ("line", "hi"),
            ("fields.app", "flat"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec().into(), v.as_bytes().to_vec().into()))
        .collect();
        let (v, app) = shape(&shaper(false, None), Payload::Pairs(pairs));
        assert_eq!(
            v,
            json!({"@timestamp":"2024-05-01T12:00:00.005Z","@version":"1","message":"hi","file":"/var/log/a.log",
                "host":"h1","offset":"0","fields.app":"flat","tags":["beats_input_codec_plain_applied"]})
        );
        assert_eq!(&*app, "flat");
    }

    #[test]
    fn odd_values_and_stamps() {
        let s = shaper(true, None);
        // A numeric message is made text; a stamp with an offset or without a zone is read.
        let (v, _) = shape(
            &s,
            json_payload(json!({"message":42,"@timestamp":"2024-05-01T12:00:00.5+02:00"})),
        );
        assert_eq!(v["message"], "42");
        assert_eq!(v["@timestamp"], "2024-05-01T10:00:00.500Z");
        let (v, _) = shape(
            &s,
            json_payload(json!({"message":"m","@timestamp":"2024-05-01T12:00:00.123456789"})),
        );
        assert_eq!(v["@timestamp"], "2024-05-01T12:00:00.123456789Z");
        // On the codec path a bad stamp is the receive time, untagged.
        let (v, _) = shape(&s, json_payload(json!({"message":"m","@timestamp":17})));
        assert_eq!(v["@timestamp"], "2024-05-01T12:00:00.005Z");
        assert_eq!(v["tags"], json!(["beats_input_codec_plain_applied"]));
        // `line` only counts without `message`; a document's own @version wins.
        let (v, _) = shape(
            &s,
            json_payload(json!({"message":"m","line":"l","@version":"2"})),
        );
        assert_eq!(
            (&v["message"], &v["line"], &v["@version"]),
            (&json!("m"), &json!("l"), &json!("2"))
        );
        let mut out = BytesMut::new();
        for bad in [&b"[1]"[..], b"{\"a\":", b"\"s\""] {
            assert!(s
                .shape(
                    &Payload::Json(bad.to_vec().into()),
                    "ip",
                    NOW,
                    &mut out,
                    &mut AppCache::default()
                )
                .is_err());
        }
    }
}
