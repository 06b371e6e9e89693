//! Decompression bomb: a `C` frame of 1 GiB of zeros (about 1 MiB on the wire)
//! is refused once `max_inflated` is passed, without allocating the gigabyte.
//! A global allocator that tracks the peak of live bytes (this test binary
//! only) checks it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{BufMut, BytesMut};
use flate2::{Compress, Compression, FlushCompress};
use logport_lumberjack::{Decoder, ErrorKind, Limits};

struct Peak;

thread_local! {
    // Per thread, so that tests running in parallel do not count each other.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn track(grow: usize, shrink: usize) {
    let _ = LIVE.try_with(|l| {
        let live = (l.get() + grow).saturating_sub(shrink);
        l.set(live);
        let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    });
}

// realloc is forwarded, not the default alloc + copy + free, so that the peak
// is what the system allocator really holds (large blocks grow in place).
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size(), 0);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(0, layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size, layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

const MIB: usize = 1 << 20;

/// A zlib stream of `mib` MiB of zeros, built without compressing them all: one
/// MiB is deflated into byte-aligned, non-final blocks (sync flush) that only
/// refer back to zeros, so the blocks can be repeated; then an empty final block
/// and the Adler-32 of the zeros.
fn zeros_zlib(mib: usize) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(64 << 10);
    c.compress_vec(&vec![0u8; MIB], &mut block, FlushCompress::Sync)
        .unwrap();
    assert_eq!(c.total_in(), MIB as u64);
    let mut z = vec![0x78, 0xda];
    for _ in 0..mib {
        z.extend_from_slice(&block);
    }
    // BFINAL=1, BTYPE=01 (fixed Huffman), end-of-block.
    z.extend_from_slice(&[0x03, 0x00]);
    // Adler-32 of n zero bytes: a = 1, b = n mod 65521.
    let b = ((mib * MIB) % 65521) as u32;
    z.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    z
}

fn c_frame(zlib: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_slice(b"2C");
    buf.put_u32(zlib.len() as u32);
    buf.put_slice(zlib);
    buf
}

#[test]
fn bomb_stream_is_valid_zlib() {
    // 8 MiB of zeros inflate fully with a large enough cap; the zeros are then no
    // frame at all (version byte 0x00 at offset 0 of the inflated data).
    let mut buf = c_frame(&zeros_zlib(8));
    let mut dec = Decoder::new(Limits {
        max_inflated: 8 * MIB,
        ..Limits::default()
    });
    let e = dec.decode(&mut buf).unwrap_err();
    assert_eq!(
        (e.offset, e.inner_offset, e.kind),
        (0, Some(0), ErrorKind::UnknownVersion { byte: 0 })
    );
}

#[test]
fn one_gib_of_zeros_is_refused_at_the_cap() {
    let zlib = zeros_zlib(1024);
    assert!(zlib.len() < 2 * MIB, "{}", zlib.len());
    let mut buf = c_frame(&zlib);
    let wire_len = buf.len() as u64;
    let limits = Limits {
        max_payload: 4 * MIB,
        max_inflated: 16 * MIB,
        ..Limits::default()
    };
    let mut dec = Decoder::new(limits);
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let e = dec.decode(&mut buf).unwrap_err();
    let peak = PEAK.with(Cell::get) - before;
    assert_eq!(
        (e.offset, e.inner_offset, e.kind),
        (0, None, ErrorKind::InflatedTooLarge { max: 16 * MIB })
    );
    eprintln!("peak {peak} bytes while refusing the bomb");
    // The inflate buffer (cap + 1 byte) plus the inflater's own state (~40 KiB).
    assert!(peak <= 16 * MIB + (128 << 10), "peak {peak} bytes");
    // Inflation stopped at the cap: most of the frame was never read.
    assert!(
        dec.offset() < wire_len / 8,
        "{} of {wire_len}",
        dec.offset()
    );
}
