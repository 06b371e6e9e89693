//! A Beats document as the shaper needs it: its top-level keys in order, each value kept as the
//! JSON text it came as until something asks for it.
//!
//! The shaper touches a handful of top-level keys (`message`, `@timestamp`, `tags`, `event`,
//! `@metadata`, the app fields) and writes every other one back unchanged. Parsing the whole
//! document into a `serde_json::Value` tree, an ordered map with SipHash per object, and
//! serialising it again was most of a Beats event's CPU; here the untouched values are copied
//! as text, and only the keys asked for are parsed. Each value is still walked once as a parse
//! would (`check`), so that what a parse refuses is refused here too, and an object repeating
//! a key is parsed, keeping the last value as Logstash does.

use std::borrow::Cow;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One top-level value: as it came, or parsed (and maybe changed).
#[derive(Debug)]
enum Slot<'a> {
    Raw(&'a RawValue),
    Parsed(Value),
}

impl Slot<'_> {
    fn to_value(&self) -> Value {
        match self {
            // Every raw value passed `check` when the document was read: it parses.
            Slot::Raw(raw) => serde_json::from_str(raw.get()).expect("checked when read"),
            Slot::Parsed(v) => v.clone(),
        }
    }

    fn is_null(&self) -> bool {
        match self {
            Slot::Raw(raw) => raw.get() == "null",
            Slot::Parsed(v) => v.is_null(),
        }
    }
}

/// The top-level object of a document, keys in order (a repeated key keeps its first place
/// and its last value, as `serde_json::Map` and Logstash's hash do).
#[derive(Debug, Default)]
pub struct Doc<'a> {
    entries: Vec<(Cow<'a, str>, Slot<'a>)>,
}

