//! GELF payload decoding: plain JSON, zlib or gzip (magic-detected), under a
//! small decompression cap. Invariants: no panic; never more than the cap is
//! produced (a bomb fails with TooLarge instead); compress -> decompress
//! gives back the bytes; a decoded message re-encoded and decoded again is
//! the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logport_gelf::{compress, decode_payload, decompress, Encoding, Message};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match decompress(data, MAX) {
        Ok(json) => assert!(json.len() <= MAX, "inflated {} bytes", json.len()),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(msg) = decode_payload(data, MAX) {
        let again = Message::from_json(&msg.to_json()).expect("re-encoded message decodes");
        assert_eq!(again, msg);
    }

    // The fuzz input as the JSON a client compresses. Encoding and level come
    // from its length: setting up a compressor costs far more than decoding,
    // so one compression per input keeps the target fast.
    let enc = if data.len().is_multiple_of(2) {
        Encoding::Zlib
    } else {
        Encoding::Gzip
    };
    let packed = compress(data, enc, (data.len() / 2 % 10) as u32);
    let back = decompress(&packed, data.len().max(1)).expect("own compression inflates");
    assert_eq!(&back[..], data);
    if data.len() > 1 {
        // One byte short of the cap: must refuse, not truncate.
        assert!(decompress(&packed, data.len() - 1).is_err());
    }
});
