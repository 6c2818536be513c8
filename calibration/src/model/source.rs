//! Where weights come from: a small trait (name -> type, dims, bytes), implemented for GGUF files;
//! a Hugging Face safetensors source can implement it too.

use super::error::ModelError;
use qforge_formats::ggml::GgmlType;
use qforge_formats::gguf::GgufFile;
use std::borrow::Cow;
use std::path::Path;

/// One tensor's type and dimensions (ne0 first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMeta {
    /// Element type.
    pub ty: GgmlType,
    /// Dimensions, innermost first.
    pub dims: Vec<u64>,
}

/// A set of named weight tensors in ggml types.
pub trait WeightSource: Send + Sync {
    /// The file or directory the weights come from (for error messages).
    fn path(&self) -> &Path;
    /// The type and dimensions of tensor `name`, if present.
    fn meta(&self, name: &str) -> Option<TensorMeta>;
    /// The raw bytes of tensor `name` in its ggml type.
    fn bytes(&self, name: &str) -> Result<Cow<'_, [u8]>, ModelError>;
}

impl WeightSource for GgufFile {
    fn path(&self) -> &Path {
        GgufFile::path(self)
    }

    fn meta(&self, name: &str) -> Option<TensorMeta> {
        self.header().tensor(name).map(|t| TensorMeta {
            ty: t.ty,
            dims: t.dims.clone(),
        })
    }

    fn bytes(&self, name: &str) -> Result<Cow<'_, [u8]>, ModelError> {
        let t = self
            .header()
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path().to_path_buf(),
                name: name.to_string(),
            })?;
        self.tensor_data(t).map_err(|source| ModelError::Gguf {
            path: self.path().to_path_buf(),
            source,
        })
    }
}
