//! Window and ack bookkeeping.

use logport_lumberjack::{Ack, Completed, Record, Version, WindowError, WindowId, WindowTracker};

fn ack(version: Version, seq: u32) -> Ack {
    Ack { version, seq }
}

/// Reads a window of events with the given seqs; returns the completion.
fn read(t: &mut WindowTracker, version: Version, seqs: &[u32]) -> Completed {
    assert_eq!(t.on_window(version, seqs.len() as u32), Ok(None));
    let mut done = None;
    for (i, &seq) in seqs.iter().enumerate() {
        let r = t.on_event(seq).unwrap();
        assert_eq!(r.is_some(), i + 1 == seqs.len());
        done = done.or(r);
    }
    done.unwrap()
}

#[test]
fn libbeat_numbers_from_1_in_every_window() {
    let mut t = WindowTracker::new(10_000);
    for round in 0..3 {
        let c = read(&mut t, Version::V2, &[1, 2, 3]);
        assert_eq!(
            (c.id, c.ack, c.events),
            (WindowId(round), ack(Version::V2, 3), 3)
        );
        t.commit(c.id).unwrap();
        assert_eq!(t.next_ack(), Some(ack(Version::V2, 3)));
        assert_eq!(t.next_ack(), None);
    }
}

#[test]
fn cumulative_numbering_acks_the_last_seq_not_the_count() {
    let mut t = WindowTracker::new(10_000);
    let a = read(&mut t, Version::V1, &[7, 8]);
    let b = read(&mut t, Version::V1, &[9, 10, 11]);
    assert_eq!((a.ack, b.ack), (ack(Version::V1, 8), ack(Version::V1, 11)));
    // Wrapping at 2^32 − 1 (jls) is just another last seq.
    let c = read(&mut t, Version::V1, &[u32::MAX, 0]);
    assert_eq!(c.ack.seq, 0);
}

#[test]
fn acks_leave_in_window_order_whatever_the_commit_order() {
    let mut t = WindowTracker::new(10);
    let a = read(&mut t, Version::V2, &[1, 2]);
    let b = read(&mut t, Version::V2, &[1, 2, 3]);
    assert_eq!(t.pending(), 2);
    t.commit(b.id).unwrap();
    assert_eq!(t.next_ack(), None, "window 2 must wait for window 1");
    t.commit(a.id).unwrap();
    assert_eq!(t.next_ack(), Some(ack(Version::V2, 2)));
    assert_eq!(t.next_ack(), Some(ack(Version::V2, 3)));
    assert_eq!(t.next_ack(), None);
    assert_eq!(t.commit(a.id), Err(WindowError::UnknownWindow { id: a.id }));
}

#[test]
fn acks_use_the_window_version() {
    let mut t = WindowTracker::new(10);
    let a = read(&mut t, Version::V1, &[5]);
    assert_eq!(a.ack.version, Version::V1);
    // jls with :json: `1W` then `1J`; a client switching to v2 for the next window.
    let b = read(&mut t, Version::V2, &[1]);
    assert_eq!(b.ack.version, Version::V2);
    let mut out = Vec::new();
    a.ack.encode(&mut out);
    b.ack.encode(&mut out);
    assert_eq!(out, b"1A\x00\x00\x00\x052A\x00\x00\x00\x01");
}

#[test]
fn v1_endless_window_completes_every_size_events() {
    // Old jls: `1W 3` once, then events forever.
    let mut t = WindowTracker::new(5000);
    assert_eq!(t.on_window(Version::V1, 3), Ok(None));
    let mut acks = Vec::new();
    for seq in 1..=10 {
        if let Some(c) = t.on_event(seq).unwrap() {
            assert_eq!(c.events, 3);
            t.commit(c.id).unwrap();
            acks.extend(std::iter::from_fn(|| t.next_ack()));
        }
    }
    assert_eq!(
        acks,
        [
            ack(Version::V1, 3),
            ack(Version::V1, 6),
            ack(Version::V1, 9)
        ]
    );
    assert_eq!(t.read_in_window(), 1);
    // A new W in the middle of the running window is refused...
    assert_eq!(
        t.on_window(Version::V1, 3),
        Err(WindowError::Incomplete { read: 1, size: 3 })
    );
}

