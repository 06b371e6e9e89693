//! `[listener.gelf]`: the options only GELF listeners have.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{ByteSize, ListenerConfig, Transport};

/// `[listener.gelf]`. `remap` and `strip_leading_underscore` keep the names and defaults of
/// Logstash's gelf input, so a Logstash config carries over.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GelfOptions {
    /// UDP: a chunked message still incomplete this long after its first chunk is dropped
    /// (Graylog's rule is 5 s).
    #[serde(with = "duration_text")]
    pub chunk_timeout: Duration,
    /// UDP: bytes held by all partial chunked messages of the listener together; the oldest
    /// are dropped to make room. Graylog and Logstash have no such bound, which lets a flood of
    /// first chunks eat the heap.
    pub max_reassembly_bytes: ByteSize,
    /// UDP: partial chunked messages in progress at once (same eviction).
    pub max_pending_messages: usize,
    /// The most a zlib/gzip payload may inflate to; beyond, the datagram (or connection) is
    /// refused. `max_message_bytes` caps the payload as it comes off the wire.
    pub max_decompressed_bytes: ByteSize,
    /// `full_message` (else `short_message`) becomes `message`, as Logstash's `remap`.
    pub remap: bool,
    /// `_foo` becomes `foo`, as Logstash's `strip_leading_underscore`.
    pub strip_leading_underscore: bool,
}

impl Default for GelfOptions {
    fn default() -> Self {
        GelfOptions {
            chunk_timeout: Duration::from_secs(5),
            max_reassembly_bytes: ByteSize(64 << 20),
            max_pending_messages: 8192,
            max_decompressed_bytes: ByteSize(4 << 20),
            remap: true,
            strip_leading_underscore: true,
        }
    }
}

/// Config checks of a gelf listener; errors name keys under the listener.
pub fn check_listener(listener: &ListenerConfig) -> Result<(), (Vec<&'static str>, String)> {
    let o = &listener.gelf;
    if o.chunk_timeout < Duration::from_millis(100) || o.chunk_timeout > Duration::from_secs(600) {
        return Err((
            vec!["gelf", "chunk_timeout"],
            "must be between 100ms and 10m".into(),
        ));
    }
    // One chunk of the largest datagram must fit, or no chunked message could ever complete.
    if o.max_reassembly_bytes.0 < 64 << 10 || o.max_reassembly_bytes.0 > 16 << 30 {
        return Err((
            vec!["gelf", "max_reassembly_bytes"],
            "must be between 64KiB and 16GiB".into(),
        ));
    }
    if o.max_pending_messages == 0 {
        return Err((
            vec!["gelf", "max_pending_messages"],
            "must be at least 1".into(),
        ));
    }
    if o.max_decompressed_bytes.0 < 64 || o.max_decompressed_bytes.0 > 64 << 20 {
        return Err((
            vec!["gelf", "max_decompressed_bytes"],
            "must be between 64B and 64MiB".into(),
        ));
    }
    if listener.transport != Transport::Udp && *o != non_udp_view(o) {
        return Err((
            vec!["gelf"],
            "chunk_timeout, max_reassembly_bytes and max_pending_messages apply to UDP (chunk reassembly) only".into(),
        ));
    }
    Ok(())
}

/// The options with the UDP-only ones at their defaults.
fn non_udp_view(o: &GelfOptions) -> GelfOptions {
    let d = GelfOptions::default();
    GelfOptions {
        chunk_timeout: d.chunk_timeout,
        max_reassembly_bytes: d.max_reassembly_bytes,
        max_pending_messages: d.max_pending_messages,
        ..o.clone()
    }
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
                "`{text}` is not a duration such as \"5s\" or \"1m 30s\": {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn load(listener: &str) -> Result<Config, String> {
        Config::from_toml(&format!(
            "[[listener]]\nprotocol = \"gelf\"\naddress = \"127.0.0.1:12201\"\n{listener}"
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_graylog_and_logstash() {
        let c = load("transport = \"udp\"\n").unwrap();
        let o = &c.listeners[0].gelf;
        assert_eq!(o.chunk_timeout, Duration::from_secs(5));
        assert!(o.remap && o.strip_leading_underscore);
        assert_eq!(*o, GelfOptions::default());
    }

    #[test]
    fn options_parse_and_are_checked() {
        let c = load("transport = \"udp\"\n[listener.gelf]\nchunk_timeout = \"2s\"\nmax_reassembly_bytes = \"1MiB\"\nstrip_leading_underscore = false\n").unwrap();
        let o = &c.listeners[0].gelf;
        assert_eq!(o.chunk_timeout, Duration::from_secs(2));
        assert_eq!(o.max_reassembly_bytes, ByteSize(1 << 20));
        assert!(!o.strip_leading_underscore);

        let e = load("transport = \"udp\"\n[listener.gelf]\nchunk_timeout = \"1h\"\n").unwrap_err();
        assert!(e.contains("gelf.chunk_timeout"), "{e}");
        let e =
            load("transport = \"udp\"\n[listener.gelf]\nmax_decompressed_bytes = 1\n").unwrap_err();
        assert!(e.contains("max_decompressed_bytes"), "{e}");
        let e = load("transport = \"tcp\"\n[listener.gelf]\nchunk_timeout = \"2s\"\n").unwrap_err();
        assert!(e.contains("UDP"), "{e}");
        let e = load("transport = \"udp\"\n[listener.gelf]\nremapp = true\n").unwrap_err();
        assert!(e.contains("remapp"), "{e}");
    }
}
