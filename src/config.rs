//! TOML configuration: the file format, its defaults, and validation whose errors name the key
//! and the line it is on.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The whole configuration. Every key is optional; an empty file means the defaults.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded store (and later the spool) keeps its files.
    pub data_dir: PathBuf,
    /// The global in-flight byte budget: readers stop reading when it is used up.
    pub in_flight_bytes: ByteSize,
    /// How long a drain (SIGTERM/SIGINT) may take before the process gives up and exits 1.
    #[serde(with = "duration_text")]
    pub shutdown_timeout: Duration,
    /// On SIGTERM, how long `/ready` answers 503 before the listeners stop accepting: time for
    /// a load balancer's health checks to take the node out, so that no shipper is refused.
    #[serde(with = "duration_text")]
    pub drain_grace: Duration,
    pub admin: AdminConfig,
    pub sink: SinkConfig,
    pub store: StoreSettings,
    pub kafka: KafkaSettings,
    pub spool: SpoolSettings,
    pub limits: LimitsConfig,
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            in_flight_bytes: ByteSize(256 << 20),
            shutdown_timeout: Duration::from_secs(30),
            drain_grace: Duration::from_secs(5),
            admin: AdminConfig::default(),
            sink: SinkConfig::default(),
            store: StoreSettings::default(),
            kafka: KafkaSettings::default(),
            spool: SpoolSettings::default(),
            limits: LimitsConfig::default(),
            listeners: default_listeners(),
        }
    }
}

fn default_listeners() -> Vec<ListenerConfig> {
    let on = |protocol, transport, port: u16| ListenerConfig {
        transport,
        ..ListenerConfig::new(protocol, SocketAddr::from(([0, 0, 0, 0], port)))
    };
    vec![
        on(ProtocolName::Syslog, Transport::Tcp, 5514),
        on(ProtocolName::Syslog, Transport::Udp, 5514),
        on(ProtocolName::Beats, Transport::Tcp, 5044),
        on(ProtocolName::Gelf, Transport::Udp, 12201),
        on(ProtocolName::Gelf, Transport::Tcp, 12201),
        on(ProtocolName::Forward, Transport::Tcp, 24224),
    ]
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `/metrics`, `/health` and `/ready` are served here.
    pub address: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            address: "127.0.0.1:9600".parse().expect("literal address"),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    #[serde(rename = "type")]
    pub kind: SinkKind,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// The embedded local log under `data_dir/store`.
    #[default]
    Store,
    /// Kafka (the `[kafka]` table), with the spool under `data_dir/spool` while it is down.
    Kafka,
}

/// The Kafka sink, shaped after the options of Logstash's and Vector's Kafka outputs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `"host:port,host:port"` or a list.
    #[serde(deserialize_with = "string_or_list")]
    pub brokers: Vec<String>,
    /// Topic, fixed or a template over `{app}` and `{protocol}`; what a template makes is
    /// sanitised into a legal topic name.
    pub topic: String,
    /// The message key: the event's app key, or none.
    pub key: KafkaKey,
    /// Headers `protocol`, `peer` and `app` on every message.
    pub headers: bool,
    /// `none`, `gzip`, `snappy` or `lz4`.
    pub compression: String,
    /// Deliveries not confirmed within this go to the spool, and new batches follow them there
    /// until Kafka takes events again (librdkafka's `message.timeout.ms`).
    #[serde(with = "duration_text")]
    pub spool_after: Duration,
    /// librdkafka properties passed through as they are (they override logport's defaults).
    #[serde(
        deserialize_with = "property_map",
        serialize_with = "redacted_properties"
    )]
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            brokers: Vec::new(),
            topic: "logs".into(),
            key: KafkaKey::App,
            headers: true,
            compression: "lz4".into(),
            spool_after: Duration::from_secs(10),
            properties: Default::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum KafkaKey {
    #[default]
    App,
    None,
}

/// Per-app rate limits and the share of the in-flight budget one app may hold (`[limits]`).
/// Reloaded on SIGHUP.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Every app's limit unless `apps` overrides it; 0 is no limit.
    pub events_per_second: u32,
    /// Events an app may send at once above its rate; 0 is one second's worth.
    pub events_burst: u32,
    pub bytes_per_second: ByteSize,
    pub bytes_burst: ByteSize,
    /// Over its limit, an app's connection waits (`throttle`: backpressure to that sender only)
    /// or its events are dropped and counted (`drop`). UDP can only drop.
    pub on_excess: Excess,
    /// The fraction of `in_flight_bytes` one app may hold, so that a flooding app cannot take
    /// the whole budget from the others (its connections wait; UDP drops).
    pub app_share: f64,
    /// Distinct `app` label values in the per-app metrics; the rest are counted under `_other`.
    pub max_app_labels: usize,
    /// Per-app overrides, by app key: `[limits.apps."billing"]`.
    pub apps: std::collections::BTreeMap<String, AppLimits>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            events_per_second: 0,
            events_burst: 0,
            bytes_per_second: ByteSize(0),
            bytes_burst: ByteSize(0),
            on_excess: Excess::Throttle,
            app_share: 0.25,
            max_app_labels: 500,
            apps: Default::default(),
        }
    }
}

