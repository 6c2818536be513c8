//! A checkpoint as the input of `qforge quantize`'s pipeline: [`HfModel`] is a
//! [`VirtualModel`] whose metadata, tensor list and tensor data are those of the file the
//! converter would write, so that `qforge convert --type Q4_K_M` quantizes exactly what
//! llama-quantize reads from `convert_hf_to_gguf.py --outtype f32`'s output, without the file.

use super::HfModel;
use crate::pipeline::{TensorData, VirtualModel};
use qforge_formats::ggml::GgmlType;
use qforge_formats::gguf::{TensorInfo, GGUF_DEFAULT_ALIGNMENT};
use std::path::Path;

impl VirtualModel for HfModel {
    fn location(&self) -> &Path {
        self.dir()
    }

    fn kvs(&self) -> &[(String, qforge_formats::gguf::GgufValue)] {
        HfModel::kvs(self)
    }

    /// The tensors with the offsets they would have in the file (each padded to 32 bytes).
    fn tensors(&self) -> Vec<TensorInfo> {
        let mut offset = 0u64;
        self.tensors()
            .iter()
            .map(|t| {
                let info = TensorInfo {
                    name: t.name.clone(),
                    ty: t.ty,
                    dims: t.dims(),
                    offset,
                };
                let bytes = t.ty.row_size(t.n_elements()).unwrap_or(0);
                offset += bytes.div_ceil(GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
                info
            })
            .collect()
    }

    /// F32 tensors as their values (no byte copy), others encoded in their type; the
    /// checkpoint pages they were computed from are released at once.
    fn tensor_data(&self, i: usize) -> anyhow::Result<TensorData> {
        let data = if HfModel::tensors(self)[i].ty == GgmlType::F32 {
            TensorData::F32(self.tensor_values(i)?)
        } else {
            TensorData::Bytes(self.tensor_bytes(i)?)
        };
        self.release(i);
        Ok(data)
    }
}
