//! The GELF app key: field paths looked up in the shaped event, the first present wins.

use serde_json::{Map, Value};

use crate::event::FieldPath;

#[derive(Clone, Debug)]
pub struct AppKey {
    paths: Vec<Vec<String>>,
    default: String,
}

impl AppKey {
    /// Marathon puts `MARATHON_APP_ID` in each task's environment, which Docker's gelf driver
    /// sends as `_MARATHON_APP_ID` with `--log-opt env=MARATHON_APP_ID`; then the container's
    /// name, then the GELF host.
    pub fn default_fields() -> Vec<String> {
        vec![
            "MARATHON_APP_ID".into(),
            "container_name".into(),
            "host".into(),
        ]
    }

    pub fn compile(fields: &[String], default: &str) -> Result<AppKey, String> {
        let paths = fields
            .iter()
            .map(|f| FieldPath::parse(f).map(|p| p.0))
            .collect::<Result<_, _>>()?;
        Ok(AppKey {
            paths,
            default: default.to_owned(),
        })
    }

    /// The app of a shaped event. A path's first part matches with or without its leading
    /// underscore, so the same `app_fields` work whatever `strip_leading_underscore` says.
    pub fn resolve<'a>(&'a self, event: &'a Map<String, Value>) -> std::borrow::Cow<'a, str> {
        for path in &self.paths {
            let (first, rest) = path.split_first().expect("a path has a part");
            let alternate = match first.strip_prefix('_') {
                Some(bare) => bare.to_owned(),
                None => format!("_{first}"),
            };
            let top = event.get(first).or_else(|| event.get(&alternate));
            let found = rest
                .iter()
                .try_fold(top, |v, part| Some(v?.as_object()?.get(part)))
                .flatten();
            let text = match found {
                Some(Value::String(s)) if !s.is_empty() => std::borrow::Cow::Borrowed(s.as_str()),
                Some(Value::Number(n)) => std::borrow::Cow::Owned(n.to_string()),
                Some(Value::Bool(b)) => std::borrow::Cow::Owned(b.to_string()),
                _ => continue,
            };
            return text;
        }
        std::borrow::Cow::Borrowed(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(fields: &[&str], event: Value) -> String {
        let key = AppKey::compile(
            &fields.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "unknown",
        )
        .unwrap();
        key.resolve(event.as_object().unwrap()).into_owned()
    }

    #[test]
    fn defaults_prefer_marathon_then_container_then_host() {
        let d: Vec<String> = AppKey::default_fields();
        let d: Vec<&str> = d.iter().map(String::as_str).collect();
        assert_eq!(
            resolve(
                &d,
                json!({"MARATHON_APP_ID": "/shop/cart", "container_name": "c", "host": "h"})
            ),
            "/shop/cart"
        );
        // Underscores kept (strip_leading_underscore = false).
        assert_eq!(
            resolve(
                &d,
                json!({"_MARATHON_APP_ID": "/shop/cart", "_container_name": "c"})
            ),
            "/shop/cart"
        );
        assert_eq!(
            resolve(&d, json!({"_container_name": "c", "host": "h"})),
            "c"
        );
        assert_eq!(resolve(&d, json!({"container_name": "", "host": "h"})), "h");
        assert_eq!(resolve(&d, json!({"message": "m"})), "unknown");
    }

    #[test]
    fn nested_paths_and_both_spellings() {
        let e = json!({"fields": {"app": "billing"}, "n": 7});
        assert_eq!(resolve(&["[fields][app]"], e.clone()), "billing");
        assert_eq!(resolve(&["fields.app"], e.clone()), "billing");
        assert_eq!(resolve(&["missing", "n"], e.clone()), "7");
        assert_eq!(
            resolve(&["_MARATHON_APP_ID"], json!({"MARATHON_APP_ID": "x"})),
            "x"
        );
        assert!(AppKey::compile(&["[a".into()], "u").is_err());
    }
}
