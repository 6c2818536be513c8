//! `--tensor-type NAME=TYPE` and `--tensor-type-file` (`parse_tensor_type` and
//! `parse_tensor_type_file` in `tools/quantize/quantize.cpp`), and ggml type names as
//! `--output-tensor-type` / `--token-embedding-type` take them (`parse_ggml_type`).

use super::error::OverrideError;
use super::pattern;
use qforge_formats::ggml::GgmlType;
use regex::bytes::Regex;

/// One `--tensor-type` rule: tensors whose name the pattern finds a match in get `ty`.
///
/// The pattern is lower-cased when parsed (as llama-quantize does, escapes included: `\D`
/// becomes `\d`); tensor names are matched as they are. Rules are tried in the order given and
/// the first match wins.
#[derive(Clone, Debug)]
pub struct TensorTypeOverride {
    pattern: String,
    ty: GgmlType,
    regex: Regex,
}

impl TensorTypeOverride {
    /// Parses one `NAME=TYPE` argument: the name is everything before the first `=`, lower-cased;
    /// the type is a ggml type name, any case (see [`parse_ggml_type`]).
    pub fn parse(arg: &str) -> Result<Self, OverrideError> {
        let Some((name, ty)) = arg.split_once('=') else {
            return Err(OverrideError::Malformed(arg.to_owned()));
        };
        if name.is_empty() {
            return Err(OverrideError::MissingName);
        }
        if ty.is_empty() {
            return Err(OverrideError::MissingType);
        }
        let ty = parse_ggml_type(ty).ok_or_else(|| OverrideError::InvalidType(ty.to_owned()))?;
        Self::new(&name.to_ascii_lowercase(), ty)
    }

    /// A rule from a pattern used as given (not lower-cased) and a type.
    pub fn new(pattern: &str, ty: GgmlType) -> Result<Self, OverrideError> {
        let regex = pattern::compile(pattern)?;
        Ok(Self {
            pattern: pattern.to_owned(),
            ty,
            regex,
        })
    }

    /// The pattern, as matched.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The type the rule assigns.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// `std::regex_search(name, pattern)`: whether the pattern matches anywhere in `name`.
    pub fn is_match(&self, name: &str) -> bool {
        self.regex.is_match(name.as_bytes())
    }
}

/// Parses the contents of a `--tensor-type-file`: `NAME=TYPE` items separated by white space
/// (`file >> arg`), each as [`TensorTypeOverride::parse`].
pub fn parse_tensor_type_file(contents: &str) -> Result<Vec<TensorTypeOverride>, OverrideError> {
    contents
        .split([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        .filter(|s| !s.is_empty())
        .map(TensorTypeOverride::parse)
        .collect()
}

/// A ggml type from its name, ignoring ASCII case (`q8_0`, `Q4_K`, `bf16`, ...).
///
/// llama-quantize compares against `ggml_type_name` of every id, which for removed ids is a
/// placeholder such as `DEPRECATED`; qforge does not accept those placeholders.
pub fn parse_ggml_type(name: &str) -> Option<GgmlType> {
    GgmlType::from_name(name)
}

/// The first rule whose pattern matches `name`, with its index.
pub(crate) fn first_match<'a>(
    rules: &'a [TensorTypeOverride],
    name: &str,
) -> Option<(usize, &'a TensorTypeOverride)> {
    rules.iter().enumerate().find(|(_, r)| r.is_match(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_like_quantize_cpp() {
        let r = TensorTypeOverride::parse("ATTN_V=Q8_0").unwrap();
        assert_eq!((r.pattern(), r.ty()), ("attn_v", GgmlType::Q8_0));
        assert!(r.is_match("blk.0.attn_v.weight"));
        assert!(!r.is_match("blk.0.ATTN_V.weight"));
        // only the first '=' separates
        let r = TensorTypeOverride::parse("a=b=q4_0");
        assert_eq!(r.unwrap_err(), OverrideError::InvalidType("b=q4_0".into()));
        assert_eq!(
            TensorTypeOverride::parse("attn_v").unwrap_err().to_string(),
            "malformed tensor type 'attn_v'"
        );
        assert_eq!(
            TensorTypeOverride::parse("=q4_0").unwrap_err(),
            OverrideError::MissingName
        );
        assert_eq!(
            TensorTypeOverride::parse("attn_v=").unwrap_err(),
            OverrideError::MissingType
        );
        assert_eq!(
            TensorTypeOverride::parse("attn_v=q9_9")
                .unwrap_err()
                .to_string(),
            "invalid quantization type 'q9_9'"
        );
    }

    #[test]
    fn lower_casing_reaches_escapes() {
        // "\D" (non-digit) becomes "\d" (digit), exactly as in llama-quantize.
        let r = TensorTypeOverride::parse("blk\\.\\D=q8_0").unwrap();
        assert_eq!(r.pattern(), "blk\\.\\d");
        assert!(r.is_match("blk.1.attn_q.weight"));
    }

    #[test]
    fn files_split_on_white_space() {
        let rules = parse_tensor_type_file("attn_v=q8_0\n  ffn_down=Q6_K\tffn_up=q5_k\n").unwrap();
        let got: Vec<_> = rules
            .iter()
            .map(|r| (r.pattern().to_owned(), r.ty()))
            .collect();
        assert_eq!(
            got,
            [
                ("attn_v".to_owned(), GgmlType::Q8_0),
                ("ffn_down".to_owned(), GgmlType::Q6_K),
                ("ffn_up".to_owned(), GgmlType::Q5_K)
            ]
        );
        assert!(parse_tensor_type_file("attn_v=q8_0 oops").is_err());
        assert_eq!(
            first_match(&rules, "blk.0.ffn_up.weight").map(|(i, _)| i),
            Some(2)
        );
    }
}
