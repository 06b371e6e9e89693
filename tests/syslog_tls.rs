//! Syslog over TLS (RFC 5425): rsyslog's omfwd with GnuTLS relaying `logger` traffic, with and
//! without client certificates, and a Python client that closes right after its last write.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// A free port for rsyslog's own input (rsyslog cannot report a port 0 back).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tls_listener(client_auth: &str) -> String {
    format!(
        "{SYSLOG_TCP_TLS}[listener.tls]\ncert = \"CERTS/server.crt\"\nkey = \"CERTS/server.key\"\nclient_ca = \"CERTS/ca.crt\"\nclient_auth = \"{client_auth}\"\n"
    )
}

const SYSLOG_TCP_TLS: &str = "[[listener]]\nname = \"tls\"\nprotocol = \"syslog\"\ntransport = \"tls\"\naddress = \"127.0.0.1:PORT\"\n";

/// A private foreground rsyslogd: `imptcp` on its own port in, `omfwd` over gtls to logport out.
struct Rsyslog {
    child: Child,
    input_port: u16,
    dir: tempfile::TempDir,
}

impl Rsyslog {
    fn start(target_port: u16, with_client_cert: bool, actions: &[(&str, &str)]) -> Rsyslog {
        let rsyslogd = std::env::var("LOGPORT_TEST_RSYSLOGD")
            .map(PathBuf::from)
            .unwrap_or_else(|_| panic!("LOGPORT_TEST_RSYSLOGD is not set: run scripts/test.sh, which unpacks rsyslog for the tests"));
        let modules = std::env::var("LOGPORT_TEST_RSYSLOG_MODULES")
            .expect("LOGPORT_TEST_RSYSLOG_MODULES (set by scripts/test.sh)");
        assert!(
            rsyslogd.exists(),
            "{} is missing: run scripts/test.sh",
            rsyslogd.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let certs = repo_path("certs");
        let input_port = free_port();
        let client_cert = if with_client_cert {
            format!(" defaultNetstreamDriverCertFile=\"{0}/client.crt\" defaultNetstreamDriverKeyFile=\"{0}/client.key\"", certs.display())
        } else {
            String::new()
        };
        let mut conf = format!(
            "global(workDirectory=\"{work}\" defaultNetstreamDriverCAFile=\"{certs}/ca.crt\"{client_cert})\n\
             module(load=\"imptcp\")\n\
             input(type=\"imptcp\" port=\"{input_port}\" address=\"127.0.0.1\")\n",
            work = dir.path().display(),
            certs = certs.display(),
        );
        for (framing, template) in actions {
            conf.push_str(&format!(
                "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{target_port}\" protocol=\"tcp\" StreamDriver=\"gtls\" \
                 StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"localhost\" \
                 TCP_Framing=\"{framing}\" template=\"{template}\")\n"
            ));
        }
        let conf_path = dir.path().join("rsyslog.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .arg("-M")
            .arg(modules)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("rsyslogd.log")).unwrap())
            .spawn()
            .unwrap();
        let rsyslog = Rsyslog {
            child,
            input_port,
            dir,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", input_port)).is_ok() {
                return rsyslog;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("rsyslogd did not open its input port:\n{}", rsyslog.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.log")).unwrap_or_default()
    }

    fn send(&self, tag: &str, lines: &[String]) {
        let file = self.dir.path().join(format!("{tag}.txt"));
        std::fs::write(&file, lines.join("\n")).unwrap();
        run_ok(Command::new(require_tool("logger")).args([
            "-n",
            "127.0.0.1",
            "-P",
            &self.input_port.to_string(),
            "-T",
            "--rfc3164",
            "-t",
            tag,
            "-f",
            file.to_str().unwrap(),
        ]));
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn rsyslog_forwards_over_mutual_tls_in_both_framings_and_formats() {
    let gw = Gateway::start(&tls_listener("required"), "");
    let rsyslog = Rsyslog::start(
        gw.addr().port(),
        true,
        &[
            ("octet-counted", "RSYSLOG_SyslogProtocol23Format"),
            ("traditional", "RSYSLOG_ForwardFormat"),
        ],
    );
    let lines: Vec<String> = (0..200)
        .map(|i| format!("relayed {i:03} über TLS"))
        .collect();
    rsyslog.send("relay", &lines);
    let events = gw.wait_for_events(400, Duration::from_secs(20));
    assert_eq!(events.len(), 400, "{}", rsyslog.log());
    let mut rfc5424 = Vec::new();
    let mut forward = Vec::new();
    for e in &events {
        let v = json(e);
        assert_eq!(&*e.app, "relay", "{v}");
        assert_eq!(v["process"]["name"], "relay", "{v}");
        assert_eq!(v["host"]["ip"], "127.0.0.1");
        // RSYSLOG_SyslogProtocol23Format is RFC 5424; RSYSLOG_ForwardFormat is 3164-style with an RFC 3339 stamp.
        if v["log"]["syslog"]["version"] == 1 {
            rfc5424.push(v)
        } else {
            forward.push(v)
        }
    }
    // rsyslog's `msg` of an RFC 3164 input keeps the space after `TAG:`; its RFC 5424 template
    // writes it verbatim after the SD, so the MSG really starts with a space. Kept as sent.
    let messages = |got: &[serde_json::Value]| {
        got.iter()
            .map(|v| v["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        messages(&rfc5424),
        lines.iter().map(|l| format!(" {l}")).collect::<Vec<_>>()
    );
    assert_eq!(messages(&forward), lines);
    // ForwardFormat puts an RFC 3339 stamp where RFC 3164 has `Mmm dd hh:mm:ss`.
    for v in &forward {
        let original = v["event"]["original"].as_str().unwrap();
        let stamp: jiff::Timestamp = original[4..].split(' ').next().unwrap().parse().unwrap();
        assert_eq!(
            v["@timestamp"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .unwrap(),
            stamp,
            "{v}"
        );
    }
}

/// Polls the handshake-failure counter until it reaches `n`.
fn wait_for_handshake_failures(gw: &Gateway, n: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(
        &gw.metrics(),
        "logport_tls_handshake_failures_total",
        &[("listener", "tls")],
    ) < n
    {
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} failed handshakes:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn required_client_certificates_are_enforced() {
    let gw = Gateway::start(&tls_listener("required"), "");
    let rsyslog = Rsyslog::start(
        gw.addr().port(),
        false,
        &[("octet-counted", "RSYSLOG_SyslogProtocol23Format")],
    );
    rsyslog.send("nocert", &["must not arrive".to_string()]);
    wait_for_handshake_failures(&gw, 1.0);
    assert!(gw.log().contains("TLS handshake failed"), "{}", gw.log());

    // A certificate from a CA the listener does not trust is refused too.
    python_tls_client(
        gw.addr().port(),
        Some(("untrusted-client.crt", "untrusted-client.key")),
        &["<13>1 - - untrusted - - - no"],
        1,
    );
    wait_for_handshake_failures(&gw, 2.0);

    // The control: the same client with the CA's certificate gets through, and only it.
    python_tls_client(
        gw.addr().port(),
        Some(("client.crt", "client.key")),
        &["<13>1 - - trusted - - - yes"],
        1,
    );
    let events = gw.wait_for_events(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let all = gw.events();
    let apps: Vec<&str> = all.iter().map(|e| &*e.app).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(apps, ["trusted"], "{}", dump(&all));
}

#[test]
fn optional_client_certificates_accept_both() {
    let gw = Gateway::start(&tls_listener("optional"), "");
    python_tls_client(
        gw.addr().port(),
        None,
        &["<13>1 - - anon - - - without a certificate"],
        1,
    );
    python_tls_client(
        gw.addr().port(),
        Some(("client.crt", "client.key")),
        &["<13>1 - - known - - - with a certificate"],
        1,
    );
    let events = gw.wait_for_events(2, Duration::from_secs(10));
    let mut apps: Vec<&str> = events.iter().map(|e| &*e.app).collect();
    apps.sort();
    assert_eq!(apps, ["anon", "known"]);
}

#[test]
fn a_client_that_closes_right_after_writing_loses_nothing() {
    // TLS 1.3 session tickets left unread turn the client's close into a RST that would make
    // the kernel discard the tail: every connection here writes and closes at once.
    let gw = Gateway::start(
        &tls_listener("none").replace("client_ca = \"CERTS/ca.crt\"\n", ""),
        "",
    );
    let lines: Vec<String> = (0..500)
        .map(|i| format!("<13>1 - - conn{{c}} - - - line {i:03} {}", "y".repeat(200)))
        .collect();
    let line_refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    python_tls_client(gw.addr().port(), None, &line_refs, 20);
    let events = gw.wait_for_events(500 * 20, Duration::from_secs(30));
    assert_eq!(events.len(), 500 * 20);
    // Connections may be committed interleaved; each one must be whole and in order.
    for c in 0..20 {
        let messages: Vec<String> = events
            .iter()
            .filter(|e| *e.app == *format!("conn{c}"))
            .map(|e| json(e)["message"].as_str().unwrap().to_owned())
            .collect();
        let want: Vec<String> = (0..500)
            .map(|i| format!("line {i:03} {}", "y".repeat(200)))
            .collect();
        assert_eq!(messages, want, "connection {c}");
    }
}

/// Python's ssl module (not our code) as the client: `connections` connections, each writing
/// every line octet-counted in one go and closing without reading anything.
fn python_tls_client(
    port: u16,
    cert: Option<(&str, &str)>,
    lines: &[&str],
    connections: usize,
) -> String {
    let certs = repo_path("certs");
    let load_cert = match cert {
        Some((c, k)) => format!("ctx.load_cert_chain('{0}/{c}', '{0}/{k}')", certs.display()),
        None => String::new(),
    };
    let script = format!(
        r#"
import socket, ssl, sys, json
lines = json.loads(sys.stdin.read())
ctx = ssl.create_default_context(cafile='{certs}/ca.crt')
{load_cert}
for c in range({connections}):
    payload = b''.join(b'%d %s' % (len(l.encode()), l.encode()) for l in (l.replace('{{c}}', str(c)) for l in lines))
    try:
        with socket.create_connection(('127.0.0.1', {port})) as raw:
            with ctx.wrap_socket(raw, server_hostname='localhost') as s:
                s.sendall(payload)
    except (ssl.SSLError, ConnectionError, OSError) as e:
        print('refused:', e)
"#,
        certs = certs.display()
    );
    let mut child = Command::new(require_tool("python3"))
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(lines).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
