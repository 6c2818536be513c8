//! Quality gate: limits on a KL-divergence report, for CI jobs that must fail when a quantized
//! model drifts too far from its base.

use serde::{Deserialize, Serialize};

use super::kld::KldReport;

/// The limits; each is optional, an absent one is not checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateLimits {
    /// Highest allowed mean KLD (nats).
    pub max_kld: Option<f64>,
    /// Highest allowed 99th-percentile KLD (nats).
    pub max_kld_p99: Option<f64>,
    /// Highest allowed PPL increase over the base, in percent (`100·(PPL(Q)/PPL(base) − 1)`).
    pub max_ppl_increase: Option<f64>,
    /// Lowest allowed same-top-token rate, in percent.
    pub min_same_top: Option<f64>,
    /// Highest allowed RMS Δp, in percent.
    pub max_rms_p_diff: Option<f64>,
}

/// One checked limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateCheck {
    /// The limit's name, as in the TOML file.
    pub name: &'static str,
    /// The measured value (same unit as the limit).
    pub value: f64,
    /// The limit.
    pub limit: f64,
    /// Whether the value is within the limit.
    pub passed: bool,
}

impl GateLimits {
    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        *self == GateLimits::default()
    }

    /// Limits given on the command line take precedence over those of a file.
    pub fn merged_over(self, file: GateLimits) -> GateLimits {
        GateLimits {
            max_kld: self.max_kld.or(file.max_kld),
            max_kld_p99: self.max_kld_p99.or(file.max_kld_p99),
            max_ppl_increase: self.max_ppl_increase.or(file.max_ppl_increase),
            min_same_top: self.min_same_top.or(file.min_same_top),
            max_rms_p_diff: self.max_rms_p_diff.or(file.max_rms_p_diff),
        }
    }

    /// Checks a report against every set limit, in a fixed order.
    pub fn check(&self, r: &KldReport) -> Vec<GateCheck> {
        let mut out = Vec::new();
        let mut at_most = |name, value: f64, limit: Option<f64>| {
            if let Some(limit) = limit {
                out.push(GateCheck {
                    name,
                    value,
                    limit,
                    passed: value <= limit,
                });
            }
        };
        at_most("max_kld", r.kld.0, self.max_kld);
        let p99 = r.kld_quantiles.get("99.0%").map_or(f64::NAN, f64::from);
        at_most("max_kld_p99", p99, self.max_kld_p99);
        at_most(
            "max_ppl_increase",
            100.0 * (r.ppl_ratio.0 - 1.0),
            self.max_ppl_increase,
        );
        at_most(
            "max_rms_p_diff",
            100.0 * r.rms_p_diff.0,
            self.max_rms_p_diff,
        );
        if let Some(limit) = self.min_same_top {
            let value = 100.0 * r.same_top.0;
            out.push(GateCheck {
                name: "min_same_top",
                value,
                limit,
                passed: value >= limit,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::kld::Quantiles;
    use super::*;

    fn report(kld: f64, ratio: f64) -> KldReport {
        KldReport {
            count: 1000,
            ppl: (10.0 * ratio, 0.1),
            ppl_base: (10.0, 0.1),
            ln_ppl_correlation: 0.99,
            ln_ppl_ratio: (ratio.ln(), 0.001),
            ppl_ratio: (ratio, 0.001),
            ppl_diff: (10.0 * ratio - 10.0, 0.01),
            kld: (kld, 0.001),
            kld_quantiles: Quantiles(vec![("99.0%", (kld * 5.0) as f32)]),
            p_diff: (0.0, 0.0),
            p_diff_quantiles: Quantiles(vec![]),
            rms_p_diff: (0.02, 0.001),
            same_top: (0.95, 0.01),
        }
    }

    #[test]
    fn limits_pass_and_fail() {
        let lim = GateLimits {
            max_kld: Some(0.05),
            max_ppl_increase: Some(2.0),
            min_same_top: Some(90.0),
            ..Default::default()
        };
        let ok = lim.check(&report(0.01, 1.01));
        assert_eq!(ok.len(), 3);
        assert!(ok.iter().all(|c| c.passed), "{ok:?}");
        let bad = lim.check(&report(0.06, 1.03));
        let failed: Vec<_> = bad.iter().filter(|c| !c.passed).map(|c| c.name).collect();
        assert_eq!(failed, ["max_kld", "max_ppl_increase"]);
        assert!((bad[1].value - 3.0).abs() < 1e-9);
    }

    #[test]
    fn command_line_overrides_file() {
        let cli = GateLimits {
            max_kld: Some(0.1),
            ..Default::default()
        };
        let file = GateLimits {
            max_kld: Some(0.5),
            min_same_top: Some(80.0),
            ..Default::default()
        };
        let m = cli.merged_over(file);
        assert_eq!((m.max_kld, m.min_same_top), (Some(0.1), Some(80.0)));
        assert!(GateLimits::default().is_empty() && !m.is_empty());
    }
}
