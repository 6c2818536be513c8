//! The transformer forward pass shared by every supported architecture: loading from a
//! [`WeightSource`] and the layer walk of llama.cpp's graphs (`src/models/llama.cpp`, `qwen2.cpp`,
//! `qwen3.cpp`, `qwen3moe.cpp`, `gemma2.cpp`, `gemma3.cpp`, `phi3.cpp`), whose differences are the
//! optional blocks of [`Layer`] and the choices of [`Arch`].

use super::arch::Arch;
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

/// The attention input projections of one layer.
#[derive(Clone, Debug)]
pub(super) enum Qkv {
    /// `attn_q`, `attn_k`, `attn_v`, each with an optional bias.
    Separate {
        /// Weight names (q, k, v).
        names: [String; 3],
        /// Biases (q, k, v), each optional.
        biases: [Option<Vec<f32>>; 3],
    },
    /// One `attn_qkv` product (rows q, then k, then v) with an optional bias.
    Fused {
        /// Weight name.
        name: String,
        /// `attn_qkv.bias`, or the q, k and v biases concatenated.
        bias: Option<Vec<f32>>,
    },
}

/// One layer's weights: norms (loaded), matrices (by name, loaded per evaluation).
#[derive(Clone, Debug)]
pub(super) struct Layer {
    pub attn_norm: Vec<f32>,
    pub ffn_norm: Vec<f32>,
    pub qkv: Qkv,
    /// Per-head RMS norms of Q and K before rope (qwen3, gemma3).
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    pub o: String,
    /// Norms of the attention output and the FFN output (gemma).
    pub post_attn_norm: Option<Vec<f32>>,
    pub post_ffn_norm: Option<Vec<f32>>,
    /// Dense: gate (`None` when fused into `up`), up, down. MoE: gate_exps, up_exps, down_exps.
    pub gate: Option<String>,
    pub up: String,
    pub down: String,
    /// MoE router (`ffn_gate_inp.weight`), f32 `n_expert × n_embd`.
    pub router: Option<String>,
    /// Rope of this layer (window layers may use another base).
    pub rope: RopeParams,
    /// Sliding window of this layer, 0 for none.
    pub window: usize,
}

