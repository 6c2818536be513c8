//! Ordered GGUF metadata with the Python `GGUFWriter`'s semantics: a key written twice keeps its
//! first position and takes the new value; empty strings and empty arrays are not written.

use qforge_formats::gguf::{GgufArray, GgufValue};

/// Metadata in the order the converter adds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KvList {
    entries: Vec<(String, GgufValue)>,
}

impl KvList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or overwrites `key` (overwriting keeps the original position, as a Python dict does).
    pub fn set(&mut self, key: impl Into<String>, value: GgufValue) {
        let key = key.into();
        if let GgufValue::String(s) = &value {
            if s.is_empty() {
                return;
            }
        }
        if let GgufValue::Array(a) = &value {
            if a.is_empty() {
                return;
            }
        }
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// `add_string`.
    pub fn string(&mut self, key: impl Into<String>, value: &str) {
        self.set(key, GgufValue::string(value));
    }

    /// `add_uint32`.
    pub fn u32(&mut self, key: impl Into<String>, value: u32) {
        self.set(key, GgufValue::U32(value));
    }

    /// `add_float32`.
    pub fn f32(&mut self, key: impl Into<String>, value: f32) {
        self.set(key, GgufValue::F32(value));
    }

    /// An array of strings.
    pub fn strings(&mut self, key: impl Into<String>, values: &[String]) {
        let v = values.iter().map(|s| s.as_bytes().to_vec()).collect();
        self.set(key, GgufValue::Array(GgufArray::String(v)));
    }

    /// Appends every entry of `other` in order, with the same overwrite rule.
    pub fn extend(&mut self, other: impl IntoIterator<Item = (String, GgufValue)>) {
        for (k, v) in other {
            self.set(k, v);
        }
    }

    /// Looks up a value.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries in order.
    pub fn entries(&self) -> &[(String, GgufValue)] {
        &self.entries
    }

    /// Consumes the list.
    pub fn into_entries(self) -> Vec<(String, GgufValue)> {
        self.entries
    }
}
