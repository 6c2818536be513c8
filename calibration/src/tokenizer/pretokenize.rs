//! Splitting text into words before BPE, as llama.cpp's `unicode_regex_split` does: each
//! pattern of the pre-tokenizer refines the previous split; patterns that llama.cpp recognises by
//! their text run as hand-written splitters (reproduced here with their quirks), the others as
//! regular expressions over a "collapsed" text in which every non-ASCII code point stands for its
//! category, so `\p{L}` and friends mean exactly what llama.cpp's category table says.

use super::error::TokenizerError;
use super::pre_patterns::{patterns, PreType};
use super::unicode::{byte_encode, cpts_from_utf8, flags, push_utf8, CptFlags};
use fancy_regex::{Regex, RegexBuilder};

const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_A: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_B: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const NEWLINES: &str = r"[^\n]+|[\n]+";
const KIMI_K2: &str = r"\p{Han}+";
const AFMOE_DIGITS: &str = r"\p{AFMoE_digits}";
const TINY_AYA_DIGITS: &str = r"\d{1,3}(?=(?:\d{3})*\b)";

/// The unicode-category escapes llama.cpp collapses, with the category each stands for.
const UCATS: [(&str, u16); 10] = [
    (r"\p{N}", CptFlags::NUMBER),
    (r"\p{L}", CptFlags::LETTER),
    (r"\p{P}", CptFlags::PUNCTUATION),
    (r"\p{M}", CptFlags::ACCENT_MARK),
    (r"\p{S}", CptFlags::SYMBOL),
    (r"\p{Lu}", CptFlags::LETTER),
    (r"\p{Ll}", CptFlags::LETTER),
    (r"\p{Lt}", CptFlags::LETTER),
    (r"\p{Lm}", CptFlags::LETTER),
    (r"\p{Lo}", CptFlags::LETTER),
];

/// The stand-in code point of a category in the collapsed text.
fn collapsed_cpt(cat: u16) -> Option<u32> {
    Some(match cat {
        CptFlags::NUMBER => 0xD1,
        CptFlags::LETTER => 0xD2,
        CptFlags::PUNCTUATION => 0xD3,
        CptFlags::ACCENT_MARK => 0xD4,
        CptFlags::SYMBOL => 0xD5,
        _ => return None,
    })
}

/// The ASCII members of a category, as inclusive ranges.
fn ascii_members(cat: u16) -> &'static [(u8, u8)] {
    match cat {
        CptFlags::NUMBER => &[(0x30, 0x39)],
        CptFlags::LETTER => &[(0x41, 0x5A), (0x61, 0x7A)],
        CptFlags::PUNCTUATION => &[
            (0x21, 0x23),
            (0x25, 0x2A),
            (0x2C, 0x2F),
            (0x3A, 0x3B),
            (0x3F, 0x40),
            (0x5B, 0x5D),
            (0x5F, 0x5F),
            (0x7B, 0x7B),
            (0x7D, 0x7D),
        ],
        CptFlags::SYMBOL => &[
            (0x24, 0x24),
            (0x2B, 0x2B),
            (0x3C, 0x3E),
            (0x5E, 0x5E),
            (0x60, 0x60),
            (0x7C, 0x7C),
            (0x7E, 0x7E),
        ],
        _ => &[],
    }
}

fn uses_categories(pattern: &str) -> bool {
    UCATS.iter().any(|(p, _)| pattern.contains(p))
}

