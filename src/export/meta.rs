//! Typed reads of a GGUF model's metadata, with errors naming the file and key.

use super::error::ExportError;
use qforge_formats::gguf::{GgufArray, GgufValue};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The metadata of the model being exported.
pub struct Meta<'a> {
    /// The GGUF file (first shard), for errors.
    pub path: PathBuf,
    /// `general.architecture`.
    pub arch: String,
    kvs: &'a [(String, GgufValue)],
}

impl<'a> Meta<'a> {
    /// Wraps `kvs` read from `path`; `general.architecture` must be a string.
    pub fn new(path: &Path, kvs: &'a [(String, GgufValue)]) -> Result<Self, ExportError> {
        let arch = kvs
            .iter()
            .find(|(k, _)| k == "general.architecture")
            .and_then(|(_, v)| v.as_str())
            .ok_or_else(|| {
                ExportError::meta(path, "general.architecture", "missing or not a string")
            })?
            .to_string();
        Ok(Meta {
            path: path.to_path_buf(),
            arch,
            kvs,
        })
    }

    /// Every key-value pair, in file order.
    pub fn kvs(&self) -> &'a [(String, GgufValue)] {
        self.kvs
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a GgufValue> {
        self.kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `{arch}.{suffix}`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch)
    }

    /// An optional non-negative integer `{arch}.{suffix}`.
    pub fn opt_u64(&self, suffix: &str) -> Result<Option<u64>, ExportError> {
        let key = self.key(suffix);
        match self.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .and_then(|i| u64::try_from(i).ok())
                .map(Some)
                .ok_or_else(|| ExportError::meta(&self.path, &key, "not a non-negative integer")),
        }
    }

    /// A required non-negative integer `{arch}.{suffix}`.
    pub fn u64(&self, suffix: &str) -> Result<u64, ExportError> {
        self.opt_u64(suffix)?
            .ok_or_else(|| ExportError::meta(&self.path, &self.key(suffix), "missing"))
    }

    /// An optional float `{arch}.{suffix}` (an f32 is given as its shortest decimal form).
    pub fn opt_f64(&self, suffix: &str) -> Result<Option<f64>, ExportError> {
        let key = self.key(suffix);
        match self.get(&key) {
            None => Ok(None),
            Some(GgufValue::F32(x)) => Ok(Some(f32_as_f64(*x))),
            Some(GgufValue::F64(x)) => Ok(Some(*x)),
            Some(v) => v
                .as_int()
                .map(|i| Some(i as f64))
                .ok_or_else(|| ExportError::meta(&self.path, &key, "not a number")),
        }
    }

    /// An optional string `{arch}.{suffix}`.
    pub fn opt_str(&self, suffix: &str) -> Result<Option<&'a str>, ExportError> {
        let key = self.key(suffix);
        match self.get(&key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| ExportError::meta(&self.path, &key, "not a string")),
        }
    }

    /// A token id `tokenizer.ggml.{name}_token_id`, if present and an integer.
    pub fn token_id(&self, name: &str) -> Option<u64> {
        self.get(&format!("tokenizer.ggml.{name}_token_id"))
            .and_then(GgufValue::as_int)
            .and_then(|i| u64::try_from(i).ok())
    }

    /// A string key anywhere in the metadata (`general.name` ...).
    pub fn any_str(&self, key: &str) -> Option<&'a str> {
        self.get(key).and_then(GgufValue::as_str)
    }

    /// An optional integer array `{arch}.{suffix}` (per-layer values).
    pub fn opt_int_array(&self, suffix: &str) -> Option<Vec<i128>> {
        let a = self.get(&self.key(suffix))?.as_array()?;
        (0..a.len()).map(|i| a.get_int(i)).collect()
    }

    /// Whether `{arch}.{suffix}` is an array (a per-layer value).
    pub fn is_array(&self, suffix: &str) -> bool {
        matches!(self.get(&self.key(suffix)), Some(GgufValue::Array(_)))
    }
}

/// An f32 as the f64 of its shortest decimal form (`1e-5f32` gives `1e-5`, not
/// `9.99999974e-6`), which is what a config.json written by Python held.
pub fn f32_as_f64(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(x as f64)
}

/// An f32 as a JSON number (see [`f32_as_f64`]); non-finite values become `null`.
pub fn f32_json(x: f32) -> Value {
    serde_json::Number::from_f64(f32_as_f64(x)).map_or(Value::Null, Value::Number)
}

/// An F32 array's values.
pub fn f32_array(v: &GgufValue) -> Option<&[f32]> {
    match v {
        GgufValue::Array(GgufArray::F32(a)) => Some(a),
        _ => None,
    }
}
