//! `config.json`: reading it, and the hyperparameters as the converter sees them (transformers'
//! `AutoConfig(...).to_dict()`, i.e. the file plus the config class's defaults, with
//! `text_config` merged into the top level), and the `rope_parameters` the converter derives.

use super::error::ConvertError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Largest config.json accepted (real ones are a few kB).
const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a JSON object file, with errors naming it.
pub fn read_json_object(path: &Path) -> Result<Map<String, Value>, ConvertError> {
    let meta = std::fs::metadata(path).map_err(|e| ConvertError::io(path, e))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(ConvertError::config(
            path,
            format!(
                "{} bytes is more than the {MAX_CONFIG_BYTES}-byte limit",
                meta.len()
            ),
        ));
    }
    let text = std::fs::read(path).map_err(|e| ConvertError::io(path, e))?;
    let value: Value = serde_json::from_slice(&text)
        .map_err(|e| ConvertError::config(path, format!("malformed JSON: {e}")))?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ConvertError::config(path, "not a JSON object")),
    }
}

/// The checkpoint's hyperparameters.
#[derive(Clone, Debug)]
pub struct Hparams {
    /// config.json's path (for error messages).
    pub path: PathBuf,
    /// config.json as written (the converter's `Metadata` reads the raw file).
    pub raw: Map<String, Value>,
    /// The hyperparameters with the config class's defaults and `text_config` merged in.
    pub map: Map<String, Value>,
    /// `TextModel.rope_parameters`.
    pub rope: Map<String, Value>,
}

impl Hparams {
    /// Builds the converter's view: `defaults` fills what the file leaves out (as the transformers
    /// config class would), then `text_config` is merged over the top level and the rope
    /// parameters are mirrored as `TextModel.__init__` does.
    pub fn new(
        path: PathBuf,
        raw: Map<String, Value>,
        defaults: fn(&mut Map<String, Value>),
    ) -> Self {
        let mut map = raw.clone();
        defaults(&mut map);
        if let Some(Value::Object(tc)) = map.get("text_config").cloned() {
            for (k, v) in tc {
                map.insert(k, v);
            }
        }
        let mut h = Hparams {
            path,
            raw,
            map,
            rope: Map::new(),
        };
        h.rope = h.derive_rope();
        h
    }

    fn derive_rope(&self) -> Map<String, Value> {
        let mut rope = match self
            .map
            .get("rope_parameters")
            .or(self.map.get("rope_scaling"))
        {
            Some(Value::Object(m)) if !m.is_empty() => m.clone(),
            _ => Map::new(),
        };
        let find = |keys: &[&str]| self.find(keys).filter(|v| !v.is_null()).cloned();
        let theta = find(&[
            "global_rope_theta",
            "rope_global_theta",
            "rope_theta_global",
            "rope_theta",
            "rotary_emb_base",
        ]);
        let local_theta = find(&[
            "local_rope_theta",
            "rope_local_theta",
            "rope_theta_local",
            "swa_rope_theta",
            "rope_local_base_freq",
        ]);
        let partial = find(&["partial_rotary_factor", "rope_pct", "rope_percent"]);
        let orig = find(&["original_max_position_embeddings"]);
        if !rope.contains_key("full_attention") && !rope.contains_key("sliding_attention") {
            if let Some(t) = local_theta {
                let mut m = Map::new();
                m.insert("rope_theta".into(), t);
                rope.insert("sliding_attention".into(), Value::Object(m));
            }
            if !rope.contains_key("rope_theta") {
                if let Some(t) = theta {
                    rope.insert("rope_theta".into(), t);
                }
            }
            if !rope.contains_key("rope_type") {
                if let Some(t) = rope.get("type").filter(|v| !v.is_null()).cloned() {
                    rope.insert("rope_type".into(), t);
                }
            }
            if !rope.contains_key("partial_rotary_factor") {
                if let Some(p) = partial {
                    rope.insert("partial_rotary_factor".into(), p);
                }
            }
            if !rope.contains_key("original_max_position_embeddings") {
                if let Some(o) = orig {
                    rope.insert("original_max_position_embeddings".into(), o);
                }
            }
        }
        rope
    }

    /// `find_hparam(keys, optional=True)`: the value of the first key present (possibly null).
    pub fn find(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter().find_map(|k| self.map.get(*k))
    }

    /// The first present key's value when it is not null.
    pub fn find_some(&self, keys: &[&str]) -> Option<&Value> {
        self.find(keys).filter(|v| !v.is_null())
    }

    /// `rope_parameters.get("full_attention", rope_parameters)`.
    pub fn rope_params(&self) -> &Map<String, Value> {
        match self.rope.get("full_attention") {
            Some(Value::Object(m)) => m,
            _ => &self.rope,
        }
    }

    /// A required non-negative integer (the first of `keys` present).
    pub fn req_u64(&self, keys: &[&str]) -> Result<u64, ConvertError> {
        match self.find(keys) {
            Some(v) => self.as_u64(keys[0], v),
            None => Err(ConvertError::config(
                &self.path,
                format!("missing {}", keys.join(" / ")),
            )),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&self, keys: &[&str]) -> Result<Option<u64>, ConvertError> {
        match self.find_some(keys) {
            Some(v) => self.as_u64(keys[0], v).map(Some),
            None => Ok(None),
        }
    }

    /// An optional number.
    pub fn opt_f64(&self, keys: &[&str]) -> Result<Option<f64>, ConvertError> {
        match self.find_some(keys) {
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                ConvertError::config(&self.path, format!("{} is not a number: {v}", keys[0]))
            }),
            None => Ok(None),
        }
    }

    /// Reads `v` (the value of `key`) as a non-negative integer that fits GGUF's u32 fields.
    pub fn as_u64(&self, key: &str, v: &Value) -> Result<u64, ConvertError> {
        v.as_u64().filter(|&n| n <= u32::MAX as u64).ok_or_else(|| {
            ConvertError::config(&self.path, format!("{key} is not a 32-bit count: {v}"))
        })
    }

    /// Reads a number for an f32 field.
    pub fn num(&self, key: &str, v: &Value) -> Result<f64, ConvertError> {
        v.as_f64()
            .ok_or_else(|| ConvertError::config(&self.path, format!("{key} is not a number: {v}")))
    }
}

/// Inserts `key: value` unless the file has the key (a config class default).
pub fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !map.contains_key(key) {
        map.insert(key.to_string(), value);
    }
}

/// Sets `key` to `value` when it is absent or null (`x if x is not None else ...`).
pub fn default_if_null(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// `rope_scaling["rope_type"] = rope_scaling["type"]`, as the transformers configs do.
pub fn standardize_rope_scaling(map: &mut Map<String, Value>) {
    if let Some(Value::Object(rs)) = map.get_mut("rope_scaling") {
        if let Some(t) = rs.get("type").cloned() {
            rs.insert("rope_type".into(), t);
        }
    }
}

/// `hidden_size // num_attention_heads` when both are integers.
pub fn derived_head_dim(map: &Map<String, Value>) -> Option<Value> {
    let h = map.get("hidden_size")?.as_u64()?;
    let n = map.get("num_attention_heads")?.as_u64()?;
    (n > 0).then(|| Value::from(h / n))
}
