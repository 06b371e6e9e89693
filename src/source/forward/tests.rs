//! Logic tests: config checks and event shapes, on bytes as real clients write them (the
//! protocol crate's encoders and the reference vectors). Sockets are in tests/forward.rs.

use bytes::BytesMut;
use logport_forward::rmpv::Value;
use logport_forward::{Decoder, EventTime, Limits};
use serde_json::json;

use super::options::ForwardOptions;
use super::shape::{Peer, Shaper};
use crate::config::Config;
use crate::source::AppCache;

fn shape(
    ecs: bool,
    options: &ForwardOptions,
    tag: &str,
    time: EventTime,
    record: &Value,
) -> (serde_json::Value, String) {
    let shaper = Shaper::with(ecs, options);
    let mut out = BytesMut::new();
    let app = shaper.shape(
        tag,
        time,
        record,
        &Peer {
            ip: "10.1.2.3",
            port: 40_000,
        },
        (1_700_000_000, 5),
        &mut out,
        &mut Vec::new(),
        &mut AppCache::default(),
    );
    let v = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    (v, app.to_string())
}

/// Reference §4.7 vector 4: a Docker event as fluent-logger-golang writes it.
const DOCKER_MESSAGE: &[u8] = b"\x94\xab docker.3f2a\xd2\x66\x32\x2e\xc0\x84\xac container_id\xa4 3f2a\xae container_name\xa4 /web\xa6 source\xa6 stdout\xa3 log\xa2 hi\x80";

fn docker_chunk() -> logport_forward::Chunk {
    // The vector is written with readable spaces after each length byte; drop them.
    let mut bytes = Vec::new();
    let mut skip = false;
    for (i, &b) in DOCKER_MESSAGE.iter().enumerate() {
        if skip && b == b' ' {
            skip = false;
            continue;
        }
        skip = matches!(b, 0xa0..=0xbf) && i > 0;
        bytes.push(b);
    }
    let mut buf = BytesMut::from(&bytes[..]);
    Decoder::new(Limits::default())
        .decode(&mut buf)
        .unwrap()
        .unwrap()
}

#[test]
fn a_docker_record_is_shaped_as_logstash_with_log_as_message() {
    let chunk = docker_chunk();
    assert_eq!(chunk.tag, "docker.3f2a");
    let e = &chunk.entries[0];
    let (v, app) = shape(
        true,
        &ForwardOptions::default(),
        &chunk.tag,
        e.time,
        &e.record,
    );
    assert_eq!(
        v,
        json!({"container_id": "3f2a", "container_name": "/web", "source": "stdout", "message": "hi",
               "@timestamp": "2024-05-01T12:00:00.000Z", "@version": "1", "tags": ["docker.3f2a"]})
    );
    assert_eq!(app, "web");

    // Logstash's exact shape: `log` stays, and the legacy mode adds the sender.
    let logstash = ForwardOptions {
        message_from_log: false,
        ..ForwardOptions::default()
    };
    let (v, _) = shape(false, &logstash, &chunk.tag, e.time, &e.record);
    assert_eq!(
        v,
        json!({"container_id": "3f2a", "container_name": "/web", "source": "stdout", "log": "hi",
               "@timestamp": "2024-05-01T12:00:00.000Z", "@version": "1", "tags": ["docker.3f2a"],
               "host": "10.1.2.3", "port": 40000})
    );
}

