use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use ppp::v2::{Builder, Command, Protocol, Type, Version};
use tokio::io::ReadBuf;

use super::*;

/// A socket as the reader sees it: bytes arrive one chunk at a time (one chunk more at each peek
/// or at each read that finds nothing pending), so a header can be split anywhere.
struct Wire {
    chunks: VecDeque<Vec<u8>>,
    pending: Vec<u8>,
    /// After the last chunk: wait forever (a silent peer) instead of end of stream.
    hang: bool,
}

impl Wire {
    fn new<C: AsRef<[u8]>>(chunks: impl IntoIterator<Item = C>) -> Wire {
        Wire {
            chunks: chunks.into_iter().map(|c| c.as_ref().to_vec()).collect(),
            pending: Vec::new(),
            hang: false,
        }
    }

    fn bytewise(bytes: &[u8]) -> Wire {
        Wire::new(bytes.chunks(1))
    }

    fn hanging(mut self) -> Wire {
        self.hang = true;
        self
    }

    fn arrive(&mut self) -> bool {
        match self.chunks.pop_front() {
            Some(chunk) => {
                self.pending.extend(chunk);
                true
            }
            None => false,
        }
    }

    /// Everything not consumed.
    fn rest(mut self) -> Vec<u8> {
        while self.arrive() {}
        self.pending
    }
}

impl Peek for Wire {
    async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.arrive();
        if self.pending.is_empty() && self.hang {
            std::future::pending::<()>().await;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        Ok(n)
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pending.is_empty() && !self.arrive() {
            // A hanging wire is only ever waited on under a timeout, whose timer wakes the task.
            return if self.hang {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            };
        }
        let n = buf.remaining().min(self.pending.len());
        buf.put_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Poll::Ready(Ok(()))
    }
}

const V1_TCP4: &[u8] = b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 5514\r\n";
const V1_TCP6: &[u8] = b"PROXY TCP6 2001:db8::10 2001:db8::1 56324 6514\r\n";
const SYSLOG: &[u8] = b"<13>1 - host app - - - hello\n";
/// The start of a TLS ClientHello: what follows a header on a TLS listener.
const CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x00, 0xf4, 0x01, 0x00, 0x00, 0xf0, 0x03, 0x03,
];