/// A loaded model of any supported architecture: hyper-parameters, norms and the weight source;
/// weight matrices are prepared by the backend one layer at a time during [`Model::eval`].
pub struct Model<B: Backend = CpuBackend> {
    src: Box<dyn WeightSource>,
    hp: HParams,
    backend: B,
    pub(super) layers: Vec<Layer>,
    output_norm: Vec<f32>,
    output: String,
    output_bias: Option<Vec<f32>>,
    /// phi3 LongRoPE frequency factors: (short, long).
    longrope: Option<(Vec<f32>, Vec<f32>)>,
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
    /// Opens a GGUF model of a supported architecture ([`Arch::NAMES`]) for the CPU backend.
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
        let arch = hp.arch;
        let e = hp.n_embd as u64;
        let hd = hp.head_dim as u64;
        let (nh, nkv, ff, nv) = (
            hp.n_head as u64,
            hp.n_head_kv as u64,
            hp.n_ff as u64,
            hp.n_vocab as u64,
        );
        let path = src.path().to_path_buf();
        let check = |name: &str, dims: &[u64]| -> Result<TensorMeta, ModelError> {
            let m = src.meta(name).ok_or_else(|| ModelError::MissingTensor {
                path: path.clone(),
                name: name.to_string(),
            })?;
            let mut found = m.dims.clone();
            while found.len() > dims.len() && found.last() == Some(&1) {
                found.pop();
            }
            if found != dims {
                return Err(ModelError::Shape {
                    path: path.clone(),
                    name: name.to_string(),
                    expected: dims.to_vec(),
                    found: m.dims,
                });
            }
            Ok(m)
        };
        let vector = |name: &str, len: usize| -> Result<Vec<f32>, ModelError> {
            let m = check(name, &[len as u64])?;
            let bytes = src.bytes(name)?;
            let mut out = vec![0.0f32; len];
            dequantize(m.ty, &bytes, &mut out).map_err(|_| ModelError::TensorType {
                path: path.clone(),
                name: name.to_string(),
                ty: m.ty,
            })?;
            Ok(out)
        };
        let optional = |name: &str, len: usize| -> Result<Option<Vec<f32>>, ModelError> {
            match src.meta(name) {
                None => Ok(None),
                Some(_) => vector(name, len).map(Some),
            }
        };
        let unsupported = |reason: String| ModelError::Unsupported {
            path: path.clone(),
            reason,
        };
        check("token_embd.weight", &[e, nv])?;
        let output = if src.meta("output.weight").is_some() && !arch.output_is_token_embd() {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        check(output, &[e, nv])?;
        let output_norm = vector("output_norm.weight", hp.n_embd)?;
        let output_bias = if arch.output_bias() {
            optional("output.bias", hp.n_vocab)?
        } else {
            None
        };
        // phi3 LongRoPE: short and long frequency factors, chosen per evaluation by context size.
        let has_long = src.meta("rope_factors_long.weight").is_some();
        let has_short = src.meta("rope_factors_short.weight").is_some();
        let longrope = match (has_short, has_long) {
            (false, false) => None,
            (true, true) if arch == Arch::Phi3 => Some((
                vector("rope_factors_short.weight", hp.n_rot / 2)?,
                vector("rope_factors_long.weight", hp.n_rot / 2)?,
            )),
            (true, true) => {
                return Err(unsupported(format!(
                    "LongRoPE frequency factors (rope_factors_long/short) in a {} model",
                    arch.name()
                )))
            }
            _ => {
                return Err(unsupported(
                    "LongRoPE needs both rope_factors_long and rope_factors_short".into(),
                ))
            }
        };
        // llama3-style frequency factors (llama only), shared by all layers.
        let freq_factors = match src.meta("rope_freqs.weight") {
            Some(_) if arch == Arch::Llama => Some(vector("rope_freqs.weight", hp.n_rot / 2)?),
            _ => None,
        };
        let (qd, kvd) = (nh * hd, nkv * hd);
        let mut layers = Vec::with_capacity(hp.n_layer);
        for il in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{il}.{s}.weight");
            let b = |s: &str| format!("blk.{il}.{s}.bias");
            let qkv = if src.meta(&n("attn_qkv")).is_some() {
                check(&n("attn_qkv"), &[e, qd + 2 * kvd])?;
                let width = (qd + 2 * kvd) as usize;
                let bias = match optional(&b("attn_qkv"), width)? {
                    Some(v) => Some(v),
                    None => {
                        let q = optional(&b("attn_q"), qd as usize)?;
                        let k = optional(&b("attn_k"), kvd as usize)?;
                        let v = optional(&b("attn_v"), kvd as usize)?;
                        match (q, k, v) {
                            (Some(q), Some(k), Some(v)) => Some([q, k, v].concat()),
                            _ => None,
                        }
                    }
                };
                Qkv::Fused {
                    name: n("attn_qkv"),
                    bias,
                }
            } else {
                check(&n("attn_q"), &[e, qd])?;
                check(&n("attn_k"), &[e, kvd])?;
                check(&n("attn_v"), &[e, kvd])?;
                Qkv::Separate {
                    names: [n("attn_q"), n("attn_k"), n("attn_v")],
                    biases: [
                        optional(&b("attn_q"), qd as usize)?,
                        optional(&b("attn_k"), kvd as usize)?,
                        optional(&b("attn_v"), kvd as usize)?,
                    ],
                }
            };
            check(&n("attn_output"), &[qd, e])?;
            let (q_norm, k_norm) = if arch.qk_norm() {
                (
                    Some(vector(&n("attn_q_norm"), hp.head_dim)?),
                    Some(vector(&n("attn_k_norm"), hp.head_dim)?),
                )
            } else {
                (None, None)
            };
            let (post_attn_norm, post_ffn_norm) = if arch.post_norms() {
                (
                    Some(vector(&n("post_attention_norm"), hp.n_embd)?),
                    Some(vector(&n("post_ffw_norm"), hp.n_embd)?),
                )
            } else {
                (None, None)
            };
            let (gate, up, down, router) = if hp.n_expert == 0 {
                if arch.fused_gate_up() {
                    check(&n("ffn_up"), &[e, 2 * ff])?;
                    check(&n("ffn_down"), &[ff, e])?;
                    (None, n("ffn_up"), n("ffn_down"), None)
                } else {
                    check(&n("ffn_gate"), &[e, ff])?;
                    check(&n("ffn_up"), &[e, ff])?;
                    check(&n("ffn_down"), &[ff, e])?;
                    (Some(n("ffn_gate")), n("ffn_up"), n("ffn_down"), None)
                }
            } else {
                let x = hp.n_expert as u64;
                let fx = hp.n_ff_exp as u64;
                if src.meta(&n("ffn_gate_inp_shexp")).is_some()
                    || src.meta(&n("ffn_up_shexp")).is_some()
                {
                    return Err(unsupported(format!("layer {il}: shared experts")));
                }
                check(&n("ffn_gate_inp"), &[e, x])?;
                check(&n("ffn_gate_exps"), &[e, fx, x])?;
                check(&n("ffn_up_exps"), &[e, fx, x])?;
                check(&n("ffn_down_exps"), &[fx, e, x])?;
                (
                    Some(n("ffn_gate_exps")),
                    n("ffn_up_exps"),
                    n("ffn_down_exps"),
                    Some(n("ffn_gate_inp")),
                )
            };
            let swa = hp.is_swa(il);
            layers.push(Layer {
                attn_norm: vector(&n("attn_norm"), hp.n_embd)?,
                ffn_norm: vector(&n("ffn_norm"), hp.n_embd)?,
                qkv,
                q_norm,
                k_norm,
                o: n("attn_output"),
                post_attn_norm,
                post_ffn_norm,
                gate,
                up,
                down,
                router,
                rope: RopeParams {
                    neox: arch.rope_neox(),
                    n_dims: hp.n_rot,
                    freq_base: if swa {
                        hp.rope_freq_base_swa
                    } else {
                        hp.rope_freq_base
                    },
                    freq_scale: if swa {
                        hp.rope_freq_scale_swa
                    } else {
                        hp.rope_freq_scale
                    },
                    freq_factors: freq_factors.clone(),
                    attn_factor: hp.rope_attn_factor,
                },
                window: if swa { hp.n_swa } else { 0 },
            });
        }
        Ok(Model {
            src,
            hp,
            backend,
            layers,
            output_norm,
            output: output.to_string(),
            output_bias,
            longrope,
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

    /// Evaluates several independent sequences in one pass, as llama-perplexity and llama-imatrix
    /// evaluate a batch of chunks (each sequence its own causal context from position 0 in its
    /// own KV stream), and returns each sequence's logits of positions `first_output..`. The
    /// micro-batches are llama.cpp's `split_equal` pieces (the same number of positions from
    /// every sequence, see `split_equal`): a sequence cut into pieces of fewer than 64
    /// rows attends with the one-row kernel where alone it would take the tiled one, so results
    /// equal [`Model::eval`]'s only where the kernels agree, and llama.cpp's batch always (phi3
    /// LongRoPE follows the longest sequence padded to 256, as a llama.cpp context of that many
    /// tokens would choose). The observer sees the rows micro-batch after micro-batch, each
    /// sequence's piece in turn.
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

        if let Some(sc) = hp.embd_scale {
            be.scale(&mut x, sc);
        }

        let mut cur = vec![0.0f32; n * ne];
        let mut q = vec![0.0f32; n * qd];
        let mut k = vec![0.0f32; n * kvd];
        let mut v = vec![0.0f32; n * kvd];
        let mut qkv = Vec::new();
        let mut normed_heads = Vec::new();
        let mut kc = vec![f16::ZERO; n * kvd];
        let mut vc = vec![f16::ZERO; n * kvd];
        let mut attn = vec![0.0f32; n * qd];
        let mut o = vec![0.0f32; n * ne];
        let mut mats: Vec<B::Matrix> = (0..3).map(|_| be.new_matrix()).collect();
        let mut ffn = moe::FfnScratch::default();
        let mut tmp = (Vec::new(), Vec::new());
        // Gemma and phi3 scale Q before attention and attend with scale 1.
        let scale = match hp.q_scale {
            Some(_) => 1.0,
            None => 1.0f32 / (hd as f32).sqrt(),
        };

        // LongRoPE: llama.cpp takes the long factors when the context (here the longest sequence,
        // padded to 256 as llama.cpp pads n_ctx) exceeds the original training context.
        let longrope = self.longrope.as_ref().map(|(short, long)| {
            let max_len = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
            let n_ctx = max_len.div_ceil(256) * 256;
            if n_ctx > hp.n_ctx_orig_yarn {
                long.clone()
            } else {
                short.clone()
            }
        });

        for (il, layer) in self.layers.iter().enumerate() {
            let last = il + 1 == hp.n_layer;
            let rope_lr;
            let rope = match &longrope {
                Some(f) => {
                    rope_lr = RopeParams {
                        freq_factors: Some(f.clone()),
                        ..layer.rope.clone()
                    };
                    &rope_lr
                }
                None => &layer.rope,
            };
            be.rms_norm(&x, &layer.attn_norm, hp.rms_eps, &mut cur);
            match &layer.qkv {
                Qkv::Separate { names, biases } => {
                    for ((name, bias), out) in
                        names.iter().zip(biases).zip([&mut q, &mut k, &mut v])
                    {
                        self.load(name, &mut mats[0])?;
                        observe(&mut observer, name, None, &cur, ne, &lay.ubs);
                        matmul_sets(be, &mats[0], 0, &cur, &lay.ubs, out, &mut tmp);
                        if let Some(b) = bias {
                            be.add_bias(out, b);
                        }
                    }
                }
                Qkv::Fused { name, bias } => {
                    let w = qd + 2 * kvd;
                    qkv.resize(n * w, 0.0);
                    self.load(name, &mut mats[0])?;
                    observe(&mut observer, name, None, &cur, ne, &lay.ubs);
                    matmul_sets(be, &mats[0], 0, &cur, &lay.ubs, &mut qkv, &mut tmp);
                    if let Some(b) = bias {
                        be.add_bias(&mut qkv, b);
                    }
                    for (r, row) in qkv.chunks_exact(w).enumerate() {
                        q[r * qd..(r + 1) * qd].copy_from_slice(&row[..qd]);
                        k[r * kvd..(r + 1) * kvd].copy_from_slice(&row[qd..qd + kvd]);
                        v[r * kvd..(r + 1) * kvd].copy_from_slice(&row[qd + kvd..]);
                    }
                }
            }
            for (norm, buf) in [(&layer.q_norm, &mut q), (&layer.k_norm, &mut k)] {
                if let Some(w) = norm {
                    normed_heads.resize(buf.len(), 0.0);
                    be.rms_norm(buf, w, hp.rms_eps, &mut normed_heads);
                    std::mem::swap(buf, &mut normed_heads);
                }
            }
            be.rope(&mut q, hp.n_head, hd, &lay.positions, rope);
            be.rope(&mut k, hp.n_head_kv, hd, &lay.positions, rope);
            if let Some(sq) = hp.q_scale {
                be.scale(&mut q, sq);
            }
            be.to_f16(&k, &mut kc);
            be.to_f16(&v, &mut vc);
            {
                // One job per micro-batch of each sequence, over that sequence's cache.
                let mut jobs = Vec::new();
                let mut rest: &mut [f32] = &mut attn;
                // Jobs in row order, so that each takes the next piece of the output buffer.
                for &(s, ref ub) in &lay.pieces {
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
                            window: layer.window,
                            softcap: hp.attn_softcap,
                        },
                        out,
                    });
                }
                be.attention(&mut jobs, scale);
            }
            self.load(&layer.o, &mut mats[0])?;
            observe(&mut observer, &layer.o, None, &attn, qd, &lay.ubs);
            matmul_sets(be, &mats[0], 0, &attn, &lay.ubs, &mut o, &mut tmp);

