//! The vocabulary as llama.cpp loads it from GGUF metadata (`llama_vocab::impl::load`): token
//! texts, scores and attributes, BPE merge ranks, special token ids, the add-BOS/EOS defaults per
//! tokenizer and pre-tokenizer type, the end-of-generation set and the special-token cache.

use super::error::TokenizerError;
use super::pre_patterns::PreType;
use qforge_formats::gguf::{GgufArray, GgufHeader, GgufValue};
use std::collections::BTreeSet;

/// Hash map with a fast non-cryptographic hasher (lookups dominate tokenization time).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Token attribute bits (`LLAMA_TOKEN_ATTR_*`).
pub mod attr {
    /// Unknown token.
    pub const UNKNOWN: u32 = 1 << 0;
    /// Unused token.
    pub const UNUSED: u32 = 1 << 1;
    /// Normal token.
    pub const NORMAL: u32 = 1 << 2;
    /// Control token.
    pub const CONTROL: u32 = 1 << 3;
    /// User-defined token.
    pub const USER_DEFINED: u32 = 1 << 4;
    /// Byte-fallback token.
    pub const BYTE: u32 = 1 << 5;
    /// Strips whitespace on its left when parsed as special.
    pub const LSTRIP: u32 = 1 << 7;
    /// Strips whitespace on its right when parsed as special.
    pub const RSTRIP: u32 = 1 << 8;
}

/// The tokenizer family (`LLAMA_VOCAB_TYPE_*`) this crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabType {
    /// SentencePiece with byte fallback (`tokenizer.ggml.model = "llama"`).
    Spm,
    /// Byte-level BPE (`"gpt2"`, and `"gemma4"`'s SPM-style BPE).
    Bpe,
    /// WordPiece (`"bert"`).
    Wpm,
    /// Unigram (`"t5"`).
    Ugm,
}

/// One vocabulary entry.
#[derive(Clone, Debug)]
pub(crate) struct TokenData {
    pub text: Vec<u8>,
    pub score: f32,
    pub attr: u32,
}

/// The loaded vocabulary.
#[derive(Clone, Debug)]
pub(crate) struct Vocab {
    pub vtype: VocabType,
    pub pre_type: PreType,
    pub tokens: Vec<TokenData>,
    pub token_to_id: FastMap<Vec<u8>, u32>,
    /// Merge ranks keyed by [`merge_key`].
    pub bpe_ranks: FastMap<Vec<u8>, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    /// WPM normalizer: lowercase, and drop accents.
    pub lowercase: bool,
    pub strip_accents: bool,
    /// The longest token text in bytes.
    pub max_token_len: usize,
    /// UGM: SentencePiece's precompiled character map (validated header).
    pub charsmap: Vec<u8>,
    pub remove_extra_whitespaces: bool,
    pub add_space_prefix: bool,
    pub add_bos: bool,
    pub add_eos: bool,
    pub ignore_merges: bool,
    pub escape_whitespaces: bool,
    /// SPM: words can be merged one at a time (see `spm::words_are_independent`).
    pub spm_words_independent: bool,
    pub eog: BTreeSet<u32>,
    /// Ids of control, user-defined and unknown tokens, longest text first.
    pub special_cache: Vec<u32>,
}

/// The key of a merge pair in [`Vocab::bpe_ranks`]: the left part's length, then both parts.
pub(crate) fn merge_key(left: &[u8], right: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(left.len() as u32).to_le_bytes());
    out.extend_from_slice(left);
    out.extend_from_slice(right);
}

const K_MODEL: &str = "tokenizer.ggml.model";
const K_PRE: &str = "tokenizer.ggml.pre";
const K_TOKENS: &str = "tokenizer.ggml.tokens";
const K_SCORES: &str = "tokenizer.ggml.scores";
const K_TYPES: &str = "tokenizer.ggml.token_type";
const K_MERGES: &str = "tokenizer.ggml.merges";

fn type_name(v: &GgufValue) -> String {
    match v {
        GgufValue::Array(a) => format!("array of {}", a.elem_type().name()),
        other => other.value_type().name().to_string(),
    }
}

