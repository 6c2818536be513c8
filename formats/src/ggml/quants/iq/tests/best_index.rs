//! The threshold form of `best_index_int8` against a transcription of the C binary search.

use crate::ggml::quants::iq::nonlinear::{best_index, level};
use crate::ggml::quants::iq::tables::KVALUES_IQ4NL;

/// `best_index_int8(16, kvalues_iq4nl, x)`, transcribed from `ggml-quants.c`.
fn reference(x: f32) -> u8 {
    let val = |i: usize| f32::from(KVALUES_IQ4NL[i]);
    if x <= val(0) {
        return 0;
    }
    if x >= val(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0, 15);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < val(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - val(mu - 1) < val(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

fn assert_same(x: f32) {
    let expected = reference(x);
    assert_eq!(
        best_index(x),
        expected,
        "best_index({x:e}) (bits {:#x})",
        x.to_bits()
    );
    let q = f32::from(KVALUES_IQ4NL[expected as usize]);
    assert_eq!(level(x).to_bits(), q.to_bits(), "level({x:e})");
}

/// Every float within 4096 ulps of each level and of each midpoint (where the choice between
/// two levels switches), a sweep over all bit patterns, and the special values.
#[test]
fn best_index_matches_the_c_search() {
    let mut centres: Vec<f32> = KVALUES_IQ4NL.iter().map(|&v| f32::from(v)).collect();
    centres.extend(
        KVALUES_IQ4NL
            .windows(2)
            .map(|p| (f32::from(p[0]) + f32::from(p[1])) * 0.5),
    );
    for c in centres {
        for delta in -4096i32..=4096 {
            assert_same(f32::from_bits(c.to_bits().wrapping_add_signed(delta)));
        }
    }
    let mut bits = 0u32;
    loop {
        assert_same(f32::from_bits(bits));
        match bits.checked_add(65_521) {
            Some(b) => bits = b,
            None => break,
        }
    }
    for x in [
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
    ] {
        assert_same(x);
    }
    assert_eq!(best_index(f32::NAN), reference(f32::NAN));
    assert_eq!(level(f32::NAN), 113.0);
}