            // The last layer keeps only the output rows (inp_out_ids) from here on.
            let (rows, ubs) = if last {
                lay.compact(&mut x, ne);
                lay.compact(&mut o, ne);
                (lay.n_out, &lay.out_ubs)
            } else {
                (n, &lay.ubs)
            };
            if let Some(w) = &layer.post_attn_norm {
                let normed = &mut cur[..rows * ne];
                be.rms_norm(&o[..rows * ne], w, hp.rms_eps, normed);
                o[..rows * ne].copy_from_slice(normed);
            }
            let xs = &mut x[..rows * ne];
            be.add(xs, &o[..rows * ne]);
            let normed = &mut cur[..rows * ne];
            be.rms_norm(xs, &layer.ffn_norm, hp.rms_eps, normed);
            let ffn_out = &mut o[..rows * ne];
            let ctx = moe::FfnCtx {
                model: self,
                layer,
                ubs,
            };
            if layer.router.is_some() {
                moe::moe_ffn(&ctx, normed, &mut mats, &mut ffn, &mut observer, ffn_out)?;
            } else {
                moe::dense_ffn(&ctx, normed, &mut mats, &mut ffn, &mut observer, ffn_out)?;
            }
            if let Some(w) = &layer.post_ffn_norm {
                let normed = &mut cur[..rows * ne];
                be.rms_norm(&o[..rows * ne], w, hp.rms_eps, normed);
                o[..rows * ne].copy_from_slice(normed);
            }
            be.add(&mut x[..rows * ne], &o[..rows * ne]);
        }

        let rows = lay.n_out;
        let normed = &mut cur[..rows * ne];
        be.rms_norm(&x[..rows * ne], &self.output_norm, hp.rms_eps, normed);
        self.load(&self.output, &mut mats[0])?;
        observe(&mut observer, &self.output, None, normed, ne, &lay.out_ubs);
        let nv = hp.n_vocab;
        let mut logits = vec![0.0f32; rows * nv];
        matmul_sets(be, &mats[0], 0, normed, &lay.out_ubs, &mut logits, &mut tmp);
        if let Some(b) = &self.output_bias {
            be.add_bias(&mut logits, b);
        }
        if hp.final_softcap != 0.0 {
            be.softcap(&mut logits, hp.final_softcap);
        }
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
    /// The micro-batch pieces `(sequence, positions)` in row order (sequence by sequence): one
    /// attention call each, its length deciding the kernel (tiled from 64 rows).
    pieces: Vec<(usize, Range<usize>)>,
    /// The rows of each micro-batch, in llama.cpp's order (each sequence's piece in turn).
    ubs: Vec<Vec<usize>>,
    /// The same for the output rows, in compacted row numbers.
    out_ubs: Vec<Vec<usize>>,
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
            pieces: Vec::new(),
            ubs: Vec::new(),
            out_ubs: Vec::new(),
        };
        for ub in split_equal(&lay.lens) {
            let (mut rows, mut outs) = (Vec::new(), Vec::new());
            for (s, r) in &ub {
                let off = lay.offsets[*s];
                rows.extend(off + r.start..off + r.end);
                let c = lay.out_offsets[*s];
                outs.extend((r.start.max(first_output)..r.end).map(|p| c + p - first_output));
            }
            lay.ubs.push(rows);
            if !outs.is_empty() {
                lay.out_ubs.push(outs);
            }
            lay.pieces.extend(ub);
        }
        lay.pieces.sort_by_key(|(s, r)| (*s, r.start));
        lay
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

