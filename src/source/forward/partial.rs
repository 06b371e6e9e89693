//! Re-joining the lines Docker splits. Docker's log copier cuts a line at 16KiB and its fluentd
//! driver sends each piece as its own record with `partial_message: "true"`, `partial_id`,
//! `partial_ordinal` and `partial_last`. Logstash's fluent codec keeps the pieces as separate
//! events, so joining is opt-in (`[listener.forward] join_partials`). Joined, the event is the
//! first piece's record with the pieces' `log` concatenated and the `partial_*` keys removed
//! (what fluent-plugin-concat's `use_partial_metadata` does).
//!
//! A join is bounded: at most `max_bytes` of `log` (more is emitted as it stands and a new join
//! starts), at most `max_wait` between its first piece and its last (then the pieces held are
//! emitted joined as far as they go), and at most `MAX_OPEN` joins per connection (Docker keeps
//! one per stream, so two).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use logport_forward::rmpv::Value;
use logport_forward::{value, EventTime};

/// Joins open at once on one connection; Docker has one per container stream.
const MAX_OPEN: usize = 16;

const KEYS: [&str; 4] = [
    "partial_message",
    "partial_id",
    "partial_ordinal",
    "partial_last",
];

/// Why a join ended, the `outcome` label of `logport_forward_partial_joins_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The last piece arrived.
    Complete,
    /// `max_wait` passed (or the connection ended) before the last piece.
    TimedOut,
    /// `max_bytes` reached, or too many joins open.
    TooLarge,
}

impl Outcome {
    /// In the order of their discriminants (the index of their counter).
    pub const ALL: [Outcome; 3] = [Outcome::Complete, Outcome::TimedOut, Outcome::TooLarge];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::TimedOut => "timed_out",
            Outcome::TooLarge => "too_large",
        }
    }
}

/// An event ready to shape: a whole line, or as much of it as the bounds allowed.
#[derive(Debug)]
pub struct Joined {
    pub tag: String,
    pub time: EventTime,
    pub record: Value,
    pub outcome: Outcome,
    /// The joined `log`'s length, for the budget estimate.
    pub bytes: usize,
}

struct Open {
    tag: String,
    time: EventTime,
    /// The first piece's record without `log` and the `partial_*` keys.
    record: Vec<(Value, Value)>,
    log: Vec<u8>,
    started: Instant,
}

pub struct Joiner {
    max_bytes: usize,
    max_wait: Duration,
    open: HashMap<Vec<u8>, Open>,
}

impl Joiner {
    pub fn new(max_bytes: usize, max_wait: Duration) -> Joiner {
        Joiner {
            max_bytes,
            max_wait,
            open: HashMap::new(),
        }
    }

    /// `None`: not a piece of a split line, shape the record as it is. Otherwise the events
    /// this piece made ready, oldest first (none while its line is incomplete).
    pub fn feed(
        &mut self,
        tag: &str,
        time: EventTime,
        record: &Value,
        now: Instant,
    ) -> Option<Vec<Joined>> {
        let flag = |key| value::get(record, key).and_then(value::text_of);
        if flag("partial_message").as_deref() != Some("true") {
            return None;
        }
        let id = value::get(record, "partial_id").and_then(value::bytes_of)?;
        let last = flag("partial_last").as_deref() == Some("true");
        let log = value::get(record, "log")
            .and_then(value::bytes_of)
            .unwrap_or_default();
        let mut ready = Vec::new();
        if let Some(open) = self.open.get(id) {
            if open.log.len() + log.len() > self.max_bytes {
                let open = self.open.remove(id).expect("just found");
                ready.push(finish(open, Outcome::TooLarge));
            }
        } else if self.open.len() >= MAX_OPEN {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, o)| o.started)
                .map(|(k, _)| k.clone())
                .expect("MAX_OPEN > 0");
            let open = self.open.remove(&oldest).expect("just found");
            ready.push(finish(open, Outcome::TooLarge));
        }
        let open = self.open.entry(id.to_vec()).or_insert_with(|| Open {
            tag: tag.to_owned(),
            time,
            record: match record {
                Value::Map(pairs) => pairs
                    .iter()
                    .filter(|(k, _)| {
                        value::text_of(k).is_none_or(|k| k != "log" && !KEYS.contains(&&*k))
                    })
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            },
            log: Vec::new(),
            started: now,
        });
        open.log.extend_from_slice(log);
        if last {
            let open = self.open.remove(id).expect("just inserted");
            ready.push(finish(open, Outcome::Complete));
        }
        Some(ready)
    }

    /// Joins whose first piece came `max_wait` ago or more, as far as they go.
    pub fn expired(&mut self, now: Instant) -> Vec<Joined> {
        let due: Vec<Vec<u8>> = self
            .open
            .iter()
            .filter(|(_, o)| now.duration_since(o.started) >= self.max_wait)
            .map(|(k, _)| k.clone())
            .collect();
        self.take(due)
    }

    /// Every open join (the connection is ending: nothing more will come for them).
    pub fn take_all(&mut self) -> Vec<Joined> {
        let all = self.open.keys().cloned().collect();
        self.take(all)
    }

    fn take(&mut self, ids: Vec<Vec<u8>>) -> Vec<Joined> {
        let mut out: Vec<Open> = ids.iter().filter_map(|id| self.open.remove(id)).collect();
        out.sort_by_key(|o| o.started);
        out.into_iter()
            .map(|o| finish(o, Outcome::TimedOut))
            .collect()
    }

    /// When the oldest open join times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|o| o.started + self.max_wait).min()
    }
}

