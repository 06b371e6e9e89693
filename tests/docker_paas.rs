//! The PaaS scenario end to end: a real Docker daemon runs containers of three Marathon apps whose
//! stdout and stderr go through Docker's own syslog, gelf and fluentd log drivers (every transport,
//! format and main option) to logport, which commits them to a real Kafka-protocol broker. Every
//! line is read back from Kafka and compared: once each, under its app's topic and key, with its
//! stream, container and a timestamp within the driver's precision.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::Child;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::docker::Docker;
use common::kafka::{consume, Broker, Record};
use common::*;
use serde_json::Value;

const APPS: [&str; 3] = ["/shop/web", "/shop/api", "/billing/worker"];
/// Numbered lines per stream per container.
const LINES: u32 = 4;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Driver {
    Syslog,
    Gelf,
    Fluentd,
}

/// Where the app key comes from for a container.
#[derive(Clone, Copy, PartialEq, Debug)]
enum AppFrom {
    /// `--log-opt env=MARATHON_APP_ID` (gelf, fluentd).
    Marathon,
    /// The syslog `tag` template `{{index .ContainerLabels "app"}}`: APP-NAME/TAG.
    TagTemplate,
    /// Docker's default syslog tag: the container's short id.
    DefaultTag,
    /// No env passed: the container's name.
    ContainerName,
}

/// The timestamp precision a driver configuration gives.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Precision {
    Seconds,
    Sub,
}

struct Case {
    name: &'static str,
    app: usize,
    driver: Driver,
    /// `--log-opt`s; `{syslog_tcp}` etc. stand for the listener addresses.
    opts: &'static [&'static str],
    app_from: AppFrom,
    precision: Precision,
    /// Length of one long line (0: none).
    long: usize,
    /// The forward listener joins Docker's split lines.
    joined: bool,
}

const TAG_APP: &str = "tag={{index .ContainerLabels \"app\"}}";

