//! PROXY protocol v1 and v2 (HAProxy's `send-proxy`/`send-proxy-v2`, nginx's `proxy_protocol`):
//! the header a load balancer puts before the protocol to say whom it speaks for.
//!
//! The header is read on the raw TCP socket, before any TLS handshake, and exactly: bytes are
//! peeked first and only the header's own are consumed, so a ClientHello or syslog frames that
//! follow in the same segment reach the next layer untouched, and a connection without a header
//! (optional mode) is handed on without a byte taken. The wire formats are parsed by `ppp`; this
//! module only finds where a header ends.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use crate::config::{ListenerConfig, ProxyProtocol};

/// v1: "PROXY " opens every header.
const V1_PREFIX: &[u8] = b"PROXY ";
/// v1: the longest header, CRLF included (the spec's 107 bytes).
const V1_MAX: usize = 107;
/// v2: the signature, version/command, family/protocol and the 16-bit length.
const V2_FIXED: usize = 16;
/// v2: the length field could announce 64 KiB; real balancers send a few hundred bytes even with
/// TLS TLVs, and a connection that has not sent its header yet must not cost more than this.
const V2_MAX: usize = 4096;
/// Optional mode, first bytes a strict prefix of a signature: nothing may be consumed yet (they
/// may be the protocol itself) and peeking again returns at once, so wait a little between looks.
const UNDECIDED_POLL: Duration = Duration::from_millis(5);

/// A stream whose pending bytes can be looked at without consuming them (a TCP socket's
/// MSG_PEEK). Waits for data when none is pending; 0 means end of stream.
pub trait Peek: AsyncRead + Unpin + Send {
    fn peek(&mut self, buf: &mut [u8]) -> impl Future<Output = std::io::Result<usize>> + Send;
}

impl Peek for TcpStream {
    fn peek(&mut self, buf: &mut [u8]) -> impl Future<Output = std::io::Result<usize>> + Send {
        TcpStream::peek(self, buf)
    }
}

/// Why a connection was closed before its protocol started; the label of
/// `logport_proxy_header_errors_total`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A header from a source outside `trusted_proxies`.
    Untrusted,
    /// Required mode, and the connection starts with something else.
    Missing,
    /// Required mode, and the connection closed without a byte: a balancer's connect-only
    /// health check (AWS NLB, keepalived), not worth a warning every few seconds.
    Empty,
    /// The header is not valid (ppp's reason).
    Malformed(String),
    /// The connection ended inside the header.
    Truncated,
    TooLong,
    Timeout,
    Read(String),
}

impl Failure {
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Untrusted => "untrusted_source",
            Failure::Missing => "missing",
            Failure::Empty => "empty",
            Failure::Malformed(_) => "malformed",
            Failure::Truncated => "truncated",
            Failure::TooLong => "too_long",
            Failure::Timeout => "timeout",
            Failure::Read(_) => "read_error",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Untrusted => f.write_str("PROXY header from a source outside trusted_proxies"),
            Failure::Missing => f.write_str("no PROXY header (proxy_protocol = \"required\")"),
            Failure::Empty => f.write_str("closed before sending anything"),
            Failure::Malformed(e) => write!(f, "malformed PROXY header: {e}"),
            Failure::Truncated => f.write_str("connection closed inside the PROXY header"),
            Failure::TooLong => write!(
                f,
                "PROXY header too long (v1 at most {V1_MAX} bytes, v2 at most {V2_MAX})"
            ),
            Failure::Timeout => f.write_str("PROXY header not complete in time"),
            Failure::Read(e) => write!(f, "read failed in the PROXY header: {e}"),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Failure::Truncated
        } else {
            Failure::Read(e.to_string())
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    V1,
    V2,
    /// A strict prefix of a signature: more bytes decide.
    Undecided,
    NotHeader,
}

fn classify(seen: &[u8]) -> Kind {
    // The two signatures differ in their first byte, so at most one can match.
    for (signature, kind) in [(V1_PREFIX, Kind::V1), (ppp::v2::PROTOCOL_PREFIX, Kind::V2)] {
        let n = seen.len().min(signature.len());
        if seen[..n] == signature[..n] {
            return if n == signature.len() {
                kind
            } else {
                Kind::Undecided
            };
        }
    }
    Kind::NotHeader
}

