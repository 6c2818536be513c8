//! The output metadata of a quantization run, assembled exactly as llama-quantize assembles it:
//! input KVs copied in order (`gguf_set_kv`), `general.quantization_version` and
//! `general.file_type` re-set, `split.*` removed, then `--override-kv` entries and the
//! `quantize.imatrix.*` entries, each set with ggml's remove-then-append semantics.

use qforge_formats::gguf::{GgufArray, GgufValue};
use thiserror::Error;

/// `GGML_QNT_VERSION`, written as `general.quantization_version`.
pub const GGML_QNT_VERSION: u32 = 2;

/// A `--override-kv KEY=TYPE:VALUE` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct KvOverride {
    /// Metadata key.
    pub key: String,
    /// Value as it will be written.
    pub value: GgufValue,
}

/// A malformed `--override-kv` argument.
#[derive(Debug, Error, PartialEq)]
#[error("malformed KV override '{arg}': {reason}")]
pub struct KvOverrideError {
    arg: String,
    reason: &'static str,
}

impl std::str::FromStr for KvOverride {
    type Err = KvOverrideError;

    /// Parses `KEY=int:N`, `KEY=float:F`, `KEY=bool:true|false` or `KEY=str:S` as llama.cpp's
    /// `string_parse_kv_override` does. Integers are written as u32 of their absolute value
    /// and floats as f32, as llama-quantize writes them.
    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        let err = |reason| KvOverrideError {
            arg: arg.to_string(),
            reason,
        };
        let (key, rest) = arg
            .split_once('=')
            .ok_or_else(|| err("expected KEY=TYPE:VALUE"))?;
        if key.len() >= 128 {
            return Err(err("key longer than 127 bytes"));
        }
        let value = if let Some(v) = rest.strip_prefix("int:") {
            GgufValue::U32(c_atol(v).unsigned_abs() as u32)
        } else if let Some(v) = rest.strip_prefix("float:") {
            GgufValue::F32(c_atof(v) as f32)
        } else if let Some(v) = rest.strip_prefix("bool:") {
            match v {
                "true" => GgufValue::Bool(true),
                "false" => GgufValue::Bool(false),
                _ => return Err(err("invalid boolean value")),
            }
        } else if let Some(v) = rest.strip_prefix("str:") {
            if v.len() > 127 {
                return Err(err("value cannot exceed 127 chars"));
            }
            GgufValue::string(v)
        } else {
            return Err(err("invalid type (expected int, float, bool or str)"));
        };
        Ok(KvOverride {
            key: key.to_string(),
            value,
        })
    }
}

/// C `atol`: leading whitespace, optional sign, decimal digits; anything else stops the parse.
fn c_atol(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.wrapping_mul(10).wrapping_add((b - b'0') as i64);
    }
    if neg {
        v.wrapping_neg()
    } else {
        v
    }
}

