//! `[listener.forward]`: the options in_forward has that logport keeps, under in_forward's names.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ByteSize, ListenerConfig, Transport};

/// `[listener.forward]`: options only the forward protocol has.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardOptions {
    /// in_forward `<security> shared_key`: turns on the HELO/PING/PONG handshake.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact_some"
    )]
    pub shared_key: Option<String>,
    /// in_forward `<security> self_hostname`: the name sent in the PONG (default: this host's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_hostname: Option<String>,
    /// in_forward `<security> <user>`: with any, clients must also send a username/password.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<ForwardUser>,
    /// in_forward `deny_keepalive`: one batch of messages per connection, then close.
    pub deny_keepalive: bool,
    /// in_forward `chunk_size_limit`: a forward message larger than this on the wire closes the
    /// connection. Also bounds what one compressed message may inflate to (at least 16MiB).
    pub chunk_size_limit: ByteSize,
    /// in_forward `skip_invalid_event`: entries whose time is not a time or whose record is not
    /// a map are dropped and counted (true), or close the connection (false).
    pub skip_invalid_event: bool,
    /// Docker's fluentd driver puts the line in `log`; Logstash's fluent codec keeps it there.
    /// True renames it to `message` (when the record has no `message`), which is what the
    /// pipelines behind other inputs read.
    pub message_from_log: bool,
    /// Re-join the pieces Docker's fluentd driver splits lines over 16KiB into (records with
    /// `partial_message`); off by default, as Logstash's fluent codec keeps them apart.
    pub join_partials: bool,
    /// What one message's entries may cost once decoded, each entry counted as 256 bytes plus
    /// its own (default: 8 times what a message may inflate to, 128MiB at the default
    /// `chunk_size_limit`). An entry `[0, {}]` is 3 bytes on the wire and hundreds once decoded
    /// and made an event; a message past this is refused (`decoded_too_large`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_decoded_bytes: Option<ByteSize>,
    /// A joined line's `log` stops growing here: what is held is emitted and a new join starts.
    pub partial_max_bytes: ByteSize,
    /// A line whose last piece has not come this long after its first is emitted as far as
    /// it goes (counted in `logport_forward_partial_joins_total{outcome="timed_out"}`).
    #[serde(with = "crate::config::duration_text")]
    pub partial_timeout: Duration,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            shared_key: None,
            self_hostname: None,
            users: Vec::new(),
            deny_keepalive: false,
            chunk_size_limit: ByteSize(DEFAULT_CHUNK_SIZE_LIMIT),
            skip_invalid_event: true,
            message_from_log: true,
            join_partials: false,
            max_decoded_bytes: None,
            partial_max_bytes: ByteSize(192 << 10),
            partial_timeout: Duration::from_secs(5),
        }
    }
}

/// Fluentd's memory buffer makes chunks of at most 8MiB, and Fluent Bit's are smaller; file
/// buffers (256MiB chunks) need this raised.
pub const DEFAULT_CHUNK_SIZE_LIMIT: u64 = 8 << 20;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForwardUser {
    pub username: String,
    #[serde(serialize_with = "redact")]
    pub password: String,
}

/// `logport check-config` prints the effective configuration, often into logs and tickets:
/// secrets are shown as `<redacted>`.
fn redact<S: serde::Serializer>(_: &String, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

fn redact_some<S: serde::Serializer>(_: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

impl ForwardOptions {
    /// The inflated size one CompressedPackedForward message may reach: a client's chunk limit
    /// bounds its uncompressed buffer (Fluentd's memory buffer: 8MiB chunks), so the same limit
    /// bounds what it inflates to; in_forward's 256MiB would let every reader under the
    /// inflation gate (CPUs - 1) hold that much before the budget covers its events.
    pub fn max_decompressed(&self) -> usize {
        (self.chunk_size_limit.0 as usize).max(16 << 20)
    }

    /// What one message's entries may cost once decoded (each entry counted as
    /// `logport_forward::ENTRY_COST` bytes plus its own): `max_decoded_bytes`, by default eight
    /// times what a message may inflate to. That is room for a full chunk of short records (an
    /// 8MiB chunk of 20-byte entries costs 115MiB), while one of empty records, 86 times its
    /// bytes, is refused part way.
    pub fn max_decoded(&self) -> usize {
        match self.max_decoded_bytes {
            Some(b) => b.0 as usize,
            None => self.max_decompressed().saturating_mul(8),
        }
    }
}

pub fn check(listener: &ListenerConfig) -> Result<(), (Vec<&'static str>, String)> {
    let o = &listener.forward;
    if listener.transport == Transport::Udp {
        return Err((
            vec!["transport"],
            "forward runs over \"tcp\" or \"tls\" (its UDP heartbeat is answered on the same port without a listener of its own)".into(),
        ));
    }
    if o.shared_key.as_deref() == Some("") {
        return Err((
            vec!["forward", "shared_key"],
            "must not be empty (leave it out to accept clients without the handshake)".into(),
        ));
    }
    if !o.users.is_empty() && o.shared_key.is_none() {
        return Err((
            vec!["forward", "users"],
            "user authentication is part of the handshake: set `shared_key` too".into(),
        ));
    }
    if o.self_hostname.is_some() && o.shared_key.is_none() {
        return Err((
            vec!["forward", "self_hostname"],
            "is only sent in the handshake: set `shared_key` too".into(),
        ));
    }
    if o.self_hostname.as_deref() == Some("") {
        return Err((vec!["forward", "self_hostname"], "must not be empty".into()));
    }
    if o.users.iter().any(|u| u.username.is_empty()) {
        return Err((
            vec!["forward", "users"],
            "every user needs a non-empty `username`".into(),
        ));
    }
    if !(1 << 10..=1 << 30).contains(&o.chunk_size_limit.0) {
        return Err((
            vec!["forward", "chunk_size_limit"],
            "must be between 1KiB and 1GiB".into(),
        ));
    }
    if o.max_decoded_bytes
        .is_some_and(|b| !(1 << 20..=1 << 40).contains(&b.0))
    {
        return Err((
            vec!["forward", "max_decoded_bytes"],
            "must be between 1MiB and 1TiB".into(),
        ));
    }
    if !(16 << 10..=64 << 20).contains(&o.partial_max_bytes.0) {
        return Err((
            vec!["forward", "partial_max_bytes"],
            "must be between 16KiB (one piece) and 64MiB".into(),
        ));
    }
    // A joined line becomes one event, which must fit `max_message_bytes` with its other fields.
    if o.join_partials && o.partial_max_bytes.0 + (16 << 10) > listener.max_message_bytes.0 {
        return Err((
            vec!["forward", "partial_max_bytes"],
            format!(
                "must leave 16KiB for the other fields within the listener's max_message_bytes ({}): a joined line becomes one event",
                listener.max_message_bytes
            ),
        ));
    }
    if !(Duration::from_millis(10)..=Duration::from_secs(600)).contains(&o.partial_timeout) {
        return Err((
            vec!["forward", "partial_timeout"],
            "must be between 10ms and 10m".into(),
        ));
    }
    Ok(())
}
