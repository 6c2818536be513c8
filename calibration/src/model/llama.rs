//! The llama architecture: loading from a [`WeightSource`] and the forward pass of llama.cpp's
//! `llm_build_llama` graph (src/models/llama.cpp), dense or Mixtral-style MoE.

use super::error::ModelError;
use super::hparams::HParams;
use super::moe;
use super::observer::ActivationObserver;
use super::source::{TensorMeta, WeightSource};
use crate::backend::{AttnJob, AttnShape, Backend, CpuBackend, RopeParams, WeightView};
use half::f16;
use qforge_formats::ggml::dequantize;
use qforge_formats::gguf::GgufFile;
use std::ops::Range;
use std::path::Path;

/// llama.cpp's default micro-batch (`n_ubatch`): attention runs per micro-batch, and its kernel
/// choice depends on the micro-batch size.
pub const N_UBATCH: usize = 512;

/// Names of one layer's tensors.
#[derive(Clone, Debug)]
pub(super) struct Layer {
    pub attn_norm: Vec<f32>,
    pub ffn_norm: Vec<f32>,
    pub q: String,
    pub k: String,
    pub v: String,
    pub o: String,
    /// Dense: gate, up, down. MoE: gate_exps, up_exps, down_exps.
    pub gate: String,
    pub up: String,
    pub down: String,
    /// MoE router (`ffn_gate_inp.weight`), f32 `n_expert × n_embd`.
    pub router: Option<String>,
}

/// A loaded llama-architecture model: hyper-parameters, norms and the weight source; weight
/// matrices are prepared by the backend one layer at a time during [`Model::eval`].
pub struct Model<B: Backend = CpuBackend> {
    src: Box<dyn WeightSource>,
    hp: HParams,
    backend: B,
    pub(super) layers: Vec<Layer>,
    output_norm: Vec<f32>,
    output: String,
    rope: RopeParams,
}

impl std::fmt::Debug for Model<CpuBackend> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.src.path())
            .field("hparams", &self.hp)
            .finish()
    }
}

impl Model<CpuBackend> {
    /// Opens a GGUF model and prepares it for the CPU backend.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        let path = path.as_ref();
        let f = GgufFile::open(path).map_err(|source| ModelError::Gguf {
            path: path.to_path_buf(),
            source,
        })?;
        let hp = HParams::from_gguf(f.header(), path)?;
        Model::new(Box::new(f), hp, CpuBackend::new())
    }
}