/// Why a `J` frame is not a document.
pub enum NotADoc {
    Json(serde_json::Error),
    NotAnObject,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// How deep a document may nest: serde_json's own recursion limit when it builds values, which
/// raw values skip. (Jackson, under Logstash, refuses past 1000; Elasticsearch maps 20.)
pub const MAX_DEPTH: usize = 128;

/// Whether `json` nests deeper than `max`. Cheap for ordinary documents: unless it holds more
/// than `max` opening brackets at all it cannot, and only then are strings told apart.
fn too_deep(json: &[u8], max: usize) -> bool {
    if json.iter().filter(|&&b| b == b'[' || b == b'{').count() <= max {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

impl<'a> Doc<'a> {
    pub fn parse(json: &'a [u8]) -> Result<Doc<'a>, NotADoc> {
        if too_deep(json, MAX_DEPTH) {
            return Err(NotADoc::TooDeep);
        }
        let object = json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        serde_json::from_slice(json).map_err(|e| match e.classify() {
            // Well-formed JSON of another type than an object.
            serde_json::error::Category::Data if !object => NotADoc::NotAnObject,
            _ => NotADoc::Json(e),
        })
    }

    /// Lumberjack v1 `D` frames: keys and values as text.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Doc<'a> {
        let mut doc = Doc::default();
        for (k, v) in pairs {
            doc.insert(k, Value::String(v));
        }
        doc
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Whether `key` is present and not null.
    pub fn has_value(&self, key: &str) -> bool {
        self.position(key)
            .is_some_and(|i| !self.entries[i].1.is_null())
    }

    /// The value at `key` as JSON text: as it came, or serialised.
    pub fn text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.position(key).map(|i| match &self.entries[i].1 {
            Slot::Raw(raw) => Cow::Borrowed(raw.get()),
            Slot::Parsed(v) => Cow::Owned(v.to_string()),
        })
    }

    /// The value at `key`, parsed (a copy: the document keeps its text).
    pub fn get(&self, key: &str) -> Option<Value> {
        self.position(key).map(|i| self.entries[i].1.to_value())
    }

    /// The value at `key`, parsed in place so that it can be changed.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let i = self.position(key)?;
        let slot = &mut self.entries[i].1;
        if let Slot::Raw(_) = slot {
            *slot = Slot::Parsed(slot.to_value());
        }
        match slot {
            Slot::Parsed(v) => Some(v),
            Slot::Raw(_) => unreachable!("parsed above"),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key)?;
        let (_, slot) = self.entries.remove(i);
        Some(match slot {
            Slot::Raw(raw) => serde_json::from_str(raw.get()).expect("checked when read"),
            Slot::Parsed(v) => v,
        })
    }

    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Value) {
        let key = key.into();
        match self.position(&key) {
            Some(i) => self.entries[i].1 = Slot::Parsed(value),
            None => self.entries.push((key, Slot::Parsed(value))),
        }
    }

    /// The object at `key`, made (or put in place of a non-object) if need be.
    pub fn object_at(&mut self, key: &str) -> &mut Map<String, Value> {
        if !self.get_mut(key).is_some_and(|v| v.is_object()) {
            self.insert(key.to_owned(), Value::Object(Map::new()));
        }
        self.get_mut(key)
            .and_then(Value::as_object_mut)
            .expect("made an object above")
    }

    /// Every key with its value written as JSON text: as it came, or serialised.
    pub fn for_each(&self, mut each: impl FnMut(&str, Cow<'_, str>)) {
        for (key, slot) in &self.entries {
            match slot {
                Slot::Raw(raw) => each(key, Cow::Borrowed(raw.get())),
                Slot::Parsed(v) => each(key, Cow::Owned(v.to_string())),
            }
        }
    }

    /// The value at a path of keys, parsed only as deep as the path goes.
    pub fn lookup(&self, path: &[String]) -> Option<Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.get(first)?;
        for part in rest {
            value = value.as_object_mut()?.remove(part.as_str())?;
        }
        Some(value)
    }
}

/// Whether a checked value holds an object with a repeated key.
enum Repeats {
    No,
    Yes,
}

/// Walks one raw value as a parse would, without building it: fails where building it would
/// (strings and numbers are decoded), and tells whether an object in it repeats a key.
fn check(json: &str) -> Result<Repeats, serde_json::Error> {
    struct Check(bool);
    impl<'de> serde::de::DeserializeSeed<'de> for &mut Check {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for &mut Check {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
            let mut keys: Vec<Key<'de>> = Vec::new();
            let mut seen: Option<std::collections::HashSet<Cow<'de, str>>> = None;
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                let repeated = match &mut seen {
                    Some(set) => !set.insert(key),
                    None if keys.len() >= 16 => {
                        let mut set: std::collections::HashSet<_> =
                            keys.drain(..).map(|k| k.0).collect();
                        let repeated = !set.insert(key);
                        seen = Some(set);
                        repeated
                    }
                    None => {
                        let repeated = keys.iter().any(|k| k.0 == key);
                        keys.push(Key(key));
                        repeated
                    }
                };
                self.0 |= repeated;
                map.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
    }
    let mut c = Check(false);
    let mut de = serde_json::Deserializer::from_str(json);
    serde::de::DeserializeSeed::deserialize(&mut c, &mut de)?;
    Ok(if c.0 { Repeats::Yes } else { Repeats::No })
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DocVisitor;
        impl<'de> Visitor<'de> for DocVisitor {
            type Value = Doc<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Doc<'de>, M::Error> {
                let mut doc = Doc::default();
                // Where each key is, once there are too many for a scan (linear, not
                // quadratic, in the number of keys a hostile document may hold).
                let mut index: Option<std::collections::HashMap<Cow<'de, str>, usize>> = None;
                while let Some((Key(key), raw)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    // What serde_json's raw values let through unchecked (a lone surrogate
                    // escape, a number out of range) is refused here as it would be when
                    // parsed; a value with repeated keys is parsed now, which keeps the last of
                    // each as Logstash does.
                    let slot = match check(raw.get()).map_err(serde::de::Error::custom)? {
                        Repeats::No => Slot::Raw(raw),
                        Repeats::Yes => Slot::Parsed(
                            serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?,
                        ),
                    };
                    if index.is_none() && doc.entries.len() >= 16 {
                        let mut map = std::collections::HashMap::new();
                        for (i, (k, _)) in doc.entries.iter().enumerate() {
                            map.insert(k.clone(), i);
                        }
                        index = Some(map);
                    }
                    let at = match &index {
                        Some(map) => map.get(&key).copied(),
                        None => doc.position(&key),
                    };
                    match at {
                        Some(i) => doc.entries[i].1 = slot,
                        None => {
                            if let Some(map) = &mut index {
                                map.insert(key.clone(), doc.entries.len());
                            }
                            doc.entries.push((key, slot));
                        }
                    }
                }
                Ok(doc)
            }
        }
        d.deserialize_map(DocVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(doc: &Doc) -> String {
        let mut out = String::from("{");
        doc.for_each(|k, v| {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k).unwrap());
            out.push(':');
            out.push_str(&v);
        });
        out + "}"
    }

