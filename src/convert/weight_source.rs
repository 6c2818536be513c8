//! A Hugging Face checkpoint as the calibration crate's [`WeightSource`], so that the
//! evaluations (perplexity, kld, check, imatrix) run on a checkpoint directory exactly as on the
//! GGUF file `qforge convert` would write from it.
//!
//! [`HfWeights`] wraps an [`HfModel`] and hands out each tensor's bytes in its output type,
//! converted on first use and then kept: the forward pass asks for every weight on every call,
//! and a GGUF file's weights stay resident in the page cache the same way. Memory therefore
//! settles at the size of the GGUF file the conversion would write (all tensors in their output
//! type), plus, while one tensor is being converted, that tensor's transient f32 working copies
//! (the source values, one more for a Q/K head permutation or an expert stack, then the encoded
//! bytes). The safetensors parts are memory-mapped, so their pages are the page cache's.

use super::{ConvertError, HfModel};
use qforge_calibration::model::{ModelError, TensorMeta, WeightSource};
use qforge_formats::gguf::{GgufHeader, TensorInfo};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Alignment of the virtual header's tensor offsets (the GGUF writer's default).
const ALIGNMENT: u64 = 32;

/// A checkpoint's tensors, converted on demand and kept.
pub struct HfWeights {
    model: HfModel,
    index: HashMap<String, usize>,
    cache: Vec<OnceLock<Vec<u8>>>,
    /// Serialises conversions, so a tensor is converted once even when asked from two threads.
    converting: Mutex<()>,
}

impl HfWeights {
    /// Wraps `model`; nothing is read until a tensor is asked for.
    pub fn new(model: HfModel) -> Self {
        let index = model
            .tensors()
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let cache = model.tensors().iter().map(|_| OnceLock::new()).collect();
        HfWeights {
            model,
            index,
            cache,
            converting: Mutex::new(()),
        }
    }

    /// The wrapped checkpoint.
    pub fn model(&self) -> &HfModel {
        &self.model
    }

    /// The header of the GGUF file the conversion would write: its metadata in the converter's
    /// order and its tensor infos (offsets laid out as the writer aligns them). What readers of
    /// GGUF metadata (hyper-parameters, tokenizer) take as input.
    pub fn header(&self) -> Result<GgufHeader, ConvertError> {
        let mut tensors = Vec::with_capacity(self.model.tensors().len());
        let mut offset = 0u64;
        for spec in self.model.tensor_specs() {
            let n = spec.n_bytes().ok_or_else(|| {
                ConvertError::Usage(format!(
                    "tensor {}: dims {:?} are not whole {} blocks",
                    spec.name, spec.dims, spec.ty
                ))
            })?;
            tensors.push(TensorInfo {
                name: spec.name,
                ty: spec.ty,
                dims: spec.dims,
                offset,
            });
            offset += n.div_ceil(ALIGNMENT) * ALIGNMENT;
        }
        Ok(GgufHeader {
            version: 3,
            kvs: self.model.kvs().to_vec(),
            tensors,
            alignment: ALIGNMENT,
            data_offset: 0,
        })
    }

    /// Tensor `i`'s bytes, converted now if this is the first request.
    fn converted(&self, i: usize) -> Result<&[u8], ConvertError> {
        if let Some(b) = self.cache[i].get() {
            return Ok(b);
        }
        let _guard = self
            .converting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(b) = self.cache[i].get() {
            return Ok(b);
        }
        let bytes = self.model.tensor_bytes(i)?;
        self.model.release(i);
        Ok(self.cache[i].get_or_init(|| bytes))
    }
}

impl WeightSource for HfWeights {
    fn path(&self) -> &Path {
        self.model.dir()
    }

    fn meta(&self, name: &str) -> Option<TensorMeta> {
        let t = &self.model.tensors()[*self.index.get(name)?];
        Some(TensorMeta {
            ty: t.ty,
            dims: t.dims(),
        })
    }

    fn bytes(&self, name: &str) -> Result<Cow<'_, [u8]>, ModelError> {
        let i = *self
            .index
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.model.dir().to_path_buf(),
                name: name.to_string(),
            })?;
        // ModelError has no variant for a source's read error; `Unsupported` prints
        // "{path}: {reason}", which carries the conversion error as it is.
        self.converted(i)
            .map(Cow::Borrowed)
            .map_err(|e| ModelError::Unsupported {
                path: self.model.dir().to_path_buf(),
                reason: format!("converting tensor {name}: {e}"),
            })
    }
}