/// Reads a PROXY header off the front of `stream`, consuming exactly its bytes. `Ok(None)`: the
/// stream does not start with one (optional mode only), and nothing was consumed.
pub async fn read_header<S: Peek>(
    stream: &mut S,
    required: bool,
) -> Result<Option<Vec<u8>>, Failure> {
    let mut header = Vec::new();
    let mut window = [0u8; V1_MAX + 1];
    loop {
        let n = stream.peek(&mut window).await?;
        let fresh = &window[..n];
        if n == 0 {
            return match (header.is_empty(), required) {
                (true, false) => Ok(None),
                (true, true) => Err(Failure::Empty),
                (false, _) => Err(Failure::Truncated),
            };
        }
        let seen = [&header[..], fresh].concat();
        match classify(&seen) {
            Kind::NotHeader if header.is_empty() && !required => return Ok(None),
            Kind::NotHeader => return Err(Failure::Missing),
            Kind::Undecided if required => consume(stream, &mut header, n).await?,
            Kind::Undecided => tokio::time::sleep(UNDECIDED_POLL).await,
            Kind::V1 => {
                // What was consumed so far holds no LF (it would have ended the header).
                let limit = V1_MAX - header.len();
                if let Some(end) = fresh[..n.min(limit)].iter().position(|&b| b == b'\n') {
                    consume(stream, &mut header, end + 1).await?;
                    return Ok(Some(header));
                }
                if n >= limit {
                    return Err(Failure::TooLong);
                }
                consume(stream, &mut header, n).await?;
            }
            Kind::V2 if seen.len() < V2_FIXED => consume(stream, &mut header, n).await?,
            Kind::V2 => {
                let total = V2_FIXED + usize::from(u16::from_be_bytes([seen[14], seen[15]]));
                if total > V2_MAX {
                    return Err(Failure::TooLong);
                }
                let rest = total - header.len();
                consume(stream, &mut header, rest).await?;
                return Ok(Some(header));
            }
        }
    }
}

/// Reads `n` more header bytes (already peeked, or announced by a v2 length: then `read_exact`
/// waits for them) onto `header`.
async fn consume<S: Peek>(stream: &mut S, header: &mut Vec<u8>, n: usize) -> Result<(), Failure> {
    let at = header.len();
    header.resize(at + n, 0);
    stream.read_exact(&mut header[at..]).await?;
    Ok(())
}

/// What a header said besides the client's address; kept on the connection for sources and logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyInfo {
    pub version: u8,
    /// The balancer itself: the socket's peer address.
    pub proxy: Option<SocketAddr>,
    /// v2 LOCAL or v1 UNKNOWN (the balancer's own health check): there is no client, and the
    /// connection's peer stays the balancer.
    pub local: bool,
    /// Where the client connected to, on the balancer.
    pub destination: Option<SocketAddr>,
    /// PP2_TYPE_AUTHORITY: the host name the client asked for (TLS SNI at the balancer).
    pub authority: Option<Box<str>>,
    /// PP2_TYPE_ALPN.
    pub alpn: Option<Box<str>>,
    /// PP2_TYPE_UNIQUE_ID: the balancer's id for this connection (HAProxy's `unique-id-format`).
    pub unique_id: Option<Box<[u8]>>,
    /// PP2_TYPE_SSL: the client's TLS, when the balancer terminated it.
    pub tls: Option<ProxyTls>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyTls {
    /// The client presented a certificate (on this connection or its session).
    pub client_cert: bool,
    /// The balancer verified that certificate (PP2 `verify` is 0).
    pub verified: bool,
    pub version: Option<Box<str>>,
    /// The client certificate's subject CN.
    pub common_name: Option<Box<str>>,
    pub cipher: Option<Box<str>>,
}

// PP2 TLV types and SSL client flags (proxy-protocol.txt, section 2.2).
const PP2_TYPE_ALPN: u8 = 0x01;
const PP2_TYPE_AUTHORITY: u8 = 0x02;
const PP2_TYPE_UNIQUE_ID: u8 = 0x05;
const PP2_TYPE_SSL: u8 = 0x20;
const PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
const PP2_SUBTYPE_SSL_CN: u8 = 0x22;
const PP2_SUBTYPE_SSL_CIPHER: u8 = 0x23;
const PP2_CLIENT_CERT_CONN: u8 = 0x02;
const PP2_CLIENT_CERT_SESS: u8 = 0x04;

