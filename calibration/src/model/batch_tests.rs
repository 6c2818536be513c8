//! `Model::eval_batch` against `Model::eval`, bit for bit, on the committed fixtures, for
//! batches whose micro-batch pieces keep every row on the attention kernel it takes alone (a
//! piece of 64 rows or more runs the tiled kernel, a shorter one the one-row kernel); and the
//! micro-batch schedule itself (llama.cpp's `split_equal`).

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

/// Every row each weight (and expert) was shown, as bit patterns, sorted.
#[derive(Default, PartialEq, Debug)]
struct Record(std::collections::BTreeMap<(String, Option<usize>), Vec<Vec<u32>>>);

impl ActivationObserver for Record {
    fn observe(&mut self, w: &str, e: Option<usize>, rows: &[f32], n_cols: usize) {
        let seen = self.0.entry((w.to_string(), e)).or_default();
        seen.extend(
            rows.chunks(n_cols)
                .map(|r| r.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()),
        );
        seen.sort();
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
    // The observer sees the same rows of each weight (and expert): the batch shows them micro-batch
    // after micro-batch, the single runs sequence after sequence (compared as sorted sets).
    assert_eq!(batch_obs, single_obs, "{model}: observed rows");
}

#[test]
fn batch_equals_separate_evals_dense() {
    // Pieces of 128 then a tail of 72 (tiled, as each sequence alone), two micro-batches alone.
    check("tiny-llama-eval-f16.gguf", &[128, 128, 200], 64);
    check("tiny-llama-eval-f16.gguf", &[512, 600], 500);
    // Short sequences: one-row kernel alone and in pieces of 33, 7 and 10 (at least two output
    // rows each: a single row takes the vec_dot products instead of tinyBLAS).
    check("tiny-llama-eval-f16.gguf", &[40, 33, 50], 30);
    check("tiny-odd-f16.gguf", &[96, 96], 20);
}

#[test]
fn batch_equals_separate_evals_moe() {
    check("tiny-moe-f16.gguf", &[128, 64, 128], 3);
}

/// llama.cpp's `split_equal`: every sequence with tokens left, the same positions from each,
/// `max(1, 512 / n_seqs)` or fewer when a sequence runs out.
#[test]
fn micro_batches_follow_split_equal() {
    let lay = |lens: &[usize]| {
        let seqs: Vec<Vec<u32>> = lens.iter().map(|&n| vec![0; n]).collect();
        let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        super::transformer::ubatch_pieces(&refs)
    };
    // llama-perplexity -c 128 with its default batch of 2048: 16 sequences, 32 positions each.
    let p = lay(&[128; 16]);
    assert_eq!(p.len(), 64);
    assert!(p.iter().all(|(_, r)| r.len() == 32));
    assert_eq!(p[..2], [(0, 0..32), (1, 0..32)]);
    assert_eq!(p[16], (0, 32..64));
    // One sequence: micro-batches of 512.
    assert_eq!(
        lay(&[1100]),
        vec![(0, 0..512), (0, 512..1024), (0, 1024..1100)]
    );
    // Uneven lengths: the shortest ends a round; the others go on alone.
    assert_eq!(
        lay(&[100, 30, 600]),
        vec![
            (0, 0..30),
            (1, 0..30),
            (2, 0..30),
            (0, 30..100),
            (2, 30..100),
            (2, 100..600)
        ]
    );
}

#[test]
fn batch_refuses_bad_requests() {
    let m = Model::open(fixture("tiny-llama-eval-f16.gguf")).unwrap();
    assert!(m.eval_batch(&[&[1, 2, 3], &[1]], 1, None).is_err());
    assert!(m.eval_batch(&[&[1, 2, 3], &[]], 0, None).is_err());
    assert!(m.eval_batch(&[], 0, None).unwrap().is_empty());
}