/// An app's own limits; what is left out comes from `[limits]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_burst: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_excess: Option<Excess>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Excess {
    #[default]
    Throttle,
    Drop,
}

/// The spool: where batches go while Kafka cannot take them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolSettings {
    /// Events not yet replayed may take this much disk; beyond it, backpressure.
    pub max_bytes: ByteSize,
    pub segment_bytes: ByteSize,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        SpoolSettings {
            max_bytes: ByteSize(1 << 30),
            segment_bytes: ByteSize(64 << 20),
        }
    }
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(|b| b.trim().to_owned()).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(items.into_iter().filter(|b| !b.is_empty()).collect())
}

/// `check-config` output goes into logs and tickets: librdkafka's secrets (`sasl.password`,
/// `ssl.key.password`, ...) are shown as `<redacted>`.
fn redacted_properties<S: serde::Serializer>(
    props: &std::collections::BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(props.len()))?;
    for (k, v) in props {
        let secret = k.contains("password") || k.contains("secret") || k.ends_with("key.pem");
        map.serialize_entry(k, if secret { "<redacted>" } else { v })?;
    }
    map.end()
}

/// librdkafka takes every property as a string; TOML users write numbers and booleans bare.
fn property_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let raw = std::collections::BTreeMap::<String, toml::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            toml::Value::String(s) => Ok((k, s)),
            toml::Value::Integer(i) => Ok((k, i.to_string())),
            toml::Value::Float(f) => Ok((k, f.to_string())),
            toml::Value::Boolean(b) => Ok((k, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "property `{k}` must be a string, number or boolean, not {}",
                other.type_str()
            ))),
        })
        .collect()
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// A segment file is closed and a new one started at this size.
    pub segment_bytes: ByteSize,
    /// Oldest segments are deleted while the store is larger than this.
    pub retention_bytes: ByteSize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            segment_bytes: ByteSize(128 << 20),
            retention_bytes: ByteSize(1 << 30),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolName {
    Syslog,
    /// Lumberjack v1 and v2: Filebeat and the other Beats, Logstash's lumberjack output.
    Beats,
    Gelf,
    /// Fluentd's forward protocol: Fluentd, Fluent Bit, Docker's fluentd driver.
    Forward,
}

impl ProtocolName {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolName::Syslog => "syslog",
            ProtocolName::Beats => "beats",
            ProtocolName::Gelf => "gelf",
            ProtocolName::Forward => "forward",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Tls => "tls",
        }
    }
}