fn text(value: &[u8]) -> Option<Box<str>> {
    Some(String::from_utf8_lossy(value).into())
}

/// Parses a whole header (as `read_header` returned it): the client's address (`None` when the
/// header names no client: LOCAL, UNKNOWN, unix or unspecified addresses) and the rest.
pub fn parse(header: &[u8]) -> Result<(Option<SocketAddr>, ProxyInfo), Failure> {
    let malformed = |e: &dyn std::fmt::Display| Failure::Malformed(e.to_string());
    if header.starts_with(V1_PREFIX) {
        let parsed = ppp::v1::Header::try_from(header).map_err(|e| malformed(&e))?;
        let mut info = ProxyInfo {
            version: 1,
            ..ProxyInfo::default()
        };
        let client = match parsed.addresses {
            ppp::v1::Addresses::Tcp4(a) => {
                info.destination = Some((a.destination_address, a.destination_port).into());
                Some((a.source_address, a.source_port).into())
            }
            ppp::v1::Addresses::Tcp6(a) => {
                info.destination = Some((a.destination_address, a.destination_port).into());
                Some((a.source_address, a.source_port).into())
            }
            ppp::v1::Addresses::Unknown => None,
        };
        info.local = client.is_none();
        return Ok((client, info));
    }
    let parsed = ppp::v2::Header::try_from(header).map_err(|e| malformed(&e))?;
    let mut info = ProxyInfo {
        version: 2,
        ..ProxyInfo::default()
    };
    let client = match (parsed.command, parsed.addresses) {
        (ppp::v2::Command::Local, _) => None,
        (_, ppp::v2::Addresses::IPv4(a)) => {
            info.destination = Some((a.destination_address, a.destination_port).into());
            Some((a.source_address, a.source_port).into())
        }
        (_, ppp::v2::Addresses::IPv6(a)) => {
            info.destination = Some((a.destination_address, a.destination_port).into());
            Some((a.source_address, a.source_port).into())
        }
        // The spec: for unspecified (or, here, unix) addresses use the connection's own.
        (_, ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_)) => None,
    };
    info.local = parsed.command == ppp::v2::Command::Local;
    for tlv in parsed.tlvs() {
        let tlv = tlv.map_err(|e| malformed(&e))?;
        match tlv.kind {
            PP2_TYPE_ALPN => info.alpn = text(&tlv.value),
            PP2_TYPE_AUTHORITY => info.authority = text(&tlv.value),
            PP2_TYPE_UNIQUE_ID => info.unique_id = Some(tlv.value.as_ref().into()),
            PP2_TYPE_SSL => info.tls = Some(parse_ssl(&tlv.value)?),
            _ => {}
        }
    }
    Ok((client, info))
}

/// PP2_TYPE_SSL: `client` flags (1 byte), `verify` (4 bytes, 0 = verified), then sub-TLVs.
fn parse_ssl(value: &[u8]) -> Result<ProxyTls, Failure> {
    if value.len() < 5 {
        return Err(Failure::Malformed(
            "PP2_TYPE_SSL shorter than 5 bytes".into(),
        ));
    }
    let client = value[0];
    let verify = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    let client_cert = client & (PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS) != 0;
    let mut tls = ProxyTls {
        client_cert,
        verified: client_cert && verify == 0,
        ..ProxyTls::default()
    };
    for sub in ppp::v2::TypeLengthValues::from(&value[5..]) {
        let sub = sub.map_err(|e| Failure::Malformed(format!("in PP2_TYPE_SSL: {e}")))?;
        match sub.kind {
            PP2_SUBTYPE_SSL_VERSION => tls.version = text(&sub.value),
            PP2_SUBTYPE_SSL_CN => tls.common_name = text(&sub.value),
            PP2_SUBTYPE_SSL_CIPHER => tls.cipher = text(&sub.value),
            _ => {}
        }
    }
    Ok(tls)
}

/// An address range of `trusted_proxies`: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || {
            format!(
                "`{text}` is not a CIDR such as \"10.0.0.0/8\" or \"fd00::/8\", nor an IP address"
            )
        };
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?,
        };
        let cidr = Cidr { network, prefix };
        // "10.1.2.3/8" is almost always a typo for a host or for "10.0.0.0/8": say which.
        if cidr.masked() != network {
            return Err(format!(
                "`{text}` has host bits set: write \"{}/{prefix}\" for the network",
                cidr.masked()
            ));
        }
        Ok(cidr)
    }

    fn masked(&self) -> IpAddr {
        match self.network {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; IPv4 ranges must match them.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let host = Cidr {
            network: ip,
            prefix: self.prefix,
        };
        ip.is_ipv4() == self.network.is_ipv4() && host.masked() == self.masked()
    }
}