fn cases() -> Vec<Case> {
    use AppFrom::*;
    use Driver::*;
    use Precision::*;
    let c = |name, app, driver, opts, app_from, precision, long, joined| Case {
        name,
        app,
        driver,
        opts,
        app_from,
        precision,
        long,
        joined,
    };
    vec![
        c(
            "web-syslog-udp",
            0,
            Syslog,
            &["syslog-address=udp://{syslog_udp}", TAG_APP],
            TagTemplate,
            Seconds,
            0,
            false,
        ),
        c(
            "web-syslog-3164",
            0,
            Syslog,
            &[
                "syslog-address=tcp://{syslog_tcp}",
                "syslog-format=rfc3164",
                TAG_APP,
            ],
            TagTemplate,
            Seconds,
            0,
            false,
        ),
        c(
            "api-syslog-5424",
            1,
            Syslog,
            &[
                "syslog-address=tcp://{syslog_tcp}",
                "syslog-format=rfc5424",
                TAG_APP,
            ],
            TagTemplate,
            Seconds,
            0,
            false,
        ),
        c(
            "api-syslog-tls-micro",
            1,
            Syslog,
            &[
                "syslog-address=tcp+tls://{syslog_tls}",
                "syslog-format=rfc5424micro",
                "syslog-tls-ca-cert={ca}",
                TAG_APP,
            ],
            TagTemplate,
            Sub,
            0,
            false,
        ),
        c(
            "worker-syslog-tls-5424",
            2,
            Syslog,
            &[
                "syslog-address=tcp+tls://{syslog_tls}",
                "syslog-format=rfc5424",
                "syslog-tls-ca-cert={ca}",
                TAG_APP,
            ],
            TagTemplate,
            Seconds,
            0,
            false,
        ),
        c(
            "worker-syslog-default",
            2,
            Syslog,
            &["syslog-address=tcp://{syslog_tcp}"],
            DefaultTag,
            Seconds,
            0,
            false,
        ),
        c(
            "web-gelf-gzip",
            0,
            Gelf,
            &[
                "gelf-address=udp://{gelf_udp}",
                "env=MARATHON_APP_ID",
                "labels=team",
            ],
            Marathon,
            Sub,
            6000,
            false,
        ),
        c(
            "web-gelf-zlib",
            0,
            Gelf,
            &[
                "gelf-address=udp://{gelf_udp}",
                "gelf-compression-type=zlib",
                "env=MARATHON_APP_ID",
                "labels=team",
            ],
            Marathon,
            Sub,
            20000,
            false,
        ),
        c(
            "api-gelf-none",
            1,
            Gelf,
            &[
                "gelf-address=udp://{gelf_udp}",
                "gelf-compression-type=none",
                "env=MARATHON_APP_ID",
                "labels=team",
            ],
            Marathon,
            Sub,
            3000,
            false,
        ),
        c(
            "api-gelf-tcp",
            1,
            Gelf,
            &[
                "gelf-address=tcp://{gelf_tcp}",
                "env=MARATHON_APP_ID",
                "labels=team",
            ],
            Marathon,
            Sub,
            20000,
            false,
        ),
        c(
            "worker-gelf-noenv",
            2,
            Gelf,
            &["gelf-address=udp://{gelf_udp}"],
            ContainerName,
            Sub,
            0,
            false,
        ),
        c(
            "web-fluentd-sync",
            0,
            Fluentd,
            &[
                "fluentd-address={forward}",
                "env=MARATHON_APP_ID",
                "labels=team",
            ],
            Marathon,
            Seconds,
            20000,
            false,
        ),
        c(
            "api-fluentd-async",
            1,
            Fluentd,
            &[
                "fluentd-address={forward}",
                "fluentd-async=true",
                "env=MARATHON_APP_ID",
                "labels=team",
            ],
            Marathon,
            Seconds,
            0,
            false,
        ),
        c(
            "api-fluentd-ack",
            1,
            Fluentd,
            &[
                "fluentd-address={forward_join}",
                "fluentd-request-ack=true",
                "env=MARATHON_APP_ID",
                "labels=team",
            ],
            Marathon,
            Seconds,
            20000,
            true,
        ),
        c(
            "worker-fluentd-subsec",
            2,
            Fluentd,
            &[
                "fluentd-address={forward_join}",
                "fluentd-sub-second-precision=true",
                "env=MARATHON_APP_ID",
                "labels=team",
            ],
            Marathon,
            Sub,
            40000,
            true,
        ),
        c(
            "worker-fluentd-noenv",
            2,
            Fluentd,
            &["fluentd-address={forward}"],
            ContainerName,
            Seconds,
            0,
            false,
        ),
    ]
}

/// A long line's text, deterministic and not too compressible (hex of an LCG), so that GELF
/// over UDP has to chunk it.
fn long_text(name: &str, len: usize) -> String {
    let mut x: u64 = name.bytes().fold(1469598103934665603, |h, b| {
        (h ^ b as u64).wrapping_mul(1099511628211)
    });
    let mut s = String::with_capacity(len);
    while s.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(&format!("{:016x}", x));
    }
    s.truncate(len);
    s
}

/// The lines a container writes: (stream, text).
fn expected_lines(case: &Case) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for i in 1..=LINES {
        out.push(("stdout", format!("{} out {i}", case.name)));
        out.push(("stderr", format!("{} err {i}", case.name)));
    }
    if case.long > 0 {
        out.push((
            "stdout",
            format!("{} long {}", case.name, long_text(case.name, case.long)),
        ));
    }
    out
}

