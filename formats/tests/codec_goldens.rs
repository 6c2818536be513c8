//! qforge's codecs against bytes the pinned llama.cpp produced (fixtures/golden/codecs, made by
//! scripts/gen-codec-goldens.py with llama.cpp's own ggml_quantize_chunk and to_float). Unlike
//! the live oracle comparisons in the codec modules, these run without the oracle built.

use qforge_formats::ggml::{self, GgmlType};
use std::path::PathBuf;

const COLS: usize = 512;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden/codecs")
}

fn f32s(name: &str) -> Vec<f32> {
    let b = std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every golden file `TYPE[.imatrix].bin`, with its type and whether the imatrix was used.
fn goldens() -> Vec<(GgmlType, bool, String)> {
    let mut v: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".bin")?;
            let (ty, im) = match stem.strip_suffix(".imatrix") {
                Some(t) => (t, true),
                None => (stem, false),
            };
            Some((
                GgmlType::from_name(ty).unwrap_or_else(|| panic!("unknown type in {name}")),
                im,
                stem.to_string(),
            ))
        })
        .collect();
    v.sort_by(|a, b| a.2.cmp(&b.2));
    v
}

#[test]
fn quantization_equals_llama_cpp_bytes() {
    let input = f32s("input.f32");
    let imatrix = f32s("imatrix.f32");
    let mut checked = 0;
    for (ty, with_im, stem) in goldens() {
        let produces = ggml::codec(ty).is_some_and(|c| c.quantize.is_some());
        if !produces {
            continue;
        }
        let expected = std::fs::read(dir().join(format!("{stem}.bin"))).unwrap();
        let mut ours = vec![0u8; expected.len()];
        ggml::quantize(
            ty,
            &input,
            &mut ours,
            COLS,
            with_im.then_some(imatrix.as_slice()),
        )
        .unwrap();
        let first = ours.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            first.is_none(),
            "{stem}: bytes differ from llama.cpp's first at byte {first:?}"
        );
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} quantization goldens checked");
}

#[test]
fn dequantization_equals_llama_cpp_values() {
    let mut checked = 0;
    for (ty, _, stem) in goldens() {
        let bytes = std::fs::read(dir().join(format!("{stem}.bin"))).unwrap();
        let expected = f32s(&format!("{stem}.deq.f32"));
        let mut ours = vec![0f32; expected.len()];
        ggml::dequantize(ty, &bytes, &mut ours).unwrap();
        assert_eq!(
            bits(&ours),
            bits(&expected),
            "{stem}: dequantized values differ from llama.cpp's"
        );
        checked += 1;
    }
    assert_eq!(checked, 47, "expected every golden to be checked");
}
