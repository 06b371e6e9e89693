//! Topic names from a template over `{app}` and `{protocol}`, made legal for Kafka.

use std::collections::HashMap;
use std::sync::Arc;

use crate::event::Protocol;

/// Kafka's limit on topic names.
const MAX_TOPIC: usize = 249;
/// Distinct (app, protocol) names remembered; beyond, the cache starts over (a flood of app
/// names must not grow memory without bound).
const CACHE_LIMIT: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    App,
    Protocol,
}

/// A compiled topic template and the names it has made so far.
#[derive(Debug)]
pub struct Topics {
    parts: Vec<Part>,
    fixed: Option<Arc<str>>,
    cache: HashMap<(Arc<str>, Protocol), Arc<str>>,
}

impl Topics {
    pub fn new(template: &str) -> Result<Topics, String> {
        let parts = parse(template)?;
        for part in &parts {
            if let Part::Text(t) = part {
                if t.len() > MAX_TOPIC
                    || t.chars()
                        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                {
                    return Err(format!(
                        "`{template}` is not a legal Kafka topic name: outside {{app}} and {{protocol}} use letters, digits, `.`, `_` and `-` (at most {MAX_TOPIC})"
                    ));
                }
            }
        }
        let fixed = match parts.as_slice() {
            [] => return Err("the topic is empty".into()),
            [Part::Text(t)] if t == "." || t == ".." => {
                return Err(format!("`{t}` is not a legal Kafka topic name"))
            }
            [Part::Text(t)] => Some(Arc::from(t.as_str())),
            _ => None,
        };
        Ok(Topics {
            parts,
            fixed,
            cache: HashMap::new(),
        })
    }

    /// The topic of an event of `app` that came by `protocol`.
    pub fn topic(&mut self, app: &Arc<str>, protocol: Protocol) -> Arc<str> {
        if let Some(fixed) = &self.fixed {
            return fixed.clone();
        }
        if let Some(t) = self.cache.get(&(app.clone(), protocol)) {
            return t.clone();
        }
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        let mut raw = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => raw.push_str(t),
                Part::App => raw.push_str(app),
                Part::Protocol => raw.push_str(protocol.as_str()),
            }
        }
        let topic: Arc<str> = Arc::from(sanitize(&raw));
        self.cache.insert((app.clone(), protocol), topic.clone());
        topic
    }
}

fn parse(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_owned()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("`{template}` has a `{{` without its `}}`"))?
            + open;
        parts.push(match &rest[open + 1..close] {
            "app" => Part::App,
            "protocol" => Part::Protocol,
            other => return Err(format!("`{{{other}}}` in the topic `{template}` is not a known field: use {{app}} or {{protocol}}")),
        });
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("`{template}` has a `}}` without its `{{`"));
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// A legal topic name: characters outside `[a-zA-Z0-9._-]` become `_`, at most 249 of them,
/// and never `.` or `..` (which Kafka refuses) or empty.
pub fn sanitize(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TOPIC)
        .collect();
    if name.is_empty() || name == "." || name == ".." {
        name = name.replace('.', "_");
        if name.is_empty() {
            name.push('_');
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(template: &str, app: &str, protocol: Protocol) -> String {
        Topics::new(template)
            .unwrap()
            .topic(&Arc::from(app), protocol)
            .to_string()
    }

    #[test]
    fn templates_fill_in_app_and_protocol() {
        assert_eq!(topic("logs", "x", Protocol::Syslog), "logs");
        assert_eq!(
            topic("logs-{app}", "billing", Protocol::Syslog),
            "logs-billing"
        );
        assert_eq!(topic("{protocol}.{app}", "web", Protocol::Gelf), "gelf.web");
        assert_eq!(
            topic("logs-{app}", "/prod/web api:v1", Protocol::Syslog),
            "logs-_prod_web_api_v1"
        );
        assert_eq!(topic("{app}", "..", Protocol::Syslog), "__");
        assert_eq!(topic("{app}", "é", Protocol::Syslog), "_");
        assert_eq!(
            topic("logs-{app}", &"a".repeat(400), Protocol::Syslog).len(),
            249
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "",
            "logs-{host}",
            "logs-{app",
            "logs}",
            "bad topic",
            "logs/{app}",
        ] {
            assert!(Topics::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut t = Topics::new("logs-{app}").unwrap();
        for i in 0..(CACHE_LIMIT + 10) {
            t.topic(&Arc::from(format!("app{i}")), Protocol::Syslog);
        }
        assert!(t.cache.len() <= CACHE_LIMIT);
        assert_eq!(&*t.topic(&Arc::from("app1"), Protocol::Syslog), "logs-app1");
    }
}