/// Kafka's topic for an app under `logs-{app}` (the sink's sanitizing: anything outside
/// letters, digits, `.`, `_`, `-` becomes `_`).
fn topic_of(app: &str) -> String {
    let clean: String = app
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("logs-{clean}")
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn parse_ts(ts: &str) -> f64 {
    let t: jiff::Timestamp = ts
        .parse()
        .unwrap_or_else(|e| panic!("@timestamp {ts:?}: {e}"));
    t.as_nanosecond() as f64 / 1e9
}

/// (container name, stream, text) of an event, whatever the driver.
fn identify(case_of: &HashMap<String, &Case>, v: &Value) -> Option<(String, &'static str, String)> {
    let text = v["message"].as_str()?.to_string();
    let name = text.split(' ').next()?.to_string();
    let case = case_of.get(&name)?;
    let stream = match case.driver {
        Driver::Syslog => match v["log"]["syslog"]["severity"]["code"].as_u64() {
            Some(6) => "stdout",
            Some(3) => "stderr",
            other => panic!("syslog severity {other:?}: {v}"),
        },
        Driver::Gelf => match v["level"].as_u64() {
            Some(6) => "stdout",
            Some(3) => "stderr",
            other => panic!("gelf level {other:?}: {v}"),
        },
        Driver::Fluentd => match v["source"].as_str() {
            Some("stdout") => "stdout",
            Some("stderr") => "stderr",
            other => panic!("fluentd source {other:?}: {v}"),
        },
    };
    Some((name, stream, text))
}

#[test]
fn marathon_apps_log_through_every_docker_driver_into_kafka_once_each_under_their_app() {
    let docker = Docker::start(None);
    docker.base_images(&["busybox"]);
    let broker = Broker::start();
    let gw = Gateway::start(
        r#"
[[listener]]
name = "syslog-tcp"
protocol = "syslog"
transport = "tcp"
address = "127.0.0.1:PORT"

[[listener]]
name = "syslog-udp"
protocol = "syslog"
transport = "udp"
address = "127.0.0.1:PORT"

[[listener]]
name = "syslog-tls"
protocol = "syslog"
transport = "tls"
address = "127.0.0.1:PORT"
[listener.tls]
cert = "CERTS/server.crt"
key = "CERTS/server.key"

[[listener]]
name = "gelf-udp"
protocol = "gelf"
transport = "udp"
address = "127.0.0.1:PORT"

[[listener]]
name = "gelf-tcp"
protocol = "gelf"
transport = "tcp"
address = "127.0.0.1:PORT"

[[listener]]
name = "forward"
protocol = "forward"
transport = "tcp"
address = "127.0.0.1:PORT"

[[listener]]
name = "forward-join"
protocol = "forward"
transport = "tcp"
address = "127.0.0.1:PORT"
[listener.forward]
join_partials = true
partial_timeout = "2s"
"#,
        &format!(
            "[sink]\ntype = \"kafka\"\n[kafka]\nbrokers = \"{}\"\ntopic = \"logs-{{app}}\"\n",
            broker.address()
        ),
    );
    let subst = |opt: &str| {
        opt.replace("{syslog_tcp}", &gw.addr_of("syslog-tcp").to_string())
            .replace("{syslog_udp}", &gw.addr_of("syslog-udp").to_string())
            .replace("{syslog_tls}", &gw.addr_of("syslog-tls").to_string())
            .replace("{gelf_udp}", &gw.addr_of("gelf-udp").to_string())
            .replace("{gelf_tcp}", &gw.addr_of("gelf-tcp").to_string())
            .replace("{forward}", &gw.addr_of("forward").to_string())
            .replace("{forward_join}", &gw.addr_of("forward-join").to_string())
            .replace("{ca}", repo_path("certs/ca.crt").to_str().unwrap())
    };

    let cases = cases();
    let started = now_secs();
    // All containers at once, as a PaaS host runs them; each prints its numbered lines.
    let script = format!(
        r#"p() {{ [ -z "$PAUSE" ] || sleep 1; }}; i=1; while [ $i -le {LINES} ]; do echo "$N out $i"; p; echo "$N err $i" >&2; p; i=$((i+1)); done; [ -z "$LONG" ] || echo "$N long $LONG""#
    );
    let runs: Vec<(&Case, Child)> = cases
        .iter()
        .map(|case| {
            let mut cmd = docker.cmd();
            cmd.args(["run", "--rm", "--network", "none", "--name", case.name])
                .args(["-e", &format!("N={}", case.name)])
                .args(["-e", &format!("MARATHON_APP_ID={}", APPS[case.app])])
                .args(["--label", &format!("app={}", APPS[case.app])])
                .args(["--label", &format!("team=team-{}", case.app)]);
            if case.long > 0 {
                cmd.args(["-e", &format!("LONG={}", long_text(case.name, case.long))]);
            }
            if case
                .opts
                .iter()
                .any(|o| o.starts_with("fluentd-request-ack"))
            {
                // fluent-logger-golang reads acks racily when stdout and stderr write at the
                // same moment (README, "Docker and PaaS"); the resends would be de-duplicated,
                // but each costs the driver a 10 s wait.
                cmd.args(["-e", "PAUSE=1"]);
            }
            let driver = match case.driver {
                Driver::Syslog => "syslog",
                Driver::Gelf => "gelf",
                Driver::Fluentd => "fluentd",
            };
            cmd.args(["--log-driver", driver]);
            for opt in case.opts {
                cmd.args(["--log-opt", &subst(opt)]);
            }
            cmd.args(["local/busybox", "sh", "-c", &script])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            (case, cmd.spawn().unwrap())
        })
        .collect();
    let mut ids: HashMap<String, String> = HashMap::new();
    for (case, child) in runs {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "docker run {} failed: {}\ndockerd log:\n{}",
            case.name,
            String::from_utf8_lossy(&out.stderr),
            docker.log()
        );
        ids.insert(case.name.to_string(), String::new());
    }
    let finished = now_secs();

    // Every expected event: full lines, and the pieces Docker cuts lines over 16KiB into where
    // they are not joined (syslog is not sent long lines here; UDP GELF chunks are reassembled).
    let mut expected: BTreeMap<(String, &'static str, String), usize> = BTreeMap::new();
    for case in &cases {
        for (stream, text) in expected_lines(case) {
            if case.joined || text.len() <= 16 * 1024 {
                *expected
                    .entry((case.name.to_string(), stream, text))
                    .or_default() += 1;
            } else {
                for piece in text.as_bytes().chunks(16 * 1024) {
                    let piece = String::from_utf8(piece.to_vec()).unwrap();
                    let name = if piece.starts_with(case.name) {
                        case.name.to_string()
                    } else {
                        String::new()
                    };
                    *expected.entry((name, stream, piece)).or_default() += 1;
                }
            }
        }
    }
    let total: usize = expected.values().sum();
    let records = consume(
        &broker.address(),
        |t| t.starts_with("logs-"),
        total,
        Duration::from_secs(60),
    );

    let case_of: HashMap<String, &Case> = cases.iter().map(|c| (c.name.to_string(), c)).collect();
    let mut got: BTreeMap<(String, &'static str, String), usize> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut fraction_seen: HashMap<&str, bool> = HashMap::new();
    for r in &records {
        let v = r.json();
        let (case, key) = match identify(&case_of, &v) {
            Some(k) => (case_of[&k.0], k),
            None => {
                // A piece after the first of a split line: no name in front, its text tells
                // whose long line it is.
                let text = v["message"].as_str().unwrap_or_default().to_string();
                let owner = cases.iter().find(|c| {
                    c.long > 0 && text.len() > 64 && long_text(c.name, c.long).contains(&text)
                });
                let Some(case) = owner else {
                    problems.push(format!("unattributable event in {}: {v:.200}", r.topic));
                    continue;
                };
                let stream = if v["source"] == "stderr" || v["level"] == 3 {
                    "stderr"
                } else {
                    "stdout"
                };
                (case, (String::new(), stream, text))
            }
        };
        let has_fraction = check_event(case, &v, r, started, finished, &mut problems);
        *fraction_seen.entry(case.name).or_default() |= has_fraction;
        if case.driver != Driver::Syslog && !key.0.is_empty() {
            ids.insert(
                key.0.clone(),
                v["container_id"].as_str().unwrap_or_default().to_string(),
            );
        }
        *got.entry(key).or_default() += 1;
    }
    for case in cases.iter().filter(|c| c.precision == Precision::Sub) {
        if !fraction_seen.get(case.name).copied().unwrap_or(false) {
            problems.push(format!(
                "{}: no event has the sub-second part the driver sends",
                case.name
            ));
        }
    }
    let mut missing = Vec::new();
    let mut duplicated = Vec::new();
    for (k, n) in &expected {
        let g = got.get(k).copied().unwrap_or(0);
        if g < *n {
            missing.push(format!("{} {} {:.40} ({g} of {n})", k.0, k.1, k.2));
        } else if g > *n {
            duplicated.push(format!("{} {} {:.40} ({g} of {n})", k.0, k.1, k.2));
        }
    }
    let unexpected: Vec<_> = got
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .map(|k| format!("{} {} {:.60} ({} bytes)", k.0, k.1, k.2, k.2.len()))
        .collect();
    assert!(
        missing.is_empty() && duplicated.is_empty() && unexpected.is_empty() && problems.is_empty(),
        "{} records for {total} expected\nmissing: {missing:#?}\nduplicated: {duplicated:#?}\nunexpected: {unexpected:#?}\nproblems: {problems:#?}\ngateway log:\n{}",
        records.len(),
        gw.log().lines().filter(|l| !l.contains("DEBUG")).collect::<Vec<_>>().join("\n")
    );
    // Docker's ids reached the events: one full 64-hex id per gelf/fluentd container.
    for case in cases.iter().filter(|c| c.driver != Driver::Syslog) {
        let id = &ids[case.name];
        assert!(
            id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{}: container_id {id:?}",
            case.name
        );
    }
    // The joins were counted, none timed out.
    let m = gw.metrics();
    let joined = metric(
        &m,
        "logport_forward_partial_joins_total",
        &[("listener", "forward-join"), ("outcome", "complete")],
    );
    assert_eq!(joined, 2.0, "{m}");
    let timed_out = metric(
        &m,
        "logport_forward_partial_joins_total",
        &[("listener", "forward-join"), ("outcome", "timed_out")],
    );
    assert_eq!(timed_out, 0.0);
    eprintln!(
        "{} containers, {} events read back from Kafka in {:.1}s",
        cases.len(),
        records.len(),
        now_secs() - started
    );
}

/// App key, topic, Kafka key, container fields and timestamp of one event; true when its
/// timestamp has a sub-second part.
fn check_event(
    case: &Case,
    v: &Value,
    r: &Record,
    started: f64,
    finished: f64,
    problems: &mut Vec<String>,
) -> bool {
    let app_name = APPS[case.app];
    let app = match case.app_from {
        AppFrom::Marathon | AppFrom::TagTemplate => app_name.to_string(),
        AppFrom::ContainerName => case.name.to_string(),
        // The short id is only known from the event itself: it is the syslog TAG.
        AppFrom::DefaultTag => {
            let tag = v["process"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if tag.len() != 12 || !tag.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push(format!(
                    "{}: default tag is not a short container id: {v}",
                    case.name
                ));
            }
            tag
        }
    };
    if r.key.as_deref() != Some(app.as_str()) {
        problems.push(format!("{}: key {:?}, want {app:?}", case.name, r.key));
    }
    if r.topic != topic_of(&app) {
        problems.push(format!(
            "{}: topic {}, want {}",
            case.name,
            r.topic,
            topic_of(&app)
        ));
    }
    match case.driver {
        Driver::Syslog => {
            if case.app_from == AppFrom::TagTemplate && v["process"]["name"] != app_name {
                problems.push(format!(
                    "{}: tag template not in process.name: {v}",
                    case.name
                ));
            }
        }
        Driver::Gelf | Driver::Fluentd => {
            let want_name = if case.driver == Driver::Fluentd {
                format!("/{}", case.name)
            } else {
                case.name.to_string()
            };
            if v["container_name"] != want_name.as_str() {
                problems.push(format!(
                    "{}: container_name {}",
                    case.name, v["container_name"]
                ));
            }
            if case.app_from == AppFrom::Marathon {
                if v["MARATHON_APP_ID"] != app_name {
                    problems.push(format!(
                        "{}: MARATHON_APP_ID {}",
                        case.name, v["MARATHON_APP_ID"]
                    ));
                }
                if v["team"] != format!("team-{}", case.app).as_str() {
                    problems.push(format!("{}: label team {}", case.name, v["team"]));
                }
            }
            if case.joined && v.get("partial_id").is_some() {
                problems.push(format!("{}: joined event keeps partial_id", case.name));
            }
        }
    }
    let ts = v["@timestamp"].as_str().unwrap_or_default();
    let t = parse_ts(ts);
    // Whole-second timestamps are truncated: allow a second before the start.
    if t < started.floor() - 1.0 || t > finished + 1.0 {
        problems.push(format!(
            "{}: @timestamp {ts} outside the run ({started:.3}..{finished:.3})",
            case.name
        ));
    }
    let has_fraction = t.fract() != 0.0;
    if case.precision == Precision::Seconds && has_fraction {
        problems.push(format!(
            "{}: @timestamp {ts} has a fraction the driver does not send",
            case.name
        ));
    }
    has_fraction
}