fn record(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

#[test]
fn logstash_rules_for_reserved_fields() {
    let r = record(vec![
        ("@timestamp", "yesterday".into()),
        ("@version", "2".into()),
        ("@metadata", record(vec![("x", 1.into())])),
        ("tags", Value::Array(vec!["a".into(), "app.web".into()])),
        ("host", "web-1".into()),
        ("message", "kept".into()),
        ("log", "also kept".into()),
        ("n", 3.into()),
        (
            "nested",
            record(vec![("k", Value::Binary(b"v\xff".to_vec()))]),
        ),
    ]);
    let (v, _) = shape(
        false,
        &ForwardOptions::default(),
        "app.web",
        EventTime::new(1_714_564_800, 123_456_789),
        &r,
    );
    assert_eq!(
        v,
        json!({"host": "web-1", "message": "kept", "log": "also kept", "n": 3, "nested": {"k": "v\u{fffd}"},
               "@timestamp": "2024-05-01T12:00:00.123456789Z", "@version": "2", "tags": ["a", "app.web"],
               "port": 40000})
    );
    // A single string tag becomes a list with the fluent tag after it.
    let r = record(vec![("tags", "x".into())]);
    let (v, app) = shape(
        true,
        &ForwardOptions::default(),
        "t",
        EventTime::new(0, 7),
        &r,
    );
    assert_eq!(v["tags"], json!(["x", "t"]));
    // Time 0 is the receive time, as in_forward does.
    assert_eq!(v["@timestamp"], "2023-11-14T22:13:20.000000005Z");
    assert_eq!(app, "t");
}

#[test]
fn a_repeated_key_keeps_its_last_value_once() {
    let mut pairs: Vec<(Value, Value)> = (0..40)
        .map(|i| (Value::from(format!("k{i}")), Value::from(i)))
        .collect();
    pairs.push(("k3".into(), "late".into()));
    pairs.push(("k39".into(), "last".into()));
    let (v, _) = shape(
        true,
        &ForwardOptions::default(),
        "t",
        EventTime::new(1, 0),
        &Value::Map(pairs),
    );
    let text = v.to_string();
    assert_eq!(v["k3"], "late");
    assert_eq!(v["k39"], "last");
    assert_eq!(text.matches("\"k3\"").count(), 1, "{text}");
}

fn check(toml: &str) -> Result<Config, String> {
    Config::from_toml(toml).map_err(|e| e.to_string())
}

const LISTENER: &str =
    "[[listener]]\nprotocol = \"forward\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:24224\"\n";

#[test]
fn config_errors_name_the_key() {
    let ok = check(&format!("{LISTENER}[listener.forward]\nshared_key = \"k\"\nself_hostname = \"gw\"\nusers = [{{ username = \"a\", password = \"b\" }}]\nchunk_size_limit = \"16MiB\"\n")).unwrap();
    assert_eq!(ok.listeners[0].forward.users.len(), 1);
    assert_eq!(ok.listeners[0].forward.chunk_size_limit.0, 16 << 20);
    assert_eq!(
        ok.listeners[0].forward.max_decoded(),
        128 << 20,
        "8 x 16MiB"
    );
    let set = check(&format!(
        "{LISTENER}[listener.forward]\nmax_decoded_bytes = \"1GiB\"\n"
    ))
    .unwrap();
    assert_eq!(set.listeners[0].forward.max_decoded(), 1 << 30);
    assert!(
        !ok.listeners[0].forward.join_partials,
        "off by default, as in Logstash"
    );
    let joining = check(&format!(
        "{LISTENER}[listener.forward]\njoin_partials = true\npartial_timeout = \"2s\"\n"
    ))
    .unwrap();
    assert_eq!(
        joining.listeners[0].forward.partial_timeout,
        std::time::Duration::from_secs(2)
    );
    for (table, key) in [
        (
            "users = [{ username = \"a\", password = \"b\" }]",
            "forward.users",
        ),
        ("shared_key = \"\"", "forward.shared_key"),
        ("chunk_size_limit = 10", "forward.chunk_size_limit"),
        (
            "shared_key = \"k\"\nself_hostname = \"\"",
            "forward.self_hostname",
        ),
        ("sharedkey = \"k\"", "sharedkey"),
        ("partial_max_bytes = \"1KiB\"", "forward.partial_max_bytes"),
        ("max_decoded_bytes = \"1KiB\"", "forward.max_decoded_bytes"),
        ("partial_timeout = \"0s\"", "forward.partial_timeout"),
        ("partial_timeout = \"soon\"", "forward.partial_timeout"),
    ] {
        let e = check(&format!("{LISTENER}[listener.forward]\n{table}\n")).unwrap_err();
        assert!(e.contains(key), "{table}: {e}");
    }
    let e = check(&LISTENER.replace("\"tcp\"", "\"udp\"")).unwrap_err();
    assert!(e.contains("transport"), "{e}");
    let e = check(&format!("{LISTENER}app_fields = [\"[broken\"]\n")).unwrap_err();
    assert!(e.contains("app_fields"), "{e}");
}

mod stream {
    //! The connection loop against a sink the test plays: acks wait for the commit, a failed
    //! commit is never acked, no budget means no reading.

    use std::sync::Arc;
    use std::time::Duration;

    use logport_forward::{encode_message, ClientOptions, Time};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::super::stream::ForwardStream;
    use super::*;
    use crate::admission::Budget;
    use crate::batch::{Batch, Commit};
    use crate::event::Event;
    use crate::source::{ListenerMetrics, Pipeline};
    use crate::transport::{Connection, StreamHandler};
    use crate::warn_limit::WarnLimiter;

    struct Setup {
        client: DuplexStream,
        batches: mpsc::Receiver<Batch>,
        budget: Budget,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(skip_invalid_event: bool, budget_bytes: u64) -> Setup {
        start_with(skip_invalid_event, budget_bytes, false)
    }

    fn start_with(skip_invalid_event: bool, budget_bytes: u64, deny_keepalive: bool) -> Setup {
        start_full(
            skip_invalid_event,
            budget_bytes,
            deny_keepalive,
            None,
            Duration::ZERO,
        )
    }

    fn start_full(
        skip_invalid_event: bool,
        budget_bytes: u64,
        deny_keepalive: bool,
        partials: Option<(usize, Duration)>,
        frame_timeout: Duration,
    ) -> Setup {
        let (tx, batches) = mpsc::channel(16);
        let budget = Budget::new(budget_bytes);
        let name: std::sync::Arc<str> = "t".into();
        let handler = Arc::new(ForwardStream {
            shaper: Shaper::with(true, &ForwardOptions::default()),
            limits: Limits::default(),
            max_event: 1 << 20,
            skip_invalid_event,
            deny_keepalive,
            security: None,
            pipeline: Pipeline {
                batches: tx,
                budget: budget.clone(),
                admission: Arc::new(crate::admission::Admission::new(
                    &Default::default(),
                    budget_bytes,
                )),
                can_wait: true,
            },
            metrics: ListenerMetrics::new(&name, "forward"),
            invalid_events: metrics::Counter::noop(),
            acks: metrics::Counter::noop(),
            invalid_warning: std::sync::Mutex::new(WarnLimiter::new(Duration::from_secs(10))),
            partials,
            partial_joins: [(); 3].map(|_| metrics::Counter::noop()),
            recent: std::sync::Mutex::new(super::super::recent::RecentAcks::new(
                100,
                Duration::from_secs(60),
            )),
            duplicates: metrics::Counter::noop(),
        });
        let (client, server) = tokio::io::duplex(1 << 16);
        let conn = Connection {
            proxied: None,
            stream: Box::new(server),
            peer: "127.0.0.1:5000".parse().unwrap(),
            listener: name,
            frame_timeout,
        };
        let task = tokio::spawn(handler.serve(conn, CancellationToken::new()));
        Setup {
            client,
            batches,
            budget,
            task,
        }
    }

    fn message(seq: u64, chunk: &str) -> Vec<u8> {
        let record = Value::Map(vec![("seq".into(), seq.into())]);
        let mut out = Vec::new();
        let opts = ClientOptions {
            chunk: Some(chunk.as_bytes().to_vec()),
            size: None,
        };
        encode_message(&mut out, "t", Time::Int(1), &record, Some(&opts));
        out
    }

    async fn nothing_to_read(client: &mut DuplexStream) -> bool {
        let mut buf = [0u8; 64];
        tokio::time::timeout(Duration::from_millis(100), client.read(&mut buf))
            .await
            .is_err()
    }

    async fn read_some(client: &mut DuplexStream) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        buf[..n].to_vec()
    }

    #[tokio::test]
    async fn acks_wait_for_the_commit_and_a_failed_commit_is_never_acked() {
        let mut s = start(true, 1 << 20);
        s.client.write_all(&message(0, "c1")).await.unwrap();
        let batch = s.batches.recv().await.unwrap();
        assert_eq!(batch.events.len(), 1);
        assert!(
            nothing_to_read(&mut s.client).await,
            "no ack before the commit"
        );
        batch.ack.resolve(Commit::Committed);
        assert_eq!(read_some(&mut s.client).await, b"\x81\xa3ack\xa2c1");

        s.client.write_all(&message(1, "c2")).await.unwrap();
        let batch = s.batches.recv().await.unwrap();
        batch.ack.resolve(Commit::Failed("disk full".into()));
        assert_eq!(read_some(&mut s.client).await, b"", "closed without an ack");
        s.task.await.unwrap();
    }

    #[tokio::test]
    async fn no_budget_no_reading() {
        let mut s = start(true, 64 << 10);
        let all = s.budget.reserve(64 << 10).await;
        s.client.write_all(&message(0, "c1")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            s.batches.try_recv().is_err(),
            "nothing is built without budget"
        );
        drop(all);
        let batch = s.batches.recv().await.unwrap();
        assert_eq!(batch.events.len(), 1);
        assert!(batch.reservation.is_some());
    }

    #[tokio::test]
    async fn a_gzip_chunk_is_sent_only_once_the_budget_covers_what_it_inflated_to() {
        // 400 events of 1 KiB of text, a few KiB gzipped: the first read's estimate (twice the
        // wire size) is far below what the events take once inflated.
        let text = "a".repeat(1024);
        let entries: Vec<_> = (0..400u64)
            .map(|i| {
                let record = Value::Map(vec![
                    ("seq".into(), i.into()),
                    ("log".into(), text.as_str().into()),
                ]);
                (Time::Int(1), record)
            })
            .collect();
        let opts = ClientOptions {
            chunk: Some(b"z1".to_vec()),
            size: None,
        };
        let mut wire = Vec::new();
        logport_forward::encode_compressed_packed_forward(&mut wire, "t", &entries, &opts, 1);
        assert!(wire.len() < 16 << 10, "{} bytes on the wire", wire.len());

        let mut s = start(true, 1 << 20);
        let others = s.budget.reserve(900 << 10).await;
        s.client.write_all(&wire).await.unwrap();
        // The reader has inflated the chunk and queued for the rest of the budget once it
        // holds all that was free (the semaphore hands freed permits to its first waiter).
        tokio::time::timeout(Duration::from_secs(5), async {
            while s.budget.in_flight() < s.budget.total() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the reader waits for the budget");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            s.batches.try_recv().is_err(),
            "events not covered by the budget are not sent"
        );
        drop(others);
        let batch = s.batches.recv().await.unwrap();
        assert_eq!(batch.events.len(), 400);
        let size: usize = batch.events.iter().map(Event::size).sum();
        assert!(size > 400 << 10, "{size}");
        assert_eq!(batch.reservation.as_ref().unwrap().bytes(), size);
        assert!(s.budget.in_flight() >= size as u64);
        batch.ack.resolve(Commit::Committed);
        assert_eq!(read_some(&mut s.client).await, b"\x81\xa3ack\xa2z1");
    }

    /// A piece of a split line as Docker's fluentd driver sends it with `fluentd-request-ack`.
    fn piece(ordinal: u32, last: bool, log: &str, chunk: &str) -> Vec<u8> {
        let record = Value::Map(vec![
            ("container_name".into(), "/web".into()),
            ("source".into(), "stdout".into()),
            ("log".into(), log.into()),
            ("partial_message".into(), "true".into()),
            ("partial_id".into(), "p1".into()),
            ("partial_ordinal".into(), ordinal.to_string().into()),
            ("partial_last".into(), last.to_string().into()),
        ]);
        let mut out = Vec::new();
        let opts = ClientOptions {
            chunk: Some(chunk.as_bytes().to_vec()),
            size: None,
        };
        encode_message(&mut out, "t", Time::Int(1), &record, Some(&opts));
        out
    }

    #[tokio::test]
    async fn split_lines_are_joined_and_each_piece_is_acked_so_the_driver_goes_on() {
        let mut s = start_full(
            true,
            1 << 20,
            false,
            Some((1 << 20, Duration::from_secs(60))),
            Duration::ZERO,
        );
        s.client
            .write_all(&piece(1, false, "aa", "k1"))
            .await
            .unwrap();
        // The driver waits for this ack before it sends the next piece: holding it back
        // would stall the container until the driver's timeout.
        assert_eq!(read_some(&mut s.client).await, b"\x81\xa3ack\xa2k1");
        assert!(
            s.batches.try_recv().is_err(),
            "a piece alone is not an event"
        );
        s.client
            .write_all(&piece(2, true, "bb", "k2"))
            .await
            .unwrap();
        let batch = s.batches.recv().await.unwrap();
        assert_eq!(batch.events.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&batch.events[0].value).unwrap();
        assert_eq!(v["message"], "aabb");
        assert!(v.get("partial_id").is_none());
        assert!(
            nothing_to_read(&mut s.client).await,
            "the last piece waits for the commit"
        );
        batch.ack.resolve(Commit::Committed);
        assert_eq!(read_some(&mut s.client).await, b"\x81\xa3ack\xa2k2");
    }

    #[tokio::test]
    async fn a_line_whose_last_piece_never_comes_is_emitted_after_the_timeout() {
        let mut s = start_full(
            true,
            1 << 20,
            false,
            Some((1 << 20, Duration::from_millis(50))),
            Duration::ZERO,
        );
        s.client
            .write_all(&piece(1, false, "aa", "k1"))
            .await
            .unwrap();
        let batch = tokio::time::timeout(Duration::from_secs(5), s.batches.recv())
            .await
            .expect("emitted after the timeout")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&batch.events[0].value).unwrap();
        assert_eq!(v["message"], "aa");
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_not_whole_within_frame_timeout_closes_the_connection() {
        let mut s = start_full(true, 1 << 20, false, None, Duration::from_secs(5));
        // Between messages a connection may stay quiet for as long as it likes.
        s.client.write_all(&message(0, "w1")).await.unwrap();
        let batch = s.batches.recv().await.unwrap();
        batch.ack.resolve(Commit::Committed);
        assert_eq!(read_some(&mut s.client).await, b"\x81\xa3ack\xa2w1");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!s.task.is_finished(), "closed between messages");
        // A message trickling in a byte a second, each byte in time, is cut at the deadline.
        let slow = message(1, "w2");
        for &b in &slow[..4] {
            s.client.write_all(&[b]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(!s.task.is_finished(), "closed before the deadline");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(1), s.client.read_to_end(&mut rest));
        assert!(matches!(read.await, Ok(Ok(0))), "the server closed");
        assert!(s.task.is_finished());
        assert!(
            s.batches.try_recv().is_err(),
            "the partial message is not an event"
        );
    }

    #[tokio::test]
    async fn a_resent_chunk_is_acked_again_but_committed_once() {
        let mut s = start(true, 1 << 20);
        s.client.write_all(&message(0, "r1")).await.unwrap();
        let batch = s.batches.recv().await.unwrap();
        batch.ack.resolve(Commit::Committed);
        assert_eq!(read_some(&mut s.client).await, b"\x81\xa3ack\xa2r1");
        // Docker's driver resends a chunk whose ack it missed, under the same id.
        s.client.write_all(&message(0, "r1")).await.unwrap();
        assert_eq!(read_some(&mut s.client).await, b"\x81\xa3ack\xa2r1");
        assert!(s.batches.try_recv().is_err(), "not committed twice");
    }

    pub fn start_json_oneshot() -> (DuplexStream, mpsc::Receiver<Batch>) {
        let s = start_with(true, 1 << 20, true);
        (s.client, s.batches)
    }

    /// `[tag, time, "not a map", {"chunk": "c3"}]`
    const INVALID: &[u8] = b"\x94\xa1t\x01\xa1x\x81\xa5chunk\xa2c3";

    #[tokio::test]
    async fn invalid_entries_are_dropped_and_acked_or_close_the_connection() {
        let mut s = start(true, 1 << 20);
        s.client.write_all(INVALID).await.unwrap();
        assert_eq!(read_some(&mut s.client).await, b"\x81\xa3ack\xa2c3");
        assert!(s.batches.try_recv().is_err());

        let mut s = start(false, 1 << 20);
        s.client.write_all(INVALID).await.unwrap();
        assert_eq!(read_some(&mut s.client).await, b"");
        s.task.await.unwrap();
        assert!(s.batches.try_recv().is_err());
    }
}

#[tokio::test]
async fn json_connections_get_json_acks_and_deny_keepalive_closes_after_them() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = stream::start_json_oneshot();
    s.0.write_all(br#"["app",1714564800,{"log":"hi"},{"chunk":"j1"}] ["app",1714564801,{"log":"again"},{"chunk":"j2"}]"#)
        .await
        .unwrap();
    let batch = s.1.recv().await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&batch.events[1].value).unwrap();
    assert_eq!(v["message"], "again");
    assert_eq!(v["@timestamp"], "2024-05-01T12:00:01.000Z");
    batch.ack.resolve(crate::batch::Commit::Committed);
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.0.read_to_end(&mut out))
        .await
        .expect("closed after the acks")
        .unwrap();
    assert_eq!(out, br#"{"ack":"j1"}{"ack":"j2"}"#);
}
