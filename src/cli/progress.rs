//! Progress bars on stderr (hidden automatically when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use qforge::pipeline::{PlannedTensor, Progress};

/// One byte-count bar for a quantization run, with the current tensor as its message.
pub struct Bars {
    bar: ProgressBar,
}

impl Bars {
    /// A bar for `total` output bytes.
    pub fn new(total: u64) -> Self {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bars { bar }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bars {
    fn tensor(&self, i: usize, n: usize, t: &PlannedTensor) {
        self.bar.set_message(format!(
            "[{}/{n}] {} -> {}",
            i + 1,
            t.info.name,
            t.plan.target
        ));
    }
    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }
}
