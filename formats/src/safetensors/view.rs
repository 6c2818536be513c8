//! A tensor's description and bytes as read from a file.

use super::dtype::Dtype;
use super::error::{ErrorKind, SafetensorsError};
use super::float;
use super::header::TensorInfo;
use std::borrow::Cow;
use std::path::Path;

/// One tensor of an open file: name, dtype, shape and little-endian bytes (borrowed from the
/// memory map, or owned when the file is read with [`ReadMode::Buffered`](super::ReadMode)).
#[derive(Debug)]
pub struct TensorView<'a> {
    path: &'a Path,
    info: &'a TensorInfo,
    data: Cow<'a, [u8]>,
}

impl<'a> TensorView<'a> {
    pub(crate) fn new(path: &'a Path, info: &'a TensorInfo, data: Cow<'a, [u8]>) -> Self {
        TensorView { path, info, data }
    }

    /// The file holding the tensor.
    pub fn path(&self) -> &'a Path {
        self.path
    }

    /// The tensor's header entry.
    pub fn info(&self) -> &'a TensorInfo {
        self.info
    }

    /// Its name.
    pub fn name(&self) -> &'a str {
        self.info.name()
    }

    /// Its element type.
    pub fn dtype(&self) -> Dtype {
        self.info.dtype()
    }

    /// Its shape, outermost dimension first.
    pub fn shape(&self) -> &'a [u64] {
        self.info.shape()
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.info.n_elements()
    }

    /// The raw little-endian bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The bytes, taking ownership (copying them when they are borrowed from a map).
    pub fn into_data(self) -> Cow<'a, [u8]> {
        self.data
    }

    /// Converts a float tensor (F8_E4M3, F8_E5M2, F16, BF16, F32, F64) to `f32` into `out`,
    /// which must hold exactly [`n_elements`](Self::n_elements) values. Every conversion is
    /// exact except F64, which rounds to nearest.
    pub fn to_f32_into(&self, out: &mut [f32]) -> Result<(), SafetensorsError> {
        let err = |kind| SafetensorsError::new(self.path, kind);
        if !self.dtype().is_float() {
            return Err(err(ErrorKind::NotFloat {
                tensor: self.name().to_owned(),
                dtype: self.dtype(),
            }));
        }
        if out.len() as u64 != self.n_elements() {
            return Err(err(ErrorKind::OutputLength {
                tensor: self.name().to_owned(),
                elements: self.n_elements(),
                out_len: out.len(),
            }));
        }
        let converted = float::to_f32(self.dtype(), &self.data, out);
        debug_assert!(converted, "validated header guarantees matching lengths");
        Ok(())
    }

    /// Converts a float tensor to a new `Vec<f32>`; see [`to_f32_into`](Self::to_f32_into).
    pub fn to_f32(&self) -> Result<Vec<f32>, SafetensorsError> {
        if !self.dtype().is_float() {
            return Err(SafetensorsError::new(
                self.path,
                ErrorKind::NotFloat {
                    tensor: self.name().to_owned(),
                    dtype: self.dtype(),
                },
            ));
        }
        // The element count is bounded by the bytes already in memory.
        let mut out = vec![0f32; self.data.len() / self.dtype().size() as usize];
        self.to_f32_into(&mut out)?;
        Ok(out)
    }
}
