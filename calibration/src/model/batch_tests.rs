//! `Model::eval_batch` against `Model::eval`, bit for bit, on the committed fixtures.

use super::{ActivationObserver, Model};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// Deterministic token ids below `n_vocab`.
fn ids(n: usize, seed: u32, n_vocab: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97) >> 7) % n_vocab as u32)
        .collect()
}

/// Records every observer call: weight, expert, rows.
#[derive(Default, PartialEq, Debug)]
struct Record(Vec<(String, Option<usize>, Vec<u32>)>);

impl ActivationObserver for Record {
    fn observe(&mut self, w: &str, e: Option<usize>, rows: &[f32], _n_cols: usize) {
        self.0
            .push((w.to_string(), e, rows.iter().map(|v| v.to_bits()).collect()));
    }
}

fn check(model: &str, lens: &[usize], first: usize) {
    let m = Model::open(fixture(model)).unwrap();
    let nv = m.n_vocab();
    let seqs: Vec<Vec<u32>> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| ids(n, i as u32, nv))
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let mut batch_obs = Record::default();
    let batch = m.eval_batch(&refs, first, Some(&mut batch_obs)).unwrap();
    assert_eq!(batch.len(), seqs.len());
    let mut single_obs = Record::default();
    for (s, b) in seqs.iter().zip(&batch) {
        let one = m.eval(s, first, Some(&mut single_obs)).unwrap();
        assert_eq!(one.len(), (s.len() - first) * nv);
        let same = one.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && one.len() == b.len(),
            "{model}: sequence of {} differs",
            s.len()
        );
    }
    // Compare the observer calls as sets per sequence order: the batch shows each weight's rows
    // sequence after sequence, the single runs one sequence (all weights) after another.
    let key = |r: &Record| {
        let mut v: Vec<_> = r.0.iter().collect();
        v.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        v.into_iter().cloned().collect::<Vec<_>>()
    };
    assert_eq!(key(&batch_obs), key(&single_obs), "{model}: observer calls");
}

#[test]
fn batch_equals_separate_evals_dense() {
    // Tiled and one-row attention kernels, two micro-batches, odd lengths.
    check("tiny-llama-eval-f16.gguf", &[128, 70, 130, 530, 128], 64);
    // One output row each: the last layer's products see one row per sequence.
    check("tiny-llama-eval-f16.gguf", &[40, 33, 65], 32);
    check("tiny-odd-f16.gguf", &[96, 50], 20);
}

#[test]
fn batch_equals_separate_evals_moe() {
    check("tiny-moe-f16.gguf", &[100, 64, 7], 3);
}

#[test]
fn batch_refuses_bad_requests() {
    let m = Model::open(fixture("tiny-llama-eval-f16.gguf")).unwrap();
    assert!(m.eval_batch(&[&[1, 2, 3], &[1]], 1, None).is_err());
    assert!(m.eval_batch(&[&[1, 2, 3], &[]], 0, None).is_err());
    assert!(m.eval_batch(&[], 0, None).unwrap().is_empty());
}
