//! Llama 3 rope scaling recovered from the `rope_freqs` tensor the converter generated from
//! config.json's `rope_scaling` (`LlamaModel.generate_extra_tensors`).
//!
//! Each factor is 1 for short wavelengths, `factor` for long ones and
//! `1 / ((1 - s) / factor + s)` in between, with `s = (old_ctx / wavelen - low) / (high - low)`.
//! `s` is affine in `1 / wavelen`, so the in-between factors give `old_ctx / (high - low)` and
//! `low / (high - low)`; `old_ctx` itself is not recorded and is taken as 8192 (the converter's
//! default and Llama 3.1/3.2's value), which gives the same factors whatever it was.

use serde_json::{json, Value};

/// `original_max_position_embeddings` assumed when rebuilding.
pub const OLD_CTX: f64 = 8192.0;

/// The factors for these parameters (the converter's formula, in f32 steps).
pub fn llama3_factors(base: f64, dim: u64, factor: f64, low: f64, high: f64, old: f64) -> Vec<f32> {
    let low_wl = (old / low) as f32;
    let high_wl = (old / high) as f32;
    (0..dim)
        .step_by(2)
        .map(|i| {
            let freq = 1.0f32 / (base as f32).powf(i as f32 / dim as f32);
            let wl = (2.0 * std::f64::consts::PI) as f32 / freq;
            if wl < high_wl {
                1.0
            } else if wl > low_wl {
                factor as f32
            } else {
                let s = ((old as f32) / wl - low as f32) / ((high - low) as f32);
                1.0 / ((1.0 - s) / factor as f32 + s)
            }
        })
        .collect()
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs().max(y.abs()).max(1.0))
}

/// config.json's `rope_scaling` for rope base `base`, head size `dim` and the stored `freqs`,
/// or `None` when no Llama 3 parameters reproduce them.
pub fn llama3_scaling(base: f64, dim: u64, freqs: &[f32]) -> Option<Value> {
    let factor = freqs.iter().copied().fold(f32::MIN, f32::max) as f64;
    // NaN-safe: a NaN factor is refused as well.
    if factor.partial_cmp(&1.0) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let tol = 1e-6;
    let mut pts = Vec::new();
    for (k, &v) in freqs.iter().enumerate() {
        let v = v as f64;
        if v > 1.0 + tol && v < factor * (1.0 - tol) {
            let freq = 1.0 / base.powf((2 * k) as f64 / dim as f64);
            let x = freq / (2.0 * std::f64::consts::PI);
            let s = (1.0 / v - 1.0 / factor) / (1.0 - 1.0 / factor);
            pts.push((x, s));
        }
    }
    let mut candidates = vec![(1.0, 4.0)];
    if pts.len() >= 2 {
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        if sxx > 0.0 {
            let a = sxy / sxx;
            let b = my - a * mx;
            if a > 0.0 {
                let low = -b * OLD_CTX / a;
                let high = low + OLD_CTX / a;
                let round = |x: f64| (x * 1e4).round() / 1e4;
                candidates.insert(0, (low, high));
                candidates.insert(0, (round(low), round(high)));
            }
        }
    }
    let factor = crate::export::meta::f32_as_f64(factor as f32);
    candidates.into_iter().find_map(|(low, high)| {
        (low > 0.0
            && high > low
            && close(
                &llama3_factors(base, dim, factor, low, high, OLD_CTX),
                freqs,
            ))
        .then(|| {
            json!({
                "factor": factor,
                "high_freq_factor": high,
                "low_freq_factor": low,
                "original_max_position_embeddings": OLD_CTX as u64,
                "rope_type": "llama3",
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama31_and_32_parameters_come_back() {
        for (base, dim, factor, low, high) in [
            (500000.0, 128, 8.0, 1.0, 4.0),
            (500000.0, 64, 32.0, 1.0, 4.0),
            (500000.0, 128, 16.0, 2.0, 8.0),
        ] {
            let f = llama3_factors(base, dim, factor, low, high, OLD_CTX);
            let got = llama3_scaling(base, dim, &f).expect("recovered");
            assert_eq!(got["factor"].as_f64(), Some(factor));
            assert_eq!(got["low_freq_factor"].as_f64(), Some(low));
            assert_eq!(got["high_freq_factor"].as_f64(), Some(high));
        }
        assert!(llama3_scaling(500000.0, 64, &[1.0; 32]).is_none());
        assert!(llama3_scaling(500000.0, 4, &[3.0, 1.0]).is_none());
    }
}
