//! The model hyper-parameters `llama-quantize`'s type selection reads, and how llama.cpp fills
//! them from GGUF metadata (`llama_model_base::load_hparams` in `src/llama-model.cpp`, plus the
//! per-architecture `load_arch_hparams` where they change these values).

use qforge_formats::gguf::GgufValue;
use thiserror::Error;

/// `LLAMA_MAX_LAYERS`: llama.cpp refuses models with more blocks.
pub const LLAMA_MAX_LAYERS: u32 = 512;

/// What the type-selection rules know about a model.
///
/// Field by field, with the GGUF keys that fill it (`{arch}` is `general.architecture`);
/// [`ModelDesc::from_metadata`] implements exactly this:
///
/// - `arch`: `general.architecture` (string).
/// - `n_layer_all`: `{arch}.block_count` (UINT32, required, 1..=512). Two architectures change
///   it after loading: `graniteswitch` adds a router layer (`block_count - nextn + 1`) and
///   `nanbeige` repeats its blocks (`(block_count - nextn) * {arch}.num_loops` when the loop
///   count is above 1). For `clip` (multimodal projectors) llama.cpp reads no hyper-parameters
///   at all and every field but `arch` is 0.
/// - `n_layer_nextn`: `{arch}.nextn_predict_layers` (UINT32, optional, default 0); only used
///   for the 70B test through `n_layer() = n_layer_all - n_layer_nextn`.
/// - `n_head`: `{arch}.attention.head_count` (UINT32 scalar, or an INT32/UINT32 array with one
///   element per block, of which element 0 is used); 0 when absent.
/// - `n_head_kv`: `{arch}.attention.head_count_kv`, same forms, layer 0; defaults to `n_head`.
/// - `n_expert`: `{arch}.expert_count` (UINT32, optional, default 0; `hunyuan-dense` and
///   `hunyuan_vl` turn a count of 1 into 0).
///
/// `--override-kv` values reach these fields too in llama-quantize (the loader applies them):
/// apply the overrides to the metadata before calling [`ModelDesc::from_metadata`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelDesc {
    /// `general.architecture`, e.g. `llama`, `falcon`, `qwen2`.
    pub arch: String,
    /// Number of blocks including MTP blocks (`hparams.n_layer_all`); the `ffn_*` rules use it as
    /// the layer count.
    pub n_layer_all: u32,
    /// Number of next-token-prediction blocks at the end (`hparams.n_layer_nextn`).
    pub n_layer_nextn: u32,
    /// Attention heads of layer 0.
    pub n_head: u32,
    /// Key/value heads of layer 0.
    pub n_head_kv: u32,
    /// Number of experts (0 for dense models).
    pub n_expert: u32,
}

/// Why GGUF metadata could not be turned into a [`ModelDesc`]. The messages are llama.cpp's.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelDescError {
    /// A required key is missing.
    #[error("key not found in model: {0}")]
    MissingKey(String),
    /// A key has a different GGUF type from the one llama.cpp reads it as.
    #[error("key {key} has wrong type {found} but expected type {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// Its type in the file.
        found: &'static str,
        /// The type llama.cpp requires.
        expected: &'static str,
    },
    /// A per-layer array has a length other than the block count.
    #[error("key {key} has wrong array length; expected {expected}, got {found}")]
    WrongArrayLength {
        /// The key.
        key: String,
        /// The block count.
        expected: u32,
        /// The array's length.
        found: usize,
    },
    /// A value is out of the range llama.cpp asserts on.
    #[error("invalid {key}: {value} ({reason})")]
    OutOfRange {
        /// The key.
        key: String,
        /// The value found.
        value: u64,
        /// What is required.
        reason: &'static str,
    },
}

impl ModelDesc {
    /// `hparams.n_layer()`: the blocks without the next-token-prediction ones.
    pub fn n_layer(&self) -> u32 {
        self.n_layer_all.saturating_sub(self.n_layer_nextn)
    }

    /// `hparams.n_gqa()` of layer 0: `n_head / n_head_kv`, or 0 when `n_head_kv` is 0. `None`
    /// when the model has no layers (`clip`), where llama.cpp aborts instead.
    pub fn n_gqa(&self) -> Option<u32> {
        if self.n_layer_all == 0 {
            return None;
        }
        Some(self.n_head.checked_div(self.n_head_kv).unwrap_or(0))
    }

    /// Whether llama.cpp classifies the model as `LLM_TYPE_70B`, which the `attn_v` rules bump:
    /// `llama`/`llama-embed` with 80 blocks, grouped-query attention and not 8 experts;
    /// `qwen2`, `deci` and `olmo` with 80 blocks; `jais2` with 68 blocks.
    pub fn is_70b(&self) -> bool {
        let n_layer = self.n_layer();
        match self.arch.as_str() {
            "llama" | "llama-embed" => {
                self.n_expert != 8 && n_layer == 80 && self.n_head != self.n_head_kv
            }
            "qwen2" | "deci" | "olmo" => n_layer == 80,
            "jais2" => n_layer == 68,
            _ => false,
        }
    }

