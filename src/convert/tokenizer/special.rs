//! gguf-py's `SpecialVocab` (`gguf-py/gguf/vocab.py` at the pinned commit): merges, special
//! token ids, `add_*_token` flags, the chat template and the normalizer flags, read from
//! `tokenizer.json`, `tokenizer_config.json`, `chat_template.jinja`/`.json`, `config.json` and
//! `merges.txt` with the same precedence, including its crude reading of the tokenizer's
//! `post_processor` (`ByteLevel`, `RobertaProcessing`, `TemplateProcessing`), and written in
//! `add_to_gguf`'s order. JSON values are compared with Python's rules (truthiness, `==`),
//! because the original mixes strings, `AddedToken` dicts and `None` in the same variables.
//!
//! Deliberate differences, both about order the converter leaves to chance: the names of
//! `additional_chat_templates/*.jinja` are taken in sorted order (the converter takes the
//! file system's), and `tokenizer.chat_templates` lists template names in first-seen order
//! (the converter writes a Python `set`, whose order changes from run to run).

use std::path::Path;

use qforge_formats::gguf::{GgufArray, GgufValue};
use serde_json::{Map, Value};

use super::kv::Kvs;
use super::{read_json, read_text, TokenizerConvertError};

/// The loaded special vocabulary, as `SpecialVocab` holds it after `__init__`.
#[derive(Debug, Clone)]
pub(crate) struct SpecialVocab {
    pub merges: Vec<String>,
    pub add_special_token: Vec<(String, bool)>,
    pub special_token_ids: Vec<(String, u32)>,
    pub chat_template: Option<Value>,
    pub normalizer_lowercase: Option<bool>,
    pub normalizer_strip_accents: Option<bool>,
    n_vocab: Option<usize>,
    load_merges: bool,
    special_token_types: Vec<String>,
}

/// Python truthiness of a JSON value.
pub(crate) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Python `a in (b, c)` for optional JSON values (`None` equals only `None`).
fn in2(a: &Option<Value>, b: &Option<Value>, c: &Option<Value>) -> bool {
    a == b || a == c
}

fn special_id(entry: &Value) -> Option<Value> {
    entry
        .get("SpecialToken")
        .and_then(|s| s.get("id"))
        .filter(|v| !v.is_null())
        .cloned()
}

fn seq_id(entry: &Value) -> Option<Value> {
    entry
        .get("Sequence")
        .and_then(|s| s.get("id"))
        .filter(|v| !v.is_null())
        .cloned()
}

impl SpecialVocab {
    /// `SpecialVocab(path, load_merges, special_token_types, n_vocab)`.
    pub(crate) fn load(
        dir: &Path,
        load_merges: bool,
        special_token_types: Option<&[&str]>,
        n_vocab: Option<usize>,
    ) -> Result<SpecialVocab, TokenizerConvertError> {
        let types = special_token_types
            .unwrap_or(&["bos", "eos", "unk", "sep", "pad", "cls", "mask"])
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut sv = SpecialVocab {
            merges: Vec::new(),
            add_special_token: Vec::new(),
            special_token_ids: Vec::new(),
            chat_template: None,
            normalizer_lowercase: None,
            normalizer_strip_accents: None,
            n_vocab,
            load_merges,
            special_token_types: types,
        };
        sv.try_load_from_tokenizer_json(dir)?;
        sv.try_load_from_config_json(dir)?;
        if sv.load_merges && sv.merges.is_empty() {
            sv.try_load_merges_txt(dir)?;
        }
        Ok(sv)
    }

    fn add_flag(&self, typ: &str) -> Option<bool> {
        self.add_special_token
            .iter()
            .find(|(k, _)| k == typ)
            .map(|(_, v)| *v)
    }

    /// `dict[typ] = value`: replaces in place or appends.
    fn put_flag(&mut self, typ: &str, value: bool) {
        match self.add_special_token.iter_mut().find(|(k, _)| k == typ) {
            Some(slot) => slot.1 = value,
            None => self.add_special_token.push((typ.to_string(), value)),
        }
    }

