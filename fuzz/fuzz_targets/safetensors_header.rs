//! Fuzzes `safetensors::parse_header` on arbitrary bytes taken as a whole file (8-byte header
//! length, JSON header, data): it must return `Err` or a header whose tensors tile the data
//! section exactly, each as long as its shape and dtype say, and never panic. When the declared
//! length does not fit, the rest of the input is parsed as the header with the declared length
//! as the data size, so that inputs which are not files still reach the JSON validation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qforge_formats::safetensors::{parse_header, MAX_HEADER_SIZE};

fuzz_target!(|data: &[u8]| {
    let Some((prefix, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let n = u64::from_le_bytes(*prefix);
    let (json, data_len) = if n <= MAX_HEADER_SIZE && n <= rest.len() as u64 {
        (&rest[..n as usize], (rest.len() as u64) - n)
    } else {
        (rest, n)
    };
    let Ok(h) = parse_header(json, data_len) else {
        return;
    };
    // Tensors tile the data section exactly, each as long as its shape and dtype say.
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for t in h.tensors() {
        let (start, end) = t.data_offsets();
        assert!(
            start <= end && end <= data_len,
            "tensor '{}' at {start}..{end} of {data_len}",
            t.name()
        );
        let n = t.shape().iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        assert_eq!(
            n.and_then(|n| n.checked_mul(t.dtype().size())),
            Some(t.byte_len()),
            "{}",
            t.name()
        );
        if start < end {
            ranges.push((start, end));
        }
    }
    ranges.sort_unstable();
    let covered = ranges
        .iter()
        .try_fold(0u64, |at, &(s, e)| (s == at).then_some(e));
    assert_eq!(
        covered,
        Some(data_len),
        "tensors do not tile the data section"
    );
});
