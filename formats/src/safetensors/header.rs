//! Parsing and validation of the JSON header of an untrusted safetensors file.
//!
//! The checks are those of the `safetensors` crate and the format's specification: the header
//! is a JSON object without duplicate keys; `__metadata__`, when present, maps strings to
//! strings; every other key is a tensor with a supported `dtype`, a `shape` of non-negative
//! integers and two `data_offsets` relative to the end of the header; each tensor's byte range
//! is exactly `product(shape) * size(dtype)` bytes (overflow-checked), and the ranges tile the
//! data section from its first to its last byte without overlaps or holes.

use super::dtype::Dtype;
use super::error::ErrorKind;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The key of the free-form string map in a header.
pub const METADATA_KEY: &str = "__metadata__";

/// Where one tensor lives in a safetensors file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

impl TensorInfo {
    /// Builds an entry whose byte range must already be consistent with its shape and dtype.
    pub(crate) fn new(
        name: String,
        dtype: Dtype,
        shape: Vec<u64>,
        data_offsets: (u64, u64),
    ) -> Self {
        TensorInfo {
            name,
            dtype,
            shape,
            data_offsets,
        }
    }

    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Its shape, outermost dimension first (row-major, as stored).
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// Its byte range `[start, end)` relative to the start of the data section.
    pub fn data_offsets(&self) -> (u64, u64) {
        self.data_offsets
    }

    /// Bytes it occupies.
    pub fn byte_len(&self) -> u64 {
        self.data_offsets.1 - self.data_offsets.0
    }

    /// Number of elements (`product(shape)`, 1 for a scalar).
    pub fn n_elements(&self) -> u64 {
        self.byte_len() / self.dtype.size()
    }
}

/// A validated header: tensors sorted by name and the `__metadata__` map.
#[derive(Clone, Debug, Default)]
pub struct Header {
    tensors: Vec<TensorInfo>,
    metadata: Option<BTreeMap<String, String>>,
}

impl Header {
    /// The tensors, sorted by name.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.tensors[i])
    }

    /// The `__metadata__` map, if the header has one.
    pub fn metadata(&self) -> Option<&BTreeMap<String, String>> {
        self.metadata.as_ref()
    }
}

/// The top-level JSON object as a list of entries, so that duplicate keys can be reported.
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(EntriesVisitor)
    }
}

/// Parses and validates header bytes (the `n` bytes after the length prefix) of a file whose
/// data section holds `data_len` bytes.
pub fn parse_header(json: &[u8], data_len: u64) -> Result<Header, ErrorKind> {
    let text = std::str::from_utf8(json).map_err(ErrorKind::HeaderNotUtf8)?;
    let Entries(mut entries) = serde_json::from_str(text).map_err(ErrorKind::HeaderJson)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ErrorKind::DuplicateKey(w[0].0.clone()));
    }
    let mut metadata = None;
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        if name == METADATA_KEY {
            metadata = Some(parse_metadata(value)?);
        } else {
            tensors.push(parse_tensor(name, value)?);
        }
    }
    for t in &tensors {
        check_extent(t, data_len)?;
    }
    check_tiling(&tensors, data_len)?;
    Ok(Header { tensors, metadata })
}

fn parse_metadata(value: Value) -> Result<BTreeMap<String, String>, ErrorKind> {
    let Value::Object(map) = value else {
        return Err(ErrorKind::BadMetadata(format!(
            "expected an object, found {}",
            kind_of(&value)
        )));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(ErrorKind::BadMetadata(format!(
                "value of {k:?} is {}, not a string",
                kind_of(&other)
            ))),
        })
        .collect()
}

fn parse_tensor(name: String, value: Value) -> Result<TensorInfo, ErrorKind> {
    let bad = |reason: String| ErrorKind::BadTensorEntry {
        tensor: name.clone(),
        reason,
    };
    let Value::Object(map) = value else {
        return Err(bad(format!(
            "expected an object, found {}",
            kind_of(&value)
        )));
    };
    let dtype_name = match map.get("dtype") {
        Some(Value::String(s)) => s,
        Some(other) => return Err(bad(format!("dtype is {}, not a string", kind_of(other)))),
        None => return Err(bad("missing dtype".into())),
    };
    let shape = match map.get("shape") {
        Some(Value::Array(a)) => a
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| bad("shape must be an array of non-negative integers".into()))?,
        Some(other) => return Err(bad(format!("shape is {}, not an array", kind_of(other)))),
        None => return Err(bad("missing shape".into())),
    };
    let data_offsets = match map.get("data_offsets") {
        Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_u64(), a[1].as_u64()) {
            (Some(s), Some(e)) => (s, e),
            _ => return Err(bad("data_offsets must be non-negative integers".into())),
        },
        Some(_) => return Err(bad("data_offsets must be an array of two integers".into())),
        None => return Err(bad("missing data_offsets".into())),
    };
    let Some(dtype) = Dtype::from_name(dtype_name) else {
        return Err(ErrorKind::UnsupportedDtype {
            tensor: name,
            dtype: dtype_name.clone(),
        });
    };
    Ok(TensorInfo {
        name,
        dtype,
        shape,
        data_offsets,
    })
}

/// `product(shape) * size(dtype)`, or `None` on overflow.
pub(crate) fn byte_size(dtype: Dtype, shape: &[u64]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))?
        .checked_mul(dtype.size())
}

/// One tensor's own checks: ordered offsets, a length matching shape and dtype, inside the data.
fn check_extent(t: &TensorInfo, data_len: u64) -> Result<(), ErrorKind> {
    let (start, end) = t.data_offsets;
    if end < start {
        return Err(ErrorKind::OffsetsReversed {
            tensor: t.name.clone(),
            start,
            end,
        });
    }
    let expected = byte_size(t.dtype, &t.shape).ok_or_else(|| ErrorKind::SizeOverflow {
        tensor: t.name.clone(),
        shape: t.shape.clone(),
    })?;
    if end - start != expected {
        return Err(ErrorKind::WrongByteLength {
            tensor: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            expected,
            actual: end - start,
        });
    }
    if end > data_len {
        return Err(ErrorKind::OutOfBounds {
            tensor: t.name.clone(),
            end,
            data_len,
        });
    }
    Ok(())
}

/// The byte ranges, in offset order, must start at 0, follow one another without overlap or
/// hole, and end exactly at the end of the data section.
fn check_tiling(tensors: &[TensorInfo], data_len: u64) -> Result<(), ErrorKind> {
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by(|a, b| {
        a.data_offsets
            .cmp(&b.data_offsets)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut covered = 0u64;
    let mut previous: Option<&TensorInfo> = None;
    for t in order {
        let start = t.data_offsets.0;
        if start < covered {
            let other = previous.map(|p| p.name.clone()).unwrap_or_default();
            return Err(ErrorKind::Overlap {
                tensor: t.name.clone(),
                start,
                other,
                other_end: covered,
            });
        }
        if start > covered {
            return Err(ErrorKind::Gap {
                tensor: t.name.clone(),
                start,
                expected: covered,
            });
        }
        covered = t.data_offsets.1;
        previous = Some(t);
    }
    if covered != data_len {
        return Err(ErrorKind::TrailingBytes { covered, data_len });
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
