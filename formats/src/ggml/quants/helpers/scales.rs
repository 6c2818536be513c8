//! `make_qp_quants`: quantization of a super-block's non-negative scales.

use super::{nearest_int, GROUP_MAX_EPS};

/// Quantization of non-negative values (super-block scales) to `0..=nmax` with importance
/// weights and refinement (`make_qp_quants`).
///
/// Writes the levels into `l` (stored as the C stores them, truncated to a byte) and returns
/// the scale. `l` and `quant_weights` must be at least as long as `x`.
pub fn make_qp_quants(nmax: i32, x: &[f32], l: &mut [u8], quant_weights: &[f32]) -> f32 {
    let n = x.len();
    let l = &mut l[..n];
    let qw = &quant_weights[..n];
    let mut max = 0.0f32;
    for &xi in x {
        max = if max > xi { max } else { xi };
    }
    if max < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / max;
    for (li, &xi) in l.iter_mut().zip(x) {
        *li = nearest_int(iscale * xi) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for ((&li, &xi), &w) in l.iter().zip(x).zip(qw) {
        let diff = xi - scale * li as f32;
        best_mse += w * diff * diff;
    }
    for is in -4i32..=4 {
        if is == 0 {
            continue;
        }
        let iscale_is = (0.1 * is as f32 + nmaxf) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for (&xi, &w) in x.iter().zip(qw) {
            let q = nmax.min(nearest_int(iscale_is * xi));
            let diff = xi - scale_is * q as f32;
            mse += w * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for ((li, &xi), &w) in l.iter_mut().zip(x).zip(qw) {
        let q = nmax.min(nearest_int(iscale * xi));
        *li = q as u8;
        let qf = q as f32;
        sumlx += w * xi * qf;
        suml2 += w * qf * qf;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for ((li, &xi), &w) in l.iter_mut().zip(x).zip(qw) {
            let lf = *li as f32;
            let mut slx = sumlx - w * xi * lf;
            let mut sl2 = suml2 - w * lf * lf;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nmax.min(nearest_int(xi * sl2 / slx));
                if new_l != *li as i32 {
                    let nf = new_l as f32;
                    slx += w * xi * nf;
                    sl2 += w * nf * nf;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l as u8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_qp_quants_on_multiples_of_a_step() {
        let x: Vec<f32> = (0..8).map(|i| (i * 9) as f32 * 0.125).collect();
        let w = vec![1.0f32; 8];
        let mut l = [0u8; 8];
        let d = make_qp_quants(63, &x, &mut l, &w);
        for (i, &li) in l.iter().enumerate() {
            assert!(
                (d * li as f32 - x[i]).abs() <= 1e-5,
                "element {i}: {} vs {}",
                d * li as f32,
                x[i]
            );
        }
    }
}
