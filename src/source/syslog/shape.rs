//! Syslog frames → Logstash-shaped JSON, as logstash-input-syslog would emit them through a
//! `json` codec. ECS mode (Logstash 8's default):
//!
//! | syslog                      | field                                              |
//! |-----------------------------|----------------------------------------------------|
//! | PRI                         | `[log][syslog][priority]`, `[log][syslog][facility][code|name]`, `[log][syslog][severity][code|name]` |
//! | TIMESTAMP                   | `@timestamp` (UTC; RFC 3164 stamps in the listener's `timezone`) |
//! | HOSTNAME                    | `[host][hostname]`                                 |
//! | APP-NAME / TAG              | `[process][name]`                                  |
//! | PROCID / `[PID]`            | `[process][pid]` (number), or `[log][syslog][procid]` when not a number |
//! | MSGID, VERSION, SD (5424)   | `[log][syslog][msgid]`, `[log][syslog][version]`, `[log][syslog][structured_data][SD-ID][PARAM]` |
//! | MSG                         | `message`                                          |
//! | the raw line                | `[event][original]` (unless `keep_original = false`) |
//! | sender address              | `[host][ip]`                                       |
//!
//! plus `@version: "1"` and `[service][type]: "system"`. With `ecs_compatibility = "disabled"`
//! the legacy names: `priority`, `facility`, `severity`, `facility_label`, `severity_label`,
//! `timestamp` (as sent), `logsource`, `program`, `pid` (string), `host` (sender address), and
//! `msgid`/`structured_data` for RFC 5424. A line that is not syslog keeps its text as `message`,
//! gets priority 13 (user-level, Notice) and the tag `_grokparsefailure_sysloginput`, as Logstash
//! does. Unlike Logstash (whose syslog input only knows RFC 3164), RFC 5424 lines are parsed.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::BytesMut;
use logport_syslog::{text, Format, Message, Pri, SdElement, Timestamp};

use super::app::AppKey;
use crate::config::{EcsCompatibility, ListenerConfig};
use logport_syslog::timestamp::{civil_from_days, days_in_month, unix_from_civil};

use crate::event::JsonWriter;
use crate::source::AppCache;

const FACILITY_LABELS: [&str; 24] = [
    "kernel",
    "user-level",
    "mail",
    "system",
    "security/authorization",
    "syslogd",
    "line printer",
    "network news",
    "UUCP",
    "clock",
    "security/authorization",
    "FTP",
    "NTP",
    "log audit",
    "log alert",
    "clock",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];
const SEVERITY_LABELS: [&str; 8] = [
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
];

pub const PARSE_FAILURE_TAG: &str = "_grokparsefailure_sysloginput";
pub const DATE_FAILURE_TAG: &str = "_dateparsefailure";
pub const TRUNCATED_TAG: &str = "_message_truncated";

/// Shapes frames of one listener. Built once per listener from its config.
#[derive(Clone, Debug)]
pub struct Shaper {
    ecs: bool,
    keep_original: bool,
    /// None is UTC, the common case, which needs no zone lookups.
    timezone: Option<jiff::tz::TimeZone>,
    pub app: AppKey,
}

/// What shaping one frame tells the caller beside the JSON it wrote.
pub struct Shaped {
    pub app: Arc<str>,
    /// The frame was not syslog (kept raw, tagged).
    pub parse_failed: bool,
}

impl Shaper {
    pub fn new(config: &ListenerConfig) -> anyhow::Result<Shaper> {
        let timezone = match config.timezone.as_str() {
            "UTC" | "utc" | "Etc/UTC" => None,
            name => Some(jiff::tz::TimeZone::get(name)?),
        };
        let fields = config
            .app_fields
            .clone()
            .unwrap_or_else(AppKey::default_fields);
        Ok(Shaper {
            ecs: config.ecs_compatibility == EcsCompatibility::V8,
            keep_original: config.keep_original,
            timezone,
            app: AppKey::compile(&fields, &config.app_default).map_err(anyhow::Error::msg)?,
        })
    }