fn finish(open: Open, outcome: Outcome) -> Joined {
    let mut record = open.record;
    let bytes = open.log.len();
    let log = match String::from_utf8(open.log) {
        Ok(text) => Value::from(text),
        Err(e) => Value::Binary(e.into_bytes()),
    };
    record.push((Value::from("log"), log));
    Joined {
        tag: open.tag,
        time: open.time,
        record: Value::Map(record),
        outcome,
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as Docker's fluentd driver writes a piece of a split line.
    fn piece(id: &str, ordinal: u32, last: bool, log: &str) -> Value {
        Value::Map(vec![
            ("container_id".into(), "3f2a".into()),
            ("container_name".into(), "/web".into()),
            ("source".into(), "stdout".into()),
            ("log".into(), log.into()),
            ("partial_message".into(), "true".into()),
            ("partial_id".into(), id.into()),
            ("partial_ordinal".into(), ordinal.to_string().into()),
            ("partial_last".into(), last.to_string().into()),
        ])
    }

    fn text(joined: &Joined, key: &str) -> Option<String> {
        value::get(&joined.record, key)
            .and_then(value::text_of)
            .map(|t| t.into_owned())
    }

    const T0: EventTime = EventTime::new(1_700_000_000, 5);

    #[test]
    fn pieces_become_one_event_with_the_first_time_and_no_partial_keys() {
        let mut j = Joiner::new(1 << 20, Duration::from_secs(5));
        let now = Instant::now();
        let plain = Value::Map(vec![("log".into(), "short".into())]);
        assert!(j.feed("t", T0, &plain, now).is_none());
        assert!(j
            .feed("t", T0, &piece("a", 1, false, "xx"), now)
            .unwrap()
            .is_empty());
        // The other stream's line interleaves on the same connection.
        assert!(j
            .feed("t", T0, &piece("b", 1, false, "11"), now)
            .unwrap()
            .is_empty());
        let later = EventTime::new(1_700_000_001, 0);
        assert!(j
            .feed("t", later, &piece("a", 2, false, "yy"), now)
            .unwrap()
            .is_empty());
        let done = j.feed("t", later, &piece("a", 3, true, "z"), now).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].outcome, Outcome::Complete);
        assert_eq!(done[0].time, T0);
        assert_eq!(text(&done[0], "log").as_deref(), Some("xxyyz"));
        assert_eq!(text(&done[0], "container_name").as_deref(), Some("/web"));
        for key in KEYS {
            assert!(text(&done[0], key).is_none(), "{key} kept");
        }
        assert_eq!(j.next_deadline(), Some(now + Duration::from_secs(5)));
    }

    #[test]
    fn a_join_that_waits_too_long_is_emitted_as_far_as_it_goes() {
        let mut j = Joiner::new(1 << 20, Duration::from_millis(100));
        let now = Instant::now();
        j.feed("t", T0, &piece("a", 1, false, "xx"), now);
        assert!(j.expired(now + Duration::from_millis(99)).is_empty());
        let out = j.expired(now + Duration::from_millis(100));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::TimedOut);
        assert_eq!(text(&out[0], "log").as_deref(), Some("xx"));
        assert_eq!(j.next_deadline(), None);
        // The late last piece is then a line of its own.
        let late = j
            .feed(
                "t",
                T0,
                &piece("a", 2, true, "yy"),
                now + Duration::from_secs(1),
            )
            .unwrap();
        assert_eq!(text(&late[0], "log").as_deref(), Some("yy"));
    }

    #[test]
    fn joins_are_bounded_in_size_and_in_number() {
        let mut j = Joiner::new(4, Duration::from_secs(5));
        let now = Instant::now();
        assert!(j
            .feed("t", T0, &piece("a", 1, false, "xxx"), now)
            .unwrap()
            .is_empty());
        let out = j.feed("t", T0, &piece("a", 2, false, "yyy"), now).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, Outcome::TooLarge);
        assert_eq!(text(&out[0], "log").as_deref(), Some("xxx"));
        let out = j.feed("t", T0, &piece("a", 3, true, "z"), now).unwrap();
        assert_eq!(text(&out[0], "log").as_deref(), Some("yyyz"));

        let mut j = Joiner::new(1 << 20, Duration::from_secs(5));
        for i in 0..MAX_OPEN {
            let at = now + Duration::from_millis(i as u64);
            assert!(j
                .feed("t", T0, &piece(&i.to_string(), 1, false, "p"), at)
                .unwrap()
                .is_empty());
        }
        let out = j.feed("t", T0, &piece("new", 1, false, "q"), now).unwrap();
        assert_eq!(out.len(), 1, "the oldest join makes room");
        assert_eq!(out[0].outcome, Outcome::TooLarge);
        assert_eq!(j.take_all().len(), MAX_OPEN);
    }
}