#[test]
fn window_rules() {
    let mut t = WindowTracker::new(100);
    assert_eq!(t.on_event(1), Err(WindowError::NoWindow { seq: 1 }));
    assert_eq!(
        t.on_window(Version::V2, 101),
        Err(WindowError::TooLarge {
            size: 101,
            max: 100
        })
    );
    assert_eq!(
        t.on_window(Version::V2, 101).unwrap_err().to_string(),
        "lumberjack: window size 101 exceeds the maximum 100"
    );
    // Empty window: acked with seq 0 (Logstash), after earlier windows.
    let a = read(&mut t, Version::V2, &[1]);
    let empty = t.on_window(Version::V2, 0).unwrap().unwrap();
    assert_eq!((empty.ack, empty.events), (ack(Version::V2, 0), 0));
    assert_eq!(t.on_event(1), Err(WindowError::NoWindow { seq: 1 }));
    t.commit(empty.id).unwrap();
    assert_eq!(t.next_ack(), None);
    t.commit(a.id).unwrap();
    assert_eq!(t.next_ack(), Some(ack(Version::V2, 1)));
    assert_eq!(t.next_ack(), Some(ack(Version::V2, 0)));
}

#[test]
fn on_record_drives_the_tracker() {
    let mut t = WindowTracker::new(10);
    let w = Record::Window {
        version: Version::V2,
        size: 1,
    };
    let e = Record::Event {
        version: Version::V2,
        seq: 4,
        payload: logport_lumberjack::Payload::Json("{}".into()),
    };
    let a = Record::Ack {
        version: Version::V2,
        seq: 9,
    };
    assert_eq!(t.on_record(&w), Ok(None));
    assert_eq!(t.on_record(&a), Ok(None));
    assert_eq!(t.on_record(&e).unwrap().unwrap().ack, ack(Version::V2, 4));
}

#[test]
fn keepalive_is_v2_seq_0_while_the_client_waits() {
    let mut t = WindowTracker::new(10);
    assert_eq!(t.keepalive(), None, "idle connection");
    t.on_window(Version::V2, 3).unwrap();
    assert_eq!(t.keepalive(), Some(ack(Version::V2, 0)), "window announced");
    t.on_event(1).unwrap();
    assert_eq!(
        t.keepalive(),
        Some(ack(Version::V2, 0)),
        "window being read"
    );
    t.on_event(2).unwrap();
    let a = t.on_event(3).unwrap().unwrap();
    assert_eq!(t.keepalive(), Some(ack(Version::V2, 0)), "awaiting commit");
    // Pipelining: window 2 is read while window 1 waits; once window 1 is acked
    // the keep-alive still says 0, never 3 (libbeat would take 3 as a partial
    // ack of window 2).
    let b = read(&mut t, Version::V2, &[1, 2, 3, 4]);
    t.commit(a.id).unwrap();
    assert_eq!(t.next_ack(), Some(ack(Version::V2, 3)));
    assert_eq!(t.keepalive(), Some(ack(Version::V2, 0)));
    t.commit(b.id).unwrap();
    assert_eq!(t.next_ack(), Some(ack(Version::V2, 4)));
    assert!(!t.busy());
    assert_eq!(t.keepalive(), None, "everything acked");
}

#[test]
fn no_keepalive_on_v1() {
    let mut t = WindowTracker::new(10);
    t.on_window(Version::V1, 2).unwrap();
    t.on_event(1).unwrap();
    assert!(t.busy());
    assert_eq!(t.keepalive(), None);
}
