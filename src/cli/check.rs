//! `qforge check`: a quality gate for CI: KL-divergence and perplexity of a model against its
//! base, with limits; exits with status 3 when a limit is crossed.

use super::eval_model::EvalModel;
use super::kld::{print_report, score, BaseArgs};
use super::report::Table;
use anyhow::{Context, Result};
use qforge_calibration::eval::gate::GateLimits;
use std::path::PathBuf;

/// Arguments of `qforge check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Model under test (GGUF or Hugging Face checkpoint directory).
    #[arg(long = "model", short = 'm', value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub base: BaseArgs,
    /// Highest allowed mean KL-divergence (nats).
    #[arg(long, value_name = "X")]
    pub max_kld: Option<f64>,
    /// Highest allowed 99th-percentile KL-divergence (nats).
    #[arg(long, value_name = "X")]
    pub max_kld_p99: Option<f64>,
    /// Highest allowed perplexity increase over the base, in percent.
    #[arg(long, value_name = "P")]
    pub max_ppl_increase: Option<f64>,
    /// Lowest allowed same-top-token rate, in percent.
    #[arg(long, value_name = "P")]
    pub min_same_top: Option<f64>,
    /// Highest allowed RMS of the target-token probability change, in percent.
    #[arg(long, value_name = "P")]
    pub max_rms_p_diff: Option<f64>,
    /// TOML file with the same limits (`max_kld = 0.05` ...); command-line limits win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the JSON report to this file (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// The gate's verdict when a limit is crossed: the binary exits with status 3.
#[derive(Debug, thiserror::Error)]
#[error("quality gate failed: {0}")]
pub struct GateFailed(pub String);

/// Runs `qforge check`.
pub fn run(a: CheckArgs) -> Result<()> {
    let cli = GateLimits {
        max_kld: a.max_kld,
        max_kld_p99: a.max_kld_p99,
        max_ppl_increase: a.max_ppl_increase,
        min_same_top: a.min_same_top,
        max_rms_p_diff: a.max_rms_p_diff,
    };
    let file = match &a.config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str::<GateLimits>(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => GateLimits::default(),
    };
    let limits = cli.merged_over(file);
    if limits.is_empty() {
        anyhow::bail!("no limit given: use --max-kld, --max-ppl-increase, ... or --config FILE");
    }
    let model = EvalModel::open(&a.model)?;
    let sums = score(&model, &a.base, true)?;
    let report = sums.report().with_context(|| {
        format!(
            "only {} tokens were scored; the gate needs at least 100",
            sums.count()
        )
    })?;
    let checks = limits.check(&report);
    print_report(&report);
    println!();
    let mut t = Table::new(&["limit", "value", "allowed", "result"]);
    for c in &checks {
        t.row(vec![
            c.name.to_string(),
            format!("{:.6}", c.value),
            format!("{}", c.limit),
            if c.passed { "pass" } else { "FAIL" }.to_string(),
        ]);
    }
    t.print();
    let passed = checks.iter().all(|c| c.passed);
    if let Some(p) = &a.report {
        let v = serde_json::json!({
            "model": a.model.display().to_string(),
            "base": a.base.base.display().to_string(),
            "passed": passed,
            "checks": checks,
            "statistics": report,
        });
        let s = serde_json::to_string_pretty(&v)?;
        if p.as_os_str() == "-" {
            println!("{s}");
        } else {
            std::fs::write(p, s + "\n").with_context(|| format!("writing {}", p.display()))?;
        }
    }
    if passed {
        Ok(())
    } else {
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        Err(GateFailed(failed.join(", ")).into())
    }
}