/// C `atof` on the longest numeric prefix.
fn c_atof(s: &str) -> f64 {
    let s = s.trim_start();
    (1..=s.len())
        .rev()
        .filter(|&i| s.is_char_boundary(i))
        .find_map(|i| s[..i].parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Ordered metadata with ggml's `gguf_set_val_*` semantics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    kvs: Vec<(String, GgufValue)>,
}

impl Metadata {
    /// Copies `kvs` as `gguf_set_kv` does. ggml re-creates strings from C strings, so a string
    /// holding a NUL byte is cut there.
    pub fn copied_from(kvs: &[(String, GgufValue)]) -> Self {
        let mut m = Metadata::default();
        for (k, v) in kvs {
            m.set(k, c_string_value(v));
        }
        m
    }

    /// Removes `key` if present, then appends it with `value`.
    pub fn set(&mut self, key: &str, value: GgufValue) {
        self.remove(key);
        self.kvs.push((key.to_string(), value));
    }

    /// Removes `key` if present.
    pub fn remove(&mut self, key: &str) {
        self.kvs.retain(|(k, _)| k != key);
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries in order.
    pub fn entries(&self) -> &[(String, GgufValue)] {
        &self.kvs
    }
}

fn cut_at_nul(s: &[u8]) -> Vec<u8> {
    s.split(|b| *b == 0).next().unwrap_or_default().to_vec()
}

fn c_string_value(v: &GgufValue) -> GgufValue {
    match v {
        GgufValue::String(s) => GgufValue::String(cut_at_nul(s)),
        GgufValue::Array(GgufArray::String(a)) => {
            GgufValue::Array(GgufArray::String(a.iter().map(|s| cut_at_nul(s)).collect()))
        }
        other => other.clone(),
    }
}

/// What an imatrix run contributes to the output metadata (`quantize.imatrix.*`).
#[derive(Clone, Debug, PartialEq)]
pub struct ImatrixInfo {
    /// The path as given on the command line.
    pub file: String,
    /// The first dataset recorded in the imatrix, if any.
    pub dataset: Option<String>,
    /// Entries kept after the include/exclude filters.
    pub entries: usize,
    /// Chunks the imatrix was computed on (llama-quantize writes it only when positive).
    pub chunks: i32,
}

fn truncate_127(s: &str) -> String {
    let b = s.as_bytes();
    String::from_utf8_lossy(&b[..b.len().min(127)]).into_owned()
}

/// Builds the output metadata of a quantization to `ftype` (see the module documentation).
pub fn output_metadata(
    input: &[(String, GgufValue)],
    ftype: u32,
    overrides: &[KvOverride],
    imatrix: Option<&ImatrixInfo>,
) -> Metadata {
    let mut m = Metadata::copied_from(input);
    m.set(
        "general.quantization_version",
        GgufValue::U32(GGML_QNT_VERSION),
    );
    m.set("general.file_type", GgufValue::U32(ftype));
    for k in ["split.no", "split.count", "split.tensors.count"] {
        m.remove(k);
    }
    for o in overrides {
        m.set(&o.key, o.value.clone());
    }
    if let Some(im) = imatrix {
        m.set(
            "quantize.imatrix.file",
            GgufValue::string(truncate_127(&im.file)),
        );
        if let Some(ds) = &im.dataset {
            m.set(
                "quantize.imatrix.dataset",
                GgufValue::string(truncate_127(ds)),
            );
        }
        m.set(
            "quantize.imatrix.entries_count",
            GgufValue::U32(im.entries as u32),
        );
        if im.chunks > 0 {
            m.set(
                "quantize.imatrix.chunks_count",
                GgufValue::U32(im.chunks as u32),
            );
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_like_llama_cpp() {
        let o: KvOverride = "llama.context_length=int:-4096".parse().unwrap();
        assert_eq!(o.value, GgufValue::U32(4096));
        let o: KvOverride = "a.b=float:0.5x".parse().unwrap();
        assert_eq!(o.value, GgufValue::F32(0.5));
        let o: KvOverride = "a.b=bool:false".parse().unwrap();
        assert_eq!(o.value, GgufValue::Bool(false));
        let o: KvOverride = "a.b=str:hello=world".parse().unwrap();
        assert_eq!(o.value, GgufValue::string("hello=world"));
        assert!("a.b=bool:yes".parse::<KvOverride>().is_err());
        assert!("a.b".parse::<KvOverride>().is_err());
        assert!("a.b=list:1".parse::<KvOverride>().is_err());
    }

    #[test]
    fn set_removes_then_appends() {
        let input = vec![
            (
                "general.architecture".to_string(),
                GgufValue::string("llama"),
            ),
            ("general.file_type".to_string(), GgufValue::U32(1)),
            (
                "general.quantization_version".to_string(),
                GgufValue::U32(2),
            ),
            ("split.count".to_string(), GgufValue::U16(2)),
            ("x".to_string(), GgufValue::string("a\0b")),
        ];
        let m = output_metadata(&input, 15, &[], None);
        let keys: Vec<&str> = m.entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "general.architecture",
                "x",
                "general.quantization_version",
                "general.file_type"
            ]
        );
        assert_eq!(m.get("x"), Some(&GgufValue::string("a")));
        assert_eq!(m.get("general.file_type"), Some(&GgufValue::U32(15)));
    }
}
