//! The file layout of the reference writer (`safetensors::serialize`, used by the Python
//! package too): tensors sorted by descending dtype alignment, then by name; data packed
//! back to back in that order; the compact JSON header, `__metadata__` first, padded with
//! spaces to a multiple of 8 bytes.

use super::dtype::Dtype;
use super::error::ErrorKind;
use super::header::{byte_size, TensorInfo, METADATA_KEY};
use super::MAX_HEADER_SIZE;
use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use std::collections::BTreeMap;

/// A tensor to write: its bytes come later from a [`TensorSource`](super::TensorSource).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Tensor name (any string but `__metadata__`).
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape, outermost dimension first.
    pub shape: Vec<u64>,
}

impl TensorSpec {
    /// A spec from its parts.
    pub fn new(name: impl Into<String>, dtype: Dtype, shape: impl Into<Vec<u64>>) -> Self {
        TensorSpec {
            name: name.into(),
            dtype,
            shape: shape.into(),
        }
    }

    /// `product(shape) * size(dtype)`, or `None` when it overflows.
    pub fn byte_len(&self) -> Option<u64> {
        byte_size(self.dtype, &self.shape)
    }
}

/// Checks `specs` (unique names, not `__metadata__`, sizes that fit in 64 bits) and returns
/// their byte sizes in the same order.
pub(crate) fn checked_sizes(specs: &[TensorSpec]) -> Result<Vec<u64>, ErrorKind> {
    let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(ErrorKind::Usage(format!(
            "tensor name {:?} given twice",
            w[0]
        )));
    }
    if names.binary_search(&METADATA_KEY).is_ok() {
        return Err(ErrorKind::Usage(format!(
            "{METADATA_KEY:?} cannot name a tensor"
        )));
    }
    specs
        .iter()
        .map(|s| {
            s.byte_len().ok_or_else(|| ErrorKind::SizeOverflow {
                tensor: s.name.clone(),
                shape: s.shape.clone(),
            })
        })
        .collect()
}

/// The header entries of a file holding `specs`, in file order (descending dtype, then name).
pub fn layout(specs: &[TensorSpec]) -> Result<Vec<TensorInfo>, ErrorKind> {
    let sizes = checked_sizes(specs)?;
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by(|&a, &b| {
        specs[b]
            .dtype
            .cmp(&specs[a].dtype)
            .then_with(|| specs[a].name.cmp(&specs[b].name))
    });
    let mut offset = 0u64;
    order
        .into_iter()
        .map(|i| {
            let s = &specs[i];
            let end = offset
                .checked_add(sizes[i])
                .ok_or_else(|| ErrorKind::Usage("total tensor size overflows 64 bits".into()))?;
            let info = TensorInfo::new(s.name.clone(), s.dtype, s.shape.clone(), (offset, end));
            offset = end;
            Ok(info)
        })
        .collect()
}

struct HeaderJson<'a> {
    metadata: Option<&'a BTreeMap<String, String>>,
    tensors: &'a [TensorInfo],
}

struct InfoJson<'a>(&'a TensorInfo);

impl Serialize for HeaderJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(
            self.tensors.len() + usize::from(self.metadata.is_some()),
        ))?;
        if let Some(m) = self.metadata {
            map.serialize_entry(METADATA_KEY, m)?;
        }
        for t in self.tensors {
            map.serialize_entry(t.name(), &InfoJson(t))?;
        }
        map.end()
    }
}

impl Serialize for InfoJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("TensorInfo", 3)?;
        st.serialize_field("dtype", self.0.dtype().name())?;
        st.serialize_field("shape", self.0.shape())?;
        st.serialize_field("data_offsets", &self.0.data_offsets())?;
        st.end()
    }
}

/// The 8-byte little-endian header length followed by the padded JSON header for `tensors`
/// (in file order, as [`layout`] returns them).
pub fn encode_header(
    tensors: &[TensorInfo],
    metadata: Option<&BTreeMap<String, String>>,
) -> Result<Vec<u8>, ErrorKind> {
    let mut json =
        serde_json::to_vec(&HeaderJson { metadata, tensors }).map_err(ErrorKind::HeaderJson)?;
    json.resize(json.len().next_multiple_of(8), b' ');
    let n = json.len() as u64;
    if n > MAX_HEADER_SIZE {
        return Err(ErrorKind::HeaderTooLarge {
            len: n,
            max: MAX_HEADER_SIZE,
        });
    }
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}
