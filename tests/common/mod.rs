//! Shared harness for the integration tests: start the real `logport` binary on free loopback
//! ports with its own data dir, talk to it over real sockets, read back what it committed.
#![allow(dead_code)]

pub mod docker;
pub mod kafka;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use logport::event::Event;
use logport::sink::store::Reader;

/// The admin and listener addresses a started gateway logged, once it has logged them all.
pub fn bound_addresses(log: &str) -> Option<(SocketAddr, Vec<(String, SocketAddr)>)> {
    if !log.contains("logport is ready") {
        return None;
    }
    let field = |line: &str, key: &str| -> Option<String> {
        let start = line.find(&format!(" {key}="))? + key.len() + 2;
        Some(
            line[start..]
                .split(' ')
                .next()?
                .trim_matches('"')
                .to_owned(),
        )
    };
    let mut admin = None;
    let mut listeners = Vec::new();
    for line in log.lines() {
        if line.contains("admin API") {
            admin = field(line, "address")?.parse().ok();
        } else if line.contains(" listening ") {
            listeners.push((
                field(line, "listener")?,
                field(line, "address")?.parse().ok()?,
            ));
        }
    }
    Some((admin?, listeners))
}

/// A tool the test needs. Missing tools fail the test loudly: the test command installs them.
pub fn require_tool(name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(format!(
        "LOGPORT_TEST_{}",
        name.to_uppercase().replace('-', "_")
    )) {
        return PathBuf::from(path);
    }
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    if !found.status.success() {
        panic!("`{name}` is not installed: run scripts/test.sh, which installs every tool the tests use");
    }
    PathBuf::from(String::from_utf8(found.stdout).unwrap().trim())
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A running gateway process with its own temp dir. Every listener and the admin API bind port 0;
/// the harness reads the real addresses from the gateway's log, so parallel tests never race
/// for ports.
pub struct Gateway {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub admin: SocketAddr,
    /// Listener name → bound address, in config order.
    pub listeners: Vec<(String, SocketAddr)>,
    pub config: String,
    log: PathBuf,
}

impl Gateway {
    /// Starts logport with `listeners` (TOML `[[listener]]` tables where `PORT` stands for the
    /// port, 0, and `CERTS` for the repo's certs/) and `extra` top-level TOML.
    pub fn start(listeners: &str, extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        // No balancer watches a test's /ready: a drain need not wait for one (tests of the
        // grace itself set it).
        let grace = if extra.contains("drain_grace") {
            ""
        } else {
            "drain_grace = \"0s\"\n"
        };
        // A test that restarts a node behind a balancer needs its admin port fixed: it says so.
        let admin = if extra.contains("[admin]") {
            ""
        } else {
            "[admin]\naddress = \"127.0.0.1:0\"\n"
        };
        let config = format!(
            "data_dir = \"{data}\"\nshutdown_timeout = \"20s\"\n{grace}{extra}\n{admin}\n{listeners}",
            data = dir.path().join("data").display(),
            listeners = listeners.replace("PORT", "0").replace("CERTS", repo_path("certs").to_str().unwrap()),
        );
        Self::spawn(dir, config)
    }

    fn spawn(dir: tempfile::TempDir, config: String) -> Gateway {
        let config_path = dir.path().join("logport.toml");
        std::fs::write(&config_path, &config).unwrap();
        let log = dir.path().join("logport.log");
        let _ = std::fs::remove_file(&log);
        let child = Command::new(env!("CARGO_BIN_EXE_logport"))
            .args(["run", "--config"])
            .arg(&config_path)
            .env(
                "LOGPORT_LOG",
                std::env::var("LOGPORT_TEST_LOG").unwrap_or_else(|_| "info,logport=debug".into()),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut gw = Gateway {
            child,
            dir,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: Vec::new(),
            config,
            log,
        };
        gw.wait_ready();
        gw
    }

    /// Starts the same configuration again in the same dir (after a crash or a stop); the
    /// listeners get new ports.
    pub fn restart(mut self) -> Gateway {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.take_dir();
        Self::spawn(dir, self.config.clone())
    }

    /// Moves the temp dir out (leaving an empty stand-in behind for Drop).
    fn take_dir(&mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.listeners[0].1
    }

    pub fn addr_of(&self, name: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no listener {name}: {:?}", self.listeners))
            .1
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir().join("store")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "logport exited with {status} while starting:\n{}",
                    self.log()
                );
            }
            if let Some((admin, listeners)) = bound_addresses(&self.log()) {
                self.admin = admin;
                self.listeners = listeners;
                if http_get(self.admin, "/ready")
                    .map(|(code, _)| code == 200)
                    .unwrap_or(false)
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("logport did not become ready in 20s:\n{}", self.log());
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("logport did not exit within {within:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(30));
        assert!(
            status.success(),
            "logport exited with {status} on SIGTERM:\n{}",
            self.log()
        );
        self.take_dir()
    }

    /// kill -9.
    pub fn crash(mut self) -> Gateway {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self
    }

    /// All committed events, oldest first.
    pub fn events(&self) -> Vec<Event> {
        read_store(&self.store_dir())
    }

    /// Polls the store until `n` events are there (fails after `within`).
    pub fn wait_for_events(&self, n: usize, within: Duration) -> Vec<Event> {
        let deadline = Instant::now() + within;
        loop {
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {n} events, the store has {}:\n{}\nlog:\n{}",
                    events.len(),
                    dump(&events),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn metrics(&self) -> String {
        let (code, body) = http_get(self.admin, "/metrics").expect("GET /metrics");
        assert_eq!(code, 200);
        body
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failed test shows the end of the gateway's log beside its assertion.
        if std::thread::panicking() {
            let log = self.log();
            if let Ok(keep) = std::env::var("LOGPORT_TEST_KEEP_LOG") {
                let _ = std::fs::write(keep, &log);
            }
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- last lines of the gateway's log ---\n{}",
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
    }
}

pub fn read_store(dir: &Path) -> Vec<Event> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut reader = Reader::open(dir).expect("open store");
    let mut events = Vec::new();
    while let Some(stored) = reader.next().expect("read store") {
        events.push(stored.event);
    }
    events
}

pub fn json(event: &Event) -> serde_json::Value {
    serde_json::from_slice(&event.value).unwrap_or_else(|e| {
        panic!(
            "event is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&event.value)
        )
    })
}

pub fn dump(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| format!("  [{}] {}\n", e.app, String::from_utf8_lossy(&e.value)))
        .collect()
}

/// The value of a Prometheus sample (sum over series matching all `labels`), 0 if absent.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A minimal HTTP/1.0 GET: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// Runs a command and fails the test with its output if it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub const SYSLOG_TCP: &str = "[[listener]]\nname = \"tcp\"\nprotocol = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:PORT\"\n";
pub const SYSLOG_UDP: &str = "[[listener]]\nname = \"udp\"\nprotocol = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:PORT\"\n";