/// A listener's PROXY protocol settings and counters.
pub struct Policy {
    required: bool,
    trusted: Vec<Cidr>,
    timeout: Duration,
    listener: Arc<str>,
    v1: metrics::Counter,
    v2: metrics::Counter,
}

impl Policy {
    /// `None` when the listener takes no PROXY header. The config has been validated.
    pub fn for_listener(config: &ListenerConfig, listener: &Arc<str>) -> Option<Arc<Policy>> {
        let required = match config.proxy_protocol {
            ProxyProtocol::Off => return None,
            ProxyProtocol::Optional => false,
            ProxyProtocol::Required => true,
        };
        let trusted = config
            .trusted_proxies
            .iter()
            .map(|c| Cidr::parse(c).expect("validated with the config"))
            .collect();
        let counter = |version: &'static str| metrics::counter!("logport_proxy_headers_total", "listener" => listener.to_string(), "version" => version);
        Some(Arc::new(Policy {
            required,
            trusted,
            timeout: config.proxy_header_timeout,
            listener: listener.clone(),
            v1: counter("1"),
            v2: counter("2"),
        }))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    /// Reads the connection's PROXY header, if any: the peer address to use from now on and what
    /// else the header said. `None`: the connection is to be closed (logged and counted here).
    pub async fn accept<S: Peek>(
        &self,
        stream: &mut S,
        socket_peer: SocketAddr,
    ) -> Option<(SocketAddr, Option<ProxyInfo>)> {
        match self.read(stream, socket_peer).await {
            Ok(found) => Some(found),
            Err(Failure::Empty) => {
                tracing::debug!(listener = %self.listener, peer = %socket_peer, "connection closed before sending a PROXY header (a health check?)");
                None
            }
            Err(failure) => {
                metrics::counter!("logport_proxy_header_errors_total", "listener" => self.listener.to_string(), "reason" => failure.label()).increment(1);
                tracing::warn!(listener = %self.listener, peer = %socket_peer, reason = failure.label(), "{failure}; connection closed");
                None
            }
        }
    }

    async fn read<S: Peek>(
        &self,
        stream: &mut S,
        socket_peer: SocketAddr,
    ) -> Result<(SocketAddr, Option<ProxyInfo>), Failure> {
        let trusted = self.trusts(socket_peer.ip());
        // Required: nothing from this source can be accepted, so do not wait for its bytes.
        if self.required && !trusted {
            return Err(Failure::Untrusted);
        }
        if !self.required {
            // A direct client may connect and stay quiet until it has something to log, while a
            // balancer sends its header at once: the clock starts with the first byte.
            stream.peek(&mut [0u8; 1]).await?;
        }
        let header = tokio::time::timeout(self.timeout, read_header(stream, self.required))
            .await
            .map_err(|_| Failure::Timeout)??;
        let Some(header) = header else {
            return Ok((socket_peer, None));
        };
        // Optional: an untrusted client may connect directly, but not claim another address.
        if !trusted {
            return Err(Failure::Untrusted);
        }
        let (client, mut info) = parse(&header)?;
        info.proxy = Some(socket_peer);
        match info.version {
            1 => self.v1.increment(1),
            _ => self.v2.increment(1),
        }
        let peer = client.unwrap_or(socket_peer);
        tracing::debug!(listener = %self.listener, %peer, proxy = %socket_peer, version = info.version, local = info.local,
            destination = ?info.destination, authority = ?info.authority, alpn = ?info.alpn,
            unique_id = ?info.unique_id.as_deref().map(String::from_utf8_lossy),
            tls_version = ?info.tls.as_ref().and_then(|t| t.version.as_deref()),
            tls_client_cn = ?info.tls.as_ref().and_then(|t| t.common_name.as_deref()),
            tls_client_verified = ?info.tls.as_ref().map(|t| t.verified),
            "PROXY header accepted");
        Ok((peer, Some(info)))
    }
}

#[cfg(test)]
mod tests;