fn get_str<'h>(h: &'h GgufHeader, key: &'static str) -> Result<Option<&'h [u8]>, TokenizerError> {
    match h.get(key) {
        None => Ok(None),
        Some(GgufValue::String(s)) => Ok(Some(s)),
        Some(v) => Err(TokenizerError::WrongType {
            key,
            found: type_name(v),
            expected: "string",
        }),
    }
}

fn get_bool(h: &GgufHeader, key: &'static str) -> Result<Option<bool>, TokenizerError> {
    match h.get(key) {
        None => Ok(None),
        Some(GgufValue::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(TokenizerError::WrongType {
            key,
            found: type_name(v),
            expected: "bool",
        }),
    }
}

fn get_u32(h: &GgufHeader, key: &'static str) -> Result<Option<u32>, TokenizerError> {
    match h.get(key) {
        None => Ok(None),
        Some(GgufValue::U32(x)) => Ok(Some(*x)),
        Some(v) => Err(TokenizerError::WrongType {
            key,
            found: type_name(v),
            expected: "u32",
        }),
    }
}

fn get_string_array<'h>(
    h: &'h GgufHeader,
    key: &'static str,
) -> Result<Option<&'h [Vec<u8>]>, TokenizerError> {
    match h.get(key) {
        None => Ok(None),
        Some(GgufValue::Array(GgufArray::String(v))) => Ok(Some(v)),
        Some(v) => Err(TokenizerError::WrongType {
            key,
            found: type_name(v),
            expected: "array of string",
        }),
    }
}

/// Flags that the pre-tokenizer name sets, on top of the BPE defaults.
struct PreFlags {
    pre: PreType,
    clean_spaces_off: bool,
    ignore_merges: bool,
    add_bos: bool,
    escape_whitespaces: bool,
    no_bos_id: bool,
}

