//! An ordered key/value list with gguf-py `GGUFWriter` semantics.

use qforge_formats::gguf::{GgufArray, GgufValue};

/// Metadata in insertion order. As in gguf-py's `GGUFWriter.add_key_value`, writing a key
/// that is already present replaces its value but keeps its position, `add_array` with an
/// empty list writes nothing.
#[derive(Debug, Default, Clone)]
pub(crate) struct Kvs {
    items: Vec<(String, GgufValue)>,
}

impl Kvs {
    pub(crate) fn set(&mut self, key: &str, value: GgufValue) {
        match self.items.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.items.push((key.to_string(), value)),
        }
    }

    pub(crate) fn set_array(&mut self, key: &str, array: GgufArray) {
        if !array.is_empty() {
            self.set(key, GgufValue::Array(array));
        }
    }

    pub(crate) fn set_str(&mut self, key: &str, s: &str) {
        self.set(key, GgufValue::string(s));
    }

    pub(crate) fn set_bool(&mut self, key: &str, b: bool) {
        self.set(key, GgufValue::Bool(b));
    }

    pub(crate) fn into_vec(self) -> Vec<(String, GgufValue)> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_keeps_position_and_empty_arrays_are_skipped() {
        let mut kv = Kvs::default();
        kv.set_str("a", "1");
        kv.set_bool("b", true);
        kv.set_str("a", "2");
        kv.set_array("c", GgufArray::I32(vec![]));
        let v = kv.into_vec();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], ("a".to_string(), GgufValue::string("2")));
        assert_eq!(v[1].0, "b");
    }
}