/// The micro-batches as llama.cpp cuts a batch of independent sequences of lengths `lens` (each
/// in its own KV stream, as llama-perplexity and llama-imatrix set their contexts up):
/// `split_equal` takes every sequence with tokens left and the same number of positions from
/// each, `max(1, N_UBATCH / n_seqs)` or fewer when a sequence runs out; one sequence alone is cut
/// into micro-batches of [`N_UBATCH`]. Each micro-batch is a list of `(sequence, positions)`
/// pieces.
fn split_equal(lens: &[usize]) -> Vec<Vec<(usize, Range<usize>)>> {
    let mut done = vec![0usize; lens.len()];
    let mut out = Vec::new();
    loop {
        let active: Vec<usize> = (0..lens.len()).filter(|&s| done[s] < lens[s]).collect();
        let Some(shortest) = active.iter().map(|&s| lens[s] - done[s]).min() else {
            break;
        };
        let t = (N_UBATCH / active.len()).max(1).min(shortest);
        let mut ub = Vec::with_capacity(active.len());
        for s in active {
            ub.push((s, done[s]..done[s] + t));
            done[s] += t;
        }
        out.push(ub);
    }
    out
}

/// `be.matmul` one micro-batch at a time, as llama.cpp's graph runs each micro-batch's product
/// on its own (kernel choices follow the micro-batch's row count): `sets` holds the rows of `x`
/// (`m.n_cols()` wide) of each micro-batch, in order; results go to the same rows of `out`
/// (`m.n_rows()` wide). Rows in no set are left alone.
pub(super) fn matmul_sets<B: Backend>(
    be: &B,
    m: &B::Matrix,
    expert: usize,
    x: &[f32],
    sets: &[Vec<usize>],
    out: &mut [f32],
    tmp: &mut (Vec<f32>, Vec<f32>),
) {
    use crate::backend::Matrix;
    let (k, nr) = (m.n_cols(), m.n_rows());
    let (xs, os) = tmp;
    for set in sets {
        let n = set.len();
        if n == 0 {
            continue;
        }
        match consecutive(set) {
            Some(first) => be.matmul(
                m,
                expert,
                &x[first * k..(first + n) * k],
                n,
                &mut out[first * nr..(first + n) * nr],
            ),
            None => {
                os.resize(n * nr, 0.0);
                be.matmul(m, expert, gather(x, k, set, xs), n, os);
                for (i, &r) in set.iter().enumerate() {
                    out[r * nr..(r + 1) * nr].copy_from_slice(&os[i * nr..(i + 1) * nr]);
                }
            }
        }
    }
}

