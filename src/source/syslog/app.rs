//! The syslog app key: an ordered list of fields, the first present wins.

use logport_syslog::Message;

use crate::event::FieldPath;

/// A field of a syslog event that can name its app.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    AppName,
    Hostname,
    ProcId,
    MsgId,
    PeerIp,
    StructuredData { id: String, param: String },
}

#[derive(Clone, Debug)]
pub struct AppKey {
    fields: Vec<Field>,
    default: String,
}

const KNOWN: &str = "process.name (APP-NAME or TAG), host.hostname, process.pid, log.syslog.msgid, host.ip \
                     or log.syslog.structured_data.SD-ID.PARAM (Logstash's legacy names program, logsource, pid, \
                     msgid and host work too)";

impl AppKey {
    /// By default the app is the RFC 5424 APP-NAME or the RFC 3164 TAG (Docker puts its `tag`
    /// template there).
    pub fn default_fields() -> Vec<String> {
        vec!["process.name".into()]
    }

    pub fn compile(fields: &[String], default: &str) -> Result<AppKey, String> {
        let fields = fields
            .iter()
            .map(|f| Self::field(f))
            .collect::<Result<_, _>>()?;
        Ok(AppKey {
            fields,
            default: default.to_owned(),
        })
    }

    fn field(text: &str) -> Result<Field, String> {
        let path = FieldPath::parse(text)?;
        let parts: Vec<&str> = path.0.iter().map(String::as_str).collect();
        let field = match parts.as_slice() {
            ["process", "name"] | ["program"] | ["log", "syslog", "appname"] | ["appname"] => {
                Field::AppName
            }
            ["host", "hostname"] | ["logsource"] | ["log", "syslog", "hostname"] | ["hostname"] => {
                Field::Hostname
            }
            ["process", "pid"] | ["pid"] | ["log", "syslog", "procid"] | ["procid"] => {
                Field::ProcId
            }
            ["log", "syslog", "msgid"] | ["msgid"] => Field::MsgId,
            ["host", "ip"] | ["host"] => Field::PeerIp,
            ["log", "syslog", "structured_data", rest @ ..] | ["structured_data", rest @ ..]
                if rest.len() >= 2 =>
            {
                // An SD-ID may itself contain dots (`origin@1.2`): the last part is the param.
                let (param, id) = rest.split_last().expect("two parts at least");
                Field::StructuredData {
                    id: id.join("."),
                    param: (*param).to_owned(),
                }
            }
            _ => {
                return Err(format!(
                    "syslog events have no field `{text}` to take the app from; use {KNOWN}"
                ))
            }
        };
        Ok(field)
    }

    /// The app of a parsed message, or of a line that did not parse (`msg` is None).
    pub fn resolve<'a>(&'a self, msg: Option<&'a Message<'a>>, peer_ip: &'a str) -> &'a str {
        for field in &self.fields {
            let found: Option<&str> = match (field, msg) {
                (Field::PeerIp, _) => Some(peer_ip),
                (_, None) => None,
                (Field::AppName, Some(m)) => m.app_name.as_deref(),
                (Field::Hostname, Some(m)) => m.hostname.as_deref(),
                (Field::ProcId, Some(m)) => m.proc_id.as_deref(),
                (Field::MsgId, Some(m)) => m.msg_id.as_deref(),
                (Field::StructuredData { id, param }, Some(m)) => m
                    .structured_data
                    .iter()
                    .filter(|e| e.id == id.as_str())
                    .flat_map(|e| e.params.iter())
                    .find(|(name, _)| name == param.as_str())
                    .map(|(_, value)| value.as_ref()),
            };
            if let Some(app) = found.filter(|a| !a.is_empty()) {
                return app;
            }
        }
        &self.default
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

    #[test]
    fn the_first_present_field_wins() {
        let line =
            b"<14>1 2024-05-01T12:00:00Z web-1 - 42 - [meta@1.2 app=\"billing\" team=\"x\"] hi";
        let msg = logport_syslog::parse(line).unwrap();
        assert_eq!(
            key(&["process.name", "host.hostname"]).resolve(Some(&msg), "10.0.0.1"),
            "web-1"
        );
        assert_eq!(
            key(&["[log][syslog][structured_data][meta@1.2][app]"]).resolve(Some(&msg), "10.0.0.1"),
            "billing"
        );
        assert_eq!(
            key(&["log.syslog.structured_data.meta@1.2.team"]).resolve(Some(&msg), "10.0.0.1"),
            "x"
        );
        assert_eq!(key(&["pid"]).resolve(Some(&msg), "10.0.0.1"), "42");
        assert_eq!(
            key(&["msgid", "host.ip"]).resolve(Some(&msg), "10.0.0.1"),
            "10.0.0.1"
        );
        assert_eq!(key(&["process.name"]).resolve(None, "10.0.0.1"), "unknown");
    }

    #[test]
    fn unknown_fields_are_named_in_the_error() {
        let e = AppKey::compile(&["labels.app".into()], "unknown").unwrap_err();
        assert!(
            e.contains("labels.app") && e.contains("process.name"),
            "{e}"
        );
        assert!(AppKey::compile(&["structured_data.onlyid".into()], "unknown").is_err());
    }
}
