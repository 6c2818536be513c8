//! A model opened for evaluation: weights for the forward pass plus its tokenizer.

use anyhow::{Context, Result};
use qforge::convert::weight_source::HfWeights;
use qforge::convert::{hub, HfModel};
use qforge_calibration::backend::CpuBackend;
use qforge_calibration::eval::log_softmax::{compress_chunk, compressed_row_len};
use qforge_calibration::eval::{kld::BaseLogProbs, ChunkPlan, EvalError};
use qforge_calibration::model::{ActivationObserver, HParams, Model};
use qforge_calibration::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};

/// A model ready to evaluate.
pub struct EvalModel {
    path: PathBuf,
    model: Model,
    tokenizer: Tokenizer,
    /// The repo's checkpoint view, kept while the model is in use.
    _hub: Option<hub::ResolvedSource>,
}

impl EvalModel {
    /// Opens a model: a GGUF file, or a Hugging Face checkpoint directory evaluated as the GGUF
    /// file `qforge convert DIR --type auto` writes from it (see [`EvalModel::open_hf`]).
    ///
    /// A path that does not exist and reads as a Hugging Face repo id (`org/name[@revision]`,
    /// not ending in `.gguf`) is resolved as `qforge convert` resolves it (cache, else download).
    pub fn open(path: &Path) -> Result<Self> {
        let hub = match path.to_str() {
            Some(s) if !path.exists() && !s.ends_with(".gguf") && hub::RepoId::parse(s).is_ok() => {
                Some(hub::resolve(path, &hub::HubEnv::from_env())?)
            }
            _ => None,
        };
        let path = hub.as_ref().map_or(path, |h| h.dir());
        let (model, tokenizer) = if path.is_dir() {
            Self::open_hf(path)?
        } else {
            Self::open_gguf(path)?
        };
        if tokenizer.add_eos() {
            anyhow::bail!(
                "{}: the vocabulary appends EOS to every text; perplexity is not defined for it (llama-perplexity refuses it too)",
                path.display()
            );
        }
        Ok(EvalModel {
            path: path.to_path_buf(),
            model,
            tokenizer,
            _hub: hub,
        })
    }

    /// A GGUF file: the tokenizer from its header, the weights memory-mapped.
    fn open_gguf(path: &Path) -> Result<(Model, Tokenizer)> {
        let gguf = qforge_formats::gguf::GgufFile::open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let tokenizer = Tokenizer::from_gguf(gguf.header())
            .with_context(|| format!("{}: reading the tokenizer", path.display()))?;
        let hp = HParams::from_gguf(gguf.header(), path)
            .with_context(|| format!("{}: loading the model", path.display()))?;
        let model = Model::new(Box::new(gguf), hp, CpuBackend::new())
            .with_context(|| format!("{}: loading the model", path.display()))?;
        Ok((model, tokenizer))
    }

    /// A Hugging Face checkpoint directory, seen as the converter's `auto` output: every tensor
    /// in the type `qforge convert --type auto` gives it (weights in their stored precision,
    /// bf16 -> BF16, f16 -> F16, f32 checkpoints -> F16; norms and other vectors F32), the
    /// hyper-parameters and the tokenizer from the converted metadata. Tensors are converted when
    /// the forward pass first asks for them and then kept (see [`HfWeights`]), so the results
    /// equal evaluating the converted file.
    fn open_hf(dir: &Path) -> Result<(Model, Tokenizer)> {
        let hf = HfModel::open(dir, None)
            .with_context(|| format!("{}: reading the Hugging Face checkpoint", dir.display()))?;
        let weights = HfWeights::new(hf);
        let header = weights
            .header()
            .with_context(|| format!("{}: laying out the converted tensors", dir.display()))?;
        let tokenizer = Tokenizer::from_gguf(&header)
            .with_context(|| format!("{}: reading the converted tokenizer", dir.display()))?;
        let hp = HParams::from_gguf(&header, dir)
            .with_context(|| format!("{}: reading the hyper-parameters", dir.display()))?;
        drop(header);
        let model = Model::new(Box::new(weights), hp, CpuBackend::new())
            .with_context(|| format!("{}: loading the model", dir.display()))?;
        Ok((model, tokenizer))
    }

    /// The file or directory it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Vocabulary size (logits per position).
    pub fn n_vocab(&self) -> usize {
        self.model.n_vocab()
    }