impl<B: Backend> Model<B> {
    /// A model over `src` with hyper-parameters `hp`, run by `backend`. Checks that every tensor
    /// the graph needs is present with the shape `hp` implies.
    pub fn new(src: Box<dyn WeightSource>, hp: HParams, backend: B) -> Result<Self, ModelError> {
        let e = hp.n_embd as u64;
        let hd = hp.head_dim as u64;
        let (nh, nkv, ff, nv) = (
            hp.n_head as u64,
            hp.n_head_kv as u64,
            hp.n_ff as u64,
            hp.n_vocab as u64,
        );
        let check = |name: &str, dims: &[u64]| -> Result<TensorMeta, ModelError> {
            let m = src.meta(name).ok_or_else(|| ModelError::MissingTensor {
                path: src.path().to_path_buf(),
                name: name.to_string(),
            })?;
            let mut found = m.dims.clone();
            while found.len() > dims.len() && found.last() == Some(&1) {
                found.pop();
            }
            if found != dims {
                return Err(ModelError::Shape {
                    path: src.path().to_path_buf(),
                    name: name.to_string(),
                    expected: dims.to_vec(),
                    found: m.dims,
                });
            }
            Ok(m)
        };
        let vector = |name: &str| -> Result<Vec<f32>, ModelError> {
            let m = check(name, &[e])?;
            let bytes = src.bytes(name)?;
            let mut out = vec![0.0f32; hp.n_embd];
            dequantize(m.ty, &bytes, &mut out).map_err(|_| ModelError::TensorType {
                path: src.path().to_path_buf(),
                name: name.to_string(),
                ty: m.ty,
            })?;
            Ok(out)
        };
        check("token_embd.weight", &[e, nv])?;
        let output = if src.meta("output.weight").is_some() {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        check(output, &[e, nv])?;
        let output_norm = vector("output_norm.weight")?;
        let mut layers = Vec::with_capacity(hp.n_layer);
        for il in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}.weight");
            check(&n("attn_q"), &[e, nh * hd])?;
            check(&n("attn_k"), &[e, nkv * hd])?;
            check(&n("attn_v"), &[e, nkv * hd])?;
            check(&n("attn_output"), &[nh * hd, e])?;
            let (gate, up, down, router) = if hp.n_expert == 0 {
                check(&n("ffn_gate"), &[e, ff])?;
                check(&n("ffn_up"), &[e, ff])?;
                check(&n("ffn_down"), &[ff, e])?;
                (n("ffn_gate"), n("ffn_up"), n("ffn_down"), None)
            } else {
                let x = hp.n_expert as u64;
                check(&n("ffn_gate_inp"), &[e, x])?;
                check(&n("ffn_gate_exps"), &[e, ff, x])?;
                check(&n("ffn_up_exps"), &[e, ff, x])?;
                check(&n("ffn_down_exps"), &[ff, e, x])?;
                (
                    n("ffn_gate_exps"),
                    n("ffn_up_exps"),
                    n("ffn_down_exps"),
                    Some(n("ffn_gate_inp")),
                )
            };
            layers.push(Layer {
                attn_norm: vector(&n("attn_norm"))?,
                ffn_norm: vector(&n("ffn_norm"))?,
                q: n("attn_q"),
                k: n("attn_k"),
                v: n("attn_v"),
                o: n("attn_output"),
                gate,
                up,
                down,
                router,
            });
        }
        // llama3-style frequency factors, shared by all layers.
        let freq_factors = match src.meta("rope_freqs.weight") {
            None => None,
            Some(m) => {
                let half_rot = (hp.n_rot / 2) as u64;
                check("rope_freqs.weight", &[half_rot])?;
                let bytes = src.bytes("rope_freqs.weight")?;
                let mut f = vec![0.0f32; hp.n_rot / 2];
                dequantize(m.ty, &bytes, &mut f).map_err(|_| ModelError::TensorType {
                    path: src.path().to_path_buf(),
                    name: "rope_freqs.weight".into(),
                    ty: m.ty,
                })?;
                Some(f)
            }
        };
        let rope = RopeParams {
            n_dims: hp.n_rot,
            freq_base: hp.rope_freq_base,
            freq_scale: hp.rope_freq_scale,
            freq_factors,
        };
        Ok(Model {
            src,
            hp,
            backend,
            layers,
            output_norm,
            output: output.to_string(),
            rope,
        })
    }

    /// The hyper-parameters.
    pub fn hparams(&self) -> &HParams {
        &self.hp
    }

    /// Vocabulary size: the width of each logits row.
    pub fn n_vocab(&self) -> usize {
        self.hp.n_vocab
    }

    /// The backend.
    pub(super) fn backend(&self) -> &B {
        &self.backend
    }

    /// Loads weight `name` into `m` through the backend.
    pub(super) fn load(&self, name: &str, m: &mut B::Matrix) -> Result<(), ModelError> {
        let meta = self
            .src
            .meta(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.src.path().to_path_buf(),
                name: name.to_string(),
            })?;
        let bytes = self.src.bytes(name)?;
        let d = |i: usize| meta.dims.get(i).copied().unwrap_or(1) as usize;
        let view = WeightView {
            name,
            ty: meta.ty,
            ne: [d(0), d(1), d(2)],
            data: &bytes,
        };
        self.backend
            .load_matrix(&view, m)
            .map_err(|source| ModelError::Backend {
                path: self.src.path().to_path_buf(),
                source,
            })
    }

    /// Evaluates `tokens` as one sequence from position 0 (a fresh causal context, micro-batches
    /// of [`N_UBATCH`] as llama.cpp runs them) and returns the logits of positions
    /// `first_output..`, row-major, [`Model::n_vocab`] values per position. `observer`, when
    /// given, sees the input rows of every weight product (see [`ActivationObserver`]); in the
    /// last layer only the output rows reach the feed-forward network and the output layer, as in
    /// llama.cpp.
    pub fn eval(
        &self,
        tokens: &[u32],
        first_output: usize,
        observer: Option<&mut dyn ActivationObserver>,
    ) -> Result<Vec<f32>, ModelError> {
        let mut out = self.eval_batch(&[tokens], first_output, observer)?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Evaluates several independent sequences in one pass, each as [`Model::eval`] would (its
    /// own causal context from position 0, its own micro-batches), and returns each sequence's
    /// logits of positions `first_output..`. The weight products see the rows of all sequences
    /// together (as llama-perplexity's multi-sequence batches do), which is faster; the results
    /// are bit-identical to evaluating the sequences one at a time. The observer sees each
    /// sequence's rows exactly as [`Model::eval`] shows them, sequence after sequence.
    pub fn eval_batch(
        &self,
        seqs: &[&[u32]],
        first_output: usize,
        mut observer: Option<&mut dyn ActivationObserver>,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let hp = &self.hp;
        for tokens in seqs {
            let n = tokens.len();
            if n == 0 || first_output >= n {
                return Err(ModelError::Request(format!(
                    "first output {first_output} must be below the token count {n}"
                )));
            }
            if let Some(&t) = tokens.iter().find(|&&t| t as usize >= hp.n_vocab) {
                return Err(ModelError::Request(format!(
                    "token id {t} outside the vocabulary of {}",
                    hp.n_vocab
                )));
            }
        }
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let be = &self.backend;
        let (ne, hd) = (hp.n_embd, hp.head_dim);
        let (qd, kvd) = (hp.n_head * hd, hp.n_head_kv * hd);
        let lay = BatchLayout::new(seqs, first_output);
        let n = lay.n_rows;
        let path = self.src.path().to_path_buf();
        let be_err = |source| ModelError::Backend {
            path: path.clone(),
            source,
        };

        let emb_meta =
            self.src
                .meta("token_embd.weight")
                .ok_or_else(|| ModelError::MissingTensor {
                    path: path.clone(),
                    name: "token_embd.weight".into(),
                })?;
        let mut x = vec![0.0f32; n * ne];
        {
            let bytes = self.src.bytes("token_embd.weight")?;
            let view = WeightView {
                name: "token_embd.weight",
                ty: emb_meta.ty,
                ne: [ne, hp.n_vocab, 1],
                data: &bytes,
            };
            let tokens: Vec<u32> = seqs.iter().flat_map(|s| s.iter().copied()).collect();
            be.get_rows(&view, &tokens, &mut x).map_err(be_err)?;
        }

        let mut cur = vec![0.0f32; n * ne];
        let mut q = vec![0.0f32; n * qd];
        let mut k = vec![0.0f32; n * kvd];
        let mut v = vec![0.0f32; n * kvd];
        let mut kc = vec![f16::ZERO; n * kvd];
        let mut vc = vec![f16::ZERO; n * kvd];
        let mut attn = vec![0.0f32; n * qd];
        let mut o = vec![0.0f32; n * ne];
        let mut mats: Vec<B::Matrix> = (0..3).map(|_| be.new_matrix()).collect();
        let mut ffn = moe::FfnScratch::default();
        let scale = 1.0f32 / (hd as f32).sqrt();

        for (il, layer) in self.layers.iter().enumerate() {
            let last = il + 1 == hp.n_layer;
            be.rms_norm(&x, &layer.attn_norm, hp.rms_eps, &mut cur);
            for (name, out, width) in [
                (&layer.q, &mut q, qd),
                (&layer.k, &mut k, kvd),
                (&layer.v, &mut v, kvd),
            ] {
                self.load(name, &mut mats[0])?;
                observe(&mut observer, name, None, &cur, ne, &lay.groups);
                be.matmul(&mats[0], 0, &cur, n, out);
                debug_assert_eq!(out.len(), n * width);
            }
            be.rope(&mut q, hp.n_head, hd, &lay.positions, &self.rope);
            be.rope(&mut k, hp.n_head_kv, hd, &lay.positions, &self.rope);
            be.to_f16(&k, &mut kc);
            be.to_f16(&v, &mut vc);
            {
                // One job per micro-batch of each sequence, over that sequence's cache.
                let mut jobs = Vec::with_capacity(lay.groups.len());
                let mut rest: &mut [f32] = &mut attn;
                for (s, ub) in lay.ubatches() {
                    let off = lay.offsets[s];
                    let (out, tail) = rest.split_at_mut(ub.len() * qd);
                    rest = tail;
                    jobs.push(AttnJob {
                        q: &q[(off + ub.start) * qd..(off + ub.end) * qd],
                        k: &kc[off * kvd..(off + ub.end) * kvd],
                        v: &vc[off * kvd..(off + ub.end) * kvd],
                        shape: AttnShape {
                            n_head: hp.n_head,
                            n_head_kv: hp.n_head_kv,
                            head_dim: hd,
                            first_pos: ub.start,
                        },
                        out,
                    });
                }
                be.attention(&mut jobs, scale);
            }
            self.load(&layer.o, &mut mats[0])?;
            observe(&mut observer, &layer.o, None, &attn, qd, &lay.groups);
            be.matmul(&mats[0], 0, &attn, n, &mut o);

            // The last layer keeps only the output rows (inp_out_ids) from here on.
            let (rows, groups) = if last {
                lay.compact(&mut x, ne);
                lay.compact(&mut o, ne);
                (lay.n_out, &lay.out_groups)
            } else {
                (n, &lay.groups)
            };
            let xs = &mut x[..rows * ne];
            be.add(xs, &o[..rows * ne]);
            let normed = &mut cur[..rows * ne];
            be.rms_norm(xs, &layer.ffn_norm, hp.rms_eps, normed);
            let ffn_out = &mut o[..rows * ne];
            let ctx = moe::FfnCtx {
                model: self,
                layer,
                groups,
            };
            if layer.router.is_some() {
                moe::moe_ffn(&ctx, normed, &mut mats, &mut ffn, &mut observer, ffn_out)?;
            } else {
                moe::dense_ffn(&ctx, normed, &mut mats, &mut ffn, &mut observer, ffn_out)?;
            }
            be.add(&mut x[..rows * ne], &o[..rows * ne]);
        }

        let rows = lay.n_out;
        let normed = &mut cur[..rows * ne];
        be.rms_norm(&x[..rows * ne], &self.output_norm, hp.rms_eps, normed);
        self.load(&self.output, &mut mats[0])?;
        observe(
            &mut observer,
            &self.output,
            None,
            normed,
            ne,
            &lay.out_groups,
        );
        let nv = hp.n_vocab;
        let mut logits = vec![0.0f32; rows * nv];
        be.matmul(&mats[0], 0, normed, rows, &mut logits);
        if seqs.len() == 1 {
            return Ok(vec![logits]);
        }
        Ok(lay
            .out_offsets
            .iter()
            .zip(seqs)
            .map(|(&c, s)| logits[c * nv..(c + s.len() - first_output) * nv].to_vec())
            .collect())
    }
}

/// Where each sequence of a batch lies in the stacked rows.
struct BatchLayout {
    /// Lengths of the sequences.
    lens: Vec<usize>,
    /// First row of each sequence.
    offsets: Vec<usize>,
    /// First output row of each sequence once the last layer has dropped the others.
    out_offsets: Vec<usize>,
    first_output: usize,
    n_rows: usize,
    n_out: usize,
    /// Position of each row within its sequence.
    positions: Vec<u32>,
    /// Row ranges of the micro-batches, sequence by sequence (what the observer is shown).
    groups: Vec<Range<usize>>,
    /// The same, restricted to the output rows and in compacted row numbers.
    out_groups: Vec<Range<usize>>,
}

impl BatchLayout {
    fn new(seqs: &[&[u32]], first_output: usize) -> Self {
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let (mut offsets, mut out_offsets) = (Vec::new(), Vec::new());
        let (mut n_rows, mut n_out) = (0, 0);
        for &l in &lens {
            offsets.push(n_rows);
            out_offsets.push(n_out);
            n_rows += l;
            n_out += l - first_output;
        }
        let positions = lens.iter().flat_map(|&l| 0..l as u32).collect();
        let mut lay = BatchLayout {
            lens,
            offsets,
            out_offsets,
            first_output,
            n_rows,
            n_out,
            positions,
            groups: Vec::new(),
            out_groups: Vec::new(),
        };
        for (s, ub) in lay.ubatches() {
            let off = lay.offsets[s];
            lay.groups.push(off + ub.start..off + ub.end);
            let (a, b) = (ub.start.max(first_output), ub.end);
            if a < b {
                let c = lay.out_offsets[s];
                lay.out_groups
                    .push(c + a - first_output..c + b - first_output);
            }
        }
        lay
    }

    /// Each sequence's micro-batches (positions within the sequence), in order.
    fn ubatches(&self) -> Vec<(usize, Range<usize>)> {
        self.lens
            .iter()
            .enumerate()
            .flat_map(|(s, &l)| {
                (0..l)
                    .step_by(N_UBATCH)
                    .map(move |a| (s, a..(a + N_UBATCH).min(l)))
            })
            .collect()
    }

    /// Moves each sequence's output rows (`width` values each) to the front of `buf`, in order.
    fn compact(&self, buf: &mut [f32], width: usize) {
        for (s, &l) in self.lens.iter().enumerate() {
            let src = (self.offsets[s] + self.first_output) * width;
            let dst = self.out_offsets[s] * width;
            let len = (l - self.first_output) * width;
            // dst <= src: a forward move within the buffer.
            buf.copy_within(src..src + len, dst);
        }
    }
}

/// Passes the rows of `buf` (`n_cols` wide) to the observer, one call per row range of
/// `groups` (the micro-batches of each sequence, in order).
pub(super) fn observe(
    observer: &mut Option<&mut dyn ActivationObserver>,
    name: &str,
    expert: Option<usize>,
    buf: &[f32],
    n_cols: usize,
    groups: &[Range<usize>],
) {
    let Some(obs) = observer.as_deref_mut() else {
        return;
    };
    for g in groups {
        if !g.is_empty() {
            obs.observe(name, expert, &buf[g.start * n_cols..g.end * n_cols], n_cols);
        }
    }
}
