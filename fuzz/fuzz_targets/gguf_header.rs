//! Fuzzes `gguf::parse_header` on arbitrary bytes taken as a whole file: it must return `Err`
//! or a header whose every tensor lies inside the file, and never panic, hang or allocate
//! beyond the input's size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qforge_formats::gguf::parse_header;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    let Ok(h) = parse_header(data, len, Path::new("fuzz-input.gguf")) else {
        return;
    };
    assert!(h.alignment.is_power_of_two());
    assert!(h.data_offset <= len);
    let mut expected = 0u64;
    for t in &h.tensors {
        assert_eq!(t.offset, expected, "tensor offsets are contiguous");
        let end = h.data_offset + t.offset + t.n_bytes();
        assert!(
            end <= len,
            "tensor '{}' ends at {end}, past the input's {len} bytes",
            t.name
        );
        expected = t.offset + t.n_bytes().div_ceil(h.alignment) * h.alignment;
    }
});