    /// The BOS id put at the start of every chunk, when the vocabulary adds BOS.
    pub fn chunk_bos(&self) -> Option<u32> {
        self.tokenizer
            .add_bos()
            .then(|| self.tokenizer.bos())
            .flatten()
    }

    /// Reads a text file and tokenizes it as llama-perplexity does (one trailing newline dropped,
    /// special tokens added, not parsed).
    pub fn tokenize_file(&self, file: &Path) -> Result<Vec<u32>> {
        let mut text =
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        if text.last() == Some(&b'\n') {
            text.pop();
        }
        Ok(self.tokenizer.encode_bytes(&text, true, false))
    }

    /// Like [`EvalModel::tokenize_file`], with special tokens in the text parsed when
    /// `parse_special` (llama-imatrix's `--parse-special`).
    pub fn tokenize_file_with(&self, file: &Path, parse_special: bool) -> Result<Vec<u32>> {
        let mut text =
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        if text.last() == Some(&b'\n') {
            text.pop();
        }
        Ok(self.tokenizer.encode_bytes(&text, true, parse_special))
    }

    /// Experts per MoE layer (0 for dense models).
    pub fn n_expert(&self) -> usize {
        self.model.hparams().n_expert
    }

    /// The forward pass with every position output and every weight product shown to
    /// `observer` (what llama-imatrix collects from).
    pub fn eval_observed(
        &self,
        seqs: &[Vec<u32>],
        observer: &mut dyn ActivationObserver,
    ) -> Result<Vec<Vec<f32>>, EvalError> {
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        self.model
            .eval_batch(&refs, 0, Some(observer))
            .map_err(EvalError::model)
    }

    /// The forward pass as the evaluations call it: several independent sequences at once, in
    /// llama.cpp's micro-batches (see `Model::eval_batch`), the logits of each from `first` on.
    pub fn eval_batch(&self, seqs: &[Vec<u32>], first: usize) -> Result<Vec<Vec<f32>>, EvalError> {
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        self.model
            .eval_batch(&refs, first, None)
            .map_err(EvalError::model)
    }
}

/// Base log-probabilities computed on the fly from a base model (no file in between), `n_seq`
/// chunks per forward pass.
pub struct ModelBase<'m> {
    model: &'m EvalModel,
    plan: ChunkPlan,
    tokens: Vec<u32>,
    n_seq: usize,
    next: usize,
    ready: std::collections::VecDeque<Vec<u16>>,
}

impl<'m> ModelBase<'m> {
    /// The base for `tokens` cut by `plan`, evaluated `n_seq` chunks at a time.
    pub fn new(model: &'m EvalModel, plan: ChunkPlan, tokens: Vec<u32>, n_seq: usize) -> Self {
        let n = plan.n_chunk * plan.n_ctx;
        ModelBase {
            model,
            plan,
            tokens: tokens[..n].to_vec(),
            n_seq: n_seq.max(1),
            next: 0,
            ready: Default::default(),
        }
    }

    /// Evaluates the next group of chunks and compresses their rows.
    fn fill(&mut self) -> Result<(), EvalError> {
        let nv = self.model.n_vocab();
        let group = self.next..(self.next + self.n_seq).min(self.plan.n_chunk);
        let mut eval = |seqs: &[Vec<u32>], first: usize| self.model.eval_batch(seqs, first);
        let outputs = self.plan.eval_group(
            &self.tokens,
            group.clone(),
            self.model.chunk_bos(),
            nv,
            &mut eval,
        )?;
        for (i, logits) in group.zip(outputs) {
            let targets = self.plan.targets(&self.tokens, i);
            let mut rows = vec![0u16; targets.len() * compressed_row_len(nv)];
            compress_chunk(&logits, nv, targets, &mut rows);
            self.ready.push_back(rows);
        }
        Ok(())
    }
}

impl BaseLogProbs for ModelBase<'_> {
    fn plan(&self) -> ChunkPlan {
        self.plan
    }
    fn n_vocab(&self) -> usize {
        self.model.n_vocab()
    }
    fn tokens(&self) -> &[u32] {
        &self.tokens
    }
    fn next_chunk(&mut self, rows: &mut Vec<u16>) -> Result<bool, EvalError> {
        if self.ready.is_empty() {
            if self.next == self.plan.n_chunk {
                return Ok(false);
            }
            self.fill()?;
        }
        self.next += 1;
        *rows = self.ready.pop_front().unwrap_or_default();
        Ok(true)
    }
}