/// Rewrites a pattern for the collapsed text, as llama.cpp does: each category escape becomes a
/// class of its stand-in code point and its ASCII members.
fn collapse_pattern(pattern: &str) -> String {
    let b = pattern.as_bytes();
    let mut out = String::new();
    let mut inside = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'[' && (i == 0 || b[i - 1] != b'\\') {
            out.push('[');
            inside = true;
            i += 1;
            continue;
        }
        if inside && c == b']' && b[i - 1] != b'\\' {
            out.push(']');
            inside = false;
            i += 1;
            continue;
        }
        if c == b'\\' && i + 3 < b.len() && b[i + 1] == b'p' && b[i + 2] == b'{' {
            if let Some(close) = b[i + 3..]
                .iter()
                .position(|&x| x == b'}')
                .map(|p| p + i + 3)
            {
                if close <= i + 10 {
                    let pat = &pattern[i..=close];
                    if let Some(&(_, cat)) = UCATS.iter().find(|(p, _)| *p == pat) {
                        if !inside {
                            out.push('[');
                        }
                        if let Some(cp) = collapsed_cpt(cat) {
                            out.push_str(&format!("\\x{{{cp:X}}}"));
                        }
                        for &(lo, hi) in ascii_members(cat) {
                            if lo == hi {
                                out.push_str(&format!("\\x{{{lo:02X}}}"));
                            } else {
                                out.push_str(&format!("\\x{{{lo:02X}}}-\\x{{{hi:02X}}}"));
                            }
                        }
                        if !inside {
                            out.push(']');
                        }
                        i = close + 1;
                        continue;
                    }
                }
            }
        }
        // copy one whole character (the pattern is ASCII here, but stay UTF-8 safe)
        let len = super::unicode::utf8_len(c).min(b.len() - i);
        out.push_str(std::str::from_utf8(&b[i..i + len]).unwrap_or("\u{FFFD}"));
        i += len;
    }
    out
}

/// One splitting step.
#[derive(Debug)]
enum Step {
    Gpt2,
    /// llama3 / qwen2 / qwen3.5 splitters: (digits per number word, letters absorb marks).
    Llama3Like {
        max_digits: usize,
        marks: bool,
    },
    Newlines,
    KimiK2,
    Afmoe,
    Regex {
        re: Regex,
        collapsed: bool,
    },
}

/// A compiled pre-tokenizer.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    steps: Vec<Step>,
    need_collapse: bool,
    byte_encode: bool,
}

impl PreTokenizer {
    /// Compiles the patterns of `pre`.
    pub fn new(pre: PreType) -> Result<PreTokenizer, TokenizerError> {
        let (pats, byte_encode) = patterns(pre);
        let mut steps = Vec::new();
        let need_collapse = pats.iter().any(|p| uses_categories(p));
        for &p in pats {
            let step = match p {
                GPT2 => Step::Gpt2,
                LLAMA3_A | LLAMA3_B => Step::Llama3Like {
                    max_digits: 3,
                    marks: false,
                },
                QWEN2 => Step::Llama3Like {
                    max_digits: 1,
                    marks: false,
                },
                QWEN35 => Step::Llama3Like {
                    max_digits: 1,
                    marks: true,
                },
                NEWLINES => Step::Newlines,
                KIMI_K2 => Step::KimiK2,
                AFMOE_DIGITS | TINY_AYA_DIGITS => Step::Afmoe,
                _ => {
                    let collapsed = uses_categories(p);
                    let translated = if collapsed {
                        collapse_pattern(p)
                    } else {
                        p.to_string()
                    };
                    let re = RegexBuilder::new(&translated)
                        .backtrack_limit(usize::MAX / 2)
                        .build()
                        .map_err(|e| TokenizerError::Regex {
                            pattern: translated.clone(),
                            message: e.to_string(),
                        })?;
                    Step::Regex { re, collapsed }
                }
            };
            steps.push(step);
        }
        Ok(PreTokenizer {
            steps,
            need_collapse,
            byte_encode,
        })
    }

    /// Whether words are GPT-2 byte-encoded.
    pub fn byte_encode(&self) -> bool {
        self.byte_encode
    }

