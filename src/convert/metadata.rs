//! `general.*` metadata as gguf-py's `Metadata` derives it (`metadata.py`): sampling defaults
//! from generation_config.json, then name / organization / basename / finetune / version /
//! size label from config.json's `_name_or_path` and the directory name, and the size label
//! from the parameter count (`utility.size_label`).
//!
//! The model card (README.md YAML front matter) is not read.

use super::kv::KvList;
use qforge_formats::gguf::GgufValue;
use regex::Regex;
use serde_json::{Map, Value};
use std::path::Path;

/// The authorship fields qforge derives.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Authorship {
    /// `general.name`.
    pub name: Option<String>,
    /// `general.organization`.
    pub organization: Option<String>,
    /// `general.basename`.
    pub basename: Option<String>,
    /// `general.finetune`.
    pub finetune: Option<String>,
    /// `general.version`.
    pub version: Option<String>,
    /// `general.size_label`.
    pub size_label: Option<String>,
}

/// Parameter counts as `GGUFWriter.get_total_parameter_count` returns them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamCount {
    /// All parameters.
    pub total: u64,
    /// Parameters outside expert tensors.
    pub shared: u64,
    /// Parameters of one expert (summed over expert tensors).
    pub expert: u64,
    /// Average expert count.
    pub expert_count: u64,
}

/// Counts parameters over (name, numpy shape) pairs.
pub fn param_count<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u64])>) -> ParamCount {
    let mut c = ParamCount::default();
    let (mut expert_sum, mut n_expert_tensors) = (0u64, 0u64);
    for (name, shape) in tensors {
        let size: u64 = shape.iter().product();
        if name.contains("_exps.") && shape.len() >= 3 {
            let n = shape[shape.len() - if name.contains(".bias") { 2 } else { 3 }];
            c.expert += size.checked_div(n).unwrap_or(0);
            expert_sum += n;
            n_expert_tensors += 1;
        } else {
            c.shared += size;
        }
        c.total += size;
    }
    c.expert_count = expert_sum.checked_div(n_expert_tensors).unwrap_or(0);
    c
}

/// `model_weight_count_rounded_notation`.
fn rounded_notation(n: u64, min_digits: usize) -> String {
    let x = n as f64;
    let (scaled, suffix) = if x > 1e12 {
        (x * 1e-12, "T")
    } else if x > 1e9 {
        (x * 1e-9, "B")
    } else if x > 1e6 {
        (x * 1e-6, "M")
    } else {
        (x * 1e-3, "K")
    };
    let rounded = round_half_even(scaled);
    let digits = format!("{rounded}");
    let fix = min_digits.saturating_sub(digits.trim_start_matches('0').len());
    format!("{scaled:.fix$}{suffix}")
}

fn round_half_even(x: f64) -> u64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        (r - x.signum()) as u64
    } else {
        r as u64
    }
}

/// `gguf.size_label`.
pub fn size_label(c: ParamCount) -> String {
    if c.expert_count > 0 {
        format!(
            "{}x{}",
            c.expert_count,
            rounded_notation(c.shared + c.expert, 2)
        )
    } else {
        rounded_notation(c.total, 2)
    }
}

/// Python `str.title()` for one word.
fn title(w: &str) -> String {
    let mut out = String::new();
    let mut prev_cased = false;
    for ch in w.chars() {
        if prev_cased {
            out.extend(ch.to_lowercase());
        } else {
            out.extend(ch.to_uppercase());
        }
        prev_cased = ch.is_alphabetic();
    }
    out
}

fn is_lower(w: &str) -> bool {
    w.chars().any(|c| c.is_lowercase()) && !w.chars().any(|c| c.is_uppercase())
}

