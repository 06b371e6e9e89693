//! `[listener.beats]`: the options only the beats protocol has, and the checks of a beats listener.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{ByteSize, ListenerConfig, Transport};
use crate::event::FieldPath;

/// `[listener.beats]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BeatsOptions {
    /// A client that sends nothing for this long, while none of its windows awaits commit, is
    /// closed (Logstash's `client_inactivity_timeout`, 60 s).
    #[serde(with = "duration_text")]
    pub client_inactivity_timeout: Duration,
    /// The largest `W` (events per window) accepted; go-lumber's server refuses beyond 10000,
    /// libbeat's `bulk_max_size` defaults to 2048.
    pub max_window_events: u32,
    /// The most one `C` frame may inflate to (and its compressed length): the decompression cap.
    pub max_inflated_bytes: ByteSize,
    /// Logstash's json codec drops `@metadata` (`beat`, `version`, the peer address...), and
    /// so does logport by default. Naming a top-level field here keeps it there instead, for
    /// pipelines that build index names from `[@metadata][beat]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_field: Option<String>,
}

impl Default for BeatsOptions {
    fn default() -> Self {
        BeatsOptions {
            client_inactivity_timeout: Duration::from_secs(60),
            max_window_events: 10_000,
            max_inflated_bytes: ByteSize(64 << 20),
            metadata_field: None,
        }
    }
}

pub fn check_listener(listener: &ListenerConfig) -> Result<(), (Vec<&'static str>, String)> {
    if listener.transport == Transport::Udp {
        return Err((
            vec!["transport"],
            "the beats protocol runs over a stream: use `tcp` or `tls`, not `udp`".into(),
        ));
    }
    let options = &listener.beats;
    if options.client_inactivity_timeout.is_zero() {
        return Err((
            vec!["beats", "client_inactivity_timeout"],
            "must be longer than zero".into(),
        ));
    }
    if options.max_window_events == 0 {
        return Err((
            vec!["beats", "max_window_events"],
            "must be at least 1 (libbeat sends up to `bulk_max_size`, 2048 by default)".into(),
        ));
    }
    if options.max_inflated_bytes.0 < 1024 {
        return Err((
            vec!["beats", "max_inflated_bytes"],
            "must be at least 1KiB".into(),
        ));
    }
    if options.max_inflated_bytes.0 < listener.max_message_bytes.0 {
        return Err((
            vec!["beats", "max_inflated_bytes"],
            format!(
                "is smaller than `max_message_bytes` ({}): a compressed window could not hold one event",
                listener.max_message_bytes.0
            ),
        ));
    }
    if let Some(field) = &options.metadata_field {
        let path = FieldPath::parse(field).map_err(|e| (vec!["beats", "metadata_field"], e))?;
        if path.0.len() != 1 || field.starts_with('@') {
            return Err((
                vec!["beats", "metadata_field"],
                format!("`{field}` must be one top-level field name (e.g. \"beats_metadata\"), not starting with `@`"),
            ));
        }
    }
    Ok(())
}

mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration such as \"60s\" or \"1m 30s\": {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn listener(extra: &str) -> String {
        format!("[[listener]]\nprotocol = \"beats\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:5044\"\n{extra}")
    }

    #[test]
    fn defaults_are_logstash_s() {
        let config = Config::from_toml(&listener("")).unwrap();
        let beats = &config.listeners[0].beats;
        assert_eq!(beats.client_inactivity_timeout, Duration::from_secs(60));
        assert_eq!(beats.max_window_events, 10_000);
        assert_eq!(beats.metadata_field, None);
    }

    #[test]
    fn options_are_read_and_checked() {
        let config = Config::from_toml(&listener(
            "[listener.beats]\nclient_inactivity_timeout = \"5s\"\nmax_window_events = 100\nmetadata_field = \"meta\"\n",
        ))
        .unwrap();
        let beats = &config.listeners[0].beats;
        assert_eq!(beats.client_inactivity_timeout, Duration::from_secs(5));
        assert_eq!(beats.max_window_events, 100);
        assert_eq!(beats.metadata_field.as_deref(), Some("meta"));
        // `logport check-config` prints the effective file; it must read back the same.
        assert_eq!(Config::from_toml(&config.to_toml()).unwrap(), config);

        let udp = listener("").replace("\"tcp\"", "\"udp\"");
        let e = Config::from_toml(&udp).unwrap_err().to_string();
        assert!(e.contains("transport") && e.contains("udp"), "{e}");
        for (bad, key) in [
            (
                "client_inactivity_timeout = \"0s\"",
                "client_inactivity_timeout",
            ),
            ("max_window_events = 0", "max_window_events"),
            ("metadata_field = \"[a][b]\"", "metadata_field"),
            ("metadata_field = \"@metadata\"", "metadata_field"),
            ("max_inflated_bytes = \"4KiB\"", "max_inflated_bytes"),
            ("no_such_key = 1", "no_such_key"),
        ] {
            let e = Config::from_toml(&listener(&format!("[listener.beats]\n{bad}\n")))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
