//! Small statistics helpers shared by the evaluations, written as llama-perplexity computes them.

/// Mean and standard error of a quantity from its sum, sum of squares and count, as
/// llama-perplexity's `mean_and_uncertainty`: the error is 0 for 10 values or fewer.
pub fn mean_and_uncertainty(sum: f64, sum2: f64, count: usize) -> (f64, f64) {
    if count < 1 {
        return (0.0, 0.0);
    }
    let n = count as f64;
    let f = sum / n;
    let df = sum2 / n - f * f;
    let df = if df > 0.0 && count > 10 {
        (df / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (f, df)
}

/// Covariance estimate of the mean of two quantities, as llama-perplexity's `covariance`.
pub(crate) fn covariance(suma: f64, sumb: f64, sumab: f64, count: usize) -> f64 {
    if count < 10 {
        return 0.0;
    }
    let n = count as f64;
    (sumab / n - (suma / n) * (sumb / n)) / (n - 1.0)
}

/// Linear-interpolated percentile of sorted values, in f32 as llama-perplexity's `percentile`.
/// `values` must be sorted ascending and not empty.
pub fn percentile(values: &[f32], fraction: f32) -> f32 {
    if fraction <= 0.0 {
        return values[0];
    }
    if fraction >= 1.0 {
        return values[values.len() - 1];
    }
    let mut p = fraction * (values.len() - 1) as f32;
    let ip = p as usize;
    p -= ip as f32;
    (1.0 - p) * values[ip] + p * values[(ip + 1).min(values.len() - 1)]
}

/// Median of sorted values, in f32 as llama-perplexity computes it.
pub(crate) fn median(values: &[f32]) -> f32 {
    let n = values.len();
    if n % 2 == 0 {
        0.5 * (values[n / 2] + values[n / 2 - 1])
    } else {
        values[n / 2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_error_of_known_sample() {
        // 1..=20: mean 10.5, sample variance 35, standard error sqrt(35/20).
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        let (m, e) = mean_and_uncertainty(xs.iter().sum(), xs.iter().map(|x| x * x).sum(), 20);
        assert!((m - 10.5).abs() < 1e-12);
        assert!((e - (35.0f64 / 20.0).sqrt()).abs() < 1e-12, "{e}");
        assert_eq!(mean_and_uncertainty(5.0, 30.0, 5).1, 0.0);
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [0.0f32, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.0);
        assert_eq!(percentile(&v, 0.1), 0.4);
        assert_eq!(percentile(&v, 1.5), 4.0);
        assert_eq!(median(&v), 2.0);
        assert_eq!(median(&v[..4]), 1.5);
    }
}