    /// Writes one event for `frame` into `out` and returns its app key. `now` is the receive
    /// time, used for `@timestamp` when the frame has none and to guess RFC 3164 years.
    pub fn shape(
        &self,
        frame: &[u8],
        truncated: bool,
        peer_ip: &str,
        now: (i64, u32),
        out: &mut BytesMut,
        apps: &mut AppCache,
    ) -> Shaped {
        let parsed = logport_syslog::parse(frame).ok();
        let mut w = JsonWriter::new(out);
        match &parsed {
            Some(msg) => self.write_message(&mut w, msg, frame, truncated, peer_ip, now),
            None => self.write_unparsed(&mut w, frame, truncated, peer_ip, now),
        }
        Shaped {
            app: apps.get(self.app.resolve(parsed.as_ref(), peer_ip)),
            parse_failed: parsed.is_none(),
        }
    }

    fn write_message(
        &self,
        w: &mut JsonWriter,
        msg: &Message,
        frame: &[u8],
        truncated: bool,
        peer_ip: &str,
        now: (i64, u32),
    ) {
        let (stamp, date_failed) = match msg.timestamp {
            Some(ts) => match self.resolve_time(ts, now.0) {
                Some(t) => (t, false),
                None => (now, true),
            },
            None => (now, false),
        };
        let pid_number = msg.proc_id.as_deref().and_then(|p| p.parse::<u64>().ok());
        w.begin_object();
        w.key("@timestamp").timestamp(stamp.0, stamp.1);
        w.key("@version").string("1");
        w.key("message").string(&msg.msg);
        if self.ecs {
            w.key("host").begin_object();
            if let Some(h) = &msg.hostname {
                w.key("hostname").string(h);
            }
            w.key("ip").string(peer_ip);
            w.end_object();
            if msg.app_name.is_some() || pid_number.is_some() {
                w.key("process").begin_object();
                if let Some(a) = &msg.app_name {
                    w.key("name").string(a);
                }
                if let Some(pid) = pid_number {
                    w.key("pid").u64(pid);
                }
                w.end_object();
            }
            w.key("log").begin_object().key("syslog").begin_object();
            write_ecs_priority(w, msg.pri);
            if msg.format == Format::Rfc5424 {
                w.key("version").u64(1);
            }
            if let (Some(p), None) = (&msg.proc_id, pid_number) {
                w.key("procid").string(p);
            }
            if let Some(id) = &msg.msg_id {
                w.key("msgid").string(id);
            }
            if !msg.structured_data.is_empty() {
                w.key("structured_data");
                write_structured_data(w, &msg.structured_data);
            }
            w.end_object().end_object();
            self.write_ecs_trailer(w, || text(frame));
        } else {
            w.key("host").string(peer_ip);
            write_legacy_priority(w, msg.pri);
            if let Some(raw) = msg.timestamp_raw {
                w.key("timestamp").string(raw);
                // Logstash's legacy grok captures an ISO 8601 stamp as `timestamp8601` and
                // then copies it to `timestamp`: both fields exist.
                if msg.format == Format::Rfc3164
                    && matches!(msg.timestamp, Some(Timestamp::Absolute { .. }))
                {
                    w.key("timestamp8601").string(raw);
                }
            }
            if let Some(h) = &msg.hostname {
                w.key("logsource").string(h);
            }
            if let Some(a) = &msg.app_name {
                w.key("program").string(a);
            }
            if let Some(p) = &msg.proc_id {
                w.key("pid").string(p);
            }
            if let Some(id) = &msg.msg_id {
                w.key("msgid").string(id);
            }
            if !msg.structured_data.is_empty() {
                w.key("structured_data");
                write_structured_data(w, &msg.structured_data);
            }
        }
        write_tags(
            w,
            [
                date_failed.then_some(DATE_FAILURE_TAG),
                truncated.then_some(TRUNCATED_TAG),
            ],
        );
        w.end_object();
    }

