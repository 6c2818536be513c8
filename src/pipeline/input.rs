//! Where a quantization run reads its model from: a GGUF file (or split set), or a "virtual
//! GGUF" that computes each tensor on demand, such as a Hugging Face checkpoint seen as the file
//! the converter would write ([`crate::convert::HfModel`]). Both give the pipeline the same
//! three things: the metadata llama-quantize's loader would read, the tensor list in file order,
//! and each tensor's data in its stored type.

use qforge_formats::gguf::split::GgufSet;
use qforge_formats::gguf::{GgufValue, TensorInfo, GGUF_DEFAULT_ALIGNMENT};
use std::borrow::Cow;
use std::path::Path;

/// One tensor's data as a [`VirtualModel`] produces it.
pub enum TensorData {
    /// Bytes in the tensor's stored type.
    Bytes(Vec<u8>),
    /// The values of an F32 tensor (kept as `f32` so that they are 4-aligned and need no copy).
    F32(Vec<f32>),
}

impl TensorData {
    /// The data as stored in a GGUF file (little-endian; every supported host is).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            TensorData::Bytes(b) => b,
            TensorData::F32(v) => {
                // SAFETY: any f32 slice may be viewed as its bytes; u8 has alignment 1.
                unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 4) }
            }
        }
    }
}

/// A model that is not a file but behaves as one: its metadata and tensor list are known up
/// front, its tensors are computed one at a time.
pub trait VirtualModel: Send + Sync {
    /// What to call the model in messages (e.g. the checkpoint directory).
    fn location(&self) -> &Path;
    /// The metadata, in file order, as a loader reading the file would see it.
    fn kvs(&self) -> &[(String, GgufValue)];
    /// The tensors in file order, with the types, dimensions (innermost first) and data offsets
    /// the file would have.
    fn tensors(&self) -> Vec<TensorInfo>;
    /// The data of tensor `i` of [`VirtualModel::tensors`], in its stored type.
    fn tensor_data(&self, i: usize) -> anyhow::Result<TensorData>;
}

/// The input of a quantization run.
pub enum InputModel {
    /// A GGUF file or split set.
    File(GgufSet),
    /// A model computed on demand.
    Virtual(Box<dyn VirtualModel>),
}

/// Tensor data borrowed from a file or owned after computing it.
pub enum Data<'a> {
    /// From the file (memory-mapped or read).
    File(Cow<'a, [u8]>),
    /// Computed.
    Computed(TensorData),
}

impl Data<'_> {
    /// The bytes in the tensor's stored type.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Data::File(c) => c,
            Data::Computed(d) => d.as_bytes(),
        }
    }
}

impl InputModel {
    /// The metadata of the first (or only) file.
    pub fn kvs(&self) -> &[(String, GgufValue)] {
        match self {
            InputModel::File(s) => &s.first().header().kvs,
            InputModel::Virtual(v) => v.kvs(),
        }
    }

    /// Every tensor with its shard index, in file order. `index` of a virtual tensor is its
    /// position in [`VirtualModel::tensors`].
    pub fn tensors(&self) -> Vec<(usize, TensorInfo)> {
        match self {
            InputModel::File(s) => s.tensors().map(|(i, t)| (i, t.clone())).collect(),
            InputModel::Virtual(v) => v.tensors().into_iter().map(|t| (0, t)).collect(),
        }
    }

    /// Number of input files (1 for a virtual model).
    pub fn n_shards(&self) -> usize {
        match self {
            InputModel::File(s) => s.shards().len(),
            InputModel::Virtual(_) => 1,
        }
    }

    /// The data alignment of the input (`general.alignment`, 32 for a virtual model).
    pub fn alignment(&self) -> u64 {
        match self {
            InputModel::File(s) => s.first().header().alignment,
            InputModel::Virtual(_) => GGUF_DEFAULT_ALIGNMENT,
        }
    }

    /// Whether `path` is one of the input's files.
    pub fn has_file(&self, path: &Path) -> bool {
        match self {
            InputModel::File(s) => s.shards().iter().any(|f| super::same_file(f.path(), path)),
            InputModel::Virtual(_) => false,
        }
    }

    /// The data of `info` (shard `shard`, or position `index` of a virtual model).
    pub fn data(&self, shard: usize, index: usize, info: &TensorInfo) -> anyhow::Result<Data<'_>> {
        match self {
            InputModel::File(s) => Ok(Data::File(s.shards()[shard].tensor_data(info)?)),
            InputModel::Virtual(v) => Ok(Data::Computed(v.tensor_data(index)?)),
        }
    }

    /// Lets the operating system drop a file tensor's pages once it has been used.
    pub fn release(&self, shard: usize, info: &TensorInfo) {
        if let InputModel::File(s) = self {
            s.shards()[shard].release(info);
        }
    }
}
