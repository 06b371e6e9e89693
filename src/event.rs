//! The event as it leaves a source: its Logstash-shaped JSON value (exactly what goes to Kafka),
//! the app key, and the few facts every sink needs beside the value.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

/// The wire protocol an event arrived by. Sinks put it in a Kafka header and topic templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Syslog,
    Beats,
    Gelf,
    Forward,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [Protocol::Syslog, Protocol::Beats, Protocol::Gelf, Protocol::Forward];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Syslog => "syslog",
            Protocol::Beats => "beats",
            Protocol::Gelf => "gelf",
            Protocol::Forward => "forward",
        }
    }

    /// Stable one-byte code used by on-disk formats.
    pub fn code(self) -> u8 {
        match self {
            Protocol::Syslog => 1,
            Protocol::Beats => 2,
            Protocol::Gelf => 3,
            Protocol::Forward => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.code() == code)
    }

    pub fn parse(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log event, ready to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The app key: Kafka message key, rate-limit key, `logport read --app` filter.
    pub app: Arc<str>,
    pub protocol: Protocol,
    /// The sender's address (the client's, once PROXY headers are honoured).
    pub peer: SocketAddr,
    /// When the gateway read the event, nanoseconds since the Unix epoch.
    pub received_ns: i64,
    /// The event as one JSON object, exactly the bytes that go to Kafka.
    pub value: Bytes,
}

impl Event {
    /// Bytes this event holds in memory, for the in-flight budget and metrics.
    pub fn size(&self) -> usize {
        self.value.len() + self.app.len() + std::mem::size_of::<Event>()
    }
}