    #[test]
    fn untouched_values_come_back_as_they_came_and_changed_ones_as_json() {
        let json = br#"{"a":{"x":[1,2.50,"\u00e9"]},"b\n":"s","a":7,"n":null,"o":{"k":"v"}}"#;
        let mut doc = Doc::parse(json).ok().unwrap();
        // A repeated key keeps its first place and its last value.
        assert_eq!(text(&doc), r#"{"a":7,"b\n":"s","n":null,"o":{"k":"v"}}"#);
        assert!(doc.has_value("a") && !doc.has_value("n") && doc.contains_key("n"));
        assert_eq!(
            doc.lookup(&["o".into(), "k".into()]),
            Some(Value::from("v"))
        );
        doc.object_at("o").insert("k2".into(), Value::from(1));
        doc.object_at("b\n").insert("z".into(), Value::from(true));
        assert_eq!(doc.remove("a"), Some(Value::from(7)));
        doc.insert("new", Value::from("x"));
        assert_eq!(
            text(&doc),
            r#"{"b\n":{"z":true},"n":null,"o":{"k":"v","k2":1},"new":"x"}"#
        );
    }

    #[test]
    fn documents_nested_too_deep_are_refused_and_brackets_in_strings_do_not_count() {
        let nested = |n: usize| format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
        assert!(Doc::parse(nested(MAX_DEPTH - 1).as_bytes()).is_ok());
        assert!(matches!(
            Doc::parse(nested(MAX_DEPTH).as_bytes()),
            Err(NotADoc::TooDeep)
        ));
        let brackets = format!(
            "{{\"a\":\"{}\\\"{}\",\"b\":[[1]]}}",
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(Doc::parse(brackets.as_bytes()).is_ok());
    }

    #[test]
    fn values_are_checked_as_a_parse_would_and_repeated_keys_keep_the_last() {
        // serde_json's raw values let these through; a parse (and Logstash) would not.
        for bad in [
            &br#"{"m":"\ud800"}"#[..],
            br#"{"h":{"x":1e999}}"#,
            br#"{"a":[1,{"b":"\udc00x"}]}"#,
        ] {
            assert!(
                matches!(Doc::parse(bad), Err(NotADoc::Json(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let doc = Doc::parse(br#"{"f":{"a":1,"b":[{"c":1,"c":2}],"a":3},"g":{"x":1}}"#)
            .ok()
            .unwrap();
        assert_eq!(text(&doc), r#"{"f":{"a":3,"b":[{"c":2}]},"g":{"x":1}}"#);
        // Many keys: still first place and last value, found through the index.
        let many: String = (0..100).map(|i| format!("\"k{}\":{i},", i % 50)).collect();
        let json = format!("{{{many}\"z\":0}}");
        let doc = Doc::parse(json.as_bytes()).ok().unwrap();
        assert_eq!(doc.get("k7"), Some(Value::from(57)));
        assert_eq!(doc.entries.len(), 51);
        assert_eq!(doc.entries[7].0, "k7");
    }

    #[test]
    fn only_objects_are_documents() {
        assert!(matches!(Doc::parse(b"[1]"), Err(NotADoc::NotAnObject)));
        assert!(matches!(Doc::parse(b" \"s\""), Err(NotADoc::NotAnObject)));
        assert!(matches!(Doc::parse(b"{\"a\":"), Err(NotADoc::Json(_))));
        assert!(Doc::parse(b" {\"a\":1} ").is_ok());
    }
}