/// The micro-batch pieces [`Model::eval_batch`] cuts `seqs` into.
#[cfg(test)]
pub(super) fn ubatch_pieces(seqs: &[&[u32]]) -> Vec<(usize, Range<usize>)> {
    split_equal(&seqs.iter().map(|s| s.len()).collect::<Vec<_>>())
        .into_iter()
        .flatten()
        .collect()
}

/// The first of `set`'s rows when they are consecutive (then a plain slice holds them).
fn consecutive(set: &[usize]) -> Option<usize> {
    let &first = set.first()?;
    set.iter()
        .enumerate()
        .all(|(i, &r)| r == first + i)
        .then_some(first)
}

/// Rows `set` of `buf` (`n_cols` wide), copied in order into `tmp`.
fn gather<'a>(buf: &[f32], n_cols: usize, set: &[usize], tmp: &'a mut Vec<f32>) -> &'a [f32] {
    tmp.clear();
    for &r in set {
        tmp.extend_from_slice(&buf[r * n_cols..(r + 1) * n_cols]);
    }
    tmp
}

/// Passes the rows of `buf` (`n_cols` wide) to the observer, one call per micro-batch with its
/// rows in llama.cpp's order (`sets`: row numbers of each micro-batch, as [`matmul_sets`] takes).
pub(super) fn observe(
    observer: &mut Option<&mut dyn ActivationObserver>,
    name: &str,
    expert: Option<usize>,
    buf: &[f32],
    n_cols: usize,
    sets: &[Vec<usize>],
) {
    let Some(obs) = observer.as_deref_mut() else {
        return;
    };
    let mut tmp = Vec::new();
    for set in sets {
        let rows = match consecutive(set) {
            Some(first) => &buf[first * n_cols..(first + set.len()) * n_cols],
            None => gather(buf, n_cols, set, &mut tmp),
        };
        if !rows.is_empty() {
            obs.observe(name, expert, rows, n_cols);
        }
    }
}
