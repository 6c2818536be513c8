//! Recognising a BPE pre-tokenizer the converter's hash table does not know: the
//! `pre_tokenizer` that `tokenizer.json` declares is reduced to the regexes it applies (Split
//! regexes, `Digits`, `ByteLevel`'s GPT-2 regex), matched against the llama.cpp
//! pre-tokenizers of [`super::pre_table`], and a match is accepted only if qforge's llama.cpp
//! tokenizer, built from the produced metadata, gives the same ids as the HF tokenizer on
//! probe texts ([`verify`]).

use qforge_calibration::tokenizer::Tokenizer;
use qforge_formats::gguf::{GgufHeader, GgufValue};
use serde_json::Value;

use super::hf::HfTokenizer;
use super::pre_table::{normalize, Step, GPT2_RE, PRE_SPECS};
use super::CHKTXT;

/// Texts tokenized both ways by [`verify`] (besides the converter's `chktxt`).
pub const PROBES: &[&str] = &[
    "Hello world! It's 2024-05-17, and we've got 1234567 tokens... don't we?\n\n\tdef f(x):\n        return x**2  # squared\n",
    "Ünïcödé façade — naïve café; Ελληνικά, русский, 日本語のテキスト, 한국어 문장, العربية, हिन्दी.  \r\n  trailing   ",
    "URLs: https://example.com/a_b?c=1&d=2 emails a.b@c.de $100.00 50% <tag attr=\"v\">x</tag> {\"k\": [1, 2.5e-3]}",
];

/// `tokenizer.json`'s pre-tokenizer as regexes in order and whether it is byte-level.
fn declared(json: &Value) -> Result<(Vec<String>, bool), String> {
    let pre = match json.get("pre_tokenizer") {
        None | Some(Value::Null) => return Err("tokenizer.json has no pre_tokenizer".into()),
        Some(p) => p,
    };
    let steps: Vec<&Value> = match pre.get("type").and_then(Value::as_str) {
        Some("Sequence") => pre
            .get("pretokenizers")
            .and_then(Value::as_array)
            .ok_or("Sequence pre_tokenizer without pretokenizers")?
            .iter()
            .collect(),
        _ => vec![pre],
    };
    let mut regexes = Vec::new();
    let mut byte_level = false;
    for s in steps {
        let ty = s.get("type").and_then(Value::as_str).unwrap_or("?");
        match ty {
            "Split" => {
                let pat = s.get("pattern");
                let re = if let Some(r) = pat.and_then(|p| p.get("Regex")).and_then(Value::as_str) {
                    r.to_string()
                } else if let Some(l) = pat.and_then(|p| p.get("String")).and_then(Value::as_str) {
                    regex::escape(l)
                } else {
                    return Err("Split pre-tokenizer without a pattern".into());
                };
                let behavior = s.get("behavior").and_then(Value::as_str).unwrap_or("?");
                if behavior != "Isolated" {
                    return Err(format!(
                        "Split behavior {behavior} has no llama.cpp equivalent (only Isolated)"
                    ));
                }
                if s.get("invert").and_then(Value::as_bool).unwrap_or(false) {
                    return Err("an inverted Split has no llama.cpp equivalent".into());
                }
                regexes.push(re);
            }
            "Digits" => {
                let individual = s
                    .get("individual_digits")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let (r, _) = normalize(&[Step::Digits(individual)]);
                regexes.extend(r);
            }
            "ByteLevel" => {
                if s.get("add_prefix_space")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
                {
                    return Err(
                        "ByteLevel with add_prefix_space = true has no llama.cpp equivalent".into(),
                    );
                }
                if s.get("use_regex").and_then(Value::as_bool).unwrap_or(true) {
                    regexes.push(GPT2_RE.to_string());
                }
                byte_level = true;
            }
            other => {
                return Err(format!(
                    "pre-tokenizer step {other} has no llama.cpp equivalent"
                ))
            }
        }
    }
    Ok((regexes, byte_level))
}

/// llama.cpp pre-tokenizer names whose regexes are those `tokenizer_json` declares, the
/// ones whose `ignore_merges` matches the BPE model's first; an error says why there are none.
pub fn candidates(tokenizer_json: &Value) -> Result<Vec<&'static str>, String> {
    let (regexes, byte_level) = declared(tokenizer_json)?;
    if !byte_level {
        return Err("its pre_tokenizer is not byte-level (no ByteLevel step)".into());
    }
    let ignore_merges = tokenizer_json
        .get("model")
        .and_then(|m| m.get("ignore_merges"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut found: Vec<&'static str> = Vec::new();
    for pass in [true, false] {
        for s in PRE_SPECS {
            if (s.ignore_merges == ignore_merges) == pass
                && normalize(s.steps) == (regexes.clone(), true)
            {
                found.push(s.name);
            }
        }
    }
    if found.is_empty() {
        return Err(format!(
            "its pre_tokenizer (regexes {regexes:?}) matches no llama.cpp pre-tokenizer qforge knows"
        ));
    }
    Ok(found)
}

/// Checks that the llama.cpp tokenizer described by `kvs` tokenizes [`CHKTXT`] and
/// [`PROBES`] exactly as the HF tokenizer does (without special tokens on either side).
pub(crate) fn verify(hf: &HfTokenizer, kvs: &[(String, GgufValue)]) -> Result<(), String> {
    let header = GgufHeader {
        version: 3,
        kvs: kvs.to_vec(),
        tensors: Vec::new(),
        alignment: 32,
        data_offset: 0,
    };
    let ours = Tokenizer::from_gguf(&header)
        .map_err(|e| format!("qforge's tokenizer refuses the metadata: {e}"))?;
    for (i, text) in std::iter::once(CHKTXT)
        .chain(PROBES.iter().copied())
        .enumerate()
    {
        let want = hf.encode(text, false).map_err(|e| e.to_string())?;
        let got = ours.encode(text, false, false);
        if want != got {
            let at = want
                .iter()
                .zip(&got)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len().min(got.len()));
            return Err(format!(
                "probe {i} differs at token {at}: HF gives {:?}, llama.cpp would give {:?}",
                &want[at..(at + 4).min(want.len())],
                &got[at..(at + 4).min(got.len())]
            ));
        }
    }
    Ok(())
}
