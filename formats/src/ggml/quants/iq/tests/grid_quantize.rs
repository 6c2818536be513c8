//! Quantization of the grid IQ types (IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M)
//! against llama.cpp's `ggml_quantize_chunk`, byte for byte, and the neighbour maps against
//! the C's construction.
//!
//! The oracle spends seconds building its neighbour maps on every call for the IQ2 and IQ1
//! types, so each test batches all its rows of one length into one call per importance
//! setting.

use crate::ggml::quants::helpers::oracle_check::{assert_matches, extreme_rows, sparse_imatrix};
use crate::ggml::quants::iq::neighbours::{self, reference, GridMap};
use crate::ggml::{requires_imatrix, GgmlType};
use crate::oracle;

/// Rows that stress the degenerate paths, each `n` long: all zero, constant of either sign,
/// a single spike in zeros, a spike in small noise, tiny values (around and below the types'
/// all-zero thresholds), subnormals, one non-zero value per 8, equal magnitudes of both signs,
/// and values of one group repeated (ties in the sort of IQ1).
fn adversarial_rows(n: usize) -> Vec<f32> {
    let mut rng = oracle::Rng::new(99);
    let mut v = Vec::new();
    v.extend(std::iter::repeat_n(0.0f32, n));
    v.extend(std::iter::repeat_n(0.37f32, n));
    v.extend(std::iter::repeat_n(-2.0f32, n));
    v.extend((0..n).map(|j| if j == 77 { 5.0 } else { 0.0 }));
    v.extend((0..n).map(|j| if j == 3 { -40.0 } else { rng.normal() * 1e-3 }));
    v.extend((0..n).map(|_| rng.normal() * 1e-9));
    v.extend((0..n).map(|j| {
        if (j / 16) % 2 == 0 {
            rng.normal() * 1e-13
        } else {
            rng.normal()
        }
    }));
    v.extend((0..n).map(|j| f32::from_bits(1 + (j as u32 * 7919) % 100_000)));
    v.extend((0..n).map(|j| if j % 8 == 3 { 1.5 } else { 0.0 }));
    v.extend((0..n).map(|j| if j % 3 == 0 { 0.5 } else { -0.5 }));
    v.extend((0..n).map(|j| [0.1f32, -0.1, 0.3, 0.1, 0.0, -0.3, 0.1, 0.2][j % 8]));
    v.extend((0..n).map(|j| ((j % 5) as f32 - 2.0) * 0.25));
    v
}

/// The rows one test quantizes at length `n`: `test_rows` of three seeds, the adversarial
/// rows and the helpers' extreme rows.
fn rows(n: usize) -> Vec<f32> {
    let per_seed = if n >= 4096 { 8 } else { 16 };
    let mut v = Vec::new();
    for seed in [1, 2, 3] {
        v.extend(oracle::test_rows(seed, per_seed, n));
    }
    v.extend(adversarial_rows(n));
    v.extend(extreme_rows(n));
    v
}

/// Our bytes equal llama.cpp's for rows of 256, 512 and 4096, with `test_imatrix`, with an
/// imatrix holding zeros, and without one where ggml allows it.
fn check_type(ty: GgmlType) {
    for (seed, n) in [(1u64, 256usize), (2, 512), (3, 4096)] {
        let src = rows(n);
        let im = oracle::test_imatrix(seed, n);
        assert_matches(ty, n, &src, Some(&im));
        if n == 512 {
            assert_matches(ty, n, &src, Some(&sparse_imatrix(seed, n)));
        }
        if !requires_imatrix(ty) {
            assert_matches(ty, n, &src, None);
        }
    }
}

#[test]
fn iq3_xxs_matches_llama_cpp() {
    check_type(GgmlType::IQ3_XXS);
}

#[test]
fn iq3_s_matches_llama_cpp() {
    check_type(GgmlType::IQ3_S);
}

#[test]
fn iq2_xxs_matches_llama_cpp() {
    check_type(GgmlType::IQ2_XXS);
}

#[test]
fn iq2_xs_matches_llama_cpp() {
    check_type(GgmlType::IQ2_XS);
}

#[test]
fn iq2_s_matches_llama_cpp() {
    check_type(GgmlType::IQ2_S);
}

#[test]
fn iq1_s_matches_llama_cpp() {
    check_type(GgmlType::IQ1_S);
}

#[test]
fn iq1_m_matches_llama_cpp() {
    check_type(GgmlType::IQ1_M);
}

/// Every reachable lattice point's neighbour list equals the C's naive construction.
fn check_map<const D: usize>(m: &GridMap<D>, bits: u32, reach: usize, nwant: usize) {
    let size = 1usize << (bits as usize * D);
    for u in 0..size {
        let fields = (0..D).map(|k| (u >> (bits as usize * k)) & ((1 << bits) - 1));
        if fields.clone().any(|l| l > reach) {
            continue;
        }
        match m.lookup(u) {
            Ok(g) => assert_eq!(
                m.grid_index(&fields.map(|l| l as i8).collect::<Vec<_>>()),
                g
            ),
            Err(list) => assert_eq!(list.ids, reference::neighbours(m, u, nwant), "u = {u}"),
        }
    }
}