/// Which field names events get, as Logstash's `ecs_compatibility` option decides.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EcsCompatibility {
    /// Logstash 8's default: `[host][hostname]`, `[log][syslog][priority]`, `[event][original]`...
    #[default]
    #[serde(alias = "v1")]
    V8,
    /// Logstash's legacy names: `logsource`, `program`, `priority`, `facility_label`...
    Disabled,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Names the listener in logs and metrics; defaults to `PROTOCOL-TRANSPORT-PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub protocol: ProtocolName,
    pub transport: Transport,
    #[serde(deserialize_with = "socket_addr_text")]
    pub address: SocketAddr,
    /// Connections beyond this are accepted and closed at once (and counted).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The largest message accepted; longer LF-framed lines are truncated, longer
    /// octet-counted frames close the connection.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: ByteSize,
    /// UDP: the socket's kernel receive buffer (SO_RCVBUF).
    #[serde(default = "default_receive_buffer_bytes")]
    pub receive_buffer_bytes: ByteSize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub ecs_compatibility: EcsCompatibility,
    /// Zone of RFC 3164 timestamps, which carry none (IANA name or `UTC`).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Ordered field paths tried for the app key; the first present wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_fields: Option<Vec<String>>,
    /// The app key of events that have none of `app_fields`.
    #[serde(default = "default_app")]
    pub app_default: String,
    /// Keep the raw message in `[event][original]` (ECS mode), as Logstash 8 does.
    #[serde(default = "default_true")]
    pub keep_original: bool,
    /// TCP and TLS: a PROXY protocol (v1 or v2) header from a load balancer before the protocol
    /// (before the TLS handshake); its client address replaces the socket's peer address.
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
    /// Sources allowed to send a PROXY header (CIDRs or single addresses). Required, not
    /// defaulted, when `proxy_protocol` is on: an open list would let any client choose the
    /// address its events carry. `["0.0.0.0/0", "::/0"]` trusts every source, knowingly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// How long a connection may take to send its whole PROXY header.
    #[serde(default = "default_proxy_header_timeout", with = "duration_text")]
    pub proxy_header_timeout: Duration,
    /// TCP and TLS: a connection older than this (plus up to 10% jitter, so that connections
    /// opened together do not all close together) is closed between batches, after its acks,
    /// so that long-lived shippers spread over nodes added later. `0s` (the default): never.
    #[serde(
        default,
        with = "duration_text",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub max_connection_age: Duration,
    /// TCP and TLS: a frame (a syslog message, a GELF frame, a Beats frame, a forward message)
    /// must arrive whole within this of its first byte, or the connection is closed: a sender
    /// writing a byte now and then (slowloris) cannot hold a connection slot and its buffer.
    /// Time between frames does not count. `0s`: no deadline.
    #[serde(default = "default_frame_timeout", with = "duration_text")]
    pub frame_timeout: Duration,
    /// `[listener.beats]`: options of the beats protocol only.
    #[serde(default, skip_serializing_if = "is_default")]
    pub beats: crate::source::beats::BeatsOptions,
    /// `[listener.gelf]`: options of the gelf protocol only.
    #[serde(default, skip_serializing_if = "is_default")]
    pub gelf: crate::source::gelf::GelfOptions,
    /// `[listener.forward]`: options of the forward protocol only.
    #[serde(default, skip_serializing_if = "is_default")]
    pub forward: crate::source::forward::ForwardOptions,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl ListenerConfig {
    pub fn new(protocol: ProtocolName, address: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            name: None,
            protocol,
            transport: Transport::Tcp,
            address,
            max_connections: default_max_connections(),
            max_message_bytes: default_max_message_bytes(),
            receive_buffer_bytes: default_receive_buffer_bytes(),
            tls: None,
            ecs_compatibility: EcsCompatibility::default(),
            timezone: default_timezone(),
            app_fields: None,
            app_default: default_app(),
            keep_original: true,
            proxy_protocol: ProxyProtocol::Off,
            trusted_proxies: Vec::new(),
            proxy_header_timeout: default_proxy_header_timeout(),
            max_connection_age: Duration::ZERO,
            frame_timeout: default_frame_timeout(),
            beats: Default::default(),
            gelf: Default::default(),
            forward: Default::default(),
        }
    }

    /// The name used in logs and metric labels.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!(
                "{}-{}-{}",
                self.protocol.as_str(),
                self.transport.as_str(),
                self.address.port()
            ),
        }
    }
}

fn default_max_connections() -> usize {
    10_000
}
fn default_max_message_bytes() -> ByteSize {
    ByteSize(256 << 10)
}
fn default_receive_buffer_bytes() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_app() -> String {
    "unknown".into()
}
fn default_true() -> bool {
    true
}
fn default_proxy_header_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_frame_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_tls_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Whether a listener expects a PROXY protocol header (HAProxy's `send-proxy`, `send-proxy-v2`;
/// nginx's `proxy_protocol on`) at the start of each connection.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    #[default]
    Off,
    /// A connection may start with a header or directly with the protocol (clients that reach
    /// the listener both through the balancer and around it).
    Optional,
    /// A connection without a header is closed.
    Required,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate chain.
    pub cert: PathBuf,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file with the CAs that client certificates must chain to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// A client must finish the TLS handshake within this, or it is closed (and counted in
    /// `logport_tls_handshake_failures_total`).
    #[serde(default = "default_tls_handshake_timeout", with = "duration_text")]
    pub handshake_timeout: Duration,
}

/// Client certificate verification, as logstash-input-beats' `ssl_client_authentication`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    None,
    Optional,
    Required,
}

/// A byte count written as an integer or a string with a unit (`"64KiB"`, `"256 MiB"`, `"1GB"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("`{text}` is not a size such as 65536, \"64KiB\" or \"1GiB\""))?;
        let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` (use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB)"
                ))
            }
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{text}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        for (unit, factor) in UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) {
                return write!(f, "{}{unit}", self.0 / factor);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: a number of bytes or a string such as \"64KiB\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

pub(crate) mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration such as \"30s\" or \"1m 30s\": {e}"
            ))
        })
    }
}

fn socket_addr_text<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!("`{text}` is not an address of the form IP:PORT (e.g. \"0.0.0.0:5514\" or \"[::]:5514\")"))
    })
}

/// A configuration error, located in its file where possible.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", location(.file, .line))]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub message: String,
}

fn location(file: &Option<PathBuf>, line: &Option<usize>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("{}, line {l}: ", f.display()),
        (Some(f), None) => format!("{}: ", f.display()),
        (None, Some(l)) => format!("line {l}: "),
        (None, None) => String::new(),
    }
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_owned()),
            line: None,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Config::from_toml(&text).map_err(|mut e| {
            e.file = Some(path.to_owned());
            e
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(text, s.start));
            // serde says what type it wanted, not where: name the key whose value is at fault.
            let key = e.span().and_then(|s| key_at_offset(text, s.start));
            let message = e.message().trim_end();
            ConfigError {
                file: None,
                line,
                message: match key {
                    Some(key) if !message.contains(&format!("`{key}`")) => {
                        format!("`{key}`: {message}")
                    }
                    _ => message.to_owned(),
                },
            }
        })?;
        config.validate().map_err(|(path, message)| ConfigError {
            file: None,
            line: line_of_key(text, &path),
            message: format!("`{}`: {message}", render_path(&path)),
        })?;
        Ok(config)
    }

    /// Validates a configuration built or changed in code (e.g. by command-line flags).
    pub fn check(&self) -> Result<(), ConfigError> {
        self.validate().map_err(|(path, message)| ConfigError {
            file: None,
            line: None,
            message: format!("`{}`: {message}", render_path(&path)),
        })
    }

    /// Checks what the types alone cannot. Errors carry the path of the offending key.
    fn validate(&self) -> Result<(), (Vec<PathSeg>, String)> {
        use PathSeg::{Index, Key};
        if self.in_flight_bytes.0 < 1 << 20 {
            return Err((vec![Key("in_flight_bytes")], "must be at least 1MiB".into()));
        }
        if self.drain_grace >= self.shutdown_timeout {
            return Err((
                vec![Key("drain_grace")],
                format!(
                    "must be shorter than `shutdown_timeout` ({}), which bounds the whole drain",
                    humantime::format_duration(self.shutdown_timeout)
                ),
            ));
        }
        if self.store.segment_bytes.0 < 4096 {
            return Err((
                vec![Key("store"), Key("segment_bytes")],
                "must be at least 4KiB".into(),
            ));
        }
        if self.store.retention_bytes < self.store.segment_bytes {
            return Err((
                vec![Key("store"), Key("retention_bytes")],
                format!(
                    "must be at least `segment_bytes` ({})",
                    self.store.segment_bytes
                ),
            ));
        }
        if self.sink.kind == SinkKind::Kafka {
            let k = &self.kafka;
            if k.brokers.is_empty() {
                // Nothing to point at under [kafka]: point at what asked for Kafka.
                return Err((vec![Key("sink"), Key("type")], "the kafka sink needs `kafka.brokers` (e.g. `[kafka]` `brokers = \"host:9092\"`), or `--kafka BROKERS`".into()));
            }
            if !["none", "gzip", "snappy", "lz4"].contains(&k.compression.as_str()) {
                return Err((
                    vec![Key("kafka"), Key("compression")],
                    format!("`{}` is not one of none, gzip, snappy, lz4", k.compression),
                ));
            }
            if let Err(e) = crate::sink::kafka::check_topic_template(&k.topic) {
                return Err((vec![Key("kafka"), Key("topic")], e));
            }
            if k.spool_after < Duration::from_secs(1) {
                return Err((
                    vec![Key("kafka"), Key("spool_after")],
                    "must be at least 1s".into(),
                ));
            }
            if let Err((property, e)) = crate::sink::kafka::check_properties(self) {
                return Err((
                    vec![Key("kafka"), Key("properties"), PathSeg::Name(property)],
                    e,
                ));
            }
            if self.spool.segment_bytes.0 < 4096 || self.spool.max_bytes < self.spool.segment_bytes
            {
                return Err((
                    vec![Key("spool"), Key("max_bytes")],
                    "must be at least `segment_bytes`, which must be at least 4KiB".into(),
                ));
            }
        }
        let limits = &self.limits;
        if !(limits.app_share > 0.0 && limits.app_share <= 1.0) {
            return Err((
                vec![Key("limits"), Key("app_share")],
                format!("must be above 0 and at most 1, not {}", limits.app_share),
            ));
        }
        if limits.max_app_labels == 0 {
            return Err((
                vec![Key("limits"), Key("max_app_labels")],
                "must be at least 1".into(),
            ));
        }
        for (app, o) in &limits.apps {
            if o.bytes_per_second
                .is_some_and(|b| b.0 > u64::from(u32::MAX))
                || o.bytes_burst.is_some_and(|b| b.0 > u64::from(u32::MAX))
            {
                return Err((
                    vec![Key("limits"), Key("apps"), PathSeg::Name(app.clone())],
                    "byte rates and bursts must be below 4GiB".into(),
                ));
            }
        }
        for (key, b) in [
            ("bytes_per_second", limits.bytes_per_second),
            ("bytes_burst", limits.bytes_burst),
        ] {
            if b.0 > u64::from(u32::MAX) {
                return Err((vec![Key("limits"), Key(key)], "must be below 4GiB".into()));
            }
        }
        if self.listeners.is_empty() {
            return Err((
                vec![Key("listener")],
                "at least one listener is needed".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut binds = std::collections::HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let at = |key: &'static str| vec![Key("listener"), Index(i), Key(key)];
            if !names.insert(l.display_name()) {
                return Err((
                    at("name"),
                    format!("another listener is already named `{}`", l.display_name()),
                ));
            }
            let udp = l.transport == Transport::Udp;
            if !binds.insert((udp, l.address)) && l.address.port() != 0 {
                return Err((
                    at("address"),
                    format!(
                        "another {} listener already uses {}",
                        if udp { "UDP" } else { "TCP" },
                        l.address
                    ),
                ));
            }
            if l.max_connections == 0 {
                return Err((at("max_connections"), "must be at least 1".into()));
            }
            if l.max_message_bytes.0 < 64 || l.max_message_bytes.0 > 64 << 20 {
                return Err((
                    at("max_message_bytes"),
                    "must be between 64B and 64MiB".into(),
                ));
            }
            match (&l.tls, l.transport) {
                (None, Transport::Tls) => {
                    return Err((
                        at("transport"),
                        "transport \"tls\" needs a [listener.tls] table with `cert` and `key`"
                            .into(),
                    ))
                }
                (Some(_), Transport::Tcp | Transport::Udp) => {
                    return Err((
                        at("tls"),
                        format!(
                            "a [listener.tls] table needs transport = \"tls\", not \"{}\"",
                            l.transport.as_str()
                        ),
                    ))
                }
                (Some(tls), Transport::Tls) => {
                    let tls_at =
                        |key: &'static str| vec![Key("listener"), Index(i), Key("tls"), Key(key)];
                    if tls.client_auth != ClientAuth::None && tls.client_ca.is_none() {
                        return Err((
                            tls_at("client_auth"),
                            "verifying client certificates needs `client_ca`".into(),
                        ));
                    }
                    if tls.handshake_timeout < Duration::from_millis(100)
                        || tls.handshake_timeout > Duration::from_secs(300)
                    {
                        return Err((
                            tls_at("handshake_timeout"),
                            "must be between 100ms and 5m".into(),
                        ));
                    }
                }
                (None, _) => {}
            }
            check_proxy(i, l)?;
            if !l.max_connection_age.is_zero() {
                if l.transport == Transport::Udp {
                    return Err((
                        at("max_connection_age"),
                        "udp has no connections to close: it is for tcp and tls listeners".into(),
                    ));
                }
                if l.max_connection_age < Duration::from_secs(1) {
                    return Err((at("max_connection_age"), "must be at least 1s (or 0s: never), or shippers would spend their time reconnecting".into()));
                }
            }
            if !l.frame_timeout.is_zero()
                && l.transport == Transport::Udp
                && l.frame_timeout != default_frame_timeout()
            {
                return Err((
                    at("frame_timeout"),
                    "udp has no streams: a datagram is whole or dropped (it is for tcp and tls listeners)".into(),
                ));
            }
            if !l.frame_timeout.is_zero() && l.frame_timeout < Duration::from_secs(1) {
                return Err((at("frame_timeout"), "must be at least 1s (or 0s: no deadline), or a large frame on a slow link could never arrive whole".into()));
            }
            if jiff::tz::TimeZone::get(&l.timezone).is_err() {
                return Err((at("timezone"), format!("unknown time zone `{}` (use an IANA name such as \"Europe/Paris\", or \"UTC\")", l.timezone)));
            }
            if l.app_default.is_empty() {
                return Err((at("app_default"), "must not be empty".into()));
            }
            if let Some(fields) = &l.app_fields {
                if let Err(e) = crate::source::check_app_fields(l.protocol, fields) {
                    return Err((at("app_fields"), e));
                }
            }
            // What only one protocol knows: its transports, its own table. The keys it names
            // are under this listener.
            if let Err((keys, e)) = crate::source::check_listener(l) {
                let mut path = vec![Key("listener"), Index(i)];
                path.extend(keys.into_iter().map(Key));
                return Err((path, e));
            }
        }
        Ok(())
    }

    /// The configuration as TOML, defaults filled in (`logport check-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration always serializes")
    }
}

