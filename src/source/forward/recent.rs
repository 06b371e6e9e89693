//! The acks of recently committed chunks. A client that does not get its ack in time (Docker's
//! fluentd driver waits ~10 s, and misses acks when its stdout and stderr writers share a
//! connection) reconnects and resends the chunk under the same id; remembering the ids lets the
//! listener ack that resend without committing the events a second time. Bounded in count and
//! age, so a resend after either bound is committed again (at-least-once, as before).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

pub struct RecentAcks {
    capacity: usize,
    max_age: Duration,
    set: HashSet<Vec<u8>>,
    order: VecDeque<(Instant, Vec<u8>)>,
}

impl RecentAcks {
    pub fn new(capacity: usize, max_age: Duration) -> RecentAcks {
        RecentAcks {
            capacity,
            max_age,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    pub fn contains(&mut self, ack: &[u8]) -> bool {
        self.expire(Instant::now());
        self.set.contains(ack)
    }

    pub fn insert(&mut self, ack: Vec<u8>) {
        let now = Instant::now();
        self.expire(now);
        if self.set.insert(ack.clone()) {
            self.order.push_back((now, ack));
        }
        while self.order.len() > self.capacity {
            if let Some((_, old)) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.max_age {
                break;
            }
            let (_, old) = self.order.pop_front().expect("front exists");
            self.set.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_are_recognised_within_the_bounds_only() {
        let mut r = RecentAcks::new(2, Duration::from_secs(600));
        r.insert(b"a".to_vec());
        r.insert(b"b".to_vec());
        assert!(r.contains(b"a") && r.contains(b"b") && !r.contains(b"c"));
        r.insert(b"c".to_vec());
        assert!(
            !r.contains(b"a"),
            "the oldest is forgotten past the capacity"
        );
        let mut r = RecentAcks::new(10, Duration::from_millis(20));
        r.insert(b"a".to_vec());
        std::thread::sleep(Duration::from_millis(30));
        assert!(!r.contains(b"a"), "forgotten past the age");
    }
}
