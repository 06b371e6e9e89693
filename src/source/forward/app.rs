//! The forward app key: an ordered list of field paths into the event, the first present wins.

use std::borrow::Cow;

use logport_forward::rmpv::Value;
use logport_forward::value;

use crate::event::FieldPath;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    /// The Fluent tag (it travels in `tags`, as Logstash's fluent codec puts it).
    Tag,
    /// A path into the record, `message` also finding a `log` that became `message`.
    Record(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct AppKey {
    fields: Vec<Field>,
    default: String,
}

impl AppKey {
    /// Marathon's app id when Docker was told to pass it (`--log-opt env=MARATHON_APP_ID`),
    /// else the container's name, else the tag (Docker's default tag is the container id).
    pub fn default_fields() -> Vec<String> {
        vec![
            "MARATHON_APP_ID".into(),
            "container_name".into(),
            "tags".into(),
        ]
    }

    pub fn compile(fields: &[String], default: &str) -> Result<AppKey, String> {
        let fields = fields
            .iter()
            .map(|text| {
                let path = FieldPath::parse(text)?;
                Ok(match path.0.as_slice() {
                    [one] if one == "tags" || one == "tag" => Field::Tag,
                    _ => Field::Record(path.0),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(AppKey {
            fields,
            default: default.to_owned(),
        })
    }

    pub fn resolve<'a>(&'a self, tag: &'a str, record: &'a Value) -> Cow<'a, str> {
        for field in &self.fields {
            let found = match field {
                Field::Tag => Some(Cow::Borrowed(tag)),
                Field::Record(path) => {
                    let mut found = lookup(record, path);
                    if found.is_none() && path.len() == 1 && path[0] == "message" {
                        found = lookup(record, &["log".to_owned()]);
                    }
                    found.and_then(as_text).map(|text| {
                        // Docker names containers `/web`; the app is `web`.
                        if path.len() == 1 && path[0] == "container_name" {
                            match text {
                                Cow::Borrowed(t) => Cow::Borrowed(t.trim_start_matches('/')),
                                Cow::Owned(t) => Cow::Owned(t.trim_start_matches('/').to_owned()),
                            }
                        } else {
                            text
                        }
                    })
                }
            };
            if let Some(app) = found.filter(|a| !a.is_empty()) {
                return app;
            }
        }
        Cow::Borrowed(&self.default)
    }
}

fn lookup<'a>(record: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(record, |at, key| value::get(at, key))
}

fn as_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(_) | Value::Binary(_) => value::text_of(v),
        Value::Integer(i) => Some(Cow::Owned(i.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fields: &[&str]) -> AppKey {
        AppKey::compile(
            &fields.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "unknown",
        )
        .unwrap()
    }

    fn record(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn docker_defaults_prefer_marathon_then_the_container_then_the_tag() {
        let defaults = AppKey::compile(&AppKey::default_fields(), "unknown").unwrap();
        let docker = record(&[("container_name", "/web".into()), ("log", "hi".into())]);
        assert_eq!(defaults.resolve("3f2a", &docker), "web");
        let marathon = record(&[
            ("container_name", "/web".into()),
            ("MARATHON_APP_ID", "/billing/api".into()),
        ]);
        assert_eq!(defaults.resolve("3f2a", &marathon), "/billing/api");
        assert_eq!(defaults.resolve("app.access", &record(&[])), "app.access");
        // An empty value counts as absent.
        let empty = record(&[("container_name", "".into())]);
        assert_eq!(defaults.resolve("t", &empty), "t");
    }

    #[test]
    fn paths_reach_into_nested_maps_in_both_spellings() {
        let r = record(&[
            ("fields", record(&[("app", Value::Binary(b"pay".to_vec()))])),
            ("n", 42.into()),
            ("log", "line".into()),
        ]);
        assert_eq!(key(&["fields.app"]).resolve("t", &r), "pay");
        assert_eq!(key(&["[fields][app]"]).resolve("t", &r), "pay");
        assert_eq!(key(&["missing", "n"]).resolve("t", &r), "42");
        assert_eq!(key(&["message"]).resolve("t", &r), "line");
        assert_eq!(key(&["fields.other", "x.y"]).resolve("t", &r), "unknown");
        assert!(AppKey::compile(&["[broken".into()], "u").is_err());
    }
}
