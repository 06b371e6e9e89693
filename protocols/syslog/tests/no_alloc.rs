//! The parser's hot path: a message without SD and with valid UTF-8 must not
//! touch the allocator. A counting global allocator (this test binary only) checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use logport_syslog::parse;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_of(frame: &[u8]) -> usize {
    let before = ALLOCS.with(Cell::get);
    let m = parse(frame).expect("parses");
    std::hint::black_box(&m);
    drop(m);
    ALLOCS.with(Cell::get) - before
}

#[test]
fn no_allocation_without_sd_and_with_utf8() {
    for frame in [
        &b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed"[..],
        b"<30>1 2024-05-01T12:00:00.123456+02:00 dockerhost 3f2a1b4c5d6e 1234 3f2a1b4c5d6e - hello world",
        b"<14>1 - - - - - -",
        b"<13>Nov 25 04:45:01 myhost root: hello",
        b"<30>Nov 25 03:35:24 14223bda5336[5388]: hello 1",
        b"<164>Oct 26 15:19:25 1.2.3.4 %ASA-4-106023: Deny udp src DRAC:10.1.2.3/43434",
        b"<30>2024-05-01T12:00:00.123456+02:00 web1 nginx[42]: GET / \xC3\xA9",
    ] {
        assert_eq!(allocations_of(frame), 0, "{}", String::from_utf8_lossy(frame));
    }
}

#[test]
fn the_counter_does_count() {
    // SD and invalid UTF-8 do allocate: proves the counter above can see allocations.
    assert!(allocations_of(b"<14>1 - - - - - [a b=\"c\"] x") > 0);
    assert!(allocations_of(b"<13>Nov 25 04:45:01 h\xFF t: m") > 0);
}