/// Maps `tokenizer.ggml.pre` to its type and flags, as the if-chain in `load` does.
fn pre_flags(name: &str) -> Result<PreFlags, TokenizerError> {
    use PreType as P;
    let mut f = PreFlags {
        pre: P::Default,
        clean_spaces_off: false,
        ignore_merges: false,
        add_bos: false,
        escape_whitespaces: false,
        no_bos_id: false,
    };
    let (pre, cs, im, ab) = match name {
        "" | "default" => (P::Default, false, false, false),
        "minicpm5" => (P::Minicpm5, false, true, false),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => (P::Llama3, false, true, true),
        "deepseek-llm" => (P::DeepseekLlm, true, false, false),
        "deepseek-coder" => (P::DeepseekCoder, true, false, false),
        "deepseek-v3" => (P::Deepseek3Llm, true, false, false),
        "spark2_5" => (P::Spark25, true, false, false),
        "youtu" => (P::Youtu, true, true, false),
        "falcon" => (P::Falcon, false, false, false),
        "mpt" => (P::Mpt, false, false, false),
        "starcoder" => (P::Starcoder, false, false, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" => (P::Gpt2, false, false, false),
        "jais-2" => (P::Jais2, false, false, false),
        "gemma4" | "granite-embed-multi-311m" => {
            f.escape_whitespaces = true;
            (P::Gemma4, false, false, false)
        }
        "sarvam-moe" => {
            f.escape_whitespaces = true;
            (P::SarvamMoe, true, false, false)
        }
        "jina-v1-en" | "jina-v2-code" | "roberta-bpe" => (P::Gpt2, false, false, false),
        "whitespace" => (P::Whitespace, false, false, false),
        "refact" => (P::Refact, false, false, false),
        "command-r" => (P::CommandR, true, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" => (P::Qwen2, true, false, false),
        "qwen35" => (P::Qwen35, true, false, false),
        "stablelm2" => (P::Stablelm2, false, false, false),
        "olmo" => (P::Olmo, false, false, false),
        "dbrx" => (P::Dbrx, false, false, false),
        "smaug-bpe" => (P::Smaug, false, false, false),
        "poro-chat" => (P::Poro, true, false, false),
        "chatglm-bpe" => {
            f.no_bos_id = true;
            (P::Chatglm4, false, false, false)
        }
        "glm4" | "glm5" => {
            f.no_bos_id = true;
            (P::Chatglm4, false, true, false)
        }
        "viking" => (P::Viking, true, false, false),
        "jais" => (P::Jais, false, false, false),
        "tekken" => (P::Tekken, true, true, true),
        "smollm" => (P::Smollm, true, false, false),
        "codeshell" => (P::Codeshell, false, false, false),
        "bloom" => (P::Bloom, false, false, false),
        "gpt3-finnish" => (P::Gpt3Finnish, false, false, false),
        "exaone" => (P::Exaone, false, false, false),
        "exaone4" => (P::Gpt2, false, false, false),
        "exaone-moe" => (P::ExaoneMoe, false, false, false),
        "chameleon" => (P::Chameleon, true, false, true),
        "minerva-7b" => (P::Minerva, false, false, false),
        "megrez" => (P::Qwen2, false, false, false),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" => (P::Gpt4o, true, false, false),
        "granite-embed-multi-97m" => (P::GraniteEmbMulti, true, true, false),
        "tiny_aya" | "cohere2moe" => (P::TinyAya, true, false, false),
        "superbpe" => (P::Superbpe, true, false, false),
        "trillion" => (P::Trillion, true, false, false),
        "granite-docling" => (P::GraniteDocling, true, false, false),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => (P::Bailingmoe, true, false, false),
        "seed-coder" => (P::SeedCoder, true, false, false),
        "hunyuan" => (P::Hunyuan, true, false, false),
        "hunyuan-dense" => (P::HunyuanDense, true, false, false),
        "hy_v4" => (P::HyV4, true, false, false),
        "joyai-llm" => (P::JoyaiLlm, true, false, false),
        "kimi-k2" => (P::KimiK2, true, false, false),
        "ufakzeka" => (P::Ufakzeka, true, false, false),
        "grok-2" => (P::Grok2, true, false, false),
        "afmoe" => (P::Afmoe, true, false, false),
        "laguna" => (P::Laguna, true, false, false),
        "minimax-m2" => (P::MinimaxM2, true, false, false),
        "solar-open" => (P::SolarOpen, true, false, false),
        "mellum2" => (P::Mellum2, false, false, false),
        other => return Err(TokenizerError::UnsupportedPre(other.to_string())),
    };
    f.pre = pre;
    f.clean_spaces_off = cs;
    f.ignore_merges = im;
    f.add_bos = ab;
    Ok(f)
}

const K_CHARSMAP: &str = "tokenizer.ggml.precompiled_charsmap";

/// The UGM character map, checked as llama.cpp checks it (its first 4 bytes give the size of the
/// double array, which must leave room for the replacement strings).
fn read_charsmap(h: &GgufHeader) -> Result<Vec<u8>, TokenizerError> {
    let bytes: Vec<u8> = match h.get(K_CHARSMAP) {
        None => return Ok(Vec::new()),
        Some(GgufValue::Array(GgufArray::U8(v))) => v.clone(),
        Some(GgufValue::Array(GgufArray::I8(v))) => v.iter().map(|&x| x as u8).collect(),
        Some(v) => {
            return Err(TokenizerError::WrongType {
                key: K_CHARSMAP,
                found: type_name(v),
                expected: "array of u8 or i8",
            })
        }
    };
    if bytes.len() < 4 {
        return Err(TokenizerError::BadCharsmap(
            "shorter than its 4-byte header",
        ));
    }
    let blob = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as u64;
    if blob + 4 >= bytes.len() as u64 {
        return Err(TokenizerError::BadCharsmap(
            "double array runs past the end",
        ));
    }
    Ok(bytes)
}

fn parse_merges(list: &[Vec<u8>]) -> FastMap<Vec<u8>, u32> {
    let mut ranks = FastMap::with_capacity_and_hasher(list.len(), Default::default());
    let mut key = Vec::new();
    for (i, word) in list.iter().enumerate() {
        // `word.find(' ', 1)`: the first space at index 1 or later; none gives an empty pair.
        let (first, second): (&[u8], &[u8]) = match word.iter().skip(1).position(|&c| c == b' ') {
            Some(p) => (&word[..p + 1], &word[p + 2..]),
            None => (&[], &[]),
        };
        merge_key(first, second, &mut key);
        // `emplace` keeps the first rank of a repeated pair.
        ranks.entry(key.clone()).or_insert(i as u32);
    }
    ranks
}

impl Vocab {
    /// Loads the vocabulary from GGUF metadata; see the module docs.
    pub fn load(h: &GgufHeader) -> Result<Vocab, TokenizerError> {
        let model = get_str(h, K_MODEL)?.ok_or(TokenizerError::MissingKey(K_MODEL))?;
        let model = String::from_utf8_lossy(model).into_owned();
        let mut pre_name = get_str(h, K_PRE)?
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default();

        let mut bos: Option<i64> = Some(1);
        let mut eos: Option<i64> = Some(2);
        let mut unk: Option<i64> = Some(0);
        let mut pad: Option<i64> = None;
        let mut sep: Option<i64> = None;
        let mut mask: Option<i64> = None;
        let mut bpe_ranks = FastMap::default();
        let mut charsmap = Vec::new();
        let vtype = match model.as_str() {
            "llama" => VocabType::Spm,
            "bert" => {
                bos = Some(101);
                eos = None;
                unk = Some(100);
                sep = Some(102);
                pad = Some(0);
                mask = Some(103);
                VocabType::Wpm
            }
            "t5" => {
                bos = None;
                eos = Some(1);
                unk = Some(2);
                pad = Some(0);
                charsmap = read_charsmap(h)?;
                VocabType::Ugm
            }
            "gpt2" | "gemma4" => {
                match get_string_array(h, K_MERGES)? {
                    Some(merges) => bpe_ranks = parse_merges(merges),
                    // Kimi-K2 tokenizes without merges
                    None if model == "gpt2" && pre_name == "kimi-k2" => {}
                    None => return Err(TokenizerError::MissingKey(K_MERGES)),
                }
                if model == "gpt2" {
                    bos = Some(11);
                    eos = Some(11);
                } else {
                    bos = None;
                    eos = None;
                    pre_name = "gemma4".to_string();
                }
                unk = None;
                VocabType::Bpe
            }
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };

        let mut add_space_prefix;
        let mut add_bos;
        let mut add_eos = false;
        let mut ignore_merges = false;
        let mut escape_whitespaces = true;
        let pre_type;
        match vtype {
            VocabType::Bpe => {
                let f = pre_flags(&pre_name)?;
                pre_type = f.pre;
                add_space_prefix = false;
                escape_whitespaces = f.escape_whitespaces;
                ignore_merges = f.ignore_merges;
                add_bos = f.add_bos;
                if f.no_bos_id {
                    bos = None;
                }
            }
            VocabType::Spm => {
                pre_type = PreType::Default;
                add_space_prefix = true;
                add_bos = true;
            }
            VocabType::Wpm => {
                pre_type = PreType::Default;
                add_space_prefix = false;
                add_bos = true;
            }
            VocabType::Ugm => {
                pre_type = PreType::Default;
                add_space_prefix = false;
                add_bos = false;
                add_eos = true;
            }
        }
        if let Some(v) = get_bool(h, "tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }
        let remove_extra_whitespaces =
            get_bool(h, "tokenizer.ggml.remove_extra_whitespaces")?.unwrap_or(false);

        let texts = get_string_array(h, K_TOKENS)?.ok_or(TokenizerError::MissingKey(K_TOKENS))?;
        let n = texts.len();
        if n > i32::MAX as usize {
            return Err(TokenizerError::TooManyTokens(n));
        }
        let scores: Option<Vec<f32>> = match h.get(K_SCORES) {
            None => None,
            Some(GgufValue::Array(GgufArray::F32(v))) if v.len() >= n => Some(v[..n].to_vec()),
            Some(GgufValue::Array(GgufArray::I32(v))) if v.len() >= n => {
                Some(v[..n].iter().map(|&x| x as f32).collect())
            }
            Some(GgufValue::Array(a @ (GgufArray::F32(_) | GgufArray::I32(_)))) => {
                return Err(TokenizerError::ShortArray {
                    key: K_SCORES,
                    found: a.len(),
                    n_tokens: n,
                })
            }
            Some(v) => {
                return Err(TokenizerError::WrongType {
                    key: K_SCORES,
                    found: type_name(v),
                    expected: "array of f32 or i32",
                })
            }
        };
        let types: Option<&[i32]> = match h.get(K_TYPES) {
            None => None,
            Some(GgufValue::Array(GgufArray::I32(v))) if v.len() >= n => Some(&v[..n]),
            Some(GgufValue::Array(GgufArray::I32(v))) => {
                return Err(TokenizerError::ShortArray {
                    key: K_TYPES,
                    found: v.len(),
                    n_tokens: n,
                })
            }
            Some(v) => {
                return Err(TokenizerError::WrongType {
                    key: K_TYPES,
                    found: type_name(v),
                    expected: "array of i32",
                })
            }
        };

        let mut tokens = Vec::with_capacity(n);
        let mut token_to_id: FastMap<Vec<u8>, u32> =
            FastMap::with_capacity_and_hasher(n, Default::default());
        for (i, t) in texts.iter().enumerate() {
            let text = if t.is_empty() {
                format!("[EMPTY_{i}]").into_bytes()
            } else {
                t.clone()
            };
            if let Some(&first) = token_to_id.get(&text) {
                return Err(TokenizerError::DuplicateToken { id: i, first });
            }
            token_to_id.insert(text.clone(), i as u32);
            let attr = match types.map(|t| t[i]) {
                None | Some(1) => attr::NORMAL,
                Some(2) => attr::UNKNOWN,
                Some(3) => attr::CONTROL,
                Some(4) => attr::USER_DEFINED,
                Some(5) => attr::UNUSED,
                Some(6) => attr::BYTE,
                Some(_) => 0,
            };
            tokens.push(TokenData {
                text,
                score: scores.as_ref().map_or(0.0, |s| s[i]),
                attr,
            });
        }

        // special token ids: defaults out of range are disabled, keys out of range are ignored
        let in_range = |id: Option<i64>| id.filter(|&x| x >= 0 && (x as usize) < n);
        // slots: bos, eos, eot, eom, unk, sep, pad, mask, fim_pre, fim_suf, fim_mid, fim_pad,
        // fim_rep, fim_sep
        let mut ids: [Option<i64>; 14] = [
            in_range(bos),
            in_range(eos),
            None,
            None,
            in_range(unk),
            in_range(sep),
            in_range(pad),
            in_range(mask),
            None,
            None,
            None,
            None,
            None,
            None,
        ];
        // (the deprecated prefix/suffix/middle keys write the fim_pre/suf/mid slots)
        const KEYS: [(&str, usize); 17] = [
            ("tokenizer.ggml.bos_token_id", 0),
            ("tokenizer.ggml.eos_token_id", 1),
            ("tokenizer.ggml.eot_token_id", 2),
            ("tokenizer.ggml.eom_token_id", 3),
            ("tokenizer.ggml.unknown_token_id", 4),
            ("tokenizer.ggml.seperator_token_id", 5),
            ("tokenizer.ggml.padding_token_id", 6),
            ("tokenizer.ggml.mask_token_id", 7),
            ("tokenizer.ggml.fim_pre_token_id", 8),
            ("tokenizer.ggml.fim_suf_token_id", 9),
            ("tokenizer.ggml.fim_mid_token_id", 10),
            ("tokenizer.ggml.fim_pad_token_id", 11),
            ("tokenizer.ggml.fim_rep_token_id", 12),
            ("tokenizer.ggml.fim_sep_token_id", 13),
            ("tokenizer.ggml.prefix_token_id", 8),
            ("tokenizer.ggml.suffix_token_id", 9),
            ("tokenizer.ggml.middle_token_id", 10),
        ];
        for (key, slot) in KEYS {
            if let Some(id) = get_u32(h, key)? {
                if (id as usize) < n {
                    ids[slot] = Some(id as i64);
                }
            }
        }
        let [bos, eos, eot, eom, unk, sep, _pad, _mask, fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep] =
            ids;

        if let Some(v) = get_bool(h, "tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        if let Some(v) = get_bool(h, "tokenizer.ggml.add_eos_token")? {
            add_eos = v;
        }
        get_bool(h, "tokenizer.ggml.add_sep_token")?;
        if pre_type == PreType::Gemma4 && !add_bos {
            add_bos = true;
        }
        let lowercase = get_bool(h, "tokenizer.ggml.normalizer.lowercase")?.unwrap_or(true);
        let strip_accents =
            get_bool(h, "tokenizer.ggml.normalizer.strip_accents")?.unwrap_or(lowercase);
        let max_token_len = tokens.iter().map(|t| t.text.len()).max().unwrap_or(0);

        let mut v = Vocab {
            vtype,
            pre_type,
            tokens,
            token_to_id,
            bpe_ranks,
            bos: bos.map(|x| x as u32),
            eos: eos.map(|x| x as u32),
            eot: None,
            unk: unk.map(|x| x as u32),
            sep: sep.map(|x| x as u32),
            lowercase,
            strip_accents,
            max_token_len,
            charsmap,
            remove_extra_whitespaces,
            add_space_prefix,
            add_bos,
            add_eos,
            ignore_merges,
            escape_whitespaces,
            spm_words_independent: false,
            eog: BTreeSet::new(),
            special_cache: Vec::new(),
        };

        // auto-detect special tokens by text (llama.cpp walks a hash map; we walk ids in order)
        let mut slots = [
            eot, eom, fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep,
        ];
        const NAMES: [&[&str]; 8] = [
            &[
                "<|eot_id|>",
                "<|im_end|>",
                "<|end|>",
                "<end_of_turn>",
                "<|endoftext|>",
                "<|end_of_text|>",
                "<EOT>",
                "_<EOT>",
                "[EOT]",
                "<｜end▁of▁sentence｜>",
                "<end_of_utterance>",
            ],
            &["<|eom_id|>"],
            &[
                "<|fim_prefix|>",
                "<fim-prefix>",
                "<fim_prefix>",
                "<｜fim▁begin｜>",
                "<PRE>",
                "▁<PRE>",
                "<|code_prefix|>",
                "<|prefix|>",
            ],
            &[
                "<|fim_suffix|>",
                "<fim-suffix>",
                "<fim_suffix>",
                "<｜fim▁hole｜>",
                "<SUF>",
                "▁<SUF>",
                "<|code_suffix|>",
                "<|suffix|>",
            ],
            &[
                "<|fim_middle|>",
                "<fim-middle>",
                "<fim_middle>",
                "<｜fim▁end｜>",
                "<MID>",
                "▁<MID>",
                "<|code_middle|>",
                "<|middle|>",
            ],
            &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
            &[
                "<|fim_repo|>",
                "<|repo_name|>",
                "<fim-repo>",
                "<REPO>",
                "<reponame>",
            ],
            &["<|file_sep|>"],
        ];
        for id in 0..n {
            for (slot, names) in slots.iter_mut().zip(NAMES.iter()) {
                if slot.is_none() && names.iter().any(|s| s.as_bytes() == v.tokens[id].text) {
                    *slot = Some(id as i64);
                    v.tokens[id].attr |= attr::CONTROL;
                }
            }
        }
        let [eot, eom, _, _, _, fim_pad, fim_rep, fim_sep] = slots;

        // control tokens named "unused" are unused
        for t in v.tokens.iter_mut() {
            if t.attr & attr::CONTROL != 0
                && t.attr & attr::UNUSED == 0
                && t.text.windows(6).any(|w| w == b"unused")
            {
                t.attr |= attr::UNUSED;
            }
        }

        // end-of-generation tokens
        let mut eog = BTreeSet::new();
        for id in [fim_pad, fim_rep, fim_sep].into_iter().flatten() {
            eog.insert(id as u32);
        }
        const EOG_NAMES: &[&str] = &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<|return|>",
            "<|call|>",
            "<|flush|>",
            "<|calls|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "</s>",
            "<|eom_id|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "[EOS]",
            "<|end_of_text|>",
            "<end_of_utterance>",
            "<eos>",
            "<turn|>",
            "<|tool_response>",
            "<｜end▁of▁sentence｜>",
            "[e~[",
        ];
        for (id, t) in v.tokens.iter_mut().enumerate() {
            if EOG_NAMES.iter().any(|s| s.as_bytes() == t.text) {
                eog.insert(id as u32);
                t.attr |= attr::CONTROL;
            }
        }
        for t in v.tokens.iter_mut() {
            if [
                &b"<|channel|>"[..],
                b"<|message|>",
                b"<|start|>",
                b"<|constrain|>",
            ]
            .contains(&t.text.as_slice())
            {
                t.attr = attr::USER_DEFINED;
            }
        }
        for id in [v.eos.map(|x| x as i64), eot, eom].into_iter().flatten() {
            eog.insert(id as u32);
        }
        let text_of = |v: &Vocab, id: u32| v.tokens[id as usize].text.clone();
        let find = |v: &Vocab, eog: &BTreeSet<u32>, s: &[u8]| {
            eog.iter().copied().find(|&id| text_of(v, id) == s)
        };
        let has = |v: &Vocab, eog: &BTreeSet<u32>, s: &[u8]| find(v, eog, s).is_some();
        if let Some(end_id) = find(&v, &eog, b"<|end|>") {
            let ret = has(&v, &eog, b"<|return|>");
            let call = has(&v, &eog, b"<|call|>") || has(&v, &eog, b"<|calls|>");
            let flush = has(&v, &eog, b"<|flush|>");
            if call && (ret || flush) {
                eog.remove(&end_id);
                v.tokens[end_id as usize].attr = attr::USER_DEFINED;
            }
        }
        if let Some(s_id) = find(&v, &eog, b"</s>") {
            if has(&v, &eog, b"<|tool_response>") || has(&v, &eog, b"<|plamo:eos|>") {
                eog.remove(&s_id);
                v.tokens[s_id as usize].attr = attr::NORMAL;
            }
        }
        v.eog = eog;
        v.eot = eot.map(|x| x as u32);

        // special tokens cache, longest text first (ties in id order)
        let mut cache: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                v.tokens[id as usize].attr & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN)
                    != 0
            })
            .collect();
        cache.sort_by(|&a, &b| {
            v.tokens[b as usize]
                .text
                .len()
                .cmp(&v.tokens[a as usize].text.len())
        });
        v.special_cache = cache;

        v.apply_model_attrs(h)?;
        v.spm_words_independent =
            v.vtype == VocabType::Spm && super::spm::words_are_independent(&v);
        Ok(v)
    }

    /// Per-model attribute fixes keyed on the model name, pre-tokenizer or architecture.
    fn apply_model_attrs(&mut self, h: &GgufHeader) -> Result<(), TokenizerError> {
        let lossy = |k: &'static str| -> Result<String, TokenizerError> {
            Ok(get_str(h, k)?
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default())
        };
        let name = lossy("general.name")?.to_ascii_lowercase();
        let pre = lossy(K_PRE)?;
        let arch = lossy("general.architecture")?;
        let contains_any = |s: &str, subs: &[&str]| subs.iter().any(|x| s.contains(x));
        let id_of = |v: &Vocab, s: &str| -> Result<usize, TokenizerError> {
            v.token_to_id
                .get(s.as_bytes())
                .map(|&i| i as usize)
                .ok_or_else(|| TokenizerError::MissingToken(s.to_string()))
        };
        if contains_any(&pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"])
            || contains_any(&arch, &["nomic-bert-moe", "jina-bert-v3"])
        {
            if let Some(&id) = self.token_to_id.get(&b"<mask>"[..]) {
                self.tokens[id as usize].attr |= attr::LSTRIP;
            }
        } else if contains_any(&name, &["phi-3", "phi3"]) {
            for i in 0..self.special_cache.len() {
                let id = self.special_cache[i] as usize;
                self.tokens[id].attr |= attr::RSTRIP;
            }
            let id = id_of(self, "</s>")?;
            self.tokens[id].attr |= attr::RSTRIP;
            for s in ["<unk>", "<s>", "<|endoftext|>"] {
                let id = id_of(self, s)?;
                self.tokens[id].attr &= !attr::RSTRIP;
            }
        } else if contains_any(&name, &["modern-bert"]) {
            if let Some(&id) = self.token_to_id.get(&b"[MASK]"[..]) {
                self.tokens[id as usize].attr |= attr::LSTRIP;
            }
        }
        Ok(())
    }

    /// The id of the token whose text is `text`.
    pub fn text_to_token(&self, text: &[u8]) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    /// The rank of merging `left` with `right`, using `key` as scratch.
    pub fn bpe_rank(&self, left: &[u8], right: &[u8], key: &mut Vec<u8>) -> Option<u32> {
        merge_key(left, right, key);
        self.bpe_ranks.get(key.as_slice()).copied()
    }
}
