//! One forward entry → the JSON event Logstash's `tcp` input with `codec => fluent` would write
//! through a `json` codec.
//!
//! | forward | event (ECS v8, the default) | legacy (`ecs_compatibility = "disabled"`) |
//! |---|---|---|
//! | record fields | top-level fields, as sent | same |
//! | `log` (Docker) | `message` (`message_from_log`, default) or `log` | same |
//! | time (integer or EventTime) | `@timestamp`, nanoseconds kept | same |
//! | tag | appended to `tags` | same |
//! | sender address | — (Logstash keeps it in `@metadata`, which JSON drops) | `host` (IP), `port` |
//! | — | `@version: "1"` | same |
//!
//! As Logstash does: a record's own `@timestamp` is replaced, its `@version` kept, its `tags`
//! (array or single string) extended with the tag, its `host`/`port` never overwritten, and an
//! `@metadata` field is not written. Unlike the codec, a time of 0 becomes the receive time
//! (in_forward's rule) and EventTime nanoseconds are exact (the codec reads them as
//! microseconds).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use logport_forward::rmpv::Value;
use logport_forward::{value, EventTime};

use super::app::AppKey;
use crate::config::{EcsCompatibility, ListenerConfig};
use crate::event::{write_json_string, write_rfc3339_utc};
use crate::source::AppCache;

pub struct Shaper {
    ecs: bool,
    message_from_log: bool,
    app: AppKey,
}

/// Where an event came from, for the fields the tcp input adds.
pub struct Peer<'a> {
    pub ip: &'a str,
    pub port: u16,
}

impl Shaper {
    pub fn new(listener: &ListenerConfig) -> Result<Shaper, String> {
        let fields = listener
            .app_fields
            .clone()
            .unwrap_or_else(AppKey::default_fields);
        Ok(Shaper {
            ecs: listener.ecs_compatibility == EcsCompatibility::V8,
            message_from_log: listener.forward.message_from_log,
            app: AppKey::compile(&fields, &listener.app_default)?,
        })
    }

    #[cfg(test)]
    pub fn with(ecs: bool, options: &super::options::ForwardOptions) -> Shaper {
        Shaper {
            ecs,
            message_from_log: options.message_from_log,
            app: AppKey::compile(&AppKey::default_fields(), "unknown").unwrap(),
        }
    }

    /// Appends the event's JSON to `out` and returns its app. `scratch` is reused between calls.
    #[allow(clippy::too_many_arguments)]
    pub fn shape(
        &self,
        tag: &str,
        time: EventTime,
        record: &Value,
        peer: &Peer<'_>,
        received: (i64, u32),
        out: &mut BytesMut,
        scratch: &mut Vec<u8>,
        apps: &mut AppCache,
    ) -> Arc<str> {
        let pairs = fields(record);
        let has = |name: &str| pairs.iter().any(|(k, _)| k == name);
        let rename_log = self.message_from_log && !has("message");
        let mut version = None;
        let mut tags = None;
        // Record values arrive as msgpack and are written by the protocol crate's JSON mapping,
        // so the object is punctuated here rather than by `JsonWriter`.
        out.extend_from_slice(b"{");
        for (key, v) in &pairs {
            match &**key {
                "@timestamp" | "@metadata" => continue,
                "@version" => {
                    version = Some(*v);
                    continue;
                }
                "tags" => {
                    tags = Some(*v);
                    continue;
                }
                _ => {}
            }
            let key: &str = if rename_log && key == "log" {
                "message"
            } else {
                key
            };
            write_json_string(out, key);
            out.extend_from_slice(b":");
            scratch.clear();
            value::write_json(v, scratch);
            out.extend_from_slice(scratch);
            out.extend_from_slice(b",");
        }
        out.extend_from_slice(b"\"@timestamp\":\"");
        let (secs, nanos) = if time.is_zero() {
            received
        } else {
            (time.secs, time.nanos)
        };
        write_rfc3339_utc(out, secs, nanos);
        out.extend_from_slice(b"\"");
        out.extend_from_slice(b",\"@version\":");
        match version {
            Some(v) => {
                scratch.clear();
                value::write_json(v, scratch);
                out.extend_from_slice(scratch);
            }
            None => out.extend_from_slice(b"\"1\""),
        }
        out.extend_from_slice(b",\"tags\":[");
        let mut n = 0;
        let mut push = |out: &mut BytesMut, text: &str| {
            if n > 0 {
                out.extend_from_slice(b",");
            }
            n += 1;
            write_json_string(out, text);
        };
        let mut tagged = false;
        match tags {
            Some(Value::Array(items)) => {
                for item in items {
                    let text = value::text_of(item)
                        .map(Cow::into_owned)
                        .unwrap_or_else(|| value::to_json(item));
                    tagged |= text == tag;
                    push(out, &text);
                }
            }
            Some(Value::Nil) | None => {}
            Some(other) => {
                let text = value::text_of(other)
                    .map(Cow::into_owned)
                    .unwrap_or_else(|| value::to_json(other));
                tagged |= text == tag;
                push(out, &text);
            }
        }
        if !tagged {
            push(out, tag);
        }
        out.extend_from_slice(b"]");
        if !self.ecs {
            if !has("host") {
                out.extend_from_slice(b",\"host\":");
                write_json_string(out, peer.ip);
            }
            if !has("port") {
                out.extend_from_slice(b",\"port\":");
                out.extend_from_slice(itoa::Buffer::new().format(peer.port).as_bytes());
            }
        }
        out.extend_from_slice(b"}");
        apps.get(&self.app.resolve(tag, record))
    }
}

/// The record's fields in order, a repeated key keeping its first place and its last value (a
/// Ruby Hash built from the same msgpack map does the same).
fn fields(record: &Value) -> Vec<(Cow<'_, str>, &Value)> {
    let Value::Map(map) = record else {
        return Vec::new();
    };
    let mut out: Vec<(Cow<'_, str>, &Value)> = Vec::with_capacity(map.len());
    let mut index: Option<HashMap<String, usize>> = None;
    for (k, v) in map {
        let key = match k {
            Value::String(_) | Value::Binary(_) => value::text_of(k).unwrap_or_default(),
            Value::Nil => Cow::Borrowed(""),
            other => Cow::Owned(value::to_json(other)),
        };
        // Small records (nearly all) are searched; large ones get an index.
        if out.len() >= 32 && index.is_none() {
            index = Some(
                out.iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.to_string(), i))
                    .collect(),
            );
        }
        let seen = match &mut index {
            Some(index) => match index.get(&*key) {
                Some(&i) => Some(i),
                None => {
                    index.insert(key.to_string(), out.len());
                    None
                }
            },
            None => out.iter().position(|(k, _)| *k == key),
        };
        match seen {
            Some(i) => out[i].1 = v,
            None => out.push((key, v)),
        }
    }
    out
}
