//! The beats app key: an ordered list of field paths into the event, the first present wins.

use serde_json::{Map, Value};

use crate::event::FieldPath;

#[derive(Clone, Debug)]
pub struct AppKey {
    paths: Vec<Vec<String>>,
    /// The same paths joined with dots: jls (Logstash's lumberjack output) flattens nested
    /// fields into literal dotted top-level keys, so `fields.app` may arrive as one key.
    dotted: Vec<String>,
    default: String,
}

impl AppKey {
    /// Filebeat's user fields first, then what Docker and the ECS agents fill in, then the
    /// shipping host; `host` is the hostname string v1 clients send.
    pub fn default_fields() -> Vec<String> {
        [
            "fields.app",
            "container.name",
            "service.name",
            "host.name",
            "host",
        ]
        .map(String::from)
        .to_vec()
    }

    pub fn compile(fields: &[String], default: &str) -> Result<AppKey, String> {
        let paths: Vec<Vec<String>> = fields
            .iter()
            .map(|f| FieldPath::parse(f).map(|p| p.0))
            .collect::<Result<_, _>>()?;
        let dotted = paths.iter().map(|p| p.join(".")).collect();
        Ok(AppKey {
            paths,
            dotted,
            default: default.to_owned(),
        })
    }

    /// The app of a shaped event: the first path holding a non-empty string or a number.
    pub fn resolve<'a>(&'a self, event: &'a Map<String, Value>) -> std::borrow::Cow<'a, str> {
        for (path, dotted) in self.paths.iter().zip(&self.dotted) {
            let found = lookup(event, path).or_else(|| event.get(dotted.as_str()));
            match found {
                Some(Value::String(s)) if !s.is_empty() => return s.as_str().into(),
                Some(Value::Number(n)) => return n.to_string().into(),
                _ => {}
            }
        }
        self.default.as_str().into()
    }
}

impl AppKey {
    /// [`resolve`](Self::resolve) for a document kept as text: only the paths' values are
    /// parsed.
    pub fn resolve_doc<'a>(&'a self, doc: &super::doc::Doc<'_>) -> std::borrow::Cow<'a, str> {
        for (path, dotted) in self.paths.iter().zip(&self.dotted) {
            let found = doc.lookup(path).or_else(|| doc.get(dotted));
            match found {
                Some(Value::String(s)) if !s.is_empty() => return s.into(),
                Some(Value::Number(n)) => return n.to_string().into(),
                _ => {}
            }
        }
        self.default.as_str().into()
    }
}

fn lookup<'a>(event: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = event.get(first.as_str())?;
    for part in rest {
        value = value.as_object()?.get(part.as_str())?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(fields: &[&str]) -> AppKey {
        AppKey::compile(
            &fields.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "unknown",
        )
        .unwrap()
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_defaults_go_from_user_fields_to_the_host() {
        let k = AppKey::compile(&AppKey::default_fields(), "unknown").unwrap();
        let full = map(
            json!({"fields": {"app": "billing"}, "container": {"name": "c1"}, "host": {"name": "web-1"}}),
        );
        assert_eq!(k.resolve(&full), "billing");
        let docker = map(
            json!({"container": {"name": "c1"}, "service": {"name": "s"}, "host": {"name": "web-1"}}),
        );
        assert_eq!(k.resolve(&docker), "c1");
        let service = map(json!({"service": {"name": "s"}, "host": {"name": "web-1"}}));
        assert_eq!(k.resolve(&service), "s");
        assert_eq!(k.resolve(&map(json!({"host": {"name": "web-1"}}))), "web-1");
        // v1 (logstash-forwarder): `host` is the hostname string.
        assert_eq!(k.resolve(&map(json!({"host": "h1", "line": "x"}))), "h1");
        assert_eq!(k.resolve(&map(json!({"message": "x"}))), "unknown");
        // Empty strings, objects and arrays do not name an app.
        let odd = map(
            json!({"fields": {"app": ""}, "container": {"name": ["a"]}, "host": {"name": "h"}}),
        );
        assert_eq!(k.resolve(&odd), "h");
    }

    #[test]
    fn both_spellings_numbers_and_flattened_keys() {
        let e = map(json!({"fields": {"team": {"app": "deep"}, "id": 42}, "fields.app": "flat"}));
        assert_eq!(key(&["[fields][team][app]"]).resolve(&e), "deep");
        assert_eq!(key(&["fields.id"]).resolve(&e), "42");
        assert_eq!(key(&["fields.app"]).resolve(&e), "flat");
        assert_eq!(key(&["nope", "fields.team.app"]).resolve(&e), "deep");
        assert!(AppKey::compile(&["[fields".into()], "x").is_err());
    }
}