#[test]
fn neighbour_maps_match_the_c_construction() {
    check_map(neighbours::iq3xxs(), 3, 7, 2);
    check_map(neighbours::iq3s(), 3, 7, 3);
    check_map(neighbours::iq2xxs(), 2, 2, 2);
    check_map(neighbours::iq2xs(), 2, 2, 2);
    check_map(neighbours::iq2s(), 2, 2, 1);
    check_map(neighbours::iq1(), 2, 2, 3);
}

/// The level tables derived from the dequantization grids equal the `kgrid_*` arrays of the
/// pinned `ggml-quants.c`, when its source is in the build cache.
#[test]
fn derived_level_tables_match_ggml_quants_c() {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let cache = std::env::var_os("QFORGE_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(home).join(".cache/qforge"));
    let path = cache.join("llama_cpp_python-0.3.36/vendor/llama.cpp/ggml/src/ggml-quants.c");
    let Ok(c) = std::fs::read_to_string(path) else {
        return;
    };
    let table = |name: &str| -> Vec<u32> {
        let start = c.find(&format!("uint16_t {name}[")).expect(name);
        let body = &c[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
        body.split(',')
            .filter_map(|t| t.trim().parse().ok())
            .collect()
    };
    fn packed<const D: usize>(m: &GridMap<D>, bits: u32, n: usize) -> Vec<u32> {
        (0..n as u16)
            .map(|g| {
                m.levels(g)
                    .iter()
                    .enumerate()
                    .fold(0u32, |u, (i, &l)| u | (l as u32) << (bits as usize * i))
            })
            .collect()
    }
    assert_eq!(
        packed(neighbours::iq2xxs(), 2, 256),
        table("kgrid_2bit_256")
    );
    assert_eq!(packed(neighbours::iq2xs(), 2, 512), table("kgrid_2bit_512"));
    assert_eq!(
        packed(neighbours::iq2s(), 2, 1024),
        table("kgrid_2bit_1024")
    );
    assert_eq!(packed(neighbours::iq1(), 2, 2048), table("kgrid_1bit_2048"));
    assert_eq!(packed(neighbours::iq3xxs(), 3, 256), table("kgrid_256"));
    assert_eq!(packed(neighbours::iq3s(), 3, 512), table("kgrid_512"));
}

/// NaN, infinities, huge values and importance vectors with zeros, huge values, NaN or
/// infinity go through every grid quantizer without a panic (llama.cpp aborts or reads out of
/// bounds on some of them, so there are no bytes to compare).
#[test]
fn grid_types_handle_non_finite_and_huge_input() {
    use crate::ggml::quants::helpers::oracle_check::{
        adversarial_imatrix, adversarial_rows, assert_non_finite_input_is_handled,
    };
    for ty in GRID_TYPES {
        assert_non_finite_input_is_handled(ty, 256);
        let q = crate::ggml::codec(ty)
            .and_then(|c| c.quantize)
            .expect("quantizer");
        for seed in 0..3 {
            let src = adversarial_rows(seed, 4, 512, true);
            let mut out = vec![0u8; src.len() / ty.block_size() * ty.type_size()];
            for non_finite in [false, true] {
                let im = adversarial_imatrix(seed, 512, non_finite);
                q(&src, &mut out, 512, Some(&im));
            }
            q(&src, &mut out, 512, None);
        }
    }
}

/// The grid types.
const GRID_TYPES: [GgmlType; 7] = [
    GgmlType::IQ3_XXS,
    GgmlType::IQ3_S,
    GgmlType::IQ2_XXS,
    GgmlType::IQ2_XS,
    GgmlType::IQ2_S,
    GgmlType::IQ1_S,
    GgmlType::IQ1_M,
];

/// The code compiled for AVX2 (which the oracle comparisons run on CPUs that have it) and the
/// baseline code give the same bytes.
#[test]
fn baseline_and_avx2_code_agree() {
    use crate::ggml::quants::iq::search::GENERIC_ONLY;
    let n = 512;
    let mut src = rows(n);
    src.extend(crate::ggml::quants::helpers::oracle_check::adversarial_rows(5, 8, n, false));
    let im = oracle::test_imatrix(5, n);
    let sparse = sparse_imatrix(5, n);
    for ty in GRID_TYPES {
        let q = crate::ggml::codec(ty)
            .and_then(|c| c.quantize)
            .expect("quantizer");
        for imatrix in [Some(&im[..]), Some(&sparse[..]), None] {
            let run = |generic: bool| {
                GENERIC_ONLY.with(|g| g.set(generic));
                let mut out = vec![0u8; src.len() / ty.block_size() * ty.type_size()];
                q(&src, &mut out, n, imatrix);
                GENERIC_ONLY.with(|g| g.set(false));
                out
            };
            let (simd, generic) = (run(false), run(true));
            if let Some(i) = simd.iter().zip(&generic).position(|(a, b)| a != b) {
                panic!("{ty}: byte {i} (block {}) differs", i / ty.type_size());
            }
        }
    }
}