    fn write_unparsed(
        &self,
        w: &mut JsonWriter,
        frame: &[u8],
        truncated: bool,
        peer_ip: &str,
        now: (i64, u32),
    ) {
        let text = text(frame);
        let unknown = Pri::new(13).expect("13 is a valid PRI");
        w.begin_object();
        w.key("@timestamp").timestamp(now.0, now.1);
        w.key("@version").string("1");
        w.key("message").string(&text);
        if self.ecs {
            w.key("host")
                .begin_object()
                .key("ip")
                .string(peer_ip)
                .end_object();
            w.key("log").begin_object().key("syslog").begin_object();
            write_ecs_priority(w, unknown);
            w.end_object().end_object();
            self.write_ecs_trailer(w, || Cow::Borrowed(&*text));
        } else {
            w.key("host").string(peer_ip);
            write_legacy_priority(w, unknown);
        }
        write_tags(
            w,
            [Some(PARSE_FAILURE_TAG), truncated.then_some(TRUNCATED_TAG)],
        );
        w.end_object();
    }

    /// `[event][original]` (the frame as text, made only when kept) and `[service][type]`.
    fn write_ecs_trailer<'f>(&self, w: &mut JsonWriter, original: impl FnOnce() -> Cow<'f, str>) {
        if self.keep_original {
            w.key("event")
                .begin_object()
                .key("original")
                .string(&original())
                .end_object();
        }
        w.key("service")
            .begin_object()
            .key("type")
            .string("system")
            .end_object();
    }

    /// The instant of a syslog timestamp; None for a date that does not exist (`Feb 30`).
    fn resolve_time(&self, ts: Timestamp, now_secs: i64) -> Option<(i64, u32)> {
        match ts {
            Timestamp::Absolute {
                unix_secs, nanos, ..
            } => Some((unix_secs, nanos)),
            Timestamp::Bsd {
                month,
                day,
                hour,
                minute,
                second,
                nanos,
            } => {
                let (now_year, now_month, _) = civil_from_days(now_secs.div_euclid(86_400));
                let year = logport_syslog::infer_year(month, now_year as i32, now_month);
                // The parser allows Feb 29 in any year; it exists only in leap years.
                if day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
                    return None;
                }
                match &self.timezone {
                    None => Some((
                        unix_from_civil(year, month, day, hour, minute, second.min(59), 0),
                        nanos,
                    )),
                    Some(tz) => {
                        let civil = jiff::civil::DateTime::new(
                            year as i16,
                            month as i8,
                            day as i8,
                            hour as i8,
                            minute as i8,
                            second.min(59) as i8,
                            nanos as i32,
                        )
                        .ok()?;
                        let ts = tz.to_timestamp(civil).ok()?;
                        Some((ts.as_second(), ts.subsec_nanosecond() as u32))
                    }
                }
            }
        }
    }
}

fn write_ecs_priority(w: &mut JsonWriter, pri: Pri) {
    let (facility, severity) = (pri.facility(), pri.severity());
    w.key("priority").u64(pri.value() as u64);
    w.key("facility")
        .begin_object()
        .key("code")
        .u64(facility as u64);
    if let Some(label) = FACILITY_LABELS.get(facility as usize) {
        w.key("name").string(label);
    }
    w.end_object();
    w.key("severity")
        .begin_object()
        .key("code")
        .u64(severity as u64);
    w.key("name").string(SEVERITY_LABELS[severity as usize & 7]);
    w.end_object();
}

fn write_legacy_priority(w: &mut JsonWriter, pri: Pri) {
    let (facility, severity) = (pri.facility(), pri.severity());
    w.key("priority").u64(pri.value() as u64);
    w.key("severity").u64(severity as u64);
    w.key("facility").u64(facility as u64);
    if let Some(label) = FACILITY_LABELS.get(facility as usize) {
        w.key("facility_label").string(label);
    }
    w.key("severity_label")
        .string(SEVERITY_LABELS[severity as usize & 7]);
}

