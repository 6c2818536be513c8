//! llama.cpp BPE pre-tokenizer names and the `tokenizer.json` `pre_tokenizer` each one stands
//! for, in Hugging Face's own form (the "original regex from tokenizer.json" that the pinned
//! `src/llama-vocab.cpp` quotes next to its rewritten patterns). Used both ways: to recognise
//! a declared pre-tokenizer ([`super::pre_detect`]) and to write one when rebuilding a
//! `tokenizer.json` from a GGUF vocabulary ([`super::rebuild`]).

/// One step of an HF `Sequence` pre-tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `Split` with a regex, behavior `Isolated`, not inverted.
    Split(&'static str),
    /// `Digits` (`individual_digits`).
    Digits(bool),
    /// `ByteLevel` (`use_regex`), `add_prefix_space = false`.
    ByteLevel(bool),
}

/// A llama.cpp pre-tokenizer name with its HF form.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreSpec {
    pub name: &'static str,
    pub steps: &'static [Step],
    /// The BPE model's `ignore_merges` (llama.cpp sets it per pre-tokenizer).
    pub ignore_merges: bool,
    /// Whether the tokenizer normalizes with NFC (Qwen).
    pub nfc: bool,
    /// Whether llama.cpp adds BOS by default for this pre-tokenizer.
    pub add_bos: bool,
}

/// GPT-2's regex, which `ByteLevel(use_regex = true)` applies.
pub(crate) const GPT2_RE: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_RE: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_RE: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_RE: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_RE: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN_RE: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DSV3_RE: &str = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
const SEED_CODER_RE: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\r\n]+|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
const MINICPM5_RE: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const UFAKZEKA_RE: &str =
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const BLOOM_RE: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";

const fn spec(
    name: &'static str,
    steps: &'static [Step],
    ignore_merges: bool,
    nfc: bool,
    add_bos: bool,
) -> PreSpec {
    PreSpec {
        name,
        steps,
        ignore_merges,
        nfc,
        add_bos,
    }
}

use Step::{ByteLevel as BL, Digits, Split};

/// Known pre-tokenizers; for a structure listed twice the first entry is the one detection
/// proposes (the others share its regexes but differ in llama.cpp's flags).
pub(crate) const PRE_SPECS: &[PreSpec] = &[
    spec(
        "llama-bpe",
        &[Split(LLAMA3_RE), BL(false)],
        true,
        false,
        true,
    ),
    spec(
        "smaug-bpe",
        &[Split(LLAMA3_RE), BL(false)],
        false,
        false,
        false,
    ),
    spec("qwen2", &[Split(QWEN2_RE), BL(false)], false, true, false),
    spec("qwen35", &[Split(QWEN35_RE), BL(false)], false, true, false),
    spec("gpt-2", &[BL(true)], false, false, false),
    spec("mpt", &[BL(true)], false, false, false),
    spec("olmo", &[BL(true)], false, false, false),
    spec("starcoder", &[Digits(true), BL(true)], false, false, false),
    spec("refact", &[Digits(true), BL(true)], false, false, false),
    spec("command-r", &[Digits(true), BL(true)], false, false, false),
    spec("smollm", &[Digits(true), BL(true)], false, false, false),
    spec(
        "deepseek-v3",
        &[
            Split(r"\p{N}{1,3}"),
            Split("[一-龥぀-ゟ゠-ヿ]+"),
            Split(DSV3_RE),
            BL(false),
        ],
        false,
        false,
        false,
    ),
    spec(
        "deepseek-coder",
        &[
            Split("[\r\n]"),
            Split(r"\s?\p{L}+"),
            Split(r"\s?\p{P}+"),
            Split("[一-龥ࠀ-一가-퟿]+"),
            Digits(true),
            BL(false),
        ],
        false,
        false,
        false,
    ),
    spec("gpt-4o", &[Split(GPT4O_RE), BL(false)], false, false, false),
    spec("tekken", &[Split(TEKKEN_RE), BL(false)], true, false, true),
    spec(
        "seed-coder",
        &[Split(SEED_CODER_RE), BL(false)],
        false,
        false,
        false,
    ),
    spec(
        "minicpm5",
        &[Split(r"\p{N}{1,3}"), Split(MINICPM5_RE), BL(false)],
        true,
        false,
        false,
    ),
    spec(
        "ufakzeka",
        &[Split(UFAKZEKA_RE), BL(false)],
        false,
        false,
        false,
    ),
    spec("bloom", &[Split(BLOOM_RE), BL(false)], false, false, false),
];

/// The entry named `name`.
pub(crate) fn by_name(name: &str) -> Option<&'static PreSpec> {
    PRE_SPECS.iter().find(|s| s.name == name)
}

/// The steps as a list of regexes applied in order plus whether a byte-level encoding
/// follows: `Digits` is `\p{N}` (individual) or `\p{N}+`, `ByteLevel(use_regex)` adds GPT-2's
/// regex.
pub(crate) fn normalize(steps: &[Step]) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut byte_level = false;
    for s in steps {
        match *s {
            Step::Split(r) => out.push(r.to_string()),
            Step::Digits(true) => out.push(r"\p{N}".to_string()),
            Step::Digits(false) => out.push(r"\p{N}+".to_string()),
            Step::ByteLevel(use_regex) => {
                if use_regex {
                    out.push(GPT2_RE.to_string());
                }
                byte_level = true;
            }
        }
    }
    (out, byte_level)
}
