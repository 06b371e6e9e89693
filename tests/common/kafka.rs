//! A real Kafka-protocol broker for the tests (tansu, installed by scripts/install-test-deps.sh)
//! and a consumer that reads back everything logport produced.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A private tansu broker with in-memory storage on a loopback port.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn tansu() -> PathBuf {
    let path = std::env::var("LOGPORT_TEST_TANSU").unwrap_or_else(|_| {
        panic!("LOGPORT_TEST_TANSU is not set: run scripts/test.sh, which installs the tansu Kafka broker for the tests")
    });
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test.sh",
        path.display()
    );
    path
}

/// A port for a broker, free now. Taken from 20000-29999, below the kernel's ephemeral range:
/// a port picked with bind(0) and let go could be handed to any other socket (a gateway
/// listener, another test's broker) before the broker binds it, and then two tests would
/// share one broker. The process id spreads parallel test processes over the range.
pub fn free_broker_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let spread = std::process::id()
            .wrapping_mul(7919)
            .wrapping_add(n.wrapping_mul(13));
        let port = 20_000 + (spread % 10_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_on(free_broker_port())
    }

    /// A new broker (empty: memory storage) on the port of one that was stopped. tansu binds
    /// without SO_REUSEADDR, so while the old broker's connections sit in TIME_WAIT it exits
    /// with "Address in use": start it again until it listens.
    pub fn start_on(port: u16) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("tansu.log");
        let url = format!("tcp://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = std::fs::File::create(&log).unwrap();
            let mut child = Command::new(tansu())
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                    "--storage-engine",
                    "memory://tansu/",
                ])
                // tansu says "ready in" on stdout, and its errors on stderr: both go to the log.
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap();
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let exited = child.try_wait().unwrap().is_some();
                // Ours is listening only when it says so: something else may answer on the port.
                let ready = !exited && !text.contains("AddrInUse") && text.contains("ready in");
                if ready && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Broker {
                        child: Some(child),
                        port,
                        log,
                        _dir: dir,
                    };
                }
                if exited || text.contains("AddrInUse") {
                    let _ = child.kill();
                    let _ = child.wait();
                    assert!(text.contains("AddrInUse"), "tansu exited:\n{text}");
                    assert!(
                        Instant::now() < deadline,
                        "port {port} stayed in use:\n{text}"
                    );
                    std::thread::sleep(Duration::from_millis(500));
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "tansu did not listen on {port}:\n{text}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9: the broker and all it held are gone (memory storage).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: connections stay open but nothing is answered (a hung broker).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        assert!(Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
        self.kill();
    }
}

/// One message as Kafka holds it.
#[derive(Clone, Debug)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub value: Vec<u8>,
}

impl Record {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.value)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads every message of the topics `wanted` accepts, from the beginning, until `expect` are
/// in and nothing more arrives for a moment, or `within` passes. Partitions are assigned
/// explicitly (no consumer group), following topics as they appear.
pub fn consume(
    brokers: &str,
    wanted: impl Fn(&str) -> bool,
    expect: usize,
    within: Duration,
) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "logport-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut next: HashMap<(String, i32), i64> = HashMap::new();
    let mut records = Vec::new();
    let deadline = Instant::now() + within;
    let mut last_refresh = Instant::now() - Duration::from_secs(10);
    let mut quiet_since = Instant::now();
    loop {
        if last_refresh.elapsed() > Duration::from_millis(500) {
            last_refresh = Instant::now();
            if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(2)) {
                let mut grew = false;
                for topic in metadata.topics().iter().filter(|t| wanted(t.name())) {
                    for p in topic.partitions() {
                        if let std::collections::hash_map::Entry::Vacant(e) =
                            next.entry((topic.name().to_owned(), p.id()))
                        {
                            e.insert(-1);
                            grew = true;
                        }
                    }
                }
                if grew {
                    let mut list = TopicPartitionList::new();
                    for ((topic, partition), offset) in &next {
                        let at = if *offset < 0 {
                            Offset::Beginning
                        } else {
                            Offset::Offset(*offset)
                        };
                        list.add_partition_offset(topic, *partition, at).unwrap();
                    }
                    consumer.assign(&list).expect("assign");
                }
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                quiet_since = Instant::now();
                next.insert((m.topic().to_owned(), m.partition()), m.offset() + 1);
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                records.push(Record {
                    topic: m.topic().to_owned(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    headers,
                    value: m.payload().unwrap_or_default().to_vec(),
                });
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
        let settled = records.len() >= expect && quiet_since.elapsed() > Duration::from_millis(700);
        if settled || Instant::now() > deadline {
            return records;
        }
    }
}