fn sa(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn v2(command: Command, source: &str, destination: &str, tlvs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut b = Builder::with_addresses(
        Version::Two | command,
        Protocol::Stream,
        (sa(source), sa(destination)),
    );
    for (kind, value) in tlvs {
        b = b.write_tlv(*kind, value).unwrap();
    }
    b.build().unwrap()
}

fn v2_local() -> Vec<u8> {
    Builder::with_addresses(
        Version::Two | Command::Local,
        Protocol::Unspecified,
        ppp::v2::Addresses::Unspecified,
    )
    .build()
    .unwrap()
}

/// PP2_TYPE_SSL: client sent a certificate on this connection, verified, with version and CN.
fn ssl_tlv() -> Vec<u8> {
    let mut value = vec![0x01 | PP2_CLIENT_CERT_CONN, 0, 0, 0, 0];
    for (kind, text) in [
        (PP2_SUBTYPE_SSL_VERSION, "TLSv1.3"),
        (PP2_SUBTYPE_SSL_CN, "shipper-17"),
    ] {
        value.push(kind);
        value.extend((text.len() as u16).to_be_bytes());
        value.extend(text.as_bytes());
    }
    value
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Reads a header off `wire`; returns it and what the wire still holds.
async fn read(mut wire: Wire, required: bool) -> (Result<Option<Vec<u8>>, Failure>, Vec<u8>) {
    let got = read_header(&mut wire, required).await;
    (got, wire.rest())
}

#[tokio::test]
async fn v1_tcp4_and_tcp6_give_the_client_and_leave_what_follows() {
    for (header, client, destination) in [
        (V1_TCP4, "192.0.2.10:56324", "198.51.100.1:5514"),
        (V1_TCP6, "[2001:db8::10]:56324", "[2001:db8::1]:6514"),
    ] {
        let (got, rest) = read(Wire::new([join(&[header, SYSLOG])]), true).await;
        assert_eq!(got.unwrap().unwrap(), header);
        assert_eq!(rest, SYSLOG);
        let (peer, info) = parse(header).unwrap();
        assert_eq!(peer, Some(sa(client)));
        assert_eq!(info.version, 1);
        assert!(!info.local);
        assert_eq!(info.destination, Some(sa(destination)));
    }
}

#[tokio::test]
async fn v1_unknown_names_no_client() {
    for header in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    ] {
        let (got, rest) = read(Wire::new([join(&[header, SYSLOG])]), true).await;
        assert_eq!(got.unwrap().unwrap(), header);
        assert_eq!(rest, SYSLOG);
        let (peer, info) = parse(header).unwrap();
        assert_eq!(peer, None);
        assert!(info.local);
    }
}

#[tokio::test]
async fn v2_proxy_tcp4_with_tlvs() {
    let ssl = ssl_tlv();
    let header = v2(
        Command::Proxy,
        "203.0.113.7:40000",
        "10.1.2.3:6514",
        &[
            (Type::Authority.into(), b"logs.example.com"),
            (Type::UniqueId.into(), b"conn-42"),
            (Type::ALPN.into(), b"syslog"),
            (Type::NoOp.into(), &[0, 0]),
            (PP2_TYPE_SSL, &ssl),
        ],
    );
    let (got, rest) = read(Wire::new([join(&[&header, CLIENT_HELLO])]), true).await;
    assert_eq!(got.unwrap().unwrap(), header);
    assert_eq!(rest, CLIENT_HELLO);
    let (peer, info) = parse(&header).unwrap();
    assert_eq!(peer, Some(sa("203.0.113.7:40000")));
    assert_eq!(
        info,
        ProxyInfo {
            version: 2,
            proxy: None,
            local: false,
            destination: Some(sa("10.1.2.3:6514")),
            authority: Some("logs.example.com".into()),
            alpn: Some("syslog".into()),
            unique_id: Some(b"conn-42"[..].into()),
            tls: Some(ProxyTls {
                client_cert: true,
                verified: true,
                version: Some("TLSv1.3".into()),
                common_name: Some("shipper-17".into()),
                cipher: None,
            }),
        }
    );
}

#[tokio::test]
async fn v2_proxy_tcp6_and_local() {
    let header = v2(
        Command::Proxy,
        "[2001:db8::7]:1234",
        "[2001:db8::1]:514",
        &[],
    );
    let (got, rest) = read(Wire::new([join(&[&header, SYSLOG])]), true).await;
    assert_eq!(got.unwrap().unwrap(), header);
    assert_eq!(rest, SYSLOG);
    assert_eq!(parse(&header).unwrap().0, Some(sa("[2001:db8::7]:1234")));

    let local = v2_local();
    let (got, rest) = read(Wire::new([join(&[&local, SYSLOG])]), true).await;
    assert_eq!(got.unwrap().unwrap(), local);
    assert_eq!(rest, SYSLOG);
    let (peer, info) = parse(&local).unwrap();
    assert_eq!(peer, None);
    assert!(info.local);
    // LOCAL with addresses (some balancers fill them in): still the balancer speaking for itself.
    let local = v2(Command::Local, "192.0.2.1:1", "192.0.2.2:2", &[]);
    assert_eq!(parse(&local).unwrap().0, None);
}

#[tokio::test]
async fn headers_split_byte_by_byte_in_both_modes() {
    let v2_header = v2(
        Command::Proxy,
        "203.0.113.7:40000",
        "10.1.2.3:6514",
        &[(Type::Authority.into(), b"logs.example.com")],
    );
    for header in [V1_TCP4, V1_TCP6, &v2_header, &v2_local()] {
        for tail in [SYSLOG, CLIENT_HELLO] {
            for required in [true, false] {
                let (got, rest) = read(Wire::bytewise(&join(&[header, tail])), required).await;
                assert_eq!(got.unwrap().unwrap(), header, "required: {required}");
                assert_eq!(rest, tail);
            }
        }
    }
}

#[tokio::test]
async fn optional_mode_passes_other_bytes_through_untouched() {
    for chunks in [
        vec![&b"<1"[..], b"3>1 - - - - - - hi\n"],
        vec![&b"<"[..]],
        vec![&b"42 <13>1 - - - - - - octet counted"[..]],
        vec![CLIENT_HELLO],
        // Strict prefixes of the signatures, then something else.
        vec![&b"PRO"[..], b"TOCOL\n"],
        vec![&b"\r\n"[..], b"\r\n", b"<13>after blank lines\n"],
        vec![],
    ] {
        let all = chunks.concat();
        let (got, rest) = read(Wire::new(chunks), false).await;
        assert_eq!(got, Ok(None), "{all:?}");
        assert_eq!(rest, all, "nothing may be consumed");
    }
}

#[tokio::test]
async fn required_mode_refuses_a_stream_without_header() {
    for bytes in [&b"<13>1 - - - - - - hi\n"[..], CLIENT_HELLO, b"PROTOCOL\n"] {
        let (got, _) = read(Wire::new([bytes]), true).await;
        assert_eq!(got, Err(Failure::Missing), "{bytes:?}");
    }
    let (got, _) = read(Wire::new([b""]), true).await;
    assert_eq!(got, Err(Failure::Empty));
}

#[tokio::test]
async fn garbage_headers_are_malformed() {
    let mut bad_version = v2(Command::Proxy, "192.0.2.1:1", "192.0.2.2:2", &[]);
    bad_version[12] = 0x31;
    let mut bad_family = v2(Command::Proxy, "192.0.2.1:1", "192.0.2.2:2", &[]);
    bad_family[13] = 0x41;
    // A TLV announcing more bytes than the header holds.
    let mut bad_tlv = v2(
        Command::Proxy,
        "192.0.2.1:1",
        "192.0.2.2:2",
        &[(0x02, b"abc")],
    );
    let length_low = bad_tlv.len() - 4;
    bad_tlv[length_low] = 9;
    let short_ssl = v2(
        Command::Proxy,
        "192.0.2.1:1",
        "192.0.2.2:2",
        &[(PP2_TYPE_SSL, &[1, 0])],
    );
    for header in [
        &b"PROXY TCP4 not.an.ip 198.51.100.1 1 2\r\n"[..],
        b"PROXY TCP4 192.0.2.10 198.51.100.1 99999 2\r\n",
        b"PROXY TCP5 192.0.2.10 198.51.100.1 1 2\r\n",
        b"PROXY TCP4 192.0.2.10 198.51.100.1 1 2\n",
        b"PROXY \xff\xfe\r\n",
        &bad_version,
        &bad_family,
        &bad_tlv,
        &short_ssl,
    ] {
        let (got, rest) = read(Wire::new([join(&[header, SYSLOG])]), true).await;
        assert_eq!(got.unwrap().unwrap(), header);
        assert_eq!(rest, SYSLOG);
        assert!(
            matches!(parse(header), Err(Failure::Malformed(_))),
            "{:?} gave {:?}",
            String::from_utf8_lossy(header),
            parse(header)
        );
    }
}

#[tokio::test]
async fn truncated_headers() {
    let v2_header = v2(Command::Proxy, "192.0.2.1:1", "192.0.2.2:2", &[]);
    for bytes in [
        &b"PROXY TCP4 192.0.2.10"[..],
        b"PROXY ",
        &v2_header[..14],
        &v2_header[..20],
    ] {
        for required in [true, false] {
            let (got, _) = read(Wire::new([bytes]), required).await;
            assert_eq!(got, Err(Failure::Truncated), "{bytes:?}");
        }
    }
}

#[tokio::test]
async fn too_long_headers() {
    let longest = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX - 16));
    assert_eq!(longest.len(), V1_MAX);
    let (got, _) = read(Wire::new([longest.as_bytes()]), true).await;
    assert_eq!(got.unwrap().unwrap(), longest.as_bytes());

    let one_more = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX - 15));
    let (got, _) = read(Wire::new([one_more.as_bytes()]), true).await;
    assert_eq!(got, Err(Failure::TooLong));
    // No end in sight, in small pieces: refused once 107 bytes hold no LF, not later.
    let endless = format!("PROXY {}", "1".repeat(300));
    let (got, rest) = read(Wire::new(endless.as_bytes().chunks(10)), true).await;
    assert_eq!(got, Err(Failure::TooLong));
    assert!(rest.len() > 300 - V1_MAX, "read past the cap");

    let mut huge = v2(Command::Proxy, "192.0.2.1:1", "192.0.2.2:2", &[]);
    huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    let (got, _) = read(Wire::new([&huge]), true).await;
    assert_eq!(got, Err(Failure::TooLong));
}