    /// Builds the description from GGUF metadata as llama.cpp's loader does (see the type
    /// documentation for the keys). Type checks are llama.cpp's: scalar counts must be UINT32.
    pub fn from_metadata(kvs: &[(String, GgufValue)]) -> Result<Self, ModelDescError> {
        let get = |key: &str| kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let arch = match get("general.architecture") {
            None => String::new(),
            Some(GgufValue::String(s)) => String::from_utf8_lossy(s).into_owned(),
            Some(v) => return Err(wrong_type("general.architecture", v, "str")),
        };
        let mut desc = ModelDesc {
            arch,
            n_layer_all: 0,
            n_layer_nextn: 0,
            n_head: 0,
            n_head_kv: 0,
            n_expert: 0,
        };
        if desc.arch == "clip" {
            return Ok(desc);
        }
        let key = |suffix: &str| format!("{}.{suffix}", desc.arch);

        let k = key("block_count");
        let n_layer_all = get_u32(get(&k), &k)?.ok_or(ModelDescError::MissingKey(k.clone()))?;
        if n_layer_all == 0 || n_layer_all > LLAMA_MAX_LAYERS {
            return Err(out_of_range(k, n_layer_all, "must be in 1..=512"));
        }
        let k = key("nextn_predict_layers");
        let n_layer_nextn = get_u32(get(&k), &k)?.unwrap_or(0);
        if n_layer_nextn > n_layer_all {
            return Err(out_of_range(
                k,
                n_layer_nextn,
                "must not exceed the block count",
            ));
        }
        let k = key("expert_count");
        let mut n_expert = get_u32(get(&k), &k)?.unwrap_or(0);
        if matches!(desc.arch.as_str(), "hunyuan-dense" | "hunyuan_vl") && n_expert <= 1 {
            n_expert = 0;
        }
        let k = key("attention.head_count");
        let n_head = get_layer0(get(&k), &k, n_layer_all)?.unwrap_or(0);
        let k = key("attention.head_count_kv");
        let n_head_kv = get_layer0(get(&k), &k, n_layer_all)?.unwrap_or(n_head);

        desc.n_layer_all = n_layer_all;
        desc.n_layer_nextn = n_layer_nextn;
        desc.n_head = n_head;
        desc.n_head_kv = n_head_kv;
        desc.n_expert = n_expert;

        match desc.arch.as_str() {
            "graniteswitch" => {
                desc.n_layer_all = desc.n_layer() + 1;
                desc.n_layer_nextn = 1;
            }
            "nanbeige" => {
                let k = key("num_loops");
                let n_loops = get_u32(get(&k), &k)?.unwrap_or(1);
                if n_loops == 0 {
                    return Err(out_of_range(k, 0u32, "must be at least 1"));
                }
                if n_loops > 1 {
                    let total = u64::from(desc.n_layer()) * u64::from(n_loops);
                    if total > u64::from(LLAMA_MAX_LAYERS) {
                        return Err(out_of_range(k, u64::from(n_loops), "too many layers"));
                    }
                    desc.n_layer_all = total as u32;
                }
            }
            _ => {}
        }
        Ok(desc)
    }
}

fn type_name(v: &GgufValue) -> &'static str {
    match v {
        GgufValue::U8(_) => "u8",
        GgufValue::I8(_) => "i8",
        GgufValue::U16(_) => "u16",
        GgufValue::I16(_) => "i16",
        GgufValue::U32(_) => "u32",
        GgufValue::I32(_) => "i32",
        GgufValue::F32(_) => "f32",
        GgufValue::Bool(_) => "bool",
        GgufValue::String(_) => "str",
        GgufValue::Array(_) => "arr",
        GgufValue::U64(_) => "u64",
        GgufValue::I64(_) => "i64",
        GgufValue::F64(_) => "f64",
    }
}

fn wrong_type(key: &str, v: &GgufValue, expected: &'static str) -> ModelDescError {
    ModelDescError::WrongType {
        key: key.to_owned(),
        found: type_name(v),
        expected,
    }
}

fn out_of_range(key: String, value: impl Into<u64>, reason: &'static str) -> ModelDescError {
    ModelDescError::OutOfRange {
        key,
        value: value.into(),
        reason,
    }
}

/// A UINT32 scalar (`ml.get_key(..., uint32_t &)`).
fn get_u32(v: Option<&GgufValue>, key: &str) -> Result<Option<u32>, ModelDescError> {
    match v {
        None => Ok(None),
        Some(GgufValue::U32(x)) => Ok(Some(*x)),
        Some(v) => Err(wrong_type(key, v, "u32")),
    }
}