/// The PROXY protocol keys of listener `i`.
fn check_proxy(i: usize, l: &ListenerConfig) -> Result<(), (Vec<PathSeg>, String)> {
    use PathSeg::{Index, Key};
    let at = |key: &'static str| vec![Key("listener"), Index(i), Key(key)];
    let on = l.proxy_protocol != ProxyProtocol::Off;
    if on && l.transport == Transport::Udp {
        return Err((
            at("proxy_protocol"),
            "the PROXY protocol needs a connection: it is for tcp and tls listeners, not udp"
                .into(),
        ));
    }
    if !on && !l.trusted_proxies.is_empty() {
        return Err((
            at("trusted_proxies"),
            "has no effect unless `proxy_protocol` is \"optional\" or \"required\"".into(),
        ));
    }
    if on && l.trusted_proxies.is_empty() {
        return Err((at("proxy_protocol"), "needs `trusted_proxies`, the balancers allowed to send a PROXY header (CIDRs such as \"10.0.0.0/8\"; [\"0.0.0.0/0\", \"::/0\"] trusts every source)".into()));
    }
    for (n, cidr) in l.trusted_proxies.iter().enumerate() {
        if let Err(e) = crate::transport::proxy::Cidr::parse(cidr) {
            let mut path = at("trusted_proxies");
            path.push(Index(n));
            return Err((path, e));
        }
    }
    if l.proxy_header_timeout < Duration::from_millis(100)
        || l.proxy_header_timeout > Duration::from_secs(300)
    {
        return Err((
            at("proxy_header_timeout"),
            "must be between 100ms and 5m".into(),
        ));
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum PathSeg {
    Key(&'static str),
    /// A key the user chose (a librdkafka property name).
    Name(String),
    Index(usize),
}

fn render_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) if out.is_empty() => out.push_str(k),
            PathSeg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            PathSeg::Name(k) => out.push_str(&format!(".\"{k}\"")),
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The line of the deepest key of `path` present in the document (a missing key points at its
/// table), so that an error about a value names where the user wrote it.
/// The dotted path of the innermost key whose value spans `offset` (`limits.events_per_second`,
/// `listener[1].tls.cert`).
fn key_at_offset(text: &str, offset: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    // A table's own span may cover only its header, so every table is searched, not just the
    // one around the offset.
    fn find(
        value: &DeValue,
        span: std::ops::Range<usize>,
        offset: usize,
        path: String,
    ) -> Option<String> {
        match value {
            DeValue::Table(t) => t.iter().find_map(|(k, v)| {
                let p = if path.is_empty() {
                    k.get_ref().to_string()
                } else {
                    format!("{path}.{}", k.get_ref())
                };
                find(v.get_ref(), v.span(), offset, p)
            }),
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                find(item.get_ref(), item.span(), offset, format!("{path}[{i}]"))
            }),
            _ => span.contains(&offset).then_some(path),
        }
    }
    let doc = DeTable::parse(text).ok()?;
    doc.get_ref()
        .iter()
        .find_map(|(k, v)| find(v.get_ref(), v.span(), offset, k.get_ref().to_string()))
}

fn line_of_key(text: &str, path: &[PathSeg]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table: Option<&DeTable> = Some(doc.get_ref());
    let mut value: Option<&DeValue> = None;
    for seg in path {
        let key = match seg {
            PathSeg::Key(k) => Some(*k),
            PathSeg::Name(k) => Some(k.as_str()),
            PathSeg::Index(_) => None,
        };
        match (*seg).clone() {
            PathSeg::Key(_) | PathSeg::Name(_) => {
                let key = key.expect("a key segment");
                let t = table.or(match value {
                    Some(DeValue::Table(t)) => Some(t),
                    _ => None,
                })?;
                let Some((k, v)) = t.get_key_value(key) else {
                    break;
                };
                span = Some(k.span());
                value = Some(v.get_ref());
                table = None;
            }
            PathSeg::Index(i) => {
                let Some(DeValue::Array(items)) = value else {
                    break;
                };
                let Some(item) = items.get(i) else { break };
                span = Some(item.span());
                value = Some(item.get_ref());
            }
        }
    }
    span.map(|s| line_of_offset(text, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_the_effective_config() {
        let c = Config::from_toml(
            "[sink]\ntype = \"kafka\"\n[kafka]\nbrokers = \"b:9092\"\n[kafka.properties]\n\"sasl.password\" = \"hunter2\"\n\"linger.ms\" = 7\n\
             [[listener]]\nprotocol = \"forward\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n\
             [listener.forward]\nshared_key = \"s3cret\"\nusers = [{ username = \"u\", password = \"pw-9\" }]\n",
        )
        .unwrap();
        let text = c.to_toml();
        for secret in ["hunter2", "s3cret", "pw-9"] {
            assert!(!text.contains(secret), "{secret} printed:\n{text}");
        }
        assert!(
            text.contains("\"linger.ms\" = \"7\"") && text.matches("<redacted>").count() == 3,
            "{text}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key_and_line() {
        let e = Config::from_toml(
            "[admin]\naddress = \"127.0.0.1:9600\"\n[limits]\nevents_per_second = \"lots\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("`limits.events_per_second`"), "{e}");
        let e = Config::from_toml("[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\nmax_connections = \"many\"\n").unwrap_err();
        assert!(e.message.contains("`listener[0].max_connections`"), "{e}");
    }

    #[test]
    fn an_empty_file_means_the_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        let names: Vec<String> = c
            .listeners
            .iter()
            .map(ListenerConfig::display_name)
            .collect();
        assert_eq!(
            names,
            [
                "syslog-tcp-5514",
                "syslog-udp-5514",
                "beats-tcp-5044",
                "gelf-udp-12201",
                "gelf-tcp-12201",
                "forward-tcp-24224"
            ]
        );
    }

    #[test]
    fn the_effective_config_reads_back_to_itself() {
        let text = r#"
data_dir = "/var/lib/logport"
in_flight_bytes = "64MiB"
shutdown_timeout = "10s"
[admin]
address = "0.0.0.0:9600"
[store]
segment_bytes = 1048576
[[listener]]
protocol = "syslog"
transport = "tls"
address = "127.0.0.1:6514"
ecs_compatibility = "disabled"
timezone = "Europe/Paris"
app_fields = ["host.hostname"]
[listener.tls]
cert = "certs/server.crt"
key = "certs/server.key"
client_ca = "certs/ca.crt"
client_auth = "optional"
"#;
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.in_flight_bytes, ByteSize(64 << 20));
        assert_eq!(c.store.segment_bytes, ByteSize(1 << 20));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(
            c.listeners[0].tls.as_ref().unwrap().client_auth,
            ClientAuth::Optional
        );
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key_and_line() {
        let text = "data_dir = \"x\"\n\n[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\nmax_conections = 5\n";
        let e = Config::from_toml(text).unwrap_err();
        assert_eq!(e.line, Some(7), "{e}");
        assert!(e.to_string().contains("max_conections"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key_and_line() {
        let cases = [
            ("[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"localhost\"\n", 4, "IP:PORT"),
            ("[[listener]]\nprotocol = \"snmp\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n", 2, "snmp"),
            ("in_flight_bytes = \"12 parsecs\"\n", 1, "parsecs"),
            ("shutdown_timeout = \"soon\"\n", 1, "soon"),
            ("[[listener]]\nprotocol = \"syslog\"\ntransport = \"tls\"\naddress = \"127.0.0.1:1\"\n", 3, "listener[0].transport"),
            ("[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n\n[[listener]]\nprotocol = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:1\"\ntimezone = \"Mars/Olympus\"\n", 10, "Mars/Olympus"),
            ("[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\napp_fields = [\"no.such.field\"]\n", 5, "no.such.field"),
            ("[store]\nsegment_bytes = \"1GiB\"\nretention_bytes = \"1MiB\"\n", 3, "store.retention_bytes"),
            ("[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n", 5, "already named"),
            ("[[listener]]\nname = \"a\"\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n[[listener]]\nname = \"b\"\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n", 10, "already uses"),
        ];
        for (text, line, needle) in cases {
            let e = Config::from_toml(text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?} gave {e}");
            assert!(e.to_string().contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn fleet_keys_are_checked() {
        let tcp =
            "[[listener]]\nprotocol = \"beats\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
        let c = Config::from_toml(&format!(
            "drain_grace = \"2s\"\n{tcp}max_connection_age = \"10m\"\n"
        ))
        .unwrap();
        assert_eq!(c.drain_grace, Duration::from_secs(2));
        assert_eq!(c.listeners[0].max_connection_age, Duration::from_secs(600));
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        assert!(Config::from_toml(tcp).unwrap().listeners[0]
            .max_connection_age
            .is_zero());
        let cases = [
            ("shutdown_timeout = \"10s\"\ndrain_grace = \"10s\"\n".to_owned(), 2, "`drain_grace`: must be shorter than `shutdown_timeout` (10s)"),
            (format!("{tcp}max_connection_age = \"500ms\"\n"), 5, "`listener[0].max_connection_age`: must be at least 1s"),
            ("[[listener]]\nprotocol = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:1\"\nmax_connection_age = \"1m\"\n".to_owned(), 5, "udp has no connections"),
        ];
        for (text, line, needle) in cases {
            let e = Config::from_toml(&text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?} gave {e}");
            assert!(e.to_string().contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn slow_client_deadlines_are_checked() {
        let tcp =
            "[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
        let tls = "[[listener]]\nprotocol = \"syslog\"\ntransport = \"tls\"\naddress = \"127.0.0.1:1\"\n[listener.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        assert_eq!(
            Config::from_toml(tcp).unwrap().listeners[0].frame_timeout,
            Duration::from_secs(60)
        );
        let c = Config::from_toml(&format!("{tcp}frame_timeout = \"5s\"\n")).unwrap();
        assert_eq!(c.listeners[0].frame_timeout, Duration::from_secs(5));
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        let c = Config::from_toml(tls).unwrap();
        let handshake = |c: &Config| c.listeners[0].tls.as_ref().unwrap().handshake_timeout;
        assert_eq!(handshake(&c), Duration::from_secs(10));
        let c = Config::from_toml(&format!("{tls}handshake_timeout = \"3s\"\n")).unwrap();
        assert_eq!(handshake(&c), Duration::from_secs(3));
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        let cases = [
            (format!("{tcp}frame_timeout = \"200ms\"\n"), 5, "`listener[0].frame_timeout`: must be at least 1s"),
            ("[[listener]]\nprotocol = \"gelf\"\ntransport = \"udp\"\naddress = \"127.0.0.1:1\"\nframe_timeout = \"5s\"\n".to_owned(), 5, "udp has no streams"),
            (format!("{tls}handshake_timeout = \"10m\"\n"), 8, "`listener[0].tls.handshake_timeout`: must be between 100ms and 5m"),
        ];
        for (text, line, needle) in cases {
            let e = Config::from_toml(&text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?} gave {e}");
            assert!(e.to_string().contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn proxy_protocol_keys_are_checked() {
        let tcp =
            "[[listener]]\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
        let ok = Config::from_toml(&format!("{tcp}proxy_protocol = \"required\"\ntrusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\", \"192.0.2.1\"]\nproxy_header_timeout = \"2s\"\n")).unwrap();
        let l = &ok.listeners[0];
        assert_eq!(l.proxy_protocol, ProxyProtocol::Required);
        assert_eq!(l.proxy_header_timeout, Duration::from_secs(2));
        assert_eq!(Config::from_toml(&ok.to_toml()).unwrap(), ok);
        assert_eq!(
            Config::from_toml(tcp).unwrap().listeners[0].proxy_protocol,
            ProxyProtocol::Off
        );

        let udp = tcp.replace("\"tcp\"", "\"udp\"");
        let cases = [
            (format!("{udp}proxy_protocol = \"optional\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n"), 5, "listener[0].proxy_protocol`: the PROXY protocol needs a connection"),
            (format!("{tcp}proxy_protocol = \"required\"\n"), 5, "listener[0].proxy_protocol`: needs `trusted_proxies`"),
            (format!("{tcp}trusted_proxies = [\"10.0.0.0/8\"]\n"), 5, "listener[0].trusted_proxies`: has no effect"),
            (format!("{tcp}proxy_protocol = \"optional\"\ntrusted_proxies = [\n  \"10.0.0.0/8\",\n  \"10.0.0.0/33\",\n]\n"), 8, "listener[0].trusted_proxies[1]`: `10.0.0.0/33` is not a CIDR"),
            (format!("{tcp}proxy_protocol = \"optional\"\ntrusted_proxies = [\"10.1.2.3/8\"]\n"), 6, "write \"10.0.0.0/8\""),
            (format!("{tcp}proxy_protocol = \"optional\"\ntrusted_proxies = [\"::/0\"]\nproxy_header_timeout = \"1ms\"\n"), 7, "listener[0].proxy_header_timeout`"),
            (format!("{tcp}proxy_protocol = \"sometimes\"\n"), 5, "sometimes"),
        ];
        for (text, line, needle) in cases {
            let e = Config::from_toml(&text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text:?} gave {e}");
            assert!(e.to_string().contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(ByteSize::parse("64KiB").unwrap(), ByteSize(65536));
        assert_eq!(ByteSize::parse("256 MiB").unwrap(), ByteSize(256 << 20));
        assert_eq!(ByteSize::parse("1GB").unwrap(), ByteSize(1_000_000_000));
        assert_eq!(ByteSize::parse("12").unwrap(), ByteSize(12));
        assert!(ByteSize::parse("12 furlongs").is_err());
        assert!(ByteSize::parse("99999999999TiB").is_err());
        assert_eq!(ByteSize(256 << 20).to_string(), "256MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
    }
}