    /// Splits `text` into words (byte-encoded when the pre-tokenizer says so).
    pub fn split(&self, text: &[u8]) -> Vec<Vec<u8>> {
        let cpts = cpts_from_utf8(text);
        let collapsed: Vec<u32> = if self.need_collapse {
            cpts.iter()
                .map(|&c| {
                    if c < 128 {
                        return c;
                    }
                    let f = flags(c);
                    if f.is_whitespace() {
                        0x0B
                    } else {
                        collapsed_cpt(f.category()).unwrap_or(0xD0)
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut offsets = vec![cpts.len()];
        for step in &self.steps {
            offsets = match step {
                Step::Gpt2 => split_gpt2(&cpts, &offsets),
                Step::Llama3Like { max_digits, marks } => {
                    split_llama3_like(&cpts, &offsets, *max_digits, *marks)
                }
                Step::Newlines => split_newlines(&cpts, &offsets),
                Step::KimiK2 => split_kimi_k2(&cpts, &offsets),
                Step::Afmoe => split_afmoe(&cpts, &offsets),
                Step::Regex { re, collapsed: c } => {
                    split_regex(re, if *c { &collapsed } else { &cpts }, &offsets)
                }
            };
        }
        let mut words = Vec::with_capacity(offsets.len());
        let mut start = 0;
        let mut utf8 = Vec::new();
        for &len in &offsets {
            utf8.clear();
            for &c in &cpts[start..start + len] {
                push_utf8(c, &mut utf8);
            }
            start += len;
            if self.byte_encode {
                let mut w = Vec::with_capacity(utf8.len() * 2);
                byte_encode(&utf8, &mut w);
                words.push(w);
            } else {
                words.push(utf8.clone());
            }
        }
        words
    }
}

/// Splits each chunk with a regular expression: matches and the text between them become words.
fn split_regex(re: &Regex, cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    let mut s = String::new();
    let mut byte_to_cpt: Vec<usize> = Vec::new();
    for &len in offsets {
        s.clear();
        byte_to_cpt.clear();
        for (k, &c) in cpts[start..start + len].iter().enumerate() {
            let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
            for _ in 0..ch.len_utf8() {
                byte_to_cpt.push(k);
            }
            s.push(ch);
        }
        byte_to_cpt.push(len);
        let mut prev = 0usize;
        for m in re.find_iter(&s) {
            let Ok(m) = m else { break };
            let (a, b) = (byte_to_cpt[m.start()], byte_to_cpt[m.end()]);
            if a > prev {
                out.push(a - prev);
            }
            if b > a {
                out.push(b - a);
            }
            prev = b;
        }
        if prev < len {
            out.push(len - prev);
        }
        start += len;
    }
    out
}

/// Accessors over one chunk `[ini, end)` of the code points, as the custom splitters use them.
struct Chunk<'a> {
    cpts: &'a [u32],
    ini: usize,
    end: usize,
    prev_end: usize,
    out: &'a mut Vec<usize>,
}

const OUT_OF_RANGE: u32 = 0xFFFF_FFFF;

impl Chunk<'_> {
    fn cpt(&self, pos: usize) -> u32 {
        if self.ini <= pos && pos < self.end {
            self.cpts[pos]
        } else {
            OUT_OF_RANGE
        }
    }
    fn flags(&self, pos: usize) -> CptFlags {
        if self.ini <= pos && pos < self.end {
            flags(self.cpts[pos])
        } else {
            CptFlags(0)
        }
    }
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
}

/// llama.cpp's hand-written GPT-2 splitter.
fn split_gpt2(cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let mut c = Chunk {
            cpts,
            ini: start,
            end: start + len,
            prev_end: start,
            out: &mut out,
        };
        start += len;
        let end = c.end;
        let mut pos = c.ini;
        while pos < end {
            let cpt = c.cpt(pos);
            let f = c.flags(pos);
            if cpt == '\'' as u32 && pos + 1 < end {
                let n = c.cpt(pos + 1);
                if [b's', b't', b'm', b'd'].iter().any(|&x| n == x as u32) {
                    pos += c.add(pos + 2);
                    continue;
                }
                if pos + 2 < end {
                    let nn = c.cpt(pos + 2);
                    if contraction3(n, nn) {
                        pos += c.add(pos + 3);
                        continue;
                    }
                }
            }
            let space = cpt == ' ' as u32;
            let mut f2 = if space { c.flags(pos + 1) } else { f };
            if f2.is_letter() {
                pos += space as usize;
                while f2.is_letter() {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                c.add(pos);
                continue;
            }
            if f2.is_number() {
                pos += space as usize;
                while f2.is_number() {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                c.add(pos);
                continue;
            }
            let other =
                |f: CptFlags| !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.any();
            if other(f2) {
                pos += space as usize;
                while other(f2) {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                c.add(pos);
                continue;
            }
            let mut nws = 0;
            while c.flags(pos + nws).is_whitespace() {
                nws += 1;
            }
            if nws > 1 && c.cpt(pos + nws) != OUT_OF_RANGE {
                pos += nws - 1;
                c.add(pos);
                continue;
            }
            if nws > 0 {
                pos += nws;
                c.add(pos);
                continue;
            }
            pos += 1;
            c.add(pos);
        }
    }
    out
}

/// Whether `'` followed by `n`, `nn` is `'re`, `'ve` or `'ll`.
fn contraction3(n: u32, nn: u32) -> bool {
    ((n == 'r' as u32 || n == 'v' as u32) && nn == 'e' as u32)
        || (n == 'l' as u32 && nn == 'l' as u32)
}

fn ascii_lower(c: u32) -> u32 {
    if ('A' as u32..='Z' as u32).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// llama.cpp's hand-written llama3 (`max_digits` 3), qwen2 (1) and qwen3.5 (1, `marks`)
/// splitters.
fn split_llama3_like(
    cpts: &[u32],
    offsets: &[usize],
    max_digits: usize,
    marks: bool,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    let is_word = |f: CptFlags| f.is_letter() || (marks && f.is_accent_mark());
    for &len in offsets {
        let mut c = Chunk {
            cpts,
            ini: start,
            end: start + len,
            prev_end: start,
            out: &mut out,
        };
        start += len;
        let end = c.end;
        let mut pos = c.ini;
        while pos < end {
            let cpt = c.cpt(pos);
            let f = c.flags(pos);
            if cpt == '\'' as u32 && pos + 1 < end {
                // unicode_tolower maps nothing outside ASCII onto these letters
                let n = ascii_lower(c.cpt(pos + 1));
                if [b's', b't', b'm', b'd'].iter().any(|&x| n == x as u32) {
                    pos += c.add(pos + 2);
                    continue;
                }
                if pos + 2 < end {
                    let nn = ascii_lower(c.cpt(pos + 2));
                    if contraction3(n, nn) {
                        pos += c.add(pos + 3);
                        continue;
                    }
                }
            }
            let crlf = |x: u32| x == '\r' as u32 || x == '\n' as u32;
            // [^\r\n\p{L}\p{N}]?\p{L}+  (qwen3.5: [\p{L}\p{M}]+)
            if !(crlf(cpt) || f.is_number()) && (is_word(f) || is_word(c.flags(pos + 1))) {
                pos += 1;
                while is_word(c.flags(pos)) {
                    pos += 1;
                }
                c.add(pos);
                continue;
            }
            // \p{N}{1,3} or \p{N}
            if f.is_number() {
                if max_digits == 1 {
                    pos += 1;
                    c.add(pos);
                    continue;
                }
                let mut ini = pos;
                while c.flags(pos).is_number() {
                    pos += 1;
                    if pos - ini >= max_digits {
                        c.add(pos);
                        ini = pos;
                    }
                }
                c.add(pos);
                continue;
            }
            // <space>?[^\s\p{L}\p{N}]+[\r\n]*  (note: tests the first code point's flags)
            let mut f2 = if cpt == ' ' as u32 {
                c.flags(pos + 1)
            } else {
                f
            };
            let other = |f: CptFlags| {
                !(f.is_whitespace()
                    || f.is_letter()
                    || (marks && f.is_accent_mark())
                    || f.is_number())
            };
            if other(f2) && f.any() {
                pos += (cpt == ' ' as u32) as usize;
                while other(f2) && f2.any() {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                let mut c2 = c.cpt(pos);
                while crlf(c2) {
                    pos += 1;
                    c2 = c.cpt(pos);
                }
                c.add(pos);
                continue;
            }
            let mut nws = 0;
            let mut last_crlf_end = 0;
            while c.flags(pos + nws).is_whitespace() {
                if crlf(c.cpt(pos + nws)) {
                    last_crlf_end = pos + nws + 1;
                }
                nws += 1;
            }
            if last_crlf_end > 0 {
                pos = last_crlf_end;
                c.add(pos);
                continue;
            }
            if nws > 1 && c.cpt(pos + nws) != OUT_OF_RANGE {
                pos += nws - 1;
                c.add(pos);
                continue;
            }
            if nws > 0 {
                pos += nws;
                c.add(pos);
                continue;
            }
            pos += 1;
            c.add(pos);
        }
    }
    out
}

/// Han ideographs as `unicode_cpt_is_han` lists them.
fn is_han(c: u32) -> bool {
    (0x4E00..=0x9FFF).contains(&c)
        || (0x3400..=0x4DBF).contains(&c)
        || (0x20000..=0x2A6DF).contains(&c)
        || (0x2A700..=0x2B73F).contains(&c)
        || (0x2B740..=0x2B81F).contains(&c)
        || (0x2B820..=0x2CEAF).contains(&c)
        || (0x2CEB0..=0x2EBEF).contains(&c)
        || (0xF900..=0xFAFF).contains(&c)
        || (0x2F800..=0x2FA1F).contains(&c)
}

/// llama.cpp's hand-written Kimi-K2 splitter (all of K2's patterns in one pass).
fn split_kimi_k2(cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let mut c = Chunk {
            cpts,
            ini: start,
            end: start + len,
            prev_end: start,
            out: &mut out,
        };
        start += len;
        let end = c.end;
        let mut pos = c.ini;
        let crlf = |x: u32| x == '\r' as u32 || x == '\n' as u32;
        while pos < end {
            let cpt = c.cpt(pos);
            let f = c.flags(pos);
            // [\p{Han}]+
            if is_han(cpt) {
                while is_han(c.cpt(pos)) {
                    pos += 1;
                }
                c.add(pos);
                continue;
            }
            // letter words (Han excluded) with an optional leading character and contraction
            let letter_at = |c: &Chunk, p: usize| c.flags(p).is_letter() && !is_han(c.cpt(p));
            let lead = !(crlf(cpt) || f.is_letter() || f.is_number());
            if (f.is_letter() && !is_han(cpt)) || (lead && letter_at(&c, pos + 1)) {
                let mut has_lead = false;
                if lead {
                    has_lead = true;
                    pos += 1;
                }
                let mut has_letters = false;
                while letter_at(&c, pos) {
                    has_letters = true;
                    pos += 1;
                }
                if has_letters || (!has_lead && letter_at(&c, pos)) {
                    if !has_letters {
                        pos += 1;
                    }
                    while letter_at(&c, pos) {
                        pos += 1;
                    }
                    if c.cpt(pos) == '\'' as u32 && pos + 1 < end {
                        let n = ascii_lower(c.cpt(pos + 1));
                        if [b's', b't', b'm', b'd'].iter().any(|&x| n == x as u32) {
                            pos += 2;
                        } else if pos + 2 < end {
                            let nn = ascii_lower(c.cpt(pos + 2));
                            if contraction3(n, nn) {
                                pos += 3;
                            }
                        }
                    }
                    c.add(pos);
                    continue;
                } else if has_lead {
                    pos -= 1;
                }
            }
            // \p{N}{1,3}
            if f.is_number() {
                let mut ini = pos;
                while c.flags(pos).is_number() {
                    pos += 1;
                    if pos - ini >= 3 {
                        c.add(pos);
                        ini = pos;
                    }
                }
                c.add(pos);
                continue;
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            let mut f2 = if cpt == ' ' as u32 {
                c.flags(pos + 1)
            } else {
                f
            };
            let other =
                |f: CptFlags| !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.any();
            if other(f2) {
                pos += (cpt == ' ' as u32) as usize;
                while other(f2) {
                    pos += 1;
                    f2 = c.flags(pos);
                }
                while crlf(c.cpt(pos)) {
                    pos += 1;
                }
                c.add(pos);
                continue;
            }
            let mut nws = 0;
            let mut last_crlf_end = 0;
            while c.flags(pos + nws).is_whitespace() {
                if crlf(c.cpt(pos + nws)) {
                    last_crlf_end = pos + nws + 1;
                }
                nws += 1;
            }
            if last_crlf_end > 0 {
                pos = last_crlf_end;
                c.add(pos);
                continue;
            }
            if nws > 1 && c.cpt(pos + nws) != OUT_OF_RANGE {
                pos += nws - 1;
                c.add(pos);
                continue;
            }
            if nws > 0 {
                pos += nws;
                c.add(pos);
                continue;
            }
            pos += 1;
            c.add(pos);
        }
    }
    out
}

/// llama.cpp's AFMoE digit splitter (also used for tiny_aya's digit pattern): each digit run is
/// cut into a leading group of `len % 3` digits and then groups of three; text before a run
/// stays attached to its first group, as in llama.cpp.
fn split_afmoe(cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let mut c = Chunk {
            cpts,
            ini: start,
            end: start + len,
            prev_end: start,
            out: &mut out,
        };
        start += len;
        let end = c.end;
        let mut pos = c.ini;
        while pos < end {
            if c.flags(pos).is_number() {
                let first = pos;
                while pos < end && c.flags(pos).is_number() {
                    pos += 1;
                }
                let count = pos - first;
                let mut cur = first;
                if count % 3 > 0 {
                    cur += count % 3;
                    c.add(cur);
                }
                while cur < first + count {
                    cur += 3;
                    c.add(cur);
                }
                continue;
            }
            pos += 1;
        }
        if c.prev_end < end {
            c.add(end);
        }
    }
    out
}

/// llama.cpp's splitter for `[^\n]+|[\n]+`: runs of newlines and runs of anything else.
fn split_newlines(cpts: &[u32], offsets: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut start = 0;
    for &len in offsets {
        let end = start + len;
        let mut pos = start;
        while pos < end {
            let nl = cpts[pos] == '\n' as u32;
            let run = pos;
            while pos < end && (cpts[pos] == '\n' as u32) == nl {
                pos += 1;
            }
            out.push(pos - run);
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pre_type_compiles() {
        use PreType as P;
        for p in [
            P::Llama3,
            P::Jais2,
            P::Dbrx,
            P::DeepseekLlm,
            P::Deepseek3Llm,
            P::Spark25,
            P::Youtu,
            P::DeepseekCoder,
            P::Falcon,
            P::Starcoder,
            P::Gpt2,
            P::Qwen2,
            P::Qwen35,
            P::Poro,
            P::Chatglm4,
            P::Viking,
            P::Tekken,
            P::Chameleon,
            P::Gpt4o,
            P::GraniteEmbMulti,
            P::Superbpe,
            P::Bailingmoe,
            P::SeedCoder,
            P::Ufakzeka,
            P::Grok2,
            P::Laguna,
            P::ExaoneMoe,
            P::Gemma4,
            P::SarvamMoe,
            P::Minicpm5,
            P::Whitespace,
            P::Default,
            P::KimiK2,
            P::Afmoe,
            P::TinyAya,
        ] {
            PreTokenizer::new(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
    }
}