/// `Metadata.id_to_title`.
pub fn id_to_title(s: &str) -> String {
    let version = Regex::new(r"^(v\d+(?:\.\d+)*|\d.*)$").expect("valid regex");
    s.trim()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| {
            if is_lower(w) && !version.is_match(w) {
                title(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Metadata.get_model_id_components`: (full name, org, basename, finetune, version, size label).
#[allow(clippy::type_complexity)]
pub fn model_id_components(
    model_id: &str,
    total_params: i64,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    if model_id.contains(' ') {
        return (Some(model_id.to_string()), None, None, None, None, None);
    }
    let (mut org, full) = match model_id.split_once('/') {
        Some((o, f)) => (Some(o.to_string()), f.to_string()),
        None => (None, model_id.to_string()),
    };
    if org.as_deref().is_some_and(|o| o.starts_with('.')) {
        org = None;
    }
    let mut parts: Vec<String> = full
        .split('-')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let mut types: Vec<Vec<&str>> = vec![Vec::new(); parts.len()];
    let re_version = Regex::new(r"(?i)^(v|iter)?\d+([.]\d+)*$").expect("valid regex");
    let re_type = Regex::new(r"(?i)^(i?q\d(_\w)*|b?fp?(16|32))$").expect("valid regex");
    let re_size =
        Regex::new(r"(?i)^(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)$")
            .expect("valid regex");
    let re_ft = Regex::new(r"(?i)^(chat|instruct|vision|lora)$").expect("valid regex");
    let add = |t: &mut Vec<&'static str>, x: &'static str| {
        if !t.contains(&x) {
            t.push(x)
        }
    };
    for i in 0..parts.len() {
        let part = parts[i].clone();
        if re_version.is_match(&part) {
            add(&mut types[i], "version");
        } else if re_type.is_match(&part) {
            add(&mut types[i], "type");
            parts[i] = part.to_uppercase();
        } else if i > 0 && re_size.is_match(&part) {
            let mut p: Vec<char> = part.replace('_', ".").chars().collect();
            if p.last().is_some_and(|c| c.is_ascii_digit()) && p.len() >= 2 {
                let n = p.len();
                let (a, b) = (p[n - 2], p[n - 1]);
                p.truncate(n - 2);
                p.push('.');
                p.push(b);
                p.push(a);
            }
            let n = p.len();
            if n > 1 && p[n - 2].is_ascii_digit() && "kmbt".contains(p[n - 1]) {
                p[n - 1] = p[n - 1].to_ascii_uppercase();
            }
            let mut s: String = p.iter().collect();
            if total_params != 0 {
                let last = s.chars().last().unwrap_or(' ');
                let head: String = s
                    .chars()
                    .take(s.chars().count().saturating_sub(1))
                    .collect();
                if let (Ok(v), Some(e)) = (head.parse::<f64>(), " KMBT".find(last)) {
                    let label = v * 1000f64.powi(e as i32);
                    let tp = total_params;
                    let ctx_like = (tp < 0 && label < (tp.unsigned_abs() / 8) as f64)
                        || (tp > 0 && (label - tp as f64).abs() > (7 * tp / 8) as f64);
                    if ctx_like {
                        add(&mut types[i], "finetune");
                        s = format!("{head}{}", last.to_lowercase());
                    }
                }
            }
            if types[i].is_empty() {
                add(&mut types[i], "size_label");
            }
            parts[i] = s;
        } else if i > 0 && re_ft.is_match(&part) {
            if total_params < 0 && part.to_lowercase() == "lora" {
                add(&mut types[i], "type");
            } else {
                add(&mut types[i], "finetune");
            }
        }
    }
    let has_numeric_size = parts
        .iter()
        .zip(&types)
        .any(|(n, t)| t.contains(&"size_label") && n.chars().any(|c| c.is_ascii_digit()));
    if has_numeric_size {
        for (n, t) in parts.iter().zip(types.iter_mut()) {
            if t.contains(&"size_label") && n.chars().all(char::is_alphabetic) {
                t.retain(|x| *x != "size_label");
            }
        }
    }
    let mut at_start = true;
    for (p, t) in parts.iter().zip(types.iter_mut()) {
        let alpha_first = p.chars().next().is_some_and(char::is_alphabetic);
        if at_start && ((t.is_empty() && alpha_first) || t.contains(&"version")) {
            add(t, "basename");
        } else {
            at_start = false;
            if t.is_empty() {
                add(t, "finetune");
            }
        }
    }
    for t in types.iter_mut().rev() {
        if t.contains(&"basename") && t.len() > 1 {
            t.retain(|x| *x != "basename");
        } else {
            break;
        }
    }
    let join = |kind: &str, exclude: Option<&str>| {
        let v: Vec<&str> = parts
            .iter()
            .zip(&types)
            .filter(|(_, t)| t.contains(&kind) && exclude.is_none_or(|e| !t.contains(&e)))
            .map(|(p, _)| p.as_str())
            .collect();
        (!v.is_empty()).then(|| v.join("-"))
    };
    let mut basename = join("basename", None);
    let mut sizes: Vec<&str> = Vec::new();
    for (p, t) in parts.iter().zip(&types) {
        if t.contains(&"size_label") && !sizes.contains(&p.as_str()) {
            sizes.push(p);
        }
    }
    let size = (!sizes.is_empty()).then(|| sizes.join("-"));
    let finetune = join("finetune", None);
    let version = join("version", Some("basename"));
    if size.is_none() && finetune.is_none() && version.is_none() {
        basename = None;
    }
    (Some(full), org, basename, finetune, version, size)
}

/// Derives the authorship fields (raw config.json and the directory name, in that priority).
pub fn authorship(dir: &Path, raw_config: &Map<String, Value>, total_params: i64) -> Authorship {
    let mut a = Authorship::default();
    let mut apply = |id: &str| {
        let (full, org, base, ft, ver, size) = model_id_components(id, total_params);
        if a.name.is_none() {
            a.name = full.map(|f| id_to_title(&f));
        }
        if a.organization.is_none() {
            a.organization = org.map(|o| id_to_title(&o));
        }
        a.basename = a.basename.take().or(base);
        a.finetune = a.finetune.take().or(ft);
        a.version = a.version.take().or(ver);
        a.size_label = a.size_label.take().or(size);
    };
    if let Some(Value::String(id)) = raw_config.get("_name_or_path") {
        if id.matches('/').count() <= 1 {
            apply(id);
        }
    }
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    apply(&dir_name);
    if a.name.is_none() {
        a.name = Some(dir_name);
    }
    a
}

/// Writes the sampling keys from generation_config.json and the authorship keys, in
/// `Metadata.set_gguf_meta_model`'s order.
pub fn write_general(kv: &mut KvList, dir: &Path, a: &Authorship) {
    let gen = std::fs::read(dir.join("generation_config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let get = |k: &str| gen.get(k).filter(|v| !v.is_null());
    if let Some(Value::String(s)) = get("sequence") {
        kv.string("general.sampling.sequence", s);
    }
    let int = |kv: &mut KvList, key: &str, v: Option<&Value>| {
        if let Some(n) = v.and_then(Value::as_i64) {
            kv.set(key, GgufValue::I32(n as i32));
        }
    };
    let float = |kv: &mut KvList, key: &str, v: Option<&Value>| {
        if let Some(x) = v.and_then(Value::as_f64) {
            kv.f32(key, x as f32);
        }
    };
    int(kv, "general.sampling.top_k", get("top_k"));
    float(kv, "general.sampling.top_p", get("top_p"));
    float(kv, "general.sampling.min_p", get("min_p"));
    float(
        kv,
        "general.sampling.xtc_probability",
        get("xtc_probability"),
    );
    float(kv, "general.sampling.xtc_threshold", get("xtc_threshold"));
    float(kv, "general.sampling.temp", get("temperature"));
    int(kv, "general.sampling.penalty_last_n", get("penalty_last_n"));
    float(
        kv,
        "general.sampling.penalty_repeat",
        get("penalty_repeat").or_else(|| get("repetition_penalty")),
    );
    int(kv, "general.sampling.mirostat", get("mirostat"));
    float(kv, "general.sampling.mirostat_tau", get("mirostat_tau"));
    float(kv, "general.sampling.mirostat_eta", get("mirostat_eta"));
    kv.string("general.name", a.name.as_deref().unwrap_or(""));
    if let Some(v) = &a.version {
        kv.string("general.version", v);
    }
    if let Some(o) = &a.organization {
        kv.string("general.organization", o);
    }
    if let Some(f) = &a.finetune {
        kv.string("general.finetune", f);
    }
    if let Some(b) = &a.basename {
        kv.string("general.basename", b);
    }
    if let Some(s) = &a.size_label {
        kv.string("general.size_label", s);
    }
}