fn policy(mode: ProxyProtocol, trusted: &[&str]) -> Arc<Policy> {
    let mut config = ListenerConfig::new(crate::config::ProtocolName::Syslog, sa("127.0.0.1:0"));
    config.proxy_protocol = mode;
    config.trusted_proxies = trusted.iter().map(|t| t.to_string()).collect();
    config.proxy_header_timeout = Duration::from_millis(100);
    Policy::for_listener(&config, &Arc::from("test")).unwrap()
}

#[tokio::test]
async fn the_policy_trusts_only_listed_sources() {
    let balancer = sa("10.0.0.5:33000");
    let stranger = sa("192.0.2.99:33000");
    let bytes = join(&[V1_TCP4, SYSLOG]);

    let required = policy(ProxyProtocol::Required, &["10.0.0.0/8"]);
    let mut wire = Wire::new([&bytes]);
    let (peer, info) = required.accept(&mut wire, balancer).await.unwrap();
    assert_eq!(peer, sa("192.0.2.10:56324"));
    assert_eq!(info.unwrap().proxy, Some(balancer));
    assert_eq!(wire.rest(), SYSLOG);
    // Refused before a byte is read.
    let mut wire = Wire::new([&bytes]);
    assert_eq!(
        required.read(&mut wire, stranger).await,
        Err(Failure::Untrusted)
    );
    assert_eq!(wire.rest(), bytes);

    let optional = policy(ProxyProtocol::Optional, &["10.0.0.0/8"]);
    let mut wire = Wire::new([&bytes]);
    assert_eq!(
        optional.read(&mut wire, stranger).await,
        Err(Failure::Untrusted)
    );
    // A direct client, trusted or not, keeps its own address.
    for source in [stranger, balancer] {
        let mut wire = Wire::new([SYSLOG]);
        assert_eq!(
            optional.accept(&mut wire, source).await,
            Some((source, None))
        );
        assert_eq!(wire.rest(), SYSLOG);
    }
    // LOCAL: the balancer's own health check keeps the balancer's address.
    let mut wire = Wire::new([join(&[&v2_local(), SYSLOG])]);
    let (peer, info) = optional.accept(&mut wire, balancer).await.unwrap();
    assert_eq!(peer, balancer);
    assert!(info.unwrap().local);
}