/// `{"SD-ID": {"PARAM": "value"}}`. RFC 5424 forbids a repeated SD-ID but allows repeated
/// PARAM-NAMEs: repeated ids are merged, and a repeated param becomes an array of its values
/// (in the order sent), so nothing is lost and the JSON has no duplicate keys. Grouping sorts
/// rather than compares pairs: one 256 KiB line can carry tens of thousands of params.
fn write_structured_data(w: &mut JsonWriter, sd: &[SdElement]) {
    let mut ids: Vec<&str> = sd.iter().map(|e| e.id.as_ref()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut params: Vec<(&str, &str, &str)> = sd
        .iter()
        .flat_map(|e| {
            e.params
                .iter()
                .map(move |(n, v)| (e.id.as_ref(), n.as_ref(), v.as_ref()))
        })
        .collect();
    // Stable: the values of a repeated param keep their order.
    params.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut rest = params.as_slice();
    w.begin_object();
    for id in ids {
        w.key(id).begin_object();
        while let Some(&(pid, name, value)) = rest.first() {
            if pid != id {
                break;
            }
            let same = rest.iter().take_while(|p| p.0 == id && p.1 == name).count();
            w.key(name);
            if same == 1 {
                w.string(value);
            } else {
                w.begin_array();
                for p in &rest[..same] {
                    w.string(p.2);
                }
                w.end_array();
            }
            rest = &rest[same..];
        }
        w.end_object();
    }
    w.end_object();
}

fn write_tags<const N: usize>(w: &mut JsonWriter, tags: [Option<&str>; N]) {
    if tags.iter().all(Option::is_none) {
        return;
    }
    w.key("tags").begin_array();
    for tag in tags.into_iter().flatten() {
        w.string(tag);
    }
    w.end_array();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProtocolName;
    use serde_json::{json, Value};

    fn listener(edit: impl FnOnce(&mut ListenerConfig)) -> Shaper {
        let mut config =
            ListenerConfig::new(ProtocolName::Syslog, "127.0.0.1:5514".parse().unwrap());
        edit(&mut config);
        Shaper::new(&config).unwrap()
    }

    /// 2026-11-25T04:00:00Z, the receive time used throughout.
    const NOW: (i64, u32) = (1_795_579_200, 500_000_000);

    fn shape(shaper: &Shaper, line: &str) -> (Value, String) {
        let mut out = BytesMut::new();
        let shaped = shaper.shape(
            line.as_bytes(),
            false,
            "192.168.0.10",
            NOW,
            &mut out,
            &mut AppCache::default(),
        );
        let app = shaped.app.to_string();
        (
            serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out))),
            app,
        )
    }

    #[test]
    fn rfc3164_in_ecs_mode_matches_logstash() {
        // logstash-input-syslog's ECS spec line.
        let line = "<133>Mar 11 08:44:43 precision kernel: [765135.424096] mce: CPU0: Core temperature above threshold";
        let (v, app) = shape(&listener(|_| {}), line);
        assert_eq!(
            v,
            json!({
                "@timestamp": "2026-03-11T08:44:43.000Z",
                "@version": "1",
                "message": "[765135.424096] mce: CPU0: Core temperature above threshold",
                "host": {"hostname": "precision", "ip": "192.168.0.10"},
                "process": {"name": "kernel"},
                "log": {"syslog": {"priority": 133, "facility": {"code": 16, "name": "local0"}, "severity": {"code": 5, "name": "Notice"}}},
                "event": {"original": line},
                "service": {"type": "system"}
            })
        );
        assert_eq!(app, "kernel");
    }

    #[test]
    fn rfc3164_in_legacy_mode_matches_logstash() {
        let line = "<164>Oct 26 15:19:25 1.2.3.4 %ASA-4-106023: Deny udp src DRAC:10.1.2.3/43434";
        let (v, _) = shape(
            &listener(|l| l.ecs_compatibility = EcsCompatibility::Disabled),
            line,
        );
        assert_eq!(
            v,
            json!({
                "@timestamp": "2026-10-26T15:19:25.000Z",
                "@version": "1",
                "message": "Deny udp src DRAC:10.1.2.3/43434",
                "host": "192.168.0.10",
                "priority": 164, "severity": 4, "facility": 20,
                "facility_label": "local4", "severity_label": "Warning",
                "timestamp": "Oct 26 15:19:25",
                "logsource": "1.2.3.4",
                "program": "%ASA-4-106023"
            })
        );
    }

    #[test]
    fn legacy_mode_names_iso_stamps_as_logstash_does() {
        let line = "<13>2024-05-01T12:00:00.123456+02:00 relay app: forwarded";
        let (v, _) = shape(
            &listener(|l| l.ecs_compatibility = EcsCompatibility::Disabled),
            line,
        );
        assert_eq!(v["timestamp"], "2024-05-01T12:00:00.123456+02:00");
        assert_eq!(v["timestamp8601"], "2024-05-01T12:00:00.123456+02:00");
        assert_eq!(v["@timestamp"], "2024-05-01T10:00:00.123456Z");
        assert_eq!(v["logsource"], "relay");
    }

    #[test]
    fn dockers_default_format_has_no_hostname() {
        let (v, app) = shape(
            &listener(|_| {}),
            "<30>Nov 25 03:35:24 14223bda5336[5388]: hello 1",
        );
        assert_eq!(v["process"], json!({"name": "14223bda5336", "pid": 5388}));
        assert_eq!(v["host"], json!({"ip": "192.168.0.10"}));
        assert_eq!(v["message"], "hello 1");
        assert_eq!(v["@timestamp"], "2026-11-25T03:35:24.000Z");
        assert_eq!(
            v["log"]["syslog"]["facility"],
            json!({"code": 3, "name": "system"})
        );
        assert_eq!(app, "14223bda5336");
    }

    #[test]
    fn rfc5424_keeps_everything() {
        let line = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \u{feff}An application event log entry...";
        let (v, app) = shape(&listener(|_| {}), line);
        assert_eq!(v["@timestamp"], "2003-10-11T22:14:15.003Z");
        assert_eq!(v["message"], "An application event log entry...");
        assert_eq!(v["host"]["hostname"], "mymachine.example.com");
        assert_eq!(v["process"], json!({"name": "evntslog"}));
        assert_eq!(
            v["log"]["syslog"],
            json!({
                "priority": 165,
                "facility": {"code": 20, "name": "local4"},
                "severity": {"code": 5, "name": "Notice"},
                "version": 1,
                "msgid": "ID47",
                "structured_data": {
                    "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
                    "examplePriority@32473": {"class": "high"}
                }
            })
        );
        assert_eq!(app, "evntslog");
    }

    #[test]
    fn docker_rfc5424micro_with_offset_and_non_numeric_procid() {
        let line = "<27>1 2024-05-01T12:00:00.123456+02:00 dockerhost web/3f2a1b4c5d6e worker-7 web/3f2a1b4c5d6e - oops";
        let (v, app) = shape(&listener(|_| {}), line);
        assert_eq!(v["@timestamp"], "2024-05-01T10:00:00.123456Z");
        assert_eq!(v["log"]["syslog"]["procid"], "worker-7");
        assert_eq!(
            v["log"]["syslog"]["severity"],
            json!({"code": 3, "name": "Error"})
        );
        assert!(v.get("process").unwrap().get("pid").is_none());
        assert_eq!(app, "web/3f2a1b4c5d6e");
    }

    #[test]
    fn nil_timestamp_and_fields_use_the_receive_time() {
        let (v, app) = shape(&listener(|_| {}), "<13>1 - - - - - - just text");
        assert_eq!(v["@timestamp"], "2026-11-25T04:00:00.500Z");
        assert_eq!(v["host"], json!({"ip": "192.168.0.10"}));
        assert!(v.get("process").is_none());
        assert_eq!(v["message"], "just text");
        assert_eq!(app, "unknown");
    }

    #[test]
    fn a_line_that_is_not_syslog_is_kept_and_tagged() {
        let (v, app) = shape(&listener(|_| {}), "hello there, no PRI");
        assert_eq!(v["message"], "hello there, no PRI");
        assert_eq!(v["tags"], json!([PARSE_FAILURE_TAG]));
        assert_eq!(v["log"]["syslog"]["priority"], 13);
        assert_eq!(v["log"]["syslog"]["facility"]["name"], "user-level");
        assert_eq!(v["log"]["syslog"]["severity"]["name"], "Notice");
        assert_eq!(v["@timestamp"], "2026-11-25T04:00:00.500Z");
        assert_eq!(app, "unknown");
        let (legacy, _) = shape(
            &listener(|l| l.ecs_compatibility = EcsCompatibility::Disabled),
            "junk",
        );
        assert_eq!(legacy["priority"], 13);
        assert_eq!(legacy["facility_label"], "user-level");
        assert_eq!(legacy["tags"], json!([PARSE_FAILURE_TAG]));
    }

    #[test]
    fn non_utf8_bytes_are_kept_lossily() {
        let shaper = listener(|_| {});
        let mut out = BytesMut::new();
        let line = b"<13>Nov 25 04:45:01 host app: caf\xe9 \xff";
        shaper.shape(
            line,
            false,
            "10.0.0.1",
            NOW,
            &mut out,
            &mut AppCache::default(),
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["message"], "caf\u{fffd} \u{fffd}");
    }

    #[test]
    fn rfc3164_times_take_the_listener_zone_and_a_sensible_year() {
        let paris = listener(|l| l.timezone = "Europe/Paris".into());
        let (v, _) = shape(&paris, "<13>Jul  4 12:00:00 host app: summer");
        assert_eq!(v["@timestamp"], "2026-07-04T10:00:00.000Z");
        // A December stamp seen in January belongs to last year, and vice versa.
        let shaper = listener(|_| {});
        let mut out = BytesMut::new();
        let january = (1_767_225_600 + 3600, 0); // 2026-01-01T01:00:00Z
        shaper.shape(
            b"<13>Dec 31 23:59:00 host app: late",
            false,
            "x",
            january,
            &mut out,
            &mut AppCache::default(),
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["@timestamp"], "2025-12-31T23:59:00.000Z");
    }

    #[test]
    fn impossible_dates_fall_back_and_are_tagged() {
        // 2026 is not a leap year.
        let (v, _) = shape(&listener(|_| {}), "<13>Feb 29 12:00:00 host app: never");
        assert_eq!(v["@timestamp"], "2026-11-25T04:00:00.500Z");
        assert_eq!(v["tags"], json!([DATE_FAILURE_TAG]));
    }

    #[test]
    fn repeated_sd_params_become_arrays() {
        let (v, _) = shape(
            &listener(|_| {}),
            "<13>1 - - - - - [a@1 x=\"1\" x=\"2\" y=\"q\\\"uote\"][a@1 x=\"3\"] m",
        );
        assert_eq!(
            v["log"]["syslog"]["structured_data"],
            json!({"a@1": {"x": ["1", "2", "3"], "y": "q\"uote"}})
        );
    }

    #[test]
    fn thousands_of_sd_params_and_elements_shape_quickly() {
        // Pairwise grouping would make this line cost seconds of CPU; sorting keeps it linear-ish.
        let params: String = (0..30_000)
            .map(|i| format!(" p{i}=\"{}\"", i % 7))
            .collect();
        let elements: String = (0..20_000).map(|i| format!("[e{i} x=\"{i}\"]")).collect();
        let line =
            format!("<13>1 - - - - - [big@1{params}][dup@1 k=\"a\"]{elements}[dup@1 k=\"b\"] m");
        let started = std::time::Instant::now();
        let (v, _) = shape(&listener(|_| {}), &line);
        let sd = &v["log"]["syslog"]["structured_data"];
        assert_eq!(sd["big@1"].as_object().unwrap().len(), 30_000);
        assert_eq!(sd["e19999"]["x"], "19999");
        assert_eq!(sd["dup@1"]["k"], json!(["a", "b"]));
        // Generous for a debug build on a busy machine; the quadratic version took minutes.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn elements_without_params_are_kept() {
        let (v, _) = shape(
            &listener(|_| {}),
            "<13>1 - - - - - [empty@1][x@1 a=\"1\"] m",
        );
        assert_eq!(
            v["log"]["syslog"]["structured_data"],
            json!({"empty@1": {}, "x@1": {"a": "1"}})
        );
    }

    #[test]
    fn original_can_be_left_out() {
        let (v, _) = shape(
            &listener(|l| l.keep_original = false),
            "<13>Nov 25 04:45:01 host app: x",
        );
        assert!(v.get("event").is_none());
        assert_eq!(v["service"]["type"], "system");
    }
}