    fn setdefault_flag(&mut self, typ: &str, value: bool) {
        if self.add_flag(typ).is_none() {
            self.add_special_token.push((typ.to_string(), value));
        }
    }

    /// `_set_special_token`: only ints count; negative ids are an error; ids at or past
    /// `n_vocab` are skipped; the first id set for a type wins.
    pub(crate) fn set_special_token(
        &mut self,
        typ: &str,
        tid: Option<&Value>,
        origin: &Path,
    ) -> Result<(), TokenizerConvertError> {
        let id: i128 = match tid {
            Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i as i128,
                (None, Some(u)) => u as i128,
                _ => return Ok(()),
            },
            // Python's bool is an int
            Some(Value::Bool(b)) => *b as i128,
            _ => return Ok(()),
        };
        if id < 0 {
            return Err(TokenizerConvertError::Invalid {
                path: origin.to_path_buf(),
                reason: format!("invalid value for special token type {typ}: {id}"),
            });
        }
        if self.n_vocab.is_none_or(|n| id < n as i128) {
            if self.special_token_ids.iter().any(|(k, _)| k == typ) {
                return Ok(());
            }
            let id = u32::try_from(id).map_err(|_| TokenizerConvertError::Invalid {
                path: origin.to_path_buf(),
                reason: format!("special token {typ} id {id} does not fit in a uint32"),
            })?;
            self.special_token_ids.push((typ.to_string(), id));
        }
        Ok(())
    }

    /// `_set_special_token(typ, int)`.
    pub(crate) fn set_special_id(&mut self, typ: &str, id: u32) {
        if self.n_vocab.is_none_or(|n| (id as usize) < n)
            && !self.special_token_ids.iter().any(|(k, _)| k == typ)
        {
            self.special_token_ids.push((typ.to_string(), id));
        }
    }

    fn try_load_merges_txt(&mut self, dir: &Path) -> Result<(), TokenizerConvertError> {
        let path = dir.join("merges.txt");
        if !path.is_file() {
            return Ok(());
        }
        let text = read_text(&path)?;
        let mut lines = text.split_inclusive('\n').peekable();
        if let Some(first) = lines.peek() {
            if first.trim().starts_with('#') {
                lines.next();
            }
        }
        let mut merges = Vec::new();
        for line in lines {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() != 2 {
                continue; // the converter logs "Entry malformed, ignoring"
            }
            merges.push(format!("{} {}", parts[0], parts[1]));
        }
        self.merges = merges;
        Ok(())
    }

    fn parse_normalizer(&mut self, n: &Value) {
        match n.get("type").and_then(Value::as_str) {
            Some("Lowercase") => self.normalizer_lowercase = Some(true),
            Some("StripAccents") => self.normalizer_strip_accents = Some(true),
            Some("BertNormalizer") => {
                // Python stores whatever the JSON holds; only bools can be written
                if let Some(v) = n.get("lowercase") {
                    self.normalizer_lowercase = v.as_bool();
                }
                if let Some(v) = n.get("strip_accents") {
                    self.normalizer_strip_accents = v.as_bool();
                }
            }
            Some("Sequence") => {
                if let Some(list) = n.get("normalizers").and_then(Value::as_array) {
                    for sub in list {
                        self.parse_normalizer(sub);
                    }
                }
            }
            _ => {}
        }
    }

    fn load_json_merges(
        &mut self,
        path: &Path,
        merges: &[Value],
    ) -> Result<(), TokenizerConvertError> {
        let bad = || TokenizerConvertError::Invalid {
            path: path.to_path_buf(),
            reason: "Unknown tokenizer merges format".to_string(),
        };
        match merges.first() {
            Some(Value::String(_)) => {
                self.merges = merges
                    .iter()
                    .map(|m| m.as_str().map(str::to_string).ok_or_else(bad))
                    .collect::<Result<_, _>>()?;
            }
            Some(Value::Array(p)) if p.len() == 2 && p[0].is_string() => {
                // transformers >= 4.45 pairs; spaces become U+0120 as gguf-py writes them
                let enc = |s: &str| -> String {
                    s.chars()
                        .map(|c| if c == ' ' { '\u{120}' } else { c })
                        .collect()
                };
                let mut out = Vec::with_capacity(merges.len());
                for m in merges {
                    let pair = m.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                    let (Some(a), Some(b)) = (pair[0].as_str(), pair[1].as_str()) else {
                        return Err(bad());
                    };
                    out.push(format!("{} {}", enc(a), enc(b)));
                }
                self.merges = out;
            }
            _ => return Err(bad()),
        }
        Ok(())
    }

    fn try_load_from_tokenizer_json(&mut self, dir: &Path) -> Result<(), TokenizerConvertError> {
        let tokenizer_file = dir.join("tokenizer.json");
        let mut tokenizer: Option<Value> = None;
        let mut added_tokens: Vec<Value> = Vec::new();
        if tokenizer_file.is_file() {
            let t = read_json(&tokenizer_file)?;
            if self.load_merges {
                if let Some(m) = t
                    .get("model")
                    .and_then(|m| m.get("merges"))
                    .and_then(Value::as_array)
                {
                    if !m.is_empty() {
                        self.load_json_merges(&tokenizer_file, m)?;
                    }
                }
            }
            if let Some(n) = t.get("normalizer") {
                if truthy(Some(n)) {
                    self.parse_normalizer(n);
                }
            }
            if let Some(Value::Array(a)) = t.get("added_tokens") {
                added_tokens = a.clone();
            }
            tokenizer = Some(t);
        }
        let config_file = dir.join("tokenizer_config.json");
        let mut tc: Option<Map<String, Value>> = None;
        if config_file.is_file() {
            match read_json(&config_file)? {
                Value::Object(o) => tc = Some(o),
                _ => {
                    return Err(TokenizerConvertError::Invalid {
                        path: config_file,
                        reason: "not a JSON object".to_string(),
                    })
                }
            }
        }
        let tc_truthy =
            |tc: &Option<Map<String, Value>>| tc.as_ref().is_some_and(|o| !o.is_empty());
        if let Some(tok) = tokenizer.as_ref().filter(|t| truthy(Some(t))) {
            let get = |tc: &Option<Map<String, Value>>, k: &str| -> Option<Value> {
                tc.as_ref().and_then(|o| o.get(k)).cloned()
            };
            let mut special_bos = get(&tc, "bos_token");
            let mut special_cls = get(&tc, "cls_token");
            let mut special_eos = get(&tc, "eos_token");
            let mut special_sep = get(&tc, "sep_token");
            if !truthy(special_bos.as_ref()) && truthy(special_cls.as_ref()) && tc_truthy(&tc) {
                special_bos = special_cls.clone();
                tc.as_mut()
                    .unwrap()
                    .insert("bos_token".into(), special_bos.clone().unwrap());
            }
            if !truthy(special_eos.as_ref()) && truthy(special_sep.as_ref()) && tc_truthy(&tc) {
                special_eos = special_sep.clone();
                tc.as_mut()
                    .unwrap()
                    .insert("eos_token".into(), special_eos.clone().unwrap());
            }
            let post = tok.get("post_processor").filter(|p| truthy(Some(p)));
            if let Some(post) = post {
                let processors: Vec<Value> = match post.get("processors") {
                    Some(Value::Array(a)) => a.clone(),
                    Some(_) => Vec::new(),
                    None => vec![post.clone()],
                };
                for processor in &processors {
                    match processor.get("type").and_then(Value::as_str) {
                        Some("ByteLevel") => {
                            self.setdefault_flag("bos", false);
                            self.setdefault_flag("eos", false);
                        }
                        Some("RobertaProcessing") => {
                            self.put_flag("bos", true);
                            self.put_flag("eos", true);
                            self.put_flag("sep", true);
                            if !truthy(special_cls.as_ref()) && tc_truthy(&tc) {
                                special_cls = match processor.get("cls") {
                                    Some(c) => c.get(0).cloned(),
                                    None => special_bos.clone(),
                                };
                                let v = special_cls.clone().unwrap_or(Value::Null);
                                tc.as_mut().unwrap().insert("cls_token".into(), v);
                            }
                            if !truthy(special_sep.as_ref()) && tc_truthy(&tc) {
                                special_sep = match processor.get("sep") {
                                    Some(c) => c.get(0).cloned(),
                                    None => special_eos.clone(),
                                };
                                let v = special_sep.clone().unwrap_or(Value::Null);
                                tc.as_mut().unwrap().insert("sep_token".into(), v);
                            }
                        }
                        Some("TemplateProcessing") => {
                            let empty = Vec::new();
                            let single = processor
                                .get("single")
                                .and_then(Value::as_array)
                                .unwrap_or(&empty);
                            let pair = processor
                                .get("pair")
                                .and_then(Value::as_array)
                                .unwrap_or(&empty);
                            let mut special_first: Option<Value> = None;
                            let mut special_last: Option<Value> = None;
                            if single.len() > 1 {
                                special_first = special_id(&single[0]).filter(|v| truthy(Some(v)));
                                if special_first.is_some() {
                                    if !tc_truthy(&tc) {
                                        special_bos = special_first.clone();
                                    } else if !in2(&special_first, &special_bos, &special_cls) {
                                        if !truthy(special_bos.as_ref()) {
                                            special_bos = special_first.clone();
                                            tc.as_mut().unwrap().insert(
                                                "bos_token".into(),
                                                special_bos.clone().unwrap(),
                                            );
                                        }
                                        if !truthy(special_cls.as_ref()) {
                                            special_cls = special_first.clone();
                                            tc.as_mut().unwrap().insert(
                                                "cls_token".into(),
                                                special_cls.clone().unwrap(),
                                            );
                                        }
                                    }
                                    let hit = in2(&special_first, &special_bos, &special_cls);
                                    self.put_flag("bos", hit);
                                }
                                special_last = special_id(&single[single.len() - 1])
                                    .filter(|v| truthy(Some(v)));
                                if special_last.is_some() {
                                    if !tc_truthy(&tc) {
                                        special_eos = special_last.clone();
                                    } else if special_last != special_eos {
                                        let t = tc.as_mut().unwrap();
                                        if !self.special_token_types.iter().any(|s| s == "eot") {
                                            self.special_token_types.push("eot".into());
                                            t.insert(
                                                "eot_token".into(),
                                                special_eos.clone().unwrap_or(Value::Null),
                                            );
                                        } else if !self
                                            .special_token_types
                                            .iter()
                                            .any(|s| s == "eom")
                                        {
                                            self.special_token_types.push("eom".into());
                                            t.insert(
                                                "eom_token".into(),
                                                special_eos.clone().unwrap_or(Value::Null),
                                            );
                                        }
                                        special_eos = special_last.clone();
                                        t.insert("eos_token".into(), special_eos.clone().unwrap());
                                    }
                                    let hit = special_last == special_eos;
                                    self.put_flag("eos", hit);
                                }
                            }
                            if !pair.is_empty() {
                                let start = usize::from(
                                    special_first.is_some()
                                        && special_id(&pair[0]) == special_first,
                                );
                                let stop_trim = usize::from(
                                    special_last.is_some()
                                        && special_id(&pair[pair.len() - 1]) == special_last,
                                );
                                let end = pair.len().saturating_sub(stop_trim).max(start);
                                let inner = &pair[start..end];
                                if !inner.is_empty() {
                                    let a = seq_id(&inner[0]);
                                    let b = seq_id(&inner[inner.len() - 1]);
                                    let is_a = a.as_ref().and_then(Value::as_str) == Some("A");
                                    let is_b = b.as_ref().and_then(Value::as_str) == Some("B");
                                    let middle: &[Value] = if inner.len() >= 2 {
                                        &inner[1..inner.len() - 1]
                                    } else {
                                        &[]
                                    };
                                    if is_a && is_b && !middle.is_empty() {
                                        let mut add_sep = false;
                                        let e0 = special_id(&middle[0]).filter(|v| truthy(Some(v)));
                                        if e0.is_some()
                                            && in2(&e0, &special_sep, &special_eos)
                                            && special_last.is_none()
                                        {
                                            add_sep = true;
                                        }
                                        if middle.len() == 2 {
                                            let e1 =
                                                special_id(&middle[1]).filter(|v| truthy(Some(v)));
                                            if e1.is_some() && in2(&e1, &special_sep, &special_eos)
                                            {
                                                add_sep = true;
                                            }
                                        }
                                        self.put_flag("sep", add_sep);
                                        if add_sep
                                            && !truthy(special_sep.as_ref())
                                            && tc_truthy(&tc)
                                        {
                                            let v = special_eos.clone().unwrap_or(Value::Null);
                                            tc.as_mut().unwrap().insert("sep_token".into(), v);
                                        }
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        let Some(tc) = tc.filter(|o| !o.is_empty()) else {
            return Ok(());
        };
        // chat template: tokenizer_config.json, else chat_template.jinja (+ additional
        // templates), else chat_template.json
        let jinja = dir.join("chat_template.jinja");
        let json = dir.join("chat_template.json");
        let mut alt: Option<Value> = None;
        if jinja.is_file() {
            let main = read_text(&jinja)?;
            alt = Some(Value::String(main.clone()));
            let extra_dir = dir.join("additional_chat_templates");
            let mut extra: Vec<std::path::PathBuf> = match std::fs::read_dir(&extra_dir) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "jinja"))
                    .collect(),
                Err(_) => Vec::new(),
            };
            extra.sort();
            if !extra.is_empty() {
                let mut list = vec![serde_json::json!({"name": "default", "template": main})];
                for p in &extra {
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    list.push(serde_json::json!({"name": stem, "template": read_text(p)?}));
                }
                alt = Some(Value::Array(list));
            }
        } else if json.is_file() {
            alt = read_json(&json)?.get("chat_template").cloned();
        }
        let chat_template = match tc.get("chat_template") {
            Some(v) => Some(v.clone()),
            None => alt,
        };
        match chat_template {
            None | Some(Value::Null) => self.chat_template = None,
            Some(v @ (Value::String(_) | Value::Array(_))) => self.chat_template = Some(v),
            Some(_) => {} // "Bad type for chat_template field - ignoring"
        }
        let types = self.special_token_types.clone();
        for typ in &types {
            if let Some(Value::Bool(b)) = tc.get(&format!("add_{typ}_token")) {
                if self.add_flag(typ).is_none() {
                    self.add_special_token.push((typ.clone(), *b));
                }
            }
            let content = match tc.get(&format!("{typ}_token")) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Object(o)) => match o.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    _ => continue,
                },
                _ => continue,
            };
            let id = added_tokens
                .iter()
                .find(|t| t.get("content").and_then(Value::as_str) == Some(content.as_str()))
                .and_then(|t| t.get("id").cloned());
            self.set_special_token(typ, id.as_ref(), &config_file)?;
        }
        Ok(())
    }

    fn try_load_from_config_json(&mut self, dir: &Path) -> Result<(), TokenizerConvertError> {
        let path = dir.join("config.json");
        if !path.is_file() {
            return Ok(());
        }
        let config = read_json(&path)?;
        let types = self.special_token_types.clone();
        for typ in &types {
            let key = format!("{typ}_token_id");
            let mut id = config.get(&key).filter(|v| !v.is_null());
            if id.is_none() {
                if let Some(tc) = config.get("text_config") {
                    id = tc.get(&key);
                }
            }
            let id = id.cloned();
            self.set_special_token(typ, id.as_ref(), &path)?;
        }
        Ok(())
    }

    /// `add_to_gguf`: merges, special ids, `add_*_token`, chat template, normalizer flags.
    pub(crate) fn add_to_gguf(
        &self,
        kv: &mut Kvs,
        origin: &Path,
    ) -> Result<(), TokenizerConvertError> {
        if !self.merges.is_empty() {
            kv.set_array(
                "tokenizer.ggml.merges",
                GgufArray::String(self.merges.iter().map(|m| m.as_bytes().to_vec()).collect()),
            );
        }
        for (typ, id) in &self.special_token_ids {
            let key = match typ.as_str() {
                "bos" => "tokenizer.ggml.bos_token_id",
                "eos" => "tokenizer.ggml.eos_token_id",
                "unk" => "tokenizer.ggml.unknown_token_id",
                "sep" => "tokenizer.ggml.seperator_token_id",
                "pad" => "tokenizer.ggml.padding_token_id",
                "mask" => "tokenizer.ggml.mask_token_id",
                "eot" => "tokenizer.ggml.eot_token_id",
                "eom" => "tokenizer.ggml.eom_token_id",
                _ => continue, // "No handler for special token type" (cls, prefix, ...)
            };
            kv.set(key, GgufValue::U32(*id));
        }
        for (typ, value) in &self.add_special_token {
            let key = match typ.as_str() {
                "bos" => "tokenizer.ggml.add_bos_token",
                "eos" => "tokenizer.ggml.add_eos_token",
                "sep" => "tokenizer.ggml.add_sep_token",
                _ => continue,
            };
            kv.set_bool(key, *value);
        }
        if let Some(t) = &self.chat_template {
            add_chat_template(kv, t, origin)?;
        }
        if let Some(b) = self.normalizer_lowercase {
            kv.set_bool("tokenizer.ggml.normalizer.lowercase", b);
        }
        if let Some(b) = self.normalizer_strip_accents {
            kv.set_bool("tokenizer.ggml.normalizer.strip_accents", b);
        }
        Ok(())
    }
}

/// `GGUFWriter.add_chat_template`: a string, or a list of `{name, template}` where `default`
/// becomes `tokenizer.chat_template` and the others `tokenizer.chat_template.{name}` plus the
/// name list `tokenizer.chat_templates`.
fn add_chat_template(kv: &mut Kvs, t: &Value, origin: &Path) -> Result<(), TokenizerConvertError> {
    let bad = |why: &str| TokenizerConvertError::Invalid {
        path: origin.to_path_buf(),
        reason: format!("chat_template: {why}"),
    };
    let list = match t {
        Value::String(s) => {
            kv.set_str("tokenizer.chat_template", s);
            return Ok(());
        }
        Value::Array(a) => a,
        _ => return Err(bad("neither a string nor a list")),
    };
    let mut default: Option<String> = None;
    let mut names: Vec<String> = Vec::new();
    for choice in list {
        let name = match choice.get("name") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(bad("template name is not a string")),
        };
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let template = match choice.get("template") {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(bad("template is not a string")),
        };
        if name.is_empty() {
            continue;
        }
        if name == "default" {
            default = Some(template);
        } else {
            if !names.contains(&name) {
                names.push(name.clone());
            }
            kv.set_str(&format!("tokenizer.chat_template.{name}"), &template);
        }
    }
    if !names.is_empty() {
        kv.set_array(
            "tokenizer.chat_templates",
            GgufArray::String(names.iter().map(|n| n.as_bytes().to_vec()).collect()),
        );
    }
    if let Some(d) = default {
        kv.set_str("tokenizer.chat_template", &d);
    }
    Ok(())
}