#[tokio::test]
async fn a_header_that_never_completes_times_out() {
    for mode in [ProxyProtocol::Required, ProxyProtocol::Optional] {
        let p = policy(mode, &["0.0.0.0/0"]);
        for started in [&b"PROXY TCP4 192.0.2.10 "[..], b"\r\n\r\n", &V1_TCP4[..1]] {
            let mut wire = Wire::bytewise(started).hanging();
            let begun = std::time::Instant::now();
            assert_eq!(
                p.read(&mut wire, sa("10.0.0.5:1")).await,
                Err(Failure::Timeout)
            );
            assert!(begun.elapsed() < Duration::from_secs(2));
        }
    }
    // Required: silence is a missing header too, once the timeout is over.
    let p = policy(ProxyProtocol::Required, &["0.0.0.0/0"]);
    let mut wire = Wire::new(Vec::<Vec<u8>>::new()).hanging();
    assert_eq!(
        p.read(&mut wire, sa("10.0.0.5:1")).await,
        Err(Failure::Timeout)
    );
}

#[tokio::test]
async fn optional_mode_lets_a_direct_client_stay_quiet() {
    // The clock starts at the first byte: a shipper that connects and waits is not cut off.
    let p = policy(ProxyProtocol::Optional, &["0.0.0.0/0"]);
    let mut wire = Wire::new(Vec::<Vec<u8>>::new()).hanging();
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        p.read(&mut wire, sa("10.0.0.5:1")),
    )
    .await;
    assert!(waited.is_err(), "the connection must still be waiting");
}

#[test]
fn cidrs() {
    let net = Cidr::parse("10.0.0.0/8").unwrap();
    assert!(net.contains("10.255.0.1".parse().unwrap()));
    assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
    assert!(!net.contains("11.0.0.1".parse().unwrap()));
    assert!(!net.contains("::1".parse().unwrap()));
    let host = Cidr::parse("192.0.2.1").unwrap();
    assert!(host.contains("192.0.2.1".parse().unwrap()));
    assert!(!host.contains("192.0.2.2".parse().unwrap()));
    let v6 = Cidr::parse("fd00::/8").unwrap();
    assert!(v6.contains("fd12::1".parse().unwrap()));
    assert!(!v6.contains("fe80::1".parse().unwrap()));
    let all = Cidr::parse("0.0.0.0/0").unwrap();
    assert!(all.contains("203.0.113.1".parse().unwrap()));
    assert!(Cidr::parse("::/0")
        .unwrap()
        .contains("2001:db8::1".parse().unwrap()));
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0/8",
        "ten",
        "10.0.0.0/",
        "10.0.0.0/-1",
    ] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
    let e = Cidr::parse("10.1.2.3/8").unwrap_err();
    assert!(e.contains("10.0.0.0/8"), "{e}");
}