/// Element 0 of a per-layer value (`ml.get_key_or_arr`): a UINT32 scalar, or an INT32/UINT32
/// array of exactly `n_layer` elements.
fn get_layer0(
    v: Option<&GgufValue>,
    key: &str,
    n_layer: u32,
) -> Result<Option<u32>, ModelDescError> {
    use qforge_formats::gguf::GgufArray;
    match v {
        Some(GgufValue::Array(a)) => {
            if a.len() != n_layer as usize {
                return Err(ModelDescError::WrongArrayLength {
                    key: key.to_owned(),
                    expected: n_layer,
                    found: a.len(),
                });
            }
            match a {
                // llama.cpp copies the raw 32-bit pattern into a uint32_t array.
                GgufArray::U32(x) => Ok(x.first().copied()),
                GgufArray::I32(x) => Ok(x.first().map(|&h| h as u32)),
                _ => Err(ModelDescError::WrongType {
                    key: key.to_owned(),
                    found: "arr",
                    expected: "u32/i32 array",
                }),
            }
        }
        other => get_u32(other, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qforge_formats::gguf::GgufArray;

    fn kv(k: &str, v: GgufValue) -> (String, GgufValue) {
        (k.to_owned(), v)
    }

    #[test]
    fn llama_keys_fill_the_description() {
        let kvs = vec![
            kv("general.architecture", GgufValue::string("llama")),
            kv("llama.block_count", GgufValue::U32(80)),
            kv("llama.attention.head_count", GgufValue::U32(64)),
            kv("llama.attention.head_count_kv", GgufValue::U32(8)),
        ];
        let d = ModelDesc::from_metadata(&kvs).unwrap();
        assert_eq!(
            (d.n_layer_all, d.n_head, d.n_head_kv, d.n_expert),
            (80, 64, 8, 0)
        );
        assert_eq!(d.n_gqa(), Some(8));
        assert!(d.is_70b());
    }

    #[test]
    fn head_count_kv_defaults_to_head_count_and_arrays_use_layer_0() {
        let kvs = vec![
            kv("general.architecture", GgufValue::string("llama")),
            kv("llama.block_count", GgufValue::U32(2)),
            kv(
                "llama.attention.head_count",
                GgufValue::Array(GgufArray::I32(vec![8, 4])),
            ),
        ];
        let d = ModelDesc::from_metadata(&kvs).unwrap();
        assert_eq!((d.n_head, d.n_head_kv), (8, 8));
        assert!(!d.is_70b());
    }

    #[test]
    fn type_and_length_errors_carry_llama_cpp_messages() {
        let kvs = vec![
            kv("general.architecture", GgufValue::string("llama")),
            kv("llama.block_count", GgufValue::I32(2)),
        ];
        assert_eq!(
            ModelDesc::from_metadata(&kvs).unwrap_err().to_string(),
            "key llama.block_count has wrong type i32 but expected type u32"
        );
        let kvs = vec![
            kv("general.architecture", GgufValue::string("llama")),
            kv("llama.block_count", GgufValue::U32(3)),
            kv(
                "llama.attention.head_count",
                GgufValue::Array(GgufArray::U32(vec![8, 4])),
            ),
        ];
        assert_eq!(
            ModelDesc::from_metadata(&kvs).unwrap_err().to_string(),
            "key llama.attention.head_count has wrong array length; expected 3, got 2"
        );
        let kvs = vec![kv("general.architecture", GgufValue::string("llama"))];
        assert_eq!(
            ModelDesc::from_metadata(&kvs).unwrap_err(),
            ModelDescError::MissingKey("llama.block_count".into())
        );
    }

    #[test]
    fn clip_has_no_layers_and_no_gqa() {
        let kvs = vec![kv("general.architecture", GgufValue::string("clip"))];
        let d = ModelDesc::from_metadata(&kvs).unwrap();
        assert_eq!(d.n_layer_all, 0);
        assert_eq!(d.n_gqa(), None);
    }

    #[test]
    fn architecture_specific_layer_counts() {
        let kvs = vec![
            kv("general.architecture", GgufValue::string("graniteswitch")),
            kv("graniteswitch.block_count", GgufValue::U32(40)),
        ];
        let d = ModelDesc::from_metadata(&kvs).unwrap();
        assert_eq!((d.n_layer_all, d.n_layer_nextn, d.n_layer()), (41, 1, 40));
        let kvs = vec![
            kv("general.architecture", GgufValue::string("nanbeige")),
            kv("nanbeige.block_count", GgufValue::U32(10)),
            kv("nanbeige.num_loops", GgufValue::U32(3)),
        ];
        assert_eq!(ModelDesc::from_metadata(&kvs).unwrap().n_layer_all, 30);
        let kvs = vec![
            kv("general.architecture", GgufValue::string("qwen2")),
            kv("qwen2.block_count", GgufValue::U32(81)),
            kv("qwen2.nextn_predict_layers", GgufValue::U32(1)),
        ];
        assert!(ModelDesc::from_metadata(&kvs).unwrap().is_70b());
    }
}
